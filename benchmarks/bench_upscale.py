"""Throughput of srprep.infer per architecture and precision, and the PSNR cost of reduced precision.

Measures output megapixels per second for EDSR-baseline x2, IMDN x2, MSRResNet x4 and RRDBNet x4 (random
weights: speed does not depend on the values) on one 256x256 LR image, for every precision the device offers
(CPU: fp32, bf16; CUDA: fp32, tf32, bf16, fp16). Then runs the real IMDN x2 weights on Set5 x2 in each
precision and reports mean PSNR/SSIM (Y, border 2) and the difference to fp32.

    python benchmarks/bench_upscale.py                       # CPU
    python benchmarks/bench_upscale.py --device cuda         # GPU
    python benchmarks/bench_upscale.py --archs imdn --size 128

Prints a Markdown section (suitable for benchmarks/RESULTS.md) on stdout.
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from _common import cpu_name

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from srprep.evaluate import benchmark_pairs, evaluate_pairs, summarize  # noqa: E402
from srprep.infer import upscale_tensor  # noqa: E402
from srprep.models import count_parameters, create_model, load_pretrained  # noqa: E402

ARCHS = {  # label -> (registry name, scale)
    "edsr_baseline_x2": ("edsr", 2),
    "imdn_x2": ("imdn", 2),
    "msrresnet_x4": ("msrresnet", 4),
    "rrdbnet_x4": ("rrdbnet", 4),
}
DEFAULT_DATA = REPO / "tests" / "data"


def device_precisions(device: torch.device) -> list[str]:
    return ["fp32", "tf32", "bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]


def time_model(model, scale, size, precision, device, min_time, max_runs) -> tuple[float, int]:
    """Median seconds per image over timed runs, after warm-up, and the number of timed runs."""
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    # Warm-up (kernel / primitive selection, allocator). On CPU a full-size run can take tens of seconds,
    # so warm up at full size only when a small run predicts it to be cheap.
    small = x[..., :64, :64]
    start = time.perf_counter()
    upscale_tensor(model, small, scale=scale, precision=precision, device=device)
    predicted = (time.perf_counter() - start) * (size / 64) ** 2
    if device.type == "cuda" or predicted < 5.0:
        upscale_tensor(model, x, scale=scale, precision=precision, device=device)
    times: list[float] = []
    while len(times) < max_runs and (not times or sum(times) < min_time):
        start = time.perf_counter()
        upscale_tensor(model, x, scale=scale, precision=precision, device=device)  # output on CPU: synced
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    ap.add_argument("--precisions", nargs="+", default=None)
    ap.add_argument("--size", type=int, default=256, help="LR side length")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--min-time", type=float, default=3.0, help="keep timing until this many seconds")
    ap.add_argument("--max-runs", type=int, default=3)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="reference data root (Set5, IMDN_x2.pth)")
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    args = ap.parse_args(argv)

    load_start = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    precisions = args.precisions or device_precisions(device)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()

    lines = [
        "## Upscale (srprep.infer)",
        "",
        f"Date {args.date}; {machine}; {torch.get_num_threads()} CPU threads; torch {torch.__version__}; "
        f"device {device}. LR input {args.size}x{args.size}, batch 1, whole image (no tiling), random weights; "
        "throughput = output megapixels per second (median of timed runs after a warm-up).",
        "",
        "| network | params | precision | s / image | output MP/s | runs |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for label in args.archs:
        name, scale = ARCHS[label]
        torch.manual_seed(0)
        model = create_model(name, scale=scale).to(device).eval()
        params = count_parameters(model)
        for precision in precisions:
            sec, runs = time_model(model, scale, args.size, precision, device, args.min_time, args.max_runs)
            mp = (args.size * scale) ** 2 / 1e6
            lines.append(f"| {label} | {params:,} | {precision} | {sec:.3f} | {mp / sec:.2f} | {runs} |")
            print(lines[-1], file=sys.stderr, flush=True)
        del model

    weights = args.data / "weights" / "IMDN_x2.pth"
    set5 = args.data / "benchmark" / "Set5"
    if weights.is_file() and set5.is_dir():
        lines += ["", "IMDN x2 (real weights) on Set5 x2, Y channel, border 2, uint8 output:", "",
                  "| precision | PSNR (dB) | SSIM | ΔPSNR vs fp32 | time (s) |", "|---|---:|---:|---:|---:|"]
        model, _ = load_pretrained(weights, device=device)
        ref = None
        for precision in ["fp32"] + [p for p in precisions if p != "fp32"]:  # fp32 first: the reference
            start = time.perf_counter()
            res = summarize(evaluate_pairs(
                model, benchmark_pairs(set5 / "HR", set5 / "LR_bicubic" / "X2", 2), scale=2,
                precision=precision, device=device))
            sec = time.perf_counter() - start
            ref = res["psnr"] if ref is None else ref
            lines.append(f"| {precision} | {res['psnr']:.4f} | {res['ssim']:.5f} | "
                         f"{res['psnr'] - ref:+.4f} | {sec:.1f} |")
            print(lines[-1], file=sys.stderr, flush=True)
    else:
        lines += ["", f"(Set5 / IMDN weights not found under {args.data}: PSNR check skipped)"]
    if hasattr(os, "getloadavg"):
        # The timings are only as good as the machine was quiet: record its load.
        lines += ["", f"Load average at start / end: {load_start} / {os.getloadavg()[0]:.2f} "
                      f"({os.cpu_count()} logical CPUs)."]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
