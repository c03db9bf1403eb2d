"""RCAN, residual channel attention network (Zhang et al., ECCV 2018), with the official key names.

Defaults: 10 residual groups x 20 RCABs x 64 features, channel-attention reduction 16:
15,592,355 parameters at x4 (the published 15.6M), 15,444,643 at x2.
Key layout: ``sub_mean``, ``head.0``, ``body.{g}.body.{b}.body.{0,2}`` (RCAB convs),
``body.{g}.body.{b}.body.3.conv_du.{0,2}`` (attention), ``body.{g}.body.{B}`` (group tail conv),
``body.{G}`` (trunk conv), ``tail.0.*`` (upsampler), ``tail.1``, ``add_mean``.

Note: channel attention pools over the whole image, so tiled inference is only approximately equal to
whole-image inference.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn

from srprep.models.common import (
    DIV2K_RGB_MEAN,
    MeanShift,
    PixelShuffleUpsampler,
    channel_gate,
    conv3x3,
    key_indices,
    rgb_range_from_mean_shift,
    scale_from_shuffle_convs,
    shape_of,
    upsample_factors,
)
from srprep.models.registry import register_model


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation gate: x * sigmoid(MLP(global average of x))."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = channel_gate(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.avg_pool(x))


class RCAB(nn.Module):
    """Residual channel attention block: x + CA(conv(relu(conv(x))))."""

    def __init__(self, num_feats: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(num_feats, num_feats), nn.ReLU(inplace=True), conv3x3(num_feats, num_feats),
            ChannelAttention(num_feats, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """``num_blocks`` RCABs and a conv, with a group-level skip connection."""

    def __init__(self, num_feats: int, reduction: int, num_blocks: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*[RCAB(num_feats, reduction) for _ in range(num_blocks)],
                                  conv3x3(num_feats, num_feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register_model("rcan")
class RCAN(nn.Module):
    """RCAN. Input/output: float NCHW RGB in [0, 1]; internally [0, 255] minus the DIV2K mean, like EDSR."""

    def __init__(
        self, scale: int = 4, num_groups: int = 10, num_blocks: int = 20, num_feats: int = 64, reduction: int = 16,
        rgb_range: float = 255.0, rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        upsample_factors(scale)
        self.scale = scale
        self.rgb_range = float(rgb_range)
        self.arch_kwargs = dict(num_groups=num_groups, num_blocks=num_blocks, num_feats=num_feats,
                                reduction=reduction, rgb_range=rgb_range, rgb_mean=tuple(rgb_mean))
        self.sub_mean = MeanShift(rgb_range, rgb_mean, sign=-1)
        self.head = nn.Sequential(conv3x3(3, num_feats))
        self.body = nn.Sequential(*[ResidualGroup(num_feats, reduction, num_blocks) for _ in range(num_groups)],
                                  conv3x3(num_feats, num_feats))
        self.tail = nn.Sequential(PixelShuffleUpsampler(scale, num_feats), conv3x3(num_feats, 3))
        self.add_mean = MeanShift(rgb_range, rgb_mean, sign=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) float in [0, 1] -> (N, 3, H*scale, W*scale), about [0, 1]."""
        x = self.head(self.sub_mean(x * self.rgb_range))
        x = x + self.body(x)
        return self.add_mean(self.tail(x)) / self.rgb_range

    @staticmethod
    def infer_config(state: Mapping[str, Any]) -> Optional[dict]:
        """Recognise the RCAN key layout; returns ``{"scale", "num_groups", "num_blocks", ...}`` or None
        (``rgb_range`` read from ``sub_mean.bias`` as for EDSR)."""
        if "head.0.weight" not in state or "body.0.body.0.body.3.conv_du.0.weight" not in state:
            return None
        num_feats = shape_of(state, "head.0.weight")[0]
        groups = key_indices(state, "body.", ".body.0.body.0.weight")
        blocks = key_indices(state, "body.0.body.", ".body.0.weight")
        squeeze = shape_of(state, "body.0.body.0.body.3.conv_du.0.weight")[0]
        ups = key_indices(state, "tail.0.", ".weight")
        scale = scale_from_shuffle_convs([shape_of(state, f"tail.0.{i}.weight")[0] for i in ups], num_feats)
        if scale is None or not groups or not blocks:
            return None
        config = dict(scale=scale, num_groups=len(groups), num_blocks=len(blocks), num_feats=num_feats,
                      reduction=num_feats // squeeze)
        rgb_range = rgb_range_from_mean_shift(state)
        if rgb_range is not None:
            config["rgb_range"] = rgb_range
        return config
