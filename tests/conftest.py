"""Shared fixtures: the reference data (in the repository, and the optional larger sets), small generated
images, and a way to kill a run at a chosen point."""
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
REF_DATA = REPO / "tests" / "data"
SAMPLES = REPO / "srprep" / "samples"
HOLDPOINT = REPO / "tests" / "holdpoint.py"
#: Where the optional larger reference data is looked for when SRPREP_TEST_DATA is not set.
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
_NO_SHARED_DATA = "optional reference data not found"


def _shared_data_dir() -> tuple[Path, str]:
    env = os.environ.get("SRPREP_TEST_DATA")
    return (Path(env), "SRPREP_TEST_DATA") if env else (SHARED_DATA, "../shared/data")


@pytest.fixture(scope="session")
def ref_data() -> Path:
    """The small reference files in the repository (``tests/data``, see its README): Set5 in both MATLAB
    conventions, MATLAB ``.mat`` outputs, the AIM2020 clean-ID lists, IMDN x2 / CARN-M / FSRCNN weights."""
    return REF_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The optional larger reference data (B100, real camera pairs ...; same sub-layout as ``tests/data``):
    ``$SRPREP_TEST_DATA``, else ``../shared/data`` beside the checkout. Tests that use it are skipped when it
    is missing, and the summary counts them."""
    path, origin = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"{_NO_SHARED_DATA} ({origin}: {path})")
    return path


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    n = sum(_NO_SHARED_DATA in str(getattr(r, "longrepr", "")) for r in skipped)
    if n:
        path, origin = _shared_data_dir()
        terminalreporter.write_line(
            f"{n} skipped for lack of the optional reference data ({origin}: {path}); set SRPREP_TEST_DATA to a "
            f"folder with its layout to run them (tests/data/README.md)", yellow=True)


@pytest.fixture(scope="session")
def samples() -> Path:
    """Path of the images bundled inside the package (set5/, kodak/)."""
    return SAMPLES


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def kill_when(tmp_path):
    """``kill_when(cmd, folder, pattern, count, step=STEP, timeout=900, **popen) -> int``: run ``cmd`` (``python
    -m MODULE ...`` or ``python SCRIPT ...``) in a process group of its own, SIGKILL the whole group (workers
    included) once step STEP has recorded ``count`` items, and return how many files matching ``pattern``
    ``folder`` holds then.

    The program stops by itself at that point (``tests/holdpoint.py``) and waits to be killed, so the kill
    lands after exactly ``count`` recorded items whatever the machine's load. ``timeout`` only guards against
    a hang (it fails the test). Without ``step`` the group is killed as soon as ``folder`` holds ``count``
    matching files, which depends on timing; use it only where any kill point is as good as another.
    """

    def kill(cmd, folder: Path, pattern: str, count: int, *, step: str | None = None, timeout: float = 900,
             **popen) -> int:
        cmd = [str(c) for c in cmd]
        marker = tmp_path / f"held-{uuid.uuid4().hex}"
        if step is not None:
            cmd = [cmd[0], str(HOLDPOINT), step, str(count), str(marker), *cmd[1:]]
        proc = subprocess.Popen(cmd, start_new_session=True, **popen)
        deadline = time.monotonic() + timeout
        try:
            while not (marker.exists() if step is not None else len(list(folder.glob(pattern))) >= count):
                if step is not None and proc.poll() is not None:
                    raise AssertionError(f"{cmd[4:]} ended (exit {proc.returncode}) before step {step} recorded "
                                         f"{count} items")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{cmd}: not there after {timeout} s")
                time.sleep(0.005)
        finally:
            if proc.poll() is None:
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
