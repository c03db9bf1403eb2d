"""HDF5 stores: one file holds a paired dataset, one group per field (``/HR``, ``/X2``, ...).

Layout::

    /                       attrs: format="srprep-hdf5", version, complete, params_fp, layout_fp, and what
                            the writer adds (convention, source fingerprint, crop parameters)
    /<field>/keys           (N,) UTF-8 strings: the keys, in row order
    /<field>/shapes         (N, 3) int32: (h, w, c) of each key
    /<field>/images         raw, all items one shape:  (N, h, w, c) uint8, one chunk per item ("stacked")
                            raw, shapes differ:        a group with one (h, w, c) uint8 dataset per key ("per-key")
                            png:                       (N,) variable-length uint8, the PNG file bytes ("png")
                            attrs of /<field>: scale, encoding, layout, count, png_level, and caller facts
    /.srprep/done           the writer's done-records (JSON strings), attr done_count

Why the shapes are fixed up front: the caller plans every key and shape before writing (sub-image grids
and image sizes come from file headers), so the file is laid out once, each item has its row, and writing
an item twice (after a resume) overwrites the same bytes. Uncompressed raw datasets are allocated at
creation (no fill), so writing pixels never changes HDF5's own metadata.

A full disk is found before HDF5 meets it: HDF5 cannot recover from a failed write (its caches stay dirty,
and the process may crash on exit), so each item is written only when the file system has room for it and
for what is still unflushed, plus a margin; otherwise the file is flushed and closed intact and the writer
stops with a one-line error naming it. A truncated file is refused on opening with a one-line error.

HDF5 is not crash-safe: a killed writer can leave metadata half written. So the file is written under a
temporary name (``data.h5.partial``) and renamed when complete; each batch ends with its done-records
(key, fingerprint, CRC-32 of every stored value) and an ``H5Fflush``. A resumed writer reopens the partial
file, re-reads every item its records call done and keeps only those whose CRCs match; a file HDF5
cannot open, or one laid out for other keys or options, is started afresh. The final file therefore holds
every key exactly once, verified, whatever happened to earlier runs.

Reading: :class:`Hdf5Store` is one field of such a file. The file is opened on first use in each process
(and reopened after a fork), so a store object can be handed to DataLoader workers.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np

from ..errors import SrprepError, StoreError, write_error
from ..fingerprint import fingerprint
from . import images
from .keys import check_key

__all__ = ["Hdf5Store", "Hdf5Writer", "Hdf5Field", "FORMAT", "PARTIAL_SUFFIX", "fields_of", "verify_file"]

log = logging.getLogger(__name__)

FORMAT = "srprep-hdf5"
VERSION = 1
PARTIAL_SUFFIX = ".partial"
_STATE = ".srprep"
_COMPRESSIONS = (None, "gzip", "lzf")


def _str_attr(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _attr_value(value):
    """HDF5 attributes hold scalars and strings; None becomes "" and anything else its JSON text."""
    if value is None:
        return ""
    if isinstance(value, (str, bool, int, float, np.integer, np.floating)):
        return value
    return json.dumps(value, sort_keys=True)


def _py(value):
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if hasattr(value, "item") else value


def _open_error(path, exc: Exception) -> StoreError:
    text = " ".join(str(exc).split())
    if "truncated file" in text:
        return StoreError(f"{path}: truncated HDF5 file ({text.split('truncated file: ', 1)[1].rstrip(')')}); run the "
                          f"srprep command that wrote it with --force to rebuild it")
    return StoreError(f"{path}: not an HDF5 file srprep can read ({text})")


def fields_of(path: str | os.PathLike) -> list[str]:
    """The field groups of an srprep HDF5 file (e.g. ``["HR", "X2"]``)."""
    try:
        with h5py.File(path, "r") as f:
            return [name for name, obj in f.items() if isinstance(obj, h5py.Group) and "keys" in obj]
    except OSError as exc:
        raise _open_error(path, exc) from exc


class Hdf5Store:
    """Read access to one field of an srprep HDF5 file.

    Args:
        path: the ``.h5`` file.
        field: the group (``"HR"``, ``"X2"`` ...); may be omitted when the file has a single field.
        allow_incomplete: open a file whose writer has not finished (for inspection).

    ``read(key)`` returns ``(h, w, 3)`` uint8 RGB; ``read_region`` reads a window (a hyperslab of the raw
    dataset: only that item's chunk is touched). Safe to pickle and to use after ``fork`` (each process
    opens the file on first use); threads of one process may share a store and read it at once.
    """

    def __init__(self, path: str | os.PathLike, field: str | None = None, *, allow_incomplete: bool = False):
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no such HDF5 file")
        names = fields_of(self.path)
        if field is None:
            if len(names) != 1:
                raise StoreError(f"{self.path}: holds fields {names}; say which one (e.g. {self.path}/{names[0]})"
                                 if names else f"{self.path}: no srprep fields in this HDF5 file")
            field = names[0]
        if field not in names:
            raise StoreError(f"{self.path}: no field {field!r} (it has {', '.join(names) or 'none'})")
        self.field = field
        # Read what every process needs once, then close: no handle may cross a fork.
        with h5py.File(self.path, "r") as f:
            self.attrs = {k: _py(v) for k, v in f.attrs.items()}
            g = f[field]
            self.field_attrs = {k: _py(v) for k, v in g.attrs.items()}
            self._keys = [_str_attr(k) for k in g["keys"][()]]
            self._shapes = np.asarray(g["shapes"][()], dtype=np.int64)
        if not self.attrs.get("complete") and not allow_incomplete:
            raise StoreError(f"{self.path}: incomplete HDF5 store (its writer was interrupted); run the same "
                             f"srprep command again to finish it")
        self.layout = self.field_attrs.get("layout", "stacked")
        self.encoding = self.field_attrs.get("encoding", "raw")
        self._row = {k: i for i, k in enumerate(self._keys)}
        self._handle = None  # (pid, h5py.File, the field's images dataset), set in one assignment

    def __repr__(self) -> str:
        return f"Hdf5Store({str(self.path)!r}, {self.field!r})"

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_handle=None)
        return state

    def _data(self):
        handle = self._handle
        if handle is None or handle[0] != os.getpid():
            # After a fork the parent's handle is not used; the child opens the file itself. The handle is
            # made whole before it is published, so a thread reading beside the opening one never sees half
            # of it (two threads opening at once both get a whole handle; the last one is kept).
            f = h5py.File(self.path, "r")
            handle = (os.getpid(), f, f[self.field]["images"])
            self._handle = handle
        return handle[2]

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None and handle[0] == os.getpid():
            handle[1].close()

    def keys(self) -> list[str]:
        return list(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: str) -> bool:
        return key in self._row

    def _index(self, key: str) -> int:
        try:
            return self._row[key]
        except KeyError:
            raise StoreError(f"{self.path}/{self.field}: no item {key!r}") from None

    def shape(self, key: str) -> tuple[int, int, int]:
        return tuple(int(v) for v in self._shapes[self._index(key)])

    def read(self, key: str) -> np.ndarray:
        i = self._index(key)
        data = self._data()
        if self.layout == "stacked":
            return data[i]
        if self.layout == "per-key":
            return data[key][()]
        return images.decode_image(data[i], f"{self.path.name}/{self.field}:{key}")

    def read_region(self, key: str, top: int, left: int, height: int, width: int) -> np.ndarray:
        """``read(key)[top:top+height, left:left+width]``, reading only that window where the layout allows."""
        i = self._index(key)
        data = self._data()
        if self.layout == "stacked":
            return data[i, top:top + height, left:left + width]
        if self.layout == "per-key":
            return data[key][top:top + height, left:left + width]
        return self.read(key)[top:top + height, left:left + width].copy()

    def fingerprint(self) -> str:
        return fingerprint(["hdf5", self.field, self.attrs.get("params_fp"), self.attrs.get("content_fp")])

    def item_fingerprint(self, key: str) -> str:
        return fingerprint([self.fingerprint(), key])


def _bad_values(f, rec: dict, rows: dict[str, dict[str, int]]) -> list[tuple[str, str]]:
    """``(field, key)`` of a done-record's values whose CRC-32 differs from the one recorded."""
    bad = []
    for field, entries in rec["crc"].items():
        g = f[field]
        layout = _str_attr(g.attrs["layout"])
        for key, crc in entries:
            value = g["images"][key][()] if layout == "per-key" else g["images"][rows[field][key]]
            if _crc(value) != crc:
                bad.append((field, key))
    return bad


def verify_file(path: str | os.PathLike) -> tuple[int, list[str]]:
    """Read every value of an srprep HDF5 file and compare it with the CRC-32 its done-record holds.

    Returns:
        ``(values checked, problems)``, each problem one line naming the file, field and key.
    """
    problems, checked = [], 0
    try:
        with h5py.File(path, "r") as f:
            rows = {name: {_str_attr(k): i for i, k in enumerate(g["keys"][()])}
                    for name, g in f.items() if isinstance(g, h5py.Group) and "keys" in g}
            last: dict[str, dict] = {}
            for raw in f[_STATE]["done"][: int(f.attrs.get("done_count", 0))]:
                rec = json.loads(_str_attr(raw))
                last[rec["item"]] = rec
            for rec in last.values():
                checked += sum(len(e) for e in rec["crc"].values())
                problems += [f"{path}/{field}: item {key!r}: value changed since it was written (CRC-32)"
                             for field, key in _bad_values(f, rec, rows)]
    except OSError as exc:
        raise _open_error(path, exc) from exc
    return checked, problems


@dataclass(frozen=True)
class Hdf5Field:
    """One field to write: its group name, keys in row order, their shapes, and attributes."""

    name: str
    keys: tuple[str, ...]
    shapes: tuple[tuple[int, int, int], ...]
    attrs: dict


def _crc(value) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(value)).cast("B")) & 0xFFFFFFFF


class Hdf5Writer:
    """Writes an srprep HDF5 file, resumably (see the module docstring for how).

    Args:
        path: the final file (``DST/data.h5``); it is written as ``path + ".partial"`` until finished.
        fields: what to write, planned in full (every key and shape).
        encoding: ``"raw"`` or ``"png"``.
        png_level: zlib level of PNG values.
        compression: ``None``, ``"gzip"`` or ``"lzf"`` for raw datasets (HDF5 filters, chunk = one item).
        attrs: root attributes (convention, source fingerprint...).
        batch_bytes: the done-records are written and the file flushed when this much data is pending.
    """

    def __init__(self, path: str | os.PathLike, fields: Sequence[Hdf5Field], *, encoding: str = "raw",
                 png_level: int = 1, compression: str | None = None, attrs: dict | None = None,
                 batch_bytes: int = 256 << 20):
        if encoding not in ("raw", "png"):
            raise ValueError(f"encoding must be raw or png, not {encoding!r}")
        if compression not in _COMPRESSIONS:
            raise ValueError(f"compression must be gzip, lzf or None, not {compression!r}")
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        self.fields = {f.name: f for f in fields}
        self.encoding, self.png_level, self.compression = encoding, int(png_level), compression
        self.attrs = dict(attrs or {})
        self.batch_bytes = int(batch_bytes)
        self._rows = {f.name: {k: i for i, k in enumerate(f.keys)} for f in fields}
        for f in fields:
            if len(f.keys) != len(f.shapes):
                raise ValueError(f"{f.name}: {len(f.keys)} keys but {len(f.shapes)} shapes")
            for k in f.keys:
                check_key(k)
            if len(self._rows[f.name]) != len(f.keys):
                raise StoreError(f"{f.name}: duplicate keys in the layout")
        self.layout_fp = fingerprint({
            "fields": [[f.name, list(f.keys), [list(s) for s in f.shapes]] for f in fields],
            "encoding": encoding, "png_level": self.png_level if encoding == "png" else None,
            "compression": compression, "version": VERSION})
        self._file: h5py.File | None = None
        self._discard = False
        self._pending: list[str] = []
        self.pending_bytes = 0
        self._unflushed = 0  # bytes handed to HDF5 since the last flush (its caches may still hold them)

    def __repr__(self) -> str:
        return f"Hdf5Writer({str(self.path)!r})"

    # ------------------------------------------------------------------ layout

    def _layout_of(self, f: Hdf5Field) -> str:
        if self.encoding == "png":
            return "png"
        return "stacked" if len(set(f.shapes)) <= 1 else "per-key"

    def _dcpl(self, shape: tuple, chunks: tuple | None):
        """Creation properties: uncompressed data allocated now and never filled, so writing pixels later
        changes no HDF5 metadata; compressed data is allocated chunk by chunk (its size is unknown)."""
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        if chunks is not None:
            dcpl.set_chunk(chunks)
        if self.compression == "gzip":
            dcpl.set_deflate(4)
        elif self.compression == "lzf":
            dcpl.set_filter(h5py.h5z.FILTER_LZF, h5py.h5z.FLAG_OPTIONAL)
        else:
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        return dcpl

    def _create_u8(self, group, name: str, shape: tuple, chunks: tuple | None) -> None:
        space = h5py.h5s.create_simple(shape)
        h5py.h5d.create(group.id, name.encode(), h5py.h5t.NATIVE_UINT8, space, dcpl=self._dcpl(shape, chunks))

    def _create(self) -> h5py.File:
        self.partial.unlink(missing_ok=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = h5py.File(self.partial, "w")
        f.attrs.update({"format": FORMAT, "version": VERSION, "complete": False, "layout_fp": self.layout_fp,
                        "done_count": 0})
        for fld in self.fields.values():
            g = f.create_group(fld.name)
            n = len(fld.keys)
            g.create_dataset("keys", data=np.array(fld.keys, dtype=object), dtype=h5py.string_dtype("utf-8"))
            g.create_dataset("shapes", data=np.array(fld.shapes, dtype=np.int32).reshape(n, 3))
            layout = self._layout_of(fld)
            g.attrs.update({k: _attr_value(v) for k, v in {
                "encoding": self.encoding, "layout": layout, "count": n,
                "png_level": self.png_level if self.encoding == "png" else -1, **fld.attrs}.items()})
            if layout == "png":
                g.create_dataset("images", shape=(n,), dtype=h5py.vlen_dtype(np.uint8), chunks=(max(1, min(n, 256)),))
            elif layout == "stacked" and n:
                shape = (n, *fld.shapes[0])
                self._create_u8(g, "images", shape, (1, *fld.shapes[0]))
            else:
                sub = g.create_group("images")
                for k, s in zip(fld.keys, fld.shapes):
                    self._create_u8(sub, k, tuple(s), tuple(s) if self.compression else None)
        st = f.create_group(_STATE)
        st.create_dataset("done", shape=(0,), maxshape=(None,), chunks=(256,), dtype=h5py.string_dtype("utf-8"))
        f.flush()
        return f

    # ------------------------------------------------------------------ ledger side

    def _resumable_final(self) -> bool:
        """Whether the final file exists, is complete and is laid out for these keys and options."""
        if not self.path.is_file():
            return False
        try:
            with h5py.File(self.path, "r") as f:
                return bool(f.attrs.get("complete")) and _str_attr(f.attrs.get("layout_fp", "")) == self.layout_fp
        except Exception:  # noqa: BLE001 - not ours or unreadable: it will be replaced
            return False

    def load(self) -> tuple[str | None, dict[str, tuple[str, list[str]]]]:
        """Verified done items: (params fingerprint or None, {item: (fp, [])}). Read-only.

        From the partial file when there is one (every done item is read back and its CRCs checked), else
        from a complete final file laid out for the same keys (trusted: it was finished).
        """
        self._discard = False
        if not self.partial.exists():
            if not self._resumable_final():
                return None, {}
            with h5py.File(self.path, "r") as f:
                n = int(f.attrs.get("done_count", 0))
                recs = [json.loads(_str_attr(raw)) for raw in f[_STATE]["done"][:n]]
                return _str_attr(f.attrs.get("params_fp", "")) or None, {r["item"]: (r["fp"], []) for r in recs}
        try:
            with h5py.File(self.partial, "r") as f:
                if _str_attr(f.attrs.get("layout_fp", "")) != self.layout_fp:
                    log.info("%s: laid out for other keys or options; starting afresh", self.partial)
                    self._discard = True
                    return None, {}
                params_fp = _str_attr(f.attrs.get("params_fp", "")) or None
                n = int(f.attrs.get("done_count", 0))
                last: dict[str, dict] = {}
                for raw in f[_STATE]["done"][:n]:
                    rec = json.loads(_str_attr(raw))
                    last[rec["item"]] = rec
                done = {item: (rec["fp"], []) for item, rec in last.items() if self._verify(f, rec)}
                if len(done) < len(last):
                    log.warning("%s: %d of %d done items did not read back intact; they will be redone",
                                self.partial, len(last) - len(done), len(last))
                return params_fp, done
        except Exception as exc:  # noqa: BLE001 - any failure to read a half-written file means: start over
            log.warning("%s: unreadable after an interrupted run (%s: %s); starting afresh",
                        self.partial, type(exc).__name__, exc)
            self._discard = True
            return None, {}

    def _verify(self, f, rec: dict) -> bool:
        try:
            return not _bad_values(f, rec, self._rows)
        except Exception:  # noqa: BLE001 - unreadable means not done
            return False

    def reset(self) -> None:
        self.close()
        self.partial.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)
        self._discard = False

    def begin(self, params_fp: str | None = None) -> None:
        """Open the partial file: the one left by an interrupted run, the finished file of an earlier run
        with the same layout (renamed back to partial while it changes), or a new one."""
        if not self.partial.exists() and self._resumable_final():
            os.replace(self.path, self.partial)
        else:
            # A final file of other keys would otherwise look current while this run is incomplete.
            self.path.unlink(missing_ok=True)
        if self._discard or not self.partial.exists():
            self._file = self._create()
        else:
            self._file = h5py.File(self.partial, "r+")
        self._file.attrs["params_fp"] = params_fp or ""
        self._file.attrs["complete"] = False
        self._file.flush()
        self._discard = False

    def add(self, item: str, item_fp: str, records: dict[str, Sequence[tuple[str, Any, Sequence[int]]]], *,
            autoflush: bool = True) -> None:
        """Write an item's records ``{field: [(key, value, shape)]}`` to their rows now; the done-record
        follows at the next :meth:`flush` (by itself once ``batch_bytes`` are pending, with ``autoflush``)."""
        f = self._file
        if f is None:
            raise RuntimeError("Hdf5Writer.add before begin")
        crcs = {}
        nbytes = 0
        for field, recs in records.items():
            if field not in self.fields:
                raise StoreError(f"{self.path}: no field {field!r} in the layout")
            self._reserve(sum(memoryview(v).nbytes for _, v, _ in recs))
            g = f[field]
            layout = self._layout_of(self.fields[field])
            entries = []
            for key, value, shape in recs:
                row = self._rows[field].get(key)
                if row is None:
                    raise StoreError(f"{self.path}/{field}: key {key!r} is not in the planned layout")
                planned = self.fields[field].shapes[row]
                if tuple(shape) != tuple(planned):
                    raise StoreError(f"{self.path}/{field}: {key!r} has shape {tuple(shape)}, planned {tuple(planned)}")
                if layout == "png":
                    arr = np.frombuffer(value, dtype=np.uint8)
                else:
                    arr = np.ascontiguousarray(value).reshape(planned)
                self._reserve(arr.nbytes)
                try:
                    if layout == "per-key":
                        g["images"][key][...] = arr
                    else:
                        g["images"][row] = arr
                except (OSError, RuntimeError) as exc:
                    raise write_error(self.partial, exc) from exc
                entries.append([key, _crc(arr)])
                nbytes += arr.nbytes
            crcs[field] = entries
        self._pending.append(json.dumps({"item": item, "fp": item_fp, "crc": crcs}))
        self.pending_bytes += nbytes
        if autoflush and self.pending_bytes >= self.batch_bytes:
            self.flush()

    def _reserve(self, nbytes: int) -> None:
        """Make sure the file system has room for ``nbytes`` more (see the module docstring)."""
        need = self._unflushed + nbytes + (1 << 20) + nbytes // 100
        if shutil.disk_usage(self.partial.parent).free >= need:
            self._unflushed += nbytes
            return
        self.flush()  # what HDF5 still holds goes to the file now, while there is room for it
        free = shutil.disk_usage(self.partial.parent).free
        if free >= nbytes + (1 << 20) + nbytes // 100:
            self._unflushed += nbytes
            return
        self.close()
        raise SrprepError(f"{self.partial}: cannot write: the disk is full ({free} bytes free, {nbytes} more needed); "
                          f"free some space and run the same command again to resume")

    def flush(self) -> None:
        """Append the pending done-records, update done_count, and flush the file to the OS."""
        try:
            self._flush()
        except (OSError, RuntimeError) as exc:
            raise write_error(self.partial, exc) from exc

    def _flush(self) -> None:
        f = self._file
        if f is None:
            return
        if self._pending:
            ds = f[_STATE]["done"]
            n = int(f.attrs["done_count"])
            ds.resize((n + len(self._pending),))
            ds[n:] = np.array(self._pending, dtype=object)
            f.flush()  # the data first, then the count that vouches for it
            f.attrs["done_count"] = n + len(self._pending)
            log.debug("%s: flushed %d items, %d done", self.partial, len(self._pending), n + len(self._pending))
            self._pending, self.pending_bytes = [], 0
        f.flush()
        self._unflushed = 0

    def forget(self, items: Sequence[str]) -> None:
        # Items only go stale when the set of keys changes, and then the layout changes and the file is
        # started afresh; there is nothing to forget in a file laid out for the current keys.
        pass

    def finish(self, **attrs) -> None:
        """Flush, mark complete, close, and rename the partial file to its final name."""
        self.flush()
        f = self._file
        n = int(f.attrs["done_count"])
        items = sorted((r["item"], r["fp"]) for r in (json.loads(_str_attr(x)) for x in f[_STATE]["done"][:n]))
        f.attrs.update({k: _attr_value(v) for k, v in {**self.attrs, **attrs}.items()})
        f.attrs.update({"complete": True, "content_fp": fingerprint(dict(items))})
        f.flush()
        f.close()
        self._file = None
        with open(self.partial, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self.partial, self.path)

    def commit(self) -> None:
        self.flush()

    def close(self) -> None:
        if self._file is not None:
            try:
                self.flush()
            finally:
                self._file.close()
                self._file = None
