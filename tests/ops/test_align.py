"""Phase correlation and friends: shapes, bad input, sub-pixel accuracy on real photos (Fourier shifts and
MATLAB-downsampled moved crops), tile shifts that find a moved block, channel gains."""
import numpy as np
import pytest

from srprep.io.images import read_image
from srprep.ops.align import (Shift, TileShifts, channel_gains, fourier_shift, phase_correlation, tile_shifts,
                              to_gray)
from srprep.ops.imresize import imresize_matlab


@pytest.fixture(scope="module")
def photo(samples):
    return read_image(samples / "kodak/kodim05.png")


def test_smoke_shapes_and_types(photo):
    g = to_gray(photo)
    assert g.shape == photo.shape[:2] and g.dtype == np.float32
    assert to_gray(g) is g and to_gray(photo[:, :, :1]).shape == g.shape
    s = phase_correlation(g, g)
    assert isinstance(s, Shift) and (s.dy, s.dx) == (0.0, 0.0) and s.peak == pytest.approx(1.0, abs=1e-3)
    assert s.magnitude == 0.0
    t = tile_shifts(g, g, tile=64)
    assert isinstance(t, TileShifts) and t.shifts.shape == (len(t), 2) and t.centers.shape == (len(t), 2)
    assert len(t) == len(range(0, 500 - 64 + 1, 32)) ** 2 + 2 * len(range(0, 500 - 64 + 1, 32)) + 1  # + edge row/col
    np.testing.assert_array_equal(t.shifts, 0)
    assert len(tile_shifts(g[:40], g[:40], tile=64)) == 0
    assert fourier_shift(photo, 0.5, 0.5).shape == photo.shape


@pytest.mark.parametrize("call", [
    lambda g: phase_correlation(g, g[:-1]),
    lambda g: phase_correlation(g[:6, :6], g[:6, :6]),
    lambda g: phase_correlation(g[..., None], g[..., None]),
    lambda g: phase_correlation(g, g, upsample=0),
    lambda g: tile_shifts(g, g, tile=4),
    lambda g: tile_shifts(g, g, stride=0),
    lambda g: channel_gains(g, g),
    lambda g: to_gray(np.zeros((4, 4, 2))),
])
def test_bad_input_raises_value_error_naming_the_problem(photo, call):
    with pytest.raises(ValueError):
        call(to_gray(photo))
    with pytest.raises(TypeError):
        phase_correlation(list(to_gray(photo)), to_gray(photo))


@pytest.mark.parametrize("dy, dx", [(0.5, 0.0), (0.0, -0.25), (1.3, 2.7), (-7.6, 3.1), (8.0, -8.0)])
def test_fourier_shifts_of_a_real_photo_are_found_within_a_hundredth(photo, dy, dx):
    g = to_gray(photo).astype(np.float64)
    s = phase_correlation(g, fourier_shift(g, dy, dx))
    assert abs(s.dy - dy) < 0.01 and abs(s.dx - dx) < 0.01
    assert s.peak > 0.9


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_moved_crops_downsampled_by_matlab_are_found_within_a_tenth_of_an_lr_pixel(samples, scale):
    """Camera shift: the LR is made from the HR scene moved by whole HR pixels (LR shifts of k/s)."""
    errors = []
    for name in ("kodim01", "kodim03", "kodim08"):
        big = read_image(samples / f"kodak/{name}.png")
        h, w = (big.shape[0] - 24) // scale * scale, (big.shape[1] - 24) // scale * scale
        ref = to_gray(imresize_matlab(big[12:12 + h, 12:12 + w], 1 / scale, im2double=True))
        for oy, ox in [(1, 0), (0, -2), (5, 7), (-12, 9)]:
            moved = to_gray(imresize_matlab(big[12 + oy:12 + oy + h, 12 + ox:12 + ox + w], 1 / scale))
            s = phase_correlation(ref, moved)
            # The LR shows the scene moved by -offset: its content sits offset/s LR px up-left.
            errors.append(max(abs(s.dy + oy / scale), abs(s.dx + ox / scale)))
    assert max(errors) < 0.1, errors


def test_tile_shifts_find_a_moved_block(photo):
    g = to_gray(photo).astype(np.float64)
    moved = g.copy()
    moved[160:320, 200:360] = fourier_shift(g, 2.5, -1.5)[160:320, 200:360]
    t = tile_shifts(g, moved, tile=64, stride=32)
    inside = ((t.centers[:, 0] > 160 + 32) & (t.centers[:, 0] < 320 - 32)
              & (t.centers[:, 1] > 200 + 32) & (t.centers[:, 1] < 360 - 32))
    outside = ((t.centers[:, 0] < 160 - 32) | (t.centers[:, 0] > 320 + 32)
               | (t.centers[:, 1] < 200 - 32) | (t.centers[:, 1] > 360 + 32))
    assert inside.sum() >= 4 and outside.sum() >= 50
    np.testing.assert_allclose(t.shifts[inside], np.tile([2.5, -1.5], (inside.sum(), 1)), atol=0.05)
    assert np.abs(t.shifts[outside]).max() < 1e-6
    assert (t.contrast > 0).all() and ((t.peaks >= 0) & (t.peaks <= 1)).all()
    # Flat tiles can be left out before any FFT is spent on them.
    flat = g.copy()
    flat[:250] = 128.0
    kept = tile_shifts(flat, flat, tile=64, min_contrast=4.0)
    assert 0 < len(kept) < len(t) and (kept.contrast >= 4.0).all() and (kept.centers[:, 0] > 250 - 64).all()
    assert len(tile_shifts(flat[:200], flat[:200], tile=64, min_contrast=4.0)) == 0


def test_fourier_shift_moves_content_down_right():
    img = np.zeros((16, 16))
    img[4, 5] = 1.0
    out = fourier_shift(img, 2, 3)
    assert np.unravel_index(np.argmax(out), out.shape) == (6, 8)
    np.testing.assert_allclose(fourier_shift(out, -2, -3), img, atol=1e-12)


def test_channel_gains_and_differences(photo):
    ref = photo.astype(np.float64)
    gains, diffs = channel_gains(ref, ref * [1.1, 1.0, 0.8])
    np.testing.assert_allclose(gains, [1.1, 1.0, 0.8])
    np.testing.assert_allclose(diffs, ref.reshape(-1, 3).mean(0) * [0.1, 0.0, -0.2])
    gains, _ = channel_gains(ref, ref + 5, border=10)
    assert (gains > 1).all()
    gains, _ = channel_gains(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))
    np.testing.assert_array_equal(gains, 1.0)


def test_coarse_to_fine_refinement_finds_the_full_fine_grids_best_point(samples, monkeypatch):
    """The 1/4-px search followed by a narrow 1/20-px one gives the shift that searching the whole +-1 px at
    1/20 px gives (the peak is one hump within the reach), on real photos, Fourier shifts and MATLAB
    downsamples of moved crops alike."""
    import srprep.ops.align as al

    cases = []
    for name in ("kodim01", "kodim04", "kodim07"):
        g = to_gray(read_image(samples / f"kodak/{name}.png")).astype(np.float64)
        for dy, dx in [(0.37, -0.12), (2.55, 1.05), (-6.8, 4.45)]:
            cases.append((g, fourier_shift(g, dy, dx)))
        big = read_image(samples / f"kodak/{name}.png")
        cases.append((to_gray(imresize_matlab(big[12:480, 12:480], 1 / 3)),
                      to_gray(imresize_matlab(big[17:485, 5:473], 1 / 3))))
    fast = [phase_correlation(a, b) for a, b in cases]
    monkeypatch.setattr(al, "_COARSE", 10 ** 6)  # no upsample is a multiple: the one-stage 41 x 41 grid
    full = [phase_correlation(a, b) for a, b in cases]
    for f, s in zip(fast, full):
        assert abs(f.dy - s.dy) < 1e-4 and abs(f.dx - s.dx) < 1e-4 and abs(f.peak - s.peak) < 1e-4, (f, s)


def test_tile_corners_select_the_same_tiles_as_the_grid(photo):
    from srprep.ops.align import tile_corners

    g = to_gray(photo)
    moved = to_gray(fourier_shift(photo, 1.25, -0.5))
    iy, ix = tile_corners(g.shape, 64, 32)
    assert len(iy) == len(tile_shifts(g, g, tile=64)) and iy.max() == ix.max() == 500 - 64
    full = tile_shifts(g, moved, tile=64, upsample=4)
    pick = np.arange(len(iy)) % 3 == 0
    part = tile_shifts(g, moved, tile=64, upsample=4, corners=(iy[pick], ix[pick]))
    np.testing.assert_array_equal(part.shifts, full.shifts[pick])
    np.testing.assert_array_equal(part.centers, full.centers[pick])
    assert tile_corners((40, 500), 64, 32)[0].size == 0
