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
import importlib

# Each name is imported from its module on first use (PEP 562), so that code needing only the numpy functions
# (the Reflash sets, the parameter records) never imports torch, which the batch functions use.
_MODULES = {
    "contact": ("degradation_sheet",),
    "filtering": ("filter2d", "filter2d_torch"),
    "jpeg": ("jpeg_decode", "jpeg_encode", "jpeg_roundtrip", "jpeg_torch"),
    "kernels": ("KERNEL_PROB", "KERNEL_SIZES", "KERNEL_TYPES", "KernelSpec", "anisotropic_gaussian_kernel",
                "circular_lowpass_kernel", "generalized_gaussian_kernel", "isotropic_gaussian_kernel",
                "kernel_from_spec", "plateau_kernel", "pulse_kernel", "random_kernel_spec", "random_mixed_kernel",
                "random_sinc_spec"),
    "noise": ("add_gaussian_noise", "add_gaussian_noise_torch", "add_poisson_noise", "add_poisson_noise_torch",
              "gaussian_noise", "poisson_noise"),
    "params": ("DegradationParams", "load_params", "save_params"),
    "pipeline": ("DegradationConfig", "apply", "apply_batch", "draw_params"),
    "recipes": ("RECIPE_NAMES", "RECIPES", "apply_reflash"),
    "resize": ("RESIZE_MODES", "resize", "resize_torch"),
    "rng": ("item_rng", "item_seed_sequence"),
    "sharpen": ("usm_sharp", "usm_sharp_torch"),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


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
