"""Benchmark evaluation of SR networks: PSNR/SSIM per image on (LR, HR) pairs. Pure functions, no CLI.

Protocols (:data:`PROTOCOLS`), each the way a published set of numbers was measured:

==========  =====================================================  =============================  ============
name        SR image measured                                      Y                              border
==========  =====================================================  =============================  ============
``edsr``    network output rounded to 8 bits (EDSR, RCAN, BasicSR  MATLAB BT.601 of the 8-bit      ``scale``
            and most papers)                                       images, float64
``carn``    output truncated to 8 bits (``x*255``, clamp,          as ``edsr``                     ``scale``
            ``.byte()``), as CARN-pytorch's ``sample.py`` saved it
``fsrcnn``  the network's Y before any rounding, clamped to        FSRCNN-pytorch's formula        none
            [0, 1]; LR made from the HR with plain Pillow's        (:func:`~srprep.ops.color.
            bicubic (FSRCNN-pytorch ``test.py``, ``prepare.py``)   rgb_to_ycbcr_fsrcnn`), float32
==========  =====================================================  =============================  ============

Every protocol also gives the RGB PSNR/SSIM of the 8-bit SR image (rounded; truncated for ``carn``).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
from PIL import Image

from srprep.errors import SrprepError
from srprep.ops.color import rgb_to_ycbcr_fsrcnn
from srprep.ops.imresize import to_uint8
from srprep.ops.metrics import psnr, psnr_planes, ssim, ssim_planes

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


# --- protocols --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Protocol:
    """How one published set of numbers was measured (see the module table).

    quantize: "round" | "truncate" (the 8-bit SR image) | "none" (the network's float Y is measured).
    luma: "bt601" (MATLAB rgb2ycbcr, :mod:`srprep.ops.metrics`) | "fsrcnn" (their formula, float).
    border: "scale" (crop ``scale`` pixels) | "none". lr: "dataset" (the LR files, or MATLAB bicubic made from
    the HR) | "pil" (Pillow bicubic of the HR, :func:`pil_lr`).
    """

    name: str
    description: str
    quantize: str
    luma: str
    border: str
    lr: str


PROTOCOLS = {
    "edsr": Protocol("edsr", "8-bit SR (rounded), MATLAB BT.601 Y, border = scale (EDSR, RCAN, BasicSR)",
                     "round", "bt601", "scale", "dataset"),
    "carn": Protocol("carn", "8-bit SR truncated as CARN-pytorch's sample.py saves it, BT.601 Y, border = scale",
                     "truncate", "bt601", "scale", "dataset"),
    "fsrcnn": Protocol("fsrcnn", "FSRCNN-pytorch: Pillow-bicubic LR, the network's unrounded Y with their Y "
                       "formula, whole image", "none", "fsrcnn", "none", "pil"),
}


def pil_lr(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lr, hr_used)`` as FSRCNN-/SRCNN-pytorch make them: the HR resized with Pillow's bicubic to the
    nearest multiple of ``scale`` below (not cropped; no change when it already is one), then to 1/``scale``.
    Both uint8 (H, W, 3)."""
    from srprep.models.ychannel import pil_bicubic

    h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
    if (h, w) != hr.shape[:2]:
        hr = pil_bicubic(hr, (h, w))
    return pil_bicubic(hr, (h // scale, w // scale)), hr


@functools.cache
def _luma_output():
    """The module class that shows a Y-channel network through its :meth:`luma` (N, 1, H*s, W*s) output, for
    tiling and ensembles (made on first use: torch is imported only when a network runs)."""
    import torch

    class LumaOutput(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net
            self.scale = getattr(net, "scale", None)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net.luma(x)

    return LumaOutput


def _fsrcnn_y(rgb255: np.ndarray) -> np.ndarray:
    """Their Y of (H, W, 3) float32 RGB in [0, 255], in float32 like their code, returned as float64."""
    rgb = rgb255.astype(np.float32)
    return rgb_to_ycbcr_fsrcnn(rgb[..., 0], rgb[..., 1], rgb[..., 2])[0].astype(np.float64)


def quantize(sr: np.ndarray, how: str) -> np.ndarray:
    """float32 (H, W, 3) in [0, 1] -> uint8: ``round`` (half away from zero, as :func:`srprep.infer.upscale`)
    or ``truncate`` (``x * 255`` in float32, clamped, cut toward zero like ``torch``'s ``.byte()``)."""
    if how == "truncate":
        return np.clip(sr.astype(np.float32) * np.float32(255.0), 0, 255).astype(np.uint8)
    return to_uint8(sr.astype(np.float64))


def score_image(model: ModelLike, lr: np.ndarray, hr: np.ndarray, *, scale: int, protocol: Protocol,
                border: Optional[int] = None, **infer_kwargs) -> tuple[dict, np.ndarray]:
    """Super-resolve ``lr`` and measure it against ``hr`` the way ``protocol`` says.

    Args:
        model: a network (or list of networks) mapping RGB [0, 1] NCHW to x``scale``; a Y-channel network
            (one with a ``luma`` method) has its Y measured directly under the ``fsrcnn`` protocol.
        lr, hr: uint8 (h, w, 3) and (h*s, w*s, 3).
        border: pixels cropped from each side (default: the protocol's).
        infer_kwargs: tile, overlap, self_ensemble, crop_ensemble, precision, device (see
            :func:`srprep.infer.upscale`).

    Returns:
        ``({"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"}, sr)``: float scores and the 8-bit SR image.
    """
    import torch

    from srprep.infer import upscale, upscale_tensor

    expected = (lr.shape[0] * scale, lr.shape[1] * scale)
    if tuple(hr.shape[:2]) != expected:
        raise SrprepError(f"HR is {hr.shape[1]}x{hr.shape[0]}, expected LR size x{scale} = {expected[1]}x{expected[0]}")
    if border is None:
        border = scale if protocol.border == "scale" else 0
    sr_float = upscale(model, lr, scale=scale, output="float", **infer_kwargs)
    sr = quantize(sr_float, "truncate" if protocol.quantize == "truncate" else "round")
    scores = {"psnr_rgb": psnr(sr, hr, border=border, y_only=False),
              "ssim_rgb": ssim(sr, hr, border=border, y_only=False)}
    if protocol.luma == "bt601":
        scores.update(psnr_y=psnr(sr, hr, border=border), ssim_y=ssim(sr, hr, border=border))
    else:
        nets = [model] if isinstance(model, torch.nn.Module) else list(model)
        if all(hasattr(n, "luma") for n in nets):
            x = torch.from_numpy(lr.astype(np.float32) / np.float32(255.0)).permute(2, 0, 1)[None]
            y = upscale_tensor([_luma_output()(n) for n in nets], x, scale=scale, **infer_kwargs)[0, 0].numpy()
            y_sr = y.astype(np.float32).astype(np.float64) * 255.0
        else:
            y_sr = _fsrcnn_y(np.clip(sr_float, 0, 1) * np.float32(255.0))
        y_hr = _fsrcnn_y(hr.astype(np.float32))
        scores.update(psnr_y=psnr_planes(y_sr, y_hr, border=border), ssim_y=ssim_planes(y_sr, y_hr, border=border))
    return {k: scores[k] for k in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")}, sr
