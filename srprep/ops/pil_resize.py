"""Plain Pillow's ``Image.resize`` (BICUBIC, BILINEAR, LANCZOS) on uint8 images, bit-exact, in numpy.

srprep's image library is pillow-simd, whose resampling rounds differently from plain Pillow's (about 0.2 %
of values by one level at x2 bicubic). Data sets made in Python with ``Image.resize`` were made with plain
Pillow, so :func:`pil_resize` re-states plain Pillow's C resampler (``ImagingResample`` in
``libImaging/Resample.c``) step by step, independently of whichever PIL is installed.

Algorithm, per resized axis (input length ``n``, output length ``m``):

* ``scale = n / m``; ``filterscale = max(scale, 1)`` (the kernel is stretched only when shrinking);
  ``support = filter_support * filterscale`` (bicubic 2, bilinear 1, lanczos 3).
* Output ``i`` is centred at ``c = (i + 0.5) * scale``; its taps are ``xmin .. xmax - 1`` with
  ``xmin = max(0, trunc(c - support + 0.5))`` and ``xmax = min(n, trunc(c + support + 0.5))``: taps past an
  edge are dropped, not mirrored, and the remaining weights renormalised.
* Tap ``x`` weighs ``f(((x - c) + 0.5) * (1 / filterscale))``, with ``f`` Keys' cubic with ``a = -0.5``
  (evaluated as ``((1.5*x - 2.5)*x)*x + 1`` and ``(((x - 5)*x + 8)*x - 4) * -0.5``), the triangle
  ``1 - |x|`` or ``sinc(x) * sinc(x/3)`` on ``[-3, 3)``. The weights are divided by their sum (summed
  tap by tap in float64), then made fixed point with 22 fractional bits (``PRECISION_BITS = 32 - 8 - 2``):
  ``trunc(w * 2**22 + 0.5)`` for ``w >= 0``, ``trunc(w * 2**22 - 0.5)`` otherwise.
* An output value is ``2**21 + sum(v * k)`` in 32-bit integers, shifted right by 22 (floor) and clipped to
  0..255, i.e. rounded half up and saturated. Every pass stores uint8.

Two passes, each storing uint8; an axis whose length does not change is not resampled at all. The order
depends on the Pillow version (``pillow`` argument):

* Pillow 4.3-12.1: horizontal (width) first, then vertical.
* Pillow 12.2-12.3: the same, except that an image more than 100 times taller than wide whose height
  shrinks goes vertical first (a rule in ``Image.resize``).
* Pillow 13.0 (current; the default): vertical first when the height loses more than twice as many pixels
  as the width, ``(H - h) > 0 and (H - h) > 2 * (W - w)`` (a rule in the C code; the 12.2 rule is gone).
  For a uniform downscale that is an image more than twice as tall as wide; others keep Pillow 7's bytes.

Versions. The per-pass arithmetic above is the same from Pillow 4.3 (2017) through 13.0 (read in Pillow's
history and 13.0's sources: later changes only reformat or restructure the loops or add filters);
Pillow 4.0-4.2 chose the taps with ``floor(c - support)`` instead (not supported here). ``Image.resize``'s
default filter is BICUBIC from Pillow 7.0 (NEAREST before), so AIM2020's ``HR_img.resize(size)`` under
its pinned Pillow 7.1.2 is this bicubic in the horizontal-first order.

Exactness. The integer sums are exact in any order (so numpy's order does not matter); the float64 weight
computation uses the same operations in the same order as the C code, and Lanczos' ``sin`` is the C
library's (``math.sin``), as in Pillow. A Pillow built to fuse multiply-adds (FMA) into the weight formulas
could differ in a weight's last bit; this can move a fixed-point coefficient only when it lies within about
``2**-30`` of a rounding boundary.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple, Sequence

import numpy as np

__all__ = ["CURRENT_PILLOW", "PIL_FILTERS", "PilAxisPlan", "pil_axis_plan", "pil_resize"]

# The Pillow release whose behaviour pil_resize reproduces by default (the newest on PyPI when written).
CURRENT_PILLOW = (13, 0)

PRECISION_BITS = 32 - 8 - 2
_HALF = 1 << (PRECISION_BITS - 1)
# Output rows handled per block of a pass: keeps the int32 accumulator of a block in the L2 cache.
_BLOCK_BYTES = 1 << 19


def _bicubic(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    near = ((1.5 * x - 2.5) * x) * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * -0.5
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _bilinear(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: np.ndarray) -> np.ndarray:
    # math.sin (the C library's), not np.sin: numpy may use its own vectorised sine, a few ulp away.
    flat = [(_sinc(v) * _sinc(v / 3.0)) if -3.0 <= v < 3.0 else 0.0 for v in x.ravel().tolist()]
    return np.asarray(flat, dtype=np.float64).reshape(x.shape)


# name -> (filter, support); the names srprep uses for Pillow's Resampling.BICUBIC, BILINEAR, LANCZOS.
_FILTERS = {"bicubic": (_bicubic, 2.0), "bilinear": (_bilinear, 1.0), "lanczos": (_lanczos, 3.0)}
PIL_FILTERS = tuple(_FILTERS)


class PilAxisPlan(NamedTuple):
    """Fixed-point weights of one resized axis, as Pillow's ``precompute_coeffs`` +
    ``normalize_coeffs_8bpc`` make them. Arrays are read-only (plans are cached).

    Attributes:
        in_len, out_len: axis lengths before and after.
        starts: (out_len,) int64, first input index of each output (``xmin``).
        counts: (out_len,) int64, number of taps of each output (``xmax - xmin``).
        coeffs: (out_len, K) int32, fixed-point weights (``2**22`` = 1.0), zero past ``counts``.
    """

    in_len: int
    out_len: int
    starts: np.ndarray
    counts: np.ndarray
    coeffs: np.ndarray


@lru_cache(maxsize=64)
def pil_axis_plan(in_len: int, out_len: int, filter: str = "bicubic") -> PilAxisPlan:
    """The taps and fixed-point weights Pillow uses to resample an axis of ``in_len`` to ``out_len``.

    Args:
        in_len, out_len: positive integers (below ``2**24``: Pillow passes the box as C floats).
        filter: one of :data:`PIL_FILTERS`.

    Returns:
        A :class:`PilAxisPlan`.

    Example:
        >>> p = pil_axis_plan(8, 4)
        >>> p.starts.tolist(), p.counts.tolist(), int(p.coeffs[1].sum())
        ([0, 0, 1, 3], [5, 7, 7, 5], 4194303)
    """
    if filter not in _FILTERS:
        raise ValueError(f"filter must be one of {', '.join(PIL_FILTERS)}, not {filter!r}")
    if not (0 < in_len < 1 << 24 and 0 < out_len < 1 << 24):
        raise ValueError(f"axis lengths must be in 1..2**24-1, got {in_len} -> {out_len}")
    fn, base_support = _FILTERS[filter]
    scale = float(in_len) / out_len
    filterscale = max(scale, 1.0)
    support = base_support * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    center = (np.arange(out_len, dtype=np.float64) + 0.5) * scale
    # C's (int) cast truncates toward zero; negative starts are clamped to 0 either way.
    starts = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)
    stops = np.minimum(np.trunc(center + support + 0.5), in_len).astype(np.int64)
    counts = stops - starts
    taps = np.arange(ksize)
    valid = taps[None, :] < counts[:, None]
    pos = (starts[:, None] + taps[None, :]).astype(np.float64)
    w = np.where(valid, fn(((pos - center[:, None]) + 0.5) * (1.0 / filterscale)), 0.0)
    total = np.zeros(out_len)
    for j in range(ksize):  # tap by tap, in C's order (numpy's sum would be pairwise)
        total += w[:, j]
    nonzero = total != 0.0
    w[nonzero] /= total[nonzero, None]
    fixed = w * float(1 << PRECISION_BITS)
    coeffs = np.trunc(np.where(w < 0, fixed - 0.5, fixed + 0.5)).astype(np.int32)
    for a in (starts, counts, coeffs):
        a.flags.writeable = False
    return PilAxisPlan(in_len, out_len, starts, counts, coeffs)


def _pass_rows(a: np.ndarray, plan: PilAxisPlan) -> np.ndarray:
    """Resample axis 0 of a C-contiguous uint8 array ``(n, ...)`` -> ``(m, ...)`` uint8."""
    n = a.shape[0]
    rows = a.reshape(n, -1)
    out = np.empty((plan.out_len, rows.shape[1]), np.uint8)
    ksize = plan.coeffs.shape[1]
    # A tap past the last input row has weight 0; clamp its index so the gather stays in bounds.
    index = np.minimum(plan.starts[:, None] + np.arange(ksize)[None, :], n - 1)
    block = max(1, _BLOCK_BYTES // (4 * max(1, rows.shape[1])))
    for lo in range(0, plan.out_len, block):
        hi = min(lo + block, plan.out_len)
        acc = np.full((hi - lo, rows.shape[1]), _HALF, np.int32)
        tmp = np.empty_like(acc)
        used = int(plan.counts[lo:hi].max())
        for j in range(used):
            np.multiply(rows[index[lo:hi, j]], plan.coeffs[lo:hi, j, None], out=tmp)
            acc += tmp
        acc >>= PRECISION_BITS  # arithmetic shift: floor, as C's >> on Pillow's compilers
        np.clip(acc, 0, 255, out=acc)
        out[lo:hi] = acc
    return out.reshape((plan.out_len,) + a.shape[1:])


def _resize_height(a: np.ndarray, out_h: int, filter: str) -> np.ndarray:
    if a.shape[0] == out_h:
        return a
    return _pass_rows(np.ascontiguousarray(a), pil_axis_plan(a.shape[0], out_h, filter))


def _resize_width(a: np.ndarray, out_w: int, filter: str) -> np.ndarray:
    if a.shape[1] == out_w:
        return a
    t = np.ascontiguousarray(np.swapaxes(a, 0, 1))
    return np.swapaxes(_pass_rows(t, pil_axis_plan(a.shape[1], out_w, filter)), 0, 1)


def _vertical_first(in_hw: tuple[int, int], out_hw: tuple[int, int], pillow: tuple[int, ...]) -> bool:
    (h, w), (oh, ow) = in_hw, out_hw
    if pillow >= (13, 0):
        return (h - oh) > 0 and (h - oh) > (w - ow) * 2
    if pillow >= (12, 2):
        return h > w * 100 and oh < h
    return False


def pil_resize(img: np.ndarray, size: Sequence[int], filter: str = "bicubic", *,
               pillow: Sequence[int] = CURRENT_PILLOW) -> np.ndarray:
    """Plain Pillow's ``Image.fromarray(img).resize((out_w, out_h), filter)``, bit for bit.

    Note the order of ``size``: ``(out_h, out_w)`` as everywhere in srprep, the reverse of Pillow's.

    Args:
        img: ``(H, W, 3)`` (RGB) or ``(H, W)`` (L) uint8.
        size: ``(out_h, out_w)``, positive integers; shrinking, enlarging or both.
        filter: "bicubic" (Pillow's ``Image.resize`` default since 7.0), "bilinear" or "lanczos".
        pillow: the Pillow version to reproduce, e.g. ``(7, 1, 2)``; it only chooses the pass order (see
            the module docstring). Default: :data:`CURRENT_PILLOW`. Versions before 4.3 are refused.

    Returns:
        ``(out_h, out_w[, 3])`` uint8, a fresh C-contiguous array (also when the size does not change).

    Raises:
        TypeError: not a uint8 numpy array.
        ValueError: a shape other than HW or HWC with 3 channels, a size below 1, an unknown filter, a
            Pillow version before 4.3.

    Example:
        >>> img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
        >>> pil_resize(img, (2, 2))[:, :, 0]
        array([[ 44,  71],
               [154, 181]], dtype=uint8)
    """
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise TypeError(f"pil_resize: expected a uint8 numpy array, got "
                        f"{img.dtype if isinstance(img, np.ndarray) else type(img).__name__}")
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)) or 0 in img.shape:
        raise ValueError(f"pil_resize: expected an (H, W, 3) RGB or (H, W) L image, got shape {img.shape}")
    if filter not in _FILTERS:
        raise ValueError(f"pil_resize: filter must be one of {', '.join(PIL_FILTERS)}, not {filter!r}")
    pillow = tuple(int(v) for v in pillow)
    if pillow < (4, 3):
        raise ValueError(f"pil_resize: Pillow {'.'.join(map(str, pillow))} is not reproduced (4.3 or later)")
    out_h, out_w = (int(v) for v in size)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"pil_resize: size must be positive, got {tuple(size)}")
    if _vertical_first(img.shape[:2], (out_h, out_w), pillow):
        out = _resize_width(_resize_height(img, out_h, filter), out_w, filter)
    else:
        out = _resize_height(_resize_width(img, out_w, filter), out_h, filter)
    return img.copy() if out is img else np.ascontiguousarray(out)
