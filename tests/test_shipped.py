"""Pipelines, training configs and degradation recipes ship inside the package and are found by name (a path
still wins); the wheel carries them and the LICENSE."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from srprep.cli import main
from srprep.shipped import CONFIGS, PIPELINES, RECIPES, find_file, shipped_names

REPO = Path(__file__).resolve().parents[1]


def test_names_find_the_shipped_files_and_a_path_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_file("quickstart", "pipeline") == PIPELINES / "quickstart.yaml"
    assert find_file("tiny_cpu.yaml", "config") == CONFIGS / "tiny_cpu.yaml"
    assert find_file("mild", "recipe") == RECIPES / "mild.yaml"
    Path("quickstart").write_text("steps: {}\n")
    assert find_file("quickstart", "pipeline") == Path("quickstart")
    with pytest.raises(Exception, match=r"nope: no such file, and no shipped config of that name \(shipped: "
                                        r".*edsr_baseline_x2, .*tiny_cpu\)"):
        find_file("nope", "config")
    with pytest.raises(Exception, match="no such file"):
        find_file("srprep/pipelines/quickstart", "pipeline")  # a path is never taken for a name
    assert {"quickstart", "div2k_eco_x2"} <= set(shipped_names("pipeline"))


def test_cli_takes_shipped_names_from_an_empty_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "quickstart", "--graph"]) == 0
    assert "quickstart: 7 steps -> quickstart" in capsys.readouterr().out
    assert main(["train", "-c", "edsr_baseline_x2", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["name"] == "edsr_baseline_x2"
    assert main(["train", "-c", "nope", "--print-config"]) == 2
    assert "no shipped config of that name" in capsys.readouterr().err
    # a local file of that name wins over the shipped one
    Path("edsr_baseline_x2").write_text("name: mine\nmodel: {name: edsr, scale: 3}\n")
    assert main(["train", "-c", "edsr_baseline_x2", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["name"] == "mine"


def test_a_shipped_config_finds_its_shipped_recipe_from_anywhere(tmp_path, monkeypatch):
    from srprep.ops.degrade import DegradationConfig
    from srprep.train.config import load_config
    from srprep.train.data import _degradation_config

    monkeypatch.chdir(tmp_path)
    cfg = load_config(find_file("srresnet_x4_dropout_realesrgan", "config"))
    assert cfg.degrade.recipe == "realesrgan_x4plus"
    assert _degradation_config(cfg) == DegradationConfig(scale=4)


def test_every_shipped_pipeline_refers_to_configs_through_the_package():
    for path in PIPELINES.glob("*.yaml"):
        text = path.read_text()
        assert "../configs" not in text, path
        for ref in yaml.safe_load(text).get("vars", {}).values():
            assert "pipeline_dir" not in str(ref), path


@pytest.mark.slow
def test_the_wheel_carries_pipelines_configs_and_the_license(tmp_path):
    src = tmp_path / "src"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(REPO / "srprep", src / "srprep", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path / "dist"), str(src)], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    [wheel] = (tmp_path / "dist").glob("srprep-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind, folder in (("pipeline", "pipelines"), ("config", "configs"), ("recipe", "configs/degrade")):
        for name in shipped_names(kind):
            assert f"srprep/{folder}/{name}.yaml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    assert "srprep/samples/kodak/kodim01.png" in names
