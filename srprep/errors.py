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
