"""Real-ESRGAN's second-order degradation, split into a random draw and a deterministic application.

The process (Wang et al., "Real-ESRGAN", 2021) for a ground-truth image of size (h, w) and scale s:

1. optional USM sharpening of the GT (``gt_usm``);
2. first stage: blur (random mixed kernel or sinc) -> random resize (up/down/keep, area/bilinear/bicubic,
   by ``scale_factor``) -> Gaussian or Poisson noise -> JPEG;
3. second stage: blur with probability ``second_blur_prob`` -> resize to ``(h/s * r, w/s * r)`` -> noise;
4. final: [resize to (h // s, w // s) + sinc filter (pulse with prob 1 - final_sinc_prob)] and JPEG, in an
   order drawn 50/50 (Real-ESRGAN found sinc -> JPEG -> resize makes twisted lines);
5. quantise: ``round(x * 255) / 255`` clipped to [0, 1].

:func:`draw_params` draws every value into a :class:`~srprep.ops.degrade.params.DegradationParams` from an
explicit ``np.random.Generator``; :func:`apply` (numpy, one HWC image) and :func:`apply_batch` (torch,
NCHW, any device, per-sample parameters) are deterministic given the params. Samples of a batch keep
their own resize factors: the batched path groups samples by their current size, so intermediate sizes
may differ and only the final LR size is shared.

Differences from the public Real-ESRGAN code, all deliberate: JPEG qualities are integers drawn uniformly
from the inclusive range and encoded by a real libjpeg (see :mod:`.jpeg`), not a float quality in a
differentiable re-implementation; every draw comes from the given generator, none from global RNGs.

>>> import numpy as np
>>> p = draw_params(DegradationConfig(), np.random.default_rng(0), (64, 64))
>>> apply(np.zeros((64, 64, 3), np.uint8), p).shape
(16, 16, 3)
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from typing import Callable, Sequence

import numpy as np
import torch

from .filtering import filter2d, filter2d_torch
from .jpeg import JPEG_BACKENDS, jpeg_roundtrip, jpeg_torch
from .kernels import (KERNEL_PROB, KERNEL_SIZES, KERNEL_TYPES, KernelSpec, pad_kernel, random_kernel_spec,
                      random_sinc_spec)
from .noise import add_gaussian_noise, add_gaussian_noise_torch, add_poisson_noise, add_poisson_noise_torch
from .params import BlurParams, DegradationParams, FinalParams, StageParams
from .resize import ALL_MODES, RESIZE_MODES, output_size, resize, resize_torch
from .rng import draw_seed, torch_generator
from .sharpen import usm_sharp, usm_sharp_torch


@dataclass
class DegradationConfig:
    """Every option of the second-order pipeline; the defaults are Real-ESRGAN's
    ``train_realesrnet_x4plus.yml`` (option names as there, so such a file's values can be passed to
    :meth:`from_dict`). Ranges are ``[low, high]``; sigmas in pixels; noise sigma on the 0-255 scale;
    ``resize_prob`` is the probability of (up, down, keep)."""

    scale: int = 4
    gt_usm: bool = True
    # first degradation
    kernel_list: tuple = KERNEL_TYPES
    kernel_prob: tuple = KERNEL_PROB
    sinc_prob: float = 0.1
    blur_sigma: tuple = (0.2, 3.0)
    betag_range: tuple = (0.5, 4.0)
    betap_range: tuple = (1.0, 2.0)
    resize_prob: tuple = (0.2, 0.7, 0.1)
    resize_range: tuple = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple = (1.0, 30.0)
    poisson_scale_range: tuple = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple = (30, 95)
    # second degradation
    second_blur_prob: float = 0.8
    kernel_list2: tuple = KERNEL_TYPES
    kernel_prob2: tuple = KERNEL_PROB
    sinc_prob2: float = 0.1
    blur_sigma2: tuple = (0.2, 1.5)
    betag_range2: tuple = (0.5, 4.0)
    betap_range2: tuple = (1.0, 2.0)
    resize_prob2: tuple = (0.3, 0.4, 0.3)
    resize_range2: tuple = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple = (1.0, 25.0)
    poisson_scale_range2: tuple = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple = (30, 95)
    # final step
    final_sinc_prob: float = 0.8
    final_jpeg_first_prob: float = 0.5  # Real-ESRGAN's coin flip between the two final orders
    # shared
    kernel_range: tuple = KERNEL_SIZES
    rotation_range: tuple = (-math.pi, math.pi)
    final_sinc_cutoff: tuple = (math.pi / 3, math.pi)
    resize_modes: tuple = RESIZE_MODES
    antialias: bool = False  # Real-ESRGAN resizes without antialiasing
    jpeg_backend: str = "cv2"

    def __post_init__(self) -> None:
        for f in fields(self):  # lists from YAML/JSON become tuples, so configs compare and hash simply
            v = getattr(self, f.name)
            if isinstance(v, list):
                setattr(self, f.name, tuple(v))
        if self.scale < 1:
            raise ValueError(f"scale must be >= 1, got {self.scale}")
        if any(m not in ALL_MODES for m in self.resize_modes):
            raise ValueError(f"resize_modes must be among {ALL_MODES}")
        if self.jpeg_backend not in JPEG_BACKENDS:
            raise ValueError(f"jpeg_backend must be one of {JPEG_BACKENDS}")
        if any(k % 2 == 0 or k < 1 for k in self.kernel_range):
            raise ValueError("kernel_range must hold odd sizes")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict, *, strict: bool = True) -> "DegradationConfig":
        """Build from a dict; unknown keys raise ValueError unless ``strict=False`` (e.g. a whole
        Real-ESRGAN options file, whose other keys are ignored)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown and strict:
            raise ValueError(f"unknown degradation options: {', '.join(unknown)}")
        return cls(**{k: v for k, v in d.items() if k in names})


# ------------------------------------------------------------------------------------------ draw --
def _gt_size(gt_size) -> list:
    if isinstance(gt_size, (int, np.integer)):
        return [int(gt_size), int(gt_size)]
    h, w = gt_size
    return [int(h), int(w)]


def _draw_kernel(rng, cfg: DegradationConfig, sinc_prob, kernel_list, kernel_prob, sigma, betag, betap) -> BlurParams:
    size = int(rng.choice(np.asarray(cfg.kernel_range)))
    if rng.random() < sinc_prob:
        spec = random_sinc_spec(rng, size)
    else:
        spec = random_kernel_spec(rng, size, kernel_list=kernel_list, kernel_prob=kernel_prob,
                                  sigma_range=sigma, rotation_range=cfg.rotation_range,
                                  betag_range=betag, betap_range=betap)
    return BlurParams.from_spec(spec)


def _draw_resize(rng, prob, rng_range, modes) -> tuple[str, float, str]:
    p = np.asarray(prob, dtype=np.float64)
    kind = ("up", "down", "keep")[int(rng.choice(3, p=p / p.sum()))]
    if kind == "up":
        scale = float(rng.uniform(1.0, rng_range[1]))
    elif kind == "down":
        scale = float(rng.uniform(rng_range[0], 1.0))
    else:
        scale = 1.0
    mode = str(modes[int(rng.integers(len(modes)))])
    return kind, scale, mode


def _draw_noise(rng, gauss_prob, sigma_range, poisson_range, gray_prob) -> dict:
    if rng.random() < gauss_prob:
        d = {"noise_type": "gaussian", "noise_sigma": float(rng.uniform(sigma_range[0], sigma_range[1]))}
    else:
        d = {"noise_type": "poisson", "poisson_scale": float(rng.uniform(poisson_range[0], poisson_range[1]))}
    d["gray_noise"] = bool(rng.random() < gray_prob)
    return d


def _draw_quality(rng, qrange) -> int:
    return int(rng.integers(int(qrange[0]), int(qrange[1]), endpoint=True))


def draw_params(cfg: DegradationConfig, rng: np.random.Generator, gt_size) -> DegradationParams:
    """Draw all parameters of one degradation for a GT of size ``gt_size`` ((h, w) or an int).

    Draw order: blur kernel 1, blur kernel 2, final sinc kernel (as Real-ESRGAN's dataset), then stage 1
    (resize, noise, JPEG), stage 2 (blur flag, resize, noise), final (order, mode, JPEG), noise seed.
    """
    h, w = _gt_size(gt_size)
    s = cfg.scale
    lr = [h // s, w // s]
    if min(lr) < 1:
        raise ValueError(f"GT size {h}x{w} is smaller than the scale {s}")
    blur1 = _draw_kernel(rng, cfg, cfg.sinc_prob, cfg.kernel_list, cfg.kernel_prob, cfg.blur_sigma,
                         cfg.betag_range, cfg.betap_range)
    blur2 = _draw_kernel(rng, cfg, cfg.sinc_prob2, cfg.kernel_list2, cfg.kernel_prob2, cfg.blur_sigma2,
                         cfg.betag_range2, cfg.betap_range2)
    if rng.random() < cfg.final_sinc_prob:
        size = int(rng.choice(np.asarray(cfg.kernel_range)))
        sinc = BlurParams.from_spec(random_sinc_spec(rng, size, cfg.final_sinc_cutoff))
    else:
        sinc = BlurParams.from_spec(KernelSpec("pulse", 1))

    kind, scale1, mode = _draw_resize(rng, cfg.resize_prob, cfg.resize_range, cfg.resize_modes)
    size1 = output_size((h, w), scale1)
    if min(size1) < 1:
        raise ValueError(f"GT size {h}x{w} too small for resize factor {scale1}")
    stage1 = StageParams(kind, scale1, mode, list(size1),
                         **_draw_noise(rng, cfg.gaussian_noise_prob, cfg.noise_range, cfg.poisson_scale_range,
                                       cfg.gray_noise_prob),
                         jpeg_quality=_draw_quality(rng, cfg.jpeg_range))

    use_blur2 = bool(rng.random() < cfg.second_blur_prob)
    kind2, scale2, mode2 = _draw_resize(rng, cfg.resize_prob2, cfg.resize_range2, cfg.resize_modes)
    # Real-ESRGAN sizes the second resize from the target LR size, not from the current size.
    size2 = [max(1, int(h / s * scale2)), max(1, int(w / s * scale2))]
    stage2 = StageParams(kind2, scale2, mode2, size2,
                         **_draw_noise(rng, cfg.gaussian_noise_prob2, cfg.noise_range2, cfg.poisson_scale_range2,
                                       cfg.gray_noise_prob2))

    jpeg_first = bool(rng.random() < cfg.final_jpeg_first_prob)
    mode3 = str(cfg.resize_modes[int(rng.integers(len(cfg.resize_modes)))])
    final = FinalParams(sinc, jpeg_first, mode3, lr, _draw_quality(rng, cfg.jpeg_range2))
    return DegradationParams(
        gt_size=[h, w], scale=s, gt_usm=bool(cfg.gt_usm), antialias=bool(cfg.antialias),
        jpeg_backend=cfg.jpeg_backend, noise_seed=draw_seed(rng), blur1=blur1, stage1=stage1,
        blur2=blur2 if use_blur2 else None, stage2=stage2, final=final)


# ------------------------------------------------------------------------------------ numpy apply --
def _noise_np(x: np.ndarray, st: StageParams, rng: np.random.Generator) -> np.ndarray:
    if st.noise_type == "gaussian":
        return add_gaussian_noise(x, st.noise_sigma, gray=st.gray_noise, rng=rng)
    return add_poisson_noise(x, st.poisson_scale, gray=st.gray_noise, rng=rng)


def _check_input(shape, p: DegradationParams) -> None:
    if list(shape) != list(p.gt_size):
        raise ValueError(f"image is {shape[0]}x{shape[1]} but the params were drawn for "
                         f"{p.gt_size[0]}x{p.gt_size[1]}")


def apply(img: np.ndarray, params: DegradationParams) -> np.ndarray:
    """Degrade one RGB image (H, W, 3) with ``params``; deterministic.

    ``img``: uint8 0..255 or float [0, 1]. Returns (H // scale, W // scale, 3): uint8 for uint8 input,
    else float32 on the k/255 grid. Noise comes from ``np.random.default_rng(params.noise_seed)``.
    """
    _check_input(img.shape[:2], params)
    is_u8 = img.dtype == np.uint8
    x = img.astype(np.float32) / np.float32(255.0) if is_u8 else np.asarray(img, dtype=np.float32)
    p = params
    rng = np.random.default_rng(p.noise_seed)
    if p.gt_usm:
        x = usm_sharp(x)
    # first stage
    x = filter2d(x, p.blur1.array())
    if p.stage1.resize_scale != 1.0:
        x = resize(x, scale_factor=p.stage1.resize_scale, mode=p.stage1.resize_mode, antialias=p.antialias)
    x = _noise_np(x, p.stage1, rng)
    x = jpeg_roundtrip(np.clip(x, 0, 1), p.stage1.jpeg_quality, p.jpeg_backend)
    # second stage
    if p.blur2 is not None:
        x = filter2d(x, p.blur2.array())
    if list(x.shape[:2]) != list(p.stage2.size):
        x = resize(x, p.stage2.size, mode=p.stage2.resize_mode, antialias=p.antialias)
    x = _noise_np(x, p.stage2, rng)
    # final step

    def resize_sinc(y):
        y = resize(y, p.final.size, mode=p.final.resize_mode, antialias=p.antialias)
        return y if p.final.sinc.is_identity() else filter2d(y, p.final.sinc.array())

    def compress(y):
        return jpeg_roundtrip(np.clip(y, 0, 1), p.final.jpeg_quality, p.jpeg_backend)

    x = resize_sinc(compress(x)) if p.final.jpeg_first else compress(resize_sinc(x))
    q = np.clip(np.rint(x * np.float32(255.0)), 0, 255)
    return q.astype(np.uint8) if is_u8 else q.astype(np.float32) / np.float32(255.0)


# ------------------------------------------------------------------------------------ torch apply --
def _map_groups(xs: list, fn: Callable[[torch.Tensor, list], torch.Tensor]) -> list:
    """Apply ``fn(batch, indices)`` to the samples of each current size together; keep sample order."""
    groups: dict = defaultdict(list)
    for i, t in enumerate(xs):
        groups[tuple(t.shape[-2:])].append(i)
    out = [None] * len(xs)
    for idx in groups.values():
        y = fn(torch.cat([xs[i] for i in idx]), idx)
        for j, i in enumerate(idx):
            out[i] = y[j:j + 1]
    return out


def _stack_kernels(blurs: Sequence[BlurParams]) -> torch.Tensor:
    size = max(b.spec.size for b in blurs)
    return torch.from_numpy(np.stack([pad_kernel(b.array(), size) for b in blurs]))


def _noise_torch(x: torch.Tensor, stages: Sequence[StageParams], gens: Sequence) -> torch.Tensor:
    out = torch.empty_like(x)
    gi = [i for i, st in enumerate(stages) if st.noise_type == "gaussian"]
    pi = [i for i, st in enumerate(stages) if st.noise_type != "gaussian"]
    if gi:
        out[gi] = add_gaussian_noise_torch(x[gi], [stages[i].noise_sigma for i in gi],
                                           [stages[i].gray_noise for i in gi], generator=[gens[i] for i in gi])
    if pi:
        out[pi] = add_poisson_noise_torch(x[pi], [stages[i].poisson_scale for i in pi],
                                          [stages[i].gray_noise for i in pi], generator=[gens[i] for i in pi])
    return out


def apply_batch(x: torch.Tensor, params_list: Sequence[DegradationParams], *, noise: str = "host") -> torch.Tensor:
    """Degrade a (B, 3, H, W) float batch in [0, 1] with one params record per sample; deterministic.

    Returns (B, 3, H // scale, W // scale) float on x's device, values on the k/255 grid. Blur and the
    final step run batched (grouped convolution with per-sample kernels); resizes run per sample, and
    the steps between them run on groups of samples that currently have the same size. JPEG is the real
    encoder, per sample on the CPU (:func:`.jpeg.jpeg_torch`).

    ``noise="host"`` draws each sample's noise with ``np.random.default_rng(noise_seed)`` exactly as
    :func:`apply` does (same numbers on any device); ``noise="device"`` uses a ``torch.Generator`` on x's
    device seeded with ``noise_seed`` (same distribution, different numbers, no host round trip).
    """
    b = x.shape[0]
    if len(params_list) != b:
        raise ValueError(f"need {b} params records, got {len(params_list)}")
    ps = list(params_list)
    for p in ps:
        _check_input(x.shape[-2:], p)
        if p.scale != ps[0].scale:
            raise ValueError("all samples of a batch need the same scale")
    if noise == "host":
        gens = [np.random.default_rng(p.noise_seed) for p in ps]
    elif noise == "device":
        gens = [torch_generator(p.noise_seed, x.device) for p in ps]
    else:
        raise ValueError(f"noise must be 'host' or 'device', got {noise!r}")
    aa = [p.antialias for p in ps]
    if len(set(aa)) != 1 or len({p.jpeg_backend for p in ps}) != 1:
        raise ValueError("all samples of a batch need the same antialias and jpeg_backend")
    antialias, backend = aa[0], ps[0].jpeg_backend

    usm = [i for i, p in enumerate(ps) if p.gt_usm]
    if usm:
        x = x.clone()
        x[usm] = usm_sharp_torch(x[usm])
    # first stage
    x = filter2d_torch(x, _stack_kernels([p.blur1 for p in ps]))
    xs = []
    for i, p in enumerate(ps):
        xi = x[i:i + 1]
        if p.stage1.resize_scale != 1.0:
            xi = resize_torch(xi, scale_factor=p.stage1.resize_scale, mode=p.stage1.resize_mode, antialias=antialias)
        xs.append(xi)

    def stage1_rest(t, idx):
        t = _noise_torch(t, [ps[i].stage1 for i in idx], [gens[i] for i in idx])
        return jpeg_torch(t.clamp(0, 1), [ps[i].stage1.jpeg_quality for i in idx], backend)

    xs = _map_groups(xs, stage1_rest)
    # second stage

    def blur2(t, idx):
        sel = [j for j, i in enumerate(idx) if ps[i].blur2 is not None]
        if sel:
            t = t.clone()
            t[sel] = filter2d_torch(t[sel], _stack_kernels([ps[idx[j]].blur2 for j in sel]))
        return t

    xs = _map_groups(xs, blur2)
    xs = [xi if list(xi.shape[-2:]) == list(ps[i].stage2.size)
          else resize_torch(xi, ps[i].stage2.size, mode=ps[i].stage2.resize_mode, antialias=antialias)
          for i, xi in enumerate(xs)]
    xs = _map_groups(xs, lambda t, idx: _noise_torch(t, [ps[i].stage2 for i in idx], [gens[i] for i in idx]))

    # final step: every sample ends at the LR size, so from here on the batch is whole again
    def resize_final(items):
        return torch.cat([resize_torch(t, ps[i].final.size, mode=ps[i].final.resize_mode, antialias=antialias)
                          for i, t in enumerate(items)])

    def sinc(t):
        sel = [i for i, p in enumerate(ps) if not p.final.sinc.is_identity()]
        if sel:
            t = t.clone()
            t[sel] = filter2d_torch(t[sel], _stack_kernels([ps[i].final.sinc for i in sel]))
        return t

    quality = [p.final.jpeg_quality for p in ps]
    first = [i for i, p in enumerate(ps) if p.final.jpeg_first]
    if first:  # JPEG at each sample's current size, before the final resize
        fset = set(first)
        sub = _map_groups([xs[i] for i in first],
                          lambda t, idx: jpeg_torch(t.clamp(0, 1), [quality[first[j]] for j in idx], backend))
        xs = [sub[first.index(i)] if i in fset else xs[i] for i in range(b)]
    y = sinc(resize_final(xs))
    last = [i for i, p in enumerate(ps) if not p.final.jpeg_first]
    if last:
        y = y.clone()
        y[last] = jpeg_torch(y[last].clamp(0, 1), [quality[i] for i in last], backend)
    return torch.clamp(torch.round(y * 255.0), 0, 255) / 255.0
