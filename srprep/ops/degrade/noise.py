"""Additive Gaussian and Poisson (shot) noise as Real-ESRGAN defines them, for one image (numpy, HWC)
or a batch with per-sample parameters (torch, NCHW).

Units: images are float in [0, 1]; the Gaussian ``sigma`` is given on the **0-255 scale** (Real-ESRGAN's
``noise_range: [1, 30]`` means 1/255 .. 30/255), so the added noise has standard deviation
``sigma / 255``. Poisson noise: the image is rounded to the 8-bit grid, ``L`` distinct levels are
counted and ``vals = 2 ** ceil(log2(L))``; the noise is ``scale * (Poisson(img * vals) / vals - img)``,
so its variance at a pixel of value ``v`` is ``scale^2 * v / vals``. "Gray" noise draws one noise plane
(for Poisson, from the luma ``0.2989 R + 0.587 G + 0.114 B``) and adds it to every channel; colour noise
draws each channel independently. Results are clipped to [0, 1] unless ``clip=False``.

Randomness comes only from the generator passed in. The torch functions take either one
``torch.Generator`` for the whole batch (fastest on a GPU) or one generator per sample; a per-sample
``np.random.Generator`` draws exactly the numbers the numpy functions draw (same calls, same order, in
HWC layout), so the batched path then reproduces the single-image path on any device.

>>> import numpy as np
>>> img = np.full((4, 4, 3), 0.5, np.float32)
>>> add_gaussian_noise(img, 10.0, rng=np.random.default_rng(0)).dtype
dtype('float32')
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

#: Luma weights for gray Poisson noise (inputs are RGB): torchvision's ``rgb_to_grayscale``, which Real-ESRGAN's
#: training code calls (BasicSR ``generate_poisson_noise_pt``); its 0.2989 is BT.601's 0.299 truncated.
LUMA = (0.2989, 0.587, 0.114)

TorchNoiseSource = Union[torch.Generator, Sequence[torch.Generator], Sequence[np.random.Generator]]


# ----------------------------------------------------------------------------------------- numpy --
def _luma_np(img: np.ndarray) -> np.ndarray:
    w = np.asarray(LUMA, dtype=np.float32)
    return (w[0] * img[..., 0] + w[1] * img[..., 1]) + w[2] * img[..., 2]


def gaussian_noise(shape: Sequence[int], sigma: float, *, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of std ``sigma/255`` (sigma on the 0-255 scale), float32 array of ``shape`` (H, W, C).

    Draws ``standard_normal((H, W))`` when ``gray`` (repeated over channels), else ``(H, W, C)``.
    """
    h, w, c = shape
    s = np.float32(sigma / 255.0)
    if gray:
        z = rng.standard_normal((h, w), dtype=np.float32)
        return np.repeat((z * s)[:, :, None], c, axis=2)
    return rng.standard_normal((h, w, c), dtype=np.float32) * s


def add_gaussian_noise(
    img: np.ndarray, sigma: float, *, gray: bool = False, rng: np.random.Generator, clip: bool = True
) -> np.ndarray:
    """Add Gaussian noise (std ``sigma/255``) to an (H, W, C) float image in [0, 1]; returns float32."""
    img = np.asarray(img, dtype=np.float32)
    out = img + gaussian_noise(img.shape, sigma, gray=gray, rng=rng)
    return np.clip(out, 0.0, 1.0) if clip else out


def quantize_unit(img: np.ndarray) -> np.ndarray:
    """Round a [0, 1] float32 image to the 8-bit grid (k/255), clipping to [0, 1]."""
    return np.clip(np.round(img * np.float32(255.0)), 0, 255) / np.float32(255.0)


def _poisson_levels(src_q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shot noise of an image already on the k/255 grid: ``Poisson(src*vals)/vals - src`` (float32)."""
    levels = np.count_nonzero(np.bincount(np.rint(src_q * 255.0).astype(np.int64).ravel(), minlength=256))
    vals = 2.0 ** np.ceil(np.log2(levels))
    out = rng.poisson(src_q.astype(np.float64) * vals) / vals
    return (out - src_q).astype(np.float32)


def poisson_noise(img: np.ndarray, scale: float, *, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Poisson noise (Real-ESRGAN's definition, see module doc) for an (H, W, C) float image; float32."""
    img = np.asarray(img, dtype=np.float32)
    if gray:
        src = quantize_unit(_luma_np(img))
        noise = np.repeat(_poisson_levels(src, rng)[:, :, None], img.shape[2], axis=2)
    else:
        noise = _poisson_levels(quantize_unit(img), rng)
    return noise * np.float32(scale)


def add_poisson_noise(
    img: np.ndarray, scale: float, *, gray: bool = False, rng: np.random.Generator, clip: bool = True
) -> np.ndarray:
    """Add Poisson noise of strength ``scale`` to an (H, W, C) float image in [0, 1]; returns float32."""
    img = np.asarray(img, dtype=np.float32)
    out = img + poisson_noise(img, scale, gray=gray, rng=rng)
    return np.clip(out, 0.0, 1.0) if clip else out


# ----------------------------------------------------------------------------------------- torch --
def _per_sample(values, b: int, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if t.numel() == 1:
        t = t.expand(b)
    if t.numel() != b:
        raise ValueError(f"need 1 or {b} per-sample values, got {t.numel()}")
    return t


def _flags(gray, b: int) -> list[bool]:
    g = torch.as_tensor(gray).reshape(-1).tolist()
    if len(g) == 1:
        g = g * b
    if len(g) != b:
        raise ValueError(f"need 1 or {b} gray flags, got {len(g)}")
    return [bool(v) for v in g]


def _sources(generator: TorchNoiseSource, b: int):
    if isinstance(generator, torch.Generator):
        return None
    gens = list(generator)
    if len(gens) != b:
        raise ValueError(f"need one generator per sample ({b}), got {len(gens)}")
    return gens


def _randn_like_sample(gen, h: int, w: int, c: int, gray: bool, x: torch.Tensor) -> torch.Tensor:
    """Unit normal noise (C, H, W) for one sample; gray noise is one plane expanded to C channels."""
    if isinstance(gen, np.random.Generator):
        shape = (h, w) if gray else (h, w, c)
        z = torch.from_numpy(gen.standard_normal(shape, dtype=np.float32)).to(x.device)
        z = z[None] if gray else z.permute(2, 0, 1)
    else:
        z = torch.randn((1 if gray else c, h, w), generator=gen, device=x.device, dtype=torch.float32)
    return z.expand(c, h, w).to(x.dtype)


def gaussian_noise_torch(x: torch.Tensor, sigma, gray, generator: TorchNoiseSource) -> torch.Tensor:
    """Gaussian noise for a batch: per-sample ``sigma`` (0-255 scale, scalar or (B,)) and ``gray`` flags.

    ``x``: (B, C, H, W) float (only its shape, dtype and device are used). Returns noise of x's shape.
    """
    b, c, h, w = x.shape
    s = _per_sample(sigma, b, x)
    s = (s / 255.0).to(torch.float32).to(device=x.device, dtype=x.dtype).view(b, 1, 1, 1)
    g = _flags(gray, b)
    gens = _sources(generator, b)
    if gens is None:
        z = torch.empty_like(x)
        col = [i for i in range(b) if not g[i]]
        gry = [i for i in range(b) if g[i]]
        if col:
            z[col] = torch.randn((len(col), c, h, w), generator=generator, device=x.device, dtype=x.dtype)
        if gry:
            z[gry] = torch.randn((len(gry), 1, h, w), generator=generator, device=x.device,
                                 dtype=x.dtype).expand(-1, c, -1, -1)
    else:
        z = torch.stack([_randn_like_sample(gens[i], h, w, c, g[i], x) for i in range(b)])
    return z * s


def add_gaussian_noise_torch(x: torch.Tensor, sigma, gray=False, *, generator: TorchNoiseSource,
                             clip: bool = True) -> torch.Tensor:
    """Add Gaussian noise (std ``sigma/255`` per sample) to a (B, C, H, W) batch in [0, 1].

    >>> x = torch.full((2, 3, 4, 4), 0.5)
    >>> add_gaussian_noise_torch(x, [5.0, 10.0], [False, True], generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 3, 4, 4])
    """
    out = x + gaussian_noise_torch(x, sigma, gray, generator)
    return out.clamp(0.0, 1.0) if clip else out


def _luma_torch(x: torch.Tensor) -> torch.Tensor:
    return (LUMA[0] * x[:, 0:1] + LUMA[1] * x[:, 1:2]) + LUMA[2] * x[:, 2:3]


def _quantize_unit_torch(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.round(x * 255.0), 0, 255) / 255.0


def _vals(src_q: torch.Tensor) -> torch.Tensor:
    """Per-sample ``2 ** ceil(log2(#levels))`` of a (B, C, H, W) batch on the k/255 grid (vectorised count)."""
    b = src_q.shape[0]
    ints = torch.round(src_q * 255.0).long().reshape(b, -1)
    ints = ints + 256 * torch.arange(b, device=src_q.device)[:, None]
    counts = torch.bincount(ints.reshape(-1), minlength=256 * b).view(b, 256)
    levels = (counts > 0).sum(dim=1).to(torch.float64)
    return torch.exp2(torch.ceil(torch.log2(levels)))


def poisson_noise_torch(x: torch.Tensor, scale, gray, generator: TorchNoiseSource) -> torch.Tensor:
    """Poisson noise for a batch: per-sample ``scale`` (scalar or (B,)) and ``gray`` flags; see module doc."""
    b, c, h, w = x.shape
    s = _per_sample(scale, b, x).to(torch.float32).to(device=x.device, dtype=x.dtype).view(b, 1, 1, 1)
    g = _flags(gray, b)
    gens = _sources(generator, b)
    noise = torch.empty_like(x)
    for want_gray in (False, True):
        idx = [i for i in range(b) if g[i] == want_gray]
        if not idx:
            continue
        src = _luma_torch(x[idx]) if want_gray else x[idx]
        src = _quantize_unit_torch(src.to(torch.float32))
        if gens is None:
            vals = _vals(src).to(torch.float32).view(-1, 1, 1, 1)
            n = torch.poisson(src * vals, generator=generator) / vals - src
        else:
            parts = []
            for j, i in enumerate(idx):
                gen = gens[i]
                if isinstance(gen, np.random.Generator):
                    hwc = src[j].permute(1, 2, 0).cpu().numpy()
                    hwc = hwc[:, :, 0] if want_gray else hwc
                    nz = torch.from_numpy(_poisson_levels(hwc, gen)).to(x.device)
                    parts.append(nz[None] if want_gray else nz.permute(2, 0, 1))
                else:
                    v = _vals(src[j:j + 1]).to(torch.float32).view(1, 1, 1)
                    parts.append(torch.poisson(src[j] * v, generator=gen) / v - src[j])
            n = torch.stack(parts)
        noise[idx] = n.to(x.dtype).expand(-1, c, -1, -1)
    return noise * s


def add_poisson_noise_torch(x: torch.Tensor, scale, gray=False, *, generator: TorchNoiseSource,
                            clip: bool = True) -> torch.Tensor:
    """Add Poisson noise (per-sample ``scale`` and ``gray``) to a (B, C, H, W) batch in [0, 1]."""
    out = x + poisson_noise_torch(x, scale, gray, generator)
    return out.clamp(0.0, 1.0) if clip else out
