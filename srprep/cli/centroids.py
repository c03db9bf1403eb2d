from __future__ import annotations

from pathlib import Path

import click

from ..stages.centroids import CONVENTIONS, STORE_DTYPES, CentroidOptions, centroids
from .common import batch_option, echo_report, model_options, png_level_option, step_options, tile_options


@click.command("centroids")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@model_options
@click.option("--convention", type=click.Choice(CONVENTIONS), default=None,
              help="MATLAB bicubic convention of lr_pretrained; use the one the dataset's LR was made with "
                   "[default: uint8 for --store-dtype uint8, im2double for float stores].")
@click.option("--store-dtype", type=click.Choice(STORE_DTYPES), default="uint8", show_default=True,
              help="uint8: PNG (or the packed store's encoding), as ECO's authors stored them; float16/float32: "
                   "unrounded .npy arrays in [0, 1] (folder datasets only).")
@tile_options
@batch_option("Equal-size LR images per network call (GPU; sub-image datasets benefit most).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write sr_pretrained/ and lr_pretrained/ here instead of beside the source fields in DATA.")
@click.option("--preview", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also write OUT/centroids_preview.png: LR, sr_pretrained, lr_pretrained, HR crops of N images.")
@png_level_option("PNG compression level (pixels are the same at every level).")
@step_options
@click.pass_obj
def centroids_cmd(ctx, data: Path, model, arch, scale, model_args, trust_checkpoint, convention, store_dtype, tile, overlap,
                  precision, device, batch, out, preview, png_level, jobs, force, dry_run) -> None:
    """ECO centroid pairs: sr_pretrained = f(LR) by a frozen pretrained network, lr_pretrained = bicubic of it.

    DATA is a dataset as srprep downsample writes it (DATA/HR, DATA/X2 ...) or as srprep pack writes
    it (DATA/X2.lmdb, DATA/data.h5); the model's scale picks the LR field. The network runs on whole LR
    images (use --tile for images too big for the device); the results are written beside the source
    fields under the same keys (DATA/sr_pretrained/<key>.png at HR size, DATA/lr_pretrained/<key>x2.png
    at LR size; sr_pretrained.lmdb / lr_pretrained.lmdb; centroids/data.h5), so srprep crop and pack
    cut them on the same grid as HR and LR. lr_pretrained is MATLAB bicubic of the stored sr_pretrained,
    bit-exact, in the dataset's convention. Cached and resumable per image; the model file's SHA-256,
    architecture, precision and convention are recorded, and another model file redoes the step.
    --device cuda overlaps decoding, the network and encoding (one process per GPU when there are several).

    \b
    Examples:
      srprep centroids DIV2K --model EDSR_x2.pt --device cuda --precision bf16 --preview 4
      srprep centroids DIV2K_packed --model IMDN_x2.pth --convention im2double
      srprep centroids DIV2K --model EDSR_x4.pt --store-dtype float16 --out DIV2K_eco_x4
    """
    report = centroids(data, model, arch=arch, scale=scale,
                       options=CentroidOptions(convention, store_dtype, png_level), tile=tile, overlap=overlap,
                       precision=precision, device=device, trust_checkpoint=trust_checkpoint, model_kwargs=model_args,
                       batch=batch, out=out,
                       preview=preview, jobs=jobs, force=force, dry_run=dry_run, progress=ctx.progress)
    if report.step.status == "dry run":
        echo_report(ctx, report.step)
    elif not ctx.quiet:
        click.echo(report.summary())
