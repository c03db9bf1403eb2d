"""Image codec throughput: pillow-simd vs OpenCV side by side, plus srprep.io.images itself.

Two image sets:

* ``samples``: the 13 PNGs bundled in ``srprep/samples`` (Set5 at original size, eight 500x500 Kodak crops);
* ``2040x1356``: one DIV2K-sized photo, a 4x2 mosaic of the eight Kodak crops, each upscaled to 510x678
  with cv2 INTER_CUBIC (real photographic content, no repeated tiles that would flatter the compressor).

Every operation works in memory (encoded bytes <-> RGB uint8 array), so disk speed does not enter, and
includes the RGB<->BGR conversion cv2 needs, since callers want RGB; decoders deliver a writable array. Inputs of the decode rows: the bundled
PNG files as shipped; for the big image and for JPEG (q95, 4:2:0), BMP and TIFF (uncompressed, one strip),
files written by Pillow; "TIFF decode (cv2-written)" reads cv2's uncompressed TIFFs (one row per strip),
because TIFF decode speed depends on the strip layout. A sample runs whole passes over the set for at least
``--min-time`` seconds; within each repeat the backends take turns, so that load from other processes hits
them alike; the table reports the median sample. OpenCV is limited to one thread so that both libraries
are compared single-threaded.

Usage::

    .venv/bin/python benchmarks/bench_io.py --repeats 5
"""
from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import PIL
from _common import cpu_name
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from srprep.io import images as srio  # noqa: E402

SAMPLES = REPO / "srprep" / "samples"
BIG_HW = (1356, 2040)


def load_sets() -> dict[str, list[tuple[np.ndarray, bytes]]]:
    """Set name -> [(RGB array, original PNG bytes)]."""
    files = sorted(SAMPLES.glob("*/*.png"))
    samples = [(srio.read_image(p), p.read_bytes()) for p in files]
    kodak = [srio.read_image(p) for p in sorted((SAMPLES / "kodak").glob("*.png"))]
    th, tw = BIG_HW[0] // 2, BIG_HW[1] // 4
    tiles = [cv2.resize(k, (tw, th), interpolation=cv2.INTER_CUBIC) for k in kodak[:8]]
    big = np.concatenate([np.concatenate(tiles[:4], axis=1), np.concatenate(tiles[4:8], axis=1)], axis=0)
    assert big.shape[:2] == BIG_HW, big.shape
    return {"samples": samples, "2040x1356": [(big, pil_encode(big, "PNG"))]}


# ------------------------------------------------------------------------------------------ backends


def pil_decode(data: bytes) -> np.ndarray:
    # np.asarray(im) is read-only (it wraps Pillow's bytes); the copy gives a writable array like cv2's,
    # which is what a caller of srprep gets, so both columns deliver the same product.
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im).copy()


def cv2_decode(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


_PIL_OPTS = {"PNG1": ("PNG", {"compress_level": 1}), "PNG6": ("PNG", {"compress_level": 6}),
             "JPEG": ("JPEG", {"quality": 95}), "BMP": ("BMP", {}), "TIFF": ("TIFF", {})}
_CV2_OPTS = {"PNG1": (".png", [cv2.IMWRITE_PNG_COMPRESSION, 1]),
             "PNG6": (".png", [cv2.IMWRITE_PNG_COMPRESSION, 6]),
             "JPEG": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]),
             "BMP": (".bmp", []),
             "TIFF": (".tiff", [cv2.IMWRITE_TIFF_COMPRESSION, cv2.IMWRITE_TIFF_COMPRESSION_NONE])}
_SRPREP_OPTS = {"PNG1": (".png", {"png_level": 1}), "PNG6": (".png", {"png_level": 6}),
                "JPEG": (".jpg", {"jpeg_quality": 95}), "BMP": (".bmp", {}), "TIFF": (".tiff", {})}


def pil_encode(rgb: np.ndarray, kind: str) -> bytes:
    fmt, opts = _PIL_OPTS.get(kind, (kind, {}))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **opts)
    return buf.getvalue()


def cv2_encode(rgb: np.ndarray, kind: str) -> bytes:
    ext, params = _CV2_OPTS[kind]
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    assert ok
    return buf.tobytes()


def srprep_encode(rgb: np.ndarray, kind: str) -> bytes:
    ext, opts = _SRPREP_OPTS[kind]
    return srio.encode_image(rgb, ext, **opts)


# ------------------------------------------------------------------------------------------ timing


def bench(items: list, funcs: dict, repeats: int, min_time: float) -> dict[str, float]:
    """Median seconds per pass over ``items`` for each function.

    One sample = as many whole passes as fit in ``min_time`` (at least one), divided out, so that a single
    big image is not timed from one short call. Backends are interleaved within each repeat.
    """
    for f in funcs.values():  # warm-up: page in code and caches
        for it in items:
            f(it)
    times: dict[str, list[float]] = {k: [] for k in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():
            passes = 0
            t0 = time.perf_counter()
            while True:
                for it in items:
                    f(it)
                passes += 1
                elapsed = time.perf_counter() - t0
                if elapsed >= min_time:
                    break
            times[name].append(elapsed / passes)
    return {k: statistics.median(v) for k, v in times.items()}


def machine() -> str:
    import os

    return (f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"opencv-python-headless {cv2.__version__}, pillow-simd (PIL) {PIL.__version__}, "
            f"numpy {np.__version__}; cv2 threads set to 1")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed samples per operation (median reported)")
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds per timed sample (whole passes)")
    ap.add_argument("--sets", nargs="+", default=["samples", "2040x1356"], help="image sets to run")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)

    sets = load_sets()
    rows = []
    for set_name in args.sets:
        pairs = sets[set_name]
        arrays = [a for a, _ in pairs]
        mpix_bytes = sum(a.nbytes for a in arrays) / 1e6
        encoded = {"PNG": [b for _, b in pairs]}
        for kind in ("JPEG", "BMP", "TIFF"):
            encoded[kind] = [pil_encode(a, kind) for a in arrays]
        encoded["TIFF-cv2"] = [cv2_encode(a, "TIFF") for a in arrays]
        for kind in ("PNG", "JPEG", "BMP", "TIFF", "TIFF-cv2"):
            label = {"PNG": "PNG decode", "JPEG": "JPEG q95 decode",
                     "TIFF-cv2": "TIFF decode (cv2-written)"}.get(kind, f"{kind} decode")
            names = [f"x.{kind.lower()[:4]}"] * len(encoded[kind])
            items = list(zip(encoded[kind], names))
            t = bench(items, {"PIL": lambda it: pil_decode(it[0]), "cv2": lambda it: cv2_decode(it[0]),
                              "srprep": lambda it: srio.decode_image(it[0], it[1])}, args.repeats, args.min_time)
            rows.append((label, set_name, len(items), mpix_bytes, t, None))
        for kind in ("PNG1", "PNG6", "JPEG", "BMP", "TIFF"):
            label = {"PNG1": "PNG encode level 1", "PNG6": "PNG encode level 6",
                     "JPEG": "JPEG q95 encode"}.get(kind, f"{kind} encode")
            size = sum(len(cv2_encode(a, kind)) for a in arrays) / sum(len(pil_encode(a, kind)) for a in arrays)
            t = bench(arrays, {"PIL": lambda a, k=kind: pil_encode(a, k), "cv2": lambda a, k=kind: cv2_encode(a, k),
                               "srprep": lambda a, k=kind: srprep_encode(a, k)}, args.repeats, args.min_time)
            rows.append((label, set_name, len(arrays), mpix_bytes, t, size))

    print(f"Machine: {machine()}  ")
    print(f"Median of {args.repeats} samples of >= {args.min_time} s each; MB = 10^6 bytes of decoded RGB pixels; "
          "cv2/PIL > 1 means cv2 is faster.\n")
    print("| operation | set (n) | PIL img/s | PIL MB/s | cv2 img/s | cv2 MB/s | cv2/PIL | srprep img/s "
          "| size cv2/PIL |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, set_name, n, mb, t, size in rows:
        p, c, s = t["PIL"], t["cv2"], t["srprep"]
        size_s = "" if size is None else f"{size:.3f}"
        print(f"| {label} | {set_name} ({n}) | {n / p:.1f} | {mb / p:.0f} | {n / c:.1f} | {mb / c:.0f} "
              f"| {p / c:.2f} | {n / s:.1f} | {size_s} |")


if __name__ == "__main__":
    main()
