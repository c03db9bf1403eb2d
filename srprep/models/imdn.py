"""IMDN, the information multi-distillation network (Hui et al., ACM MM 2019), with the official key names.

Layout of the official checkpoints (e.g. ``IMDN_x2.pth``, 694,404 parameters): ``fea_conv`` (3->64, 3x3),
``IMDB1`` .. ``IMDB6`` (each ``c1``..``c4`` 3x3 distillation convs, ``c5`` 1x1 fusion, ``cca.conv_du.{0,2}``
contrast-aware channel attention), ``c.0`` (1x1 fusion of the six block outputs), ``LR_conv`` (3x3), and
``upsampler.0`` (3x3 conv to 3*s*s channels) + PixelShuffle(s).

Note: the channel attention pools over the whole image (mean and standard deviation per channel), so the
receptive field is global and tiled inference is only approximately equal to whole-image inference.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import torch
from torch import nn

from srprep.models.common import channel_gate, conv3x3, key_indices, shape_of
from srprep.models.registry import register_model


class ContrastChannelAttention(nn.Module):
    """CCA: gate = sigmoid(MLP(std_hw(x) + mean_hw(x))); returns x * gate (``conv_du.{0,2}`` keys)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv_du = channel_gate(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        # population standard deviation (divide by H*W), as the original "contrast" statistic
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        return x * self.conv_du(std + mean)


class IMDBlock(nn.Module):
    """Information multi-distillation block: three conv steps each keep 1/4 of the channels ("distilled")
    and refine the other 3/4; the four distilled parts are fused by CCA + 1x1 conv, plus a residual."""

    def __init__(self, channels: int = 64, distillation_rate: float = 0.25) -> None:
        super().__init__()
        self.distilled = int(channels * distillation_rate)
        self.remaining = channels - self.distilled
        self.c1 = conv3x3(channels, channels)
        self.c2 = conv3x3(self.remaining, channels)
        self.c3 = conv3x3(self.remaining, channels)
        self.c4 = conv3x3(self.remaining, self.distilled)
        self.act = nn.LeakyReLU(0.05, inplace=True)
        self.c5 = nn.Conv2d(self.distilled * 4, channels, 1)
        self.cca = ContrastChannelAttention(self.distilled * 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = (self.distilled, self.remaining)
        d1, r1 = torch.split(self.act(self.c1(x)), split, dim=1)
        d2, r2 = torch.split(self.act(self.c2(r1)), split, dim=1)
        d3, r3 = torch.split(self.act(self.c3(r2)), split, dim=1)
        d4 = self.c4(r3)
        return x + self.c5(self.cca(torch.cat([d1, d2, d3, d4], dim=1)))


@register_model("imdn")
class IMDN(nn.Module):
    """IMDN for any integer scale (the official weights exist for x2, x3, x4).

    Input/output: float NCHW RGB in [0, 1] (output not clamped), the range the official weights were trained in.
    The blocks are attributes ``IMDB1`` .. ``IMDB{num_modules}`` to match the official key names.
    """

    def __init__(self, scale: int = 4, num_feat: int = 64, num_modules: int = 6, num_in_ch: int = 3,
                 num_out_ch: int = 3) -> None:
        super().__init__()
        self.scale = scale
        self.num_modules = num_modules
        self.arch_kwargs = dict(num_feat=num_feat, num_modules=num_modules, num_in_ch=num_in_ch,
                                num_out_ch=num_out_ch)
        self.fea_conv = conv3x3(num_in_ch, num_feat)
        for i in range(1, num_modules + 1):
            setattr(self, f"IMDB{i}", IMDBlock(num_feat))
        self.c = nn.Sequential(nn.Conv2d(num_feat * num_modules, num_feat, 1), nn.LeakyReLU(0.05, inplace=True))
        self.LR_conv = conv3x3(num_feat, num_feat)
        self.upsampler = nn.Sequential(conv3x3(num_feat, num_out_ch * scale * scale), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) float in [0, 1] -> (N, 3, H*scale, W*scale)."""
        fea = self.fea_conv(x)
        outs = []
        out = fea
        for i in range(1, self.num_modules + 1):
            out = getattr(self, f"IMDB{i}")(out)
            outs.append(out)
        fused = self.c(torch.cat(outs, dim=1))
        return self.upsampler(self.LR_conv(fused) + fea)

    @staticmethod
    def infer_config(state: Mapping[str, Any]) -> Optional[dict]:
        """Recognise IMDN keys; scale from ``upsampler.0``'s output channels (3 * s * s)."""
        if "fea_conv.weight" not in state or "IMDB1.c1.weight" not in state or "upsampler.0.weight" not in state:
            return None
        num_feat, num_in_ch = shape_of(state, "fea_conv.weight")[:2]
        modules = key_indices(state, "IMDB", ".c1.weight")
        out_ch = shape_of(state, "upsampler.0.weight")[0]
        num_out_ch = num_in_ch
        scale = math.isqrt(out_ch // num_out_ch)
        if scale * scale * num_out_ch != out_ch:
            return None
        return dict(scale=scale, num_feat=num_feat, num_modules=len(modules), num_in_ch=num_in_ch,
                    num_out_ch=num_out_ch)
