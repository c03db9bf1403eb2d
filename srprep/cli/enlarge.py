from __future__ import annotations

from pathlib import Path

import click

from ..stages.enlarge import RESIZE_METHODS, enlarge
from ..stages.wash import LINK_KINDS
from .common import png_level_option, step_options


@click.command("enlarge")
@click.argument("x3_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(file_okay=False, path_type=Path))
@click.option("--from", "from_scale", type=click.IntRange(min=2), default=3, show_default=True,
              help="Scale of the input pairs.")
@click.option("--to", "to_scale", type=click.IntRange(min=1), default=2, show_default=True,
              help="Scale of the output pairs (smaller than --from).")
@click.option("--resize", type=click.Choice(RESIZE_METHODS), default="matlab", show_default=True,
              help="HR resize: MATLAB bicubic (exact, uint8 convention) or plain Pillow's bicubic, bit-exact "
                   "(the original recipe's Image.resize under its pinned Pillow 7.1.2; not pillow-simd's).")
@click.option("--key-suffix", default=None, metavar="TEXT",
              help="Appended to every enlarged key (default: _x<FROM> unless --key-prefix is given).")
@click.option("--key-prefix", default=None, metavar="TEXT", help="Prepended to every enlarged key.")
@click.option("--merge", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A dataset of --to pairs (X2/HR, X2/LR) linked into DST as well: the combined set.")
@click.option("--link", type=click.Choice(LINK_KINDS), default="hardlink", show_default=True,
              help="How LR files and merged pairs get into DST (always byte-identical).")
@png_level_option("PNG compression level of the resized HR images.")
@step_options
@click.pass_obj
def enlarge_cmd(ctx, x3_dir: Path, dst: Path, from_scale: int, to_scale: int, resize: str, key_suffix,
                key_prefix, merge, link: str, png_level: int, jobs, force, dry_run) -> None:
    """Make x2 pairs out of x3 pairs: HR resized to 2*(H//3) x 2*(W//3), LR reused.

    Each HR of X3_DIR (HR/ and LR/, AIM layout) is cropped to a multiple of --from and resized
    by --to/--from, so that its LR, copied unchanged, is exactly 1/--to of it. Keys get a suffix
    (default _x3) so they cannot collide with the x2 set; --merge links that set in too, and any
    remaining key collision is an error. Writes DST/HR/<key>.png and DST/LR/<key>.png.

    \b
    Example (AIM2020: 18475 washed x2 + 18643 washed x3 = 37118 x2 pairs):
      srprep enlarge AIM/X3_clean AIM/X2_enlarged --merge AIM/X2_clean
    """
    if to_scale >= from_scale:
        raise click.BadParameter(f"--to {to_scale} must be smaller than --from {from_scale}", param_hint="--to")
    report = enlarge(x3_dir, dst, from_scale=from_scale, to_scale=to_scale, resize=resize, key_prefix=key_prefix,
                     key_suffix=key_suffix, merge=merge, link=link, png_level=png_level, jobs=jobs, force=force,
                     dry_run=dry_run, progress=ctx.progress)
    if dry_run or not ctx.quiet:
        click.echo(report.summary())
