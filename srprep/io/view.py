"""Views: a store made of chosen keys of other stores, without copying a pixel.

A packed store (an LMDB of 19,000 AIM pairs, a field of an HDF5 file) is washed or merged by writing an
index, not by re-encoding it. A view is a folder holding one small file, ``view.json``::

    {
      "format": "srprep-view", "version": 1,
      "sources": [
        {"path": "/data/aim/X2/HR.lmdb", "relpath": "../../aim/X2/HR.lmdb",
         "fingerprint": "3f1c...", "keys": ["000000", "000003", ...], "prefix": "", "suffix": "",
         "options": {}}
      ],
      "made_by": "srprep wash"
    }

:func:`srprep.io.stores.open_store` recognises such a folder and returns a :class:`ViewStore`, which answers
the usual store interface (``keys``, ``read``, ``shape``, ``fingerprint``, ``item_fingerprint``) for the
listed keys only, reading through to the sources; a trainer or ``srprep pack`` reads it like any store.

* A source is any path ``open_store`` opens (an LMDB folder, ``FILE.h5/FIELD``, a folder of images, another
  view); ``options`` are the ``open_store`` keywords it needs (``scale``/``naming`` for a folder).
* The view's key for source key ``k`` is ``prefix + k + suffix``, so two sets whose keys overlap (AIM x2 and
  x3 both use ``000000``...) can be joined (``000000`` and ``000000_x3``). Keys must be unique in the view.
* The source is looked up first by ``relpath`` (relative to the view folder, so a dataset moved together
  with its views keeps working), then by the absolute ``path``.
* The source's fingerprint (:meth:`Store.fingerprint`) is recorded when the view is made and checked when
  it is opened: a view of a store that has since been rewritten refers to content nobody washed, so opening
  it is an error (``check=False`` opens it anyway, for inspection) that says which source changed.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import StoreError
from ..fingerprint import fingerprint
from .keys import check_key

__all__ = ["VIEW_FILE", "FORMAT", "ViewSource", "ViewStore", "is_view", "write_view", "make_view_document",
           "save_view_document"]

VIEW_FILE = "view.json"
FORMAT = "srprep-view"
VERSION = 1


def is_view(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a view folder (holds ``view.json``)."""
    p = Path(path)
    return p.is_dir() and (p / VIEW_FILE).is_file()


@dataclass
class ViewSource:
    """One source of a view, as :func:`write_view` takes it.

    path: what ``open_store`` opens (``X2/HR.lmdb``, ``data.h5/HR``, a folder).
    store: that store, opened (its fingerprint is recorded; its keys are checked).
    keys: the source keys the view exposes, in the view's order.
    prefix, suffix: added to each key to make the view's key.
    options: ``open_store`` keywords needed to reopen the source (e.g. ``{"scale": 2}`` for a folder of
        ``0001x2.png`` files). JSON-serialisable.
    """

    path: str | os.PathLike
    store: Any
    keys: Sequence[str]
    prefix: str = ""
    suffix: str = ""
    options: dict = field(default_factory=dict)


def _view_keys(sources: Sequence[ViewSource], where: str) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, src in enumerate(sources):
        for k in src.keys:
            vk = check_key(f"{src.prefix}{k}{src.suffix}")
            if vk in seen:
                raise StoreError(f"{where}: key {vk!r} comes from two sources ({sources[seen[vk]].path} and "
                                 f"{src.path}); give one of them a prefix or suffix")
            seen[vk] = i
            out.append(vk)
    return out


def _dump_atomic(path: Path, obj: dict) -> None:
    # Temporary name, fsync, rename: a killed writer leaves the old view or the new one, never half of it.
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def make_view_document(dst: str | os.PathLike, sources: Sequence[ViewSource], *, made_by: str = "") -> dict:
    """The content of ``dst/view.json`` for these sources, checked (see :func:`write_view`); writes nothing."""
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise StoreError(f"{dst}: exists and is not a folder; cannot write a view there")
    _view_keys(sources, str(dst))
    entries = []
    dst_abs = Path(os.path.abspath(dst))
    for src in sources:
        have = set(src.store.keys())
        missing = [k for k in src.keys if k not in have]
        if missing:
            raise StoreError(f"{src.path}: has no item {missing[0]!r}" +
                             (f" (and {len(missing) - 1} more keys)" if len(missing) > 1 else ""))
        abs_path = os.path.abspath(src.path)
        if Path(abs_path) == dst_abs:
            raise StoreError(f"{dst}: a view cannot be its own source")
        entries.append({
            "path": abs_path,
            "relpath": os.path.relpath(abs_path, dst_abs),
            "fingerprint": src.store.fingerprint(),
            "keys": list(src.keys),
            "prefix": src.prefix,
            "suffix": src.suffix,
            "options": dict(src.options),
        })
    return {"format": FORMAT, "version": VERSION, "sources": entries, "made_by": made_by}


def save_view_document(dst: str | os.PathLike, doc: dict) -> Path:
    """Write ``doc`` (from :func:`make_view_document`) as ``dst/view.json``, atomically; returns its path.

    An existing ``view.json`` with the same content is left untouched. A non-empty ``dst`` that is not a
    view is refused, so a view never lands in a folder of images.
    """
    dst = Path(dst)
    if dst.is_dir() and not is_view(dst) and any(p for p in dst.iterdir() if not p.name.startswith(".")):
        raise StoreError(f"{dst}: folder is not empty and is not a view; refusing to write a view into it")
    dst.mkdir(parents=True, exist_ok=True)
    path = dst / VIEW_FILE
    try:
        if json.loads(path.read_text(encoding="utf-8")) == doc:
            return path
    except (OSError, ValueError):
        pass
    _dump_atomic(path, doc)
    return path


def write_view(dst: str | os.PathLike, sources: Sequence[ViewSource], *, made_by: str = "") -> Path:
    """Write a view folder ``dst`` (created if needed) exposing the given keys of the given sources.

    Every listed key must exist in its source (checked); view keys must be unique (checked). An existing
    ``view.json`` with the same content is left untouched (so its mtime only changes when the view does).

    Args:
        dst: the view folder; must not be one of the sources, nor a non-empty folder that is not a view.
        sources: see :class:`ViewSource`.
        made_by: a note for humans (the command that made it).

    Returns:
        The path of ``view.json``.

    Raises:
        StoreError: a key missing from its source, a duplicate view key, an invalid key, or ``dst`` holding
            something other than a view.

    Example:
        >>> hr = open_store("X2/HR.lmdb")
        >>> write_view("X2_clean/HR", [ViewSource("X2/HR.lmdb", hr, ["000000", "000003"])])
        PosixPath('X2_clean/HR/view.json')
        >>> open_store("X2_clean/HR").keys()
        ['000000', '000003']
    """
    return save_view_document(dst, make_view_document(dst, sources, made_by=made_by))


class ViewStore:
    """Read access to a view folder (see the module docstring).

    Args:
        path: the view folder.
        check: refuse a view whose sources changed since it was made (default), or open it anyway.
        read_options: passed to ``open_store`` for every source, after the source's own options.

    ``read(key)`` and ``shape(key)`` read through to the source (same dtype and layout as the source).
    Picklable when its sources are (srprep's are), so it can be handed to worker processes.
    """

    def __init__(self, path: str | os.PathLike, *, check: bool = True, **read_options):
        from .stores import open_store  # stores imports this module for open_store's view branch

        self.path = Path(path)
        meta_path = self.path / VIEW_FILE
        try:
            doc = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(f"{self.path}: not a view (no {VIEW_FILE})") from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"{meta_path}: unreadable view ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else None
            raise StoreError(f"{meta_path}: not an srprep view (format {found!r}, expected {FORMAT!r})")
        if doc.get("version") != VERSION:
            raise StoreError(f"{meta_path}: view version {doc.get('version')!r}; this srprep reads version {VERSION}")
        self.meta = doc
        self.sources: list[Any] = []
        self._map: dict[str, tuple[int, str]] = {}
        self._keys: list[str] = []
        for i, entry in enumerate(doc.get("sources", [])):
            try:
                rel = (self.path / entry["relpath"]) if entry.get("relpath") else None
                src_path = rel if rel is not None and (rel.exists() or rel.parent.is_file()) else Path(entry["path"])
                keys, prefix, suffix = entry["keys"], entry.get("prefix", ""), entry.get("suffix", "")
                options = {**entry.get("options", {}), **read_options}
            except (KeyError, TypeError) as exc:
                raise StoreError(f"{meta_path}: source {i + 1} is malformed ({exc!r} missing)") from exc
            if not src_path.exists() and not src_path.parent.is_file():
                raise StoreError(f"{self.path}: its source {entry['path']} is gone "
                                 f"(also looked for {entry.get('relpath')} relative to the view)")
            store = open_store(src_path, **options)
            if check and store.fingerprint() != entry.get("fingerprint"):
                raise StoreError(f"{self.path}: its source {src_path} changed since the view was made; make the "
                                 f"view again (e.g. re-run srprep wash)")
            have = set(store.keys())
            missing = [k for k in keys if k not in have]
            if missing:
                raise StoreError(f"{self.path}: its source {src_path} has no item {missing[0]!r}"
                                 + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
            for k in keys:
                vk = check_key(f"{prefix}{k}{suffix}")
                if vk in self._map:
                    raise StoreError(f"{meta_path}: key {vk!r} listed twice")
                self._map[vk] = (i, k)
                self._keys.append(vk)
            self.sources.append(store)
        self._fp = fingerprint(["view", [[e.get("fingerprint"), fingerprint(e["keys"]), e.get("prefix", ""),
                                          e.get("suffix", "")] for e in doc.get("sources", [])]])

    def __repr__(self) -> str:
        return f"ViewStore({str(self.path)!r}, {len(self._keys)} keys from {len(self.sources)} source(s))"

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: str) -> bool:
        return key in self._map

    def keys(self) -> list[str]:
        """The view's keys, in the order they were listed (source by source)."""
        return list(self._keys)

    def source_of(self, key: str) -> tuple[Any, str]:
        """(source store, source key) of a view key."""
        try:
            i, k = self._map[key]
        except KeyError:
            raise StoreError(f"{self.path}: no item {key!r}") from None
        return self.sources[i], k

    def read(self, key: str) -> np.ndarray:
        store, k = self.source_of(key)
        return store.read(k)

    def read_region(self, key: str, top: int, left: int, height: int, width: int) -> np.ndarray:
        """A window of an item (the source's own ``read_region`` where it has one)."""
        store, k = self.source_of(key)
        if hasattr(store, "read_region"):
            return store.read_region(k, top, left, height, width)
        return np.ascontiguousarray(store.read(k)[top:top + height, left:left + width])

    def shape(self, key: str) -> tuple[int, int, int]:
        store, k = self.source_of(key)
        return store.shape(k)

    def item_fingerprint(self, key: str) -> str:
        store, k = self.source_of(key)
        return store.item_fingerprint(k)

    def fingerprint(self) -> str:
        """Changes when a source's content, or the chosen keys or their renaming, change."""
        return self._fp

    def close(self) -> None:
        for s in self.sources:
            if hasattr(s, "close"):
                s.close()
