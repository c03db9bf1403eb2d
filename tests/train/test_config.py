"""Config: YAML defaults, dotted overrides with YAML values, type checks, unknown keys named, shipped configs."""
from pathlib import Path

import pytest
import yaml

from srprep.models import count_parameters, create_model
from srprep.train.config import Config, ConfigError, config_to_dict, load_config, save_config

REPO = Path(__file__).resolve().parents[2]
TRAIN_CONFIGS = ("edsr_baseline_x2", "edsr_x2_eco", "msrresnet20_x4_mixup", "srresnet_x4_dropout_realesrgan",
                 "tiny_cpu")
CONFIGS = [REPO / "srprep" / "configs" / f"{name}.yaml" for name in TRAIN_CONFIGS]


def test_overrides_win_over_the_file_and_are_typed(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {name: edsr, scale: 2}\ntrain: {iters: 50}\noptim: {lr: 1.0e-3}\n")
    cfg = load_config(path, ["train.iters=1000", "data.batch=16", "optim.lr=2", "data.keys=[a, b]",
                             "val.root=null", "model.kwargs.num_blocks=8", "loss.0.weight=255"])
    assert cfg.train.iters == 1000 and cfg.data.batch == 16
    assert cfg.optim.lr == 2.0 and isinstance(cfg.optim.lr, float)  # an int where a float goes is converted
    assert cfg.data.keys == ["a", "b"] and cfg.val.root is None
    assert cfg.model.kwargs == {"num_blocks": 8} and cfg.loss[0].weight == 255.0
    assert cfg.model.scale == 2 and cfg.data.patch == 96  # untouched defaults


@pytest.mark.parametrize("override,match", [
    ("train.iter=5", r"unknown option train\.iter \(did you mean train\.iters\?\)"),
    ("trian.iters=5", r"unknown option trian \(did you mean train\?\)"),
    ("loss.0.wieght=2", r"unknown option loss\.0\.wieght \(did you mean loss\.0\.weight\?\)"),
    ("train.iters=abc", r"train\.iters: expected an integer, got 'abc'"),
    ("train.iters=1.5", r"train\.iters: expected an integer"),
    ("data.flip=3", r"data\.flip: expected true or false"),
    ("optim.name=sgd", r"optim\.name: must be one of adam, adamw, lamb"),
    ("loss=[{type: huber}]", r"loss\.0\.type: must be one of"),
    ("data.patch=95", r"data\.patch \(95\) must be a positive multiple of model\.scale \(2\)"),
    ("train.iters", r"expected section\.key=value"),
    ("loss.3.weight=1", r"has no item 3"),
])
def test_bad_overrides_name_the_option(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [override])


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  batch_size: 16\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown option data\.batch_size \(did you mean data\.batch\?\)"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="data.lr=null"):
        load_config(None, ["degrade.enabled=true"])
    with pytest.raises(ConfigError, match="eco and degrade cannot be combined"):
        load_config(None, ["degrade.enabled=true", "data.lr=null", "eco.enabled=true"])
    assert load_config(None, ["degrade.enabled=true", "data.lr=null"]).degrade.enabled


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["model.kwargs.num_feats=32", "data.keys=[x]", "augment.mixup=0.2"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    again = load_config(path)
    assert again == cfg
    assert yaml.safe_load(path.read_text())["augment"]["mixup"] == 0.2
    assert config_to_dict(Config()) == config_to_dict(load_config(None))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_load_and_build_their_network(path):
    cfg = load_config(path)
    model = create_model(cfg.model.name, scale=cfg.model.scale, **cfg.model.kwargs)
    assert getattr(model, "scale", cfg.model.scale) == cfg.model.scale
    assert cfg.data.patch % cfg.model.scale == 0


def test_the_shipped_recipes_are_what_their_names_say():
    assert all(p.is_file() for p in CONFIGS)
    mix = load_config(REPO / "srprep/configs/msrresnet20_x4_mixup.yaml")
    net = create_model(mix.model.name, scale=mix.model.scale, **mix.model.kwargs)
    assert count_parameters(net) <= 1_821_085
    assert mix.augment.rgb_permute == 0.5 and mix.augment.blend == 0.1 and mix.augment.mixup == 0.2
    eco = load_config(REPO / "srprep/configs/edsr_x2_eco.yaml")
    base = load_config(REPO / "srprep/configs/edsr_baseline_x2.yaml")
    assert eco.eco.enabled and not base.eco.enabled
    assert count_parameters(create_model(eco.model.name, scale=2, **eco.model.kwargs)) == 1_369_859
    drop = load_config(REPO / "srprep/configs/srresnet_x4_dropout_realesrgan.yaml")
    assert drop.degrade.enabled and drop.data.lr is None and drop.model.kwargs["dropout"] == 0.7
