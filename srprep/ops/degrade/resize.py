"""Resizing for degradation synthesis: torch ``F.interpolate`` modes and MATLAB bicubic.

* ``"area"``, ``"bilinear"``, ``"bicubic"``: ``torch.nn.functional.interpolate`` with
  ``align_corners=False`` (pixel centres at half-integers, as cv2 and PIL). Real-ESRGAN picks one of these
  at random and calls them **without** antialiasing, so a bilinear/bicubic downscale aliases; that is
  part of its training distribution, hence ``antialias=False`` by default. ``antialias=True`` widens the
  kernel on downscaling (as PIL does); it does not apply to ``"area"``, which averages by construction.
  Bicubic output may overshoot [0, 1]; it is not clipped here (the next noise step clips, as upstream).
* ``"matlab"``: MATLAB ``imresize(x, [h w], 'bicubic')`` with antialiasing, on float data (double
  semantics, no rounding), from :mod:`srprep.ops.imresize`; with ``scale_factor`` the output size is
  ``floor(in * s)`` as for the other modes. The torch path uses that module's torch version when it has
  one, else its numpy version per sample on the CPU.

Plain Pillow's bicubic on 8-bit images (what the Reflash test sets were made with) is
:func:`srprep.ops.pil_resize.pil_resize`.

The numpy single-image function :func:`resize` runs the same torch CPU kernels as :func:`resize_torch`, so
single-image and batched degradations agree; ``cv2.resize`` would differ (its "area" differs for
non-integer factors, and its bicubic rounds intermediate values for 8-bit input).

>>> import numpy as np
>>> resize(np.zeros((8, 8, 3), np.float32), (4, 4), mode="bicubic").shape
(4, 4, 3)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..imresize import imresize_matlab
from ..imresize_torch import imresize_matlab_torch

#: Modes that Real-ESRGAN chooses among uniformly.
RESIZE_MODES: tuple[str, ...] = ("area", "bilinear", "bicubic")
#: Every mode :func:`resize_torch` accepts.
ALL_MODES: tuple[str, ...] = RESIZE_MODES + ("matlab",)


def _matlab_size(in_hw, size, scale_factor) -> tuple[int, int]:
    # the same output size as the other modes: floor(in * s) for a factor, else the given size
    if size is None:
        size = output_size(in_hw, scale_factor)
    return int(size[0]), int(size[1])


def _matlab_torch(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """MATLAB bicubic of a float batch to ``size`` (MATLAB double semantics), in x's dtype."""
    return imresize_matlab_torch(x, size=size).to(x.dtype)


def resize_torch(
    x: torch.Tensor,
    size: Sequence[int] | None = None,
    *,
    scale_factor: float | None = None,
    mode: str = "bicubic",
    antialias: bool = False,
) -> torch.Tensor:
    """Resize a (B, C, H, W) float batch to ``size=(h, w)`` or by ``scale_factor``.

    With ``scale_factor`` the output is ``floor(H * s) x floor(W * s)`` and the coordinate mapping uses
    ``s`` itself (``recompute_scale_factor=False``), as Real-ESRGAN's first resize does. ``mode`` is one of
    :data:`ALL_MODES`. Returns a float tensor on x's device.
    """
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size and scale_factor")
    if mode == "matlab":
        return _matlab_torch(x, _matlab_size(x.shape[-2:], size, scale_factor))
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; choose one of {ALL_MODES}")
    kwargs = {}
    if mode != "area":
        kwargs = {"align_corners": False, "antialias": bool(antialias)}
    if size is not None:
        return F.interpolate(x, size=(int(size[0]), int(size[1])), mode=mode, **kwargs)
    return F.interpolate(x, scale_factor=float(scale_factor), mode=mode, recompute_scale_factor=False, **kwargs)


def resize(
    img: np.ndarray,
    size: Sequence[int] | None = None,
    *,
    scale_factor: float | None = None,
    mode: str = "bicubic",
    antialias: bool = False,
) -> np.ndarray:
    """Resize one (H, W, C) float image (torch CPU kernels, see module doc); returns float32 (h, w, C)."""
    if mode == "matlab":
        size = _matlab_size(img.shape[:2], size, scale_factor)
        out = imresize_matlab(np.asarray(img, dtype=np.float64), size=size)
        return np.asarray(out, dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    y = resize_torch(x, size, scale_factor=scale_factor, mode=mode, antialias=antialias)
    return y[0].permute(1, 2, 0).contiguous().numpy()


def output_size(size: Sequence[int], scale_factor: float) -> tuple[int, int]:
    """Size that ``F.interpolate(scale_factor=s)`` produces: ``floor(h * s), floor(w * s)``."""
    return int(np.floor(size[0] * float(scale_factor))), int(np.floor(size[1] * float(scale_factor)))
