"""Reflash test-set recipes: shapes, the blur -> bicubic -> noise -> JPEG order, options, seeding."""
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from srprep.ops.degrade.recipes import RECIPE_NAMES, RECIPES, apply_reflash, quantize_u8
from srprep.ops.degrade.rng import item_rng


def _gauss21():
    ax = np.arange(21) - 10.0
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * 2.0 ** 2))
    return (g / g.sum()).astype(np.float32)


def _jpeg50(rgb):
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 50])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _manual(img, ops, seed, key):
    """The original recipe written out step by step: cv2 blur, PIL bicubic, astype truncation, cv2 JPEG."""
    h, w = img.shape[:2]
    x = img
    if "blur" in ops:
        x = cv2.filter2D(img.astype(np.float32), -1, _gauss21(), borderType=cv2.BORDER_REFLECT_101)
        x = np.clip(x, 0, 255).astype(np.uint8)
    x = np.asarray(Image.fromarray(x).resize((w // 4, h // 4), Image.BICUBIC))
    if "noise" in ops:
        n = item_rng(seed, key).standard_normal(x.shape, dtype=np.float32) * np.float32(20)
        x = np.clip(x.astype(np.float32) + n, 0, 255).astype(np.uint8)
    if "jpeg" in ops:
        x = _jpeg50(x)
    return x


def test_the_eight_recipes():
    assert RECIPE_NAMES == ("bicubic", "blur2_bicubic", "bicubic_noise20", "bicubic_jpeg50", "blur2_bicubic_noise20",
                            "blur2_bicubic_jpeg50", "bicubic_noise20_jpeg50", "blur2_bicubic_noise20_jpeg50")
    order = ["blur", "bicubic", "noise", "jpeg"]
    for name, ops in RECIPES.items():
        assert list(ops) == sorted(ops, key=order.index)
        assert ("blur" in ops) == name.startswith("blur2") and ("jpeg" in ops) == name.endswith("jpeg50")


@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_shapes_dtypes_and_manual_composition(set5_butterfly, name):
    lr, info = apply_reflash(set5_butterfly, name, seed=5, key="butterfly")
    assert lr.dtype == np.uint8 and lr.shape == (64, 64, 3)
    assert info["recipe"] == name and info["ops"] == list(RECIPES[name]) and info["lr_size"] == [64, 64]
    json.dumps(info)
    assert np.array_equal(lr, _manual(set5_butterfly, RECIPES[name], 5, "butterfly"))


def test_order_is_blur_bicubic_noise_jpeg(set5_butterfly):
    img = set5_butterfly
    lr, _ = apply_reflash(img, "blur2_bicubic_noise20_jpeg50", seed=0, key="b")
    # the other orders give other images
    x = np.asarray(Image.fromarray(img).resize((64, 64), Image.BICUBIC)).astype(np.float32)
    blur_after = np.clip(cv2.filter2D(x, -1, _gauss21(), borderType=cv2.BORDER_REFLECT_101), 0, 255).astype(np.uint8)
    noise = item_rng(0, "b").standard_normal((64, 64, 3), dtype=np.float32) * 20
    swapped = _jpeg50(np.clip(blur_after + noise, 0, 255).astype(np.uint8))
    assert np.abs(lr.astype(int) - swapped.astype(int)).mean() > 2
    manual = _manual(img, ("blur", "bicubic"), 0, "b")
    noise_after_jpeg = np.clip(_jpeg50(manual).astype(np.float32) + noise, 0, 255).astype(np.uint8)
    assert np.abs(lr.astype(int) - noise_after_jpeg.astype(int)).mean() > 2


def test_seeding_per_image(set5_butterfly):
    a, _ = apply_reflash(set5_butterfly, "bicubic_noise20", seed=1, key="x")
    b, _ = apply_reflash(set5_butterfly, "bicubic_noise20", seed=1, key="x")
    c, _ = apply_reflash(set5_butterfly, "bicubic_noise20", seed=2, key="x")
    d, _ = apply_reflash(set5_butterfly, "bicubic_noise20", seed=1, key="y")
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, d)
    # recipes without noise draw nothing: the seed does not matter
    e, _ = apply_reflash(set5_butterfly, "blur2_bicubic_jpeg50", seed=1, key="x")
    f, _ = apply_reflash(set5_butterfly, "blur2_bicubic_jpeg50", seed=9, key="z")
    assert np.array_equal(e, f)


def test_noise_level_and_quantize_option(set5_butterfly):
    clean, _ = apply_reflash(set5_butterfly, "bicubic", seed=0)
    t, info = apply_reflash(set5_butterfly, "bicubic_noise20", seed=0)
    r, _ = apply_reflash(set5_butterfly, "bicubic_noise20", seed=0, quantize="round")
    assert info["quantize"] == "truncate"
    # truncation loses half a level on average, rounding does not
    assert (r.astype(float) - t.astype(float)).mean() == pytest.approx(0.5, abs=0.05)
    unclipped = (clean > 60) & (clean < 195)
    assert (r.astype(float) - clean)[unclipped].std() == pytest.approx(20, rel=0.05)
    assert np.array_equal(quantize_u8(np.array([-1.0, 0.7, 254.5, 300.0]), "truncate"), [0, 0, 254, 255])
    assert np.array_equal(quantize_u8(np.array([0.7, 1.5, 2.5]), "round"), [1, 2, 2])


def test_bad_arguments(set5_butterfly):
    with pytest.raises(ValueError, match="unknown recipe"):
        apply_reflash(set5_butterfly, "bicubic_noise15", seed=0)
    with pytest.raises(ValueError):
        apply_reflash(set5_butterfly, "bicubic", seed=0, resize="cv2")
    with pytest.raises(ValueError):
        apply_reflash(set5_butterfly, "bicubic", seed=0, quantize="floor")
    with pytest.raises(ValueError):
        apply_reflash(set5_butterfly.astype(np.float32), "bicubic", seed=0)


def test_matlab_resize_option(set5_butterfly):
    from srprep.ops.imresize import imresize_matlab

    lr, info = apply_reflash(set5_butterfly, "bicubic", seed=0, resize="matlab", quantize="round")
    assert info["resize"] == "matlab" and lr.shape == (64, 64, 3)
    ref = imresize_matlab(set5_butterfly, 0.25, im2double=True)  # MATLAB: imresize(im2double(img), 1/4)
    assert np.abs(lr.astype(float) - np.clip(np.rint(np.asarray(ref) * 255), 0, 255)).max() <= 1
    # truncation after a MATLAB resize: the same float result, floored
    lr_t, _ = apply_reflash(set5_butterfly, "bicubic", seed=0, resize="matlab")
    assert np.array_equal(lr_t, np.clip(np.asarray(ref, np.float64) * 255, 0, 255).astype(np.float32).astype(np.uint8))
