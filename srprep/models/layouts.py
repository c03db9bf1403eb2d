"""Other programs' key layouts for srprep's architectures, and the renaming between them (both ways).

srprep's own key names are those of the original code of each network (EDSR-PyTorch for EDSR and RCAN,
BasicSR for MSRResNet and RRDBNet, the authors' repositories for IMDN, CARN, PAN, FSRCNN, SRCNN), so those
files load as they are. The layouts below are other programs' names for the same weights:

=================  ==========  ==================================================================================
layout             network     keys (srprep's in brackets)
=================  ==========  ==================================================================================
``basicsr-edsr``   edsr        ``conv_first`` [head.0], ``body.i.conv1/conv2`` [body.i.body.0/2],
                               ``conv_after_body`` [body.N], ``upsample.j`` [tail.0.j], ``conv_last`` [tail.1];
                               no mean-shift tensors (BasicSR keeps the mean and ``img_range`` as options)
``basicsr-rcan``   rcan        ``conv_first``, ``body.g.residual_group.b.rcab.{0,2}`` [body.g.body.b.body.{0,2}],
                               ``...rcab.3.attention.{1,3}`` [...body.3.conv_du.{0,2}], ``body.g.conv``
                               [body.g.body.B], ``conv_after_body``, ``upsample.j``, ``conv_last``; no mean shifts
``reflash-srresnet``  msrresnet  ``body1.0.conv1`` .. ``body16.0.conv2`` [body.0.conv1 .. body.15.conv2]: the
                               released Reflash Dropout SRResNets (``MSRResNet_details``); the rest is BasicSR's
=================  ==========  ==================================================================================

:func:`to_srprep` recognises and converts a foreign state dict on loading; :func:`from_srprep` writes srprep
weights in a layout (``srprep export``). Tensors are shared, not copied.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

import torch

from srprep.errors import SrprepError
from srprep.models.common import key_indices

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class KeyLayout:
    """One foreign layout of an srprep architecture.

    ``detect(state)`` says whether a (prefix-stripped) state dict is in this layout; ``to_srprep`` and
    ``from_srprep`` rename keys; ``not_stored`` are prefixes of srprep keys the layout has no tensors for
    (fixed buffers such as EDSR's mean shift): on loading they take the built network's values.
    """

    name: str
    arch: str
    detect: Callable[[Mapping[str, torch.Tensor]], bool]
    to_srprep: Callable[[State], State]
    from_srprep: Callable[[State], State]
    not_stored: tuple[str, ...] = ()

    def complete(self, state: State, model: torch.nn.Module) -> State:
        """``state`` plus the network's own values for the keys this layout does not store."""
        own = model.state_dict()
        extra = {k: v for k, v in own.items() if k.startswith(self.not_stored) and k not in state}
        return {**state, **extra}


def _rename(state: Mapping[str, torch.Tensor], rules: list[tuple[str, str]]) -> State:
    """Apply the first matching ``(regex, replacement)`` to each key (full match); other keys are kept."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out: State = {}
    for key, value in state.items():
        new = key
        for pattern, repl in compiled:
            if pattern.fullmatch(key):
                new = pattern.sub(repl, key)
                break
        if new in out:
            raise SrprepError(f"key layout conversion maps two keys to {new!r}")
        out[new] = value
    return out


_MEAN_SHIFTS = ("sub_mean.", "add_mean.")


# --- BasicSR EDSR ---------------------------------------------------------------------------------------------


def _basicsr_edsr_to(state: State) -> State:
    n = len(key_indices(state, "body.", ".conv1.weight"))
    return _rename(state, [
        (r"conv_first\.(\w+)", r"head.0.\1"),
        (r"body\.(\d+)\.conv1\.(\w+)", r"body.\1.body.0.\2"),
        (r"body\.(\d+)\.conv2\.(\w+)", r"body.\1.body.2.\2"),
        (r"conv_after_body\.(\w+)", rf"body.{n}.\1"),
        (r"upsample\.(\d+)\.(\w+)", r"tail.0.\1.\2"),
        (r"conv_last\.(\w+)", r"tail.1.\1"),
    ])


def _basicsr_edsr_from(state: State) -> State:
    n = len(key_indices(state, "body.", ".body.0.weight"))
    state = {k: v for k, v in state.items() if not k.startswith(_MEAN_SHIFTS)}
    return _rename(state, [
        (r"head\.0\.(\w+)", r"conv_first.\1"),
        (r"body\.(\d+)\.body\.0\.(\w+)", r"body.\1.conv1.\2"),
        (r"body\.(\d+)\.body\.2\.(\w+)", r"body.\1.conv2.\2"),
        (rf"body\.{n}\.(\w+)", r"conv_after_body.\1"),
        (r"tail\.0\.(\d+)\.(\w+)", r"upsample.\1.\2"),
        (r"tail\.1\.(\w+)", r"conv_last.\1"),
    ])


# --- BasicSR RCAN ---------------------------------------------------------------------------------------------


def _basicsr_rcan_to(state: State) -> State:
    groups = len(key_indices(state, "body.", ".conv.weight"))
    blocks = len(key_indices(state, "body.0.residual_group.", ".rcab.0.weight"))
    return _rename(state, [
        (r"conv_first\.(\w+)", r"head.0.\1"),
        (r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.([02])\.(\w+)", r"body.\1.body.\2.body.\3.\4"),
        (r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.1\.(\w+)", r"body.\1.body.\2.body.3.conv_du.0.\3"),
        (r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.3\.(\w+)", r"body.\1.body.\2.body.3.conv_du.2.\3"),
        (r"body\.(\d+)\.conv\.(\w+)", rf"body.\1.body.{blocks}.\2"),
        (r"conv_after_body\.(\w+)", rf"body.{groups}.\1"),
        (r"upsample\.(\d+)\.(\w+)", r"tail.0.\1.\2"),
        (r"conv_last\.(\w+)", r"tail.1.\1"),
    ])


def _basicsr_rcan_from(state: State) -> State:
    groups = len(key_indices(state, "body.", ".body.0.body.0.weight"))
    blocks = len(key_indices(state, "body.0.body.", ".body.0.weight"))
    state = {k: v for k, v in state.items() if not k.startswith(_MEAN_SHIFTS)}
    return _rename(state, [
        (r"head\.0\.(\w+)", r"conv_first.\1"),
        (r"body\.(\d+)\.body\.(\d+)\.body\.([02])\.(\w+)", r"body.\1.residual_group.\2.rcab.\3.\4"),
        (r"body\.(\d+)\.body\.(\d+)\.body\.3\.conv_du\.0\.(\w+)", r"body.\1.residual_group.\2.rcab.3.attention.1.\3"),
        (r"body\.(\d+)\.body\.(\d+)\.body\.3\.conv_du\.2\.(\w+)", r"body.\1.residual_group.\2.rcab.3.attention.3.\3"),
        (rf"body\.(\d+)\.body\.{blocks}\.(\w+)", r"body.\1.conv.\2"),
        (rf"body\.{groups}\.(\w+)", r"conv_after_body.\1"),
        (r"tail\.0\.(\d+)\.(\w+)", r"upsample.\1.\2"),
        (r"tail\.1\.(\w+)", r"conv_last.\1"),
    ])


# --- Reflash Dropout SRResNet ---------------------------------------------------------------------------------


def _reflash_to(state: State) -> State:
    return _rename(state, [(r"body(\d+)\.0\.(conv[12])\.(\w+)", lambda m: f"body.{int(m[1]) - 1}.{m[2]}.{m[3]}")])


def _reflash_from(state: State) -> State:
    return _rename(state, [(r"body\.(\d+)\.(conv[12])\.(\w+)", lambda m: f"body{int(m[1]) + 1}.0.{m[2]}.{m[3]}")])


LAYOUTS: tuple[KeyLayout, ...] = (
    KeyLayout("basicsr-edsr", "edsr",
              lambda s: "conv_after_body.weight" in s and "body.0.conv1.weight" in s and "upsample.0.weight" in s,
              _basicsr_edsr_to, _basicsr_edsr_from, _MEAN_SHIFTS),
    KeyLayout("basicsr-rcan", "rcan",
              lambda s: "conv_after_body.weight" in s and "body.0.residual_group.0.rcab.0.weight" in s,
              _basicsr_rcan_to, _basicsr_rcan_from, _MEAN_SHIFTS),
    KeyLayout("reflash-srresnet", "msrresnet",
              lambda s: "conv_first.weight" in s and "body1.0.conv1.weight" in s,
              _reflash_to, _reflash_from),
)


def get_layout(name: str) -> KeyLayout:
    """The layout called ``name``; raises :class:`SrprepError` listing the known ones."""
    for layout in LAYOUTS:
        if layout.name == name:
            return layout
    raise SrprepError(f"unknown key layout {name!r}; known: {', '.join(x.name for x in LAYOUTS)}")


def to_srprep(state: Mapping[str, torch.Tensor]) -> tuple[State, Optional[KeyLayout]]:
    """``(state in srprep's names, the layout it was in)``; a state in no foreign layout comes back as it is
    with ``None``."""
    for layout in LAYOUTS:
        if layout.detect(state):
            return layout.to_srprep(dict(state)), layout
    return dict(state), None


def from_srprep(state: Mapping[str, torch.Tensor], layout: str) -> State:
    """srprep-named ``state`` renamed to ``layout`` (see the module table)."""
    return get_layout(layout).from_srprep(dict(state))
