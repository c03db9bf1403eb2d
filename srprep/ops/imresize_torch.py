"""MATLAB-exact bicubic ``imresize`` for torch tensors (any device), byte-identical to the numpy path.

Same algorithm, conventions and weight tables as :mod:`srprep.ops.imresize` (read its docstring first);
this module only changes how a 1-D pass is evaluated:

* The input is first gathered once along the resized axis with MATLAB's folded (mirror) indices, so every
  tap of every output is a plain strided slice of that padded tensor (integer and rational scales have
  one or a few distinct weight rows, see :class:`~srprep.ops.imresize.AxisPlan`). Irregular scales fall
  back to one ``index_select`` per tap.
* Only element-wise multiply/add are used, never convolutions or matmuls: cuDNN/oneDNN may pick Winograd,
  FFT or TF32 algorithms whose rounding is not IEEE's, while element-wise ops are IEEE on CPU and CUDA.
* **exact** passes (uint8 data, dyadic weights; the uint8 convention at x2/x4/x8 and the first pass of
  im2double) run in float32 (x2, x4) or float64 (x8): every product and partial sum is a multiple of
  ``2**-e`` below ``2**24`` (resp. ``2**53``), so the result is exact whatever the order or FMA use. The
  x2 weights are ``n/256`` and the x4 weights ``n/4096``; their products with 8-bit values are exact.
* **MATLAB-order** passes (float input, x3, irregular sizes) run in float64 with the taps accumulated in
  MATLAB's order and each product rounded before the addition (separate ``mul`` and ``add`` kernels, so no
  FMA contraction), reproducing MATLAB's float rounding and hence its tie breaking.
* im2double on uint8 with dyadic weights: exact float32 pass, exact float64 pass, and the outputs that sit
  exactly on ``k + 0.5`` levels recomputed in MATLAB's order, as in the numpy path.

The code runs unchanged on CUDA, for batches already on the GPU. On the CPU the numpy/OpenCV function is
several times faster (``benchmarks/RESULTS.md``); measured on the CPU and rejected here: ``conv2d`` on
one-channel planes (oneDNN; slower and not exact-safe on GPUs), ``unfold`` + ``matmul`` and a
block-banded matmul (2-10x slower than the element-wise taps, dominated by the copies they need).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .imresize import AxisPlan, _arith, _exact_depth_u8, _exact_f64_second, _fold, _plans_for, output_size

__all__ = ["imresize_matlab_torch"]

_DTYPES = {"f32": torch.float32, "f64": torch.float64}


def _dim_of(axis: int) -> int:
    # plan axis 0 (rows) / 1 (columns) -> tensor dim -2 / -1
    return -2 if axis == 0 else -1


def _tensor(a: np.ndarray, device, dtype=None) -> torch.Tensor:
    """Copy a (read-only, cached) plan array to ``device``."""
    return torch.from_numpy(np.array(a)).to(device=device, dtype=dtype)


def _slice(t: torch.Tensor, dim: int, start: int, step: int, count: int) -> torch.Tensor:
    idx = [slice(None)] * t.dim()
    idx[dim] = slice(start, start + step * (count - 1) + 1, step)
    return t[tuple(idx)]


def _pass(x: torch.Tensor, axis: int, plan: AxisPlan, dtype: torch.dtype, matlab_order: bool) -> torch.Tensor:
    """One 1-D pass along ``axis`` in ``dtype``; returns the unrounded sums."""
    dim = _dim_of(axis)
    dev = x.device
    lo = int(plan.starts.min())
    hi = int(plan.starts.max()) + int(plan.offsets[-1])
    folded = _fold(np.arange(lo, hi + 1), plan.in_len)  # MATLAB's mirror index folding

    layouts = []
    for kern, members in plan.groups:
        m_ar = _arith(members)
        s_ar = _arith(plan.starts[members] - lo)
        if m_ar is None or s_ar is None:
            layouts = None
            break
        layouts.append((kern, m_ar, s_ar, len(members)))

    out_shape = list(x.shape)
    out_shape[dim] = plan.out_len
    if layouts is None:
        # Irregular scale: one gather per tap, MATLAB's order (also fine for the exact regime).
        w = _tensor(plan.weights, dev, dtype)
        idx = _tensor(plan.indices, dev)
        bshape = [1] * x.dim()
        bshape[dim] = plan.out_len
        acc = None
        for k in range(w.shape[1]):
            term = x.index_select(dim, idx[:, k]).to(dtype) * w[:, k].reshape(bshape)
            acc = term if acc is None else acc.add_(term)
        return acc

    xp = x.index_select(dim, _tensor(folded, dev)).to(dtype)
    out = torch.empty(out_shape, dtype=dtype, device=dev) if len(layouts) > 1 else None
    for kern, (m0, mstep), (p0, pstep), count in layouts:
        acc = None
        for t, wt in enumerate(kern.tolist()):
            if wt == 0.0:  # a weight column MATLAB dropped or that is zero in this phase: adds nothing
                continue
            src = _slice(xp, dim, p0 + t, pstep, count)
            if acc is None:
                acc = src * wt
            elif matlab_order:
                acc.add_(src * wt)  # product rounded first, then the sum (two kernels: no FMA)
            else:
                acc.add_(src, alpha=wt)  # exact regime: any rounding order gives the same value
        if out is None:
            return acc
        _slice(out, dim, m0, mstep, count).copy_(acc)
    return out


def _round_u8(t: torch.Tensor) -> torch.Tensor:
    """MATLAB's double -> uint8 (round half away from zero, saturate), in place on the float sums:
    floor(x + 1/2) after clamping to [0, 255] is the truncation the uint8 cast performs."""
    return t.add_(0.5).clamp_(0, 255).to(torch.uint8)


def _tie_fixup(img: torch.Tensor, plans, flat: torch.Tensor, out_shape) -> torch.Tensor:
    """MATLAB-order float64 value (0..1) of the outputs at flat positions ``flat`` of ``out_shape``
    (N, C, h, w): both passes on img/255, each output recomputed from its own window."""
    dev = img.device
    (ax1, p1), (ax2, p2) = plans
    h, w = out_shape[-2], out_shape[-1]
    nc = flat // (h * w)
    rem = flat % (h * w)
    oi, oj = rem // w, rem % w
    o1 = oi if ax1 == 0 else oj
    o2 = oj if ax1 == 0 else oi
    i1 = _tensor(p1.indices, dev)[o1]  # (n, P1)
    i2 = _tensor(p2.indices, dev)[o2]  # (n, P2)
    w1 = _tensor(p1.weights, dev)[o1]
    w2 = _tensor(p2.weights, dev)[o2]
    planes = img.reshape(-1, img.shape[-2], img.shape[-1])
    if ax1 == 0:
        win = planes[nc[:, None, None], i1[:, :, None], i2[:, None, :]]
    else:
        win = planes[nc[:, None, None], i2[:, None, :], i1[:, :, None]]
    win = win.to(torch.float64) / 255.0  # (n, P1, P2)
    t = None
    for k in range(w1.shape[1]):
        term = w1[:, k, None] * win[:, k, :]
        t = term if t is None else t + term
    y = None
    for k in range(w2.shape[1]):
        term = w2[:, k] * t[:, k]
        y = term if y is None else y + term
    return y


def imresize_matlab_torch(
    x: torch.Tensor,
    scale: float | Sequence[float] | None = None,
    *,
    size: Sequence[int] | None = None,
    im2double: bool = False,
    antialias: bool = True,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """MATLAB ``imresize(..., 'bicubic')`` of an NCHW or CHW tensor, same bytes as the numpy path.

    Args:
        x: (N, C, H, W) or (C, H, W) tensor on any device, uint8 or floating point.
        scale: a number or ``(sh, sw)``; output ``ceil(in*scale)``.
        size: ``(out_h, out_w)``; where given, the scale is ``out/in`` (MATLAB).
        im2double: uint8 input only: compute on ``x/255`` in double and return float64 in ~[0, 1]
            (unrounded; :func:`srprep.ops.imresize.to_uint8` gives MATLAB's imwrite bytes).
        antialias: MATLAB's ``'Antialiasing'``, default on.
        out_dtype: None or ``torch.uint8``: for a float result, MATLAB's ``im2uint8`` of it (the float64
            operations of :func:`srprep.ops.imresize.to_uint8`, on the device), as the numpy path's
            ``out_dtype=np.uint8``.

    Returns:
        Same layout and device as ``x``: uint8 (uint8 input, uint8 convention, or ``out_dtype``) or float64.

    Raises:
        ValueError: bad scale/size, not 3-D/4-D, image too small for the kernel.

    Example:
        >>> x = torch.full((1, 3, 8, 8), 200, dtype=torch.uint8)
        >>> imresize_matlab_torch(x, 1 / 2).shape
        torch.Size([1, 3, 4, 4])
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (3, 4):
        raise ValueError(f"expected an NCHW or CHW tensor, got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8 and not x.dtype.is_floating_point:
        raise TypeError(f"unsupported dtype {x.dtype}; use uint8 or a floating type")
    if out_dtype not in (None, torch.uint8):
        raise ValueError(f"out_dtype must be None or torch.uint8, got {out_dtype!r}")
    a = _resize(x, scale, size, im2double, antialias)
    return _round_u8(a.mul(255.0)) if out_dtype is not None and a.dtype != torch.uint8 else a


def _resize(x: torch.Tensor, scale, size, im2double: bool, antialias: bool) -> torch.Tensor:
    hw = (int(x.shape[-2]), int(x.shape[-1]))
    plans = _plans_for(hw, scale, size, antialias)
    (oh, ow), _ = output_size(hw, scale, size)

    if x.dtype == torch.uint8 and not im2double:
        a = x
        for axis, plan in plans:
            depth = _exact_depth_u8(plan)
            if depth is not None:
                a = _round_u8(_pass(a, axis, plan, _DTYPES[depth], matlab_order=False))
            else:
                a = _round_u8(_pass(a, axis, plan, torch.float64, matlab_order=True))
        return a.contiguous()

    if x.dtype == torch.uint8:
        (ax1, p1), (ax2, p2) = plans
        depth = _exact_depth_u8(p1)
        if depth is not None and _exact_f64_second(p1, p2):
            s1 = _pass(x, ax1, p1, _DTYPES[depth], matlab_order=False)
            s = _pass(s1, ax2, p2, torch.float64, matlab_order=False).contiguous()  # exact, levels
            ties = torch.nonzero(((s - s.trunc()).abs() == 0.5).reshape(-1)).reshape(-1)
            s.div_(255.0)
            if ties.numel():
                s.reshape(-1)[ties] = _tie_fixup(x, plans, ties, tuple(s.shape))
            return s
        a = x.to(torch.float64) / 255.0  # MATLAB's im2double
    else:
        a = x.to(torch.float64)
    for axis, plan in plans:
        a = _pass(a, axis, plan, torch.float64, matlab_order=True)
    return a.contiguous()
