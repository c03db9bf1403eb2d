"""MSRResNet: BasicSR's modified SRResNet (no batch norm, LeakyReLU 0.1, bilinear global skip), BasicSR key names.

Parameter count at x4 with 64 features: 1,517,571 for the usual 16 blocks; each block adds two 3x3 64->64 convs
(73,856 weights), so the 20-block variant has 1,517,571 + 4 * 73,856 = 1,812,995. The x4 tail is two x2
pixel-shuffle stages (``upconv1``, ``upconv2``), then ``conv_hr`` and ``conv_last``.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import nn
from torch.nn import functional as F

from srprep.errors import SrprepError
from srprep.models.common import (
    channel_dropout,
    conv3x3,
    default_init_weights,
    key_indices,
    scale_from_shuffle_convs,
    shape_of,
)
from srprep.models.registry import register_model


class ResidualBlockNoBN(nn.Module):
    """x + conv2(relu(conv1(x))) (BasicSR names ``conv1``/``conv2``), init scaled by 0.1."""

    def __init__(self, num_feat: int = 64) -> None:
        super().__init__()
        self.conv1 = conv3x3(num_feat, num_feat)
        self.conv2 = conv3x3(num_feat, num_feat)
        self.relu = nn.ReLU(inplace=True)
        default_init_weights([self.conv1, self.conv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


@register_model("msrresnet")
class MSRResNet(nn.Module):
    """Modified SRResNet (BasicSR ``MSRResNet``) for x2, x3, x4.

    Input/output: float NCHW RGB in [0, 1]. The network predicts a residual over the bilinear upsampling of the
    input. ``dropout`` > 0 adds Reflash Dropout (``nn.Dropout2d``, training only) before ``conv_last``
    (the paper uses p=0.7 for SRResNet); it has no weights and does not change checkpoint keys.
    """

    def __init__(
        self, scale: int = 4, num_block: int = 16, num_feat: int = 64, num_in_ch: int = 3, num_out_ch: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise SrprepError(f"MSRResNet supports x2, x3, x4, not x{scale}")
        self.scale = scale
        self.arch_kwargs = dict(num_block=num_block, num_feat=num_feat, num_in_ch=num_in_ch,
                                num_out_ch=num_out_ch, dropout=dropout)
        self.conv_first = conv3x3(num_in_ch, num_feat)
        self.body = nn.Sequential(*[ResidualBlockNoBN(num_feat) for _ in range(num_block)])
        if scale == 4:
            self.upconv1 = conv3x3(num_feat, num_feat * 4)
            self.upconv2 = conv3x3(num_feat, num_feat * 4)
            self.pixel_shuffle = nn.PixelShuffle(2)
        else:
            self.upconv1 = conv3x3(num_feat, num_feat * scale * scale)
            self.pixel_shuffle = nn.PixelShuffle(scale)
        self.conv_hr = conv3x3(num_feat, num_feat)
        self.dropout = channel_dropout(dropout)
        self.conv_last = conv3x3(num_feat, num_out_ch)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)
        init = [self.conv_first, self.upconv1, self.conv_hr, self.conv_last]
        if scale == 4:
            init.append(self.upconv2)
        default_init_weights(init, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) float in [0, 1] -> (N, C, H*scale, W*scale)."""
        feat = self.lrelu(self.conv_first(x))
        out = self.body(feat)
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.scale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.dropout(self.lrelu(self.conv_hr(out))))
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return out + base

    @staticmethod
    def infer_config(state: Mapping[str, Any]) -> Optional[dict]:
        """Recognise BasicSR MSRResNet keys; returns ``{"scale", "num_block", "num_feat", ...}`` or None."""
        needed = ("conv_first.weight", "body.0.conv1.weight", "upconv1.weight", "conv_hr.weight", "conv_last.weight")
        if not all(k in state for k in needed):
            return None
        num_feat, num_in_ch = shape_of(state, "conv_first.weight")[:2]
        blocks = key_indices(state, "body.", ".conv1.weight")
        ups = [shape_of(state, "upconv1.weight")[0]]
        if "upconv2.weight" in state:
            ups.append(shape_of(state, "upconv2.weight")[0])
        scale = scale_from_shuffle_convs(ups, num_feat)
        if scale not in (2, 3, 4):
            return None
        return dict(scale=scale, num_block=len(blocks), num_feat=num_feat, num_in_ch=num_in_ch,
                    num_out_ch=shape_of(state, "conv_last.weight")[0])


@register_model("srresnet", alias_of="msrresnet")
def srresnet(scale: int = 4, **kwargs: Any) -> MSRResNet:
    """SRResNet as used by BasicSR and the Reflash Dropout paper: the same network as ``msrresnet``."""
    return MSRResNet(scale=scale, **kwargs)
