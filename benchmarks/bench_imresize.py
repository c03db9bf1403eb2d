"""MATLAB bicubic downscaling: srprep (numpy and torch) against BasicSR's and bicubic-pytorch's imresize.

Workload: one 2040x1356 RGB uint8 image (DIV2K size), ``srprep/samples/kodak/kodim01.png`` upscaled with
cv2 INTER_CUBIC, downscaled x2 and x4. Every row goes from a uint8 image to a uint8 LR image, as a data
set script does, and includes the conversions the implementation needs:

* srprep, uint8 convention: ``imresize_matlab(img, 1/s, threads=T)`` (the compiled kernel), T = 1 and
  ``--threads``;
* srprep, im2double: ``imresize_matlab(img, 1/s, im2double=True, out_dtype=np.uint8, threads=T)``, and once
  as ``to_uint8`` of the float64 result;
* srprep's portable path (the compiled kernel switched off: OpenCV/numpy), both conventions;
* srprep torch (CPU), both conventions, on a (1, 3, H, W) uint8 tensor;
* BasicSR 1.4.2 ``basicsr.utils.matlab_functions.imresize`` on ``img/255`` (float32), then
  ``round(x*255)`` clipped to uint8 (BasicSR's own scripts);
* bicubic-pytorch 0.1.2.1 ``imresize`` on the (1, 3, H, W) uint8 tensor (it computes in float32 and rounds
  and clamps the output itself).

Each row reports the median time of ``--repeats`` runs (the implementations take turns within a repeat so
that load from other processes hits them alike), the ratio baseline/srprep, and how many output bytes
equal srprep's uint8-convention and im2double outputs (srprep's single-thread outputs are the references
here: the tests prove them bit-exact against MATLAB's Set5 files).

The baselines are not installed into the project environment (BasicSR would pull torchvision and plain
Pillow, replacing pillow-simd): they are downloaded without dependencies into ``benchmarks/.baselines``
(git-ignored) and imported by file path. If missing, this script runs::

    python -m pip download basicsr==1.4.2 --no-deps --no-binary :all: --no-build-isolation -d benchmarks/.baselines
    python -m pip download bicubic-pytorch==0.1.2.1 --no-deps -d benchmarks/.baselines

and unpacks them there.

Usage::

    .venv/bin/python benchmarks/bench_imresize.py --repeats 21 --threads 2

It prints the markdown table of ``benchmarks/RESULTS.md``'s section "MATLAB bicubic (srprep.ops.imresize)"
(the notes there are written by hand).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import torch
from _common import cpu_name

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import srprep.ops.imresize as imresize_mod  # noqa: E402
from srprep.ops.imresize import imresize_matlab, native_available, to_uint8  # noqa: E402
from srprep.ops.imresize_torch import imresize_matlab_torch  # noqa: E402

BASELINES = REPO / "benchmarks" / ".baselines"
BASICSR = "basicsr-1.4.2"
BICUBIC = "bicubic_pytorch-0.1.2.1"
SECTION = "## MATLAB bicubic (srprep.ops.imresize)"


# ------------------------------------------------------------------------------------------ baselines
def _pip_download(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", "download", *args, "-d", str(BASELINES)]
    print("fetching:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def fetch_baselines() -> tuple[Path, Path]:
    """Paths of basicsr's matlab_functions.py and bicubic_pytorch's core.py, downloading if needed."""
    BASELINES.mkdir(parents=True, exist_ok=True)
    mf = BASELINES / BASICSR / "basicsr" / "utils" / "matlab_functions.py"
    if not mf.exists():
        sdist = BASELINES / f"{BASICSR}.tar.gz"
        if not sdist.exists():
            # sdist only (no wheel of 1.4.2); its metadata step imports torch, hence no build isolation
            _pip_download(["basicsr==1.4.2", "--no-deps", "--no-binary", ":all:", "--no-build-isolation"])
        with tarfile.open(sdist) as tf:
            member = f"{BASICSR}/basicsr/utils/matlab_functions.py"
            tf.extract(member, BASELINES, filter="data")
    core = BASELINES / BICUBIC / "bicubic_pytorch" / "core.py"
    if not core.exists():
        wheel = BASELINES / f"{BICUBIC}-py3-none-any.whl"
        if not wheel.exists():
            _pip_download(["bicubic-pytorch==0.1.2.1", "--no-deps"])
        with zipfile.ZipFile(wheel) as zf:
            zf.extract("bicubic_pytorch/core.py", BASELINES / BICUBIC)
    return mf, core


def load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------------------------------ workload
def make_image() -> np.ndarray:
    src = cv2.imread(str(REPO / "srprep" / "samples" / "kodak" / "kodim01.png"), cv2.IMREAD_COLOR)
    big = cv2.resize(src, (2040, 1356), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big[..., ::-1])  # RGB, (1356, 2040, 3) uint8


def _portable(fn):
    """Run ``fn`` with the compiled kernel switched off: srprep's OpenCV/numpy path (same bytes)."""
    def run():
        saved = imresize_mod._native
        imresize_mod._native = None
        try:
            return fn()
        finally:
            imresize_mod._native = saved
    return run


def runners(img: np.ndarray, s: int, basicsr, bicubic, threads: int) -> dict:
    t = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()

    def basicsr_run():
        out = basicsr.imresize(img.astype(np.float32) / 255.0, 1 / s)
        return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)

    u8 = np.uint8
    return {
        "srprep, uint8 convention, 1 thread": lambda: imresize_matlab(img, 1 / s, threads=1),
        f"srprep, uint8 convention, {threads} threads": lambda: imresize_matlab(img, 1 / s, threads=threads),
        "srprep, im2double, 1 thread": lambda: imresize_matlab(img, 1 / s, im2double=True, out_dtype=u8, threads=1),
        f"srprep, im2double, {threads} threads": lambda: imresize_matlab(img, 1 / s, im2double=True, out_dtype=u8,
                                                                        threads=threads),
        "srprep, im2double, float64 out + to_uint8, 1 thread": lambda: to_uint8(
            imresize_matlab(img, 1 / s, im2double=True, threads=1)),
        "srprep portable path (no compiled kernel), uint8 convention": _portable(lambda: imresize_matlab(img, 1 / s)),
        "srprep portable path (no compiled kernel), im2double": _portable(
            lambda: imresize_matlab(img, 1 / s, im2double=True, out_dtype=u8)),
        "srprep torch CPU, uint8 convention": lambda: imresize_matlab_torch(t, 1 / s)[0].permute(1, 2, 0).numpy(),
        "srprep torch CPU, im2double": lambda: to_uint8(
            imresize_matlab_torch(t, 1 / s, im2double=True)[0].permute(1, 2, 0).numpy()),
        "BasicSR 1.4.2 imresize (float32)": basicsr_run,
        "bicubic-pytorch 0.1.2.1 (float32)": lambda: bicubic.imresize(t, scale=1 / s)[0].permute(1, 2, 0).numpy(),
    }


def agreement(out: np.ndarray, ref: np.ndarray) -> str:
    if out.shape != ref.shape:
        return f"shape {out.shape}"
    eq = float((out == ref).mean() * 100)
    mx = int(np.abs(out.astype(int) - ref.astype(int)).max())
    return "bit-exact" if mx == 0 else f"{eq:.3f} %, max {mx}"


def machine() -> str:
    return f"{cpu_name()}, {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads")
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--date", default=time.strftime("%Y-%m-%d"))
    args = ap.parse_args()
    if not native_available():
        sys.exit("the compiled kernel is not built (pip install -e . with a C compiler); see srprep/ops/imresize.py")

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    mf, core = fetch_baselines()
    basicsr = load_module("basicsr_matlab_functions", mf)
    bicubic = load_module("bicubic_pytorch_core", core)
    img = make_image()
    load = os.getloadavg()[0]

    rows = []
    for s in args.scales:
        fns = runners(img, s, basicsr, bicubic, args.threads)
        outs = {k: f() for k, f in fns.items()}  # warm-up (weight caches, OpenCV self-check) + outputs
        ref_u8 = outs["srprep, uint8 convention, 1 thread"]
        ref_dbl = outs["srprep, im2double, 1 thread"]
        times = {k: [] for k in fns}
        for _ in range(args.repeats):
            for k, f in fns.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
        for k in fns:
            med = statistics.median(times[k]) * 1000
            rows.append((s, k, med, min(times[k]) * 1000, agreement(outs[k], ref_u8),
                         agreement(outs[k], ref_dbl)))
        print(f"x{s} done", flush=True)

    basicsr_ms = {s: med for s, k, med, *_ in rows if k.startswith("BasicSR")}
    lines = [
        SECTION, "",
        f"Date {args.date}. Machine: {machine()} (`lscpu` model name), shared with other jobs (load average "
        f"{load:.1f} at start). Python {platform.python_version()}, numpy {np.__version__}, torch "
        f"{torch.__version__}, OpenCV {cv2.__version__}; baselines BasicSR 1.4.2 "
        "(`basicsr/utils/matlab_functions.py`) and bicubic-pytorch 0.1.2.1, imported by path. "
        f"Command: `benchmarks/bench_imresize.py --repeats {args.repeats} --threads {args.threads}`. "
        f"{args.threads} torch/OpenCV threads. Workload: one 2040x1356 RGB uint8 image (kodim01 upscaled with "
        "cv2 INTER_CUBIC), uint8 in -> uint8 LR out, median of "
        f"{args.repeats} runs.", "",
        "| scale | implementation | median ms | min ms | BasicSR / this | output vs MATLAB uint8 "
        "convention | output vs MATLAB im2double |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for s, k, med, mn, a_u8, a_dbl in rows:
        lines.append(f"| x{s} | {k} | {med:.1f} | {mn:.1f} | {basicsr_ms[s] / med:.1f}x | {a_u8} | {a_dbl} |")
    lines.append("")
    lines.append("BasicSR / this: ratio of the median times (above 1: faster than BasicSR). The MATLAB "
                 "references are srprep's 1-thread outputs on this image (bit-exact on Set5, see the tests).")
    text = "\n".join(lines) + "\n"
    print(text)


if __name__ == "__main__":
    main()
