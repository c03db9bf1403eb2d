"""Layers and helpers shared by several architectures (EDSR/RCAN share the EDSR-PyTorch building blocks)."""
from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from srprep.errors import SrprepError

# Mean RGB of DIV2K's training HR images, in [0, 1]; EDSR and RCAN subtract it (times rgb_range) at the input.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def conv3x3(in_ch: int, out_ch: int, kernel_size: int = 3, bias: bool = True) -> nn.Conv2d:
    """'Same'-size convolution (stride 1, zero padding kernel_size // 2)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=bias)


class MeanShift(nn.Module):
    """Fixed per-channel affine map ``y = x / std + sign * rgb_range * mean / std`` as a 1x1 convolution.

    The weight (3, 3, 1, 1) and bias (3,) are *buffers*: they are saved under ``<name>.weight`` /
    ``<name>.bias`` (the EDSR-PyTorch key names, so official checkpoints load strictly) but are not
    parameters, so they are neither trained nor counted in the published parameter totals.
    """

    def __init__(
        self,
        rgb_range: float,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
        rgb_std: Sequence[float] = (1.0, 1.0, 1.0),
        sign: int = -1,
    ) -> None:
        super().__init__()
        std = torch.tensor(rgb_std, dtype=torch.float32)
        weight = torch.eye(3, dtype=torch.float32).view(3, 3, 1, 1) / std.view(3, 1, 1, 1)
        bias = sign * rgb_range * torch.tensor(rgb_mean, dtype=torch.float32) / std
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


class PixelShuffleUpsampler(nn.Sequential):
    """EDSR-PyTorch style upsampler: (conv n -> r*r*n, PixelShuffle(r)) per factor; x2^k as k x2 stages, x3 as one.

    Children are numbered like the original ``Upsampler`` (conv at 0, 2, ...; shuffle at 1, 3, ...), so the
    weights sit at ``tail.0.0``, ``tail.0.2`` for x4.
    """

    def __init__(self, scale: int, num_feats: int) -> None:
        layers: list[nn.Module] = []
        for factor in upsample_factors(scale):
            layers.append(conv3x3(num_feats, factor * factor * num_feats))
            layers.append(nn.PixelShuffle(factor))
        super().__init__(*layers)


def channel_gate(channels: int, reduction: int = 16) -> nn.Sequential:
    """The squeeze-and-excitation MLP of RCAN's and IMDN's channel attention: 1x1 conv down by ``reduction``,
    ReLU, 1x1 conv back up, sigmoid. Its weights sit at ``<name>.0`` and ``<name>.2`` (``conv_du.{0,2}`` in the
    official checkpoints); what it is fed (a global average, or IMDN's mean + standard deviation) is up to
    the caller."""
    return nn.Sequential(
        nn.Conv2d(channels, channels // reduction, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels // reduction, channels, 1),
        nn.Sigmoid(),
    )


def upsample_factors(scale: int) -> list[int]:
    """Split ``scale`` into pixel-shuffle stages: powers of two as x2 stages, 3 as a single x3 stage.

    Raises :class:`SrprepError` for other scales (5, 6, 7 ... have no stage plan in these architectures).
    """
    if scale == 3:
        return [3]
    if scale >= 2 and (scale & (scale - 1)) == 0:
        return [2] * int(math.log2(scale))
    raise SrprepError(f"unsupported scale x{scale}: these networks upscale by 2, 3, 4 or 8")


def default_init_weights(modules: Sequence[nn.Module], scale: float = 1.0) -> None:
    """Kaiming-normal (fan_in) init of every conv, multiplied by ``scale``; biases zero.

    BasicSR initialises its residual networks this way with scale 0.1, which keeps the residual branches small
    at the start of training (stable without batch norm).
    """
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                m.weight.data.mul_(scale)
                if m.bias is not None:
                    m.bias.data.zero_()


def channel_dropout(p: float) -> nn.Module:
    """``nn.Dropout2d(p)`` (whole feature channels, active only in training mode), or ``nn.Identity`` for p=0.

    Used as "Reflash Dropout" (Kong et al., CVPR 2022): channel dropout right before the last conv of an SR
    network, p=0.7 for SRResNet and 0.5 for RRDB in the paper. It holds no weights, so checkpoint keys are the
    same with and without it.
    """
    if not 0.0 <= p < 1.0:
        raise SrprepError(f"dropout probability must be in [0, 1), got {p}")
    return nn.Dropout2d(p) if p > 0 else nn.Identity()


# --- helpers for recognising checkpoints by their keys -------------------------------------------------------


def key_indices(state: Mapping[str, Any], prefix: str, suffix: str) -> list[int]:
    """Sorted integers ``i`` for which ``f"{prefix}{i}{suffix}"`` is a key of ``state``."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")
    found = set()
    for key in state:
        m = pattern.match(key)
        if m:
            found.add(int(m.group(1)))
    return sorted(found)


def shape_of(state: Mapping[str, Any], key: str) -> tuple[int, ...]:
    """Shape of the tensor at ``key`` as a tuple of ints."""
    return tuple(int(d) for d in state[key].shape)


def scale_from_shuffle_convs(out_channels: Sequence[int], num_feats: int) -> int | None:
    """Total upscale factor from the output channels of successive (conv -> PixelShuffle) stages."""
    total = 1
    for ch in out_channels:
        ratio = ch // num_feats
        if ratio * num_feats != ch:
            return None
        factor = math.isqrt(ratio)
        if factor * factor != ratio or factor < 2:
            return None
        total *= factor
    return total if out_channels else None


def rgb_range_from_mean_shift(state: Mapping[str, Any], key: str = "sub_mean.bias") -> float | None:
    """The ``rgb_range`` an EDSR-PyTorch-style network was trained with, read from its input mean shift.

    EDSR-PyTorch stores ``sub_mean.bias = -rgb_range * DIV2K mean`` (std 1), so the bias says whether the
    network works in [0, 1] or [0, 255] (its ``--rgb_range``). Returns None when ``key`` is absent; raises
    :class:`SrprepError` for a bias that is not a multiple of the DIV2K mean (another mean: not readable).
    """
    if key not in state or state[key].is_meta:  # meta tensors (shape-only models) hold no values
        return None
    bias = state[key].detach().double().cpu()
    ratio = -bias / torch.tensor(DIV2K_RGB_MEAN, dtype=torch.float64)
    value = float(ratio.mean())
    if value <= 0 or float((ratio - value).abs().max()) > 1e-4 * value:
        raise SrprepError(f"cannot read rgb_range from {key} = {bias.tolist()}: not -rgb_range x the DIV2K mean "
                          f"{DIV2K_RGB_MEAN}")
    nearest = round(value)
    return float(nearest) if nearest and abs(value - nearest) < 1e-4 * value else value
