"""Paired datasets on disk, and ``srprep pairs check``: find the LR/HR pairs that do not match.

Layout
------
A dataset folder holds one sub-folder (or packed store) per *field*, all sharing keys::

    X2/HR/000000.png  X2/LR/000000.png        AIM2020 Real-SR (identical names)
    DIV2K/HR/0001.png DIV2K/X2/0001x2.png     DIV2K-like (the x2 suffix is not part of the key)
    X2/HR.lmdb X2/LR.lmdb, data.h5 (groups)   packed (``srprep pack``), or views (``srprep wash``)

:func:`dataset_layout` lists the fields of such a folder; :func:`find_pair` picks the HR and the LR field
of one scale and checks that they pair up (same keys, LR = floor(HR / s) on both axes), naming the files
when they do not.

What ``pairs check`` measures
-----------------------------
The AIM2020 Real-SR sets were washed by hand: pairs with a camera shift, a moving object or a colour
mismatch were dropped. For every pair, the HR is brought to the LR grid with MATLAB bicubic
(``imresize_matlab(modcrop(HR, s), 1/s)`` in double precision, ``D`` below), then compared with the LR:

``shift`` (global misalignment)
    sub-pixel translation of the LR against ``D`` by phase correlation (:mod:`srprep.ops.align`), in LR
    pixels (``dy_lr``, ``dx_lr``, length ``shift_lr``) and in HR pixels (``shift_hr = shift_lr * s``).
    Sign: the LR shows the HR's content moved ``dy`` down and ``dx`` right.
``local`` (moving objects, parallax)
    the same on overlapping tiles of ``tile`` LR pixels; per tile the residual ``|tile shift - global
    shift|``; ``local_lr`` is the largest residual over tiles with texture (grey-level standard deviation
    of ``D``'s tile at least ``min_contrast``; flat tiles have no shift to measure), ``local_p90_lr`` the
    90th percentile, ``local_y``/``local_x`` the worst tile's centre in LR pixels.
``colour``
    per-channel gains ``mean(LR_c) / mean(D_c)`` (``gain_r/g/b``) and mean differences in levels
    (``diff_r/g/b``); ``colour = max_c |gain_c - 1|`` (an exposure change counts as well as a cast).
``psnr``
    PSNR (dB, BT.601 Y, float) of the LR against ``D`` moved by the measured global shift (bicubic
    warp), borders of ``ceil(|shift|) + 3`` pixels left out; 100 means identical. It rewards everything
    the other measures miss (blur, noise, a wrong pair), but its level depends on the camera and the
    content, so it has no default tolerance.

Score and threshold
-------------------
Each measure is divided by its tolerance (``max_shift`` LR px, default 0.5; ``max_local`` LR px,
default 1.0; ``max_colour``, default 0.05; and, only when ``min_psnr`` is given, the RMSE ratio
``10 ** ((min_psnr - psnr) / 20)``); the pair's ``score`` is the largest of these ratios and ``reason``
names the measure that gave it. A pair is clean when ``score <= threshold`` (default 1: every measure
within its tolerance; 2 doubles every tolerance). Tolerances only enter the report: changing them re-uses
the cached measurements.

Outputs (``work`` folder, owned by the step; cached, resumable, parallel through :mod:`srprep.runner`):
``items/<key>.json`` per pair (the measurements), then, written at the end from those files, the CSV
report (worst pair first), optionally a clean-ID list in the AIM format (``000123.png`` per line, sorted),
a histogram of the scores and a contact sheet of the worst pairs.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ..errors import ImageError, StoreError
from ..fingerprint import fingerprint
from ..io import images
from ..io.stores import FolderStore, holds_items, open_store
from ..io.view import is_view
from ..ops.align import TileShifts, channel_gains, phase_correlation, tile_corners, tile_shifts, to_gray
from ..ops.color import rgb_to_y
from ..ops.grid import modcrop
from ..ops.imresize import imresize_matlab
from ..ops import figures
from ..ops.sheet import contact_sheet
from ..runner import Item, ItemResult, Step, StepReport, run_step, write_json_atomic

__all__ = [
    "DatasetField", "dataset_layout", "open_field", "find_pair", "pair_problems", "check_output_dir",
    "Tolerances", "MeasureOptions", "measure_pair", "downsample_hr", "score_pair", "PairsReport", "pairs_check",
    "histogram_image", "write_csv", "CSV_COLUMNS",
]

ITEMS_DIR = "items"
PSNR_IDENTICAL = 100.0
_SCALE_NAME = re.compile(r"^(?:X|x|LR_?x?|LRbicx)(\d+)$")


# ------------------------------------------------------------------------------------------ layout


@dataclass(frozen=True)
class DatasetField:
    """One field of a dataset folder.

    name: the field's name (``HR``, ``LR``, ``X2``; an ``.lmdb`` suffix dropped; an HDF5 group's name).
    path: what :func:`~srprep.io.stores.open_store` opens (a folder, ``NAME.lmdb``, ``data.h5/HR``).
    store: the opened store.
    options: the ``open_store`` keywords used (``scale`` for a folder whose files carry an ``x{s}`` suffix).
    """

    name: str
    path: Path
    store: Any
    options: dict = field(default_factory=dict)

    @property
    def is_folder(self) -> bool:
        """A plain folder of image files (items can be linked or copied file by file)."""
        return isinstance(self.store, FolderStore)

    def where(self, key: str) -> str:
        """The file that holds ``key`` (or ``store:key``), for messages."""
        if self.is_folder and key in self.store:
            return str(self.store.path(key))
        return f"{self.path}:{key}"

    def file_name(self, key: str) -> str:
        """The item's file name in a folder store, else ``<key>.png`` (the name AIM-style lists use)."""
        return self.store.path(key).name if self.is_folder else f"{key}.png"


def _scale_of(name: str) -> int | None:
    m = _SCALE_NAME.match(name)
    return int(m.group(1)) if m else None


def open_field(path: str | os.PathLike, *, name: str | None = None, scale: int | None = None) -> DatasetField:
    """Open one field (folder, LMDB, view, ``FILE.h5/GROUP``); ``scale`` strips ``x{s}`` file-name suffixes.

    Without ``scale``, a folder named ``X2``/``LRbicx2``... is read with scale 2 (``0001x2.png`` -> key
    ``0001`` when every file carries the suffix); any other folder keys files by their stem.
    """
    path = Path(path)
    base = name or (path.name[:-5] if path.name.lower().endswith(".lmdb") else path.name)
    if scale is None:
        scale = _scale_of(base)
    is_plain_folder = path.is_dir() and not is_view(path) and not (path / "data.mdb").exists()
    options = {"scale": scale} if is_plain_folder and scale and scale > 1 else {}
    if is_plain_folder and not options:
        options = {"naming": "same"}
    return DatasetField(base, path, open_store(path, **options), options)


def dataset_layout(src: str | os.PathLike) -> list[DatasetField]:
    """The fields of a dataset folder, ``HR`` first, then by name.

    Fields are the non-hidden sub-folders holding images, LMDB folders (``NAME.lmdb``), views
    (``view.json``) and every group of the ``.h5``/``.hdf5`` files directly in ``src``.

    Raises:
        StoreError: ``src`` is not a folder, holds images itself (it is one store, not a dataset), holds no
            field, or two fields share a name.
    """
    from ..io.hdf5_store import fields_of

    src = Path(src)
    if not src.is_dir():
        raise StoreError(f"{src}: not a dataset folder (expected {src}/HR and {src}/LR)")
    if is_view(src) or (src / "data.mdb").exists():
        raise StoreError(f"{src}: is a single store, not a dataset folder (expected {src}/HR and {src}/LR)")
    entries = sorted(p for p in src.iterdir() if not p.name.startswith("."))
    loose = [p for p in entries if p.is_file() and p.suffix.lower() in images.IMAGE_EXTENSIONS]
    if loose:
        raise StoreError(f"{src}: holds image files ({loose[0].name} ...) itself; expected a dataset folder with "
                         f"{src}/HR and {src}/LR sub-folders")
    fields: list[DatasetField] = []
    for p in entries:
        if p.is_dir() and holds_items(p):
            fields.append(open_field(p))
        elif p.is_file() and p.suffix.lower() in (".h5", ".hdf5"):
            for group in fields_of(p):
                fields.append(open_field(p / group, name=group))
    if not fields:
        raise StoreError(f"{src}: no fields (expected {src}/HR and {src}/LR with images, or packed stores)")
    names = [f.name for f in fields]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise StoreError(f"{src}: two entries give the field {dup[0]!r} "
                         f"({', '.join(str(f.path) for f in fields if f.name == dup[0])})")
    fields.sort(key=lambda f: (f.name != "HR", f.name))
    return fields


def pair_problems(hr: DatasetField, lr: DatasetField, scale: int | None, *,
                  limit: int = 10) -> tuple[list[str], list[str]]:
    """(keys paired in HR order, problems): the same keys in both fields and, unless ``scale`` is None,
    LR = floor(HR / s) along H and W.

    Problems are sentences naming the files (the first one about keys, then at most ``limit`` about sizes).
    """
    hr_keys = hr.store.keys()
    lr_keys = lr.store.keys()
    lr_set, hr_set = set(lr_keys), set(hr_keys)
    problems = []
    only_hr = [k for k in hr_keys if k not in lr_set]
    only_lr = [k for k in lr_keys if k not in hr_set]
    if only_hr or only_lr:
        msg = f"{hr.name}/{lr.name} count mismatch: {len(hr_keys)} images in {hr.path}, {len(lr_keys)} in {lr.path}"
        if only_hr:
            msg += (f"; no {lr.name} image for {', '.join(hr.where(k) for k in only_hr[:3])}"
                    f"{f' and {len(only_hr) - 3} more' if len(only_hr) > 3 else ''}")
        if only_lr:
            msg += (f"; no {hr.name} image for {', '.join(lr.where(k) for k in only_lr[:3])}"
                    f"{f' and {len(only_lr) - 3} more' if len(only_lr) > 3 else ''}")
        problems.append(msg)
    keys = [k for k in hr_keys if k in lr_set]
    if scale is None:
        return keys, problems
    bad = 0
    for k in keys:
        (H, W), (h, w) = hr.store.shape(k)[:2], lr.store.shape(k)[:2]
        if not (0 <= H - h * scale < scale and 0 <= W - w * scale < scale):
            bad += 1
            if bad <= limit:
                problems.append(f"{lr.where(k)} is {h}x{w} but {hr.where(k)} is {H}x{W}: at x{scale} the LR should "
                                f"be {H // scale}x{W // scale} (floor(HR / {scale}))")
    if bad > limit:
        problems.append(f"... and {bad - limit} more pairs whose sizes do not match x{scale}")
    return keys, problems


def find_pair(src: str | os.PathLike, scale: int, *,
              lr_name: str | None = None) -> tuple[DatasetField, DatasetField, list[str]]:
    """The HR and LR fields of a dataset folder for one scale, checked; returns (hr, lr, paired keys).

    The LR field is ``lr_name`` if given, else ``X{scale}`` if present, else ``LR``.

    Raises:
        StoreError: no HR or LR field, keys that do not pair up, or sizes that do not match the scale (every
            problem named, with the files).
    """
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, not {scale!r}")
    scale = int(scale)
    fields = {f.name: f for f in dataset_layout(src)}
    if "HR" not in fields:
        raise StoreError(f"{src}: no HR field (it has {', '.join(fields)}); expected {Path(src) / 'HR'}")
    candidates = [lr_name] if lr_name else [f"X{scale}", f"x{scale}", "LR"]
    lr = next((fields[n] for n in candidates if n in fields), None)
    if lr is None:
        raise StoreError(f"{src}: no LR field for x{scale} (looked for {', '.join(candidates)}; it has "
                         f"{', '.join(fields)})")
    if lr.is_folder and lr.options.get("scale") != scale:
        lr = open_field(lr.path, name=lr.name, scale=scale)  # strips an x{s} suffix when every file has it
    hr = fields["HR"]
    keys, problems = pair_problems(hr, lr, scale)
    if problems:
        raise StoreError(problems[0] if len(problems) == 1 else
                         f"{src}: {len(problems)} problems:\n  " + "\n  ".join(problems))
    if not keys:
        raise StoreError(f"{src}: no pairs ({hr.path} is empty)")
    return hr, lr, keys


def check_output_dir(dst: str | os.PathLike, *sources: str | os.PathLike) -> Path:
    """Refuse an output folder that is a file, overlaps a source, or holds something srprep did not write.

    A folder that exists must be empty or a previous srprep output (it has ``.srprep``), so a typo cannot
    mix a step's files into an unrelated folder (or delete them when the step cleans up).
    """
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise StoreError(f"{dst}: exists and is not a folder; choose another destination")
    d = dst.resolve()
    for s in sources:
        r = Path(s).resolve()
        if d == r or r in d.parents or d in r.parents:
            raise StoreError(f"{dst}: overlaps the source {s}; the output must be outside the input (and vice versa)")
    if dst.is_dir() and not (dst / ".srprep").is_dir() and any(dst.iterdir()):
        raise StoreError(f"{dst}: folder is not empty and is not an srprep output; choose a new or empty folder")
    anc = dst
    while not anc.exists():
        anc = anc.parent
    if not os.access(anc, os.W_OK | os.X_OK):
        raise StoreError(f"{dst}: cannot write to {anc} (permission denied)")
    return dst


# ------------------------------------------------------------------------------------------ measuring


@dataclass(frozen=True)
class MeasureOptions:
    """How pairs are measured (these values are part of the cached step's parameters).

    tile: side of the local tiles in LR pixels (tiles overlap by half).
    min_contrast: a tile counts for ``local`` when ``D``'s tile has at least this grey-level standard
        deviation (0..255 levels).
    upsample: sub-pixel grid of the phase-correlation refinement (1/upsample px before the parabola).
    screen: measure the non-overlapping quarter of the tiles first, and the others only when those show any
        local motion (a residual of :data:`SCREEN_SHIFT` LR px or more) or a split peak (below
        :data:`SCREEN_PEAK`); False measures every tile. A clearly clean pair then costs a quarter of the tile
        work; every other pair gets exactly the values of measuring all tiles.
    """

    tile: int = 64
    min_contrast: float = 4.0
    upsample: int = 20
    screen: bool = True

    def check(self) -> None:
        if int(self.tile) != self.tile or self.tile < 16:
            raise ValueError(f"tile must be an integer >= 16, not {self.tile!r}")
        if self.min_contrast < 0:
            raise ValueError(f"min_contrast must be >= 0, not {self.min_contrast!r}")
        if int(self.upsample) != self.upsample or self.upsample < 1:
            raise ValueError(f"upsample must be an integer >= 1, not {self.upsample!r}")


def downsample_hr(hr: np.ndarray, scale: int) -> np.ndarray:
    """``D``: the HR on the LR grid, ``imresize_matlab(modcrop(hr, s), 1/s)`` in double, 0..255 float64.

    Args:
        hr: ``(H, W, 3)`` uint8 RGB.
        scale: integer >= 1 (1 returns the HR as float).

    Returns:
        ``(H // s, W // s, 3)`` float64 in about [0, 255] (not rounded, so no convention's rounding biases
        the comparison).
    """
    if scale == 1:
        return hr.astype(np.float64)
    return imresize_matlab(modcrop(hr, scale), 1 / scale, im2double=True) * 255.0


def _warp(img: np.ndarray, dy: float, dx: float) -> np.ndarray:
    m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float64)
    h, w = img.shape[:2]
    return cv2.warpAffine(img.astype(np.float32), m, (w, h), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


#: The screen (``MeasureOptions.screen``): a pair is measured on the non-overlapping quarter of the tiles only
#: when (1) those tiles all move with the frame within SCREEN_SHIFT LR px, each as one piece (peak at least
#: SCREEN_PEAK: a tile that an object covers in part has its peak split between two motions), and (2) nowhere
#: does the LR depart from the aligned HR by more than a first-order shift of SCREEN_MISFIT px would explain:
#: per tile, RMS(LR - D moved by the global shift) / RMS(gradient of D) below SCREEN_MISFIT, on every tile of the
#: full grid (box filters, no FFT). An object moving by a tolerance's worth (1 LR px) over a few percent of a
#: tile raises (2) above the limit even where (1) misses it. Measured (max over tiles, x2): clean resampled pairs
#: of the 13 bundled photos and a 2K mosaic 0.007-0.063; the same damaged by shifts of 0.5-8 HR px 0.14-0.67,
#: moved blocks 1.1-1.5, colour gains 0.04-0.44 (caught by the colour measure); real camera pairs 1.0-1.7.
SCREEN_SHIFT = 0.1
SCREEN_PEAK = 0.5
SCREEN_MISFIT = 0.1


def _misfit(gl: np.ndarray, gm: np.ndarray, tile: int, iy: np.ndarray, ix: np.ndarray,
            min_contrast: float) -> np.ndarray:
    """Per tile with texture (corners ``iy, ix``; grey-level standard deviation of ``gm`` at least
    ``min_contrast``, the tiles :func:`~srprep.ops.align.tile_shifts` measures): RMS of ``gl - gm`` over the RMS
    of ``gm``'s gradient, about the local misalignment in pixels to first order. The gradient's mean square gets
    16 levels^2 more, so that the 8-bit rounding of the LR (0.29 levels RMS) alone stays below 0.08."""
    gm = gm.astype(np.float32)
    gy, gx = np.gradient(gm)
    box = functools.partial(cv2.boxFilter, ddepth=-1, ksize=(tile, tile), anchor=(0, 0),
                            borderType=cv2.BORDER_CONSTANT)  # anchor (0, 0): the tile starting at (y, x)
    r = gl.astype(np.float32) - gm
    err, grad = box(r * r)[iy, ix], box(gx * gx + gy * gy)[iy, ix]
    mean, square = box(gm)[iy, ix], box(gm * gm)[iy, ix]
    textured = square - mean * mean >= np.float32(min_contrast) ** 2
    return np.sqrt(err[textured] / (grad[textured] + np.float32(16.0)))


def _local_shifts(gd: np.ndarray, gl: np.ndarray, gm: np.ndarray, g, options: MeasureOptions) -> TileShifts:
    """Tile shifts of ``gl`` against ``gd`` on tiles of ``options.tile`` overlapping by half, screened first
    (``options.screen``; see :data:`SCREEN_MISFIT`). ``gm``: ``gd`` moved by the global shift ``g``."""
    h, w = gl.shape
    tile = min(options.tile, h, w)
    # Tiles are judged against a tolerance of about a pixel: a 1/4-px grid (then the parabola) is within
    # 0.05 px and costs a fraction of the global measurement's 1/20-px grid on hundreds of tiles.
    kw = dict(tile=tile, upsample=max(1, min(4, options.upsample)), min_contrast=options.min_contrast)
    iy, ix = tile_corners((h, w), tile, tile // 2)
    misfit = _misfit(gl, gm, tile, iy, ix, options.min_contrast) if options.screen and len(iy) else None
    if misfit is None or not len(misfit) or misfit.max() >= SCREEN_MISFIT:
        return tile_shifts(gd, gl, corners=(iy, ix), **kw)
    ys, xs = np.unique(iy), np.unique(ix)
    first = np.isin(iy, np.union1d(ys[::2], ys[-1:])) & np.isin(ix, np.union1d(xs[::2], xs[-1:]))
    coarse = tile_shifts(gd, gl, corners=(iy[first], ix[first]), **kw)
    if len(coarse):
        resid = np.hypot(coarse.shifts[:, 0] - g.dy, coarse.shifts[:, 1] - g.dx)
        if resid.max() < SCREEN_SHIFT and coarse.peaks.min() >= SCREEN_PEAK:
            return coarse
    rest = tile_shifts(gd, gl, corners=(iy[~first], ix[~first]), **kw)
    return TileShifts(*(np.concatenate([a, b]) for a, b in zip(
        (coarse.centers, coarse.shifts, coarse.peaks, coarse.contrast),
        (rest.centers, rest.shifts, rest.peaks, rest.contrast))))


def measure_pair(hr: np.ndarray, lr: np.ndarray, scale: int, options: MeasureOptions = MeasureOptions()) -> dict:
    """Measure how an LR image departs from its HR (see the module docstring for each measure).

    Args:
        hr: ``(H, W, 3)`` uint8 RGB.
        lr: ``(H // s, W // s, 3)`` uint8 RGB.
        scale: the integer scale s.
        options: tile size, contrast floor, refinement.

    Returns:
        A JSON-serialisable dict: ``dy_lr, dx_lr, shift_lr, shift_hr, peak, local_lr, local_p90_lr,
        local_hr, local_tiles, local_y, local_x, gain_r, gain_g, gain_b, diff_r, diff_g, diff_b, colour,
        psnr``, all floats (``local_tiles`` an int; ``local_y/x`` None when no tile has texture).

    Raises:
        ValueError: sizes that do not match the scale, or an LR smaller than 16x16.
    """
    if hr.ndim != 3 or lr.ndim != 3 or hr.shape[2] != 3 or lr.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) images, got HR {hr.shape} and LR {lr.shape}")
    H, W = hr.shape[:2]
    h, w = lr.shape[:2]
    if H // scale != h or W // scale != w:
        raise ValueError(f"LR is {h}x{w} but HR is {H}x{W}: at x{scale} the LR should be {H // scale}x{W // scale}")
    if h < 16 or w < 16:
        raise ValueError(f"LR is {h}x{w}: too small to measure (at least 16x16)")
    d = downsample_hr(hr, scale)
    lr_f = lr.astype(np.float64)
    gd, gl = to_gray(d), to_gray(lr)  # uint8 levels are exact in float32: the grey image of lr_f
    g = phase_correlation(gd, gl, upsample=options.upsample)
    moved = _warp(d, g.dy, g.dx) if (g.dy or g.dx) else d

    tiles = _local_shifts(gd, gl, to_gray(moved), g, options)
    if len(tiles):
        resid = np.hypot(tiles.shifts[:, 0] - g.dy, tiles.shifts[:, 1] - g.dx)
        worst = int(np.argmax(resid))
        local_max, local_p90 = float(resid[worst]), float(np.percentile(resid, 90))
        local_y, local_x = (float(v) for v in tiles.centers[worst])
    else:
        local_max = local_p90 = 0.0
        local_y = local_x = None

    border = scale
    gains, diffs = channel_gains(d, lr_f, border=border if min(h, w) > 2 * border + 2 else 0)

    b = int(math.ceil(max(abs(g.dy), abs(g.dx)))) + 3
    if min(h, w) > 2 * b + 4:
        crop = (slice(b, h - b), slice(b, w - b))
    else:
        crop = (slice(None), slice(None))
    mse = float(np.mean((rgb_to_y(lr_f[crop]) - rgb_to_y(np.asarray(moved, np.float64)[crop])) ** 2))
    psnr = PSNR_IDENTICAL if mse <= 255.0 ** 2 * 10 ** (-PSNR_IDENTICAL / 10) else 10 * math.log10(255.0 ** 2 / mse)

    return {
        "dy_lr": g.dy, "dx_lr": g.dx, "shift_lr": g.magnitude, "shift_hr": g.magnitude * scale, "peak": g.peak,
        "local_lr": local_max, "local_p90_lr": local_p90, "local_hr": local_max * scale,
        "local_tiles": len(tiles), "local_y": local_y, "local_x": local_x,
        "gain_r": float(gains[0]), "gain_g": float(gains[1]), "gain_b": float(gains[2]),
        "diff_r": float(diffs[0]), "diff_g": float(diffs[1]), "diff_b": float(diffs[2]),
        "colour": float(np.max(np.abs(gains - 1.0))), "psnr": psnr,
    }


# ------------------------------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class Tolerances:
    """What counts as clean: each measure's tolerance, and the threshold on the combined score.

    max_shift: global shift, LR pixels. max_local: tile residual shift, LR pixels. max_colour: largest
    per-channel gain deviation (0.05 = 5 %). min_psnr: dB, or None (PSNR not scored). threshold: a pair is
    clean when ``score <= threshold`` (score = the largest measure/tolerance ratio).
    """

    max_shift: float = 0.5
    max_local: float = 1.0
    max_colour: float = 0.05
    min_psnr: float | None = None
    threshold: float = 1.0

    def check(self) -> None:
        for name in ("max_shift", "max_local", "max_colour", "threshold"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a positive number, not {v!r}")


def score_pair(m: dict, tol: Tolerances) -> tuple[float, str]:
    """(score, reason): the largest measure/tolerance ratio and the measure that gave it."""
    ratios = {
        "shift": m["shift_lr"] / tol.max_shift,
        "local": m["local_lr"] / tol.max_local,
        "colour": m["colour"] / tol.max_colour,
    }
    if tol.min_psnr is not None:
        ratios["psnr"] = 10 ** ((tol.min_psnr - m["psnr"]) / 20)
    reason = max(ratios, key=ratios.get)
    return float(ratios[reason]), reason


# ------------------------------------------------------------------------------------------ the step


def _source(f: DatasetField, key: str):
    # Absolute: a worker process of a reused pool may run in another working directory.
    return os.path.abspath(f.store.path(key)) if f.is_folder else f.store


def _load(source, key: str) -> np.ndarray:
    return images.read_image(source) if isinstance(source, str) else source.read(key)


def _measure_one(payload, *, out: str, scale: int, options: dict) -> ItemResult:
    key, hr_src, lr_src, hr_where, lr_where = payload
    hr, lr = _load(hr_src, key), _load(lr_src, key)
    H, W = hr.shape[:2]
    h, w = lr.shape[:2]
    if H // scale != h or W // scale != w:
        raise ImageError(f"{lr_where} is {h}x{w} but {hr_where} is {H}x{W}: at x{scale} the LR should be "
                         f"{H // scale}x{W // scale}")
    try:
        m = measure_pair(hr, lr, scale, MeasureOptions(**options))
    except ValueError as exc:
        raise ImageError(f"{lr_where}: {exc}") from exc
    rel = f"{ITEMS_DIR}/{key}.json"
    write_json_atomic(Path(out) / rel, {"key": key, "hr": hr_where, "lr": lr_where, "hr_size": [H, W],
                                        "lr_size": [h, w], "scale": scale, **m})
    return ItemResult(outputs=[rel])


@dataclass
class PairsReport:
    """What :func:`pairs_check` did: the step, the per-pair rows (worst first) and the files written."""

    step: StepReport
    rows: list[dict] = field(default_factory=list)
    tolerances: Tolerances = Tolerances()
    files: dict = field(default_factory=dict)  # "report" / "ids" / "hist" / "sheet" -> path

    @property
    def flagged(self) -> list[dict]:
        return [r for r in self.rows if not r["clean"]]

    def summary(self) -> str:
        if self.step.status == "dry run":
            return self.step.summary().replace(self.step.step, "pairs check", 1)
        n, bad = len(self.rows), self.flagged
        reasons: dict[str, int] = {}
        for r in bad:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        why = ", ".join(f"{v} {k}" for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        line = (f"pairs check: {n} pairs, {n - len(bad)} clean, {len(bad)} flagged"
                f"{f' ({why})' if why else ''} at score <= {self.tolerances.threshold:g}; "
                f"{self.step.processed} measured, {self.step.reused} reused")
        if self.rows:
            w = self.rows[0]
            line += (f"; worst {w['key']} (score {w['score']:.2f}: shift {w['shift_lr']:.2f} LR px, local "
                     f"{w['local_lr']:.2f} LR px, colour {w['colour']:.3f})")
        for name, path in self.files.items():
            line += f"\n  {name}: {path}"
        return line


CSV_COLUMNS = [
    "rank", "key", "score", "clean", "reason", "shift_lr", "shift_hr", "dy_lr", "dx_lr", "peak", "local_lr",
    "local_hr", "local_p90_lr", "local_tiles", "local_y", "local_x", "gain_r", "gain_g", "gain_b", "diff_r",
    "diff_g", "diff_b", "colour", "psnr", "hr_h", "hr_w", "lr_h", "lr_w", "hr", "lr",
]


def _rows(work: Path, keys: Sequence[str], tol: Tolerances) -> list[dict]:
    rows = []
    for k in keys:
        path = work / ITEMS_DIR / f"{k}.json"
        try:
            m = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: missing or unreadable measurement ({exc}); run again with --force") from exc
        score, reason = score_pair(m, tol)
        rows.append({**m, "score": score, "reason": reason, "clean": score <= tol.threshold,
                     "hr_h": m["hr_size"][0], "hr_w": m["hr_size"][1], "lr_h": m["lr_size"][0],
                     "lr_w": m["lr_size"][1]})
    rows.sort(key=lambda r: (-r["score"], r["key"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)


def write_csv(path: str | os.PathLike, rows: Sequence[dict]) -> None:
    """The per-pair report, one row per pair in the given order, columns :data:`CSV_COLUMNS`."""
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(CSV_COLUMNS)
    for r in rows:
        wr.writerow([_fmt(r.get(c)) for c in CSV_COLUMNS])
    _write_text_atomic(Path(path), buf.getvalue())


def histogram_image(scores: Sequence[float], threshold: float, *, width: int = 720, height: int = 400,
                    bins: int = 40) -> np.ndarray:
    """A bar chart of the scores with the threshold marked: ``(height, width, 3)`` uint8 RGB.

    With matplotlib (the ``plots`` extra): :func:`srprep.ops.figures.score_histogram`, every score inside
    the axes (log scale when they spread widely) and the threshold labelled. Without it, an OpenCV drawing:
    the x axis runs from 0 to ``max(2 * threshold, 99th percentile)``, larger scores are counted in the last
    bar (labelled ``>=``); bars at or below the threshold are green, above it red.
    """
    if figures.available():
        return figures.score_histogram(scores, threshold, width=width, height=height, bins=bins)
    figures.note_fallback("pairs histogram")
    s = np.asarray(list(scores), dtype=np.float64)
    s = s[np.isfinite(s)]
    top = max(2.0 * threshold, float(np.percentile(s, 99)) if s.size else 0.0, 1e-9)
    counts, edges = np.histogram(np.clip(s, 0, top), bins=bins, range=(0.0, top))
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top_m, bottom = 60, 20, 40, 50
    pw, ph = width - left - right, height - top_m - bottom
    peak = max(1, int(counts.max()) if counts.size else 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i, c in enumerate(counts):
        x0 = left + int(round(i * pw / bins))
        x1 = left + int(round((i + 1) * pw / bins)) - 1
        y0 = top_m + ph - int(round(c / peak * ph))
        colour = (60, 170, 60) if edges[i + 1] <= threshold + 1e-12 else (200, 60, 50)
        if c:
            cv2.rectangle(img, (x0, y0), (max(x0, x1), top_m + ph), colour, -1)
    cv2.line(img, (left, top_m + ph), (left + pw, top_m + ph), (0, 0, 0), 1)
    cv2.line(img, (left, top_m), (left, top_m + ph), (0, 0, 0), 1)
    for t in np.linspace(0, top, 5):
        x = left + int(round(t / top * pw))
        cv2.line(img, (x, top_m + ph), (x, top_m + ph + 5), (0, 0, 0), 1)
        label = f"{t:.2g}" + (" >=" if t == top else "")
        cv2.putText(img, label, (max(0, x - 12), top_m + ph + 20), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, str(peak), (5, top_m + 5), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "0", (5, top_m + ph), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    xt = left + int(round(min(threshold, top) / top * pw))
    cv2.line(img, (xt, top_m - 5), (xt, top_m + ph), (0, 0, 255), 2)
    n_bad = int((s > threshold).sum())
    title = f"pair scores: {s.size} pairs, {s.size - n_bad} <= {threshold:g} (clean), {n_bad} above"
    cv2.putText(img, title, (left, 22), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "score (largest measure / tolerance)", (left + pw // 2 - 130, height - 10), font, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    return img


def _sheet(rows: Sequence[dict], hr: DatasetField, lr: DatasetField, scale: int, count: int,
           window: int = 96) -> np.ndarray:
    """Worst pairs side by side: HR window, LR window, |LR - D| x4, around the worst tile."""
    cells, labels = [], []
    for r in rows[:count]:
        hr_img, lr_img = hr.store.read(r["key"]), lr.store.read(r["key"])
        d = downsample_hr(hr_img, scale)
        h, w = lr_img.shape[:2]
        cy = r["local_y"] if r.get("local_y") is not None else h / 2
        cx = r["local_x"] if r.get("local_x") is not None else w / 2
        wh, ww = min(window, h), min(window, w)
        y0 = int(min(max(0, round(cy - wh / 2)), h - wh))
        x0 = int(min(max(0, round(cx - ww / 2)), w - ww))
        lr_win = lr_img[y0:y0 + wh, x0:x0 + ww]
        hr_win = hr_img[y0 * scale:(y0 + wh) * scale, x0 * scale:(x0 + ww) * scale]
        diff = np.abs(lr_win.astype(np.float64) - d[y0:y0 + wh, x0:x0 + ww]) * 4
        cells.append([hr_win, lr_win, np.clip(np.rint(diff), 0, 255).astype(np.uint8)])
        labels.append([f"#{r['rank']} {r['key']}: score {r['score']:.2f} ({r['reason']})",
                       f"shift {r['shift_lr']:.2f} px, local {r['local_lr']:.2f} px",
                       f"colour gain off by {r['colour']:.3f}"])
    titles = ["HR, around the worst tile", f"LR (x{scale}, nearest)", "|LR - MATLAB-downsampled HR| x 4"]
    return contact_sheet(cells, labels, max_height=None, titles=titles)


def pairs_check(src: str | os.PathLike, scale: int, work: str | os.PathLike, *,
                report: str | os.PathLike | None = None, ids_out: str | os.PathLike | None = None,
                hist: str | os.PathLike | None = None, sheet: str | os.PathLike | None = None,
                sheet_count: int = 8, tolerances: Tolerances = Tolerances(),
                options: MeasureOptions = MeasureOptions(), lr_name: str | None = None,
                jobs: int | None = None, force: bool = False, dry_run: bool = False,
                progress: bool = True) -> PairsReport:
    """Measure every LR/HR pair of a dataset folder and report the damaged ones.

    Args:
        src: dataset folder with ``HR`` and ``LR`` (or ``X{scale}``) fields (folders, LMDB, HDF5, views).
        scale: the integer scale of the pairs.
        work: folder owned by the step: per-pair results in ``work/items/<key>.json``, cache state in
            ``work/.srprep``; must lie outside ``src``.
        report: CSV path (default ``work/report.csv``), worst pair first.
        ids_out: write the keys of the clean pairs as an AIM-style list (``000123.png`` per line, sorted).
        hist: write a histogram of the scores (PNG).
        sheet: write a contact sheet of the ``sheet_count`` worst pairs (PNG).
        tolerances: per-measure tolerances and the threshold (see the module docstring).
        options: how to measure (cached parameters).
        lr_name: the LR field's name when it is neither ``X{scale}`` nor ``LR``.
        jobs, force, dry_run, progress: see :func:`srprep.runner.run_step`.

    Returns:
        :class:`PairsReport` (rows empty for a dry run).

    Raises:
        StoreError: no HR/LR field, HR/LR keys or sizes that do not pair up (every problem named).
        StageError: a pair could not be read or measured (names the pair and the cause).
    """
    tolerances.check()
    options.check()
    if sheet_count < 1:
        raise ValueError(f"sheet_count must be >= 1, not {sheet_count}")
    work = check_output_dir(work, src)
    hr, lr, keys = find_pair(src, scale, lr_name=lr_name)
    items = [Item(k, fingerprint([hr.store.item_fingerprint(k), lr.store.item_fingerprint(k)]),
                  (k, _source(hr, k), _source(lr, k), hr.where(k), lr.where(k))) for k in keys]
    step = Step("pairs-check", work, {"scale": int(scale), **asdict(options)},
                {"HR": hr.store.fingerprint(), "LR": lr.store.fingerprint()})
    worker = functools.partial(_measure_one, out=os.path.abspath(work), scale=int(scale), options=asdict(options))
    rep = run_step(step, items, worker, jobs=jobs, force=force, dry_run=dry_run, progress=progress, unit="pair")
    out = PairsReport(step=rep, tolerances=tolerances)
    if dry_run:
        return out
    out.rows = _rows(work, keys, tolerances)
    report = Path(report) if report is not None else work / "report.csv"
    write_csv(report, out.rows)
    out.files["report"] = report
    if ids_out is not None:
        names = sorted(hr.file_name(r["key"]) for r in out.rows if r["clean"])
        _write_text_atomic(Path(ids_out), "".join(f"{n}\n" for n in names))
        out.files["ids"] = Path(ids_out)
    if hist is not None:
        images.write_image(hist, histogram_image([r["score"] for r in out.rows], tolerances.threshold))
        out.files["hist"] = Path(hist)
    if sheet is not None:
        images.write_image(sheet, _sheet(out.rows, hr, lr, int(scale), sheet_count))
        out.files["sheet"] = Path(sheet)
    return out
