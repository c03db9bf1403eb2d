"""Resize modes: numpy == torch, Real-ESRGAN's scale_factor sizes, PIL bicubic, MATLAB bicubic."""
import numpy as np
import pytest
import torch

from srprep.ops.degrade.resize import output_size, resize, resize_torch


@pytest.mark.parametrize("mode", ["area", "bilinear", "bicubic"])
@pytest.mark.parametrize("antialias", [False, True])
def test_numpy_equals_torch(photo, mode, antialias):
    img = photo.astype(np.float32) / 255
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    for size in [(97, 64), (300, 301)]:
        a = resize(img, size, mode=mode, antialias=antialias)
        b = resize_torch(x, size, mode=mode, antialias=antialias)[0].permute(1, 2, 0).numpy()
        assert a.shape == (*size, 3) and np.array_equal(a, b)


@pytest.mark.parametrize("s", [0.15, 0.37, 1.0, 1.23, 1.5])
def test_scale_factor_output_size(s):
    x = torch.zeros(1, 3, 256, 200)
    y = resize_torch(x, scale_factor=s, mode="bilinear")
    assert tuple(y.shape[-2:]) == output_size((256, 200), s)


def test_antialias_reduces_aliasing():
    # a 1-pixel checkerboard has no energy below Nyquist: a proper downscale gives flat grey
    board = ((np.indices((128, 128)).sum(0) % 2).astype(np.float32))[:, :, None].repeat(3, 2)
    plain = resize(board, (50, 50), mode="bilinear")
    smooth = resize(board, (50, 50), mode="bilinear", antialias=True)
    assert np.abs(smooth - 0.5).max() < np.abs(plain - 0.5).max()


def test_bad_arguments():
    with pytest.raises(ValueError):
        resize_torch(torch.zeros(1, 3, 8, 8), (4, 4), scale_factor=0.5)
    with pytest.raises(ValueError):
        resize_torch(torch.zeros(1, 3, 8, 8), (4, 4), mode="lanczos")


def test_matlab_mode_numpy_and_torch(photo):
    img = photo.astype(np.float32) / 255
    a = resize(img, (64, 64), mode="matlab")
    b = resize_torch(torch.from_numpy(img).permute(2, 0, 1)[None], (64, 64), mode="matlab")
    assert a.shape == (64, 64, 3)
    assert np.abs(a - b[0].permute(1, 2, 0).numpy()).max() < 1e-5
