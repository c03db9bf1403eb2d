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
