"""Starting a training run from pretrained weights (``model.pretrained``): the recipe of every fine-tuning stage.

:func:`resolve_pretrained` reads the checkpoint with the loader of ``srprep eval``
(:func:`srprep.models.load_pretrained`: every format it knows, ``weights_only`` unless the user trusts the file),
fills in what the model section leaves null (architecture, scale, constructor arguments) and records the file's
SHA-256 in the config. :func:`load_matching` then copies the weights into the freshly built network:

* strict (the default): every key must be there with the same shape, else a clear error names the keys;
* ``model.strict: false``: the tensors whose name and shape match are copied, the others keep their fresh
  initialisation and are reported by name. That is how EDSR's authors started x3/x4 from x2: the body is the
  same, the upsampler's shapes differ (EDSR-PyTorch likewise copies every tensor whose shape fits).

Only the weights come from the file: optimiser, schedule and step start fresh (``--resume`` continues a run).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import torch
from torch import nn

from srprep.errors import SrprepError
from srprep.models import PretrainedInfo, load_pretrained

from .config import Config, ConfigError, config_from_dict, config_to_dict

log = logging.getLogger(__name__)

__all__ = ["PretrainedSource", "WeightsReport", "resolve_pretrained", "load_matching"]


@dataclass(frozen=True)
class PretrainedSource:
    """The checkpoint's weights in srprep's key layout (CPU tensors) and what the loader found."""

    state: dict
    info: PretrainedInfo


@dataclass(frozen=True)
class WeightsReport:
    """What :func:`load_matching` copied. ``reshaped``: ``"key (checkpoint shape) -> (model shape)"``."""

    path: str
    sha256: str
    loaded: int  # tensors copied
    total: int  # tensors of the network
    reshaped: list[str]
    missing: list[str]  # keys of the network the checkpoint lacks
    unexpected: list[str]  # keys of the checkpoint the network lacks

    @property
    def kept(self) -> list[str]:
        """Keys left at their initialisation (differently shaped or missing)."""
        return [r.split(" ", 1)[0] for r in self.reshaped] + self.missing

    def summary(self) -> str:
        """One line for the log."""
        line = f"initialised {self.loaded} of {self.total} tensors from {self.path} (sha256 {self.sha256[:12]})"
        if self.reshaped:
            line += f"; shape differs, left as initialised: {', '.join(self.reshaped)}"
        if self.missing:
            line += f"; not in the checkpoint, left as initialised: {_names(self.missing)}"
        if self.unexpected:
            line += f"; not in the network, ignored: {_names(self.unexpected)}"
        return line


def _names(keys: list[str], show: int = 8) -> str:
    more = f", ... ({len(keys) - show} more)" if len(keys) > show else ""
    return ", ".join(keys[:show]) + more


def _load_source(cfg: Config, trust_checkpoint: bool) -> tuple[nn.Module, PretrainedInfo]:
    """The checkpoint's own network, as the loader builds it.

    First as the config asks (its scale and constructor arguments: the usual fine-tuning case, and the only
    way for a plain state dict of a user network, whose scale no key tells); when the weights do not fit that
    (another scale, other options), as the checkpoint itself says, for a partial load.
    """
    m = cfg.model
    try:
        return load_pretrained(m.pretrained, m.name, m.scale, trust_checkpoint=trust_checkpoint,
                               model_kwargs=m.kwargs)
    except SrprepError as first:
        if m.scale is None and not m.kwargs:
            raise
        try:
            return load_pretrained(m.pretrained, m.name, None, trust_checkpoint=trust_checkpoint)
        except SrprepError:
            raise first from None


def resolve_pretrained(cfg: Config, *, trust_checkpoint: bool = False,
                       need_weights: bool = True) -> tuple[Config, Optional[PretrainedSource]]:
    """Complete ``cfg.model`` from ``cfg.model.pretrained`` and read the weights.

    Args:
        cfg: a checked config; returned unchanged (with no source) when ``model.pretrained`` is null.
        trust_checkpoint: allow a checkpoint that pickles Python objects (runs code from the file).
        need_weights: False when the run resumes from its own training state: a config that already names
            the architecture and scale (the run's config.yaml) is then returned without reading the file.

    Returns:
        ``(config, source)``: the config with ``model.name``/``scale``/``kwargs`` filled in (null fields from
        the checkpoint; the checkpoint's constructor arguments under the configured ones) and
        ``model.pretrained_sha256`` recorded; ``source`` holds the weights.

    Raises:
        SrprepError: the loader's errors (missing or unreadable file, refused pickle, unknown layout), or a
            file whose SHA-256 differs from the one the config records.
    """
    m = cfg.model
    if m.pretrained is None:
        return cfg, None
    if not need_weights and m.name and m.scale and m.pretrained_sha256:
        return cfg, None
    path = Path(m.pretrained)
    model, info = _load_source(cfg, trust_checkpoint)
    if m.pretrained_sha256 is not None and info.sha256 != m.pretrained_sha256:
        raise SrprepError(f"{path}: sha256 {info.sha256[:12]}..., but the config records {m.pretrained_sha256[:12]}... "
                          "(model.pretrained_sha256): not the file the run was made with; set "
                          "model.pretrained_sha256=null to start from this one")
    data = config_to_dict(cfg)
    data["model"].update(name=m.name or info.arch, scale=m.scale or info.scale,
                         kwargs={**info.kwargs, **m.kwargs}, pretrained_sha256=info.sha256)
    try:
        resolved = config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"with the architecture of {path} ({info.arch} x{info.scale}): {exc}") from None
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return resolved, PretrainedSource(state, info)


def load_matching(model: nn.Module, source: PretrainedSource, *, strict: bool = True) -> WeightsReport:
    """Copy the source's tensors into ``model`` (strictly, or those whose name and shape match).

    Raises:
        SrprepError: strict and any key missing, unexpected or differently shaped (all named, with shapes);
            or not strict and no tensor fits at all (the wrong checkpoint).
    """
    own = model.state_dict()
    state: Mapping[str, torch.Tensor] = source.state
    reshaped = [f"{k} {tuple(state[k].shape)} -> {tuple(own[k].shape)}"
                for k in own if k in state and state[k].shape != own[k].shape]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    path, info = source.info.path, source.info
    if strict and (reshaped or missing or unexpected):
        parts = [f"{label}: {', '.join(keys) if label.startswith('shape') else _names(keys)}"
                 for label, keys in (("shape differs (checkpoint -> network)", reshaped),
                                     ("not in the checkpoint", missing), ("not in the network", unexpected)) if keys]
        raise SrprepError(f"{path}: the {info.arch} x{info.scale} weights do not fit the network; "
                          f"{'; '.join(parts)}. With model.strict=false the fitting tensors are loaded and these "
                          f"keep their initialisation")
    fitting = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    if not fitting:
        raise SrprepError(f"{path}: no tensor of the checkpoint fits the network (no name and shape in common)")
    with torch.no_grad():
        for k, v in fitting.items():
            own[k].copy_(v)
    report = WeightsReport(path, info.sha256, len(fitting), len(own), reshaped, missing, unexpected)
    (log.warning if report.kept else log.info)("%s", report.summary())
    return report
