"""Reflash test-set recipes against the original ``add_degradations.py``, step by step; options, seeding.

``original`` below states what the original script does to one HR image, in its own idiom (PIL images,
channels-first float noise, Pillow's JPEG). Its Pillow bicubic is plain Pillow's (the project's PIL is
pillow-simd, whose bicubic differs in a few values): :func:`srprep.ops.pil_resize.pil_resize` is that
resampler, pinned to plain Pillow's output by its own tests.

Checked once against the real script (run outside this repository, with OpenCV 4.5.5, plain Pillow 13.0.0 and
9.0.1, numpy 1.26, ``np.random.seed(0)`` before its loop and its fields replayed in its draw order): all eight
sets 0 differing values on the bundled images and B100 cropped to a multiple of 4.
"""
import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from srprep.io.images import read_image
from srprep.ops.degrade.recipes import (ALIASES, RECIPE_NAMES, RECIPES, apply_reflash, noise_field, quantize_u8,
                                        set_name)
from srprep.ops.degrade.rng import item_rng
from srprep.ops.grid import modcrop
from srprep.ops.pil_resize import pil_resize

ORIGINAL_SETS = ("bicubic", "blur2_bicubic", "bicubic_noise20", "bicubic_jepg50", "blur2_bicubic_noise20",
                 "blur2_bicubic_jepg50", "bicubic_noise20_jepg50", "blur2_bicubic_noise20_jepg50")


def original(hr: np.ndarray, name: str, z_chw: np.ndarray | None, cache: dict | None = None) -> np.ndarray:
    """add_degradations.py for one set: ``z_chw`` is the standard normal field its np.random.normal draws.
    ``cache`` keeps the two downscaled images of one HR (with and without blur) for its other sets."""
    cache = {} if cache is None else cache
    blur = name.startswith("blur2")
    if blur not in cache:
        img = Image.fromarray(hr)
        if blur:  # blur_image_v2(img, 2)
            img = Image.fromarray(cv2.GaussianBlur(np.array(img), (21, 21), 2).astype(np.uint8))
        w, h = img.size  # donw_sample_bicubic
        cache[blur] = pil_resize(np.array(img), (int(h / 4), int(w / 4)), "bicubic")
    img = Image.fromarray(cache[blur])
    if "noise20" in name:  # add_noise(20, 20, img): synthesize_gaussian
        ar = np.array(img).transpose(2, 0, 1).astype(np.float32) / 255.
        std = 20 / 255.
        gauss = 0 + std * z_chw  # np.random.normal(loc=0, scale=std) is loc + scale * standard normal
        noisy = np.clip(ar + gauss, 0, 1).astype(np.float32)
        img = Image.fromarray(np.clip(noisy * 255, 0, 255).astype(np.uint8).transpose(1, 2, 0))
    if name.endswith("jepg50"):  # convertToJpeg(img, 50)
        with io.BytesIO() as f:
            img.save(f, format="JPEG", quality=50)
            f.seek(0)
            img = Image.open(f).convert("RGB")
    return np.array(img)


def assert_sets_equal_the_original(hr: np.ndarray, key: str) -> None:
    h, w = hr.shape[:2]
    z = np.random.default_rng(len(key)).standard_normal((3, h // 4, w // 4))  # any field, given to both
    cache: dict = {}
    for name in RECIPE_NAMES:
        ours, _ = apply_reflash(hr, name, seed=0, key=key, noise=z.transpose(1, 2, 0))
        ref = original(hr, name, z, cache)
        assert ours.shape == ref.shape, (key, name)
        assert np.count_nonzero(ours != ref) == 0, f"{key} {name}: {np.count_nonzero(ours != ref)} values differ"


def test_the_eight_sets_have_the_original_names():
    assert RECIPE_NAMES == ORIGINAL_SETS
    order = ["blur", "bicubic", "noise", "jpeg"]
    for name, ops in RECIPES.items():
        assert list(ops) == sorted(ops, key=order.index)
        assert ("blur" in ops) == name.startswith("blur2") and ("jpeg" in ops) == name.endswith("jepg50")
        assert ("noise" in ops) == ("noise20" in name)
    assert ALIASES == {"bicubic_jpeg50": "bicubic_jepg50", "blur2_bicubic_jpeg50": "blur2_bicubic_jepg50",
                       "bicubic_noise20_jpeg50": "bicubic_noise20_jepg50",
                       "blur2_bicubic_noise20_jpeg50": "blur2_bicubic_noise20_jepg50"}
    assert set_name("bicubic_jpeg50") == set_name("bicubic_jepg50") == "bicubic_jepg50"
    with pytest.raises(ValueError, match="unknown recipe"):
        set_name("bicubic_jpg50")


@pytest.mark.parametrize("folder", ["set5", "kodak"])
def test_every_set_equals_the_original_on_the_bundled_images(samples, folder):
    for path in sorted((samples / folder).glob("*.png")):
        assert_sets_equal_the_original(modcrop(read_image(path), 4), path.stem)


@pytest.mark.slow
def test_every_set_equals_the_original_on_b100(shared_data):
    paths = sorted((shared_data / "benchmark/B100/HR").glob("*.png"))
    assert len(paths) == 100
    for path in paths:
        assert_sets_equal_the_original(modcrop(read_image(path), 4), path.stem)


def test_each_step_is_the_originals(set5_butterfly):
    """The steps one at a time, so a failure names the step: 8-bit OpenCV blur (rounded, not truncated),
    Pillow bicubic, truncating float noise, Pillow JPEG."""
    hr = set5_butterfly
    blurred_u8 = cv2.GaussianBlur(hr, (21, 21), 2)
    lr, _ = apply_reflash(hr, "blur2_bicubic", seed=0)
    assert np.array_equal(lr, pil_resize(blurred_u8, (64, 64), "bicubic"))
    # a float blur truncated to 8 bits (what srprep did before) is another image
    ax = np.arange(21) - 10.0
    g = np.exp(-ax ** 2 / 8)
    g = np.outer(g, g) / np.outer(g, g).sum()
    float_blur = cv2.filter2D(hr.astype(np.float32), -1, g.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
    truncated = pil_resize(np.clip(float_blur, 0, 255).astype(np.uint8), (64, 64), "bicubic")
    assert np.mean(lr != truncated) > 0.1
    z = noise_field(3, "b", (64, 64))
    noisy, _ = apply_reflash(hr, "bicubic_noise20", seed=3, key="b")
    clean, _ = apply_reflash(hr, "bicubic", seed=3, key="b")
    assert np.array_equal(noisy, original(hr, "bicubic_noise20", z.transpose(2, 0, 1)))
    jpeg, _ = apply_reflash(hr, "bicubic_jepg50", seed=0)
    assert np.array_equal(jpeg, original(hr, "bicubic_jepg50", None))
    assert not np.array_equal(jpeg, clean)


def test_order_is_blur_bicubic_noise_jpeg(set5_butterfly):
    img = set5_butterfly
    lr, _ = apply_reflash(img, "blur2_bicubic_noise20_jepg50", seed=0, key="b")
    z = noise_field(0, "b", (64, 64)).transpose(2, 0, 1)
    assert np.array_equal(lr, original(img, "blur2_bicubic_noise20_jepg50", z))
    # noise after JPEG gives another image
    no_noise = original(img, "blur2_bicubic_jepg50", None)
    noise_after_jpeg = np.clip(no_noise + z.transpose(1, 2, 0) * 20, 0, 255).astype(np.uint8)
    assert np.abs(lr.astype(int) - noise_after_jpeg.astype(int)).mean() > 2


def test_shapes_records_and_the_jpeg_alias(set5_butterfly):
    for name in RECIPE_NAMES:
        lr, info = apply_reflash(set5_butterfly, name, seed=5, key="butterfly")
        assert lr.dtype == np.uint8 and lr.shape == (64, 64, 3)
        assert info["recipe"] == name and info["ops"] == list(RECIPES[name]) and info["lr_size"] == [64, 64]
        json.dumps(info)
    a, info = apply_reflash(set5_butterfly, "bicubic_noise20_jpeg50", seed=5, key="butterfly")
    b, _ = apply_reflash(set5_butterfly, "bicubic_noise20_jepg50", seed=5, key="butterfly")
    assert np.array_equal(a, b) and info["recipe"] == "bicubic_noise20_jepg50"


def test_seeding_per_image(set5_butterfly):
    a, _ = apply_reflash(set5_butterfly, "bicubic_noise20", seed=1, key="x")
    b, _ = apply_reflash(set5_butterfly, "bicubic_noise20", seed=1, key="x")
    c, _ = apply_reflash(set5_butterfly, "bicubic_noise20", seed=2, key="x")
    d, _ = apply_reflash(set5_butterfly, "bicubic_noise20", seed=1, key="y")
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, d)
    # the field is float64 standard normal, as the original's draws, from the image's own stream
    z = noise_field(1, "x", (64, 64))
    assert z.dtype == np.float64 and np.array_equal(z, item_rng(1, "x").standard_normal((64, 64, 3)))
    # recipes without noise draw nothing: the seed does not matter
    e, _ = apply_reflash(set5_butterfly, "blur2_bicubic_jepg50", seed=1, key="x")
    f, _ = apply_reflash(set5_butterfly, "blur2_bicubic_jepg50", seed=9, key="z")
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
    with pytest.raises(ValueError, match="noise field"):
        apply_reflash(set5_butterfly, "bicubic_noise20", seed=0, noise=np.zeros((3, 64, 64)))


def test_matlab_resize_option(set5_butterfly):
    from srprep.ops.imresize import imresize_matlab

    lr, info = apply_reflash(set5_butterfly, "bicubic", seed=0, resize="matlab", quantize="round")
    assert info["resize"] == "matlab" and lr.shape == (64, 64, 3)
    ref = imresize_matlab(set5_butterfly, 0.25, im2double=True)  # MATLAB: imresize(im2double(img), 1/4)
    assert np.abs(lr.astype(float) - np.clip(np.rint(np.asarray(ref) * 255), 0, 255)).max() <= 1
    # truncation after a MATLAB resize: the same float result, floored
    lr_t, _ = apply_reflash(set5_butterfly, "bicubic", seed=0, resize="matlab")
    assert np.array_equal(lr_t, np.clip(np.asarray(ref, np.float64) * 255, 0, 255).astype(np.float32).astype(np.uint8))


@pytest.mark.parametrize("resize,quantize", [("pil", "truncate"), ("matlab", "round"), ("matlab", "truncate")])
def test_sets_made_together_equal_each_set_made_alone(samples, resize, quantize):
    # apply_reflash_sets shares the blur, the two downscales and the noise between the sets; every set must
    # still be exactly what apply_reflash makes of it alone (which the tests above tie to the original).
    from srprep.ops.degrade.recipes import apply_reflash_sets

    hr = modcrop(read_image(samples / "kodak" / "kodim07.png"), 4)[:200, :160]
    together = apply_reflash_sets(hr, list(reversed(RECIPE_NAMES)), seed=5, key="k", resize=resize,
                                  quantize=quantize)
    assert list(together) == list(reversed(RECIPE_NAMES))
    for name in RECIPE_NAMES:
        alone, info = apply_reflash(hr, name, seed=5, key="k", resize=resize, quantize=quantize)
        np.testing.assert_array_equal(together[name][0], alone, err_msg=name)
        assert together[name][1] == info
