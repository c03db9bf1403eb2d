"""``srprep inspect``: what a store or dataset holds, whether its pairs match, and a contact sheet to look at.

Accepts:

* a dataset folder (``DATA/HR``, ``DATA/X2`` ...; what ``srprep downsample`` and ``srprep crop`` write);
* a pack output (``DST/HR.lmdb``, ``DST/X2.lmdb`` ..., or ``DST/data.h5``);
* one store: a folder of images, an ``NAME.lmdb`` folder, an ``.h5`` file (all its fields) or
  ``file.h5/FIELD``.

For each field: item count, shapes, dtype, encoding, size on disk, complete or not, a few keys. With two or
more fields: the pairing check of :func:`srprep.stages.crop.pairing_problems` (every key in every field,
HR = LR x s). With ``sheet``: a PNG of ``n`` random pairs side by side, LR upscaled by nearest neighbour
(:func:`srprep.ops.sheet.contact_sheet`), so that misaligned pairs are visible at a glance.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import StoreError
from ..io import images
from ..io.hdf5_store import Hdf5Store, fields_of
from ..io.lmdb_store import LmdbStore
from ..io.stores import FolderStore, open_store
from ..ops.sheet import contact_sheet
from ..runner import MANIFEST, STATE_DIR
from .crop import Field, infer_scale, pairing_problems
from .pack import HDF5_NAME, dataset_fields

__all__ = ["StoreSummary", "InspectReport", "open_fields", "inspect"]


@dataclass
class StoreSummary:
    """Facts about one field's store."""

    name: str
    kind: str  # "folder" | "lmdb" | "hdf5"
    path: str
    scale: int
    count: int
    shapes: list[tuple[tuple[int, ...], int]]  # most common first: (shape, how many)
    dtype: str
    encoding: str
    bytes_on_disk: int
    complete: bool | None  # None: a plain folder that no srprep step wrote
    sample_keys: list[str]

    def lines(self) -> list[str]:
        if not self.shapes:
            shapes = "-"
        elif len(self.shapes) == 1:
            shapes = "x".join(map(str, self.shapes[0][0])) + " (all)"
        else:
            shapes = f"{len(self.shapes)} shapes, e.g. " + ", ".join(
                f"{'x'.join(map(str, s))} ({n})" for s, n in self.shapes[:3])
        state = {True: "complete", False: "INCOMPLETE", None: "not written by srprep"}[self.complete]
        return [f"{self.name}: {self.kind} {self.path} (x{self.scale}) {state}",
                f"  {self.count} items, {shapes}, {self.dtype}, {self.encoding}, "
                f"{_human(self.bytes_on_disk)} on disk",
                f"  keys: {', '.join(self.sample_keys)}{' ...' if self.count > len(self.sample_keys) else ''}"]


@dataclass
class InspectReport:
    """What :func:`inspect` found; ``problems`` (incomplete stores, then pairing problems) is empty when the
    stores are complete and pair up."""

    path: Path
    stores: list[StoreSummary]
    paired: int | None = None  # keys in every field (None: a single store)
    pairing: list[str] = field(default_factory=list)  # pairing problems
    incomplete: list[str] = field(default_factory=list)  # stores whose writer did not finish
    sheet: Path | None = None
    sheet_keys: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return self.incomplete + self.pairing

    def lines(self) -> list[str]:
        out = [line for s in self.stores for line in s.lines()]
        if self.paired is not None:
            if self.pairing:
                out.append(f"pairing: {len(self.pairing)} problem(s):")
                out += [f"  {p}" for p in self.pairing]
            else:
                scales = ", ".join(f"{s.name} = HR/{s.scale}" for s in self.stores[1:] if s.scale > 1)
                out.append(f"pairing: ok, {self.paired} keys in every field" + (f"; {scales}" if scales else ""))
        out += [f"incomplete: {p}" for p in self.incomplete]
        if self.sheet is not None:
            out.append(f"contact sheet: {self.sheet} ({len(self.sheet_keys)} rows: {', '.join(self.sheet_keys)})")
        return out


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _blocks(path: Path) -> int:
    # Allocated bytes, not apparent size: LMDB and HDF5 files may be sparse.
    return path.stat().st_blocks * 512


def _field_scale_h5(store: Hdf5Store) -> int:
    return int(store.field_attrs.get("scale", infer_scale(Path(store.field)) or 1))


def open_fields(path: str | os.PathLike) -> list[Field]:
    """The fields at ``path`` (see the module docstring for what it may be), HR first; incomplete packed
    stores are opened too (their summary says so)."""
    path = Path(path)
    if not path.exists() and path.parent.suffix.lower() in (".h5", ".hdf5") and path.parent.is_file():
        s = Hdf5Store(path.parent, path.name, allow_incomplete=True)
        return [Field(s.field, s, _field_scale_h5(s))]
    if not path.exists():
        raise StoreError(f"{path}: no such file or folder")
    h5 = path if path.is_file() else path / HDF5_NAME
    if path.is_file() or (h5.is_file() and not (path / "HR").is_dir() and not (path / "HR.lmdb").is_dir()):
        if h5.suffix.lower() not in (".h5", ".hdf5"):
            raise StoreError(f"{path}: not a store srprep can read (expected a folder, an LMDB folder or an .h5 file)")
        names = fields_of(h5)
        if not names:
            raise StoreError(f"{h5}: no srprep fields in this HDF5 file")
        names = sorted(names, key=lambda n: (n != "HR", n))
        stores = [Hdf5Store(h5, n, allow_incomplete=True) for n in names]
        return [Field(s.field, s, _field_scale_h5(s)) for s in stores]
    if (path / "data.mdb").is_file():
        s = LmdbStore(path, allow_incomplete=True)
        name = path.name[:-5] if path.name.lower().endswith(".lmdb") else path.name
        return [Field(name, s, int(s.meta.get("scale") or infer_scale(path) or 1))]
    if (path / "HR").is_dir() or (path / "HR.lmdb").is_dir():
        return dataset_fields(path, allow_incomplete=True)
    scale = infer_scale(path)
    store = open_store(path, scale=scale) if scale and scale > 1 else open_store(path, naming="same")
    return [Field(path.name, store, scale or 1)]


def _summary(f: Field, sample: int) -> StoreSummary:
    store = f.store
    keys = store.keys()
    shapes = Counter(tuple(store.shape(k)) for k in keys).most_common()
    if isinstance(store, LmdbStore):
        kind, encoding = "lmdb", store.encoding
        dtype = store.meta.get("dtype", "uint8")
        size = sum(_blocks(p) for p in store.path.iterdir() if p.is_file() and p.name != "lock.mdb")
        complete = None if store.foreign else bool(store.meta.get("complete"))
        where = str(store.path)
    elif isinstance(store, Hdf5Store):
        kind, encoding = "hdf5", f"{store.encoding} ({store.layout})"
        size, dtype = 0, "uint8"
        with h5py.File(store.path, "r") as fh:
            g = fh[store.field]

            def add(_, obj):
                nonlocal size
                if isinstance(obj, h5py.Dataset):
                    size += obj.id.get_storage_size()

            g.visititems(add)
            comp = g["images"].compression if isinstance(g["images"], h5py.Dataset) else None
        if comp:
            encoding += f", {comp}"
        complete = bool(store.attrs.get("complete"))
        where = f"{store.path}/{store.field}"
    elif isinstance(store, FolderStore):
        kind = "folder"
        paths = [store.path(k) for k in keys]
        exts = Counter(p.suffix.lower().lstrip(".") for p in paths).most_common()
        encoding = ", ".join(e for e, _ in exts) or "-"
        dtype = "float32" if encoding == "npy" else "uint8"
        size = sum(_blocks(p) for p in paths)
        manifest = store.root / STATE_DIR / MANIFEST
        complete = None
        if (store.root / STATE_DIR).is_dir():
            complete = manifest.is_file() and bool(json.loads(manifest.read_text()).get("complete"))
        elif (store.root.parent / STATE_DIR).is_dir():  # a field of a step that owns the dataset folder
            pm = store.root.parent / STATE_DIR / MANIFEST
            complete = pm.is_file() and bool(json.loads(pm.read_text()).get("complete"))
        where = str(store.root)
    else:
        kind, encoding, dtype, size, complete, where = type(store).__name__, "?", "?", 0, None, str(f.name)
    return StoreSummary(f.name, kind, where, f.scale, len(keys), shapes, dtype, encoding, size, complete,
                        keys[:sample])


def inspect(path: str | os.PathLike, *, n: int = 6, seed: int = 0, sheet: str | os.PathLike | None = None,
            sample: int = 5) -> InspectReport:
    """Summarise the store(s) at ``path``, check pairing, and optionally write a contact sheet.

    Args:
        path: dataset folder, pack output, or one store (see the module docstring).
        n: rows of the contact sheet (random keys, at most as many as there are).
        seed: seed of the random choice of keys (the same seed shows the same keys).
        sheet: where to write the contact sheet PNG (None: no sheet).
        sample: how many keys to list per store.

    Returns:
        An :class:`InspectReport`; its ``problems`` list incomplete stores and pairing problems.

    Raises:
        StoreError: ``path`` is not something srprep can read.
    """
    path = Path(path)
    fields = open_fields(path)
    report = InspectReport(path, [_summary(f, sample) for f in fields])
    report.incomplete = [f"{s.path}: its writer was interrupted; run the same command again to finish it"
                         for s in report.stores if s.complete is False]
    keys = fields[0].store.keys()
    if len(fields) > 1:
        keys, report.pairing, _ = pairing_problems(fields)
        report.paired = len(keys)
    if sheet is not None and keys:
        rng = np.random.default_rng(seed)
        chosen = [keys[i] for i in sorted(rng.choice(len(keys), size=min(n, len(keys)), replace=False))]
        rows, labels = [], []
        for k in chosen:
            row = [f.store.read(k) for f in fields]
            rows.append(row)
            labels.append([k if j == 0 else f"{img.shape[0]}x{img.shape[1]}" for j, img in enumerate(row)])
        sheet = Path(sheet)
        images.write_image(sheet, contact_sheet(rows, labels, titles=[f.name for f in fields]))
        report.sheet, report.sheet_keys = sheet, chosen
    return report
