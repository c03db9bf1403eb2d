from __future__ import annotations

from pathlib import Path

import click

from ..shipped import shipped_names
from ..stages.degrade import HR_TARGETS, NAMINGS, DegradeOptions, degrade, is_reflash
from .common import echo_report, png_level_option, step_options


@click.command("degrade")
@click.argument("hr_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(file_okay=False, path_type=Path))
@click.option("-r", "--recipe", default="reflash", show_default=True,
              metavar="reflash|realesrgan|SET|FILE.yaml|NAME",
              help="reflash: the eight Reflash test sets, made as the original script makes them, in its folders "
                   "(bicubic_jepg50, its spelling; 'jpeg' is accepted); SET: one of them (e.g. bicubic_noise20); "
                   "realesrgan: Real-ESRGAN's second-order pipeline, x4plus settings; FILE.yaml: that pipeline with "
                   "the options in the file (Real-ESRGAN names); NAME: a shipped recipe file "
                   f"({', '.join(shipped_names('recipe'))}; in srprep/configs/degrade/).")
@click.option("-s", "--scale", type=click.IntRange(min=1), default=None,
              help="Downscaling factor [default: 4, or the YAML file's scale].")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="With each image's name (and copy number) it decides every random draw.")
@click.option("-k", "--copies", type=click.IntRange(min=1), default=None,
              help="realesrgan: LR images per HR image, each with its own draws [default: 1].")
@click.option("--resize", type=click.Choice(["pil", "matlab"]), default=None,
              help="reflash: downscale with PIL bicubic (as the original sets) or MATLAB imresize [default: pil].")
@click.option("--quantize", type=click.Choice(["truncate", "round"]), default=None,
              help="reflash: the noise step's float to 8 bits by truncation (as the original sets) or rounding "
                   "[default: truncate].")
@click.option("--hr", "hr_target", type=click.Choice(HR_TARGETS), default=None,
              help="realesrgan: DST/HR holds the USM-sharpened GT that the pipeline degrades (x4plus) or the "
                   "original GT [default: sharpened].")
@click.option("--naming", type=click.Choice(NAMINGS), default=None,
              help="LR file names: div2k (<name>x4.png) or same (<name>.png) [default: same for reflash, as the "
                   "original sets; div2k for realesrgan].")
@click.option("--sheet", is_flag=True, help="Also write DST/sheet_<recipe>.png: the first image and its "
                                             "degradations side by side, labelled.")
@png_level_option()
@step_options
@click.pass_obj
def degrade_cmd(ctx, hr_dir: Path, dst: Path, recipe: str, scale, seed: int, copies, resize, quantize, hr_target,
                naming, sheet: bool, png_level: int, jobs, force, dry_run) -> None:
    """Make degraded LR images: the Reflash test sets or Real-ESRGAN-style copies, seeded.

    Every LR image gets a JSON file beside it with everything that made it (recipe, steps, drawn
    kernels/noise/JPEG qualities, seed), and DST/HR holds the HR it was made from, cropped to a
    multiple of the scale (HR = LR x scale). The same --seed gives the same bytes on every run and
    with any --jobs; each image's draws depend only on the seed and its name.

    \b
    Layout:
      DST/HR/<name>.png                       HR (realesrgan: USM-sharpened unless --hr original)
      DST/<set>/<name>.png + .json            reflash, one folder per set
      DST/LR/<name>_c<k>x4.png + .json        realesrgan, copy k

    \b
    Examples:
      srprep degrade Set14/HR Set14_reflash --recipe reflash --scale 4 --sheet
      srprep degrade DIV2K/HR DIV2K_real --recipe realesrgan --copies 4 --seed 0
      srprep degrade DIV2K/HR DIV2K_mild --recipe mild --copies 2
    """
    reflash = is_reflash(recipe)
    given = {"--copies": copies, "--hr": hr_target} if reflash else {"--resize": resize, "--quantize": quantize}
    for flag, value in given.items():
        if value is not None:
            kind = "reflash" if reflash else "realesrgan"
            raise click.UsageError(f"{flag} does not apply to the {kind} recipe")
    opts = DegradeOptions(scale=scale, seed=seed, copies=copies or 1, resize=resize or "pil",
                          quantize=quantize or "truncate", hr=hr_target or "sharpened", naming=naming,
                          png_level=png_level)
    report = degrade(hr_dir, dst, recipe, opts, sheet=sheet, jobs=jobs, force=force, dry_run=dry_run,
                     progress=ctx.progress)
    for step in report.steps:
        echo_report(ctx, step)
    if not dry_run and not ctx.quiet:
        click.echo(report.totals())
