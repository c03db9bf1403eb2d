from __future__ import annotations

from pathlib import Path

import click

from ..io import images
from ..ops.resizers import RESIZERS
from ..stages.identify import IdentifyOptions, identify


def _resizer_list(ctx, param, value):
    if value is None:
        return tuple(RESIZERS)
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in RESIZERS]
    if unknown or not names:
        raise click.BadParameter(f"unknown {', '.join(unknown) or '(empty list)'}; choose from {', '.join(RESIZERS)}")
    return names


@click.command("identify")
@click.option("--hr", "hr", type=click.Path(exists=True, path_type=Path), default=None,
              help="HR images: a folder (keys = file names without extension), LMDB or HDF5 store.")
@click.option("--lr", "lr", type=click.Path(exists=True, path_type=Path), default=None,
              help="LR images; each named as its HR plus an optional suffix (babyx2, baby_LRBI_x2, ...).")
@click.option("-d", "--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A dataset folder instead of --hr/--lr: EDSR benchmark (HR/, LR_bicubic/X2/), BasicSR "
                   "(GTmod12/, LRbicx2/) or srprep (HR, X2 or LR) layout.")
@click.option("-s", "--scale", type=click.IntRange(min=1), required=True, help="Integer factor between HR and LR.")
@click.option("--resizers", default=None, callback=_resizer_list, metavar="A,B,...",
              help=f"Only these candidates (default: all): {', '.join(RESIZERS)}.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the verdict and every image's matches as JSON.")
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a picture of the worst images: HR / LR / best regeneration / where they differ.")
@click.option("--sheet-count", type=click.IntRange(min=1), default=4, show_default=True,
              help="Images on the sheet.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker threads (default: all cores).")
@click.pass_obj
def identify_cmd(ctx, hr, lr, data, scale, resizers, json_path, sheet, sheet_count, jobs) -> None:
    """Which resizer made this LR set? Regenerates every LR from its HR with each candidate.

    Candidates: MATLAB bicubic in both conventions (uint8 as the EDSR/RCAN benchmark LR, im2double as
    BasicSR's LRbicx), BasicSR's float32 port, plain Pillow (bicubic, bilinear, lanczos), pillow-simd,
    OpenCV (cubic, area, linear) and torch (bicubic, with and without antialias, bilinear antialias).
    Also tells the HR crop: modcrop to the scale, to 12, or none. A set no candidate reproduces
    exactly is reported as "closest: X, 99.4 %"; one made by several as "mixed" with counts.

    \b
    Examples:
      srprep identify --data benchmark/Set5 --scale 4
      srprep identify --hr Set5/HR --lr RCAN/LR/LRBI/Set5/x2 --scale 2 --json set5.json --sheet worst.png
    """
    if data is None and (hr is None or lr is None):
        raise click.UsageError("give --hr and --lr, or --data")
    if data is not None and (hr is not None or lr is not None):
        raise click.UsageError("give --hr and --lr, or --data, not both")
    report = identify(scale=scale, hr=hr, lr=lr, data=data, options=IdentifyOptions(resizers=resizers), jobs=jobs,
                      progress=ctx.progress)
    if not ctx.quiet:
        click.echo(report.table())
    if json_path is not None:
        report.write_json(json_path)
    if sheet is not None:
        images.write_image(sheet, report.sheet(sheet_count))
    click.echo(report.summary())
