from __future__ import annotations

from pathlib import Path

import click

from ..stages.upscale import upscale_store
from .common import (batch_option, echo_report, ensemble_options, infer_options_from, model_options, png_level_option,
                     step_options, tile_options)


@click.command("upscale")
@click.argument("src", type=click.Path(path_type=Path))  # FILE.h5/FIELD does not exist as a path
@click.argument("dst", type=click.Path(file_okay=False, path_type=Path))
@model_options
@tile_options
@ensemble_options
@batch_option("Equal-size images per network call (GPU).")
@png_level_option()
@step_options
@click.pass_obj
def upscale_cmd(ctx, src: Path, dst: Path, model, arch, scale, model_args, trust_checkpoint, tile, overlap, precision,
                device, self_ensemble, crop_ensemble, chop, batch, png_level, jobs, force, dry_run) -> None:
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
    opts = infer_options_from(tile, overlap, self_ensemble, crop_ensemble, precision, chop)
    echo_report(ctx, upscale_store(src, dst, model, arch=arch, scale=scale, opts=opts, device=device,
                                   trust_checkpoint=trust_checkpoint, model_kwargs=model_args, png_level=png_level,
                                   batch=batch, jobs=jobs,
                                   force=force, dry_run=dry_run, progress=ctx.progress))
