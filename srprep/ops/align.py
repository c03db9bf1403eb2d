"""Measuring how two images of one scene are misaligned: phase correlation, tile shifts, colour gains.

Used by ``srprep pairs check`` to find damaged LR/HR pairs (camera shift, moving objects, colour
mismatch), but the functions here know nothing of pairs or files: arrays in, numbers out.

Shift convention (every function here): a shift ``(dy, dx)`` says that ``moving`` shows the content of
``ref`` displaced by ``dy`` pixels down and ``dx`` pixels right, i.e. ``moving(y, x) ~ ref(y - dy, x - dx)``.
``fourier_shift(ref, dy, dx)`` makes exactly such a ``moving``, and ``phase_correlation`` returns its
``(dy, dx)``.

How the sub-pixel shift is found (Kuglin & Hines' phase correlation, refined by Guizar-Sicairos et al.'s
matrix-multiply DFT, "Efficient subpixel image registration algorithms", Opt. Lett. 2008):

1. both images lose their mean and are multiplied by a Hann window, so that the jump at the image border
   (the DFT treats an image as periodic) does not create a false peak at zero shift;
2. the normalised cross-power spectrum ``M conj(R) / |M conj(R)|`` keeps only the phase difference, whose
   inverse DFT is a sharp peak at the shift, whatever the image's spectrum (textures and flat areas weigh
   the same, unlike a plain cross-correlation); a Gaussian taper on it damps the highest frequencies, where
   an LR image made by a real camera (or an aliasing kernel) no longer follows its HR's phase;
3. the integer peak is refined by evaluating the same inverse DFT on a fine grid (``1/upsample`` pixel)
   around it with two small matrix products (cost ``O(n * m * k)`` for ``k`` grid points instead of an
   ``upsample``-times larger FFT), then by a parabola through the best grid point and its neighbours.

Accuracy on real photos (the 13 bundled Kodak/Set5 images; ``tests/ops/test_align.py``,
``tests/stages/test_pairs.py``): Fourier shifts are found within 0.01 px; an LR made by MATLAB bicubic from
an HR scene moved by 0.25-8 HR pixels, against the bicubic-downsampled HR, within 0.06 LR px (median 0.02)
at x2, x3 and x4. The peak height (1 for identical images, about ``1/sqrt(n*m)`` for unrelated ones) says
how much of the two images moved together.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Shift", "TileShifts", "to_gray", "phase_correlation", "tile_corners", "tile_shifts", "fourier_shift",
           "channel_gains"]

# Standard deviation of the Gaussian taper on the cross-power spectrum, as a fraction of the Nyquist
# frequency: keeps ~all of the band where a bicubic LR still carries its HR's phase, damps the last octave.
_TAPER = 0.5
# The refinement grid spans +-_REACH px around the integer peak: the true peak is within 0.5 px of it, and
# the extra margin keeps a parabola fit possible when the best grid point is at the edge.
_REACH = 1.0
# Finer refinements start from the best point of a 1/_COARSE-px grid and search _FINE_REACH px around it: more
# than the coarse step, so the fine grid's best point and both its parabola neighbours are inside.
_COARSE = 4
_FINE_REACH = 0.3


@dataclass(frozen=True)
class Shift:
    """A measured translation: ``moving(y, x) ~ ref(y - dy, x - dx)``.

    dy, dx: pixels (down, right), sub-pixel. peak: height of the phase-correlation peak in [0, 1] (1: the
    images are exact translates; a small value: little of the content moved together).
    """

    dy: float
    dx: float
    peak: float

    @property
    def magnitude(self) -> float:
        """Length of the shift vector in pixels."""
        return float(np.hypot(self.dy, self.dx))


@dataclass(frozen=True)
class TileShifts:
    """Shifts measured on tiles of a pair of images (see :func:`tile_shifts`).

    centers: (T, 2) float64 tile centres (y, x) in pixels of the input.
    shifts: (T, 2) float64 (dy, dx) per tile, same convention as :class:`Shift`.
    peaks: (T,) float64 peak heights in [0, 1].
    contrast: (T,) float64 standard deviation of the ``ref`` tile (how much texture it has to align on).
    """

    centers: np.ndarray
    shifts: np.ndarray
    peaks: np.ndarray
    contrast: np.ndarray

    def __len__(self) -> int:
        return len(self.peaks)


def to_gray(img: np.ndarray) -> np.ndarray:
    """Luma-like grey image for alignment: ``(H, W, 3)`` or ``(H, W)`` any dtype -> ``(H, W)`` float32.

    The BT.601 weights (0.299, 0.587, 0.114) without offset or rounding; values keep the input's range
    (0..255 for uint8).
    """
    a = np.asarray(img)
    if a.ndim == 2:
        return a.astype(np.float32, copy=False)
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"to_gray: expected an (H, W) or (H, W, 3) image, got shape {a.shape}")
    if a.shape[2] == 1:
        return a[:, :, 0].astype(np.float32)
    a = a.astype(np.float32, copy=False)
    return a[:, :, 0] * np.float32(0.299) + a[:, :, 1] * np.float32(0.587) + a[:, :, 2] * np.float32(0.114)


def _check_pair(ref: np.ndarray, moving: np.ndarray, ndim: int, name: str) -> None:
    if not isinstance(ref, np.ndarray) or not isinstance(moving, np.ndarray):
        raise TypeError(f"{name}: expected numpy arrays, got {type(ref).__name__} and {type(moving).__name__}")
    if ref.shape != moving.shape:
        raise ValueError(f"{name}: shapes differ: ref {ref.shape} vs moving {moving.shape}")
    if ref.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim}-D arrays, got shape {ref.shape}")


def _smooth_length(n: int) -> int:
    """The largest length <= n whose only prime factors are 2, 3 and 5 (a fast FFT size)."""
    best = 1
    p2 = 1
    while p2 <= n:
        p3 = p2
        while p3 <= n:
            p5 = p3
            while p5 <= n:
                best = max(best, p5)
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return best


def _hann(n: int) -> np.ndarray:
    # Periodic Hann (no zero at both ends): for a DFT window the symmetric version wastes a sample.
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def _taper(shape: tuple[int, int]) -> np.ndarray:
    """Gaussian weights on the half spectrum of an (n, m) real image (rfft2 layout), float32."""
    fy = np.fft.fftfreq(shape[0]).astype(np.float32)[:, None] / np.float32(0.5)
    fx = np.fft.rfftfreq(shape[1]).astype(np.float32)[None, :] / np.float32(0.5)
    return np.exp(-(fy * fy + fx * fx) / np.float32(2 * _TAPER * _TAPER))


def _cross_power(ref: np.ndarray, moving: np.ndarray, taper: bool) -> np.ndarray:
    """Normalised cross-power spectra of stacks ``(..., n, m)`` (windowed, mean removed), complex64.

    Real images have Hermitian spectra, so only the half spectrum (``rfft2``, ``m // 2 + 1`` columns) is
    computed and kept: half the work, and :func:`_upsampled` accounts for the missing half.
    """
    n, m = ref.shape[-2:]
    win = _hann(n)[:, None] * _hann(m)[None, :]
    a = (ref - ref.mean(axis=(-2, -1), keepdims=True, dtype=np.float64).astype(np.float32)) * win
    b = (moving - moving.mean(axis=(-2, -1), keepdims=True, dtype=np.float64).astype(np.float32)) * win
    cross = np.fft.rfft2(b)
    cross *= np.conj(np.fft.rfft2(a))
    mag = np.abs(cross)
    # Frequencies where either image has no energy carry no phase: leave them out rather than divide by 0.
    eps = np.float32(1e-6) * mag.max(axis=(-2, -1), keepdims=True) + np.float32(1e-30)
    scale = np.where(mag > eps, np.float32(1) / np.maximum(mag, eps), np.float32(0))
    if taper:
        scale *= _taper((n, m))
    cross *= scale
    return cross.astype(np.complex64, copy=False)


def _integer_peaks(cross: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer peak (signed: a peak past the middle is a negative shift) of each spectrum's inverse DFT."""
    n = cross.shape[-2]
    corr = np.fft.irfft2(cross, s=(n, m))
    flat = corr.reshape(-1, n * m).argmax(axis=1)
    py, px = np.divmod(flat, m)
    py = np.where(py > n // 2, py - n, py)
    px = np.where(px > m // 2, px - m, px)
    return py.astype(np.float64), px.astype(np.float64)


def _upsampled(cross: np.ndarray, m: int, cy: np.ndarray, cx: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Inverse DFT of half spectra ``cross`` (T, n, m//2+1) at points ``(cy + offsets) x (cx + offsets)``.

    Two matrix products per spectrum, ``E_y (k x n) @ cross @ E_x (m//2+1 x k)``; each column of the half
    spectrum stands for itself and its conjugate mirror (except DC and Nyquist), hence weight 2 and the
    real part. Divided by ``n * m`` like an inverse DFT.
    """
    n = cross.shape[-2]
    ky = np.fft.fftfreq(n, 1.0 / n)
    kx = np.fft.rfftfreq(m, 1.0 / m)
    weight = np.full(kx.shape, 2.0)
    weight[0] = 1.0
    if m % 2 == 0:
        weight[-1] = 1.0
    # exp(2 pi i (c + o) k / n) = exp(2 pi i c k / n) * exp(2 pi i o k / n): T + k complex exponentials per
    # frequency instead of T * k.
    ey = (np.exp(2j * np.pi * cy[:, None, None] * ky[None, None, :] / n)
          * np.exp(2j * np.pi * offsets[None, :, None] * ky[None, None, :] / n)).astype(np.complex64)  # (T, k, n)
    ex = (np.exp(2j * np.pi * kx[None, :, None] * cx[:, None, None] / m)
          * np.exp(2j * np.pi * kx[None, :, None] * offsets[None, None, :] / m)
          * weight[None, :, None]).astype(np.complex64)  # (T, m//2+1, k)
    # cross @ ex first: it walks cross along its rows (a few times faster than ey @ cross on large spectra).
    return (ey @ (cross @ ex)).real / np.float32(n * m)


def _parabola(left: np.ndarray, mid: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Vertex offset in (-0.5, 0.5) of the parabola through (-1, left), (0, mid), (1, right)."""
    den = left - 2 * mid + right
    safe = np.where(den < 0, den, -1.0)
    return np.where(den < 0, np.clip(0.5 * (left - right) / safe, -0.5, 0.5), 0.0)


def _grid_peak(cross: np.ndarray, m: int, cy: np.ndarray, cx: np.ndarray, offsets: np.ndarray):
    """The upsampled correlation on the grid ``(cy + offsets) x (cx + offsets)`` and its best point per spectrum."""
    grid = _upsampled(cross, m, cy, cx, offsets)  # (T, k, k)
    flat = grid.reshape(grid.shape[0], -1).argmax(axis=1)
    iy, ix = np.divmod(flat, grid.shape[2])
    return grid, iy, ix


def _refine(cross: np.ndarray, m: int, upsample: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sub-pixel (dy, dx, peak) for a stack of half cross-power spectra of (T, n, m) images."""
    py, px = _integer_peaks(cross, m)
    reach = _REACH
    if upsample > _COARSE and upsample % _COARSE == 0:
        # Coarse to fine: the best point of a 1/4-px grid over the whole reach, then the 1/upsample grid
        # within _FINE_REACH of it (the fine grid contains the coarse one). The peak is one smooth hump within
        # the reach, so this finds the best point of the whole fine grid with 9^2 + 13^2 evaluations instead of
        # 41^2 (at 1/20 px): the matrix-multiply DFT was half of the global measurement's time.
        k = round(_REACH * _COARSE)
        coarse = np.arange(-k, k + 1) / _COARSE
        _, iy, ix = _grid_peak(cross, m, py, px, coarse)
        py, px = py + coarse[iy], px + coarse[ix]
        reach = _FINE_REACH
    step = 1.0 / upsample
    k = int(round(reach * upsample))
    offsets = np.arange(-k, k + 1) * step
    grid, iy, ix = _grid_peak(cross, m, py, px, offsets)
    # Keep the parabola's three points inside the grid.
    iy = np.clip(iy, 1, grid.shape[1] - 2)
    ix = np.clip(ix, 1, grid.shape[2] - 2)
    rows = np.arange(grid.shape[0])
    mid = grid[rows, iy, ix]
    fy = _parabola(grid[rows, iy - 1, ix], mid, grid[rows, iy + 1, ix])
    fx = _parabola(grid[rows, iy, ix - 1], mid, grid[rows, iy, ix + 1])
    dy = py + offsets[iy] + fy * step
    dx = px + offsets[ix] + fx * step
    # Normalise the height by the taper's mean gain so identical images still give a peak of 1.
    return dy, dx, np.clip(mid / _taper_gain(cross, m), 0.0, 1.0)


def _taper_gain(cross: np.ndarray, m: int) -> np.ndarray:
    """The peak an exact translate would give: the mean modulus of the (tapered) full spectrum."""
    n = cross.shape[-2]
    mod = np.abs(cross).astype(np.float64)
    total = 2 * mod.sum(axis=(-2, -1)) - mod[..., 0].sum(axis=-1)
    if m % 2 == 0:
        total -= mod[..., -1].sum(axis=-1)
    return np.maximum(total / (n * m), 1e-12)


def phase_correlation(ref: np.ndarray, moving: np.ndarray, *, upsample: int = 20, taper: bool = True) -> Shift:
    """Sub-pixel translation of ``moving`` against ``ref`` by phase correlation.

    Args:
        ref, moving: ``(H, W)`` arrays of one shape (grey images, any real dtype; see :func:`to_gray`),
            at least 8x8. Shifts up to about a quarter of the size are found reliably (the Hann window
            loses content that leaves the frame).
        upsample: refinement grid of ``1/upsample`` px before the final parabola fit (20: 0.05 px).
        taper: damp the highest frequencies of the cross-power spectrum (see the module docstring). Turn
            it off for synthetic data that follows a pure translation up to Nyquist (Fourier shifts).

    Returns:
        :class:`Shift` ``(dy, dx, peak)`` with ``moving(y, x) ~ ref(y - dy, x - dx)``.

    Raises:
        TypeError, ValueError: not numpy arrays, shapes differ, not 2-D, smaller than 8x8, upsample < 1.

    Example:
        >>> ref = np.random.default_rng(0).random((128, 128))
        >>> s = phase_correlation(ref, fourier_shift(ref, 1.25, -3.5))
        >>> abs(s.dy - 1.25) < 0.01, abs(s.dx + 3.5) < 0.01
        (True, True)
    """
    _check_pair(ref, moving, 2, "phase_correlation")
    if min(ref.shape) < 8:
        raise ValueError(f"phase_correlation: images of {ref.shape[0]}x{ref.shape[1]} are too small (at least 8x8)")
    if int(upsample) != upsample or upsample < 1:
        raise ValueError(f"phase_correlation: upsample must be an integer >= 1, not {upsample!r}")
    # A centred crop to a 2-3-5-smooth size: a 678-pixel axis (2 x 3 x 113) takes the FFT 2-3 times longer
    # than 675 (measured), and the few pixels dropped at the borders are under the window's zero anyway.
    n, m = _smooth_length(ref.shape[0]), _smooth_length(ref.shape[1])
    y0, x0 = (ref.shape[0] - n) // 2, (ref.shape[1] - m) // 2
    win = (slice(y0, y0 + n), slice(x0, x0 + m))
    cross = _cross_power(ref[win].astype(np.float32)[None], moving[win].astype(np.float32)[None], taper)
    dy, dx, peak = _refine(cross, m, int(upsample))
    return Shift(float(dy[0]), float(dx[0]), float(peak[0]))


def tile_corners(shape: tuple[int, int], tile: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners ``(iy, ix)`` (row-major, int arrays) of the tiles :func:`tile_shifts` lays on an image of
    ``shape``: starts ``0, stride, 2*stride ...`` along each axis plus one flush with the far edge; none when
    the image is smaller than a tile."""

    def starts(length: int) -> list[int]:
        if length < tile:
            return []
        s = list(range(0, length - tile + 1, stride))
        if s[-1] != length - tile:
            s.append(length - tile)
        return s

    ys, xs = starts(shape[0]), starts(shape[1])
    iy, ix = np.meshgrid(np.array(ys, dtype=np.intp), np.array(xs, dtype=np.intp), indexing="ij")
    return iy.ravel(), ix.ravel()


def tile_shifts(ref: np.ndarray, moving: np.ndarray, *, tile: int = 64, stride: int | None = None,
                upsample: int = 10, taper: bool = True, min_contrast: float = 0.0,
                corners: tuple[np.ndarray, np.ndarray] | None = None) -> TileShifts:
    """Phase correlation on square tiles laid on a regular grid: where do parts of the images move apart?

    Tiles start at ``0, stride, 2*stride ...`` along each axis, plus one flush with the far edge when the
    grid leaves pixels uncovered. Every tile is correlated on its own (own window), so a tile's shift is
    the motion of the content inside it; compare it with the global :func:`phase_correlation` shift to
    find moving objects. Tiles without texture give meaningless shifts: leave them out with
    ``min_contrast`` (a low ``peak`` also says the content inside the tile did not move as one).

    Args:
        ref, moving: ``(H, W)`` arrays of one shape, at least ``tile`` x ``tile``.
        tile: tile side in pixels (>= 8).
        stride: grid step (default ``tile // 2``: overlapping tiles, so an object is never cut in four).
        upsample, taper: as in :func:`phase_correlation`.
        min_contrast: only tiles whose ``ref`` standard deviation is at least this are measured and returned
            (skipping flat sky or walls saves their FFTs).
        corners: measure only the tiles with these top-left corners ``(iy, ix)`` (e.g. a subset of
            :func:`tile_corners`); ``stride`` is then unused.

    Returns:
        :class:`TileShifts` (empty when the image is smaller than one tile or no tile has the contrast).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> img = rng.random((128, 128))
        >>> t = tile_shifts(img, fourier_shift(img, 0.5, 0.0), tile=64, taper=False)
        >>> len(t), bool(np.allclose(t.shifts[4], [0.5, 0.0], atol=0.05))
        (9, True)
    """
    _check_pair(ref, moving, 2, "tile_shifts")
    if int(tile) != tile or tile < 8:
        raise ValueError(f"tile_shifts: tile must be an integer >= 8, not {tile!r}")
    stride = tile // 2 if stride is None else stride
    if int(stride) != stride or stride < 1:
        raise ValueError(f"tile_shifts: stride must be an integer >= 1, not {stride!r}")
    if corners is None:
        iy, ix = tile_corners(ref.shape, tile, stride)
    else:
        iy, ix = (np.asarray(c, dtype=np.intp) for c in corners)
    if not len(iy):
        empty = np.zeros((0, 2))
        return TileShifts(empty, empty.copy(), np.zeros(0), np.zeros(0))
    a = np.lib.stride_tricks.sliding_window_view(ref.astype(np.float32, copy=False), (tile, tile))
    b = np.lib.stride_tricks.sliding_window_view(moving.astype(np.float32, copy=False), (tile, tile))
    ta = a[iy, ix]  # (T, tile, tile) copy
    contrast = ta.std(axis=(1, 2), dtype=np.float64)
    keep = contrast >= min_contrast
    if not keep.all():
        iy, ix, ta, contrast = iy[keep], ix[keep], ta[keep], contrast[keep]
    if not len(iy):
        empty = np.zeros((0, 2))
        return TileShifts(empty, empty.copy(), np.zeros(0), np.zeros(0))
    tb = b[iy, ix]
    cross = _cross_power(ta, tb, taper)
    dy, dx, peak = _refine(cross, tile, int(upsample))
    centers = np.stack([iy + (tile - 1) / 2.0, ix + (tile - 1) / 2.0], axis=1)
    return TileShifts(centers, np.stack([dy, dx], axis=1), peak.astype(np.float64), contrast)


def fourier_shift(img: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Translate an image by a sub-pixel amount, treating it as periodic (band-limited interpolation).

    Args:
        img: ``(H, W)`` or ``(H, W, C)`` array, any real dtype.
        dy, dx: pixels down and right (the content at (y, x) moves to (y + dy, x + dx)).

    Returns:
        float64 array of the same shape; content that leaves one side comes back on the other, so crop
        ``ceil(|shift|)`` pixels (plus a few for ringing) from the borders before comparing.

    Example:
        >>> float(fourier_shift(np.eye(4), 1, 0)[1, 0].round(6))
        1.0
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim not in (2, 3):
        raise ValueError(f"fourier_shift: expected an (H, W) or (H, W, C) array, got shape {a.shape}")
    h, w = a.shape[:2]
    phase = np.exp(-2j * np.pi * (np.fft.fftfreq(h)[:, None] * dy + np.fft.fftfreq(w)[None, :] * dx))
    if a.ndim == 3:
        phase = phase[:, :, None]
    return np.fft.ifft2(np.fft.fft2(a, axes=(0, 1)) * phase, axes=(0, 1)).real


def channel_gains(ref: np.ndarray, moving: np.ndarray, *, border: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel brightness relation of ``moving`` to ``ref``: gains and mean differences.

    Args:
        ref, moving: ``(H, W, C)`` arrays of one shape (uint8 levels or floats; both in one range).
        border: pixels left out on every side (where a shifted or resampled image is least reliable).

    Returns:
        ``(gains, diffs)``, each ``(C,)`` float64: ``mean(moving_c) / mean(ref_c)`` (1: no change; a colour
        cast shows as gains that differ between channels, an exposure change as a common gain) and
        ``mean(moving_c) - mean(ref_c)`` in the input's units. A channel whose ``ref`` mean is 0 gets gain 1
        when ``moving``'s is 0 too, else ``inf``.

    Example:
        >>> ref = np.full((4, 4, 3), 100.0); mov = ref * [1.1, 1.0, 0.9]
        >>> channel_gains(ref, mov)[0].round(3).tolist()
        [1.1, 1.0, 0.9]
    """
    _check_pair(ref, moving, 3, "channel_gains")
    h, w = ref.shape[:2]
    if border and (h <= 2 * border or w <= 2 * border):
        raise ValueError(f"channel_gains: {h}x{w} images are too small for a {border}-pixel border")
    if border:
        ref, moving = ref[border:-border, border:-border], moving[border:-border, border:-border]
    mr = ref.reshape(-1, ref.shape[2]).astype(np.float64, copy=False).mean(axis=0)
    mm = moving.reshape(-1, moving.shape[2]).astype(np.float64, copy=False).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gains = np.where(mr > 0, mm / np.where(mr > 0, mr, 1.0), np.where(mm > 0, np.inf, 1.0))
    return gains, mm - mr
