"""Contact sheets: the original and its degradations side by side, labelled, in one uint8 image.

LR results are enlarged with nearest-neighbour to the original's size so that blur, noise and JPEG
blocks stay visible as they are (an interpolating upscale would hide them). The grid itself is drawn by
:func:`srprep.ops.sheet.contact_sheet`, with black labels on a white strip above each tile.

>>> import numpy as np
>>> sheet = degradation_sheet(np.zeros((32, 32, 3), np.uint8), ["bicubic", "bicubic_jepg50"], seed=0)
>>> sheet.dtype, sheet.shape[2]
(dtype('uint8'), 3)
"""
from __future__ import annotations

import math
from typing import Callable, Sequence, Union

import cv2
import numpy as np

from ..sheet import contact_sheet
from .recipes import RECIPE_NAMES, apply_reflash

Recipe = Union[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]

_STRIP = 24  # px per line of the white label strip above each tile
_GAP = 4  # px of white between and around tiles


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (h, w): nearest when enlarging (keeps pixels visible), area when shrinking."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    enlarge = h >= img.shape[0] and w >= img.shape[1]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST if enlarge else cv2.INTER_AREA)


def degradation_sheet(img: np.ndarray, recipes: Sequence[Recipe] = RECIPE_NAMES, *, seed: int = 0, key: str = "",
                      scale: int = 4, resize: str = "pil", quantize: str = "truncate", columns: int | None = None,
                      max_tile: int | None = 512) -> np.ndarray:
    """Contact sheet of ``img`` (RGB uint8, ideally cropped to a multiple of ``scale``) and its degradations.

    ``recipes``: Reflash recipe names (applied with :func:`.recipes.apply_reflash` and the given options)
    and/or ``(label, fn)`` pairs where ``fn(img) -> uint8 image`` (e.g. a pipeline apply). Tiles show the
    original then each result at the original's size, shrunk so that the longer side is at most
    ``max_tile`` (None: no limit), ``columns`` to a row (default ``ceil(sqrt(n))``). Returns uint8 (H, W, 3).
    """
    h, w = img.shape[:2]
    f = 1.0 if max_tile is None else min(1.0, max_tile / max(h, w))
    size = (max(1, round(h * f)), max(1, round(w * f)))
    tiles, labels = [_fit(img, size)], ["original"]
    for r in recipes:
        if isinstance(r, str):
            out, _ = apply_reflash(img, r, scale=scale, seed=seed, key=key, resize=resize, quantize=quantize)
            label = r
        else:
            label, fn = r
            out = fn(img)
        # enlarge LR to the original's size first (nearest) so each LR pixel stays a visible block
        tiles.append(_fit(_fit(out, (h, w)), size))
        labels.append(label)
    tiles = [np.ascontiguousarray(t, dtype=np.uint8) for t in tiles]
    cols = columns or math.ceil(math.sqrt(len(tiles)))
    rows = [tiles[i:i + cols] for i in range(0, len(tiles), cols)]
    row_labels = [labels[i:i + cols] for i in range(0, len(labels), cols)]
    return contact_sheet(rows, row_labels, pad=_GAP, max_height=None, background=255, label_height=_STRIP)
