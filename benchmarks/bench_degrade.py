"""Throughput of the second-order degradation pipeline (srprep.ops.degrade), images per second.

Workload: 256x256 GT crops of the bundled photos (Kodak crops and Set5), batch 32, Real-ESRGAN x4plus
defaults (USM on the GT, two degradation stages, final sinc/JPEG, x4 -> 64x64 LR). Parameters are drawn
once per image with ``draw_params(cfg, item_rng(seed, key), 256)`` before timing, and every path below
applies **the same drawn parameters**:

* ``batched torch``: :func:`apply_batch` on (32, 3, 256, 256) on ``--device`` (noise drawn on the host
  from each sample's numpy stream, identical to the numpy path; and with ``noise="device"``);
* ``per-sample numpy/cv2``: :func:`apply` on one HWC image at a time, as a Real-ESRGAN data-loader worker
  would (kernels from numpy, filtering with cv2, resizing with torch's CPU kernels);
* ``per-sample torch``: :func:`apply_batch` with a batch of one, sample after sample (Real-ESRGAN's
  model-side torch ops run one sample at a time) on ``--device``.

The time to draw the parameters is reported on its own row. Each path runs ``--batches`` batches after one
warm-up batch; one run, no repeats (CUDA is synchronised around each batch). With ``--jpeg`` the JPEG step
alone is also timed: srprep's per-sample libjpeg round trip vs kornia's ``jpeg_codec_differentiable`` and
BasicSR's ``DiffJPEG(differentiable=False)`` (what Real-ESRGAN trains with) when they are importable (neither
is a dependency of srprep; ``basicsr.utils.diffjpeg`` needs only torch), each with its distance to the real
decoder's output on the same input (rounded to 8 bits, as a file would be): PSNR over all samples and the
lowest and highest per-sample PSNR.

Usage::

    .venv/bin/python benchmarks/bench_degrade.py --batches 3            # CPU
    .venv/bin/python benchmarks/bench_degrade.py --device cuda --batches 20 --jpeg
    .venv/bin/python benchmarks/bench_degrade.py --batches 3 --append benchmarks/RESULTS.md
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from _common import cpu_name

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from srprep.ops.degrade import DegradationConfig, apply, apply_batch, draw_params, item_rng  # noqa: E402
from srprep.ops.degrade.jpeg import jpeg_torch  # noqa: E402

SAMPLES = REPO / "srprep" / "samples"
GT = 256


def load_photos() -> list[np.ndarray]:
    paths = sorted(SAMPLES.glob("kodak/*.png")) + sorted(SAMPLES.glob("set5/*.png"))
    imgs = [cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in paths]
    return [im for im in imgs if min(im.shape[:2]) >= GT]


def make_batches(n_batches: int, batch: int, seed: int) -> list[np.ndarray]:
    """Random 256x256 crops (seeded), one (B, 256, 256, 3) uint8 array per batch."""
    photos = load_photos()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        crops = []
        for _ in range(batch):
            im = photos[int(rng.integers(len(photos)))]
            y = int(rng.integers(im.shape[0] - GT + 1))
            x = int(rng.integers(im.shape[1] - GT + 1))
            crops.append(im[y:y + GT, x:x + GT])
        out.append(np.stack(crops))
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_path(fn, batches, device) -> float:
    """Seconds for all ``batches`` after one warm-up call on the first."""
    fn(0)
    sync(device)
    t0 = time.perf_counter()
    for i in range(len(batches)):
        fn(i)
    sync(device)
    return time.perf_counter() - t0


def machine() -> str:
    return f"{cpu_name()}, {torch.get_num_threads()} torch threads"


def jpeg_distance(out: torch.Tensor, ref: torch.Tensor) -> str:
    """How far a JPEG model's (B, 3, H, W) output lies from the real decoder's: 8-bit levels and PSNR."""
    diff = (torch.round(out.clamp(0, 1) * 255) - torch.round(ref * 255)).abs()
    mse = (diff / 255).square().flatten(1).mean(1).double()
    per_sample = (10 * torch.log10(1 / mse.clamp(min=1e-12))).tolist()
    return (f"vs libjpeg: mean |d| {diff.mean().item():.2f}, max {diff.max().item():.0f} levels, PSNR "
            f"{10 * np.log10(1 / mse.mean().item()):.1f} dB (per sample {min(per_sample):.1f}-{max(per_sample):.1f})")


def bench_jpeg(batches_u8, device) -> list[tuple[str, float, str]]:
    """JPEG step alone on the 256x256 GT batches, quality 30..95: libjpeg per sample vs kornia's and
    BasicSR's differentiable models (each if importable)."""
    rows = []
    xs = [torch.from_numpy(b).permute(0, 3, 1, 2).float().div(255).to(device) for b in batches_u8]
    q = [30 + (i * 65) // max(1, xs[0].shape[0] - 1) for i in range(xs[0].shape[0])]
    qt = torch.tensor(q, dtype=torch.float32, device=device)
    n = sum(x.shape[0] for x in xs)
    t = time_path(lambda i: jpeg_torch(xs[i], q), xs, device)
    rows.append(("JPEG only: libjpeg round trip per sample (srprep)", n / t, "exact"))
    ref = torch.cat([jpeg_torch(x, q) for x in xs])
    try:
        from kornia.enhance import jpeg_codec_differentiable
    except ImportError:
        rows.append(("JPEG only: kornia jpeg_codec_differentiable", float("nan"), "kornia not installed"))
    else:
        t = time_path(lambda i: jpeg_codec_differentiable(xs[i], qt), xs, device)
        out = torch.cat([jpeg_codec_differentiable(x, qt) for x in xs])
        rows.append(("JPEG only: kornia jpeg_codec_differentiable", n / t, jpeg_distance(out, ref)))
    try:
        from basicsr.utils.diffjpeg import DiffJPEG
    except ImportError:
        rows.append(("JPEG only: BasicSR DiffJPEG (Real-ESRGAN)", float("nan"), "basicsr not installed"))
    else:
        jpeger = DiffJPEG(differentiable=False).to(device)
        # its forward overwrites a quality tensor in place with the scale factor: give it a fresh one each call
        t = time_path(lambda i: jpeger(xs[i], quality=qt.clone()), xs, device)
        out = torch.cat([jpeger(x, quality=qt.clone()) for x in xs])
        rows.append(("JPEG only: BasicSR DiffJPEG(differentiable=False) (Real-ESRGAN)", n / t,
                     jpeg_distance(out, ref)))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="torch device of the batched path (cpu, cuda, cuda:1)")
    ap.add_argument("--batches", type=int, default=3, help="timed batches per path (after one warm-up)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    ap.add_argument("--jpeg", action="store_true",
                    help="also time the JPEG step alone (and kornia's and BasicSR's models if importable)")
    ap.add_argument("--append", type=Path, default=None, help="append the markdown section to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device available")

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cfg = DegradationConfig()
    batches = make_batches(args.batches, args.batch, args.seed)
    n = args.batches * args.batch
    t0 = time.perf_counter()
    params = [[draw_params(cfg, item_rng(args.seed, f"b{b}_{i}"), GT) for i in range(args.batch)]
              for b in range(args.batches)]
    t_draw = time.perf_counter() - t0
    xs = [torch.from_numpy(b).permute(0, 3, 1, 2).float().div(255).to(device) for b in batches]

    rows = [("draw_params (numpy, per image)", n / t_draw, "")]
    t = time_path(lambda i: apply_batch(xs[i], params[i]), batches, device)
    rows.append((f"(a) batched torch, {args.device}, noise=host", n / t, ""))
    t = time_path(lambda i: apply_batch(xs[i], params[i], noise="device"), batches, device)
    rows.append((f"(a) batched torch, {args.device}, noise=device", n / t, ""))
    t = time_path(lambda i: [apply(batches[i][j], params[i][j]) for j in range(args.batch)], batches,
                  torch.device("cpu"))
    rows.append(("(b) per-sample numpy/cv2, cpu", n / t, ""))
    t = time_path(lambda i: [apply_batch(xs[i][j:j + 1], params[i][j:j + 1]) for j in range(args.batch)],
                  batches, device)
    rows.append((f"(b) per-sample torch, {args.device}", n / t, ""))
    if args.jpeg:
        rows += bench_jpeg(batches, device)

    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else machine()
    flags = f"--device {args.device} --batches {args.batches}" + (f" --threads {args.threads}" if args.threads else "")
    flags += " --jpeg" if args.jpeg else ""
    load = f"; load average {load_before:.1f} at start" if load_before is not None else ""
    lines = [
        "## Degradations (srprep.ops.degrade)",
        "",
        f"Date {datetime.date.today().isoformat()}; {dev_name}{load}; torch {torch.__version__}, "
        f"numpy {np.__version__}, OpenCV {cv2.__version__}. `benchmarks/bench_degrade.py {flags}`: {n} GT crops "
        f"256x256 -> 64x64 LR, batch {args.batch}, Real-ESRGAN x4plus defaults, the same drawn parameters for "
        "every row, one run.",
        "",
        "| path | images/s | note |",
        "|---|---:|---|",
    ]
    lines += [f"| {name} | {ips:.1f} | {note} |" for name, ips, note in rows]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.append:
        sep = "\n" if args.append.exists() and args.append.stat().st_size else ""
        with open(args.append, "a", encoding="utf-8") as f:
            f.write(sep + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
