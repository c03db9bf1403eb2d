"""Training throughput of `srprep train` against a plain PyTorch loop, and ECO vs vanilla on Set5.

Throughput (default mode): iterations per second of EDSR x2 (baseline 16x64 and/or the paper's 32x256),
batch 16, HR patch 96, for

* ``srprep``: :func:`srprep.train.train` reading a raw LMDB made by ``srprep pack`` (patch windows copied
  out of the store, no decoding), uint8 batches moved to the device by the prefetcher, flips and float
  conversion on the device, bf16 autocast and channels-last on CUDA, no host sync inside a step;
* ``srprep fp32`` (CUDA only): the same with ``train.precision=fp32 train.channels_last=false``, to separate
  the pipeline from the precision;
* ``plain``: what a BasicSR-style script does: a DataLoader whose workers decode the PNG pair of every
  sample, crop and flip with numpy and convert to float tensors; fp32 model, Adam, L1, ``.to(device)``.

Both read the same images (DIV2K-sized mosaics made from the bundled Kodak crops, LR by MATLAB bicubic),
with the same number of DataLoader workers, on the same machine in one invocation. The first ``--warmup``
iterations are not timed.

ECO comparison (``--eco-compare``, meant for a GPU): EDSR baseline x2 trained twice from the same seed on the
same patches, once vanilla and once with ECO, for a short budget; Set5 x2 PSNR (Y, border 2) of both. The
centroids come from a pretrained x2 network (``--centroid-model``, default the IMDN x2 weights in tests/data)
run by ``srprep centroids``.

    python benchmarks/bench_train.py                                   # CPU, EDSR baseline, short
    python benchmarks/bench_train.py --device cuda --models edsr_baseline,edsr_paper --iters 200
    python benchmarks/bench_train.py --device cuda --eco-compare --iters 5000 --train-images data/DIV2K/HR

Prints a Markdown section on stdout.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import cpu_name  # noqa: E402
from srprep.io.images import read_image, write_image  # noqa: E402
from srprep.models import count_parameters, create_model  # noqa: E402
from srprep.ops.imresize import imresize_matlab  # noqa: E402
from srprep.train import load_config, train  # noqa: E402

REF_DATA = REPO / "tests" / "data"
MODELS = {"edsr_baseline": "edsr_baseline", "edsr_paper": "edsr_paper"}




def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {os.cpu_count()} logical CPUs"


# --- data ---------------------------------------------------------------------------------------------------


def make_images(dst: Path, count: int, size: tuple[int, int], scale: int) -> Path:
    """``count`` DIV2K-sized RGB images (mosaics of the bundled Kodak crops, each tile upscaled by cv2) as
    ``dst/HR/imgNN.png`` and their MATLAB-bicubic LR ``dst/X{s}/imgNNx{s}.png`` (srprep downsample's layout)."""
    tiles = [read_image(p) for p in sorted((REPO / "srprep" / "samples" / "kodak").glob("*.png"))]
    w, h = size
    (dst / "HR").mkdir(parents=True, exist_ok=True)
    (dst / f"X{scale}").mkdir(parents=True, exist_ok=True)
    for n in range(count):
        th, tw = h // 2, w // 4
        rows = []
        for r in range(2):
            row = [cv2.resize(tiles[(n + r * 4 + c) % len(tiles)], (tw, th), interpolation=cv2.INTER_CUBIC)
                   for c in range(4)]
            rows.append(np.concatenate(row, axis=1))
        hr = np.ascontiguousarray(np.concatenate(rows, axis=0)[: h // scale * scale, : w // scale * scale])
        write_image(dst / "HR" / f"img{n:02d}.png", hr)
        write_image(dst / f"X{scale}" / f"img{n:02d}x{scale}.png", imresize_matlab(hr, 1 / scale))
    return dst


def pack_lmdb(src: Path, dst: Path) -> Path:
    from srprep.stages.pack import pack

    pack(src, dst, fmt="lmdb", encoding="raw", jobs=1, progress=False)
    return dst


class PngPairs(torch.utils.data.Dataset):
    """The plain baseline's dataset: decode both PNGs of a pair per sample, random crop + flips in numpy."""

    def __init__(self, data: Path, scale: int, patch: int, length: int):
        self.hr = sorted((data / "HR").glob("*.png"))
        self.lr = [data / f"X{scale}" / f"{p.stem}x{scale}.png" for p in self.hr]
        self.scale, self.patch, self.length = scale, patch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        k = random.randrange(len(self.hr))
        hr = cv2.cvtColor(cv2.imread(str(self.hr[k]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        lr = cv2.cvtColor(cv2.imread(str(self.lr[k]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        lp, s = self.patch // self.scale, self.scale
        y, x = random.randrange(lr.shape[0] - lp + 1), random.randrange(lr.shape[1] - lp + 1)
        lr, hr = lr[y:y + lp, x:x + lp], hr[y * s:(y + lp) * s, x * s:(x + lp) * s]
        if random.random() < 0.5:
            lr, hr = lr[:, ::-1], hr[:, ::-1]
        if random.random() < 0.5:
            lr, hr = lr[::-1], hr[::-1]
        if random.random() < 0.5:
            lr, hr = lr.transpose(1, 0, 2), hr.transpose(1, 0, 2)

        def tensor(a):
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float() / 255.0

        return tensor(lr), tensor(hr)


def _seed_worker(worker_id: int) -> None:
    # (no cv2.setNumThreads here: it deadlocks in a forked child once the parent has used OpenCV's pool)
    random.seed(torch.initial_seed() % 2 ** 32)


# --- contenders ---------------------------------------------------------------------------------------------


def run_plain(arch: str, data: Path, device: torch.device, *, batch: int, patch: int, workers: int, warmup: int,
              iters: int) -> float:
    torch.manual_seed(0)
    model = create_model(arch, scale=2).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.99))
    ds = PngPairs(data, 2, patch, length=batch * (warmup + iters) * 2)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                                         pin_memory=device.type == "cuda", worker_init_fn=_seed_worker,
                                         persistent_workers=workers > 0)
    it = iter(loader)
    start = None
    for i in range(warmup + iters):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        lr, hr = next(it)
        lr, hr = lr.to(device), hr.to(device)
        loss = (model(lr) - hr).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return iters / (time.perf_counter() - start)


def run_srprep(arch: str, root: Path, device: torch.device, run_dir: Path, *, batch: int, patch: int, workers: int,
               warmup: int, iters: int, extra: list[str]) -> float:
    cfg = load_config(None, [
        f"model.name={arch}", "model.scale=2", f"data.root={root}", f"data.patch={patch}", f"data.batch={batch}",
        f"data.workers={workers}", "val.every=0", f"train.iters={warmup + iters}", f"train.log_every={warmup}",
        f"train.ckpt_every={10 ** 9}", f"train.device={device}", "train.tensorboard=false",
        "optim.lr=1.0e-4", *extra])
    result = train(cfg, run_dir)
    return result.steps_per_s


# --- ECO vs vanilla ---------------------------------------------------------------------------------------------


def eco_compare(args, device: torch.device, work: Path) -> str:
    from srprep.evaluate import benchmark_pairs, evaluate_pairs, summarize
    from srprep.models import load_pretrained
    from srprep.stages.centroids import centroids
    from srprep.stages.downsample import downsample

    data = work / "DATA"
    src = Path(args.train_images) if args.train_images else REPO / "srprep" / "samples" / "kodak"
    downsample(src, data, [2], jobs=args.jobs, progress=False)
    centroids(data, args.centroid_model, device=str(device), progress=False)
    set5 = REF_DATA / "benchmark" / "Set5"
    common = [f"data.root={data}", f"data.batch={args.batch}", f"data.patch={args.patch}",
              f"data.workers={args.workers}", f"train.iters={args.iters}", f"train.device={device}",
              f"val.root={set5}", "val.hr=HR", "val.lr=LR_bicubic/X{scale}", f"val.every={max(args.iters // 10, 1)}",
              "optim.lr=1.0e-4", "schedule.name=cosine", "schedule.milestones=[]", "train.tensorboard=false",
              f"train.log_every={max(args.iters // 20, 1)}", f"train.ckpt_every={args.iters}"]
    rows = []
    for name, cfg_file in (("vanilla", "edsr_baseline_x2.yaml"), ("ECO", "edsr_x2_eco.yaml")):
        cfg = load_config(REPO / "srprep" / "configs" / cfg_file, common)
        t0 = time.perf_counter()
        res = train(cfg, work / f"run_{name}")
        model, _ = load_pretrained(res.last_checkpoint, device=device)
        final = summarize(evaluate_pairs(model, benchmark_pairs(set5 / "HR", set5 / "LR_bicubic" / "X2", 2),
                                         scale=2, device=device))
        rows.append((name, res.best_psnr, res.best_step, final["psnr"], final["ssim"], time.perf_counter() - t0))
    out = [f"ECO vs vanilla, EDSR baseline x2, {args.iters} steps of {args.batch} x {args.patch} patches "
           f"(Lamb 1e-4, cosine, L1x255, clip 0.1, skip 5x), training images {src}, centroids by "
           f"{Path(args.centroid_model).name}; Set5 x2 (Y, border 2), same seed and patches:", "",
           "| run | best PSNR (dB) | at step | final PSNR (dB) | final SSIM | wall s |",
           "|---|---:|---:|---:|---:|---:|"]
    out += [f"| {n} | {b:.3f} | {s} | {p:.3f} | {q:.4f} | {t:.0f} |" for n, b, s, p, q, t in rows]
    return "\n".join(out)


# --- main ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="edsr_baseline", help="comma list of edsr_baseline, edsr_paper")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=96, help="HR patch side")
    ap.add_argument("--iters", type=int, default=None, help="timed iterations (default 6 on CPU, 200 on CUDA)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed iterations (default 2 on CPU, 20 on CUDA)")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default min(8, CPUs))")
    ap.add_argument("--repeats", type=int, default=2, help="rounds, alternating the contenders")
    ap.add_argument("--images", type=int, default=8, help="DIV2K-sized training images to make")
    ap.add_argument("--image-size", default="2040x1356", help="WxH of the made images")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    ap.add_argument("--compile", action="store_true", help="also time srprep with train.compile=true")
    ap.add_argument("--eco-compare", action="store_true", help="ECO vs vanilla on Set5 instead of throughput")
    ap.add_argument("--train-images", help="--eco-compare: a folder of HR training images (default: Kodak crops)")
    ap.add_argument("--centroid-model", default=str(REF_DATA / "weights" / "IMDN_x2.pth"))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    args.workers = min(8, os.cpu_count() or 1) if args.workers is None else args.workers
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        work = Path(tmp)
        if args.eco_compare:
            args.iters = args.iters or 2000
            table = eco_compare(args, device, work)
            print(f"### ECO vs vanilla ({device_name(device)}, {args.date})\n\n{table}")
            return
        iters = args.iters or (200 if cuda else 6)
        warmup = args.warmup or (20 if cuda else 2)
        w, h = (int(v) for v in args.image_size.split("x"))
        data = make_images(work / "DATA", args.images, (w, h), 2)
        packed = pack_lmdb(data, work / "PACKED")
        rows = []
        for label in args.models.split(","):
            arch = MODELS[label]
            params = count_parameters(create_model(arch, scale=2))
            variants = [("srprep (LMDB raw" + (", bf16, channels-last)" if cuda else ", fp32)"), [])]
            if cuda:
                variants.append(("srprep (LMDB raw, fp32)", ["train.precision=fp32", "train.channels_last=false"]))
            if args.compile:
                variants.append(("srprep + torch.compile", ["train.compile=true"]))
            plain = "plain PyTorch fp32, DataLoader decoding PNG pairs"
            speeds: dict[str, list[float]] = {name: [] for name, _ in variants}
            speeds[plain] = []
            # Rounds alternate the contenders, so a change in the machine's load hits them alike.
            for r in range(args.repeats):
                for name, extra in variants:
                    speeds[name].append(run_srprep(arch, packed, device, work / f"run_{label}_{r}_{len(speeds[name])}",
                                                   batch=args.batch, patch=args.patch, workers=args.workers,
                                                   warmup=warmup, iters=iters, extra=extra))
                speeds[plain].append(run_plain(arch, data, device, batch=args.batch, patch=args.patch,
                                               workers=args.workers, warmup=warmup, iters=iters))
            rows += [(label, params, name, values) for name, values in speeds.items()]
    print(f"Date {args.date}. Device: {device_name(device)}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, {args.workers} DataLoader workers. Workload: batch "
          f"{args.batch}, HR patch {args.patch}, x2, {args.images} images of {args.image_size} (PNG; LMDB raw "
          f"for srprep), {warmup} warm-up + {iters} timed iterations per run, {args.repeats} rounds. "
          f"Load average at start {load:.2f}.\n")
    print("| network | params | trainer | it/s (median) | each round | vs plain |\n|---|---:|---|---:|---|---:|")
    for label, params, name, values in rows:
        plain = statistics.median(next(r[3] for r in rows if r[0] == label and r[2].startswith("plain")))
        ips = statistics.median(values)
        each = ", ".join(f"{v:.3f}" for v in values)
        print(f"| EDSR {label.split('_')[1]} x2 | {params:,} | {name} | {ips:.3f} | {each} | {ips / plain:.2f}x |")
    print(f"\nLoad average at the end {os.getloadavg()[0]:.2f}.")


if __name__ == "__main__":
    main()
