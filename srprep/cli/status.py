from __future__ import annotations

from pathlib import Path

import click

from ..errors import StoreError
from ..fingerprint import canonical_json
from ..runner import find_step_outputs, step_status


@click.command("status")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
def status_cmd(path: Path) -> None:
    """Show what srprep steps wrote under PATH: step, parameters, complete or how far, when.

    \b
    Example:
      srprep status data/DIV2K
    """
    outputs = find_step_outputs(path)
    if not outputs:
        raise StoreError(f"{path}: no srprep step output found here (looked {4} folders deep)")
    for state in outputs:
        st = step_status(state)
        where = state.parent
        progress = ("complete" if st["complete"]
                    else f"incomplete: {st['done']} of {st['total'] if st['total'] is not None else '?'} items")
        click.echo(f"{where}: {st['step'] or '?'} {progress} ({st['done']} items, {st['when'] or 'time unknown'})")
        if st["params"] is not None:
            click.echo(f"  params {canonical_json(st['params'])}")
