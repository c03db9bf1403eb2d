"""The step runner: every srprep step runs through :func:`run_step`, which makes it cached, resumable and parallel.

A *step* turns input items into output under one directory that it owns (``Step.output``). Its state lives
in ``<output>/.srprep/``:

``journal.jsonl``
    one line per finished item (key, input fingerprint, the output files it wrote with their size and
    SHA-256 as written), appended and flushed as items finish, plus one ``run`` line per run with the
    parameter fingerprint, the planned item count and the paths the step writes. A killed run leaves at
    most one torn last line, which is ignored on reading.
``manifest.json``
    written last, atomically, once every item is done: step, parameters, fingerprints of parameters and
    inputs, item count, timing, the paths the step writes, the sizes of the store files it wrote (LMDB,
    HDF5), ``complete: true``. It is deleted before a run changes anything, so an output that has a
    manifest is always complete.
``lock``
    who writes here now (:mod:`srprep.lock`): one writer per output; a second process gets an error naming
    the first, and the lock of a process that died is taken over (with a warning).

Decisions, in order:

1. manifest present, same parameter and input fingerprints, and the fast check passes -> nothing to do
   ("up to date"). The fast check costs one ``stat`` per output file: every file the journal lists must
   exist with the size it was written with, and every store file (``data.mdb``, ``data.h5``) must have
   its recorded size. A missing or resized file redoes its item (a damaged store is an error that
   ``force`` clears). It does not read contents: a file changed in place to the same size, or flipped
   bits inside a store, are found by ``srprep verify`` (:func:`verify_files`), which re-hashes them;
2. journal written under other parameters (or ``force``)     -> forget it and delete the outputs it lists;
3. otherwise                                                -> process the items the journal does not list
   with the same input fingerprint (or whose files are gone), delete the outputs of items that are no
   longer inputs (stale).

Before it writes, a step checks where it writes (:func:`check_placement`): its output may not be,
contain or lie inside a path it reads (``Step.reads``) or the output of another step (found by the state
folders around it, each of which records the paths its step writes).

Items are processed in worker processes (joblib, ``jobs`` of them) or in this process when ``jobs == 1``.
A worker writes its item's files itself (atomically: temporary name, then rename) and returns an
:class:`ItemResult`; only this process writes the journal. When the ``ledger`` is not the default journal
(e.g. an LMDB writer), the worker returns the encoded records and the ledger stores them together with the
done-record in one transaction.

A worker's exception stops the step: :class:`~srprep.errors.StageError` names the item and the cause, the
worker's traceback is logged at DEBUG level, and everything finished so far is kept for the next run. A
worker process that dies (killed, out of memory, crashed) is named the same way: each worker notes the
item it works on in ``.srprep/running/``, and the items that were in progress are run again, one at a time
in a fresh process, to find the one that dies.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from . import __version__
from .errors import StageError, StoreError, SrprepError, write_error
from .fingerprint import FORMAT_VERSION, fingerprint
from .io.keys import check_key
from .lock import output_lock

log = logging.getLogger(__name__)

STATE_DIR = ".srprep"
MANIFEST = "manifest.json"
JOURNAL = "journal.jsonl"
LOCK = "lock"
RUNNING = "running"


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
    files:   set by the runner, not the worker: ``{output: [size, sha256]}`` of the files as written
             (``sha256`` is None for links, which share an input's content).
    """

    outputs: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    records: Any = None
    files: dict = field(default_factory=dict)  # filled by the runner: output -> [size, sha256 or None]


@dataclass(frozen=True)
class Step:
    """A step to run: its name, the directory it owns, its parameters and its upstream fingerprints.

    params must be JSON-serialisable; every value that changes the output belongs here (and nothing
    else: a ``--jobs`` value does not). inputs maps a name to a fingerprint of each upstream input
    as a whole (see :func:`srprep.io.stores.Store.fingerprint`).

    reads: the files and folders the step reads; its output may not be, contain or lie inside any of them.
    writes: what the step writes, when that is less than its whole output folder (e.g. the two stores a
        step adds beside others in a dataset folder); default: ``output``. The state folder is always
        part of it. No other step's writes may overlap these.
    """

    name: str
    output: Path
    params: dict
    inputs: dict = field(default_factory=dict)
    state_dir: Path | None = None
    reads: tuple = ()
    writes: tuple = ()

    @property
    def state(self) -> Path:
        return self.state_dir if self.state_dir is not None else Path(self.output) / STATE_DIR

    @property
    def territory(self) -> list[Path]:
        """Every path this step writes: ``writes`` (or its output folder) and its state folder."""
        return [Path(p) for p in (self.writes or (self.output,))] + [Path(self.state)]


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
        self.recorded: dict[str, dict] = {}  # after load(): key -> {output: [size, sha256]} as written

    def records(self) -> Iterator[dict]:
        """The journal's records in order (none if there is no journal yet, or no longer: another step
        looking at this one's territory may read it while this step replaces its output)."""
        try:
            fh = open(self.path, encoding="utf-8")
        except FileNotFoundError:
            return
        with fh:
            for line in fh:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    # A torn last line from a killed run: that item is simply redone.
                    continue

    def load(self):
        params_fp, done, recorded = None, {}, {}
        for rec in self.records():
            if "run" in rec:
                if params_fp is not None and rec["run"]["params_fp"] != params_fp:
                    params_fp = "mixed"
                elif params_fp is None:
                    params_fp = rec["run"]["params_fp"]
            elif "forget" in rec:
                for k in rec["forget"]:
                    done.pop(k, None)
                    recorded.pop(k, None)
            else:
                done[rec["key"]] = (rec["fp"], rec.get("outputs", []))
                recorded[rec["key"]] = rec.get("files", {})
        self.recorded = recorded
        return params_fp, done

    def _open(self):
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")
        return self._fh

    def _append(self, rec: dict) -> None:
        try:
            fh = self._open()
            fh.write(json.dumps(rec, ensure_ascii=True) + "\n")
            fh.flush()  # survives a killed process (the page cache keeps it); fsync at commit() for power loss
        except OSError as exc:
            raise write_error(self.path, exc) from exc

    def reset(self, params_fp: str) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def begin(self, params_fp: str, total: int, meta: dict) -> None:
        self._append({"run": {"params_fp": params_fp, "total": total, "started": _now(), **meta}})

    def record(self, item: Item, result: ItemResult) -> None:
        rec = {"key": item.key, "fp": item.fingerprint, "outputs": list(result.outputs)}
        if result.files:
            rec["files"] = result.files
        self._append(rec)

    def forget(self, keys: Sequence[str]) -> None:
        if keys:
            self._append({"forget": list(keys)})

    def commit(self) -> None:
        if self._fh is not None:
            try:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError as exc:
                raise write_error(self.path, exc) from exc

    def close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.close()
            except OSError:
                pass  # a failed flush was reported by the write that failed


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
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise write_error(path, exc) from exc


def params_fingerprint(step: Step) -> str:
    return fingerprint({"step": step.name, "params": step.params, "format": FORMAT_VERSION})


def inputs_fingerprint(step: Step, items: Sequence[Item]) -> str:
    return fingerprint({"inputs": step.inputs, "items": sorted((it.key, it.fingerprint) for it in items)})


def _remove_outputs(output: Path, rels: Iterable[str]) -> None:
    root = Path(output).resolve()
    for rel in rels:
        p = root / rel
        # The folder the entry lies in, links resolved, must be inside the step's directory; the entry
        # itself is removed as what it is (a link is unlinked, never followed).
        parent = p.parent.resolve()
        if parent != root and root not in parent.parents or ".." in Path(rel).parts:
            raise StoreError(f"{root}: journal lists an output outside the step's directory: {rel!r}")
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


_TORN = re.compile(r"^\..+\.tmp\d*$")


def _owned_folders(step: Step) -> list[Path]:
    """The folders a step writes files into: each of its ``writes`` that is a folder, and their direct
    sub-folders that are real folders (not links) and not another step's output."""
    folders = []
    for top in (Path(p) for p in (step.writes or (step.output,))):
        if not top.is_dir() or top.is_symlink():
            continue
        folders.append(top)
        with os.scandir(top) as it:
            for e in it:
                if (not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
                        and not os.path.lexists(os.path.join(e.path, STATE_DIR))):
                    folders.append(Path(e.path))
    return folders


def _remove_torn_files(step: Step) -> None:
    """Delete the temporary files a killed run left in the folders the step writes into.

    Atomic writes go through hidden names ending in ``.tmp`` or ``.tmp<pid>`` in the target folder; only the
    rename makes a file real, so anything still under such a name is the torn remainder of an interrupted
    write. Only regular files are removed, and links to folders are never followed, so the cleanup cannot
    reach outside the step's own folders.
    """
    n = 0
    for folder in _owned_folders(step):
        with os.scandir(folder) as it:
            for e in it:
                if _TORN.match(e.name) and e.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(e.path)
                    n += 1
    if n:
        log.info("%s: removed %d temporary file(s) left by an interrupted run", step.output, n)


# ------------------------------------------------------------------------------------------ where a step writes


def _relation(a: Path, b: Path) -> str | None:
    """How path ``a`` stands to path ``b`` (both resolved): "is", "contains", "lies inside" or None."""
    if a == b:
        return "is"
    if a in b.parents:
        return "contains"
    if b in a.parents:
        return "lies inside"
    return None


def territory_of(state_dir: Path) -> tuple[str | None, list[Path]]:
    """(step name, the paths it writes) recorded in a step's state folder: its ``writes``, or its whole folder
    for a run recorded before steps said what they write; nothing for a folder that records no run."""
    base = state_dir.parent
    rec = None
    try:
        rec = read_manifest(state_dir)
    except StoreError:
        pass
    if rec is None:
        for line in Journal(state_dir).records():
            if "run" in line:
                rec = line["run"]
    if rec is None:
        return None, []  # nothing recorded yet (a run refused or killed before it started): claims nothing
    writes = rec.get("writes") or ["."]
    return rec.get("step"), [(base / w).resolve() for w in writes] + [state_dir.resolve()]


def _states_around(paths: Sequence[Path]) -> set[Path]:
    """State folders that could overlap ``paths``: in every ancestor, beside each path, and below it."""
    found: set[Path] = set()
    for p in paths:
        for a in [p, *p.parents]:
            if (a / STATE_DIR).is_dir():
                found.add(a / STATE_DIR)
        if p.parent.is_dir():
            with os.scandir(p.parent) as it:
                for e in it:
                    if e.is_dir() and os.path.isdir(os.path.join(e.path, STATE_DIR)):
                        found.add(Path(e.path) / STATE_DIR)
        if p.is_dir():
            found.update(s.resolve() for s in find_step_outputs(p, max_depth=3))
    return {s.resolve() for s in found}


def check_placement(step: Step) -> None:
    """Refuse a step whose output would overwrite what it reads or what another step wrote.

    Raises:
        StoreError: a path the step writes is, contains or lies inside a path in ``step.reads``, or one
            that another step's state folder (nearby: ancestors, siblings, below) says that step writes;
            or the step's own state folder holds another step's state.
    """
    mine = [Path(p).resolve() for p in step.territory]
    state = Path(step.state).resolve()
    for r in step.reads:
        rp = Path(r).resolve()
        for w in mine:
            how = _relation(w, rp)
            if how:
                raise StoreError(f"{w}: the output of {step.name} {how} its input {rp}; choose a destination "
                                 f"outside the inputs")
    for other in sorted(_states_around(mine)):
        name, theirs = territory_of(other)
        if other == state:
            if name is not None and name != step.name:
                raise StoreError(f"{step.output}: holds the output of step {name!r}, not of {step.name!r}; "
                                 f"choose another destination (or delete that output first)")
            continue
        for w in mine:
            for t in theirs:
                how = _relation(w, t)
                if how:
                    raise StoreError(f"{w}: the output of {step.name} {how} the output of another step "
                                     f"({name or 'unknown'} in {other.parent}); choose another destination")


# ------------------------------------------------------------------------------------------ the fast check


def _file_record(path: Path) -> list:
    """``[size, sha256]`` of an output as written (``[size, None]`` for a link: its content is an input's)."""
    st = os.lstat(path)
    if not os.path.isfile(path) or os.path.islink(path) or st.st_nlink > 1:
        return [os.stat(path).st_size if os.path.exists(path) else st.st_size, None]
    with open(path, "rb") as fh:
        return [st.st_size, hashlib.file_digest(fh, "sha256").hexdigest()]


def _missing_outputs(output: Path, done: dict, recorded: dict) -> list[str]:
    """Keys of done items whose output files are gone or no longer have the size they were written with."""
    bad = []
    for key, (_, outs) in done.items():
        files = recorded.get(key, {})
        for rel in outs:
            try:
                size = os.stat(output / rel).st_size
            except FileNotFoundError:
                bad.append(key)
                break
            if rel in files and files[rel][0] is not None and size != files[rel][0]:
                bad.append(key)
                break
    return bad


def _store_files(step: Step, ledger) -> dict:
    """``{path relative to the state folder's parent: size}`` of the store files a ledger wrote."""
    files = getattr(ledger, "files", None)
    if files is None:
        return {}
    base = Path(step.state).parent
    return {os.path.relpath(p, base): os.stat(p).st_size for p in files() if os.path.exists(p)}


def _check_store_files(step: Step, recorded: dict) -> None:
    base = Path(step.state).parent
    for rel, size in recorded.items():
        path = base / rel
        try:
            now = os.stat(path).st_size
        except FileNotFoundError:
            raise StoreError(f"{os.path.normpath(path)}: missing since {step.name} finished; run the same "
                             f"command with --force to rebuild it") from None
        if now != size:
            raise StoreError(f"{os.path.normpath(path)}: damaged since {step.name} finished ({now} bytes, it was "
                             f"written with {size}); run the same command with --force to rebuild it")


# ------------------------------------------------------------------------------------------ running items


@dataclass
class _Failure:
    key: str
    error: str
    traceback: str


def _call(worker: Callable[[Any], ItemResult], item: Item, output: str | None = None, running: str | None = None):
    """Run the worker on one item; never let an exception escape without the item's key.

    ``output``: hash the files the worker wrote there. ``running``: note the key in that folder first, so
    that the parent can tell which item a worker process was on if it dies.
    """
    try:
        if running is not None:
            Path(running, f"{socket.gethostname()}-{os.getpid()}").write_text(item.key, encoding="utf-8")
        result = worker(item.payload)
        if result is None:
            result = ItemResult()
        if output is not None:
            result.files = {rel: _file_record(Path(output) / rel) for rel in result.outputs}
        return item, result
    except Exception as exc:  # noqa: BLE001 - reported with the key in the parent
        return item, _Failure(item.key, f"{type(exc).__name__}: {exc}" if not _is_user_error(exc) else str(exc),
                              traceback.format_exc())


def _is_user_error(exc: BaseException) -> bool:
    return isinstance(exc, SrprepError)


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def local_processes(jobs: int | None) -> bool:
    """Whether :func:`run_step` with ``jobs`` runs items in worker processes of this machine, one item at a
    time in each (joblib's default process backend; not inside :func:`srprep.cluster.use_dask` or another
    joblib backend). A worker may then write to stores that only processes of one machine may share
    (LMDB). Even so, a step with a single item to do runs it in this process."""
    if (jobs if jobs else default_jobs()) == 1:
        return False
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    return type(backend).__name__ == "LokyBackend"


#: Items per worker process handed to joblib at a time (see :func:`_results`): the most finished results that
#: wait for the caller is about this many per worker.
_WINDOW_PER_JOB = 8


def _results(worker, todo: Sequence[Item], jobs: int, output: Path, running: Path,
             name: str) -> Iterator[tuple[Item, Any]]:
    if jobs == 1 or len(todo) <= 1:
        for it in todo:
            yield _call(worker, it, str(output))
        return
    from joblib import Parallel, delayed

    shutil.rmtree(running, ignore_errors=True)
    running.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # joblib warns that it cancels the queued items when a failed item stops the step: the step's
            # own one-line error says what happened.
            warnings.filterwarnings("ignore", message=".*were still being processed by the workers",
                                    category=UserWarning)
            # Unordered: a slow item does not hold back the progress bar or the journal. In windows of
            # _WINDOW_PER_JOB items per worker: joblib hands over finished results whether or not the caller
            # has taken the earlier ones, so a caller that writes slower than the workers compute (one LMDB
            # writer, many decoders) would otherwise hold every finished image at once.
            window = max(16, _WINDOW_PER_JOB * jobs)
            with Parallel(n_jobs=jobs, return_as="generator_unordered") as parallel:
                for start in range(0, len(todo), window):
                    yield from parallel(delayed(_call)(worker, it, str(output), str(running))
                                        for it in todo[start:start + window])
    except Exception as exc:
        if type(exc).__name__ != "TerminatedWorkerError":
            raise
        raise _dead_worker_error(worker, todo, output, running, exc, name) from None
    finally:
        shutil.rmtree(running, ignore_errors=True)


def _alone(worker, item: Item, output: Path) -> bool:
    """Whether ``item`` completes when run alone in a fresh process (False: that process died)."""
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            pool.submit(_call, worker, item, str(output)).result()
            return True
        except concurrent.futures.process.BrokenProcessPool:
            return False


def _dead_worker_error(worker, todo: Sequence[Item], output: Path, running: Path, exc: BaseException,
                       name: str) -> StageError:
    """Name the item a dead worker process was on: run the items that were in progress again, one at a time."""
    m = re.search(r"exit codes of the workers are \{([^}]*)\}", str(exc))
    how = f"exit {m.group(1)}" if m else "no exit code"
    by_key = {it.key: it for it in todo}
    keys = sorted({p.read_text(encoding="utf-8") for p in running.iterdir()} & set(by_key)) if running.is_dir() else []
    if not keys:
        return StageError(f"{name}: a worker process died ({how}) before it began an item: it was killed from "
                          f"outside or ran out of memory; finished items are kept, run the same command again")
    log.warning("a worker process died (%s) while %d item(s) were in progress: %s; running them again one at a "
                "time to find the one that dies", how, len(keys), ", ".join(keys[:8]))
    dying = [k for k in keys if not _alone(worker, by_key[k], output)]
    if dying:
        return StageError(f"{name}: item {dying[0]!r} failed: its worker process died ({how}; out of memory, or a "
                          f"crash in a library), and it dies again when run alone; finished items are kept")
    return StageError(f"{name}: a worker process died ({how}) while it processed one of "
                      f"{', '.join(map(repr, keys[:8]))}; each of them runs fine alone, so it was killed from outside "
                      f"or the processes together ran out of memory (try fewer --jobs); finished items are kept")


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
        force: redo every item even if the output is up to date (also rebuilds a damaged store).
        dry_run: decide, report what would be done, change nothing (and take no lock).
        progress: show a progress bar (items/s and ETA) on stderr.
        ledger: where done items are recorded (default: :class:`Journal` in ``step.state``).
        unit: the word the progress bar counts in.

    Returns:
        A :class:`StepReport`.

    Raises:
        StageError: a worker raised or its process died; the message names the item and the cause.
        StoreError: duplicate or invalid keys, unreadable state, an output that would overwrite an input or
            another step's output, a damaged store.
        LockError: another live process writes this output.
    """
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
    if not Path(step.state).exists():
        check_placement(step)  # before the lock file makes a state folder there
    lock = contextlib.nullcontext() if dry_run else output_lock(Path(step.state) / LOCK, step.output)
    with lock:
        return _run_locked(step, items, worker, jobs=jobs, force=force, dry_run=dry_run, progress=progress,
                           ledger=ledger if ledger is not None else Journal(step.state), unit=unit)


def _run_locked(step: Step, items: Sequence[Item], worker, *, jobs, force, dry_run, progress, ledger,
                unit) -> StepReport:
    t0 = time.perf_counter()
    output = Path(step.output)
    state = step.state
    p_fp = params_fingerprint(step)
    i_fp = inputs_fingerprint(step, items)
    report = StepReport(step=step.name, output=output, status="done", total=len(items))

    manifest = read_manifest(state)
    current = (not force and manifest and manifest.get("complete")
               and manifest.get("params_fp") == p_fp and manifest.get("inputs_fp") == i_fp)
    if current:
        _check_store_files(step, manifest.get("files") or {})
        if not isinstance(ledger, Journal):
            report.status = "up to date"
            report.reused = len(items)
            return report
    try:
        old_fp, done = ledger.load()
    except StoreError:
        if not force:
            raise
        old_fp, done = None, {}  # a damaged store: --force rebuilds it
    fresh = force or (old_fp is not None and old_fp != p_fp)
    if fresh and not force:
        report.changed = changed_params(_previous_params(state, manifest), step.params)
    replaced = len(done) if fresh else 0
    if fresh:
        done_outputs = [o for _, outs in done.values() for o in outs]
        done = {}
    missing = _missing_outputs(output, done, getattr(ledger, "recorded", {}))
    if current and not missing:
        report.status = "up to date"
        report.reused = len(items)
        return report
    if missing:
        log.warning("%s: %d item(s) have output files that are missing or changed size since they were written "
                    "(e.g. %s); redoing them", step.name, len(missing), ", ".join(missing[:3]))
        for k in missing:
            done[k] = ("", done[k][1])  # "" matches no fingerprint: redone, and its old files replaced
    wanted = {it.key: it for it in items}
    stale = [k for k in done if k not in wanted]
    todo = [it for it in items if done.get(it.key, (None,))[0] != it.fingerprint]
    report.reused = len(items) - len(todo)
    report.removed = len(stale)
    check_placement(step)

    if dry_run:
        report.status = "dry run"
        report.todo = [it.key for it in todo]
        if fresh:
            report.reused = 0
        return report

    # From here on the output changes: first make sure it can never look complete while it does.
    (Path(state) / MANIFEST).unlink(missing_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    _remove_torn_files(step)
    if fresh:
        if report.changed:
            log.info("%s: %s was made with other parameters (%s): replacing its %d item(s)", step.name, output,
                     ", ".join(report.changed), replaced)
        _remove_outputs(output, done_outputs)
        ledger.reset(p_fp)
    if stale:
        _remove_outputs(output, [o for k in stale for o in done[k][1]])
        ledger.forget(stale)
    base = Path(state).parent
    writes = [os.path.relpath(p, base) for p in (step.writes or (output,))]
    where = {"output": os.path.relpath(output, base), "writes": writes}  # relative: the folder may move
    ledger.begin(p_fp, len(items), {"step": step.name, "params": step.params, **where})

    bar = _progress(total=len(todo), desc=step.name, unit=unit, enabled=progress)
    try:
        for item, result in _results(worker, todo, jobs if jobs else default_jobs(), output,
                                     Path(state) / RUNNING, step.name):
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
        try:
            ledger.commit()
        finally:
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
        **where,
        "files": _store_files(step, ledger),
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
    """State directories of every step output under ``root`` (including ``root`` itself).

    A state folder that holds neither a manifest nor a journal (a run refused or killed before it began)
    is not an output."""
    root = Path(root)
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        state = Path(dirpath) / STATE_DIR
        if STATE_DIR in dirnames and ((state / MANIFEST).exists() or (state / JOURNAL).exists()):
            found.append(state)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and depth < max_depth]
    return sorted(found)


def verify_files(state_dir: Path) -> tuple[int, int, list[str]]:
    """Re-hash every output file a step's journal lists and compare with the size and SHA-256 it was
    written with.

    Returns:
        ``(files checked, files not checkable, problems)``: not checkable are links (their content is an
        input's) and files of runs made before hashes were recorded; a problem is one line naming the file.
    """
    state_dir = Path(state_dir)
    journal = Journal(state_dir)
    _, done = journal.load()
    base = state_dir.parent
    rec = read_manifest(state_dir) or next((r["run"] for r in reversed(list(journal.records())) if "run" in r), {})
    output = (base / rec.get("output", ".")).resolve()
    checked, skipped, problems = 0, 0, []
    for key, (_, outs) in done.items():
        files = journal.recorded.get(key, {})
        for rel in outs:
            path = output / rel
            size, sha = files.get(rel, [None, None])
            if not os.path.lexists(path):
                problems.append(f"{path}: missing (item {key!r})")
                continue
            if sha is None:
                skipped += 1
                continue
            now = _file_record(path)
            checked += 1
            if now[0] != size or now[1] != sha:
                problems.append(f"{path}: content changed since it was written (item {key!r}; "
                                f"{size} -> {now[0]} bytes)")
    return checked, skipped, problems
