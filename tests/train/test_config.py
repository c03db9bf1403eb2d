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
    assert mix.augment.mixup_alpha == 1.2  # the authors' alpha (cutblur's MoA policy); 0.2 is the probability
    # BasicSR's train_MSRResNet_x4.yml: cosine restarts every 250k (eta_min 1e-7), EMA 0.999, Adam 2e-4, 1M steps
    assert (mix.schedule.name, mix.schedule.periods, mix.schedule.min_lr) == ("cosine_restart", [250000] * 4, 1e-7)
    assert mix.train.ema == 0.999 and mix.train.iters == 1_000_000 and mix.optim.lr == 2e-4
    assert (mix.data.patch, mix.data.batch, mix.data.flip, mix.data.rot90) == (128, 16, True, True)
    eco = load_config(REPO / "srprep/configs/edsr_x2_eco.yaml")
    base = load_config(REPO / "srprep/configs/edsr_baseline_x2.yaml")
    assert eco.eco.enabled and not base.eco.enabled
    assert count_parameters(create_model(eco.model.name, scale=2, **eco.model.kwargs)) == 1_369_859
    official = load_config(REPO / "srprep/configs/edsr_baseline_official.yaml")  # EDSR-PyTorch's option.py defaults
    assert count_parameters(create_model(official.model.name, scale=2, **official.model.kwargs)) == 1_369_859
    assert (official.optim.name, official.optim.lr, official.optim.betas, official.data.batch) == (
        "adam", 1e-4, [0.9, 0.999], 16)
    assert (official.train.iters, official.schedule.milestones, official.data.patch) == (300_000, [200_000], 96)
    drop = load_config(REPO / "srprep/configs/srresnet_x4_dropout_realesrgan.yaml")
    assert drop.degrade.enabled and drop.data.lr is None and drop.model.kwargs["dropout"] == 0.7


def test_the_realesrgan_configs_use_upstreams_values():
    """Reflash's train_realsrresnet_withdropout.yml and Real-ESRGAN's train_realesrnet_x4plus.yml."""
    from srprep.train.data import _degradation_config

    for name, gt_size, queue, batch, iters in (("srresnet_x4_dropout_realesrgan", 128, 16, 8, 500_000),
                                               ("realesrnet_x4plus", 256, 180, 12, 1_000_000)):
        cfg = load_config(REPO / "srprep" / "configs" / f"{name}.yaml")
        assert (cfg.degrade.crop_pad, cfg.data.patch, cfg.degrade.queue, cfg.data.batch) == (400, gt_size, queue, batch)
        assert (cfg.data.flip, cfg.data.rot90) == (True, False)  # use_hflip true, use_rot false
        assert cfg.train.iters == iters and cfg.train.ema == 0.999 and cfg.loss[0].type == "l1"
        assert (cfg.optim.name, cfg.optim.lr, cfg.optim.betas) == ("adam", 2e-4, [0.9, 0.99])
        deg = _degradation_config(cfg)  # x4plus's degradation options, in both files
        assert deg.gt_usm and deg.resize_prob == (0.2, 0.7, 0.1) and deg.resize_range == (0.15, 1.5)
        assert deg.noise_range == (1, 30) and deg.poisson_scale_range == (0.05, 3) and deg.jpeg_range == (30, 95)
        assert deg.second_blur_prob == 0.8 and deg.noise_range2 == (1, 25) and deg.final_sinc_prob == 0.8
    reflash = load_config(REPO / "srprep/configs/srresnet_x4_dropout_realesrgan.yaml")
    assert (reflash.schedule.name, reflash.schedule.periods, reflash.schedule.min_lr) == (
        "cosine_restart", [250_000, 500_000], 0.0)
    assert (reflash.model.name, reflash.model.kwargs) == ("srresnet", {"num_block": 16, "num_feat": 64, "dropout": 0.7})
    x4plus = load_config(REPO / "srprep/configs/realesrnet_x4plus.yaml")
    assert x4plus.schedule.name == "constant"  # MultiStepLR milestones [1000000]: halved only at the end
    assert x4plus.model.kwargs == {"num_block": 23, "num_feat": 64, "num_grow_ch": 32}


def test_floats_written_without_a_dot_are_numbers():
    # YAML 1.1 (PyYAML) reads 1e-4 as a string; in a number option it is the number everyone means
    cfg = load_config(None, ["optim.lr=1e-4", "optim.eps=5E-7", "train.ema=0.999"])
    assert (cfg.optim.lr, cfg.optim.eps, cfg.train.ema) == (1e-4, 5e-7, 0.999)
    with pytest.raises(ConfigError, match="optim.lr: expected a number, got '1e-4x'"):
        load_config(None, ["optim.lr=1e-4x"])
    with pytest.raises(ConfigError, match="model.scale: expected an integer"):
        load_config(None, ["model.scale=2e0"])
