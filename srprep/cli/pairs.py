from __future__ import annotations

from pathlib import Path

import click

from ..stages.pairs import MeasureOptions, Tolerances, pairs_check
from .common import step_options


@click.group("pairs")
def pairs_group() -> None:
    """Inspect LR/HR pairs: find misaligned, moving or off-colour pairs."""


@pairs_group.command("check")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-s", "--scale", type=click.IntRange(min=1), required=True, help="Scale of the pairs.")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the cached per-pair measurements (default: <SRC name>_pairs_x<SCALE> in the folder "
                   "of the first of --report/--ids-out/--hist/--sheet given, else beside SRC).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Per-pair CSV, worst first (default: WORK/report.csv).")
@click.option("--ids-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the clean pairs as an AIM-style ID list (000123.png per line).")
@click.option("--threshold", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="A pair is clean when its score (largest measure / tolerance) is at most this.")
@click.option("--max-shift", type=click.FloatRange(min=0, min_open=True), default=0.5, show_default=True,
              help="Tolerance of the global shift, LR pixels.")
@click.option("--max-local", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Tolerance of a tile's shift against the global one, LR pixels (moving objects).")
@click.option("--max-colour", type=click.FloatRange(min=0, min_open=True), default=0.05, show_default=True,
              help="Tolerance of a channel's gain (LR mean / HR mean) off 1.")
@click.option("--min-psnr", type=float, default=None,
              help="Also flag pairs whose PSNR after alignment is below this (dB; off by default).")
@click.option("--tile", type=click.IntRange(min=16), default=64, show_default=True,
              help="Tile side for the local shifts, LR pixels.")
@click.option("--all-tiles", is_flag=True,
              help="Measure every tile of every pair (default: a pair whose non-overlapping tiles show no local "
                   "motion is not measured on the others).")
@click.option("--hist", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a histogram of the scores (PNG).")
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a contact sheet of the worst pairs (PNG).")
@click.option("--sheet-count", type=click.IntRange(min=1), default=8, show_default=True,
              help="Pairs on the contact sheet.")
@step_options
@click.pass_obj
def check_cmd(ctx, src: Path, scale: int, work, report, ids_out, threshold, max_shift, max_local, max_colour,
              min_psnr, tile, all_tiles, hist, sheet, sheet_count, jobs, force, dry_run) -> None:
    """Measure every LR/HR pair and flag the damaged ones (what the AIM2020 washers removed).

    For each pair the HR is downsampled (MATLAB bicubic) onto the LR grid and compared with the
    LR: global shift (sub-pixel phase correlation; LR and HR pixels), local shifts on tiles
    (moving objects), per-channel colour gains, and PSNR after alignment. The score is the
    largest measure/tolerance ratio; a pair is clean when score <= --threshold. Measurements
    are cached in WORK: changing tolerances only rewrites the report.

    \b
    Example:
      srprep pairs check AIM/X2 --scale 2 --ids-out x2_clean.txt --hist x2_hist.png --sheet x2_worst.png
      srprep pairs check AIM/X2 --scale 2 --threshold 2   # reuses the measurements
    """
    if work is None:  # beside what the user asked for, never the current directory
        first = next((p for p in (report, ids_out, hist, sheet) if p is not None), None)
        where = first.resolve().parent if first is not None else src.resolve().parent
        work = where / f"{src.resolve().name}_pairs_x{scale}"
    result = pairs_check(src, scale, work, report=report, ids_out=ids_out, hist=hist, sheet=sheet,
                         sheet_count=sheet_count,
                         tolerances=Tolerances(max_shift, max_local, max_colour, min_psnr, threshold),
                         options=MeasureOptions(tile=tile, screen=not all_tiles), jobs=jobs, force=force,
                         dry_run=dry_run, progress=ctx.progress)
    if dry_run or not ctx.quiet:
        click.echo(result.summary())
