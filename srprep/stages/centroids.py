"""``srprep centroids``: ECO's "centroid" pairs from a frozen pretrained network, exact and resumable.

ECO (Noise-free Optimization in Early Training Steps for Image Super-Resolution, AAAI 2024) trains first on
pairs that carry no noise from the ill-posed LR -> HR mapping, then moves to the original pairs. For each LR
image of the dataset:

* ``sr_pretrained = f(lr)``: the output of a fully trained, frozen network ``f``, run on the **whole** LR
  image (as the authors did on DIV2K; cutting sub-images afterwards, on the HR grid, gives the same
  sub-images the originals get, without seams at their borders);
* ``lr_pretrained = imresize(sr_pretrained, 1/s, 'bicubic')``: MATLAB bicubic, in the same convention as
  the dataset's LR.

What is stored (``--store-dtype``):

``uint8`` (default, what the authors stored as 8-bit PNG)
    sr_pretrained: the network output clamped to [0, 1], times 255, rounded half away from zero (MATLAB's
    ``im2uint8``; :func:`srprep.ops.imresize.to_uint8` of the float32 output in float64).
    lr_pretrained: :func:`~srprep.ops.imresize.imresize_matlab` of that uint8 sr_pretrained. ``uint8``
    convention: uint8 in, uint8 out (rounded after each 1-D pass, as ``imresize`` of a uint8 image in
    MATLAB). ``im2double`` convention: computed on ``sr/255`` in double, one final
    :func:`~srprep.ops.imresize.to_uint8` (``imwrite(imresize(im2double(sr), 1/s))``).
``float32`` / ``float16`` (folders only, ``.npy`` files of shape (H, W, 3))
    sr_pretrained: the network output clamped to [0, 1], not rounded, cast to the dtype.
    lr_pretrained: ``imresize_matlab`` (MATLAB's double arithmetic) of the *stored* sr_pretrained (after
    the cast) in float64, clipped to [0, 1] (bicubic overshoots a little at edges), cast to the dtype.
    Nothing is rounded to 8 bits, so only the im2double convention applies; asking for the uint8 one
    is an error.

In every case lr_pretrained is exactly ``imresize`` of the stored sr_pretrained, so a trainer reading the two
fields gets a pair that is consistent to the last bit.

Layout, beside the source fields (or under ``--out``), same keys as the source LR:

=================================  =============================================  =========================
source (``DATA``)                  written                                        step state
=================================  =============================================  =========================
``HR/``, ``X2/<key>x2.png``        ``sr_pretrained/<key>.png``,                   ``sr_pretrained/.srprep``
                                   ``lr_pretrained/<key>x2.png`` (``.npy``)
``HR.lmdb``, ``X2.lmdb``           ``sr_pretrained.lmdb``,                        ``centroids/.srprep``
                                   ``lr_pretrained.lmdb`` (encoding of X2.lmdb)
``data.h5`` (``HR``, ``X2``)       ``centroids/data.h5`` (``sr_pretrained``,      ``centroids/.srprep``
                                   ``lr_pretrained``; same encoding)
=================================  =============================================  =========================

So ``srprep crop`` / ``srprep pack`` see two more fields (sr_pretrained at HR scale, lr_pretrained at the LR
scale) and cut them on the same HR grid as HR and X2. Packed sources that were already cut into sub-images
work, but the network then sees each sub-image alone (different pixels near its borders than the
authors' whole-image run): make centroids before cropping.

The step's parameters hold the model file's SHA-256, architecture, scale, precision, tiling, store dtype and
convention; a different model file redoes every image. A killed run resumes per image. On ``--device cuda``
the work is pipelined (decode, network and encode overlap; several GPUs get one process each), see
:mod:`srprep.stages.network`.
"""
from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import OptionError as OptionsError, StoreError
from ..io import images
from ..io.stores import FolderStore, open_store, paired_keys, scale_suffix, store_location
from ..ops.imresize import imresize_matlab, to_uint8
from ..runner import Item, ItemResult, Step, StepReport
from .network import (InferOptions, ModelSpec, device_kind, item_source, read_item,
                      resolve_devices, run_model_step)

__all__ = ["CONVENTIONS", "STORE_DTYPES", "SR_FIELD", "LR_FIELD", "CentroidOptions", "CentroidSource",
           "CentroidReport", "make_centroids", "find_source", "centroids", "preview_rows"]

log = logging.getLogger(__name__)

CONVENTIONS = ("uint8", "im2double")
STORE_DTYPES = ("uint8", "float16", "float32")
SR_FIELD, LR_FIELD = "sr_pretrained", "lr_pretrained"
HDF5_DIR, HDF5_NAME = "centroids", "data.h5"
PREVIEW_NAME = "centroids_preview.png"


# ------------------------------------------------------------------------------------------ the pixels


def make_centroids(sr: np.ndarray, scale: int, *, convention: str = "uint8",
                   dtype: str = "uint8") -> tuple[np.ndarray, np.ndarray]:
    """The stored pair ``(sr_pretrained, lr_pretrained)`` from a network output (see the module docstring).

    Args:
        sr: (H, W, 3) float network output in [0, 1] (values outside are clamped); H, W multiples of ``scale``.
        scale: the network's scale; lr_pretrained is (H/s, W/s, 3).
        convention: ``"uint8"`` or ``"im2double"`` (MATLAB bicubic conventions; float dtypes need im2double).
        dtype: ``"uint8"``, ``"float16"`` or ``"float32"``: what is stored.

    Returns:
        (sr_pretrained, lr_pretrained), both of ``dtype``.

    Example:
        >>> sr = np.full((8, 8, 3), 0.5, np.float32)
        >>> s, l = make_centroids(sr, 2)
        >>> s.dtype, int(s[0, 0, 0]), l.shape, int(l[0, 0, 0])
        (dtype('uint8'), 128, (4, 4, 3), 128)
    """
    _check_options(convention, dtype)
    if not isinstance(sr, np.ndarray) or not np.issubdtype(sr.dtype, np.floating) or sr.ndim != 3:
        raise TypeError(f"sr must be an (H, W, 3) float array in [0, 1], not {getattr(sr, 'dtype', type(sr))} "
                        f"{getattr(sr, 'shape', '')}")
    if sr.shape[0] % scale or sr.shape[1] % scale:
        raise ValueError(f"sr size {sr.shape[0]}x{sr.shape[1]} is not a multiple of the scale {scale}")
    if dtype == "uint8":
        sr_u8 = to_uint8(sr)  # saturates: the same as clamping to [0, 1] first
        if convention == "uint8":
            return sr_u8, imresize_matlab(sr_u8, 1.0 / scale)
        return sr_u8, to_uint8(imresize_matlab(sr_u8, 1.0 / scale, im2double=True))
    sr_stored = np.clip(sr, 0.0, 1.0).astype(dtype)
    lr = imresize_matlab(sr_stored.astype(np.float64), 1.0 / scale)
    return sr_stored, np.clip(lr, 0.0, 1.0).astype(dtype)


def _check_options(convention: str, dtype: str) -> None:
    if convention not in CONVENTIONS:
        raise OptionsError(f"convention must be one of {', '.join(CONVENTIONS)}, not {convention!r}")
    if dtype not in STORE_DTYPES:
        raise OptionsError(f"store dtype must be one of {', '.join(STORE_DTYPES)}, not {dtype!r}")
    if dtype != "uint8" and convention != "im2double":
        raise OptionsError(f"a {dtype} store is not rounded to 8 bits, so the uint8 convention (rounding after "
                           f"each pass) does not apply: use convention 'im2double'")


@dataclass(frozen=True)
class CentroidOptions:
    """What decides the stored pixels besides the model (all of it goes into the step's parameters).

    convention: MATLAB bicubic convention of lr_pretrained (None: uint8 for a uint8 store, else im2double).
    store_dtype: uint8 | float16 | float32 (float: folders only).
    png_level: zlib level of PNG files / PNG-encoded packed values (pixels are the same at every level).
    """

    convention: Optional[str] = None
    store_dtype: str = "uint8"
    png_level: int = 1

    def resolved(self) -> "CentroidOptions":
        conv = self.convention or ("uint8" if self.store_dtype == "uint8" else "im2double")
        _check_options(conv, self.store_dtype)
        if not 0 <= self.png_level <= 9:
            raise OptionsError(f"png_level must be in 0..9, not {self.png_level}")
        return CentroidOptions(conv, self.store_dtype, self.png_level)


# ------------------------------------------------------------------------------------------ the source


@dataclass
class CentroidSource:
    """Where the LR (and HR) of a dataset are, and where its centroids go.

    kind: "folder", "lmdb" or "hdf5". lr, hr: the stores (hr may be None). outputs: field -> path written.
    """

    kind: str
    scale: int
    lr: Any
    lr_path: Path
    hr: Any = None
    out: Path = Path(".")
    outputs: dict = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        if self.kind == "folder":
            return self.out / SR_FIELD / ".srprep"
        # Not inside an LMDB folder: its writer deletes the folder when it starts over.
        return self.out / HDF5_DIR / ".srprep"


_SCALE_NAME = re.compile(r"^X(\d+)(\.lmdb)?$", re.IGNORECASE)


def _available_scales(data: Path) -> list[str]:
    if data.is_file():
        from ..io.hdf5_store import fields_of

        return [f for f in fields_of(data) if _SCALE_NAME.match(f)]
    found = [p.name for p in data.iterdir() if _SCALE_NAME.match(p.name)]
    h5 = data / HDF5_NAME
    if h5.is_file():
        from ..io.hdf5_store import fields_of

        found += [f"{HDF5_NAME}/{f}" for f in fields_of(h5) if _SCALE_NAME.match(f)]
    return sorted(found)


def find_source(data: str | os.PathLike, scale: int, out: str | os.PathLike | None = None) -> CentroidSource:
    """Locate the LR field for ``scale`` (and HR) in a dataset folder or packed store; see the module table.

    Raises:
        StoreError: no LR for this scale (the message lists the scales the data has), or no dataset here.
    """
    data = Path(data)
    if not data.exists():
        raise StoreError(f"{data}: no such dataset folder or store")
    x = f"X{scale_suffix(scale)[1:]}"
    h5 = data if data.is_file() and data.suffix.lower() in (".h5", ".hdf5") else data / HDF5_NAME
    if data.is_dir() and (data / x).is_dir() and not (data / x / "data.mdb").exists():
        kind, lr_path = "folder", data / x
        lr = open_store(lr_path, scale=scale)
        hr_path = data / "HR"
        hr = open_store(hr_path, naming="same") if hr_path.is_dir() else None
    elif data.is_dir() and (data / f"{x}.lmdb" / "data.mdb").is_file():
        kind, lr_path = "lmdb", data / f"{x}.lmdb"
        lr = open_store(lr_path)
        hr = open_store(data / "HR.lmdb") if (data / "HR.lmdb" / "data.mdb").is_file() else None
    elif h5.is_file():
        from ..io.hdf5_store import Hdf5Store, fields_of

        names = fields_of(h5)
        if x not in names:
            raise StoreError(_no_lr_message(data, h5 / x, scale, [f for f in names if _SCALE_NAME.match(f)]))
        kind, lr_path = "hdf5", h5
        lr = Hdf5Store(h5, x)
        hr = Hdf5Store(h5, "HR") if "HR" in names else None
    else:
        raise StoreError(_no_lr_message(data, data / x, scale, _available_scales(data) if data.is_dir() else []))
    out = Path(out) if out is not None else (data if data.is_dir() else data.parent)
    src = CentroidSource(kind, int(scale), lr, lr_path, hr, out)
    if kind == "folder":
        src.outputs = {SR_FIELD: out / SR_FIELD, LR_FIELD: out / LR_FIELD}
    elif kind == "lmdb":
        src.outputs = {SR_FIELD: out / f"{SR_FIELD}.lmdb", LR_FIELD: out / f"{LR_FIELD}.lmdb"}
    else:
        src.outputs = {n: out / HDF5_DIR / HDF5_NAME for n in (SR_FIELD, LR_FIELD)}
    return src


def _no_lr_message(data: Path, wanted: Path, scale: int, have: list[str]) -> str:
    if have:
        return (f"{data}: the model is x{scale} but the dataset has LR images only for "
                f"{', '.join(have)} (no {wanted.name}); use a x{scale} model for these LR images, or make "
                f"x{scale} LR with srprep downsample")
    return (f"{data}: no LR images for x{scale} (expected {wanted}, as srprep downsample or srprep pack lay a "
            f"dataset out)")


def _check_pairs(src: CentroidSource) -> list[str]:
    """LR keys (all of them, in store order), checked against HR by key and by size (HR = LR x s)."""
    if src.hr is None:
        log.warning("%s: no HR beside the LR; pair sizes are not checked", src.lr_path)
        keys = src.lr.keys()
    else:
        keys = paired_keys({str(src.lr_path): src.lr, str(getattr(src.hr, "root", getattr(src.hr, "path", "HR"))):
                            src.hr})
    if not keys:
        raise StoreError(f"{src.lr_path}: no images")
    s = src.scale
    for k in keys:
        h, w = src.lr.shape(k)[:2]
        if src.hr is None:
            continue
        H, W = src.hr.shape(k)[:2]
        if not (0 <= H - h * s < s and 0 <= W - w * s < s):
            ratio = f"{H / h:.3g}" if h else "?"
            raise StoreError(f"{_where(src.lr, k)} is {h}x{w} but its HR {_where(src.hr, k)} is {H}x{W}: not a x{s} "
                             f"pair (ratio {ratio}); the model is x{s}, so its LR must be floor(HR/{s})")
    if src.kind != "folder" and all(re.search(r"_s\d{3,}$", k) for k in keys):
        log.warning("%s: the keys look like sub-images; the network sees each one alone, which differs from "
                    "running it on whole images near sub-image borders (make centroids before crop/pack)",
                    src.lr_path)
    return keys


def _where(store, key: str) -> str:
    if isinstance(store, FolderStore):
        return str(store.path(key))
    return f"{getattr(store, 'path', store)}:{key}"


# ------------------------------------------------------------------------------------------ writing


def _finish_folder(payload, sr: np.ndarray, *, out: str, scale: int, opts: CentroidOptions) -> ItemResult:
    key = payload[0]
    sr_img, lr_img = make_centroids(sr, scale, convention=opts.convention, dtype=opts.store_dtype)
    ext = ".png" if opts.store_dtype == "uint8" else ".npy"
    names = [f"{SR_FIELD}/{key}{ext}", f"{LR_FIELD}/{key}{scale_suffix(scale)}{ext}"]
    for name, img in zip(names, (sr_img, lr_img)):
        if ext == ".png":
            images.write_image(Path(out) / name, img, png_level=opts.png_level)
        else:
            images.write_array(Path(out) / name, np.ascontiguousarray(img))
    return ItemResult(outputs=names)


def _finish_packed(payload, sr: np.ndarray, *, scale: int, opts: CentroidOptions, encoding: str) -> ItemResult:
    key = payload[0]
    pair = make_centroids(sr, scale, convention=opts.convention, dtype="uint8")
    records = {}
    for name, img in zip((SR_FIELD, LR_FIELD), pair):
        value = images.encode_image(img, ".png", png_level=opts.png_level) if encoding == "png" else img
        records[name] = [(key, value, img.shape)]
    return ItemResult(records=records)


def _packed_ledger(src: CentroidSource, keys: Sequence[str], info: dict, png_level: int):
    # The ledgers of srprep pack: data and done-records committed together, so a kill never loses or doubles a key.
    from .pack import Hdf5Ledger, LmdbLedger

    s = src.scale
    lr_shapes = {k: tuple(src.lr.shape(k)) for k in keys}
    shapes = {SR_FIELD: [(h * s, w * s, 3) for h, w, _ in lr_shapes.values()],
              LR_FIELD: [(h, w, 3) for h, w, _ in lr_shapes.values()]}
    scales = {SR_FIELD: 1, LR_FIELD: s}
    encoding = getattr(src.lr, "encoding", "raw")
    if src.kind == "lmdb":
        from ..io.lmdb_store import LmdbWriter, map_size_for

        writers = {}
        for name in (SR_FIELD, LR_FIELD):
            nbytes = sum(int(np.prod(sh)) for sh in shapes[name])
            writers[name] = LmdbWriter(src.outputs[name], encoding=encoding, png_level=png_level,
                                       map_size=map_size_for(int(nbytes * 1.01) + 1024 * len(keys), len(keys)),
                                       info={**info, "field": name, "scale": scales[name]})
        return LmdbLedger(writers, src.state_dir, 256 << 20), encoding
    from ..io.hdf5_store import Hdf5Field, Hdf5Writer

    fields = [Hdf5Field(name, tuple(keys), tuple(shapes[name]), {"scale": scales[name]})
              for name in (SR_FIELD, LR_FIELD)]
    return Hdf5Ledger(Hdf5Writer(src.outputs[SR_FIELD], fields, encoding=encoding, png_level=png_level,
                                  attrs=info), src.state_dir, 256 << 20), encoding


# ------------------------------------------------------------------------------------------ the step


@dataclass
class CentroidReport:
    """What :func:`centroids` did: the step's report, the model, where the two fields are, the preview."""

    step: StepReport
    model: ModelSpec
    kind: str
    outputs: dict
    options: CentroidOptions
    preview: Optional[Path] = None

    def summary(self) -> str:
        where = ", ".join(str(p) for p in dict.fromkeys(self.outputs.values()))
        line = (f"{self.step.summary()}; {self.model.describe()}, {self.options.store_dtype} "
                f"({self.options.convention} convention) -> {where}")
        if self.preview is not None:
            line += f"; preview {self.preview}"
        return line


def centroids(data: str | os.PathLike, model: str | os.PathLike, *, arch: str | None = None,
              scale: int | None = None, options: CentroidOptions = CentroidOptions(), tile: int | None = None,
              overlap: int = 32, precision: str = "fp32", device: str | Sequence[str] = "cpu",
              trust_checkpoint: bool = False, model_kwargs: dict | None = None, batch: int = 1,
              out: str | os.PathLike | None = None, preview: int = 0, pipelined: bool | None = None,
              jobs: int | None = None, force: bool = False, dry_run: bool = False,
              progress: bool = True) -> CentroidReport:
    """Write ECO centroid pairs (sr_pretrained, lr_pretrained) for every LR image of a dataset.

    Args:
        data: dataset folder (``DATA/HR``, ``DATA/X2`` ... as srprep downsample writes it, or
            ``DATA/HR.lmdb``, ``DATA/X2.lmdb`` / ``DATA/data.h5`` as srprep pack writes them), or an ``.h5``.
        model: pretrained checkpoint; its scale picks the LR field (``X{s}``).
        arch, scale: override what the checkpoint says (a scale the weights are not for is an error).
        options: convention, store dtype, PNG level (see :class:`CentroidOptions` and the module docstring).
        tile, overlap: tiled inference for images too big for the device (None: whole images, as ECO did;
            networks with global pooling such as IMDN/RCAN give slightly other pixels when tiled).
        precision: fp32 | tf32 | bf16 (| fp16) as in :func:`srprep.infer.upscale`.
        device: ``"cpu"``, ``"cuda"`` (every visible GPU, pipelined), ``"cuda:1"`` or a comma-separated list.
        trust_checkpoint: allow a checkpoint that pickles Python objects (runs code from the file).
        model_kwargs: network constructor arguments the weights do not record (e.g. EDSR's ``res_scale``).
        batch: equal-size LR images run through the network together (pipelined mode).
        out: write the fields under this folder instead of beside the source fields.
        preview: write ``OUT/centroids_preview.png`` with LR, sr_pretrained, lr_pretrained, HR crops of this
            many keys (0: none).
        pipelined: force the pipelined mode on or off (default: on for accelerators).
        jobs, force, dry_run, progress: see :func:`srprep.runner.run_step` (jobs: CPU worker processes).

    Returns:
        A :class:`CentroidReport`.

    Raises:
        SrprepError: the checkpoint does not load (names the missing keys); the model's scale does not match
            the data; LR/HR pairs that do not fit; float store with a packed source; an item failed (key).
    """
    options = options.resolved()
    devices = resolve_devices(device)
    spec, _, _ = ModelSpec.load(model, arch, scale, trust_checkpoint=trust_checkpoint, model_kwargs=model_kwargs)
    src = find_source(data, spec.scale, out)
    if src.kind != "folder" and options.store_dtype != "uint8":
        raise OptionsError(f"{src.lr_path}: packed stores hold uint8 images; --store-dtype {options.store_dtype} "
                           f"needs a folder dataset")
    keys = _check_pairs(src)
    infer_opts = InferOptions(tile=tile, overlap=overlap, precision=precision)
    params = {"model": spec.params(), **infer_opts.params(), "device": device_kind(devices),
              "convention": options.convention, "store_dtype": options.store_dtype, "png_level": options.png_level,
              "kind": src.kind}
    items = [Item(k, src.lr.item_fingerprint(k), (k, item_source(src.lr, k))) for k in keys]
    reads = (src.lr_path,) + ((store_location(src.hr),) if src.hr is not None else ())
    writes = tuple(dict.fromkeys(src.outputs.values())) if src.kind == "folder" else \
        (src.out / HDF5_DIR, *dict.fromkeys(src.outputs.values()))
    step = Step("centroids", src.out if src.kind == "folder" else src.out / HDF5_DIR, params,
                {"lr": str(src.lr_path.resolve())}, state_dir=src.state_dir, reads=reads, writes=writes)
    ledger = None
    if src.kind == "folder":
        finish = functools.partial(_finish_folder, out=str(src.out), scale=spec.scale, opts=options)
    else:
        info = {"convention": options.convention, "model_sha256": spec.sha256, "arch": spec.arch,
                "precision": precision, "source": str(src.lr_path.resolve())}
        ledger, encoding = _packed_ledger(src, keys, info, options.png_level)
        finish = functools.partial(_finish_packed, scale=spec.scale, opts=options, encoding=encoding)
    report = run_model_step(step, items, spec=spec, opts=infer_opts, devices=devices, read=read_item, finish=finish,
                            output="float", pipelined=pipelined, batch=batch, jobs=jobs, force=force,
                            dry_run=dry_run, progress=progress, ledger=ledger)
    result = CentroidReport(report, spec, src.kind, src.outputs, options)
    if preview and not dry_run:
        result.preview = write_preview(src, keys[:preview])
    return result


# ------------------------------------------------------------------------------------------ preview


def _open_output(src: CentroidSource, name: str):
    path = src.outputs[name]
    if src.kind == "hdf5":
        from ..io.hdf5_store import Hdf5Store

        return Hdf5Store(path, name)
    if src.kind == "lmdb":
        return open_store(path)
    return path


def _read_output(store, key: str, name: str, scale: int) -> np.ndarray:
    if not isinstance(store, Path):
        return store.read(key)
    suffix = scale_suffix(scale) if name == LR_FIELD else ""
    png = store / f"{key}{suffix}.png"
    if png.is_file():
        return images.read_image(png)
    return images.read_array(store / f"{key}{suffix}.npy").astype(np.float32)


def preview_rows(src: CentroidSource, keys: Sequence[str], crop: int = 48) -> tuple[list, list[str]]:
    """Rows of (LR, sr_pretrained, lr_pretrained[, HR]) crops, one row per key, and the column labels.

    The crop is ``crop`` LR pixels square (less for small images) at the centre; the HR-sized crops are the
    same box times the scale, so every column shows the same scene.
    """
    s = src.scale
    sr_store, lr_store = _open_output(src, SR_FIELD), _open_output(src, LR_FIELD)
    rows = []
    for k in keys:
        lr = src.lr.read(k)
        h, w = lr.shape[:2]
        c = min(crop, h, w)
        t, l = (h - c) // 2, (w - c) // 2
        row = [lr[t:t + c, l:l + c],
               _read_output(sr_store, k, SR_FIELD, s)[t * s:(t + c) * s, l * s:(l + c) * s],
               _read_output(lr_store, k, LR_FIELD, s)[t:t + c, l:l + c]]
        if src.hr is not None:
            row.append(src.hr.read(k)[t * s:(t + c) * s, l * s:(l + c) * s])
        rows.append(row)
    for store in (sr_store, lr_store):
        if hasattr(store, "close"):
            store.close()  # an LMDB allows one handle per process: a later writer must be able to open it
    labels = ["LR", SR_FIELD, LR_FIELD] + (["HR"] if src.hr is not None else [])
    return rows, labels


def write_preview(src: CentroidSource, keys: Sequence[str]) -> Path:
    """Write ``OUT/centroids_preview.png`` (a contact sheet of :func:`preview_rows`); returns its path."""
    from ..ops.sheet import contact_sheet

    rows, labels = preview_rows(src, keys)
    path = src.out / PREVIEW_NAME
    images.write_image(path, contact_sheet(rows, labels, max_height=None))
    return path
