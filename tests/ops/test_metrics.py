"""PSNR / SSIM against independent re-derivations of the SR literature's formulas (BasicSR / MATLAB)."""
import math

import numpy as np
import pytest
from scipy import signal

from srprep.errors import SrprepError
from srprep.ops.metrics import psnr, ssim


def _ref_y(img):
    # BasicSR order: BGR dot (24.966, 128.553, 65.481), / 255, + 16 (float64 here)
    bgr = img[..., ::-1].astype(np.float64)
    return bgr @ np.array([24.966, 128.553, 65.481]) / 255.0 + 16.0


def _ref_psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 20 * math.log10(255.0 / math.sqrt(mse))


def _ref_ssim_plane(a, b):
    # MATLAB ssim_index: fspecial('gaussian', 11, 1.5), filter2(..., 'valid'); here via scipy convolve2d.
    ax = np.arange(11) - 5.0
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * 1.5 ** 2))
    w = g / g.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def f(x):
        return signal.convolve2d(x, w[::-1, ::-1], mode="valid")

    mu1, mu2 = f(a), f(b)
    s11, s22, s12 = f(a * a) - mu1 ** 2, f(b * b) - mu2 ** 2, f(a * b) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s11 + s22 + c2))
    return m.mean()


@pytest.fixture
def pair(rng):
    hr = rng.integers(0, 256, size=(40, 33, 3)).astype(np.uint8)
    noise = rng.integers(-12, 13, size=hr.shape)
    sr = np.clip(hr.astype(int) + noise, 0, 255).astype(np.uint8)
    return sr, hr


@pytest.mark.parametrize("border", [0, 2, 4])
def test_psnr_matches_reference(pair, border):
    sr, hr = pair
    c = slice(border, -border or None)
    assert psnr(sr, hr, border=border) == pytest.approx(_ref_psnr(_ref_y(sr[c, c]), _ref_y(hr[c, c])), abs=1e-6)
    assert psnr(sr, hr, border=border, y_only=False) == pytest.approx(_ref_psnr(sr[c, c], hr[c, c]), abs=1e-6)


@pytest.mark.parametrize("border", [0, 3])
def test_ssim_matches_reference(pair, border):
    sr, hr = pair
    c = slice(border, -border or None)
    ref_y = _ref_ssim_plane(_ref_y(sr[c, c]), _ref_y(hr[c, c]))
    assert ssim(sr, hr, border=border) == pytest.approx(ref_y, abs=1e-6)
    ref_rgb = np.mean([_ref_ssim_plane(sr[c, c, k].astype(float), hr[c, c, k].astype(float)) for k in range(3)])
    assert ssim(sr, hr, border=border, y_only=False) == pytest.approx(ref_rgb, abs=1e-6)


def test_ssim_on_smooth_image_matches_reference(rng):
    # smooth content (SSIM well away from 0) to exercise the statistics, gray input
    yy, xx = np.mgrid[0:48, 0:64]
    hr = (127 + 100 * np.sin(xx / 7.0) * np.cos(yy / 5.0)).astype(np.uint8)
    sr = np.clip(hr + rng.normal(0, 3, hr.shape), 0, 255).round().astype(np.uint8)
    ref = _ref_ssim_plane(sr.astype(float), hr.astype(float))
    assert ssim(sr, hr) == pytest.approx(ref, abs=1e-6)
    assert 0.8 < ref < 1.0


def test_known_values():
    hr = np.full((20, 20, 3), 100, np.uint8)
    sr = hr + np.uint8(1)
    assert psnr(sr, hr, y_only=False) == pytest.approx(10 * math.log10(255 ** 2), abs=1e-12)
    assert psnr(hr, hr) == math.inf
    assert ssim(hr, hr) == pytest.approx(1.0, abs=1e-12)


def test_input_checks(pair):
    sr, hr = pair
    with pytest.raises(SrprepError, match="uint8"):
        psnr(sr.astype(np.float32), hr)
    with pytest.raises(SrprepError, match="shapes differ"):
        ssim(sr[:-1], hr)
    with pytest.raises(SrprepError, match="11x11"):
        ssim(sr[:14, :14], hr[:14, :14], border=2)


@pytest.mark.parametrize("border", [0, 2])
def test_float_planes_are_measured_unrounded(rng, border):
    """psnr_planes / ssim_planes take float planes (e.g. a network's Y before rounding) on the 0..255 scale."""
    from srprep.ops.metrics import psnr_planes, ssim_planes

    a = rng.uniform(16, 235, size=(30, 27))
    b = np.clip(a + rng.normal(0, 3, size=a.shape), 0, 255)
    c = slice(border, -border or None)
    assert psnr_planes(a, b, border=border) == pytest.approx(_ref_psnr(a[c, c], b[c, c]), abs=1e-9)
    assert ssim_planes(a, b, border=border) == pytest.approx(_ref_ssim_plane(a[c, c], b[c, c]), abs=1e-9)
    assert psnr_planes(a, a) == math.inf
    with pytest.raises(SrprepError, match="planes of equal shape"):
        psnr_planes(a, b[:-1])
