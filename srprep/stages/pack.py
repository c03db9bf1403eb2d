"""``srprep pack``: a paired dataset (folders of PNGs) into packed stores that a trainer reads fast.

Input: a dataset folder as ``srprep downsample`` / ``srprep crop`` write it: ``SRC/HR`` plus any other field
folders (``SRC/X2``, ``SRC/X4``, ``SRC/sr_pretrained``, ``SRC/lr_pretrained`` ...); a field's scale comes
from its name (``X{s}``), its files' ``x{s}`` suffix, or the ratio of its image sizes to HR's. Items are
paired by key and checked (HR = LR x s, see :func:`srprep.stages.crop.pairing_problems`) before anything
is written. With ``crop`` the images are cut into sub-images on one HR grid on the way
(:mod:`srprep.stages.crop`), so sub-images never touch the disk as PNG files.

Output (``DST`` is a folder; its cache state lives in ``DST/.srprep``):

``lmdb``
    one LMDB per field, ``DST/HR.lmdb``, ``DST/X2.lmdb`` ... (layout in :mod:`srprep.io.lmdb_store`). Every
    field uses the HR keys (``0001_s001`` in X2.lmdb too), as BasicSR's paired LMDB datasets expect. With
    ``encoding="png"`` each store is what BasicSR's ``create_lmdb.py`` makes (``meta_info.txt``, PNG
    values); ``raw`` stores the pixels (no decode when training) with shapes in the store's ``.index``.
``hdf5``
    one file ``DST/data.h5`` with one group per field (layout and crash handling in
    :mod:`srprep.io.hdf5_store`).

One item of the step is one source image; a worker reads every field's image for it, crops and encodes
(PNG). LMDB, with worker processes on this machine (the usual case): the worker commits the item to every
field's store itself, one transaction per store (:class:`~srprep.io.lmdb_store.LmdbTarget`), and the
pixels never cross between processes; the parent creates the stores, forgets stale items and marks them
complete. HDF5, one job, or a Dask cluster: the worker returns the records and the parent process is the
only writer (raw sub-images are cut there, from the one decoded image the worker sent). Resume: LMDB
done-records are committed in the same transaction as the data; HDF5 is written under a temporary name
with a verified done-count. An item counts as done
only when every field has it, so a kill between two stores' commits redoes that item everywhere (its keys
are overwritten, never doubled). The step's journal (``DST/.srprep``) only mirrors the stores'
done-records, after each commit, so that ``srprep status`` can tell how far a pack got. Changing the
parameters, or the fields, repacks everything; adding or changing images packs only those (LMDB) or
lays the file out again (HDF5).
"""
from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ImageError, StoreError
from ..fingerprint import fingerprint
from ..io import images
from ..io.hdf5_store import Hdf5Field, Hdf5Writer
from ..io.lmdb_store import Committed, LmdbStore, LmdbTarget, LmdbWriter, map_size_for
from ..io.stores import holds_items, open_store
from ..runner import STATE_DIR, Item, ItemResult, Journal, Step, StepReport, local_processes, run_step
from .crop import (CropOptions, Field, ImagePlan, OptionsError, check_destination, check_pairs, cut, infer_scale,
                   item_fingerprint, load, plan_crops, source_of)

__all__ = ["PackReport", "dataset_fields", "pack", "HDF5_NAME", "FORMATS", "ENCODINGS"]

HDF5_NAME = "data.h5"
FORMATS = ("lmdb", "hdf5")
ENCODINGS = ("raw", "png")
CONVENTION = ("HR cropped top-left to a multiple of every scale (LR x s, the benchmark modcrop convention); "
              "sub-images cut on one HR grid, LR boxes = HR boxes / s")


def _field_name(path: Path) -> str:
    name = path.name
    return name[:-5] if name.lower().endswith(".lmdb") else name


def _open(path: Path, *, scale: int | None = None, allow_incomplete: bool = False):
    if (path / "data.mdb").is_file():
        return LmdbStore(path, allow_incomplete=allow_incomplete)
    return open_store(path, scale=scale) if scale and scale > 1 else open_store(path, naming="same")


def dataset_fields(src: str | os.PathLike, *, allow_incomplete: bool = False) -> list[Field]:
    """The fields of a dataset folder: ``HR`` first, then every other folder (or ``.lmdb``) holding images.

    Scales: ``X{s}`` names and ``x{s}`` file suffixes say it; otherwise HR size // field size (checked for
    every key later by :func:`~srprep.stages.crop.check_pairs`). ``allow_incomplete`` opens LMDB stores
    whose writer was interrupted (for inspection).

    Raises:
        StoreError: no ``HR`` folder, or a field whose scale cannot be told.
    """
    src = Path(src)
    if not src.is_dir():
        raise StoreError(f"{src}: not a dataset folder (expected {src}/HR, {src}/X2, ...)")
    hr_path = next((p for p in (src / "HR", src / "HR.lmdb") if p.is_dir()), None)
    if hr_path is None:
        raise StoreError(f"{src}: no HR folder (expected {src}/HR next to {src}/X2 ...)")
    hr = Field("HR", _open(hr_path, allow_incomplete=allow_incomplete), 1)
    fields = [hr]
    hr_keys = hr.store.keys()
    for p in sorted(src.iterdir()):
        if p == hr_path or p.name.startswith(".") or not p.is_dir() or not holds_items(p):
            continue
        name = _field_name(p)
        scale = infer_scale(p)
        store = _open(p, scale=scale, allow_incomplete=allow_incomplete)
        if scale is None:
            common = [k for k in hr_keys if k in store]
            if not common:
                raise StoreError(f"{p}: no key in common with {hr_path}; cannot tell its scale")
            (H, W), (h, w) = hr.store.shape(common[0])[:2], store.shape(common[0])[:2]
            scale = max(1, min(H // h, W // w))
        fields.append(Field(name, store, int(scale)))
    if len({f.name for f in fields}) != len(fields):
        raise StoreError(f"{src}: two folders give one field name: {[f.name for f in fields]}")
    return fields


@dataclass
class PackReport:
    """What :func:`pack` did: the step's report, the stores written, counts and sizes."""

    step: StepReport
    fmt: str
    encoding: str
    stores: dict[str, Path]
    counts: dict[str, int]
    images: int
    small: list[str] = field(default_factory=list)
    small_policy: str = "error"
    bytes_on_disk: int = 0

    def summary(self) -> str:
        per = sorted(set(self.counts.values()))
        count = f"{per[0]} items per field" if len(per) == 1 else \
            ", ".join(f"{n} {k}" for k, n in self.counts.items())
        line = (f"{self.step.summary()}; {self.fmt} {self.encoding}, {count} ({', '.join(self.counts)}) from "
                f"{self.images} images, {self.bytes_on_disk / 2**20:.1f} MiB")
        if self.small:
            verb = "kept whole" if self.small_policy == "keep" else "skipped"
            line += f"; {len(self.small)} smaller than the crop {verb}: {', '.join(self.small[:5])}" + \
                (" ..." if len(self.small) > 5 else "")
        return line


# ------------------------------------------------------------------------------------------ ledgers


class _StoreLedger:
    """The runner's ledger for stores that hold their own done-records (LMDB, HDF5).

    The stores decide what is done (their done-records are committed with the data). The step's journal
    is written as a mirror of them, after each commit, only so that ``srprep status`` can say how far an
    interrupted pack got; it is never read back to decide anything.
    """

    def __init__(self, state_dir: Path, batch_bytes: int):
        self.journal = Journal(state_dir)
        self.batch_bytes = batch_bytes
        self._loaded: dict[str, tuple[str, list]] = {}
        self._queued: list[tuple[Item, ItemResult]] = []

    # store-specific
    def _load(self): ...
    def _reset(self): ...
    def _begin(self, params_fp): ...
    def _add(self, item: Item, result: ItemResult) -> None: ...
    def _pending_bytes(self) -> int: ...
    def _flush(self) -> None: ...
    def _forget(self, keys) -> None: ...
    def _finish(self) -> None: ...
    def _close(self) -> None: ...

    def load(self):
        params_fp, self._loaded = self._load()
        return params_fp, self._loaded

    def reset(self, params_fp):
        self._reset()
        self.journal.reset(params_fp)
        self._loaded = {}

    def begin(self, params_fp, total, meta):
        self._begin(params_fp)
        self.journal.reset(params_fp)
        self.journal.begin(params_fp, total, meta)
        for key, (fp, _) in self._loaded.items():
            if fp:
                self.journal.record(Item(key, fp), ItemResult())

    def record(self, item, result):
        self._add(item, result)
        self._queued.append((item, ItemResult()))
        if self._pending_bytes() >= self.batch_bytes:
            self.commit()

    def forget(self, keys):
        self._forget(keys)
        self.journal.forget(keys)

    def commit(self):
        self._flush()
        for item, result in self._queued:
            self.journal.record(item, result)
        self._queued = []
        self.journal.commit()

    def finish(self):
        self.commit()
        self._finish()

    def close(self):
        try:
            self._close()
        finally:
            self.journal.close()


class LmdbLedger(_StoreLedger):
    """One LmdbWriter per field; an item is done only when every store has it with its fingerprint."""

    def __init__(self, writers: dict[str, LmdbWriter], state_dir: Path, batch_bytes: int):
        super().__init__(state_dir, batch_bytes)
        self.writers = writers
        self._committed = 0  # bytes the workers committed themselves since the journal's last commit

    def _load(self):
        loaded = {name: w.load() for name, w in self.writers.items()}
        fps = {fp for fp, _ in loaded.values() if fp is not None}
        params_fp = fps.pop() if len(fps) == 1 else ("mixed" if fps else None)
        done: dict[str, tuple[str, list]] = {}
        for item in set().union(*(d for _, d in loaded.values())):
            item_fps = {d[item][0] if item in d else None for _, d in loaded.values()}
            # "" matches no real fingerprint: an item missing from a store is redone everywhere (its keys
            # are overwritten where they exist), yet it is listed, so it can go stale and be deleted.
            done[item] = (item_fps.pop() if len(item_fps) == 1 and None not in item_fps else "", [])
        return params_fp, done

    def _reset(self):
        for w in self.writers.values():
            w.reset()

    def _begin(self, params_fp):
        for w in self.writers.values():
            w.begin(params_fp)

    def _add(self, item, result):
        for name, recs in result.records.items():
            if isinstance(recs, Committed):  # already in the store, with its done-record
                self._committed += recs.nbytes
                self.writers[name].note_offsets(recs.offsets)
                continue
            # Queue only: the ledger commits every store at the same points, so they stay within one batch.
            self.writers[name].add(item.key, item.fingerprint, recs, autoflush=False)

    def _pending_bytes(self):
        return sum(w.pending_bytes for w in self.writers.values()) + self._committed

    def _flush(self):
        for w in self.writers.values():
            w.flush()
        self._committed = 0

    def _forget(self, keys):
        for w in self.writers.values():
            w.forget(keys)

    def _finish(self):
        for w in self.writers.values():
            w.finish()

    def _close(self):
        for w in self.writers.values():
            w.close()

    def files(self) -> list[Path]:
        return [p for w in self.writers.values() for p in w.files()]


class Hdf5Ledger(_StoreLedger):
    """One Hdf5Writer (every field in one file)."""

    def __init__(self, writer: Hdf5Writer, state_dir: Path, batch_bytes: int):
        super().__init__(state_dir, batch_bytes)
        self.writer = writer

    def _load(self):
        return self.writer.load()

    def _reset(self):
        self.writer.reset()

    def _begin(self, params_fp):
        self.writer.begin(params_fp)

    def _add(self, item, result):
        self.writer.add(item.key, item.fingerprint, result.records, autoflush=False)

    def _pending_bytes(self):
        return self.writer.pending_bytes

    def _flush(self):
        self.writer.flush()

    def _forget(self, keys):
        self.writer.forget(keys)

    def _finish(self):
        self.writer.finish()

    def _close(self):
        self.writer.close()

    def files(self) -> list[Path]:
        return [self.writer.path] if self.writer.path.is_file() else []


# ------------------------------------------------------------------------------------------ worker


def _pack_one(payload, *, scales: dict[str, int], encoding: str, png_level: int,
              targets: dict[str, LmdbTarget] | None = None) -> ItemResult:
    key, item_fp, sources, plan, shapes = payload
    # In a worker process: commit to the stores here. In the writer's own process (one job, or one item
    # to do, runs inline), LMDB forbids a second handle: hand the records over as everywhere else.
    direct = targets is not None and all(os.getpid() != t.writer_pid for t in targets.values())

    def done(info, records):
        if direct:
            records = {n: targets[n].commit(key, item_fp, recs) for n, recs in records.items()}
        return ItemResult(info=info, records=records)

    if plan is not None and not plan.boxes:
        return done({"subimages": 0, "small": "skipped"}, {n: [] for n in sources})
    imgs = {}
    for name, src in sources.items():
        img = load(src, key)
        if img.dtype != np.uint8 or img.ndim != 3:
            raise ImageError(f"{name}:{key}: pack stores (h, w, 3) uint8 images, not {img.dtype} {img.shape}")
        if plan is None and tuple(img.shape) != tuple(shapes[name]):
            raise ImageError(f"{name}:{key}: decoded image is {img.shape}, its header said {tuple(shapes[name])}")
        imgs[name] = img
    subs = {n: [(key, img, img.shape)] for n, img in imgs.items()} if plan is None else cut(imgs, scales, plan)
    if encoding == "png":
        records = {n: [(k, images.encode_image(a, ".png", png_level=png_level), shape) for k, a, shape in pieces]
                   for n, pieces in subs.items()}
    else:
        # Raw sub-images are cut as they are stored (SubImages): handed to the parent, the image crosses
        # once, not once per overlapping crop.
        records = subs
    info = {"subimages": len(next(iter(subs.values())))}
    if plan is not None and plan.small:
        info["small"] = "kept"
    return done(info, records)


# ------------------------------------------------------------------------------------------ the step


def _disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_blocks * 512
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def pack(src: str | os.PathLike, dst: str | os.PathLike, *, fmt: str = "lmdb", encoding: str = "raw",
         png_level: int = 1, crop: CropOptions | None = None, hdf5_compression: str | None = None,
         fields: Sequence[Field] | None = None, jobs: int | None = None, force: bool = False,
         dry_run: bool = False, progress: bool = True, batch_bytes: int = 256 << 20) -> PackReport:
    """Pack a paired dataset into LMDB or HDF5 stores, optionally cutting sub-images on the way.

    Args:
        src: dataset folder (``SRC/HR``, ``SRC/X2`` ...); ignored when ``fields`` is given.
        dst: output folder: ``DST/<field>.lmdb`` or ``DST/data.h5``, and ``DST/.srprep``.
        fmt: ``"lmdb"`` or ``"hdf5"``.
        encoding: ``"raw"`` (uint8 pixels, fastest to read) or ``"png"`` (smaller; BasicSR-compatible LMDB).
        png_level: zlib level of PNG values (BasicSR's create_lmdb uses 1).
        crop: cut sub-images (see :mod:`srprep.stages.crop`) instead of storing whole images.
        hdf5_compression: ``None``, ``"gzip"`` or ``"lzf"`` (raw HDF5 only).
        fields: the fields to pack, already opened (default: :func:`dataset_fields` of ``src``).
        jobs, force, dry_run, progress: see :func:`srprep.runner.run_step`.
        batch_bytes: how much data is committed at once (LMDB transaction, HDF5 flush).

    Returns:
        A :class:`PackReport`.

    Raises:
        StoreError: missing LR for a key, mismatched pair sizes, duplicate keys, unwritable destination, an
            LMDB in the way that srprep did not write.
        ImageError: an image smaller than the crop (``small="error"``), unreadable or not uint8 RGB.
        OptionsError: bad options (crop size not a multiple of every scale, compression without hdf5 raw...).
        StageError: an image failed while packing (names the key).
    """
    if fmt not in FORMATS:
        raise OptionsError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if encoding not in ENCODINGS:
        raise OptionsError(f"encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
    if hdf5_compression not in (None, "gzip", "lzf"):
        raise OptionsError(f"hdf5_compression must be gzip, lzf or None, not {hdf5_compression!r}")
    if hdf5_compression and (fmt != "hdf5" or encoding != "raw"):
        raise OptionsError("--hdf5-compression applies to --format hdf5 --encoding raw only")
    if not 0 <= png_level <= 9:
        raise OptionsError(f"png_level must be in 0..9, not {png_level}")
    dst = Path(dst)
    from_folder = fields is None  # then the dataset folder itself is an input too
    fields = list(fields) if fields is not None else dataset_fields(src)
    keys, shapes = check_pairs(fields)
    scales = {f.name: f.scale for f in fields}
    plans: dict[str, ImagePlan | None]
    if crop is not None:
        plans = plan_crops(fields, keys, crop, shapes)
        layout = {f.name: [(sk, (b[2] // f.scale, b[3] // f.scale, shapes[k][f.name][2])) for k in keys
                           for sk, b in zip(plans[k].keys, plans[k].boxes)] for f in fields}
    else:
        plans = {k: None for k in keys}
        layout = {f.name: [(k, shapes[k][f.name]) for k in keys] for f in fields}
    if not dry_run:
        check_destination(dst)

    params = {"format": fmt, "encoding": encoding, "png_level": png_level if encoding == "png" else None,
              "crop": asdict(crop) if crop is not None else None, "hdf5_compression": hdf5_compression,
              "fields": [[f.name, f.scale] for f in fields]}
    inputs = {f.name: str(Path(getattr(f.store, "root", getattr(f.store, "path", ""))).resolve()) for f in fields}
    fps = {k: item_fingerprint(fields, k) for k in keys}
    items = [Item(k, fps[k], (k, fps[k], {f.name: source_of(f, k) for f in fields}, plans[k], shapes[k]))
             for k in keys]
    source_fp = fingerprint({"inputs": inputs, "items": sorted((it.key, it.fingerprint) for it in items)})
    info = {"convention": CONVENTION, "source_fingerprint": source_fp, "crop": params["crop"]}

    if fmt == "lmdb":
        stores = {f.name: dst / f"{f.name}.lmdb" for f in fields}
        writers = {}
        for f in fields:
            nbytes = sum(int(np.prod(s)) for _, s in layout[f.name])
            # PNG can exceed raw by a little (filter bytes, zlib framing): plan for raw + 1 %.
            nbytes = int(nbytes * 1.01) + 1024 * len(layout[f.name]) if encoding == "png" else nbytes
            writers[f.name] = LmdbWriter(stores[f.name], encoding=encoding, png_level=png_level,
                                         map_size=map_size_for(nbytes, len(layout[f.name])), batch_bytes=batch_bytes,
                                         info={**info, "field": f.name, "scale": f.scale})
        ledger = LmdbLedger(writers, dst / STATE_DIR, batch_bytes)
    else:
        stores = {f.name: dst / HDF5_NAME for f in fields}
        h5_fields = [Hdf5Field(f.name, tuple(k for k, _ in layout[f.name]), tuple(tuple(s) for _, s in layout[f.name]),
                               {"scale": f.scale}) for f in fields]
        ledger = Hdf5Ledger(Hdf5Writer(dst / HDF5_NAME, h5_fields, encoding=encoding, png_level=png_level,
                                        compression=hdf5_compression, attrs=info, batch_bytes=batch_bytes),
                             dst / STATE_DIR, batch_bytes)

    targets = None
    if fmt == "lmdb" and local_processes(jobs):
        targets = {name: w.target() for name, w in ledger.writers.items()}
    worker = functools.partial(_pack_one, scales=scales, encoding=encoding, png_level=png_level, targets=targets)
    # The step owns its stores (and its state), not the whole of dst: srprep centroids adds its stores beside them.
    reads = tuple(Path(p) for p in inputs.values()) + ((Path(src),) if from_folder else ())
    step = Step("pack", dst, params, inputs, reads=reads, writes=tuple(dict.fromkeys(stores.values())))
    report = run_step(step, items, worker, ledger=ledger, jobs=jobs, force=force, dry_run=dry_run,
                      progress=progress, unit="img")
    small = [k for k, p in plans.items() if p is not None and p.small]
    disk = 0 if dry_run else sum(_disk_bytes(p) for p in set(stores.values()) if p.exists())
    return PackReport(report, fmt, encoding, stores, {n: len(v) for n, v in layout.items()}, len(keys), small,
                      crop.small if crop is not None else "error", disk)
