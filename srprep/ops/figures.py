"""Figures drawn with matplotlib (the optional ``plots`` extra), returned as uint8 RGB arrays.

matplotlib is imported only when a figure is drawn, and only its object-oriented API with the Agg canvas is
used (no pyplot, no global backend), so drawing is safe in worker processes and threads. Without
matplotlib every figure still comes out: :func:`line_panels` and the pairs histogram fall back to the
OpenCV drawings of :mod:`srprep.ops.plot`, contact-sheet text to OpenCV's Hershey font, and the first
fallback logs how to get the real figures (``pip install 'srprep[plots]'``, or ``bash scripts/setup.sh``,
which keeps pillow-simd).
"""
from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["available", "note_fallback", "Panel", "line_panels", "score_histogram", "text_renderer"]

#: A colour-blind-safe palette (Okabe-Ito), as matplotlib colour strings.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_DPI = 100


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """Whether matplotlib can be imported (the ``plots`` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def note_fallback(what: str) -> None:
    """Log once per process that ``what`` is drawn without matplotlib, and how to get it."""
    log.info("%s drawn without matplotlib (plainer); for the full figures: pip install 'srprep[plots]' "
             "(or bash scripts/setup.sh, which keeps pillow-simd)", what)


def _figure(width_px: int, height_px: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def _to_array(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.ascontiguousarray(np.asarray(fig.canvas.buffer_rgba())[:, :, :3])


@dataclass
class Panel:
    """One plot: named (x, y) series on shared axes.

    series: ``{name: (xs, ys)}``, non-finite points left out. hlines: ``{name: y}`` dashed reference lines;
    vlines: x positions of dotted markers. log_y: logarithmic y axis (non-positive values left out).
    """

    series: Mapping[str, tuple[Sequence[float], Sequence[float]]]
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    log_y: bool = False
    ylim: Optional[tuple[float, float]] = None
    hlines: Mapping[str, float] = field(default_factory=dict)
    vlines: Sequence[float] = ()


def line_panels(panels: Sequence[Panel], *, width: int = 760, panel_height: int = 300) -> np.ndarray:
    """Panels stacked top to bottom in one picture, each legend to the right of its axes (never over the data).

    Returns:
        (H, W, 3) uint8 RGB: W = ``width``, H = ``panel_height`` per panel (without matplotlib, the OpenCV
        fallback: 6 px more between panels).
    """
    if not panels:
        raise ValueError("line_panels: no panels")
    if not available():
        from .plot import line_plot, stack_images

        note_fallback("plots")
        return stack_images([line_plot(dict(p.series), title=p.title, xlabel=p.xlabel, ylabel=p.ylabel,
                                       log_y=p.log_y, ylim=p.ylim, hlines=dict(p.hlines), vlines=p.vlines,
                                       size=(width, panel_height)) for p in panels], gap=6)
    fig = _figure(width, panel_height * len(panels))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, p in zip(axes, panels):
        colours = iter(PALETTE * (1 + (len(p.series) + len(p.hlines)) // len(PALETTE)))
        for name, (xs, ys) in p.series.items():
            x, y = np.asarray(xs, np.float64).ravel(), np.asarray(ys, np.float64).ravel()
            if x.shape != y.shape:
                raise ValueError(f"series {name!r}: {x.size} x values but {y.size} y values")
            ok = np.isfinite(x) & np.isfinite(y) & ((y > 0) if p.log_y else True)
            ax.plot(np.where(ok, x, np.nan), np.where(ok, y, np.nan), color=next(colours), linewidth=1.6,
                    marker="o" if ok.sum() == 1 else None, markersize=3, label=name)
        for name, value in p.hlines.items():
            if math.isfinite(value) and (value > 0 or not p.log_y):
                ax.axhline(value, color=next(colours), linestyle="--", linewidth=1.2, label=f"{name} {value:.4g}")
        for v in p.vlines:
            ax.axvline(v, color="0.3", linestyle=":", linewidth=1)
        if p.log_y:
            ax.set_yscale("log")
        if p.ylim is not None:
            ax.set_ylim(*p.ylim)
        ax.set_title(p.title, fontsize=11)
        ax.set_xlabel(p.xlabel)
        ax.set_ylabel(p.ylabel)
        ax.grid(True, color="0.9", linewidth=0.8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False, fontsize=9)
    fig.tight_layout()
    return _to_array(fig)


def score_histogram(scores: Sequence[float], threshold: float, *, width: int = 760, height: int = 420,
                    bins: int = 40) -> np.ndarray:
    """Histogram of pair scores with the threshold drawn and labelled; every score inside the axes.

    The x axis spans all finite scores (no clipping into a last bar): linear when the largest score is
    under 10x the threshold, else logarithmic with log-spaced bins (a zero score then sits in the first
    bin). Bars at or below the threshold are green ("clean"), above it red ("flagged"). Requires matplotlib.

    Returns:
        (height, width, 3) uint8 RGB.
    """
    s = np.asarray(list(scores), dtype=np.float64)
    s = s[np.isfinite(s)]
    n_bad = int((s > threshold).sum())
    fig = _figure(width, height)
    ax = fig.subplots()
    top = max(float(s.max()) if s.size else 0.0, threshold) * 1.05
    log_x = s.size > 0 and top > 10 * threshold
    if log_x:
        low = min(float(s[s > 0].min()) if (s > 0).any() else threshold, threshold) / 1.5
        edges = np.geomspace(low, top, bins + 1)
        values = np.maximum(s, low)
        ax.set_xscale("log")
    else:
        edges = np.linspace(0.0, top, bins + 1)
        values = s
    counts, edges = np.histogram(values, bins=edges)
    left, widths = edges[:-1], np.diff(edges)
    clean = edges[1:] <= threshold * (1 + 1e-12)
    ax.bar(left[clean], counts[clean], width=widths[clean], align="edge", color="#009E73", edgecolor="white",
           linewidth=0.5, label=f"clean (score <= {threshold:g}): {s.size - n_bad}")
    ax.bar(left[~clean], counts[~clean], width=widths[~clean], align="edge", color="#D55E00", edgecolor="white",
           linewidth=0.5, label=f"flagged: {n_bad}")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1.5, label=f"threshold {threshold:g}")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, max(1, int(counts.max()) if counts.size else 1) * 1.1)
    ax.set_title(f"pair scores: {s.size} pairs, {s.size - n_bad} clean, {n_bad} flagged", fontsize=11)
    ax.set_xlabel("score = largest measure / its tolerance" + (" (log scale)" if log_x else ""))
    ax.set_ylabel("pairs")
    ax.grid(True, axis="y", color="0.9", linewidth=0.8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False, fontsize=9)
    fig.tight_layout()
    return _to_array(fig)


class _MplText:
    """Measures and draws text with matplotlib's default font (DejaVu Sans), sized in pixels."""

    def __init__(self):
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.font_manager import FontProperties

        self._renderer = RendererAgg(1, 1, 72)  # at 72 dpi a point is a pixel
        self._font = FontProperties

    def width(self, text: str, size: float) -> float:
        w, _, _ = self._renderer.get_text_width_height_descent(text, self._font(size=size), ismath=False)
        return w

    def draw(self, canvas: np.ndarray, lines: Sequence[tuple[str, int, int]], size: float, ink: int) -> None:
        """Write each (text, x, top) onto ``canvas`` (H, W, 3) uint8 in place; only text pixels change."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        h, w = canvas.shape[:2]
        fig = Figure(figsize=(w / 72, h / 72), dpi=72)
        fig.patch.set_alpha(0.0)
        FigureCanvasAgg(fig)
        colour = "white" if ink == 255 else "black"
        for text, x, top in lines:
            fig.text(x / w, 1.0 - top / h, text, fontsize=size, color=colour, ha="left", va="top")
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba()).astype(np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        mixed = canvas.astype(np.float32) * (1.0 - alpha) + rgba[:, :, :3] * alpha
        np.copyto(canvas, np.clip(np.rint(mixed), 0, 255).astype(np.uint8), where=alpha > 0)


class _Cv2Text:
    """The fallback: OpenCV's built-in Hershey font (ASCII only)."""

    def __init__(self):
        import cv2

        self._cv2 = cv2

    def width(self, text: str, size: float) -> float:
        return self._cv2.getTextSize(_ascii(text), self._cv2.FONT_HERSHEY_SIMPLEX, size / 30.0, 1)[0][0]

    def draw(self, canvas: np.ndarray, lines: Sequence[tuple[str, int, int]], size: float, ink: int) -> None:
        cv2 = self._cv2
        for text, x, top in lines:
            (_, th), _ = cv2.getTextSize(_ascii(text), cv2.FONT_HERSHEY_SIMPLEX, size / 30.0, 1)
            cv2.putText(canvas, _ascii(text), (x, top + th), cv2.FONT_HERSHEY_SIMPLEX, size / 30.0, (ink,) * 3, 1,
                        cv2.LINE_AA)


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def text_renderer():
    """The text backend for contact sheets: matplotlib when installed, else OpenCV. Both offer
    ``width(text, size_px) -> px`` and ``draw(canvas, [(text, x, top), ...], size_px, ink)``."""
    if available():
        return _MplText()
    note_fallback("contact-sheet text")
    return _Cv2Text()
