"""The eight fixed degradations of the Reflash Dropout test sets (Kong et al., CVPR 2022).

Each recipe applies, in this order and only the steps its name lists: Gaussian blur (21x21 kernel,
sigma 2) -> bicubic downscale by ``scale`` -> Gaussian noise (sigma 20 on the 0-255 scale) -> JPEG
(quality 50)::

    bicubic, blur2_bicubic, bicubic_noise20, bicubic_jpeg50, blur2_bicubic_noise20,
    blur2_bicubic_jpeg50, bicubic_noise20_jpeg50, blur2_bicubic_noise20_jpeg50

Defaults reproduce how the original sets were made: the downscale is PIL's bicubic on an 8-bit image,
and float results are converted to 8 bits by truncation (``astype(uint8)``), which biases values down by
half a level on average. Options: ``resize="matlab"`` (MATLAB imresize bicubic, float in, no 8-bit
step before it) and ``quantize="round"`` (round to nearest).

Where 8-bit conversions happen (each one uses ``quantize``): with ``resize="pil"`` after the blur (PIL
resizes 8-bit images), after the noise, and at the end; with ``resize="matlab"`` only before JPEG and at
the end. The blur is a correlation with reflect-101 borders (``cv2.filter2D``). JPEG is the real encoder
(:func:`.jpeg.jpeg_roundtrip`, OpenCV by default).

Randomness: the noise of an image is drawn from :func:`.rng.item_rng` ``(seed, key)`` as
``standard_normal((h, w, 3), float32)``, so it does not depend on processing order or job count, and the
same image gets the same noise field in every recipe that adds noise (recipes then differ only in their
steps). Inputs should be cropped to a multiple of ``scale`` first (the LR size is ``H // scale``).

>>> import numpy as np
>>> lr, info = apply_reflash(np.zeros((16, 16, 3), np.uint8), "bicubic_noise20", seed=0, key="a")
>>> lr.shape, lr.dtype, info["ops"]
((4, 4, 3), dtype('uint8'), ['bicubic', 'noise'])
"""
from __future__ import annotations

import numpy as np

from .filtering import filter2d
from .jpeg import jpeg_roundtrip
from .kernels import isotropic_gaussian_kernel
from .resize import resize_pil
from .rng import item_rng

#: Recipe name -> its steps, in the order they are applied.
RECIPES: dict[str, tuple[str, ...]] = {
    "bicubic": ("bicubic",),
    "blur2_bicubic": ("blur", "bicubic"),
    "bicubic_noise20": ("bicubic", "noise"),
    "bicubic_jpeg50": ("bicubic", "jpeg"),
    "blur2_bicubic_noise20": ("blur", "bicubic", "noise"),
    "blur2_bicubic_jpeg50": ("blur", "bicubic", "jpeg"),
    "bicubic_noise20_jpeg50": ("bicubic", "noise", "jpeg"),
    "blur2_bicubic_noise20_jpeg50": ("blur", "bicubic", "noise", "jpeg"),
}
RECIPE_NAMES: tuple[str, ...] = tuple(RECIPES)

#: The constants of the Reflash test sets.
BLUR_SIZE = 21
BLUR_SIGMA = 2.0
NOISE_SIGMA = 20.0
JPEG_QUALITY = 50


def quantize_u8(x: np.ndarray, mode: str) -> np.ndarray:
    """Float on the 0..255 scale -> uint8: clip, then ``"truncate"`` (floor, as ``astype``) or ``"round"``."""
    x = np.clip(x, 0, 255)
    if mode == "truncate":
        return x.astype(np.uint8)
    if mode == "round":
        return np.rint(x).astype(np.uint8)
    raise ValueError(f"quantize must be 'truncate' or 'round', got {mode!r}")


def _matlab_downscale(x255: np.ndarray, lr_size: tuple[int, int]) -> np.ndarray:
    """MATLAB ``imresize(x, [h w], 'bicubic')`` in double on [0, 1] data; for an input that is a multiple
    of the scale this is exactly ``imresize(x, 1/scale)``. Returns float64 on the 0..255 scale."""
    from srprep.ops.imresize import imresize_matlab

    out = imresize_matlab(np.asarray(x255, dtype=np.float64) / 255.0, size=lr_size)
    return np.asarray(out, dtype=np.float64) * 255.0


def apply_reflash(
    img: np.ndarray,
    name: str,
    *,
    scale: int = 4,
    seed: int,
    key: str = "",
    resize: str = "pil",
    quantize: str = "truncate",
    jpeg_backend: str = "cv2",
) -> tuple[np.ndarray, dict]:
    """Apply Reflash recipe ``name`` to an RGB uint8 (H, W, 3) image.

    Returns ``(lr, info)``: ``lr`` uint8 (H // scale, W // scale, 3) and a JSON-serialisable dict of
    everything that decided it (recipe, steps, constants, options, seed and key).
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPE_NAMES)}")
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {img.dtype} {img.shape}")
    if resize not in ("pil", "matlab"):
        raise ValueError(f"resize must be 'pil' or 'matlab', got {resize!r}")
    quantize_u8(np.zeros(1), quantize)  # validate before any work
    h, w = img.shape[:2]
    lr_size = (h // scale, w // scale)
    if min(lr_size) < 1:
        raise ValueError(f"{h}x{w} image is smaller than the scale {scale}")
    ops = RECIPES[name]

    x = img.astype(np.float32)  # float on the 0..255 scale, or uint8 after an 8-bit step
    if "blur" in ops:
        x = filter2d(x, isotropic_gaussian_kernel(BLUR_SIZE, BLUR_SIGMA))
    if resize == "pil":
        u8 = img if "blur" not in ops else quantize_u8(x, quantize)
        x = resize_pil(u8, lr_size, "bicubic").astype(np.float32)
    else:
        x = _matlab_downscale(x, lr_size).astype(np.float32)
    if "noise" in ops:
        noise = item_rng(seed, key).standard_normal((*x.shape[:2], 3), dtype=np.float32)
        x = np.clip(x + noise * np.float32(NOISE_SIGMA), 0, 255)
    lr = quantize_u8(x, quantize)
    if "jpeg" in ops:
        lr = jpeg_roundtrip(lr, JPEG_QUALITY, jpeg_backend)

    info = {
        "recipe": name,
        "ops": list(ops),
        "scale": int(scale),
        "gt_size": [int(h), int(w)],
        "lr_size": [int(lr_size[0]), int(lr_size[1])],
        "resize": resize,
        "quantize": quantize,
        "blur": {"size": BLUR_SIZE, "sigma": BLUR_SIGMA} if "blur" in ops else None,
        "noise_sigma": NOISE_SIGMA if "noise" in ops else None,
        "jpeg_quality": JPEG_QUALITY if "jpeg" in ops else None,
        "jpeg_backend": jpeg_backend if "jpeg" in ops else None,
        "seed": int(seed),
        "key": key,
        "noise_stream": "item_rng(seed, key).standard_normal((h, w, 3), float32)" if "noise" in ops else None,
    }
    return lr, info
