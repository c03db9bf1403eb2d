from __future__ import annotations

from pathlib import Path

import click

from ..stages.report import pipeline_report


@click.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the page (default: RUN_DIR/report.md).")
def report_cmd(run_dir: Path, out: Path | None) -> None:
    """Write a Markdown page for a pipeline run: steps, parameters, counts, timings, pictures.

    RUN_DIR is the workdir of `srprep run` (it holds .srprep-pipeline/). The page links the contact
    sheets, training curves and validation crops the steps wrote, and tabulates evaluation results.

    \b
    Example:
      srprep run quickstart && srprep report quickstart
    """
    for path in pipeline_report(run_dir, out=out):
        click.echo(f"report -> {path}")
