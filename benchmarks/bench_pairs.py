"""Pair checker throughput: ``srprep pairs check`` on DIV2K-sized (2040x1356) pairs, 1 and 2 jobs.

Data: ``--pairs`` distinct 2040x1356 HR photos, each a 4x2 mosaic of the eight bundled Kodak crops (each
upscaled to 510x678 with cv2 INTER_CUBIC, the mosaic order rotated per photo so that no two HR images are
the same), written as PNG (level 1) in the AIM layout with their LR made by ``imresize_matlab`` (x2: 1020x678;
x4: 510x339). Half of the LR images are damaged (moved by 3 HR pixels), so both code paths of the report
are exercised; the measurement costs the same either way.

``--damaged-every K`` damages every K-th pair instead (an AIM2020 set has about 3 % damaged pairs).

Modes (``--modes``): ``screen`` (the default measurement), ``all-tiles`` (``--all-tiles``: every tile of every
pair), ``floor`` (what any check must do: decode HR and LR and bring the HR to the LR grid, ``downsample_hr``;
one process), and with ``--previous DIR`` ``previous`` (``pairs_check`` of the srprep in another checkout, timed
inside a subprocess, so its start-up is not counted).

A run is ``pairs_check`` from scratch (``force=True``: every pair decoded and measured; report CSV and
histogram written at the end), timed end to end with ``time.perf_counter``; pairs/s = pairs / seconds; the
median of ``--repeats`` runs is reported. With ``--breakdown`` the time of each part of one measurement is
printed as well (single process).

Usage::

    .venv/bin/python benchmarks/bench_pairs.py --pairs 8 --repeats 3
"""
from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from srprep.io import images  # noqa: E402
from srprep.ops.align import channel_gains, phase_correlation, tile_shifts, to_gray  # noqa: E402
from srprep.ops.imresize import imresize_matlab  # noqa: E402
from srprep.stages.pairs import MeasureOptions, downsample_hr, measure_pair, pairs_check  # noqa: E402

SAMPLES = REPO / "srprep" / "samples"
BIG_HW = (1356, 2040)


def mosaics(n: int) -> list[np.ndarray]:
    """n distinct 2040x1356 HR photos from the Kodak samples."""
    kodak = [images.read_image(p) for p in sorted((SAMPLES / "kodak").glob("*.png"))]
    th, tw = BIG_HW[0] // 2, BIG_HW[1] // 4
    tiles = [cv2.resize(k, (tw, th), interpolation=cv2.INTER_CUBIC) for k in kodak]
    out = []
    for i in range(n):
        t = tiles[i % 8:] + tiles[:i % 8]
        if i >= 8:
            t = t[::-1]
        out.append(np.concatenate([np.concatenate(t[:4], axis=1), np.concatenate(t[4:8], axis=1)], axis=0))
    return out


def make_dataset(root: Path, hrs: list[np.ndarray], scale: int, damaged_every: int = 2) -> Path:
    src = root / f"X{scale}"
    for i, hr in enumerate(hrs):
        moved = np.ascontiguousarray(np.pad(hr, ((3, 0), (0, 0), (0, 0)), mode="edge")[:-3])
        seen = hr if i % damaged_every != damaged_every - 1 else moved
        images.write_image(src / f"HR/{i:06d}.png", hr)
        images.write_image(src / f"LR/{i:06d}.png", imresize_matlab(seen, 1 / scale))
    return src


def breakdown(hr: np.ndarray, scale: int) -> dict[str, float]:
    lr = imresize_matlab(hr, 1 / scale)
    png_hr, png_lr = images.encode_image(hr), images.encode_image(lr)
    t = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        r = fn()
        t[name] = time.perf_counter() - t0
        return r

    timed("decode HR + LR (PNG)", lambda: (images.decode_image(png_hr, "hr"), images.decode_image(png_lr, "lr")))
    d = timed("downsample HR (imresize_matlab, double)", lambda: downsample_hr(hr, scale))
    gd, gl = to_gray(d), to_gray(lr.astype(np.float64))
    timed("global phase correlation", lambda: phase_correlation(gd, gl))
    timed("tile shifts (64 px, stride 32)", lambda: tile_shifts(gd, gl, tile=64, upsample=4))
    timed("colour gains", lambda: channel_gains(d, lr.astype(np.float64), border=scale))
    timed("measure_pair total (no decode)", lambda: measure_pair(hr, lr, scale))
    return t


_PREVIOUS = """
import sys, time
sys.path.insert(0, sys.argv[1])
from srprep.stages.pairs import pairs_check
t0 = time.perf_counter()
pairs_check(sys.argv[2], int(sys.argv[3]), sys.argv[4], jobs=int(sys.argv[5]), force=True, progress=False)
print(time.perf_counter() - t0)
"""


def run_mode(mode: str, src: Path, scale: int, work: Path, jobs: int, args, damaged: int) -> float:
    """Seconds for one run of ``mode`` on the dataset ``src``."""
    if mode == "previous":
        out = subprocess.run([sys.executable, "-c", _PREVIOUS, str(args.previous.resolve()), str(src), str(scale),
                              str(work), str(jobs)], capture_output=True, text=True, check=True, cwd=work.parent)
        return float(out.stdout.split()[-1])
    t0 = time.perf_counter()
    if mode == "floor":
        for hr_file in sorted((src / "HR").glob("*.png")):
            hr, _ = images.read_image(hr_file), images.read_image(src / "LR" / hr_file.name)
            downsample_hr(hr, scale)
        return time.perf_counter() - t0
    rep = pairs_check(src, scale, work, hist=work / "hist.png", jobs=jobs, force=True, progress=False,
                      options=MeasureOptions(screen=mode == "screen"))
    sec = time.perf_counter() - t0
    assert rep.step.processed == args.pairs and len(rep.flagged) == damaged, rep.summary()
    return sec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--breakdown", action="store_true")
    ap.add_argument("--damaged-every", type=int, default=2)
    ap.add_argument("--modes", nargs="+", default=["screen"], choices=["screen", "all-tiles", "floor", "previous"])
    ap.add_argument("--previous", type=Path, default=None, help="another checkout (mode previous)")
    args = ap.parse_args()

    cv2.setNumThreads(1)
    print(f"python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}, "
          f"{platform.processor() or platform.machine()}")
    hrs = mosaics(args.pairs)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            src = make_dataset(Path(tmp), hrs, scale, args.damaged_every)
            if args.breakdown:
                for name, sec in breakdown(hrs[0], scale).items():
                    print(f"x{scale} {name}: {sec * 1000:.0f} ms")
            damaged = sum(1 for i in range(args.pairs) if i % args.damaged_every == args.damaged_every - 1)
            for jobs in args.jobs:
                for mode in args.modes:
                    if mode == "floor" and jobs != 1:
                        continue
                    times = []
                    for r in range(args.repeats):
                        work = Path(tmp) / f"work_x{scale}_j{jobs}_{mode}_{r}"
                        times.append(run_mode(mode, src, scale, work, jobs, args, damaged))
                    med = statistics.median(times)
                    rows.append((scale, mode, jobs, med, args.pairs / med, min(times), max(times)))
                    print(rows[-1], f"load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}", flush=True)
    print()
    print("| scale | HR -> LR | mode | jobs | pairs | s per run (median) | pairs/s | runs (min-max s) | / floor |")
    print("|---|---|---|---:|---:|---:|---:|---|---:|")
    floors = {scale: med for scale, mode, jobs, med, *_ in rows if mode == "floor"}
    for scale, mode, jobs, med, rate, lo, hi in rows:
        lr = f"{BIG_HW[1] // scale}x{BIG_HW[0] // scale}"
        vs = f"{med / floors[scale]:.2f}" if scale in floors and jobs == 1 else ""
        print(f"| x{scale} | 2040x1356 -> {lr} | {mode} | {jobs} | {args.pairs} | {med:.2f} | {rate:.2f} | "
              f"{lo:.2f}-{hi:.2f} | {vs} |")


if __name__ == "__main__":
    main()
