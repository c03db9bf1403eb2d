"""EDSR (Lim et al., 2017), with the module names of the official EDSR-PyTorch code.

Submodule names equal the official checkpoint keys (``sub_mean``, ``head.0``, ``body.{i}.body.{0,2}``,
``body.{N}``, ``tail.0.{0,2}``, ``tail.1``, ``add_mean``), so official ``.pt`` files load without renaming.

Published sizes: baseline (16 blocks x 64 feats, res_scale 1) x2 = 1,369,859 parameters; paper model
(32 blocks x 256 feats, res_scale 0.1) x2 = 40,729,603.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn

from srprep.models.common import (
    DIV2K_RGB_MEAN,
    MeanShift,
    PixelShuffleUpsampler,
    conv3x3,
    key_indices,
    rgb_range_from_mean_shift,
    scale_from_shuffle_convs,
    shape_of,
    upsample_factors,
)
from srprep.errors import SrprepError
from srprep.models.registry import register_model


class ResBlock(nn.Module):
    """conv-ReLU-conv residual block without batch norm; the branch is multiplied by ``res_scale``."""

    def __init__(self, num_feats: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(num_feats, num_feats), nn.ReLU(inplace=True), conv3x3(num_feats, num_feats))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


@register_model("edsr")
class EDSR(nn.Module):
    """EDSR: head conv, ``num_blocks`` residual blocks + conv (global skip), pixel-shuffle tail.

    Input/output: float NCHW RGB in [0, 1] (output not clamped). Internally the network works in
    [0, rgb_range] with the DIV2K mean subtracted, as the official weights expect (rgb_range 255).
    Defaults are the baseline model; the paper model is ``num_blocks=32, num_feats=256, res_scale=0.1``
    (also registered as ``edsr_paper``). ``rgb_range`` 1 is EDSR-PyTorch's ``--rgb_range 1`` (the network
    works in [0, 1]). ``res_scale=None`` means "not known" and is refused with a message saying what to pass.
    """

    def __init__(
        self,
        scale: int = 2,
        num_blocks: int = 16,
        num_feats: int = 64,
        res_scale: Optional[float] = 1.0,
        rgb_range: float = 255.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        upsample_factors(scale)  # validate early with a clear message
        if res_scale is None:
            raise SrprepError(
                f"EDSR {num_blocks}x{num_feats}: res_scale is not stored in the weights; give it (model argument "
                "res_scale, e.g. --model-arg res_scale=0.1 for the paper's 32x256 models, 1 for models trained "
                "with EDSR-PyTorch's default)")
        self.scale = scale
        self.rgb_range = float(rgb_range)
        self.arch_kwargs = dict(num_blocks=num_blocks, num_feats=num_feats, res_scale=res_scale,
                                rgb_range=rgb_range, rgb_mean=tuple(rgb_mean))
        self.sub_mean = MeanShift(rgb_range, rgb_mean, sign=-1)
        self.head = nn.Sequential(conv3x3(3, num_feats))
        self.body = nn.Sequential(
            *[ResBlock(num_feats, res_scale) for _ in range(num_blocks)], conv3x3(num_feats, num_feats)
        )
        self.tail = nn.Sequential(PixelShuffleUpsampler(scale, num_feats), conv3x3(num_feats, 3))
        self.add_mean = MeanShift(rgb_range, rgb_mean, sign=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) float in [0, 1] -> (N, 3, H*scale, W*scale) float, about [0, 1]."""
        x = self.sub_mean(x * self.rgb_range)
        x = self.head(x)
        x = x + self.body(x)
        x = self.add_mean(self.tail(x))
        return x / self.rgb_range

    @staticmethod
    def infer_config(state: Mapping[str, Any]) -> Optional[dict]:
        """Recognise an EDSR key layout; returns ``{"scale", "num_blocks", "num_feats", ...}`` or None.

        ``rgb_range`` is read from ``sub_mean.bias`` (1 or 255; absent keys leave the default 255).
        ``res_scale`` leaves no trace in the weights and is not guessed: up to 128 features it is EDSR-PyTorch's
        default 1 (what its baseline models used); wider models (the paper's 256 used 0.1, but a model trained
        with the default has 1) get None, which the constructor refuses unless the caller gives the value.
        """
        if "head.0.weight" not in state or "body.0.body.0.weight" not in state:
            return None
        if "body.0.body.0.body.0.weight" in state or "tail.1.weight" not in state:
            return None  # RCAN nests one level deeper
        num_feats = shape_of(state, "head.0.weight")[0]
        blocks = key_indices(state, "body.", ".body.0.weight")
        body_convs = key_indices(state, "body.", ".weight")
        if not blocks or blocks != list(range(len(blocks))) or body_convs != [len(blocks)]:
            return None
        ups = key_indices(state, "tail.0.", ".weight")
        scale = scale_from_shuffle_convs([shape_of(state, f"tail.0.{i}.weight")[0] for i in ups], num_feats)
        if scale is None:
            return None
        config = dict(scale=scale, num_blocks=len(blocks), num_feats=num_feats,
                      res_scale=1.0 if num_feats <= 128 else None)
        rgb_range = rgb_range_from_mean_shift(state)
        if rgb_range is not None:
            config["rgb_range"] = rgb_range
        return config


@register_model("edsr_baseline")
def edsr_baseline(scale: int = 2, **kwargs: Any) -> EDSR:
    """EDSR baseline: 16 residual blocks x 64 features, res_scale 1 (x2: 1,369,859 parameters)."""
    return EDSR(scale=scale, **{"num_blocks": 16, "num_feats": 64, "res_scale": 1.0, **kwargs})


@register_model("edsr_paper")
def edsr_paper(scale: int = 2, **kwargs: Any) -> EDSR:
    """EDSR as in the paper: 32 residual blocks x 256 features, res_scale 0.1 (x2: 40,729,603 parameters)."""
    return EDSR(scale=scale, **{"num_blocks": 32, "num_feats": 256, "res_scale": 0.1, **kwargs})
