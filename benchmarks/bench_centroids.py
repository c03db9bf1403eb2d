"""Throughput of ``srprep centroids`` end to end (decode, network, rounding, bicubic, PNG encode), GPU
utilisation while it runs, and what reduced precision does to the centroids.

Builds a small dataset of DIV2K-sized images (HR 2040x1356, LR 1020x678 by default on CUDA; a mosaic of the
bundled Kodak photos, so the content is natural), saves an EDSR checkpoint with random weights (speed does not
depend on the values), then runs :func:`srprep.stages.centroids.centroids` once per precision after a
one-image warm-up. Reports images/s (step time, model already loaded), the mean GPU utilisation sampled every
0.25 s during the run (``torch.cuda.utilization``, else ``nvidia-smi``), and for each reduced precision the
PSNR of its sr_pretrained / lr_pretrained against the fp32 ones and the fraction of values within one 8-bit
level.

    python benchmarks/bench_centroids.py --device cuda                      # EDSR paper x2, fp32/tf32/bf16
    python benchmarks/bench_centroids.py --device cuda --batch 2 --images 16
    python benchmarks/bench_centroids.py                                    # CPU: EDSR baseline, 2 small images
    python benchmarks/bench_centroids.py --model tests/data/weights/IMDN_x2.pth   # real weights

Prints a Markdown section (for benchmarks/RESULTS.md) on stdout; progress on stderr.
"""
from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
import torch
from _common import cpu_name

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from srprep.io.images import read_image, write_image  # noqa: E402
from srprep.models import count_parameters, create_model, save_checkpoint  # noqa: E402
from srprep.ops.imresize import imresize_matlab  # noqa: E402
from srprep.stages.centroids import centroids  # noqa: E402
from srprep.stages.network import resolve_devices  # noqa: E402


def mosaic(width: int, height: int, seed: int) -> np.ndarray:
    """An HR image of natural content: the bundled Kodak crops, resized into a 4x2 grid, shuffled per seed."""
    photos = [read_image(p) for p in sorted((REPO / "srprep/samples/kodak").glob("*.png"))]
    order = np.random.default_rng(seed).permutation(len(photos))
    tw, th = -(-width // 4), -(-height // 2)
    tiles = [cv2.resize(photos[i], (tw, th), interpolation=cv2.INTER_CUBIC) for i in order[:8]]
    grid = np.concatenate([np.concatenate(tiles[r * 4:(r + 1) * 4], axis=1) for r in range(2)], axis=0)
    return np.ascontiguousarray(grid[:height, :width])


def make_dataset(root: Path, n: int, width: int, height: int, scale: int) -> None:
    for i in range(n):
        hr = mosaic(width, height, i)
        write_image(root / "HR" / f"{i:04d}.png", hr)
        write_image(root / f"X{scale}" / f"{i:04d}x{scale}.png", imresize_matlab(hr, 1 / scale))


class UtilisationSampler:
    """Samples GPU utilisation (%) of the given CUDA devices every ``period`` seconds in a thread."""

    def __init__(self, devices: list[str], period: float = 0.25):
        self.indices = [torch.device(d).index or 0 for d in devices]
        self.period = period
        self.samples: list[float] = []
        self.source = "n/a"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> float | None:
        try:
            vals = [float(torch.cuda.utilization(i)) for i in self.indices]  # needs pynvml
            self.source = "torch.cuda.utilization"
            return statistics.mean(vals)
        except Exception:  # noqa: BLE001 - no NVML binding: ask the driver's tool
            pass
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=index,utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5, check=True).stdout
            vals = [float(u) for idx, u in (line.split(",") for line in out.strip().splitlines())
                    if int(idx) in self.indices]
            self.source = "nvidia-smi"
            return statistics.mean(vals) if vals else None
        except (OSError, subprocess.SubprocessError, ValueError):
            return None

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            v = self._read()
            if v is not None:
                self.samples.append(v)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def mean(self) -> str:
        return f"{statistics.mean(self.samples):.0f} %" if self.samples else "n/a"


def compare(out_a: Path, out_b: Path, field: str) -> tuple[float, float]:
    """PSNR (RGB, all pixels) of b against a over every image of a field, and the fraction within one level."""
    se, count, near = 0.0, 0, 0
    for pa in sorted((out_a / field).glob("*.png")):
        a = read_image(pa).astype(np.int32)
        b = read_image(out_b / field / pa.name).astype(np.int32)
        d = a - b
        se += float((d.astype(np.float64) ** 2).sum())
        count += d.size
        near += int((np.abs(d) <= 1).sum())
    mse = se / count
    return (float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)), near / count


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda (every GPU), cuda:N")
    ap.add_argument("--precisions", nargs="+", default=None, help="default: fp32 tf32 bf16 (CUDA), fp32 bf16 (CPU)")
    ap.add_argument("--images", type=int, default=None, help="timed images (default: 8 on CUDA, 2 on CPU)")
    ap.add_argument("--hr-size", default=None, help="WxH of the HR images (default: 2040x1356 CUDA, 256x256 CPU)")
    ap.add_argument("--arch", default=None, help="random-weight network (default: edsr_paper CUDA, edsr_baseline CPU)")
    ap.add_argument("--model", type=Path, default=None, help="a real checkpoint instead of random weights")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--tile", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--jobs", type=int, default=1,
                    help="CPU worker processes (default 1: torch's threads use the cores, and no worker start-up "
                         "is timed)")
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    ap.add_argument("--keep", type=Path, default=None, help="keep the dataset and outputs here")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    devices = resolve_devices(args.device)
    cuda = devices[0].startswith("cuda")
    precisions = args.precisions or (["fp32", "tf32", "bf16"] if cuda else ["fp32", "bf16"])
    n = args.images or (8 if cuda else 2)
    width, height = map(int, (args.hr_size or ("2040x1356" if cuda else "256x256")).split("x"))
    machine = (", ".join(sorted({torch.cuda.get_device_name(d) for d in devices})) + f" x{len(devices)}"
               if cuda else f"{cpu_name()}, {os.cpu_count()} logical CPUs")
    load_start = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"

    work = Path(tempfile.mkdtemp(prefix="bench_centroids_")) if args.keep is None else args.keep
    try:
        print(f"making {n}+1 images of {width}x{height} in {work} ...", file=sys.stderr, flush=True)
        make_dataset(work / "data", n, width, height, args.scale)
        make_dataset(work / "warm", 1, width, height, args.scale)
        if args.model is None:
            arch = args.arch or ("edsr_paper" if cuda else "edsr_baseline")
            torch.manual_seed(0)
            net = create_model(arch, scale=args.scale)
            label = f"{arch} x{args.scale}, random weights, {count_parameters(net):,} parameters"
            model_path = save_checkpoint(net, work / f"{arch}_x{args.scale}.pth", arch, args.scale)
            del net
        else:
            model_path, label = args.model, f"{args.model.name} (real weights)"

        lines = [
            "## ECO centroids (srprep centroids)",
            "",
            f"Date {args.date}. Machine: {machine}; torch {torch.__version__}, {torch.get_num_threads()} CPU "
            f"threads; device {','.join(devices)}. Command: `benchmarks/bench_centroids.py "
            f"{' '.join(argv if argv is not None else sys.argv[1:])}`. Workload: {n} images, HR {width}x{height} "
            f"(LR {width // args.scale}x{height // args.scale}), {label}; whole images"
            f"{'' if args.tile is None else f', tile {args.tile}'}, batch {args.batch}, uint8 store, uint8 "
            "convention. images/s = images / step time (decode + network + rounding + bicubic + 2 PNG encodes; "
            "model already loaded, after a one-image warm-up).",
            "",
            "| precision | images/s | s / image | GPU utilisation (mean) |",
            "|---|---:|---:|---:|",
        ]
        outs = {}
        for p in precisions:
            kw = dict(precision=p, device=args.device, batch=args.batch, tile=args.tile, jobs=args.jobs,
                      progress=False, force=True)
            centroids(work / "warm", model_path, out=work / f"warm_{p}", **kw)
            sampler = UtilisationSampler(devices) if cuda else None
            if sampler is not None:
                sampler.__enter__()
            try:
                rep = centroids(work / "data", model_path, out=work / f"out_{p}", **kw)
            finally:
                if sampler is not None:
                    sampler.__exit__()
            sec = rep.step.elapsed
            outs[p] = work / f"out_{p}"
            util = sampler.mean() if sampler is not None else "(CPU)"
            lines.append(f"| {p} | {n / sec:.3f} | {sec / n:.3f} | {util} |")
            print(lines[-1], file=sys.stderr, flush=True)

        if "fp32" in outs and len(outs) > 1:
            lines += ["", "Centroids in reduced precision against fp32 (all pixels, RGB; within 1 = |diff| <= 1 "
                      "level):", "",
                      "| precision | sr_pretrained PSNR (dB) | within 1 | lr_pretrained PSNR (dB) | within 1 |",
                      "|---|---:|---:|---:|---:|"]
            for p, out in outs.items():
                if p == "fp32":
                    continue
                sp, sn = compare(outs["fp32"], out, "sr_pretrained")
                lp, ln = compare(outs["fp32"], out, "lr_pretrained")
                lines.append(f"| {p} | {sp:.2f} | {100 * sn:.3f} % | {lp:.2f} | {100 * ln:.3f} % |")
        if hasattr(os, "getloadavg"):
            lines += ["", f"Load average at start / end: {load_start} / {os.getloadavg()[0]:.2f}."]
        if cuda and sampler is not None:
            lines += [f"GPU utilisation source: {sampler.source}."]
        print("\n".join(lines))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
