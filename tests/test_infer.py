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
    # PixelwiseNearest commutes with every rotation and has no context: the crop ensemble gives its output
    pix = PixelwiseNearest(2)
    crop = upscale(pix, img, scale=2, crop_ensemble=[(24, 8), (30, 6)])
    assert np.abs(crop - upscale(pix, img, scale=2)).max() < 1e-6
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


# --- AIM 2020's crop ensemble and EDSR-PyTorch's --chop, against a restatement of their code ---------------------

class AimModel:
    """AIM2020-Real-Super-Resolution ``src/model/__init__.py`` ``Model.forward`` in eval mode, restated for one
    CPU (``n_GPUs`` 1: ``P.data_parallel`` calls the network; single precision). EDSR-PyTorch's ``Model`` is the
    same with one list entry and no rotation."""

    def __init__(self, model, scale, chop_size, shave_size, self_ensemble=False):
        self.model, self.scale, self.idx_scale = model, [scale], 0
        self.chop_patch_size, self.shave_size, self.self_ensemble = chop_size, shave_size, self_ensemble
        self.n_GPUs, self.input_large = 1, False

    def forward(self, x):
        forward_function = self.forward_chop
        y = None
        for i in range(len(self.chop_patch_size)):
            if self.self_ensemble:
                yi = self.forward_x8(x, forward_function=forward_function,
                                     min_size=self.chop_patch_size[i] * self.chop_patch_size[i],
                                     shave_size=self.shave_size[i])
                y = yi if y is None else y + yi
            else:
                rot_x = torch.rot90(x, i, [2, 3])
                if y is None:
                    y = forward_function(rot_x, shave=self.shave_size[i],
                                         min_size=self.chop_patch_size[i] * self.chop_patch_size[i])
                else:
                    rot_y = forward_function(rot_x, shave=self.shave_size[i],
                                             min_size=self.chop_patch_size[i] * self.chop_patch_size[i])
                    y += torch.rot90(rot_y, -i, [2, 3])
        return y.div(float(len(self.chop_patch_size)))

    def forward_chop(self, *args, shave=10, min_size=160000):
        scale = 1 if self.input_large else self.scale[self.idx_scale]
        n_GPUs = min(self.n_GPUs, 4)
        h, w = args[0].size()[-2:]
        top = slice(0, h // 2 + shave)
        bottom = slice(h - h // 2 - shave, h)
        left = slice(0, w // 2 + shave)
        right = slice(w - w // 2 - shave, w)
        x_chops = [torch.cat([a[..., top, left], a[..., top, right], a[..., bottom, left], a[..., bottom, right]])
                   for a in args]
        y_chops = []
        if h * w < 4 * min_size:
            for i in range(0, 4, n_GPUs):
                x = [x_chop[i:(i + n_GPUs)] for x_chop in x_chops]
                y = self.model(*x)
                if not isinstance(y, list):
                    y = [y]
                if not y_chops:
                    y_chops = [[c for c in _y.chunk(n_GPUs, dim=0)] for _y in y]
                else:
                    for y_chop, _y in zip(y_chops, y):
                        y_chop.extend(_y.chunk(n_GPUs, dim=0))
        else:
            for p in zip(*x_chops):
                p1 = [p[0].unsqueeze(0)]
                y = self.forward_chop(*p1, shave=shave, min_size=min_size)
                if not isinstance(y, list):
                    y = [y]
                if not y_chops:
                    y_chops = [[_y] for _y in y]
                else:
                    for y_chop, _y in zip(y_chops, y):
                        y_chop.append(_y)
        h *= scale
        w *= scale
        h_shift = 1 if h % 2 == 1 else 0
        w_shift = 1 if w % 2 == 1 else 0
        top = slice(0, h // 2)
        bottom = slice(h - h // 2 - h_shift, h)
        bottom_r = slice(h // 2 - h, None)
        left = slice(0, w // 2)
        right = slice(w - w // 2 - w_shift, w)
        right_r = slice(w // 2 - w, None)
        b, c = y_chops[0][0].size()[:-2]
        y = [y_chop[0].new(b, c, h, w) for y_chop in y_chops]
        for y_chop, _y in zip(y_chops, y):
            _y[..., top, left] = y_chop[0][..., top, left]
            _y[..., top, right] = y_chop[1][..., top, right_r]
            _y[..., bottom, left] = y_chop[2][..., bottom_r, left]
            _y[..., bottom, right] = y_chop[3][..., bottom_r, right_r]
        return y[0] if len(y) == 1 else y

    def forward_x8(self, *args, forward_function=None, min_size=160000, shave_size=20):
        def _transform(v, op):
            v2np = v.data.cpu().numpy()
            if op == "v":
                tfnp = v2np[:, :, :, ::-1].copy()
            elif op == "h":
                tfnp = v2np[:, :, ::-1, :].copy()
            else:
                tfnp = v2np.transpose((0, 1, 3, 2)).copy()
            return torch.Tensor(tfnp)

        list_x = []
        for a in args:
            x = [a]
            for tf in "v", "h", "t":
                x.extend([_transform(_x, tf) for _x in x])
            list_x.append(x)
        list_y = []
        for x in zip(*list_x):
            y = forward_function(*x, shave=shave_size, min_size=min_size)
            if not isinstance(y, list):
                y = [y]
            if not list_y:
                list_y = [[_y] for _y in y]
            else:
                for _list_y, _y in zip(list_y, y):
                    _list_y.append(_y)
        for _list_y in list_y:
            for i in range(len(_list_y)):
                if i > 3:
                    _list_y[i] = _transform(_list_y[i], "t")
                if i % 4 > 1:
                    _list_y[i] = _transform(_list_y[i], "h")
                if (i % 4) % 2 == 1:
                    _list_y[i] = _transform(_list_y[i], "v")
        y = [torch.cat(_y, dim=0).mean(dim=0, keepdim=True) for _y in list_y]
        return y[0] if len(y) == 1 else y


@pytest.fixture
def one_thread():
    """Many small network calls: one torch thread (two spin against each other on a loaded machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _aim(model, img, scale, chops, shaves, self_ensemble=False):
    x = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.inference_mode():
        y = AimModel(model.eval(), scale, chops, shaves, self_ensemble).forward(x)
    return y[0].permute(1, 2, 0).clamp(0, 1).numpy()


@pytest.mark.parametrize("scale, shape, chops, shaves", [
    (2, (37, 53), [16, 10], [4, 3]),  # two levels of quadrants, two rotations
    (3, (37, 53), [16, 30, 10], [4, 2, 3]),  # odd output sizes (the middle row and column), three rotations
    (4, (30, 41), [15, 10], [8, 6]),  # AIM's two entries, scaled to this image: one level, two rotations
    (2, (45, 28), [400], [10]),  # EDSR-PyTorch's --chop (the entry EDSR_CHOP)
])
def test_crop_ensemble_is_aims(rng, one_thread, scale, shape, chops, shaves):
    img = rng.integers(0, 256, size=(*shape, 3)).astype(np.uint8)
    model = _small_edsr(scale, seed=3)
    ours = upscale(model, img, scale=scale, crop_ensemble=list(zip(chops, shaves)))
    theirs = _aim(model, img, scale, chops, shaves)
    assert ours.shape == theirs.shape == (shape[0] * scale, shape[1] * scale, 3)
    assert np.abs(ours - theirs).max() < 1e-5
    if len(chops) > 1:  # the rotated entries see the image another way: not the whole-image result
        assert np.abs(ours - upscale(model, img, scale=scale)).max() > 1e-4


def test_crop_ensemble_with_self_ensemble_is_aims(rng, one_thread):
    img = rng.integers(0, 256, size=(29, 34, 3)).astype(np.uint8)
    model = _small_edsr(2, seed=4)
    ours = upscale(model, img, scale=2, crop_ensemble=[(16, 4), (20, 3)], self_ensemble=True)
    theirs = _aim(model, img, 2, [16, 20], [4, 3], self_ensemble=True)
    assert np.abs(ours - theirs).max() < 1e-5


def test_edsr_chop_constant_and_small_inputs(rng):
    from srprep.infer import EDSR_CHOP

    assert EDSR_CHOP == ((400, 10),)  # EDSR-PyTorch: shave=10, min_size=160000
    model = _small_edsr(2)
    with pytest.raises(SrprepError, match="too small for shave 10"):
        upscale(model, rng.integers(0, 256, size=(15, 40, 3)).astype(np.uint8), scale=2, crop_ensemble=EDSR_CHOP)
