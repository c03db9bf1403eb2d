"""The downscalers an LR image may have been made with, each as its users call it, under one name.

``srprep identify`` regenerates an LR from its HR with each of these and compares. Every function takes
the (already cropped) HR as ``(H, W, 3)`` uint8 RGB and returns the LR as ``(h, w, 3)`` uint8, rounded as
a user saving a PNG would (uint8 in, uint8 out for the libraries that work in uint8; ``x * 255`` rounded
and clipped for those that work in floats in [0, 1]).

===========================  ==========================================================================
name                         what it is
===========================  ==========================================================================
matlab-uint8                 MATLAB ``imresize(HR, 1/s, 'bicubic')`` on uint8 (EDSR/RCAN benchmark LR)
matlab-im2double             MATLAB ``imresize(im2double(HR), 1/s)``, ``im2uint8`` at the end (BasicSR LRbicx)
basicsr                      BasicSR's float32 port of imresize, ``imresize(HR / 255., 1/s)``, rounded
pil-bicubic                  plain Pillow ``Image.resize(size, BICUBIC)`` (exactly: :mod:`.pil_resize`)
pillow-simd-bicubic          pillow-simd's ``Image.resize(size, BICUBIC)`` (srprep's own PIL)
pil-bilinear, pil-lanczos    plain Pillow, BILINEAR / LANCZOS
cv2-cubic/-area/-linear      ``cv2.resize(HR, (w, h), interpolation=INTER_CUBIC/INTER_AREA/INTER_LINEAR)``
torch-bicubic                ``F.interpolate(x, size, mode="bicubic", align_corners=False)`` on HR / 255
torch-bicubic-antialias      the same with ``antialias=True``
torch-bilinear-antialias     ``mode="bilinear", antialias=True``
===========================  ==========================================================================

Every function has the signature ``fn(hr, size, scale) -> lr``: ``size = (h, w)`` is the LR's size and
``scale`` is ``1/s`` when the LR was made by a scale factor (MATLAB's and BasicSR's ``imresize(HR, 1/s)``:
output ``ceil(H/s)``), or None when it was made to an explicit size (the whole HR squeezed into ``size``).
The MATLAB-style functions follow ``scale`` where given; the others always resize to ``size``. A function
that cannot make ``size`` that way returns None (BasicSR's port takes a scale only; pillow-simd's resize when
the installed PIL is not pillow-simd).

Plain Pillow's two-pass order is that of every Pillow from 4.3 to 12.x (width first); Pillow 13 differs
only for images more than twice as tall as wide (see :mod:`.pil_resize`).
"""
from __future__ import annotations

import functools
import importlib.metadata
import math
from typing import TYPE_CHECKING, Callable, Optional

import cv2
import numpy as np

if TYPE_CHECKING:  # imported where a torch candidate runs: the command line starts without torch
    import torch

from .imresize import imresize_matlab
from .pil_resize import pil_resize

__all__ = ["RESIZERS", "resize_with", "imresize_basicsr", "pil_is_pillow_simd"]

Size = tuple[int, int]
Resizer = Callable[[np.ndarray, Size, Optional[float]], Optional[np.ndarray]]

# Pillow 12.x: width first for every shape (Pillow 4.3-12.1 and, but for > 100x taller images, 12.2-12.3).
_PILLOW_ORDER = (12, 1)


# ------------------------------------------------------------------------------------------- BasicSR's port
def _basicsr_cubic(x: torch.Tensor) -> torch.Tensor:
    import torch

    ax = torch.abs(x)
    ax2 = ax**2
    ax3 = ax**3
    inner = (ax <= 1).type_as(ax)
    outer = ((ax > 1) * (ax <= 2)).type_as(ax)
    return (1.5 * ax3 - 2.5 * ax2 + 1) * inner + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * outer


def _basicsr_axis(in_len: int, out_len: int, scale: float) -> tuple[torch.Tensor, np.ndarray, int, int]:
    """MATLAB's contributions() in float32: (weights (out, P), first padded index per output, pad before,
    pad after).

    As in BasicSR: coordinates and weights in float32 torch arithmetic; the kernel stretched by 1/scale
    when shrinking; weights normalised by their (torch) row sum; then the first (last) tap column dropped
    when *any* of its weights is zero (MATLAB drops a column only when all are); indices are into the axis
    mirrored at both ends (edge sample repeated) by as many samples as the taps reach beyond it.
    """
    import torch

    width = 4.0 / scale if scale < 1 else 4.0
    x = torch.linspace(1, out_len, out_len)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    index = left.view(out_len, 1) + torch.linspace(0, taps - 1, taps).view(1, taps)
    dist = u.view(out_len, 1) - index
    w = scale * _basicsr_cubic(dist * scale) if scale < 1 else _basicsr_cubic(dist)
    w = w / torch.sum(w, 1).view(out_len, 1)
    zeros = torch.sum(w == 0, 0)
    lo, hi = (1 if zeros[0] != 0 else 0), (taps - 1 if zeros[-1] != 0 else taps)
    w, index = w[:, lo:hi].contiguous(), index[:, lo:hi]
    pad_before = -int(index.min()) + 1
    return w, (index[:, 0].numpy().astype(np.int64) + pad_before - 1), pad_before, int(index.max()) - in_len


def _mirror(n: int, before: int, after: int) -> np.ndarray:
    """Indices of an axis of ``n`` samples mirrored by ``before``/``after`` samples (edge repeated)."""
    return np.concatenate([np.arange(before)[::-1], np.arange(n), n - 1 - np.arange(max(after, 0))])


def imresize_basicsr(img01: np.ndarray, scale: float) -> np.ndarray:
    """BasicSR's ``imresize(img, scale)`` (``basicsr/utils/matlab_functions.py``), stated independently.

    MATLAB's antialiased bicubic in float32: the height pass first, then the width pass, each output line a
    float32 matrix-vector product (``torch.mv``) over the taps of the mirrored input, as BasicSR computes it,
    so that its float32 rounding is BasicSR's (on the same machine and torch). Output size
    ``ceil(in * scale)``.

    Args:
        img01: ``(H, W, C)`` float image in [0, 1] (converted to float32 like BasicSR does).
        scale: the same factor for both axes, e.g. ``1/4``.

    Returns:
        ``(ceil(H*scale), ceil(W*scale), C)`` float32, unclipped.
    """
    import torch

    t = torch.from_numpy(np.ascontiguousarray(np.asarray(img01).transpose(2, 0, 1))).float()
    c, h, w = t.shape
    oh, ow = math.ceil(h * scale), math.ceil(w * scale)
    wh, first_h, before, after = _basicsr_axis(h, oh, scale)
    rows = t[:, torch.from_numpy(_mirror(h, before, after))].contiguous()
    k = wh.shape[1]
    mid = torch.empty(c, oh, w)
    for i in range(oh):
        a = int(first_h[i])
        for j in range(c):
            mid[j, i, :] = rows[j, a:a + k, :].transpose(0, 1).mv(wh[i])
    ww, first_w, before, after = _basicsr_axis(w, ow, scale)
    cols = mid[:, :, torch.from_numpy(_mirror(w, before, after))].contiguous()
    k = ww.shape[1]
    out = torch.empty(c, oh, ow)
    for i in range(ow):
        a = int(first_w[i])
        for j in range(c):
            out[j, :, i] = cols[j, :, a:a + k].mv(ww[i])
    return out.numpy().transpose(1, 2, 0)


def _float01_to_uint8(x: np.ndarray) -> np.ndarray:
    # what a user saving a float [0, 1] result does: x * 255, round (half to even), clip, uint8
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ resizers
def _matlab(im2double: bool) -> Resizer:
    def fn(hr, size, scale):
        kw = {"scale": scale} if scale is not None else {"size": size}
        return imresize_matlab(hr, **kw, im2double=im2double, out_dtype=np.uint8 if im2double else None)
    return fn


def _basicsr(hr, size, scale):
    if scale is None:
        return None
    return _float01_to_uint8(imresize_basicsr(hr / 255.0, scale))


def _plain_pil(flt: str) -> Resizer:
    return lambda hr, size, scale: pil_resize(hr, size, flt, pillow=_PILLOW_ORDER)


@functools.lru_cache(maxsize=1)
def pil_is_pillow_simd() -> bool:
    """Whether the installed PIL is pillow-simd (srprep's dependency) rather than plain Pillow."""
    import PIL

    try:
        return PIL.__version__ == importlib.metadata.version("pillow-simd")
    except importlib.metadata.PackageNotFoundError:
        return False


def _pillow_simd(hr, size, scale):
    if not pil_is_pillow_simd():  # plain Pillow in its place: that would be pil-bicubic under another name
        return None
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(hr)).resize((size[1], size[0]), Image.BICUBIC))


def _cv2(interpolation: int) -> Resizer:
    return lambda hr, size, scale: cv2.resize(hr, (size[1], size[0]), interpolation=interpolation)


def _torch(mode: str, antialias: bool) -> Resizer:
    def fn(hr, size, scale):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(hr.transpose(2, 0, 1))).float().div_(255.0)[None]
        with torch.no_grad():
            y = torch.nn.functional.interpolate(x, size=tuple(size), mode=mode, align_corners=False,
                                                antialias=antialias)
        return y[0].clamp_(0, 1).mul_(255.0).round_().to(torch.uint8).numpy().transpose(1, 2, 0)
    return fn


# Order matters: where several candidates match equally well, the first one is named.
RESIZERS: dict[str, Resizer] = {
    "matlab-uint8": _matlab(False),
    "matlab-im2double": _matlab(True),
    "basicsr": _basicsr,
    "pil-bicubic": _plain_pil("bicubic"),
    "pillow-simd-bicubic": _pillow_simd,
    "pil-bilinear": _plain_pil("bilinear"),
    "pil-lanczos": _plain_pil("lanczos"),
    "cv2-cubic": _cv2(cv2.INTER_CUBIC),
    "cv2-area": _cv2(cv2.INTER_AREA),
    "cv2-linear": _cv2(cv2.INTER_LINEAR),
    "torch-bicubic": _torch("bicubic", False),
    "torch-bicubic-antialias": _torch("bicubic", True),
    "torch-bilinear-antialias": _torch("bilinear", True),
}


def resize_with(name: str, hr: np.ndarray, size: Size, scale: float | None = None) -> np.ndarray | None:
    """The LR that resizer ``name`` makes of ``hr`` (see the module table).

    Args:
        name: a key of :data:`RESIZERS`.
        hr: ``(H, W, 3)`` uint8 RGB, already cropped as the LR's maker cropped it.
        size: ``(h, w)`` of the LR.
        scale: ``1/s`` if the LR was made by a scale factor (MATLAB-style: output ``ceil(H/s)``), None if
            made to an explicit size.

    Returns:
        ``(h, w, 3)`` uint8, or None where this resizer cannot make ``size`` that way.

    Example:
        >>> hr = np.full((8, 8, 3), 100, np.uint8)
        >>> [int(resize_with(n, hr, (4, 4), 0.5)[0, 0, 0]) for n in ("matlab-uint8", "cv2-area")]
        [100, 100]
    """
    if name not in RESIZERS:
        raise ValueError(f"unknown resizer {name!r}; one of {', '.join(RESIZERS)}")
    out = RESIZERS[name](hr, tuple(int(v) for v in size), scale)
    if out is not None and out.shape[:2] != tuple(size):
        raise ValueError(f"{name}: made {out.shape[0]}x{out.shape[1]}, not {size[0]}x{size[1]} (scale {scale})")
    return out
