"""Unsharp-mask (USM) sharpening of the ground truth, as Real-ESRGAN applies it (``gt_usm: True``).

With ``I`` the image and ``B`` its Gaussian blur (kernel ``radius`` x ``radius``, sigma from OpenCV's rule
``0.3 * ((radius - 1) / 2 - 1) + 0.8`` = 8.0 for radius 51): the sharpened image is
``K = clip(I + weight * (I - B), 0, 1)``; a mask marks the pixels (per channel) where ``|I - B| * 255 >
threshold``; the mask is blurred with the same kernel into a soft mask ``M`` and the output is
``M * K + (1 - M) * I``. Real-ESRGAN's constants: weight 0.5, radius 50 (made odd: 51), threshold 10 (on
the 0-255 scale). The blur is separable, so both paths filter rows then columns with the 1-D kernel, with
reflect-101 borders.

>>> import numpy as np
>>> flat = np.full((64, 64, 3), 0.5, np.float32)
>>> float(np.abs(usm_sharp(flat) - flat).max())
0.0
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

#: Real-ESRGAN's USM constants.
USM_WEIGHT = 0.5
USM_RADIUS = 50
USM_THRESHOLD = 10


def _odd(radius: int) -> int:
    return int(radius) + 1 if int(radius) % 2 == 0 else int(radius)


def gaussian_kernel_1d(radius: int = USM_RADIUS) -> np.ndarray:
    """OpenCV's 1-D Gaussian for ``ksize = radius`` (made odd) and ``sigma = 0``; float64 (ksize,)."""
    return cv2.getGaussianKernel(_odd(radius), 0).ravel()


def usm_sharp(img: np.ndarray, weight: float = USM_WEIGHT, radius: int = USM_RADIUS,
              threshold: float = USM_THRESHOLD) -> np.ndarray:
    """Sharpen one (H, W, C) float image in [0, 1]; returns float32 (H, W, C) in [0, 1]."""
    img = np.ascontiguousarray(img, dtype=np.float32)
    k = _odd(radius)
    blur = cv2.GaussianBlur(img, (k, k), 0, borderType=cv2.BORDER_REFLECT_101).reshape(img.shape)
    residual = img - blur
    mask = (np.abs(residual) * 255 > threshold).astype(np.float32)
    soft = cv2.GaussianBlur(mask, (k, k), 0, borderType=cv2.BORDER_REFLECT_101).reshape(img.shape)
    sharp = np.clip(img + np.float32(weight) * residual, 0, 1)
    return soft * sharp + (1 - soft) * img


def _blur_separable(x: torch.Tensor, k1: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    p = k1.numel() // 2
    if p >= h or p >= w:
        raise ValueError(f"USM radius {p} too large for a {h}x{w} image")
    n, k = b * c, k1.numel()
    # depthwise convolutions: much faster on the CPU than one-channel convolutions over B*C planes
    y = x.reshape(1, n, h, w)
    y = F.conv2d(F.pad(y, (p, p, 0, 0), mode="reflect"), k1.view(1, 1, 1, k).expand(n, 1, 1, k), groups=n)
    y = F.conv2d(F.pad(y, (0, 0, p, p), mode="reflect"), k1.view(1, 1, k, 1).expand(n, 1, k, 1), groups=n)
    return y.view(b, c, h, w)


def usm_sharp_torch(x: torch.Tensor, weight: float = USM_WEIGHT, radius: int = USM_RADIUS,
                    threshold: float = USM_THRESHOLD) -> torch.Tensor:
    """Sharpen a (B, C, H, W) float batch in [0, 1] (H, W > radius/2); returns the same shape.

    >>> usm_sharp_torch(torch.full((1, 3, 32, 32), 0.5)).sub(0.5).abs().max().item()
    0.0
    """
    k1 = torch.from_numpy(gaussian_kernel_1d(radius)).to(device=x.device, dtype=x.dtype)
    blur = _blur_separable(x, k1)
    residual = x - blur
    mask = (residual.abs() * 255 > threshold).to(x.dtype)
    soft = _blur_separable(mask, k1)
    sharp = torch.clamp(x + weight * residual, 0, 1)
    return soft * sharp + (1 - soft) * x
