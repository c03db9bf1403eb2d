"""PNG encoding and decoding on the fastest exact paths measured on this project's machines.

PNG is lossless whatever encoder writes it: every path here gives back exactly the pixels it was given
(tested against OpenCV's libpng on every bundled image). What differs is speed and size; the choice is made
in ``benchmarks/bench_floor.py --only png`` (table in ``benchmarks/RESULTS.md``, section "PNG codecs"). On a
2040x1356 photo, one core:

=========================  =============================================  =========  ======================
``png_level``              how                                            encode     size vs libpng level 1
=========================  =============================================  =========  ======================
1 (default, ``FAST``)      Up filter on every row, libdeflate level 1     3.5x       about +3 %
0                          no compression (stored deflate blocks, libpng)  fastest    ~+60 %
2 .. 9                     libpng (OpenCV) adaptive filters, zlib level   1x .. 0.1x  -1 to -20 %
=========================  =============================================  =========  ======================

Level 1 is for intermediate data (LR sets, sub-images, packed PNG values), where time matters more than the
last percent of space; 6 or 9 for archives. The fast encoder writes a plain PNG (IHDR, IDAT chunks, IEND;
8-bit RGB or grey, not interlaced) that every reader takes; the Up filter (each byte minus the byte above it)
is computed with numpy and compressed by libdeflate (the ``deflate`` package), which deflates about 2.5x
faster than zlib's level 1 for files a few percent smaller. Its output depends only on the pixels (and on
libdeflate's version): the same image gives the same file in every process, so a store's bytes do not depend
on which worker wrote it. (ISA-L, the encoder before, was 1.6x faster but gave another valid stream for about
one small input in 15,000, varying from one process to the next.)

Decoding: 8-bit RGB, RGBA and grey files without a ``tRNS`` chunk (what cameras, DIV2K and srprep write) go
through libspng (the ``pyspng`` package), 1.2-1.5x faster than OpenCV's libpng here; anything else (16-bit,
palette, transparency keys, ...) goes to OpenCV, as before (see :mod:`srprep.io.images`).
"""
from __future__ import annotations

import struct

import numpy as np

__all__ = ["FAST_LEVEL", "encode_fast", "decode_fast", "rgb8_size"]

#: The ``png_level`` of the fast encoder (the default of every command).
FAST_LEVEL = 1

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP = 2  # PNG filter type "Up"
# IDAT chunk size: readers accept any, but some stop at 2**30; 8 MiB keeps chunks small and few.
_IDAT_BYTES = 8 << 20


def _chunk(kind: bytes, data, crc32) -> list:
    crc = crc32(data, crc32(kind))
    return [struct.pack(">I", len(data)), kind, data, struct.pack(">I", crc)]


def encode_fast(img: np.ndarray) -> bytes:
    """The bytes of a PNG file of ``img``: Up filter on every row, libdeflate level 1.

    Args:
        img: ``(H, W, 3)`` RGB or ``(H, W)`` grey, uint8, H and W >= 1 (any strides).

    Returns:
        A complete PNG file (8-bit RGB or grey, not interlaced).

    Example:
        >>> encode_fast(np.zeros((2, 3, 3), np.uint8))[:8]
        b'\\x89PNG\\r\\n\\x1a\\n'
    """
    import deflate  # libdeflate

    # libdeflate gives the same bytes for the same pixels in every process (tests/io/test_png.py); ISA-L, used
    # before, gave other valid streams for ~1 small input in 15,000, varying from one process to the next.
    return _encode_up(img, lambda filtered: deflate.zlib_compress(filtered, 1), deflate.crc32)


def _encode_up(img: np.ndarray, zlib_compress, crc32) -> bytes:
    """:func:`encode_fast` with another zlib-format deflater ``zlib_compress(buffer) -> bytes-like`` and
    ``crc32(data, value)`` (benchmarks compare deflaters with it)."""
    h, w = img.shape[:2]
    channels = 1 if img.ndim == 2 else img.shape[2]
    rows = np.ascontiguousarray(img).reshape(h, w * channels)
    filtered = np.empty((h, w * channels + 1), np.uint8)
    filtered[:, 0] = _UP
    filtered[0, 1:] = rows[0]  # the row above the first one counts as zeros
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 arithmetic wraps modulo 256, as PNG does
    data = memoryview(zlib_compress(filtered))
    header = struct.pack(">IIBBBBB", w, h, 8, 2 if channels == 3 else 0, 0, 0, 0)
    parts = [_SIGNATURE, *_chunk(b"IHDR", header, crc32)]
    for start in range(0, max(len(data), 1), _IDAT_BYTES):
        parts += _chunk(b"IDAT", data[start:start + _IDAT_BYTES], crc32)
    parts += _chunk(b"IEND", b"", crc32)
    return b"".join(parts)


def rgb8_size(path) -> tuple[int, int] | None:
    """``(H, W)`` of an 8-bit RGB PNG file (colour type 2: no alpha, no palette), read from its header; None
    for any other file. Such a file's pixels are exactly what :func:`srprep.io.images.read_image` returns, so
    a step whose output is the image unchanged can keep the file as it is."""
    with open(path, "rb") as f:
        head = f.read(33)
    if not (len(head) == 33 and head[:8] == _SIGNATURE and head[12:16] == b"IHDR" and head[24] == 8
            and head[25] == 2):
        return None
    w, h = struct.unpack(">II", head[16:24])
    return h, w


# Colour types libspng returns exactly as OpenCV does (after OpenCV's BGR order is swapped back): grey,
# RGB and RGBA at 8 bits. Palette files and tRNS keys take OpenCV's own expansion rules, 16-bit its depth.
_FAST_COLOUR_TYPES = {0, 2, 6}


def _fast_decodable(mv: memoryview) -> bool:
    """An 8-bit grey/RGB/RGBA PNG without a tRNS chunk (looked for in the chunks before the first IDAT)."""
    if mv.nbytes < 33 or bytes(mv[12:16]) != b"IHDR" or mv[24] != 8 or mv[25] not in _FAST_COLOUR_TYPES:
        return False
    pos = 33
    while pos + 8 <= mv.nbytes:
        kind = bytes(mv[pos + 4:pos + 8])
        if kind == b"IDAT":
            return True
        if kind == b"tRNS":
            return False
        pos += 12 + int.from_bytes(mv[pos:pos + 4], "big")
    return False


def decode_fast(data, mv: memoryview) -> np.ndarray | None:
    """Samples of an 8-bit grey/RGB/RGBA PNG as libspng decodes them, or None for files it leaves to OpenCV.

    Args:
        data: the file's bytes (``bytes``; other buffers are copied once).
        mv: a byte view of the same data (for the header checks).

    Returns:
        ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA uint8, writable; None when the file is not
        one of those kinds.

    Raises:
        ValueError: libspng's message for a damaged file.
    """
    if not _fast_decodable(mv):
        return None
    import pyspng

    try:
        return pyspng.load(data if isinstance(data, bytes) else bytes(mv))
    except RuntimeError as exc:
        raise ValueError(str(exc).replace("pyspng: ", "")) from None
