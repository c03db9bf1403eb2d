"""Options and helpers shared by the commands."""
from __future__ import annotations

from dataclasses import dataclass

import click

from ..runner import StepReport


@dataclass(frozen=True)
class Context:
    """What the top-level options decide for every command."""

    verbose: bool = False
    quiet: bool = False

    @property
    def progress(self) -> bool:
        return not self.quiet


def step_options(fn):
    """--jobs, --force and --dry-run: the options every cached step takes."""
    fn = click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")(fn)
    fn = click.option("--force", is_flag=True, help="Redo the step even if its output is up to date.")(fn)
    fn = click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
                      help="Worker processes (default: all cores).")(fn)
    return fn


def echo_report(ctx: Context, report: StepReport) -> None:
    """Print a step's one-line summary (and, for a dry run, the first items it would process)."""
    if report.status == "dry run":
        click.echo(report.summary())
        for key in report.todo[:10]:
            click.echo(f"  {key}")
        if len(report.todo) > 10:
            click.echo(f"  ... and {len(report.todo) - 10} more")
    elif not ctx.quiet:
        click.echo(report.summary())
