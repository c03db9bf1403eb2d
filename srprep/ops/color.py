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


# --- the YCbCr formulas of the FSRCNN-pytorch / SRCNN-pytorch code (yjn870) ----------------------------------
# Their published Set5 numbers are measured on this Y, so their protocol needs it exactly. It is the 8-bit
# "/256" form of BT.601 with one digit changed: R weighs 64.738 (the usual table has 65.738). Operation order
# as in their utils.py, so float32 inputs give their float32 results bit for bit.


def rgb_to_ycbcr_fsrcnn(r, g, b):
    """``(Y, Cb, Cr)`` of R, G, B planes in [0, 255] (numpy arrays or torch tensors; dtype kept).

    ``Y = 16 + (64.738 R + 129.057 G + 25.064 B) / 256``, ``Cb = 128 + (-37.945 R - 74.494 G + 112.439 B) / 256``,
    ``Cr = 128 + (112.439 R - 94.154 G - 18.285 B) / 256``; not rounded.
    """
    y = 16. + (64.738 * r + 129.057 * g + 25.064 * b) / 256.
    cb = 128. + (-37.945 * r - 74.494 * g + 112.439 * b) / 256.
    cr = 128. + (112.439 * r - 94.154 * g - 18.285 * b) / 256.
    return y, cb, cr


def ycbcr_fsrcnn_to_rgb(y, cb, cr):
    """``(R, G, B)`` in (about) [0, 255], not clipped or rounded, from planes of :func:`rgb_to_ycbcr_fsrcnn`'s
    YCbCr (their inverse formulas: ``R = 298.082 Y / 256 + 408.583 Cr / 256 - 222.921`` and so on)."""
    r = 298.082 * y / 256. + 408.583 * cr / 256. - 222.921
    g = 298.082 * y / 256. - 100.291 * cb / 256. - 208.120 * cr / 256. + 135.576
    b = 298.082 * y / 256. + 516.412 * cb / 256. - 276.836
    return r, g, b
