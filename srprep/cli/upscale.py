from __future__ import annotations

from pathlib import Path

import click

from ..infer import PRECISIONS
from ..stages.upscale import InferOptions, upscale_store
from .common import echo_report, step_options


def parse_crop_ensemble(text: str | None) -> tuple | None:
    """``"600,300:100,100"`` -> ``((600, 100), (300, 100))``: tiles, then overlaps (one overlap serves all)."""
    if not text:
        return None
    tiles, sep, overlaps = text.partition(":")
    try:
        t = [int(v) for v in tiles.split(",")]
        o = [int(v) for v in overlaps.split(",")] if sep else []
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected TILE[,TILE...]:OVERLAP[,OVERLAP...], e.g. 600,300:100,100")
    if not sep or not t or len(o) not in (1, len(t)):
        raise click.BadParameter(f"{text!r}: give one overlap, or one per tile, after ':' (e.g. 600,300:100,100)")
    o = o * len(t) if len(o) == 1 else o
    if any(ov < 0 or ov >= tl for tl, ov in zip(t, o)):
        raise click.BadParameter(f"{text!r}: each tile must be larger than its overlap (and overlaps >= 0)")
    return tuple(zip(t, o))


def model_options(fn):
    """--model, --arch, --scale, --trust-checkpoint: which network to run."""
    fn = click.option("--trust-checkpoint", is_flag=True,
                      help="Allow a checkpoint that pickles Python objects (this runs code from the file: only "
                           "for files from a source you trust).")(fn)
    fn = click.option("-s", "--scale", type=click.IntRange(min=1), default=None,
                      help="Upscaling factor (default: what the weights are for; a different one is an error).")(fn)
    fn = click.option("--arch", default=None,
                      help="Architecture name (default: recognised from the checkpoint's keys), e.g. edsr, imdn.")(fn)
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
    """--self-ensemble, --crop-ensemble."""
    fn = click.option("--crop-ensemble", default=None, metavar="TILES:OVERLAPS",
                      help="Average tiled runs, e.g. 600,300:100,100 = tile 600 overlap 100 and tile 300 "
                           "overlap 100 (AIM 2020 crop ensemble; replaces --tile).")(fn)
    fn = click.option("--self-ensemble", is_flag=True, help="Average the 8 flips/rotations (x8 self-ensemble).")(fn)
    return fn


def infer_options_from(tile, overlap, self_ensemble, crop_ensemble, precision) -> InferOptions:
    crops = parse_crop_ensemble(crop_ensemble)
    if crops and tile is not None:
        raise click.BadParameter("give --tile or --crop-ensemble, not both", param_hint="--crop-ensemble")
    if tile is not None and overlap >= tile:
        raise click.BadParameter(f"--overlap {overlap} must be smaller than --tile {tile}", param_hint="--overlap")
    return InferOptions(tile=tile, overlap=overlap, self_ensemble=self_ensemble, crop_ensemble=crops,
                        precision=precision)


@click.command("upscale")
@click.argument("src", type=click.Path(path_type=Path))  # FILE.h5/FIELD does not exist as a path
@click.argument("dst", type=click.Path(file_okay=False, path_type=Path))
@model_options
@tile_options
@ensemble_options
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Equal-size images per network call (GPU).")
@click.option("--png-level", type=click.IntRange(0, 9), default=1, show_default=True,
              help="PNG compression level of the outputs (pixels are the same at every level).")
@step_options
@click.pass_obj
def upscale_cmd(ctx, src: Path, dst: Path, model, arch, scale, trust_checkpoint, tile, overlap, precision, device,
                self_ensemble, crop_ensemble, batch, png_level, jobs, force, dry_run) -> None:
    """Super-resolve a folder (or store) of LR images with a pretrained network.

    SRC is a folder of images, an LMDB store or FILE.h5/FIELD. Writes DST/<key>.png for every image
    of SRC (an LR folder named like 0001x2.png gives 0001.png), rounded to 8 bits. Cached: the model
    file's SHA-256 and every option are part of the step, so a second run is up to date and another
    model file redoes it; a killed run resumes per image. On the CPU, --jobs worker processes each
    load the model once; --device cuda runs in this process with decoding, the network and encoding
    overlapped (one process per GPU when there are several).

    \b
    Examples:
      srprep upscale DIV2K/X2 DIV2K_SR_imdn --model IMDN_x2.pth
      srprep upscale big_LR/ big_SR/ -m EDSR_x2.pt --tile 512 --overlap 32 --device cuda --precision bf16
      srprep upscale Set5/LR_bicubic/X4 out/ -m RRDB_x4.pth --self-ensemble
    """
    opts = infer_options_from(tile, overlap, self_ensemble, crop_ensemble, precision)
    echo_report(ctx, upscale_store(src, dst, model, arch=arch, scale=scale, opts=opts, device=device,
                                   trust_checkpoint=trust_checkpoint, png_level=png_level, batch=batch, jobs=jobs,
                                   force=force, dry_run=dry_run, progress=ctx.progress))
