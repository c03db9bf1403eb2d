"""Is srprep's data -> trainer chain aligned the way published networks' data was? Fine-tune a real one and see.

The real IMDN x2 (the reference data's ``weights/IMDN_x2.pth``, Set5 x2 37.996 dB) is fine-tuned at a small
learning rate on B100 sub-images made by srprep exactly as for any training set:

    srprep downsample B100/HR DATA --scale 2          # MATLAB bicubic, uint8 convention (as DIV2K's LR)
    srprep pack DATA PACKED --crop --size 96 --step 48

and, from the same seed and the same patches, on the same data with every LR image shifted by one LR pixel
(content moved one column left, the last column repeated): a deliberate misalignment of HR and LR. If srprep's
LR, patch pairing, flips and float conversion matched what IMDN was trained on, the aligned run has nothing to
unlearn and Set5 stays within a few hundredths of a dB of 37.996, while the shifted run teaches the network
a shift and loses clearly more. Set5 x2 is measured as ``srprep eval`` does (Y, border 2, 8-bit output).

    python benchmarks/bench_finetune_imdn.py                        # 200 steps each, the RESULTS.md figures
    python benchmarks/bench_finetune_imdn.py --steps 50 --every 0 --json out.json     # the slow test's run

Prints a Markdown section on stdout (and the figures as JSON with --json).
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import cpu_name  # noqa: E402
from srprep.cli import main as srprep_main  # noqa: E402
from srprep.evaluate import benchmark_pairs, evaluate_pairs, summarize  # noqa: E402
from srprep.io.images import read_image, write_image  # noqa: E402
from srprep.models import load_pretrained  # noqa: E402
from srprep.train import load_config, train  # noqa: E402
from srprep.train.logs import read_csv  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
PUBLISHED = 37.996  # IMDN x2 on Set5 as srprep eval measures it (tests/models/test_imdn_set5.py)


def srprep(*args) -> None:
    code = srprep_main(["-q", *map(str, args)])
    if code != 0:
        raise SystemExit(f"srprep {' '.join(map(str, args))} failed ({code})")


def shift_left(lr: np.ndarray, pixels: int = 1) -> np.ndarray:
    """(h, w, 3) -> the same size, content moved ``pixels`` columns left, the last column repeated."""
    return np.concatenate([lr[:, pixels:], np.repeat(lr[:, -1:], pixels, axis=1)], axis=1)


def prepare(work: Path, hr_dir: Path, jobs: int) -> dict[str, Path]:
    """The aligned and the shifted training sets, packed by srprep (sub-images 96, step 48)."""
    data = work / "B100"
    srprep("downsample", hr_dir, data, "--scale", 2, "--jobs", jobs)
    shifted = work / "B100_shift"
    (shifted / "X2").mkdir(parents=True, exist_ok=True)
    if not (shifted / "HR").exists():
        (shifted / "HR").symlink_to((data / "HR").resolve())
    for path in sorted((data / "X2").glob("*.png")):
        if not (shifted / "X2" / path.name).is_file():  # kept with --work: the pack below stays up to date
            write_image(shifted / "X2" / path.name, shift_left(read_image(path)))
    packed = {}
    for name, src in (("aligned", data), ("shifted", shifted)):
        packed[name] = work / f"{src.name}_packed"
        srprep("pack", src, packed[name], "--crop", "--size", 96, "--step", 48, "--jobs", jobs)
    return packed


def set5_psnr(model, set5: Path) -> tuple[float, float]:
    scores = summarize(evaluate_pairs(model, benchmark_pairs(set5 / "HR", set5 / "LR_bicubic" / "X2", 2), scale=2))
    return scores["psnr"], scores["ssim"]


def fine_tune(root: Path, run_dir: Path, weights: Path, set5: Path, args) -> dict:
    cfg = load_config(None, [
        f"model.pretrained={weights}", f"data.root={root}", "data.lr=X2", f"data.patch={args.patch}",
        f"data.batch={args.batch}", "data.workers=0", "data.cache=true", f"optim.lr={args.lr}",
        "optim.betas=[0.9, 0.999]", "schedule.name=constant", "loss=[{type: l1, weight: 1.0}]",
        f"train.iters={args.steps}", f"train.log_every={max(args.steps // 10, 1)}", f"train.ckpt_every={args.steps}",
        "train.device=cpu", f"train.cpu_threads={args.threads}", "train.tensorboard=false", f"train.seed={args.seed}",
        f"val.every={args.every or args.steps}", f"val.root={set5}", "val.hr=HR", "val.lr=LR_bicubic/X2",
        "val.crops=0"])
    t0 = time.perf_counter()
    result = train(cfg, run_dir)
    seconds = time.perf_counter() - t0
    val = read_csv(run_dir / "val.csv")  # Set5 after these steps, measured as srprep eval does
    return {"psnr": val[-1]["psnr"], "ssim": val[-1]["ssim"], "seconds": seconds, "steps_per_s": result.steps_per_s,
            "loaded": f"{result.init.loaded}/{result.init.total}", "curve": [(r["step"], r["psnr"]) for r in val]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--every", type=int, default=50, help="steps between Set5 measurements (0: at the end)")
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=48, help="HR patch (LR patch = patch / 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--jobs", type=int, default=2, help="srprep downsample/pack worker processes")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights" / "IMDN_x2.pth")
    parser.add_argument("--b100", type=Path, default=SHARED / "benchmark" / "B100" / "HR")
    parser.add_argument("--set5", type=Path, default=SHARED / "benchmark" / "Set5")
    parser.add_argument("--work", type=Path, default=None, help="keep the data and runs here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(args.threads)
    load = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="srprep-finetune-") as tmp:
        work = args.work or Path(tmp)
        t0 = time.perf_counter()
        packed = prepare(work, args.b100, args.jobs)
        prep_s = time.perf_counter() - t0
        before = set5_psnr(load_pretrained(args.weights)[0], args.set5)
        runs = {name: fine_tune(root, work / f"run_{name}", args.weights, args.set5, args)
                for name, root in packed.items()}

    figures = {"before": {"psnr": before[0], "ssim": before[1]}, **runs, "prep_s": prep_s, "load": load,
               "steps": args.steps, "lr": args.lr, "batch": args.batch, "patch": args.patch, "seed": args.seed}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    drop = {name: before[0] - runs[name]["psnr"] for name in runs}
    print(f"## IMDN x2 fine-tuned on srprep-prepared B100: aligned vs LR shifted by one pixel "
          f"({datetime.date.today()})\n")
    print(f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} threads; "
          f"load average before the run {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}.")
    print(f"Fine-tuning: Adam lr {args.lr:g} (constant), L1, batch {args.batch}, HR patch {args.patch}, "
          f"{args.steps} steps, seed {args.seed}, same patches in both runs; data: 100 B100 images -> "
          f"srprep downsample x2 -> srprep pack --crop --size 96 --step 48 ({prep_s:.0f} s for both sets).\n")
    print("| training LR | Set5 x2 PSNR (dB) | SSIM | change vs before (dB) | tensors loaded | time |")
    print("|---|---|---|---|---|---|")
    print(f"| (before: the published weights) | {before[0]:.3f} | {before[1]:.4f} | | | |")
    for name, label in (("aligned", "srprep's LR"), ("shifted", "LR shifted by 1 LR pixel")):
        r = runs[name]
        print(f"| {label} | {r['psnr']:.3f} | {r['ssim']:.4f} | {-drop[name]:+.3f} | {r['loaded']} | "
              f"{r['seconds']:.0f} s ({r['steps_per_s']:.2f} steps/s) |")
    steps = [step for step, _ in runs["aligned"]["curve"]]
    if len(steps) > 1:
        print("\nSet5 x2 PSNR (dB) during fine-tuning:\n")
        print("| training LR | " + " | ".join(f"step {s}" for s in steps) + " |")
        print("|---|" + "---|" * len(steps))
        for name, label in (("aligned", "srprep's LR"), ("shifted", "shifted by 1 LR pixel")):
            print(f"| {label} | " + " | ".join(f"{p:.3f}" for _, p in runs[name]["curve"]) + " |")


if __name__ == "__main__":
    main()
