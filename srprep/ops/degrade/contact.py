"""Contact sheets: the original and its degradations side by side, labelled, in one uint8 image.

LR results are enlarged with nearest-neighbour to the original's size so that blur, noise and JPEG
blocks stay visible as they are (an interpolating upscale would hide them). Labels are drawn with
``cv2.putText`` on a white strip above each tile.

>>> import numpy as np
>>> sheet = degradation_sheet(np.zeros((32, 32, 3), np.uint8), ["bicubic", "bicubic_jpeg50"], seed=0)
>>> sheet.dtype, sheet.shape[2]
(dtype('uint8'), 3)
"""
from __future__ import annotations

import math
from typing import Callable, Sequence, Union

import cv2
import numpy as np

from .recipes import RECIPE_NAMES, apply_reflash

Recipe = Union[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (h, w): nearest when enlarging (keeps pixels visible), area when shrinking."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    enlarge = h >= img.shape[0] and w >= img.shape[1]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST if enlarge else cv2.INTER_AREA)


def _label(tile: np.ndarray, text: str, strip: int) -> np.ndarray:
    """Put ``text`` on a white strip above ``tile``, shrinking the font until it fits the width."""
    w = tile.shape[1]
    scale, thick = strip / 40.0, 1
    while scale > 0.25 and cv2.getTextSize(text, _FONT, scale, thick)[0][0] > w - 6:
        scale *= 0.9
    band = np.full((strip, w, 3), 255, np.uint8)
    (tw, th), _ = cv2.getTextSize(text, _FONT, scale, thick)
    cv2.putText(band, text, (3, (strip + th) // 2), _FONT, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return np.concatenate([band, tile], axis=0)


def contact_sheet(tiles: Sequence[np.ndarray], labels: Sequence[str], *, columns: int | None = None,
                  tile_size: tuple[int, int] | None = None, strip: int = 24, gap: int = 4) -> np.ndarray:
    """Lay out uint8 RGB ``tiles`` with ``labels`` in a grid; returns a uint8 (H, W, 3) image.

    Every tile is fitted to ``tile_size`` (h, w) (default: the first tile's size). ``columns`` defaults to
    ``ceil(sqrt(n))``. Gaps are white.
    """
    if len(tiles) != len(labels) or not tiles:
        raise ValueError("need one label per tile and at least one tile")
    size = tuple(tile_size) if tile_size is not None else tiles[0].shape[:2]
    cols = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    cells = [_label(_fit(np.ascontiguousarray(t, dtype=np.uint8), size), lab, strip)
             for t, lab in zip(tiles, labels)]
    ch, cw = cells[0].shape[:2]
    sheet = np.full((rows * ch + (rows + 1) * gap, cols * cw + (cols + 1) * gap, 3), 255, np.uint8)
    for i, cell in enumerate(cells):
        r, c = divmod(i, cols)
        y, x = gap + r * (ch + gap), gap + c * (cw + gap)
        sheet[y:y + ch, x:x + cw] = cell
    return sheet


def degradation_sheet(img: np.ndarray, recipes: Sequence[Recipe] = RECIPE_NAMES, *, seed: int = 0, key: str = "",
                      scale: int = 4, resize: str = "pil", quantize: str = "truncate", columns: int | None = None,
                      max_tile: int | None = 512) -> np.ndarray:
    """Contact sheet of ``img`` (RGB uint8, ideally cropped to a multiple of ``scale``) and its degradations.

    ``recipes``: Reflash recipe names (applied with :func:`.recipes.apply_reflash` and the given options)
    and/or ``(label, fn)`` pairs where ``fn(img) -> uint8 image`` (e.g. a pipeline apply). Tiles show the
    original then each result at the original's size, shrunk so that the longer side is at most
    ``max_tile`` (None: no limit). Returns uint8 (H, W, 3).
    """
    h, w = img.shape[:2]
    f = 1.0 if max_tile is None else min(1.0, max_tile / max(h, w))
    size = (max(1, round(h * f)), max(1, round(w * f)))
    tiles, labels = [img], ["original"]
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
    return contact_sheet([_fit(img, size)] + tiles[1:], labels, columns=columns, tile_size=size)
