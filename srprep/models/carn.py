"""CARN and CARN-M, the cascading residual networks (Ahn et al., ECCV 2018), with the official key names.

Written from nmhkahn/CARN-pytorch (``carn/model/carn.py``, ``carn_m.py``, ``ops.py``). Its released files
(``carn.pth``, ``carn_m.pth``) are *multi-scale*: one trunk and three upsamplers ``upsample.up2``, ``up3``,
``up4``; the original picks the upsampler per call (``net(x, scale)``). Here the scale is chosen when the
network is built (``scale=3`` runs ``up3``), so the same file serves x2, x3 and x4 and ``--scale`` says which.
A single-scale file has one upsampler, ``upsample.up``.

Key layout: ``sub_mean.shifter`` / ``add_mean.shifter`` (fixed 1x1 convs: the DIV2K mean in [0, 1]),
``entry``, ``b1``..``b3`` (cascading blocks), ``c1``..``c3`` (1x1 fusion convs ``.body.0``), the upsampler
``upsample.up{2,3,4}.body.{0,3}`` and ``exit``. CARN's blocks hold three residual blocks ``b1``..``b3``;
CARN-M's hold one efficient residual block ``b1`` (grouped 3x3 convs + 1x1) that is *applied three times*
(shared weights, as the original's ``Block.forward`` does), and its upsampler convs are grouped too.

Parameters of the official multi-scale files (three upsamplers): CARN-M 414,811 tensors' values, of which
414,787 trainable (the mean shifts are frozen); CARN (multi-scale, group 1) 1,591,939 trainable.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from srprep.errors import SrprepError
from srprep.models.common import DIV2K_RGB_MEAN, shape_of
from srprep.models.registry import register_model

_SCALES = (2, 3, 4)


class _MeanShift(nn.Module):
    """``x + sign * mean`` per channel, as a frozen 1x1 conv named ``shifter`` (the original's key names).

    The original keeps weight and bias as parameters with ``requires_grad=False``; they are parameters here
    too (so the keys are the same), frozen, and not counted as trainable."""

    def __init__(self, mean: Sequence[float], sign: int) -> None:
        super().__init__()
        self.shifter = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.shifter.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.shifter.bias.copy_(sign * torch.tensor(mean, dtype=torch.float32))
        self.shifter.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shifter(x)


def _conv_relu(cin: int, cout: int, k: int = 1) -> nn.Module:
    """The original ``BasicBlock``: conv (padding k // 2) + ReLU, weights at ``body.0``."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(inplace=True))


class _Wrap(nn.Module):
    """Holds a Sequential as ``body`` (the original's attribute name) and adds nothing else."""

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResidualBlock(nn.Module):
    """relu(x + conv(relu(conv(x)))) (CARN)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + x)


class EfficientResidualBlock(nn.Module):
    """relu(x + conv1x1(relu(gconv(relu(gconv(x)))))) with grouped 3x3 convs (CARN-M)."""

    def __init__(self, ch: int, group: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, groups=group), nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1, groups=group), nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + x)


class CascadingBlock(nn.Module):
    """Three residual units, each output concatenated to everything before it and fused by a 1x1 conv.

    ``mobile``: one efficient residual block ``b1`` used for all three units (CARN-M's weight sharing);
    otherwise three residual blocks ``b1``, ``b2``, ``b3`` (CARN).
    """

    def __init__(self, ch: int, mobile: bool, group: int) -> None:
        super().__init__()
        self.mobile = mobile
        if mobile:
            self.b1 = EfficientResidualBlock(ch, group)
        else:
            self.b1, self.b2, self.b3 = ResidualBlock(ch), ResidualBlock(ch), ResidualBlock(ch)
        self.c1 = _Wrap(_conv_relu(2 * ch, ch))
        self.c2 = _Wrap(_conv_relu(3 * ch, ch))
        self.c3 = _Wrap(_conv_relu(4 * ch, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        units = (self.b1, self.b1, self.b1) if self.mobile else (self.b1, self.b2, self.b3)
        return _cascade(x, units, (self.c1, self.c2, self.c3))


def _cascade(x: torch.Tensor, units, fusions) -> torch.Tensor:
    """CARN's cascading connection: c_i = cat(c_{i-1}, unit_i(o_{i-1})), o_i = fusion_i(c_i); returns o_3."""
    cat = out = x
    for unit, fuse in zip(units, fusions):
        cat = torch.cat([cat, unit(out)], dim=1)
        out = fuse(cat)
    return out


def _upsampler(ch: int, scale: int, group: int) -> _Wrap:
    """(grouped conv -> ReLU -> PixelShuffle(2)) x log2(s), or one x3 stage; convs at ``body.0``, ``body.3``."""
    layers: list[nn.Module] = []
    for factor in ([3] if scale == 3 else [2] * (scale // 2)):
        layers += [nn.Conv2d(ch, factor * factor * ch, 3, padding=1, groups=group), nn.ReLU(inplace=True),
                   nn.PixelShuffle(factor)]
    return _Wrap(nn.Sequential(*layers))


class Upsample(nn.Module):
    """The original ``UpsampleBlock``: ``up2``/``up3``/``up4`` (multi-scale) or ``up`` (single scale)."""

    def __init__(self, ch: int, scale: int, multi_scale: bool, group: int) -> None:
        super().__init__()
        self.key = f"up{scale}" if multi_scale else "up"
        if multi_scale:
            for s in _SCALES:
                setattr(self, f"up{s}", _upsampler(ch, s, group))
        else:
            self.up = _upsampler(ch, scale, group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.key)(x)


@register_model("carn")
class CARN(nn.Module):
    """CARN (``mobile=False``) or CARN-M (``mobile=True``, ``group=4``) for x2, x3, x4.

    Input/output: float NCHW RGB in [0, 1] (the range the official weights were trained in; output not
    clamped). ``multi_scale``: the network holds the x2, x3 and x4 upsamplers of the official files and
    uses the one for ``scale``.
    """

    def __init__(self, scale: int = 4, *, mobile: bool = False, group: int = 1, multi_scale: bool = True,
                 num_feat: int = 64) -> None:
        super().__init__()
        if scale not in _SCALES:
            raise SrprepError(f"CARN supports x2, x3, x4, not x{scale}")
        if num_feat % group:
            raise SrprepError(f"CARN: group {group} does not divide {num_feat} features")
        self.scale = scale
        self.arch_kwargs = dict(mobile=mobile, group=group, multi_scale=multi_scale, num_feat=num_feat)
        self.sub_mean = _MeanShift(DIV2K_RGB_MEAN, -1)
        self.add_mean = _MeanShift(DIV2K_RGB_MEAN, +1)
        self.entry = nn.Conv2d(3, num_feat, 3, padding=1)
        self.b1, self.b2, self.b3 = (CascadingBlock(num_feat, mobile, group) for _ in range(3))
        self.c1 = _Wrap(_conv_relu(2 * num_feat, num_feat))
        self.c2 = _Wrap(_conv_relu(3 * num_feat, num_feat))
        self.c3 = _Wrap(_conv_relu(4 * num_feat, num_feat))
        self.upsample = Upsample(num_feat, scale, multi_scale, group)
        self.exit = nn.Conv2d(num_feat, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) float in [0, 1] -> (N, 3, H*scale, W*scale)."""
        x = self.entry(self.sub_mean(x))
        out = _cascade(x, (self.b1, self.b2, self.b3), (self.c1, self.c2, self.c3))
        return self.add_mean(self.exit(self.upsample(out)))

    @staticmethod
    def infer_config(state: Mapping[str, Any]) -> Optional[dict]:
        """Recognise CARN / CARN-M keys. A multi-scale file records no single scale (``scale`` None: the caller
        chooses x2, x3 or x4); a single-scale file's scale follows from its upsampler's output channels."""
        if "entry.weight" not in state or "b1.b1.body.0.weight" not in state or "exit.weight" not in state:
            return None
        num_feat = shape_of(state, "entry.weight")[0]
        mobile = "b1.b2.body.0.weight" not in state
        group = num_feat // shape_of(state, "b1.b1.body.0.weight")[1]
        multi = "upsample.up2.body.0.weight" in state
        scale = None
        if not multi:
            if "upsample.up.body.0.weight" not in state:
                return None
            stages = 2 if "upsample.up.body.3.weight" in state else 1
            ratio = shape_of(state, "upsample.up.body.0.weight")[0] // num_feat
            scale = {(1, 4): 2, (1, 9): 3, (2, 4): 4}.get((stages, ratio))
            if scale is None:
                return None
        return dict(scale=scale, mobile=mobile, group=group, multi_scale=multi, num_feat=num_feat)


@register_model("carn_m")
def carn_m(scale: int = 4, **kwargs: Any) -> CARN:
    """CARN-M: the mobile CARN (efficient residual blocks shared within each cascading block, group 4)."""
    return CARN(scale=scale, **{"mobile": True, "group": 4, **kwargs})
