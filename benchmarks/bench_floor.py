"""Data steps against their floors, side by side in one run: downsample, degrade, PNG codecs, start-up.

Data: ``--images`` distinct DIV2K-sized (2040x1356) photos, each a 4x2 mosaic of the eight bundled Kodak crops
(each upscaled to 510x678 with cv2 INTER_CUBIC, the order rotated per photo, mirrored from the 9th, rolled
sideways from the 17th), written once as PNG (level 1). Every route runs in this one process, one image at a
time (srprep with ``jobs=1``), so that the routes share the machine the same way; each route writes to its
own fresh folder.

Routes:

* ``downsample`` -> X2/X3/X4 with HR: srprep ``downsample`` (default: uint8 convention, DST/HR linked when
  its pixels are the source's); its **floor**: one ``read_image`` per HR plus one ``write_image`` per LR (the
  LR pixels made beforehand, so the floor has no resize); the **BasicSR route**: ``cv2.imread``, BasicSR
  1.4.2's ``imresize`` of ``img / 255`` (float32) per scale, ``round(x * 255)``, ``cv2.imwrite`` of each LR
  and of the HR (OpenCV's default PNG parameters), as BasicSR's ``generate_multiscale``-style scripts do.
* ``degrade``: srprep ``degrade --recipe reflash`` (eight sets + HR) against a plain script (decode once,
  ``apply_reflash`` per set from the HR, ``write_image`` per LR; the HR left where it is), and
  ``--recipe realesrgan -k 2`` against a plain loop (decode, sharpen, ``draw_params`` + ``apply`` per copy,
  ``write_image``; the sharpened HR written once).
* ``png``: encoders and decoders on one 2040x1356 photo (median of ``--repeats``): ms, bytes, and whether
  decoding gives the same pixels.
* ``startup``: wall time of ``python -m srprep --help`` and of a cached no-op rerun of ``srprep downsample``
  (2 images, x2 and x4), this tree against ``--previous DIR`` (another checkout), alternating, median of
  ``--repeats``.

Usage::

    .venv/bin/python benchmarks/bench_floor.py --images 16 --previous ../main
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))
from _common import cpu_name  # noqa: E402
from bench_imresize import BASELINES, BASICSR, fetch_baselines, load_module  # noqa: E402
from bench_pairs import mosaics  # noqa: E402

from srprep.io import images  # noqa: E402
from srprep.stages.downsample import DownsampleOptions, downsample, downsample_image  # noqa: E402

SCALES = (2, 3, 4)


def photos(n: int) -> list[np.ndarray]:
    """n distinct 2040x1356 photos."""
    out = mosaics(min(n, 16))
    while len(out) < n:
        out.append(np.ascontiguousarray(np.roll(out[len(out) % 16], 97 * (len(out) // 16), axis=1)))
    return out


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ------------------------------------------------------------------------------------------ downsample
def bench_downsample(src: Path, tmp: Path, basicsr) -> list[tuple[str, float]]:
    files = sorted(src.glob("*.png"))
    lrs = {p.stem: {s: downsample_image(images.read_image(p), s, DownsampleOptions()) for s in SCALES}
           for p in files}

    def ours():
        downsample(src, tmp / "ours", list(SCALES), jobs=1, progress=False)

    def floor():
        for p in files:
            images.read_image(p)
            for s in SCALES:
                images.write_image(tmp / f"floor/X{s}/{p.stem}x{s}.png", lrs[p.stem][s])

    def basicsr_route():
        for s in SCALES:
            (tmp / f"bsr/X{s}").mkdir(parents=True, exist_ok=True)
        (tmp / "bsr/HR").mkdir(parents=True, exist_ok=True)
        for p in files:
            img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(str(tmp / f"bsr/HR/{p.name}"), img)
            for s in SCALES:
                lr = basicsr.imresize(img.astype(np.float32) / 255.0, 1 / s)
                cv2.imwrite(str(tmp / f"bsr/X{s}/{p.stem}x{s}.png"),
                            np.clip(np.round(lr * 255.0), 0, 255).astype(np.uint8))

    rows = [("srprep downsample -s 2 -s 3 -s 4 (with HR)", timed(ours)),
            ("floor: 1 decode per HR + 1 encode per LR", timed(floor)),
            ("BasicSR route: cv2.imread, BasicSR imresize x3, cv2.imwrite LR + HR", timed(basicsr_route))]
    for s in SCALES:  # the routes agree (BasicSR's float32 imresize may differ by a level in a few pixels)
        a = images.read_image(tmp / f"ours/X{s}/{files[0].stem}x{s}.png")
        assert np.array_equal(a, lrs[files[0].stem][s])
    return rows


# ------------------------------------------------------------------------------------------ degrade
def bench_degrade(src: Path, tmp: Path, n: int) -> list[tuple[str, float]]:
    from srprep.ops.degrade.pipeline import apply, draw_params
    from srprep.ops.degrade.recipes import RECIPE_NAMES, apply_reflash
    from srprep.ops.degrade.rng import item_rng
    from srprep.stages.degrade import DegradeOptions, _realesrgan_config, degrade, sharpen_gt

    sub = tmp / "deg_src"
    sub.mkdir()
    for p in sorted(src.glob("*.png"))[:n]:
        os.link(p, sub / p.name)
    files = sorted(sub.glob("*.png"))
    cfg = _realesrgan_config(scale=4)

    def reflash_plain():
        for p in files:
            hr = images.read_image(p)
            for name in RECIPE_NAMES:
                lr, _ = apply_reflash(hr, name, seed=0, key=p.stem)
                images.write_image(tmp / f"plain_reflash/{name}/{p.name}", lr)

    def realesrgan_plain():
        for p in files:
            gt = sharpen_gt(images.read_image(p))
            images.write_image(tmp / f"plain_resr/HR/{p.name}", gt)
            for k in range(2):
                params = draw_params(cfg, item_rng(0, f"{p.stem}/{k}"), gt.shape[:2])
                images.write_image(tmp / f"plain_resr/LR/{p.stem}_c{k}x4.png", apply(gt, params))

    return [
        ("srprep degrade --recipe reflash (8 sets + HR)",
         timed(lambda: degrade(sub, tmp / "reflash", "reflash", jobs=1, progress=False))),
        ("plain script: decode, apply_reflash per set, write", timed(reflash_plain)),
        ("srprep degrade --recipe realesrgan -k 2",
         timed(lambda: degrade(sub, tmp / "resr", "realesrgan", DegradeOptions(copies=2), jobs=1,
                               progress=False))),
        ("plain loop: decode, sharpen, draw+apply per copy, write", timed(realesrgan_plain)),
    ]


# ------------------------------------------------------------------------------------------ PNG codecs
def bench_png(img: np.ndarray, repeats: int) -> list[tuple[str, float, int, str]]:
    from PIL import Image
    import io

    bgr = np.ascontiguousarray(img[..., ::-1])
    encoders = {"srprep level 1 (Up filter, libdeflate level 1; the default)": lambda: images.encode_image(img)}
    try:  # the encoder before: the same Up filter, ISA-L's deflate (not a dependency any more)
        from isal import isal_zlib

        from srprep.io.png import _encode_up

        def isal_deflate(filtered):
            stream = isal_zlib.compressobj(1)
            return stream.compress(filtered) + stream.flush()

        encoders["Up filter, ISA-L deflate level 1 (the default before: not the same bytes in every process)"] = (
            lambda: _encode_up(img, isal_deflate, isal_zlib.crc32))
    except ImportError:
        pass
    for level in (2, 6, 9):
        encoders[f"srprep level {level} (libpng via OpenCV)"] = (
            lambda level=level: images.encode_image(img, png_level=level))
    for name, strategy in (("default", cv2.IMWRITE_PNG_STRATEGY_DEFAULT),
                           ("filtered", cv2.IMWRITE_PNG_STRATEGY_FILTERED),
                           ("RLE", cv2.IMWRITE_PNG_STRATEGY_RLE),
                           ("Huffman only", cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY)):
        encoders[f"OpenCV level 1, strategy {name}"] = (
            lambda s=strategy: cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1,
                                                          cv2.IMWRITE_PNG_STRATEGY, s])[1])
    encoders["OpenCV defaults (cv2.imwrite)"] = lambda: cv2.imencode(".png", bgr)[1]

    def pil(level):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "PNG", compress_level=level)
        return buf.getvalue()

    encoders["Pillow compress_level 1"] = lambda: pil(1)
    encoders["Pillow compress_level 6 (default)"] = lambda: pil(6)
    rows = []
    for name, fn in encoders.items():
        data = bytes(fn())
        ms = statistics.median(timed(fn) for _ in range(repeats)) * 1000
        same = np.array_equal(images.decode_image(data, "x.png"), img)
        rows.append((f"encode: {name}", ms, len(data), "yes" if same else "NO"))
    data = images.encode_image(img)
    decoders = {
        "srprep read (libspng for 8-bit RGB)": lambda: images.decode_image(data, "x.png"),
        "OpenCV imdecode (libpng) + BGR->RGB": lambda: cv2.cvtColor(
            cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB),
        "Pillow open + np.asarray": lambda: np.asarray(Image.open(io.BytesIO(data)).convert("RGB")),
    }
    for name, fn in decoders.items():
        same = np.array_equal(fn(), img)
        ms = statistics.median(timed(fn) for _ in range(repeats)) * 1000
        rows.append((f"decode: {name}", ms, len(data), "yes" if same else "NO"))
    return rows


# ------------------------------------------------------------------------------------------ start-up
def bench_startup(previous: Path | None, repeats: int, tmp: Path) -> list[tuple[str, str, float, float]]:
    src = tmp / "st_src"
    src.mkdir()
    for p in sorted((REPO / "srprep/samples/set5").glob("*.png"))[:2]:
        shutil.copy(p, src / p.name)
    trees = {"this tree": REPO}
    if previous is not None:
        trees["previous"] = previous.resolve()
    extra = os.environ.get("PYTHONPATH", "")
    cmds = {"srprep --help": ["--help"],
            "cached no-op rerun (downsample, 2 images, x2 x4)": None}
    times = {(t, c): [] for t in trees for c in cmds}
    for tree_name, tree in trees.items():  # first run: fill the cache
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(x for x in (str(tree), extra) if x)}
        subprocess.run([sys.executable, "-m", "srprep", "-q", "downsample", str(src),
                        str(tmp / f"st_{tree_name.replace(' ', '_')}"), "-s", "2", "-s", "4"], env=env, check=True,
                       cwd=tmp)  # not the checkout: ``-m`` would import the srprep in the working directory
    for _ in range(repeats):
        for tree_name, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(x for x in (str(tree), extra) if x)}
            for cmd, args in cmds.items():
                args = args or ["-q", "downsample", str(src), str(tmp / f"st_{tree_name.replace(' ', '_')}"),
                                "-s", "2", "-s", "4"]
                t = timed(lambda: subprocess.run([sys.executable, "-m", "srprep", *args], env=env, check=True,
                                                 capture_output=True, cwd=tmp))
                times[(tree_name, cmd)].append(t)
    return [(t, c, statistics.median(v), min(v)) for (t, c), v in times.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--degrade-images", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--previous", type=Path, default=None, help="another checkout, for the start-up figures")
    ap.add_argument("--only", nargs="+", default=["downsample", "degrade", "png", "startup"])
    args = ap.parse_args()
    cv2.setNumThreads(1)
    print(f"{cpu_name()}, {os.cpu_count()} cores; python {platform.python_version()}, numpy {np.__version__}, "
          f"OpenCV {cv2.__version__}; load at start {loadavg()}", flush=True)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        tmp = Path(tmp)
        src = tmp / "src"
        hrs = photos(args.images)
        for i, hr in enumerate(hrs):
            images.write_image(src / f"{i + 1:04d}.png", hr)
        if "downsample" in args.only:
            mf = BASELINES / BASICSR / "basicsr" / "utils" / "matlab_functions.py"
            basicsr = load_module("basicsr_matlab_functions", mf if mf.exists() else fetch_baselines()[0])
            rows = bench_downsample(src, tmp, basicsr)
            floor = rows[1][1]
            print(f"\ndownsample, {args.images} images 2040x1356 -> X2/X3/X4 + HR, 1 process (load {loadavg()})")
            print("| route | s | s per image | / floor | BasicSR route / this |")
            print("|---|---:|---:|---:|---:|")
            for name, sec in rows:
                print(f"| {name} | {sec:.1f} | {sec / args.images:.2f} | {sec / floor:.2f} | {rows[2][1] / sec:.2f} |",
                      flush=True)
        if "degrade" in args.only:
            rows = bench_degrade(src, tmp, args.degrade_images)
            print(f"\ndegrade, {args.degrade_images} images 2040x1356, x4, 1 process (load {loadavg()})")
            print("| route | s | s per image | plain / srprep |")
            print("|---|---:|---:|---:|")
            for i, (name, sec) in enumerate(rows):
                pair = rows[i + 1 if i % 2 == 0 else i - 1][1]
                ratio = pair / sec if i % 2 == 0 else 1.0
                print(f"| {name} | {sec:.1f} | {sec / args.degrade_images:.2f} | {ratio:.2f} |", flush=True)
        if "png" in args.only:
            rows = bench_png(hrs[0], args.repeats)
            print(f"\nPNG, one 2040x1356 photo, median of {args.repeats} (load {loadavg()})")
            print("| codec | ms | bytes | same pixels |")
            print("|---|---:|---:|---|")
            for name, ms, size, same in rows:
                print(f"| {name} | {ms:.0f} | {size:,} | {same} |", flush=True)
        if "startup" in args.only:
            rows = bench_startup(args.previous, args.repeats, tmp)
            print(f"\nstart-up, wall s, median (min) of {args.repeats}, alternating (load {loadavg()})")
            print("| tree | command | median s | min s |")
            print("|---|---|---:|---:|")
            for tree, cmd, med, lo in rows:
                print(f"| {tree} | {cmd} | {med:.2f} | {lo:.2f} |", flush=True)


if __name__ == "__main__":
    main()
