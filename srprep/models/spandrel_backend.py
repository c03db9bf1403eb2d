"""Checkpoints of architectures srprep has no code for, through the optional spandrel library.

`spandrel <https://github.com/chaiNNer-org/spandrel>`_ (MIT licence; the ``models`` extra:
``pip install 'srprep[models]'``) recognises about 40 super-resolution and restoration architectures from a
state dict's keys and shapes (SwinIR, Swin2SR, HAT, DAT, SAFMN, SPAN, OmniSR, Real-ESRGAN's compact
SRVGGNet, ...). :func:`srprep.models.load_pretrained` turns to it only when srprep's own registry does not
recognise a file, so ``srprep upscale``, ``eval`` and ``centroids`` accept such checkpoints.

Loading stays safe: the file is read by srprep itself (``torch.load(weights_only=True)``, or safetensors;
``--trust-checkpoint`` to allow pickled objects), and only the resulting tensors are handed to spandrel,
whose own file reader is never used. The network is named ``spandrel:<ID>`` (e.g. ``spandrel:SwinIR``) in
what srprep records, so a step's parameters say which backend built it.

The network runs as spandrel defines it: float input in [0, 1], output clamped to [0, 1], the input padded
(reflect) to the size the architecture needs and the padding cropped off the output.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from srprep.errors import SrprepError

log = logging.getLogger(__name__)

__all__ = ["PREFIX", "is_spandrel_arch", "recognise", "build"]

PREFIX = "spandrel"
INSTALL = "pip install 'srprep[models]' (bash scripts/setup.sh --test installs it)"


def is_spandrel_arch(name: Optional[str]) -> bool:
    """Whether an architecture name asks for this backend (``"spandrel"`` or ``"spandrel:<ID>"``)."""
    return name is not None and (name == PREFIX or name.startswith(PREFIX + ":"))


def _spandrel():
    try:
        import spandrel
    except ImportError:
        return None
    except Exception as exc:  # e.g. a torchvision built for another torch fails at import
        raise SrprepError(f"the optional spandrel backend is installed but cannot be imported "
                          f"({type(exc).__name__}: {' '.join(str(exc).split())}); it needs a torchvision built "
                          f"for this torch {torch.__version__}") from exc
    return spandrel


def recognise(state: dict, unknown: SrprepError) -> str:
    """``"spandrel:<ID>"`` for a state dict that srprep's registry did not recognise (``unknown`` says so).

    Raises:
        SrprepError: ``unknown`` with how to get the backend (spandrel not installed), or with spandrel's
            verdict too (it does not know the keys either).
    """
    spandrel = _spandrel()
    if spandrel is None:
        raise SrprepError(f"{unknown}; other architectures (SwinIR, HAT, SAFMN, SPAN, Real-ESRGAN compact...) load "
                          f"through the optional spandrel backend: {INSTALL}") from None
    for support in spandrel.MAIN_REGISTRY.architectures("detection"):
        if support.detect(state):
            return f"{PREFIX}:{support.architecture.id}"
    raise SrprepError(f"{unknown}; spandrel {spandrel.__version__} does not recognise them either") from None


class SpandrelNetwork(nn.Module):
    """A spandrel model descriptor as an ``nn.Module``: ``forward(x)`` maps (N, C, H, W) float in [0, 1] to
    (N, C, H*scale, W*scale) in [0, 1], padding and cropping as the architecture needs."""

    def __init__(self, descriptor):
        super().__init__()
        self.net = descriptor.model  # registered, so .to(), .eval() and requires_grad_ reach the weights
        self.descriptor = descriptor
        self.scale = int(descriptor.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.descriptor(x)


def build(state: dict, arch: str, scale: Optional[int], path: Path) -> tuple[nn.Module, str, int]:
    """The network of ``state`` (its weights loaded, strictly, by spandrel) as ``(module, "spandrel:<ID>", scale)``.

    Args:
        state: the state dict srprep read from ``path`` (wrapper prefixes already removed).
        arch: ``"spandrel"`` (detect) or ``"spandrel:<ID>"`` (that architecture, which must recognise the keys).
        scale: requested scale, or None; one the weights are not for is an error.
        path: the file, for messages.

    Raises:
        SrprepError: spandrel missing or unusable, keys it does not recognise, a model that is not an RGB
            image-to-image network, or a scale mismatch.
    """
    spandrel = _spandrel()
    if spandrel is None:
        raise SrprepError(f"{path}: {arch} needs the optional spandrel backend: {INSTALL}")
    wanted = arch.partition(":")[2] or recognise(state, SrprepError(f"{path}: unknown keys")).partition(":")[2]
    support = spandrel.MAIN_REGISTRY.get(wanted)
    if support is None:
        raise SrprepError(f"{path}: spandrel {spandrel.__version__} has no architecture {wanted!r}")
    if not support.detect(state):
        raise SrprepError(f"{path}: the weights are not a spandrel {wanted} network")
    try:
        descriptor = support.architecture.load(state)
    except Exception as exc:  # spandrel raises assertion and shape errors of its own
        raise SrprepError(f"{path}: spandrel could not build {wanted} from the weights "
                          f"({type(exc).__name__}: {' '.join(str(exc).split())})") from exc
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or (descriptor.input_channels,
                                                                      descriptor.output_channels) != (3, 3):
        raise SrprepError(f"{path}: spandrel {wanted} is not an RGB image-to-image network "
                          f"({type(descriptor).__name__}, {descriptor.input_channels} -> "
                          f"{descriptor.output_channels} channels)")
    if scale is not None and int(scale) != int(descriptor.scale):
        raise SrprepError(f"{path}: the weights are for x{descriptor.scale}, but x{scale} was requested")
    log.info("%s: %s x%d built by spandrel %s (%s)", path, wanted, descriptor.scale, spandrel.__version__,
             ", ".join(descriptor.tags) or "no tags")
    return SpandrelNetwork(descriptor), f"{PREFIX}:{wanted}", int(descriptor.scale)
