"""Gaussian and Poisson noise: measured statistics, gray/colour, and numpy == torch for the same stream."""
import numpy as np
import pytest
import torch

from srprep.ops.degrade import noise as N

GREY = 128 / 255


def _flat(h=256, w=256, v=GREY):
    return np.full((h, w, 3), v, np.float32)


@pytest.mark.parametrize("sigma", [2.0, 10.0, 25.0])
@pytest.mark.parametrize("gray", [False, True])
def test_gaussian_sigma_is_on_the_255_scale(sigma, gray):
    out = N.add_gaussian_noise(_flat(), sigma, gray=gray, rng=np.random.default_rng(1))
    measured = (out - GREY).std() * 255
    assert measured == pytest.approx(sigma, rel=0.03)
    if gray:
        assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    else:
        c = np.corrcoef((out - GREY).reshape(-1, 3).T)
        assert np.abs(c[np.triu_indices(3, 1)]).max() < 0.02


def test_gaussian_clips_and_is_reproducible():
    a = N.add_gaussian_noise(_flat(v=0.99), 30, rng=np.random.default_rng(3))
    b = N.add_gaussian_noise(_flat(v=0.99), 30, rng=np.random.default_rng(3))
    c = N.add_gaussian_noise(_flat(v=0.99), 30, rng=np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.max() == 1.0 and a.min() >= 0.0
    assert N.add_gaussian_noise(_flat(v=0.99), 30, rng=np.random.default_rng(3), clip=False).max() > 1


def _levels_image(v=GREY, h=256, w=256):
    """Flat v, except a corner holding all 256 levels so that vals = 256 (as in a real photo)."""
    img = _flat(h, w, v)
    img[:16, :16, :] = (np.arange(256, dtype=np.float32).reshape(16, 16) / 255)[:, :, None]
    return img


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_poisson_variance_matches_its_definition(scale):
    img = _levels_image()
    noise = N.poisson_noise(img, scale, gray=False, rng=np.random.default_rng(0))
    flat = noise[32:, 32:]  # the flat region, value v = 128/255
    # Var = scale^2 * v / vals with vals = 2^ceil(log2(256 levels)) = 256
    expected = scale ** 2 * GREY / 256
    assert flat.var() == pytest.approx(expected, rel=0.03)
    assert abs(flat.mean()) < 4 * np.sqrt(expected / flat.size)


def test_poisson_levels_and_gray():
    v = 64 / 255
    img = _flat(v=v)  # one level -> vals = 1: the noise is Poisson(v) - v
    noise = N.poisson_noise(img, 1.0, gray=False, rng=np.random.default_rng(1))
    assert set(np.unique(noise + np.float32(v)).round(5)) <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0}
    assert noise.var() == pytest.approx(v, rel=0.03)
    rgb = _levels_image()
    rgb[..., 0] *= 0.5
    g = N.poisson_noise(rgb, 1.0, gray=True, rng=np.random.default_rng(2))
    assert np.array_equal(g[..., 0], g[..., 2])
    luma = 0.2989 * rgb[40, 40, 0] + 0.587 * rgb[40, 40, 1] + 0.114 * rgb[40, 40, 2]
    assert g[32:, 32:, 0].var() == pytest.approx(round(luma * 255) / 255 / 256, rel=0.03)


def test_gray_poisson_source_is_torchvisions_luma(photo):
    """Real-ESRGAN's gray Poisson noise counts levels of torchvision's ``rgb_to_grayscale``:
    ``0.2989 r + 0.587 g + 0.114 b`` (not BT.601's 0.299), so the gray image, its level count and the noise
    follow those weights; with 0.299 some gray values land one level lower (here ~0.5 % of them)."""
    x = torch.from_numpy(photo[:96, :96].astype(np.float32) / 255).permute(2, 0, 1)[None]
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    torchvision_gray = 0.2989 * r + 0.587 * g + 0.114 * b  # torchvision.transforms.functional rgb_to_grayscale
    assert torch.equal(N._luma_torch(x), torchvision_gray)
    hwc = x[0].permute(1, 2, 0).numpy()
    assert np.array_equal(N.quantize_unit(N._luma_np(hwc)), N._quantize_unit_torch(torchvision_gray)[0, 0].numpy())
    bt601 = N._quantize_unit_torch(0.299 * r + 0.587 * g + 0.114 * b)
    assert (bt601 != N._quantize_unit_torch(torchvision_gray)).float().mean() > 0.001


def _torch(img_list):
    return torch.from_numpy(np.stack(img_list)).permute(0, 3, 1, 2).contiguous()


def test_torch_host_stream_reproduces_numpy_exactly(photo):
    imgs = [photo[:64, :80].astype(np.float32) / 255, photo[64:128, :80].astype(np.float32) / 255]
    x = _torch(imgs)
    sig, gray, seeds = [5.0, 20.0], [False, True], [11, 12]
    y = N.add_gaussian_noise_torch(x, sig, gray, generator=[np.random.default_rng(s) for s in seeds])
    for i in range(2):
        ref = N.add_gaussian_noise(imgs[i], sig[i], gray=gray[i], rng=np.random.default_rng(seeds[i]))
        assert np.array_equal(y[i].permute(1, 2, 0).numpy(), ref)
    scales, gray = [0.5, 2.0], [True, False]
    y = N.add_poisson_noise_torch(x, scales, gray, generator=[np.random.default_rng(s) for s in seeds])
    for i in range(2):
        ref = N.add_poisson_noise(imgs[i], scales[i], gray=gray[i], rng=np.random.default_rng(seeds[i]))
        assert np.array_equal(y[i].permute(1, 2, 0).numpy(), ref)


def test_torch_device_generators_per_sample_statistics():
    x = torch.full((3, 3, 128, 128), GREY)
    g = torch.Generator().manual_seed(0)
    sig = [3.0, 10.0, 20.0]
    y = N.add_gaussian_noise_torch(x, sig, [False, True, False], generator=g)
    for i, s in enumerate(sig):
        assert ((y[i] - GREY).std() * 255).item() == pytest.approx(s, rel=0.03)
    assert torch.equal(y[1, 0], y[1, 2]) and not torch.equal(y[0, 0], y[0, 2])
    # per-sample torch generators: a sample's noise does not depend on its batch neighbours
    gens = lambda: [torch.Generator().manual_seed(s) for s in (1, 2, 3)]  # noqa: E731
    full = N.gaussian_noise_torch(x, sig, False, gens())
    alone = N.gaussian_noise_torch(x[1:2], sig[1:2], False, gens()[1:2])
    assert torch.equal(full[1:2], alone)
    img = torch.from_numpy(_levels_image()).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    p = N.poisson_noise_torch(img, [1.0, 2.0], [False, True], torch.Generator().manual_seed(5))
    for i, s in enumerate([1.0, 2.0]):
        v = p[i, :, 32:, 32:].var().item()
        assert v == pytest.approx(s * s * GREY / 256, rel=0.05)


def test_bad_per_sample_lengths():
    with pytest.raises(ValueError):
        N.gaussian_noise_torch(torch.zeros(2, 3, 4, 4), [1.0, 2.0, 3.0], False, torch.Generator())
    with pytest.raises(ValueError):
        N.gaussian_noise_torch(torch.zeros(2, 3, 4, 4), 1.0, False, [np.random.default_rng(0)])
