"""Pixel losses for SR training and their weighted sum from the config.

All take ``sr`` and ``hr`` as float (B, C, H, W) tensors on the [0, 1] scale and return a scalar tensor on
the same scale, so a weight of 255 reproduces losses written on the 0-255 scale (ECO's ``1*L1x255``).

* ``l1``, ``mse``;
* ``charbonnier``: ``mean(sqrt(d^2 + eps))``, a smooth L1 with ``eps`` as BasicSR names and adds it (not
  squared; BasicSR's default 1e-12; LapSRN's 1e-3 squared is ``eps: 1.0e-6``);
* ``clip_l1`` (the OADDet entry of the AIM 2020 Real Image SR challenge):
  ``mean(clamp(|sr - hr|, clip_min, clip_max))`` with the clip bounds on the 0-255 scale as in their code
  (defaults 0 and 10). The lower bound stops the gradient of
  pixels that are already good enough, the upper one of outliers (noise in the target). Their code computes
  on 0-255 data; here the value is divided by 255, so ``clip_l1`` with (0, 255) equals ``l1``;
* ``ssim``: ``1 - SSIM`` over RGB, 11x11 Gaussian window (sigma 1.5), C1 = 0.01^2, C2 = 0.03^2, valid
  filtering, the mean of the map (the metric's definition, on the [0, 1] scale and on RGB).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["l1_loss", "mse_loss", "charbonnier_loss", "clip_l1_loss", "ssim_loss", "build_loss", "WeightedLoss",
           "LOSSES"]


def l1_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    return (sr - hr).abs().mean()


def mse_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    return (sr - hr).square().mean()


def charbonnier_loss(sr: torch.Tensor, hr: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """BasicSR's ``charbonnier_loss``: ``mean(sqrt((sr - hr)^2 + eps))``."""
    return torch.sqrt((sr - hr).square() + eps).mean()


def clip_l1_loss(sr: torch.Tensor, hr: torch.Tensor, clip_min: float = 0.0, clip_max: float = 10.0) -> torch.Tensor:
    """AIM 2020 ClipL1: per-element |sr - hr| clamped to [clip_min, clip_max] (0-255 scale), then the mean.

    >>> sr = torch.tensor([0.0, 0.02, 0.5]); hr = torch.zeros(3)
    >>> round(float(clip_l1_loss(sr, hr, 0.0, 10.0) * 255), 4)  # |d| x 255 = 0, 5.1, 127.5 -> 0, 5.1, 10
    5.0333
    """
    if clip_min > clip_max:
        raise ValueError(f"clip_min ({clip_min}) > clip_max ({clip_max})")
    return (sr - hr).abs().mul(255.0).clamp(clip_min, clip_max).mean() / 255.0


def _gaussian_window(channels: int, device, dtype, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-coords.square() / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """``1 - mean SSIM`` of (B, C, H, W) batches in [0, 1] (H, W >= 11)."""
    c = sr.shape[1]
    if min(sr.shape[-2:]) < 11:
        raise ValueError(f"SSIM loss needs patches of at least 11x11, got {tuple(sr.shape[-2:])}")
    w = _gaussian_window(c, sr.device, sr.dtype)

    def filt(x):
        return F.conv2d(x, w, groups=c)

    mu_x, mu_y = filt(sr), filt(hr)
    var_x = filt(sr * sr) - mu_x.square()
    var_y = filt(hr * hr) - mu_y.square()
    cov = filt(sr * hr) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return 1.0 - ssim_map.mean()


LOSSES = {
    "l1": lambda term: l1_loss,
    "mse": lambda term: mse_loss,
    "charbonnier": lambda term: (lambda sr, hr: charbonnier_loss(sr, hr, term.eps)),
    "clip_l1": lambda term: (lambda sr, hr: clip_l1_loss(sr, hr, term.clip_min, term.clip_max)),
    "ssim": lambda term: ssim_loss,
}


class WeightedLoss:
    """``loss(sr, hr)``: the weighted sum of the configured terms; :meth:`terms` also gives each weighted term.

    ``names`` label the terms (``"l1"``, ``"ssim"``; ``"l1_1"`` for a second term of a type already used).
    """

    def __init__(self, terms: Sequence):
        self.parts = [(float(t.weight), LOSSES[t.type](t)) for t in terms]
        if not self.parts:
            raise ValueError("no loss terms")
        types = [t.type for t in terms]
        self.names = [kind if types[:i].count(kind) == 0 else f"{kind}_{types[:i].count(kind)}"
                      for i, kind in enumerate(types)]

    def terms(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(total, weighted terms): a scalar tensor and a (len(names),) tensor, both in float32."""
        sr, hr = sr.float(), hr.float()
        values = torch.stack([fn(sr, hr) * weight for weight, fn in self.parts])
        return values.sum(), values

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return self.terms(sr, hr)[0]


def build_loss(terms: Sequence) -> WeightedLoss:
    """The weighted sum of :class:`~srprep.train.config.LossTerm` s, as one ``loss(sr, hr)`` callable."""
    return WeightedLoss(terms)
