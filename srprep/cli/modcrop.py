from __future__ import annotations

from pathlib import Path

import click

from ..stages.modcrop import modcrop
from .common import echo_report, exif_option, png_level_option, step_options


@click.command("modcrop")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(file_okay=False, path_type=Path))
@click.option("-s", "--scale", type=click.IntRange(min=1), required=True,
              help="Crop height and width down to a multiple of this.")
@exif_option
@png_level_option()
@step_options
@click.pass_obj
def modcrop_cmd(ctx, src: Path, dst: Path, scale: int, exif_orientation: str, png_level: int, jobs, force,
                dry_run) -> None:
    """Crop images bottom/right to a multiple of the scale (MATLAB modcrop).

    The benchmarks' LR images were made from modcrop(HR, s): Set5's woman (344x228, HxW) at x3
    becomes 342x228, whose LR is 114x76. Writes DST/<name>.png for each image in SRC (PNG, JPEG, BMP, TIFF).
    A photo's EXIF orientation tag is ignored unless --exif-orientation apply (--scale 1 with it turns a
    folder of camera photos upright for the other commands).

    \b
    Examples:
      srprep modcrop Set5/HR Set5/HR_mod3 --scale 3
      srprep modcrop photos/ photos_upright/ --scale 1 --exif-orientation apply
    """
    echo_report(ctx, modcrop(src, dst, scale, jobs=jobs, force=force, dry_run=dry_run,
                             progress=ctx.progress, png_level=png_level, exif_orientation=exif_orientation))
