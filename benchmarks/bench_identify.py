"""``srprep identify`` on B100 (100 pairs per scale), and the Pillow-exact resize it and ``enlarge`` use.

Part 1, identify: the shared reference B100 (EDSR layout, ``../shared/data/benchmark/B100``), each scale run
three ways side by side: srprep's default (early exit after a band of rows, ``--jobs`` threads), the same
on one thread, and without early exit (every candidate on every whole image: what regenerating with each
library by hand costs). Wall time (``time.perf_counter``) and this process's CPU time, median of
``--repeats`` runs; the verdict is checked to be ``matlab-uint8``, exact.

Part 2, ``pil_resize`` (numpy) against plain Pillow's ``Image.resize`` (C, run in a subprocess from
``<venv>/plain-pillow`` so that pillow-simd stays the imported PIL) and pillow-simd's, bicubic, on a
2040x1356 mosaic of the bundled Kodak crops: median of ``--repeats`` calls each.

Usage::

    .venv/bin/python benchmarks/bench_identify.py --repeats 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from _common import cpu_name  # noqa: E402
from srprep.io import images  # noqa: E402
from srprep.ops.pil_resize import pil_resize  # noqa: E402
from srprep.stages.identify import IdentifyOptions, identify  # noqa: E402

B100 = (REPO / ".." / "shared" / "data" / "benchmark" / "B100").resolve()
PLAIN_PILLOW = Path(sys.prefix) / "plain-pillow"
SIZES = {"x2 down": (678, 1020), "x4 down": (339, 510), "2/3 (enlarge)": (904, 1360)}

_PLAIN = r"""
import sys, time, statistics
sys.path.insert(0, sys.argv[1])
import numpy as np
from PIL import Image
img = Image.fromarray(np.load(sys.argv[2]))
for h, w in [tuple(map(int, s.split("x"))) for s in sys.argv[4:]]:
    t = []
    for _ in range(int(sys.argv[3])):
        t0 = time.perf_counter(); img.resize((w, h), Image.BICUBIC); t.append(time.perf_counter() - t0)
    print(statistics.median(t))
"""


def mosaic() -> np.ndarray:
    kodak = [images.read_image(p) for p in sorted((REPO / "srprep" / "samples" / "kodak").glob("*.png"))]
    tiles = [cv2.resize(k, (510, 678), interpolation=cv2.INTER_CUBIC) for k in kodak]
    return np.concatenate([np.concatenate(tiles[:4], axis=1), np.concatenate(tiles[4:8], axis=1)], axis=0)


def median_time(fn, repeats: int) -> float:
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def bench_identify(repeats: int, jobs: int) -> None:
    ways = [(f"default (early exit, {jobs} threads)", IdentifyOptions(), jobs),
            ("early exit, 1 thread", IdentifyOptions(), 1),
            (f"no early exit, {jobs} threads", IdentifyOptions(sample_rows=0), jobs)]
    print("| scale | run | s (median wall) | CPU s (median) | pairs/s |")
    print("|---|---|---:|---:|---:|")
    for scale in (2, 3, 4):
        for label, opts, j in ways:
            wall, cpu = [], []
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                rep = identify(data=B100, scale=scale, options=opts, jobs=j, progress=False)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                v = rep.verdict
                assert (v.method, v.exact, len(rep.images)) == ("matlab-uint8", True, 100), rep.summary()
            w = statistics.median(wall)
            print(f"| x{scale} | {label} | {w:.1f} | {statistics.median(cpu):.1f} | {100 / w:.1f} |")


def bench_pil(repeats: int) -> None:
    from PIL import Image

    img = mosaic()
    pim = Image.fromarray(img)
    plain = {}
    if (PLAIN_PILLOW / "PIL").is_dir():
        np.save("/tmp/bench_identify_mosaic.npy", img)
        out = subprocess.run([sys.executable, "-c", _PLAIN, str(PLAIN_PILLOW), "/tmp/bench_identify_mosaic.npy",
                              str(repeats)] + [f"{h}x{w}" for h, w in SIZES.values()],
                             capture_output=True, text=True, check=True).stdout.split()
        plain = dict(zip(SIZES, map(float, out)))
        os.remove("/tmp/bench_identify_mosaic.npy")
    print("| 2040x1356 bicubic | pil_resize (numpy, exact) ms | plain Pillow ms | pillow-simd ms "
          "| pil_resize / Pillow |")
    print("|---|---:|---:|---:|---:|")
    for name, (h, w) in SIZES.items():
        ours = median_time(lambda: pil_resize(img, (h, w)), repeats)
        simd = median_time(lambda: pim.resize((w, h), Image.BICUBIC), repeats)
        ref = plain.get(name)
        ratio = f"{ours / ref:.1f}" if ref else "-"
        ref_ms = f"{ref * 1000:.0f}" if ref else "(not installed)"
        print(f"| {name} | {ours * 1000:.0f} | {ref_ms} | {simd * 1000:.1f} | {ratio} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-identify", action="store_true")
    args = ap.parse_args()
    print(f"{cpu_name()}, {os.cpu_count()} cores; load average at start {os.getloadavg()}")
    if not args.skip_identify:
        bench_identify(args.repeats, args.jobs)
    bench_pil(args.repeats)
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
