"""Pixel-grid helpers: modcrop, and the one grid that HR and LR sub-images are cut on."""
from __future__ import annotations

import numpy as np


def modcrop(img: np.ndarray, s: int) -> np.ndarray:
    """Crop the bottom rows and right columns so that height and width are multiples of ``s``.

    This is the ``modcrop`` of the SR literature's MATLAB scripts: the top-left corner is kept, so the
    pixel grid of ``imresize(modcrop(HR, s), 1/s)`` starts at the same place as the HR's.

    Args:
        img: an HW or HWC array of any dtype.
        s: the modulus, an integer >= 1.

    Returns:
        A view of ``img`` of shape ``(H - H % s, W - W % s[, C])``, same dtype (no copy).

    Raises:
        ValueError: ``s`` < 1 or not an integer, ``img`` not 2-D/3-D, or smaller than ``s``.

    Example:
        >>> modcrop(np.zeros((229, 345, 3), np.uint8), 4).shape
        (228, 344, 3)
    """
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
        raise ValueError(f"modcrop: the modulus must be an integer >= 1, got {s!r}")
    if img.ndim not in (2, 3):
        raise ValueError(f"modcrop: expected an HW or HWC array, got shape {img.shape}")
    h, w = img.shape[:2]
    if h < s or w < s:
        raise ValueError(f"modcrop: image {h}x{w} is smaller than the modulus {s}")
    return img[: h - h % s, : w - w % s]


def grid_positions(length: int, size: int, step: int, thresh: int = 0) -> list[int]:
    """Start offsets of crops of ``size`` along an axis of ``length`` pixels (BasicSR's sub-image rule).

    ``0, step, 2*step, ...`` while a crop fits, then ``length - size`` when the part left uncovered
    after the last crop is larger than ``thresh`` pixels. Empty when ``length < size``.

    Example:
        >>> grid_positions(1356, 480, 240)
        [0, 240, 480, 720, 876]
        >>> grid_positions(1200, 480, 240)
        [0, 240, 480, 720]
    """
    if size < 1 or step < 1 or thresh < 0:
        raise ValueError(f"size and step must be >= 1 and thresh >= 0, not {size}, {step}, {thresh}")
    if length < size:
        return []
    pos = list(range(0, length - size + 1, step))
    if length - (pos[-1] + size) > thresh:
        pos.append(length - size)
    return pos
