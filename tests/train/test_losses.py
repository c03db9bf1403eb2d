"""Losses: definitions, ClipL1 as the AIM 2020 code, the weighted sum."""
import pytest
import torch

from srprep.train.config import LossTerm
from srprep.train.losses import build_loss, charbonnier_loss, clip_l1_loss, l1_loss, mse_loss, ssim_loss


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 24, 24, generator=g)
    sr = (hr + 0.05 * torch.randn(2, 3, 24, 24, generator=g)).clamp(0, 1)
    return sr, hr


def test_clip_l1_is_the_mean_of_the_clamped_absolute_error_on_the_255_scale(pair):
    sr, hr = pair
    d255 = (sr - hr).abs() * 255
    expected = d255.clamp(1.0, 10.0).mean() / 255
    assert torch.allclose(clip_l1_loss(sr, hr, 1.0, 10.0), expected)
    assert torch.allclose(clip_l1_loss(sr, hr, 0.0, 255.0), l1_loss(sr, hr))
    # gradient only where the error lies inside the clip range
    sr = sr.clone().requires_grad_(True)
    clip_l1_loss(sr, hr, 1.0, 10.0).backward()
    inside = ((sr - hr).abs() * 255 > 1.0) & ((sr - hr).abs() * 255 < 10.0)
    assert (sr.grad[~inside] == 0).all() and (sr.grad[inside] != 0).all()
    with pytest.raises(ValueError):
        clip_l1_loss(sr, hr, 5.0, 1.0)


def test_simple_losses(pair):
    sr, hr = pair
    assert torch.allclose(mse_loss(sr, hr), ((sr - hr) ** 2).mean())
    # BasicSR's eps: added as it is, not squared (its default 1e-12)
    assert torch.allclose(charbonnier_loss(sr, hr, 1e-6), torch.sqrt((sr - hr) ** 2 + 1e-6).mean())
    assert torch.equal(charbonnier_loss(sr, hr), torch.sqrt((sr - hr) ** 2 + 1e-12).mean())
    assert float(charbonnier_loss(hr, hr, 1e-6)) == pytest.approx(1e-3)
    assert float(ssim_loss(hr, hr)) == pytest.approx(0.0, abs=1e-6)
    assert 0.0 < float(ssim_loss(sr, hr)) < 1.0


def test_weighted_sum_from_config(pair):
    sr, hr = pair
    loss = build_loss([LossTerm("l1", 255.0), LossTerm("mse", 2.0), LossTerm("clip_l1", 0.5, clip_max=5.0)])
    expected = 255 * l1_loss(sr, hr) + 2 * mse_loss(sr, hr) + 0.5 * clip_l1_loss(sr, hr, 0.0, 5.0)
    assert torch.allclose(loss(sr, hr), expected)
    ssim = build_loss([LossTerm("ssim")])
    assert torch.allclose(ssim(sr, hr), ssim_loss(sr, hr))


def test_each_weighted_term_is_reported(pair):
    sr, hr = pair
    loss = build_loss([LossTerm("l1", 255.0), LossTerm("ssim", 20.0), LossTerm("l1", 2.0)])
    assert loss.names == ["l1", "ssim", "l1_1"]
    total, terms = loss.terms(sr, hr)
    expected = [255 * l1_loss(sr, hr), 20 * ssim_loss(sr, hr), 2 * l1_loss(sr, hr)]
    assert torch.allclose(terms, torch.stack(expected))
    assert torch.allclose(total, sum(expected)) and torch.equal(total, loss(sr, hr))
