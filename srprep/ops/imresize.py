"""MATLAB-exact bicubic ``imresize`` (numpy), in both conventions the SR literature used.

The LR images of the SR benchmarks were made by MATLAB's ``imresize(HR, 1/s, 'bicubic')``. Two conventions
exist and differ in 10-15 % of the pixels, so a data set must be re-made with the one it was made with:

* **uint8** (``im2double=False`` on a uint8 image; EDSR/RCAN/SwinIR ``LR_bicubic``): MATLAB resizes one
  dimension at a time and, for uint8 data, rounds (half away from zero) and saturates to uint8 after *each*
  pass.
* **im2double** (``im2double=True``; BasicSR ``LRbicx*``): both passes in double on ``img/255``, one final
  conversion (``imwrite`` = :func:`to_uint8`).

Algorithm (MATLAB's ``imresize.m``, ``contributions()``), for each dimension: Keys cubic (a = -0.5, width
4); when downscaling with antialiasing the kernel is stretched by ``1/scale`` and its values scaled by
``scale``; output ``x`` (1-based) maps to ``u = x/scale + 0.5*(1 - 1/scale)``; taps ``left + (0..P-1)`` with
``left = floor(u - width/2)``, ``P = ceil(width) + 2``; weights normalised per output; out-of-range indices
folded by mirroring (``[1:n, n:-1:1]``, i.e. symmetric padding, edge sample repeated); weight columns that
are zero for every output dropped. The dimension with the smaller scale goes first (rows on a tie).
Output size ``ceil(in*scale)``, or an explicit size (then ``scale = out/in``).

Exactness, and why the code looks the way it does
-------------------------------------------------
Rounding ties are frequent: the weights of x2 and x4 are dyadic (x2: ``n/256``, x4: ``n/4096``), so
``sum(w*v)`` often lands exactly on ``k + 0.5``. Two regimes are therefore kept apart:

* **exact** passes: uint8 input and dyadic weights small enough that every product and partial sum is a
  multiple of ``2**-e`` below ``2**24`` (checked per weight table, see :class:`AxisPlan`). Then float32
  arithmetic is *exact in any order* and the result is the true rational value. The uint8 convention at
  x2/x4/x8 runs entirely this way; the rounding to uint8 is done by adding a quarter grid step (no tie can
  remain) and letting OpenCV's round-to-nearest saturate.
* **MATLAB-order** passes (every other case: float input, x3, irregular sizes...): float64, taps
  accumulated one after the other in MATLAB's order, multiplication and addition rounded separately (no
  FMA). On Set5 at x2 (im2double) the 97 exact ties are resolved by this float noise; summing in another
  order (reversed, pairwise, FMA, W pass first) flips 26-51 of them.
* **im2double on uint8 with dyadic weights** combines both: the exact value ``S`` (levels) is computed fast;
  where ``S`` is exactly ``k + 0.5`` the pixel is recomputed in MATLAB's order, reproducing MATLAB's
  tie breaking. Elsewhere ``S`` is at least ``2**-16`` (x2) / ``2**-24`` (x4) levels from a tie, 10^4 to
  10^6 times MATLAB's float64 error (~1e-11 levels), so the rounding cannot differ; those pixels return
  ``S/255`` (within an ulp or so of MATLAB's double).

Speed (2040x1356 RGB, 2-core AMD EPYC: see ``benchmarks/RESULTS.md``). Integer-factor downscaling (rows
first) runs in a small compiled kernel (``_bicubic_native.c``, built by ``setup.py``), both passes fused per
output row (the rows pass reads only the rows it needs, the columns pass runs in polyphase form over
contiguous memory, nothing larger than two rows is written but the output), the output rows split over
``threads`` threads. uint8 input at x2/x4: integer weights (the dyadic weights times ``2**e``) summed in
float32/float64, exact in any order. Other cases (x3, float input): MATLAB's double arithmetic, taps in
order, no FMA (compiled with ``-ffp-contract=off``; SIMD lanes only hold neighbouring outputs). It is
optional: every case it covers is also covered by the portable paths below, which give the same bytes (the
tests run both) and were the whole story before it:

Integer-scale weights are shift invariant, so a pass is a stride-``s`` correlation with one kernel, and
MATLAB's mirror folding at the borders is OpenCV's ``BORDER_REFLECT``:

* uint8 convention: each pass is one ``cv2.filter2D`` 8-bit -> 8-bit over the whole axis (OpenCV's 8-bit
  filter sums in float32, exact here; the rounding bias goes in its ``delta``). The rows pass then costs
  nothing more (every s-th row is a strided view OpenCV reads directly); the columns are picked with
  OpenCV's nearest-neighbour resize by the exact integer factor (5x faster than numpy's strided copy).
* im2double: strips of ``_BAND`` output rows so the float intermediates stay in cache; the strip's input
  rows are converted to float32 (OpenCV's fastest filter depth), rows pass (polyphase from x3 on: ``s``
  short filters on the row phases instead of one filter whose rows are mostly thrown away), exact
  float64 columns pass, tie detection.
* MATLAB-order passes: OpenCV's float64 ``filter2D``, whose tap order (kernel order, no FMA) is checked
  once per process against a numpy reference (:func:`_cv2_checks`); if it differs, or the case is not
  covered (irregular sizes, > 4 channels, tiny images), a numpy per-tap path in MATLAB's order is used.

Measured and rejected: per-tap numpy over strided views (memory bound, several times slower); a
block-banded BLAS product (needs a float copy of the input first); the polyphase form for the 8-bit
path (its float adds cost more than the skipped rows); float64 filters for exact passes (2-3x slower
than float32); processing the uint8 convention in strips (no gain).

"Too small": an axis shorter than the kernel's reach beyond its edge (3 pixels at x2, 6 at x4, 12 at x8,
2-3 when upscaling) is rejected with a ValueError. MATLAB would fold the mirror index a second time
there; no SR data set needs that, and it would hide a wrong axis or a thumbnail passed by mistake.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import NamedTuple, Sequence

import numpy as np

try:  # OpenCV is a dependency; the numpy paths below keep working without it.
    import cv2
except ImportError:  # pragma: no cover - exercised only on installs without OpenCV
    cv2 = None
try:  # the compiled kernel (setup.py builds it; optional: the OpenCV/numpy paths give the same bytes)
    from srprep.ops import _bicubic_native as _native
except ImportError:  # pragma: no cover - exercised only on installs built without a C compiler
    _native = None

__all__ = ["imresize_matlab", "to_uint8", "output_size", "AxisPlan", "axis_plan", "cubic", "native_available"]

_KERNEL_WIDTH = 4.0
# Most taps for which cv2.filter2D stays a direct (non-DFT) correlation: OpenCV switches to a DFT
# (inexact) for kernels of 50+ coefficients (130+ for some depth pairs).
_CV2_MAX_TAPS = 49
# More distinct weight rows than this (irregular sizes) -> numpy per-tap path.
_CV2_MAX_GROUPS = 8
# Rows passes with float sums: from this stride on, the polyphase form (s small filters + float adds)
# beats one full-length filter whose rows are mostly thrown away (measured; at x2 it does not). The
# 8-bit -> 8-bit filter of the uint8 convention is fast enough that it always runs full length.
_PHASES_MIN_STRIDE = 3
# Output rows per strip in the banded im2double path (intermediates of a strip stay in the L2/L3 cache).
_BAND = 32


# --------------------------------------------------------------------------------------------------------------
# Kernel, contributions
# --------------------------------------------------------------------------------------------------------------
def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``), support [-2, 2].

    Evaluated term by term as MATLAB writes it (``|x|.^3`` via ``pow``); float64 in, float64 out.

    Example:
        >>> cubic(np.array([0.0, 0.5, 1.0, 1.5, 2.0]))
        array([ 1.    ,  0.5625,  0.    , -0.0625,  0.    ])
    """
    ax = np.abs(np.asarray(x, dtype=np.float64))
    ax2 = ax**2
    ax3 = ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (1 < ax) & (ax <= 2)
    )


class AxisPlan(NamedTuple):
    """Weights and indices of one resized axis, as MATLAB's ``contributions()`` makes them, plus what the
    fast paths need. Arrays are read-only (the plan is cached and shared).

    Attributes:
        in_len, out_len: lengths of the axis before and after.
        scale: the scale used in the formulas (``out/in`` when a size was given).
        antialias: whether the kernel was stretched (only when ``scale < 1``).
        weights: (out_len, P) float64, each row sums to 1 (up to rounding); zero columns removed.
        indices: (out_len, P) int64, 0-based input indices after mirror folding.
        starts: (out_len,) int64, unfolded 0-based index of each output's first kept tap.
        offsets: (P,) int64, kept tap positions relative to ``starts`` (increasing, first is 0).
        pad_before, pad_after: how far the taps reach beyond the first / last sample.
        groups: tuple of (kernel, members): ``kernel`` (K,) float64 is the weight row spread over
            ``offsets`` (zeros between), ``members`` the (sorted) outputs that use it.
        dyadic_exp: smallest ``e`` with every weight a multiple of ``2**-e`` (``None`` if > 52).
        abs_sum: max over outputs of ``sum(|w|)`` (the gain bound used by the exactness checks).
    """

    in_len: int
    out_len: int
    scale: float
    antialias: bool
    weights: np.ndarray
    indices: np.ndarray
    starts: np.ndarray
    offsets: np.ndarray
    pad_before: int
    pad_after: int
    groups: tuple
    dyadic_exp: int | None
    abs_sum: float


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@lru_cache(maxsize=256)
def axis_plan(in_len: int, out_len: int, scale: float, antialias: bool = True) -> AxisPlan:
    """MATLAB's ``contributions(in_len, out_len, scale, @cubic, 4, antialias)``, cached.

    Example:
        >>> p = axis_plan(8, 4, 0.5)
        >>> p.weights[0] * 256
        array([ -3.,  -9.,  29., 111., 111.,  29.,  -9.,  -3.])
        >>> p.indices[0]
        array([2, 1, 0, 0, 1, 2, 3, 4])
    """
    if in_len < 1 or out_len < 1:
        raise ValueError(f"axis lengths must be >= 1, got {in_len} -> {out_len}")
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    width = _KERNEL_WIDTH
    stretch = scale < 1 and antialias
    if stretch:
        width = width / scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    n_taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(n_taps, dtype=np.float64)[None, :]
    dist = u[:, None] - idx
    w = scale * cubic(scale * dist) if stretch else cubic(dist)
    # MATLAB's sum(weights, 2) adds the columns in order; numpy's pairwise sum would round differently.
    total = w[:, 0].copy()
    for k in range(1, n_taps):
        total = total + w[:, k]
    w = w / total[:, None]
    keep = np.flatnonzero(np.any(w != 0, axis=0))
    if keep.size == 0:  # pragma: no cover - cannot happen for the cubic kernel
        raise ValueError("no non-zero weights")
    w = np.ascontiguousarray(w[:, keep])
    unfolded = idx[:, keep].astype(np.int64) - 1  # 0-based
    period = 2 * in_len
    folded = np.mod(unfolded, period)
    folded = np.where(folded < in_len, folded, period - 1 - folded)

    starts = unfolded[:, 0].copy()
    offsets = keep - keep[0]
    pad_before = int(max(0, -unfolded.min()))
    pad_after = int(max(0, unfolded.max() - (in_len - 1)))

    rows, inverse = np.unique(w, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    groups = []
    span = int(offsets[-1]) + 1
    for g in range(rows.shape[0]):
        kern = np.zeros(span)
        kern[offsets] = rows[g]
        groups.append((_readonly(kern), _readonly(np.flatnonzero(inverse == g))))

    dyadic = None
    for e in range(0, 53):
        sc = np.ldexp(w, e)
        if np.all(sc == np.round(sc)):
            dyadic = e
            break
    abs_sum = float(np.abs(w).sum(axis=1).max())
    return AxisPlan(
        in_len, out_len, float(scale), bool(stretch), _readonly(w), _readonly(folded), _readonly(starts),
        _readonly(offsets), pad_before, pad_after, tuple(groups), dyadic, abs_sum,
    )


# --------------------------------------------------------------------------------------------------------------
# Sizes, validation
# --------------------------------------------------------------------------------------------------------------
def _pair(v, name: str) -> tuple:
    if isinstance(v, (tuple, list, np.ndarray)):
        v = tuple(v)
        if len(v) != 2:
            raise ValueError(f"{name} must be a number or a pair (h, w), got {v!r}")
        return v
    return (v, v)


def output_size(
    in_hw: Sequence[int], scale=None, size=None
) -> tuple[tuple[int, int], tuple[float, float]]:
    """Output (h, w) and the per-axis scales MATLAB would use.

    ``scale`` alone: ``out = ceil(in*scale)`` and the formulas use ``scale``. ``size`` given: ``out =
    size`` and ``scale = out/in`` (MATLAB derives the scale from the size, also when both are given).

    Example:
        >>> output_size((229, 345), 0.25)
        ((58, 87), (0.25, 0.25))
    """
    if scale is None and size is None:
        raise ValueError("give a scale or a size")
    in_h, in_w = int(in_hw[0]), int(in_hw[1])
    if in_h < 1 or in_w < 1:
        raise ValueError(f"image too small: {in_h}x{in_w}")
    scales: list[float | None] = [None, None]
    if scale is not None:
        for i, s in enumerate(_pair(scale, "scale")):
            try:
                s = float(s)
            except (TypeError, ValueError):
                raise ValueError(f"scale must be a number > 0, got {s!r}") from None
            if not (s > 0 and math.isfinite(s)):
                raise ValueError(f"scale must be a finite number > 0, got {s!r}")
            scales[i] = s
    outs = [None, None]
    if size is not None:
        for i, n in enumerate(_pair(size, "size")):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) and not (
                isinstance(n, float) and n.is_integer()
            ):
                raise ValueError(f"size must hold integers >= 1, got {size!r}")
            if n < 1:
                raise ValueError(f"size must be >= 1, got {size!r}")
            outs[i] = int(n)
    ins = (in_h, in_w)
    res_scale = []
    for i in range(2):
        if outs[i] is not None:
            res_scale.append(outs[i] / ins[i])
        else:
            outs[i] = int(math.ceil(scales[i] * ins[i]))
            res_scale.append(scales[i])
    return (outs[0], outs[1]), (res_scale[0], res_scale[1])


def _axis_order(scales: tuple[float, float]) -> list[int]:
    # MATLAB: [~, order] = sort(scale) -- stable, so rows first on a tie.
    return sorted((0, 1), key=lambda d: scales[d])


def _check_reach(plan: AxisPlan, axis: int) -> None:
    reach = max(plan.pad_before, plan.pad_after)
    if reach > plan.in_len:
        raise ValueError(
            f"image too small: axis {axis} has {plan.in_len} pixels, but the bicubic kernel at scale "
            f"{plan.scale:g} reaches {reach} pixels beyond its edge; it needs at least {reach} pixels "
            f"along that axis"
        )


def _plans_for(shape, scale, size, antialias) -> list[tuple[int, AxisPlan]]:
    (oh, ow), scales = output_size(shape[:2], scale, size)
    outs = (oh, ow)
    plans = []
    for axis in _axis_order(scales):
        plan = axis_plan(int(shape[axis]), outs[axis], float(scales[axis]), bool(antialias))
        _check_reach(plan, axis)
        plans.append((axis, plan))
    return plans


# --------------------------------------------------------------------------------------------------------------
# Exactness bookkeeping
# --------------------------------------------------------------------------------------------------------------
def _exact_depth_u8(plan: AxisPlan) -> str | None:
    """``"f32"`` / ``"f64"`` if a pass over uint8 data (0..255) is exact in that float type in any order,
    even with the rounding bias 2**-(e+2) added (all partial sums are multiples of 2**-(e+2) below
    2**24 / 2**53), else None. x2 (e=8) and x4 (e=12): float32; x8 (e=16): float64; x3: None."""
    e = plan.dyadic_exp
    if e is None or e > 48:
        return None
    need = 255.0 * plan.abs_sum * 2.0 ** (e + 2) + 1
    return "f32" if need < 2.0**24 else ("f64" if need < 2.0**53 else None)


def _exact_f64_second(p1: AxisPlan, p2: AxisPlan) -> bool:
    """Whether pass 2 applied to pass 1's exact float values (uint8 input) is exact in float64."""
    if p1.dyadic_exp is None or p2.dyadic_exp is None:
        return False
    bits = math.log2(255.0 * p1.abs_sum * p2.abs_sum + 1) + p1.dyadic_exp + p2.dyadic_exp + 1
    return bits < 52


# --------------------------------------------------------------------------------------------------------------
# numpy per-tap path (MATLAB's order; always correct, used as fallback and as the small-image path)
# --------------------------------------------------------------------------------------------------------------
def _bshape(ndim: int, axis: int, n: int) -> tuple:
    shape = [1] * ndim
    shape[axis] = n
    return tuple(shape)


def _pass_taps(a: np.ndarray, axis: int, plan: AxisPlan) -> np.ndarray:
    """sum_k w[:, k] * a[idx[:, k]] along ``axis``, taps in MATLAB's order, float64 (no rounding)."""
    w, idx = plan.weights, plan.indices
    acc = None
    for k in range(w.shape[1]):
        term = np.take(a, idx[:, k], axis=axis) * w[:, k].reshape(_bshape(a.ndim, axis, plan.out_len))
        acc = term if acc is None else acc + term
    return acc


def _round_u8(x: np.ndarray) -> np.ndarray:
    """Round half away from zero and saturate to uint8 (MATLAB's double -> uint8), from float64."""
    x = np.add(x, 0.5)
    np.floor(x, out=x)
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8)


# --------------------------------------------------------------------------------------------------------------
# OpenCV path
# --------------------------------------------------------------------------------------------------------------
def _seq_corr_ref(a: np.ndarray, kern: np.ndarray, axis: int) -> np.ndarray:
    """Reference for the self-check: full-length correlation with symmetric padding, taps in order."""
    pad = len(kern)
    p = np.concatenate([np.flip(np.take(a, range(pad), axis=axis), axis), a,
                        np.flip(np.take(a, range(a.shape[axis] - pad, a.shape[axis]), axis=axis), axis)],
                       axis=axis).astype(np.float64)
    n = a.shape[axis]
    acc = None
    for t, kv in enumerate(kern):
        sl = [slice(None)] * a.ndim
        sl[axis] = slice(pad + t, pad + t + n)
        term = p[tuple(sl)] * kv
        acc = term if acc is None else acc + term
    return acc


@lru_cache(maxsize=1)
def _cv2_checks() -> tuple[bool, bool, bool]:
    """(float64 filter2D == MATLAB-order sum, 8-bit/float32 filter2D exact, nearest resize picks x*s)
    on this machine's OpenCV build.

    OpenCV picks SIMD code at run time; its float64 correlation must add the taps in kernel order with
    separately rounded products (no FMA) to reproduce MATLAB's rounding, and its 8-bit filter must compute
    the dyadic sums exactly and round to nearest. Verified once, on small random data.
    """
    if cv2 is None:
        return (False, False, False)
    try:
        rng = np.random.default_rng(12345)
        kern = rng.standard_normal(9)
        kern[3] = 0.0
        ok64 = True
        for shape in ((41, 37), (29, 33, 3)):
            a = rng.random(shape)
            for axis in (0, 1):
                if a.ndim == 2 or axis == 1:
                    k2 = kern.reshape(-1, 1) if axis == 0 else kern.reshape(1, -1)
                    # anchor 0: output j correlates the window starting at input j
                    got = cv2.filter2D(a, cv2.CV_64F, k2, anchor=(0, 0), borderType=cv2.BORDER_REFLECT)
                    ok64 &= np.array_equal(got, _seq_corr_ref(a, kern, axis))
        u8 = rng.integers(0, 256, (45, 31, 3), dtype=np.uint8)
        ku = np.array([-3, -9, 29, 111, 111, 29, -9, -3], np.float64) / 256
        ok8 = True
        for axis in (0, 1):
            k2 = ku.reshape(-1, 1) if axis == 0 else ku.reshape(1, -1)
            src = u8.reshape(45, -1) if axis == 0 else u8
            got = cv2.filter2D(src, -1, k2.astype(np.float32), anchor=(0, 0), delta=2.0**-10,
                               borderType=cv2.BORDER_REFLECT)
            ref = _round_u8(_seq_corr_ref(src, ku, axis))
            ok8 &= np.array_equal(got, ref)
            got32 = cv2.filter2D(src, cv2.CV_32F, k2.astype(np.float32), anchor=(0, 0),
                                 borderType=cv2.BORDER_REFLECT)
            ok8 &= np.array_equal(got32.astype(np.float64), _seq_corr_ref(src, ku, axis))
            got64 = cv2.filter2D(src, cv2.CV_64F, k2, anchor=(0, 0), borderType=cv2.BORDER_REFLECT)
            ok64 &= np.array_equal(got64, _seq_corr_ref(src, ku, axis))
        okn = True
        base = np.arange(7 * 97 * 3).reshape(7, 97, 3)
        for img in (base.astype(np.float32), base.astype(np.float64), (base % 251).astype(np.uint8)):
            for step in range(2, 17):
                cnt = 97 // step
                got = cv2.resize(img[:, : step * cnt], (cnt, 7), interpolation=cv2.INTER_NEAREST)
                okn &= np.array_equal(got, img[:, : step * cnt: step])
        return (bool(ok64), bool(ok8), bool(okn))
    except cv2.error:  # pragma: no cover - an OpenCV without these depth pairs
        return (False, False, False)


def _cv2_geometry(a: np.ndarray, axis: int, plan: AxisPlan):
    """Anchor for cv2.filter2D along ``axis`` (or None if the fast path does not apply)."""
    if cv2 is None or len(plan.groups) > _CV2_MAX_GROUPS:
        return None
    span = len(plan.groups[0][0])
    if span > _CV2_MAX_TAPS:
        return None
    n = plan.in_len
    if axis == 1 and a.ndim == 3 and a.shape[2] > 4:  # OpenCV caps channels; keep the common cases
        return None
    if a.shape[axis] != n or max(plan.pad_before, plan.pad_after) >= n:
        return None
    lo, hi = int(plan.starts.min()), int(plan.starts.max())
    anchor = -lo
    if not (0 <= anchor < span and hi + anchor <= n - 1):
        return None
    return anchor


def _as_cv2(a: np.ndarray, axis: int) -> np.ndarray:
    """View for OpenCV: the filtered axis as rows (axis 0, channels folded into columns) or as columns
    of an up-to-4-channel image (axis 1). Inner dimensions must be contiguous; rows may be strided."""
    if axis == 0 and a.ndim == 3:
        if a.strides[2] != a.itemsize or a.strides[1] != a.shape[2] * a.itemsize:
            a = np.ascontiguousarray(a)
        return a.reshape(a.shape[0], -1) if a.flags.c_contiguous else np.lib.stride_tricks.as_strided(
            a, (a.shape[0], a.shape[1] * a.shape[2]), (a.strides[0], a.itemsize))
    if a.strides[-1] != a.itemsize or (a.ndim == 3 and a.strides[1] != a.shape[2] * a.itemsize):
        a = np.ascontiguousarray(a)
    return a


def _fold(idx: np.ndarray, n: int) -> np.ndarray:
    """MATLAB's index folding ``aux = [1:n, n:-1:1]`` (0-based): symmetric padding, period 2n."""
    f = np.mod(idx, 2 * n)
    return np.where(f < n, f, 2 * n - 1 - f)


def _arith(v: np.ndarray) -> tuple[int, int] | None:
    """(first, step) if ``v`` is an arithmetic progression with step >= 1, else None."""
    if len(v) == 1:
        return int(v[0]), 1
    step = int(v[1] - v[0])
    if step >= 1 and np.array_equal(v, v[0] + step * np.arange(len(v))):
        return int(v[0]), step
    return None


def _pick_columns(f: np.ndarray, first: int, step: int, count: int) -> np.ndarray:
    """Columns ``first, first+step, ...`` of an image as a new contiguous array.

    OpenCV's nearest-neighbour resize by an exact integer factor reads source column ``x*step`` (checked
    once by :func:`_cv2_checks`) and copies ~5x faster than numpy's strided pixel copy."""
    if (step > 1 and first + step * count <= f.shape[1] and (f.ndim == 2 or f.shape[2] <= 4)
            and _cv2_checks()[2]):
        src = f[:, first: first + step * count]
        out = cv2.resize(src, (count, f.shape[0]), interpolation=cv2.INTER_NEAREST)
        return out.reshape(f.shape[0], count, *f.shape[2:])
    return np.ascontiguousarray(f[:, first: first + step * (count - 1) + 1: step])


def _select(full: list, axis: int, plan: AxisPlan, anchor: int, shape_out: tuple) -> np.ndarray:
    """Pick each output's row/column from the stride-1 correlation(s) ``full`` (list, one per group).
    Rows come back as a strided view (OpenCV reads those directly), columns as a new array."""
    if len(plan.groups) == 1:
        pos = plan.starts + anchor
        ar = _arith(pos)
        if ar is not None and axis == 0:
            return full[0][ar[0]: ar[0] + ar[1] * (len(pos) - 1) + 1: ar[1]]
        if ar is not None:
            return _pick_columns(full[0], ar[0], ar[1], len(pos))
        return np.take(full[0], pos, axis=axis)
    out = np.empty(shape_out, dtype=full[0].dtype)
    for (kern, members), f in zip(plan.groups, full):
        picked = np.take(f, plan.starts[members] + anchor, axis=axis)
        if axis == 0:
            out[members] = picked
        else:
            out[:, members] = picked
    return out


def _stride_geometry(plan: AxisPlan):
    """(c0, s) when the outputs of ``plan`` are one weight row at a constant stride ``s`` >= 1 starting at
    ``c0`` (integer-factor downscaling), else None."""
    return _arith(plan.starts) if len(plan.groups) == 1 else None


def _phase_geometry(plan: AxisPlan):
    """(c0, s) when the outputs of ``plan`` are one kernel at stride ``s`` >= 2 starting at ``c0``."""
    ar = _stride_geometry(plan) if plan.out_len >= 2 else None
    return ar if ar is not None and ar[1] >= 2 else None


def _pass_phases(a: np.ndarray, plan: AxisPlan, work: str, to_u8: bool, delta: float) -> np.ndarray:
    """Rows pass (axis 0) at stride s without computing the rows that are thrown away.

    Output i = sum_t k[t] a[c0 + s*i + t]. Splitting the taps by t mod s, each residue r is a stride-1
    correlation of the row-phase view ``a[c0 + r::s]`` with ``k[r::s]``; the s partial sums are added.
    Only used where the arithmetic is exact (dyadic weights on integer data) in the ``work`` precision
    ("f32"/"f64"), so the changed summation order does not matter. ``to_u8``: round to uint8, ``delta``
    being the rounding bias; else return float sums. The few border outputs whose window leaves the
    image are computed from a folded slab.
    """
    c0, s = _phase_geometry(plan)
    src = _as_cv2(a, 0)
    n, m, M = plan.in_len, plan.out_len, src.shape[1]
    kern = plan.groups[0][0]
    K = len(kern)
    fdepth, ftype = (cv2.CV_32F, np.float32) if work == "f32" else (cv2.CV_64F, np.float64)
    odepth = cv2.CV_8U if to_u8 else fdepth
    out = np.empty((m, M), np.uint8 if to_u8 else ftype)

    def finish(f):  # float sums (bias included) -> output type
        return np.clip(np.rint(f), 0, 255) if to_u8 else f

    i_lo = min(m, max(0, -(c0 // s)))
    i_hi = max(i_lo, min(m, (n - K - c0) // s + 1))
    cnt = i_hi - i_lo
    if cnt > 0:
        parts = []
        for r in range(s):
            kr = kern[r::s]
            if not kr.any():
                continue
            first = c0 + s * i_lo + r
            z = src[first: first + s * (cnt + len(kr) - 2) + 1: s]
            f = cv2.filter2D(z, fdepth, kr.reshape(-1, 1).astype(ftype), anchor=(0, 0),
                             delta=delta if not parts else 0.0, borderType=cv2.BORDER_CONSTANT)
            parts.append(f[:cnt])
        if len(parts) == 1:
            out[i_lo:i_hi] = finish(parts[0])
        acc = parts[0]
        for j, f in enumerate(parts[1:], 1):
            if j == len(parts) - 1:  # OpenCV adds in the float type, then saturates (round to nearest)
                cv2.add(acc, f, dst=out[i_lo:i_hi], dtype=odepth)
            else:
                acc = cv2.add(acc, f)
    for b0, b1 in ((0, i_lo), (i_hi, m)):
        if b1 <= b0:
            continue
        rows = _fold(np.arange(c0 + s * b0, c0 + s * (b1 - 1) + K), n)
        slab = np.take(src, rows, axis=0)
        f = cv2.filter2D(slab, fdepth, kern.reshape(-1, 1).astype(ftype), anchor=(0, 0), delta=delta,
                         borderType=cv2.BORDER_CONSTANT)
        out[b0:b1] = finish(f[0: s * (b1 - b0 - 1) + 1: s])
    return out.reshape((m,) + a.shape[1:])


def _pass_cv2(a: np.ndarray, axis: int, plan: AxisPlan, anchor: int, ddepth: int, delta: float = 0.0):
    """Run the correlation of every weight group with cv2.filter2D and select the outputs."""
    src = _as_cv2(a, axis)
    fulls = []
    for kern, _ in plan.groups:
        k2 = kern.reshape(-1, 1) if axis == 0 else kern.reshape(1, -1)
        if ddepth != cv2.CV_64F:
            k2 = k2.astype(np.float32)
        cv_anchor = (0, anchor) if axis == 0 else (anchor, 0)
        f = cv2.filter2D(src, ddepth, k2, anchor=cv_anchor, delta=delta, borderType=cv2.BORDER_REFLECT)
        if axis == 0 and a.ndim == 3:
            f = f.reshape(f.shape[0], a.shape[1], a.shape[2])
        if f.ndim < a.ndim:  # OpenCV drops a trailing channel axis of 1
            f = f.reshape(f.shape + (1,) * (a.ndim - f.ndim))
        fulls.append(f)
    shape_out = list(a.shape)
    shape_out[axis] = plan.out_len
    return _select(fulls, axis, plan, anchor, tuple(shape_out))


# --------------------------------------------------------------------------------------------------------------
# One pass, three arithmetic regimes
# --------------------------------------------------------------------------------------------------------------
def _use_phases(axis: int, plan: AxisPlan, min_stride: int) -> bool:
    """Polyphase rows pass, or one full-length filter + subsampling, whichever measured faster."""
    geo = _phase_geometry(plan) if axis == 0 else None
    return geo is not None and geo[1] >= min_stride


def _pass_u8_round(a: np.ndarray, axis: int, plan: AxisPlan) -> np.ndarray:
    """uint8 -> uint8 pass of the uint8 convention: MATLAB-exact sum, round half away, saturate."""
    anchor = _cv2_geometry(a, axis, plan)
    checks = _cv2_checks() if anchor is not None else (False, False, False)
    depth = _exact_depth_u8(plan)
    if anchor is not None and depth is not None and checks[0] and checks[1]:
        # Exact sums S on a 2**-e grid. S + 2**-(e+2) is never a half-integer (its numerator over
        # 2**(e+2) is odd), rounds up exactly when S is a tie k+1/2 and down below it, so OpenCV's
        # round-to-nearest (any tie rule) gives MATLAB's round-half-away; negatives saturate to 0.
        # (Half a grid step, 2**-(e+1), would itself create ties when e = 0, e.g. at scale 1.)
        bias = 2.0 ** -(plan.dyadic_exp + 2)
        if depth == "f32":  # OpenCV's 8-bit filter sums in float32; its 8U->8U path is the fastest
            return _pass_cv2(a, axis, plan, anchor, -1, delta=bias)
        if _use_phases(axis, plan, _PHASES_MIN_STRIDE):
            return _pass_phases(a, plan, depth, True, bias)
        return _round_u8(_pass_cv2(a, axis, plan, anchor, cv2.CV_64F))
    if anchor is not None and checks[0]:
        return _round_u8(_pass_cv2(a, axis, plan, anchor, cv2.CV_64F))
    return _round_u8(_pass_taps(a, axis, plan))


def _pass_f64(a: np.ndarray, axis: int, plan: AxisPlan) -> np.ndarray:
    """float64 (or uint8) -> float64 pass in MATLAB's order."""
    anchor = _cv2_geometry(a, axis, plan)
    if anchor is not None and _cv2_checks()[0]:
        return _pass_cv2(a, axis, plan, anchor, cv2.CV_64F)
    return _pass_taps(a, axis, plan)


def _pass_exact(a: np.ndarray, axis: int, plan: AxisPlan, work: str) -> np.ndarray:
    """Exact pass (order irrelevant) of integer-valued data, float32 (``work="f32"``, uint8 input only)
    or float64 sums."""
    anchor = _cv2_geometry(a, axis, plan)
    checks = _cv2_checks() if anchor is not None else (False, False, False)
    if anchor is not None and checks[0] and checks[1]:
        if _use_phases(axis, plan, _PHASES_MIN_STRIDE):
            return _pass_phases(a, plan, work, False, 0.0)
        return _pass_cv2(a, axis, plan, anchor, cv2.CV_32F if work == "f32" else cv2.CV_64F)
    out = _pass_taps(a, axis, plan)
    return out.astype(np.float32) if work == "f32" else out


def _levels_banded(img: np.ndarray, p1: AxisPlan, p2: AxisPlan):
    """Exact ``sum(W v)`` (levels) of a uint8 image, rows pass then columns pass, in strips of
    ``_BAND`` output rows so that the float intermediates stay in cache; returns ``(S / 255, ties)`` with
    ``ties`` the flat indices where S is exactly k + 1/2. None when the case is not covered (only the
    common one is: integer-stride exact float32 rows pass, OpenCV-able columns pass)."""
    geo = _phase_geometry(p1)
    if img.ndim == 3 and img.shape[2] > 4 or geo is None or _exact_depth_u8(p1) != "f32":
        return None
    anchor2 = _cv2_geometry(img[:1], 1, p2)
    if anchor2 is None or _cv2_geometry(img, 0, p1) is None or not all(_cv2_checks()):
        return None
    c0, st = geo
    src = _as_cv2(img, 0)
    n, m1 = p1.in_len, p1.out_len
    kern = p1.groups[0][0]
    K = len(kern)
    k_full = kern.reshape(-1, 1).astype(np.float32)
    k_phase = [kern[r::st].reshape(-1, 1).astype(np.float32) for r in range(st)]
    out = np.empty((m1, p2.out_len) + img.shape[2:])
    per_row = out[0].size
    ties = []
    for i0 in range(0, m1, _BAND):
        i1 = min(m1, i0 + _BAND)
        rows = np.arange(c0 + st * i0, c0 + st * (i1 - 1) + K)
        slab = src[rows[0]: rows[-1] + 1] if rows[0] >= 0 and rows[-1] < n else np.take(src, _fold(rows, n), axis=0)
        slab = slab.astype(np.float32)  # float32 -> float32 is OpenCV's fastest filter; exact here
        if st >= _PHASES_MIN_STRIDE:
            s1 = None
            for r in range(st):
                if k_phase[r].any():
                    f = cv2.filter2D(slab[r::st], -1, k_phase[r], anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
                    s1 = f[: i1 - i0] if s1 is None else cv2.add(s1, f[: i1 - i0])
        else:
            f = cv2.filter2D(slab, -1, k_full, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
            s1 = f[0: st * (i1 - i0 - 1) + 1: st]
        s1 = s1.astype(np.float64).reshape((i1 - i0,) + img.shape[1:])
        lev = _pass_cv2(s1, 1, p2, anchor2, cv2.CV_64F)  # exact, any order
        t = lev + 0.5  # exact; a tie k+1/2 makes it an integer
        band_ties = np.flatnonzero(t == np.rint(t))
        if band_ties.size:
            ties.append(band_ties + i0 * per_row)
        np.divide(lev, 255.0, out=out[i0:i1])
    return out, (np.concatenate(ties) if ties else np.empty(0, np.int64))


def _tie_fixup(img: np.ndarray, plans, flat_idx: np.ndarray, out_shape) -> np.ndarray:
    """MATLAB-order float64 value (0..1 scale) of the outputs ``flat_idx``: both passes on ``img/255``,
    each output recomputed from its own window (the same operations MATLAB performs for it)."""
    coords = np.unravel_index(flat_idx, out_shape)
    (ax1, p1), (ax2, p2) = plans
    c = coords[2] if img.ndim == 3 else None
    i1 = p1.indices[coords[ax1]]  # (n, P1) input indices along the first axis
    i2 = p2.indices[coords[ax2]]  # (n, P2) input indices along the second axis
    rows = i1[:, :, None] if ax1 == 0 else i2[:, None, :]
    cols = i2[:, None, :] if ax1 == 0 else i1[:, :, None]
    win = img[rows, cols] if c is None else img[rows, cols, c[:, None, None]]  # (n, P1, P2)
    win = win / 255.0
    w1 = p1.weights[coords[ax1]]
    w2 = p2.weights[coords[ax2]]
    t = None
    for k in range(w1.shape[1]):
        term = w1[:, k, None] * win[:, k, :]
        t = term if t is None else t + term
    y = None
    for k in range(w2.shape[1]):
        term = w2[:, k] * t[:, k]
        y = term if y is None else y + term
    return y


# --------------------------------------------------------------------------------------------------------------
# Compiled kernel (srprep/ops/_bicubic_native.c)
# --------------------------------------------------------------------------------------------------------------
# Output rows per thread below which the compiled kernel does not split the work (thread start-up costs more).
_NATIVE_MIN_ROWS = 32


def native_available() -> bool:
    """Whether the compiled kernel was built (``pip install`` compiles it where a C compiler exists).

    Without it every case still runs, bit-identically, on the OpenCV/numpy paths, only slower.
    """
    return _native is not None


def _native_axis(plan: AxisPlan):
    """(integer weights as float32, first start, stride, dyadic exponent) when the exact kernel covers this
    axis: one weight row at a constant stride and sums of uint8 data exact in float32 (x2, x4), else None."""
    ar = _stride_geometry(plan)
    if ar is None or _exact_depth_u8(plan) != "f32":
        return None
    kern = np.ldexp(plan.groups[0][0], plan.dyadic_exp).astype(np.float32)
    return kern, ar[0], ar[1], int(plan.dyadic_exp)


# Default thread cap: one image's rows are a few milliseconds of work; more threads cost more to start than
# they save.
_NATIVE_MAX_DEFAULT_THREADS = 8


def _over_row_ranges(rows: int, threads: int | None, work) -> list:
    """``[work(k, i0, i1) ...]`` over consecutive output-row ranges, one per thread (the kernel releases the
    GIL); ``threads`` None: OpenCV's thread count, at most ``_NATIVE_MAX_DEFAULT_THREADS``."""
    if threads is None:
        threads = min(cv2.getNumThreads(), _NATIVE_MAX_DEFAULT_THREADS) if cv2 is not None else 1
    n = max(1, min(int(threads), rows // _NATIVE_MIN_ROWS))
    bounds = [rows * k // n for k in range(n + 1)]
    if n == 1:
        return [work(0, 0, rows)]
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda k: work(k, bounds[k], bounds[k + 1]), range(n)))


def _native_geometry(plans, axis_fn):
    """``(g1, g2)`` of the two passes (``axis_fn`` of each plan) when the compiled kernel can take them: the
    kernel is built and the rows pass comes first; None otherwise."""
    (ax1, p1), (_, p2) = plans
    if _native is None or ax1 != 0:
        return None
    g1, g2 = axis_fn(p1), axis_fn(p2)
    return None if g1 is None or g2 is None else (g1, g2)


def _hwc(a: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """C-contiguous ``a`` and its height, width, channels (1 for HW)."""
    src = np.ascontiguousarray(a)
    return src, src.shape[0], src.shape[1], 1 if src.ndim == 2 else src.shape[2]


def _resize_native(img: np.ndarray, plans, out_shape: tuple, mode: int, threads: int | None):
    """The compiled kernel: ``(out, ties)``, or None when it does not cover the case.

    ``mode`` 0: uint8 convention (uint8 out); 1: im2double, float64 ``level/255`` out; 2: im2double, uint8
    out (MATLAB's im2uint8 of the result). ``ties``: flat output indices whose exact level is k + 1/2
    (modes 1 and 2; the caller recomputes them in MATLAB's order)."""
    geo = _native_geometry(plans, _native_axis) if img.dtype == np.uint8 else None
    if geo is None or (mode and not _exact_f64_second(plans[0][1], plans[1][1])):
        return None
    (g1, g2), (src, h, w, c), (oh, ow) = geo, _hwc(img), out_shape[:2]
    out = np.empty(out_shape, np.float64 if mode == 1 else np.uint8)

    def work(k: int, i0: int, i1: int) -> np.ndarray:
        # np.empty does not touch the pages: room for every output costs only what is written.
        ties = np.empty((i1 - i0) * ow * c if mode else 0, np.int64)
        count = _native.resize_u8(src, h, w, c, out, oh, ow, g1[0], g1[1], g1[2], g1[3], g2[0], g2[1], g2[2],
                                  g2[3], mode, i0, i1, ties)
        return ties[:count]

    return out, np.concatenate(_over_row_ranges(oh, threads, work))


def _seq_axis(plan: AxisPlan):
    """(weight row spread over its taps as float64, first start, stride) when one weight row at a constant
    stride serves every output (integer-factor downscaling), else None."""
    ar = _stride_geometry(plan)
    return None if ar is None else (np.ascontiguousarray(plan.groups[0][0], dtype=np.float64), ar[0], ar[1])


def _resize_native_seq(a: np.ndarray, plans, out_shape: tuple, kind: int, mode: int, threads: int | None):
    """The compiled kernel in MATLAB's own double arithmetic (x3, float input...): the output array, or None
    when it does not cover the case. ``kind`` 0: uint8 values, 1: uint8 as ``v/255`` (im2double), 2: float64.
    ``mode`` 0: uint8 convention, 1: float64 out, 2: ``to_uint8`` of the float64 result."""
    geo = _native_geometry(plans, _seq_axis)
    if geo is None:
        return None
    (g1, g2), (src, h, w, c), (oh, ow) = geo, _hwc(a), out_shape[:2]
    out = np.empty(out_shape, np.float64 if mode == 1 else np.uint8)

    def work(k: int, i0: int, i1: int) -> None:
        _native.resize_seq(src, kind, h, w, c, out, oh, ow, g1[0], g1[1], g1[2], g2[0], g2[1], g2[2], mode, i0, i1)

    _over_row_ranges(oh, threads, work)
    return out


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------
def _check_image(img) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(img).__name__}")
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an HW or HWC array, got shape {img.shape}")
    if img.ndim == 3 and img.shape[2] < 1:
        raise ValueError(f"image has no channels: shape {img.shape}")
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating) and not np.issubdtype(
        img.dtype, np.integer
    ):
        raise TypeError(f"unsupported dtype {img.dtype}; use uint8 or float")
    return img


def imresize_matlab(
    img: np.ndarray,
    scale: float | Sequence[float] | None = None,
    *,
    size: Sequence[int] | None = None,
    im2double: bool = False,
    antialias: bool = True,
    out_dtype=None,
    threads: int | None = None,
) -> np.ndarray:
    """MATLAB ``imresize(img, scale, 'bicubic')`` / ``imresize(img, [h w], 'bicubic')``, bit-exact.

    Args:
        img: HW or HWC numpy array (any number of channels), uint8 or float (other integer types are
            treated as float data).
        scale: a number or a pair ``(sh, sw)``; output ``ceil(in*scale)``. ``1/4`` for x4 downscaling.
        size: ``(out_h, out_w)``; where given, MATLAB derives the scale as ``out/in``.
        im2double: for uint8 input, compute on ``img/255`` in double like ``imresize(im2double(img))``
            and return the unrounded float64 result (0..1 range, may over/undershoot slightly); use
            :func:`to_uint8` for MATLAB's ``imwrite``/``im2uint8``. Ignored for float input.
        antialias: MATLAB's ``'Antialiasing'`` (stretched kernel when downscaling), default on.
        out_dtype: None (the convention's own type, below) or ``np.uint8``: for a float result, return
            MATLAB's ``im2uint8`` of it (what ``imwrite`` saves; identical to :func:`to_uint8` of the float
            result, but the common x2/x4 cases never form the float64 image).
        threads: threads of the compiled kernel (default: OpenCV's thread count, ``cv2.getNumThreads()``, at
            most 8; pass 1 inside worker processes that already run in parallel). The result does not
            depend on it.

    Returns:
        uint8 input, ``im2double=False``: uint8, the uint8 convention (rounded and saturated after each
        1-D pass). uint8 input, ``im2double=True``: float64 in ~[0, 1]. Float input: float64 with MATLAB
        double semantics (no clipping). With ``out_dtype=np.uint8``: always uint8 (0..255). Shape
        ``(out_h, out_w[, C])``; a fresh C-contiguous array.

    Raises:
        ValueError: scale <= 0 or not finite, size < 1, not a 2-D/3-D array, image too small for the
            kernel at this scale (see module docstring), an ``out_dtype`` other than None/uint8.

    Example:
        >>> hr = np.full((8, 8, 3), 200, np.uint8)
        >>> lr = imresize_matlab(hr, 1 / 2)
        >>> lr.shape, lr.dtype, int(lr[0, 0, 0])
        ((4, 4, 3), dtype('uint8'), 200)
        >>> float(imresize_matlab(hr, 1 / 2, im2double=True)[0, 0, 0]) == 200 / 255
        True
        >>> int(imresize_matlab(hr, 1 / 2, im2double=True, out_dtype=np.uint8)[0, 0, 0])
        200
    """
    img = _check_image(img)
    if out_dtype is not None and np.dtype(out_dtype) != np.uint8:
        raise ValueError(f"out_dtype must be None or uint8, got {out_dtype!r}")
    want_u8 = out_dtype is not None
    if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    plans = _plans_for(img.shape, scale, size, antialias)
    (oh, ow), _ = output_size(img.shape[:2], scale, size)
    out_shape = (oh, ow) + img.shape[2:]
    if img.dtype == np.uint8 and not im2double:
        res = _resize_native(img, plans, out_shape, 0, threads)
        if res is not None:
            return res[0]
        res = _resize_native_seq(img, plans, out_shape, 0, 0, threads)
        if res is not None:
            return res
        a = img
        for axis, plan in plans:
            a = _pass_u8_round(a, axis, plan)
        return np.ascontiguousarray(a)
    if img.dtype == np.uint8:
        res = _resize_native(img, plans, out_shape, 2 if want_u8 else 1, threads)
        if res is not None:
            out, ties = res
            if ties.size:
                vals = _tie_fixup(img, plans, ties, out_shape)
                out.reshape(-1)[ties] = to_uint8(vals) if want_u8 else vals
            return out
        (ax1, p1), (ax2, p2) = plans
        depth = _exact_depth_u8(p1)
        if depth is not None and _exact_f64_second(p1, p2):
            res = _levels_banded(img, p1, p2) if ax1 == 0 else None
            if res is not None:
                s, ties = res
            else:
                s1 = _pass_exact(img, ax1, p1, depth).astype(np.float64, copy=False)
                s = np.ascontiguousarray(_pass_exact(s1, ax2, p2, "f64"))  # exact, in levels
                t = s + 0.5  # exact; a tie k+1/2 makes it an integer
                ties = np.flatnonzero(t == np.rint(t))
                np.divide(s, 255.0, out=s)
            if ties.size:
                s.reshape(-1)[ties] = _tie_fixup(img, plans, ties, out_shape)
            return to_uint8(s) if want_u8 else s
        res = _resize_native_seq(img, plans, out_shape, 1, 2 if want_u8 else 1, threads)
        if res is not None:
            return res
        a = np.divide(img, 255.0)  # MATLAB's im2double: double(v) / 255
    else:
        a = np.asarray(img, dtype=np.float64)
        res = _resize_native_seq(a, plans, out_shape, 2, 2 if want_u8 else 1, threads)
        if res is not None:
            return res
    for axis, plan in plans:
        a = _pass_f64(a, axis, plan)
    a = np.ascontiguousarray(a, dtype=np.float64)
    return to_uint8(a) if want_u8 else a


def to_uint8(x01: np.ndarray) -> np.ndarray:
    """MATLAB's ``im2uint8`` / ``imwrite`` of a double image: ``x*255``, round half up (away from zero
    for the clipped range), saturate to 0..255; NaN -> 0.

    Args:
        x01: float array, nominally in [0, 1] (any shape).

    Returns:
        uint8 array of the same shape.

    Example:
        >>> to_uint8(np.array([0.0, 0.5 / 255, 1.5 / 255, 1.2, -0.1]))
        array([  0,   1,   2, 255,   0], dtype=uint8)
    """
    y = np.multiply(x01, 255.0, dtype=np.float64)
    y += 0.5
    np.floor(y, out=y)
    np.nan_to_num(y, copy=False, nan=0.0)
    np.clip(y, 0, 255, out=y)
    return y.astype(np.uint8)
