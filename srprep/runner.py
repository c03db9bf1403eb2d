"""The step runner: every srprep step runs through :func:`run_step`, which makes it cached, resumable and parallel.

A *step* turns input items into output under one directory that it owns (``Step.output``). Its state lives
in ``<output>/.srprep/``:

``journal.jsonl``
    one line per finished item (key, input fingerprint, the output files it wrote), appended and flushed as
    items finish, plus one ``run`` line per run with the parameter fingerprint and the planned item count.
    A killed run leaves at most one torn last line, which is ignored on reading.
``manifest.json``
    written last, atomically, once every item is done: step, parameters, fingerprints of parameters and
    inputs, item count, timing, ``complete: true``. It is deleted before a run changes anything, so an
    output that has a manifest is always complete.

Decisions, in order:

1. manifest present, same parameter and input fingerprints  -> nothing to do ("up to date");
2. journal written under other parameters (or ``force``)     -> forget it and delete the outputs it lists;
3. otherwise                                                -> process the items the journal does not list
   with the same input fingerprint, delete the outputs of items that are no longer inputs (stale).

Items are processed in worker processes (joblib, ``jobs`` of them) or in this process when ``jobs == 1``.
A worker writes its item's files itself (atomically: temporary name, then rename) and returns an
:class:`ItemResult`; only this process writes the journal. When the ``ledger`` is not the default journal
(e.g. an LMDB writer), the worker returns the encoded records and the ledger stores them together with the
done-record in one transaction.

A worker's exception stops the step: :class:`~srprep.errors.StageError` names the item and the cause, the
worker's traceback is logged at DEBUG level, and everything finished so far is kept for the next run.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from . import __version__
from .errors import StageError, StoreError
from .fingerprint import FORMAT_VERSION, fingerprint
from .io.keys import check_key

log = logging.getLogger(__name__)

STATE_DIR = ".srprep"
MANIFEST = "manifest.json"
JOURNAL = "journal.jsonl"


@dataclass(frozen=True)
class Item:
    """One unit of work.

    key:         unique name of the item in the step's output (a valid store key).
    fingerprint: fingerprint of this item's inputs; a changed value redoes only this item.
    payload:     what the worker needs (paths, boxes...); must be picklable.
    """

    key: str
    fingerprint: str
    payload: Any = None


@dataclass
class ItemResult:
    """What a worker returns for an item.

    outputs: files written, relative to the step's output directory (deleted if the item goes stale).
    info:    small JSON-serialisable facts for the summary (e.g. ``{"skipped": "smaller than crop"}``).
    records: data for a non-file ledger (e.g. encoded images for an LMDB); not kept in the journal.
    """

    outputs: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    records: Any = None


@dataclass(frozen=True)
class Step:
    """A step to run: its name, the directory it owns, its parameters and its upstream fingerprints.

    params must be JSON-serialisable; every value that changes the output belongs here (and nothing
    else: a ``--jobs`` value does not). inputs maps a name to a fingerprint of each upstream input
    as a whole (see :func:`srprep.io.stores.Store.fingerprint`).
    """

    name: str
    output: Path
    params: dict
    inputs: dict = field(default_factory=dict)
    state_dir: Path | None = None

    @property
    def state(self) -> Path:
        return self.state_dir if self.state_dir is not None else Path(self.output) / STATE_DIR


@dataclass
class StepReport:
    """The outcome of :func:`run_step` (what the CLI prints as the summary)."""

    step: str
    output: Path
    status: str  # "up to date" | "done" | "dry run"
    total: int
    processed: int = 0
    reused: int = 0
    removed: int = 0
    elapsed: float = 0.0
    infos: dict = field(default_factory=dict)  # key -> ItemResult.info, for items processed in this run
    todo: list = field(default_factory=list)  # keys that a dry run would process
    changed: list = field(default_factory=list)  # "name: old -> new" for each parameter that differs from the output's

    def summary(self) -> str:
        """One line for humans, e.g. ``modcrop: 13 items, 13 processed, 0 reused, 0 stale removed (1.2 s) -> out``."""
        if self.status == "up to date":
            return f"{self.step}: up to date ({self.total} items) -> {self.output}"
        if self.status == "dry run":
            replaces = f" (replacing the output: {', '.join(self.changed)})" if self.changed else ""
            return (f"{self.step}: would process {len(self.todo)} of {self.total} items, reuse {self.reused}, "
                    f"remove {self.removed} stale -> {self.output}{replaces}")
        return (f"{self.step}: {self.total} items, {self.processed} processed, {self.reused} reused, "
                f"{self.removed} stale removed ({self.elapsed:.1f} s) -> {self.output}")


class Ledger(Protocol):
    """Where a step records which items are done. The default is :class:`Journal`."""

    def load(self) -> tuple[str | None, dict[str, tuple[str, list[str]]]]:
        """Return (parameter fingerprint it was written under or None, {key: (item fingerprint, outputs)})."""

    def reset(self, params_fp: str) -> None:
        """Forget everything (the caller has deleted the outputs)."""

    def begin(self, params_fp: str, total: int, meta: dict) -> None:
        """Start a run under these parameters, planning ``total`` items (meta: step name and parameters)."""

    def record(self, item: Item, result: ItemResult) -> None:
        """Mark an item done (durably before the next call returns or at the latest at :meth:`commit`)."""

    def forget(self, keys: Sequence[str]) -> None:
        """Drop these items (their outputs have been deleted)."""

    def commit(self) -> None:
        """Make every recorded item durable."""

    # Optional: ``finish()``, called once after every item succeeded and before the manifest is written
    # (a store that holds its own data marks itself complete there); ``close()``, called at the end.


class Journal:
    """The default ledger: an append-only JSON-lines file in the step's state directory."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / JOURNAL
        self._fh = None

    def records(self) -> Iterator[dict]:
        """The journal's records in order (none if there is no journal yet)."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    # A torn last line from a killed run: that item is simply redone.
                    continue

    def load(self):
        params_fp, done = None, {}
        for rec in self.records():
            if "run" in rec:
                if params_fp is not None and rec["run"]["params_fp"] != params_fp:
                    params_fp = "mixed"
                elif params_fp is None:
                    params_fp = rec["run"]["params_fp"]
            elif "forget" in rec:
                for k in rec["forget"]:
                    done.pop(k, None)
            else:
                done[rec["key"]] = (rec["fp"], rec.get("outputs", []))
        return params_fp, done

    def _open(self):
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")
        return self._fh

    def _append(self, rec: dict) -> None:
        fh = self._open()
        fh.write(json.dumps(rec, ensure_ascii=True) + "\n")
        fh.flush()  # survives a killed process (the page cache keeps it); fsync at commit() for power loss

    def reset(self, params_fp: str) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def begin(self, params_fp: str, total: int, meta: dict) -> None:
        self._append({"run": {"params_fp": params_fp, "total": total, "started": _now(), **meta}})

    def record(self, item: Item, result: ItemResult) -> None:
        self._append({"key": item.key, "fp": item.fingerprint, "outputs": list(result.outputs)})

    def forget(self, keys: Sequence[str]) -> None:
        if keys:
            self._append({"forget": list(keys)})

    def commit(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def read_manifest(state_dir: Path) -> dict | None:
    """The manifest of a step's output, or None if there is none (never run, or not complete)."""
    path = Path(state_dir) / MANIFEST
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, OSError) as exc:
        raise StoreError(f"{path}: unreadable manifest ({exc}); delete it or run with --force") from exc


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` via a temporary file + fsync + rename (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def params_fingerprint(step: Step) -> str:
    return fingerprint({"step": step.name, "params": step.params, "format": FORMAT_VERSION})


def inputs_fingerprint(step: Step, items: Sequence[Item]) -> str:
    return fingerprint({"inputs": step.inputs, "items": sorted((it.key, it.fingerprint) for it in items)})


def _remove_outputs(output: Path, rels: Iterable[str]) -> None:
    root = Path(output).resolve()
    for rel in rels:
        p = (root / rel).resolve()
        if root not in p.parents:  # a journal must never make us delete outside the step's directory
            raise StoreError(f"{root}: journal lists an output outside the step's directory: {rel!r}")
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


_TORN = re.compile(r"^\..+\.tmp\d*$")


def _remove_torn_files(output: Path) -> None:
    """Delete the temporary files a killed run left in the step's directory and its direct sub-folders.

    Atomic writes go through hidden names ending in ``.tmp`` or ``.tmp<pid>`` in the target folder; only the
    rename makes a file real, so anything still under such a name is the torn remainder of an interrupted
    write.
    """
    n = 0
    for folder in [output, *(p for p in output.iterdir() if p.is_dir() and not p.name.startswith("."))]:
        for p in folder.iterdir():
            if _TORN.match(p.name) and p.is_file():
                p.unlink(missing_ok=True)
                n += 1
    if n:
        log.info("%s: removed %d temporary file(s) left by an interrupted run", output, n)


@dataclass
class _Failure:
    key: str
    error: str
    traceback: str


def _call(worker: Callable[[Any], ItemResult], item: Item):
    """Run the worker on one item; never let an exception escape without the item's key."""
    try:
        result = worker(item.payload)
        if result is None:
            result = ItemResult()
        return item, result
    except Exception as exc:  # noqa: BLE001 - reported with the key in the parent
        return item, _Failure(item.key, f"{type(exc).__name__}: {exc}" if not _is_user_error(exc) else str(exc),
                              traceback.format_exc())


def _is_user_error(exc: BaseException) -> bool:
    from .errors import SrprepError

    return isinstance(exc, SrprepError)


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _results(worker, todo: Sequence[Item], jobs: int) -> Iterator[tuple[Item, Any]]:
    if jobs == 1 or len(todo) <= 1:
        for it in todo:
            yield _call(worker, it)
        return
    from joblib import Parallel, delayed

    # Unordered: a slow item does not hold back the progress bar or the journal.
    yield from Parallel(n_jobs=jobs, return_as="generator_unordered")(delayed(_call)(worker, it) for it in todo)


def run_step(
    step: Step,
    items: Sequence[Item],
    worker: Callable[[Any], ItemResult],
    *,
    jobs: int | None = None,
    force: bool = False,
    dry_run: bool = False,
    progress: bool = True,
    ledger: Ledger | None = None,
    unit: str = "item",
) -> StepReport:
    """Run ``worker`` over ``items`` for ``step``, skipping what is already done.

    Args:
        step: name, output directory, parameters and upstream fingerprints.
        items: the full set of items the output should hold (keys unique and valid).
        worker: picklable callable ``payload -> ItemResult`` (a top-level function or a
            ``functools.partial`` of one); it writes the item's files under ``step.output``.
        jobs: worker processes (default: all cores; 1 runs in this process).
        force: redo every item even if the output is up to date.
        dry_run: decide, report what would be done, change nothing.
        progress: show a progress bar (items/s and ETA) on stderr.
        ledger: where done items are recorded (default: :class:`Journal` in ``step.state``).
        unit: the word the progress bar counts in.

    Returns:
        A :class:`StepReport`.

    Raises:
        StageError: a worker raised; the message names the item and the cause.
        StoreError: duplicate or invalid keys, or unreadable state.
    """
    t0 = time.perf_counter()
    keys = [it.key for it in items]
    for k in keys:
        check_key(k)
    if len(set(keys)) != len(keys):
        seen, dups = set(), []
        for k in keys:
            if k in seen:
                dups.append(k)
            seen.add(k)
        raise StoreError(f"{step.name}: duplicate keys {sorted(set(dups))[:5]} ({len(dups)} in all)")

    output = Path(step.output)
    state = step.state
    p_fp = params_fingerprint(step)
    i_fp = inputs_fingerprint(step, items)
    report = StepReport(step=step.name, output=output, status="done", total=len(items))

    manifest = read_manifest(state)
    if (not force and manifest and manifest.get("complete")
            and manifest.get("params_fp") == p_fp and manifest.get("inputs_fp") == i_fp):
        report.status = "up to date"
        report.reused = len(items)
        return report

    ledger = ledger if ledger is not None else Journal(state)
    old_fp, done = ledger.load()
    fresh = force or (old_fp is not None and old_fp != p_fp)
    if fresh and not force:
        report.changed = changed_params(_previous_params(state, manifest), step.params)
    replaced = len(done) if fresh else 0
    if fresh:
        done_outputs = [o for _, outs in done.values() for o in outs]
        done = {}
    wanted = {it.key: it for it in items}
    stale = [k for k in done if k not in wanted]
    todo = [it for it in items if done.get(it.key, (None,))[0] != it.fingerprint]
    report.reused = len(items) - len(todo)
    report.removed = len(stale)

    if dry_run:
        report.status = "dry run"
        report.todo = [it.key for it in todo]
        if fresh:
            report.reused = 0
        return report

    # From here on the output changes: first make sure it can never look complete while it does.
    (Path(state) / MANIFEST).unlink(missing_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    _remove_torn_files(output)
    if fresh:
        if report.changed:
            log.info("%s: %s was made with other parameters (%s): replacing its %d item(s)", step.name, output,
                     ", ".join(report.changed), replaced)
        _remove_outputs(output, done_outputs)
        ledger.reset(p_fp)
    if stale:
        _remove_outputs(output, [o for k in stale for o in done[k][1]])
        ledger.forget(stale)
    ledger.begin(p_fp, len(items), {"step": step.name, "params": step.params})

    bar = _progress(total=len(todo), desc=step.name, unit=unit, enabled=progress)
    try:
        for item, result in _results(worker, todo, jobs if jobs else default_jobs()):
            if isinstance(result, _Failure):
                log.debug("worker traceback for %s:\n%s", result.key, result.traceback)
                raise StageError(f"{step.name}: item {result.key!r} failed: {result.error}")
            ledger.record(item, result)
            if result.info:
                report.infos[item.key] = result.info
            report.processed += 1
            bar.update(1)
        finish = getattr(ledger, "finish", None)
        if finish is not None:
            # A ledger that holds the data itself (an LMDB or HDF5 store) marks it complete before the
            # manifest says so; after a kill in between, the next run finds every item done and only
            # finishes again.
            finish()
    finally:
        bar.close()
        ledger.commit()
        if hasattr(ledger, "close"):
            ledger.close()

    report.elapsed = time.perf_counter() - t0
    write_json_atomic(Path(state) / MANIFEST, {
        "step": step.name,
        "params": step.params,
        "params_fp": p_fp,
        "inputs": step.inputs,
        "inputs_fp": i_fp,
        "items": len(items),
        "complete": True,
        "finished": _now(),
        "elapsed_s": round(report.elapsed, 3),
        "srprep_version": __version__,
        "format_version": FORMAT_VERSION,
    })
    return report


def changed_params(old: dict | None, new: dict) -> list[str]:
    """``["name: old -> new", ...]`` for every parameter that differs (nested keys joined with dots).

    ``old`` None (the earlier parameters are not on record) gives ``["parameters changed"]``.

    >>> changed_params({"scale": 2, "opts": {"mod": 0}}, {"scale": 3, "opts": {"mod": 12}, "level": 1})
    ['level: (none) -> 1', 'opts.mod: 0 -> 12', 'scale: 2 -> 3']
    """
    if old is None:
        return ["parameters changed"]

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict) and v:
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    a, b = flat(old), flat(new)

    def show(d, k):
        return json.dumps(d[k], default=str) if k in d else "(none)"

    return [f"{k}: {show(a, k)} -> {show(b, k)}" for k in sorted(set(a) | set(b)) if a.get(k, a) != b.get(k, b)]


def _previous_params(state: Path, manifest: dict | None) -> dict | None:
    """The parameters the output on disk was made with: its manifest's, else the journal's last run."""
    if manifest is not None:
        return manifest.get("params")
    params = None
    for rec in Journal(state).records():
        if "run" in rec:
            params = rec["run"].get("params", params)
    return params


def _progress(total: int, desc: str, unit: str, enabled: bool):
    from tqdm.auto import tqdm

    # disable=None: tqdm shows the bar only on a terminal, so logs and pipes get the summary line alone.
    return tqdm(total=total, desc=desc, unit=unit, disable=True if (not enabled or total == 0) else None,
                dynamic_ncols=True,
                smoothing=0.1, leave=False)


def step_status(state_dir: Path) -> dict:
    """What ``srprep status`` shows for one step output: step, parameters, complete or how far, when.

    Returns a dict with keys step, params, complete (bool), done, total, finished (or None).
    """
    state_dir = Path(state_dir)
    manifest = read_manifest(state_dir)
    if manifest is not None:
        return {"step": manifest["step"], "params": manifest["params"], "complete": True,
                "done": manifest["items"], "total": manifest["items"], "when": manifest.get("finished")}
    journal = Journal(state_dir)
    if not journal.path.exists():
        raise StoreError(f"{state_dir.parent}: no srprep step output here")
    total, step, params, started = None, None, None, None
    _, done = journal.load()
    for rec in journal.records():
        if "run" in rec:
            run = rec["run"]
            total, started, step, params = run["total"], run["started"], run.get("step"), run.get("params")
    return {"step": step, "params": params, "complete": False, "done": len(done), "total": total,
            "when": started}


def find_step_outputs(root: Path, max_depth: int = 4) -> list[Path]:
    """State directories of every step output under ``root`` (including ``root`` itself)."""
    root = Path(root)
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        if STATE_DIR in dirnames:
            found.append(Path(dirpath) / STATE_DIR)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and depth < max_depth]
    return sorted(found)
