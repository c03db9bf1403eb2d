"""srprep.evaluate: pair evaluation and the EDSR benchmark layout."""
import numpy as np
import pytest
from PIL import Image
from torch import nn
from torch.nn import functional as F

from srprep.errors import SrprepError
from srprep.evaluate import benchmark_pairs, evaluate_pairs, summarize
from srprep.ops.metrics import psnr, ssim


class Nearest(nn.Module):
    scale = 2

    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest")


def test_evaluate_pairs_scores_quantised_output(rng):
    lr = rng.integers(0, 256, size=(20, 24, 3)).astype(np.uint8)
    hr = np.clip(np.repeat(np.repeat(lr, 2, 0), 2, 1).astype(int) + rng.integers(-3, 4, (40, 48, 3)), 0, 255)
    hr = hr.astype(np.uint8)
    res = evaluate_pairs(Nearest(), [("a", lr, hr)], scale=2)
    sr = np.repeat(np.repeat(lr, 2, 0), 2, 1)
    assert res == [{"name": "a", "psnr": psnr(sr, hr, border=2), "ssim": ssim(sr, hr, border=2)}]
    rgb = evaluate_pairs(Nearest(), [("a", lr, hr)], scale=2, y_only=False, border=0)
    assert rgb[0]["psnr"] == pytest.approx(psnr(sr, hr, y_only=False))
    assert summarize(res)["count"] == 1 and summarize([])["count"] == 0
    with pytest.raises(SrprepError, match="crop the HR"):
        evaluate_pairs(Nearest(), [("b", lr, hr[:-1])], scale=2)


def test_benchmark_pairs_crop_hr(tmp_path, rng):
    (tmp_path / "HR").mkdir()
    (tmp_path / "LR").mkdir()
    hr = rng.integers(0, 256, size=(31, 26, 3)).astype(np.uint8)
    Image.fromarray(hr).save(tmp_path / "HR" / "img.png")
    Image.fromarray(hr[:10:3, :8:3]).save(tmp_path / "LR" / "imgx3.png")  # 4x3 LR -> HR cropped to 12x9
    (name, lr, hr_c), = list(benchmark_pairs(tmp_path / "HR", tmp_path / "LR", 3))
    assert name == "img" and lr.shape == (4, 3, 3)
    np.testing.assert_array_equal(hr_c, hr[:12, :9])
    Image.fromarray(hr).save(tmp_path / "HR" / "other.png")
    with pytest.raises(SrprepError, match="otherx3.png"):
        list(benchmark_pairs(tmp_path / "HR", tmp_path / "LR", 3))


def test_benchmark_pairs_set5_sizes(ref_data):
    set5 = ref_data / "benchmark" / "Set5"
    pairs = {n: (lr.shape, hr.shape) for n, lr, hr in benchmark_pairs(set5 / "HR", set5 / "LR_bicubic" / "X3", 3)}
    assert pairs["baby"] == ((170, 170, 3), (510, 510, 3))
    assert sorted(pairs) == ["baby", "bird", "butterfly", "head", "woman"]
