"""The real IMDN x2 checkpoint on Set5 x2 reproduces the published / independently measured numbers."""
import pytest
import torch

from srprep.evaluate import benchmark_pairs, evaluate_pairs, summarize
from srprep.models import load_pretrained


def test_imdn_x2_set5_psnr_ssim(ref_data):
    torch.set_num_threads(2)
    model, info = load_pretrained(ref_data / "weights" / "IMDN_x2.pth")
    set5 = ref_data / "benchmark" / "Set5"
    results = evaluate_pairs(model, benchmark_pairs(set5 / "HR", set5 / "LR_bicubic" / "X2", 2), scale=2)
    assert [r["name"] for r in results] == ["baby", "bird", "butterfly", "head", "woman"]
    mean = summarize(results)
    # Independent re-implementation: 37.996 dB / 0.9605 (Y channel, border = scale, uint8 output).
    assert mean["psnr"] == pytest.approx(38.00, abs=0.02)
    assert mean["ssim"] == pytest.approx(0.9605, abs=0.0001)


@pytest.mark.slow
def test_imdn_x2_aim_crop_ensemble_on_baby(ref_data):
    """AIM 2020's crop ensemble with its lists (--chop-size 600 300 --shave-size 100 100) on Set5 baby.

    Reference: AIM2020-Real-Super-Resolution's own src/model/__init__.py (Model.forward, chop on, n_GPUs 1),
    run outside this repository on the same network and LR, gave 38.9148 dB, and its float output was equal
    to srprep's to the last bit (max |difference| 0.0); the whole image gives 38.9089 dB.
    """
    from srprep.infer import upscale
    from srprep.io.images import read_image
    from srprep.ops.metrics import psnr

    torch.set_num_threads(1)
    model, _ = load_pretrained(ref_data / "weights" / "IMDN_x2.pth")
    set5 = ref_data / "benchmark" / "Set5"
    lr = read_image(set5 / "LR_bicubic" / "X2" / "babyx2.png")
    hr = read_image(set5 / "HR" / "baby.png")[:lr.shape[0] * 2, :lr.shape[1] * 2]
    sr = upscale(model, lr, scale=2, crop_ensemble=[(600, 100), (300, 100)], output="uint8")
    assert psnr(sr, hr, border=2) == pytest.approx(38.9148, abs=5e-5)
