from __future__ import annotations

from pathlib import Path

import click

from ..errors import SrprepError
from ..stages.verify import verify


@click.command("verify")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_obj
def verify_cmd(ctx, path: Path) -> None:
    """Check that what srprep wrote under PATH is still what it wrote: re-hash every output file (SHA-256
    recorded as it was written) and re-read every LMDB/HDF5 value (CRC-32 recorded at commit).

    A rerun of a step notices missing files and files whose size changed, cheaply; verify reads every byte
    and also finds files changed in place and damaged store values. Prints one line per problem and exits
    1 if there is any.

    \b
    Example:
      srprep verify data/DIV2K
    """
    report = verify(path)
    for line in report.problems:
        click.echo(line)
    if report.problems:
        raise SrprepError(report.summary())
    if not (ctx is not None and ctx.quiet):
        click.echo(report.summary())
