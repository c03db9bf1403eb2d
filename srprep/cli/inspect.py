from __future__ import annotations

from pathlib import Path

import click

from ..errors import StoreError
from ..stages.inspect import inspect


@click.command("inspect")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a contact sheet PNG of random HR/LR pairs here (LR upscaled, nearest neighbour).")
@click.option("-n", "--n", "n", type=click.IntRange(min=1), default=6, show_default=True,
              help="Rows of the contact sheet.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which random keys the sheet shows.")
@click.option("--keys", "sample", type=click.IntRange(min=0), default=5, show_default=True,
              help="Keys to list per store.")
def inspect_cmd(store: Path, sheet, n, seed, sample) -> None:
    """Show what a store or dataset holds and check that its pairs match.

    STORE is a dataset folder (HR/, X2/ ...), a pack output (HR.lmdb ... or data.h5), or one
    store (a folder of images, NAME.lmdb, file.h5 or file.h5/FIELD). Prints counts, shapes,
    dtype, encoding, size on disk and a few keys per field; with two or more fields, checks that
    every key is in every field and HR = LR x s. Exits 1 when a store is incomplete or a pair
    does not match.

    \b
    Example:
      srprep inspect DIV2K_packed --sheet pairs.png --n 6 --seed 0
    """
    report = inspect(store, n=n, seed=seed, sheet=sheet, sample=sample)
    for line in report.lines():
        click.echo(line)
    if report.problems:
        raise StoreError(f"{store}: {len(report.problems)} problem(s), listed above")
