"""Writing srprep weights in the formats other programs load (``srprep export``).

=============  ==================================================================================================
format         file
=============  ==================================================================================================
``basicsr``    ``{"params": state_dict}`` in BasicSR's key names (what its ``load_network`` reads with the
               default ``param_key``); for the networks BasicSR has: EDSR, RCAN, MSRResNet/SRResNet, RRDBNet
``edsr``       a plain state dict in the original code's key names, the form EDSR-PyTorch's ``--pre_train``
               (and the original repositories of IMDN, CARN, PAN, FSRCNN, SRCNN) load; every architecture
``safetensors``  the state dict in srprep's key names, with ``arch``, ``scale`` and ``kwargs`` (JSON) as metadata
=============  ==================================================================================================

The options the other program needs to build the same network (BasicSR's ``network_g`` entries, EDSR-PyTorch's
command-line flags) are returned as ``notes``: the weights alone do not carry them (e.g. ``img_range``).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from torch import nn

from srprep.errors import SrprepError
from srprep.models import layouts
from srprep.models.pretrained import save_torch_atomic
from srprep.names import EXPORT_FORMATS


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_weights` wrote: the file, the format, the key layout and how to load it."""

    path: Path
    fmt: str
    key_layout: str
    tensors: int
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"export: {self.path} ({self.fmt}, {self.tensors} tensors, {self.key_layout} key names)"]
        return "\n".join(lines + [f"  {n}" for n in self.notes])


def _basicsr_options(arch: str, scale: int, kw: Mapping) -> dict:
    """BasicSR ``network_g`` entries that rebuild the network (BasicSR argument names)."""
    if arch == "edsr":
        return dict(type="EDSR", num_in_ch=3, num_out_ch=3, num_feat=kw["num_feats"], num_block=kw["num_blocks"],
                    upscale=scale, res_scale=kw["res_scale"], img_range=kw["rgb_range"], rgb_mean=list(kw["rgb_mean"]))
    if arch == "rcan":
        return dict(type="RCAN", num_in_ch=3, num_out_ch=3, num_feat=kw["num_feats"], num_group=kw["num_groups"],
                    num_block=kw["num_blocks"], squeeze_factor=kw["reduction"], upscale=scale, res_scale=1,
                    img_range=kw["rgb_range"], rgb_mean=list(kw["rgb_mean"]))
    if arch == "msrresnet":
        return dict(type="MSRResNet", num_in_ch=kw["num_in_ch"], num_out_ch=kw["num_out_ch"],
                    num_feat=kw["num_feat"], num_block=kw["num_block"], upscale=scale)
    return dict(type="RRDBNet", num_in_ch=kw["num_in_ch"], num_out_ch=kw["num_out_ch"], num_feat=kw["num_feat"],
                num_block=kw["num_block"], num_grow_ch=kw["num_grow_ch"], scale=scale)


# srprep architecture -> (the key layout BasicSR uses for it, or "" for srprep's own names)
_BASICSR_LAYOUT = {"edsr": "basicsr-edsr", "rcan": "basicsr-rcan", "msrresnet": "", "rrdbnet": ""}


def _edsr_flags(arch: str, scale: int, kw: Mapping) -> str:
    if arch == "edsr":
        return (f"EDSR-PyTorch: --model EDSR --scale {scale} --n_resblocks {kw['num_blocks']} --n_feats "
                f"{kw['num_feats']} --res_scale {kw['res_scale']:g} --rgb_range {kw['rgb_range']:g}")
    return (f"EDSR-PyTorch: --model RCAN --scale {scale} --n_resgroups {kw['num_groups']} --n_resblocks "
            f"{kw['num_blocks']} --n_feats {kw['num_feats']} --reduction {kw['reduction']} --rgb_range "
            f"{kw['rgb_range']:g}")


def _canonical_arch(model: nn.Module, arch: str) -> str:
    # Presets and aliases (edsr_paper, srresnet, esrgan, carn_m) export as the network class they build.
    return {"EDSR": "edsr", "RCAN": "rcan", "MSRResNet": "msrresnet", "RRDBNet": "rrdbnet"}.get(
        type(model).__name__, arch)


def _write_safetensors(path: Path, state: dict, metadata: dict) -> None:
    try:
        from safetensors.torch import save_file  # optional dependency
    except ImportError:
        raise SrprepError("--to safetensors needs the 'safetensors' package: pip install safetensors") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export_weights(model: nn.Module, arch: str, scale: int, dst: str | os.PathLike, fmt: str) -> ExportReport:
    """Write ``model``'s weights to ``dst`` in ``fmt`` (see the module table), atomically.

    Args:
        model: an srprep network (as :func:`srprep.models.load_pretrained` returns it).
        arch, scale: its registry name and scale (``PretrainedInfo.arch`` / ``.scale``).
        dst: the file to write (replaced if it exists).
        fmt: ``basicsr``, ``edsr`` or ``safetensors``.

    Raises:
        SrprepError: an unknown format, ``basicsr`` for a network BasicSR does not have, or a missing
            ``safetensors`` package.
    """
    if fmt not in EXPORT_FORMATS:
        raise SrprepError(f"unknown export format {fmt!r}; choose from {', '.join(EXPORT_FORMATS)}")
    dst = Path(dst)
    arch = _canonical_arch(model, arch)
    kw = dict(getattr(model, "arch_kwargs", {}))
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    notes: list[str] = []
    if fmt == "basicsr":
        if arch not in _BASICSR_LAYOUT:
            raise SrprepError(f"BasicSR has no {arch} network; use --to edsr (a plain state dict in the original "
                              f"code's key names) or --to safetensors")
        layout = _BASICSR_LAYOUT[arch]
        out = layouts.from_srprep(state, layout) if layout else state
        save_torch_atomic(dst, {"params": out})
        notes.append("BasicSR network_g: " + json.dumps(_basicsr_options(arch, scale, kw)))
        return ExportReport(dst, fmt, layout or "BasicSR", len(out), notes)
    if fmt == "edsr":
        save_torch_atomic(dst, state)
        if arch in ("edsr", "rcan"):
            notes.append(_edsr_flags(arch, scale, kw))
        else:
            notes.append(f"a plain state dict in the {arch} authors' key names (load_state_dict(torch.load(...)))")
        return ExportReport(dst, fmt, "original", len(state), notes)
    metadata = {"format": "srprep", "arch": arch, "kwargs": json.dumps(kw)}
    if not kw.get("multi_scale"):  # a multi-scale file serves every scale: the reader chooses, as with the original
        metadata["scale"] = str(int(scale))
    _write_safetensors(dst, state, metadata)
    return ExportReport(dst, fmt, "srprep", len(state), [f"metadata: {json.dumps(metadata)}"])


def default_export_path(src: str | os.PathLike, fmt: str) -> Path:
    """``W.pth`` -> ``W_basicsr.pth`` / ``W_edsr.pt`` / ``W.safetensors`` beside the source."""
    src = Path(src)
    return src.with_name(src.stem + {"basicsr": "_basicsr.pth", "edsr": "_edsr.pt", "safetensors": ".safetensors"}[fmt])
