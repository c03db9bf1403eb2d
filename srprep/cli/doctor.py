from __future__ import annotations

from pathlib import Path

import click


@click.command("doctor")
@click.argument("data", nargs=-1, type=click.Path(path_type=Path))
def doctor_cmd(data: tuple[Path, ...]) -> None:
    """Check the installation, and what DATA folders hold and need.

    Reports the PIL build (pillow-simd, or plain Pillow that a package requiring 'pillow' put over it),
    the compiled bicubic kernel, torch and CUDA devices, OpenCV, the optional extras (plots,
    tensorboard, models, safetensors, cluster) and Graphviz. For each DATA folder: what srprep sees
    there (images, a paired dataset and its scales, packed stores), how much space its pixels take,
    the free space, and the step that usually comes next. Exits 1 when PIL is not pillow-simd or the
    compiled kernel is missing, so scripts can check an environment.

    \b
    Examples:
      srprep doctor
      srprep doctor data/DIV2K_train_HR data/DIV2K
    """
    from ..environment import pil_build, summary_lines
    from ..ops.imresize import native_available

    for line in summary_lines(list(data)):
        click.echo(line)
    if not pil_build().simd or not native_available():
        raise click.exceptions.Exit(1)
