"""One writer per output: the lock names a live holder and takes over a dead one's (real processes)."""
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from srprep.lock import LockError, holder, output_lock

REPO = Path(__file__).resolve().parents[1]

HOLD = textwrap.dedent("""
    import sys, time
    from srprep.lock import output_lock
    with output_lock(sys.argv[1], "the output"):
        print("held", flush=True)
        time.sleep(600)
""")


def start_holder(lock_path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_holder_is_named_and_a_dead_one_is_taken_over(tmp_path, caplog):
    lock = tmp_path / "out/.srprep/lock"
    proc = start_holder(lock)
    try:
        who = holder(lock)
        assert who["pid"] == proc.pid and who["host"] and who["started"]
        with pytest.raises(LockError, match=rf"another srprep process is writing here \(pid {proc.pid} on "):
            with output_lock(lock, "the output"):
                pass
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert holder(lock) is None  # the kernel released it with the process
    with caplog.at_level(logging.WARNING, logger="srprep.lock"):
        with output_lock(lock, "the output"):
            assert holder(lock)["pid"] == os.getpid()
    assert f"took over the lock of a process that ended without releasing it (pid {proc.pid} on" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="srprep.lock"):
        with output_lock(lock, "the output"):  # released normally last time: nothing to say
            pass
    assert caplog.text == "" and lock.read_text() == ""


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    lock = tmp_path / "lock"
    with pytest.raises(ValueError):
        with output_lock(lock, "x"):
            raise ValueError("boom")
    assert holder(lock) is None and lock.read_text() == ""
