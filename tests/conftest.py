"""Shared fixtures: the real reference data beside the checkout, small generated images, and a way to kill a
run half-way."""
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
SAMPLES = REPO / "srprep" / "samples"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the reference data (Set5 HR/LR, MATLAB .mat files, AIM2020 lists, IMDN weights)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def samples() -> Path:
    """Path of the images bundled inside the package (set5/, kodak/)."""
    return SAMPLES


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def kill_when():
    """``kill_when(cmd, folder, pattern, count, timeout=120, **popen) -> int``: start ``cmd`` in a process
    group of its own, SIGKILL the whole group (workers included) as soon as ``folder`` holds ``count`` files
    matching ``pattern`` (or after ``timeout`` seconds), and return how many it held then. Tests assert that
    the kill landed half-way, so a too fast or too slow run cannot pass unnoticed."""

    def kill(cmd, folder: Path, pattern: str, count: int, *, timeout: float = 120, **popen) -> int:
        proc = subprocess.Popen(cmd, start_new_session=True, **popen)
        deadline = time.time() + timeout
        while time.time() < deadline and len(list(folder.glob(pattern))) < count:
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return len(list(folder.glob(pattern)))

    return kill


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs mounted under ``tmp_path`` (for full-disk errors); skipped where mounting is not permitted."""
    mnt = tmp_path / "small_disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip() or res.returncode})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
