"""Options and helpers shared by the commands."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from ..names import PRECISIONS
from ..runner import StepReport
from ..stages.network import InferOptions


@dataclass(frozen=True)
class Context:
    """What the top-level options decide for every command."""

    verbose: bool = False
    quiet: bool = False

    @property
    def progress(self) -> bool:
        return not self.quiet


class ShippedFile(click.ParamType):
    """A path to an existing file, or the name of a file shipped with srprep (a pipeline, a training config
    or a degradation recipe; see :mod:`srprep.shipped`); converts to the file's :class:`~pathlib.Path`."""

    name = "path"

    def __init__(self, kind: str):
        self.kind = kind

    def convert(self, value, param, ctx) -> Path:
        from ..errors import SrprepError
        from ..shipped import find_file

        try:
            return find_file(value, self.kind)
        except SrprepError as exc:
            self.fail(str(exc), param, ctx)


def step_options(fn):
    """--jobs, --force and --dry-run: the options every cached step takes."""
    fn = click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")(fn)
    fn = click.option("--force", is_flag=True, help="Redo the step even if its output is up to date.")(fn)
    fn = click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
                      help="Worker processes (default: all cores).")(fn)
    return fn


def exif_option(fn):
    """--exif-orientation ignore|apply: what to do with the orientation tag of camera photos."""
    return click.option("--exif-orientation", type=click.Choice(["ignore", "apply"]), default="ignore",
                        show_default=True,
                        help="The EXIF orientation tag of the input photos: ignore it (pixels as stored, what SR "
                             "benchmarks assume) or apply it (turn each photo upright as viewers show it).")(fn)


def png_level_option(help: str = "PNG compression level of the outputs (pixels are the same at every level)."):
    """--png-level 0..9 (default 1), with the command's own help text."""
    return click.option("--png-level", type=click.IntRange(0, 9), default=1, show_default=True, help=help)


def batch_option(help: str):
    """--batch N (default 1): equal-size images per network call, with the command's own help text."""
    return click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help=help)


def echo_report(ctx: Context, report: StepReport) -> None:
    """Print a step's one-line summary (and, for a dry run, the first items it would process)."""
    if report.status == "dry run":
        click.echo(report.summary())
        for key in report.todo[:10]:
            click.echo(f"  {key}")
        if len(report.todo) > 10:
            click.echo(f"  ... and {len(report.todo) - 10} more")
    elif not ctx.quiet:
        click.echo(report.summary())


# --- the options of the commands that run a network (upscale, eval, centroids) ---------------------------------


def parse_crop_ensemble(text: str | None) -> tuple | None:
    """``"600,300:100,100"`` -> ``((600, 100), (300, 100))``: chop sizes, then shaves (one shave serves all)."""
    if not text:
        return None
    tiles, sep, overlaps = text.partition(":")
    try:
        t = [int(v) for v in tiles.split(",")]
        o = [int(v) for v in overlaps.split(",")] if sep else []
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected CHOP[,CHOP...]:SHAVE[,SHAVE...], e.g. 600,300:100,100")
    if not sep or not t or len(o) not in (1, len(t)):
        raise click.BadParameter(f"{text!r}: give one shave, or one per chop size, after ':' (e.g. 600,300:100,100)")
    o = o * len(t) if len(o) == 1 else o
    if any(sh < 0 or ch < 1 for ch, sh in zip(t, o)):
        raise click.BadParameter(f"{text!r}: chop sizes must be positive and shaves >= 0")
    return tuple(zip(t, o))


def parse_model_args(ctx, param, values) -> dict:
    """``("res_scale=0.1", "rgb_range=1")`` -> ``{"res_scale": 0.1, "rgb_range": 1}`` (values read as YAML)."""
    import yaml

    args = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key.strip().isidentifier():
            raise click.BadParameter(f"{text!r}: expected KEY=VALUE, e.g. res_scale=0.1")
        args[key.strip()] = yaml.safe_load(value)
    return args


def model_options(fn):
    """--model, --arch, --scale, --model-arg, --trust-checkpoint: which network to run."""
    fn = click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", callback=parse_model_args,
                      help="Network constructor argument the weights do not record (repeatable), e.g. "
                           "res_scale=0.1 for EDSR's 32x256 paper models.")(fn)
    fn = click.option("--trust-checkpoint", is_flag=True,
                      help="Allow a checkpoint that pickles Python objects (this runs code from the file: only "
                           "for files from a source you trust).")(fn)
    fn = click.option("-s", "--scale", type=click.IntRange(min=1), default=None,
                      help="Upscaling factor (default: what the weights are for; a different one is an error).")(fn)
    fn = click.option("--arch", default=None,
                      help="Architecture name (default: recognised from the checkpoint's keys), e.g. edsr, imdn; or "
                           "your own network, package.module:Class or path/to/file.py:Class (imports and runs "
                           "that code).")(fn)
    fn = click.option("-m", "--model", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
                      help="Pretrained checkpoint (.pth/.pt/.safetensors: BasicSR, EDSR-PyTorch, srprep).")(fn)
    return fn


def tile_options(fn):
    """--tile, --overlap, --precision, --device: how the network runs (shared by upscale, eval, centroids)."""
    fn = click.option("--device", default="cpu", show_default=True,
                      help="cpu, cuda (every visible GPU), cuda:N, or a list such as cuda:0,cuda:1.")(fn)
    fn = click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
                      help="fp32 (exact), tf32 (CUDA), bf16, fp16 (CUDA) autocast.")(fn)
    fn = click.option("--overlap", type=click.IntRange(min=0), default=32, show_default=True,
                      help="LR pixels shared by neighbouring tiles (seams lie mid-overlap).")(fn)
    fn = click.option("--tile", type=click.IntRange(min=1), default=None,
                      help="Run the network on LR windows of this size (default: whole images).")(fn)
    return fn


def ensemble_options(fn):
    """--self-ensemble, --crop-ensemble, --chop."""
    fn = click.option("--chop", is_flag=True,
                      help="EDSR-PyTorch's --chop: four overlapping quadrants (shave 10), split again while the "
                           "image has 4 x 400^2 pixels or more; the same as --crop-ensemble 400:10.")(fn)
    fn = click.option("--crop-ensemble", default=None, metavar="CHOPS:SHAVES",
                      help="AIM 2020's crop ensemble, as its --chop-size/--shave-size lists: e.g. 600,300:100,100 "
                           "runs EDSR's quadrant chop with min size 600^2 and shave 100, and with 300^2 and 100 on "
                           "the image rotated by 90 degrees (entry i: i x 90), and averages (replaces --tile).")(fn)
    fn = click.option("--self-ensemble", is_flag=True, help="Average the 8 flips/rotations (x8 self-ensemble).")(fn)
    return fn


def infer_options_from(tile, overlap, self_ensemble, crop_ensemble, precision, chop=False) -> InferOptions:
    """The :class:`InferOptions` these options ask for; a bad combination is a usage error naming the option."""
    crops = parse_crop_ensemble(crop_ensemble)
    if chop and crops:
        raise click.BadParameter("give --chop or --crop-ensemble, not both (--chop is --crop-ensemble 400:10)",
                                 param_hint="--chop")
    if chop:
        from ..infer import EDSR_CHOP  # torch: imported only when a network will run

        crops = EDSR_CHOP
    if crops and tile is not None:
        raise click.BadParameter("give --tile or --crop-ensemble/--chop, not both", param_hint="--crop-ensemble")
    if tile is not None and overlap >= tile:
        raise click.BadParameter(f"--overlap {overlap} must be smaller than --tile {tile}", param_hint="--overlap")
    return InferOptions(tile=tile, overlap=overlap, self_ensemble=self_ensemble, crop_ensemble=crops,
                        precision=precision)
