"""What every step that runs a network shares (``srprep upscale`` and ``srprep centroids``):

* :class:`ModelSpec`: a checkpoint file pinned by its SHA-256, the architecture and scale it was found to
  be; its :meth:`~ModelSpec.params` go into a step's parameters, so a different model file redoes the step.
* :func:`load_model`: builds the network once per process and device (a joblib worker keeps it for every
  item it is given) and freezes it (``requires_grad_(False)``, eval mode; inference runs under
  ``torch.inference_mode``).
* :class:`InferOptions`: tiling, ensembles and precision, passed to :func:`srprep.infer.upscale_batch`.
* Two ways to run the items of a step (:func:`run_model_step`):

  - **per item** (``--device cpu``): the runner's workers (``--jobs`` processes) each read, run and write
    one item at a time (:func:`process_item`);
  - **pipelined** (``--device cuda``): a :class:`DevicePipeline` keeps the accelerator busy. Per device,
    one thread decodes the inputs ahead, one thread feeds the network (equal-size images batched up to
    ``batch``), and writer threads encode and write the results while the next batch runs. The runner
    still records items one by one, in order: it waits for each item's files to be written, so a killed
    run never counts an item whose files are missing (items finished ahead but not yet recorded are simply
    redone). With several devices (``--device cuda`` on a machine with several GPUs, or
    ``cuda:0,cuda:1``) each device gets its own process (spawned, so CUDA is initialised in the child),
    and the processes take items from one shared queue, so a fast device takes more of them.

Exactness: with fp32 on one device, an item's pixels are those of :func:`srprep.infer.upscale` run the same
way. The float summation order of a convolution depends on the batch size and, on the CPU, on the number of
torch threads (a joblib worker gets ``cores // jobs`` of them), so changing ``batch`` or ``jobs`` can make a
rare pixel round one level the other way. Neither is a step parameter (like ``jobs`` elsewhere): they
choose speed, not the result.
"""
from __future__ import annotations

import concurrent.futures
import functools
import json
import logging
import multiprocessing
import os
import queue
import re
import threading
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from ..errors import SrprepError
from ..fingerprint import canonical_json
from ..io import images
from ..io.stores import ARRAY_EXTENSION, FolderStore
from ..runner import Item, ItemResult, Step, StepReport, default_jobs, run_step

__all__ = [
    "ModelSpec", "InferOptions", "DevicePipeline", "load_model", "resolve_devices", "device_kind",
    "process_item", "read_item", "item_source", "run_pipeline", "run_model_step", "remove_temporaries",
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
             trust_checkpoint: bool = False):
        """Load the checkpoint once (which checks that it loads) and return ``(spec, model, info)``.

        The model is kept in this process's cache for the CPU, so in-process work does not load it again.

        Raises:
            SrprepError: no such file, unreadable or unsafe pickle, unknown layout, weights that do not fit
                (naming the missing / unexpected keys), or a ``scale`` the weights are not for.
        """
        from ..models import load_pretrained

        path = Path(path).resolve()
        model, info = load_pretrained(path, arch, scale, trust_checkpoint=trust_checkpoint)
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
                                          device=device)
            if info.sha256 != spec.sha256:
                raise SrprepError(f"{spec.path}: the model file changed while the step was running "
                                  f"(sha256 {spec.sha256[:12]} -> {info.sha256[:12]}); run the command again")
            model = _MODELS[key] = _freeze(model)
    return model


@dataclass(frozen=True)
class InferOptions:
    """How the network is run (see :func:`srprep.infer.upscale`); every field changes the output.

    crop_ensemble: ``((tile, overlap), ...)`` or None. precision: fp32 | tf32 | bf16 | fp16.
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


def process_item(payload, *, spec: ModelSpec, opts: InferOptions, device: str, read: Callable, finish: Callable,
                 output: str = "float") -> ItemResult:
    """One item, start to end, in this process: read, run the network (loaded once), finish (write)."""
    img = read(payload)
    sr = _compute(load_model(spec, device), [img], spec=spec, opts=opts, device=device, output=output)[0]
    return finish(payload, sr)


# ------------------------------------------------------------------------------------------ the pipeline

_STOP = object()
_POLL = 0.1  # s: how often blocked threads look at the stop flag


def _put(q, obj, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(obj, timeout=_POLL)
            return True
        except queue.Full:
            continue
    return False


def _get(q, stop: threading.Event):
    while not stop.is_set():
        try:
            return q.get(timeout=_POLL)
        except queue.Empty:
            continue
    return _STOP


def run_pipeline(source: Iterable[tuple[str, Any]], *, spec: ModelSpec, opts: InferOptions, device: str,
                 read: Callable, finish: Callable, on_done: Callable, output: str = "float", batch: int = 1,
                 writers: int = 2, stop: threading.Event | None = None) -> None:
    """Run items through decode -> network -> finish on one device, overlapping the three; blocks until done.

    ``source`` yields ``(key, payload)``; ``on_done(key, result, error)`` is called once per item (from a
    writer thread, or from this thread for an item that failed before the writers), with the
    :class:`ItemResult` of ``finish(payload, sr)`` or the exception; ``key`` is None when the source itself
    failed (no further items come). Consecutive items of equal input size go through the network together,
    up to ``batch`` at a time.
    """
    stop = stop or threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=2 * batch + 2)
    computed: queue.Queue = queue.Queue(maxsize=batch + writers + 1)

    def reader():
        try:
            for key, payload in source:
                if stop.is_set():
                    break
                try:
                    item = (key, payload, read(payload), None)
                except Exception as exc:  # noqa: BLE001 - reported for this item
                    item = (key, payload, None, exc)
                if not _put(decoded, item, stop):
                    break
        except Exception as exc:  # noqa: BLE001 - the source itself failed (e.g. a broken task queue)
            log.debug("pipeline source failed:\n%s", traceback.format_exc())
            _put(decoded, (None, None, None, exc), stop)
        finally:
            _put(decoded, _STOP, stop)

    def writer():
        while True:
            item = _get(computed, stop)
            if item is _STOP:
                return
            key, payload, sr = item
            try:
                on_done(key, finish(payload, sr), None)
            except Exception as exc:  # noqa: BLE001
                on_done(key, None, exc)

    threads = [threading.Thread(target=reader, name="srprep-read", daemon=True)]
    threads += [threading.Thread(target=writer, name=f"srprep-write{i}", daemon=True) for i in range(writers)]
    for t in threads:
        t.start()
    try:
        model = load_model(spec, device)
        pending = None
        while not stop.is_set():
            first = pending if pending is not None else _get(decoded, stop)
            pending = None
            if first is _STOP:
                break
            if first[3] is not None:
                on_done(first[0], None, first[3])
                continue
            group = [first]
            while len(group) < batch:
                nxt = _get(decoded, stop)
                if nxt is _STOP or nxt[3] is not None or nxt[2].shape != first[2].shape:
                    pending = nxt
                    break
                group.append(nxt)
            try:
                srs = _compute(model, [g[2] for g in group], spec=spec, opts=opts, device=device, output=output)
            except Exception as exc:  # noqa: BLE001 - every item of the batch failed with it
                for g in group:
                    on_done(g[0], None, exc)
                continue
            for g, sr in zip(group, srs):
                if not _put(computed, (g[0], g[1], sr), stop):
                    break
            if pending is _STOP:
                break
    finally:
        for _ in range(writers):
            _put(computed, _STOP, stop)
        for t in threads[1:]:
            t.join()
        stop.set()  # the reader may still be blocked on a full queue
        threads[0].join()


def _error_info(exc: BaseException) -> tuple[str, str, bool]:
    return type(exc).__name__, str(exc), isinstance(exc, SrprepError)


def _rebuild_error(info: tuple[str, str, bool]) -> Exception:
    name, message, user = info
    return SrprepError(message) if user else RuntimeError(f"{name}: {message}")


def _task_source(tasks, parent_pid: int) -> Iterator[tuple[str, Any]]:
    while True:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent_pid:  # the parent was killed: nobody will ever read our results
                return
            continue
        if task is None:
            return
        yield task


def _device_process(device: str, tasks, results, parent_pid: int, kwargs: dict) -> None:
    """Body of one device's process: the pipeline over the shared task queue, results sent back."""
    try:
        def on_done(key, result, error):
            results.put((key, result, None if error is None else _error_info(error)))

        run_pipeline(_task_source(tasks, parent_pid), device=device, on_done=on_done, **kwargs)
    except Exception as exc:  # noqa: BLE001 - e.g. the model does not load on this device
        results.put((None, None, _error_info(exc)))


class DevicePipeline:
    """The runner's worker for pipelined steps: computes ``order`` ahead on ``devices``, hands out results.

    ``order`` lists ``(key, payload)`` in the order the runner will ask for them (a dry run of the step
    says which). Calling the object with a payload waits until that item is finished (its files written)
    and returns its :class:`ItemResult`, or raises its error. A payload not in ``order`` is processed on
    the spot. Use it as a context manager: leaving stops the threads / processes.
    """

    def __init__(self, order: Sequence[tuple[str, Any]], *, spec: ModelSpec, opts: InferOptions,
                 devices: Sequence[str], read: Callable, finish: Callable, output: str = "float", batch: int = 1,
                 writers: int = 2):
        self.devices = list(devices)
        self._kwargs = dict(spec=spec, opts=opts, read=read, finish=finish, output=output, batch=batch,
                            writers=writers)
        self._futures = {key: concurrent.futures.Future() for key, _ in order}
        self._unresolved = len(self._futures)
        self._lock = threading.Lock()  # writer threads resolve items concurrently
        self._stop = threading.Event()
        self._procs: list = []
        self._threads: list[threading.Thread] = []
        if not order:
            return
        if len(self.devices) == 1:
            t = threading.Thread(target=self._run_here, args=(list(order),), name="srprep-device", daemon=True)
        else:
            ctx = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
            # Both queues live as long as this object: the children unpickle them after start() returns.
            self._tasks, self._results = ctx.Queue(), ctx.Queue()
            for task in order:
                self._tasks.put(task)
            for _ in self.devices:
                self._tasks.put(None)
            self._procs = [ctx.Process(target=_device_process, args=(d, self._tasks, self._results, os.getpid(),
                                                                     self._kwargs),
                                       name=f"srprep-{d}", daemon=True) for d in self.devices]
            for p in self._procs:
                p.start()
            t = threading.Thread(target=self._collect, name="srprep-collect", daemon=True)
        self._threads.append(t)
        t.start()

    def _resolve(self, key, result, error) -> None:
        if key is None:  # the source failed: nothing more will come
            self._fail_all(error)
            return
        with self._lock:
            fut = self._futures.get(key)
            if fut is None or fut.done():
                return
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)
            self._unresolved -= 1

    def _fail_all(self, error: BaseException) -> None:
        with self._lock:
            for fut in self._futures.values():
                if not fut.done():
                    fut.set_exception(error)
            self._unresolved = 0

    def _run_here(self, order) -> None:
        try:
            run_pipeline(order, device=self.devices[0], on_done=self._resolve, stop=self._stop, **self._kwargs)
        except Exception as exc:  # noqa: BLE001 - e.g. the model does not load: every waiting item gets it
            log.debug("pipeline failed:\n%s", traceback.format_exc())
            self._fail_all(exc)
        self._fail_all(SrprepError("the pipeline stopped before this item was processed"))

    def _collect(self) -> None:
        while not self._stop.is_set() and self._unresolved > 0:
            try:
                key, result, error = self._results.get(timeout=0.5)
            except queue.Empty:
                dead = [p for p in self._procs if p.exitcode not in (None, 0)]
                if dead:
                    self._fail_all(SrprepError(f"the process for {dead[0].name.removeprefix('srprep-')} died "
                                               f"(exit code {dead[0].exitcode})"))
                elif all(p.exitcode == 0 for p in self._procs):
                    # A process flushes its results before it exits: whatever is left is in the pipe now.
                    while True:
                        try:
                            self._deliver(*self._results.get(timeout=0.5))
                        except queue.Empty:
                            break
                    self._fail_all(SrprepError("the device processes ended before this item was processed"))
                continue
            self._deliver(key, result, error)

    def _deliver(self, key, result, error) -> None:
        # key None: a process failed as a whole (e.g. the model does not load on its device)
        self._resolve(key, result, None if error is None else _rebuild_error(error))

    def __call__(self, payload) -> ItemResult:
        fut = self._futures.get(payload[0])
        if fut is None:
            return process_item(payload, device=self.devices[0], **{k: v for k, v in self._kwargs.items()
                                                                     if k not in ("batch", "writers")})
        return fut.result()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join()

    def __enter__(self) -> "DevicePipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_model_step(step: Step, items: Sequence[Item], *, spec: ModelSpec, opts: InferOptions,
                   devices: Sequence[str], read: Callable, finish: Callable, output: str = "float",
                   pipelined: bool | None = None, batch: int = 1, writers: int | None = None, jobs: int | None = None,
                   force: bool = False, dry_run: bool = False, progress: bool = True, ledger=None,
                   unit: str = "img") -> StepReport:
    """Run a network step through the runner, per item (CPU) or pipelined (accelerators; see module doc).

    ``read(payload) -> image`` and ``finish(payload, sr) -> ItemResult`` must be picklable (top-level
    functions or partials of them) for the per-item path with several jobs and for several devices.
    ``pipelined`` defaults to True unless the only device is the CPU. ``writers``: finishing threads per device
    (default: half the cores, 2 to 8; finishing a DIV2K-sized centroid pair costs about 0.3 s of one core,
    mostly PNG encoding, which a fast GPU outruns with fewer threads).
    """
    devices = list(devices)
    if writers is None:
        writers = max(2, min(8, default_jobs() // 2))
    if pipelined is None:
        pipelined = len(devices) > 1 or any(d != "cpu" for d in devices)
    worker = functools.partial(process_item, spec=spec, opts=opts, device=devices[0], read=read, finish=finish,
                               output=output)
    run = functools.partial(run_step, step, items, force=force, progress=progress, ledger=ledger, unit=unit)
    if not pipelined:
        if len(devices) > 1:
            raise SrprepError("several devices need the pipelined mode")
        return run(worker, jobs=jobs, dry_run=dry_run)
    plan = run(worker, jobs=1, dry_run=True)
    if dry_run or not plan.todo:
        return run(worker, jobs=1, dry_run=dry_run)
    payloads = {it.key: it.payload for it in items}
    with DevicePipeline([(k, payloads[k]) for k in plan.todo], spec=spec, opts=opts, devices=devices, read=read,
                        finish=finish, output=output, batch=batch, writers=writers) as pipe:
        return run(pipe, jobs=1)


# ------------------------------------------------------------------------------------------ outputs


def remove_temporaries(folder: Path) -> int:
    """Delete the hidden ``.<name>.<...>.tmp`` files a killed run left in ``folder`` (atomic writes that never got
    their rename); returns how many. Only for a folder this step owns, before it starts writing."""
    n = 0
    if Path(folder).is_dir():
        for p in Path(folder).iterdir():
            if p.name.startswith(".") and re.search(r"\.tmp\d*$", p.name) and p.is_file():
                p.unlink(missing_ok=True)
                n += 1
    if n:
        log.info("%s: removed %d temporary file(s) left by an interrupted run", folder, n)
    return n
