"""The eight fixed degradations of the Reflash Dropout test sets (Kong et al., CVPR 2022).

Each set applies, in this order and only the steps its name lists: Gaussian blur (21x21 kernel, sigma 2)
-> bicubic downscale by ``scale`` -> Gaussian noise (sigma 20 on the 0-255 scale) -> JPEG (quality 50)::

    bicubic, blur2_bicubic, bicubic_noise20, bicubic_jepg50, blur2_bicubic_noise20,
    blur2_bicubic_jepg50, bicubic_noise20_jepg50, blur2_bicubic_noise20_jepg50

The names are the original script's (``add_degradations.py``), spelling included: it writes ``jepg``, and
its test configs read those folders. The ``jpeg`` spelling is accepted as an alias (:func:`set_name`).

Defaults (``resize="pil"``) reproduce the original script step by step, so that its outputs and these are
equal value for value (the noise sets given the same noise field):

1. blur: ``cv2.GaussianBlur(u8, (21, 21), 2)`` on the **8-bit** image; OpenCV blurs 8-bit images in fixed
   point and rounds, and the result is 8-bit (reflect-101 borders);
2. bicubic: plain Pillow's ``Image.resize((w // s, h // s), BICUBIC)`` of the 8-bit image (antialiased,
   a = -0.5, fixed point, 8-bit result), reproduced exactly by :func:`srprep.ops.pil_resize.pil_resize`
   (srprep's own PIL is pillow-simd, whose bicubic differs in about 0.2 % of values);
3. noise: as the original's ``synthesize_gaussian`` does it: ``x = u8.astype(float32) / 255``, plus
   ``z * (20 / 255)`` in float64, clipped to [0, 1] and cast to float32, then ``x * 255`` (float32)
   clipped to [0, 255] and **truncated** to 8 bits (``astype(uint8)``), which biases it down by half a
   level on average;
4. JPEG: Pillow's encoder at quality 50 and its decoder (``save(..., "JPEG", quality=50)``, open,
   ``convert("RGB")``); libjpeg-turbo, 4:2:0 chroma subsampling, baseline, standard tables.

Options: ``quantize="round"`` rounds the noise step's result instead of truncating; ``resize="matlab"``
keeps the image in float from the start: float blur (the same kernel as a correlation, reflect-101),
MATLAB ``imresize`` bicubic, the noise step, and one conversion to 8 bits by ``quantize`` before JPEG.

Noise field: ``z`` is an (h, w, 3) float64 standard normal field of the LR size. It is drawn from
:func:`.rng.item_rng` ``(seed, key)`` unless given (``noise=``), so it does not depend on processing order or
job count, and the same image gets the same field in every set that adds noise. (The original draws a new
field for each set from numpy's unseeded global generator, channels first: ``np.random.normal(0, 20/255,
(3, h, w))``, which is ``(20/255) * z`` elementwise. Given its field, transposed to HWC, the outputs here
are equal to its outputs.) Inputs should be cropped to a multiple of ``scale`` first: the original's
HR folders are (its test configs pair HR and LR at exactly x4), and the LR size is ``H // scale``.

>>> import numpy as np
>>> lr, info = apply_reflash(np.zeros((16, 16, 3), np.uint8), "bicubic_noise20", seed=0, key="a")
>>> lr.shape, lr.dtype, info["ops"]
((4, 4, 3), dtype('uint8'), ['bicubic', 'noise'])
"""
from __future__ import annotations

import cv2
import numpy as np

from .filtering import filter2d
from .jpeg import jpeg_roundtrip
from .kernels import isotropic_gaussian_kernel
from ..pil_resize import pil_resize
from .rng import item_rng

#: Set name (the original's spelling) -> its steps, in the order they are applied.
RECIPES: dict[str, tuple[str, ...]] = {
    "bicubic": ("bicubic",),
    "blur2_bicubic": ("blur", "bicubic"),
    "bicubic_noise20": ("bicubic", "noise"),
    "bicubic_jepg50": ("bicubic", "jpeg"),
    "blur2_bicubic_noise20": ("blur", "bicubic", "noise"),
    "blur2_bicubic_jepg50": ("blur", "bicubic", "jpeg"),
    "bicubic_noise20_jepg50": ("bicubic", "noise", "jpeg"),
    "blur2_bicubic_noise20_jepg50": ("blur", "bicubic", "noise", "jpeg"),
}
RECIPE_NAMES: tuple[str, ...] = tuple(RECIPES)
#: The ``jpeg`` spelling of the JPEG sets -> the original's name.
ALIASES: dict[str, str] = {name.replace("jepg", "jpeg"): name for name in RECIPE_NAMES if "jepg" in name}

#: The Pillow whose bicubic the original ran: a 2022 release; every release from 4.3 to 12.1 gives the same
#: bytes (:func:`srprep.ops.pil_resize.pil_resize`; srprep's own PIL, pillow-simd, rounds differently).
PILLOW = (9, 0)

#: The constants of the Reflash test sets.
BLUR_SIZE = 21
BLUR_SIGMA = 2.0
NOISE_SIGMA = 20.0
JPEG_QUALITY = 50


def set_name(name: str) -> str:
    """The original's name of a set given either spelling (``bicubic_jpeg50`` -> ``bicubic_jepg50``)."""
    name = ALIASES.get(name, name)
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPE_NAMES)} "
                         f"(or the 'jpeg' spelling of the JPEG sets)")
    return name


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


def _add_noise(x: np.ndarray, z: np.ndarray, quantize: str) -> np.ndarray:
    """The original's noise step on 0..255 data (uint8 or float): float32 [0, 1] image plus the float64
    field ``z * sigma/255``, clipped, back to float32, times 255, clipped, to 8 bits by ``quantize``."""
    x01 = np.asarray(x).astype(np.float32) / np.float32(255.0)
    noisy = np.clip(x01 + z * (NOISE_SIGMA / 255.0), 0.0, 1.0).astype(np.float32)
    return quantize_u8(noisy * np.float32(255.0), quantize)


def noise_field(seed: int, key: str, lr_size: tuple[int, int]) -> np.ndarray:
    """The standard normal field (h, w, 3) float64 that the noise sets of image ``key`` add (times 20/255)."""
    return item_rng(seed, key).standard_normal((int(lr_size[0]), int(lr_size[1]), 3))


def apply_reflash(
    img: np.ndarray,
    name: str,
    *,
    scale: int = 4,
    seed: int,
    key: str = "",
    resize: str = "pil",
    quantize: str = "truncate",
    jpeg_backend: str = "pil",
    noise: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """Apply Reflash set ``name`` (either spelling) to an RGB uint8 (H, W, 3) image.

    ``noise``: the (H // scale, W // scale, 3) standard normal field to add (times 20/255) in the sets
    with noise; None: :func:`noise_field` ``(seed, key)``.

    Returns ``(lr, info)``: ``lr`` uint8 (H // scale, W // scale, 3) and a JSON-serialisable dict of
    everything that decided it (set, steps, constants, options, seed and key).
    """
    return apply_reflash_sets(img, [name], scale=scale, seed=seed, key=key, resize=resize, quantize=quantize,
                              jpeg_backend=jpeg_backend, noise=noise)[set_name(name)]


def apply_reflash_sets(
    img: np.ndarray,
    names,
    *,
    scale: int = 4,
    seed: int,
    key: str = "",
    resize: str = "pil",
    quantize: str = "truncate",
    jpeg_backend: str = "pil",
    noise: np.ndarray | None = None,
) -> dict[str, tuple[np.ndarray, dict]]:
    """Several Reflash sets of one image at once, each exactly as :func:`apply_reflash` makes it alone.

    The sets share their first steps: the image is blurred once, each of the (blurred and plain) images
    downscaled once, the noise field drawn once and added once per downscaled image; only the JPEG step is
    done per set. Arguments as :func:`apply_reflash`; ``names`` in either spelling.

    Returns:
        ``{set name (the original's spelling): (lr, info)}`` in the order of ``names``.
    """
    names = [set_name(n) for n in names]
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {img.dtype} {img.shape}")
    if resize not in ("pil", "matlab"):
        raise ValueError(f"resize must be 'pil' or 'matlab', got {resize!r}")
    quantize_u8(np.zeros(1), quantize)  # validate before any work
    h, w = img.shape[:2]
    lr_size = (h // scale, w // scale)
    if min(lr_size) < 1:
        raise ValueError(f"{h}x{w} image is smaller than the scale {scale}")
    z = None
    if any("noise" in RECIPES[n] for n in names):
        z = noise_field(seed, key, lr_size) if noise is None else np.asarray(noise, dtype=np.float64)
        if z.shape != (*lr_size, 3):
            raise ValueError(f"noise field is {z.shape}, expected {(*lr_size, 3)}")

    memo: dict[tuple[str, ...], np.ndarray] = {}

    def upto(ops: tuple[str, ...]) -> np.ndarray:
        """The image after the steps ``ops`` (a prefix of a set's steps without its JPEG), computed once."""
        if ops not in memo:
            if ops == ("blur",):
                if resize == "pil":
                    memo[ops] = cv2.GaussianBlur(img, (BLUR_SIZE, BLUR_SIZE), BLUR_SIGMA)
                else:
                    memo[ops] = filter2d(img.astype(np.float32), isotropic_gaussian_kernel(BLUR_SIZE, BLUR_SIGMA))
            elif ops[-1] == "bicubic":
                x = upto(ops[:-1]) if ops[:-1] else img
                if resize == "pil":
                    memo[ops] = pil_resize(x, lr_size, "bicubic", pillow=PILLOW)
                else:
                    memo[ops] = _matlab_downscale(x.astype(np.float32), lr_size).astype(np.float32)
            else:  # noise
                memo[ops] = _add_noise(upto(ops[:-1]), z, quantize)
        return memo[ops]

    out = {}
    for name in names:
        ops = RECIPES[name]
        pre = tuple(op for op in ops if op != "jpeg")
        x = upto(pre)
        if resize == "matlab" and "noise" not in ops:
            x = quantize_u8(x, quantize)
        lr = jpeg_roundtrip(x, JPEG_QUALITY, jpeg_backend) if "jpeg" in ops else x
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
            "noise_stream": "item_rng(seed, key).standard_normal((h, w, 3)) float64" if "noise" in ops else None,
        }
        out[name] = (lr, info)
    return out
