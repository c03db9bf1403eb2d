"""pil_resize against real plain Pillow (run in a subprocess beside pillow-simd, see tests/plain_pillow.py).

The reference is Pillow itself: every bundled image at several sizes, random images and edge cases, all
three filters. The pass order of older Pillow releases (horizontal first) is checked against Pillow run
one axis at a time, which has no order to choose.
"""
from __future__ import annotations

import numpy as np
import pytest

from srprep.io.images import read_image
from srprep.ops.pil_resize import CURRENT_PILLOW, PIL_FILTERS, pil_axis_plan, pil_resize
from tests.plain_pillow import plain_pillow_resize


def _sizes(h: int, w: int) -> list[tuple[int, int]]:
    return [
        (h // 2, w // 2), (h // 3, w // 3), (h // 4, w // 4),  # benchmark downscales of an uncropped HR
        (2 * (h // 3), 2 * (w // 3)),  # srprep enlarge: an x3 HR to an x2 HR
        (2 * h, 2 * w), (3 * h + 1, 2 * w - 1),  # enlarging, also unevenly
        (h // 5 + 1, w), (h, w // 7 + 2),  # one axis only
        (h - 1, w + 1),  # barely changed
    ]


def _check(jobs: dict, version=None) -> tuple:
    pillow, ref = plain_pillow_resize(jobs)
    bad = []
    for key, (img, size, flt) in jobs.items():
        mine = pil_resize(img, size, "bicubic" if flt == "default" else flt, pillow=version or pillow)
        assert mine.shape == ref[key].shape, key
        if not np.array_equal(mine, ref[key]):
            bad.append(f"{key}: {np.count_nonzero(mine != ref[key])} values differ")
    assert not bad, bad
    return pillow


def test_bundled_images_bicubic_equal_plain_pillow(samples):
    """Every bundled image, at every size of _sizes, as Image.resize(size, BICUBIC) makes it."""
    jobs = {}
    for path in sorted(samples.glob("*/*.png")):
        img = read_image(path)
        for size in _sizes(*img.shape[:2]):
            jobs[f"{path.parent.name}/{path.stem}@{size[0]}x{size[1]}"] = (img, size, "bicubic")
    assert len(jobs) == 13 * 9
    _check(jobs)


def test_default_filter_is_bicubic(samples):
    """Image.resize(size) without a filter: the default (BICUBIC since Pillow 7.0)."""
    img = read_image(samples / "set5" / "butterfly.png")
    _check({"default": (img, (170, 170), "default")})


@pytest.mark.parametrize("flt", ["bilinear", "lanczos"])
def test_bundled_images_other_filters(samples, flt):
    jobs = {}
    for path in sorted(samples.glob("set5/*.png")) + [samples / "kodak" / "kodim03.png"]:
        img = read_image(path)
        for size in _sizes(*img.shape[:2])[::2]:
            jobs[f"{path.stem}@{size}"] = (img, size, flt)
    _check(jobs)


def test_random_images_and_edge_cases():
    rng = np.random.default_rng(17)
    jobs = {}
    for i in range(60):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        oh, ow = (int(v) for v in rng.integers(1, 120, 2))
        shape = (h, w) if i % 4 == 3 else (h, w, 3)  # some L images
        jobs[f"random{i}"] = (rng.integers(0, 256, shape, dtype=np.uint8), (oh, ow), PIL_FILTERS[i % 3])
    # saturated checkerboards: the cubic and Lanczos overshoot must clip in both passes
    board = ((np.indices((24, 20)).sum(axis=0) % 2) * 255).astype(np.uint8)
    rgb_board = np.stack([board, 255 - board, board], axis=-1)
    for flt in PIL_FILTERS:
        jobs[f"board-up-{flt}"] = (rgb_board, (61, 47), flt)
        jobs[f"board-down-{flt}"] = (rgb_board, (7, 9), flt)
        jobs[f"flat-{flt}"] = (np.full((9, 11, 3), 200, np.uint8), (4, 23), flt)
    jobs["to-1x1"] = (rng.integers(0, 256, (37, 29, 3), dtype=np.uint8), (1, 1), "bicubic")
    jobs["from-1x1"] = (rng.integers(0, 256, (1, 1, 3), dtype=np.uint8), (5, 3), "bicubic")
    jobs["row"] = (rng.integers(0, 256, (1, 64, 3), dtype=np.uint8), (1, 21), "bicubic")
    jobs["column"] = (rng.integers(0, 256, (64, 1), dtype=np.uint8), (30, 2), "lanczos")
    jobs["same-size"] = (rng.integers(0, 256, (8, 6, 3), dtype=np.uint8), (8, 6), "bicubic")
    # tall images: Pillow 13 runs the vertical pass first when the height loses > 2x the width's pixels
    jobs["tall"] = (rng.integers(0, 256, (90, 30, 3), dtype=np.uint8), (45, 15), "bicubic")
    jobs["tall-up-width"] = (rng.integers(0, 256, (70, 20, 3), dtype=np.uint8), (20, 40), "bicubic")
    jobs["very-tall"] = (rng.integers(0, 256, (505, 5), dtype=np.uint8), (101, 3), "bicubic")
    _check(jobs)


def test_older_pillow_pass_order():
    """Pillow 4.3-12.1: width first; 12.2-12.3: height first only for images > 100x taller than wide.
    Stated with Pillow run one axis at a time (a single-axis resize has no pass order)."""
    rng = np.random.default_rng(3)
    tall = rng.integers(0, 256, (90, 30, 3), dtype=np.uint8)  # height loses 45, width 10: 13.0 goes vertical
    very_tall = rng.integers(0, 256, (505, 4, 3), dtype=np.uint8)
    _, ref = plain_pillow_resize({
        "tall-w": (tall, (90, 20), "bicubic"), "very-tall-h": (very_tall, (101, 4), "bicubic"),
        "very-tall-w": (very_tall, (505, 3), "bicubic"), "tall-direct": (tall, (45, 20), "bicubic")})
    _, ref2 = plain_pillow_resize({"tall-w-then-h": (ref["tall-w"], (45, 20), "bicubic"),
                                   "very-tall-h-then-w": (ref["very-tall-h"], (101, 3), "bicubic"),
                                   "very-tall-w-then-h": (ref["very-tall-w"], (101, 3), "bicubic")})
    width_first = ref2["tall-w-then-h"]
    assert np.array_equal(pil_resize(tall, (45, 20), pillow=(7, 1, 2)), width_first)
    assert np.array_equal(pil_resize(tall, (45, 20), pillow=(12, 3)), width_first)
    assert not np.array_equal(width_first, ref["tall-direct"])  # so the order matters for this image
    assert np.array_equal(pil_resize(very_tall, (101, 3), pillow=(12, 2)), ref2["very-tall-h-then-w"])
    assert np.array_equal(pil_resize(very_tall, (101, 3), pillow=(7, 1, 2)), ref2["very-tall-w-then-h"])


def test_axis_plan_matches_pillows_rules():
    """Taps and fixed-point weights of a 2x bicubic shrink, stated from Pillow's formulas."""
    p = pil_axis_plan(16, 8)
    # centre c = (i + 0.5) * 2, support 4: taps trunc(c - 3.5) .. trunc(c + 4.5) - 1, clipped to 0..15
    assert p.starts.tolist() == [0, 0, 1, 3, 5, 7, 9, 11]
    assert (p.starts + p.counts).tolist() == [5, 7, 9, 11, 13, 15, 16, 16]
    assert p.coeffs.dtype == np.int32
    sums = p.coeffs.sum(axis=1)
    assert np.all(np.abs(sums - (1 << 22)) <= p.counts)  # each weight rounded on its own
    # an interior output: Keys' cubic at distances 3.5, 2.5, ... from the centre, / 2, normalised
    x = (np.arange(8) - 3.5) / 2
    ax = np.abs(x)
    w = np.where(ax < 1, 1.5 * ax**3 - 2.5 * ax**2 + 1, -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2)
    assert np.array_equal(p.coeffs[4, :8], np.round(w / w.sum() * (1 << 22)).astype(np.int32))
    assert p.counts.max() <= p.coeffs.shape[1]


def test_checks():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        pil_resize(img.astype(np.float32), (4, 4))
    with pytest.raises(ValueError, match="RGB"):
        pil_resize(np.zeros((8, 8, 4), np.uint8), (4, 4))
    with pytest.raises(ValueError, match="positive"):
        pil_resize(img, (0, 4))
    with pytest.raises(ValueError, match="filter"):
        pil_resize(img, (4, 4), "hamming")
    with pytest.raises(ValueError, match="4.3"):
        pil_resize(img, (4, 4), pillow=(4, 2))
    same = pil_resize(img, (8, 8))
    assert same is not img and np.array_equal(same, img)
    assert CURRENT_PILLOW >= (13, 0)
