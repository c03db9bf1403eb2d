"""One writer per output: a lock file that names its holder.

Every step output (and every pipeline) is written by one process at a time. The lock is an ``flock`` on a
small file (``.srprep/lock`` in a step's output, ``.srprep-pipeline/NAME.lock`` for a pipeline) that says
who holds it: process id, host, start time and command line. The kernel drops an ``flock`` when its holder
ends, however it ends (``kill -9`` included), so the next process can tell:

* the lock is held          -> a live process writes here: :class:`LockError` names it;
* free, the file names one  -> that process died without releasing it: the lock is taken over, and a
  warning says whose it was;
* free, the file is empty   -> the last holder finished normally.

The descriptor is close-on-exec, so worker processes that are started by fork and exec (joblib's) do not
keep the lock after their parent is gone; a plain ``fork`` child (a DataLoader worker) shares it until it
ends, which is right: it may still be writing. File systems that do not support ``flock`` get a warning
and no lock.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Iterator

from .errors import SrprepError

__all__ = ["LockError", "output_lock", "holder"]

log = logging.getLogger(__name__)


class LockError(SrprepError):
    """Another live process holds the lock of an output."""


def _describe(rec: dict) -> str:
    where = f"pid {rec.get('pid', '?')} on {rec.get('host', '?')}"
    since = f", since {rec['started']}" if rec.get("started") else ""
    cmd = f": {rec['command']}" if rec.get("command") else ""
    return where + since + cmd


def _read(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    try:
        rec = json.loads(data) if data.strip() else {}
    except json.JSONDecodeError:
        rec = {"pid": "?", "command": "(unreadable lock record)"}
    return rec if isinstance(rec, dict) else {}


def holder(lock_path: str | os.PathLike) -> dict | None:
    """Who holds the lock at ``lock_path`` now: ``{pid, host, started, command}``, or None if it is free."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_lock(lock_path: str | os.PathLike, what: str | os.PathLike) -> Iterator[None]:
    """Hold the lock at ``lock_path`` for the ``with`` block (``what``: the output named in messages).

    Raises:
        LockError: a live process holds it (the message names its pid, host, start time and command).
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    locked = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            raise LockError(f"{what}: another srprep process is writing here ({_describe(_read(fd))}); wait for "
                            f"it to finish or stop it") from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            log.warning("%s: this file system does not support locks; make sure no other srprep process writes "
                        "here at the same time", what)
        if locked:
            previous = _read(fd)
            if previous:
                log.warning("%s: took over the lock of a process that ended without releasing it (%s)", what,
                            _describe(previous))
            me = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
                  "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300]}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        yield
    finally:
        if locked:
            try:
                os.ftruncate(fd, 0)  # an empty record: released normally
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
