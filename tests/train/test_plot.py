"""srprep.ops.plot (the trainer's curves, drawn without matplotlib) and the doctests of the trainer modules."""
import doctest
import importlib

import numpy as np
import pytest

from srprep.ops.plot import line_plot, nice_ticks, stack_images


def test_line_plot_draws_lines_text_and_reference():
    x = np.arange(100)
    img = line_plot({"loss": (x, 1.0 / (x + 1))}, title="loss", xlabel="step", log_y=True,
                    hlines={"target": 0.05}, vlines=[50], size=(400, 240))
    assert img.shape == (240, 400, 3) and img.dtype == np.uint8
    px = img.reshape(-1, 3).astype(int)
    for colour in ((0, 114, 178), (230, 159, 0)):  # the reference line and the series (antialiased)
        assert (np.abs(px - colour).sum(axis=1) < 60).sum() > 20, colour
    assert (img < 128).any() and (img == 255).mean() > 0.5  # dark text and axes on a white canvas


def test_non_finite_points_single_points_and_empty_series():
    y = np.array([1.0, np.nan, 2.0, np.inf, 3.0])
    assert line_plot({"a": (np.arange(5), y)}).shape == (360, 640, 3)
    assert line_plot({"one": ([3], [1.0])}).shape == (360, 640, 3)
    assert line_plot({}).shape == (360, 640, 3)
    with pytest.raises(ValueError, match="x values"):
        line_plot({"bad": ([1, 2], [1.0])})
    with pytest.raises(ValueError, match="too small"):
        line_plot({}, size=(50, 50))


def test_ticks_and_stacking():
    assert nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(27.3, 30.1, 4) == [28.0, 29.0, 30.0]
    a, b = np.zeros((10, 20, 3), np.uint8), np.zeros((5, 10, 3), np.uint8)
    out = stack_images([a, b], gap=2)
    assert out.shape == (17, 20, 3) and (out[12:, 10:] == 255).all()


@pytest.mark.parametrize("module", ["srprep.ops.plot", "srprep.train.config", "srprep.train.eco",
                                    "srprep.train.losses", "srprep.train.loop"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
