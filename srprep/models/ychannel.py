"""Y-channel networks of the SRCNN family, with their authors' key names and their authors' colour handling.

* **FSRCNN** (Dong et al., ECCV 2016) as in yjn870/FSRCNN-pytorch (``models.py``): ``first_part`` (5x5 conv d
  + PReLU), ``mid_part`` (1x1 shrink to s, m 3x3 convs, 1x1 expand back to d, each + PReLU), ``last_part``
  (9x9 transposed conv, stride = scale). FSRCNN(56, 12, 4) has 12,809 parameters at every scale, so its files
  do not say their scale: pass it (``--scale``).
* **SRCNN** (Dong et al., 2014) as in yjn870/SRCNN-pytorch: ``conv1`` (9x9, 64) ReLU ``conv2`` (5x5, 32) ReLU
  ``conv3`` (5x5), run on the bicubic-enlarged image; its files do not say their scale either.

The layers see one channel, Y in [0, 1]; colour is handled as in the authors' ``test.py``: the LR RGB image is
enlarged with Pillow's bicubic (``Image.resize(..., BICUBIC)``), its Cb and Cr are kept, the network's Y
(clamped to [0, 1]) replaces the Y, and the result goes back to RGB, all with their own YCbCr formulas
(:func:`srprep.ops.color.rgb_to_ycbcr_fsrcnn`). So, like every srprep network, :meth:`forward` maps RGB in
[0, 1] to RGB; :meth:`luma` gives the network's Y alone (what the authors' PSNR is measured on). The RGB
result is left unrounded here (srprep rounds it like every network's output; the authors' demo script
truncates when it saves a picture).

Pillow's bicubic works on 8-bit images: the input is rounded to 8 bits for the CbCr (and SRCNN's input)
path and resized on the CPU, wherever the network runs. The resizer is plain Pillow's, bit for bit
(:func:`srprep.ops.pil_resize.pil_resize`), in the pass order of the Pillow 5.4.1 the authors' README names,
not the installed PIL's (srprep's pillow-simd rounds a few values differently).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from srprep.errors import SrprepError
from srprep.models.common import key_indices, shape_of
from srprep.models.registry import register_model
from srprep.ops.color import rgb_to_ycbcr_fsrcnn, ycbcr_fsrcnn_to_rgb
from srprep.ops.pil_resize import pil_resize

__all__ = ["FSRCNN", "SRCNN", "pil_bicubic"]


# The Pillow of the FSRCNN-/SRCNN-pytorch READMEs; it decides only the order of the two passes.
AUTHORS_PILLOW = (5, 4, 1)


def pil_bicubic(img: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Plain Pillow 5.4.1's ``Image.fromarray(img).resize((w, h), BICUBIC)`` of a uint8 (H, W, 3) or (H, W)
    image, bit for bit; ``size`` is (h, w)."""
    return pil_resize(np.ascontiguousarray(img), size, "bicubic", pillow=AUTHORS_PILLOW)


def _levels(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float [0, 1] -> the 8-bit values the authors' code starts from, as float32 0..255
    (rounded half up and clipped: exact for input that came from uint8 images)."""
    return (x.detach().float().clamp(0, 1) * 255 + 0.5).floor()


def _enlarged(levels: torch.Tensor, scale: int) -> torch.Tensor:
    """Pillow-bicubic enlargement of 8-bit RGB ``levels`` by ``scale``: (N, 3, H*s, W*s) float32 in [0, 255]."""
    h, w = levels.shape[-2:]
    u8 = levels.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    ups = [pil_bicubic(np.ascontiguousarray(a), (h * scale, w * scale)) for a in u8]
    return torch.from_numpy(np.stack(ups)).permute(0, 3, 1, 2).to(device=levels.device, dtype=torch.float32)


def _planes(rgb255: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) RGB in [0, 255] -> Y, Cb, Cr, each (N, 1, H, W), with the authors' formulas."""
    return rgb_to_ycbcr_fsrcnn(*rgb255.split(1, dim=1))


class _LumaNetwork(nn.Module):
    """Shared colour handling; a subclass defines ``core`` (the authors' layers: Y in, Y out) and
    ``_luma_and_chroma(x, chroma)`` -> (Y of the result in [0, 1], and Cb, Cr in [0, 255] when ``chroma``)."""

    scale: int
    num_channels: int

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3:
            raise SrprepError(f"{type(self).__name__}: expected (N, 3, H, W) RGB input, got {tuple(x.shape)}")

    def luma(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) RGB in [0, 1] -> the network's Y, (N, 1, H*s, W*s) in [0, 1] (clamped, as the authors)."""
        return self._luma_and_chroma(x, chroma=False)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) RGB in [0, 1] -> (N, 3, H*s, W*s) RGB, about [0, 1] (Y from the network, CbCr bicubic)."""
        y, cb, cr = self._luma_and_chroma(x, chroma=True)
        r, g, b = ycbcr_fsrcnn_to_rgb(y * 255., cb, cr)
        return torch.cat([r, g, b], dim=1) / 255.


@register_model("fsrcnn")
class FSRCNN(_LumaNetwork):
    """FSRCNN(d, s, m) on the Y channel (see the module docstring); input/output RGB in [0, 1]."""

    def __init__(self, scale: int = 2, d: int = 56, s: int = 12, m: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        if scale < 1:
            raise SrprepError(f"FSRCNN: scale must be >= 1, not {scale}")
        if num_channels != 1:
            raise SrprepError("FSRCNN: only the Y-channel network (num_channels=1) is supported")
        self.scale = scale
        self.num_channels = num_channels
        self.arch_kwargs = dict(d=d, s=s, m=m, num_channels=num_channels)
        self.first_part = nn.Sequential(nn.Conv2d(num_channels, d, 5, padding=2), nn.PReLU(d))
        mid: list[nn.Module] = [nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            mid += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        mid += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.mid_part = nn.Sequential(*mid)
        self.last_part = nn.ConvTranspose2d(d, num_channels, 9, stride=scale, padding=4, output_padding=scale - 1)

    def core(self, y: torch.Tensor) -> torch.Tensor:
        """The authors' network: (N, 1, H, W) Y in [0, 1] -> (N, 1, H*s, W*s), unclamped."""
        return self.last_part(self.mid_part(self.first_part(y)))

    def _luma_and_chroma(self, x: torch.Tensor, chroma: bool):
        self._check(x)
        # The authors feed Y computed from the 8-bit RGB (float32), divided by 255.
        levels = _levels(x)
        y, _, _ = _planes(levels)
        y_sr = self.core(y / 255.).clamp(0.0, 1.0)
        if not chroma:
            return y_sr, None, None
        _, cb, cr = _planes(_enlarged(levels, self.scale))
        return y_sr, cb, cr

    @staticmethod
    def infer_config(state: Mapping[str, Any]) -> Optional[dict]:
        """Recognise FSRCNN keys; d, s, m from the shapes. The scale is not in the weights (None)."""
        needed = ("first_part.0.weight", "mid_part.0.weight", "last_part.weight")
        if not all(k in state for k in needed):
            return None
        d, num_channels = shape_of(state, "first_part.0.weight")[:2]
        s = shape_of(state, "mid_part.0.weight")[0]
        convs = [i for i in key_indices(state, "mid_part.", ".weight") if len(shape_of(state, f"mid_part.{i}.weight")) == 4]
        return dict(scale=None, d=d, s=s, m=len(convs) - 2, num_channels=num_channels)


@register_model("srcnn")
class SRCNN(_LumaNetwork):
    """SRCNN (9-5-5, 64/32 features) on the Y channel of the bicubic-enlarged image; input/output RGB in [0, 1]."""

    def __init__(self, scale: int = 2, num_channels: int = 1) -> None:
        super().__init__()
        if scale < 1:
            raise SrprepError(f"SRCNN: scale must be >= 1, not {scale}")
        if num_channels != 1:
            raise SrprepError("SRCNN: only the Y-channel network (num_channels=1) is supported")
        self.scale = scale
        self.num_channels = num_channels
        self.arch_kwargs = dict(num_channels=num_channels)
        self.conv1 = nn.Conv2d(num_channels, 64, 9, padding=4)
        self.conv2 = nn.Conv2d(64, 32, 5, padding=2)
        self.conv3 = nn.Conv2d(32, num_channels, 5, padding=2)
        self.relu = nn.ReLU(inplace=True)

    def core(self, y: torch.Tensor) -> torch.Tensor:
        """The authors' network: (N, 1, H, W) enlarged Y in [0, 1] -> (N, 1, H, W), unclamped."""
        return self.conv3(self.relu(self.conv2(self.relu(self.conv1(y)))))

    def _luma_and_chroma(self, x: torch.Tensor, chroma: bool):
        self._check(x)
        y, cb, cr = _planes(_enlarged(_levels(x), self.scale))
        return self.core(y / 255.).clamp(0.0, 1.0), cb, cr

    @staticmethod
    def infer_config(state: Mapping[str, Any]) -> Optional[dict]:
        """Recognise SRCNN keys (exactly conv1..conv3 with 9x9, 5x5, 5x5 kernels). The scale is not in the weights."""
        if set(state) != {f"conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")}:
            return None
        if [shape_of(state, f"conv{i}.weight")[-1] for i in (1, 2, 3)] != [9, 5, 5]:
            return None
        return dict(scale=None, num_channels=shape_of(state, "conv1.weight")[1])
