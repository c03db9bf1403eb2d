"""JPEG compression artefacts from a real encoder (libjpeg-turbo through OpenCV or PIL).

Fixed test sets must contain what a real JPEG file would: :func:`jpeg_roundtrip` encodes at integer
quality ``q`` and decodes again, and its output equals, byte for byte, decoding the file that
``cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, q])`` (backend ``"cv2"``, the default, as
Real-ESRGAN's CPU code) or ``PIL.Image.save(..., "JPEG", quality=q)`` (backend ``"pil"``) writes. Both
use their encoder's defaults otherwise (4:2:0 chroma subsampling, baseline, standard tables). Images are
RGB; OpenCV's BGR order is handled here.

For training batches, :func:`jpeg_torch` runs the same encoder per sample on the CPU and moves the
result back to the batch's device. A differentiable re-implementation (kornia 0.9's
``jpeg_codec_differentiable``; Real-ESRGAN's ``DiffJPEG`` is the same idea) was measured against it and
not adopted: it models the codec in floating point (float DCT, its own rounding and chroma resampling),
so on 256x256 photo crops at qualities 30..95 its output differs from the real decoder's by 1.4 levels
on average and up to ~30 levels (PSNR 42 dB between the two), i.e. it trains on artefacts no JPEG file
contains; and on the CPU it ran 11x slower than libjpeg-turbo (63 vs 678 images/s, one thread). It
may well be faster on a GPU, where the round trip here costs a device-host copy; that was not measured.
Real-ESRGAN trains with BasicSR's ``DiffJPEG(differentiable=False)``, which is further still from the real
codec: 34.8 dB PSNR from it on the same crops (30.7-44.3 dB per crop, up to 72 levels), so srprep's training
LR differs from upstream's by about that much in its JPEG steps, and is what a real JPEG file holds.
Numbers: ``benchmarks/bench_degrade.py --jpeg`` and benchmarks/RESULTS.md.

>>> import numpy as np
>>> img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
>>> jpeg_roundtrip(img, 50).shape
(16, 16, 3)
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

if TYPE_CHECKING:  # torch is imported by jpeg_torch only (the numpy path runs without it)
    import torch

JPEG_BACKENDS = ("cv2", "pil")


def _check_quality(quality) -> int:
    q = int(quality)
    if q != quality or not 1 <= q <= 100:
        raise ValueError(f"JPEG quality must be an integer in 1..100, got {quality}")
    return q


def to_uint8(img: np.ndarray) -> np.ndarray:
    """uint8 unchanged; float in [0, 1] rounded to nearest and clipped to 0..255."""
    if img.dtype == np.uint8:
        return img
    return np.clip(np.rint(np.asarray(img, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def jpeg_encode(img: np.ndarray, quality: int, backend: str = "cv2") -> bytes:
    """Encode an RGB (H, W, 3) or gray (H, W) image as a JPEG file's bytes at ``quality`` (1..100).

    Float input is taken as [0, 1] and rounded to 8 bits first.
    """
    q = _check_quality(quality)
    img = to_uint8(np.asarray(img))
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if backend == "cv2":
        src = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img
        ok, buf = cv2.imencode(".jpg", src, [int(cv2.IMWRITE_JPEG_QUALITY), q])
        if not ok:
            raise ValueError("OpenCV could not encode the image as JPEG")
        return buf.tobytes()
    if backend == "pil":
        from PIL import Image

        out = io.BytesIO()
        Image.fromarray(img).save(out, format="JPEG", quality=q)
        return out.getvalue()
    raise ValueError(f"unknown JPEG backend {backend!r}; choose one of {JPEG_BACKENDS}")


def jpeg_decode(data: bytes, backend: str = "cv2", gray: bool = False) -> np.ndarray:
    """Decode JPEG bytes to uint8 RGB (H, W, 3), or (H, W) when ``gray``."""
    if backend == "cv2":
        flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        if img is None:
            raise ValueError("OpenCV could not decode the JPEG data")
        return img if gray else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if backend == "pil":
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("L" if gray else "RGB"))
    raise ValueError(f"unknown JPEG backend {backend!r}; choose one of {JPEG_BACKENDS}")


def jpeg_roundtrip(img: np.ndarray, quality: int, backend: str = "cv2") -> np.ndarray:
    """Compress and decompress one image with a real JPEG encoder at integer ``quality``.

    ``img``: uint8 or float [0, 1], RGB (H, W, 3) or gray (H, W) / (H, W, 1). Returns the same shape;
    uint8 for uint8 input, else float32 in [0, 1] (values k/255).
    """
    arr = np.asarray(img)
    gray = arr.ndim == 2 or arr.shape[2] == 1
    out = jpeg_decode(jpeg_encode(arr, quality, backend), backend, gray=gray).reshape(arr.shape)
    return out if arr.dtype == np.uint8 else out.astype(np.float32) / np.float32(255.0)


def jpeg_torch(x: torch.Tensor, quality: Sequence[int] | torch.Tensor | int, backend: str = "cv2") -> torch.Tensor:
    """Per-sample real-encoder JPEG for a (B, C, H, W) float batch in [0, 1] (C = 1 or 3).

    Each sample is clipped, rounded to 8 bits, moved to the CPU, encoded at its own integer ``quality``
    and decoded; the result (float, values k/255) goes back to ``x``'s device and dtype. Sample ``i``
    equals ``jpeg_roundtrip`` of the same 8-bit image exactly.
    """
    import torch

    b, c, h, w = x.shape
    q = torch.as_tensor(quality).reshape(-1).tolist()
    if len(q) == 1:
        q = q * b
    if len(q) != b:
        raise ValueError(f"need 1 or {b} qualities, got {len(q)}")
    u8 = torch.clamp(torch.round(x.detach() * 255.0), 0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = np.stack([jpeg_roundtrip(u8[i], q[i], backend) for i in range(b)])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype) / 255.0
