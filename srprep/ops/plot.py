"""Small line plots drawn into a uint8 RGB image with numpy and OpenCV (training curves, schedules).

The fallback of :mod:`srprep.ops.figures` when matplotlib (the ``plots`` extra, which requires plain Pillow:
``scripts/setup.sh`` puts pillow-simd back after it) is not installed. These plots need no more than axes,
a grid, tick labels, lines and a legend, which OpenCV's drawing functions and built-in Hershey font give
without reading any font file.

>>> img = line_plot({"loss": ([0, 1, 2], [3.0, 2.0, 1.5])}, title="loss")
>>> img.shape, img.dtype
((360, 640, 3), dtype('uint8'))
"""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

__all__ = ["line_plot", "nice_ticks", "stack_images"]

# A colour-blind-safe palette (Okabe-Ito), RGB.
PALETTE = ((0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0),
           (240, 228, 66), (0, 0, 0))
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SMALL = 0.4
_BACKGROUND = (255, 255, 255)
_AXIS = (60, 60, 60)
_GRID = (225, 225, 225)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick positions (steps of 1, 2 or 5 x 10^k) covering [lo, hi], about ``count`` of them.

    >>> nice_ticks(0, 1)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 12))
        k += 1
    return ticks


def _log_ticks(lo: float, hi: float) -> list[float]:
    """log10 positions of round values in [10^lo, 10^hi]: decades, else 1-2-5 steps, else linear nice ticks."""
    decades = [float(k) for k in range(math.floor(lo), math.ceil(hi) + 1) if lo <= k <= hi]
    if len(decades) >= 2:
        return decades
    cand = [math.log10(m * 10.0 ** k) for k in range(math.floor(lo), math.ceil(hi) + 1) for m in (1, 2, 5)]
    cand = [c for c in cand if lo <= c <= hi]
    if len(cand) >= 3:
        return cand
    return [math.log10(t) for t in nice_ticks(10 ** lo, 10 ** hi, 4) if t > 0]


def _label(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        return f"{v:.0e}"
    if a >= 100 or float(v).is_integer():
        return f"{v:.0f}"
    return f"{v:.3g}"


def _text(img: np.ndarray, text: str, x: int, y: int, *, scale: float = _SMALL, color=_AXIS,
          anchor: str = "left") -> None:
    text = text.encode("ascii", "replace").decode("ascii")  # Hershey fonts know ASCII only
    (w, h), _ = cv2.getTextSize(text, _FONT, scale, 1)
    if anchor == "right":
        x -= w
    elif anchor == "center":
        x -= w // 2
    cv2.putText(img, text, (int(x), int(y + h // 2)), _FONT, scale, color, 1, cv2.LINE_AA)


def line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[int, int] = (640, 360),
    log_y: bool = False,
    ylim: Optional[tuple[float, float]] = None,
    vlines: Sequence[float] = (),
    hlines: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Draw named (x, y) series as lines on shared axes.

    Args:
        series: ``{name: (xs, ys)}``; non-finite points are left out (the line breaks there). A series with
            a single point is drawn as a dot.
        title, xlabel, ylabel: ASCII captions.
        size: (width, height) in pixels.
        log_y: logarithmic y axis (non-positive values left out).
        ylim: fixed (low, high) for the y axis (default: the data range with a margin).
        vlines: x positions of dashed vertical marker lines.
        hlines: ``{name: y}`` dashed horizontal reference lines (e.g. a baseline), listed in the legend.

    Returns:
        (height, width, 3) uint8 RGB image.
    """
    width, height = int(size[0]), int(size[1])
    if width < 160 or height < 120:
        raise ValueError(f"plot size {width}x{height} is too small (at least 160x120)")
    img = np.full((height, width, 3), _BACKGROUND, np.uint8)
    hlines = dict(hlines or {})
    clean = {}
    for name, (xs, ys) in series.items():
        x = np.asarray(xs, np.float64).ravel()
        y = np.asarray(ys, np.float64).ravel()
        if x.shape != y.shape:
            raise ValueError(f"series {name!r}: {x.size} x values but {y.size} y values")
        ok = np.isfinite(x) & np.isfinite(y) & ((y > 0) if log_y else True)
        clean[name] = (x, np.log10(np.where(ok, y, 1.0)) if log_y else y, ok)
    ref = {k: (math.log10(v) if log_y else v) for k, v in hlines.items() if math.isfinite(v) and (v > 0 or not log_y)}

    all_x = np.concatenate([x[ok] for x, _, ok in clean.values()] + [np.asarray(vlines, np.float64)]) \
        if clean else np.asarray(vlines, np.float64)
    all_y = np.concatenate([y[ok] for _, y, ok in clean.values()] + [np.asarray(list(ref.values()))]) \
        if clean else np.asarray(list(ref.values()))
    x0, x1 = (float(all_x.min()), float(all_x.max())) if all_x.size else (0.0, 1.0)
    if x1 <= x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if ylim is not None:
        y0, y1 = (math.log10(ylim[0]), math.log10(ylim[1])) if log_y else (float(ylim[0]), float(ylim[1]))
    else:
        y0, y1 = (float(all_y.min()), float(all_y.max())) if all_y.size else (0.0, 1.0)
        pad = (y1 - y0) * 0.05 or (abs(y0) * 0.05 or 0.5)
        y0, y1 = y0 - pad, y1 + pad

    left, right, top, bottom = 62, 12, 28 if title else 12, 40 if xlabel else 26

    def px(v):
        return left + (np.asarray(v) - x0) / (x1 - x0) * (width - left - right)

    def py(v):
        return height - bottom - (np.asarray(v) - y0) / (y1 - y0) * (height - top - bottom)

    # grid and tick labels
    for t in nice_ticks(x0, x1, max(2, (width - left - right) // 90)):
        xp = int(round(float(px(t))))
        cv2.line(img, (xp, top), (xp, height - bottom), _GRID, 1)
        _text(img, _label(t), xp, height - bottom + 10, anchor="center")
    yticks = nice_ticks(y0, y1, max(2, (height - top - bottom) // 45))
    if log_y:
        yticks = _log_ticks(y0, y1)
    for t in yticks:
        yp = int(round(float(py(t))))
        cv2.line(img, (left, yp), (width - right, yp), _GRID, 1)
        _text(img, _label(10 ** t if log_y else t), left - 4, yp, anchor="right")
    cv2.rectangle(img, (left, top), (width - right, height - bottom), _AXIS, 1)

    def dashed(p0, p1, color):
        n = max(1, int(math.hypot(p1[0] - p0[0], p1[1] - p0[1]) // 6))
        for i in range(0, n, 2):
            a = (int(p0[0] + (p1[0] - p0[0]) * i / n), int(p0[1] + (p1[1] - p0[1]) * i / n))
            b = (int(p0[0] + (p1[0] - p0[0]) * (i + 1) / n), int(p0[1] + (p1[1] - p0[1]) * (i + 1) / n))
            cv2.line(img, a, b, color, 1, cv2.LINE_AA)

    for v in vlines:
        xp = int(round(float(px(v))))
        dashed((xp, top), (xp, height - bottom), _AXIS)
    legend = []
    colors = iter(PALETTE * (1 + (len(clean) + len(ref)) // len(PALETTE)))
    for name, yv in ref.items():
        color = next(colors)
        yp = int(round(float(py(yv))))
        dashed((left, yp), (width - right, yp), color)
        legend.append((name, color, True))
    # lines, clipped to the plot box (cv2 clips to the image; the box is enforced with a mask below)
    layer = img.copy()
    for name, (x, y, ok) in clean.items():
        color = next(colors)
        legend.append((name, color, False))
        pts = np.stack([px(x), py(y)], axis=1)
        runs = np.split(np.arange(x.size), np.flatnonzero(~ok))
        for run in runs:
            run = run[ok[run]]
            if run.size == 1:
                cv2.circle(layer, tuple(int(round(c)) for c in pts[run[0]]), 2, color, -1, cv2.LINE_AA)
            elif run.size > 1:
                poly = np.round(pts[run] * 16).astype(np.int32).reshape(-1, 1, 2)
                cv2.polylines(layer, [poly], False, color, 2, cv2.LINE_AA, shift=4)
    inner = (slice(top + 1, height - bottom), slice(left + 1, width - right))
    img[inner] = layer[inner]

    # legend inside the box, top right unless the data crowd that corner more than the bottom right
    pts_x = np.concatenate([px(x[ok]) for x, _, ok in clean.values()]) if clean else np.zeros(0)
    pts_y = np.concatenate([py(y[ok]) for _, y, ok in clean.values()]) if clean else np.zeros(0)
    right_half = pts_x > left + (width - left - right) / 2
    mid = top + (height - top - bottom) / 2
    upper = int(np.count_nonzero(right_half & (pts_y < mid)))
    lower = int(np.count_nonzero(right_half & (pts_y >= mid)))
    ly = top + 10 if upper <= lower else height - bottom - 10 - 16 * (len(legend) - 1)
    for name, color, is_ref in legend:
        (tw, _), _ = cv2.getTextSize(name, _FONT, _SMALL, 1)
        x_end = width - right - 8
        if is_ref:
            dashed((x_end - tw - 30, ly), (x_end - tw - 8, ly), color)
        else:
            cv2.line(img, (x_end - tw - 30, ly), (x_end - tw - 8, ly), color, 2, cv2.LINE_AA)
        _text(img, name, x_end, ly, anchor="right")
        ly += 16
    if title:
        _text(img, title, width // 2, 13, scale=0.5, anchor="center")
    if xlabel:
        _text(img, xlabel, left + (width - left - right) // 2, height - 10, anchor="center")
    if ylabel:
        _text(img, ylabel[:8], 4, top - 2 if title else 6)
    return img


def stack_images(images: Sequence[np.ndarray], *, gap: int = 0, background: int = 255) -> np.ndarray:
    """Stack (H, W, 3) uint8 images vertically (narrower ones padded on the right)."""
    if not images:
        raise ValueError("stack_images: no images")
    width = max(im.shape[1] for im in images)
    parts = []
    for i, im in enumerate(images):
        if im.shape[1] < width:
            im = np.concatenate([im, np.full((im.shape[0], width - im.shape[1], 3), background, np.uint8)], axis=1)
        parts.append(im)
        if gap and i < len(images) - 1:
            parts.append(np.full((gap, width, 3), background, np.uint8))
    return np.concatenate(parts, axis=0)
