from __future__ import annotations

from pathlib import Path

import click

from ..stages.crop import SMALL_POLICIES, CropOptions, crop, parse_lr_spec
from .common import echo_report, png_level_option, step_options


def crop_options(fn):
    """--size, --step, --thresh, --small: how sub-images are cut (shared by crop and pack --crop)."""
    fn = click.option("--small", type=click.Choice(SMALL_POLICIES), default="error", show_default=True,
                      help="Images smaller than the crop: fail, keep them whole, or skip them "
                           "(always listed in the summary).")(fn)
    fn = click.option("--thresh", type=click.IntRange(min=0), default=0, show_default=True,
                      help="Add a last crop flush with the bottom/right edge when more than this many HR "
                           "pixels would be left over.")(fn)
    fn = click.option("--step", type=click.IntRange(min=1), default=240, show_default=True,
                      help="Distance between crops, in HR pixels (a multiple of every scale).")(fn)
    fn = click.option("--size", type=click.IntRange(min=1), default=480, show_default=True,
                      help="Side of a square HR sub-image, in HR pixels (a multiple of every scale).")(fn)
    return fn


@click.command("crop")
@click.argument("hr_dir", type=click.Path(exists=True, path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option("--lr", "lrs", multiple=True, metavar="LR_DIR[:SCALE]",
              help="An LR folder or store; the scale comes from its name (X2) or files (0001x2.png) "
                   "unless given after a colon. Repeat for several scales.")
@crop_options
@png_level_option("PNG compression level of the sub-images (pixels are the same at every level).")
@step_options
@click.pass_obj
def crop_cmd(ctx, hr_dir: Path, dst: Path, lrs, size, step, thresh, small, png_level, jobs, force,
             dry_run) -> None:
    """Cut matched HR/LR sub-images on one grid (BasicSR's extract_subimages, but paired).

    The grid is laid on the HR image (cropped top-left to a multiple of every scale, i.e. LR x s);
    each LR crop is the HR box divided by its scale, so counts and places always match. Sub-image
    i of image NAME (from 1, row-major) is NAME_s{i:03d}. Writes DST/HR/NAME_s001.png and
    DST/X2/NAME_s001x2.png ...; pairs are checked first (missing LR, LR not floor(HR/s)).

    \b
    Example (DIV2K, as BasicSR prepares it):
      srprep crop DIV2K/HR --lr DIV2K/X2 --lr DIV2K/X4 DIV2K_sub --size 480 --step 240
      srprep crop Set5/HR --lr Set5/LR_bicubic/X3 Set5_sub --size 96 --step 48 --small keep
    """
    for spec in lrs:
        path, _ = parse_lr_spec(spec)
        if not path.exists():
            raise click.BadParameter(f"{path}: no such folder or store", param_hint="--lr")
    report = crop(hr_dir, list(lrs), dst, CropOptions(size, step, thresh, small), png_level=png_level, jobs=jobs,
                  force=force, dry_run=dry_run, progress=ctx.progress)
    if report.step.status == "dry run":
        echo_report(ctx, report.step)
    elif not ctx.quiet:
        click.echo(report.summary())
