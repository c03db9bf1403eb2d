"""Degradation synthesis for real-world SR: blur kernels, noise, JPEG, resizing, USM sharpening,
Real-ESRGAN's second-order pipeline (draw parameters, then apply them deterministically) and the
fixed Reflash Dropout test-set recipes.

Conventions: images are RGB. numpy functions take one (H, W, C) image, float32 in [0, 1] unless stated
(uint8 where a function says so); torch functions take a (B, C, H, W) float batch in [0, 1] on any device.
Every random draw comes from an explicit ``np.random.Generator`` or ``torch.Generator``; nothing here
touches a global RNG.

>>> import numpy as np
>>> from srprep.ops.degrade import DegradationConfig, draw_params, apply, item_rng
>>> p = draw_params(DegradationConfig(), item_rng(0, "0001"), (64, 64))
>>> apply(np.full((64, 64, 3), 128, np.uint8), p).shape
(16, 16, 3)
"""
from .contact import degradation_sheet
from .filtering import filter2d, filter2d_torch
from .jpeg import jpeg_decode, jpeg_encode, jpeg_roundtrip, jpeg_torch
from .kernels import (KERNEL_PROB, KERNEL_SIZES, KERNEL_TYPES, KernelSpec, anisotropic_gaussian_kernel,
                      circular_lowpass_kernel, generalized_gaussian_kernel, isotropic_gaussian_kernel,
                      kernel_from_spec, plateau_kernel, pulse_kernel, random_kernel_spec, random_mixed_kernel,
                      random_sinc_spec)
from .noise import (add_gaussian_noise, add_gaussian_noise_torch, add_poisson_noise, add_poisson_noise_torch,
                    gaussian_noise, poisson_noise)
from .params import DegradationParams, load_params, save_params
from .pipeline import DegradationConfig, apply, apply_batch, draw_params
from .recipes import RECIPE_NAMES, RECIPES, apply_reflash
from .resize import RESIZE_MODES, resize, resize_torch
from .rng import item_rng, item_seed_sequence
from .sharpen import usm_sharp, usm_sharp_torch

__all__ = [
    "KERNEL_PROB", "KERNEL_SIZES", "KERNEL_TYPES", "KernelSpec", "RECIPES", "RECIPE_NAMES", "RESIZE_MODES",
    "DegradationConfig", "DegradationParams",
    "add_gaussian_noise", "add_gaussian_noise_torch", "add_poisson_noise", "add_poisson_noise_torch",
    "anisotropic_gaussian_kernel", "apply", "apply_batch", "apply_reflash", "circular_lowpass_kernel",
    "degradation_sheet", "draw_params", "filter2d", "filter2d_torch", "gaussian_noise",
    "generalized_gaussian_kernel", "isotropic_gaussian_kernel", "item_rng", "item_seed_sequence",
    "jpeg_decode", "jpeg_encode", "jpeg_roundtrip", "jpeg_torch", "kernel_from_spec", "load_params",
    "plateau_kernel", "poisson_noise", "pulse_kernel", "random_kernel_spec", "random_mixed_kernel",
    "random_sinc_spec", "resize", "resize_torch", "save_params", "usm_sharp", "usm_sharp_torch",
]
