"""Benchmark evaluation of SR networks: PSNR/SSIM per image on (LR, HR) pairs. Pure functions, no CLI.

Protocol (EDSR / RCAN / BasicSR papers): the SR output is quantised to uint8, then PSNR and SSIM are measured
on the Y channel after cropping ``scale`` pixels from each border (see :mod:`srprep.ops.metrics`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
from PIL import Image

from srprep.errors import SrprepError
from srprep.ops.metrics import psnr, ssim

if TYPE_CHECKING:  # torch is imported when a network runs, not by the command line's start-up
    import torch

    from srprep.infer import ModelLike

Pair = tuple[str, np.ndarray, np.ndarray]  # (name, LR uint8 (h, w, 3), HR uint8 (h*s, w*s, 3))
_IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp", ".ppm")


def evaluate_pairs(
    model: ModelLike,
    pairs: Iterable[Pair],
    *,
    scale: int,
    y_only: bool = True,
    border: Optional[int] = None,
    tile: Optional[int] = None,
    overlap: int = 32,
    self_ensemble: bool = False,
    crop_ensemble: Optional[Sequence[tuple[int, int]]] = None,
    precision: str = "fp32",
    device: Union[str, torch.device, None] = None,
) -> list[dict]:
    """Super-resolve each LR image and score it against its HR image.

    Args:
        model: network (or list of networks, averaged) mapping [0, 1] NCHW to x``scale``.
        pairs: iterable of ``(name, lr, hr)``, both uint8 RGB; ``hr`` must already be ``lr`` size x ``scale``
            (crop the HR first, as :func:`benchmark_pairs` does).
        scale: upscaling factor.
        y_only: measure on the BT.601 Y channel (the usual protocol) instead of RGB.
        border: pixels cropped from each side before measuring (default: ``scale``).
        tile, overlap, self_ensemble, crop_ensemble, precision, device: passed to :func:`srprep.infer.upscale`.

    Returns:
        One ``{"name", "psnr", "ssim"}`` dict per pair (floats, dB for PSNR), in input order.
    """
    from srprep.infer import upscale

    border = scale if border is None else border
    results = []
    for name, lr, hr in pairs:
        expected = (lr.shape[0] * scale, lr.shape[1] * scale)
        if tuple(hr.shape[:2]) != expected:
            raise SrprepError(f"{name}: HR is {hr.shape[1]}x{hr.shape[0]}, expected LR size x{scale} = "
                              f"{expected[1]}x{expected[0]} (crop the HR to the LR size times the scale)")
        sr = upscale(model, lr, scale=scale, tile=tile, overlap=overlap, self_ensemble=self_ensemble,
                     crop_ensemble=crop_ensemble, precision=precision, device=device, output="uint8")
        results.append({
            "name": name,
            "psnr": psnr(sr, hr, border=border, y_only=y_only),
            "ssim": ssim(sr, hr, border=border, y_only=y_only),
        })
    return results


def summarize(results: Sequence[dict]) -> dict:
    """Mean PSNR and SSIM over per-image results (``{"count", "psnr", "ssim"}``; NaN when empty)."""
    if not results:
        return {"count": 0, "psnr": math.nan, "ssim": math.nan}
    return {
        "count": len(results),
        "psnr": float(np.mean([r["psnr"] for r in results])),
        "ssim": float(np.mean([r["ssim"] for r in results])),
    }


def _read_rgb(path: Path) -> np.ndarray:
    """8-bit image file -> (H, W, 3) uint8 RGB (gray/palette expanded, alpha dropped)."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr"):
                raise SrprepError(f"{path}: {im.mode} images (16-bit or float) are not supported")
            return np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise SrprepError(f"{path}: cannot read image: {exc}") from exc


def benchmark_pairs(hr_dir: Union[str, Path], lr_dir: Union[str, Path], scale: int) -> Iterator[Pair]:
    """Yield ``(name, lr, hr)`` for the EDSR "benchmark" layout.

    ``hr_dir/<name>.png`` is the uncropped HR and ``lr_dir/<name>x<scale>.png`` its LR (e.g.
    ``benchmark/Set5/HR`` and ``benchmark/Set5/LR_bicubic/X2``); a plain ``lr_dir/<name>.png`` is accepted
    too. The HR is cropped at the bottom/right to the LR size times ``scale`` (the modcrop the LR was made
    from). Names are yielded sorted. Raises :class:`SrprepError` for a missing LR or an LR too big for its HR.
    """
    hr_dir, lr_dir = Path(hr_dir), Path(lr_dir)
    if not hr_dir.is_dir() or not lr_dir.is_dir():
        raise SrprepError(f"benchmark folders not found: {hr_dir} / {lr_dir}")
    hr_paths = sorted(p for p in hr_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not hr_paths:
        raise SrprepError(f"{hr_dir}: no images")
    for hr_path in hr_paths:
        name = hr_path.stem
        candidates = [lr_dir / f"{name}x{scale}{hr_path.suffix}", lr_dir / f"{name}x{scale}.png",
                      lr_dir / f"{name}{hr_path.suffix}"]
        lr_path = next((p for p in candidates if p.is_file()), None)
        if lr_path is None:
            raise SrprepError(f"{hr_path}: no LR image {candidates[0].name} in {lr_dir}")
        lr = _read_rgb(lr_path)
        hr = _read_rgb(hr_path)
        h, w = lr.shape[0] * scale, lr.shape[1] * scale
        if h > hr.shape[0] or w > hr.shape[1]:
            raise SrprepError(f"{lr_path}: LR {lr.shape[1]}x{lr.shape[0]} times {scale} exceeds HR "
                              f"{hr.shape[1]}x{hr.shape[0]}")
        yield name, lr, np.ascontiguousarray(hr[:h, :w])
