"""Checkpoint formats, architecture inference and refusal paths of srprep.models.pretrained."""
import hashlib
import importlib.util
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from srprep.errors import SrprepError
from srprep.models import (
    EDSR,
    MSRResNet,
    create_model,
    infer_architecture,
    load_pretrained,
    save_checkpoint,
)

torch.set_num_threads(2)


class NotAWeight:
    """A custom class: pickling it makes a checkpoint unreadable for the weights-only loader."""

    def __init__(self):
        self.note = "trainer state"


def _same_outputs(a, b, scale, size=(9, 7)):
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        torch.testing.assert_close(a.eval()(x), b.eval()(x), atol=0, rtol=0)


def _official_edsr_keys(num_blocks, scale):
    """The EDSR-PyTorch key list, written out independently of srprep's module names."""
    keys = ["sub_mean.weight", "sub_mean.bias", "head.0.weight", "head.0.bias"]
    for i in range(num_blocks):
        keys += [f"body.{i}.body.0.weight", f"body.{i}.body.0.bias",
                 f"body.{i}.body.2.weight", f"body.{i}.body.2.bias"]
    keys += [f"body.{num_blocks}.weight", f"body.{num_blocks}.bias"]
    ups = {2: [0], 3: [0], 4: [0, 2]}[scale]
    for j in ups:
        keys += [f"tail.0.{j}.weight", f"tail.0.{j}.bias"]
    keys += ["tail.1.weight", "tail.1.bias", "add_mean.weight", "add_mean.bias"]
    return keys


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_official_edsr_layout_loads_and_round_trips(tmp_path, scale):
    src = EDSR(scale=scale, num_blocks=3, num_feats=16)
    state = OrderedDict((k, v.clone()) for k, v in src.state_dict().items())
    official_keys = _official_edsr_keys(3, scale)
    # "renaming" srprep's keys to the official ones is the identity
    assert list(state) == official_keys
    path = tmp_path / f"EDSR_x{scale}.pt"
    torch.save(OrderedDict((k, state[k]) for k in official_keys), path)
    model, info = load_pretrained(path)
    assert (info.arch, info.scale, info.source_format) == ("edsr", scale, "edsr-pytorch")
    assert info.kwargs["num_blocks"] == 3 and info.kwargs["num_feats"] == 16 and info.kwargs["res_scale"] == 1.0
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    _same_outputs(src, model, scale)


def test_edsr_res_scale_is_not_guessed_for_wide_models(tmp_path):
    """res_scale leaves no trace in the weights: a 256-feature EDSR (the paper's used 0.1, EDSR-PyTorch's default
    is 1) is refused until it is given; the given value is used."""
    with torch.device("meta"):
        state = EDSR(scale=2, num_blocks=1, num_feats=256).state_dict()
    arch, scale, kwargs = infer_architecture(state)
    assert (arch, scale, kwargs["res_scale"]) == ("edsr", 2, None)
    path = tmp_path / "edsr_wide.pt"
    torch.save(EDSR(scale=2, num_blocks=1, num_feats=256, res_scale=0.1).state_dict(), path)
    with pytest.raises(SrprepError, match="res_scale is not stored in the weights.*res_scale=0.1"):
        load_pretrained(path)
    model, info = load_pretrained(path, model_kwargs={"res_scale": 0.1})
    assert info.kwargs["res_scale"] == 0.1 and model.body[0].res_scale == 0.1


def test_basicsr_prefers_params_ema(tmp_path):
    torch.manual_seed(0)
    a = MSRResNet(scale=4, num_block=2, num_feat=16)
    b = MSRResNet(scale=4, num_block=2, num_feat=16)
    path = tmp_path / "net_g.pth"
    torch.save({"params": a.state_dict(), "params_ema": b.state_dict()}, path)
    model, info = load_pretrained(path)
    assert (info.arch, info.scale, info.source_format) == ("msrresnet", 4, "basicsr:params_ema")
    assert info.kwargs["num_block"] == 2 and info.kwargs["num_feat"] == 16
    _same_outputs(b, model, 4)
    torch.save({"params": a.state_dict()}, path)
    model, info = load_pretrained(path)
    assert info.source_format == "basicsr:params"
    _same_outputs(a, model, 4)


def test_dataparallel_prefix_is_stripped(tmp_path):
    src = create_model("rrdbnet", scale=2, num_block=2, num_feat=16, num_grow_ch=8)
    path = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, path)
    model, info = load_pretrained(path, arch="esrgan")
    assert info.stripped_prefix == "module." and info.scale == 2 and info.kwargs["num_block"] == 2
    _same_outputs(src, model, 2, size=(8, 6))


def test_mismatched_checkpoint_names_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "msr.pth"
    torch.save(MSRResNet(scale=2, num_block=2, num_feat=16).state_dict(), path)
    with pytest.raises(SrprepError) as err:
        load_pretrained(path, arch="edsr", scale=2)
    msg = str(err.value)
    assert str(path) in msg
    n_edsr = len(EDSR(scale=2).state_dict())
    assert f"{n_edsr} missing keys: sub_mean.weight" in msg
    n_msr = len(MSRResNet(scale=2, num_block=2, num_feat=16).state_dict())
    assert f"{n_msr} unexpected keys: conv_first.weight" in msg
    assert "more)" in msg  # only a few names are listed
    assert "look like msrresnet x2" in msg


def test_shape_mismatch_and_wrong_scale(tmp_path):
    path = tmp_path / "edsr.pt"
    torch.save(EDSR(scale=2, num_blocks=2, num_feats=16).state_dict(), path)
    with pytest.raises(SrprepError, match=r"weights are for x2, but x4 was requested"):
        load_pretrained(path, scale=4)
    with pytest.raises(SrprepError, match=r"shape mismatches"):
        load_pretrained(path, arch="edsr_baseline", scale=2)


def test_weights_only_refusal_names_trust_option(tmp_path):
    src = MSRResNet(scale=4, num_block=1, num_feat=8)
    path = tmp_path / "pickled.pth"
    torch.save({"params": src.state_dict(), "trainer": NotAWeight()}, path)
    with pytest.raises(SrprepError, match="--trust-checkpoint") as err:
        load_pretrained(path)
    assert "NotAWeight" in str(err.value)
    model, info = load_pretrained(path, trust_checkpoint=True)
    assert info.source_format == "basicsr:params"
    _same_outputs(src, model, 4)


def test_garbage_and_missing_files(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(SrprepError, match="bad.pth"):
        load_pretrained(bad)
    with pytest.raises(SrprepError, match="not found"):
        load_pretrained(tmp_path / "absent.pth")
    unknown = tmp_path / "unknown.pth"
    torch.save({"foo.weight": torch.zeros(3)}, unknown)
    with pytest.raises(SrprepError, match="cannot tell the architecture"):
        load_pretrained(unknown)


@pytest.mark.parametrize(
    "name, scale, kwargs",
    [
        ("edsr", 2, dict(num_blocks=2, num_feats=16, res_scale=1.0)),
        ("edsr", 4, dict(num_blocks=5, num_feats=32, res_scale=1.0)),
        ("msrresnet", 3, dict(num_block=3, num_feat=16, num_in_ch=3, num_out_ch=3)),
        ("rrdbnet", 4, dict(num_block=2, num_feat=16, num_grow_ch=8, num_in_ch=3, num_out_ch=3)),
        ("rrdbnet", 1, dict(num_block=1, num_feat=16, num_grow_ch=8, num_in_ch=3, num_out_ch=3)),
        ("imdn", 2, dict(num_feat=64, num_modules=6, num_in_ch=3, num_out_ch=3)),
        ("imdn", 4, dict(num_feat=32, num_modules=3, num_in_ch=3, num_out_ch=3)),
        ("rcan", 3, dict(num_groups=2, num_blocks=3, num_feats=32, reduction=8)),
    ],
)
def test_arch_and_scale_inferred_from_keys(name, scale, kwargs):
    with torch.device("meta"):
        state = create_model(name, scale=scale, **kwargs).state_dict()
    arch, found_scale, found = infer_architecture(state)
    assert (arch, found_scale) == (name, scale)
    for k, v in kwargs.items():
        assert found[k] == v, k


def test_srprep_checkpoint_round_trip(tmp_path):
    src = create_model("msrresnet", scale=2, num_block=2, num_feat=16, dropout=0.7)
    config = {"lr": 2e-4, "data": Path("/data/DIV2K"), "crop": (96, 96)}
    path = save_checkpoint(src, tmp_path / "ckpt" / "last.pth", "msrresnet", 2, config)
    raw = torch.load(path, map_location="cpu", weights_only=True)  # must be weights-only readable
    assert set(raw) >= {"arch", "scale", "config", "model"}
    model, info = load_pretrained(path)
    assert (info.arch, info.scale, info.source_format) == ("msrresnet", 2, "srprep")
    assert info.config == {"lr": 2e-4, "data": "/data/DIV2K", "crop": [96, 96]}
    assert model.dropout.p == 0.7  # constructor kwargs travel with the checkpoint
    _same_outputs(src, model, 2)
    with pytest.raises(SrprepError, match="config"):
        save_checkpoint(src, tmp_path / "x.pth", "msrresnet", 2, {"bad": object()})


def test_real_imdn_checkpoint(ref_data):
    path = ref_data / "weights" / "IMDN_x2.pth"
    model, info = load_pretrained(path)
    assert (info.arch, info.scale, info.stripped_prefix) == ("imdn", 2, "module.")
    assert info.sha256 == "740b39653592bd3f49955a21cd9e16f2d37f2c413368cc09327601b8fbe42ce1"
    assert sum(p.numel() for p in model.parameters()) == 694_404


@pytest.mark.skipif(importlib.util.find_spec("safetensors") is None, reason="safetensors not installed")
def test_safetensors(tmp_path):
    from safetensors.torch import save_file

    src = create_model("imdn", scale=3, num_feat=16, num_modules=2)
    path = tmp_path / "imdn.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    model, info = load_pretrained(path)
    assert (info.arch, info.scale, info.source_format) == ("imdn", 3, "safetensors")
    _same_outputs(src, model, 3)


def test_safetensors_missing_package_message(tmp_path, monkeypatch):
    # A minimal valid-looking safetensors header, then pretend the package is absent.
    header = b'{"__metadata__":{}}'
    path = tmp_path / "w.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(SrprepError, match="pip install safetensors"):
        load_pretrained(path)


class RunsCode:
    """A pickle that would run a shell command when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_refused_pickle_names_the_global_it_would_call_in_one_line_and_runs_nothing(tmp_path):
    import subprocess
    import sys

    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"params": MSRResNet(scale=4, num_block=1, num_feat=8).state_dict(), "x": RunsCode(marker)}, path)
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "srprep", "upscale", str(repo / "srprep/samples/set5"),
                           str(tmp_path / "out"), "-m", str(path)], capture_output=True, text=True, cwd=repo,
                          timeout=300)
    assert proc.returncode == 1 and not marker.exists()
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {path}: the checkpoint pickles a Python object (posix.system), not just "
                                  f"tensors; loading it would run code from the file"), proc.stderr
