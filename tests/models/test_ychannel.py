"""FSRCNN and SRCNN: the authors' key layout and layers, and their colour handling (Y network, CbCr bicubic).

The authors' procedure (yjn870/FSRCNN-pytorch and SRCNN-pytorch ``test.py`` / ``utils.py``) is stated here
step by step with numpy and torch.nn.functional; their ``Image.resize(..., BICUBIC)`` is plain Pillow's, here
:func:`srprep.ops.pil_resize.pil_resize` (checked against real Pillow in ``tests/ops/test_pil_resize.py``, and
against it once more below); srprep's networks must give the same numbers.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from srprep.errors import SrprepError
from srprep.models import FSRCNN, SRCNN, infer_architecture, load_pretrained
from srprep.models.ychannel import pil_bicubic
from srprep.ops.pil_resize import pil_resize

from ..plain_pillow import plain_pillow_resize

torch.set_num_threads(2)


def _their_ycbcr(img):
    """utils.convert_rgb_to_ycbcr of an (H, W, 3) float32 array in [0, 255] (64.738 is theirs)."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    y = 16. + (64.738 * r + 129.057 * g + 25.064 * b) / 256.
    cb = 128. + (-37.945 * r - 74.494 * g + 112.439 * b) / 256.
    cr = 128. + (112.439 * r - 94.154 * g - 18.285 * b) / 256.
    return y, cb, cr


def _their_rgb(y, cb, cr):
    """utils.convert_ycbcr_to_rgb, unclipped."""
    r = 298.082 * y / 256. + 408.583 * cr / 256. - 222.921
    g = 298.082 * y / 256. - 100.291 * cb / 256. - 208.120 * cr / 256. + 135.576
    b = 298.082 * y / 256. + 516.412 * cb / 256. - 276.836
    return np.stack([r, g, b], axis=-1)


def _fsrcnn_layers(state, y, scale):
    """models.FSRCNN.forward written with functional calls on the file's tensors."""
    x = F.prelu(F.conv2d(y, state["first_part.0.weight"], state["first_part.0.bias"], padding=2),
                state["first_part.1.weight"])
    for i in range(0, 12, 2):
        w = state[f"mid_part.{i}.weight"]
        x = F.conv2d(x, w, state[f"mid_part.{i}.bias"], padding=w.shape[-1] // 2)
        x = F.prelu(x, state[f"mid_part.{i + 1}.weight"])
    return F.conv_transpose2d(x, state["last_part.weight"], state["last_part.bias"], stride=scale, padding=4,
                              output_padding=scale - 1)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_real_fsrcnn_files_load_key_for_key_and_run_the_authors_layers(ref_data, scale):
    path = ref_data / "weights" / "FSRCNN" / f"fsrcnn_x{scale}.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    # Every scale has the same shapes: the file does not say its scale.
    assert infer_architecture(state) == ("fsrcnn", None, dict(d=56, s=12, m=4, num_channels=1))
    with pytest.raises(SrprepError, match=r"do not record their scale.*--scale"):
        load_pretrained(path)
    model, info = load_pretrained(path, scale=scale)
    assert (info.arch, info.scale) == ("fsrcnn", scale) and list(model.state_dict()) == list(state)
    y = torch.rand(1, 1, 9, 11, generator=torch.Generator().manual_seed(scale))
    with torch.inference_mode():
        torch.testing.assert_close(model.core(y), _fsrcnn_layers(state, y, scale), rtol=0, atol=1e-6)


def _authors_colour(lr_u8, scale, luma_of_lr, luma_of_bicubic):
    """test.py: bicubic = PIL bicubic enlargement of the RGB LR; Y from the network (clamped to [0, 1], x255)
    replaces the bicubic's Y; back to RGB with their formulas. Returns (RGB float in [0, 255], network Y)."""
    h, w = lr_u8.shape[:2]
    bicubic = pil_resize(lr_u8, (h * scale, w * scale), "bicubic").astype(np.float32)
    by, cb, cr = _their_ycbcr(bicubic)
    preds = luma_of_lr(_their_ycbcr(lr_u8.astype(np.float32))[0] / 255.) if luma_of_lr else luma_of_bicubic(by / 255.)
    preds = np.clip(preds, 0.0, 1.0) * 255.
    return _their_rgb(preds, cb, cr), preds


def _run(core):
    def f(y):
        with torch.inference_mode():
            return core(torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))[None, None])[0, 0].numpy()
    return f


def test_fsrcnn_colour_is_the_authors(rng):
    torch.manual_seed(0)
    model = FSRCNN(scale=3).eval()
    lr = rng.integers(0, 256, (10, 13, 3), dtype=np.uint8)
    expected_rgb, expected_y = _authors_colour(lr, 3, _run(model.core), None)
    x = torch.from_numpy(lr.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.inference_mode():
        rgb = model(x)[0].permute(1, 2, 0).numpy() * 255
        y = model.luma(x)[0, 0].numpy() * 255
    assert rgb.shape == (30, 39, 3)
    np.testing.assert_allclose(y, expected_y, rtol=0, atol=1e-3)
    np.testing.assert_allclose(rgb, expected_rgb, rtol=0, atol=1e-3)


def test_srcnn_runs_on_the_bicubic_y_and_is_recognised(rng):
    torch.manual_seed(1)
    model = SRCNN(scale=2).eval()
    state = model.state_dict()
    assert sorted(state) == sorted(f"conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias"))
    assert [tuple(state[f"conv{i}.weight"].shape) for i in (1, 2, 3)] == [(64, 1, 9, 9), (32, 64, 5, 5), (1, 32, 5, 5)]
    assert infer_architecture(state) == ("srcnn", None, dict(num_channels=1))
    lr = rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    expected_rgb, expected_y = _authors_colour(lr, 2, None, _run(model.core))
    x = torch.from_numpy(lr.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.inference_mode():
        np.testing.assert_allclose(model.luma(x)[0, 0].numpy() * 255, expected_y, rtol=0, atol=1e-3)
        np.testing.assert_allclose(model(x)[0].permute(1, 2, 0).numpy() * 255, expected_rgb, rtol=0, atol=1e-3)


def test_y_networks_refuse_other_input():
    with pytest.raises(SrprepError, match=r"expected \(N, 3, H, W\) RGB"):
        FSRCNN(scale=2)(torch.zeros(1, 1, 4, 4))
    with pytest.raises(SrprepError, match="num_channels=1"):
        FSRCNN(scale=2, num_channels=3)


def test_the_colour_path_resizes_as_real_plain_pillow(rng):
    """The CbCr / SRCNN-input enlargement is plain Pillow's ``Image.resize(BICUBIC)`` byte for byte (not the
    installed pillow-simd's)."""
    imgs = {f"x{s}": (rng.integers(0, 256, (17, 23, 3), dtype=np.uint8), s) for s in (2, 3, 4)}
    _, out = plain_pillow_resize({k: (img, (17 * s, 23 * s), "bicubic") for k, (img, s) in imgs.items()})
    for k, (img, s) in imgs.items():
        np.testing.assert_array_equal(pil_bicubic(img, (17 * s, 23 * s)), out[k])
