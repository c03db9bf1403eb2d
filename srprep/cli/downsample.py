from __future__ import annotations

from pathlib import Path

import click

from ..stages.downsample import LAYOUTS, DownsampleOptions, downsample
from .common import echo_report, exif_option, png_level_option, step_options


@click.command("downsample")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(file_okay=False, path_type=Path))
@click.option("-s", "--scale", "scales", type=float, multiple=True, required=True,
              help="Downscaling factor; repeat for several (--scale 2 --scale 3 --scale 4).")
@click.option("--im2double", is_flag=True,
              help="MATLAB's im2double convention (double throughout, one rounding; BasicSR's LRbicx*). "
                   "Default: the uint8 convention (each pass rounded; EDSR/RCAN benchmark LR).")
@click.option("--modcrop/--no-modcrop", default=True, show_default=True,
              help="Crop HR to a multiple of the scale first, so that HR = LR x scale.")
@click.option("--mod", type=click.IntRange(min=0), default=0, show_default=True,
              help="Crop HR to a multiple of this before anything (12 = BasicSR's GTmod12); 0: off.")
@click.option("--format", "fmt", type=click.Choice(["png", "npy"]), default="png", show_default=True,
              help="npy keeps the LR as float32 in [0, 1] (with --im2double: unrounded).")
@click.option("--naming", type=click.Choice(["div2k", "same"]), default="div2k", show_default=True,
              help="LR file names: div2k = <name>x2.png, same = <name>.png.")
@click.option("--layout", type=click.Choice(LAYOUTS), default="div2k", show_default=True,
              help="Folder names: div2k = HR/, X4/<name>x4.png; basicsr = BasicSR's test sets: GTmod12/, "
                   "LRbicx4/<name>.png, which also means --im2double, --naming same and --mod 12 (unless given).")
@click.option("--hr/--no-hr", "write_hr", default=True, show_default=True,
              help="Also write DST/HR (the HR images as used) so DST is a complete paired dataset.")
@click.option("--device", default="cpu", show_default=True,
              help="cpu (compiled kernel, --jobs processes) or torch devices: cuda, cuda:1, cuda:0,cuda:1 "
                   "(same bytes; images decoded ahead, equal-size images resized in batches).")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Most images per device batch (consecutive images of equal size go together).")
@exif_option
@png_level_option()
@step_options
@click.pass_obj
def downsample_cmd(ctx, src: Path, dst: Path, scales, im2double, modcrop, mod, fmt, naming, layout, write_hr, device,
                   batch, exif_orientation, png_level, jobs, force, dry_run) -> None:
    """MATLAB-exact bicubic LR images: imresize(HR, 1/s, 'bicubic'), bit for bit.

    Writes DST/X<s>/<name>x<s>.png for each scale, and DST/HR/<name>.png (--layout basicsr:
    DST/LRbicx<s>/<name>.png and DST/GTmod12/<name>.png). Both MATLAB conventions are
    reproduced exactly (verified against real MATLAB output): the default is the uint8 one that made
    the EDSR/RCAN benchmark LR (each of the two passes rounded to uint8); --im2double is BasicSR's.
    Each scale is cached on its own: adding a scale later computes only that one. A photo's EXIF
    orientation tag is ignored (pixels as stored) unless --exif-orientation apply.

    \b
    Examples:
      srprep downsample DIV2K_train_HR data/DIV2K --scale 2 --scale 3 --scale 4
      srprep downsample Set14/original data/Set14 --scale 4 --layout basicsr   # GTmod12/, LRbicx4/
    """
    if layout == "basicsr":  # what BasicSR's generate_bicubic_img.m did
        im2double, naming, mod = True, "same", mod or 12
    opts = DownsampleOptions(im2double=im2double, modcrop=modcrop, mod=mod, fmt=fmt, naming=naming,
                             png_level=png_level, exif_orientation=exif_orientation)
    for report in downsample(src, dst, list(scales), opts=opts, write_hr=write_hr, device=device, batch=batch,
                             layout=layout, jobs=jobs, force=force, dry_run=dry_run, progress=ctx.progress):
        echo_report(ctx, report)
