"""srprep.ops.figures: matplotlib figures when the plots extra is there, the OpenCV fallback when not."""
import logging

import numpy as np
import pytest

from srprep.ops import figures
from srprep.ops.figures import Panel, line_panels
from srprep.ops.sheet import contact_sheet

BLUE = (0, 114, 178)  # the first series colour in both backends


def panels():
    step = np.arange(25, 301, 25)
    return [Panel({"loss": (step, 0.1 / np.sqrt(step))}, title="training loss", xlabel="step", log_y=True),
            Panel({"PSNR (Y)": ([150, 300], [29.1, 29.6])}, title="validation PSNR", xlabel="step", ylabel="dB",
                  hlines={"bicubic": 28.97})]


def near(img, colour, tol=40):
    return np.abs(img.astype(int) - colour).sum(axis=2) < tol


def test_line_panels_with_matplotlib_put_each_legend_beside_its_axes():
    pytest.importorskip("matplotlib")
    img = line_panels(panels(), width=700, panel_height=260)
    assert img.shape == (520, 700, 3) and img.dtype == np.uint8
    for top in (0, 260):  # each panel: a curve inside the axes, its legend swatch right of the axes
        half = img[top:top + 260]
        dark = (half < 40).all(axis=2)
        spines = np.flatnonzero(dark.sum(axis=0) > 120)  # long vertical black lines: the axes' left/right
        right = spines.max()
        blue = near(half, BLUE)
        assert blue[:, spines.min():right].sum() > 100  # the data
        assert blue[:, right + 1:].sum() > 5  # the legend, off the data
    assert near(img[260:], (230, 159, 0), tol=90).sum() > 50  # the dashed bicubic reference line (second colour)


def test_line_panels_without_matplotlib_fall_back_to_opencv_and_say_so(monkeypatch, caplog):
    monkeypatch.setattr(figures, "available", lambda: False)
    figures.note_fallback.cache_clear()
    with caplog.at_level(logging.INFO, logger="srprep.ops.figures"):
        img = line_panels(panels(), width=640, panel_height=240)
    assert img.shape == (2 * 240 + 6, 640, 3) and near(img, BLUE).sum() > 50
    assert "pip install 'srprep[plots]'" in caplog.text


@pytest.mark.parametrize("backend", ["matplotlib", "opencv"])
def test_long_labels_wrap_instead_of_being_cut(backend, monkeypatch):
    if backend == "matplotlib":
        pytest.importorskip("matplotlib")
    else:
        monkeypatch.setattr(figures, "available", lambda: False)
    img = np.full((40, 60, 3), 128, np.uint8)
    short = contact_sheet([[img, img]], [["a", "b"]], titles=["HR", "LR"])
    long = contact_sheet([[img, img]], [["a fairly long caption that needs lines", "b"]], titles=["HR", "LR"])
    assert short.shape == (4 + 18 + 18 + 40 + 4, 4 + 2 * 64, 3)
    assert long.shape[1] == short.shape[1] and long.shape[0] >= short.shape[0] + 3 * 18
    assert (long[4:22] > 200).any()  # column titles drawn (white on the dark canvas)
    # the images themselves are not touched by the text
    assert np.array_equal(long[-44:-4, 4:64], img) and np.array_equal(long[-44:-4, 68:128], img)
