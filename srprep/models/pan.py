"""PAN, the pixel attention network (Zhao et al., ECCVW 2020), with the key names of the official files.

Written from zhaohengyuan1/PAN (``codes/models/archs/PAN_arch.py``); official ``PANx{2,3,4}_DF2K.pth`` use
``nf=40, unf=24, nb=16`` (261,403 parameters at x2/x3; 272,419 at x4, the paper's "272K"). Keys:
``conv_first``, ``SCPA_trunk.{i}`` (``conv1_a``, ``conv1_b``, ``k1.0``, ``PAConv.k2/k3/k4``, ``conv3``),
``trunk_conv``, ``upconv1``, ``att1.conv``, ``HRconv1`` (and ``upconv2``, ``att2.conv``, ``HRconv2`` at x4),
``conv_last``. The x2 and x3 files have the same shapes, so their scale must be given (``--scale``).

Forward: features + trunk; nearest-neighbour upsampling (x2 or x3 at once, x4 as two x2 stages) each followed
by conv, pixel attention and conv; the output is added to the bilinear enlargement of the input.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import nn
from torch.nn import functional as F

from srprep.errors import SrprepError
from srprep.models.common import key_indices, shape_of
from srprep.models.registry import register_model


class PixelAttention(nn.Module):
    """x * sigmoid(conv1x1(x)) (``conv`` key)."""

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(nf, nf, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


class PAConv(nn.Module):
    """k4(k3(x) * sigmoid(k2(x))): 3x3 convs without bias gated by a 1x1 attention map."""

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.k2 = nn.Conv2d(nf, nf, 1)
        self.k3 = nn.Conv2d(nf, nf, 3, padding=1, bias=False)
        self.k4 = nn.Conv2d(nf, nf, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.k4(self.k3(x) * torch.sigmoid(self.k2(x)))


class SCPA(nn.Module):
    """Self-calibrated block with pixel attention: two half-width branches (plain 3x3 conv, PAConv), a 1x1
    fusion without bias, and a residual connection."""

    def __init__(self, nf: int, reduction: int = 2) -> None:
        super().__init__()
        width = nf // reduction
        self.conv1_a = nn.Conv2d(nf, width, 1, bias=False)
        self.conv1_b = nn.Conv2d(nf, width, 1, bias=False)
        self.k1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False))
        self.PAConv = PAConv(width)
        self.conv3 = nn.Conv2d(width * reduction, nf, 1, bias=False)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.lrelu(self.k1(self.lrelu(self.conv1_a(x))))
        b = self.lrelu(self.PAConv(self.lrelu(self.conv1_b(x))))
        return x + self.conv3(torch.cat([a, b], dim=1))


@register_model("pan")
class PAN(nn.Module):
    """PAN for x2, x3, x4. Input/output: float NCHW in [0, 1] (output not clamped)."""

    def __init__(self, scale: int = 4, nf: int = 40, unf: int = 24, nb: int = 16, in_nc: int = 3,
                 out_nc: int = 3) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise SrprepError(f"PAN supports x2, x3, x4, not x{scale}")
        self.scale = scale
        self.arch_kwargs = dict(nf=nf, unf=unf, nb=nb, in_nc=in_nc, out_nc=out_nc)
        self.conv_first = nn.Conv2d(in_nc, nf, 3, padding=1)
        self.SCPA_trunk = nn.Sequential(*[SCPA(nf) for _ in range(nb)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.upconv1 = nn.Conv2d(nf, unf, 3, padding=1)
        self.att1 = PixelAttention(unf)
        self.HRconv1 = nn.Conv2d(unf, unf, 3, padding=1)
        if scale == 4:
            self.upconv2 = nn.Conv2d(unf, unf, 3, padding=1)
            self.att2 = PixelAttention(unf)
            self.HRconv2 = nn.Conv2d(unf, unf, 3, padding=1)
        self.conv_last = nn.Conv2d(unf, out_nc, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def _stage(self, fea: torch.Tensor, factor: int, upconv, att, hrconv) -> torch.Tensor:
        fea = upconv(F.interpolate(fea, scale_factor=factor, mode="nearest"))
        return self.lrelu(hrconv(self.lrelu(att(fea))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) float in [0, 1] -> (N, C, H*scale, W*scale)."""
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.SCPA_trunk(fea))
        if self.scale == 4:
            fea = self._stage(fea, 2, self.upconv1, self.att1, self.HRconv1)
            fea = self._stage(fea, 2, self.upconv2, self.att2, self.HRconv2)
        else:
            fea = self._stage(fea, self.scale, self.upconv1, self.att1, self.HRconv1)
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self.conv_last(fea) + base

    @staticmethod
    def infer_config(state: Mapping[str, Any]) -> Optional[dict]:
        """Recognise PAN keys. x4 files have a second upsampling stage; x2 and x3 files look the same (scale
        None: the caller says which)."""
        if "conv_first.weight" not in state or "SCPA_trunk.0.conv1_a.weight" not in state:
            return None
        nf, in_nc = shape_of(state, "conv_first.weight")[:2]
        return dict(scale=4 if "upconv2.weight" in state else None, nf=nf,
                    unf=shape_of(state, "upconv1.weight")[0],
                    nb=len(key_indices(state, "SCPA_trunk.", ".conv1_a.weight")), in_nc=in_nc,
                    out_nc=shape_of(state, "conv_last.weight")[0])
