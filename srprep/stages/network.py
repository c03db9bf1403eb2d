"""What every step that runs a network shares (``srprep upscale`` and ``srprep centroids``):

* :class:`ModelSpec`: a checkpoint file pinned by its SHA-256, the architecture and scale it was found to
  be; its :meth:`~ModelSpec.params` go into a step's parameters, so a different model file redoes the step.
* :func:`load_model`: builds the network once per process and device (a joblib worker keeps it for every
  item it is given) and freezes it (``requires_grad_(False)``, eval mode; inference runs under
  ``torch.inference_mode``).
* :class:`InferOptions`: tiling, ensembles and precision, passed to :func:`srprep.infer.upscale_batch`.
* Two ways to run the items of a step (:func:`run_model_step`):

  - **per item** (``--device cpu``): the runner's workers (``--jobs`` processes) each read, run and write
    one item at a time (:func:`~srprep.stages.devicepipe.compute_item` with a :class:`NetworkCompute`);
  - **pipelined** (``--device cuda``): :func:`srprep.stages.devicepipe.run_device_step` with a
    :class:`NetworkCompute` keeps the accelerator busy (decode ahead, equal-size images batched up to
    ``batch``, results encoded and written by writer threads while the next batch runs; one process per
    device when there are several).

Exactness: with fp32 on one device, an item's pixels are those of :func:`srprep.infer.upscale` run the same
way. The float summation order of a convolution depends on the batch size and, on the CPU, on the number of
torch threads (a joblib worker gets ``cores // jobs`` of them), so changing ``batch`` or ``jobs`` can make a
rare pixel round one level the other way. Neither is a step parameter (like ``jobs`` elsewhere): they
choose speed, not the result.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import SrprepError
from ..fingerprint import canonical_json
from ..io import images
from ..io.stores import ARRAY_EXTENSION, FolderStore
from ..runner import Item, Step, StepReport, run_step
from .devicepipe import compute_item, run_device_step

__all__ = [
    "ModelSpec", "InferOptions", "NetworkCompute", "load_model", "resolve_devices", "device_kind",
    "read_item", "item_source", "run_model_step",
]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ the model


@dataclass(frozen=True)
class ModelSpec:
    """A pretrained network as a step uses it: the file, pinned by content, and what it was found to be.

    path: the checkpoint file (absolute). sha256: its content hash when the step started; a worker that
    finds other bytes there refuses to run. arch, scale, kwargs: what :func:`srprep.models.load_pretrained`
    built (kwargs as canonical JSON, so the spec is hashable). trust_checkpoint: allow full unpickling.
    """

    path: str
    sha256: str
    arch: str
    scale: int
    kwargs: str = "{}"
    trust_checkpoint: bool = False

    @classmethod
    def load(cls, path: str | os.PathLike, arch: str | None = None, scale: int | None = None, *,
             trust_checkpoint: bool = False, model_kwargs: dict | None = None):
        """Load the checkpoint once (which checks that it loads) and return ``(spec, model, info)``.

        ``model_kwargs``: constructor arguments the weights do not record (e.g. EDSR's ``res_scale``); they
        end up in ``kwargs`` with the ones read from the file, so workers build the same network.

        The model is kept in this process's cache for the CPU, so in-process work does not load it again.

        Raises:
            SrprepError: no such file, unreadable or unsafe pickle, unknown layout, weights that do not fit
                (naming the missing / unexpected keys), or a ``scale`` the weights are not for.
        """
        from ..models import load_pretrained

        path = Path(path).resolve()
        model, info = load_pretrained(path, arch, scale, trust_checkpoint=trust_checkpoint, model_kwargs=model_kwargs)
        spec = cls(str(path), info.sha256, info.arch, int(info.scale), canonical_json(info.kwargs), trust_checkpoint)
        _MODELS[(spec, "cpu")] = _freeze(model)
        return spec, model, info

    def params(self) -> dict:
        """What a step records about the model: content hash, architecture, scale, constructor arguments.

        Not the file's name or place: the same weights copied elsewhere leave the step up to date."""
        return {"sha256": self.sha256, "arch": self.arch, "scale": self.scale, "kwargs": json.loads(self.kwargs)}

    def describe(self) -> str:
        return f"{self.arch} x{self.scale} ({Path(self.path).name}, sha256 {self.sha256[:12]})"


_MODELS: dict = {}  # (ModelSpec, device) -> frozen network; one per process, filled on first use
_MODELS_LOCK = threading.Lock()


def _freeze(model):
    model.requires_grad_(False)
    return model.eval()


def load_model(spec: ModelSpec, device: str = "cpu"):
    """The network of ``spec`` on ``device``, frozen, built once per process (and device).

    Raises:
        SrprepError: the file no longer has the content the step started with (its hash changed).
    """
    key = (spec, str(device))
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            from ..models import load_pretrained

            model, info = load_pretrained(spec.path, spec.arch, spec.scale, trust_checkpoint=spec.trust_checkpoint,
                                          device=device, model_kwargs=json.loads(spec.kwargs))
            if info.sha256 != spec.sha256:
                raise SrprepError(f"{spec.path}: the model file changed while the step was running "
                                  f"(sha256 {spec.sha256[:12]} -> {info.sha256[:12]}); run the command again")
            model = _MODELS[key] = _freeze(model)
    return model


@dataclass(frozen=True)
class InferOptions:
    """How the network is run (see :func:`srprep.infer.upscale`); every field changes the output.

    crop_ensemble: AIM 2020's ``((chop_size, shave), ...)`` or None. precision: fp32 | tf32 | bf16 | fp16.
    """

    tile: Optional[int] = None
    overlap: int = 32
    self_ensemble: bool = False
    crop_ensemble: Optional[tuple] = None
    precision: str = "fp32"

    def upscale_kwargs(self) -> dict:
        return {"tile": self.tile, "overlap": self.overlap, "self_ensemble": self.self_ensemble,
                "crop_ensemble": [tuple(c) for c in self.crop_ensemble] if self.crop_ensemble else None,
                "precision": self.precision}

    def params(self) -> dict:
        d = asdict(self)
        d["crop_ensemble"] = [list(c) for c in self.crop_ensemble] if self.crop_ensemble else None
        if self.crop_ensemble:  # srprep's earlier crop ensemble (averaged tilings) took the same numbers
            d["crop_ensemble_method"] = "aim2020 rotated quadrant chop"
        return d


def resolve_devices(device: str | Sequence[str]) -> list[str]:
    """``"cpu"`` -> ``["cpu"]``; ``"cuda"`` -> every visible GPU; ``"cuda:0,cuda:2"`` -> those two.

    Raises:
        SrprepError: CUDA asked for but not available.
    """
    parts = [d.strip() for d in (device.split(",") if isinstance(device, str) else device) if d.strip()]
    if not parts:
        raise SrprepError("no device given")
    out = []
    for d in parts:
        if d.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise SrprepError(f"device {d!r} requested but CUDA is not available on this machine / PyTorch build")
            if d == "cuda":
                out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
                continue
        elif d != "cpu":
            raise SrprepError(f"unknown device {d!r}; use cpu, cuda, cuda:N or a comma-separated list")
        out.append(d)
    return out


def device_kind(devices: Sequence[str]) -> str:
    """``"cpu"`` or ``"cuda"``: what a step records (the same network gives other float noise per kind)."""
    kinds = {d.split(":")[0] for d in devices}
    if len(kinds) != 1:
        raise SrprepError(f"mixing device kinds in one run ({', '.join(devices)}) would mix their float noise")
    return kinds.pop()


# ------------------------------------------------------------------------------------------ items


def item_source(store, key: str):
    """What a worker needs to read ``key``: the file path for a folder store, else the (picklable) store."""
    return str(store.path(key)) if isinstance(store, FolderStore) else store


def read_item(payload) -> np.ndarray:
    """Read the input image of a payload ``(key, source, ...)`` made with :func:`item_source`."""
    key, source = payload[0], payload[1]
    if isinstance(source, str):
        return images.read_array(source) if source.endswith(ARRAY_EXTENSION) else images.read_image(source)
    return source.read(key)


def _compute(model, imgs: list, *, spec: ModelSpec, opts: InferOptions, device: str, output: str) -> list:
    from ..infer import upscale_batch

    return upscale_batch(model, imgs, scale=spec.scale, batch_size=len(imgs), device=device, output=output,
                         **opts.upscale_kwargs())


@dataclass(frozen=True)
class NetworkCompute:
    """The network of ``spec`` run as ``opts`` says, for :mod:`srprep.stages.devicepipe` (a BatchCompute)."""

    spec: ModelSpec
    opts: InferOptions
    output: str = "float"

    def prepare(self, device: str) -> Callable[[list], list]:
        model = load_model(self.spec, device)
        return functools.partial(_compute, model, spec=self.spec, opts=self.opts, device=device, output=self.output)


def run_model_step(step: Step, items: Sequence[Item], *, spec: ModelSpec, opts: InferOptions,
                   devices: Sequence[str], read: Callable, finish: Callable, output: str = "float",
                   pipelined: bool | None = None, batch: int = 1, writers: int | None = None, jobs: int | None = None,
                   force: bool = False, dry_run: bool = False, progress: bool = True, ledger=None,
                   unit: str = "img") -> StepReport:
    """Run a network step through the runner, per item (CPU) or pipelined (accelerators; see module doc).

    ``read(payload) -> image`` and ``finish(payload, sr) -> ItemResult`` must be picklable (top-level
    functions or partials of them) for the per-item path with several jobs and for several devices.
    ``pipelined`` defaults to True unless the only device is the CPU; ``writers``: see
    :func:`~srprep.stages.devicepipe.run_device_step`.
    """
    devices = list(devices)
    compute = NetworkCompute(spec, opts, output)
    if pipelined is None:
        pipelined = len(devices) > 1 or any(d != "cpu" for d in devices)
    if not pipelined:
        if len(devices) > 1:
            raise SrprepError("several devices need the pipelined mode")
        worker = functools.partial(compute_item, compute=compute, device=devices[0], read=read, finish=finish)
        return run_step(step, items, worker, jobs=jobs, force=force, dry_run=dry_run, progress=progress,
                        ledger=ledger, unit=unit)
    return run_device_step(step, items, compute=compute, devices=devices, read=read,
                           finish=finish, batch=batch, writers=writers, force=force, dry_run=dry_run,
                           progress=progress, ledger=ledger, unit=unit)
