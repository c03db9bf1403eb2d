"""Exceptions that srprep raises for problems a user can fix.

The CLI prints a :class:`SrprepError` as one line (``error: <message>``) and exits non-zero; any other
exception is a bug in srprep and is shown with its traceback under ``--verbose``.
"""


class SrprepError(Exception):
    """A user-facing error: bad input, bad options, a file that cannot be read or written.

    The message names the file or item and the cause, e.g. ``"HR/0001.png: truncated PNG"``.
    """


class ImageError(SrprepError):
    """An image file that cannot be read or written as srprep needs it (corrupt, truncated, 16-bit, RGBA...)."""


class StoreError(SrprepError):
    """A store (folder, LMDB, HDF5) that is missing, inconsistent or incomplete."""


class StageError(SrprepError):
    """A stage failed on one item; the message names the item and the cause."""


class OptionError(SrprepError, ValueError):
    """An option value that cannot work (a scale <= 0, a crop larger than the step allows...)."""


def write_error(path, exc: BaseException, what: str = "cannot write") -> SrprepError:
    """A one-line :class:`SrprepError` for a failed write to ``path``, saying so when the disk is full.

    The disk counts as full when the error says so (``ENOSPC``, ``EDQUOT``) or when the file system has less
    than 1 MiB free (a memory-mapped write such as LMDB's reports a full disk as an I/O error, torch as a
    failed write).
    """
    import errno
    import os
    import shutil

    code = getattr(exc, "errno", None)
    free = None
    probe = os.path.abspath(os.fspath(path))
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        pass
    text = str(exc)
    full = code in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text or (free is not None and free < (1 << 20))
    if full:
        left = f" ({free} bytes free)" if free is not None else ""
        return SrprepError(f"{path}: {what}: the disk is full{left}; free some space and run the same command "
                           f"again to resume")
    reason = getattr(exc, "strerror", None) or " ".join(text.split()) or type(exc).__name__
    return SrprepError(f"{path}: {what} ({reason})")
