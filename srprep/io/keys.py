"""Item keys: the names of items in a store, safe as file names and as LMDB keys."""
from __future__ import annotations

import re

from ..errors import StoreError

#: Longest key accepted: file systems allow 255 bytes per name, and an extension and a suffix must fit.
MAX_KEY_BYTES = 200

_BAD = re.compile(r"[\x00-\x1f\x7f/\\]")


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid item key, else raise :class:`~srprep.errors.StoreError`.

    A key is a non-empty file name: no path separator, no control character, not ``.`` or ``..``, not
    starting with ``.`` (hidden names hold srprep's own state), at most 200 bytes of UTF-8.

    >>> check_key("0001_s017")
    '0001_s017'
    """
    if not isinstance(key, str) or not key:
        raise StoreError(f"invalid key {key!r}: empty or not a string")
    if _BAD.search(key):
        raise StoreError(f"invalid key {key!r}: contains a path separator or a control character")
    if key.startswith("."):
        raise StoreError(f"invalid key {key!r}: starts with '.'")
    try:
        n = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise StoreError(f"invalid key {key!r}: not encodable as UTF-8") from exc
    if n > MAX_KEY_BYTES:
        raise StoreError(f"invalid key {key[:40]!r}...: {n} bytes, more than {MAX_KEY_BYTES}")
    return key
