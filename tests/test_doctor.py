"""srprep doctor and the plain-Pillow warning: what a newcomer's environment has, and what data folders need."""
import PIL
import pytest
import yaml

import srprep.environment as env
from srprep.cli import main
from srprep.environment import PilBuild, data_report, pil_build, plain_pil_warning
from srprep.stages.downsample import downsample

PLAIN = PilBuild("pillow", "12.1.1", None, "1.2.13", "pillow-simd 12.1.1.post0")


def fake_versions(monkeypatch, pil, installed):
    monkeypatch.setattr(PIL, "__version__", pil)
    monkeypatch.setattr(env, "_version", lambda name: installed.get(name))


def test_pil_build_tells_simd_from_plain(monkeypatch):
    fake_versions(monkeypatch, "12.1.1.post0", {"pillow-simd": "12.1.1.post0"})
    assert pil_build().simd and plain_pil_warning() is None
    # plain Pillow installed over pillow-simd: PIL is Pillow's, pillow-simd's metadata is stale
    fake_versions(monkeypatch, "12.1.1", {"pillow-simd": "12.1.1.post0", "pillow": "12.1.1"})
    found = pil_build()
    assert (found.build, found.simd, found.stale_metadata) == ("pillow", False, "pillow-simd 12.1.1.post0")
    assert "is plain Pillow" in plain_pil_warning(found) and "scripts/setup.sh" in plain_pil_warning(found)
    fake_versions(monkeypatch, "9.9.9", {})
    assert pil_build().build == "unknown" and "not the pillow-simd build" in plain_pil_warning()


def test_doctor_reports_the_environment_and_the_data(samples, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(env, "pil_build", lambda: PilBuild("pillow-simd", "12.1.1.post0", "2.1.5", "1.2.13"))
    downsample(samples / "set5", tmp_path / "DATA", [2], jobs=1, progress=False)
    code = main(["doctor", samples / "set5", tmp_path / "DATA", tmp_path / "missing"])
    out = capsys.readouterr().out
    assert "PIL 12.1.1.post0: pillow-simd" in out and "compiled bicubic kernel:" in out and "torch " in out
    for extra in ("plots", "tensorboard", "models", "safetensors", "cluster"):
        assert f"\n  {extra} " in out, extra
    assert f"{samples / 'set5'}: images: set5 5 items" in out and "next: srprep downsample" in out
    assert f"{tmp_path / 'DATA'}: dataset: HR 5 items, X2 5 items (x2)" in out and "next: srprep pack" in out
    assert f"{tmp_path / 'missing'}: does not exist" in out
    hr_bytes = sum(h * w * 3 for h, w in [(512, 512), (288, 288), (256, 256), (280, 280), (344, 228)])
    assert data_report(samples / "set5").pixel_bytes == hr_bytes
    from srprep.ops.imresize import native_available

    assert code == (0 if native_available() else 1)


def test_plain_pillow_makes_every_command_warn_once(samples, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(env, "pil_build", lambda: PLAIN)
    assert main(["modcrop", samples / "set5", tmp_path / "m", "--scale", "2", "-j", "1"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: PIL 12.1.1 is plain Pillow") == 1
    # a pipeline of two steps: still one warning for the one command
    spec = {"name": "two", "steps": {
        "a": {"command": "modcrop", "args": [str(samples / "set5"), "{out}"], "options": {"scale": 2, "jobs": 1}},
        "b": {"command": "modcrop", "args": ["{a}", "{out}"], "options": {"scale": 4, "jobs": 1}}}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    assert main(["run", tmp_path / "p.yaml", "--workdir", tmp_path / "wd"]) == 0
    assert capsys.readouterr().err.count("is plain Pillow") == 1
    assert main(["doctor"]) == 1  # doctor says it in its report and exits 1
    out = capsys.readouterr()
    assert "PIL 12.1.1: pillow -- NOT pillow-simd" in out.out and "restore it:" in out.out and out.err == ""


@pytest.mark.parametrize("extra", ["plots", "tensorboard", "models"])
def test_setup_cfg_declares_the_extras(extra):
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    assert extra in cfg["options.extras_require"]
