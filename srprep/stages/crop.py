"""``srprep crop``: sub-images of HR images and their LR images, cut on one grid so that pairs always match.

BasicSR's ``extract_subimages.py`` crops the HR folder and each LR folder separately, each with its own grid;
when an LR image is not exactly HR/s the grids disagree and the sub-image counts differ. Here the grid is
laid on the HR image once and every LR crop is that HR box divided by the LR's scale:

1. The HR is cropped from the top left to a multiple of every scale (``L = lcm(scales)``; for one scale s
   this is ``LR size * s``, the benchmark convention; for x2/x3/x4 it is BasicSR's GTmod12). Each field f is
   cropped to that extent divided by its scale s_f.
2. Positions along H and along W follow BasicSR's rule (:func:`grid_positions`): ``0, step, 2*step, ...``
   while the crop fits, plus one crop flush with the bottom/right edge when more than ``thresh`` pixels
   would be left over.
3. Sub-image ``i`` (counted from 1, row-major: left to right, then top to bottom, like BasicSR) of image
   ``name`` is keyed ``{name}_s{i:03d}`` (``0001_s001``, ..., ``0001_s040``; 4 digits past 999). Its LR box
   is ``(top/s, left/s, size/s, size/s)``. ``size`` and ``step`` must therefore be multiples of every scale.

Images smaller than the crop (after step 1) are an error by default; ``small="keep"`` keeps them whole as
one sub-image ``{name}_s001``, ``small="skip"`` leaves them out; either way the summary names them.

Output layout (the layout ``srprep downsample`` writes, which ``srprep pack`` reads)::

    DST/HR/<name>_s001.png       DST/X2/<name>_s001x2.png      DST/X4/<name>_s001x4.png ...

Inputs are read through the Store interface, so HR and LR may be folders of images or packed stores
(``HR.lmdb``, ``data.h5/HR``). Pairing is by key and checked before anything is written: a missing LR or
an LR that is not ``floor(HR/s)`` in size is an error naming the key and both files.
"""
from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import OptionError as OptionsError, ImageError, StoreError
from ..fingerprint import fingerprint
from ..io import images
from ..io.stores import FolderStore, FolderWriter, open_store, scale_suffix
from ..ops.grid import grid_positions
from ..runner import Item, ItemResult, Step, StepReport, run_step

__all__ = [
    "CropOptions", "OptionsError", "Field", "ImagePlan", "CropReport", "SubImages", "subimage_key",
    "infer_scale", "parse_lr_spec", "open_field", "read_shapes", "pairing_problems", "check_pairs", "plan_crops",
    "plan_image", "cut", "crop",
]

SMALL_POLICIES = ("error", "keep", "skip")


_SUFFIX = re.compile(r"^(.+?)x(\d+)$")


# ------------------------------------------------------------------------------------------ the grid


def subimage_key(name: str, index: int) -> str:
    """``{name}_s{index:03d}``: the key of sub-image ``index`` (from 1) of image ``name``."""
    return f"{name}_s{index:03d}"


@dataclass(frozen=True)
class CropOptions:
    """How sub-images are cut (all of it goes into the cache fingerprint).

    size: side of a square HR sub-image, in HR pixels (BasicSR: 480 for DIV2K).
    step: distance between crops (240: half overlap).
    thresh: a last, edge-aligned crop is added when more than this many pixels would be left uncovered.
    small: what to do with an image smaller than ``size``: "error", "keep" (whole, as one sub-image) or
        "skip".
    """

    size: int = 480
    step: int = 240
    thresh: int = 0
    small: str = "error"

    def check(self, scales: Sequence[int]) -> int:
        """Validate against the scales of the fields; returns their least common multiple."""
        for name in ("size", "step"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise OptionsError(f"{name} must be a positive integer, not {v!r}")
        if self.thresh < 0:
            raise OptionsError(f"thresh must be >= 0, not {self.thresh}")
        if self.small not in SMALL_POLICIES:
            raise OptionsError(f"small must be one of {', '.join(SMALL_POLICIES)}, not {self.small!r}")
        lcm = math.lcm(*[int(s) for s in scales]) if scales else 1
        for name in ("size", "step"):
            v = getattr(self, name)
            bad = [s for s in scales if v % s]
            if bad:
                raise OptionsError(f"--{name} {v} is not a multiple of scale {bad[0]}: the LR box would not fall "
                                 f"on LR pixels (use a multiple of {lcm})")
        return lcm


# ------------------------------------------------------------------------------------------ fields


@dataclass(frozen=True)
class Field:
    """One store of a paired dataset and its scale.

    name: the output name ("HR", "X2", "sr_pretrained", ...).
    store: where its images are read from (any Store).
    scale: HR pixels per pixel of this field, along H and W (1 for HR-sized fields).
    """

    name: str
    store: Any
    scale: int = 1

    def where(self, key: str) -> str:
        """The file (or store and key) that holds ``key``, for error messages."""
        if isinstance(self.store, FolderStore) and key in self.store:
            return str(self.store.path(key))
        return f"{getattr(self.store, 'path', self.name)}:{key}"


def _store_stem(path: Path) -> str:
    name = path.name
    for ext in (".lmdb", ".h5", ".hdf5"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def infer_scale(path: str | os.PathLike) -> int | None:
    """The scale of an LR folder or store from its name (``X2``, ``LRbicx4``, ``X3.lmdb``), or from the
    ``x{s}`` suffix shared by every file in it (``0001x2.png``); None when neither says."""
    path = Path(path)
    m = re.search(r"[xX](\d+)$", _store_stem(path))
    if m and int(m.group(1)) >= 1:
        return int(m.group(1))
    if path.is_dir() and not (path / "data.mdb").exists():
        stems = [p.stem for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                 and p.suffix.lower() in images.IMAGE_EXTENSIONS]
        found = {m.group(2) for m in (_SUFFIX.match(s) for s in stems) if m}
        if stems and len(found) == 1 and all(_SUFFIX.match(s) for s in stems):
            return int(found.pop())
    return None


def parse_lr_spec(spec: str) -> tuple[Path, int | None]:
    """``"data/X2"`` -> (path, None); ``"data/LR:3"`` -> (path, 3)."""
    head, sep, tail = str(spec).rpartition(":")
    if sep and tail.isdigit() and head:
        if int(tail) < 1:
            raise OptionsError(f"{spec}: the scale after ':' must be >= 1")
        return Path(head), int(tail)
    return Path(spec), None


def open_field(path: str | os.PathLike, scale: int | None = None, *, name: str | None = None) -> Field:
    """Open an LR (or other) folder/store as a field; the scale is inferred when not given.

    Raises:
        StoreError: the path is missing, or its scale cannot be inferred.
    """
    path = Path(path)
    if scale is None:
        scale = infer_scale(path)
        if scale is None:
            raise StoreError(f"{path}: cannot tell its scale from the name (X2, X4...) or the files (0001x2.png); "
                             f"give it as {path}:2")
    store = open_store(path, scale=scale) if scale > 1 else open_store(path, naming="same")
    return Field(name or ("HR" if scale == 1 else f"X{scale_suffix(scale)[1:]}"), store, int(scale))


# ------------------------------------------------------------------------------------------ pairing


def _tolerance(f: Field, lcm: int) -> int:
    # An LR field was made from modcrop(HR, s): HR - LR*s is in [0, s). An HR-sized field derived from an LR
    # (e.g. sr_pretrained = net(LR)) may be smaller than HR by up to the dataset's scale.
    return f.scale if f.scale > 1 else lcm


Shapes = dict  # {key: {field name: (h, w, c)}}


def read_shapes(fields: Sequence[Field], keys: Sequence[str]) -> Shapes:
    """Every field's ``(h, w, c)`` for every key, from headers or indexes (no pixels decoded)."""
    return {k: {f.name: tuple(f.store.shape(k)) for f in fields} for k in keys}


def pairing_problems(fields: Sequence[Field], *, limit: int = 20,
                     shapes: Shapes | None = None) -> tuple[list[str], list[str], Shapes]:
    """Check a paired dataset by key and by size; returns (keys paired in HR order, problems, shapes).

    The first field is the reference (HR). For every other field f with scale s, every HR key must be in f
    and no key may be in f alone, and ``0 <= H - h*s < s`` along both axes (``h = floor(H/s)``, the LR of
    ``modcrop(HR, s)``; an HR-sized field may be smaller than HR by less than the scales' lcm). Problems are
    sentences naming the key and the files, at most ``limit``. ``shapes`` (of the paired keys) are read
    unless given.
    """
    hr, others = fields[0], list(fields[1:])
    lcm = math.lcm(*[f.scale for f in fields])
    problems: list[str] = []
    hr_keys = hr.store.keys()
    hr_set = set(hr_keys)
    key_sets = {f.name: set(f.store.keys()) for f in others}
    for f in others:
        keys = key_sets[f.name]
        missing = [k for k in hr_keys if k not in keys]
        if missing:
            problems.append(f"{f.name}: no image for {len(missing)} HR key(s): {', '.join(missing[:5])}"
                            f"{' ...' if len(missing) > 5 else ''} (e.g. {hr.where(missing[0])} has no "
                            f"counterpart in {getattr(f.store, 'root', getattr(f.store, 'path', f.name))})")
        extra = sorted(keys - hr_set)
        if extra:
            problems.append(f"{f.name}: {len(extra)} key(s) with no HR image: {', '.join(extra[:5])}"
                            f"{' ...' if len(extra) > 5 else ''} (e.g. {f.where(extra[0])})")
    paired = [k for k in hr_keys if all(k in key_sets[f.name] for f in others)]
    if shapes is None:
        shapes = read_shapes(fields, paired)
    for k in paired:
        if len(problems) >= limit:
            break
        H, W = shapes[k][hr.name][:2]
        for f in others:
            h, w = shapes[k][f.name][:2]
            s, tol = f.scale, _tolerance(f, lcm)
            if not (0 <= H - h * s < tol and 0 <= W - w * s < tol):
                want = (f"{H // s}x{W // s} (LR = floor(HR/s))" if f.scale > 1
                        else f"between {H - tol + 1}x{W - tol + 1} and {H}x{W}")
                problems.append(f"{f.name}: {f.where(k)} is {h}x{w} but HR {hr.where(k)} is {H}x{W}: at x{s} "
                                f"it should be {want}")
    return paired, problems, shapes


def check_pairs(fields: Sequence[Field]) -> tuple[list[str], Shapes]:
    """The paired keys (HR order) and their shapes; raises StoreError listing the problems (up to 20)."""
    keys, problems, shapes = pairing_problems(fields)
    if problems:
        raise StoreError("mismatched pairs:\n  " + "\n  ".join(problems) if len(problems) > 1 else problems[0])
    return keys, shapes


# ------------------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class ImagePlan:
    """The sub-images of one source image.

    key: the source image's key.
    extent: (H, W) of the HR used, a multiple of every scale (top-left crop).
    boxes: (top, left, height, width) in HR pixels, in key order; empty when the image is skipped.
    small: the image is smaller than the crop (kept whole or skipped).
    """

    key: str
    extent: tuple[int, int]
    boxes: tuple[tuple[int, int, int, int], ...]
    small: bool = False

    @property
    def keys(self) -> list[str]:
        return [subimage_key(self.key, i) for i in range(1, len(self.boxes) + 1)]


def plan_image(key: str, shapes: dict[str, tuple[int, int]], scales: dict[str, int], opts: CropOptions,
               lcm: int, where: str = "") -> ImagePlan:
    """Boxes of one image, given each field's (h, w) and scale (see the module docstring)."""
    eh = min(h * scales[n] for n, (h, w) in shapes.items()) // lcm * lcm
    ew = min(w * scales[n] for n, (h, w) in shapes.items()) // lcm * lcm
    ys = grid_positions(eh, opts.size, opts.step, opts.thresh)
    xs = grid_positions(ew, opts.size, opts.step, opts.thresh)
    if ys and xs:
        return ImagePlan(key, (eh, ew), tuple((y, x, opts.size, opts.size) for y in ys for x in xs))
    if opts.small == "skip":
        return ImagePlan(key, (eh, ew), (), small=True)
    if opts.small == "keep" and eh > 0 and ew > 0:
        return ImagePlan(key, (eh, ew), ((0, 0, eh, ew),), small=True)
    crop_note = f" (cropped to a multiple of {lcm})" if lcm > 1 else ""
    raise ImageError(f"{where or key}: {eh}x{ew} image{crop_note} is smaller than the {opts.size}x{opts.size} crop; "
                     + ("pass --small skip to leave it out" if eh == 0 or ew == 0 else
                        "pass --small keep (keep it whole) or --small skip (leave it out)"))


def plan_crops(fields: Sequence[Field], keys: Sequence[str], opts: CropOptions,
               shapes: Shapes | None = None) -> dict[str, ImagePlan]:
    """Plan every image's sub-images from the fields' sizes (``shapes``, else read from headers)."""
    scales = {f.name: f.scale for f in fields}
    lcm = opts.check(list(scales.values()))
    if shapes is None:
        shapes = read_shapes(fields, keys)
    plans = {}
    for k in keys:
        hw = {name: tuple(shape[:2]) for name, shape in shapes[k].items()}
        plans[k] = plan_image(k, hw, scales, opts, lcm, where=fields[0].where(k))
    seen: dict[str, str] = {}
    for k, p in plans.items():
        for sk in p.keys:
            if sk in seen:
                raise StoreError(f"duplicate keys: sub-image {sk!r} of {k!r} and of {seen[sk]!r}")
            seen[sk] = k
    return plans


class SubImages:
    """The sub-images of one field's image as records ``(key, crop, shape)``, cut when iterated.

    Picklable as the whole image plus its boxes: a worker that hands sub-images to the writing process
    sends the image once instead of overlapping crops (step = size/2 covers each pixel about 3.3 times).

    Args:
        img: ``(h, w, c)`` array.
        keys: the sub-image keys.
        boxes: ``(top, left, height, width)`` in this image's pixels, one per key.
    """

    def __init__(self, img: np.ndarray, keys: Sequence[str], boxes: Sequence[tuple[int, int, int, int]]):
        self.img, self.keys, self.boxes = img, list(keys), [tuple(b) for b in boxes]

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self):
        for k, (t, l, h, w) in zip(self.keys, self.boxes):
            crop = np.ascontiguousarray(self.img[t:t + h, l:l + w])
            yield k, crop, crop.shape


def cut(imgs: dict[str, np.ndarray], scales: dict[str, int], plan: ImagePlan) -> dict[str, SubImages]:
    """Cut each field's image by the plan's boxes (divided by the field's scale).

    Args:
        imgs: field name -> ``(h, w, c)`` array (any dtype), at least ``extent / scale`` in size.
        scales: field name -> scale.
        plan: from :func:`plan_crops`.

    Returns:
        field name -> :class:`SubImages` (iterate for ``(key, C-contiguous crop, shape)`` in key order).

    Raises:
        ImageError: an image smaller than the plan's extent (its header said otherwise).
    """
    out = {}
    for name, img in imgs.items():
        s = scales[name]
        eh, ew = plan.extent[0] // s, plan.extent[1] // s
        if img.shape[0] < eh or img.shape[1] < ew:
            raise ImageError(f"{name}:{plan.key}: decoded image is {img.shape[0]}x{img.shape[1]}, smaller than the "
                             f"{eh}x{ew} its header promised")
        out[name] = SubImages(img, plan.keys, [(t // s, l // s, h // s, w // s) for t, l, h, w in plan.boxes])
    return out


def source_of(f: Field, key: str):
    """What a worker needs to read ``key`` of ``f``: a file path for folders, else the (picklable) store."""
    return str(f.store.path(key)) if isinstance(f.store, FolderStore) else f.store


def load(source, key: str) -> np.ndarray:
    """Read an item from what :func:`source_of` gave."""
    if isinstance(source, str):
        return images.read_image(source) if not source.endswith(".npy") else images.read_array(source)
    return source.read(key)


def item_fingerprint(fields: Sequence[Field], key: str) -> str:
    return fingerprint([[f.name, f.scale, f.store.item_fingerprint(key)] for f in fields])


# ------------------------------------------------------------------------------------------ the step


@dataclass
class CropReport:
    """What :func:`crop` did: the step's report plus sub-image counts and the small images."""

    step: StepReport
    fields: list[str]
    images: int
    subimages: int
    small: list[str] = field(default_factory=list)
    small_policy: str = "error"
    size: int = 0

    def summary(self) -> str:
        line = (f"{self.step.summary()}; {self.subimages} sub-images per field ({', '.join(self.fields)}) "
                f"from {self.images} images")
        if self.small:
            verb = "kept whole" if self.small_policy == "keep" else "skipped"
            names = ", ".join(self.small[:5]) + (" ..." if len(self.small) > 5 else "")
            line += f"; {len(self.small)} smaller than {self.size}x{self.size} {verb}: {names}"
        return line


def _crop_one(payload, *, out: str, scales: dict[str, int], dirs: dict[str, tuple[str, str]],
              png_level: int) -> ItemResult:
    key, sources, plan = payload
    if not plan.boxes:
        return ItemResult(info={"subimages": 0, "small": "skipped"})
    imgs = {name: load(src, key) for name, src in sources.items()}
    outputs = []
    for name, subs in cut(imgs, scales, plan).items():
        folder, suffix = dirs[name]
        writer = FolderWriter(Path(out) / folder, suffix=suffix, png_level=png_level)
        for sub_key, arr, _ in subs:
            outputs.append(f"{folder}/{writer.write(sub_key, arr)}")
    info = {"subimages": len(plan.boxes)}
    if plan.small:
        info["small"] = "kept"
    return ItemResult(outputs=outputs, info=info)


def check_destination(dst: Path) -> None:
    """Fail early, naming the path, when ``dst`` cannot be a folder this process writes to."""
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise StoreError(f"{dst}: exists and is not a folder; choose another destination")
    anc = dst
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise StoreError(f"{dst}: cannot create it: {anc} is a file")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise StoreError(f"{dst}: cannot write to {anc} (permission denied)")


def crop(hr: str | os.PathLike, lrs: Sequence[str | os.PathLike | tuple], dst: str | os.PathLike,
         opts: CropOptions = CropOptions(), *, png_level: int = 1, jobs: int | None = None, force: bool = False,
         dry_run: bool = False, progress: bool = True) -> CropReport:
    """Cut matched sub-images of HR and LR images into ``dst/HR`` and ``dst/X{s}`` (see the module docstring).

    Args:
        hr: HR folder or store.
        lrs: LR folders or stores: a path (scale inferred), ``"path:s"``, or a ``(path, scale)`` tuple.
        dst: output folder (owned by this step; its cache state lives in ``dst/.srprep``).
        opts: size, step, thresh, small-image policy.
        png_level: PNG compression level of the sub-images (pixels are the same at every level).
        jobs, force, dry_run, progress: see :func:`srprep.runner.run_step`.

    Returns:
        A :class:`CropReport`.

    Raises:
        StoreError: missing LR for a key, mismatched pair sizes, duplicate keys, unwritable destination.
        ImageError: an image smaller than the crop (with ``small="error"``), or unreadable.
        OptionsError: size/step not a multiple of every scale, two LR inputs with one scale.
        StageError: an image failed while cutting (names the key).
    """
    dst = Path(dst)
    fields = [Field("HR", open_store(hr, naming="same"), 1)]
    for spec in lrs:
        path, s = spec if isinstance(spec, tuple) else parse_lr_spec(str(spec))
        # absolute: worker processes (and Dask workers) may have other working directories
        fields.append(open_field(Path(os.path.abspath(path)), s))
    names = [f.name for f in fields]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise OptionsError(f"two inputs for {dup[0]}: give each scale once")
    keys, shapes = check_pairs(fields)
    plans = plan_crops(fields, keys, opts, shapes)
    if not dry_run:
        check_destination(dst)
    scales = {f.name: f.scale for f in fields}
    dirs = {f.name: (f.name, "" if f.scale == 1 else scale_suffix(f.scale)) for f in fields}
    items = [Item(k, item_fingerprint(fields, k), (k, {f.name: source_of(f, k) for f in fields}, plans[k]))
             for k in keys]
    params = {**asdict(opts), "png_level": png_level, "fields": [[f.name, f.scale] for f in fields]}
    inputs = {f.name: str(Path(getattr(f.store, "root", getattr(f.store, "path", ""))).resolve()) for f in fields}
    # The step owns its field folders (and its state), not the whole of dst: other steps may add fields
    # beside them (srprep centroids on a cropped dataset).
    step = Step("crop", dst, params, inputs, reads=tuple(Path(p) for p in inputs.values()),
                writes=tuple(dst / folder for folder, _ in dirs.values()))
    worker = functools.partial(_crop_one, out=str(dst), scales=scales, dirs=dirs, png_level=png_level)
    report = run_step(step, items, worker, jobs=jobs, force=force, dry_run=dry_run, progress=progress, unit="img")
    small = [k for k, p in plans.items() if p.small]
    return CropReport(report, names, len(keys), sum(len(p.boxes) for p in plans.values()), small, opts.small,
                      opts.size)
