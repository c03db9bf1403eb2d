"""Contact sheets: layout, nearest-neighbour upscaling that lines LR up with HR, labels, errors."""
import numpy as np
import pytest

from srprep.io.images import read_image
from srprep.ops.sheet import contact_sheet, nearest_upscale


def test_nearest_upscale_repeats_pixels(rng):
    img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    up = nearest_upscale(img, 3)
    assert up.shape == (15, 21, 3)
    assert np.array_equal(up[::3, ::3], img) and np.array_equal(up[2::3, 1::3], img)
    assert nearest_upscale(img, 1) is img
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="factor"):
            nearest_upscale(img, bad)


def test_lr_cells_line_up_with_hr(samples):
    hr = read_image(samples / "set5/baby.png")[:96, :96]
    lr2 = hr[::2, ::2].copy()
    lr4 = hr[::4, ::4].copy()
    sheet = contact_sheet([[hr, lr2, lr4]], pad=4)
    assert sheet.dtype == np.uint8 and sheet.shape == (4 + 96 + 4, 4 + 3 * (96 + 4), 3)
    assert np.array_equal(sheet[4:100, 4:100], hr)
    assert np.array_equal(sheet[4:100, 104:200], np.repeat(np.repeat(lr2, 2, 0), 2, 1))
    assert np.array_equal(sheet[4:100, 204:300], np.repeat(np.repeat(lr4, 4, 0), 4, 1))
    # the gaps are background
    assert (sheet[:4] == 32).all() and (sheet[4:100, 100:104] == 32).all()


def test_column_and_cell_labels_add_a_strip_with_text(rng):
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    plain = contact_sheet([[img, img]] * 2)
    header = contact_sheet([[img, img]] * 2, ["HR", "X2"])
    per_cell = contact_sheet([[img, img]] * 2, [["a HR", "a X2"], ["b HR", "b X2"]])
    assert header.shape[0] == plain.shape[0] + 18
    assert per_cell.shape[0] == plain.shape[0] + 2 * 18
    strip = header[4:22, 4:44]
    assert strip.max() > 200 and (strip == 32).mean() > 0.5  # white text on the background


def test_rows_of_different_sizes_float_and_grey_inputs():
    grey = np.full((10, 20), 200, np.uint8)
    flt = np.full((20, 10, 3), 0.5, np.float32)
    sheet = contact_sheet([[grey], [flt, flt[::2, ::2]]], pad=2)
    assert sheet.shape == (2 + 10 + 2 + 20 + 2, 2 + 20 + 2 + 10 + 2, 3)
    assert (sheet[2:12, 2:22] == 200).all()
    assert (sheet[14:34, 2:12] == 128).all() and (sheet[14:34, 24:34] == 128).all()


def test_tall_rows_are_thinned_consistently():
    hr = np.zeros((600, 600, 3), np.uint8)
    hr[::2, ::2] = 255
    sheet = contact_sheet([[hr, hr[::2, ::2]]], max_height=300, pad=0)
    assert sheet.shape == (300, 600, 3)


@pytest.mark.parametrize("rows,labels,exc,match", [
    ([], None, ValueError, "no rows"),
    ([[]], None, ValueError, "row 0 is empty"),
    ([[np.zeros((4, 4, 4), np.uint8)]], None, ValueError, r"row 0, image 0: .*\(4, 4, 4\)"),
    ([[np.zeros((4, 4, 3), np.int32)]], None, TypeError, "int32"),
    ([["x"]], None, TypeError, "numpy array"),
    ([[np.zeros((4, 4, 3), np.uint8)]], [["a", "b"]], ValueError, "same shape as rows"),
    ([[np.zeros((4, 4, 3), np.uint8)]], ["a", "b"], ValueError, "column labels"),
])
def test_bad_input(rows, labels, exc, match):
    with pytest.raises(exc, match=match):
        contact_sheet(rows, labels)
