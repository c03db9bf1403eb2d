"""Stores: collections of items (images) addressed by key, with one interface for every format.

Every store answers ``keys()``, ``read(key)``, ``shape(key)``, ``fingerprint()`` and
``item_fingerprint(key)``; stages are written against that interface, never against a format.
This module holds the interface and the folder store; packed stores (LMDB, HDF5) live beside it.

Folder naming: a key is the file name without extension and without the scale suffix of the usual SR
layouts, so that HR and LR files of one image share a key:

=================  ==============================  =====
layout             file                            key
=================  ==============================  =====
DIV2K              ``DIV2K_train_LR_bicubic/X2/0001x2.png``   ``0001``
EDSR benchmark     ``Set5/LR_bicubic/X2/babyx2.png``        ``baby``
same name          ``X2/LR/000123.png`` (AIM2020)             ``000123``
=================  ==============================  =====
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import StoreError
from ..fingerprint import file_stat, fingerprint
from . import images
from .keys import check_key

ARRAY_EXTENSION = ".npy"


@runtime_checkable
class Store(Protocol):
    """Read access to items by key.

    read(key) returns (H, W, 3) uint8 RGB, or (H, W, 3) float32 where the store holds floats (float16 where a
    folder holds float16 ``.npy`` files, as ``srprep centroids --store-dtype float16`` writes them).
    shape(key) returns (H, W, C) without decoding pixels where the format allows.
    """

    def keys(self) -> list[str]: ...

    def read(self, key: str) -> np.ndarray: ...

    def shape(self, key: str) -> tuple[int, int, int]: ...

    def fingerprint(self) -> str: ...

    def item_fingerprint(self, key: str) -> str: ...


def scale_suffix(scale: float | int | None) -> str:
    """``x2`` for scale 2, ``x1.5`` for 1.5: the suffix of DIV2K/benchmark LR names."""
    if scale is None:
        return ""
    return f"x{int(scale)}" if float(scale).is_integer() else f"x{scale:g}"


class FolderStore:
    """A folder of image files (or ``.npy`` float arrays), one item per file.

    Args:
        root: the folder (not searched recursively; hidden files and folders are ignored).
        naming: ``"same"`` (key = file stem), ``"suffix"`` (key = stem without ``x{scale}``), or ``"auto"``
            (``"suffix"`` if every stem ends with ``x{scale}``, else ``"same"``).
        scale: the scale whose suffix ``naming`` strips (LR folders).
        alpha, depth16: how RGBA and 16-bit files are read (see :func:`srprep.io.images.read_image`).
    """

    def __init__(self, root: str | os.PathLike, *, naming: str = "auto", scale: float | None = None,
                 alpha: str = "error", depth16: str = "error"):
        self.root = Path(root)
        if not self.root.is_dir():
            raise StoreError(f"{self.root}: not a folder")
        if naming not in ("auto", "same", "suffix"):
            raise ValueError(f"naming must be auto, same or suffix, not {naming!r}")
        self.alpha, self.depth16 = alpha, depth16
        files = sorted(p for p in self.root.iterdir()
                       if not p.name.startswith(".") and p.is_file()
                       and p.suffix.lower() in (*images.IMAGE_EXTENSIONS, ARRAY_EXTENSION))
        suffix = scale_suffix(scale)
        if naming == "auto":
            naming = "suffix" if suffix and files and all(
                p.stem.endswith(suffix) and len(p.stem) > len(suffix) for p in files) else "same"
        if naming == "suffix" and not suffix:
            raise ValueError("naming='suffix' needs a scale")
        self.naming = naming
        self.suffix = suffix if naming == "suffix" else ""
        self._paths: dict[str, Path] = {}
        for p in files:
            stem = p.stem
            if self.suffix:
                if not stem.endswith(self.suffix):
                    raise StoreError(f"{p}: name does not end with {self.suffix!r} like the other files here")
                stem = stem[: -len(self.suffix)]
            check_key(stem)
            if stem in self._paths:
                raise StoreError(f"{self.root}: two files give the key {stem!r}: "
                                 f"{self._paths[stem].name} and {p.name}")
            self._paths[stem] = p

    def __repr__(self) -> str:
        return f"FolderStore({str(self.root)!r}, {len(self._paths)} items)"

    def __len__(self) -> int:
        return len(self._paths)

    def __contains__(self, key: str) -> bool:
        return key in self._paths

    def keys(self) -> list[str]:
        return list(self._paths)

    def path(self, key: str) -> Path:
        """The file that holds ``key``."""
        try:
            return self._paths[key]
        except KeyError:
            raise StoreError(f"{self.root}: no item {key!r}") from None

    def read(self, key: str) -> np.ndarray:
        p = self.path(key)
        if p.suffix == ARRAY_EXTENSION:
            return images.read_array(p)
        return images.read_image(p, alpha=self.alpha, depth16=self.depth16)

    def shape(self, key: str) -> tuple[int, int, int]:
        p = self.path(key)
        if p.suffix == ARRAY_EXTENSION:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
            return tuple(arr.shape) if arr.ndim == 3 else (*arr.shape, 1)
        h, w = images.image_size(p)
        return (h, w, 3)

    def item_fingerprint(self, key: str) -> str:
        return fingerprint(file_stat(self.path(key)))

    def fingerprint(self) -> str:
        return fingerprint(sorted(file_stat(p) for p in self._paths.values()))


class FolderWriter:
    """Writes items as image files ``<root>/<key><suffix><ext>``, each atomically.

    ``write`` returns the file name relative to ``root`` (what a step records as the item's output).
    """

    def __init__(self, root: str | os.PathLike, *, ext: str = ".png", suffix: str = "", png_level: int = 1):
        self.root = Path(root)
        self.ext, self.suffix, self.png_level = ext, suffix, png_level

    def name(self, key: str) -> str:
        return f"{check_key(key)}{self.suffix}{self.ext}"

    def write(self, key: str, img: np.ndarray) -> str:
        name = self.name(key)
        if self.ext == ARRAY_EXTENSION:
            images.write_array(self.root / name, img)
        else:
            images.write_image(self.root / name, img, png_level=self.png_level)
        return name

    def close(self) -> None:
        pass


def holds_items(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder that :func:`open_store` reads as a field of a dataset.

    True for an LMDB store (``data.mdb``), a view (``view.json``), or a folder with at least one image or
    ``.npy`` file (hidden names ignored).
    """
    path = Path(path)
    if not path.is_dir():
        return False
    if (path / "data.mdb").is_file() or (path / "view.json").is_file():
        return True
    return any(p.suffix.lower() in (*images.IMAGE_EXTENSIONS, ARRAY_EXTENSION) for p in path.iterdir()
               if p.is_file() and not p.name.startswith("."))


def open_store(path: str | os.PathLike, *, scale: float | None = None, naming: str = "auto",
               **read_options) -> Store:
    """Open a store by looking at what ``path`` is.

    * a folder with ``data.mdb``: an LMDB store (:class:`~srprep.io.lmdb_store.LmdbStore`);
    * an ``.h5``/``.hdf5`` file (``field=`` picks the group), or ``FILE.h5/FIELD``: one field of an HDF5
      store (:class:`~srprep.io.hdf5_store.Hdf5Store`);
    * a folder with ``view.json``: a view of chosen keys of other stores (:class:`~srprep.io.view.ViewStore`);
    * any other folder: a folder of images (:class:`FolderStore`; ``scale`` and ``naming`` apply here only).
    """
    path = Path(path)
    if not path.exists() and path.parent.suffix.lower() in (".h5", ".hdf5") and path.parent.is_file():
        from .hdf5_store import Hdf5Store

        return Hdf5Store(path.parent, path.name, **read_options)
    if not path.exists():
        raise StoreError(f"{path}: no such file or folder")
    if path.is_dir() and (path / "view.json").is_file():
        from .view import ViewStore

        return ViewStore(path, **read_options)
    if path.is_dir() and (path / "data.mdb").is_file():
        from .lmdb_store import LmdbStore

        return LmdbStore(path, **read_options)
    if path.is_file() and path.suffix.lower() in (".h5", ".hdf5"):
        from .hdf5_store import Hdf5Store

        return Hdf5Store(path, **read_options)
    if path.is_dir():
        return FolderStore(path, naming=naming, scale=scale, **read_options)
    raise StoreError(f"{path}: not a store srprep can read (expected a folder of images, an LMDB folder or an "
                     f"HDF5 file)")


def store_location(store) -> Path | None:
    """Where a store lives on disk: a folder store's folder, an LMDB folder, an HDF5 file or a view folder."""
    where = getattr(store, "root", None) or getattr(store, "path", None)
    return Path(where) if where is not None else None


def paired_keys(stores: dict[str, Store], *, allow_missing: bool = False) -> list[str]:
    """Keys present in every store of a paired dataset (by key, never by sorted order).

    Raises StoreError naming the store and a few keys when one store lacks keys another has,
    unless ``allow_missing`` (then the intersection is returned).
    """
    names = list(stores)
    sets = {n: set(stores[n].keys()) for n in names}
    common = set.intersection(*sets.values()) if sets else set()
    if not allow_missing:
        for n in names:
            extra = sets[n] - common
            if extra:
                other = [m for m in names if m != n]
                raise StoreError(f"{n}: {len(extra)} keys have no counterpart in {', '.join(other)}: "
                                 f"{sorted(extra)[:5]}")
    first = stores[names[0]].keys() if names else []
    return [k for k in first if k in common]

