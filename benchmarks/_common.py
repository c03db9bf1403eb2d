"""Helpers shared by the benchmark scripts (run as ``python benchmarks/bench_*.py``, so this folder is on
``sys.path``): what the machine is, for the reports in RESULTS.md."""
from __future__ import annotations

import platform
import subprocess


def cpu_name() -> str:
    """The CPU's model name as ``lscpu`` gives it (else Python's guess, else ``"unknown CPU"``)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"
