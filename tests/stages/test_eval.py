"""srprep eval: the real IMDN x2 reproduces its published Set5 numbers through the CLI; LR made by srprep gives the
same numbers as the benchmark's LR files; layouts, outputs and errors."""
import csv
import json
import shutil

import numpy as np
import pytest
import torch

from srprep.cli import main
from srprep.infer import upscale
from srprep.io.images import read_image, write_image
from srprep.models import load_pretrained
from srprep.stages.eval import find_pairs, make_lr


@pytest.fixture(scope="module")
def set5(ref_data):
    return ref_data / "benchmark" / "Set5"


def test_imdn_x2_set5_published_numbers_via_cli(set5, weights, tmp_path, capsys):
    torch.set_num_threads(2)
    # The same images with LR made by srprep downsample (uint8 convention) from the uncropped HR.
    hr = tmp_path / "hr"
    hr.mkdir()
    for name in ("bird", "head"):
        shutil.copy(set5 / "HR" / f"{name}.png", hr)
    made = tmp_path / "Made"
    assert main(["-q", "downsample", hr, made, "--scale", "2", "-j", "1"]) == 0
    csv_path, json_path, sr_dir = tmp_path / "s.csv", tmp_path / "s.json", tmp_path / "sr"
    assert main(["eval", "--model", weights, "--data", set5, "--data", made, "--csv", csv_path,
                 "--json", json_path, "--save-sr", sr_dir]) == 0
    out = capsys.readouterr().out
    report = json.loads(json_path.read_text())
    s5, mine = report["datasets"]
    assert [r["name"] for r in s5["images"]] == ["baby", "bird", "butterfly", "head", "woman"]
    # Published (IMDN paper, Table 1): Set5 x2 38.00 dB / 0.9605.
    assert s5["mean"]["psnr"] == pytest.approx(38.00, abs=0.02)
    assert s5["mean"]["ssim"] == pytest.approx(0.9605, abs=0.0005)
    assert report["model"]["arch"] == "imdn" and report["model"]["scale"] == 2
    # srprep's LR is bit-exact, so the scores are the same numbers.
    ref = {r["name"]: r for r in s5["images"]}
    for r in mine["images"]:
        assert r["psnr"] == pytest.approx(ref[r["name"]]["psnr"], abs=1e-9)
        assert r["ssim"] == pytest.approx(ref[r["name"]]["ssim"], abs=1e-9)
    # The table: aligned columns, one line per image, the mean.
    lines = out.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("Set5 x2")))
    table = lines[start + 1:start + 8]
    assert table[0].split() == ["image", "PSNR", "(dB)", "SSIM"] and table[-1].split()[:2] == ["mean", "(5)"]
    assert len({len(line) for line in table}) == 1
    assert f"{s5['mean']['psnr']:.4f}" in table[-1]
    # CSV holds the same numbers as JSON.
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == 6 + 3 and rows[5]["image"] == "(mean)"
    assert float(rows[5]["psnr"]) == s5["mean"]["psnr"]
    # Saved SR images are what srprep.infer.upscale gives.
    model = load_pretrained(weights)[0]
    lr = read_image(made / "X2" / "headx2.png")
    np.testing.assert_array_equal(read_image(sr_dir / "Made" / "head.png"), upscale(model, lr, scale=2, output="uint8"))
    assert sorted(p.name for p in (sr_dir / "Set5").iterdir()) == [f"{n}.png" for n in
                                                                   ("baby", "bird", "butterfly", "head", "woman")]


def test_made_lr_is_the_benchmark_lr(set5, ref_data):
    """LR made by eval (--make-lr) equals the MATLAB files of both conventions, bit for bit."""
    basicsr = ref_data / "basicsr_im2double" / "Set5"
    for name in ("baby", "bird", "butterfly", "head", "woman"):
        hr = read_image(set5 / "HR" / f"{name}.png")
        for s in (2, 3, 4):
            lr, hr_used = make_lr(hr, s)
            np.testing.assert_array_equal(lr, read_image(set5 / f"LR_bicubic/X{s}/{name}x{s}.png"))
            assert hr_used.shape == (lr.shape[0] * s, lr.shape[1] * s, 3)
        lr, _ = make_lr(read_image(basicsr / "GTmod12" / f"{name}.png"), 2, "im2double")
        np.testing.assert_array_equal(lr, read_image(basicsr / "LRbicx2" / f"{name}.png"))


def test_layouts(set5, ref_data, tmp_path):
    src = find_pairs(set5, 2)
    assert src.hr_dir == set5 / "HR" and src.lr_dir == set5 / "LR_bicubic" / "X2"
    basicsr = ref_data / "basicsr_im2double" / "Set5"
    src = find_pairs(basicsr, 4)
    assert src.hr_dir == basicsr / "GTmod12" and src.lr_dir == basicsr / "LRbicx4"
    assert find_pairs(set5, 2, make_lr=True, convention="im2double").lr_dir is None
    only_hr = tmp_path / "only_hr"
    only_hr.mkdir()
    shutil.copy(set5 / "HR" / "bird.png", only_hr)
    src = find_pairs(only_hr, 2)
    assert src.hr_dir == only_hr and src.lr_dir is None and "made by MATLAB bicubic" in src.describe()


def test_make_lr_on_small_crops_via_cli(set5, weights, tmp_path, capsys):
    """--make-lr and an HR-only dataset take their LR from srprep's imresize; the scores match LR files."""
    data = tmp_path / "Tiny"
    for name in ("baby", "butterfly"):
        hr = read_image(set5 / "HR" / f"{name}.png")[100:197, 80:181]  # odd sizes: modcrop matters
        write_image(data / "HR" / f"{name}.png", hr)
        write_image(data / "LR_bicubic" / "X2" / f"{name}x2.png", make_lr(hr, 2)[0])
    only_hr = tmp_path / "OnlyHR"
    shutil.copytree(data / "HR", only_hr)
    j1, j2, j3 = (tmp_path / f"{i}.json" for i in range(3))
    assert main(["-q", "eval", "-m", weights, "-d", data, "--json", j1]) == 0
    assert main(["-q", "eval", "-m", weights, "-d", data, "--make-lr", "--json", j2]) == 0
    assert main(["-q", "eval", "-m", weights, "-d", only_hr, "--json", j3, "--rgb"]) == 0
    out = capsys.readouterr().out
    assert "made by MATLAB bicubic (uint8 convention)" in out and "RGB, border 2" in out
    r1, r2, r3 = (json.loads(j.read_text())["datasets"][0] for j in (j1, j2, j3))
    assert r1["images"] == r2["images"] and r2["lr_made"] and not r1["lr_made"]
    assert r3["mean"]["psnr"] != r1["mean"]["psnr"]  # RGB is another measurement


def test_scale_mismatch_is_refused(set5, weights, capsys):
    assert main(["eval", "-m", weights, "--scale", "3", "-d", set5]) == 1
    err = capsys.readouterr().err
    assert "IMDN_x2.pth" in err and "weights are for x2, but x3 was requested" in err


def test_checkpoint_that_does_not_load_names_missing_keys(set5, weights, tmp_path, capsys):
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if "IMDB3.c2" not in k}
    torch.save(state, tmp_path / "partial.pth")
    assert main(["eval", "-m", tmp_path / "partial.pth", "--arch", "imdn", "-s", "2", "-d", set5]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "partial.pth" in err and "2 missing keys" in err and "IMDB3.c2.weight" in err


def test_missing_lr_folder_or_image(set5, weights, tmp_path, capsys):
    data = tmp_path / "Set5x3only"
    shutil.copytree(set5 / "HR", data / "HR")
    shutil.copytree(set5 / "LR_bicubic" / "X3", data / "LR_bicubic" / "X3")
    assert main(["eval", "-m", weights, "-d", data]) == 1
    err = capsys.readouterr().err
    assert "no LR folder for x2" in err and "LR_bicubic/X2" in err and "x3" in err and "--make-lr" in err
    shutil.copytree(set5 / "LR_bicubic" / "X2", data / "LR_bicubic" / "X2")
    (data / "LR_bicubic" / "X2" / "womanx2.png").unlink()
    assert main(["eval", "-m", weights, "-d", data]) == 1
    err = capsys.readouterr().err
    assert "woman.png" in err and "womanx2.png" in err
