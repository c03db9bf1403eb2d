"""srprep eval --protocol: real checkpoints reproduce their published Set5 numbers the way their authors measured
them; every image gets PSNR/SSIM on Y and RGB; grey images are read and named as the reference scripts do."""
import csv
import json

import numpy as np
import pytest
import torch
from srprep.cli import main
from srprep.evaluate import pil_lr
from srprep.io.images import read_image, write_image
from srprep.ops.metrics import psnr, ssim
from srprep.stages.eval import make_lr

from ..plain_pillow import plain_pillow_resize

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def set5(ref_data):
    return ref_data / "benchmark" / "Set5"


def _eval(tmp_path, *args):
    out = tmp_path / "report.json"
    assert main(["-q", "eval", *map(str, args), "--json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("scale, published", [(2, 37.50), (3, 34.01), (4, 31.84)])
def test_carn_m_set5_as_its_authors_measured(ref_data, set5, tmp_path, scale, published):
    """One multi-scale file; CARN-pytorch's sample.py saves the SR truncated to 8 bits (x255, clamp, .byte()),
    and the numbers are measured on those images (Y, border = scale, the benchmark LR)."""
    report = _eval(tmp_path, "-m", ref_data / "weights/CARN/carn_m.pth", "--scale", scale, "-d", set5,
                   "--protocol", "carn")
    assert report["model"]["arch"] == "carn" and report["model"]["kwargs"]["mobile"]
    mean = report["datasets"][0]["mean"]
    assert mean["psnr_y"] == pytest.approx(published, abs=0.01)
    assert mean["count"] == 5 and mean["psnr"] == mean["psnr_y"]


@pytest.mark.parametrize("scale, published", [(2, 37.12), (3, 33.22), (4, 30.50)])
def test_fsrcnn_set5_with_its_authors_protocol(ref_data, set5, tmp_path, scale, published):
    """FSRCNN-pytorch: LR by Pillow's bicubic from the HR resized to a multiple of the scale, the network's Y
    unrounded and clamped, their Y formula, PSNR over the whole image. Their Pillow bicubic is plain Pillow's,
    bit for bit (srprep.ops.pil_resize), not the installed pillow-simd's."""
    report = _eval(tmp_path, "-m", ref_data / f"weights/FSRCNN/fsrcnn_x{scale}.pth", "-s", scale, "-d", set5,
                   "--protocol", "fsrcnn")
    data = report["datasets"][0]
    assert data["lr_made"] and data["lr_convention"] == "pil"
    assert data["mean"]["psnr_y"] == pytest.approx(published, abs=0.01)


def test_pil_lr_resizes_the_hr_to_a_multiple_of_the_scale(set5):
    """Their test.py: hr = image.resize((W // s * s, H // s * s), BICUBIC) -- a resampling, not a crop, when W or
    H is not a multiple -- then lr = hr.resize((W' // s, H' // s), BICUBIC); with real plain Pillow here."""
    img = read_image(set5 / "HR" / "woman.png")  # 344 x 228
    lr, hr = pil_lr(img, 3)
    _, ref = plain_pillow_resize({"hr": (img, (342, 228), "bicubic")})
    np.testing.assert_array_equal(hr, ref["hr"])
    _, ref = plain_pillow_resize({"lr": (ref["hr"], (114, 76), "bicubic")})
    np.testing.assert_array_equal(lr, ref["lr"])
    lr, hr = pil_lr(img, 4)  # already a multiple: the HR is used as it is
    assert hr is img and lr.shape == (86, 57, 3)


def test_csv_has_y_and_rgb_scores_of_every_image(ref_data, set5, tmp_path):
    """The edsr protocol, measured again here from the saved SR images with the metrics' own functions."""
    csv_path, sr_dir = tmp_path / "scores.csv", tmp_path / "sr"
    weights = ref_data / "weights/FSRCNN/fsrcnn_x2.pth"
    assert main(["-q", "eval", "-m", str(weights), "-s", "2", "-d", str(set5), "--csv", str(csv_path),
                 "--save-sr", str(sr_dir), "--rgb"]) == 0
    rows = list(csv.DictReader(open(csv_path)))
    assert list(rows[0]) == ["dataset", "scale", "image", "psnr", "ssim", "psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb",
                             "colour"]
    assert [r["image"] for r in rows] == ["baby", "bird", "butterfly", "head", "woman", "(mean)"]
    for r in rows[:-1]:
        sr = read_image(sr_dir / "Set5" / f"{r['image']}.png")
        hr = read_image(set5 / "HR" / f"{r['image']}.png")[:sr.shape[0], :sr.shape[1]]
        assert float(r["psnr_y"]) == pytest.approx(psnr(sr, hr, border=2), abs=1e-9)
        assert float(r["ssim_y"]) == pytest.approx(ssim(sr, hr, border=2), abs=1e-9)
        assert float(r["psnr_rgb"]) == pytest.approx(psnr(sr, hr, border=2, y_only=False), abs=1e-9)
        assert float(r["ssim_rgb"]) == pytest.approx(ssim(sr, hr, border=2, y_only=False), abs=1e-9)
        assert r["psnr"] == r["psnr_rgb"] and r["colour"] == "rgb"  # --rgb: RGB is the headline
    assert float(rows[-1]["psnr_y"]) == pytest.approx(np.mean([float(r["psnr_y"]) for r in rows[:-1]]))


def test_grey_and_equal_channel_images_are_read_as_rgb_and_named(set5, weights, tmp_path, capsys):
    """A 1-channel benchmark PNG (Set14's bridge is one) is read as R=G=B, as EDSR-PyTorch and BasicSR read it:
    the network sees three equal channels and Y of the grey HR is 16 + 219/255 v. The table says so."""
    data = tmp_path / "Grey"
    hr = read_image(set5 / "HR" / "head.png")[:120, :100]
    grey = hr[..., 1]
    write_image(data / "HR" / "grey.png", grey)  # 1-channel file
    write_image(data / "HR" / "flat.png", np.repeat(hr[..., :1], 3, axis=2))  # RGB file with R=G=B
    write_image(data / "HR" / "colour.png", hr)
    for name in ("grey", "flat", "colour"):
        lr, _ = make_lr(read_image(data / "HR" / f"{name}.png"), 2)
        write_image(data / "LR_bicubic" / "X2" / f"{name}x2.png", lr)
    csv_path, sr_dir = tmp_path / "s.csv", tmp_path / "sr"
    assert main(["eval", "-m", str(weights), "-d", str(data), "--csv", str(csv_path), "--save-sr", str(sr_dir)]) == 0
    out = capsys.readouterr().out
    assert "note: grey images measured as R=G=B" in out and "grey (grey)" in out and "flat (R=G=B)" in out
    rows = {r["image"]: r for r in csv.DictReader(open(csv_path))}
    assert (rows["grey"]["colour"], rows["flat"]["colour"], rows["colour"]["colour"]) == ("grey", "R=G=B", "rgb")
    sr = read_image(sr_dir / "Grey" / "grey.png")
    y_sr = 16 + (65.481 * sr[..., 0] + 128.553 * sr[..., 1] + 24.966 * sr[..., 2]) / 255
    y_hr = 16 + 219 / 255 * grey.astype(np.float64)
    mse = np.mean((y_sr - y_hr)[2:-2, 2:-2] ** 2)
    assert float(rows["grey"]["psnr_y"]) == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-9)
