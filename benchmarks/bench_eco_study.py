"""ECO vs vanilla training over several seeds: Set5 x2 PSNR mean +- spread at each validation point, and curves.

Runs ``srprep/pipelines/eco_study_b100_x2.yaml`` with ``srprep run`` in ``--workdir`` (cached: finished steps are
skipped, so a second call only summarises), then reads what the steps wrote:

* every training run's ``config.yaml`` (ECO on or off, seed) and ``val.csv`` (Set5 PSNR/SSIM on the Y channel,
  border = scale, and bicubic's on the same images, at each validation step);
* the ``srprep eval`` CSV of each run's last weights (must equal the run's last validation) and of the teacher.

For each method and validation step it prints the mean, the sample standard deviation and the range over the
seeds, then the paired difference ECO - vanilla (runs of one seed start from the same weights and see the same
patches) with a t statistic over the seeds, so that an effect can be told from seed noise. ``--png`` draws the
mean curves, every run and the per-seed differences with srprep's figures (matplotlib when installed).

    python benchmarks/bench_eco_study.py --workdir runs/eco_study_b100_x2 --png eco_study.png      # CPU scale
    python benchmarks/bench_eco_study.py --workdir runs/eco_study_b100_x2 --no-run                 # summary only
    python benchmarks/bench_eco_study.py --workdir runs/eco_div2k --set vars.device=cuda ...       # see the pipeline

``--set`` options are passed to ``srprep run`` (the pipeline file lists the full-scale GPU settings). Run from
the repository root (the pipeline's default data paths are relative to it). Prints a Markdown section.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import cpu_name  # noqa: E402
from srprep.pipeline import load_pipeline  # noqa: E402

PIPELINE = REPO / "srprep" / "pipelines" / "eco_study_b100_x2.yaml"
# two-sided 5 % critical values of Student's t for n - 1 degrees of freedom (n seeds)
T_CRIT = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def run_pipeline(pipeline: Path, workdir: Path, sets: list[str]) -> tuple[float, float]:
    """``srprep run`` the study; returns (wall seconds, CPU seconds of the command and its children)."""
    cmd = [sys.executable, "-m", "srprep", "run", str(pipeline), "--workdir", str(workdir)]
    for s in sets:
        cmd += ["--set", s]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # its progress goes to stderr: stdout is the Markdown section
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=sys.stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - t0, cpu


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def eval_mean_psnr(path: Path) -> float:
    """The ``(mean)`` row's PSNR of an ``srprep eval --csv`` file (one dataset)."""
    for row in read_rows(path):
        if row["image"] == "(mean)":
            return float(row["psnr"])
    raise ValueError(f"{path}: no (mean) row")


def collect(pipe) -> tuple[list[dict], dict[str, float]]:
    """Every training run of the pipeline (method, seed, validation rows, wall seconds, eval PSNR of its last
    weights) and the PSNR of the other eval steps by step name."""
    state_path = pipe.state_path
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"steps": {}}
    runs, evals = [], {}
    for name, step in pipe.steps.items():
        if step.command == "train" and (step.out / "val.csv").is_file():  # a run not started yet is left out
            cfg = yaml.safe_load((step.out / "config.yaml").read_text())
            val = [{k: float(v) for k, v in r.items()} for r in read_rows(step.out / "val.csv")]
            if not val:  # started, not validated yet
                continue
            runs.append({"name": name, "method": "ECO" if cfg["eco"]["enabled"] else "vanilla",
                         "seed": int(cfg["train"]["seed"]), "val": val, "dir": step.out,
                         "wall_s": state["steps"].get(name, {}).get("elapsed_s", math.nan),
                         "steps": int(cfg["train"]["iters"]), "batch": int(cfg["data"]["batch"]),
                         "patch": int(cfg["data"]["patch"]), "model": cfg["model"]["name"],
                         "scale": int(cfg["model"]["scale"])})
    for name, step in pipe.steps.items():
        if step.command == "eval" and step.out.is_file():
            evals[name] = eval_mean_psnr(step.out)
            for run in runs:
                if str(step.options.get("model", "")).startswith(str(run["dir"]) + os.sep):
                    run["eval_psnr"] = evals[name]
    return runs, evals


def stats(values: list[float]) -> dict:
    """n, mean, sample standard deviation (ddof 1; NaN for one value), min, max."""
    n = len(values)
    sd = statistics.stdev(values) if n > 1 else math.nan
    return {"n": n, "mean": statistics.fmean(values), "sd": sd, "min": min(values), "max": max(values)}


def summarise(runs: list[dict]) -> tuple[list[int], dict, dict]:
    """Per (method, step): stats of the PSNR over seeds; per step: stats of the paired ECO - vanilla difference
    (seeds present in both methods) and its t statistic."""
    steps = sorted({int(r["step"]) for run in runs for r in run["val"]})
    psnr = {(run["method"], run["seed"], int(r["step"])): r["psnr"] for run in runs for r in run["val"]}
    per_method = {}
    for method in ("vanilla", "ECO"):
        for step in steps:
            vals = [v for (m, _, s), v in psnr.items() if m == method and s == step]
            if vals:
                per_method[method, step] = stats(vals)
    seeds = sorted({run["seed"] for run in runs})
    paired = {}
    for step in steps:
        diffs = {k: psnr["ECO", k, step] - psnr["vanilla", k, step] for k in seeds
                 if ("ECO", k, step) in psnr and ("vanilla", k, step) in psnr}
        if diffs:
            st = stats(list(diffs.values()))
            st["t"] = st["mean"] / (st["sd"] / math.sqrt(st["n"])) if st["n"] > 1 and st["sd"] > 0 else math.nan
            st["diffs"] = diffs
            paired[step] = st
    return steps, per_method, paired


def plot(runs: list[dict], steps: list[int], per_method: dict, paired: dict, bicubic: float, path: Path) -> None:
    """Three panels (srprep's figures: matplotlib when installed): the mean PSNR of each method, every run, and
    ECO - vanilla per seed with its mean; bicubic and 0 dashed."""
    from srprep.io.images import write_image
    from srprep.ops.figures import Panel, line_panels

    scale = runs[0]["scale"]
    means = {f"{m}, mean of {per_method[m, steps[0]]['n']}": (steps, [per_method[m, s]["mean"] for s in steps])
             for m in ("vanilla", "ECO") if (m, steps[0]) in per_method}
    each = {f"{r['method']} seed {r['seed']}": ([int(v["step"]) for v in r["val"]], [v["psnr"] for v in r["val"]])
            for r in sorted(runs, key=lambda r: (r["method"] != "vanilla", r["seed"]))}
    seeds = sorted({run["seed"] for run in runs})
    diff = {f"seed {k}": (steps, [paired[s]["diffs"].get(k, math.nan) if s in paired else math.nan for s in steps])
            for k in seeds}
    diff["mean"] = (steps, [paired[s]["mean"] if s in paired else math.nan for s in steps])
    title = f"Set5 x{scale} PSNR (Y, border {scale}) during training"
    panels = [Panel(means, title=title + ": mean over seeds", xlabel="step", ylabel="dB", hlines={"bicubic": bicubic}),
              Panel(each, title=title + ": every run", xlabel="step", ylabel="dB", hlines={"bicubic": bicubic}),
              Panel(diff, title="ECO - vanilla, same seed (same initial weights and patches)", xlabel="step",
                    ylabel="dB", hlines={"no difference": 0.0})]
    write_image(path, line_panels(panels, width=820, panel_height=300))


def report(runs, evals, steps, per_method, paired, *, teacher_step: str, wall: float, cpu: float, load: tuple,
           date: str, command: str) -> str:
    first = runs[0]
    bicubic = first["val"][0]["bicubic_psnr"]
    teacher = evals.get(teacher_step, math.nan)
    lines = [f"Date {date}. Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, shared with other work "
             f"(load average {load[0]:.1f} at the start, {load[1]:.1f} at the end). Command: `{command}`.",
             "",
             f"{len(runs)} runs: {first['model']} x{first['scale']}, {first['steps']} steps of {first['batch']} x "
             f"{first['patch']}x{first['patch']} HR patches each; per seed the vanilla and the ECO run start from "
             f"the same weights and draw the same patches. Validation PSNR (Y, border {first['scale']}) at each "
             f"validation step; bicubic {bicubic:.3f} dB, the teacher ({teacher_step}) {teacher:.3f} dB.", "",
             "| step | vanilla mean ± sd (min–max) | ECO mean ± sd (min–max) | ECO − vanilla, paired: mean ± sd "
             "| per seed | t (5 % two-sided crit.) |", "|---:|---|---|---|---|---|"]
    for s in steps:
        cells = []
        for m in ("vanilla", "ECO"):
            st = per_method.get((m, s))
            cells.append(f"{st['mean']:.3f} ± {st['sd']:.3f} ({st['min']:.3f}–{st['max']:.3f})" if st else "—")
        p = paired.get(s)
        if p:
            crit = T_CRIT.get(p["n"] - 1, math.nan)
            cells += [f"{p['mean']:+.3f} ± {p['sd']:.3f}", ", ".join(f"{d:+.3f}" for d in p["diffs"].values()),
                      f"{p['t']:+.2f} ({crit:.2f})"]
        else:
            cells += ["—", "—", "—"]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "| run | seed | last val PSNR | srprep eval of last.pt | best PSNR (step) | wall s |",
              "|---|---:|---:|---:|---:|---:|"]
    for run in sorted(runs, key=lambda r: (r["method"] != "vanilla", r["seed"])):
        last = run["val"][-1]
        best = max(run["val"], key=lambda r: r["psnr"])
        lines.append(f"| {run['name']} | {run['seed']} | {last['psnr']:.3f} | {run.get('eval_psnr', math.nan):.3f} "
                     f"| {best['psnr']:.3f} ({int(best['step'])}) | {run['wall_s']:.0f} |")
    if wall == wall:
        lines += ["", f"This invocation: {wall:.0f} s wall, {cpu:.0f} s CPU (the steps it ran)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pipeline", type=Path, default=PIPELINE)
    ap.add_argument("--workdir", type=Path, required=True, help="the study's output folder (srprep run --workdir)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="STEP.OPTION=VALUE",
                    help="passed to srprep run (repeatable), e.g. vars.device=cuda")
    ap.add_argument("--no-run", action="store_true", help="only summarise what the workdir holds")
    ap.add_argument("--teacher-step", default="teacher_set5", help="the eval step of the teacher")
    ap.add_argument("--png", type=Path, help="write the curves here")
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    args = ap.parse_args(argv)
    workdir = args.workdir.resolve()
    load0 = os.getloadavg()[0]
    wall = cpu = math.nan
    if not args.no_run:
        wall, cpu = run_pipeline(args.pipeline, workdir, args.sets)
    pipe = load_pipeline(args.pipeline, workdir=workdir, overrides=args.sets)
    runs, evals = collect(pipe)
    if not runs:
        raise SystemExit(f"{workdir}: no training run of {args.pipeline.name} has started yet")
    steps, per_method, paired = summarise(runs)
    command = " ".join(["python benchmarks/bench_eco_study.py", *sys.argv[1:]] if argv is None else argv)
    n_seeds = len({run["seed"] for run in runs})
    print(f"### ECO vs vanilla, {n_seeds} seed{'s' if n_seeds > 1 else ''}\n")
    print(report(runs, evals, steps, per_method, paired, teacher_step=args.teacher_step, wall=wall, cpu=cpu,
                 load=(load0, os.getloadavg()[0]), date=args.date, command=command))
    if args.png:
        plot(runs, steps, per_method, paired, runs[0]["val"][0]["bicubic_psnr"], args.png)
        print(f"\n![ECO vs vanilla]({args.png})")


if __name__ == "__main__":
    main()
