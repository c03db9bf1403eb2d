"""Crop and pack: srprep's one-pass ``pack --crop`` vs BasicSR's two-pass recipe, and random-read speed.

Workload: a DIV2K-like folder of ``--images`` 2040x1356 PNG photos (the bundled Kodak crops upscaled with
cv2 INTER_CUBIC; real content, no repeated tiles) with their x2 LR (MATLAB bicubic via
``srprep.ops.imresize.imresize_matlab`` when importable, else cv2 INTER_AREA), cut into 480x480 sub-images
(step 240, thresh 0: 40 per image, BasicSR's DIV2K settings) and packed into an LMDB per field.

Contenders, on the same folder, in the same run, taking turns within each repeat:

* **baseline**: what BasicSR's ``scripts/data_preparation/extract_subimages.py`` + ``create_lmdb.py`` do,
  restated here (basicsr itself cannot be installed next to pillow-simd): crop HR and LR *separately*
  with cv2 into folders of PNG sub-images (``IMWRITE_PNG_COMPRESSION`` 3), then read every sub-image back
  (a process pool, all in memory) and write a PNG LMDB (level 1) whose map size is guessed from the first
  image (x10), with ``meta_info.txt``. Both passes use a pool of ``--jobs`` processes, as the scripts do.
* **srprep png**: ``srprep pack DATA OUT --crop --encoding png`` (BasicSR-compatible output).
* **srprep raw**: ``srprep pack DATA OUT --crop`` (raw pixels: no decode when training).

Two measures: wall time with ``--jobs`` workers (median of ``--repeats`` runs, and the range of the
per-run speed-ups), and CPU time (user + system, children included) with one worker, which hardly depends
on what else a shared machine is doing.

Then the random-read throughput of 96x96 HR patches (a random sub-image, a random window), 1 and 2 reader
processes, from: srprep raw LMDB, srprep PNG LMDB, srprep HDF5 (raw, uncompressed), and the baseline's PNG
sub-image folder. Raw stores read only the window (``read_region``); PNG stores decode the whole sub-image.
All data is in the page cache (warm), as it is during training once the first epoch has run.

Usage::

    .venv/bin/python benchmarks/bench_pack.py --images 8 --repeats 3
    .venv/bin/python benchmarks/bench_pack.py --images 8 --repeats 3 --results benchmarks/RESULTS.md
"""
from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import lmdb
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from srprep.io.hdf5_store import Hdf5Store  # noqa: E402
from srprep.io.images import read_image, write_image  # noqa: E402
from srprep.io.lmdb_store import LmdbStore  # noqa: E402
from srprep.io.stores import FolderStore  # noqa: E402
from srprep.stages.crop import CropOptions  # noqa: E402
from srprep.stages.pack import pack  # noqa: E402

SECTION = "## Crop and pack (srprep crop/pack)"
HW = (1356, 2040)
SIZE, STEP, THRESH = 480, 240, 0


# ------------------------------------------------------------------------------------------ data


def make_dataset(root: Path, n: int) -> None:
    """``root/HR/0001.png`` ... and ``root/X2/0001x2.png`` ...: 2040x1356 photos and their x2 LR."""
    kodak = [read_image(p) for p in sorted((REPO / "srprep/samples/kodak").glob("*.png"))]
    try:
        from srprep.ops.imresize import imresize_matlab

        def lr_of(hr):
            return imresize_matlab(hr, 0.5)
    except ImportError:
        def lr_of(hr):
            return cv2.resize(hr, (hr.shape[1] // 2, hr.shape[0] // 2), interpolation=cv2.INTER_AREA)
    for i in range(n):
        src = kodak[i % len(kodak)]
        if i >= len(kodak):
            src = src[:, ::-1].copy()  # a mirrored photo: new content for the 9th image onwards
        hr = cv2.resize(src, (HW[1], HW[0]), interpolation=cv2.INTER_CUBIC)
        write_image(root / f"HR/{i + 1:04d}.png", hr)
        write_image(root / f"X2/{i + 1:04d}x2.png", lr_of(hr))


# ------------------------------------------------------------------------------------------ baseline

def _positions(length: int, size: int, step: int, thresh: int) -> np.ndarray:
    space = np.arange(0, length - size + 1, step)
    if length - (space[-1] + size) > thresh:
        space = np.append(space, length - size)
    return space


def _extract_one(path: str, out: str, size: int, step: int, thresh: int, level: int) -> None:
    # One image of extract_subimages.py: its own grid, cv2 PNG files, "x2" dropped from the name.
    stem = Path(path).stem
    for tag in ("x2", "x3", "x4", "x8"):
        stem = stem.replace(tag, "")
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    h, w = img.shape[:2]
    index = 0
    for y in _positions(h, size, step, thresh):
        for x in _positions(w, size, step, thresh):
            index += 1
            crop = np.ascontiguousarray(img[y:y + size, x:x + size])
            cv2.imwrite(os.path.join(out, f"{stem}_s{index:03d}.png"), crop, [cv2.IMWRITE_PNG_COMPRESSION, level])


def _read_encode(path: str, level: int):
    # create_lmdb's read worker: decode the PNG, encode it again at the LMDB's level, remember the shape.
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, level])
    return Path(path).stem, buf, img.shape


def baseline(data: Path, out: Path, jobs: int) -> dict[str, float]:
    """The two-pass recipe; returns the seconds of each pass."""
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for folder, size, step in (("HR", SIZE, STEP), ("X2", SIZE // 2, STEP // 2)):
            sub = out / f"{folder}_sub"
            sub.mkdir(parents=True)
            paths = sorted(str(p) for p in (data / folder).glob("*.png"))
            pool.starmap(_extract_one, [(p, str(sub), size, step, THRESH, 3) for p in paths])
    t1 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for folder in ("HR", "X2"):
            paths = sorted(str(p) for p in (out / f"{folder}_sub").glob("*.png"))
            records = pool.starmap(_read_encode, [(p, 1) for p in paths])  # everything in memory at once
            first = cv2.imencode(".png", cv2.imread(paths[0], cv2.IMREAD_UNCHANGED),
                                 [cv2.IMWRITE_PNG_COMPRESSION, 1])[1]
            env = lmdb.open(str(out / f"{folder}_sub.lmdb"), map_size=first.nbytes * len(paths) * 10)
            txn = env.begin(write=True)
            with open(out / f"{folder}_sub.lmdb" / "meta_info.txt", "w") as meta:
                for i, (key, buf, (h, w, c)) in enumerate(records):
                    txn.put(key.encode("ascii"), buf)
                    meta.write(f"{key}.png ({h},{w},{c}) 1\n")
                    if i % 5000 == 0:
                        txn.commit()
                        txn = env.begin(write=True)
            txn.commit()
            env.close()
    t2 = time.perf_counter()
    return {"extract": t1 - t0, "lmdb": t2 - t1, "total": t2 - t0}


def srprep_pack(data: Path, out: Path, encoding: str, jobs: int, fmt: str = "lmdb") -> float:
    t0 = time.perf_counter()
    pack(data, out, fmt=fmt, encoding=encoding, crop=CropOptions(SIZE, STEP, THRESH), jobs=jobs, progress=False)
    return time.perf_counter() - t0


def cpu_seconds(fn) -> float:
    """CPU time (user + system) of ``fn()`` in this process and the child processes it waited for.

    Unlike wall time it hardly depends on what else the machine runs, so it is the fair comparison on a
    shared machine; measured with one worker (srprep runs it in this process, the baseline in a pool of 1).
    """
    def now():
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    t0 = now()
    fn()
    return now() - t0


# ------------------------------------------------------------------------------------------ reading


def _open(kind: str, path: Path):
    if kind == "folder":
        return FolderStore(path)
    if kind == "hdf5":
        return Hdf5Store(path, "HR")
    return LmdbStore(path)


def _reader(kind: str, path: str, seconds: float, seed: int, queue) -> None:
    store = _open(kind, Path(path))  # opened in this process: what a DataLoader worker does
    keys = store.keys()
    rng = np.random.default_rng(seed)
    patch = 96
    n, t_end = 0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        for _ in range(16):
            key = keys[rng.integers(len(keys))]
            y, x = rng.integers(0, SIZE - patch + 1, 2)
            if hasattr(store, "read_region"):
                out = store.read_region(key, int(y), int(x), patch, patch)
            else:
                out = store.read(key)[y:y + patch, x:x + patch]
            assert out.shape == (patch, patch, 3)
            n += 1
    queue.put(n / seconds)


def read_throughput(kind: str, path: Path, workers: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_reader, args=(kind, str(path), seconds, 1000 + i, q)) for i in range(workers)]
    for p in procs:
        p.start()
    rates = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


# ------------------------------------------------------------------------------------------ report


def disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_blocks * 512
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file() and p.name != "lock.mdb")


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return f'`lscpu` "{info.get("Model name", "?").strip()}", {info.get("CPU(s)", "?").strip()} cores'
    except OSError:
        return f"{os.cpu_count()} cores"


def replace_section(path: Path, text: str) -> None:
    """Put ``text`` in place of the section with the same heading (its first line), or append it; other
    sections stay. Each benchmark's text starts with its own heading."""
    heading = text.splitlines()[0].strip()
    old = path.read_text() if path.exists() else ""
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        new = old + ("" if not old or old.endswith("\n\n") else "\n" if old.endswith("\n") else "\n\n") + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "".join(lines[:start]) + text + ("\n" if end < len(lines) else "") + "".join(lines[end:])
    path.write_text(new)


def reads_only(data: Path, work: Path, args) -> None:
    """Raw vs PNG LMDB, one reader each, taking turns: the one ratio the docs quote."""
    load = os.getloadavg()[0]
    stores = {}
    for encoding in ("raw", "png"):
        out = work / f"reads_{encoding}"
        shutil.rmtree(out, ignore_errors=True)
        srprep_pack(data, out, encoding, args.jobs)
        stores[encoding] = out / "HR.lmdb"
    cv2.setNumThreads(1)
    rates: dict[str, list[float]] = {"raw": [], "png": []}
    for _ in range(args.repeats):
        for encoding, path in stores.items():
            rates[encoding].append(read_throughput("lmdb", path, 1, args.read_seconds))
    ratios = sorted(r / p for r, p in zip(rates["raw"], rates["png"]))
    print(f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}; 96x96 patches/s, 1 reader, median of "
          f"{args.repeats}: raw LMDB {statistics.median(rates['raw']):,.0f}, PNG LMDB "
          f"{statistics.median(rates['png']):,.0f}; raw/PNG {statistics.median(ratios):.0f}x "
          f"(per turn {ratios[0]:.0f}-{ratios[-1]:.0f}x)")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=8, help="2040x1356 images in the dataset")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each contender (median reported)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for every contender")
    ap.add_argument("--read-seconds", type=float, default=4.0, help="duration of each read measurement")
    ap.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temporary folder)")
    ap.add_argument("--results", type=Path, default=None, help="write the section into this Markdown file")
    ap.add_argument("--reads-only", action="store_true",
                    help="only the raw vs PNG LMDB patch-read comparison (1 reader, --repeats turns each)")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_pack_"))
    data = work / "data"
    if not (data / "HR").is_dir():
        make_dataset(data, args.images)
    if args.reads_only:
        reads_only(data, work, args)
        return
    load = os.getloadavg()[0]
    times: dict[str, list[float]] = {"baseline": [], "baseline extract": [], "baseline lmdb": [],
                                     "srprep png": [], "srprep raw": []}
    for r in range(args.repeats):
        for name in ("baseline", "srprep png", "srprep raw"):
            out = work / f"run_{name.replace(' ', '_')}"
            shutil.rmtree(out, ignore_errors=True)
            if name == "baseline":
                t = baseline(data, out, args.jobs)
                times["baseline"].append(t["total"])
                times["baseline extract"].append(t["extract"])
                times["baseline lmdb"].append(t["lmdb"])
            else:
                times[name].append(srprep_pack(data, out, name.split()[1], args.jobs))
            print(f"repeat {r + 1}: {name} {times[name][-1]:.1f} s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {name: sorted(b / t for b, t in zip(times["baseline"], times[name]))
              for name in ("srprep png", "srprep raw")}
    cpu = {}
    for name in ("baseline", "srprep png", "srprep raw"):
        out = work / f"cpu_{name.replace(' ', '_')}"
        shutil.rmtree(out, ignore_errors=True)
        if name == "baseline":
            cpu[name] = cpu_seconds(lambda: baseline(data, out, 1))
        else:
            cpu[name] = cpu_seconds(lambda: srprep_pack(data, out, name.split()[1], 1))
        shutil.rmtree(out, ignore_errors=True)
        print(f"cpu: {name} {cpu[name]:.1f} s", file=sys.stderr)

    h5 = work / "run_srprep_hdf5"
    shutil.rmtree(h5, ignore_errors=True)
    t_h5 = srprep_pack(data, h5, "raw", args.jobs, fmt="hdf5")
    base, png, raw = work / "run_baseline", work / "run_srprep_png", work / "run_srprep_raw"
    n_sub = len(LmdbStore(raw / "HR.lmdb").keys())
    sizes = {
        "baseline: sub-image PNG folders (level 3)": disk(base / "HR_sub") + disk(base / "X2_sub"),
        "baseline: PNG LMDBs (level 1)": disk(base / "HR_sub.lmdb") + disk(base / "X2_sub.lmdb"),
        "srprep png: LMDBs (level 1)": disk(png / "HR.lmdb") + disk(png / "X2.lmdb"),
        "srprep raw: LMDBs": disk(raw / "HR.lmdb") + disk(raw / "X2.lmdb"),
        "srprep raw: HDF5 (uncompressed)": disk(h5 / "data.h5"),
    }
    # One OpenCV thread per reader, set here: calling setNumThreads in a forked child can deadlock on the
    # thread pool it inherited.
    cv2.setNumThreads(1)
    readers = [("srprep raw LMDB", "lmdb", raw / "HR.lmdb"), ("srprep PNG LMDB", "lmdb", png / "HR.lmdb"),
               ("srprep HDF5 (raw)", "hdf5", h5 / "data.h5"),
               ("PNG folder (baseline HR_sub)", "folder", base / "HR_sub")]
    reads = {(label, w): read_throughput(kind, path, w, args.read_seconds) for label, kind, path in readers
             for w in (1, 2)}

    import lmdb as _lmdb
    import h5py

    lines = [SECTION, "",
             f"Date {datetime.date.today().isoformat()}. Machine: {machine()}, KVM guest shared with other jobs "
             f"(load average {load:.1f} at the start). Python {sys.version.split()[0]}, OpenCV {cv2.__version__}, "
             f"lmdb {_lmdb.__version__}, h5py {h5py.__version__}. Command: `benchmarks/bench_pack.py --images "
             f"{args.images} --repeats {args.repeats} --jobs {args.jobs}`.",
             "",
             f"Workload: {args.images} photos of 2040x1356 (Kodak crops upscaled with cv2 INTER_CUBIC) + x2 LR, "
             f"PNG files in the page cache -> 480x480 sub-images, step 240 ({n_sub} per field) -> one LMDB per "
             f"field (HR, X2). Every contender uses {args.jobs} worker processes; median of {args.repeats} runs, "
             "contenders taking turns.",
             "",
             f"| end to end, folder of 2K PNGs -> LMDB of sub-images | wall s, {args.jobs} workers (median) | "
             "speed-up per run (min-max) | CPU s, 1 worker | speed-up in CPU |",
             "|---|---:|---:|---:|---:|",
             f"| baseline (BasicSR recipe): extract sub-image PNGs, then create_lmdb | {med['baseline']:.1f} | 1.0x | "
             f"{cpu['baseline']:.1f} | 1.0x |",
             f"| &nbsp;&nbsp;pass 1, extract_subimages (HR, X2; PNG level 3) | {med['baseline extract']:.1f} | | | |",
             f"| &nbsp;&nbsp;pass 2, create_lmdb (read all, re-encode level 1) | {med['baseline lmdb']:.1f} | | | |",
             f"| srprep `pack --crop --encoding png` (same PNG LMDB, BasicSR-readable) | {med['srprep png']:.1f} | "
             f"{ratios['srprep png'][0]:.1f}-{ratios['srprep png'][-1]:.1f}x | {cpu['srprep png']:.1f} | "
             f"{cpu['baseline'] / cpu['srprep png']:.1f}x |",
             f"| srprep `pack --crop` (raw LMDB) | {med['srprep raw']:.1f} | "
             f"{ratios['srprep raw'][0]:.1f}-{ratios['srprep raw'][-1]:.1f}x | {cpu['srprep raw']:.1f} | "
             f"{cpu['baseline'] / cpu['srprep raw']:.1f}x |",
             f"| srprep `pack --crop --format hdf5` (raw, one run) | {t_h5:.1f} | {med['baseline'] / t_h5:.1f}x | | |",
             "",
             "| on disk | MiB |", "|---|---:|"]
    lines += [f"| {k} | {v / 2**20:.0f} |" for k, v in sizes.items()]
    lines += ["", "Random reads of 96x96 HR patches (random sub-image, random window), warm page cache, each "
              f"reader process opening its own handle, {args.read_seconds:.0f} s per cell:", "",
              "| store | patches/s, 1 reader | patches/s, 2 readers |", "|---|---:|---:|"]
    lines += [f"| {label} | {reads[(label, 1)]:,.0f} | {reads[(label, 2)]:,.0f} |" for label, _, _ in readers]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        replace_section(args.results, text)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
