"""Injected kill points for benchmarks/kill_campaign.py (imported at start-up when this folder is on PYTHONPATH).

In the process whose parent is the campaign (``SRPREP_KILL_PARENT``), every durable step of a write counts as
one event: before and after each ``os.replace``, after each ``os.fsync``, after each ``lmdb.open``, after each
journal line, before and after each LMDB transaction and HDF5 flush. ``SRPREP_KILL_AT=N`` SIGKILLs the whole
process group (the run and its workers) at event N; ``SRPREP_KILL_COUNT=FILE`` only counts them and writes
the number to FILE at exit. Other processes (workers, forked children) are left alone.
"""
import atexit
import functools
import importlib.abc
import importlib.machinery
import os
import signal
import sys

_PARENT = os.environ.get("SRPREP_KILL_PARENT")
_MAIN = os.getpid() if _PARENT and os.getppid() == int(_PARENT) else None
_AT = int(os.environ.get("SRPREP_KILL_AT", "0") or 0)
_COUNT_FILE = os.environ.get("SRPREP_KILL_COUNT")
_events = [0]


def _event() -> None:
    if os.getpid() != _MAIN:
        return
    _events[0] += 1
    if _AT and _events[0] == _AT:
        os.killpg(os.getpgrp(), signal.SIGKILL)


def _wrap(fn, before: bool = True, after: bool = True):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if before:
            _event()
        result = fn(*args, **kwargs)
        if after:
            _event()
        return result

    return wrapper


def _patch(module) -> None:
    name = module.__name__
    if name == "lmdb":
        module.open = _wrap(module.open, before=False)
    elif name == "srprep.runner":
        module.Journal._append = _wrap(module.Journal._append, before=False)
    elif name == "srprep.io.lmdb_store":
        module.LmdbWriter._retry_full = _wrap(module.LmdbWriter._retry_full)
    elif name == "srprep.io.hdf5_store":
        module.Hdf5Writer._flush = _wrap(module.Hdf5Writer._flush)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patch a few modules right after they are executed (before anything imports names from them)."""

    targets = {"lmdb", "srprep.runner", "srprep.io.lmdb_store", "srprep.io.hdf5_store"}

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.targets:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


if _MAIN is not None:
    os.replace = _wrap(os.replace)
    os.fsync = _wrap(os.fsync, before=False)
    sys.meta_path.insert(0, _PatchOnImport())
    if _COUNT_FILE:
        atexit.register(lambda: open(_COUNT_FILE, "w").write(str(_events[0])))
