"""Contact sheets: rows of images side by side in one picture, for looking at HR/LR pairs by eye.

Images of one row are brought to a common height by nearest-neighbour upscaling with an integer factor
(an x2 LR becomes 2x2 blocks), so that a pixel of the LR lies exactly beside the HR pixels it came from
and interpolation does not hide or invent detail. Labels are drawn with OpenCV's built-in Hershey font,
so no font file is read. The same layout serves every sheet srprep draws (pairs, centroids, inspect,
validation, and the degradation grids of :func:`srprep.ops.degrade.contact.degradation_sheet`).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

__all__ = ["contact_sheet", "nearest_upscale"]

_LABEL_H = 18  # px: room for one line of Hershey simplex at scale 0.45 plus a margin
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MIN_FONT_SCALE = 0.25  # below this Hershey simplex is no longer legible


def nearest_upscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Repeat every pixel ``factor`` times along H and W: ``(h, w, 3) -> (h*f, w*f, 3)``, same dtype.

    Example:
        >>> nearest_upscale(np.arange(4, dtype=np.uint8).reshape(2, 2, 1), 2)[:, :, 0]
        array([[0, 0, 1, 1],
               [0, 0, 1, 1],
               [2, 2, 3, 3],
               [2, 2, 3, 3]], dtype=uint8)
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor must be an integer >= 1, not {factor!r}")
    if factor == 1:
        return img
    return np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)


def _as_rgb8(img: np.ndarray, where: str) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{where}: expected a numpy array, not {type(img).__name__}")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"{where}: expected an (H, W, 3) or (H, W) image, got shape {img.shape}")
    if img.dtype == np.uint8:
        out = img
    elif np.issubdtype(img.dtype, np.floating):
        # float images are [0, 1] by srprep's convention; show them as they would be saved
        out = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    else:
        raise TypeError(f"{where}: expected uint8 or float in [0, 1], not {img.dtype}")
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return out


def _put_label(canvas: np.ndarray, text: str, x: int, y: int, width: int, height: int, colour: int,
               shrink: bool) -> None:
    """Write ``text`` left-aligned in the strip of ``width`` x ``height`` px starting at (x, y), cut to fit.

    The font and the baseline scale with the strip (scale 0.45 and baseline 13 px for the default 18 px);
    with ``shrink`` a too-wide label first gets a smaller font (down to a legible minimum), then is cut.
    """
    if not text:
        return
    # Hershey fonts know ASCII only; anything else would show as '?'-like garbage.
    text = text.encode("ascii", "replace").decode("ascii")
    scale = height / 40.0
    while shrink and scale > _MIN_FONT_SCALE and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > width - 4:
        scale *= 0.9
    while text and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > width - 4:
        text = text[:-1]
    baseline = y + round(height * (_LABEL_H - 5) / _LABEL_H)
    cv2.putText(canvas, text, (x + 2, baseline), _FONT, scale, (colour,) * 3, 1, cv2.LINE_AA)


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray]],
    labels: Sequence[str] | Sequence[Sequence[str]] | None = None,
    *,
    pad: int = 4,
    max_height: int | None = 512,
    background: int = 32,
    label_height: int = _LABEL_H,
    shrink_labels: bool = False,
) -> np.ndarray:
    """Lay out rows of images in one RGB picture, LR images upscaled (nearest) to line up with HR.

    In each row, every image is upscaled by the integer factor ``row height // its height`` (row height:
    the tallest image of the row), so an x2 LR of a sub-image shows at the HR's size in 2x2 blocks. A row
    taller than ``max_height`` is then thinned by an integer stride (nearest again, same for every image
    of the row), so pairs stay aligned. Cells are placed left to right with ``pad`` pixels between them.

    Args:
        rows: a list of rows, each a list of images ``(H, W, 3)`` or ``(H, W)``, ``uint8`` or float in
            [0, 1]. Rows may have different lengths and sizes.
        labels: ``None``; or one caption per column (a flat list of strings, drawn once above the first
            row); or one caption per image (a list of lists shaped like ``rows``, drawn above each image).
            ASCII text; longer captions are cut to the cell width.
        pad: pixels between and around cells.
        max_height: cap on the height of a row in the sheet (``None``: no cap).
        background: grey level of the canvas (labels are white on a dark one, black on a light one).
        label_height: pixels of the strip a label is drawn in; the font scales with it.
        shrink_labels: give a label that is too wide for its cell a smaller font before cutting it (for
            names that must be read whole, such as degradation recipes).

    Returns:
        ``(H, W, 3)`` ``uint8`` RGB image.

    Raises:
        ValueError: no rows, an empty row, a bad image shape, or labels that do not match ``rows``.
        TypeError: an image that is not a uint8 or float array.

    Example:
        >>> hr = np.zeros((96, 96, 3), np.uint8); lr = np.zeros((48, 48, 3), np.uint8)
        >>> contact_sheet([[hr, lr], [hr, lr]], ["HR", "X2"]).shape
        (222, 204, 3)
    """
    if not rows:
        raise ValueError("contact_sheet: no rows")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, not {pad}")
    if label_height < 1:
        raise ValueError(f"label_height must be >= 1, not {label_height}")
    per_cell = labels is not None and len(labels) > 0 and not isinstance(labels[0], str)
    if per_cell:
        if len(labels) != len(rows) or any(len(lr) != len(r) for lr, r in zip(labels, rows)):
            raise ValueError("contact_sheet: per-image labels must have the same shape as rows")
    elif labels is not None and len(labels) > max(len(r) for r in rows):
        raise ValueError(f"contact_sheet: {len(labels)} column labels for at most {max(len(r) for r in rows)} columns")

    laid_out: list[list[np.ndarray]] = []
    for i, row in enumerate(rows):
        if len(row) == 0:
            raise ValueError(f"contact_sheet: row {i} is empty")
        imgs = [_as_rgb8(img, f"row {i}, image {j}") for j, img in enumerate(row)]
        height = max(img.shape[0] for img in imgs)
        cells = [nearest_upscale(img, max(1, height // img.shape[0])) for img in imgs]
        if max_height is not None and height > max_height:
            stride = -(-height // max_height)
            cells = [c[::stride, ::stride] for c in cells]
        laid_out.append(cells)

    col_w = [0] * max(len(r) for r in laid_out)
    for cells in laid_out:
        for j, c in enumerate(cells):
            col_w[j] = max(col_w[j], c.shape[1])
    header = label_height if (labels is not None and not per_cell) else 0
    cell_label = label_height if per_cell else 0
    row_h = [max(c.shape[0] for c in cells) + cell_label for cells in laid_out]
    width = pad + sum(w + pad for w in col_w)
    height = pad + header + sum(h + pad for h in row_h)
    canvas = np.full((height, width, 3), background, np.uint8)

    ink = 255 if background < 128 else 0
    xs = np.cumsum([pad] + [w + pad for w in col_w])[:-1]
    if header:
        for j, text in enumerate(labels):
            _put_label(canvas, text, int(xs[j]), pad, col_w[j], label_height, ink, shrink_labels)
    y = pad + header
    for i, cells in enumerate(laid_out):
        for j, c in enumerate(cells):
            x = int(xs[j])
            if per_cell:
                _put_label(canvas, labels[i][j], x, y, col_w[j], label_height, ink, shrink_labels)
            canvas[y + cell_label: y + cell_label + c.shape[0], x: x + c.shape[1]] = c
        y += row_h[i] + pad
    return canvas
