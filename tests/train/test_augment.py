"""Paired augmentation keeps LR and HR consistent: downsample(aug(HR)) == aug(downsample(HR)).

The LR is MATLAB bicubic of the HR (srprep.ops.imresize). Flips and the RGB permutation commute with it
bit for bit in the uint8 convention (the kernel and MATLAB's sampling grid are symmetric). The transposition
swaps which axis MATLAB resizes first, so it is checked in the im2double convention, where the result is
exact up to float rounding; Blend and MixUp are affine with weights that sum to 1, so they commute with the
(linear, weights summing to 1) resize in the im2double convention up to float tolerance.
"""
import numpy as np
import pytest
import torch

from srprep.io.images import read_image
from srprep.ops.imresize import imresize_matlab
from srprep.train.augment import (BatchAugmentParams, apply_batch_augment, dihedral, draw_batch_augment,
                                  sample_beta)
from srprep.train.config import AugmentConfig


@pytest.fixture(scope="module")
def hr_patches(samples):
    img = read_image(samples / "kodak/kodim05.png")
    return np.stack([img[y:y + 64, x:x + 64] for y, x in ((0, 0), (100, 220), (300, 36), (436, 436))])


def down(batch: np.ndarray, im2double: bool) -> np.ndarray:
    return np.stack([imresize_matlab(im, 0.5, im2double=im2double) for im in batch])


def to_nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)


def to_nhwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).numpy()


def test_flips_commute_exactly_with_matlab_bicubic(hr_patches):
    lr = down(hr_patches, im2double=False)
    for flags in ([1, 0, 0], [0, 1, 0], [1, 1, 0]):
        f = torch.tensor([flags] * len(hr_patches), dtype=torch.uint8)
        aug_hr = to_nhwc(dihedral(to_nchw(hr_patches), f))
        aug_lr = to_nhwc(dihedral(to_nchw(lr), f))
        assert not np.array_equal(aug_hr, hr_patches)
        np.testing.assert_array_equal(down(aug_hr, im2double=False), aug_lr)


def test_transposition_commutes_in_the_im2double_convention(hr_patches):
    lr = down(hr_patches, im2double=True)
    f = torch.tensor([[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 1]], dtype=torch.uint8)  # mixed per sample
    aug_hr = to_nhwc(dihedral(to_nchw(hr_patches), f))
    aug_lr = to_nhwc(dihedral(to_nchw(lr), f))
    np.testing.assert_allclose(down(aug_hr, im2double=True), aug_lr, rtol=0, atol=1e-12)


def test_per_sample_flags_apply_to_their_own_sample(hr_patches):
    x = to_nchw(hr_patches)
    f = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.bool)
    y = dihedral(x, f)
    assert torch.equal(y[0], x[0]) and torch.equal(y[1], x[1].flip(-1))
    assert torch.equal(y[2], x[2].flip(-2)) and torch.equal(y[3], x[3].transpose(-1, -2))


def test_rgb_permutation_commutes_exactly(hr_patches):
    lr = down(hr_patches, im2double=False)
    params = BatchAugmentParams(rgb_perm=[2, 0, 1])
    aug_hr = to_nhwc(apply_batch_augment(to_nchw(hr_patches), params))
    aug_lr = to_nhwc(apply_batch_augment(to_nchw(lr), params))
    np.testing.assert_array_equal(down(aug_hr, im2double=False), aug_lr)


def test_blend_and_mixup_commute_up_to_float_rounding(hr_patches):
    hr = hr_patches.astype(np.float64) / 255.0
    lr = down(hr_patches, im2double=True)
    cfg = AugmentConfig(rgb_permute=1.0, blend=1.0, mixup=1.0)
    for seed in range(3):
        host = torch.Generator().manual_seed(seed)
        dev = torch.Generator().manual_seed(seed + 100)
        params = draw_batch_augment(cfg, len(hr), host, dev, torch.device("cpu"))
        assert params.blend_v is not None and params.mixup_v is not None
        assert 0.6 <= params.blend_v <= 1.0 and params.blend_colour.shape == (len(hr), 3, 1, 1)
        aug_hr = to_nhwc(apply_batch_augment(to_nchw(hr), params))
        aug_lr = to_nhwc(apply_batch_augment(to_nchw(lr), params))
        np.testing.assert_allclose(down(aug_hr, im2double=True), aug_lr, rtol=0, atol=1e-9)


def test_draws_are_reproducible_and_follow_the_probabilities():
    cfg = AugmentConfig(rgb_permute=0.5, blend=0.1, mixup=0.2)

    def draw(seed):
        return draw_batch_augment(cfg, 4, torch.Generator().manual_seed(seed),
                                  torch.Generator().manual_seed(seed + 1), torch.device("cpu"))

    a, b = draw(3), draw(3)
    assert a.rgb_perm == b.rgb_perm and a.blend_v == b.blend_v and a.mixup_v == b.mixup_v
    runs = [draw(s) for s in range(600)]
    for attr, p in (("rgb_perm", 0.5), ("blend_v", 0.1), ("mixup_v", 0.2)):
        rate = np.mean([getattr(r, attr) is not None for r in runs])
        assert abs(rate - p) < 0.06, (attr, rate)
    off = draw_batch_augment(AugmentConfig(), 4, torch.Generator(), torch.Generator(), torch.device("cpu"))
    assert not off.active


def test_beta_sampler_matches_the_distribution():
    g = torch.Generator().manual_seed(0)
    v = np.array([sample_beta(1.2, 1.2, g) for _ in range(4000)])
    assert ((v > 0) & (v < 1)).all()
    assert abs(v.mean() - 0.5) < 0.02
    assert abs(v.var() - 1 / (4 * 3.4)) < 0.01  # Var Beta(a, a) = 1 / (4 (2a + 1))
    small = np.array([sample_beta(0.4, 0.4, g) for _ in range(2000)])  # the a < 1 branch
    assert abs(small.var() - 1 / (4 * 1.8)) < 0.015
