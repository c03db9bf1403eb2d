"""MATLAB bicubic on a torch device: exactness against srprep's numpy path and throughput.

Workload: ``srprep/samples/kodak/kodim01.png`` upscaled to ``--size`` (default 2040x1356, DIV2K) with cv2
INTER_CUBIC, downscaled x2, x3, x4 in both conventions (uint8; im2double rounded to uint8 on the device) by
:func:`srprep.ops.imresize_torch.imresize_matlab_torch` on ``--device``. Reference: the numpy path
(:func:`srprep.ops.imresize.imresize_matlab`, bit-exact against MATLAB in the tests). Reports the number of
output bytes that differ (0 is the requirement), the median device time per image (synchronised, after a
warm-up, input already on the device) and the numpy path's time on one CPU thread beside it.

    python benchmarks/bench_resize_device.py --device cuda
    python benchmarks/bench_resize_device.py --size 96x64 --repeats 1      # CPU smoke run
"""
from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from _common import cpu_name  # noqa: E402
from srprep.io.images import read_image  # noqa: E402
from srprep.ops.imresize import imresize_matlab  # noqa: E402
from srprep.ops.imresize_torch import imresize_matlab_torch  # noqa: E402


def timed(fn, repeats: int, sync) -> float:
    fn()  # warm-up (kernels, caches)
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default="2040x1356", help="WxH of the HR image")
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    w, h = (int(v) for v in args.size.split("x"))
    img = cv2.resize(read_image(REPO / "srprep/samples/kodak/kodim01.png"), (w, h), interpolation=cv2.INTER_CUBIC)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous().to(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    lines = ["## MATLAB bicubic on the device (srprep.ops.imresize_torch)", "",
             f"Date {datetime.date.today().isoformat()}; {name}; torch {torch.__version__}; device {device}; "
             f"{w}x{h} uint8 RGB, median of {args.repeats} after a warm-up.", "",
             "| scale | convention | bytes differing from numpy | device ms | numpy ms (1 thread) | numpy / device |",
             "|---:|---|---:|---:|---:|---:|"]
    failed = False
    for s in args.scales:
        for convention, im2double in (("uint8", False), ("im2double", True)):
            def on_device():
                return imresize_matlab_torch(x, 1 / s, im2double=im2double,
                                             out_dtype=torch.uint8 if im2double else None)

            def on_host():
                return imresize_matlab(img, 1 / s, im2double=im2double, out_dtype=np.uint8 if im2double else None,
                                       threads=1)

            ref = on_host()
            out = on_device()[0].permute(1, 2, 0).cpu().numpy()
            diff = int(np.count_nonzero(out != ref)) if out.shape == ref.shape else ref.size
            failed |= diff != 0
            t_dev, t_host = timed(on_device, args.repeats, sync), timed(on_host, args.repeats, lambda: None)
            lines.append(f"| x{s} | {convention} | {diff} | {t_dev * 1e3:.1f} | {t_host * 1e3:.1f} | "
                         f"{t_host / t_dev:.1f}x |")
            print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    if failed:
        sys.exit("bench_resize_device: the device output differs from the numpy reference")


if __name__ == "__main__":
    main()
