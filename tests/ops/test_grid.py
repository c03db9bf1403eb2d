"""modcrop: bottom/right crop to a multiple of the scale (the SR benchmarks' HR convention)."""
import numpy as np
import pytest

from srprep.ops.grid import modcrop


@pytest.mark.parametrize("shape,s,want", [
    ((229, 345, 3), 4, (228, 344, 3)),
    ((512, 512, 3), 3, (510, 510, 3)),
    ((256, 256), 2, (256, 256)),
    ((7, 9), 1, (7, 9)),
    ((228, 344, 1), 12, (228, 336, 1)),
])
def test_modcrop_shapes(shape, s, want):
    img = np.arange(np.prod(shape)).reshape(shape)
    out = modcrop(img, s)
    assert out.shape == want
    assert np.array_equal(out, img[: want[0], : want[1]])  # top-left kept
    assert np.shares_memory(out, img)  # a view, no copy


def test_modcrop_set5_sizes(ref_data):
    """The benchmark LR sizes are floor(HR/s): LR * s == modcrop(HR, s) for every Set5 image and scale."""
    import cv2

    for name in ["baby", "bird", "butterfly", "head", "woman"]:
        hr = cv2.imread(str(ref_data / "benchmark/Set5/HR" / f"{name}.png"))
        for s in (2, 3, 4):
            lr = cv2.imread(str(ref_data / f"benchmark/Set5/LR_bicubic/X{s}/{name}x{s}.png"))
            assert modcrop(hr, s).shape[:2] == (lr.shape[0] * s, lr.shape[1] * s)


@pytest.mark.parametrize("s", [0, -2, 2.0, True, "4"])
def test_modcrop_bad_modulus(s):
    with pytest.raises(ValueError, match="modulus"):
        modcrop(np.zeros((8, 8)), s)


def test_modcrop_bad_shapes():
    with pytest.raises(ValueError, match="HW or HWC"):
        modcrop(np.zeros(8), 2)
    with pytest.raises(ValueError, match="HW or HWC"):
        modcrop(np.zeros((1, 8, 8, 3)), 2)
    with pytest.raises(ValueError, match="smaller than the modulus"):
        modcrop(np.zeros((3, 8)), 4)
