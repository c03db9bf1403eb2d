"""Blur kernels for degradation synthesis: Gaussian (isotropic, anisotropic), generalized Gaussian,
plateau, and the 2-D sinc (circular low-pass) kernel, plus a random draw over kernel types.

Every kernel is a float64 array of shape ``(size, size)`` with an odd ``size``, centred on the middle
sample and normalised to sum to 1. Coordinates follow image convention: ``x`` is the column offset
(to the right), ``y`` the row offset (downwards). An anisotropic kernel with ``theta`` rotates its
``sigma_x`` axis by ``theta`` radians from the x axis towards the y axis, i.e. its covariance is
``R(theta) @ diag(sigma_x**2, sigma_y**2) @ R(theta).T`` in (x, y).

The kernel shapes and the way their parameters are drawn follow Real-ESRGAN (Wang et al., 2021):
generalized Gaussian ``exp(-0.5 * q**beta)`` and plateau ``1 / (1 + q**beta)`` where ``q`` is the
Mahalanobis form ``[x y] Sigma^-1 [x y]^T``.

>>> k = isotropic_gaussian_kernel(21, 2.0)
>>> k.shape, round(float(k.sum()), 12)
((21, 21), 1.0)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

#: Kernel types of Real-ESRGAN's random mixed kernel, in its order.
KERNEL_TYPES: tuple[str, ...] = (
    "iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso",
)
#: Real-ESRGAN's probabilities for :data:`KERNEL_TYPES` (train_realesrnet_x4plus.yml).
KERNEL_PROB: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
#: Odd kernel sizes 7..21 that Real-ESRGAN draws from uniformly.
KERNEL_SIZES: tuple[int, ...] = tuple(range(7, 22, 2))
#: Size that Real-ESRGAN pads every kernel to so that a batch can share one convolution.
PADDED_SIZE = 21


def _check_size(size: int) -> int:
    size = int(size)
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd integer, got {size}")
    return size


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Column offsets ``x`` and row offsets ``y`` of a ``(size, size)`` kernel, centred on zero."""
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    xx, yy = np.meshgrid(ax, ax)  # xx varies along columns, yy along rows
    return xx, yy


def covariance(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """2x2 covariance ``R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T`` in (x, y) coordinates.

    >>> covariance(2.0, 1.0, 0.0).tolist()
    [[4.0, 0.0], [0.0, 1.0]]
    """
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([float(sigma_x) ** 2, float(sigma_y) ** 2]) @ rot.T


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """``q = [x y] Sigma^-1 [x y]^T`` on the kernel grid (float64, shape (size, size))."""
    if sigma_x <= 0 or sigma_y <= 0:
        raise ValueError(f"sigmas must be positive, got {sigma_x}, {sigma_y}")
    inv = np.linalg.inv(covariance(sigma_x, sigma_y, theta))
    xx, yy = _grid(size)
    return inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy


def _normalise(kernel: np.ndarray) -> np.ndarray:
    return kernel / kernel.sum()


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0) -> np.ndarray:
    """Sampled 2-D Gaussian ``exp(-q / 2)``, normalised to sum 1; isotropic when ``sigma_y`` is None.

    >>> float(gaussian_kernel(7, 1.0)[3, 3]) > float(gaussian_kernel(7, 1.0)[3, 4])
    True
    """
    size = _check_size(size)
    sigma_y = sigma_x if sigma_y is None else sigma_y
    return _normalise(np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta)))


def isotropic_gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """Isotropic Gaussian kernel of standard deviation ``sigma`` pixels (float64, sums to 1)."""
    return gaussian_kernel(size, sigma, sigma, 0.0)


def anisotropic_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Anisotropic Gaussian: covariance :func:`covariance` ``(sigma_x, sigma_y, theta)``, sums to 1."""
    return gaussian_kernel(size, sigma_x, sigma_y, theta)


def generalized_gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float, theta: float, beta: float
) -> np.ndarray:
    """Generalized Gaussian ``exp(-0.5 * q**beta)``: ``beta=1`` is the Gaussian, ``beta<1`` heavier tails,
    ``beta>1`` flatter top (Pascal et al., 2013, as used by Real-ESRGAN). Sums to 1.

    >>> np.allclose(generalized_gaussian_kernel(9, 1.5, 1.5, 0.0, 1.0), isotropic_gaussian_kernel(9, 1.5))
    True
    """
    size = _check_size(size)
    q = _quadratic_form(size, sigma_x, sigma_y, theta)
    return _normalise(np.exp(-0.5 * np.power(q, beta)))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Plateau-shaped kernel ``1 / (1 + q**beta)`` (Real-ESRGAN's "plateau"), sums to 1."""
    size = _check_size(size)
    q = _quadratic_form(size, sigma_x, sigma_y, theta)
    return _normalise(1.0 / (np.power(q, beta) + 1.0))


# Number of nodes of the periodic trapezoid rule in bessel_j1. The rule's error is of the order of
# J_M(x), which is below double precision once M exceeds about e*x/2 + 20; 256 nodes cover x <= 150,
# far beyond the largest argument a 21x21 kernel needs (pi * 10 * sqrt(2) ~ 44.4).
_J1_NODES = 256
_J1_MAX_ARG = 150.0


def bessel_j1(x: np.ndarray | float) -> np.ndarray:
    """Bessel function of the first kind of order 1, for ``|x| <= 150`` (float64, ~1e-15 absolute).

    Computed from Bessel's integral ``J1(x) = (1/2pi) * integral_0^2pi cos(t - x sin t) dt`` with the
    periodic trapezoid rule on 256 nodes. For a smooth periodic integrand that rule is spectrally
    accurate (its error is a sum of ``J_{1 +- kM}(x)`` terms), so no series/asymptotic switch-over and
    no scipy dependency is needed.

    >>> round(float(bessel_j1(1.0)), 12)
    0.440050585745
    """
    x = np.asarray(x, dtype=np.float64)
    if np.any(np.abs(x) > _J1_MAX_ARG):
        raise ValueError(f"bessel_j1 supports |x| <= {_J1_MAX_ARG}")
    t = np.arange(_J1_NODES, dtype=np.float64) * (2 * math.pi / _J1_NODES)
    vals = np.cos(t - x[..., None] * np.sin(t)).mean(axis=-1)
    return vals


def circular_lowpass_kernel(cutoff: float, size: int, pad_to: int = 0) -> np.ndarray:
    """2-D sinc kernel: the ideal circular low-pass filter of cutoff ``cutoff`` rad/sample, truncated.

    The ideal filter passing ``|omega| < cutoff`` has impulse response
    ``h(r) = cutoff * J1(cutoff * r) / (2 pi r)`` with ``h(0) = cutoff^2 / (4 pi)``; it is sampled on the
    ``(size, size)`` grid, normalised to sum 1 (unit DC gain) and zero-padded to ``pad_to`` if larger.
    ``cutoff`` is in radians per sample, ``pi`` being the Nyquist frequency. Real-ESRGAN uses it to
    synthesise ringing and overshoot.

    >>> k = circular_lowpass_kernel(np.pi / 2, 11, pad_to=21)
    >>> k.shape, round(float(k.sum()), 12)
    ((21, 21), 1.0)
    """
    size = _check_size(size)
    if not 0 < cutoff <= math.pi:
        raise ValueError(f"cutoff must be in (0, pi], got {cutoff}")
    xx, yy = _grid(size)
    r = np.hypot(xx, yy)
    safe_r = np.where(r == 0, 1.0, r)
    kernel = cutoff * bessel_j1(cutoff * r) / (2 * math.pi * safe_r)
    c = (size - 1) // 2
    kernel[c, c] = cutoff ** 2 / (4 * math.pi)  # the limit of J1(a r)/r as r -> 0 is a/2
    kernel = _normalise(kernel)
    if pad_to and pad_to > size:
        kernel = pad_kernel(kernel, pad_to)
    return kernel


def pulse_kernel(size: int = PADDED_SIZE) -> np.ndarray:
    """Identity kernel (a single 1 in the centre): convolving with it changes nothing."""
    size = _check_size(size)
    k = np.zeros((size, size), dtype=np.float64)
    k[size // 2, size // 2] = 1.0
    return k


def pad_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad an odd square kernel symmetrically to ``(size, size)``; returns it unchanged if not smaller."""
    size = _check_size(size)
    k = kernel.shape[0]
    if k >= size:
        return kernel
    p = (size - k) // 2
    return np.pad(kernel, ((p, p), (p, p)))


@dataclass(frozen=True)
class KernelSpec:
    """The generating parameters of one kernel; :func:`kernel_from_spec` rebuilds the kernel.

    ``type`` is one of :data:`KERNEL_TYPES`, ``"sinc"`` or ``"pulse"``. Sigmas are in pixels, ``theta``
    in radians, ``cutoff`` (sinc only) in radians per sample. Unused fields are None.
    """

    type: str
    size: int
    sigma_x: float | None = None
    sigma_y: float | None = None
    theta: float | None = None
    beta: float | None = None
    cutoff: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "KernelSpec":
        return cls(**d)


def kernel_from_spec(spec: KernelSpec) -> np.ndarray:
    """Rebuild the (size, size) float64 kernel that ``spec`` describes.

    >>> kernel_from_spec(KernelSpec("pulse", 3)).tolist()[1]
    [0.0, 1.0, 0.0]
    """
    t = spec.type
    if t == "pulse":
        return pulse_kernel(spec.size)
    if t == "sinc":
        return circular_lowpass_kernel(spec.cutoff, spec.size)
    if t in ("iso", "aniso"):
        return gaussian_kernel(spec.size, spec.sigma_x, spec.sigma_y, spec.theta)
    if t in ("generalized_iso", "generalized_aniso"):
        return generalized_gaussian_kernel(spec.size, spec.sigma_x, spec.sigma_y, spec.theta, spec.beta)
    if t in ("plateau_iso", "plateau_aniso"):
        return plateau_kernel(spec.size, spec.sigma_x, spec.sigma_y, spec.theta, spec.beta)
    raise ValueError(f"unknown kernel type {t!r}")


def _draw_beta(rng: np.random.Generator, beta_range: Sequence[float]) -> float:
    # Real-ESRGAN draws below 1 or above 1 with equal chance, so that thin and heavy tails are equally
    # likely whatever the range's asymmetry. With betap_range [1, 2] the "below" half collapses to 1.
    lo, hi = float(beta_range[0]), float(beta_range[1])
    if lo < 1.0 < hi or lo == 1.0 or hi == 1.0:
        if rng.random() < 0.5:
            return float(rng.uniform(lo, 1.0))
        return float(rng.uniform(1.0, hi))
    return float(rng.uniform(lo, hi))


def random_kernel_spec(
    rng: np.random.Generator,
    size: int,
    *,
    kernel_list: Sequence[str] = KERNEL_TYPES,
    kernel_prob: Sequence[float] = KERNEL_PROB,
    sigma_range: Sequence[float] = (0.2, 3.0),
    rotation_range: Sequence[float] = (-math.pi, math.pi),
    betag_range: Sequence[float] = (0.5, 4.0),
    betap_range: Sequence[float] = (1.0, 2.0),
) -> KernelSpec:
    """Draw the parameters of one mixed kernel (type, sigmas, rotation, beta) as Real-ESRGAN does.

    Draw order from ``rng``: type, sigma_x, then for anisotropic types sigma_y and theta, then beta for
    generalized/plateau types. Isotropic types get ``sigma_y = sigma_x`` and ``theta = 0``.
    """
    size = _check_size(size)
    p = np.asarray(kernel_prob, dtype=np.float64)
    if len(p) != len(kernel_list) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError("kernel_prob must be non-negative weights, one per kernel type")
    ktype = kernel_list[int(rng.choice(len(kernel_list), p=p / p.sum()))]
    sigma_x = float(rng.uniform(sigma_range[0], sigma_range[1]))
    if ktype.endswith("aniso"):
        sigma_y = float(rng.uniform(sigma_range[0], sigma_range[1]))
        theta = float(rng.uniform(rotation_range[0], rotation_range[1]))
    elif ktype.endswith("iso"):
        sigma_y, theta = sigma_x, 0.0
    else:
        raise ValueError(f"unknown kernel type {ktype!r}")
    beta = None
    if ktype.startswith("generalized"):
        beta = _draw_beta(rng, betag_range)
    elif ktype.startswith("plateau"):
        beta = _draw_beta(rng, betap_range)
    return KernelSpec(ktype, size, sigma_x, sigma_y, theta, beta)


def random_mixed_kernel(rng: np.random.Generator, size: int, **kwargs) -> tuple[np.ndarray, KernelSpec]:
    """Draw a kernel type with Real-ESRGAN's probabilities and its parameters; returns (kernel, spec).

    Keyword arguments are those of :func:`random_kernel_spec`. The kernel is float64 (size, size), sums to 1.

    >>> k, spec = random_mixed_kernel(np.random.default_rng(0), 21)
    >>> k.shape, spec.type in KERNEL_TYPES
    ((21, 21), True)
    """
    spec = random_kernel_spec(rng, size, **kwargs)
    return kernel_from_spec(spec), spec


def random_sinc_spec(rng: np.random.Generator, size: int, cutoff_range: Sequence[float] | None = None) -> KernelSpec:
    """Draw a sinc kernel's cutoff uniformly in ``cutoff_range`` (rad/sample).

    Default range as Real-ESRGAN's blur stages: ``[pi/3, pi]`` for sizes below 13, else ``[pi/5, pi]``
    (a low cutoff needs a large support to show its ringing).
    """
    size = _check_size(size)
    if cutoff_range is None:
        cutoff_range = (math.pi / 3, math.pi) if size < 13 else (math.pi / 5, math.pi)
    return KernelSpec("sinc", size, cutoff=float(rng.uniform(cutoff_range[0], cutoff_range[1])))
