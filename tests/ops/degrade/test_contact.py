"""Contact sheets of the degradations."""
import numpy as np

from srprep.ops.degrade import DegradationConfig, apply, draw_params, item_rng
from srprep.ops.degrade.contact import degradation_sheet
from srprep.ops.sheet import contact_sheet


def test_degradation_sheet_layout_and_labels(set5_butterfly):
    p = draw_params(DegradationConfig(), item_rng(0, "butterfly"), 256)
    recipes = ["bicubic", "blur2_bicubic_noise20_jpeg50", ("real-esrgan", lambda im: apply(im, p))]
    sheet = degradation_sheet(set5_butterfly, recipes, seed=0, key="butterfly", max_tile=128)
    # 4 tiles -> 2 x 2 grid of 128x128 tiles with label strips of 24-pixel lines and 4-pixel gaps; the long
    # recipe name is wrapped onto more lines (not cut), the short ones of the first row take one
    assert sheet.dtype == np.uint8 and sheet.shape[1] == 2 * 128 + 3 * 4
    second_strip = sheet.shape[0] - (2 * 128 + 3 * 4 + 24)
    assert second_strip % 24 == 0 and second_strip >= 2 * 24
    strip = sheet[4:28, 4:132]
    assert (strip < 128).any()  # text was drawn
    tile = sheet[28:156, 4:132]
    assert np.abs(tile.astype(int) - set5_butterfly[::2, ::2].astype(int)).mean() < 12


def test_contact_sheet_columns():
    # the layout degradation_sheet asks of the shared contact sheet: labelled cells, a light canvas
    tiles = [np.full((10, 20, 3), v, np.uint8) for v in (0, 100, 200)]
    sheet = contact_sheet([tiles], [["a", "b", "c"]], pad=2, label_height=12, background=255)
    assert sheet.shape == (12 + 10 + 4, 3 * 20 + 4 * 2, 3)
