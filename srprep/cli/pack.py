from __future__ import annotations

from pathlib import Path

import click

from ..stages.crop import CropOptions
from ..stages.pack import ENCODINGS, FORMATS, pack
from .common import echo_report, png_level_option, step_options
from .crop import crop_options


@click.command("pack")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="lmdb", show_default=True,
              help="lmdb: DST/HR.lmdb, DST/X2.lmdb ...; hdf5: DST/data.h5 with one group per field.")
@click.option("--encoding", type=click.Choice(ENCODINGS), default="raw", show_default=True,
              help="raw: uint8 pixels (no decode when training: random 96x96 patch reads ~70x faster); "
                   "png: 2.5x smaller, and an LMDB that BasicSR reads as is.")
@png_level_option("zlib level of PNG values (--encoding png).")
@click.option("--hdf5-compression", type=click.Choice(["none", "gzip", "lzf"]), default="none", show_default=True,
              help="HDF5 filter for raw data (one chunk per item).")
@click.option("--crop", "do_crop", is_flag=True,
              help="Cut sub-images on the way (same grid and keys as srprep crop); no PNG files in between.")
@crop_options
@click.option("--commit-mib", type=click.IntRange(min=1), default=256, show_default=True,
              help="Flush (HDF5), or commit (LMDB written by this process: one job, a Dask cluster), after "
                   "this much data; a kill loses at most this much work. LMDB worker processes commit each "
                   "image as they finish it.")
@step_options
@click.pass_obj
def pack_cmd(ctx, src: Path, dst: Path, fmt, encoding, png_level, hdf5_compression, do_crop, size, step, thresh,
             small, commit_mib, jobs, force, dry_run) -> None:
    """Pack a paired dataset (SRC/HR, SRC/X2, ...) into LMDB or HDF5 stores, resumably.

    Every field folder of SRC is packed under the HR keys; pairs are checked first (missing LR,
    LR not floor(HR/s), duplicate keys). A killed run resumes where it stopped, every key exactly
    once; a store is marked complete only at the end. With --crop, sub-images are cut as
    srprep crop cuts them (--size/--step/--thresh/--small only apply with --crop).

    \b
    Examples:
      srprep pack DIV2K DIV2K_packed --crop --size 480 --step 240          # raw LMDB, fastest to train from
      srprep pack DIV2K_sub DIV2K_lmdb --encoding png                      # what BasicSR's create_lmdb makes
      srprep pack DIV2K DIV2K_h5 --format hdf5 --crop --hdf5-compression lzf
    """
    report = pack(src, dst, fmt=fmt, encoding=encoding, png_level=png_level,
                  crop=CropOptions(size, step, thresh, small) if do_crop else None,
                  hdf5_compression=None if hdf5_compression == "none" else hdf5_compression,
                  jobs=jobs, force=force, dry_run=dry_run, progress=ctx.progress, batch_bytes=commit_mib << 20)
    if report.step.status == "dry run":
        echo_report(ctx, report.step)
    elif not ctx.quiet:
        click.echo(report.summary())
