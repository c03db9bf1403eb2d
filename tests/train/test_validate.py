"""Validation: the metrics of `srprep eval` on a separate benchmark set (EDSR layout, HR not mod-cropped)."""
import numpy as np
import pytest

from srprep.errors import SrprepError
from srprep.evaluate import benchmark_pairs
from srprep.models import create_model
from srprep.ops.imresize import imresize_matlab
from srprep.ops.metrics import psnr
from srprep.train.config import load_config
from srprep.train.validate import Validator


def test_set5_benchmark_layout_and_bicubic_baseline(ref_data):
    set5 = ref_data / "benchmark" / "Set5"
    cfg = load_config(None, [f"val.root={set5}", "val.lr=LR_bicubic/X{scale}", "val.crops=2", "val.crop_size=64"])
    validator = Validator(cfg)
    assert [im.key for im in validator.images] == ["baby", "bird", "butterfly", "head", "woman"]
    expected = np.mean([psnr(imresize_matlab(lr, 2.0), hr, border=2)
                        for _, lr, hr in benchmark_pairs(set5 / "HR", set5 / "LR_bicubic" / "X2", 2)])
    assert validator.bicubic_psnr == pytest.approx(expected, abs=1e-9)
    assert 33.6 < validator.bicubic_psnr < 33.7  # MATLAB bicubic on Set5 x2, as published
    model = create_model("edsr", scale=2, num_blocks=1, num_feats=8)
    res = validator.run(model, device="cpu")
    assert len(res["images"]) == 5 and np.isfinite(res["psnr"]) and 0 < res["ssim"] <= 1
    assert res["sheet"].dtype == np.uint8 and res["sheet"].shape[0] > 2 * 64


def test_validation_needs_held_out_images(kodak_x2):
    with pytest.raises(SrprepError, match="val.keys"):
        Validator(load_config(None, [f"data.root={kodak_x2}"]))
    with pytest.raises(SrprepError, match=r"validation keys missing .*\['nope'\]"):
        Validator(load_config(None, [f"data.root={kodak_x2}", "val.keys=[nope]"]))
