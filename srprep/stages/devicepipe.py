"""Running a step's items on accelerators: decode ahead, batch, compute, finish, in overlapping threads.

Used by every step with a ``--device`` (``srprep downsample``, ``upscale``, ``centroids``). The runner
(:func:`srprep.runner.run_step`) still decides what is to be done and records items one by one; this module
only makes the work behind its worker calls fast:

* :func:`run_pipeline`: per device, one thread decodes the inputs ahead (``read``), this thread feeds the
  device (consecutive items of equal input size batched up to ``batch``, through a :class:`BatchCompute`),
  and writer threads finish the results (``finish``: encode and write) while the next batch runs.
* :class:`DevicePipeline`: the runner's worker. It computes the items ahead, in the order the runner will ask
  for them, and hands each result over when asked; the runner waits for each item's files to be written, so
  a killed run never counts an item whose files are missing (items finished ahead but not yet recorded are
  simply redone). With several devices (``cuda:0,cuda:1``) each device gets its own process (spawned, so
  CUDA is initialised in the child), and the processes take items from one shared queue, so a fast device
  takes more of them.
* :func:`run_device_step`: the two together under :func:`~srprep.runner.run_step`.

Mixed sizes are not refused: a batch simply ends where the input size changes.
"""
from __future__ import annotations

import concurrent.futures
import functools
import logging
import multiprocessing
import os
import queue
import threading
import traceback
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from ..errors import SrprepError
from ..runner import Item, ItemResult, Step, StepReport, default_jobs, run_step

__all__ = ["BatchCompute", "compute_item", "run_pipeline", "DevicePipeline", "run_device_step"]

log = logging.getLogger(__name__)


class BatchCompute(Protocol):
    """What a pipelined step computes. Picklable (it is sent to the per-device processes).

    ``prepare(device)`` runs once per device and process (load a model, build weights...) and returns a
    function from a list of equal-size inputs (as ``read`` returns them) to the list of their results."""

    def prepare(self, device: str) -> Callable[[list], list]: ...



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


def run_pipeline(source: Iterable[tuple[str, Any]], *, compute: BatchCompute, device: str, read: Callable,
                 finish: Callable, on_done: Callable, batch: int = 1, writers: int = 2,
                 stop: threading.Event | None = None) -> None:
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
        fn = compute.prepare(device)
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
                srs = fn([g[2] for g in group])
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

    def __init__(self, order: Sequence[tuple[str, Any]], *, compute: BatchCompute, devices: Sequence[str],
                 read: Callable, finish: Callable, batch: int = 1, writers: int = 2):
        self.devices = list(devices)
        self._kwargs = dict(compute=compute, read=read, finish=finish, batch=batch, writers=writers)
        self._futures = {key: concurrent.futures.Future() for key, _ in order}
        self._unresolved = len(self._futures)
        self._lock = threading.Lock()  # writer threads resolve items concurrently
        self._stop = threading.Event()
        self._procs: list = []
        self._threads: list[threading.Thread] = []
        self._order = list(order)
        self._started = False

    def _start(self) -> None:
        """Start computing ahead, on the first call: by then the runner holds the step's lock and has made its
        output folder (the finishing threads write there)."""
        with self._lock:
            if self._started or not self._order:
                self._started = True
                return
            self._started = True
        order = self._order
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
        if not self._started:
            self._start()
        fut = self._futures.get(payload[0])
        if fut is None:
            kw = self._kwargs
            return compute_item(payload, compute=kw["compute"], device=self.devices[0], read=kw["read"],
                                finish=kw["finish"])
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



def compute_item(payload, *, compute: BatchCompute, device: str, read: Callable, finish: Callable) -> ItemResult:
    """One item, start to end, in this process: read, compute alone (``compute`` prepared once per process and
    device, e.g. a model loaded once), finish (write)."""
    return finish(payload, compute.prepare(device)([read(payload)])[0])


def run_device_step(step: Step, items: Sequence[Item], *, compute: BatchCompute, devices: Sequence[str],
                    read: Callable, finish: Callable, batch: int = 1, writers: int | None = None,
                    force: bool = False, dry_run: bool = False, progress: bool = True, ledger=None,
                    unit: str = "item") -> StepReport:
    """Run ``step`` through the runner with a :class:`DevicePipeline` as its worker (see the module doc).

    ``read(payload) -> input`` and ``finish(payload, result) -> ItemResult`` must be picklable (top-level
    functions or partials of them) when there are several devices. ``writers``: finishing threads per device
    (default: half the cores, 2 to 8; finishing a DIV2K-sized centroid pair costs about 0.3 s of one core,
    mostly PNG encoding, which a fast GPU outruns with fewer threads).
    """
    if writers is None:
        writers = max(2, min(8, default_jobs() // 2))
    direct = functools.partial(compute_item, compute=compute, device=devices[0], read=read, finish=finish)
    run = functools.partial(run_step, step, items, force=force, progress=progress, ledger=ledger, unit=unit)
    plan = run(direct, jobs=1, dry_run=True)
    if dry_run or not plan.todo:
        return run(direct, jobs=1, dry_run=dry_run)
    payloads = {it.key: it.payload for it in items}
    with DevicePipeline([(k, payloads[k]) for k in plan.todo], compute=compute, devices=devices, read=read,
                        finish=finish, batch=batch, writers=writers) as pipe:
        return run(pipe, jobs=1)
