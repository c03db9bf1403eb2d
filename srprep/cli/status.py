from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import StoreError
from ..runner import find_step_outputs, step_status


def format_params(params: dict, width: int = 96) -> list[str]:
    """Parameters as ``name value`` pairs, nested names joined with dots, wrapped to ``width`` characters.

    >>> format_params({"scale": 2.0, "im2double": False, "model": {"sha256": "ab" * 32, "arch": "edsr"}})
    ['scale 2  im2double false  model.sha256 abababababab...  model.arch edsr']
    """
    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and v:
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    def show(v):
        if isinstance(v, float):
            return f"{v:g}"
        text = v if isinstance(v, str) else json.dumps(v, default=str)
        return text[:12] + "..." if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text

    lines, line = [], ""
    for name, value in flat(params):
        part = f"{name} {show(value)}"
        if line and len(line) + 2 + len(part) > width:
            lines.append(line)
            line = part
        else:
            line = f"{line}  {part}" if line else part
    return lines + ([line] if line else [])


@click.command("status")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
def status_cmd(path: Path) -> None:
    """Show what srprep wrote under PATH: each step output (step, parameters, complete or how far, when)
    and each training run (step, best validation PSNR, last checkpoint).

    \b
    Example:
      srprep status data/DIV2K
      srprep status runs/
    """
    from ..train.status import find_runs

    outputs, runs = find_step_outputs(path), find_runs(path)
    if not outputs and not runs:
        raise StoreError(f"{path}: no srprep step output or training run found here (looked 4 folders deep)")
    for state in outputs:
        st = step_status(state)
        where = state.parent
        progress = ("complete" if st["complete"]
                    else f"incomplete: {st['done']} of {st['total'] if st['total'] is not None else '?'} items")
        click.echo(f"{where}: {st['step'] or '?'} {progress} ({st['done']} items, {st['when'] or 'time unknown'})")
        for line in format_params(st["params"] or {}):
            click.echo(f"    {line}")
    if runs:
        from ..train.status import run_status

        for run_dir in runs:
            click.echo(run_status(run_dir).summary())
