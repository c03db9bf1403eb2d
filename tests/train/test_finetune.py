"""Training that starts from pretrained weights: model.pretrained, partial loads (x2 -> x3), fresh optimiser and
step, the recorded SHA-256, and the safe loader (a pickle runs no code without --trust-checkpoint)."""
from pathlib import Path

import pytest
import torch

from srprep.cli import main
from srprep.errors import SrprepError
from srprep.models import create_model, load_pretrained
from srprep.models.pretrained import file_sha256, save_torch_atomic
from srprep.train import load_config, train
from srprep.train.config import ConfigError
from srprep.train.finetune import load_matching, resolve_pretrained
from srprep.train.logs import read_csv

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "srprep" / "configs" / "tiny_cpu.yaml"
FAST = ["train.cpu_threads=1", "train.tensorboard=false"]


@pytest.fixture(scope="module")
def imdn_x2(ref_data) -> Path:
    return ref_data / "weights" / "IMDN_x2.pth"


def test_model_defaults_only_without_a_checkpoint():
    assert (load_config(None).model.name, load_config(None).model.scale) == ("edsr", 2)
    m = load_config(None, ["model.pretrained=w.pt"]).model
    assert (m.name, m.scale, m.pretrained, m.strict) == (None, None, "w.pt", True)
    m = load_config(None, ["model.pretrained=w.pt", "model.name=imdn", "model.scale=3"]).model
    assert (m.name, m.scale) == ("imdn", 3)
    with pytest.raises(ConfigError, match="pretrained_sha256 is set but model.pretrained is not"):
        load_config(None, ["model.pretrained_sha256=abc"])


def test_architecture_scale_and_options_come_from_the_checkpoint(imdn_x2):
    cfg, source = resolve_pretrained(load_config(None, [f"model.pretrained={imdn_x2}"]))
    m = cfg.model
    assert (m.name, m.scale) == ("imdn", 2)
    assert m.kwargs["num_feat"] == 64 and m.kwargs["num_modules"] == 6
    assert m.pretrained_sha256 == file_sha256(imdn_x2)
    assert len(source.state) == 92 and not any(k.startswith("module.") for k in source.state)
    # a configured option wins over the checkpoint's; what the config names stays
    cfg, _ = resolve_pretrained(load_config(None, [f"model.pretrained={imdn_x2}", "model.name=imdn",
                                                   "model.kwargs={num_modules: 6}"]))
    assert cfg.model.kwargs["num_modules"] == 6 and cfg.model.kwargs["num_feat"] == 64


def test_x2_to_x3_loads_the_body_and_reinitialises_the_upsampler(imdn_x2):
    cfg, source = resolve_pretrained(load_config(None, [f"model.pretrained={imdn_x2}", "model.scale=3"]))
    assert (cfg.model.name, cfg.model.scale) == ("imdn", 3)
    torch.manual_seed(0)
    model = create_model("imdn", scale=3, **cfg.model.kwargs)
    torch.manual_seed(0)
    fresh = create_model("imdn", scale=3, **cfg.model.kwargs).state_dict()

    with pytest.raises(SrprepError) as err:  # strict, the default: the keys are named, nothing is loaded
        load_matching(model, source)
    message = str(err.value)
    assert "upsampler.0.weight (12, 64, 3, 3) -> (27, 64, 3, 3)" in message
    assert "upsampler.0.bias (12,) -> (27,)" in message and "model.strict=false" in message
    assert all(torch.equal(v, fresh[k]) for k, v in model.state_dict().items())

    report = load_matching(model, source, strict=False)
    assert report.reshaped == ["upsampler.0.weight (12, 64, 3, 3) -> (27, 64, 3, 3)",
                               "upsampler.0.bias (12,) -> (27,)"]
    assert report.kept == ["upsampler.0.weight", "upsampler.0.bias"]
    assert report.loaded == report.total - 2 == 90 and not report.missing and not report.unexpected
    assert "shape differs, left as initialised: upsampler.0.weight" in report.summary()
    x2, _ = load_pretrained(imdn_x2)
    pretrained = x2.state_dict()
    for key, value in model.state_dict().items():
        expected = fresh[key] if key.startswith("upsampler.") else pretrained[key]
        assert torch.equal(value, expected), key


def test_a_checkpoint_of_another_network_fits_nothing(imdn_x2):
    _, source = resolve_pretrained(load_config(None, [f"model.pretrained={imdn_x2}"]))
    with pytest.raises(SrprepError, match="no tensor of the checkpoint fits"):
        load_matching(create_model("edsr", scale=2, num_blocks=1, num_feats=8), source, strict=False)


def _run(root, run_dir, *extra):
    cfg = load_config(TINY, [f"data.root={root}", "train.iters=3", "val.every=3", "train.log_every=1",
                             "schedule.warmup=0", *FAST, *extra])
    return train(cfg, run_dir)


def test_fine_tuning_starts_from_the_weights_with_a_fresh_optimiser_and_step(kodak_x2, tmp_path):
    first = _run(kodak_x2, tmp_path / "first")
    start = first.last_checkpoint
    # lr 0: Adam moves nothing, so the run ends where the checkpoint started it
    second = _run(kodak_x2, tmp_path / "second", f"model.pretrained={start}", "optim.lr=0")
    assert second.init is not None and second.init.loaded == second.init.total and not second.init.kept
    before, _ = load_pretrained(start)
    after, _ = load_pretrained(second.last_checkpoint)
    for key, value in before.state_dict().items():
        assert torch.equal(after.state_dict()[key], value), key
    state = torch.load(second.state_checkpoint, weights_only=True)
    assert state["step"] == 3 and all(s["step"] == 3 for s in state["optimizer"]["state"].values())
    assert [r["step"] for r in read_csv(tmp_path / "second" / "train.csv")] == [1, 2, 3]
    saved = load_config(tmp_path / "second" / "config.yaml").model
    assert saved.pretrained == str(start) and saved.pretrained_sha256 == file_sha256(start)
    assert (saved.name, saved.scale, saved.kwargs["num_blocks"]) == ("edsr", 2, 2)


def test_the_recorded_hash_pins_the_file_and_a_resume_does_not_need_it(kodak_x2, tmp_path):
    first = _run(kodak_x2, tmp_path / "first")
    copy = tmp_path / "start.pt"
    copy.write_bytes(first.last_checkpoint.read_bytes())
    with pytest.raises(SrprepError, match="not the file the run was made with"):
        _run(kodak_x2, tmp_path / "other", f"model.pretrained={copy}", "model.pretrained_sha256=" + "ab" * 32)
    cfg = load_config(TINY, [f"data.root={kodak_x2}", "train.iters=4", "val.every=0", f"model.pretrained={copy}",
                             *FAST])
    assert train(cfg, tmp_path / "tuned", stop_at=2).stopped_early
    copy.unlink()  # the weights now live in the run's own training state
    assert main(["-q", "train", "--resume", "auto", "--run-dir", tmp_path / "tuned"]) == 0
    assert [r["step"] for r in read_csv(tmp_path / "tuned" / "train.csv")][-1] == 4


class _TouchOnLoad:
    """Unpickling this calls open(path, "w"): a stand-in for code a malicious checkpoint would run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickled_checkpoint_runs_no_code_without_trust(kodak_x2, tmp_path, capsys):
    marker = tmp_path / "code-ran.marker"
    net = create_model("edsr", scale=2, num_blocks=2, num_feats=32)
    save_torch_atomic(tmp_path / "evil.pt", {"state_dict": net.state_dict(), "note": _TouchOnLoad(marker)})
    args = ["train", "-c", TINY, f"data.root={kodak_x2}", f"model.pretrained={tmp_path / 'evil.pt'}",
            "train.iters=1", "val.every=0", *FAST]
    assert main([*args, "--run-dir", tmp_path / "refused"]) == 1
    err = capsys.readouterr().err
    assert "pickles a Python object" in err and "--trust-checkpoint" in err
    assert not marker.exists()
    # the same file with --trust-checkpoint does run its code: the pickle above is a real test
    assert main([*args, "--run-dir", tmp_path / "trusted", "--trust-checkpoint"]) == 0
    assert marker.exists()
    n = len(net.state_dict())
    assert f"initialised {n} of {n} tensors from {tmp_path / 'evil.pt'}" in capsys.readouterr().err
