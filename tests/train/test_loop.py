"""The training loop end to end on the CPU: learns, resumes bit for bit, ECO on and off, degradation, CLI."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from srprep.cli import main
from srprep.models import load_pretrained
from srprep.train import load_config, train
from srprep.train.data import build_dataset, make_loader
from srprep.train.logs import read_csv
from srprep.train.loop import _inputs

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "srprep" / "configs" / "tiny_cpu.yaml"
FAST = ["train.cpu_threads=1", "train.tensorboard=false"]


def test_tiny_config_trains_from_a_packed_store_and_beats_bicubic(kodak_lmdb, tmp_path, capsys):
    cfg = load_config(TINY, [f"data.root={kodak_lmdb}", "val.every=150", *FAST])
    result = train(cfg, tmp_path / "run")
    assert result.steps == 300 and not result.stopped_early
    assert result.best_psnr > result.bicubic_psnr + 0.3, (result.best_psnr, result.bicubic_psnr)
    run = tmp_path / "run"
    for name in ("config.yaml", "train.csv", "val.csv", "curves.png", "val_crops.png", "best.pt", "last.pt"):
        assert (run / name).is_file(), name
    val = read_csv(run / "val.csv")
    assert [r["step"] for r in val] == [150, 300] and val[-1]["best_psnr"] == pytest.approx(result.best_psnr, abs=1e-3)
    assert len(read_csv(run / "train.csv")) == 12
    log = (run / "train.log").read_text()  # the run's own text log: progress with an ETA, validation
    assert "step 300/300" in log and "ETA 0s" in log and "validation at step 150: PSNR" in log
    assert len(re.findall(r"ETA (\d+m)?\d+s", log)) == 12
    # srprep status shows the run: step, best PSNR, last checkpoint
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{run}: training edsr x2, step 300 of 300 (finished" in out
    assert f"best PSNR {result.best_psnr:.3f} dB at step" in out and "last checkpoint " in out
    assert "step_0000300.pt" in out
    # best.pt is an ordinary srprep checkpoint: the network and its config come back
    model, info = load_pretrained(run / "best.pt")
    assert info.arch == "edsr" and info.scale == 2 and info.kwargs["num_blocks"] == 2
    assert info.config["data"]["root"] == str(kodak_lmdb)


def resume_config(root, iters):
    return load_config(TINY, [
        f"data.root={root}", f"train.iters={iters}", "val.every=0", "train.log_every=2", "train.ckpt_every=100",
        "data.patch=32", "data.batch=4", "model.name=msrresnet",
        "model.kwargs={num_block: 2, num_feat: 16, dropout: 0.5}",
        "eco.enabled=true", "augment.rgb_permute=0.5", "augment.blend=0.5", "augment.mixup=0.5",
        "train.ema=0.9", "train.skip_threshold=5", "train.grad_clip=0.5", "optim.name=lamb", *FAST])


def test_resume_after_stopping_is_bit_identical(kodak_eco, tmp_path):
    n, k = 8, 3
    whole = train(resume_config(kodak_eco, n), tmp_path / "whole")
    first = train(resume_config(kodak_eco, n), tmp_path / "split", stop_at=k)
    assert first.stopped_early and first.steps == k
    second = train(resume_config(kodak_eco, n), tmp_path / "split", resume="auto")
    assert second.steps == n and not second.stopped_early
    a = torch.load(whole.state_checkpoint, weights_only=True)
    b = torch.load(second.state_checkpoint, weights_only=True)
    assert a["step"] == b["step"] == n
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(pa[s], pb[s]) for s in pa)
    assert torch.equal(a["last_loss"], b["last_loss"])
    # the global generators are seeded too, so the whole state file holds the same values
    assert a["rng"]["python"] == b["rng"]["python"]
    assert torch.equal(a["rng"]["numpy"]["keys"], b["rng"]["numpy"]["keys"])
    # the logs read as one run: every row is the uninterrupted run's, byte for byte (the time columns aside)
    assert [r["step"] for r in read_csv(tmp_path / "split" / "train.csv")] == [2, 4, 6, 8]
    assert csv_without_times(tmp_path / "split" / "train.csv") == csv_without_times(tmp_path / "whole" / "train.csv")


def csv_without_times(path):
    """train.csv's lines without its two wall-clock columns (steps_per_s, elapsed_s)."""
    lines = path.read_text().splitlines()
    cut = [lines[0].split(",").index(c) for c in ("steps_per_s", "elapsed_s")]
    return [",".join(v for i, v in enumerate(line.split(",")) if i not in cut) for line in lines]


def test_resuming_after_rows_beyond_the_checkpoint_and_a_torn_line_gives_the_uninterrupted_csv(kodak_x2, tmp_path):
    cfg = lambda: load_config(TINY, [f"data.root={kodak_x2}", "train.iters=12", "val.every=0", "train.log_every=2",
                                     "train.ckpt_every=5", "data.patch=32", "data.batch=2", *FAST])  # noqa: E731
    train(cfg(), tmp_path / "whole")
    train(cfg(), tmp_path / "split", stop_at=5)  # a checkpoint at 5, between two rows (4 and 6)
    run = tmp_path / "split"
    good = (tmp_path / "whole" / "train.csv").read_text().splitlines(keepends=True)
    # what a kill leaves: rows the killed run wrote after its last checkpoint, then a torn line
    with open(run / "train.csv", "a", newline="") as fh:
        fh.writelines(good[3:5])
        fh.write("8,0.01")
    train(cfg(), run, resume="auto")
    assert csv_without_times(run / "train.csv") == csv_without_times(tmp_path / "whole" / "train.csv")
    assert not list(run.glob(".train.csv.tmp*"))


def test_eco_inputs_start_at_the_centroids(kodak_eco):
    cfg = load_config(TINY, [f"data.root={kodak_eco}", "eco.enabled=true", "data.patch=32", *FAST])
    batch = next(iter(make_loader(build_dataset(cfg), batch=4, start_step=0)))
    gen = torch.Generator()
    fmt = torch.contiguous_format
    lr, hr, alpha = _inputs(batch, cfg, 0, gen, gen, torch.device("cpu"), fmt)
    assert alpha == 1.0
    off = load_config(TINY, [f"data.root={kodak_eco}", "data.patch=32", *FAST])
    lr_plain, hr_plain, alpha_plain = _inputs(batch, off, 0, gen, gen, torch.device("cpu"), fmt)
    assert np.isnan(alpha_plain)
    centroid_lr = batch["lr_c"].permute(0, 3, 1, 2).float() / 255
    flags = batch["flags"].bool()
    for i in range(4):  # undo the per-sample flips to compare with the stored centroid patch
        x = lr[i]
        if flags[i, 2]:
            x = x.transpose(-1, -2)
        if flags[i, 1]:
            x = x.flip(-2)
        if flags[i, 0]:
            x = x.flip(-1)
        assert torch.equal(x, centroid_lr[i])
    assert not torch.equal(lr, lr_plain)
    _, _, late = _inputs(batch, cfg, cfg.train.iters, gen, gen, torch.device("cpu"), fmt)
    assert late == 0.0


def test_eco_on_and_off_both_train(kodak_eco, tmp_path):
    results = {}
    for eco in (False, True):
        cfg = load_config(TINY, [f"data.root={kodak_eco}", f"eco.enabled={str(eco).lower()}", "train.iters=40",
                                 "val.every=40", "train.log_every=10", *FAST])
        results[eco] = train(cfg, tmp_path / f"eco_{eco}")
        assert np.isfinite(results[eco].best_psnr)
    rows = read_csv(tmp_path / "eco_True" / "train.csv")
    alphas = [r["eco_alpha"] for r in rows]
    assert alphas[0] == 1.0 and alphas[-1] == 0.0 and alphas == sorted(alphas, reverse=True)
    assert (tmp_path / "eco_True" / "eco_schedule.png").is_file()
    assert all(np.isnan(r["eco_alpha"]) for r in read_csv(tmp_path / "eco_False" / "train.csv"))


def test_vanilla_and_eco_runs_of_one_seed_start_alike_and_see_the_same_patches(kodak_eco, tmp_path):
    """What pairs the runs of an ECO study by seed: the same initial weights and the same patches and flips
    with ECO on or off (the centroid fields are read beside them and change no draw); another seed differs."""
    def batches(eco: bool, seed: int) -> list[dict]:
        cfg = load_config(TINY, [f"data.root={kodak_eco}", f"eco.enabled={str(eco).lower()}", f"train.seed={seed}",
                                 "data.patch=32", *FAST])
        it = iter(make_loader(build_dataset(cfg), batch=4, start_step=0))
        return [next(it) for _ in range(3)]

    vanilla, eco, other = batches(False, 0), batches(True, 0), batches(False, 1)
    for a, b, c in zip(vanilla, eco, other):
        assert set(b) - set(a) == {"hr_c", "lr_c"}
        assert all(torch.equal(a[k], b[k]) for k in ("hr", "lr", "flags"))
        assert not torch.equal(a["hr"], c["hr"])

    def initial_weights(eco: bool, seed: int) -> dict:  # one step at learning rate 0 leaves them as drawn
        cfg = load_config(TINY, [f"data.root={kodak_eco}", f"eco.enabled={str(eco).lower()}", f"train.seed={seed}",
                                 "optim.lr=0", "train.iters=1", "val.every=0", *FAST])
        result = train(cfg, tmp_path / f"run_{eco}_{seed}")
        return load_pretrained(result.last_checkpoint)[0].state_dict()

    w_vanilla, w_eco, w_other = initial_weights(False, 3), initial_weights(True, 3), initial_weights(True, 4)
    assert all(torch.equal(w_vanilla[k], w_eco[k]) for k in w_vanilla)
    assert not all(torch.equal(w_vanilla[k], w_other[k]) for k in w_vanilla)


def test_on_the_fly_degradation_with_dropout_runs(kodak_x2, tmp_path):
    cfg = load_config(TINY, [
        f"data.root={kodak_x2}", "model.name=srresnet", "model.scale=4",
        "model.kwargs={num_block: 1, num_feat: 16, dropout: 0.7}", "data.lr=null", "degrade.enabled=true",
        "degrade.recipe=realesrgan_x4plus", "degrade.noise=host", "data.patch=64",
        "data.batch=2", "train.iters=3", "val.every=0", "train.log_every=1", *FAST])
    batch = next(iter(make_loader(build_dataset(cfg), batch=2, start_step=0)))
    assert "lr" not in batch and len(batch["params"]) == 2
    gen = torch.Generator()
    lr, hr, _ = _inputs(batch, cfg, 0, gen, gen, torch.device("cpu"), torch.contiguous_format)
    assert lr.shape == (2, 3, 16, 16) and hr.shape == (2, 3, 64, 64)
    assert torch.equal(lr, (lr * 255).round() / 255)  # the pipeline ends on the 8-bit grid
    result = train(cfg, tmp_path / "real")
    assert result.steps == 3 and np.isfinite(read_csv(tmp_path / "real" / "train.csv")[-1]["loss"])


def realesrgan_config(root, *extra):
    return load_config(TINY, [
        f"data.root={root}", "model.name=srresnet", "model.scale=4",
        "model.kwargs={num_block: 1, num_feat: 16, dropout: 0.7}", "data.lr=null", "degrade.enabled=true",
        "degrade.recipe=realesrgan_x4plus", "degrade.noise=host", "data.patch=32",
        "degrade.crop_pad=64", "degrade.queue=4", "data.batch=2", "val.every=0", "train.log_every=1",
        "data.rot90=false", *FAST, *extra])


def test_realesrgan_procedure_degrades_the_crop_pad_gt_then_cuts_the_pair(kodak_x2):
    """Real-ESRNet's order: USM and degradation of the whole crop_pad GT, then the paired crop of both."""
    from srprep.ops.degrade import apply_batch, usm_sharp_torch

    cfg = realesrgan_config(kodak_x2)
    batch = next(iter(make_loader(build_dataset(cfg), batch=2, start_step=0)))
    assert batch["hr"].shape == (2, 64, 64, 3) and batch["crop"].shape == (2, 2)
    gen = torch.Generator()
    lr, hr, _ = _inputs(batch, cfg, 0, gen, gen, torch.device("cpu"), torch.contiguous_format)
    assert lr.shape == (2, 3, 8, 8) and hr.shape == (2, 3, 32, 32)
    gt = batch["hr"].permute(0, 3, 1, 2).float() / 255
    lq = apply_batch(gt, batch["params"], noise="host")  # 64 -> 16
    gt = usm_sharp_torch(gt)
    for i, (y, x) in enumerate(batch["crop"].tolist()):
        assert torch.equal(lr[i], lq[i, :, y:y + 8, x:x + 8])
        assert torch.equal(hr[i], gt[i, :, 4 * y:4 * y + 32, 4 * x:4 * x + 32])


def test_realesrgan_procedure_with_the_pool_resumes_bit_identically(kodak_x2, tmp_path):
    whole = train(realesrgan_config(kodak_x2, "train.iters=6", "train.ckpt_every=100"), tmp_path / "whole")
    train(realesrgan_config(kodak_x2, "train.iters=6", "train.ckpt_every=100"), tmp_path / "split", stop_at=3)
    split = train(realesrgan_config(kodak_x2, "train.iters=6", "train.ckpt_every=100"), tmp_path / "split",
                  resume="auto")
    a = torch.load(whole.state_checkpoint, weights_only=True)
    b = torch.load(split.state_checkpoint, weights_only=True)
    assert a["pool"]["filled"] == 4 and torch.equal(a["pool"]["lr"], b["pool"]["lr"])
    assert torch.equal(a["pool"]["hr"], b["pool"]["hr"])
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_cli_trains_refuses_to_overwrite_and_resumes(kodak_x2, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "-c", TINY, f"data.root={kodak_x2}", "train.iters=10", "val.every=10", "train.log_every=5",
            *FAST, "--run-dir", run]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best PSNR" in out and f"best weights:  {run / 'best.pt'}" in out and "--resume auto" in out
    assert main(args) == 1
    assert "already holds checkpoints; continue with --resume auto" in capsys.readouterr().err
    assert main(["train", "--resume", "auto", "--run-dir", run, "train.iters=14", "val.every=7"]) == 0
    assert "for 14 steps" in capsys.readouterr().out
    assert [r["step"] for r in read_csv(run / "train.csv")] == [5, 10, 14]
    assert main(["train", "-c", TINY, "train.iter=3"]) == 1
    assert "did you mean train.iters?" in capsys.readouterr().err
    assert main(["train", "--plot-eco", tmp_path / "eco.png"]) == 0
    assert (tmp_path / "eco.png").stat().st_size > 1000


@pytest.mark.slow
def test_torchrun_two_processes_on_the_cpu(kodak_x2, tmp_path):
    """The same command line under torchrun: gloo on the CPU, one log, one set of checkpoints."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "srprep", "train", "-c", str(TINY), f"data.root={kodak_x2}", "train.iters=6", "val.every=6",
           "train.log_every=3", "train.skip_threshold=5", *FAST, "--run-dir", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("best PSNR") == 1  # only the main process reports
    assert [r["step"] for r in read_csv(run / "train.csv")] == [3, 6]
    assert (run / "checkpoints" / "step_0000006.pt").is_file() and (run / "best.pt").is_file()


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_naming_it(kodak_x2, small_disk):
    import shutil

    from srprep.errors import SrprepError

    free = shutil.disk_usage(small_disk).free
    with open(small_disk / "filler", "wb") as fh:
        fh.write(b"\0" * (free - 96 * 1024))  # room for the config and logs, not for a checkpoint
    cfg = load_config(TINY, [f"data.root={kodak_x2}", "train.iters=4", "val.every=0", "train.log_every=2",
                             "train.ckpt_every=2", "data.patch=32", "data.batch=2", *FAST])
    with pytest.raises(SrprepError) as info:
        train(cfg, small_disk / "run")
    msg = str(info.value)
    assert msg.startswith(f"{small_disk / 'run'}/") and "the disk is full" in msg and "\n" not in msg
    assert "checkpoint" in msg
    assert not list((small_disk / "run").rglob("*.tmp")), "no torn checkpoint is left"
