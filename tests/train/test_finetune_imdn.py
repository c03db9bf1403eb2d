"""The data -> trainer chain is aligned as the published networks' data was: fine-tuning the real IMDN x2 on
srprep-prepared B100 sub-images at a small learning rate keeps its Set5 PSNR, while the same run on LR shifted
by one LR pixel loses clearly more (benchmarks/bench_finetune_imdn.py; 200-step figures in RESULTS.md)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_fine_tuning_imdn_keeps_set5_only_on_aligned_data(shared_data, tmp_path):
    out = tmp_path / "figures.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_finetune_imdn.py"), "--steps", "50", "--every", "0",
           "--work", str(tmp_path / "work"), "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    before, aligned, shifted = figures["before"]["psnr"], figures["aligned"]["psnr"], figures["shifted"]["psnr"]
    assert before == pytest.approx(37.996, abs=5e-4)  # the published weights, measured as srprep eval does
    assert figures["aligned"]["loaded"] == figures["shifted"]["loaded"] == "92/92"
    assert abs(aligned - before) < 0.05, figures  # a few hundredths: nothing to unlearn
    assert before - shifted > 0.1 and before - shifted > 3 * abs(before - aligned), figures
