"""Running SR networks on images: tiling, self-/crop-/model-ensembles, reduced precision, batching.

Images are numpy (H, W, 3) RGB, uint8 (or float in [0, 1]); networks take float NCHW in [0, 1]
(see :mod:`srprep.models`). Results are float32 (H*s, W*s, 3) in [0, 1], clamped but *not* rounded,
or uint8 (``output="uint8"``: ``round(255 * y)`` half away from zero, the quantisation PSNR/SSIM are reported on).

Tiling: the LR image is cut into ``tile`` x ``tile`` windows that overlap by ``overlap`` pixels; from each
window's output only the centre part is kept, the seams lying in the middle of each overlap. Every output
pixel is therefore computed with at least ``overlap // 2`` LR pixels of real context on each side, so for a
network whose receptive-field radius is at most ``overlap // 2`` (e.g. EDSR/MSRResNet with few blocks) tiled
and whole-image results agree to float rounding. Networks with global pooling (IMDN, RCAN channel attention)
are only approximately tile-invariant. Only one window is on the device at a time; the full output is
assembled on the CPU.

Crop ensemble (AIM 2020 Real-SR, HolmesShuan's ``src/model/__init__.py``; its ``--chop-size 600 300
--shave-size 100 100``): a list of ``(chop_size, shave)`` entries; entry ``i`` rotates the LR image by
``i * 90`` degrees, runs it through EDSR-PyTorch's quadrant chop (:func:`chop_forward` with ``shave`` and
``min_size = chop_size ** 2``) and rotates the result back; the entries' outputs are averaged. The chop
always cuts the image into four quadrants that overlap by ``2 * shave`` LR pixels and keeps each one's own
quarter of the output (no blending); a quadrant is chopped again while the image has at least
``4 * min_size`` pixels. EDSR-PyTorch's ``--chop`` is the one entry ``(400, 10)`` (:data:`EDSR_CHOP`: shave 10,
min_size 160000). With the x8 self-ensemble, AIM averages the eight transforms of each entry without the
entry's rotation; the self-ensemble here averages the rotated entries under all eight transforms, which is the
same average (the rotations only reorder the eight), summed in another order: equal to float rounding.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from srprep.errors import SrprepError
from srprep.ops.imresize import to_uint8
from srprep.names import CPU_PRECISIONS as _CPU_PRECISIONS, PRECISIONS

log = logging.getLogger(__name__)

ModelLike = Union[nn.Module, Sequence[nn.Module]]
_OUTPUTS = ("float", "uint8")
#: EDSR-PyTorch's ``--chop`` as a crop ensemble: one unrotated quadrant chop, shave 10, min_size 160000 = 400**2.
EDSR_CHOP = ((400, 10),)


# --- small helpers --------------------------------------------------------------------------------------------


def _as_models(model: ModelLike) -> list[nn.Module]:
    models = [model] if isinstance(model, nn.Module) else list(model)
    if not models or not all(isinstance(m, nn.Module) for m in models):
        raise SrprepError("expected a network or a non-empty list of networks")
    return models


def _resolve_device(models: list[nn.Module], device: Union[str, torch.device, None]) -> torch.device:
    if device is None:
        params = next(models[0].parameters(), None)
        return params.device if params is not None else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SrprepError("device 'cuda' requested but CUDA is not available in this PyTorch build / machine")
    return device


@contextlib.contextmanager
def _eval_mode(models: list[nn.Module]) -> Iterator[None]:
    """Put networks in eval mode (dropout off) and restore their previous mode afterwards."""
    was_training = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        yield
    finally:
        for m, flag in zip(models, was_training):
            m.train(flag)


@contextlib.contextmanager
def _precision(precision: str, device: torch.device) -> Iterator[None]:
    """fp32: exact float32 (TF32 off on CUDA); tf32: CUDA TF32 matmul/conv; bf16/fp16: autocast."""
    if precision not in PRECISIONS:
        raise SrprepError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if device.type != "cuda" and precision not in _CPU_PRECISIONS:
        raise SrprepError(f"precision {precision!r} needs a CUDA device; on {device.type} use fp32 or bf16")
    if device.type == "cuda":
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        tf32 = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32  # cuDNN's default is True: switch off for honest fp32
        try:
            if precision in ("bf16", "fp16"):
                dtype = torch.bfloat16 if precision == "bf16" else torch.float16
                with torch.autocast("cuda", dtype=dtype):
                    yield
            else:
                yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    elif precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def tile_spans(n: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int, int, int]]:
    """Windows covering ``range(n)``: ``(start, end, keep_start, keep_end)`` per window.

    Windows are ``tile`` long (the last one may be up to ``align - 1`` longer; ``tile`` is raised to
    ``overlap + align`` if smaller), start on multiples of ``align``, and overlap by at least ``overlap``;
    the kept parts ``[keep_start, keep_end)`` partition ``range(n)``, each boundary in the middle of an overlap,
    so every kept position has >= ``overlap // 2`` context on both sides (or the true image border).
    """
    tile = max(tile, overlap + align)
    if n <= tile:
        return [(0, n, 0, n)]
    step = (tile - overlap) // align * align
    last = (n - tile) // align * align
    starts = list(range(0, last, step)) + [last]
    ends = [s + tile for s in starts]
    ends[-1] = n
    spans = []
    for i, (s, e) in enumerate(zip(starts, ends)):
        keep_s = 0 if i == 0 else (ends[i - 1] + s) // 2
        keep_e = n if i == len(starts) - 1 else (e + starts[i + 1]) // 2
        spans.append((s, e, keep_s, keep_e))
    return spans


def chop_forward(run, x: torch.Tensor, scale: int, shave: int, min_size: int) -> torch.Tensor:
    """EDSR-PyTorch's ``forward_chop`` (as AIM 2020's code has it): ``run`` on four overlapping quadrants.

    ``x``: (N, C, h, w); ``run``: the network on one window, (N, C, a, b) -> (N, C, a*scale, b*scale).
    The quadrants are rows ``[0, h//2 + shave)`` / ``[h - h//2 - shave, h)`` by columns likewise; each is
    chopped again while ``h * w >= 4 * min_size``. Output rows ``[0, H//2)`` (``H = h * scale``) come from the
    top quadrants' first rows, rows ``[H//2, H)`` from the bottom ones' last rows, columns likewise. (EDSR-
    PyTorch leaves the middle output row or column unwritten when ``H`` or ``W`` is odd; AIM's version, and this
    one, give it to the bottom/right quadrant.)

    Raises:
        SrprepError: a side shorter than ``2 * shave``: the quadrants would not fit (upstream fails too).
    """
    h, w = x.shape[-2:]
    if h - h // 2 < shave or w - w // 2 < shave:
        raise SrprepError(f"chop: a {w}x{h} input is too small for shave {shave} (quadrants of half a side plus "
                          f"the shave must fit); use a smaller shave or no crop ensemble")
    top, bottom = slice(0, h // 2 + shave), slice(h - h // 2 - shave, h)
    left, right = slice(0, w // 2 + shave), slice(w - w // 2 - shave, w)
    parts = [x[..., top, left], x[..., top, right], x[..., bottom, left], x[..., bottom, right]]
    if h * w < 4 * min_size:
        outs = [run(p) for p in parts]
    else:
        outs = [chop_forward(run, p, scale, shave, min_size) for p in parts]
    H, W = h * scale, w * scale
    out = torch.empty((*outs[0].shape[:-2], H, W), dtype=outs[0].dtype, device=outs[0].device)
    top, bottom = slice(0, H // 2), slice(H // 2, H)
    left, right = slice(0, W // 2), slice(W // 2, W)
    n_bottom, n_right = H - H // 2, W - W // 2
    out[..., top, left] = outs[0][..., top, left]
    out[..., top, right] = outs[1][..., top, -n_right:]
    out[..., bottom, left] = outs[2][..., -n_bottom:, left]
    out[..., bottom, right] = outs[3][..., -n_bottom:, -n_right:]
    return out


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W[, C]) uint8 or float [0, 1] image -> (3, H, W) float32 [0, 1] tensor (gray replicated to RGB)."""
    if not isinstance(img, np.ndarray):
        raise SrprepError(f"expected a numpy image, got {type(img).__name__}")
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise SrprepError(f"expected an (H, W, 3) RGB or (H, W) gray image, got shape {img.shape}")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    # astype copies: the tensor never aliases (possibly read-only) caller memory.
    if img.dtype == np.uint8:
        x = torch.from_numpy(img.astype(np.float32) / np.float32(255.0))
    elif np.issubdtype(img.dtype, np.floating):
        x = torch.from_numpy(img.astype(np.float32))
    else:
        raise SrprepError(f"expected a uint8 or float image, got dtype {img.dtype}")
    return x.permute(2, 0, 1).contiguous()


def _to_numpy(y: torch.Tensor, output: str) -> np.ndarray:
    """(3, H, W) float tensor -> (H, W, 3) float32 in [0, 1] or uint8.

    uint8 is MATLAB's im2uint8 (x 255 in float64, rounded half away from zero), the same rule every srprep
    step uses, so ``upscale``, ``eval`` and ``centroids`` agree on every pixel, ties included.
    """
    y = np.ascontiguousarray(y.clamp(0.0, 1.0).permute(1, 2, 0).numpy())
    return to_uint8(y.astype(np.float64)) if output == "uint8" else y


# --- the inference engine -------------------------------------------------------------------------------------


class _Runner:
    """Runs (a list of) networks on NCHW CPU tensors; returns the averaged float32 CPU output."""

    def __init__(self, models, scale, device, precision, channels_last):
        self.models = models
        self.scale = scale
        self.device = device
        self.precision = precision
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        # Networks with a pixel-unshuffle front end are shift-equivariant only on their unshuffle grid.
        self.align = max(int(getattr(m, "tile_align", 1)) for m in models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        total = None
        with _precision(self.precision, self.device):
            for m in self.models:
                y = m(x).float()
                total = y if total is None else total + y
        total = total / len(self.models)
        if not bool(torch.isfinite(total).all()):
            bad = int((~torch.isfinite(total)).sum())
            raise SrprepError(f"the network output has {bad} non-finite values (NaN or inf): its weights are broken "
                              f"or it diverges on this input; nothing was written for it")
        expected = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
        if tuple(total.shape[-2:]) != expected:
            raise SrprepError(
                f"network output {tuple(total.shape[-2:])} for input {tuple(x.shape[-2:])} is not x{self.scale}"
            )
        return total.cpu()

    def tiled(self, x: torch.Tensor, tile: Optional[int], overlap: int) -> torch.Tensor:
        if tile is None:
            return self.forward(x)
        if tile <= 0 or overlap < 0 or overlap >= tile:
            raise SrprepError(f"need tile > overlap >= 0, got tile={tile}, overlap={overlap}")
        n, c, h, w = x.shape
        s = self.scale
        out = torch.empty((n, c, h * s, w * s), dtype=torch.float32)
        rows = tile_spans(h, tile, overlap, self.align)
        cols = tile_spans(w, tile, overlap, self.align)
        log.debug("tiled inference of %dx%d: %d x %d windows (tile %d, overlap %d)",
                  w, h, len(cols), len(rows), tile, overlap)
        for y0, y1, ky0, ky1 in rows:
            for x0, x1, kx0, kx1 in cols:
                part = self.forward(x[..., y0:y1, x0:x1])
                out[..., ky0 * s:ky1 * s, kx0 * s:kx1 * s] = part[
                    ..., (ky0 - y0) * s:(ky1 - y0) * s, (kx0 - x0) * s:(kx1 - x0) * s
                ]
        return out

    def crops(self, x, tile, overlap, crop_ensemble) -> torch.Tensor:
        if not crop_ensemble:
            return self.tiled(x, tile, overlap)
        # AIM 2020's crop ensemble (module doc): entry i rotated by i * 90 degrees, chopped, rotated back
        total = None
        for i, (chop_size, shave) in enumerate(crop_ensemble):
            y = chop_forward(self.forward, torch.rot90(x, i, (2, 3)), self.scale, int(shave), int(chop_size) ** 2)
            y = torch.rot90(y, -i, (2, 3))
            total = y if total is None else total + y
        return total / float(len(crop_ensemble))


def _dihedral(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, k, dims=(-2, -1)).contiguous()


def _undo_dihedral(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    y = torch.rot90(y, -k, dims=(-2, -1))
    return y.flip(-1) if flip else y


def upscale_tensor(
    model: ModelLike,
    x: torch.Tensor,
    *,
    scale: int,
    tile: Optional[int] = None,
    overlap: int = 32,
    self_ensemble: bool = False,
    crop_ensemble: Optional[Sequence[tuple[int, int]]] = None,
    precision: str = "fp32",
    device: Union[str, torch.device, None] = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """Tensor core of :func:`upscale`: (N, 3, H, W) float [0, 1] -> (N, 3, H*s, W*s) float32 CPU, unclamped.

    Options as in :func:`upscale`. Runs under ``torch.inference_mode`` with the networks in eval mode
    (their previous mode is restored).
    """
    models = _as_models(model)
    for m in models:
        model_scale = getattr(m, "scale", scale)
        if model_scale != scale:
            raise SrprepError(f"network is x{model_scale}, but scale={scale} was requested")
    if crop_ensemble and tile is not None:
        raise SrprepError("give either tile/overlap or crop_ensemble (a list of (chop_size, shave)), not both")
    dev = _resolve_device(models, device)
    for m in models:
        # Moving / re-laying out weights happens in place (nn.Module.to): documented side effect.
        m.to(dev)
        if channels_last:
            m.to(memory_format=torch.channels_last)
    runner = _Runner(models, scale, dev, precision, channels_last)
    x = x.float()
    with torch.inference_mode(), _eval_mode(models):
        if not self_ensemble:
            return runner.crops(x, tile, overlap, crop_ensemble)
        total = None
        for flip in (False, True):
            for k in range(4):
                y = _undo_dihedral(runner.crops(_dihedral(x, k, flip), tile, overlap, crop_ensemble), k, flip)
                total = y if total is None else total + y
        return total / 8.0


def upscale(
    model: ModelLike,
    img: np.ndarray,
    *,
    scale: int,
    tile: Optional[int] = None,
    overlap: int = 32,
    self_ensemble: bool = False,
    crop_ensemble: Optional[Sequence[tuple[int, int]]] = None,
    precision: str = "fp32",
    device: Union[str, torch.device, None] = None,
    channels_last: bool = False,
    output: str = "float",
) -> np.ndarray:
    """Super-resolve one image.

    Args:
        model: a network, or a list of networks of the same scale whose outputs are averaged (model ensemble).
        img: (H, W, 3) RGB uint8 (or float in [0, 1]); (H, W) gray is replicated to RGB.
        scale: the networks' upscaling factor (checked against their ``scale`` attribute).
        tile: LR window size for tiled inference (None: whole image at once). Any image size works.
        overlap: LR pixels shared by neighbouring windows (must be < tile); seams sit mid-overlap.
        self_ensemble: average over the 8 flips/rotations (x8 geometric self-ensemble), each inverse-transformed.
        crop_ensemble: AIM 2020's crop ensemble (module doc): ``(chop_size, shave)`` entries, e.g.
            ``[(600, 100), (300, 100)]`` (its ``--chop-size 600 300 --shave-size 100 100``); :data:`EDSR_CHOP`
            is EDSR-PyTorch's ``--chop``. Replaces ``tile``/``overlap``.
        precision: ``fp32`` | ``tf32`` (CUDA) | ``bf16`` | ``fp16`` (CUDA); reduced precisions use autocast.
        device: where to run (None: where the first network's weights are). Networks are moved there in place.
        channels_last: run in channels-last memory format (networks are converted in place).
        output: ``"float"`` -> float32 (H*s, W*s, 3) in [0, 1], not rounded; ``"uint8"`` -> rounded uint8.

    Returns:
        The SR image, (H*scale, W*scale, 3).
    """
    return upscale_batch(
        model, [img], scale=scale, tile=tile, overlap=overlap, self_ensemble=self_ensemble,
        crop_ensemble=crop_ensemble, precision=precision, device=device, channels_last=channels_last,
        output=output, batch_size=1,
    )[0]


def upscale_batch(
    model: ModelLike,
    imgs: Sequence[np.ndarray],
    *,
    scale: int,
    batch_size: int = 8,
    tile: Optional[int] = None,
    overlap: int = 32,
    self_ensemble: bool = False,
    crop_ensemble: Optional[Sequence[tuple[int, int]]] = None,
    precision: str = "fp32",
    device: Union[str, torch.device, None] = None,
    channels_last: bool = False,
    output: str = "float",
) -> list[np.ndarray]:
    """Super-resolve several images, running equal-size ones together in batches of up to ``batch_size``.

    Options and per-image input/output as in :func:`upscale`; results come back in input order.
    Batching changes only speed: each image's result equals what :func:`upscale` gives for it.
    """
    if output not in _OUTPUTS:
        raise SrprepError(f"output must be one of {_OUTPUTS}, got {output!r}")
    if batch_size < 1:
        raise SrprepError(f"batch_size must be >= 1, got {batch_size}")
    tensors = [_to_tensor(img) for img in imgs]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault(tuple(t.shape[-2:]), []).append(i)
    results: list[Optional[np.ndarray]] = [None] * len(tensors)
    for indices in groups.values():
        for b in range(0, len(indices), batch_size):
            chunk = indices[b:b + batch_size]
            y = upscale_tensor(
                model, torch.stack([tensors[i] for i in chunk]), scale=scale, tile=tile, overlap=overlap,
                self_ensemble=self_ensemble, crop_ensemble=crop_ensemble, precision=precision, device=device,
                channels_last=channels_last,
            )
            for i, yi in zip(chunk, y):
                results[i] = _to_numpy(yi, output)
    return results  # type: ignore[return-value]
