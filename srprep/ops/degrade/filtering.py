"""Apply a 2-D kernel to an image (numpy, HWC) or to a batch with one kernel per sample (torch, NCHW).

Both compute a correlation (the kernel is not flipped, as ``cv2.filter2D`` and ``F.conv2d`` do; all
kernels drawn here are symmetric under 180-degree rotation, so correlation equals convolution) and
extend the border by reflection without repeating the edge pixel (``cv2.BORDER_REFLECT_101`` ==
torch's ``"reflect"`` padding), so the two paths agree to float32 rounding.

>>> import numpy as np
>>> from srprep.ops.degrade.kernels import isotropic_gaussian_kernel
>>> img = np.full((8, 8, 3), 0.5, np.float32)
>>> float(np.abs(filter2d(img, isotropic_gaussian_kernel(5, 1.0)) - 0.5).max()) < 1e-6
True
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # torch is imported by the torch functions only (the numpy path runs without it)
    import torch


def filter2d(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Filter one image with ``kernel`` (reflect-101 border); returns float32 of the same shape.

    ``img``: (H, W) or (H, W, C), any real dtype (uint8 is converted to float32 without rescaling).
    ``kernel``: (k, k) with odd ``k``.
    """
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"kernel must be square with an odd size, got shape {kernel.shape}")
    src = np.ascontiguousarray(img, dtype=np.float32)
    out = cv2.filter2D(src, -1, np.asarray(kernel, dtype=np.float32), borderType=cv2.BORDER_REFLECT_101)
    return out.reshape(src.shape)  # cv2 drops a trailing channel axis of size 1


def _trim(kernels: torch.Tensor) -> torch.Tensor:
    """Drop the outer rings that are zero in every kernel (zero taps change nothing, but cost time and
    need a wider reflection). Real-ESRGAN pads all kernels to 21x21; a pulse then shrinks to 1x1."""
    import torch

    k = kernels.shape[-1]
    nz = kernels.abs().amax(dim=0) > 0
    if not bool(nz.any()):
        return kernels
    rows = torch.nonzero(nz.any(dim=1)).flatten()
    cols = torch.nonzero(nz.any(dim=0)).flatten()
    c = k // 2
    half = int(max(c - rows.min(), rows.max() - c, c - cols.min(), cols.max() - c))
    return kernels[..., c - half:c + half + 1, c - half:c + half + 1]


def _reflect101_index(n: int, pad: int, device) -> torch.Tensor:
    """Source index of each padded position for reflect-101 padding of any width (period 2n - 2),
    the rule ``cv2.borderInterpolate`` applies when the border is wider than the image."""
    import torch

    i = torch.arange(-pad, n + pad, device=device)
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * n - 2
    j = torch.remainder(i, period)
    return torch.where(j >= n, period - j, j)


def pad_reflect101(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two dims of ``x`` by ``pad`` with reflect-101, even when ``pad >= H`` or ``W``."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    if pad < h and pad < w:
        return F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = x.index_select(-2, _reflect101_index(h, pad, x.device))
    return x.index_select(-1, _reflect101_index(w, pad, x.device))


def filter2d_torch(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Filter a batch, one kernel per sample (grouped convolution) or one kernel for all.

    ``x``: (B, C, H, W) float. ``kernels``: (k, k), (1, k, k) or (B, k, k) with odd ``k``; cast to
    ``x``'s dtype and device. Border: reflection (reflect-101). Returns (B, C, H, W).
    Images smaller than the kernel radius are padded by repeated reflection, as OpenCV does.
    """
    import torch.nn.functional as F

    if x.ndim != 4:
        raise ValueError(f"expected (B, C, H, W), got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    if kernels.ndim == 2:
        kernels = kernels[None]
    if kernels.shape[-1] != kernels.shape[-2] or kernels.shape[-1] % 2 == 0:
        raise ValueError(f"kernels must be square with an odd size, got shape {tuple(kernels.shape)}")
    if kernels.shape[0] not in (1, b):
        raise ValueError(f"need 1 or {b} kernels, got {kernels.shape[0]}")
    kernels = _trim(kernels.to(device=x.device, dtype=x.dtype))
    k = kernels.shape[-1]
    pad = k // 2
    if pad == 0:
        return x * kernels.view(-1, 1, 1, 1)
    xp = pad_reflect101(x, pad)
    # Depthwise (grouped) convolution even when all samples share one kernel: on the CPU it is 10-25x
    # faster than a one-channel convolution over a batch of B*C planes.
    weight = kernels.expand(b, k, k) if kernels.shape[0] == 1 else kernels
    weight = weight.repeat_interleave(c, dim=0).reshape(b * c, 1, k, k)
    out = F.conv2d(xp.reshape(1, b * c, h + 2 * pad, w + 2 * pad), weight, groups=b * c)
    return out.view(b, c, h, w)
