"""Reading and writing image files (and float32 ``.npy`` arrays) for every srprep step.

In memory an image is always a C-contiguous ``numpy.ndarray`` of shape ``(H, W, 3)``, dtype ``uint8``,
values 0..255, channels in **RGB** order (BGR exists only inside cv2 calls). Files are PNG, JPEG, BMP
or TIFF (:data:`IMAGE_EXTENSIONS`). Problems a user can fix (missing, empty, corrupt or truncated file,
unsupported extension, alpha channel, 16-bit or float samples) raise :class:`srprep.errors.ImageError`
with a message that starts with the file name, e.g. ``"data/HR/0001.png: truncated or corrupt PNG"``.
Programming errors (a float array passed to :func:`encode_image`, a bad option value) raise
``TypeError``/``ValueError``.

Backends, per format and direction, chosen by measurement (``benchmarks/bench_io.py``; table, machine and
run-to-run ranges in ``benchmarks/RESULTS.md``, section "Image I/O"). Speed-ups are cv2 over Pillow
(pillow-simd), small sample images / one 2040x1356 image:

* **PNG: srprep's own fast paths, else cv2** (:mod:`srprep.io.png`, section "PNG codecs" of RESULTS.md):
  8-bit grey/RGB/RGBA files are decoded by libspng (pyspng), 1.2-1.5x faster than cv2; level 1 (the
  default) is encoded with the Up filter and libdeflate, several times faster than zlib for files of about
  the same size, and the same bytes for the same pixels in every process. Everything else is cv2 (over Pillow: decode 0.95-1.37x, encode 1.12-1.36x at levels 1
  and 6, same size within 0.3 %); cv2 also returns 16-bit colour as uint16, where Pillow silently keeps only
  the high byte (no 16-bit policy would be possible). PNG is lossless: pixels equal Pillow's and cv2's
  whatever the path (tested on Set5 and every bundled image).
* **JPEG: cv2 both ways.** Decode 1.14-1.19x / 1.9-2.1x; encode 1.15x on the large image (0.86-1.38x on
  the small ones, noisy); the output is byte-identical to Pillow's on the reference machine (4:2:0, IJG
  tables, no Huffman optimisation).
* **BMP: cv2 both ways.** Decode 3-4x / 7-13x, encode 1.7-2.3x / 1.9x.
* **TIFF: Pillow** for 8-bit files (cv2 for 16-bit and float samples, which Pillow would truncate or
  convert). Pillow reads one-strip files (what Pillow, hence srprep, writes) 1.2x faster than cv2 at
  2040x1356 (cv2 is 1.25x faster on small ones) and encodes 2x faster at that size; it also keeps the
  alpha of grey+alpha files, which cv2 drops. cv2 reads its own one-row-per-strip files 1.8-3.7x faster,
  but srprep does not write those.

JPEG decoding: libjpeg-turbo inside cv2, default ISLOW IDCT and fancy upsampling, EXIF orientation ignored.
On the reference machine this gives exactly the pixels Pillow gives; with other builds the two may differ
by one level, so srprep decodes every JPEG with cv2 and never mixes decoders. cv2 >= 5 refuses a truncated
JPEG, but cv2 4.x (allowed by ``setup.cfg``) returns it padded with grey after a libjpeg warning; srprep
therefore checks itself that the stream ends with an end-of-image marker after its last scan. Likewise a PNG
must end with a complete IEND chunk, and a PNG file's chunks must match their CRC-32s (libpng would decode
damaged data and print its complaint on stderr before failing; the check costs about 1 % of a decode).

Conventions worth knowing:

* EXIF orientation is **not** applied by default and ICC profiles are ignored: pixels are returned as
  stored, which is what SR benchmarks and HR/LR pairs assume. ``exif_orientation="apply"`` turns a photo
  upright as viewers show it (the eight EXIF orientations, as Pillow's ``ImageOps.exif_transpose``), for
  camera photos used as HR sources.
* A multi-page TIFF yields its first page. BMP alpha (32-bit BMP) is ignored, as most BMP readers do.
  CMYK JPEG/TIFF files are converted to RGB without colour management.
* An alpha channel that is fully opaque (every alpha value 255 after depth conversion) carries no
  information and is dropped silently under every ``alpha`` policy; only images with at least one
  transparent pixel are refused by ``alpha="error"``.

Threads: cv2 codecs are single-threaded, but cv2 colour conversions may use OpenCV's thread pool. This module
never calls ``cv2.setNumThreads`` (a process-wide setting that would surprise other code). Do not call it in
a *forked* worker either (e.g. a DataLoader worker): once the parent has used OpenCV's thread pool, that
call deadlocks in the child. Set it before forking, or in spawned processes only.
"""
from __future__ import annotations

import io
import logging
import os
import secrets
import struct
import zlib
from pathlib import Path
from typing import Callable, Literal, Sequence, Union

import cv2
import numpy as np
from PIL import Image, ImageFile

from srprep.errors import ImageError

from . import png

__all__ = [
    "IMAGE_EXTENSIONS",
    "EXIF_ORIENTATION",
    "read_exif_orientation",
    "read_image",
    "decode_image",
    "encode_image",
    "write_image",
    "read_array",
    "write_array",
    "image_size",
]

log = logging.getLogger(__name__)

#: File name extensions srprep reads and writes as images (lower case; matching is case-insensitive).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

PathLike = Union[str, "os.PathLike[str]"]
AlphaPolicy = Literal["error", "flatten", "drop"]
Depth16Policy = Literal["error", "scale", "shift"]
Background = Union[int, Sequence[int]]

_EXT_FORMAT = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

# Exceptions Pillow raises on malformed input; anything else escaping a decoder is a bug in srprep.
_PIL_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    Image.DecompressionBombError,
)


# --------------------------------------------------------------------------------------------- helpers


def _sniff(head: bytes) -> str | None:
    """Format from the magic bytes; the file's content, not its name, decides how it is decoded."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    return None


def _ext_format(path: Path) -> str:
    fmt = _EXT_FORMAT.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(
            f"{path}: unsupported image extension {path.suffix or '(none)'!r}; "
            f"expected one of {', '.join(IMAGE_EXTENSIONS)}"
        )
    return fmt


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image file") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror or e})") from e


def _check_policies(alpha: str, depth16: str) -> None:
    if alpha not in ("error", "flatten", "drop"):
        raise ValueError(f"alpha must be 'error', 'flatten' or 'drop', not {alpha!r}")
    if depth16 not in ("error", "scale", "shift"):
        raise ValueError(f"depth16 must be 'error', 'scale' or 'shift', not {depth16!r}")


def _background_rgb(background: Background) -> np.ndarray:
    bg = np.asarray(background)
    if bg.ndim == 0:
        bg = np.repeat(bg, 3)
    if bg.shape != (3,) or not np.issubdtype(bg.dtype, np.integer) or bg.min() < 0 or bg.max() > 255:
        raise ValueError(f"background must be an int or 3 ints in 0..255, not {background!r}")
    return bg.astype(np.uint32)


# --------------------------------------------------------------------------------------------- decoders


def _decode_cv2(buf: np.ndarray, fmt: str, name: str) -> np.ndarray:
    """Decode with cv2; samples as stored (uint8 or uint16, else refused), colour channels in RGB(A) order."""
    try:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        raise ImageError(f"{name}: corrupt {fmt} ({str(e).strip().splitlines()[-1]})") from e
    if arr is None or arr.size == 0:
        raise ImageError(f"{name}: truncated or corrupt {fmt}")
    if arr.dtype not in (np.uint8, np.uint16):
        raise ImageError(
            f"{name}: {fmt} samples are {arr.dtype}; srprep reads 8-bit images "
            "(or 16-bit ones with depth16='scale'/'shift'); convert the file first"
        )
    if arr.ndim == 3:
        if arr.shape[2] == 3:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
        elif arr.shape[2] == 4:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
        elif arr.shape[2] != 1:
            raise ImageError(f"{name}: {fmt} has {arr.shape[2]} channels; expected 1 to 4")
    return arr


def _jpeg_complete(mv: memoryview) -> bool:
    """Whether a JPEG stream has an end-of-image marker after its last start-of-scan marker.

    Entropy-coded data cannot contain the bytes 0xFF 0xD9 (a 0xFF data byte is always followed by 0x00),
    so a file cut anywhere in or before its last scan fails this test, whatever the decoder does with it.
    """
    if bytes(mv[-2:]) == b"\xff\xd9":
        return True  # the usual case; trailing data after EOI (rare) takes the slow path
    data = bytes(mv)
    sos = data.rfind(b"\xff\xda")
    return sos >= 0 and data.find(b"\xff\xd9", sos + 2) >= 0


# Pillow modes of 8-bit TIFFs and how they become L, LA, RGB or RGBA samples.
_TIFF_PIL_CONVERT = {"1": "L", "L": None, "LA": None, "RGB": None, "RGBA": None, "P": "RGB", "PA": "RGBA",
                     "RGBa": "RGBA", "CMYK": "RGB", "YCbCr": "RGB"}


def _decode_tiff_pil(data: bytes, name: str) -> np.ndarray | None:
    """uint8 L/LA/RGB/RGBA samples of an 8-bit TIFF via Pillow, or None when cv2 should decode it.

    Pillow keeps only the high byte of 16-bit colour samples, so deeper files go to cv2, which returns
    them as they are stored and lets the depth16 policy decide.
    """
    try:
        im = Image.open(io.BytesIO(data), formats=["TIFF"])
    except _PIL_DECODE_ERRORS:
        return None  # a header Pillow does not handle: cv2 gives its own verdict
    with im:
        bits = im.tag_v2.get(258, 1)  # BitsPerSample
        bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,)
        if max(bits) > 8 or im.mode not in _TIFF_PIL_CONVERT:
            return None
        try:
            im.load()
            target = _TIFF_PIL_CONVERT[im.mode]
            if im.mode == "P" and "transparency" in im.info:
                target = "RGBA"
            if im.mode == "CMYK":
                log.warning("%s: CMYK TIFF converted to RGB without colour management", name)
            out = im if target is None else im.convert(target)
            # Pillow exposes its pixels as read-only bytes, hence the copy; np.array(im) would be slower,
            # as numpy asks Pillow for those bytes more than once.
            return np.asarray(out).copy()
        except _PIL_DECODE_ERRORS as e:
            raise ImageError(f"{name}: truncated or corrupt TIFF ({e})") from e


def _to_rgb8(
    arr: np.ndarray, name: str, alpha: str, depth16: str, background: Background
) -> np.ndarray:
    """Samples (H,W), (H,W,1..4), uint8/uint16, RGB(A) order -> (H,W,3) uint8 RGB under the policies."""
    if arr.dtype == np.uint16:
        if depth16 == "scale":
            arr = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        elif depth16 == "shift":
            arr = (arr >> 8).astype(np.uint8)
        else:
            raise ImageError(
                f"{name}: 16-bit image; srprep works on 8-bit images: pass depth16='scale' "
                "(round(v*255/65535)) or depth16='shift' (v >> 8) to convert it"
            )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        a = arr[:, :, -1]
        color = arr[:, :, :-1]
        if a.min() == 255:
            log.debug("%s: fully opaque alpha channel dropped", name)
        elif alpha == "drop":
            pass
        elif alpha == "flatten":
            bg = _background_rgb(background)
            if color.shape[2] == 1:
                color = np.repeat(color, 3, axis=2)
            a32 = a.astype(np.uint32)[:, :, None]
            # Exact round(c*a/255 + bg*(1-a/255)): the numerator/255 never has a .5 fraction (255 is odd).
            mixed = (color.astype(np.uint32) * a32 + bg * (255 - a32) + 127) // 255
            return np.ascontiguousarray(mixed.astype(np.uint8))
        else:
            raise ImageError(
                f"{name}: image has an alpha channel with transparent pixels; pass alpha='flatten' "
                "(composite over a background, white by default) or alpha='drop' (ignore alpha) to read it"
            )
        arr = color[:, :, 0] if color.shape[2] == 1 else color
    if arr.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(arr)


_PNG_IEND = b"IEND\xaeB`\x82"  # chunk type + its (constant) CRC: the last 8 bytes of a complete PNG


def _png_complete(mv: memoryview) -> bool:
    # Look at the tail first so that a normal file costs no full scan (data after IEND is tolerated).
    return _PNG_IEND in bytes(mv[-4096:]) or _PNG_IEND in bytes(mv)


def _png_bad_chunk(mv: memoryview) -> str | None:
    """The first chunk of a PNG whose CRC-32 does not match its content (or that runs past the end), else None.

    libpng, as cv2 builds it, decodes damaged image data anyway and prints its complaint on stderr before
    failing; checking the CRCs first (about 1 % of a decode) lets srprep refuse such a file in one line."""
    pos, n = 8, mv.nbytes
    while pos + 12 <= n:
        length = int.from_bytes(mv[pos:pos + 4], "big")
        end = pos + 12 + length
        kind = bytes(mv[pos + 4:pos + 8])
        if end > n:
            return kind.decode("latin-1")
        if zlib.crc32(mv[pos + 4:end - 4]) != int.from_bytes(mv[end - 4:end], "big"):
            return kind.decode("latin-1")
        if kind == b"IEND":
            return None
        pos = end
    return None


def _decode(data, name: str, alpha: str, depth16: str, background: Background,
            check_crc: bool = False) -> np.ndarray:
    _check_policies(alpha, depth16)
    if alpha == "flatten":
        _background_rgb(background)  # a bad value is reported even for images without alpha
    mv = memoryview(data).cast("B")
    if mv.nbytes == 0:
        raise ImageError(f"{name}: empty file")
    fmt = _sniff(bytes(mv[:8]))
    if fmt is None:
        raise ImageError(f"{name}: not a PNG, JPEG, BMP or TIFF file (unrecognised header)")
    ext_fmt = _EXT_FORMAT.get(os.path.splitext(name)[1].lower())
    if ext_fmt is not None and ext_fmt != fmt:
        log.warning("%s: content is %s despite the file name; decoding it as %s", name, fmt, fmt)

    if fmt == "JPEG" and not _jpeg_complete(mv):
        # cv2 >= 5 refuses such a file, but cv2 4.x returns it padded with grey after a libjpeg warning.
        raise ImageError(f"{name}: truncated or corrupt JPEG (no end-of-image marker)")
    if fmt == "PNG" and not _png_complete(mv):
        # A PNG without its IEND chunk was not completely written, even when every row is present; cv2 5
        # checks this too, but srprep does not rely on one cv2 version for it.
        raise ImageError(f"{name}: truncated or corrupt PNG (no IEND chunk)")
    if fmt == "PNG" and check_crc and (bad := _png_bad_chunk(mv)) is not None:
        raise ImageError(f"{name}: corrupt PNG (chunk {bad} does not match its CRC)")
    arr = None
    if fmt == "TIFF" and not ImageFile.LOAD_TRUNCATED_IMAGES:
        # Pillow loads a one-strip 8-bit TIFF (the layout Pillow, and so srprep, writes) several times
        # faster than cv2, and it keeps the alpha of grey+alpha files, which cv2 drops. Skipped when other
        # code has switched on Pillow's process-wide flag that makes it accept truncated files.
        arr = _decode_tiff_pil(data if isinstance(data, bytes) else bytes(mv), name)
    if fmt == "PNG":
        try:
            arr = png.decode_fast(data, mv)
        except ValueError as e:
            raise ImageError(f"{name}: corrupt PNG ({e})") from None
    if arr is None:
        arr = _decode_cv2(np.frombuffer(mv, dtype=np.uint8), fmt, name)
    return _to_rgb8(arr, name, alpha, depth16, background)


# --------------------------------------------------------------------------------------------- orientation

#: What to do with a photo's EXIF orientation tag: "ignore" (pixels as stored) or "apply" (upright).
EXIF_ORIENTATION = ("ignore", "apply")


def read_exif_orientation(path: PathLike) -> int:
    """The EXIF orientation tag (1..8) of an image file, read from its header; 1 when it has none."""
    try:
        with Image.open(path) as im:
            value = im.getexif().get(0x0112, 1)
    except _PIL_DECODE_ERRORS:
        return 1
    return int(value) if value in range(1, 9) else 1


def _upright(arr: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels as a viewer shows them under an EXIF orientation (1..8)."""
    if orientation in (5, 6, 7, 8):
        arr = arr.transpose(1, 0, *range(2, arr.ndim))
        orientation = {5: 1, 6: 2, 7: 3, 8: 4}[orientation]  # then as the un-transposed cases
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    return np.ascontiguousarray(arr)


def _check_orientation(exif: str) -> None:
    if exif not in EXIF_ORIENTATION:
        raise ValueError(f"exif_orientation must be 'ignore' or 'apply', not {exif!r}")


# --------------------------------------------------------------------------------------------- reading


def read_image(
    path: PathLike,
    *,
    alpha: AlphaPolicy = "error",
    depth16: Depth16Policy = "error",
    background: Background = (255, 255, 255),
    exif_orientation: str = "ignore",
) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` ``uint8`` RGB array (values 0..255, C-contiguous, writable).

    The extension must be one of :data:`IMAGE_EXTENSIONS`; the content (magic bytes) decides the decoder,
    so a JPEG saved as ``.png`` is still read (with a logged warning). Grey images (1-bit to 16-bit, or
    grey+alpha) come back with three identical channels.

    Args:
        path: the image file.
        alpha: what to do with an alpha channel that has transparent pixels (a fully opaque alpha channel is
            always dropped silently). ``"error"`` (default) raises :class:`ImageError`; ``"flatten"``
            composites over ``background``: ``out = round((c*a + bg*(255-a)) / 255)``, computed exactly in
            integers; ``"drop"`` ignores the alpha channel and keeps the colour values as stored.
        depth16: what to do with a 16-bit image. ``"error"`` (default) raises :class:`ImageError`;
            ``"scale"`` maps 0..65535 to 0..255 with ``round(v*255/65535)`` (exactly
            ``(v*255 + 32767) // 65535``), the conversion that keeps 65535 -> 255 and minimises the error;
            ``"shift"`` keeps the high byte ``v >> 8`` (what many tools, Pillow included, do).
            Depth conversion is applied before the alpha policy.
        background: the ``"flatten"`` background, an int (grey level) or an ``(R, G, B)`` triple in 0..255.
            White is the default: the usual convention when SR data is prepared from PNGs with
            transparency, and what such an image looks like on a white page.
        exif_orientation: ``"ignore"`` (default: the pixels as stored) or ``"apply"`` (rotated/flipped as
            the file's EXIF orientation tag says, as photo viewers show it).

    Raises:
        ImageError: missing, empty, truncated or corrupt file, unknown extension, not an image, float or
            other unsupported samples, or an alpha channel / 16-bit depth refused by the policies.
            The message starts with the path.

    Example:
        >>> img = read_image("srprep/samples/set5/baby.png")
        >>> img.shape, img.dtype
        ((512, 512, 3), dtype('uint8'))
    """
    path = Path(path)
    _ext_format(path)
    _check_orientation(exif_orientation)
    img = _decode(_read_bytes(path), str(path), alpha, depth16, background, check_crc=True)
    if exif_orientation == "apply":
        img = _upright(img, read_exif_orientation(path))
    return img


def decode_image(
    data: bytes | bytearray | memoryview,
    name: str,
    *,
    alpha: AlphaPolicy = "error",
    depth16: Depth16Policy = "error",
    background: Background = (255, 255, 255),
) -> np.ndarray:
    """Decode an encoded image held in memory (e.g. an LMDB record) like :func:`read_image`.

    Args:
        data: the file's bytes (any bytes-like object; it is not modified).
        name: how to call the item in error messages (a key or file name). Its extension, if any, is not
            required to match the content; a mismatch is only logged.
        alpha, depth16, background: as in :func:`read_image`.

    Returns:
        ``(H, W, 3)`` ``uint8`` RGB array.

    Raises:
        ImageError: as in :func:`read_image`, naming ``name``.

    Example:
        >>> decode_image(encode_image(np.zeros((2, 3, 3), np.uint8)), "k0001").shape
        (2, 3, 3)
    """
    return _decode(data, name, alpha, depth16, background)


def image_size(path: PathLike) -> tuple[int, int]:
    """``(H, W)`` of an image file, read from its header only (the pixels are not decoded).

    Cheap even for very large files, and it works on a file whose pixel data is truncated. The size is the
    stored one (EXIF orientation is not applied), i.e. the shape :func:`read_image` returns.

    Raises:
        ImageError: missing file, unknown extension, or a header that is not PNG/JPEG/BMP/TIFF.

    Example:
        >>> image_size("srprep/samples/set5/woman.png")
        (344, 228)
    """
    w, h = _header(path)[0]
    return int(h), int(w)


def is_grey_file(path: PathLike) -> bool:
    """Whether an image file stores one colour channel (grey, with or without alpha, any bit depth), from its
    header only. :func:`read_image` returns such images as three equal channels; this tells them apart from
    colour files (an RGB file whose channels happen to be equal is not grey here).

    Raises:
        ImageError: as :func:`image_size`.
    """
    return _header(path)[1] in ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")


def _header(path: PathLike) -> tuple[tuple[int, int], str]:
    """``((width, height), PIL mode)`` from an image file's header (the pixels are not decoded)."""
    path = Path(path)
    _ext_format(path)
    try:
        with open(path, "rb") as f:
            fmt = _sniff(f.read(8))
            if fmt is None:
                raise ImageError(f"{path}: not a PNG, JPEG, BMP or TIFF file (unrecognised header)")
            f.seek(0)
            with Image.open(f, formats=[fmt]) as im:
                return im.size, im.mode
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image file") from None
    except _PIL_DECODE_ERRORS as e:
        raise ImageError(f"{path}: cannot read the image header ({e})") from e


# --------------------------------------------------------------------------------------------- writing


def _check_image_array(img: np.ndarray) -> None:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"image must be a numpy array, not {type(img).__name__}")
    if img.dtype != np.uint8:
        raise TypeError(f"image must be uint8, not {img.dtype} (shape {img.shape}); convert/round it first")
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ValueError(f"image must have shape (H, W, 3) or (H, W), not {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"image must not be empty, got shape {img.shape}")


def _normalise_ext(ext: str) -> tuple[str, str]:
    e = ext.lower() if ext.startswith(".") else "." + ext.lower()
    fmt = _EXT_FORMAT.get(e)
    if fmt is None:
        raise ImageError(f"unsupported image extension {ext!r}; expected one of {', '.join(IMAGE_EXTENSIONS)}")
    return e, fmt


def _encode(img: np.ndarray, fmt: str, png_level: int, jpeg_quality: int) -> np.ndarray | bytes:
    """Encoded file as a bytes-like object (cv2's own buffer is passed on to avoid a copy)."""
    _check_image_array(img)
    if isinstance(png_level, bool) or not isinstance(png_level, (int, np.integer)) or not 0 <= png_level <= 9:
        raise ValueError(f"png_level must be an int in 0..9, not {png_level!r}")
    if (
        isinstance(jpeg_quality, bool)
        or not isinstance(jpeg_quality, (int, np.integer))
        or not 1 <= jpeg_quality <= 100
    ):
        raise ValueError(f"jpeg_quality must be an int in 1..100, not {jpeg_quality!r}")
    src = np.ascontiguousarray(img)
    if fmt == "TIFF":
        # Pillow: faster than cv2 for large images, and it writes one strip, which every TIFF reader
        # loads quickly (cv2 writes one strip per row). Uncompressed, like BMP: PNG is the compact format.
        out = io.BytesIO()
        Image.fromarray(src).save(out, "TIFF")
        return out.getvalue()
    if fmt == "PNG" and png_level == png.FAST_LEVEL:
        return png.encode_fast(src)
    bgr = src if src.ndim == 2 else cv2.cvtColor(src, cv2.COLOR_RGB2BGR)
    if fmt == "PNG":
        # Setting the level also selects zlib's default strategy (cv2 otherwise uses Z_RLE).
        params = [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)]
        ext = ".png"
    elif fmt == "JPEG":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
        ext = ".jpg"
    else:
        params, ext = [], ".bmp"
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:
        raise ImageError(f"cannot encode a {img.shape} image as {fmt}")
    return buf


def encode_image(img: np.ndarray, ext: str = ".png", *, png_level: int = 1, jpeg_quality: int = 95) -> bytes:
    """Encode an image to the bytes of a PNG/JPEG/BMP/TIFF file (for LMDB records or :func:`write_image`).

    Args:
        img: ``(H, W, 3)`` RGB or ``(H, W)`` grey, ``uint8``. Grey is stored as a 1-channel file.
        ext: the format, as a file extension (``".png"``, ``"jpg"``, ...; case-insensitive).
        png_level: 0..9. The default 1 is srprep's fast encoder (Up filter, libdeflate: several times
            faster than zlib, files of about the same size; :mod:`srprep.io.png`); 0 stores without
            compression; 2..9 are libpng's adaptive filters with that zlib level (smaller, slower: for
            archives). Pixels are the same at every level.
        jpeg_quality: 1..100, 4:2:0 chroma subsampling, baseline, standard Huffman tables.

    Returns:
        The encoded file.

    Raises:
        TypeError: ``img`` is not a uint8 numpy array (e.g. float).
        ValueError: bad shape or option value.
        ImageError: unsupported extension.

    Example:
        >>> encode_image(np.zeros((4, 4, 3), np.uint8))[:4]
        b'\\x89PNG'
    """
    _, fmt = _normalise_ext(ext)
    buf = _encode(img, fmt, png_level, jpeg_quality)
    return buf if isinstance(buf, bytes) else buf.tobytes()


def _atomic_write(path: Path, write: Callable[[io.BufferedWriter], None], durable: bool) -> None:
    """Write through ``write(f)`` into a temporary sibling file, then rename it over ``path``.

    The temporary name starts with "." and ends with ".tmp" so that directory scans for images never
    pick it up. It is created with os.open(..., 0o666) rather than mkstemp so that the final file gets the
    usual umask-derived permissions instead of mkstemp's 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name[:200]}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_or_raise(path: Path, write: Callable[[io.BufferedWriter], None], durable: bool) -> None:
    try:
        _atomic_write(path, write, durable)
    except OSError as e:
        raise ImageError(f"{path}: cannot write ({e.strerror or e})") from e


def write_image(
    path: PathLike,
    img: np.ndarray,
    *,
    png_level: int = 1,
    jpeg_quality: int = 95,
    durable: bool = True,
) -> None:
    """Write an image file atomically; the format comes from the extension.

    The image is encoded first (nothing touches the disk if that fails), written to a temporary file in
    the same directory, flushed (and fsync-ed when ``durable``), then renamed over ``path`` with
    ``os.replace``. A killed process therefore leaves either the old file or the complete new one under
    ``path``, never a partial file. Parent directories are created.

    Args:
        path: destination; its extension (one of :data:`IMAGE_EXTENSIONS`) selects the format.
        img: ``(H, W, 3)`` RGB or ``(H, W)`` grey, ``uint8``.
        png_level, jpeg_quality: as in :func:`encode_image`.
        durable: fsync the file before the rename, so that the new content also survives a power loss.
            The directory entry itself is not fsync-ed (that would cost a second sync per file).

    Raises:
        TypeError, ValueError: bad array or option (as in :func:`encode_image`).
        ImageError: unsupported extension, or the file cannot be written (permissions, disk full...).

    Example:
        >>> write_image("out/x.png", np.zeros((8, 8, 3), np.uint8))
    """
    path = Path(path)
    fmt = _ext_format(path)
    buf = _encode(img, fmt, png_level, jpeg_quality)
    _write_or_raise(path, lambda f: f.write(memoryview(buf)), durable)


# --------------------------------------------------------------------------------------------- arrays

_NPY_MAGIC = b"\x93NUMPY"
# Float fields hold [0, 1] data: float32, or float16 where half the size matters more than the last bits
# (srprep centroids --store-dtype float16). Other dtypes (float64, integers) are refused, not converted.
_ARRAY_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))


def read_array(path: PathLike) -> np.ndarray:
    """Read a float32 or float16 array saved by :func:`write_array` (a plain ``.npy`` file, no pickles).

    Returns:
        The array as stored: dtype ``float32`` or ``float16`` (e.g. ``srprep centroids --store-dtype
        float16``), any shape.

    Raises:
        ImageError: missing, empty, truncated or corrupt file, not a ``.npy`` file, or a dtype other than
            float32 and float16. The message starts with the path.

    Example:
        >>> write_array("w.npy", np.ones((2, 2), np.float32))
        >>> read_array("w.npy").shape
        (2, 2)
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(len(_NPY_MAGIC))
            if not head:
                raise ImageError(f"{path}: empty file")
            if head != _NPY_MAGIC:
                raise ImageError(f"{path}: not a .npy file (unrecognised header)")
            f.seek(0)
            arr = np.load(f, allow_pickle=False)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not a .npy file") from None
    except (ValueError, EOFError, OSError) as e:
        raise ImageError(f"{path}: truncated or corrupt .npy file ({e})") from e
    if arr.dtype not in _ARRAY_DTYPES:
        raise ImageError(f"{path}: array is {arr.dtype}, expected float32 or float16")
    return arr


def write_array(path: PathLike, arr: np.ndarray, *, durable: bool = True) -> None:
    """Write a float32 or float16 array as a ``.npy`` file, atomically (same guarantees as :func:`write_image`).

    Args:
        path: destination (conventionally ``*.npy``; the name is used as given).
        arr: ``float32`` or ``float16`` numpy array of any shape; stored in its dtype.
        durable: fsync before the rename (see :func:`write_image`).

    Raises:
        TypeError: ``arr`` is not a float32 or float16 numpy array.
        ImageError: the file cannot be written.

    Example:
        >>> write_array("out/centroids.npy", np.zeros((16, 8), np.float32))
    """
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"arr must be a numpy array, not {type(arr).__name__}")
    if arr.dtype not in _ARRAY_DTYPES:
        raise TypeError(f"arr must be float32 or float16, not {arr.dtype} (shape {arr.shape}); "
                        f"use arr.astype(np.float32)")
    _write_or_raise(Path(path), lambda f: np.save(f, arr, allow_pickle=False), durable)
