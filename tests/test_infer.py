"""srprep.infer: tiling, ensembles, precision, batching, modes."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from srprep.errors import SrprepError
from srprep.infer import tile_spans, upscale, upscale_batch
from srprep.models import EDSR, create_model

torch.set_num_threads(2)


class PixelwiseNearest(nn.Module):
    """A fixed per-pixel colour map followed by nearest upsampling: commutes with every flip and rotation."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        self.mix = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return F.interpolate(torch.sigmoid(self.mix(x)), scale_factor=self.scale, mode="nearest")


def _small_edsr(scale, seed=0):
    # 2 blocks: receptive-field radius 7.5 LR pixels, less than overlap // 2 = 8 for overlap 16
    torch.manual_seed(seed)
    return EDSR(scale=scale, num_blocks=2, num_feats=16)


@pytest.fixture
def img(rng):
    return rng.integers(0, 256, size=(37, 53, 3)).astype(np.uint8)


@given(n=st.integers(1, 300), tile=st.integers(2, 80), overlap=st.integers(0, 79), align=st.sampled_from([1, 2, 4]))
@settings(max_examples=300, deadline=None)
def test_tile_spans_partition_with_context(n, tile, overlap, align):
    if overlap >= tile:
        return
    spans = tile_spans(n, tile, overlap, align)
    assert spans[0][2] == 0 and spans[-1][3] == n
    for (s, e, ks, ke), nxt in zip(spans, spans[1:] + [None]):
        assert 0 <= s <= ks < ke <= e <= n
        assert s % align == 0
        assert e - s <= max(max(tile, overlap + align) + align - 1, n if len(spans) == 1 else 0)
        if nxt is not None:
            assert ke == nxt[2]  # kept parts tile the axis exactly
            assert e - ke >= overlap // 2 and nxt[2] - nxt[0] >= overlap // 2  # context on both sides


@pytest.mark.parametrize("scale, tile, overlap", [(2, 24, 16), (3, 17, 16), (4, 20, 16), (2, 40, 32)])
def test_tiled_equals_whole(img, scale, tile, overlap):
    model = _small_edsr(scale)
    whole = upscale(model, img, scale=scale)
    tiled = upscale(model, img, scale=scale, tile=tile, overlap=overlap)
    assert whole.shape == (37 * scale, 53 * scale, 3) and whole.dtype == np.float32
    assert np.abs(tiled - whole).max() < 1e-5


def test_tiled_equals_whole_msrresnet(img):
    torch.manual_seed(0)
    model = create_model("msrresnet", scale=4, num_block=2, num_feat=16)
    whole = upscale(model, img, scale=4)
    assert np.abs(upscale(model, img, scale=4, tile=21, overlap=16) - whole).max() < 1e-5


def test_tiled_equals_whole_pixel_unshuffle_network(rng):
    # RRDBNet x2 unshuffles the input by 2: tiles must start on even pixels (tile_align) to be exact.
    torch.manual_seed(0)
    model = create_model("rrdbnet", scale=2, num_block=1, num_feat=8, num_grow_ch=4)
    img = rng.integers(0, 256, size=(45, 67, 3)).astype(np.uint8)
    whole = upscale(model, img, scale=2)
    assert np.abs(upscale(model, img, scale=2, tile=51, overlap=44) - whole).max() < 1e-5


def test_self_ensemble_of_equivariant_model_equals_plain(img):
    torch.manual_seed(0)
    model = PixelwiseNearest(2)
    plain = upscale(model, img, scale=2)
    assert np.abs(upscale(model, img, scale=2, self_ensemble=True) - plain).max() < 1e-6


def test_self_ensemble_matches_manual_numpy_average(img):
    model = _small_edsr(2)
    outs = []
    for flip in (False, True):
        for k in range(4):
            t = np.rot90(img[:, ::-1] if flip else img, k)
            y = np.rot90(upscale(model, np.ascontiguousarray(t), scale=2), -k)
            outs.append(y[:, ::-1] if flip else y)
    # average of unclamped outputs, clamped at the end: random EDSR outputs stay within [0, 1] here
    expected = np.clip(np.mean(outs, axis=0), 0, 1)
    got = upscale(model, img, scale=2, self_ensemble=True)
    assert np.abs(got - expected).max() < 1e-5


def test_crop_and_model_ensembles(img):
    m1, m2 = _small_edsr(2, seed=1), _small_edsr(2, seed=2)
    whole = upscale(m1, img, scale=2)
    crop = upscale(m1, img, scale=2, crop_ensemble=[(24, 16), (30, 20)])
    assert np.abs(crop - whole).max() < 1e-5
    both = upscale([m1, m2], img, scale=2, output="float")
    raw1 = upscale(m1, img, scale=2)
    raw2 = upscale(m2, img, scale=2)
    np.testing.assert_allclose(both, np.clip((raw1 + raw2) / 2, 0, 1), atol=1e-5)
    with pytest.raises(SrprepError, match="not both"):
        upscale(m1, img, scale=2, tile=24, crop_ensemble=[(24, 16)])


def test_uint8_output_is_rounded_float(img):
    model = _small_edsr(2)
    f = upscale(model, img, scale=2)
    u = upscale(model, img, scale=2, output="uint8")
    assert u.dtype == np.uint8
    np.testing.assert_array_equal(u, np.round(f * 255).astype(np.uint8))


def test_batch_equals_single(rng):
    model = _small_edsr(2)
    imgs = [rng.integers(0, 256, size=s + (3,)).astype(np.uint8) for s in [(9, 11), (12, 8), (9, 11), (9, 11)]]
    batched = upscale_batch(model, imgs, scale=2, batch_size=2)
    for im, out in zip(imgs, batched):
        np.testing.assert_allclose(out, upscale(model, im, scale=2), atol=1e-5)


def test_bf16_on_cpu_close_to_fp32_and_cuda_only_precisions(img):
    model = _small_edsr(2)
    fp32 = upscale(model, img[:16, :16], scale=2)
    bf16 = upscale(model, img[:16, :16], scale=2, precision="bf16")
    assert bf16.dtype == np.float32
    assert np.abs(bf16 - fp32).max() < 0.05
    for p in ("fp16", "tf32"):
        with pytest.raises(SrprepError, match="CUDA"):
            upscale(model, img, scale=2, precision=p, device="cpu")
    with pytest.raises(SrprepError, match="unknown precision"):
        upscale(model, img, scale=2, precision="int8")


def test_channels_last_same_result(img):
    model = _small_edsr(2)
    ref = upscale(model, img, scale=2)
    np.testing.assert_allclose(upscale(model, img, scale=2, channels_last=True), ref, atol=1e-5)


def test_eval_mode_during_inference_and_restored(img):
    torch.manual_seed(0)
    model = create_model("msrresnet", scale=2, num_block=1, num_feat=8, dropout=0.7)
    model.train()
    a = upscale(model, img, scale=2)
    b = upscale(model, img, scale=2)
    np.testing.assert_array_equal(a, b)  # dropout inactive: deterministic
    assert model.training


def test_gray_and_float_inputs_and_errors(img):
    model = _small_edsr(2)
    gray = img[..., 0]
    out = upscale(model, gray, scale=2)
    np.testing.assert_allclose(out, upscale(model, np.repeat(gray[..., None], 3, 2), scale=2), atol=0)
    np.testing.assert_allclose(upscale(model, img.astype(np.float32) / 255, scale=2),
                               upscale(model, img, scale=2), atol=1e-6)
    with pytest.raises(SrprepError, match="x2, but scale=4"):
        upscale(model, img, scale=4)
    with pytest.raises(SrprepError, match="tile > overlap"):
        upscale(model, img, scale=2, tile=16, overlap=16)
    with pytest.raises(SrprepError, match="RGB"):
        upscale(model, np.zeros((4, 4, 4), np.uint8), scale=2)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_precisions(img):
    model = _small_edsr(2)
    ref = upscale(model, img, scale=2, device="cpu")
    for p in ("fp32", "tf32", "bf16", "fp16"):
        out = upscale(model, img, scale=2, device="cuda", precision=p, tile=24, overlap=16)
        assert np.abs(out - ref).max() < (1e-4 if p == "fp32" else 0.05), p
