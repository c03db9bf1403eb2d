"""RGB <-> YCbCr with MATLAB's BT.601 "studio swing" coefficients (``rgb2ycbcr`` / ``ycbcr2rgb``).

The SR literature evaluates PSNR/SSIM on the Y channel computed as
``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in [0, 255] (Y in [16, 235]).
Unlike MATLAB's ``rgb2ycbcr`` on uint8 input, nothing here rounds: results are float64, as EDSR's and
BasicSR's evaluation code use them.
"""
from __future__ import annotations

import numpy as np

from srprep.errors import SrprepError

# Rows: Y, Cb, Cr; columns: R, G, B; for RGB in [0, 1] (MATLAB's matrix, ITU-R BT.601, 219/224 levels).
_RGB2YCBCR = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ],
    dtype=np.float64,
)
_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)
_YCBCR2RGB = np.linalg.inv(_RGB2YCBCR)


def _check_rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim < 1 or img.shape[-1] != 3:
        raise SrprepError(f"expected an RGB image with 3 channels last, got shape {img.shape}")
    return img


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma Y of RGB pixels in the [0, 255] range: ``16 + (65.481 R + 128.553 G + 24.966 B) / 255``.

    Args:
        img: (..., 3) RGB, uint8 or float with values in [0, 255].
    Returns:
        (...) float64 in [16, 235], not rounded.
    """
    img = _check_rgb(img).astype(np.float64)
    # Same operation order as the formula (weighted sum, then / 255, then + 16) to keep the last bits reproducible.
    return (img[..., 0] * 65.481 + img[..., 1] * 128.553 + img[..., 2] * 24.966) / 255.0 + 16.0


def rgb_to_ycbcr(img: np.ndarray) -> np.ndarray:
    """Full YCbCr of RGB in [0, 255]: (..., 3) float64, Y in [16, 235], Cb/Cr in [16, 240], not rounded."""
    img = _check_rgb(img).astype(np.float64)
    return img @ (_RGB2YCBCR.T / 255.0) + _OFFSET


def ycbcr_to_rgb(img: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`: (..., 3) YCbCr -> float64 RGB in (about) [0, 255], not clipped or rounded."""
    img = _check_rgb(img).astype(np.float64)
    return (img - _OFFSET) @ (_YCBCR2RGB.T * 255.0)
