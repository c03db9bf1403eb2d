"""srprep/pipelines/eco_study_b100_x2.yaml end to end with tiny data: its variables reach every step, the six runs are
vanilla and ECO of three seeds, each validated where asked, and srprep eval of the last weights agrees."""
import csv
import math
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from srprep.cli import main
from srprep.io.images import read_image, write_image
from srprep.ops.imresize import imresize_matlab

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "srprep" / "pipelines" / "eco_study_b100_x2.yaml"
RUNS = [f"{m}_s{k}" for k in range(3) for m in ("vanilla", "eco")]


def outcomes(text: str) -> dict:
    return {m.group(1): m.group(2) for m in re.finditer(r"^\[(\w+)\] (done|up to date|would run)", text, re.M)}


def mean_psnr(path: Path) -> float:
    with open(path, newline="") as fh:
        return next(float(r["psnr"]) for r in csv.DictReader(fh) if r["image"] == "(mean)")


@pytest.mark.slow
def test_the_study_runs_six_paired_runs_and_its_variables_reach_every_step(ref_data, samples, tmp_path, capsys):
    hr_dir, val = tmp_path / "hr", tmp_path / "val"
    for name in ("kodim01", "kodim02"):  # two 96x96 training images
        write_image(hr_dir / f"{name}.png", read_image(samples / "kodak" / f"{name}.png")[100:196, 200:296])
    hr = read_image(samples / "kodak" / "kodim03.png")[200:248, 200:248]  # a one-image set in the benchmark layout
    write_image(val / "HR" / "img.png", hr)
    write_image(val / "LR_bicubic" / "X2" / "imgx2.png", imresize_matlab(hr, 0.5))
    tiny = {"train_hr": hr_dir, "set5": val, "teacher": ref_data / "weights" / "IMDN_x2.pth", "crop": 48,
            "crop_step": 48, "patch": 32, "batch": 2, "iters": 4, "milestones": "'[2]'", "val_every": 2}
    sets = [a for k, v in tiny.items() for a in ("--set", f"vars.{k}={v}")]
    wd = tmp_path / "study"
    assert main(["run", str(STUDY), "--workdir", str(wd), *sets]) == 0
    done = outcomes(capsys.readouterr().out)
    assert len(done) == 16 and set(done.values()) == {"done"}

    assert len(list((wd / "pack" / "sr_pretrained.lmdb").iterdir())) > 0
    last = {}
    for run in RUNS:
        cfg = yaml.safe_load((wd / run / "config.yaml").read_text())
        assert cfg["eco"]["enabled"] == run.startswith("eco") and cfg["train"]["seed"] == int(run[-1])
        assert (cfg["data"]["patch"], cfg["data"]["batch"], cfg["train"]["iters"]) == (32, 2, 4)
        assert cfg["schedule"]["milestones"] == [2] and cfg["val"]["root"] == str(val)
        rows = list(csv.DictReader(open(wd / run / "val.csv", newline="")))
        assert [int(r["step"]) for r in rows] == [2, 4]
        last[run] = float(rows[-1]["psnr"])
        # srprep eval of the last weights measures what the last validation measured
        assert mean_psnr(wd / "eval" / f"{run}.csv") == pytest.approx(last[run], abs=1e-3)
    assert len(set(last.values())) == 6  # ECO changes the run, and so does the seed
    assert mean_psnr(wd / "eval" / "teacher.csv") > float(rows[-1]["bicubic_psnr"])

    # a longer training reruns the six runs and their evaluations, not the data steps
    assert main(["run", str(STUDY), "--workdir", str(wd), *sets, "--set", "vars.iters=6", "--dry-run"]) == 0
    plan = outcomes(capsys.readouterr().out)
    assert {k for k, v in plan.items() if v == "up to date"} == {"data", "centroids", "pack", "teacher_set5"}

    # the summary: per step the paired ECO - vanilla mean, sd and t over the three seeds, from the runs' val.csv
    png = tmp_path / "curves.png"
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_eco_study.py"), "--workdir", str(wd), "--no-run",
           "--png", str(png), *sets]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = {int(r[0]): r for r in (line.strip("|").split(" | ") for line in proc.stdout.splitlines()
                                    if re.match(r"^\| \d+ \|", line))}
    assert sorted(table) == [2, 4]
    for step, row in table.items():
        val = {run: {int(r["step"]): float(r["psnr"]) for r in csv.DictReader(open(wd / run / "val.csv"))}
               for run in RUNS}
        diffs = [val[f"eco_s{k}"][step] - val[f"vanilla_s{k}"][step] for k in range(3)]
        mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
        got_mean, got_sd = (float(x) for x in row[3].split(" ± "))
        assert (got_mean, got_sd) == (pytest.approx(mean, abs=6e-4), pytest.approx(sd, abs=6e-4))
        assert [float(x) for x in row[4].split(", ")] == pytest.approx(diffs, abs=6e-4)
        assert float(row[5].split()[0]) == pytest.approx(mean / (sd / math.sqrt(3)), abs=0.006)
        vanilla = [val[f"vanilla_s{k}"][step] for k in range(3)]
        assert float(row[1].split(" ± ")[0]) == pytest.approx(statistics.fmean(vanilla), abs=6e-4)
    height, width = read_image(png).shape[:2]
    assert width == 820 and height >= 900  # three panels of 820 x 300
