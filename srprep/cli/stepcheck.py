"""A pipeline step checked against the command it runs, when the pipeline is loaded (before anything runs).

:func:`step_checker` gives :func:`srprep.pipeline.load_pipeline` a ``check_step``: it refuses an unknown
command, an unknown option (with the closest known one), a list or a ``false`` an option cannot take, a
value of the wrong type (``scale: abc``), arguments the command cannot parse (missing, extra, an unknown
``--flag`` inside ``args``) and, for ``train``, unknown config keys in its overrides. Paths are not looked at
here, since earlier steps make some of them: the checker returns the inputs the command reads (parameters of
type ``click.Path(exists=True)`` and shipped-file names), and :func:`srprep.pipeline.missing_inputs` looks
for them before the run. :func:`parse_args` parses any srprep command line that way (the tests run it on
every example in the documentation).
"""
from __future__ import annotations

import copy
import difflib
import os
from typing import Callable

import click

from ..errors import SrprepError
from ..pipeline import PipelineError, PipelineStep, StepInput
from .common import ShippedFile


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _option_for(command: click.Command, key: str) -> click.Option | None:
    for param in command.params:
        if isinstance(param, click.Option) and _flag(key) in param.opts:
            return param
    return None


def _check_options(command: click.Command, step: PipelineStep) -> None:
    for key, value in step.options.items():
        param = _option_for(command, key)
        if param is None:
            known = [o[2:].replace("-", "_") for p in command.params if isinstance(p, click.Option)
                     for o in p.opts if o.startswith("--") and o != "--help"]
            close = difflib.get_close_matches(key.replace("-", "_"), known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (options: {', '.join(sorted(known))})"
            raise PipelineError(f"options.{key}: srprep {step.command} has no option {_flag(key)}{hint}")
        many = param.multiple or param.nargs != 1
        if isinstance(value, list) and not many:
            raise PipelineError(f"options.{key}: a list, but {_flag(key)} takes one value")
        if value is False and param.is_flag and not param.secondary_opts:
            raise PipelineError(f"options.{key}: false, but {_flag(key)} is a flag without --no-: leave it out")
        if value is True and not param.is_flag:
            raise PipelineError(f"options.{key}: true, but {_flag(key)} takes a value")


class _Recording(click.ParamType):
    """In place of a path type: records the value, to be looked for later (earlier steps may make it)."""

    def __init__(self, inner: click.ParamType, found: list):
        self.inner, self.found, self.name = inner, found, inner.name

    def convert(self, value, param, ctx):
        self.found.append((param, value, self.inner))
        return value


def _recording(command: click.Command, found: list) -> click.Command:
    """A copy of ``command`` (and its subcommands) whose path parameters record their values; every other
    parameter converts, and refuses a bad value, as in the command itself."""
    command = copy.copy(command)
    params = []
    for param in command.params:
        if isinstance(param.type, (click.Path, ShippedFile)):
            param = copy.copy(param)
            param.type = _Recording(param.type, found)
        params.append(param)
    command.params = params
    if isinstance(command, click.Group):
        command.commands = {n: _recording(c, found) for n, c in command.commands.items()}
    return command


def parse_args(root: click.Group, argv: list[str]) -> tuple[click.Context, list]:
    """Parse an srprep command line (``argv`` without the program name) as Click would, down to the command
    it runs, without looking at the files it names. Returns the command's context and (parameter, value,
    type) of every path value in the line.

    Raises:
        click.UsageError: an unknown command or option, a missing or extra argument, a bad value.
    """
    found: list = []
    command, name, args, ctx = _recording(root, found), "srprep", list(argv), None
    while True:
        ctx = command.make_context(name, args, parent=ctx)
        if not isinstance(command, click.Group):
            return ctx, found
        protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args  # Click 8.1
        name, command, args = command.resolve_command(ctx, [*protected, *ctx.args])


def _check_train(params: dict) -> None:
    """A training step's overrides (``train.iters=300``) must name config keys, with values of their type."""
    from ..shipped import find_file
    from ..train.config import ConfigError, load_config

    config = params.get("config_path")
    try:
        path = find_file(config, "config") if config is not None else None
    except SrprepError:
        return  # looked for with the other inputs
    try:
        load_config(path, list(params.get("overrides") or ()))
    except ConfigError as exc:
        raise PipelineError(f"args: {exc}") from None


def _where(step: PipelineStep, param: click.Parameter) -> str:
    for key in step.options:
        if isinstance(param, click.Option) and _flag(key) in param.opts:
            return f"options.{key}"
    return f"args ({param.human_readable_name})"


def _exists(kind: click.ParamType) -> Callable[[str], bool]:
    if isinstance(kind, ShippedFile):
        def shipped_or_file(value: str) -> bool:
            try:
                kind.convert(value, None, None)
                return True
            except click.BadParameter:
                return False

        return shipped_or_file
    return os.path.exists


def step_checker(root: click.Group):
    """``check_step`` for :func:`srprep.pipeline.load_pipeline` over the commands of ``root``."""

    def check_step(step: PipelineStep) -> list[StepInput]:
        command = root.commands.get(step.command)
        if command is None or step.command == "run":
            names = ", ".join(sorted(n for n in root.commands if n != "run"))
            raise PipelineError(f"command: no srprep command {step.command!r} (commands: {names})")
        _check_options(command, step)
        try:
            ctx, found = parse_args(root, step.argv())
        except click.UsageError as exc:
            raise PipelineError(f"srprep {step.command}: {exc.format_message()}") from None
        if ctx.command.name == "train":
            _check_train(ctx.params)
        inputs = []
        for param, value, kind in found:
            if isinstance(kind, ShippedFile) or kind.exists:
                inputs.append(StepInput(_where(step, param), str(value), _exists(kind)))
        return inputs

    return check_step
