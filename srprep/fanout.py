"""Several cached steps served by one worker: one expensive read per source, each step its own cache.

``srprep downsample --scale 2 --scale 3 --scale 4`` writes ``HR``, ``X2``, ``X3`` and ``X4``: four steps of
:func:`srprep.runner.run_step`, each with its own journal and manifest, so that adding ``--scale 8`` later
computes only ``X8`` and a changed convention redoes only the LR folders. Run one after the other, each step
would decode every HR image again (a 2K PNG decode costs more than all the resizes of it together).
:func:`run_together` keeps the steps as they are and shares the work instead:

1. each step decides what it has to do, as a dry run (:func:`~srprep.runner.run_step` with ``dry_run``);
2. each step that has work runs in a thread of this process (``jobs=1``), its worker a stand-in that waits for
   the item's result; the threads first do what a run does before its first item (delete the outputs of other
   parameters or of stale items, leftovers of a killed run, the manifest), and only then
3. the *groups* (usually: one source image) that any step needs are mapped over worker processes (joblib, as
   the runner does; a Dask cluster inside :func:`srprep.cluster.use_dask`); one call of ``worker`` gets, per
   step, the payloads of the items that step needs from this group, and returns their results; each result is
   handed to the waiting step, which journals it as usual.

So every step stays resumable on its own (a killed run keeps what each step journaled), the runner is used
unchanged, and a source is read once whatever the number of steps that need it. A group's failure fails every
step that waits for it, with the runner's usual message naming the step, the item and the cause.
"""
from __future__ import annotations

import logging
import threading
import traceback
from concurrent.futures import Future
from typing import Any, Callable, Sequence

from .errors import SrprepError, StageError
from .runner import Item, ItemResult, Step, StepReport, default_jobs, run_step

__all__ = ["run_together", "GroupWorker"]

log = logging.getLogger(__name__)

#: ``worker(job) -> results``: ``job`` maps a step name to the payloads of the items that step needs from
#: one group; ``results`` maps the same step names to one :class:`~srprep.runner.ItemResult` per payload, in
#: order. It writes every file itself (atomically), like a runner worker. Must be picklable.
GroupWorker = Callable[[dict[str, list[Any]]], dict[str, list[ItemResult]]]


class _ItemFailed(SrprepError):
    """A group's worker failed: raised for each item of it that a step waits for (message as the runner's)."""


class _Cancelled(SrprepError):
    """Another group failed or the run was interrupted: the items still waited for will not come."""


def _never(payload):  # the worker of a dry run, never called
    raise AssertionError("a dry run called its worker")


class _Waiter:
    """A step's stand-in worker: returns the result the group worker produced for the item."""

    def __init__(self, futures: dict[str, Future], started: threading.Event):
        self.futures, self.started = futures, started

    def __call__(self, key: str) -> ItemResult:
        # The runner calls its worker (with the payload, here the key) only once the step is ready for items:
        # its clean-up is done.
        self.started.set()
        return self.futures[key].result()


def _call_group(worker: GroupWorker, name: str, job: dict[str, list[Any]]):
    """Run one group in a worker process; an exception comes back as (message, traceback), never raised."""
    try:
        return name, worker(job), None
    except Exception as exc:  # noqa: BLE001 - reported for every item of the group, with its cause
        message = str(exc) if isinstance(exc, SrprepError) else f"{type(exc).__name__}: {exc}"
        return name, None, (message, traceback.format_exc())


def _group_results(worker: GroupWorker, jobs_: list[tuple[str, dict]], n_jobs: int):
    if n_jobs == 1 or len(jobs_) <= 1:
        for name, job in jobs_:
            yield _call_group(worker, name, job)
        return
    import warnings

    from joblib import Parallel, delayed

    with warnings.catch_warnings():
        # joblib warns that it cancels the queued groups when a failed one stops the run: the one-line error
        # says what happened.
        warnings.filterwarnings("ignore", message=".*were still being processed by the workers",
                                category=UserWarning)
        yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_call_group)(worker, name, job) for name, job in jobs_)


def run_together(parts: Sequence[tuple[Step, Sequence[Item]]], worker: GroupWorker, *,
                 group: Callable[[Item], Any] = lambda item: item.key, jobs: int | None = None,
                 force: bool = False, dry_run: bool = False, progress: bool = True,
                 unit: str = "item") -> list[StepReport]:
    """Run several steps whose items share sources, calling ``worker`` once per group (see the module doc).

    Args:
        parts: ``(step, items)`` per step, in the order their reports are returned.
        worker: see :data:`GroupWorker`; the keys of its job are the steps' names (unique).
        group: the group of an item, any hashable value (default: its key, when every step has one item per
            source). A group's results are recorded when its worker call returns, so a kill loses the groups
            in progress: keep groups small.
        jobs, force, dry_run, progress, unit: as for :func:`~srprep.runner.run_step` (``progress``: one bar
            over the groups).

    Returns:
        One :class:`~srprep.runner.StepReport` per step (``elapsed`` is the whole run's).

    Raises:
        StageError: a group failed (the message names the first failing step, item and cause).
    """
    names = [step.name for step, _ in parts]
    if len(set(names)) != len(names):
        raise ValueError(f"step names must be unique, got {names}")
    plans = [run_step(step, items, _never, force=force, dry_run=True, progress=False, unit=unit)
             for step, items in parts]
    if dry_run:
        return plans
    # group -> step name -> items to do
    work: dict[Any, dict[str, list[Item]]] = {}
    # Each step records its items in its own order, so a group is due when any step reaches one of its items:
    # groups go out by the earliest relative position of their items (an image's HR before the next image's).
    due: dict[Any, float] = {}
    for (step, items), plan in zip(parts, plans):
        todo = set(plan.todo)
        n = 0
        for it in items:
            if it.key in todo:
                g = group(it)
                work.setdefault(g, {}).setdefault(step.name, []).append(it)
                due[g] = min(due.get(g, 1.0), n / len(todo))
                n += 1
    work = {g: work[g] for g in sorted(work, key=due.__getitem__)}  # stable: ties keep their order
    futures: dict[str, dict[str, Future]] = {name: {} for name in names}
    for per_step in work.values():
        for name, its in per_step.items():
            for it in its:
                futures[name][it.key] = Future()

    reports: list[StepReport | None] = [None] * len(parts)
    errors: list[BaseException | None] = [None] * len(parts)
    threads, started = [], []

    def run(i: int, step: Step, items: Sequence[Item], event: threading.Event) -> None:
        try:
            keyed = [Item(it.key, it.fingerprint, it.key) for it in items]
            reports[i] = run_step(step, keyed, _Waiter(futures[step.name], event), jobs=1, force=force,
                                  progress=False, unit=unit)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors[i] = exc
        finally:
            event.set()

    for i, ((step, items), plan) in enumerate(zip(parts, plans)):
        if plan.status == "up to date":
            reports[i] = plan
            continue
        event = threading.Event()
        thread = threading.Thread(target=run, args=(i, step, items, event), name=f"srprep:{step.name}",
                                  daemon=True)
        thread.start()
        threads.append(thread)
        started.append(event)

    def cancel(exc: BaseException) -> None:
        for per_step in futures.values():
            for fut in per_step.values():
                if not fut.done():
                    fut.set_exception(exc)

    failed = None  # the error of the group that failed, if one did
    try:
        for event in started:
            event.wait()  # every step has cleaned up before any worker writes into its folder
        bar = _progress(len(work), names, unit, progress)
        try:
            jobs_ = [(g, {name: [it.payload for it in its] for name, its in per_step.items()})
                     for g, per_step in work.items()]
            for g, results, error in _group_results(worker, jobs_, jobs if jobs else default_jobs()):
                if error is not None:
                    log.debug("worker traceback for %s:\n%s", g, error[1])
                    name, its = next(iter(work[g].items()))
                    failed = StageError(f"{name}: item {its[0].key!r} failed: {error[0]}")
                    for name, its in work[g].items():
                        for it in its:
                            futures[name][it.key].set_exception(_ItemFailed(error[0]))
                    break
                for name, its in work[g].items():
                    for it, res in zip(its, results[name], strict=True):
                        futures[name][it.key].set_result(res if res is not None else ItemResult())
                bar.update(1)
        finally:
            bar.close()
    except BaseException as exc:
        cancel(_Cancelled("interrupted"))
        for thread in threads:
            thread.join()
        raise exc
    if failed is not None:
        cancel(_Cancelled("stopped after another item failed"))
    for thread in threads:
        thread.join()
    if failed is not None:  # in the runner's words, for the first step and item of the failing group
        raise failed
    for exc in errors:
        if exc is not None:
            raise exc
    return list(reports)


def _progress(total: int, names: list[str], unit: str, enabled: bool):
    from tqdm.auto import tqdm

    desc = names[0].split(":")[0] if names else "steps"
    return tqdm(total=total, desc=desc, unit=unit, disable=True if (not enabled or total == 0) else None,
                dynamic_ncols=True, smoothing=0.1, leave=False)
