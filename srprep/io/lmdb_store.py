"""LMDB stores: one LMDB environment (a folder ``NAME.lmdb/``) holds the items of one field (HR, X2, ...).

Layout on disk::

    NAME.lmdb/data.mdb, lock.mdb     the LMDB environment
    NAME.lmdb/meta_info.txt          PNG encoding only, written when the store is complete, sorted by key:
                                     ``{key}.png ({h},{w},{c}) {png_level}`` (BasicSR's format)

Inside the environment:

=====================  =======================================================================================
database               content
=====================  =======================================================================================
main (unnamed)         ``key`` (UTF-8, no extension) -> the item. ``png``: the bytes of a PNG file as
                       ``cv2.imencode`` writes them (BasicSR's ``imfrombytes`` decodes it as is). ``raw``: the
                       pixels, ``(h, w, c)`` uint8 in C order, no header: reading is a memory copy, no decode.
``.index``             ``key`` -> ``b"h,w,c<TAB>item"``: the shape of every key (what raw reading needs) and the
                       source item (image) it was cut from.
``.done``              ``item`` -> JSON ``{"fp": ..., "keys": [...], "crc": [...]}``: the writer's done-records
                       (with the CRC-32 of each key's value as written, which ``srprep verify`` checks),
                       committed in the same transaction as the item's data, so a killed writer never leaves
                       a record without its data or data without a record.
``.meta``              ``b"store"`` -> JSON: format, version, encoding, png_level, dtype, complete, count,
                       params_fp, content_fp, offsets_txnid, and what the caller adds (field, scale,
                       convention, source).
``.offsets``           ``key`` -> two little-endian uint64: where the item's value lies in ``data.mdb`` (byte
                       offset, length). Written by :meth:`LmdbWriter.finish` in the transaction before the
                       one that marks the store complete; valid while the environment's last transaction
                       id is ``offsets_txnid`` (any later write makes readers ignore it).
=====================  =======================================================================================

The names of the sub-databases live in the main database's key space. They start with ``.``, which no item
key may (:func:`srprep.io.keys.check_key`), so they never collide with items, and BasicSR, which takes its
keys from ``meta_info.txt``, never sees them. With PNG encoding the LMDB is what BasicSR's
``create_lmdb.py`` makes, so ``PairedImageDataset`` with ``io_backend: lmdb`` reads a pair of them as is
(the LR store uses the HR keys, as BasicSR expects).

Whole or damaged: before an environment is opened, its two meta pages (the first 8 KiB of ``data.mdb``) are
read and the file must hold every page the newer one refers to (:func:`check_lmdb_file`). A truncated file
would otherwise be mapped and read past its end, which kills the process with SIGBUS and no message; a file
whose meta pages are not LMDB's is refused the same way, as one line naming it.

Creating: the sub-databases and the ``.meta`` record are created in the environment's first transaction,
so a kill at any moment leaves either an environment with no entries at all (taken over by the next run)
or one that says it is srprep's; a half-created store is never taken for a foreign LMDB.

Writing: one :class:`LmdbWriter` (in the runner's parent) creates the store, forgets stale items and marks
it complete. The records themselves are committed either by it, in batches of ``batch_bytes`` handed over by
the workers, or, when the workers are processes of this machine, by the workers themselves: each commits
its item's records and done-record in one transaction of its own (:class:`LmdbTarget`), so decoded pixels
never travel between processes (LMDB lets processes of one machine take turns as the writer; threads of one
process, or machines sharing a disk, must not, so those hand records over). The map size is computed from
the data the caller plans to write and grown when LMDB still reports ``MDB_MAP_FULL`` (the transaction is
retried), so nothing is guessed from a first image. The store says ``complete: true`` only after
:meth:`LmdbWriter.finish`.

Reading: :class:`LmdbStore` opens the environment lazily in each process (``readonly``, ``lock=False``,
``readahead=False`` like BasicSR: random reads of a big store should not pull in neighbouring pages) and
reopens it after a fork, so one store object can be handed to DataLoader workers.

Reading a store that is not in the page cache: py-lmdb touches every page of a value before handing it
over (its ``preload``), and without readahead each touch is its own 4 KiB disk read, one after another:
~170 of them for a 480x480 raw record, when a 96x96 patch needs ~34 pages' worth of rows. So where the
``.offsets`` table is valid, values are read from ``data.mdb`` with one ``pread`` of exactly the bytes
needed (the whole value, or the window's rows of a raw item), the file opened per process with
``POSIX_FADV_RANDOM``; the pixels are the same bytes. Stores without the table (BasicSR's, older
srprep's) are read through LMDB. LMDBs made by BasicSR's
scripts (no ``.meta``; keys and shapes from ``meta_info.txt``) are read too.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import lmdb
import numpy as np

from ..errors import StoreError, write_error
from ..fingerprint import files_fingerprint, fingerprint
from . import images
from .keys import check_key

__all__ = ["LmdbStore", "LmdbWriter", "LmdbTarget", "Committed", "map_size_for", "check_lmdb_file", "value_crc",
           "FORMAT", "META_INFO"]

log = logging.getLogger(__name__)

FORMAT = "srprep-lmdb"
VERSION = 1
META_INFO = "meta_info.txt"
_MAX_DBS = 5
_INDEX, _DONE, _META, _OFFSETS = b".index", b".done", b".meta", b".offsets"
_OFFSET = struct.Struct("<QQ")
_META_KEY = b"store"
_PAGE = 4096
_MIN_MAP = 64 << 20


def map_size_for(value_bytes: int, n_records: int) -> int:
    """A map size that holds ``n_records`` values of ``value_bytes`` bytes in all, with B-tree overhead.

    Values larger than a page go to overflow pages (whole pages each); the index and done-records add a
    few hundred bytes per record. 25 % and 64 MiB of headroom on top; the writer still grows the map if
    LMDB disagrees. The map is address space, not disk: the file only grows as pages are used.
    """
    pages = value_bytes / _PAGE + 2 * n_records  # +1 partly used page per value, +1 for index/done entries
    return int(pages * _PAGE * 1.25) + _MIN_MAP


def _shape_bytes(shape: Sequence[int]) -> bytes:
    return ",".join(str(int(v)) for v in shape).encode()


def _parse_shape(text: str) -> tuple[int, int, int]:
    h, w, c = (int(v) for v in text.strip("() ").split(","))
    return (h, w, c)


def _is_lmdb(path: Path) -> bool:
    return path.is_dir() and (path / "data.mdb").is_file()


_MAGIC = 0xBEEFC0DE
# Offsets in a meta page of a 64-bit LMDB (liblmdb 0.9, as py-lmdb bundles it): a 16-byte page header, then
# MDB_meta: magic, version (u32 each), address, map size, two MDB_db records of 48 bytes (the first one's
# leading u32 holds the page size), last used page and transaction id (u64 each).
_META_MAGIC, _META_PSIZE, _META_LAST_PG = 16, 40, 136


def check_lmdb_file(path: str | os.PathLike) -> dict:
    """Check that ``NAME.lmdb/data.mdb`` holds every page its header refers to, without mapping it.

    Returns:
        ``{"page_size", "last_page", "txnid", "bytes"}`` of the newer meta page.

    Raises:
        StoreError: no LMDB meta pages (not an LMDB, or a damaged header), or a file shorter than the pages
            its header says are in use (truncated): reading it would crash the process with SIGBUS.
    """
    data_file = Path(path) / "data.mdb"
    try:
        size = data_file.stat().st_size
        with open(data_file, "rb") as fh:
            head = fh.read(_META_PSIZE + 4)
            metas = []
            if len(head) == _META_PSIZE + 4 and struct.unpack_from("<I", head, _META_MAGIC)[0] == _MAGIC:
                psize = struct.unpack_from("<I", head, _META_PSIZE)[0]
                if psize >= 512 and psize & (psize - 1) == 0:
                    for page in (0, 1):
                        fh.seek(page * psize)
                        raw = fh.read(_META_LAST_PG + 16)
                        if len(raw) == _META_LAST_PG + 16 and struct.unpack_from("<I", raw, _META_MAGIC)[0] == _MAGIC:
                            metas.append(struct.unpack_from("<QQ", raw, _META_LAST_PG))
    except OSError as exc:
        raise StoreError(f"{data_file}: cannot read ({exc.strerror or exc})") from exc
    if len(metas) < 2:
        raise StoreError(f"{data_file}: damaged LMDB (its header is not an LMDB header); delete the store or run "
                         f"the srprep command that wrote it with --force")
    last_page, txnid = max(metas, key=lambda m: m[1])
    need = (last_page + 1) * psize
    if size < need:
        raise StoreError(f"{data_file}: truncated LMDB ({size} bytes, its header needs {need}); delete the store or "
                         f"run the srprep command that wrote it with --force")
    return {"page_size": psize, "last_page": last_page, "txnid": txnid, "bytes": size}


def value_crc(value) -> int:
    """CRC-32 of a stored value (PNG bytes or raw pixels), as the done-records keep it."""
    return zlib.crc32(memoryview(value).cast("B")) & 0xFFFFFFFF


# py-lmdb refuses to open one environment twice in a process, so every LmdbStore of a path shares one
# read-only handle per process: {(real path, readahead): (pid, env)}.
_READERS: dict[tuple[str, bool], tuple[int, Any]] = {}
# Threads of one process share those handles: the lock makes opening one (and a store's databases in it)
# happen once, so two threads reading a store for the first time never open or close each other's handle.
# A child process gets a fresh lock (one held by another thread at the fork would never be released there).
_READERS_LOCK = threading.RLock()


def _fresh_lock_after_fork() -> None:
    global _READERS_LOCK
    _READERS_LOCK = threading.RLock()


os.register_at_fork(after_in_child=_fresh_lock_after_fork)


def _reader_env(path: Path, readahead: bool):
    key = (os.path.realpath(path), readahead)
    entry = _READERS.get(key)
    if entry is not None and entry[0] == os.getpid():
        return entry[1]
    with _READERS_LOCK:
        entry = _READERS.get(key)
        if entry is None or entry[0] != os.getpid():
            # After a fork the parent's handle must not be used (LMDB forbids it); the child opens its own.
            _release(path)
            check_lmdb_file(path)
            try:
                env = lmdb.open(str(path), readonly=True, lock=False, readahead=readahead, max_dbs=_MAX_DBS,
                                subdir=True)
            except lmdb.Error as exc:
                raise StoreError(f"{path}: unreadable LMDB ({type(exc).__name__}: {exc})") from exc
            _READERS[key] = entry = (os.getpid(), env)
        return entry[1]


def _release(path: Path) -> None:
    """Close this process's read-only handles of ``path`` (before a writer opens it, on close(), after a fork).

    A handle inherited through fork is closed too: py-lmdb refuses to open files that are open in the
    process, and it counts inherited handles. Closing one is safe because srprep's read handles are
    read-only and lock-free (no reader table to disturb): it unmaps only the child's copy of the map.
    """
    real = os.path.realpath(path)
    with _READERS_LOCK:
        for key in [k for k in _READERS if k[0] == real]:
            _, env = _READERS.pop(key)
            env.close()


class LmdbStore:
    """Read access to an LMDB store (srprep's, or one made by BasicSR's scripts).

    Args:
        path: the ``NAME.lmdb`` folder.
        readahead: let the OS read ahead (faster from a cold disk for sequential scans; BasicSR and srprep
            default to False for random access).
        allow_incomplete: open a store whose writer has not finished (for inspection); by default that is
            a :class:`~srprep.errors.StoreError`.

    ``read(key)`` returns ``(h, w, 3)`` uint8 RGB (a new, writable array); ``read_region`` reads a window
    without copying the rest of a raw item. Safe to pickle and to use after ``fork``: each process opens
    its own environment on first use; threads of one process may share a store and read it at once.
    """

    def __init__(self, path: str | os.PathLike, *, readahead: bool = False, allow_incomplete: bool = False):
        self.path = Path(path)
        self.readahead = readahead
        if not _is_lmdb(self.path):
            raise StoreError(f"{self.path}: not an LMDB store (no data.mdb)")
        self._env_obj = None
        self._dbs: dict[bytes, Any] = {}
        self._index: dict[str, tuple[int, int, int]] | None = None
        self._done: dict[str, str] | None = None
        self._offsets: dict[str, tuple[int, int]] | None = None
        self._file: tuple[int, int] | None = None  # (pid, fd) of data.mdb for pread
        was_open = (os.path.realpath(self.path), readahead) in _READERS
        self.meta = self._read_meta()
        self.foreign = self.meta is None
        if self.foreign:
            self.meta = {"format": "basicsr", "encoding": "png", "dtype": "uint8", "complete": True}
        elif not self.meta.get("complete") and not allow_incomplete:
            raise StoreError(f"{self.path}: incomplete LMDB store (its writer was interrupted); run the same "
                             f"srprep command again to finish it")
        self.encoding = self.meta.get("encoding", "png")
        if not was_open:
            self.close()  # opened again on first use, in whichever process that is

    # ------------------------------------------------------------------ environment, per process

    def _env(self):
        env = _reader_env(self.path, self.readahead)
        if env is not self._env_obj:
            with _READERS_LOCK:
                if env is not self._env_obj:  # a new handle (first use, fork, or a close): reopen databases
                    self._env_obj, self._dbs = env, {}
        return env

    def _db(self, name: bytes):
        env = self._env()
        dbs = self._dbs
        if name not in dbs:
            with _READERS_LOCK:
                if name not in dbs:
                    try:
                        dbs[name] = env.open_db(name, create=False)
                    except lmdb.NotFoundError:
                        dbs[name] = None
        return dbs[name]

    def _read_meta(self) -> dict | None:
        try:
            db = self._db(_META)
            if db is None:
                return None
            with self._env().begin(db=db) as txn:
                raw = txn.get(_META_KEY)
        except lmdb.Error as exc:
            raise StoreError(f"{self.path}: unreadable LMDB ({exc})") from exc
        return json.loads(raw) if raw is not None else None

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_env_obj=None, _dbs={}, _index=None, _done=None, _offsets=None, _file=None)
        return state

    def close(self) -> None:
        """Close this process's handle of the store (it is reopened on the next read)."""
        _release(self.path)
        self._env_obj, self._dbs = None, {}
        if self._file is not None and self._file[0] == os.getpid():
            os.close(self._file[1])
        self._file = None

    def __repr__(self) -> str:
        return f"LmdbStore({str(self.path)!r}, {self.encoding})"

    # ------------------------------------------------------------------ index

    def _load_index(self) -> dict[str, tuple[int, int, int]]:
        if self._index is not None:
            return self._index
        index: dict[str, tuple[int, int, int]] = {}
        db = self._db(_INDEX)
        if db is not None:
            with self._env().begin(db=db) as txn:
                for k, v in txn.cursor():
                    index[bytes(k).decode()] = _parse_shape(bytes(v).decode().split("\t", 1)[0])
        elif (self.path / META_INFO).is_file():
            # A BasicSR store: "{name}.png ({h},{w},{c}) {level}" per line; the key is the name without extension.
            for n, line in enumerate((self.path / META_INFO).read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    name, shape = line.split()[:2]
                    index[os.path.splitext(name)[0]] = _parse_shape(shape)
                except ValueError:
                    raise StoreError(f"{self.path / META_INFO}:{n}: cannot parse {line!r}") from None
        else:
            with self._env().begin() as txn:
                for k in txn.cursor().iternext(keys=True, values=False):
                    k = bytes(k).decode()
                    if not k.startswith("."):
                        index[k] = None  # shape known only by decoding
        self._index = index
        return index

    def keys(self) -> list[str]:
        """Every key, sorted (LMDB's order, or meta_info.txt's for a BasicSR store)."""
        return list(self._load_index())

    def __len__(self) -> int:
        return len(self._load_index())

    def __contains__(self, key: str) -> bool:
        return key in self._load_index()

    def shape(self, key: str) -> tuple[int, int, int]:
        """``(h, w, c)`` from the index, without reading pixels."""
        index = self._load_index()
        if key not in index:
            raise StoreError(f"{self.path}: no item {key!r}")
        if index[key] is None:
            index[key] = tuple(self.read(key).shape)
        return index[key]

    # ------------------------------------------------------------------ pixels

    def _load_offsets(self) -> dict[str, tuple[int, int]]:
        """{key: (offset, length)} of every value in data.mdb, or {} where the table is missing or stale."""
        if self._offsets is None:
            offsets: dict[str, tuple[int, int]] = {}
            db = self._db(_OFFSETS) if not self.foreign else None
            if db is not None and self.meta.get("offsets_txnid") == self._env().info()["last_txnid"]:
                with self._env().begin(db=db) as txn:
                    for k, v in txn.cursor():
                        offsets[bytes(k).decode()] = _OFFSET.unpack(bytes(v))
            self._offsets = offsets
        return self._offsets

    def _pread(self, offset: int, length: int) -> np.ndarray:
        """``length`` bytes of data.mdb from ``offset``, in one read (the file opened once per process)."""
        if self._file is None or self._file[0] != os.getpid():
            fd = os.open(self.path / "data.mdb", os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # exactly the bytes asked for, no neighbours
            self._file = (os.getpid(), fd)
        buf = np.empty(length, dtype=np.uint8)
        got = os.preadv(self._file[1], [buf], offset)
        if got != length:
            raise StoreError(f"{self.path}: data.mdb ends before a value ({got} of {length} bytes at {offset}); "
                             f"the file was changed after the store was written")
        return buf

    def _get(self, txn, key: str):
        buf = txn.get(key.encode())
        if buf is None:
            raise StoreError(f"{self.path}: no item {key!r}")
        return buf

    def _raw_view(self, buf, key: str) -> np.ndarray:
        shape = self.shape(key)
        arr = np.frombuffer(buf, dtype=np.uint8)
        if arr.size != shape[0] * shape[1] * shape[2]:
            raise StoreError(f"{self.path}: item {key!r} holds {arr.size} bytes, its shape {shape} needs "
                             f"{shape[0] * shape[1] * shape[2]}")
        return arr.reshape(shape)

    def read(self, key: str) -> np.ndarray:
        """The item as ``(h, w, 3)`` uint8 RGB."""
        where = self._load_offsets().get(key)
        if where is not None:
            buf = self._pread(*where)
            if self.encoding == "raw":
                return self._raw_view(buf, key)
            return images.decode_image(buf, f"{self.path.name}:{key}")
        # buffers=True: the value is a view into the map, valid only inside the transaction; it is
        # copied (raw) or decoded (png) there, so each read costs one copy, not two.
        with self._env().begin(buffers=True) as txn:
            buf = self._get(txn, key)
            if self.encoding == "raw":
                return self._raw_view(buf, key).copy()
            return images.decode_image(buf, f"{self.path.name}:{key}")

    def read_region(self, key: str, top: int, left: int, height: int, width: int) -> np.ndarray:
        """``read(key)[top:top+height, left:left+width]``; a raw store reads only the window's rows."""
        where = self._load_offsets().get(key)
        if where is not None and self.encoding == "raw":
            h, w, c = self.shape(key)
            top, bottom = min(max(top, 0), h), min(max(top + height, 0), h)
            if where[1] != h * w * c:
                raise StoreError(f"{self.path}: item {key!r} holds {where[1]} bytes, its shape {(h, w, c)} needs "
                                 f"{h * w * c}")
            rows = self._pread(where[0] + top * w * c, (bottom - top) * w * c).reshape(bottom - top, w, c)
            return rows[:, left:left + width].copy()
        if where is not None:
            return self.read(key)[top:top + height, left:left + width].copy()
        with self._env().begin(buffers=True) as txn:
            buf = self._get(txn, key)
            if self.encoding == "raw":
                return self._raw_view(buf, key)[top:top + height, left:left + width].copy()
            return images.decode_image(buf, f"{self.path.name}:{key}")[top:top + height, left:left + width].copy()

    def read_bytes(self, key: str) -> bytes:
        """The stored value as it is (PNG file bytes, or raw pixels)."""
        with self._env().begin() as txn:
            return bytes(self._get(txn, key))

    def verify(self) -> tuple[int, list[str]]:
        """Read every value and compare it with the CRC-32 its done-record kept (stores written by srprep).

        Returns:
            ``(values checked, problems)``, each problem one line naming the store and key.
        """
        db = self._db(_DONE)
        if db is None:
            return 0, []  # a BasicSR store: nothing was recorded to compare with
        checked, problems = 0, []
        with self._env().begin(buffers=True) as txn:
            for _, v in txn.cursor(db=db):
                rec = json.loads(bytes(v))
                for key, crc in zip(rec["keys"], rec.get("crc", [])):
                    buf = txn.get(key.encode())
                    checked += 1
                    if buf is None:
                        problems.append(f"{self.path}: item {key!r} is missing")
                    elif value_crc(buf) != crc:
                        problems.append(f"{self.path}: item {key!r}: value changed since it was written (CRC-32)")
        return checked, problems

    # ------------------------------------------------------------------ fingerprints

    def _load_done(self) -> dict[str, str]:
        if self._done is None:
            done: dict[str, str] = {}
            db = self._db(_DONE)
            if db is not None:
                with self._env().begin(db=db) as txn:
                    for k, v in txn.cursor():
                        done[bytes(k).decode()] = json.loads(bytes(v))["fp"]
            self._done = done
        return self._done

    def fingerprint(self) -> str:
        if self.foreign:
            files = [self.path / "data.mdb"] + ([self.path / META_INFO] if (self.path / META_INFO).exists() else [])
            return files_fingerprint(files)
        return fingerprint(["lmdb", self.meta.get("params_fp"), self.meta.get("content_fp")])

    def item_fingerprint(self, key: str) -> str:
        if self.foreign:
            return fingerprint([self.fingerprint(), key])
        db = self._db(_INDEX)
        with self._env().begin(db=db) as txn:
            v = txn.get(key.encode())
        if v is None:
            raise StoreError(f"{self.path}: no item {key!r}")
        item = bytes(v).decode().split("\t", 1)[1]
        return fingerprint(["lmdb", self.meta.get("params_fp"), self.encoding, key, item,
                            self._load_done().get(item)])


def _check_record(key: str, shape: Sequence[int]) -> None:
    """Refuse a record whose key or shape a store cannot hold."""
    check_key(key)
    if len(shape) != 3:
        raise ValueError(f"{key}: shape must be (h, w, c), not {shape}")


def _grow(env, path: Path, nbytes: int) -> None:
    """Enlarge a full map (no transaction may be open in this process)."""
    old = env.info()["map_size"]
    new = max(2 * old, old + 2 * nbytes + _MIN_MAP)
    log.info("%s: map full at %.1f GiB, growing to %.1f GiB", path, old / 2**30, new / 2**30)
    env.set_mapsize(new)


def _put_items(txn, dbs: dict[bytes, Any], batch: Iterable[tuple[str, str, Iterable]]) -> None:
    """Put each ``(item, item_fp, records)`` of ``batch`` with its index entries and done-record in ``txn``.

    A redone item's keys that it no longer has are deleted. Records: ``(key, value, shape)``."""
    index, done = dbs[_INDEX], dbs[_DONE]
    for item, item_fp, records in batch:
        ib = item.encode()
        keys, crcs = [], []
        for key, value, shape in records:
            kb = key.encode()
            txn.put(kb, value)
            txn.put(kb, _shape_bytes(shape) + b"\t" + ib, db=index)
            keys.append(key)
            crcs.append(value_crc(value))
        old = txn.get(ib, db=done)
        if old is not None:  # redone item: drop keys it no longer has
            for k in set(json.loads(bytes(old))["keys"]) - set(keys):
                txn.delete(k.encode())
                txn.delete(k.encode(), db=index)
        txn.put(ib, json.dumps({"fp": item_fp, "keys": keys, "crc": crcs}).encode(), db=done)


def _value_offsets(env, path: Path, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
    """{key: (offset, length)} of the committed values in ``path``/data.mdb, from their addresses in this
    process's map of the file (Linux: /proc/self/maps); {} elsewhere. Values just written are in the page
    cache, so looking them up costs a pass over memory, not over the disk."""
    maps = Path("/proc/self/maps")
    if not maps.is_file() or not keys:
        return {}
    data = os.path.realpath(path / "data.mdb")
    regions = []
    for line in maps.read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5] == data:
            start, end = (int(v, 16) for v in parts[0].split("-"))
            regions.append((start, end, int(parts[2], 16)))
    offsets = {}
    with env.begin(buffers=True) as txn:
        for k in keys:
            buf = txn.get(k.encode())
            address = np.frombuffer(buf, dtype=np.uint8).ctypes.data if buf is not None and len(buf) else None
            region = next((r for r in regions if address is not None and r[0] <= address < r[1]), None)
            if region is None:
                return {}  # not where expected (another platform or py-lmdb copying): no table
            offsets[k] = (address - region[0] + region[2], len(buf))
    return offsets


@dataclass(frozen=True)
class Committed:
    """A worker's stand-in for records it committed itself (:meth:`LmdbTarget.commit`): their byte count and
    where the values of 4 KiB or more lie in data.mdb (``{key: (offset, length)}``; smaller values, or all
    where that cannot be told, are looked up when the store is finished)."""

    nbytes: int
    offsets: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LmdbTarget:
    """An LMDB store as a worker process commits to it directly (from :meth:`LmdbWriter.target`).

    Picklable. Each :meth:`commit` opens the environment, writes one item (its records, index entries and
    done-record) in one transaction and closes it again; LMDB makes the processes of one machine take
    turns. Only for worker *processes* that ``writer_pid`` (the process holding the store's
    :class:`LmdbWriter`) started on its machine: never from that process itself (LMDB forbids opening an
    environment twice in a process), from threads sharing a process, or from other machines (LMDB's lock
    does not work across a network file system). A worker whose parent is no longer ``writer_pid`` (it was
    killed: a new run may be rewriting the store) commits nothing.
    """

    path: str
    map_size: int
    writer_pid: int

    def commit(self, item: str, item_fp: str, records: Iterable[tuple[str, Any, Sequence[int]]]) -> Committed:
        """Commit ``records`` (``(key, value, shape)``: PNG bytes or uint8 pixels) as ``item``.

        Returns:
            :class:`Committed` with the bytes written.

        Raises:
            StoreError: the environment cannot be opened or written (names the file and LMDB's reason).
        """
        if not hasattr(records, "__len__"):
            records = list(records)  # a one-shot iterator; lists and SubImages are cut again on a retry
        nbytes, keys = 0, []

        def checked():
            nonlocal nbytes
            nbytes = 0
            keys.clear()
            for key, value, shape in records:
                _check_record(key, shape)
                nbytes += memoryview(value).nbytes
                keys.append(key)
                yield key, value, shape

        path = Path(self.path)
        _release(path)
        try:
            env = lmdb.open(self.path, map_size=self.map_size, max_dbs=_MAX_DBS, subdir=True, readahead=False,
                            create=False)
        except lmdb.Error as exc:
            raise write_error(path / "data.mdb", exc, "cannot open the LMDB") from exc
        try:
            while True:
                try:
                    with env.begin(write=True) as txn:
                        # Checked holding LMDB's write lock: a later run can only begin once the parent is
                        # gone, and its first write waits for this transaction.
                        if os.getppid() != self.writer_pid:
                            raise StoreError(f"{path}: not writing {item!r}: the process that runs the step "
                                             f"(pid {self.writer_pid}) is gone")
                        dbs = {name: env.open_db(name, txn=txn, create=False) for name in (_INDEX, _DONE)}
                        _put_items(txn, dbs, [(item, item_fp, checked())])
                    break
                except lmdb.MapFullError:
                    _grow(env, path, nbytes)
                except lmdb.MapResizedError:
                    env.set_mapsize(0)
                except lmdb.Error as exc:
                    raise write_error(path / "data.mdb", exc) from exc
            # Only values of a page or more: LMDB keeps those on pages of their own (overflow pages), which
            # stay where they are until the key is written again (not in this run). Smaller values live in
            # leaf pages that later transactions rewrite elsewhere; finish looks those up. The pages were
            # just written, so this reads memory, in parallel with the other workers.
            offsets = _value_offsets(env, path, keys)
            return Committed(nbytes, {k: v for k, v in offsets.items() if v[1] >= _PAGE})
        finally:
            env.close()


class LmdbWriter:
    """Writes one LMDB store, resumably: data and done-records go into the same committed transaction.

    Use it directly (``write(key, img)`` for each item, then :meth:`finish` and :meth:`close`), or as the
    storage behind a step's ledger (``load``/``reset``/``begin``/``add``/``forget``/``flush``/``finish``),
    where each *item* (a source image) brings several records (its sub-images).

    Args:
        path: the ``NAME.lmdb`` folder (created by :meth:`begin`).
        encoding: ``"raw"`` (uint8 pixels, no decode when training) or ``"png"`` (BasicSR-compatible).
        png_level: zlib level of PNG records, also written to ``meta_info.txt``.
        map_size: initial map size in bytes (see :func:`map_size_for`); grown when full.
        batch_bytes: records are committed when this many bytes are pending (and at :meth:`flush`).
        info: JSON-serialisable facts kept in the store's metadata (field, scale, convention, source).
    """

    def __init__(self, path: str | os.PathLike, *, encoding: str = "raw", png_level: int = 1,
                 map_size: int | None = None, batch_bytes: int = 256 << 20, info: dict | None = None):
        if encoding not in ("raw", "png"):
            raise ValueError(f"encoding must be raw or png, not {encoding!r}")
        self.path = Path(path)
        self.encoding, self.png_level = encoding, int(png_level)
        self.map_size = int(map_size) if map_size else 1 << 30
        self.batch_bytes = int(batch_bytes)
        self.info = dict(info or {})
        self._env = None
        self._dbs: dict[bytes, Any] = {}
        self._meta: dict = {}
        self._pending: list[tuple[str, str, list]] = []
        self.pending_bytes = 0
        self._known_offsets: dict[str, tuple[int, int]] = {}

    def __repr__(self) -> str:
        return f"LmdbWriter({str(self.path)!r}, {self.encoding})"

    # ------------------------------------------------------------------ opening

    def _peek(self):
        """This writer's environment if open, else a short-lived read-only one (the caller closes it)."""
        if self._env is not None:
            return self._env, False
        _release(self.path)
        check_lmdb_file(self.path)
        try:
            return lmdb.open(str(self.path), readonly=True, lock=False, max_dbs=_MAX_DBS), True
        except lmdb.Error as exc:
            raise StoreError(f"{self.path}: unreadable LMDB ({type(exc).__name__}: {exc}); run the srprep command "
                             f"that wrote it with --force to rebuild it") from exc

    def _state(self) -> str:
        """"none" (no store), "blank" (an environment with no entries: a creation that was interrupted),
        "ours" (srprep's), "foreign" (another program's LMDB) or "damaged" (header unreadable or truncated)."""
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path}: exists and is not an LMDB folder; remove it or choose another destination")
        if not _is_lmdb(self.path):
            return "none"
        if (self.path / "data.mdb").stat().st_size == 0:
            return "blank"  # killed before LMDB wrote its first pages
        try:
            env, temporary = self._peek()
        except StoreError:
            return "damaged"
        try:
            if env.stat()["entries"] == 0:
                return "blank"
            try:
                env.open_db(_META, create=False)
            except lmdb.NotFoundError:
                return "foreign"
            return "ours"
        finally:
            if temporary:
                env.close()

    def _check_ours(self, *, allow_damaged: bool = False) -> str:
        """The store's :meth:`_state`, refusing a foreign LMDB (and a damaged one unless allowed)."""
        state = self._state()
        if state == "foreign":
            raise StoreError(f"{self.path}: an LMDB that srprep did not write; remove it or choose "
                             f"another destination (srprep never overwrites it)")
        if state == "damaged" and not allow_damaged:
            self._peek()  # raises the one-line reason
        return state

    def _open(self):
        if self._env is None:
            _release(self.path)
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                used = 0
                if (self.path / "data.mdb").exists() and (self.path / "data.mdb").stat().st_size:
                    used = check_lmdb_file(self.path)["bytes"]
                self._env = lmdb.open(str(self.path), map_size=max(self.map_size, used + self.map_size // 4),
                                      max_dbs=_MAX_DBS, subdir=True, readahead=False)
                # Every sub-database and the metadata record in the first transaction: a store is either
                # empty or recognisably srprep's, whenever a kill lands.
                with self._env.begin(write=True) as txn:
                    self._dbs = {name: self._env.open_db(name, txn=txn, create=True) for name in
                                 (_INDEX, _DONE, _META, _OFFSETS)}
                    raw = txn.get(_META_KEY, db=self._dbs[_META])
                    if raw is None:
                        txn.put(_META_KEY, json.dumps({"format": FORMAT, "version": VERSION, "complete": False})
                                .encode(), db=self._dbs[_META])
            except lmdb.Error as exc:
                self._close_env()
                raise write_error(self.path / "data.mdb", exc, "cannot create the LMDB") from exc
            except OSError as exc:
                self._close_env()
                raise write_error(self.path, exc, "cannot create the LMDB") from exc
            self._meta = json.loads(raw) if raw else {}
        return self._env

    def _close_env(self) -> None:
        if self._env is not None:
            try:
                self._env.close()
            finally:
                self._env, self._dbs = None, {}

    def _put_meta(self, **updates) -> None:
        self._open()
        self._meta.update(updates)
        data = json.dumps(self._meta, sort_keys=True).encode()
        self._retry_full(lambda txn: txn.put(_META_KEY, data, db=self._dbs[_META]), len(data))

    # ------------------------------------------------------------------ ledger side

    def load(self) -> tuple[str | None, dict[str, tuple[str, list[str]]]]:
        """(params fingerprint the store was written under or None, {item: (fingerprint, keys)}). Read-only.

        Raises:
            StoreError: another program's LMDB, or a damaged one (``reset`` deletes a damaged store)."""
        if self._check_ours() in ("none", "blank"):
            return None, {}
        env, temporary = self._peek()
        try:
            meta_db, done_db = env.open_db(_META, create=False), env.open_db(_DONE, create=False)
            with env.begin() as txn:
                raw = txn.get(_META_KEY, db=meta_db)
                meta = json.loads(raw) if raw else {}
                done = {}
                for k, v in txn.cursor(db=done_db):
                    rec = json.loads(bytes(v))
                    done[bytes(k).decode()] = (rec["fp"], rec["keys"])
        finally:
            if temporary:
                env.close()
        return meta.get("params_fp"), done

    def reset(self) -> None:
        """Delete the store (LMDB files never shrink, so starting over means a new environment).

        A damaged store (truncated, unreadable header) is deleted too: this is how ``--force`` rebuilds it.
        Another program's LMDB is refused."""
        try:
            self.close()
        except StoreError:
            self._close_env()
        self._check_ours(allow_damaged=True)
        if self.path.exists():
            shutil.rmtree(self.path)

    def begin(self, params_fp: str | None = None) -> None:
        """Open (creating if needed) and mark the store incomplete under these parameters."""
        self._check_ours()
        self._open()
        (self.path / META_INFO).unlink(missing_ok=True)  # a BasicSR reader must not take a half store for whole
        self._put_meta(format=FORMAT, version=VERSION, encoding=self.encoding, dtype="uint8",
                       png_level=self.png_level if self.encoding == "png" else None,
                       params_fp=params_fp, complete=False, **self.info)

    def add(self, item: str, item_fp: str, records: Iterable[tuple[str, Any, Sequence[int]]], *,
            autoflush: bool = True) -> None:
        """Queue an item's records ``(key, value, shape)``; value: PNG bytes, or uint8 pixels (raw).

        With ``autoflush`` the queue is committed once ``batch_bytes`` are pending; without, the caller
        calls :meth:`flush` (to commit several stores at the same points)."""
        records = list(records)
        for key, _, shape in records:
            _check_record(key, shape)
        self._pending.append((item, item_fp, records))
        self.pending_bytes += sum(memoryview(v).nbytes for _, v, _ in records)
        if autoflush and self.pending_bytes >= self.batch_bytes:
            self.flush()

    def write(self, key: str, img: np.ndarray) -> str:
        """Store one image under ``key`` (its own item); returns the key."""
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3:
            raise TypeError(f"{key}: expected an (h, w, c) uint8 array")
        if not self._meta:
            self.begin(self._meta.get("params_fp"))
        value = images.encode_image(img, ".png", png_level=self.png_level) if self.encoding == "png" \
            else np.ascontiguousarray(img)
        self.add(key, "", [(key, value, img.shape)])
        return key

    def _retry_full(self, body, nbytes: int) -> None:
        """Run ``body(txn)`` in one write transaction; on MDB_MAP_FULL grow the map and run it again."""
        env = self._open()
        while True:
            try:
                with env.begin(write=True) as txn:  # commits on leaving, aborts on an exception
                    body(txn)
                return
            except lmdb.MapFullError:
                _grow(env, self.path, nbytes)
            except lmdb.MapResizedError:
                env.set_mapsize(0)  # a worker grew the map: adopt its size
            except lmdb.Error as exc:
                # The transaction was aborted: the store still holds exactly what was committed before.
                raise write_error(self.path / "data.mdb", exc) from exc

    def flush(self) -> None:
        """Commit every queued item with its done-record in one transaction."""
        if not self._pending:
            return
        batch, nbytes = self._pending, self.pending_bytes
        self._open()
        self._retry_full(lambda txn: _put_items(txn, self._dbs, batch), nbytes)
        log.debug("%s: committed %d items (%.1f MiB)", self.path, len(batch), nbytes / 2**20)
        self._pending, self.pending_bytes = [], 0

    def forget(self, items: Sequence[str]) -> None:
        """Delete these items' records and done-records."""
        if not items or not _is_lmdb(self.path):
            return
        self._open()
        index, done = self._dbs[_INDEX], self._dbs[_DONE]

        def body(txn):
            for item in items:
                old = txn.get(item.encode(), db=done)
                if old is None:
                    continue
                for k in json.loads(bytes(old))["keys"]:
                    txn.delete(k.encode())
                    txn.delete(k.encode(), db=index)
                txn.delete(item.encode(), db=done)

        self._retry_full(body, 0)

    def finish(self, **info) -> dict:
        """Flush, write ``meta_info.txt`` (PNG), then mark the store complete. Returns its metadata."""
        self.flush()
        env = self._open()
        env.set_mapsize(0)  # adopt the map size the last writer committed (workers may have grown it)
        shapes, items = [], []
        with env.begin() as txn:
            for k, v in txn.cursor(db=self._dbs[_INDEX]):
                shapes.append((bytes(k).decode(), bytes(v).decode().split("\t", 1)[0]))
            for k, v in txn.cursor(db=self._dbs[_DONE]):
                items.append((bytes(k).decode(), json.loads(bytes(v))["fp"]))
        if self.encoding == "png":
            # BasicSR takes the key as the text before the first "." of a meta_info line and encodes it as
            # ASCII: other keys are stored correctly, but BasicSR will not find them.
            odd = [k for k, _ in shapes if "." in k or not k.isascii() or " " in k]
            if odd:
                log.warning("%s: %d keys contain '.', spaces or non-ASCII characters, which BasicSR cannot "
                            "look up (e.g. %s)", self.path, len(odd), odd[:3])
            text = "".join(f"{k}.png ({s}) {self.png_level}\n" for k, s in shapes)
            tmp = self.path / f".{META_INFO}.tmp"
            try:
                tmp.write_text(text)
                os.replace(tmp, self.path / META_INFO)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise write_error(self.path / META_INFO, exc) from exc
        offsets = self._value_offsets([k for k, _ in shapes])

        def put_offsets(txn):
            txn.drop(self._dbs[_OFFSETS], delete=False)
            for k, where in offsets.items():
                txn.put(k.encode(), _OFFSET.pack(*where), db=self._dbs[_OFFSETS])

        self._retry_full(put_offsets, 32 * len(offsets))
        # the next transaction (the one below) is the last: readers trust the offsets while it is
        self._put_meta(complete=True, count=len(shapes), content_fp=fingerprint(items),
                       offsets_txnid=env.info()["last_txnid"] + 1, **info)
        try:
            env.sync(True)
        except lmdb.Error as exc:
            raise write_error(self.path / "data.mdb", exc) from exc
        return dict(self._meta)

    def _value_offsets(self, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
        """{key: (offset, length)} of the committed values in data.mdb: those the workers reported with
        their commits (see :meth:`note_offsets`), the rest looked up; {} where they cannot be told."""
        missing = [k for k in keys if k not in self._known_offsets]
        found = _value_offsets(self._open(), self.path, missing)
        if missing and not found:
            return {}
        return {k: self._known_offsets.get(k) or found[k] for k in keys}

    def note_offsets(self, offsets: dict[str, tuple[int, int]]) -> None:
        """Where a worker's commit of this run put its values (:attr:`Committed.offsets`): :meth:`finish`
        need not look them up (which reads every value's pages back into this process)."""
        self._known_offsets.update(offsets)

    def target(self) -> "LmdbTarget":
        """What a worker process of this machine needs to commit items to this store itself (after
        :meth:`begin`)."""
        return LmdbTarget(str(self.path), self.map_size, os.getpid())

    def files(self) -> list[Path]:
        """The store's files whose sizes prove it whole (``data.mdb``, and ``meta_info.txt`` if any)."""
        return [p for p in (self.path / "data.mdb", self.path / META_INFO) if p.is_file()]

    def commit(self) -> None:
        self.flush()

    def close(self) -> None:
        """Commit what is queued and close the environment (does not mark the store complete)."""
        if self._env is not None:
            try:
                self.flush()
            finally:
                self._close_env()
