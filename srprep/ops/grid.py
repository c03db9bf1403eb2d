"""Pixel-grid helpers: cropping an image so that its size is a multiple of a scale factor."""
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
