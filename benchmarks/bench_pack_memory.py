"""Pack at its floor, memory flat with the corpus: ``srprep pack`` (raw LMDB) vs a plain decode+write script.

Workload: folders of N DIV2K-sized images (2040x1356 PNG + x2 LR), N = ``--sizes`` (default 10, 100, 400).
The photos are synthetic but photographic: ``--distinct`` Kodak crops, each rolled sideways by a different
amount and upscaled with cv2 INTER_CUBIC (LR: MATLAB bicubic); the N files are hard links to them, named
0001..N (every file is still decoded; only the time to make the data set is saved).

Contenders, each run in a fresh Python process with ``--jobs`` worker processes, taking turns:

* **floor**: what packing cannot avoid: a pool decodes each image's HR and LR PNG (cv2) and writes the
  pixels (whole, or the 480/240 sub-images with ``--crop``) to one file per worker; fsync at the end.
* **srprep**: ``srprep.stages.pack.pack(DATA, OUT[, crop])``, raw LMDB, as ``srprep pack`` runs it.

Measured: the wall time of the work inside the process (not the interpreter's start), and, sampled every
0.1 s, the private memory (USS: ``Private_Clean + Private_Dirty`` of /proc/PID/smaps_rollup; mapped file
pages such as the LMDB's are shared, not private) of the parent and of the largest worker, their peaks.
RSS is shown beside it for contrast.

Usage::

    .venv/bin/python benchmarks/bench_pack_memory.py --sizes 10 100 400 --results benchmarks/RESULTS.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from _common import cpu_name  # noqa: E402

SECTION = "## Pack: floor and private memory (srprep pack)"
HW = (1356, 2040)

FLOOR = r'''
import os, sys, time, multiprocessing
import cv2, numpy as np
data, out, jobs, crop = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
cv2.setNumThreads(1)

def positions(n, size, step):
    p = list(range(0, n - size + 1, step))
    if n - (p[-1] + size) > 0:
        p.append(n - size)
    return p

def work(name):
    fd = os.open(f"{out}/part{os.getpid()}", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for folder, file, s in (("HR", name, 1), ("X2", name.replace(".png", "x2.png"), 2)):
        img = cv2.imread(f"{data}/{folder}/{file}", cv2.IMREAD_UNCHANGED)
        if crop:
            h, w = (img.shape[0] // 2) * 2 // s, (img.shape[1] // 2) * 2 // s
            for y in positions(h * s, 480, 240):
                for x in positions(w * s, 480, 240):
                    os.write(fd, np.ascontiguousarray(img[y // s:(y + 480) // s, x // s:(x + 480) // s]).data)
        else:
            os.write(fd, img.data)
    os.close(fd)

if __name__ == "__main__":
    names = sorted(os.listdir(f"{data}/HR"))
    os.makedirs(out)
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for _ in pool.imap_unordered(work, names):
            pass
    for f in os.listdir(out):
        fd = os.open(f"{out}/{f}", os.O_RDONLY); os.fsync(fd); os.close(fd)
    print("SECONDS", time.perf_counter() - t0)
'''

SRPREP = r'''
import sys, time
from srprep.stages.crop import CropOptions
from srprep.stages.pack import pack
data, out, jobs, crop = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
t0 = time.perf_counter()
pack(data, out, crop=CropOptions(480, 240, 0) if crop else None, jobs=jobs, progress=False)
print("SECONDS", time.perf_counter() - t0)
'''


def make_corpus(root: Path, distinct: int, sizes: list[int]) -> dict[int, Path]:
    import cv2
    import numpy as np

    from srprep.io.images import read_image, write_image
    from srprep.ops.imresize import imresize_matlab

    base = root / "distinct"
    if not (base / "X2").is_dir():
        kodak = [read_image(p) for p in sorted((REPO / "srprep/samples/kodak").glob("*.png"))]
        for i in range(distinct):
            src = np.roll(kodak[i % len(kodak)], (i // len(kodak)) * 97, axis=1)
            hr = cv2.resize(src, (HW[1], HW[0]), interpolation=cv2.INTER_CUBIC)
            write_image(base / f"HR/{i:04d}.png", hr)
            write_image(base / f"X2/{i:04d}x2.png", imresize_matlab(hr, 0.5))
    out = {}
    for n in sizes:
        folder = root / f"n{n}"
        if not (folder / "X2").is_dir():
            for sub in ("HR", "X2"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                os.link(base / f"HR/{i % distinct:04d}.png", folder / f"HR/{i + 1:04d}.png")
                os.link(base / f"X2/{i % distinct:04d}x2.png", folder / f"X2/{i + 1:04d}x2.png")
        out[n] = folder
    return out


def memory(pid: int) -> tuple[int, int, int]:
    """(anonymous, USS, RSS) bytes of one process, from /proc/PID/smaps_rollup. Anonymous memory is the
    process's own (heap, buffers); USS adds file pages only this process maps (for the writer, the LMDB's
    pages it touched: page cache, reclaimable)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) * 1024
    return fields["Anonymous"], fields["Private_Clean"] + fields["Private_Dirty"], fields["Rss"]


def children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(k) for k in kids]


def run(script: str, data: Path, out: Path, jobs: int, crop: bool) -> dict:
    """Run a contender in a fresh interpreter; its seconds and peak USS/RSS of parent and largest worker."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(data), str(out), str(jobs), "1" if crop else "0"],
                            stdout=subprocess.PIPE, text=True, env=env)
    peak = {"parent_anon": 0, "parent_uss": 0, "parent_rss": 0, "worker_anon": 0, "worker_uss": 0, "worker_rss": 0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                for who, pids in (("parent", [proc.pid]), ("worker", children(proc.pid))):
                    for pid in pids:
                        for kind, value in zip(("anon", "uss", "rss"), memory(pid)):
                            peak[f"{who}_{kind}"] = max(peak[f"{who}_{kind}"], value)
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    stdout, _ = proc.communicate()
    done.set()
    thread.join()
    if proc.returncode:
        raise SystemExit(f"contender failed ({proc.returncode})")
    peak["seconds"] = float(next(line.split()[1] for line in stdout.splitlines() if line.startswith("SECONDS")))
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 400])
    ap.add_argument("--distinct", type=int, default=16, help="distinct photos behind the hard links")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--crop", action="store_true", help="480x480 sub-images, step 240 (pack --crop)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--results", type=Path, default=None)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_pack_memory_"))
    corpora = make_corpus(work, args.distinct, args.sizes)
    loads, rows = [os.getloadavg()[0]], {}
    for n, data in corpora.items():
        for name, script in (("floor", FLOOR), ("srprep", SRPREP)):
            out = work / f"out_{name}_{n}"
            shutil.rmtree(out, ignore_errors=True)
            os.sync()
            rows[(name, n)] = run(script, data, out, args.jobs, args.crop)
            shutil.rmtree(out, ignore_errors=True)
            loads.append(os.getloadavg()[0])
            print(n, name, json.dumps(rows[(name, n)]), file=sys.stderr)
    mib = 2 ** 20
    what = "480x480 sub-images, step 240 (`pack --crop`)" if args.crop else "whole images (`pack`)"
    lines = [SECTION + (" --crop" if args.crop else ""), "",
             f"Date {datetime.date.today().isoformat()}. Machine: {cpu_name()}, {os.cpu_count()} cores, shared "
             f"(load average {min(loads):.1f}-{max(loads):.1f} during the run). Command: `benchmarks/"
             f"bench_pack_memory.py --sizes {' '.join(map(str, args.sizes))} --distinct {args.distinct} --jobs "
             f"{args.jobs}{' --crop' if args.crop else ''}`.", "",
             f"N synthetic-but-photographic 2040x1356 PNGs + x2 LR (hard links to {args.distinct} upscaled Kodak "
             f"crops) -> raw LMDB, {what}, {args.jobs} workers, floor and srprep taking turns in one run, each "
             "in a fresh process. Peaks over the run, from smaps_rollup: anonymous = the process's own memory; USS = "
             "Private_Clean + Private_Dirty, which also counts the LMDB file pages only the writer maps (page "
             "cache it touched when it recorded each value's offset at the end: reclaimable, not its own).", "",
             "| images | floor s | srprep s | srprep / floor | srprep parent anonymous MiB | parent USS MiB | "
             "worker anonymous MiB (largest) | parent RSS MiB | floor parent / worker anonymous MiB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in corpora:
        f, s = rows[("floor", n)], rows[("srprep", n)]
        lines.append(f"| {n} | {f['seconds']:.1f} | {s['seconds']:.1f} | {s['seconds'] / f['seconds']:.2f}x | "
                     f"{s['parent_anon'] / mib:,.0f} | {s['parent_uss'] / mib:,.0f} | {s['worker_anon'] / mib:,.0f} | "
                     f"{s['parent_rss'] / mib:,.0f} | {f['parent_anon'] / mib:,.0f} / {f['worker_anon'] / mib:,.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_pack import replace_section
        import bench_pack

        bench_pack.SECTION = lines[0]
        replace_section(args.results, text)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
