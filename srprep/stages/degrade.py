"""``srprep degrade``: degraded LR images of a folder of HR images, seeded and explained image by image.

Two recipes:

``reflash``
    the eight fixed test sets of Reflash Dropout (Kong et al., CVPR 2022; see
    :mod:`srprep.ops.degrade.recipes`): bicubic, blur2_bicubic, bicubic_noise20, bicubic_jepg50,
    blur2_bicubic_noise20, blur2_bicubic_jepg50, bicubic_noise20_jepg50, blur2_bicubic_noise20_jepg50
    (the original script's folder names, its ``jepg`` spelling included; ``jpeg`` is accepted as an alias).
    One of those names alone makes that set only. Defaults reproduce the original script step by step
    (8-bit OpenCV blur, PIL bicubic, its float noise truncated to 8 bits, PIL JPEG) and name each LR as its
    HR, as the original's test configs expect; ``resize="matlab"`` and ``quantize="round"`` are the
    documented alternatives.
``realesrgan``
    Real-ESRGAN's second-order pipeline (:mod:`srprep.ops.degrade.pipeline`), ``copies`` LR images per HR,
    with the x4plus settings or a :class:`~srprep.ops.degrade.pipeline.DegradationConfig` read from a YAML
    file (:func:`load_config`).

Layout written (LR names: reflash names each LR as its HR, as the original does (``naming="same"``);
realesrgan adds ``x4``, the scale suffix of the DIV2K/EDSR naming that the rest of srprep writes
(``naming="div2k"``); either recipe takes the other naming; :class:`~srprep.io.stores.FolderStore` reads
both)::

    DST/HR/<key>.png                   the HR, cropped bottom/right to a multiple of the scale (HR = LR x s)
    DST/<set>/<key>.png                reflash: one folder per set
    DST/<set>/<key>.json               ... the parameters of that image
    DST/LR/<key>_c<k>x4.png            realesrgan: copy k = 0 .. copies-1 of image <key>
    DST/LR/<key>_c<k>x4.json           ... the parameters drawn for that copy
    DST/degradation.yaml               realesrgan: the resolved config (a valid --recipe file)
    DST/sheet_reflash.png              with ``sheet``: the first image and its degradations, labelled
    DST/sheet_realesrgan.png           ... or the first image and up to four of its copies

One DST per recipe: both recipes own ``DST/HR`` (realesrgan's may be sharpened), so writing one where the
other's output is raises :class:`RecipeError`.

Every LR image has its parameter record beside it (one small JSON file per image, written with the
image, so a resumed run never has to rebuild a shared file). :func:`regenerate` recomputes an LR image
from its record and ``DST/HR`` alone, byte for byte. A reflash record is the recipe's steps and constants,
options, seed and key (``seed`` is null for the sets without noise: nothing in them is random); a
realesrgan record holds every drawn value, with each blur kernel stored as its generating parameters
(type, size, sigmas, angle, shape, cutoff) from which it is rebuilt exactly, plus the library versions.

Which HR does realesrgan write? Real-ESRGAN x4plus sharpens the GT with USM (``gt_usm``) and degrades the
sharpened GT, which is also its L1 target. With ``hr="sharpened"`` (the default) ``DST/HR`` holds that
sharpened GT, rounded to 8 bits, and the LR is degraded *from exactly that file* (the record's
``params.gt_usm`` is then false: the sharpening already happened). Rounding the sharpened GT first
changes the LR a little (the draws are the same, but a Poisson noise field becomes another sample of the
same noise: numpy's Poisson sampler uses a value-dependent count of random numbers), and in return every
pair is exact: ``LR = degrade(HR)``. With ``hr="original"`` ``DST/HR`` holds the unsharpened GT and the
pipeline sharpens inside (``params.gt_usm`` true), as when training against the original GT. A config
with ``gt_usm: false`` never sharpens; both choices then give the original.

Seeds: every random value of an image comes from :func:`~srprep.ops.degrade.rng.item_rng` ``(seed,
<key>)`` (reflash noise) or ``(seed, "<key>/<k>")`` (realesrgan copy k), so outputs are byte-identical
across runs and ``jobs`` values, and another seed gives other outputs.

Caching: ``DST/HR``, each reflash set and ``DST/LR`` are separate cached steps of
:func:`srprep.runner.run_step`. A set's parameters hold what changes its pixels: the seed only for sets
that add noise (changing it leaves bicubic and the other noise-free sets alone). In ``DST/LR`` the item is
one copy of one image, so raising ``copies`` from 4 to 8 computes only copies 4-7 and lowering it removes
the extra ones.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import __version__
from ..errors import OptionError as RecipeError, ImageError, StoreError
from ..fingerprint import fingerprint
from ..fanout import run_together
from ..io import images, png
from ..io.stores import FolderStore, FolderWriter, scale_suffix
from ..ops.grid import modcrop
from ..runner import STATE_DIR, Item, ItemResult, Step, StepReport, write_json_atomic
from ..shipped import shipped_file, shipped_names
from .wash import link_or_copy

log = logging.getLogger(__name__)

__all__ = [
    "HR_TARGETS", "NAMINGS", "RECIPE_KINDS", "DegradeOptions", "DegradeReport", "RecipeError", "degrade",
    "is_reflash", "load_config", "regenerate", "regenerate_from_record", "resolve_recipe", "sharpen_gt",
]

#: The recipes ``--recipe`` names (besides a YAML file and the eight Reflash set names).
RECIPE_KINDS = ("reflash", "realesrgan")
#: What ``DST/HR`` holds for realesrgan (see the module doc).
HR_TARGETS = ("sharpened", "original")
#: LR file names: ``<key>x4.png`` (DIV2K/EDSR) or ``<key>.png``.
NAMINGS = ("div2k", "same")
#: The naming each recipe uses when none is given: the Reflash sets name each LR as its HR.
DEFAULT_NAMING = {"reflash": "same", "realesrgan": "div2k"}
#: Copies of one image shown on the realesrgan contact sheet.
SHEET_COPIES = 4
#: The Reflash sets' JPEG encoder: the original saves with PIL (libjpeg-turbo; OpenCV's gives the same bytes).
REFLASH_JPEG = "pil"


@dataclass(frozen=True)
class DegradeOptions:
    """How the LR images are made (what changes pixels goes into the cache fingerprint; ``copies`` into
    the set of items, one per copy).

    scale: integer downscaling factor; None: the config's ``scale`` (YAML recipes) or 4.
    seed: non-negative integer; with the image key (and copy index) it decides every random draw.
    copies: LR images per HR image (realesrgan only).
    resize: reflash downscale, ``"pil"`` (the original sets) or ``"matlab"`` (MATLAB imresize bicubic).
    quantize: reflash float -> uint8, ``"truncate"`` (the original sets) or ``"round"``.
    hr: realesrgan ``DST/HR``: ``"sharpened"`` (the GT the pipeline degrades) or ``"original"``.
    naming: ``"div2k"`` (``<key>x4.png``) or ``"same"`` (``<key>.png``) for LR files; None: the recipe's
        (:data:`DEFAULT_NAMING`: same for reflash, div2k for realesrgan).
    png_level: PNG compression level 0-9 (pixels are the same at every level).
    """

    scale: int | None = None
    seed: int = 0
    copies: int = 1
    resize: str = "pil"
    quantize: str = "truncate"
    hr: str = "sharpened"
    naming: str | None = None
    png_level: int = 1

    def check(self) -> None:
        """Raise ValueError on a value no recipe accepts."""
        if self.scale is not None and (isinstance(self.scale, bool) or int(self.scale) != self.scale
                                       or self.scale < 1):
            raise ValueError(f"scale must be a positive integer, not {self.scale!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {self.seed!r}")
        if isinstance(self.copies, bool) or not isinstance(self.copies, (int, np.integer)) or self.copies < 1:
            raise ValueError(f"copies must be a positive integer, not {self.copies!r}")
        for name, allowed in (("resize", ("pil", "matlab")), ("quantize", ("truncate", "round")),
                              ("hr", HR_TARGETS), ("naming", NAMINGS)):
            if getattr(self, name) not in allowed and not (name == "naming" and self.naming is None):
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if not 0 <= self.png_level <= 9:
            raise ValueError(f"png_level must be in 0..9, not {self.png_level!r}")


@dataclass
class DegradeReport:
    """What :func:`degrade` did: one :class:`~srprep.runner.StepReport` per output folder (HR first), and
    the contact sheet and resolved config it wrote, if any."""

    recipe: str
    steps: list[StepReport]
    sheet: Path | None = None
    config_file: Path | None = None

    @property
    def written(self) -> int:
        return sum(r.processed for r in self.steps)

    @property
    def reused(self) -> int:
        return sum(r.reused for r in self.steps)

    def totals(self) -> str:
        """The last line of the summary: images written and reused over all folders, and the sheet."""
        if any(r.status == "dry run" for r in self.steps):
            return f"degrade ({self.recipe}): dry run, nothing written"
        total = f"degrade ({self.recipe}): {self.written} images written, {self.reused} reused"
        return total + (f"; contact sheet {self.sheet}" if self.sheet is not None else "")

    def summary(self) -> str:
        """One line per output folder (images processed and reused), then :meth:`totals`."""
        return "\n".join([r.summary() for r in self.steps] + [self.totals()])


# ------------------------------------------------------------------------------------------ recipes


def _realesrgan_config(**overrides):
    from ..ops.degrade.pipeline import DegradationConfig

    return DegradationConfig(**overrides)


def _check_config_values(cfg, where: str) -> None:
    """Types and ranges of every option, so that a typo in a YAML file fails here, naming the option,
    rather than deep inside a worker. Shapes follow the defaults: a two-number range stays two numbers."""
    from ..ops.degrade.kernels import KERNEL_TYPES

    default = type(cfg)()

    def bad(name, what):
        raise RecipeError(f"{where}: {name} must be {what}, got {getattr(cfg, name)!r}")

    def is_number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    for f in dataclasses.fields(cfg):
        v, d = getattr(cfg, f.name), getattr(default, f.name)
        if isinstance(d, bool):
            if not isinstance(v, bool):
                bad(f.name, "true or false")
        elif isinstance(d, str):
            if not isinstance(v, str):
                bad(f.name, "a string")
        elif isinstance(d, (int, float)):
            if not is_number(v):
                bad(f.name, "a number")
            if f.name.endswith("_prob") and not 0 <= v <= 1:
                bad(f.name, "a probability in [0, 1]")
        elif isinstance(d, tuple):
            if not isinstance(v, tuple) or not v:
                bad(f.name, "a non-empty list")
            if f.name.startswith(("kernel_list", "resize_modes")):
                if not all(isinstance(x, str) for x in v):
                    bad(f.name, "a list of names")
            elif not all(is_number(x) for x in v):
                bad(f.name, "a list of numbers")
            elif len(d) == 2 and (len(v) != 2 or v[0] > v[1]):
                bad(f.name, "[low, high] with low <= high")
    if cfg.scale != int(cfg.scale) or cfg.scale < 1:
        bad("scale", "a positive integer")
    for suffix in ("", "2"):
        kinds, probs = getattr(cfg, "kernel_list" + suffix), getattr(cfg, "kernel_prob" + suffix)
        unknown = [k for k in kinds if k not in KERNEL_TYPES]
        if unknown:
            bad("kernel_list" + suffix, f"names from {', '.join(KERNEL_TYPES)}")
        if len(probs) != len(kinds) or min(probs) < 0 or sum(probs) <= 0:
            bad("kernel_prob" + suffix, f"{len(kinds)} non-negative weights, one per kernel_list{suffix} entry")
    for name in ("resize_prob", "resize_prob2"):
        p = getattr(cfg, name)
        if len(p) != 3 or min(p) < 0 or sum(p) <= 0:
            bad(name, "3 non-negative weights for up, down, keep")
    for name in ("resize_range", "resize_range2"):
        if getattr(cfg, name)[0] <= 0:
            bad(name, "[low, high] with 0 < low")
    for name in ("jpeg_range", "jpeg_range2"):
        lo, hi = getattr(cfg, name)
        if lo != int(lo) or hi != int(hi) or not 1 <= lo <= hi <= 100:
            bad(name, "[low, high] integers in 1..100")


def load_config(path: str | os.PathLike, *, scale: int | None = None):
    """Read a :class:`~srprep.ops.degrade.pipeline.DegradationConfig` from a YAML file.

    The file is a flat mapping with Real-ESRGAN's option names (the shipped recipe ``realesrgan_x4plus``,
    ``srprep/configs/degrade/realesrgan_x4plus.yaml``, lists them all); options it leaves out keep the x4plus
    defaults. Unknown keys are refused, naming them, unless the file says ``strict: false`` (to read a whole
    Real-ESRGAN training file: its other keys are then ignored). ``scale`` (the command line's) wins over the
    file's.

    Raises:
        RecipeError: missing or unreadable file, invalid YAML, not a mapping, unknown keys, bad values.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read the recipe file ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{path}: not valid YAML{where}: {problem}") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: expected a mapping of degradation options (name: value), "
                          f"got {type(data).__name__ if data is not None else 'an empty file'}")
    data = dict(data)
    strict = data.pop("strict", True)
    if not isinstance(strict, bool):
        raise RecipeError(f"{path}: strict must be true or false, got {strict!r}")
    from ..ops.degrade.pipeline import DegradationConfig

    names = {f.name for f in dataclasses.fields(DegradationConfig)}
    unknown = sorted(str(k) for k in data if k not in names)
    if unknown and strict:
        raise RecipeError(f"{path}: unknown degradation options: {', '.join(unknown)} "
                          f"(check the spelling, or add 'strict: false' to ignore them)")
    if unknown:
        log.info("%s: ignoring options that are not degradation options: %s", path, ", ".join(unknown))
    if scale is not None:
        data["scale"] = int(scale)
    try:
        cfg = DegradationConfig.from_dict({k: v for k, v in data.items() if k in names}, strict=False)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{path}: {exc}") from exc
    _check_config_values(cfg, str(path))
    if not isinstance(cfg.scale, int):  # "scale: 4.0" would make every size a float
        cfg = dataclasses.replace(cfg, scale=int(cfg.scale))
    return cfg


def is_reflash(recipe) -> bool:
    """Whether a ``--recipe`` value names the Reflash sets (all, or one, either spelling) rather than the
    realesrgan pipeline."""
    from ..ops.degrade.recipes import ALIASES, RECIPE_NAMES

    return isinstance(recipe, str) and (recipe == "reflash" or recipe in RECIPE_NAMES or recipe in ALIASES)


def resolve_recipe(recipe, scale: int | None = None) -> tuple[str, tuple[str, ...] | object]:
    """``("reflash", set names)`` or ``("realesrgan", DegradationConfig)`` for a ``--recipe`` value.

    ``recipe``: ``"reflash"`` (all eight sets), one Reflash set name (either spelling; the original's is
    returned), ``"realesrgan"`` (x4plus settings), a path to a YAML file (:func:`load_config`), the name of a
    shipped recipe (``srprep/configs/degrade``: ``mild``, ``realesrgan_x4plus``), or a ``DegradationConfig``.
    """
    from ..ops.degrade.recipes import ALIASES, RECIPE_NAMES

    if recipe == "reflash":
        return "reflash", RECIPE_NAMES
    if isinstance(recipe, str) and (recipe in RECIPE_NAMES or recipe in ALIASES):
        return "reflash", (ALIASES.get(recipe, recipe),)
    from ..ops.degrade.pipeline import DegradationConfig  # torch: the Reflash sets never import it

    if isinstance(recipe, DegradationConfig):
        cfg = recipe if scale is None else dataclasses.replace(recipe, scale=int(scale))
        _check_config_values(cfg, "config")
        return "realesrgan", cfg
    recipe = str(recipe)
    if recipe == "realesrgan":
        return "realesrgan", _realesrgan_config(scale=4 if scale is None else int(scale))
    if recipe.lower().endswith((".yaml", ".yml")) or Path(recipe).is_file():
        return "realesrgan", load_config(recipe, scale=scale)
    shipped = shipped_file(recipe, "recipe")
    if shipped is not None:
        return "realesrgan", load_config(shipped, scale=scale)
    raise RecipeError(f"unknown recipe {recipe!r}: choose reflash, realesrgan, a YAML file, a shipped recipe "
                      f"({', '.join(shipped_names('recipe'))}) or one Reflash set ({', '.join(RECIPE_NAMES)})")


def _min_side_realesrgan(cfg) -> tuple[int, str]:
    """Smallest HR side the pipeline can take: the LR must be >= 1 px, the strongest first downscale must
    leave >= 1 px, and the largest blur kernel must fit (Real-ESRGAN's reflect padding needs more pixels
    than the kernel radius)."""
    r = min(cfg.resize_range)
    n = max(1, math.ceil(1 / r))
    while math.floor(n * r) < 1:  # ceil(1/r) can fall short by float rounding
        n += 1
    k = max(cfg.kernel_range) // 2 + 1
    return max(cfg.scale, n, k), (f"the scale {cfg.scale}, the first resize down to x{r:g} and the "
                                  f"{max(cfg.kernel_range)}x{max(cfg.kernel_range)} blur kernels")


def _min_side_reflash(sets: Sequence[str], scale: int) -> tuple[int, str]:
    from ..ops.degrade.recipes import BLUR_SIZE, RECIPES

    if any("blur" in RECIPES[s] for s in sets):
        # every set of one run uses the same HR, so one limit for all: no set half-written
        return max(scale, BLUR_SIZE // 2 + 1), f"the scale {scale} and the {BLUR_SIZE}x{BLUR_SIZE} blur"
    return scale, f"the scale {scale}"


# ------------------------------------------------------------------------------------------ workers


def _worker_setup(parent_pid: int, *, torch_threads: bool = False) -> None:
    """In a worker process use one thread: OpenCV's (and, for the steps that run torch, torch's) thread pools
    in every joblib process would fight over the same cores. In this process (``jobs=1``) the pools are left
    as the caller set them. The Reflash sets never import torch."""
    if os.getpid() != parent_pid:
        import cv2

        cv2.setNumThreads(1)
        if torch_threads:
            import torch

            if torch.get_num_threads() != 1:
                torch.set_num_threads(1)


def _read_hr(src: str, scale: int, min_side: int, why: str) -> np.ndarray:
    """The source image cropped bottom/right to a multiple of ``scale``; refuse one too small to degrade."""
    img = images.read_image(src)
    h, w = img.shape[:2]
    if min(h, w) < min_side:
        raise ImageError(f"{src}: {h}x{w} image is too small for {why} (at least {min_side}x{min_side} pixels)")
    return modcrop(img, scale)


def sharpen_gt(img: np.ndarray) -> np.ndarray:
    """Real-ESRGAN's USM sharpening of a uint8 RGB GT, rounded back to uint8 (what ``DST/HR`` holds)."""
    from ..ops.degrade.sharpen import usm_sharp

    x = usm_sharp(img.astype(np.float32) / np.float32(255.0))
    return np.clip(np.rint(x * np.float32(255.0)), 0, 255).astype(np.uint8)


def _versions() -> dict:
    """Library versions whose behaviour decides the pixels (numpy's samplers, PIL's bicubic, libjpeg); torch's
    is read from its metadata, so that the Reflash workers never import it."""
    from importlib.metadata import PackageNotFoundError, version

    import cv2
    import PIL

    try:
        torch_version = version("torch").split("+")[0]
    except PackageNotFoundError:
        torch_version = None
    return {"srprep": __version__, "numpy": np.__version__, "torch": torch_version,
            "opencv": cv2.__version__, "pillow": PIL.__version__}


def _write_hr(key: str, src: str, hr: np.ndarray | None, *, out: str, scale: int, min_side: int, why: str,
              sharpen: bool, png_level: int) -> tuple[ItemResult, np.ndarray | None]:
    """``DST/HR/<key>.png`` and the HR array it holds (None when it was not decoded): the source file itself
    (linked, else copied) when it is an 8-bit RGB PNG that the crop to the scale leaves whole and nothing
    sharpens it; otherwise the (cropped, sharpened) image, encoded once. ``hr``: the cropped source, if the
    caller has it."""
    name = f"{key}.png"
    size = png.rgb8_size(src)
    if (not sharpen and size is not None and size[0] % scale == 0 and size[1] % scale == 0
            and min(size) >= min_side):
        link_or_copy(src, Path(out) / name)
        return ItemResult(outputs=[name]), hr
    hr = _read_hr(src, scale, min_side, why) if hr is None else hr
    if sharpen:
        hr = sharpen_gt(hr)
    FolderWriter(out, png_level=png_level).write(key, hr)
    return ItemResult(outputs=[name]), hr


def _reflash_image(job: dict, *, hr_step: str, sets: dict, outs: dict, opts: DegradeOptions, scale: int,
                   min_side: int, why: str, parent_pid: int) -> dict:
    """Every output of one image the Reflash steps still need (``job``: step name -> the image's payload),
    from one decode and one blur (:func:`~srprep.ops.degrade.recipes.apply_reflash_sets`)."""
    from ..ops.degrade.recipes import RECIPES, apply_reflash_sets

    _worker_setup(parent_pid)
    key, src = next(iter(job.values()))[0]
    results, hr = {}, None
    wanted = [sets[name] for name in job if name in sets]
    if wanted:
        hr = _read_hr(src, scale, min_side, why)
        lrs = apply_reflash_sets(hr, wanted, scale=scale, seed=opts.seed, key=key, resize=opts.resize,
                                 quantize=opts.quantize, jpeg_backend=REFLASH_JPEG)
        writer_opts = dict(suffix=_lr_suffix(scale, _naming(opts, "reflash")), png_level=opts.png_level)
        for name in job:
            if name not in sets:
                continue
            set_, out = sets[name], outs[name]
            lr, info = lrs[set_]
            writer = FolderWriter(out, **writer_opts)
            png_name = writer.name(key)
            if "noise" not in RECIPES[set_]:
                info = {**info, "seed": None}  # nothing random: the pixels do not depend on the seed
            record = {**info, "recipe": "reflash", "set": set_, "hr": f"HR/{key}.png", "lr": f"{set_}/{png_name}",
                      "source": str(src), "versions": _versions()}
            stem = png_name[: -len(".png")]
            write_json_atomic(Path(out) / f"{stem}.json", record)
            writer.write(key, lr)
            results[name] = [ItemResult(outputs=[png_name, f"{stem}.json"])]
    if hr_step in job:
        results[hr_step] = [_write_hr(key, src, hr, out=outs[hr_step], scale=scale, min_side=min_side, why=why,
                                      sharpen=False, png_level=opts.png_level)[0]]
    return results


#: LR copies of one image made by one worker call (from one decode): more would lose more work to a kill, as
#: a call's results are recorded when it returns.
COPIES_PER_CALL = 4


def _realesrgan_group(item: Item) -> tuple[str, int]:
    """Which worker call makes an item: an image's HR and its first copies together, then its copies in
    groups of :data:`COPIES_PER_CALL` (payloads: ``(key, src)`` for HR, ``(key, k, src)`` for copy k)."""
    key, *rest = item.payload
    return key, (rest[0] // COPIES_PER_CALL if len(rest) == 2 else 0)


def _copy_key(key: str, k: int) -> str:
    return f"{key}_c{k}"


def _rng_key(key: str, k: int) -> str:
    # "/" cannot occur in a key, so (key, k) -> "key/k" is one-to-one
    return f"{key}/{k}"


def _realesrgan_image(job: dict, *, cfg, hr_step: str, lr_step: str, out: str, hr_out: str, opts: DegradeOptions,
                      hr_target: str, min_side: int, why: str, config_sha256: str, parent_pid: int) -> dict:
    """The HR and the LR copies of one image that the realesrgan steps still need, from one decode (and one
    sharpening) of the source."""
    _worker_setup(parent_pid, torch_threads=True)
    results, gt = {}, None
    if hr_step in job:
        key, src = job[hr_step][0]
        result, gt = _write_hr(key, src, None, out=hr_out, scale=cfg.scale, min_side=min_side, why=why,
                               sharpen=hr_target == "sharpened", png_level=opts.png_level)
        results[hr_step] = [result]
    if lr_step in job:
        results[lr_step] = []
        for key, k, src in job[lr_step]:
            if gt is None:
                hr_file = Path(hr_out) / f"{key}.png"
                if hr_target == "sharpened" and hr_file.is_file():
                    # DST/HR holds this image's sharpened GT: decoding it costs a tenth of sharpening again
                    gt = images.read_image(hr_file)
                else:
                    gt = _read_hr(src, cfg.scale, min_side, why)
                    if hr_target == "sharpened":
                        gt = sharpen_gt(gt)
            results[lr_step].append(_realesrgan_copy(key, k, src, gt, cfg=cfg, out=out, opts=opts,
                                                     hr_target=hr_target, config_sha256=config_sha256))
    return results


def _realesrgan_copy(key: str, k: int, src: str, gt: np.ndarray, *, cfg, out: str, opts: DegradeOptions,
                     hr_target: str, config_sha256: str) -> ItemResult:
    """LR copy ``k`` of image ``key`` from its GT (sharpened when ``hr_target`` says so), with its record."""
    from ..ops.degrade.pipeline import apply, draw_params
    from ..ops.degrade.rng import item_rng

    params = draw_params(cfg, item_rng(opts.seed, _rng_key(key, k)), gt.shape[:2])
    if hr_target == "sharpened":
        # DST/HR holds the sharpened GT; degrade that very image, so the pair is exact (module doc)
        params = dataclasses.replace(params, gt_usm=False)
    lr = apply(gt, params)
    writer = FolderWriter(out, suffix=_lr_suffix(cfg.scale, _naming(opts, "realesrgan")),
                          png_level=opts.png_level)
    ckey = _copy_key(key, k)
    png_name = writer.name(ckey)
    pdict = params.to_dict()
    for blur in ("blur1", "blur2"):  # kernels are rebuilt from their parameters on loading
        if pdict[blur] is not None:
            pdict[blur]["kernel"] = None
    pdict["final"]["sinc"]["kernel"] = None
    record = {"recipe": "realesrgan", "key": key, "copy": int(k), "seed": int(opts.seed),
              "rng_key": _rng_key(key, k), "scale": int(cfg.scale), "hr": f"HR/{key}.png", "hr_target": hr_target,
              "lr": f"LR/{png_name}", "lr_size": list(lr.shape[:2]), "source": str(src),
              "config_sha256": config_sha256, "params": pdict, "versions": _versions()}
    stem = png_name[: -len(".png")]
    write_json_atomic(Path(out) / f"{stem}.json", record)
    writer.write(ckey, lr)
    return ItemResult(outputs=[png_name, f"{stem}.json"])


def _lr_suffix(scale: int, naming: str) -> str:
    return scale_suffix(scale) if naming == "div2k" else ""


def _naming(opts: DegradeOptions, kind: str) -> str:
    return opts.naming or DEFAULT_NAMING[kind]


# ------------------------------------------------------------------------------------ regeneration


def regenerate_from_record(record: dict, hr: np.ndarray) -> np.ndarray:
    """The LR image a parameter record describes, from the HR image it names (``DST/HR/<key>.png``)."""
    if record.get("recipe") == "reflash":
        from ..ops.degrade.recipes import apply_reflash

        lr, info = apply_reflash(hr, record["set"], scale=record["scale"], seed=record["seed"] or 0,
                                 key=record["key"], resize=record["resize"], quantize=record["quantize"],
                                 jpeg_backend=record.get("jpeg_backend") or REFLASH_JPEG)
        if record.get("noise_stream") != info["noise_stream"]:
            raise ValueError(f"the record's noise ({record.get('noise_stream')}) is not the one this version "
                             f"draws ({info['noise_stream']}): make the set again")
        return lr
    if record.get("recipe") == "realesrgan":
        from ..ops.degrade.params import DegradationParams
        from ..ops.degrade.pipeline import apply

        return apply(hr, DegradationParams.from_dict(record["params"]))
    raise ValueError(f"not a degrade parameter record (recipe {record.get('recipe')!r})")


def regenerate(params_file: str | os.PathLike) -> np.ndarray:
    """Recompute the LR image of ``DST/<set>/<name>.json`` from that record and ``DST/HR``; equals the
    stored ``<name>.png`` byte for byte (given the library versions the record lists)."""
    path = Path(params_file)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"{path}: cannot read the parameter record ({exc})") from exc
    hr = images.read_image(path.parent.parent / record["hr"])
    return regenerate_from_record(record, hr)


# --------------------------------------------------------------------------------------------- stage


def degrade(hr_dir: str | os.PathLike, dst: str | os.PathLike, recipe="reflash",
            opts: DegradeOptions = DegradeOptions(), *, sheet: bool = False, jobs: int | None = None,
            force: bool = False, dry_run: bool = False, progress: bool = True) -> DegradeReport:
    """Write degraded LR images of every image in ``hr_dir`` under ``dst`` (layout: module doc).

    Args:
        hr_dir: folder of HR images (PNG, JPEG, BMP, TIFF); keys are file stems.
        dst: output folder; gets ``HR/`` and one folder per set (reflash) or ``LR/`` (realesrgan).
        recipe: ``"reflash"``, one Reflash set name, ``"realesrgan"``, a YAML file or a DegradationConfig
            (:func:`resolve_recipe`).
        opts: see :class:`DegradeOptions`.
        sheet: also write a labelled contact sheet of the first image (``dst/sheet_<recipe>.png``).
        jobs, force, dry_run, progress: see :func:`srprep.runner.run_step`.

    Returns:
        A :class:`DegradeReport`.

    Raises:
        RecipeError: unknown recipe, bad YAML, options that do not fit the recipe.
        StageError: an image failed (unreadable, or smaller than the recipe needs); the message names it.
    """
    opts.check()
    kind, what = resolve_recipe(recipe, opts.scale)
    if kind == "reflash" and opts.copies != 1:
        raise RecipeError("copies: the Reflash test sets have one LR per image; --copies is for realesrgan")
    hr_dir, dst = Path(hr_dir), Path(dst)
    _check_not_mixed(dst, kind)
    store = FolderStore(hr_dir, naming="same")
    if not len(store):
        raise StoreError(f"{hr_dir}: no images found (PNG, JPEG, BMP or TIFF)")
    items = [Item(k, store.item_fingerprint(k), (k, str(store.path(k).resolve()))) for k in store.keys()]
    inputs = {"src": str(hr_dir.resolve())}
    run = functools.partial(run_together, jobs=jobs, force=force, dry_run=dry_run, progress=progress, unit="img")
    parent = os.getpid()
    report = DegradeReport(recipe=kind, steps=[])

    # Every folder is its own cached step; the steps run together, so each source image is decoded once for
    # all the folders that need it (srprep.fanout).
    if kind == "reflash":
        sets = what
        scale = 4 if opts.scale is None else int(opts.scale)
        min_side, why = _min_side_reflash(sets, scale)
        from ..ops.degrade.recipes import RECIPES

        hr_step = Step("degrade:HR", dst / "HR", {"scale": scale, "hr": "original", "png_level": opts.png_level},
                       inputs, reads=(hr_dir,))
        set_steps = {}
        for name in sets:
            params = {"recipe": name, "scale": scale, "resize": opts.resize, "quantize": opts.quantize,
                      "jpeg_backend": REFLASH_JPEG, "naming": _naming(opts, "reflash"),
                      "png_level": opts.png_level}
            if "noise" in RECIPES[name]:
                params["seed"] = int(opts.seed)
            set_steps[name] = Step(f"degrade:{name}", dst / name, params, inputs, reads=(hr_dir,))
        all_steps = [hr_step, *set_steps.values()]
        worker = functools.partial(_reflash_image, hr_step=hr_step.name,
                                   sets={st.name: name for name, st in set_steps.items()},
                                   outs={st.name: str(st.output) for st in all_steps}, opts=opts, scale=scale,
                                   min_side=min_side, why=why, parent_pid=parent)
        report.steps = run([(st, items) for st in all_steps], worker)
    else:
        cfg = what
        hr_target = opts.hr if cfg.gt_usm else "original"
        if hr_target != opts.hr:
            log.info("the config does not sharpen the GT (gt_usm: false): DST/HR holds the original")
        min_side, why = _min_side_realesrgan(cfg)
        hr_step = Step("degrade:HR", dst / "HR", {"scale": cfg.scale, "hr": hr_target, "png_level": opts.png_level},
                       inputs, reads=(hr_dir,))
        config = cfg.to_dict()
        config_sha256 = fingerprint(config)
        # copies is not a parameter: the item set (one item per copy) carries it, so more copies only
        # adds items and fewer removes them
        params = {"recipe": "realesrgan", "config": config, "config_sha256": config_sha256, "scale": cfg.scale,
                  "seed": int(opts.seed), "hr": hr_target, "naming": _naming(opts, "realesrgan"),
                  "png_level": opts.png_level}
        lr_step = Step("degrade:LR", dst / "LR", params, inputs, reads=(hr_dir,))
        copy_items = [Item(_copy_key(it.key, k), it.fingerprint, (it.key, k, it.payload[1]))
                      for it in items for k in range(opts.copies)]
        worker = functools.partial(_realesrgan_image, cfg=cfg, hr_step=hr_step.name, lr_step=lr_step.name,
                                   out=str(dst / "LR"), hr_out=str(dst / "HR"), opts=opts, hr_target=hr_target,
                                   min_side=min_side, why=why, config_sha256=config_sha256, parent_pid=parent)
        report.steps = run([(hr_step, items), (lr_step, copy_items)], worker, group=_realesrgan_group)
        if not dry_run:
            report.config_file = _write_resolved_config(dst / "degradation.yaml", cfg, opts, hr_target,
                                                        config_sha256)

    if sheet and not dry_run:
        report.sheet = _write_sheet(dst, kind, store, report, what, opts)
    return report


def _check_not_mixed(dst: Path, kind: str) -> None:
    """Refuse to write one recipe's output where the other's is: both own ``DST/HR``, and realesrgan's HR
    may be sharpened, so the second run would silently break the first one's pairs."""
    from ..ops.degrade.recipes import ALIASES, RECIPE_NAMES

    other = ["LR"] if kind == "reflash" else [*RECIPE_NAMES, *ALIASES]
    found = [name for name in other if (dst / name / STATE_DIR).is_dir()]
    if found:
        theirs = "realesrgan" if kind == "reflash" else "reflash"
        raise RecipeError(f"{dst}: already holds {theirs} output ({', '.join(found[:3])}), which shares DST/HR "
                          f"with this run; write the {kind} output to another folder")


def _write_resolved_config(path: Path, cfg, opts: DegradeOptions, hr_target: str, config_sha256: str) -> Path:
    """``DST/degradation.yaml``: the config as resolved, a valid ``--recipe`` file (the run's other
    options as comments), so that a run can be repeated from its output alone."""
    import yaml

    head = (f"# srprep degrade: the resolved realesrgan config of this folder (config_sha256 {config_sha256}).\n"
            f"# Repeat with: srprep degrade HR_DIR DST --recipe {path.name} --seed {opts.seed} "
            f"--copies {opts.copies} --hr {hr_target}\n")
    text = head + yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path  # an up-to-date run touches nothing
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _write_sheet(dst: Path, kind: str, store: FolderStore, report: DegradeReport, what,
                 opts: DegradeOptions) -> Path:
    """A labelled contact sheet of the first image from the files just written: the original HR (modcropped)
    and each reflash set, or up to :data:`SHEET_COPIES` realesrgan copies. Rewritten only when a step did
    some work or the sheet is missing, so an up-to-date run changes nothing."""
    from ..ops.degrade.contact import degradation_sheet

    path = dst / f"sheet_{kind}.png"
    if path.exists() and all(r.status == "up to date" for r in report.steps):
        return path
    key = store.keys()[0]
    if kind == "reflash":
        scale = 4 if opts.scale is None else int(opts.scale)
        suffix = _lr_suffix(scale, _naming(opts, "reflash"))
        hr = images.read_image(dst / "HR" / f"{key}.png")
        tiles = [(name, _reader(dst / name / f"{key}{suffix}.png")) for name in what]
    else:
        scale = what.scale
        suffix = _lr_suffix(scale, _naming(opts, "realesrgan"))
        # the original, not the sharpened HR, so the sheet shows what the pipeline did to the photo
        hr = modcrop(images.read_image(store.path(key)), scale)
        tiles = [(_copy_label(dst / "LR" / f"{_copy_key(key, k)}{suffix}.json"),
                  _reader(dst / "LR" / f"{_copy_key(key, k)}{suffix}.png"))
                 for k in range(min(opts.copies, SHEET_COPIES))]
    # realesrgan: one row (at most five tiles); reflash: the default 3 x 3 grid
    columns = len(tiles) + 1 if kind == "realesrgan" else None
    images.write_image(path, degradation_sheet(hr, tiles, scale=scale, columns=columns))
    return path


def _copy_label(record_path: Path) -> str:
    """"copy K" and what was drawn for it (from its parameter record), for the sheet."""
    from ..ops.degrade.params import DegradationParams, describe_params

    record = json.loads(record_path.read_text(encoding="utf-8"))
    return f"copy {record['copy']} ({record['key']})\n" + describe_params(DegradationParams.from_dict(record["params"]))


def _reader(path: Path):
    return lambda _img: images.read_image(path)
