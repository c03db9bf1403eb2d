"""scripts/setup.sh: a second run with nothing changed returns at once; a change (or SRPREP_FORCE) redoes it.

pip is replaced by a stand-in that only records its arguments (the venv's "python" runs this interpreter for
everything else), so the script runs end to end without installing anything.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_venv(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "pip.log"
    python = venv / "bin/python"
    python.write_text(f"""#!/usr/bin/env bash
if [ "$1" = -m ] && [ "$2" = pip ]; then
  echo "${{@:3}}" >> {log}
  [ "$3" = show ] && exit 1   # nothing is "installed": no plain pillow to replace
  exit 0
fi
exec {sys.executable} "$@"
""")
    python.chmod(0o755)
    return venv, log


def setup(venv, **env):
    return subprocess.run(["bash", str(REPO / "scripts/setup.sh")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SRPREP_VENV": str(venv), "SRPREP_SKIP_APT": "1", "SRPREP_EXTRAS": "",
                               "PYTHONPATH": str(REPO), **env})


def pip_calls(log):
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.slow  # four runs of the script, each importing torch a few times
def test_a_second_run_with_nothing_changed_installs_nothing(fake_venv):
    venv, log = fake_venv
    first = setup(venv)
    assert first.returncode == 0, first.stderr
    assert any(c.startswith("install -c") and f"-e {REPO}" in c for c in pip_calls(log))
    assert (venv / ".srprep-setup").is_file()
    n = len(pip_calls(log))
    again = setup(venv)
    assert again.returncode == 0 and "up to date" in again.stderr and len(pip_calls(log)) == n
    assert setup(venv, SRPREP_FORCE="1").returncode == 0 and len(pip_calls(log)) > n  # forced: done again
    n = len(pip_calls(log))
    more = setup(venv, SRPREP_EXTRAS="plots")  # an extra not installed yet: not up to date
    assert "up to date" not in more.stderr and any("[plots]" in c for c in pip_calls(log)[n:])
