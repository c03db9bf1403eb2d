"""``srprep identify``: which resizer (and which HR crop) made this LR set?

The same "bicubic" test set circulates in several versions (MATLAB with or without ``im2double``, Pillow,
OpenCV, torch, BasicSR's port), and a PSNR measured on one is not comparable with a PSNR measured on
another. Given the HR and the LR of a set, this regenerates every LR from its HR with each resizer of
:mod:`srprep.ops.resizers` and reports which one gives the LR bit for bit.

Pairing
    by key, never by order: an LR's key is its HR's key plus an optional suffix (``babyx2``,
    ``baby_LRBI_x2``, ``img_001_SRF_4_LR``); the HR key is the longest HR key the LR key starts with. Two LR
    images of one HR are an error.

HR crop ("crop", from the sizes)
    ``modcrop-s``: the HR cut bottom/right to a multiple of the scale (LR = floor(HR / s)); ``modcrop-12``:
    to a multiple of 12 (BasicSR's GTmod12; scales dividing 12); ``none``: the whole HR, either exactly
    ``s`` times the LR, or resized by ``1/s`` without a crop (MATLAB-style: LR = ceil(HR / s)), or squeezed
    into an LR of about ``HR / s``. A pair's sizes may fit several conventions that give the same pixels
    (an HR that is a multiple of ``s`` is all three): the set's crop is the first of ``modcrop-s``,
    ``modcrop-12``, ``none`` that every pair fits. Conventions giving different pixels are tried in that
    order until one is exact.

Measures, per pair and resizer
    ``match``: the share of equal values (all pixels, all channels); ``max_diff``: the largest difference
    in levels. A resizer is exact when ``match == 1``.

Early exit
    the resizers are first run on a band of ``sample_rows`` LR rows in the middle of the image (its HR
    rows plus a margin, so the band's values are those of the whole image); a resizer whose match there is
    more than ``drop`` below the best stops, and its sample match is what it reports. This applies where
    the HR is exactly ``s`` times the LR (a band then sees the same weights as the whole image).

Verdicts
    per image: the resizer with the highest match (the first of :data:`RESIZERS` on a tie) and whether it is
    exact. Overall: a resizer exact on every image; else, when images are exact under different resizers,
    ``mixed`` (each image counted under the resizer exact on the most images); else the resizer with the
    highest share of equal values over all images, reported as "closest", never as exact.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from ..errors import ImageError, OptionError, StoreError
from ..io.stores import FolderStore, open_store
from ..ops.resizers import RESIZERS, resize_with
from ..ops.sheet import contact_sheet
from ..runner import default_jobs
from .network import one_cpu_thread
from .pairs import dataset_layout

__all__ = ["CROPS", "Crop", "IdentifyOptions", "ImageResult", "Verdict", "IdentifyReport", "pair_keys",
           "crop_candidates", "identify_pair", "overall_verdict", "open_sources", "identify", "difference_map"]

CROPS = ("modcrop-s", "modcrop-12", "none")


# ------------------------------------------------------------------------------------------------ pairing
def pair_keys(hr_keys: Sequence[str], lr_keys: Sequence[str]) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Pair LR keys with HR keys: the HR key is the longest HR key the LR key starts with.

    Returns:
        (pairs ``(hr_key, lr_key)`` in HR order, LR keys with no HR, HR keys with no LR).

    Raises:
        StoreError: two LR keys that pair with the same HR key.

    Example:
        >>> pair_keys(["1", "10", "baby"], ["10x2", "1x2", "baby_LRBI_x2", "zebra"])
        ([('1', '1x2'), ('10', '10x2'), ('baby', 'baby_LRBI_x2')], ['zebra'], [])
    """
    hr_set = set(hr_keys)
    by_hr: dict[str, str] = {}
    lonely = []
    for lk in lr_keys:
        hk = next((lk[:n] for n in range(len(lk), 0, -1) if lk[:n] in hr_set), None)
        if hk is None:
            lonely.append(lk)
        elif hk in by_hr:
            raise StoreError(f"two LR images pair with the HR {hk!r}: {by_hr[hk]!r} and {lk!r}")
        else:
            by_hr[hk] = lk
    pairs = [(hk, by_hr[hk]) for hk in hr_keys if hk in by_hr]
    return pairs, lonely, [hk for hk in hr_keys if hk not in by_hr]


# --------------------------------------------------------------------------------------------------- crops
@dataclass(frozen=True)
class Crop:
    """A region of the HR that an LR may have been made from.

    labels: the crop conventions that give this region (a subset of :data:`CROPS`).
    height, width: the region, from the top-left corner.
    scale: ``1/s`` when the LR is this region resized by a factor, None when resized to the LR's size.
    banded: the region is exactly ``s`` times the LR (early exit on a band of rows is exact).
    """

    labels: tuple[str, ...]
    height: int
    width: int
    scale: Optional[float]
    banded: bool


def crop_candidates(hr_hw: tuple[int, int], lr_hw: tuple[int, int], scale: int) -> list[Crop]:
    """The HR regions (in trial order) whose resize by ``scale`` has the LR's size; [] when none fits.

    Example:
        >>> [(c.labels, c.height, c.width) for c in crop_candidates((481, 321), (240, 160), 2)]
        [(('modcrop-s',), 480, 320), (('none',), 481, 321)]
        >>> crop_candidates((512, 512), (256, 256), 2)[0].labels
        ('modcrop-s', 'none')
    """
    (H, W), (h, w), s = hr_hw, lr_hw, scale
    out: list[Crop] = []
    mod_s = (H - H % s, W - W % s)
    if mod_s == (h * s, w * s):
        labels = ["modcrop-s"]
        if 12 % s == 0 and s != 12 and (H - H % 12, W - W % 12) == mod_s:
            labels.append("modcrop-12")
        if mod_s == (H, W):
            labels.append("none")
        out.append(Crop(tuple(labels), h * s, w * s, 1.0 / s, True))
    if 12 % s == 0 and s != 12 and (H - H % 12, W - W % 12) == (h * s, w * s) != mod_s:
        out.append(Crop(("modcrop-12",), h * s, w * s, 1.0 / s, True))
    if (H, W) != (h * s, w * s):
        if (h, w) == (math.ceil(H / s), math.ceil(W / s)):
            out.append(Crop(("none",), H, W, 1.0 / s, False))
        elif abs(h - H / s) < 1 and abs(w - W / s) < 1:
            out.append(Crop(("none",), H, W, None, False))
    return out


# ---------------------------------------------------------------------------------------------- one pair
@dataclass(frozen=True)
class IdentifyOptions:
    """How hard :func:`identify_pair` looks.

    resizers: names from :data:`~srprep.ops.resizers.RESIZERS`, in tie-breaking order.
    sample_rows: LR rows of the early-exit band (0: no early exit).
    drop: a resizer stops after the band when its match there is more than this below the best.
    """

    resizers: tuple[str, ...] = tuple(RESIZERS)
    sample_rows: int = 16
    drop: float = 0.02

    def __post_init__(self):
        unknown = [n for n in self.resizers if n not in RESIZERS]
        if unknown or not self.resizers:
            raise OptionError(f"unknown resizer(s) {', '.join(unknown) or '(none given)'}; choose from "
                              f"{', '.join(RESIZERS)}")
        if self.sample_rows < 0 or not 0 <= self.drop <= 1:
            raise OptionError(f"sample_rows must be >= 0 and drop in [0, 1], got {self.sample_rows}, {self.drop}")


_MARGIN = 4  # LR rows around the band: more than any resizer's reach (Lanczos: 3 LR pixels when shrinking)


@dataclass
class ImageResult:
    """What :func:`identify_pair` found for one pair.

    method: the best resizer (None when no resizer could make the LR's size); exact: every value equal;
    match: its share of equal values; max_diff: its largest difference (levels); crop: the first label of
    the region used; crop_labels: every convention giving that region; candidates: match of every resizer
    (None where it cannot make this size; for those stopped early, their match on the band); stopped:
    resizers stopped early; values: number of values compared; lr_key: the LR's own key.
    """

    key: str
    method: Optional[str]
    exact: bool
    match: float
    max_diff: int
    crop: Optional[str]
    crop_labels: tuple[str, ...] = ()
    candidates: dict = field(default_factory=dict)
    stopped: tuple[str, ...] = ()
    values: int = 0
    lr_key: str = ""

    def to_dict(self) -> dict:
        return {"key": self.key, "method": self.method, "exact": self.exact, "match": self.match,
                "max_diff": self.max_diff, "candidates": dict(self.candidates)}


def _compare(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    eq = int(np.count_nonzero(a == b)) / a.size
    return eq, int(np.max(np.abs(a.astype(np.int16) - b.astype(np.int16)))) if eq < 1 else 0


def _band(h: int, rows: int) -> tuple[int, int, int, int] | None:
    """(first, last) LR rows resized, (first, last) kept, or None when the image is too short for a band."""
    if rows == 0 or h < rows + 4 * _MARGIN:
        return None
    r0 = (h - rows) // 2
    return r0 - _MARGIN, r0 + rows + _MARGIN, r0, r0 + rows


def _try_crop(hr: np.ndarray, lr: np.ndarray, s: int, crop: Crop, opts: IdentifyOptions) -> dict:
    region = hr[:crop.height, :crop.width]
    h, w = lr.shape[:2]
    names = list(opts.resizers)
    matches: dict[str, Optional[float]] = {}
    stopped: list[str] = []
    band = _band(h, opts.sample_rows) if crop.banded else None
    if band is not None:
        a, b, k0, k1 = band
        part, lr_part = region[a * s:b * s], lr[k0:k1]
        sample = {}
        for n in names:
            out = resize_with(n, part, (b - a, w), crop.scale)
            sample[n] = None if out is None else _compare(out[k0 - a:k1 - a], lr_part)[0]
        best = max((m for m in sample.values() if m is not None), default=0.0)
        for n in names:
            if sample[n] is not None and sample[n] < best - opts.drop:
                matches[n] = sample[n]
                stopped.append(n)
    diffs: dict[str, int] = {}
    for n in names:
        if n in matches:
            continue
        out = resize_with(n, region, (h, w), crop.scale)
        if out is None:
            matches[n] = None
        else:
            matches[n], diffs[n] = _compare(out, lr)
    full = [n for n in names if n in diffs]
    best_name = max(full, key=lambda n: (matches[n], -names.index(n)), default=None)
    return {"crop": crop, "matches": {n: matches[n] for n in names}, "stopped": tuple(stopped),
            "best": best_name, "match": matches[best_name] if best_name else 0.0,
            "max_diff": diffs.get(best_name, 255)}


def identify_pair(hr: np.ndarray, lr: np.ndarray, scale: int, options: IdentifyOptions = IdentifyOptions(),
                  key: str = "") -> ImageResult:
    """Regenerate ``lr`` from ``hr`` with every resizer (and HR crop) and say which one made it.

    Args:
        hr: ``(H, W, 3)`` uint8, uncropped or cropped as the set's files are.
        lr: ``(h, w, 3)`` uint8.
        scale: the integer factor.
        options: resizers, early exit.
        key: the pair's name (carried into the result).

    Returns:
        An :class:`ImageResult` (``method`` None, ``crop`` None when no crop of the HR has the LR's size).

    Example:
        >>> from srprep.ops.imresize import imresize_matlab
        >>> hr = np.random.default_rng(0).integers(0, 256, (96, 64, 3), dtype=np.uint8)
        >>> r = identify_pair(hr, imresize_matlab(hr, 1 / 2), 2)
        >>> r.method, r.exact, r.crop
        ('matlab-uint8', True, 'modcrop-s')
    """
    for name, img in (("HR", hr), ("LR", lr)):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ImageError(f"{key or name}: identify compares 8-bit RGB images; the {name} is {img.dtype} "
                             f"{img.shape}")
    crops = crop_candidates(hr.shape[:2], lr.shape[:2], scale)
    best = None
    for crop in crops:
        res = _try_crop(hr, lr, scale, crop, options)
        if best is None or res["match"] > best["match"]:
            best = res
        if best["match"] == 1.0:
            break
    if best is None or best["best"] is None:
        return ImageResult(key, None, False, 0.0, 255, None, values=lr.size)
    return ImageResult(key, best["best"], best["match"] == 1.0, best["match"], best["max_diff"],
                       best["crop"].labels[0], best["crop"].labels, best["matches"], best["stopped"], lr.size)


# ------------------------------------------------------------------------------------------------ verdict
@dataclass(frozen=True)
class Verdict:
    """The set's verdict: method (a resizer, or "mixed"), exact (for "mixed": every image exact under its own
    resizer), match (share of equal values over all images: of ``method``, or for "mixed" of each image's
    own best), crop (a label of :data:`CROPS` or "mixed"), counts (for "mixed": images per resizer, "no
    exact match" for the rest), crop_alternatives (other conventions that give the same pixels for every
    pair)."""

    method: str
    exact: bool
    match: float
    crop: str
    counts: dict = field(default_factory=dict)
    crop_alternatives: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"method": self.method, "exact": self.exact, "match": self.match, "crop": self.crop}

    def describe(self) -> str:
        if self.method == "mixed":
            parts = ", ".join(f"{n} {c}" for n, c in self.counts.items())
            return f"mixed: {parts}"
        if self.exact:
            return f"{self.method}, exact"
        return f"closest: {self.method}, {_percent(self.match)} (not exact)"


def _percent(x: float) -> str:
    if x == 1.0:
        return "100 %"
    pct = 100 * x
    digits = 1 if pct < 99.9 else 3 if pct < 99.999 else 5
    return f"{min(pct, 100 - 10 ** -digits):.{digits}f} %"


def overall_verdict(results: Sequence[ImageResult], order: Sequence[str] = tuple(RESIZERS)) -> Verdict:
    """The set's verdict from its images' results (see the module docstring).

    Raises:
        ValueError: no results.
    """
    if not results:
        raise ValueError("no images to give a verdict on")
    labels = [set(r.crop_labels) for r in results]
    common = [c for c in CROPS if all(c in s for s in labels)]
    crop = common[0] if common else "mixed"
    alternatives = tuple(common[1:])
    exact_sets = [{n for n, m in r.candidates.items() if m == 1.0 and n not in r.stopped} for r in results]
    everywhere = [n for n in order if all(n in s for s in exact_sets)]
    if everywhere:
        return Verdict(everywhere[0], True, 1.0, crop, {}, alternatives)
    wins = Counter(n for s in exact_sets for n in s)
    assigned = Counter()
    for s in exact_sets:
        if s:
            assigned[max(s, key=lambda n: (wins[n], -order.index(n)))] += 1
    total = sum(r.values for r in results)
    if len(assigned) >= 2:
        counts = {n: c for n, c in sorted(assigned.items(), key=lambda kv: (-kv[1], order.index(kv[0])))}
        rest = sum(1 for s in exact_sets if not s)
        if rest:
            counts["no exact match"] = rest
        share = float(sum(r.match * r.values for r in results) / total)
        return Verdict("mixed", rest == 0, share, crop, counts, alternatives)
    pooled = {}
    for n in order:
        ms = [(r.candidates.get(n), r.values) for r in results]
        if all(m is not None for m, _ in ms):
            pooled[n] = float(sum(m * v for m, v in ms) / total)
    if not pooled:
        return Verdict("none", False, 0.0, crop, {}, alternatives)
    best = max(pooled, key=lambda n: (pooled[n], -order.index(n)))
    return Verdict(best, False, pooled[best], crop, {}, alternatives)


# ------------------------------------------------------------------------------------------------ sources
_HR_FIELDS = ("HR", "GTmod12", "GT")


def _lr_fields(scale: int) -> tuple[str, ...]:
    return (f"X{scale}", f"x{scale}", f"LRbicx{scale}", "LR")


def open_sources(*, hr: str | os.PathLike | None = None, lr: str | os.PathLike | None = None,
                 data: str | os.PathLike | None = None, scale: int) -> tuple[Any, Any, str, str]:
    """(HR store, LR store, HR location, LR location) from ``--hr/--lr`` or a dataset folder ``--data``.

    ``--hr``/``--lr``: anything :func:`~srprep.io.stores.open_store` reads; a folder's keys are its file
    stems. ``--data``: the EDSR benchmark layout (``HR/`` + ``LR_bicubic/X{s}/``), BasicSR's (``GTmod12/``
    or ``GT/`` + ``LRbicx{s}/``) or srprep's (``HR`` + ``X{s}`` or ``LR``; folders, LMDB, HDF5 groups).

    Raises:
        StoreError: a missing store, or a dataset folder without HR or without LR for ``scale``.
        OptionError: neither or both of ``data`` and ``hr``/``lr``.
    """
    if (data is None) == (hr is None and lr is None) or (data is None and (hr is None or lr is None)):
        raise OptionError("give --hr and --lr, or --data (not both)")
    if data is None:
        hr_store = open_store(hr, naming="same") if Path(hr).is_dir() else open_store(hr)
        lr_store = open_store(lr, naming="same") if Path(lr).is_dir() else open_store(lr)
        return hr_store, lr_store, str(hr), str(lr)
    data = Path(data)
    fields = {f.name: f for f in dataset_layout(data)}
    hr_field = next((fields[n] for n in _HR_FIELDS if n in fields), None)
    if hr_field is None:
        raise StoreError(f"{data}: no HR images (looked for {', '.join(_HR_FIELDS)}; it has {', '.join(fields)})")
    nested = data / "LR_bicubic" / f"X{scale}"
    if nested.is_dir():
        return hr_field.store, FolderStore(nested, naming="same"), str(hr_field.path), str(nested)
    lr_field = next((fields[n] for n in _lr_fields(scale) if n in fields), None)
    if lr_field is None:
        raise StoreError(f"{data}: no LR for x{scale} (looked for LR_bicubic/X{scale}, "
                         f"{', '.join(_lr_fields(scale))}; it has {', '.join(fields)})")
    return hr_field.store, lr_field.store, str(hr_field.path), str(lr_field.path)


# ------------------------------------------------------------------------------------------------- report
@dataclass
class IdentifyReport:
    """What :func:`identify` found: per-image results (HR order), the verdict, and where the data came from."""

    hr: str
    lr: str
    scale: int
    images: list
    verdict: Verdict
    lr_without_hr: list = field(default_factory=list)
    hr_without_lr: list = field(default_factory=list)
    seconds: float = 0.0
    stores: tuple = field(default=(), repr=False)  # (HR store, LR store), for the sheet

    def to_dict(self) -> dict:
        """``{"overall": {method, exact, match, crop}, "images": [{key, method, exact, match, max_diff,
        candidates}]}``."""
        return {"overall": self.verdict.to_dict(), "images": [r.to_dict() for r in self.images]}

    def write_json(self, path: str | os.PathLike) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def worst(self, count: int) -> list[ImageResult]:
        """The ``count`` images whose best resizer matches least (ties in HR order)."""
        return sorted(self.images, key=lambda r: r.match)[:count]

    def table(self, limit: int = 10) -> str:
        """Per resizer the images it is best for; then the images that are not exact, worst first."""
        lines = []
        by_method = Counter(r.method for r in self.images)
        for name, n in sorted(by_method.items(), key=lambda kv: -kv[1]):
            exact = sum(1 for r in self.images if r.method == name and r.exact)
            lines.append(f"  {name:<26} best for {n} image(s), exact on {exact}")
        inexact = [r for r in self.worst(len(self.images)) if not r.exact][:limit]
        for r in inexact:
            second = sorted(((m, n) for n, m in r.candidates.items() if m is not None and n != r.method),
                            reverse=True)[:1]
            nxt = f"; next {second[0][1]} {_percent(second[0][0])}" if second else ""
            lines.append(f"  {r.key}: closest {r.method} {_percent(r.match)}, max diff {r.max_diff}{nxt}")
        return "\n".join(lines)

    def summary(self) -> str:
        v = self.verdict
        crop = v.crop + (f" (or {', '.join(v.crop_alternatives)}: the same pixels here)" if v.crop_alternatives
                         else "")
        extra = ""
        if self.lr_without_hr:
            extra += f"; {len(self.lr_without_hr)} LR image(s) without HR (e.g. {self.lr_without_hr[0]})"
        if self.hr_without_lr:
            extra += f"; {len(self.hr_without_lr)} HR image(s) without LR"
        return (f"identify: {len(self.images)} pairs x{self.scale} ({self.seconds:.1f} s): {v.describe()}; "
                f"HR crop {crop}{extra}")

    def sheet(self, count: int = 4) -> np.ndarray:
        """HR / LR / best regeneration / :func:`difference_map`, labelled, for the ``count`` worst images.

        Returns:
            ``(H, W, 3)`` uint8 RGB (see :func:`srprep.ops.sheet.contact_sheet`).
        """
        hr_store, lr_store = self.stores
        rows, labels = [], []
        for r in self.worst(count):
            hr, lr = hr_store.read(r.key), lr_store.read(r.lr_key)
            crop = next(c for c in crop_candidates(hr.shape[:2], lr.shape[:2], self.scale)
                        if c.labels[0] == r.crop) if r.crop else None
            regen = (resize_with(r.method, hr[:crop.height, :crop.width], lr.shape[:2], crop.scale)
                     if crop is not None else np.zeros_like(lr))
            rows.append([hr, lr, regen, difference_map(lr, regen)])
            labels.append([f"HR {r.key}", f"LR {r.lr_key}", f"{r.method} {_percent(r.match)}",
                           f"differs (max {r.max_diff})"])
        return contact_sheet(rows, labels, max_height=None)


def difference_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where two uint8 images differ, visibly: ``(h, w)`` uint8, 0 where every channel is equal, else
    ``96 + 32 * d`` (``d`` the largest channel difference, capped at 255), so a single level shows.

    Example:
        >>> difference_map(np.zeros((1, 3, 3), np.uint8), np.array([[[0, 0, 0], [1, 0, 0], [0, 9, 0]]], np.uint8))
        array([[  0, 128, 255]], dtype=uint8)
    """
    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)
    return np.where(d > 0, np.minimum(96 + 32 * d, 255), 0).astype(np.uint8)


def _identify_one(payload) -> ImageResult:
    hr_store, lr_store, hk, lk, scale, options = payload
    hr, lr = hr_store.read(hk), lr_store.read(lk)
    res = identify_pair(hr, lr, scale, options, key=hk)
    res.lr_key = lk
    return res


def _where(store, key: str) -> str:
    return str(store.path(key)) if isinstance(store, FolderStore) else f"{getattr(store, 'path', store)}:{key}"


def _check_sizes(hr_store, lr_store, pairs: Sequence[tuple[str, str]], scale: int) -> None:
    """Raise before any work when an LR's size fits no crop of its HR at ``scale`` (files named)."""
    bad = []
    for hk, lk in pairs:
        (H, W), (h, w) = hr_store.shape(hk)[:2], lr_store.shape(lk)[:2]
        if not crop_candidates((H, W), (h, w), scale):
            bad.append(f"{_where(lr_store, lk)} is {h}x{w} but {_where(hr_store, hk)} is {H}x{W}: no crop of it "
                       f"makes an x{scale} LR of that size (expected {H // scale}x{W // scale})")
    if bad:
        more = f" (and {len(bad) - 1} more pairs)" if len(bad) > 1 else ""
        raise StoreError(bad[0] + more)


def _results(payloads: list, jobs: int) -> Iterator[ImageResult]:
    if jobs == 1 or len(payloads) <= 1:
        for p in payloads:
            yield _identify_one(p)
        return
    from joblib import Parallel, delayed

    # Threads, not processes: the work is in numpy/OpenCV/torch/MKL calls that release the GIL, and worker
    # processes would first have to import torch (seconds, more than 100 pairs take on a busy machine).
    yield from Parallel(n_jobs=jobs, prefer="threads", return_as="generator_unordered")(
        delayed(_identify_one)(p) for p in payloads)


def identify(*, scale: int, hr: str | os.PathLike | None = None, lr: str | os.PathLike | None = None,
             data: str | os.PathLike | None = None, options: IdentifyOptions = IdentifyOptions(),
             jobs: int | None = None, progress: bool = True) -> IdentifyReport:
    """Identify the resizer and HR crop of an LR set (see the module docstring).

    Args:
        scale: the integer factor between HR and LR.
        hr, lr: the HR and LR stores; or data: a dataset folder (see :func:`open_sources`).
        options: resizers and early exit.
        jobs: worker threads (default: all cores).
        progress: show a progress bar on a terminal.

    Raises:
        StoreError: missing stores, no pairs, two LR for one HR, an LR whose size fits no crop (named).
        ImageError: an image that is not 8-bit RGB.
    """
    if int(scale) != scale or scale < 1:
        raise OptionError(f"scale must be a positive integer, not {scale!r}")
    scale = int(scale)
    t0 = time.perf_counter()
    hr_store, lr_store, hr_where, lr_where = open_sources(hr=hr, lr=lr, data=data, scale=scale)
    pairs, lonely_lr, lonely_hr = pair_keys(hr_store.keys(), lr_store.keys())
    if not pairs:
        raise StoreError(f"no LR image of {lr_where} pairs with an HR image of {hr_where} (an LR name must be an HR "
                         f"name plus an optional suffix, e.g. baby.png -> babyx2.png)")
    _check_sizes(hr_store, lr_store, pairs, scale)
    payloads = [(hr_store, lr_store, hk, lk, scale, options) for hk, lk in pairs]
    from tqdm.auto import tqdm

    found: dict[str, ImageResult] = {}
    # One torch thread: a pair's resizes are small, and intra-op threads cost more than they give (2.5x slower
    # per pair with 2 threads on a busy 2-core machine); pairs run in parallel instead.
    with tqdm(total=len(payloads), desc="identify", unit="pair", disable=None if progress else True,
              dynamic_ncols=True, leave=False) as bar, one_cpu_thread():
        for res in _results(payloads, jobs or default_jobs()):
            found[res.key] = res
            bar.update(1)
    results = [found[hk] for hk, _ in pairs]
    return IdentifyReport(hr_where, lr_where, scale, results, overall_verdict(results, options.resizers),
                          lonely_lr, lonely_hr, time.perf_counter() - t0, (hr_store, lr_store))
