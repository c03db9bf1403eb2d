"""Stable fingerprints of parameters and input files, for the step cache.

A fingerprint is a hex SHA-256 of a canonical JSON encoding, so it is the same across processes, Python
versions and machines (unlike ``hash()``). Files are fingerprinted by name, size and mtime, not content:
reading every byte of a 100 GB dataset to decide that nothing changed would defeat the cache. A store
produced by srprep is fingerprinted by its manifest instead (see :mod:`srprep.runner`).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

#: Bumped when the on-disk layout or the meaning of a step's output changes, so old caches are redone.
FORMAT_VERSION = 1


def _default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"cannot fingerprint a {type(obj).__name__}: {obj!r}")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the same object always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default, ensure_ascii=True)


def fingerprint(obj: Any) -> str:
    """Hex SHA-256 of ``canonical_json(obj)``.

    >>> fingerprint({"b": 1, "a": 2}) == fingerprint({"a": 2, "b": 1})
    True
    """
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def file_stat(path: str | os.PathLike) -> list:
    """``[name, size, mtime_ns]`` of a file: what the cache compares to decide that it changed."""
    st = os.stat(path)
    return [os.path.basename(path), st.st_size, st.st_mtime_ns]


def files_fingerprint(paths: Iterable[str | os.PathLike]) -> str:
    """Fingerprint of several files by name, size and mtime (order-independent)."""
    return fingerprint(sorted(file_stat(p) for p in paths))


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Content hash of one file (used for model weights, where a same-size replacement must be noticed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
