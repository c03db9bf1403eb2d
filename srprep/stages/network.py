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
way. On the CPU every item runs with exactly one torch thread, whatever ``--jobs``, the machine's cores or
the point a run resumed from: PyTorch computes a 1x1 convolution another way when it has one thread than
when it has several (measured on a 200x300 Kodak crop: 70 % of IMDN's and 33 % of MSRResNet's float output
values differ between 1 and 2 threads, and 4 and 1 pixel values round to another uint8 level; 2, 3, 4 and 8
threads agree; EDSR, without 1x1 convolutions, agrees at every count), so a fixed count is what makes the
bytes repeatable. Parallelism comes from ``--jobs`` worker processes. The float summation
order also depends on the batch size, so ``--batch`` on an accelerator can still make a rare pixel round
the other way; it is not a step parameter: it chooses speed, not the result.

Memory: a whole image that would not fit is tiled automatically (``--tile`` not given): before an image
runs, the network's memory per LR pixel (measured once per process on a small probe) times the image size
is compared with the memory available to each worker (free RAM, or free GPU memory, shared by the workers);
if it does not fit, the largest tile that does is used, and a warning says so. Networks with global pooling
(IMDN, RCAN) give slightly other pixels tiled than whole, so which images were tiled depends on the memory
free at the time: pass ``--tile`` for results that do not.
"""
from __future__ import annotations

import contextlib
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
from ..runner import Item, Step, StepReport, default_jobs, run_step
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
        _check_finite(model, path)
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
_PER_PIXEL: dict = {}  # (ModelSpec, device) -> bytes_per_pixel, measured once per process


def _check_finite(model, path) -> None:
    """Refuse weights with NaN or inf values: the network would write black or garbage images."""
    import torch

    for name, tensor in model.state_dict().items():
        if torch.is_floating_point(tensor) and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise SrprepError(f"{path}: the checkpoint holds non-finite weights ({name}: {bad} NaN or inf values); "
                              f"it cannot give images")


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


@contextlib.contextmanager
def one_cpu_thread(device: str = "cpu"):
    """One torch thread for the CPU while the block runs, restored afterwards (see the module docstring: the
    bytes must not depend on the count); nothing on other devices."""
    if device != "cpu":
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def available_memory(device: str) -> int:
    """Bytes this process could allocate now on ``device``: free GPU memory, or the system's MemAvailable."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def bytes_per_pixel(model, scale: int, device: str, probe: int = 32) -> float:
    """Peak memory per LR pixel of a whole-image run, measured on a small probe image.

    Every tensor the network's operations create is counted while its storage lives (a dispatch mode sees
    each operation's outputs; a finaliser sees each storage freed), which gives the peak of the probe run.
    Activations grow with the pixel count, so the peak per pixel carries over to large images; 1.5 times it
    (allocator slack: measured RSS was within that for EDSR and IMDN), plus the input and the float32 and
    float64 copies that the result makes on the CPU (rounding, the centroids' bicubic).
    """
    import weakref

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class Peak(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.live: dict[int, int] = {}
            self.now = self.peak = 0

        def _free(self, key):
            self.now -= self.live.pop(key, 0)

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    storage = t.untyped_storage()
                    key = storage.data_ptr()
                    if key and key not in self.live:
                        self.live[key] = storage.nbytes()
                        self.now += storage.nbytes()
                        self.peak = max(self.peak, self.now)
                        weakref.finalize(storage, self._free, key)
            return out

    mode = Peak()
    with torch.inference_mode(), one_cpu_thread(device), mode:
        model(torch.zeros(1, 3, probe, probe, device=device))
    return 1.5 * mode.peak / probe ** 2 + 3 * 4 + scale ** 2 * 3 * (4 + 8 + 8)


_TILES = (1024, 768, 512, 384, 256, 192, 128, 96, 64)


def choose_tile(per_pixel: float, h: int, w: int, batch: int, available: float, overlap: int) -> Optional[int]:
    """None when ``batch`` whole ``h`` x ``w`` images fit in ``available`` bytes, else the largest tile that
    does (from a fixed ladder, so the choice changes rarely; at least 64)."""
    if per_pixel * h * w * batch <= available:
        return None
    for t in _TILES:
        if t < max(h, w) and per_pixel * batch * min(h, t + overlap) * min(w, t + overlap) <= available:
            return t
    return _TILES[-1]


def _compute(model, imgs: list, *, spec: ModelSpec, opts: InferOptions, device: str, output: str,
             per_pixel: float, share: int) -> list:
    from ..infer import upscale_batch

    kwargs = opts.upscale_kwargs()
    if opts.tile is None and not opts.crop_ensemble:
        h, w = imgs[0].shape[:2]
        available = available_memory(device) * 0.6 / max(1, share)
        tile = choose_tile(per_pixel, h, w, len(imgs), available, opts.overlap)
        if tile is not None:
            log.warning("a %dx%d image needs about %.1f GiB for the network as a whole and %.1f GiB are available "
                        "to this worker: it is tiled (tile %d, overlap %d); pass --tile to choose", w, h,
                        per_pixel * h * w * len(imgs) / 2**30, available / 2**30, tile, min(opts.overlap, tile - 1))
            kwargs.update(tile=tile, overlap=min(opts.overlap, tile - 1))
    with one_cpu_thread(device):
        return upscale_batch(model, imgs, scale=spec.scale, batch_size=len(imgs), device=device, output=output,
                             **kwargs)


@dataclass(frozen=True)
class NetworkCompute:
    """The network of ``spec`` run as ``opts`` says, for :mod:`srprep.stages.devicepipe` (a BatchCompute).

    share: how many processes share the device's memory (``--jobs`` on the CPU), for the automatic tiling.
    """

    spec: ModelSpec
    opts: InferOptions
    output: str = "float"
    share: int = 1

    def prepare(self, device: str) -> Callable[[list], list]:
        model = load_model(self.spec, device)
        with _MODELS_LOCK:
            per_pixel = _PER_PIXEL.get((self.spec, device))
            if per_pixel is None:
                per_pixel = _PER_PIXEL[(self.spec, device)] = bytes_per_pixel(model, self.spec.scale, device)
        return functools.partial(_compute, model, spec=self.spec, opts=self.opts, device=device, output=self.output,
                                 per_pixel=per_pixel, share=self.share)


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
    if pipelined is None:
        pipelined = len(devices) > 1 or any(d != "cpu" for d in devices)
    share = 1 if pipelined else (jobs or default_jobs())
    compute = NetworkCompute(spec, opts, output, share)
    if not pipelined:
        if len(devices) > 1:
            raise SrprepError("several devices need the pipelined mode")
        worker = functools.partial(compute_item, compute=compute, device=devices[0], read=read, finish=finish)
        return run_step(step, items, worker, jobs=jobs, force=force, dry_run=dry_run, progress=progress,
                        ledger=ledger, unit=unit)
    return run_device_step(step, items, compute=compute, devices=devices, read=read,
                           finish=finish, batch=batch, writers=writers, force=force, dry_run=dry_run,
                           progress=progress, ledger=ledger, unit=unit)
