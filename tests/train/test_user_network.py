"""The example network of examples/ through the command line: trained, saved, evaluated and used for ECO
centroids by name, never imported because a file names it."""
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from srprep.cli import main
from srprep.infer import upscale
from srprep.io.images import read_image
from srprep.models import load_pretrained
from srprep.train.logs import read_csv

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "srprep" / "configs" / "tiny_cpu.yaml"
SPEC = f"{REPO / 'examples' / 'tiny_espcn.py'}:TinyESPCN"


def test_example_network_trains_evaluates_and_serves_centroids(kodak_x2, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "-c", TINY, f"data.root={kodak_x2}", f"model.name={SPEC}", "model.kwargs={features: 16}",
                 "train.iters=30", "val.every=30", "train.log_every=10", "train.cpu_threads=1",
                 "train.tensorboard=false", "--run-dir", run]) == 0
    assert f"trained {SPEC} x2 for 30 steps" in capsys.readouterr().out
    val = read_csv(run / "val.csv")[-1]
    assert val["psnr"] > val["bicubic_psnr"] - 1.0  # it learned something from bilinear (a sanity bound)

    # the checkpoint names the network but does not import it: eval needs --arch
    assert main(["eval", "-m", run / "best.pt", "-d", kodak_x2]) == 1
    assert "not part of srprep; pass it yourself (--arch" in capsys.readouterr().err

    # eval of the saved network on the validation images gives the trainer's validation PSNR exactly
    held_out = tmp_path / "held_out"
    for key in ("kodim07", "kodim08"):
        for field, name in (("HR", f"{key}.png"), ("X2", f"{key}x2.png")):
            (held_out / field).mkdir(parents=True, exist_ok=True)
            shutil.copy(kodak_x2 / field / name, held_out / field / name)
    assert main(["eval", "-m", run / "best.pt", "--arch", SPEC, "-d", held_out, "--csv", tmp_path / "eval.csv"]) == 0
    with open(tmp_path / "eval.csv", newline="") as fh:
        mean = [r for r in csv.DictReader(fh) if r["image"] == "(mean)"][0]
    assert float(mean["psnr"]) == pytest.approx(val["psnr"], abs=1e-4)  # val.csv keeps 6 digits

    # centroids: sr_pretrained = the network's 8-bit output of every LR image
    out = tmp_path / "centroids"
    assert main(["-q", "centroids", kodak_x2, "-m", run / "best.pt", "--arch", SPEC, "--out", out, "-j", "2"]) == 0
    assert sorted(p.name for p in (out / "sr_pretrained").iterdir()) == sorted(
        p.name for p in (kodak_x2 / "HR").iterdir())
    model, info = load_pretrained(run / "best.pt", arch=SPEC)
    assert info.kwargs == {"features": 16}
    torch.set_num_threads(1)
    lr = read_image(kodak_x2 / "X2" / "kodim03x2.png")
    expected = upscale(model, lr, scale=2, output="uint8")
    assert np.abs(read_image(out / "sr_pretrained" / "kodim03.png").astype(int) - expected).max() <= 1


def test_resuming_from_a_bare_checkpoint_does_not_import_the_network_it_names(kodak_x2, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "train", "-c", TINY, f"data.root={kodak_x2}", f"model.name={SPEC}", "model.kwargs={}", "train.iters=2",
                 "val.every=0", "train.cpu_threads=1", "train.tensorboard=false", "--run-dir", run]) == 0
    bare = tmp_path / "elsewhere" / "checkpoints" / "step_0000002.pt"
    bare.parent.mkdir(parents=True)
    shutil.copy(run / "checkpoints" / "step_0000002.pt", bare)
    assert main(["train", "--resume", bare, "train.iters=3"]) == 1
    assert f"give model.name={SPEC}" in capsys.readouterr().err
    assert main(["-q", "train", "--resume", bare, "train.iters=3", f"model.name={SPEC}"]) == 0
