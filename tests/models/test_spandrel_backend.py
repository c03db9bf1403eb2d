"""The optional spandrel backend: a real third-party checkpoint (CRAFT x4) that srprep has no code for.

Reference values: the original CRAFT code shipped with the checkpoint (Amazingren/NTIRE2024_ESR@6404fa4,
models/team34_craft.py, built with the settings of its test_demo.py), run outside this repository on the
32x32 LR below, padded as CRAFT's own inference script pads (mirror, up to the next multiple of 16 above the
size; spandrel does the same), output cropped and rounded: PSNR(Y, border 4) 35.9124 dB, SSIM 0.9491, mean
pixel 57.6675 (MATLAB bicubic x4 of the same LR: 30.3555 dB). srprep through spandrel gives the same image
but for 3 values of 49,152, off by one level (float summation order).
"""
import sys
from pathlib import Path

import numpy as np
import pytest

from srprep.cli import main
from srprep.errors import SrprepError
from srprep.io.images import read_image, write_image
from srprep.models import load_pretrained
from srprep.ops.imresize import imresize_matlab
from srprep.ops.metrics import psnr, ssim

CRAFT = Path(__file__).resolve().parents[1] / "data/third_party/craft_x4_ntire2024_team34.pth"


def spandrel_or_skip():
    try:
        import spandrel
    except Exception as exc:  # not installed, or a torchvision that does not match torch
        pytest.skip(f"spandrel is not usable here ({type(exc).__name__}: {exc}); pip install 'srprep[models]'")
    return spandrel


@pytest.fixture(scope="module")
def bird_crop(samples):
    hr = read_image(samples / "set5/bird.png")[80:208, 80:208]
    return hr, imresize_matlab(hr, 0.25)


def test_without_spandrel_an_unknown_checkpoint_says_how_to_load_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "spandrel", None)  # import spandrel -> ImportError
    with pytest.raises(SrprepError, match=r"cannot tell the architecture .* pip install 'srprep\[models\]'"):
        load_pretrained(CRAFT)
    with pytest.raises(SrprepError, match=r"spandrel:CRAFT needs the optional spandrel backend"):
        load_pretrained(CRAFT, arch="spandrel:CRAFT")


def test_a_real_craft_checkpoint_loads_safely_and_upscales_like_the_original(bird_crop):
    spandrel_or_skip()
    from srprep.infer import upscale

    model, info = load_pretrained(CRAFT)
    assert (info.arch, info.scale, info.source_format) == ("spandrel:CRAFT", 4, "basicsr:params")
    hr, lr = bird_crop
    sr = upscale(model, lr, scale=4, output="uint8")
    assert sr.shape == (128, 128, 3)
    assert psnr(sr, hr, border=4) == pytest.approx(35.9124, abs=0.01)
    assert ssim(sr, hr, border=4) == pytest.approx(0.9491, abs=0.001)
    assert sr.astype(np.float64).mean() == pytest.approx(57.6675, abs=0.01)
    # asked for by name (how a step's workers reload it), and a wrong scale is refused
    again, info2 = load_pretrained(CRAFT, arch=info.arch, scale=4)
    assert info2 == info and np.array_equal(upscale(again, lr, scale=4, output="uint8"), sr)
    with pytest.raises(SrprepError, match="weights are for x4, but x2 was requested"):
        load_pretrained(CRAFT, scale=2)


def test_a_pickle_is_still_refused_before_spandrel_sees_it(tmp_path):
    import torch

    spandrel_or_skip()
    bad = tmp_path / "pickled.pth"
    torch.save({"params": torch.load(CRAFT, weights_only=True)["params"], "opt": Path("x")}, bad)
    with pytest.raises(SrprepError, match="pickles a Python object"):
        load_pretrained(bad)


@pytest.mark.slow
def test_upscale_eval_and_centroids_use_it(bird_crop, tmp_path, capsys):
    spandrel_or_skip()
    hr, lr = bird_crop
    write_image(tmp_path / "lr/bird.png", lr)
    assert main(["upscale", tmp_path / "lr", tmp_path / "sr", "-m", CRAFT, "-j", "1"]) == 0
    sr = read_image(tmp_path / "sr/bird.png")
    assert psnr(sr, hr, border=4) == pytest.approx(35.9124, abs=0.01)
    data = tmp_path / "data"
    write_image(data / "HR/bird.png", hr)
    write_image(data / "X4/birdx4.png", lr)
    capsys.readouterr()
    assert main(["eval", "-m", CRAFT, "-d", data]) == 0
    assert "35.91" in capsys.readouterr().out
    assert main(["centroids", data, "--model", CRAFT, "-j", "1"]) == 0
    assert np.array_equal(read_image(data / "sr_pretrained/bird.png"), sr)
