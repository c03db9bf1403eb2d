"""Architectures: published parameter counts, shapes, key layouts, registry behaviour, Reflash dropout."""
import pytest
import torch
from torch import nn

from srprep.errors import SrprepError
from srprep.models import EDSR, IMDN, MSRResNet, RRDBNet, count_parameters, create_model, list_models
from srprep.models.registry import get_entry, register_model

torch.set_num_threads(2)


@pytest.mark.parametrize(
    "name, scale, kwargs, expected",
    [
        ("edsr", 2, {}, 1_369_859),  # EDSR baseline x2, "1.37M"
        ("edsr_baseline", 2, {}, 1_369_859),
        ("edsr", 3, {}, 1_554_499),
        ("edsr", 4, {}, 1_517_571),
        ("edsr_paper", 2, {}, 40_729_603),  # EDSR paper x2, "40.7M"
        ("edsr", 2, dict(num_blocks=32, num_feats=256, res_scale=0.1), 40_729_603),
        ("msrresnet", 4, {}, 1_517_571),  # BasicSR MSRResNet x4, 16 blocks, "1.52M"
        ("msrresnet", 4, dict(num_block=20), 1_812_995),  # 20-block variant
        ("srresnet", 4, dict(num_block=20), 1_812_995),
        ("imdn", 2, {}, 694_404),  # IMDN x2 (equals the real checkpoint)
        ("imdn", 3, {}, 703_059),
        ("imdn", 4, {}, 715_176),
        ("rcan", 4, {}, 15_592_355),  # "15.6M"
        ("rcan", 2, {}, 15_444_643),
        ("rrdbnet", 4, {}, 16_697_987),  # ESRGAN generator "16.7M"
        ("carn_m", 2, {}, 414_787),  # the official multi-scale carn_m.pth (414,811 values incl. frozen mean shifts)
        ("carn", 2, {}, 1_591_939),  # CARN multi-scale ("1,592K")
        ("pan", 4, {}, 272_419),  # PAN x4 "272K"
        ("fsrcnn", 3, {}, 12_809),  # FSRCNN(56, 12, 4), any scale
        ("srcnn", 3, {}, 57_281),  # SRCNN 9-5-5, 64/32 features
    ],
)
def test_published_parameter_counts(name, scale, kwargs, expected):
    with torch.device("meta"):  # no memory, no init cost for the 40M-parameter models
        model = create_model(name, scale=scale, **kwargs)
    assert count_parameters(model) == expected


def test_msrresnet_20_block_count_decomposition():
    # 16-block x4 total plus four blocks of two 3x3 64->64 convs (weights + biases).
    per_block = 2 * (64 * 64 * 9 + 64)
    with torch.device("meta"):
        assert count_parameters(MSRResNet(scale=4, num_block=20)) == 1_517_571 + 4 * per_block == 1_812_995


def test_meanshift_is_buffers_with_official_names():
    model = EDSR(scale=2, num_blocks=1, num_feats=8)
    names = set(model.state_dict())
    assert {"sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias"} <= names
    assert not any(n.startswith(("sub_mean", "add_mean")) for n, _ in model.named_parameters())
    # DIV2K mean * 255, sign -1 at the input
    torch.testing.assert_close(model.sub_mean.bias, -255 * torch.tensor([0.4488, 0.4371, 0.4040]))


def test_edsr_key_layout_is_official():
    model = EDSR(scale=4, num_blocks=3, num_feats=8)
    expected = ["sub_mean.weight", "sub_mean.bias", "head.0.weight", "head.0.bias"]
    for i in range(3):
        for j in (0, 2):
            expected += [f"body.{i}.body.{j}.weight", f"body.{i}.body.{j}.bias"]
    expected += ["body.3.weight", "body.3.bias", "tail.0.0.weight", "tail.0.0.bias", "tail.0.2.weight",
                 "tail.0.2.bias", "tail.1.weight", "tail.1.bias", "add_mean.weight", "add_mean.bias"]
    assert list(model.state_dict()) == expected


@pytest.mark.parametrize(
    "name, scale, kwargs",
    [
        ("edsr", 2, dict(num_blocks=2, num_feats=16)),
        ("edsr", 3, dict(num_blocks=2, num_feats=16)),
        ("edsr", 4, dict(num_blocks=2, num_feats=16)),
        ("msrresnet", 2, dict(num_block=2, num_feat=16)),
        ("msrresnet", 3, dict(num_block=2, num_feat=16)),
        ("msrresnet", 4, dict(num_block=2, num_feat=16)),
        ("rrdbnet", 4, dict(num_block=1, num_feat=16, num_grow_ch=8)),
        ("rrdbnet", 2, dict(num_block=1, num_feat=16, num_grow_ch=8)),
        ("rrdbnet", 1, dict(num_block=1, num_feat=16, num_grow_ch=8)),
        ("imdn", 2, dict(num_feat=16, num_modules=2)),
        ("imdn", 3, dict(num_feat=16, num_modules=2)),
        ("rcan", 2, dict(num_groups=2, num_blocks=2, num_feats=16, reduction=4)),
        ("rcan", 4, dict(num_groups=1, num_blocks=1, num_feats=16, reduction=4)),
    ],
)
def test_output_shape_and_range_convention(name, scale, kwargs):
    model = create_model(name, scale=scale, **kwargs).eval()
    x = torch.rand(2, 3, 13, 11)  # odd sizes
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (2, 3, 13 * scale, 11 * scale)
    assert y.dtype == torch.float32


def test_edsr_zero_body_is_mean_preserving():
    # With all convs zero, EDSR outputs the DIV2K mean everywhere: the [0,1] <-> [0,255] and mean shifts
    # are inside the model and cancel.
    model = EDSR(scale=2, num_blocks=1, num_feats=8)
    for p in model.parameters():
        nn.init.zeros_(p)
    with torch.inference_mode():
        y = model(torch.rand(1, 3, 5, 5))
    mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
    torch.testing.assert_close(y, mean.expand_as(y), atol=1e-6, rtol=0)


@pytest.mark.parametrize("cls, kwargs, p", [
    (MSRResNet, dict(scale=4, num_block=1, num_feat=8), 0.7),
    (RRDBNet, dict(scale=4, num_block=1, num_feat=8, num_grow_ch=4), 0.5),
])
def test_reflash_dropout_only_in_training(cls, kwargs, p):
    torch.manual_seed(0)
    plain = cls(**kwargs)
    dropped = cls(dropout=p, **kwargs)
    assert isinstance(dropped.dropout, nn.Dropout2d) and dropped.dropout.p == p
    assert isinstance(plain.dropout, nn.Identity)
    dropped.load_state_dict(plain.state_dict())  # same keys: dropout holds no weights
    x = torch.rand(1, 3, 6, 6)
    plain.eval(), dropped.eval()
    with torch.no_grad():
        torch.testing.assert_close(dropped(x), plain(x))
        dropped.train()
        assert not torch.allclose(dropped(x), plain(x))


def test_imdn_official_names():
    keys = list(IMDN(scale=2).state_dict())
    assert keys[:2] == ["fea_conv.weight", "fea_conv.bias"]
    assert "IMDB6.cca.conv_du.2.weight" in keys
    assert keys[-6:] == ["c.0.weight", "c.0.bias", "LR_conv.weight", "LR_conv.bias",
                         "upsampler.0.weight", "upsampler.0.bias"]


def test_registry():
    names = list_models()
    assert {"edsr", "edsr_paper", "msrresnet", "srresnet", "rrdbnet", "imdn", "rcan"} <= set(names)
    assert names == sorted(names)
    assert get_entry("srresnet").alias_of == "msrresnet"
    with pytest.raises(SrprepError, match="unknown model 'nope'.*edsr"):
        create_model("nope", scale=2)
    with pytest.raises(SrprepError, match="bad arguments"):
        create_model("edsr", scale=2, num_blockz=3)
    with pytest.raises(SrprepError, match="x5"):
        create_model("edsr", scale=5)
    with pytest.raises(ValueError, match="already registered"):
        register_model("edsr")(EDSR)
