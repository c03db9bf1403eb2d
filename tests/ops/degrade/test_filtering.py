"""filter2d (cv2) and filter2d_torch (grouped conv) agree, use reflect-101 borders and per-sample kernels."""
import cv2
import numpy as np
import pytest
import torch

from srprep.ops.degrade.filtering import filter2d, filter2d_torch, pad_reflect101
from srprep.ops.degrade.kernels import isotropic_gaussian_kernel, pad_kernel, pulse_kernel, random_mixed_kernel

# float32 arithmetic in two different convolution implementations (cv2 switches to a DFT for large kernels)
TOL = 2e-6


def _to_torch(imgs):
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()


def test_numpy_matches_cv2_reflect101(photo):
    img = photo.astype(np.float32) / 255
    k = isotropic_gaussian_kernel(21, 2.0)
    ref = cv2.filter2D(img, -1, k.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
    assert np.array_equal(filter2d(img, k), ref)


def test_torch_per_sample_kernels_match_numpy(photo):
    rng = np.random.default_rng(0)
    imgs = [photo[i * 16:i * 16 + 96, i * 20:i * 20 + 128].astype(np.float32) / 255 for i in range(4)]
    ks = [random_mixed_kernel(rng, size)[0] for size in (7, 11, 15, 21)]
    stacked = torch.from_numpy(np.stack([pad_kernel(k, 21) for k in ks]))
    out = filter2d_torch(_to_torch(imgs), stacked).permute(0, 2, 3, 1).numpy()
    for i in range(4):
        assert np.abs(out[i] - filter2d(imgs[i], ks[i])).max() < TOL
    # one kernel for the whole batch
    shared = filter2d_torch(_to_torch(imgs), torch.from_numpy(ks[3])).permute(0, 2, 3, 1).numpy()
    for i in range(4):
        assert np.abs(shared[i] - filter2d(imgs[i], ks[3])).max() < TOL


@pytest.mark.parametrize("h,w", [(1, 1), (2, 3), (5, 9), (11, 11)])
def test_images_smaller_than_the_kernel_reflect_like_opencv(h, w):
    rng = np.random.default_rng(h * 10 + w)
    img = rng.random((h, w, 3), dtype=np.float32)
    k = random_mixed_kernel(rng, 21)[0]
    out = filter2d_torch(_to_torch([img]), torch.from_numpy(k))[0].permute(1, 2, 0).numpy()
    assert np.abs(out - filter2d(img, k)).max() < TOL


def test_pad_reflect101_matches_opencv_border():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    ref = cv2.copyMakeBorder(x, 7, 7, 7, 7, cv2.BORDER_REFLECT_101)
    assert np.array_equal(pad_reflect101(torch.from_numpy(x)[None, None], 7)[0, 0].numpy(), ref)


def test_pulse_is_identity_and_float64_batches_work(photo):
    x = _to_torch([photo[:64, :64].astype(np.float32) / 255]).double()
    assert torch.equal(filter2d_torch(x, torch.from_numpy(pulse_kernel(21))), x)
    y = filter2d_torch(x, torch.from_numpy(isotropic_gaussian_kernel(5, 1.0)))
    assert y.dtype == torch.float64


def test_bad_kernels_are_rejected():
    with pytest.raises(ValueError):
        filter2d(np.zeros((4, 4, 3), np.float32), np.ones((4, 4)))
    with pytest.raises(ValueError):
        filter2d_torch(torch.zeros(2, 3, 8, 8), torch.ones(3, 5, 5))
