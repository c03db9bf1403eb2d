"""Blur kernels: normalisation, moments, the sinc kernel's formula and frequency response, random draws."""
import math

import numpy as np
import pytest
import scipy.special

from srprep.ops.degrade import kernels as K


def _moments(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (x, y) and covariance of a kernel seen as a distribution; x = column, y = row offset."""
    n = k.shape[0]
    ax = np.arange(n) - (n - 1) / 2
    xx, yy = np.meshgrid(ax, ax)
    mx, my = (k * xx).sum(), (k * yy).sum()
    dx, dy = xx - mx, yy - my
    cov = np.array([[(k * dx * dx).sum(), (k * dx * dy).sum()], [(k * dx * dy).sum(), (k * dy * dy).sum()]])
    return np.array([mx, my]), cov


@pytest.mark.parametrize("size", K.KERNEL_SIZES)
def test_every_kernel_type_sums_to_one(size):
    rng = np.random.default_rng(size)
    for ktype in K.KERNEL_TYPES:
        spec = K.random_kernel_spec(rng, size, kernel_list=[ktype], kernel_prob=[1.0])
        k = K.kernel_from_spec(spec)
        assert k.shape == (size, size)
        assert abs(k.sum() - 1) < 1e-12
        assert (k >= 0).all()
    for cutoff in (math.pi / 5, math.pi / 3, math.pi / 2, math.pi):
        assert abs(K.circular_lowpass_kernel(cutoff, size).sum() - 1) < 1e-12
    assert K.pulse_kernel(size).sum() == 1


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0])
def test_gaussian_variance_equals_sigma_squared(sigma):
    # 21 taps = +-10 px, at least 5 sigma: truncation and sampling errors are far below 1%
    k = K.isotropic_gaussian_kernel(21, sigma)
    mean, cov = _moments(k)
    assert np.allclose(mean, 0, atol=1e-12)
    assert cov[0, 0] == pytest.approx(sigma ** 2, rel=0.01)
    assert cov[1, 1] == pytest.approx(sigma ** 2, rel=0.01)
    assert abs(cov[0, 1]) < 1e-9


@pytest.mark.parametrize("sx,sy,theta", [(2.0, 1.0, 0.0), (2.0, 1.0, math.pi / 6), (1.2, 2.1, -1.0),
                                         (1.8, 1.1, math.pi / 2)])
def test_anisotropic_covariance_matches_rotation_and_sigmas(sx, sy, theta):
    k = K.anisotropic_gaussian_kernel(21, sx, sy, theta)
    _, cov = _moments(k)
    c, s = math.cos(theta), math.sin(theta)
    expected = np.array([[c, -s], [s, c]]) @ np.diag([sx * sx, sy * sy]) @ np.array([[c, s], [-s, c]])
    assert np.allclose(cov, expected, rtol=0.01, atol=0.01 * max(sx, sy) ** 2)
    # the long axis points along theta (x to the right, y downwards)
    evals, evecs = np.linalg.eigh(cov)
    major = evecs[:, np.argmax(evals)]
    if sx > sy:
        assert abs(abs(major @ np.array([c, s])) - 1) < 1e-3


def test_generalized_gaussian_and_plateau_shapes():
    g1 = K.generalized_gaussian_kernel(21, 2.0, 2.0, 0.0, 1.0)
    assert np.allclose(g1, K.isotropic_gaussian_kernel(21, 2.0))
    # beta > 1: flatter top and lighter tails than the Gaussian of the same sigma; beta < 1: heavier tails
    flat = K.generalized_gaussian_kernel(21, 2.0, 2.0, 0.0, 3.0)
    heavy = K.generalized_gaussian_kernel(21, 2.0, 2.0, 0.0, 0.5)
    assert flat[10, 11] / flat[10, 10] > g1[10, 11] / g1[10, 10]
    assert heavy[10, 20] / heavy[10, 10] > g1[10, 20] / g1[10, 10]
    # plateau: 1 / (1 + q^beta); at q = 1 (one sigma along x) the ratio to the centre is exactly 1/2
    p = K.plateau_kernel(21, 2.0, 2.0, 0.0, 1.5)
    assert p[10, 12] / p[10, 10] == pytest.approx(0.5)
    # anisotropic variants are rotated copies: theta = pi/2 swaps the axes
    a = K.plateau_kernel(21, 3.0, 1.0, 0.0, 1.5)
    b = K.plateau_kernel(21, 3.0, 1.0, math.pi / 2, 1.5)
    assert np.allclose(a, b.T, atol=1e-12)


def test_bessel_j1_matches_scipy():
    x = np.linspace(-150, 150, 30001)
    assert np.abs(K.bessel_j1(x) - scipy.special.j1(x)).max() < 1e-13
    with pytest.raises(ValueError):
        K.bessel_j1(200.0)


@pytest.mark.parametrize("size", [7, 13, 21])
@pytest.mark.parametrize("cutoff", [math.pi / 5, math.pi / 3, math.pi / 2, 0.9 * math.pi])
def test_sinc_kernel_is_the_sampled_ideal_response(size, cutoff):
    ax = np.arange(size) - (size - 1) / 2
    r = np.hypot(*np.meshgrid(ax, ax))
    with np.errstate(invalid="ignore", divide="ignore"):
        ideal = cutoff * scipy.special.j1(cutoff * r) / (2 * math.pi * r)
    ideal[size // 2, size // 2] = cutoff ** 2 / (4 * math.pi)
    assert np.allclose(K.circular_lowpass_kernel(cutoff, size), ideal / ideal.sum(), atol=1e-14)


@pytest.mark.parametrize("cutoff", [math.pi / 3, math.pi / 2, 2 * math.pi / 3])
def test_sinc_kernel_frequency_response(cutoff):
    """|H| of the zero-padded 21x21 kernel: passes below the cutoff, cuts above, 0.5 crossing near it.

    The kernel is a truncated (unwindowed) jinc, as Real-ESRGAN's: its passband ripples by up to about
    +-15 % (Gibbs), so "passes" means 0.8 < |H| < 1.2 up to 0.8 cutoff; "cuts" means |H| < 0.1 beyond
    1.4 cutoff.
    """
    n = 1024
    H = np.abs(np.fft.fft2(K.circular_lowpass_kernel(cutoff, 21), (n, n)))
    f = np.fft.fftfreq(n) * 2 * math.pi
    r = np.hypot(*np.meshgrid(f, f))
    inside = r <= math.pi
    assert H[0, 0] == pytest.approx(1.0)
    passband = H[r <= 0.8 * cutoff]
    assert passband.min() > 0.8 and passband.max() < 1.2
    assert abs(passband.mean() - 1) < 0.1
    assert H[(r >= 1.4 * cutoff) & inside].max() < 0.1
    # along both axes, |H| crosses one half within 10 % of the cutoff
    for profile in (H[0, : n // 2], H[: n // 2, 0]):
        crossing = f[: n // 2][np.argmax(profile < 0.5)]
        assert crossing / cutoff == pytest.approx(1.0, abs=0.1)


def test_sinc_pad_and_validation():
    k = K.circular_lowpass_kernel(math.pi / 2, 7, pad_to=21)
    assert k.shape == (21, 21) and k[:7].sum() == 0 and abs(k.sum() - 1) < 1e-12
    with pytest.raises(ValueError):
        K.circular_lowpass_kernel(0.0, 7)
    with pytest.raises(ValueError):
        K.isotropic_gaussian_kernel(8, 1.0)


def test_random_mixed_kernel_is_reproducible_and_uses_the_generator_only():
    a = [K.random_mixed_kernel(np.random.default_rng(5), 21) for _ in range(2)]
    assert np.array_equal(a[0][0], a[1][0]) and a[0][1] == a[1][1]
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    K.random_mixed_kernel(np.random.default_rng(5), 21)
    assert np.random.random() == before  # the global RNG was not advanced
    b = K.random_mixed_kernel(np.random.default_rng(6), 21)
    assert not np.array_equal(a[0][0], b[0])


def test_random_mixed_kernel_type_frequencies():
    rng = np.random.default_rng(0)
    n = 4000
    types = [K.random_kernel_spec(rng, 7).type for _ in range(n)]
    for t, p in zip(K.KERNEL_TYPES, K.KERNEL_PROB):
        freq = types.count(t) / n
        assert abs(freq - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-3, (t, freq, p)


def test_random_spec_ranges():
    rng = np.random.default_rng(1)
    for _ in range(300):
        s = K.random_kernel_spec(rng, 21, sigma_range=(0.2, 3.0))
        assert 0.2 <= s.sigma_x <= 3.0 and 0.2 <= s.sigma_y <= 3.0
        assert -math.pi <= s.theta <= math.pi
        if s.type.startswith("generalized"):
            assert 0.5 <= s.beta <= 4.0
        elif s.type.startswith("plateau"):
            assert 1.0 <= s.beta <= 2.0
        else:
            assert s.beta is None
        if s.type in ("iso", "generalized_iso", "plateau_iso"):
            assert s.sigma_x == s.sigma_y and s.theta == 0.0
    sinc = K.random_sinc_spec(rng, 7)
    assert sinc.type == "sinc" and math.pi / 3 <= sinc.cutoff <= math.pi
    assert K.KernelSpec.from_dict(sinc.to_dict()) == sinc
