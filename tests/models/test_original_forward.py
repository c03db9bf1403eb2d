"""PAN, CARN and CARN-M: key layouts of the official files and forward passes equal to the original code's.

``data/original_outputs.pt`` holds outputs of the ORIGINAL code, unmodified, run outside this repository
(torch 2.13 CPU): zhaohengyuan1/PAN @4d045d1 ``codes/models/archs/PAN_arch.py`` with
``PAN(3, 3, nf=8, unf=4, nb=2, scale=s)``, and nmhkahn/CARN-pytorch @40d3514 ``carn/model/carn.py`` /
``carn_m.py`` with ``Net(multi_scale=True, group=1 | 4)`` called as ``net(x, s)``. Their weights were set by
the formula in :func:`_fill` (so the fixture needs no weights), the input is ``torch.rand(1, 3, 6, 7)``
with ``Generator().manual_seed(7)``.

``data/pan_official_layout.json`` lists key and shape of every tensor of the official ``PANx2_DF2K.pth``
(``PANx3`` has the same list) and ``PANx4_DF2K.pth`` (zhaohengyuan1/PAN ``experiments/pretrained_models``),
in file order; the official files loaded strictly into the original class.
"""
import json
from pathlib import Path

import pytest
import torch

from srprep.models import CARN, PAN, count_parameters, create_model, infer_architecture

DATA = Path(__file__).parent / "data"
torch.set_num_threads(2)


def _fill(net, amp):
    """Tensor i of the state dict, keys sorted, = amp * sin(0.37 * arange(numel) + i) (as the fixture's maker)."""
    with torch.no_grad():
        for i, (_, v) in enumerate(sorted(net.state_dict().items())):
            v.copy_((amp * torch.sin(0.37 * torch.arange(v.numel(), dtype=torch.float64) + i)).view(v.shape).float())
    return net.eval()


@pytest.fixture(scope="module")
def reference():
    return torch.load(DATA / "original_outputs.pt", weights_only=True)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_pan_forward_equals_original(reference, scale):
    net = _fill(PAN(scale=scale, nf=8, unf=4, nb=2), 0.3)
    with torch.inference_mode():
        out = net(reference["input"])
    torch.testing.assert_close(out, reference[f"pan_x{scale}"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name, amp", [("carn", 0.05), ("carn_m", 0.1)])
def test_carn_forward_equals_original_multi_scale(reference, name, amp, scale):
    # One set of weights serves every scale: the network built for x3 runs the original's up3.
    net = _fill(create_model(name, scale=scale), amp)
    with torch.inference_mode():
        out = net(reference["input"])
    torch.testing.assert_close(out, reference[f"{name}_x{scale}"], rtol=1e-5, atol=1e-7)


def test_pan_key_layout_equals_official_files():
    official = json.loads((DATA / "pan_official_layout.json").read_text())
    for scale, listed in ((2, official["x2"]), (3, official["x2"]), (4, official["x4"])):
        state = PAN(scale=scale).state_dict()
        assert [[k, list(v.shape)] for k, v in state.items()] == listed
        arch, found, kwargs = infer_architecture({k: torch.empty(s) for k, s in listed})
        # x2 and x3 files are the same shapes: their scale is not recorded; x4 has a second stage.
        assert (arch, found) == ("pan", 4 if scale == 4 else None)
        assert kwargs == dict(nf=40, unf=24, nb=16, in_nc=3, out_nc=3)
    # PAN paper: 272K parameters (x4: 272,419).
    assert count_parameters(PAN(scale=4)) == sum(torch.Size(s).numel() for _, s in official["x4"]) == 272_419


def test_carn_key_layout_stated_from_the_original_source():
    """carn.py / carn_m.py / ops.py written out: entry, three cascading blocks (CARN: b1..b3 residual blocks;
    CARN-M: one shared b1 with three convs, grouped), c1..c3 fusions, up2/up3/up4 (x4: convs at body.0 and
    body.3), exit, and the two mean shifts' ``shifter`` convs."""
    def expected(mobile):
        keys = ["sub_mean.shifter", "add_mean.shifter", "entry"]
        for b in (1, 2, 3):
            units = [("b1", (0, 2, 4))] if mobile else [(f"b{u}", (0, 2)) for u in (1, 2, 3)]
            keys += [f"b{b}.{u}.body.{j}" for u, convs in units for j in convs]
            keys += [f"b{b}.c{c}.body.0" for c in (1, 2, 3)]
        keys += [f"c{c}.body.0" for c in (1, 2, 3)]
        keys += ["upsample.up2.body.0", "upsample.up3.body.0", "upsample.up4.body.0", "upsample.up4.body.3", "exit"]
        return sorted(f"{k}.{p}" for k in keys for p in ("weight", "bias"))

    for name, mobile in (("carn", False), ("carn_m", True)):
        assert sorted(create_model(name, scale=2).state_dict()) == expected(mobile)
    m = create_model("carn_m", scale=2).state_dict()
    assert m["b1.b1.body.0.weight"].shape == (64, 16, 3, 3) and m["upsample.up3.body.0.weight"].shape == (576, 16, 3, 3)


def test_carn_single_scale_layout_and_inference():
    single = CARN(scale=3, multi_scale=False).state_dict()
    assert "upsample.up.body.0.weight" in single and not any(k.startswith("upsample.up2") for k in single)
    assert infer_architecture(single) == ("carn", 3, dict(mobile=False, group=1, multi_scale=False, num_feat=64))
    multi = create_model("carn_m", scale=4).state_dict()
    assert infer_architecture(multi) == ("carn", None, dict(mobile=True, group=4, multi_scale=True, num_feat=64))
