"""With ``--scheduler``, a command's paths are made absolute before it runs, and the workers are asked once
whether they see them.

A Dask worker has a working directory of its own, so ``data/DIV2K`` would name another folder there (or
none). :func:`with_absolute_paths` returns a copy of a command (of every command of a group) whose path
parameters convert to absolute paths; just before the command runs, :func:`srprep.cluster.check_paths`
checks them on every worker. The command objects themselves are not changed.
"""
from __future__ import annotations

import copy
import os

import click

_PATHS = "srprep.cluster_paths"  # ctx.meta: the paths converted so far in this invocation
CLIENT = "srprep.dask_client"  # ctx.meta: the Dask client of this invocation


class _AbsolutePath(click.ParamType):
    """A :class:`click.Path` whose value is made absolute (symlinks are kept: a link farm stays one)."""

    def __init__(self, inner: click.Path):
        self.inner = inner
        self.name = inner.name

    def convert(self, value, param, ctx):
        value = self.inner.convert(value, param, ctx)
        if value is None or os.fspath(value) in ("-", ""):
            return value
        absolute = type(value)(os.path.abspath(os.fspath(value)))
        if ctx is not None:
            ctx.meta.setdefault(_PATHS, []).append(os.fspath(absolute))
        return absolute

    def get_metavar(self, *args, **kwargs):
        return self.inner.get_metavar(*args, **kwargs)


def _checked_invoke(command: click.Command):
    def invoke(ctx: click.Context):
        client = ctx.meta.get(CLIENT)
        if client is not None:
            from ..cluster import check_paths

            check_paths(client, ctx.meta.get(_PATHS, []))
        return type(command).invoke(command, ctx)

    return invoke


def with_absolute_paths(command: click.Command) -> click.Command:
    """A copy of ``command`` (and of its subcommands) whose ``click.Path`` parameters give absolute paths,
    checked on the Dask workers just before the command runs."""
    command = copy.copy(command)
    params = []
    for param in command.params:
        if isinstance(param.type, click.Path):
            param = copy.copy(param)
            param.type = _AbsolutePath(param.type)
        params.append(param)
    command.params = params
    if isinstance(command, click.Group):
        command.commands = {name: with_absolute_paths(sub) for name, sub in command.commands.items()}
    else:
        command.invoke = _checked_invoke(command)
    return command
