"""Contact sheets: rows of images side by side in one picture, for looking at HR/LR pairs by eye.

Images of one row are brought to a common height by nearest-neighbour upscaling with an integer factor
(an x2 LR becomes 2x2 blocks), so that a pixel of the LR lies exactly beside the HR pixels it came from
and interpolation does not hide or invent detail. Captions wrap onto as many lines as they need (never cut);
their text is drawn with matplotlib's font when installed, else with OpenCV's built-in Hershey font. The same layout serves every sheet srprep draws (pairs, centroids, inspect,
validation, and the degradation grids of :func:`srprep.ops.degrade.contact.degradation_sheet`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .figures import text_renderer

__all__ = ["contact_sheet", "nearest_upscale", "wrap_label"]

_LABEL_H = 18  # px per line of text
_FONT_PX = 0.72  # font size as a fraction of the line height


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


def wrap_label(text: str, width: float, measure) -> list[str]:
    r"""Break ``text`` into lines no wider than ``width`` px (``measure(line) -> px``): at ``\n``, then between
    words, and inside a word (after its last fitting ``_``, else anywhere) only when the word alone is too wide.
    Nothing is cut off.

    >>> wrap_label("one two three", 9, len)
    ['one two', 'three']
    >>> wrap_label("abcdefghij\nk", 4, len), wrap_label("blur_bicubic", 9, len)
    (['abcd', 'efgh', 'ij', 'k'], ['blur_', 'bicubic'])
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if measure(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = word
            while len(line) > 1 and measure(line) > width:  # a word wider than the cell: break it
                cut = 1
                while cut < len(line) - 1 and measure(line[:cut + 1]) <= width:
                    cut += 1
                cut = line.rfind("_", 0, cut) + 1 or cut
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray]],
    labels: Sequence[str] | Sequence[Sequence[str]] | None = None,
    *,
    pad: int = 4,
    max_height: int | None = 512,
    background: int = 32,
    label_height: int = _LABEL_H,
    titles: Sequence[str] | None = None,
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
            A caption wider than its cell is wrapped onto more lines (``\\n`` breaks a line), never cut.
        pad: pixels between and around cells.
        max_height: cap on the height of a row in the sheet (``None``: no cap).
        background: grey level of the canvas (labels are white on a dark one, black on a light one).
        label_height: pixels of one line of text; the font scales with it.
        titles: column titles drawn once above the first row, with per-image ``labels`` (a flat ``labels``
            list is the same as ``titles``).

    Text is drawn with matplotlib's font when the ``plots`` extra is installed, else with OpenCV's
    Hershey font (ASCII); the image pixels are the same either way.

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
    elif labels is not None:
        if titles is not None:
            raise ValueError("contact_sheet: give column titles once (titles=, or a flat labels list)")
        titles, labels = labels, None
    if titles is not None and len(titles) > max(len(r) for r in rows):
        raise ValueError(f"contact_sheet: {len(titles)} column labels for at most {max(len(r) for r in rows)} columns")

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
    text = text_renderer() if (titles or per_cell) else None
    size = label_height * _FONT_PX

    def wrapped(caption: str, j: int) -> list[str]:
        return wrap_label(caption, col_w[j] - 4, lambda t: text.width(t, size)) if caption else []

    head = [wrapped(t, j) for j, t in enumerate(titles or [])]
    cell_lines = [[wrapped(t, j) for j, t in enumerate(row_labels)] for row_labels in labels] if per_cell else []
    header = label_height * max((len(h) for h in head), default=1) if titles else 0
    strip = [label_height * max((len(c) for c in row), default=0) for row in cell_lines] or [0] * len(laid_out)
    row_h = [max(c.shape[0] for c in cells) + strip[i] for i, cells in enumerate(laid_out)]
    width = pad + sum(w + pad for w in col_w)
    height = pad + header + sum(h + pad for h in row_h)
    canvas = np.full((height, width, 3), background, np.uint8)

    ink = 255 if background < 128 else 0
    xs = np.cumsum([pad] + [w + pad for w in col_w])[:-1]
    lines = [(t, int(xs[j]) + 2, pad + k * label_height) for j, h in enumerate(head) for k, t in enumerate(h)]
    y = pad + header
    for i, cells in enumerate(laid_out):
        for j, c in enumerate(cells):
            x = int(xs[j])
            if per_cell:
                lines += [(t, x + 2, y + k * label_height) for k, t in enumerate(cell_lines[i][j])]
            canvas[y + strip[i]: y + strip[i] + c.shape[0], x: x + c.shape[1]] = c
        y += row_h[i] + pad
    if lines:
        text.draw(canvas, lines, size, ink)
    return canvas
