"""benchmarks/device_check.sh: skips cleanly without CUDA, and every check runs (tiny, on the CPU) with --cpu-smoke."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "device_check.sh"
CHECKS = ["CUDA tests", "resize on the device", "centroids precisions", "degrade batch vs per-sample",
          "trainer vs plain loop", "upscale"]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils timeout")


def run(*args, out=None):
    env = {**os.environ, "PYTHON": sys.executable}
    if out is not None:
        env["OUT"] = str(out)
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=1500)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_without_cuda_it_says_so_and_exits_0(tmp_path):
    res = run(out=tmp_path)  # the folder from $OUT
    assert res.returncode == 0, res.stderr
    report = (tmp_path / "device_check.md").read_text()
    assert "No CUDA device visible to torch" in report and "every check skipped" in report
    assert "no CUDA device" in res.stdout


def test_unknown_options_are_refused(tmp_path):
    res = run("--gpu-please", tmp_path)
    assert res.returncode == 2 and "unknown option --gpu-please" in res.stderr
    assert not (tmp_path / "device_check.md").exists()


@pytest.mark.slow
def test_cpu_smoke_runs_every_check_and_reports_each(tmp_path):
    res = run("--cpu-smoke", tmp_path / "report")
    report = (tmp_path / "report" / "device_check.md").read_text()
    assert res.returncode == 0, report
    sections = [line[3:] for line in report.splitlines() if line.startswith("## ")]
    assert sections == CHECKS
    assert report.count("\nok in ") == len(CHECKS) and "FAILED" not in report
    assert "| x2 | uint8 | 0 |" in report  # the resize check compared bytes with the numpy path
    assert "every check passed" in report
