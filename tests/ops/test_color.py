"""BT.601 (MATLAB rgb2ycbcr) colour conversion, float64 and unrounded."""
import numpy as np
import pytest

from srprep.errors import SrprepError
from srprep.ops.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb


@pytest.mark.parametrize(
    "rgb, y",
    [
        ((0, 0, 0), 16.0),
        ((255, 255, 255), 235.0),  # 16 + 65.481 + 128.553 + 24.966
        ((255, 0, 0), 81.481),
        ((0, 255, 0), 144.553),
        ((0, 0, 255), 40.966),
        ((100, 50, 200), 16.0 + 17968.95 / 255.0),  # 6548.1 + 6427.65 + 4993.2 = 17968.95
        ((1, 2, 3), 16.0 + (65.481 + 257.106 + 74.898) / 255.0),
    ],
)
def test_rgb_to_y_hand_computed(rgb, y):
    out = rgb_to_y(np.array([[rgb]], dtype=np.uint8))
    assert out.dtype == np.float64 and out.shape == (1, 1)
    assert out[0, 0] == pytest.approx(y, abs=1e-12)


def test_rgb_to_y_is_not_rounded_and_accepts_float():
    y = rgb_to_y(np.array([100.0, 50.0, 200.0]))
    assert y == pytest.approx(86.46647058823529, abs=1e-12)
    assert y != round(y)


def test_ycbcr_round_trip_and_neutral_gray():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(7, 5, 3)).astype(np.uint8)
    ycc = rgb_to_ycbcr(img)
    np.testing.assert_allclose(ycc[..., 0], rgb_to_y(img), atol=1e-12)
    np.testing.assert_allclose(ycbcr_to_rgb(ycc), img.astype(np.float64), atol=1e-9)
    gray = rgb_to_ycbcr(np.full((1, 1, 3), 128, np.uint8))
    np.testing.assert_allclose(gray[0, 0, 1:], [128.0, 128.0], atol=1e-12)


def test_rejects_non_rgb():
    with pytest.raises(SrprepError):
        rgb_to_y(np.zeros((4, 4), np.uint8))
