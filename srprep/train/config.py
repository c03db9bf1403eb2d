"""Training configuration: YAML file -> typed dataclasses, ``section.key=value`` overrides, resolved YAML out.

A config file sets *defaults* for one recipe (``srprep/configs/*.yaml``); command-line overrides win
(``train.iters=1000 data.batch=16 model.kwargs.num_blocks=8 loss.0.weight=255``); the resolved config is
written next to the run (``RUN/config.yaml``) and stored in every checkpoint, so a run can be repeated.

Every key is checked: an unknown one is refused with its dotted name and the closest known one, a value of
the wrong type names the option and the expected type. Values of overrides are parsed as YAML
(``data.keys=[a, b]``, ``val.root=null``). Paths are relative to the working directory.

>>> cfg = load_config(None, ["model.scale=3", "train.iters=10"])
>>> cfg.model.scale, cfg.train.iters
(3, 10)
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from srprep.errors import SrprepError

__all__ = ["Config", "ModelConfig", "DataConfig", "ValConfig", "EcoConfig", "AugmentConfig", "DegradeConfig",
           "LossTerm", "OptimConfig", "ScheduleConfig", "TrainLoopConfig", "ConfigError", "load_config",
           "apply_overrides", "config_from_dict", "config_to_dict", "save_config"]


class ConfigError(SrprepError):
    """A config file or override that cannot be used (unknown key, wrong type, bad value)."""


@dataclass
class ModelConfig:
    """The network: a registry name (:func:`srprep.models.create_model`) or a network of the user's own
    (``package.module:Class``, ``path/to/file.py:Class``), its scale and constructor arguments, and optionally
    pretrained weights to start from (:mod:`srprep.train.finetune`).

    Without ``pretrained``, ``name`` and ``scale`` default to ``edsr`` and 2. With it, what is left null
    (``name``, ``scale``) is read from the checkpoint, as ``srprep eval`` does, and its constructor arguments
    are the defaults of ``kwargs``.
    """

    name: Optional[str] = None  # null: from model.pretrained, else edsr
    scale: Optional[int] = None  # null: from model.pretrained, else 2
    kwargs: dict = field(default_factory=dict)  # e.g. {num_blocks: 16, num_feats: 64} or {dropout: 0.7}
    pretrained: Optional[str] = None  # weights to start from (any format srprep eval reads)
    strict: bool = True  # false: load the tensors that fit, keep the others (e.g. a new upsampler) as initialised
    pretrained_sha256: Optional[str] = None  # recorded by the run; a different file of that name is refused

    def __post_init__(self) -> None:
        if self.pretrained is None:
            self.name = self.name or "edsr"
            self.scale = 2 if self.scale is None else self.scale


@dataclass
class DataConfig:
    """Training patches. Fields are names inside ``root`` (a folder ``root/NAME``, an LMDB ``root/NAME.lmdb``
    or a group of ``root/data.h5``) or paths; ``{scale}`` in a name becomes the model's scale."""

    root: str = ""
    hr: str = "HR"
    lr: Optional[str] = "X{scale}"  # null when degrade.enabled (LR made on the fly)
    centroid_hr: str = "sr_pretrained"  # ECO only: f(lr) of a pretrained network, HR size
    centroid_lr: str = "lr_pretrained"  # ECO only: MATLAB bicubic of centroid_hr, LR size
    keys: Optional[list[str]] = None  # training keys (default: every HR key except the validation keys)
    patch: int = 96  # HR patch side; the LR patch is patch / scale
    batch: int = 16  # patches per step and per process (the global batch is batch x processes)
    workers: int = 4  # DataLoader worker processes (0: read in the training process)
    flip: bool = True  # random horizontal flip (BasicSR's use_hflip)
    rot90: bool = True  # random vertical flip and transposition (its use_rot; with flip: all 8 orientations)
    cache: bool = False  # keep decoded images in memory (small data sets read as files)


@dataclass
class ValConfig:
    """Validation on whole held-out images (PSNR/SSIM on Y, border = scale, as ``srprep eval``)."""

    every: int = 1000  # steps between validations (0: never)
    root: Optional[str] = None  # a separate data set (e.g. Set5); null: data.root with val.keys held out
    hr: str = "HR"
    lr: Optional[str] = None  # null: data.lr
    keys: Optional[list[str]] = None  # images to validate on (null with root: all of them)
    precision: str = "fp32"  # fp32 | bf16 | tf32 | fp16 (see srprep.infer)
    tile: Optional[int] = None  # LR tile size for big images (null: whole image)
    crops: int = 4  # images shown in val_crops.png
    crop_size: int = 192  # HR size of each shown crop
    use_ema: bool = True  # validate the EMA weights when train.ema > 0


@dataclass
class EcoConfig:
    """ECO (Lee & Heo, AAAI 2024): train on mixtures of (centroid, original) pairs, centroid weight -> 0."""

    enabled: bool = False
    schedule: str = "sigmoid"  # sigmoid (authors' code) | linear (authors' README)
    shift: float = 0.0  # the code's mixup_shift: moves the sigmoid along 10*(p - 0.5)
    iters: Optional[int] = None  # steps over which p = step/iters runs (null: train.iters)


@dataclass
class AugmentConfig:
    """Batch augmentations (one draw per batch, applied to LR and HR alike); probabilities per batch."""

    rgb_permute: float = 0.0  # probability of permuting the colour channels
    blend: float = 0.0  # probability of blending with a constant colour
    blend_min: float = 0.6  # v ~ U(blend_min, 1): x = v x + (1 - v) c
    mixup: float = 0.0  # probability of MixUp with a permutation of the batch
    mixup_alpha: float = 1.2  # v ~ Beta(alpha, alpha)


@dataclass
class DegradeConfig:
    """On-the-fly Real-ESRGAN degradation of HR patches (data.lr must be null).

    Real-ESRGAN's procedure (``crop_pad: 400``, ``queue: 180``): each GT is cropped (or reflect-padded) to
    ``crop_pad`` and degraded at that size, the training pair (``data.patch`` GT, ``data.patch / s`` LR) is
    cropped from the result, and the pairs pass through a pool of ``queue`` pairs per process: the first
    ``queue / data.batch`` steps fill it (training on their own batch), then each step swaps its batch with
    ``data.batch`` pairs drawn from the shuffled pool. ``crop_pad: null`` degrades the patch itself (no GT
    beyond the patch), ``queue: 0`` has no pool.
    """

    enabled: bool = False
    recipe: Optional[str] = None  # DegradationConfig options: a YAML file or a shipped recipe's name (mild ...)
    options: dict = field(default_factory=dict)  # options that override the recipe's
    noise: str = "device"  # device (torch generator on the GPU) | host (numpy, same numbers as srprep degrade)
    sharpen_target: Optional[bool] = None  # L1 target = USM(HR); null: follow gt_usm, as Real-ESRGAN
    crop_pad: Optional[int] = None  # GT side cropped/padded to before degrading (Real-ESRGAN: 400); null: patch
    queue: int = 0  # training-pair pool per process (Real-ESRGAN x4plus: 180; Reflash: 16); 0: none


@dataclass
class LossTerm:
    """One term of the weighted loss; values on the [0, 1] scale (weight 255 gives the 0-255 scale)."""

    type: str = "l1"  # l1 | mse | charbonnier | clip_l1 | ssim
    weight: float = 1.0
    eps: float = 1e-12  # charbonnier: sqrt(d^2 + eps), BasicSR's eps and default (not squared)
    clip_min: float = 0.0  # clip_l1, on the 0-255 scale as the AIM 2020 code
    clip_max: float = 10.0


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | adamw | lamb
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    eps: float = 1e-8
    weight_decay: float = 0.0


@dataclass
class ScheduleConfig:
    name: str = "cosine"  # cosine | cosine_restart | multistep | constant
    warmup: int = 0  # linear warm-up steps
    warmup_factor: float = 0.001  # factor at step 0 of the warm-up
    min_lr: float = 0.0  # cosine floor; cosine_restart: BasicSR's eta_min
    milestones: list[int] = field(default_factory=list)  # multistep
    gamma: float = 0.5  # multistep factor
    periods: list[int] = field(default_factory=list)  # cosine_restart: steps of each cosine (BasicSR's periods)
    restart_weights: list[float] = field(default_factory=list)  # cosine_restart: peak of each (default all 1)


@dataclass
class TrainLoopConfig:
    iters: int = 1000
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
    channels_last: Optional[bool] = None  # null: on for CUDA
    compile: bool = False  # torch.compile the network
    grad_clip: float = 0.0  # 0: off
    grad_clip_mode: str = "norm"  # norm (total L2 norm) | value (each element, as the ECO code)
    skip_threshold: float = 0.0  # skip a step whose loss exceeds this x the last accepted loss (ECO: 5); 0: off
    ema: float = 0.0  # EMA decay of the weights (e.g. 0.999); 0: off
    ema_start: int = 0  # EMA = weights until this step
    log_every: int = 100
    ckpt_every: int = 5000
    keep_ckpts: int = 2  # training-state checkpoints kept (plus best.pt / last.pt)
    cpu_threads: Optional[int] = None  # torch threads on CPU (null: torch's default)
    tensorboard: bool = True  # also log to TensorBoard when the package is importable


@dataclass
class Config:
    name: str = ""  # run name (default run dir: runs/<name>)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    val: ValConfig = field(default_factory=ValConfig)
    eco: EcoConfig = field(default_factory=EcoConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)
    loss: list[LossTerm] = field(default_factory=lambda: [LossTerm()])
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)

    def field_name(self, name: Optional[str]) -> Optional[str]:
        """A data field name with ``{scale}`` filled in."""
        return None if name is None else name.replace("{scale}", str(self.model.scale))


# --- typed conversion ---------------------------------------------------------------------------------------

_CHOICES = {
    "val.precision": ("fp32", "bf16", "tf32", "fp16"),
    "eco.schedule": ("sigmoid", "linear"),
    "degrade.noise": ("device", "host"),
    "optim.name": ("adam", "adamw", "lamb"),
    "schedule.name": ("cosine", "cosine_restart", "multistep", "constant"),
    "train.precision": ("auto", "fp32", "bf16"),
    "train.grad_clip_mode": ("norm", "value"),
}
_LOSS_TYPES = ("l1", "mse", "charbonnier", "clip_l1", "ssim")


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it converted (int -> float, dicts -> dataclasses)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], where)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of options, got {value!r}")
        return _build(tp, value, where)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(v, item_tp, f"{where}.{i}") for i, v in enumerate(value)]
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if value is None:
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got null")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string; everyone writes it that way
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return os.fspath(value)
    raise TypeError(f"{where}: unsupported annotation {tp!r}")  # a bug in this module


def _unknown(key: str, known: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {(where + '.' if where else '') + close[0]}?)" if close else ""
    return ConfigError(f"unknown option {(where + '.' if where else '') + key}{hint}; "
                       f"known: {', '.join(known)}")


def _build(cls, data: dict, where: str):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in data.items():
        if key not in names:
            raise _unknown(str(key), names, where)
        path = f"{where}.{key}" if where else key
        values[key] = _convert(value, hints[key], path)
        if path in _CHOICES and values[key] not in _CHOICES[path]:
            raise ConfigError(f"{path}: must be one of {', '.join(_CHOICES[path])}, not {values[key]!r}")
    obj = cls(**values)
    if cls is LossTerm and obj.type not in _LOSS_TYPES:
        raise ConfigError(f"{where}.type: must be one of {', '.join(_LOSS_TYPES)}, not {obj.type!r}")
    return obj


def config_from_dict(data: Optional[dict]) -> Config:
    """Build a :class:`Config` from a nested mapping (missing keys keep their defaults)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}")
    cfg = _build(Config, data, "")
    _check(cfg)
    return cfg


def config_to_dict(cfg: Config) -> dict:
    """Plain nested dict (YAML- and checkpoint-safe) of a config."""
    return dataclasses.asdict(cfg)


def _check(cfg: Config) -> None:
    """Cross-field rules that single types cannot express."""
    s = cfg.model.scale
    if s is not None and s < 1:
        raise ConfigError(f"model.scale must be >= 1, not {s}")
    if cfg.model.pretrained_sha256 is not None and cfg.model.pretrained is None:
        raise ConfigError("model.pretrained_sha256 is set but model.pretrained is not")
    if cfg.data.patch <= 0 or (s is not None and cfg.data.patch % s):
        raise ConfigError(f"data.patch ({cfg.data.patch}) must be a positive multiple of model.scale ({s})")
    for name in ("batch", "workers"):
        if getattr(cfg.data, name) < (1 if name == "batch" else 0):
            raise ConfigError(f"data.{name} must be >= {1 if name == 'batch' else 0}")
    if cfg.train.iters < 1:
        raise ConfigError("train.iters must be >= 1")
    for name in ("log_every", "ckpt_every"):
        if getattr(cfg.train, name) < 1:
            raise ConfigError(f"train.{name} must be >= 1")
    if not 0.0 <= cfg.train.ema < 1.0:
        raise ConfigError(f"train.ema must be in [0, 1), not {cfg.train.ema}")
    if cfg.degrade.enabled and cfg.data.lr is not None:
        raise ConfigError("degrade.enabled makes the LR from the HR on the fly: set data.lr=null")
    if not cfg.degrade.enabled and cfg.data.lr is None:
        raise ConfigError("data.lr is null: give the LR field (e.g. X2), or set degrade.enabled=true")
    if cfg.degrade.enabled and cfg.eco.enabled:
        raise ConfigError("eco and degrade cannot be combined: ECO needs fixed (lr, centroid) pairs")
    cp = cfg.degrade.crop_pad
    if cp is not None and (cp < cfg.data.patch or cp % s):
        raise ConfigError(f"degrade.crop_pad ({cp}) must be a multiple of model.scale ({s}) and at least data.patch "
                          f"({cfg.data.patch})")
    if cfg.degrade.queue < 0 or cfg.degrade.queue % cfg.data.batch:
        raise ConfigError(f"degrade.queue ({cfg.degrade.queue}) must be a multiple of data.batch "
                          f"({cfg.data.batch}), as Real-ESRGAN's pool (0: no pool)")
    if (cp is not None or cfg.degrade.queue) and not cfg.degrade.enabled:
        raise ConfigError("degrade.crop_pad and degrade.queue belong to on-the-fly degradation: set "
                          "degrade.enabled=true")
    for name in ("rgb_permute", "blend", "mixup"):
        p = getattr(cfg.augment, name)
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"augment.{name} is a probability in [0, 1], not {p}")
    if not cfg.loss:
        raise ConfigError("loss: at least one term is needed")
    if len(cfg.optim.betas) != 2:
        raise ConfigError(f"optim.betas: expected two numbers, got {cfg.optim.betas}")
    sch = cfg.schedule
    if sch.name == "cosine_restart":
        if not sch.periods or min(sch.periods) < 1:
            raise ConfigError(f"schedule.periods: cosine_restart needs positive period lengths, got {sch.periods}")
        if sch.restart_weights and len(sch.restart_weights) != len(sch.periods):
            raise ConfigError(f"schedule.restart_weights: one per period ({len(sch.periods)}), got "
                              f"{sch.restart_weights}")


# --- files and overrides --------------------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    return data


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts/lists (created as needed); numeric parts index lists."""
    parts = dotted.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {dotted}: {'.'.join(parts[:i]) or 'list'} has no item {part}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
            continue
        if last:
            node[part] = value
        else:
            child = node.get(part)
            if child is None or not isinstance(child, (dict, list)):
                child = node[part] = {}
            node = child


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key.path=value`` strings (values parsed as YAML) to a nested config mapping, in order."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. train.iters=1000")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r}: empty key")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: cannot parse the value as YAML ({exc})") from exc
        _set_dotted(data, key, value)
    return data


def _defaults_dict() -> dict:
    data = config_to_dict(Config())
    data["model"].update(name=None, scale=None)  # edsr x2 only when no pretrained checkpoint says otherwise
    return data


def _merge(base: dict, top: dict) -> dict:
    """Recursively merge two mappings (top wins); lists are replaced, not merged."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path: Optional[str | os.PathLike], overrides: Optional[list[str]] = None,
                *, base: Optional[dict] = None) -> Config:
    """Read a config file (or start from ``base``, or the defaults), apply overrides, check everything.

    Args:
        path: a YAML file (None: no file).
        overrides: ``section.key=value`` strings, applied after the file.
        base: a resolved config mapping to start from (e.g. the one stored with a run being resumed).

    Raises:
        ConfigError: unreadable/invalid file, unknown option (named, with the closest known one),
        wrong type or value.
    """
    data: dict = dict(base or {})
    if path is not None:
        file_data = _read_yaml(Path(path))
        try:
            config_from_dict(file_data)  # report a bad file by its own keys, before overrides mix in
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        data = _merge(data, file_data)
    # Overrides act on a full tree so that list items (loss.0.weight) exist to be indexed.
    full = _merge(_defaults_dict(), data)
    apply_overrides(full, list(overrides or []))
    return config_from_dict(full)


def save_config(cfg: Config, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML (what ``srprep train -c`` reads back)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)
    return path
