from __future__ import annotations

from pathlib import Path

import click

from ..errors import SrprepError
from ..names import EXPORT_FORMATS
from .common import model_options


@click.command("export")
@model_options
@click.option("--to", "fmt", type=click.Choice(EXPORT_FORMATS), required=True,
              help="basicsr: {'params': ...} in BasicSR's key names (EDSR, RCAN, MSRResNet, RRDBNet); edsr: a plain "
                   "state dict in the original code's key names (EDSR-PyTorch --pre_train, the authors' repos); "
                   "safetensors: srprep's key names with arch/scale/kwargs metadata.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file [default: beside the model: NAME_basicsr.pth, NAME_edsr.pt, NAME.safetensors].")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.pass_obj
def export_cmd(ctx, model: Path, arch, scale, model_args, trust_checkpoint, fmt, out, force) -> None:
    """Write a checkpoint's weights in a format another program loads.

    Reads any checkpoint srprep reads (srprep's best.pt, BasicSR, EDSR-PyTorch, the authors' files),
    builds the network to check the weights fit, and writes them with the other program's key names;
    prints the options that program needs to build the same network (the weights do not carry them,
    e.g. BasicSR's img_range or EDSR-PyTorch's --res_scale). The file is written atomically.

    \b
    Examples:
      srprep export -m runs/edsr_x2/best.pt --to basicsr    # -> best_basicsr.pth, for BasicSR's test.py
      srprep export -m runs/edsr_x2/best.pt --to edsr -o EDSR_x2.pt   # EDSR-PyTorch --pre_train EDSR_x2.pt
      srprep export -m carn_m.pth --scale 2 --to safetensors
    """
    from ..models import load_pretrained  # torch: imported when the command runs
    from ..models.export import default_export_path, export_weights

    out = out if out is not None else default_export_path(model, fmt)
    if out.resolve() == model.resolve():
        raise SrprepError(f"{out}: is the input checkpoint; give another --out")
    if out.exists() and not force:
        raise SrprepError(f"{out}: exists; pass --force to replace it")
    net, info = load_pretrained(model, arch, scale, trust_checkpoint=trust_checkpoint, model_kwargs=model_args)
    report = export_weights(net, info.arch, info.scale, out, fmt)
    if not ctx.quiet:
        click.echo(report.summary())
