"""Other programs' checkpoints load into srprep's networks (BasicSR EDSR/RCAN, Reflash SRResNet, EDSR-PyTorch with
rgb_range 1 or 255), and srprep's weights export to files those programs load (``srprep export``), checked
against the programs' networks and loaders written out in ``reference_nets.py``."""
import importlib.util

import pytest
import torch

from srprep.cli import main
from srprep.errors import SrprepError
from srprep.models import create_model, list_models, load_pretrained, save_checkpoint
from srprep.models.export import export_weights
from srprep.models.layouts import LAYOUTS, from_srprep, to_srprep

from .reference_nets import (BasicsrEDSR, BasicsrRCAN, EdsrPytorchEDSR, EdsrPytorchRCAN, ReflashSRResNet,
                             basicsr_load, edsr_pytorch_load)

torch.set_num_threads(2)


def _randomise(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "mean" not in name:  # mean shifts stay what their constructor made
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return net.eval()


def _x(seed=3, size=(9, 8)):
    return torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(seed))


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# --- loading other programs' files -------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_basicsr_edsr_file_loads(tmp_path, scale):
    ref = _randomise(BasicsrEDSR(num_feat=16, num_block=3, upscale=scale), scale)
    torch.save({"params_ema": ref.state_dict()}, tmp_path / "EDSR.pth")
    model, info = load_pretrained(tmp_path / "EDSR.pth")
    assert (info.arch, info.scale, info.key_layout, info.source_format) == ("edsr", scale, "basicsr-edsr",
                                                                            "basicsr:params_ema")
    assert info.kwargs["num_blocks"] == 3 and info.kwargs["num_feats"] == 16
    with torch.inference_mode():
        _close(model(_x()), ref(_x()))


def test_basicsr_rcan_file_loads(tmp_path):
    ref = _randomise(BasicsrRCAN(num_feat=16, num_group=2, num_block=3, squeeze_factor=4, upscale=2), 1)
    torch.save({"params": ref.state_dict()}, tmp_path / "RCAN.pth")
    model, info = load_pretrained(tmp_path / "RCAN.pth")
    assert (info.arch, info.scale, info.key_layout) == ("rcan", 2, "basicsr-rcan")
    assert (info.kwargs["num_groups"], info.kwargs["num_blocks"], info.kwargs["reduction"]) == (2, 3, 4)
    with torch.inference_mode():
        _close(model(_x()), ref(_x()))


@pytest.mark.parametrize("scale", [2, 4])
def test_reflash_dropout_srresnet_file_loads(tmp_path, scale):
    ref = _randomise(ReflashSRResNet(num_feat=16, upscale=scale), 2)
    assert "body16.0.conv2.weight" in ref.state_dict()
    torch.save({"params": ref.state_dict()}, tmp_path / "Real-SRResNet_withdropout.pth")
    model, info = load_pretrained(tmp_path / "Real-SRResNet_withdropout.pth", arch="srresnet",
                                  model_kwargs={"dropout": 0.7})
    assert (info.arch, info.scale, info.key_layout, info.kwargs["num_block"]) == ("srresnet", scale,
                                                                                  "reflash-srresnet", 16)
    assert model.dropout.p == 0.7  # the dropout has no weights; eval mode switches it off
    with torch.inference_mode():
        _close(model(_x()), ref(_x()))


@pytest.mark.parametrize("rgb_range", [1, 255])
def test_edsr_pytorch_rgb_range_is_read_from_the_mean_shift(tmp_path, rgb_range):
    ref = _randomise(EdsrPytorchEDSR(n_resblocks=2, n_feats=16, scale=2, rgb_range=rgb_range), 4)
    torch.save(ref.state_dict(), tmp_path / "edsr.pt")
    model, info = load_pretrained(tmp_path / "edsr.pt")
    assert info.kwargs["rgb_range"] == float(rgb_range) and info.source_format == "edsr-pytorch"
    with torch.inference_mode():
        _close(model(_x()), ref(_x() * rgb_range) / rgb_range)


def test_edsr_pytorch_rcan_rgb_range_1(tmp_path):
    ref = _randomise(EdsrPytorchRCAN(n_resgroups=2, n_resblocks=2, n_feats=16, reduction=4, scale=3, rgb_range=1), 5)
    torch.save(ref.state_dict(), tmp_path / "rcan.pt")
    model, info = load_pretrained(tmp_path / "rcan.pt")
    assert (info.arch, info.scale, info.kwargs["rgb_range"]) == ("rcan", 3, 1.0)
    with torch.inference_mode():
        _close(model(_x()), ref(_x()))


def test_a_mean_shift_of_another_mean_is_refused(tmp_path):
    state = create_model("edsr", scale=2, num_blocks=1, num_feats=8).state_dict()
    state["sub_mean.bias"] = torch.tensor([-100.0, -100.0, -100.0])
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(SrprepError, match="cannot read rgb_range from sub_mean.bias"):
        load_pretrained(tmp_path / "odd.pt")


def test_layouts_rename_both_ways_without_loss():
    for layout in LAYOUTS:
        kwargs = {"edsr": dict(num_blocks=3, num_feats=8), "rcan": dict(num_groups=2, num_blocks=2, num_feats=16,
                                                                        reduction=4), "msrresnet": dict(num_feat=8)}
        state = create_model(layout.arch, scale=4, **kwargs[layout.arch]).state_dict()
        foreign = from_srprep(state, layout.name)
        assert layout.detect(foreign)
        back, found = to_srprep(foreign)
        assert found is layout
        assert set(back) | {k for k in state if k.startswith(layout.not_stored)} == set(state)
        assert all(back[k] is state[k] for k in back)


# --- exporting ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rgb_range", [255.0, 1.0])
def test_export_edsr_to_basicsr_and_edsr_pytorch(tmp_path, rgb_range):
    src = _randomise(create_model("edsr", scale=4, num_blocks=2, num_feats=16, res_scale=0.1, rgb_range=rgb_range), 6)
    ckpt = save_checkpoint(src, tmp_path / "best.pt", "edsr", 4)
    assert main(["-q", "export", "-m", ckpt, "--to", "basicsr"]) == 0
    ref = basicsr_load(BasicsrEDSR(num_feat=16, num_block=2, upscale=4, res_scale=0.1, img_range=rgb_range),
                       tmp_path / "best_basicsr.pth")
    assert main(["-q", "export", "-m", ckpt, "--to", "edsr"]) == 0
    ref2 = edsr_pytorch_load(EdsrPytorchEDSR(n_resblocks=2, n_feats=16, scale=4, res_scale=0.1, rgb_range=rgb_range),
                             tmp_path / "best_edsr.pt")
    with torch.inference_mode():
        _close(ref(_x()), src(_x()))
        _close(ref2(_x() * rgb_range) / rgb_range, src(_x()))


def test_export_rcan_to_basicsr_and_edsr_pytorch(tmp_path):
    src = _randomise(create_model("rcan", scale=2, num_groups=2, num_blocks=2, num_feats=16, reduction=4), 7)
    report = export_weights(src, "rcan", 2, tmp_path / "rcan_basicsr.pth", "basicsr")
    assert '"type": "RCAN"' in report.notes[0] and '"num_group": 2' in report.notes[0]
    ref = basicsr_load(BasicsrRCAN(num_feat=16, num_group=2, num_block=2, squeeze_factor=4, upscale=2),
                       tmp_path / "rcan_basicsr.pth")
    export_weights(src, "rcan", 2, tmp_path / "rcan.pt", "edsr")
    ref2 = edsr_pytorch_load(EdsrPytorchRCAN(n_resgroups=2, n_resblocks=2, n_feats=16, reduction=4, scale=2),
                             tmp_path / "rcan.pt")
    with torch.inference_mode():
        _close(ref(_x()), src(_x()))
        _close(ref2(_x() * 255) / 255, src(_x()))


def test_export_to_basicsr_of_a_network_basicsr_lacks_is_refused(tmp_path, capsys):
    src = create_model("imdn", scale=2, num_feat=16, num_modules=1)
    ckpt = save_checkpoint(src, tmp_path / "imdn.pt", "imdn", 2)
    assert main(["export", "-m", ckpt, "--to", "basicsr"]) == 1
    assert "BasicSR has no imdn network; use --to edsr" in capsys.readouterr().err
    assert not (tmp_path / "imdn_basicsr.pth").exists()
    assert main(["-q", "export", "-m", ckpt, "--to", "edsr"]) == 0
    assert main(["export", "-m", ckpt, "--to", "edsr"]) == 1  # exists: not replaced without --force
    assert "exists; pass --force" in capsys.readouterr().err


_SMALL = {
    "edsr": dict(num_blocks=2, num_feats=8), "rcan": dict(num_groups=1, num_blocks=2, num_feats=16, reduction=4),
    "msrresnet": dict(num_block=2, num_feat=8), "rrdbnet": dict(num_block=1, num_feat=8, num_grow_ch=4),
    "imdn": dict(num_feat=16, num_modules=2), "carn": dict(), "pan": dict(nf=8, unf=4, nb=2),
    "fsrcnn": dict(d=8, s=4, m=2), "srcnn": dict(),
}


@pytest.mark.parametrize("fmt", ["edsr", "safetensors"])
@pytest.mark.parametrize("arch", sorted(_SMALL))
def test_every_architecture_round_trips_through_export(tmp_path, arch, fmt):
    if fmt == "safetensors" and importlib.util.find_spec("safetensors") is None:
        pytest.skip("safetensors not installed")
    scale = 2 if arch != "rrdbnet" else 4
    src = _randomise(create_model(arch, scale=scale, **_SMALL[arch]), 8)
    ckpt = save_checkpoint(src, tmp_path / "best.pt", arch, scale)
    out = tmp_path / f"out.{fmt}"
    assert main(["-q", "export", "-m", ckpt, "--to", fmt, "-o", out] + (["-s", str(scale)])) == 0
    if fmt == "edsr":  # the original code's names: the network's own state_dict keys, a plain dict
        assert list(torch.load(out, weights_only=True)) == list(src.state_dict())
    model, info = load_pretrained(out, scale=scale if arch in ("carn", "fsrcnn", "srcnn", "pan") else None)
    assert info.arch == arch and info.scale == scale
    with torch.inference_mode():
        _close(model(_x(size=(12, 11))), src(_x(size=(12, 11))))


def test_registry_covers_every_exported_architecture():
    bases = {name for name in list_models() if name not in ("edsr_baseline", "edsr_paper", "srresnet", "esrgan",
                                                            "carn_m")}
    assert bases == set(_SMALL)
