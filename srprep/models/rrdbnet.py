"""RRDBNet, the ESRGAN generator (Wang et al., 2018), with BasicSR's key names.

Defaults: 23 RRDB blocks, 64 features, growth 32 (16,697,987 parameters at x4). The trunk always upsamples x4
(two nearest-neighbour x2 + conv stages); for x2 / x1 the input is first pixel-unshuffled by 2 / 4, as in
BasicSR / Real-ESRGAN, so their x2 checkpoints (``conv_first`` with 12 input channels) load too.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import nn
from torch.nn import functional as F

from srprep.errors import SrprepError
from srprep.models.common import channel_dropout, conv3x3, default_init_weights, key_indices, shape_of
from srprep.models.registry import register_model


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs (growth ``num_grow_ch``); output = x + 0.2 * conv5(...)."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = conv3x3(num_feat, num_grow_ch)
        self.conv2 = conv3x3(num_feat + num_grow_ch, num_grow_ch)
        self.conv3 = conv3x3(num_feat + 2 * num_grow_ch, num_grow_ch)
        self.conv4 = conv3x3(num_feat + 3 * num_grow_ch, num_grow_ch)
        self.conv5 = conv3x3(num_feat + 4 * num_grow_ch, num_feat)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        default_init_weights([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(self.lrelu(conv(torch.cat(feats, 1))))
        # 0.2 residual scaling: keeps the deep un-normalised trunk stable (ESRGAN's choice).
        return x + 0.2 * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks, outer residual scaled by 0.2."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


_UNSHUFFLE = {4: 1, 2: 2, 1: 4}  # scale -> pixel-unshuffle factor applied to the input


@register_model("rrdbnet")
class RRDBNet(nn.Module):
    """ESRGAN generator for x1, x2, x4.

    Input/output: float NCHW in [0, 1] (output not clamped). ``dropout`` > 0 adds Reflash Dropout
    (``nn.Dropout2d``, training only) before ``conv_last``; the paper uses p=0.5 for RRDB.
    For x2 / x1 sizes that are not a multiple of the unshuffle factor are edge-padded and the output cropped;
    ``tile_align`` tells tiled inference to start tiles on that grid (the unshuffle makes the network
    equivariant only to shifts by multiples of it).
    """

    def __init__(
        self, scale: int = 4, num_block: int = 23, num_feat: int = 64, num_grow_ch: int = 32, num_in_ch: int = 3,
        num_out_ch: int = 3, dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if scale not in _UNSHUFFLE:
            raise SrprepError(f"RRDBNet supports x1, x2, x4, not x{scale}")
        self.scale = scale
        self.unshuffle = _UNSHUFFLE[scale]
        self.tile_align = self.unshuffle
        self.arch_kwargs = dict(num_block=num_block, num_feat=num_feat, num_grow_ch=num_grow_ch,
                                num_in_ch=num_in_ch, num_out_ch=num_out_ch, dropout=dropout)
        self.conv_first = conv3x3(num_in_ch * self.unshuffle ** 2, num_feat)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = conv3x3(num_feat, num_feat)
        self.conv_up1 = conv3x3(num_feat, num_feat)
        self.conv_up2 = conv3x3(num_feat, num_feat)
        self.conv_hr = conv3x3(num_feat, num_feat)
        self.dropout = channel_dropout(dropout)
        self.conv_last = conv3x3(num_feat, num_out_ch)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) float in [0, 1] -> (N, C, H*scale, W*scale)."""
        h, w = x.shape[-2:]
        if self.unshuffle > 1:
            r = self.unshuffle
            pad_h, pad_w = (-h) % r, (-w) % r
            if pad_h or pad_w:
                x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
            x = F.pixel_unshuffle(x, r)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.dropout(self.lrelu(self.conv_hr(feat))))
        return out[..., : h * self.scale, : w * self.scale]

    @staticmethod
    def infer_config(state: Mapping[str, Any]) -> Optional[dict]:
        """Recognise BasicSR RRDBNet keys; the scale follows from ``conv_first``'s input channels."""
        if "conv_first.weight" not in state or "body.0.rdb1.conv1.weight" not in state:
            return None
        num_feat, in_ch = shape_of(state, "conv_first.weight")[:2]
        num_out_ch = shape_of(state, "conv_last.weight")[0] if "conv_last.weight" in state else 3
        # Assume as many input as output channels to read the unshuffle factor from conv_first.
        by_factor = {num_out_ch * r * r: s for s, r in _UNSHUFFLE.items()}
        if in_ch not in by_factor:
            return None
        scale = by_factor[in_ch]
        return dict(scale=scale, num_block=len(key_indices(state, "body.", ".rdb1.conv1.weight")),
                    num_feat=num_feat, num_grow_ch=shape_of(state, "body.0.rdb1.conv1.weight")[0],
                    num_in_ch=num_out_ch, num_out_ch=num_out_ch)


@register_model("esrgan", alias_of="rrdbnet")
def esrgan(scale: int = 4, **kwargs: Any) -> RRDBNet:
    """The ESRGAN / Real-ESRGAN generator: same network as ``rrdbnet``."""
    return RRDBNet(scale=scale, **kwargs)
