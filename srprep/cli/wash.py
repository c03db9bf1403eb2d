from __future__ import annotations

from pathlib import Path

import click

from ..stages.wash import LINK_KINDS, MODES, wash
from .common import step_options


@click.command("wash")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(file_okay=False, path_type=Path))
@click.option("--ids", "ids", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="ID list: one file name or key per line (000123.png or 000123), any order; blank lines "
                   "and lines starting with # are skipped.")
@click.option("--mode", type=click.Choice(MODES), default="keep", show_default=True,
              help="keep the listed pairs, or drop them and keep the rest.")
@click.option("--link", type=click.Choice(LINK_KINDS), default="hardlink", show_default=True,
              help="How image files get into DST (packed stores always get a view: no copy).")
@click.option("--allow-missing", is_flag=True,
              help="Listed IDs that SRC does not have are reported instead of being an error.")
@step_options
@click.pass_obj
def wash_cmd(ctx, src: Path, dst: Path, ids: Path, mode: str, link: str, allow_missing: bool, jobs, force,
             dry_run) -> None:
    """Keep (or drop) the pairs named in an ID list: the AIM2020 clean-ID washing.

    SRC is a dataset folder (SRC/HR, SRC/LR, or any fields sharing keys). DST mirrors it: image
    folders get hard links (or symlinks, or copies) of the kept files under the same names; packed
    fields (LMDB, HDF5, views) get a view, DST/<field>/view.json naming the source store and the
    kept keys, which opens like any store (nothing is re-encoded). SRC is never written. A hard
    link across file systems is an error: use --link copy or --link symlink there. Linking is
    I/O-bound and runs in one process unless -j says otherwise.

    \b
    Example (AIM2020 Real-SR x2, 19000 pairs -> 18475):
      srprep wash AIM/X2 AIM/X2_clean --ids x2_clean_img_id.txt
      srprep wash AIM/X2 AIM/X2_bad --ids x2_clean_img_id.txt --mode drop --link symlink
    """
    report = wash(src, dst, ids, mode=mode, link=link, allow_missing=allow_missing, jobs=jobs or 1, force=force,
                  dry_run=dry_run, progress=ctx.progress)
    if dry_run or not ctx.quiet:
        click.echo(report.summary())
