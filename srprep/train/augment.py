"""Paired augmentation as batch operations: draw the parameters once, apply them to LR and HR alike.

The shape of torchvision's v2 transforms: a *draw* function returns plain parameters from explicit
generators, an *apply* function is deterministic given them and is called once per tensor of the pair.
Every operation commutes with a linear, shift-invariant downscaler (MATLAB bicubic in the im2double
convention): flips and the transposition permute pixels the same way at both sizes, the RGB permutation
acts per pixel, Blend and MixUp are affine per pixel with weights that sum to 1, so
``downscale(aug(HR)) == aug(downscale(HR))`` up to float rounding and the pair stays consistent.

* dihedral (flips + transposition): drawn per sample in the data pipeline (from the sample's own seed),
  applied on the device to the uint8 batch (:func:`dihedral`);
* RGB permutation (CutBlur paper's "rgb"): one permutation for the batch;
* Blend: ``x = v x + (1 - v) c`` with one ``v ~ U(blend_min, 1)`` for the batch and a constant colour
  ``c ~ U(0, 1)`` per sample and channel;
* MixUp: ``x = v x + (1 - v) x[perm]`` with one ``v ~ Beta(a, a)`` and one batch permutation.

The three batch augmentations follow Yoo et al., "Rethinking Data Augmentation for Image Super-resolution"
(CVPR 2020), whose code draws one coin, one ``v`` and one permutation per batch. Here each is applied
independently with its own probability (the paper's code picks one augmentation per batch). CutBlur itself
needs LR inputs at HR size (pre-upsampling networks), which none of srprep's networks take, so it is not here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

__all__ = ["BatchAugmentParams", "dihedral", "draw_batch_augment", "apply_batch_augment", "sample_beta"]


def dihedral(x: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """Per-sample flips and transposition of a square batch.

    Args:
        x: (B, C, P, P) tensor of any dtype (uint8 patches before float conversion).
        flags: (B, 3) bool/uint8: horizontal flip, vertical flip, transpose (applied in that order).
    Returns:
        (B, C, P, P) tensor, same dtype; the same ``flags`` give the same transform at every size.
    """
    if x.ndim != 4 or flags.shape != (x.shape[0], 3):
        raise ValueError(f"dihedral: expected (B, C, P, P) and (B, 3) flags, got {tuple(x.shape)} and "
                         f"{tuple(flags.shape)}")
    f = flags.to(device=x.device, dtype=torch.bool).view(-1, 3, 1, 1, 1)
    x = torch.where(f[:, 0], x.flip(-1), x)
    x = torch.where(f[:, 1], x.flip(-2), x)
    if x.shape[-1] == x.shape[-2]:
        x = torch.where(f[:, 2], x.transpose(-1, -2), x)
    elif bool(flags[:, 2].any()):
        raise ValueError(f"dihedral: transposition needs square patches, got {tuple(x.shape[-2:])}")
    return x


def sample_beta(a: float, b: float, generator: torch.Generator) -> float:
    """One draw of Beta(a, b) from a CPU ``torch.Generator``: X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).

    Gamma by Marsaglia & Tsang (2000); torch's own Beta sampler takes no generator argument.
    """

    def gamma(k: float) -> float:
        boost = 1.0
        if k < 1.0:  # Gamma(k) = Gamma(k + 1) * U^(1/k)
            boost = float(torch.rand((), generator=generator)) ** (1.0 / k)
            k += 1.0
        d = k - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            z = float(torch.randn((), generator=generator))
            v = (1.0 + c * z) ** 3
            if v <= 0:
                continue
            u = float(torch.rand((), generator=generator))
            if math.log(max(u, 1e-300)) < 0.5 * z * z + d - d * v + d * math.log(v):
                return d * v * boost

    x, y = gamma(a), gamma(b)
    return x / (x + y)


@dataclass
class BatchAugmentParams:
    """What :func:`draw_batch_augment` decided for one batch (None: that augmentation is off this step)."""

    rgb_perm: Optional[list[int]] = None
    blend_v: Optional[float] = None
    blend_colour: Optional[torch.Tensor] = None  # (B, 3, 1, 1) float in [0, 1], on the batch's device
    mixup_v: Optional[float] = None
    mixup_perm: Optional[torch.Tensor] = None  # (B,) int64, on the batch's device

    @property
    def active(self) -> bool:
        return self.rgb_perm is not None or self.blend_v is not None or self.mixup_v is not None


def draw_batch_augment(cfg, batch: int, host: torch.Generator, device_gen: torch.Generator,
                       device: torch.device) -> BatchAugmentParams:
    """Draw one batch's augmentation parameters.

    Coins, ``v`` and the channel permutation come from the CPU generator ``host`` (no device round trip);
    per-sample colours and the batch permutation from ``device_gen`` on ``device`` (no host copy).
    ``cfg`` is an :class:`~srprep.train.config.AugmentConfig`.
    """
    params = BatchAugmentParams()
    # One coin per augmentation is drawn every step, used or not, so the streams stay aligned across options.
    coins = torch.rand(3, generator=host).tolist()
    if coins[0] < cfg.rgb_permute:
        params.rgb_perm = torch.randperm(3, generator=host).tolist()
    if coins[1] < cfg.blend:
        params.blend_v = cfg.blend_min + (1.0 - cfg.blend_min) * float(torch.rand((), generator=host))
        params.blend_colour = torch.rand((batch, 3, 1, 1), generator=device_gen, device=device)
    if coins[2] < cfg.mixup:
        params.mixup_v = sample_beta(cfg.mixup_alpha, cfg.mixup_alpha, host)
        params.mixup_perm = torch.randperm(batch, generator=device_gen, device=device)
    return params


def apply_batch_augment(x: torch.Tensor, params: BatchAugmentParams) -> torch.Tensor:
    """Apply drawn parameters to a float (B, 3, H, W) batch in [0, 1] (call once for LR, once for HR)."""
    if params.rgb_perm is not None and params.rgb_perm != [0, 1, 2]:
        x = x[:, params.rgb_perm]
    if params.blend_v is not None:
        v = params.blend_v
        x = x * v + params.blend_colour.to(x.dtype) * (1.0 - v)
    if params.mixup_v is not None:
        v = params.mixup_v
        x = x * v + x[params.mixup_perm] * (1.0 - v)
    return x
