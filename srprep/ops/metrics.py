"""PSNR and SSIM the way the single-image SR literature reports them.

Conventions (those of BasicSR's ``calculate_psnr`` / ``calculate_ssim`` and of MATLAB's ``ssim_index`` used
by EDSR, RCAN and most papers):

* both images are uint8 RGB (H, W, 3) or gray (H, W); the SR output must already be quantised to 8 bits,
  because the rounding is part of what the published numbers measure;
* ``border`` pixels are cropped from every side first (usually ``border = scale``);
* ``y_only=True`` (default) compares the BT.601 luma ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``
  (float64, not rounded; see :func:`srprep.ops.color.rgb_to_y`); otherwise all RGB channels are used;
* all arithmetic is float64 with peak value 255.

SSIM: 11x11 Gaussian window with sigma 1.5 (normalised to sum 1), C1 = (0.01*255)^2, C2 = (0.03*255)^2,
local statistics only where the window fits inside the image ('valid' filtering, so the map is 10 pixels
smaller in each dimension), mean of the SSIM map; for RGB the mean over the three channels.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from srprep.errors import SrprepError
from srprep.ops.color import rgb_to_y

_PEAK = 255.0
_C1 = (0.01 * _PEAK) ** 2
_C2 = (0.03 * _PEAK) ** 2
_WIN = 11
_SIGMA = 1.5


def _prepare(sr: np.ndarray, hr: np.ndarray, border: int, y_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validate, crop ``border`` and convert both images to float64 (H, W, C) (Y only: C = 1)."""
    sr, hr = np.asarray(sr), np.asarray(hr)
    if sr.dtype != np.uint8 or hr.dtype != np.uint8:
        raise SrprepError(
            f"metrics expect uint8 images (quantise the SR output first), got {sr.dtype} and {hr.dtype}"
        )
    if sr.shape != hr.shape:
        raise SrprepError(f"image shapes differ: SR {sr.shape} vs HR {hr.shape}")
    if sr.ndim not in (2, 3) or (sr.ndim == 3 and sr.shape[2] not in (1, 3)):
        raise SrprepError(f"expected (H, W), (H, W, 1) or (H, W, 3) images, got {sr.shape}")
    if border < 0:
        raise SrprepError(f"border must be >= 0, got {border}")
    h, w = sr.shape[:2]
    if h <= 2 * border or w <= 2 * border:
        raise SrprepError(f"image {h}x{w} is too small for a {border}-pixel border crop")
    if border:
        sr = sr[border:-border, border:-border]
        hr = hr[border:-border, border:-border]
    if sr.ndim == 2:
        sr, hr = sr[..., None], hr[..., None]
    if y_only and sr.shape[2] == 3:
        return rgb_to_y(sr)[..., None], rgb_to_y(hr)[..., None]
    return sr.astype(np.float64), hr.astype(np.float64)


def psnr(sr: np.ndarray, hr: np.ndarray, *, border: int = 0, y_only: bool = True) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(255^2 / MSE)`` (see module docstring for conventions).

    Args:
        sr, hr: uint8 (H, W, 3) RGB or (H, W) gray images of equal shape.
        border: pixels cropped from each side before comparing.
        y_only: compare the float64 BT.601 Y channel (RGB input) instead of all channels.
    Returns:
        PSNR in dB (``inf`` for identical images).
    """
    a, b = _prepare(sr, hr, border, y_only)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(_PEAK * _PEAK / mse)


def _gaussian_window() -> np.ndarray:
    g = cv2.getGaussianKernel(_WIN, _SIGMA).astype(np.float64)  # (11, 1), sums to 1
    return g @ g.T


def _ssim_channel(a: np.ndarray, b: np.ndarray, window: np.ndarray) -> float:
    """Mean SSIM of two float64 (H, W) planes with 'valid' Gaussian filtering."""
    r = _WIN // 2

    def filt(x: np.ndarray) -> np.ndarray:
        # filter2D pads the border, then we keep only positions where the whole window is inside ('valid').
        return cv2.filter2D(x, -1, window, borderType=cv2.BORDER_REFLECT_101)[r:-r, r:-r]

    mu_a, mu_b = filt(a), filt(b)
    mu_a2, mu_b2, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = filt(a * a) - mu_a2
    var_b = filt(b * b) - mu_b2
    cov = filt(a * b) - mu_ab
    ssim_map = ((2 * mu_ab + _C1) * (2 * cov + _C2)) / ((mu_a2 + mu_b2 + _C1) * (var_a + var_b + _C2))
    return float(ssim_map.mean())


def ssim(sr: np.ndarray, hr: np.ndarray, *, border: int = 0, y_only: bool = True) -> float:
    """Structural similarity (Wang et al., 2004) as in MATLAB ``ssim_index`` / BasicSR ``calculate_ssim``.

    Args:
        sr, hr: uint8 (H, W, 3) RGB or (H, W) gray images of equal shape; after the border crop each side
            must be at least 11 pixels.
        border: pixels cropped from each side before comparing.
        y_only: compare the float64 BT.601 Y channel (RGB input); otherwise the mean SSIM over channels.
    Returns:
        SSIM in [-1, 1] (1 for identical images).
    """
    a, b = _prepare(sr, hr, border, y_only)
    if a.shape[0] < _WIN or a.shape[1] < _WIN:
        raise SrprepError(f"SSIM needs at least {_WIN}x{_WIN} pixels after the border crop, got {a.shape[:2]}")
    window = _gaussian_window()
    scores = [
        _ssim_channel(np.ascontiguousarray(a[..., c]), np.ascontiguousarray(b[..., c]), window)
        for c in range(a.shape[2])
    ]
    return float(np.mean(scores))


def _check_planes(a: np.ndarray, b: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise SrprepError(f"expected two (H, W) planes of equal shape, got {a.shape} and {b.shape}")
    if border < 0 or min(a.shape) <= 2 * border:
        raise SrprepError(f"plane {a.shape[0]}x{a.shape[1]} is too small for a {border}-pixel border crop")
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return a, b


def psnr_planes(a: np.ndarray, b: np.ndarray, *, border: int = 0) -> float:
    """PSNR in dB of two float (H, W) planes on the 0..255 scale (e.g. unrounded Y), peak 255, float64.

    For protocols that measure the network's output before any rounding (FSRCNN-pytorch's)."""
    a, b = _check_planes(a, b, border)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(_PEAK * _PEAK / mse)


def ssim_planes(a: np.ndarray, b: np.ndarray, *, border: int = 0) -> float:
    """SSIM (as :func:`ssim`) of two float (H, W) planes on the 0..255 scale, without rounding them first."""
    a, b = _check_planes(a, b, border)
    if a.shape[0] < _WIN or a.shape[1] < _WIN:
        raise SrprepError(f"SSIM needs at least {_WIN}x{_WIN} pixels after the border crop, got {a.shape}")
    return _ssim_channel(np.ascontiguousarray(a), np.ascontiguousarray(b), _gaussian_window())
