"""Training reads, cold and warm: srprep's patch loader on every store layout vs BasicSR's PairedImageDataset.

Workload: ``--images`` DIV2K-sized photos (2040x1356; the bundled Kodak crops, each rolled sideways by a
different amount and upscaled with cv2 INTER_CUBIC, so no two are alike) with their x2 LR (MATLAB bicubic),
as ``srprep downsample`` leaves them. From them, every layout a trainer may read:

* ``sub PNG folder``: ``srprep crop`` 480x480 sub-images, step 240 (BasicSR's DIV2K settings), PNG files;
* ``sub PNG LMDB``: ``srprep pack --crop --encoding png`` (what BasicSR's create_lmdb.py makes);
* ``sub raw LMDB``: ``srprep pack --crop`` (the default; pixels, no decode);
* ``sub raw HDF5``: ``srprep pack --crop --format hdf5``;
* ``whole raw LMDB``: ``srprep pack`` without ``--crop``: every image stored once, whole.

Readers, each a torch DataLoader with ``--workers`` worker processes and batches of 16 pairs (96x96 HR +
48x48 LR): srprep's :class:`~srprep.train.data.PatchDataset` (its ``make_loader``), and BasicSR's
``PairedImageDataset`` (its own file client: ``io_backend: lmdb`` on the PNG LMDBs, ``disk`` on the PNG
folders; ``gt_size`` 96, flips and rotations on). BasicSR is imported from a source checkout given by
``--basicsr`` (default ``/tmp/basicsr-src``), outside this repository, without its package ``__init__``
(it wants torchvision, which this environment lacks; torchvision's ``normalize``/``make_grid`` are
replaced by stubs that raise, and the dataset calls neither with these options).

Cold: ``sync; echo 3 > /proc/sys/vm/drop_caches`` (needs root; otherwise the run stops), then a new
loader; the first batch (worker start) is not timed, the next ``--batches`` are. Warm: every file of the
store read once beforehand, then the same. Beside samples/s, the disk traffic of the timed part
(the workers' ``read_bytes`` in /proc/PID/io, per sample): what a layout and a read path cost a store that does not fit
in RAM. srprep's raw LMDB is also measured with its offsets table ignored (``LmdbStore._load_offsets``
returning nothing), i.e. read through py-lmdb as before: every page of the record touched, one 4 KiB
fault after another.

Usage (root, ~6 GB of disk, ~5 min on 2 cores)::

    .venv/bin/python benchmarks/bench_loader.py --images 48 --rounds 2 --results benchmarks/RESULTS.md
"""
from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from _common import cpu_name  # noqa: E402
from bench_pack import replace_section  # noqa: E402
from srprep.io import lmdb_store  # noqa: E402
from srprep.io.images import read_image, write_image  # noqa: E402
from srprep.stages.crop import CropOptions, crop  # noqa: E402
from srprep.stages.pack import pack  # noqa: E402
from srprep.train.data import PatchDataset, check_fields, make_loader, open_field  # noqa: E402

SECTION = "## Training reads, cold and warm (srprep.train.data)"
HW = (1356, 2040)
SIZE, STEP = 480, 240
BATCH, PATCH, SCALE = 16, 96, 2


def make_dataset(root: Path, n: int) -> None:
    """``root/HR/0001.png`` ... and ``root/X2/0001x2.png`` ...: 2040x1356 photos and their x2 LR."""
    from srprep.ops.imresize import imresize_matlab

    kodak = [read_image(p) for p in sorted((REPO / "srprep/samples/kodak").glob("*.png"))]
    for i in range(n):
        src = kodak[i % len(kodak)]
        src = np.roll(src, (i // len(kodak)) * src.shape[1] // 7, axis=1)  # new content for each round
        hr = cv2.resize(src, (HW[1], HW[0]), interpolation=cv2.INTER_CUBIC)
        write_image(root / f"HR/{i + 1:04d}.png", hr)
        write_image(root / f"X2/{i + 1:04d}x2.png", imresize_matlab(hr, 0.5))


def build(data: Path, work: Path, jobs: int) -> dict[str, Path]:
    """Every layout of the module docstring; returns name -> dataset folder (HR and X2 inside)."""
    out = {"sub PNG folder": work / "sub_folder", "sub PNG LMDB": work / "sub_png_lmdb",
           "sub raw LMDB": work / "sub_raw_lmdb", "sub raw HDF5": work / "sub_raw_h5",
           "whole raw LMDB": work / "whole_raw_lmdb"}
    opts = CropOptions(SIZE, STEP, 0)
    crop(data / "HR", [data / "X2"], out["sub PNG folder"], opts, jobs=jobs, progress=False)
    pack(data, out["sub PNG LMDB"], encoding="png", crop=opts, jobs=jobs, progress=False)
    pack(data, out["sub raw LMDB"], crop=opts, jobs=jobs, progress=False)
    pack(data, out["sub raw HDF5"], fmt="hdf5", crop=opts, jobs=jobs, progress=False)
    pack(data, out["whole raw LMDB"], jobs=jobs, progress=False)
    return out


def disk_bytes(root: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in root.rglob("*")
               if p.is_file() and ".srprep" not in p.parts and p.name != "lock.mdb")


def stored_pixels(root: Path) -> int:
    """HR + LR pixels the layout stores (sub-images overlap: each pixel is there ~3x)."""
    total = 0
    for name in ("HR", "X2"):
        store = open_field(root, name, scale=SCALE)
        total += sum(int(np.prod(store.shape(k)[:2])) for k in store.keys())
    return total


# ------------------------------------------------------------------------------------------ loaders


def srprep_loader(root: Path, workers: int, seed: int):
    stores = {"hr": open_field(root, "HR"), "lr": open_field(root, "X2", scale=SCALE)}
    keys = stores["hr"].keys()
    grid = check_fields(stores, keys, scale=SCALE, patch=PATCH, lr_fields=["lr"])
    ds = PatchDataset(stores, keys, grid, scale=SCALE, patch=PATCH, seed=seed, lr_fields=["lr"])
    return make_loader(ds, batch=BATCH, start_step=0, workers=workers)


def basicsr_dataset_class(src: Path):
    """BasicSR's PairedImageDataset from a source checkout, without running ``basicsr/__init__.py``."""
    for name, path in (("basicsr", src / "basicsr"), ("basicsr.data", src / "basicsr/data")):
        mod = types.ModuleType(name)
        mod.__path__ = [str(path)]
        sys.modules.setdefault(name, mod)
    try:
        import torchvision.transforms.functional  # noqa: F401
        import torchvision.utils  # noqa: F401
    except ImportError:
        def unused(*args, **kwargs):
            raise RuntimeError("torchvision stub: not used with these options")
        mods = {n: types.ModuleType(n) for n in ("torchvision", "torchvision.transforms",
                                                 "torchvision.transforms.functional", "torchvision.utils")}
        mods["torchvision"].__path__, mods["torchvision.transforms"].__path__ = [], []
        mods["torchvision.transforms.functional"].normalize = unused
        mods["torchvision.utils"].make_grid = unused
        sys.modules.update(mods)
    from basicsr.data.paired_image_dataset import PairedImageDataset

    return PairedImageDataset


def basicsr_loader(root: Path, backend: str, workers: int, src: Path):
    cls = basicsr_dataset_class(src)
    if backend == "lmdb":
        gt, lq, tmpl = root / "HR.lmdb", root / "X2.lmdb", "{}"
    else:
        gt, lq, tmpl = root / "HR", root / "X2", "{}x2"
    opt = {"dataroot_gt": str(gt), "dataroot_lq": str(lq), "io_backend": {"type": backend},
           "filename_tmpl": tmpl, "gt_size": PATCH, "use_hflip": True, "use_rot": True, "scale": SCALE,
           "phase": "train"}
    return torch.utils.data.DataLoader(cls(opt), batch_size=BATCH, shuffle=True, num_workers=workers,
                                       prefetch_factor=4, drop_last=True)


# ------------------------------------------------------------------------------------------ measuring


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def warm_up(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                while f.read(16 << 20):
                    pass


def read_bytes(pids) -> int:
    """Bytes these processes caused to be read from the disk (``read_bytes`` of /proc/PID/io)."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("read_bytes:"):
                total += int(line.split()[1])
    return total


def timed(make, batches: int) -> tuple[float, float]:
    """(samples/s, disk bytes read per sample) over ``batches`` batches after the first."""
    loader = make()
    it = iter(loader)
    next(it)
    pids = [w.pid for w in it._workers]
    t0, io0 = time.perf_counter(), read_bytes(pids)
    for _ in range(batches):
        batch = next(it)
    t1, io1 = time.perf_counter(), read_bytes(pids)
    del batch, it, loader
    for path, _ in list(lmdb_store._READERS):  # py-lmdb forbids a second open in one process (BasicSR's)
        lmdb_store._release(Path(path))
    n = batches * BATCH
    return n / (t1 - t0), (io1 - io0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=2, help="turns of every contender (median reported)")
    ap.add_argument("--batches", type=int, default=40, help="timed batches of 16 per measurement")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2, help="processes for building the stores")
    ap.add_argument("--basicsr", type=Path, default=Path("/tmp/basicsr-src"),
                    help="a BasicSR source checkout (the folder holding basicsr/)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--results", type=Path, default=None)
    args = ap.parse_args()
    if not os.access("/proc/sys/vm/drop_caches", os.W_OK):
        sys.exit("bench_loader: cold reads need root (writing /proc/sys/vm/drop_caches)")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_loader_"))
    data = work / "data"
    if not (data / "X2").is_dir():
        make_dataset(data, args.images)
    t0 = time.perf_counter()
    roots = build(data, work, args.jobs) if not (work / "whole_raw_lmdb").is_dir() else {
        "sub PNG folder": work / "sub_folder", "sub PNG LMDB": work / "sub_png_lmdb",
        "sub raw LMDB": work / "sub_raw_lmdb", "sub raw HDF5": work / "sub_raw_h5",
        "whole raw LMDB": work / "whole_raw_lmdb"}
    print(f"stores built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    source_pixels = args.images * (HW[0] * HW[1] + (HW[0] // 2) * (HW[1] // 2))

    hint = lmdb_store.LmdbStore._load_offsets
    off = lambda self: {}  # noqa: E731

    contenders = [
        ("srprep, sub raw LMDB", "sub raw LMDB", lambda r: srprep_loader(r, args.workers, 0), hint),
        ("srprep, sub raw LMDB, read through py-lmdb (before)", "sub raw LMDB",
         lambda r: srprep_loader(r, args.workers, 0), off),
        ("srprep, whole raw LMDB", "whole raw LMDB", lambda r: srprep_loader(r, args.workers, 0), hint),
        ("srprep, sub raw HDF5", "sub raw HDF5", lambda r: srprep_loader(r, args.workers, 0), hint),
        ("srprep, sub PNG LMDB", "sub PNG LMDB", lambda r: srprep_loader(r, args.workers, 0), hint),
        ("srprep, sub PNG folder", "sub PNG folder", lambda r: srprep_loader(r, args.workers, 0), hint),
        ("BasicSR PairedImageDataset, sub PNG LMDB (lmdb backend)", "sub PNG LMDB",
         lambda r: basicsr_loader(r, "lmdb", args.workers, args.basicsr), hint),
        ("BasicSR PairedImageDataset, sub PNG folder (disk backend)", "sub PNG folder",
         lambda r: basicsr_loader(r, "disk", args.workers, args.basicsr), hint),
    ]
    cv2.setNumThreads(1)  # in the parent, before the workers fork (see make_loader)
    torch.set_num_threads(1)
    loads = [os.getloadavg()[0]]
    cold: dict[str, list] = {c[0]: [] for c in contenders}
    warm: dict[str, list] = {c[0]: [] for c in contenders}
    for r in range(args.rounds):
        for label, layout, make, offsets in contenders:
            lmdb_store.LmdbStore._load_offsets = offsets
            try:
                drop_caches()
                cold[label].append(timed(lambda: make(roots[layout]), args.batches))
                warm_up(roots[layout])
                warm[label].append(timed(lambda: make(roots[layout]), args.batches))
            finally:
                lmdb_store.LmdbStore._load_offsets = hint
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1}: {label}: cold {cold[label][-1][0]:,.0f}/s "
                  f"({cold[label][-1][1] / 1024:.0f} KiB/sample), warm {warm[label][-1][0]:,.0f}/s", file=sys.stderr)

    def med(values, i):
        return statistics.median(v[i] for v in values)

    base = "BasicSR PairedImageDataset, sub PNG LMDB (lmdb backend)"
    lines = [SECTION, "",
             f"Date {datetime.date.today().isoformat()}. Machine: {cpu_name()}, {os.cpu_count()} cores, "
             f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM, virtio disk, "
             f"shared with other jobs (load average {min(loads):.1f}-{max(loads):.1f} during the run). torch "
             f"{torch.__version__}, OpenCV {cv2.__version__}. Command: `benchmarks/bench_loader.py --images "
             f"{args.images} --rounds {args.rounds} --batches {args.batches} --workers {args.workers}`.",
             "",
             f"{args.images} photos of 2040x1356 + x2 LR (Kodak crops rolled and upscaled), every layout built "
             f"from them; DataLoader with {args.workers} workers, batches of {BATCH} pairs (96x96 HR + 48x48 LR, "
             f"flips on), {args.batches} batches timed after the first; median of {args.rounds} rounds, "
             "contenders taking turns. Cold: page cache dropped before each measurement; warm: the store read "
             "once before. Disk read per sample: `read_bytes` of the workers' /proc/PID/io over the timed "
             "part.",
             "",
             "| reader, layout | cold samples/s | cold vs BasicSR LMDB | disk KiB read per sample (cold) | "
             "warm samples/s | warm vs BasicSR LMDB |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, _, _, _ in contenders:
        lines.append(f"| {label} | {med(cold[label], 0):,.0f} | {med(cold[label], 0) / med(cold[base], 0):.1f}x | "
                     f"{med(cold[label], 1) / 1024:,.0f} | {med(warm[label], 0):,.0f} | "
                     f"{med(warm[label], 0) / med(warm[base], 0):.1f}x |")
    lines += ["", "| layout (HR + X2) | on disk, MiB | bytes per source pixel | bytes per stored pixel |",
              "|---|---:|---:|---:|"]
    for layout, root in roots.items():
        size = disk_bytes(root)
        lines.append(f"| {layout} | {size / 2**20:,.0f} | {size / source_pixels:.2f} | "
                     f"{size / stored_pixels(root):.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        replace_section(args.results, text)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
