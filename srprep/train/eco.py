"""ECO (Lee & Heo, "Noise-free Optimization in Early Training Steps for Image Super-Resolution", AAAI 2024).

Early in training the network is fitted to *centroids* instead of the noisy HR: ``sr_pretrained = f(lr)`` of a
frozen pretrained network and ``lr_pretrained`` = MATLAB bicubic of it. Each step trains on

    x = alpha * centroid + (1 - alpha) * original        (for the LR input and the HR target alike)

with the centroid weight ``alpha`` going from 1 to 0 over training. Schedules (``p = step / total``):

* ``sigmoid`` (the authors' code, the default): ``s = sigmoid(10 (p - 0.5) - shift)``,
  ``s = clamp(1.2 (s - 0.5), -0.5, 0.5) + 0.5``, ``alpha = 1 - s``. With ``shift = 0`` alpha is exactly 1
  up to ``p = 0.5 - ln(11)/10 ~ 0.26``, 0.5 at ``p = 0.5`` and exactly 0 from ``p ~ 0.74``.
* ``linear`` (the authors' README): ``alpha = 1 - p``. The README notes no significant difference.

The authors set the weight on the dataset object of the main process, while DataLoader workers mix images
with their own copy made when an epoch's iterator starts, so in their runs alpha changed once per epoch;
here it is recomputed every step (on the device, after cropping: mixing and cropping commute).
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["ECO_SCHEDULES", "eco_alpha", "eco_mix", "eco_schedule_plot"]

ECO_SCHEDULES = ("sigmoid", "linear")


def eco_alpha(step: int, total: int, schedule: str = "sigmoid", shift: float = 0.0) -> float:
    """Centroid weight at ``step`` of ``total`` (1 = all centroid, 0 = all original).

    >>> eco_alpha(0, 100), eco_alpha(50, 100), eco_alpha(100, 100)
    (1.0, 0.5, 0.0)
    >>> eco_alpha(25, 100, "linear")
    0.75
    """
    if total <= 0:
        raise ValueError(f"total must be positive, got {total}")
    p = min(max(step / total, 0.0), 1.0)
    if schedule == "linear":
        return 1.0 - p
    if schedule != "sigmoid":
        raise ValueError(f"schedule must be one of {ECO_SCHEDULES}, not {schedule!r}")
    s = 1.0 / (1.0 + math.exp(-(10.0 * (p - 0.5) - shift)))
    # The 1.2 stretch plus clamp makes the curve reach exactly 1 and 0 a quarter of the run from either end.
    s = min(max(1.2 * (s - 0.5), -0.5), 0.5) + 0.5
    return 1.0 - s


def eco_mix(original: torch.Tensor, centroid: torch.Tensor, alpha: float) -> torch.Tensor:
    """``alpha * centroid + (1 - alpha) * original``, float tensors of one shape (e.g. (B, 3, H, W) in [0, 1])."""
    if original.shape != centroid.shape:
        raise ValueError(f"ECO mix needs equal shapes, got {tuple(original.shape)} and {tuple(centroid.shape)}")
    if alpha == 0.0:
        return original
    if alpha == 1.0:
        return centroid
    return centroid * alpha + original * (1.0 - alpha)


def eco_schedule_plot(shift: float = 0.0, *, mark: float | None = None,
                      size: tuple[int, int] = (640, 360)) -> np.ndarray:
    """(H, W, 3) uint8 RGB plot of both schedules against p = step / total (``mark``: a vertical line at p)."""
    from srprep.ops.figures import Panel, line_panels

    p = np.linspace(0.0, 1.0, 201)
    series = {
        f"sigmoid (shift {shift:g})": (p, [eco_alpha(int(round(v * 1000)), 1000, "sigmoid", shift) for v in p]),
        "linear": (p, 1.0 - p),
    }
    vlines = [mark] if mark is not None else []
    return line_panels([Panel(series, title="ECO centroid weight alpha", xlabel="p = step / total", ylabel="alpha",
                              ylim=(0.0, 1.0), vlines=vlines)], width=size[0], panel_height=size[1])
