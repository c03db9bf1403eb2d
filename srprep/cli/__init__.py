"""The ``srprep`` command line: thin Click commands over the library's stage functions.

Each command parses options, calls one stage function and prints its summary. Errors a user can fix
(:class:`~srprep.errors.SrprepError`, and OS errors such as a full disk) print one line naming the file
and the cause and exit 1; anything else is a bug and exits 2. Tracebacks only with ``--verbose``.
"""
from __future__ import annotations

import logging
import sys
import traceback

import click

from .. import __version__
from ..errors import SrprepError
from .cluster_paths import CLIENT, with_absolute_paths
from .common import Context
from .centroids import centroids_cmd
from .crop import crop_cmd
from .enlarge import enlarge_cmd
from .degrade import degrade_cmd
from .doctor import doctor_cmd
from .eval import eval_cmd
from .export import export_cmd
from .identify import identify_cmd
from .inspect import inspect_cmd
from .downsample import downsample_cmd
from .modcrop import modcrop_cmd
from .pack import pack_cmd
from .pairs import pairs_group
from .report import report_cmd
from .run import run_cmd
from .status import status_cmd
from .train import train_cmd
from .upscale import upscale_cmd
from .verify import verify_cmd
from .wash import wash_cmd

log = logging.getLogger("srprep")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (it may be replaced, e.g. by tests)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class _Cli(click.Group):
    """The top-level group: with --scheduler, a command's paths are made absolute (see .cluster_paths)."""

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and ctx.params.get("scheduler") and name != "run":
            command = with_absolute_paths(command)
        return name, command, rest


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="srprep")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging, and full tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars.")
@click.option("--scheduler", metavar="ADDRESS", envvar="SRPREP_SCHEDULER",
              help="Run the data steps' items on a Dask cluster (tcp://host:8786) instead of local processes "
                   "(paths are made absolute; the workers must see them at the same place).")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool, scheduler: str | None) -> None:
    """srprep: dataset preparation for single-image super-resolution.

    Turns HR images into training-ready SR data: MATLAB-exact bicubic LR, matched sub-images,
    LMDB/HDF5 stores. Every step is cached (a second identical run does nothing), resumable
    (a killed run continues where it stopped) and parallel (--jobs).

    \b
    Example:
      srprep modcrop HR/ HR_mod4/ --scale 4
      srprep status HR_mod4/
    """
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = _StderrHandler()
    handler.setLevel(level)  # the level of what is shown; a run's own log file (train.log) may record more
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    ctx.obj = Context(verbose=verbose, quiet=quiet)
    if scheduler and ctx.invoked_subcommand != "run":  # a pipeline passes it on to each of its steps
        from ..cluster import use_dask

        ctx.meta[CLIENT] = ctx.with_resource(use_dask(scheduler))


cli.add_command(modcrop_cmd)
cli.add_command(downsample_cmd)
cli.add_command(crop_cmd)
cli.add_command(degrade_cmd)
cli.add_command(pack_cmd)
cli.add_command(inspect_cmd)
cli.add_command(status_cmd)
cli.add_command(run_cmd)
cli.add_command(report_cmd)
cli.add_command(train_cmd)
cli.add_command(upscale_cmd)
cli.add_command(eval_cmd)
cli.add_command(export_cmd)
cli.add_command(centroids_cmd)
cli.add_command(wash_cmd)
cli.add_command(enlarge_cmd)
cli.add_command(pairs_group)
cli.add_command(identify_cmd)
cli.add_command(doctor_cmd)
cli.add_command(verify_cmd)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the process exit status."""
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    verbose = any(a in ("-v", "--verbose") for a in args)
    _warn_if_plain_pil(args)
    try:
        code = cli.main(args=args, prog_name="srprep", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):  # Click turns Ctrl-C into Abort
        click.echo(interrupted_message(args), err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (SrprepError, OSError) as exc:
        if verbose:
            traceback.print_exc()
        click.echo(f"error: {_one_line(exc)}", err=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug: say so, keep the details for --verbose
        if verbose:
            traceback.print_exc()
        click.echo(f"error: internal error ({type(exc).__name__}: {_one_line(exc)}); "
                   f"run with --verbose for the traceback", err=True)
        return 2
    return code if isinstance(code, int) else 0  # a command's click.exceptions.Exit(N) comes back as N


def _warn_if_plain_pil(args: list[str]) -> None:
    """Once per command (not per pipeline step: ``run`` calls the commands without this entry point)."""
    if any(a in ("-h", "--help", "--version", "doctor") for a in args):
        return  # doctor says it in full
    from ..environment import plain_pil_warning

    message = plain_pil_warning()
    if message:
        click.echo(message, err=True)


def interrupted_message(args: list[str]) -> str:
    """What Ctrl-C prints: how to carry on, for the command that was interrupted."""
    command = next((a for a in args if a in cli.commands), None)
    if command == "train":
        return ("interrupted: continue the run with the same command and --resume auto (it starts from the "
                "newest checkpoint in the run folder)")
    if command == "run":
        return ("interrupted: run the same pipeline again: finished steps are skipped and the interrupted one "
                "resumes where it stopped")
    return "interrupted: finished items are kept; run the same command again to resume where it stopped"


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and not isinstance(exc, SrprepError):
        return f"{exc.filename}: {exc.strerror or exc}"
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
