from __future__ import annotations

from pathlib import Path

import click

from ..evaluate import PROTOCOLS
from ..stages.eval import LR_CONVENTIONS, evaluate_datasets
from .common import ensemble_options, infer_options_from, model_options, tile_options


@click.command("eval")
@model_options
@click.option("-d", "--data", "datas", multiple=True, required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Dataset folder (repeat for several), e.g. benchmark/Set5.")
@click.option("--lr-convention", type=click.Choice(LR_CONVENTIONS), default="uint8", show_default=True,
              help="MATLAB bicubic convention of LR made from HR: uint8 (EDSR/RCAN benchmark LR) or im2double "
                   "(BasicSR LRbicx).")
@click.option("--make-lr", is_flag=True, help="Make the LR from HR even where the dataset has LR images.")
@click.option("--protocol", type=click.Choice(list(PROTOCOLS)), default="edsr", show_default=True,
              help="How the numbers are measured: edsr (8-bit SR rounded, MATLAB Y, border = scale: EDSR, RCAN, "
                   "BasicSR), carn (8-bit SR truncated, as CARN-pytorch saved it), fsrcnn (FSRCNN-pytorch: "
                   "Pillow-bicubic LR made from HR, unrounded network Y with their Y formula, whole image).")
@click.option("--y/--rgb", "y_only", default=True, show_default=True,
              help="Headline the Y channel (the papers' numbers) or RGB in the table (the CSV/JSON have both).")
@click.option("--border", type=click.IntRange(min=0), default=None,
              help="Pixels cropped from each side before measuring (default: the protocol's).")
@tile_options
@ensemble_options
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write per-image and mean scores as CSV.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write model, options and scores as JSON.")
@click.option("--save-sr", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Save the (8-bit) SR images as DIR/<dataset>/<name>.png.")
@click.pass_obj
def eval_cmd(ctx, model, arch, scale, model_args, trust_checkpoint, datas, lr_convention, make_lr, protocol, y_only,
             border, tile, overlap, precision, device, self_ensemble, crop_ensemble, chop, csv_path, json_path,
             save_sr) -> None:
    """PSNR/SSIM of a pretrained network on benchmark datasets, as the SR papers report them.

    By default (--protocol edsr) the SR output is rounded to 8 bits, then PSNR and SSIM are measured
    on the Y channel (MATLAB's BT.601) in double precision, with `scale` pixels cropped from each
    border. Every image also gets RGB PSNR/SSIM (all four in the CSV and JSON). Reads the EDSR
    benchmark layout (HR/ + LR_bicubic/X2/<name>x2.png), BasicSR's (GTmod12/ + LRbicx2/) or srprep
    downsample's (HR/ + X2/); with --make-lr, or when a dataset has no LR at all, the LR is made
    from modcrop(HR, s) by srprep's MATLAB-exact bicubic. Grey images are read as R=G=B (as
    EDSR-PyTorch and BasicSR do) and named in the output. Prints a table per dataset and the mean.

    \b
    Examples:
      srprep eval -m IMDN_x2.pth -d benchmark/Set5 -d benchmark/Set14 --csv imdn_x2.csv
      srprep eval -m EDSR_x4.pt -d Set5 --make-lr --lr-convention im2double --self-ensemble
      srprep eval -m RRDB_x4.pth -d Urban100 --tile 256 --device cuda --save-sr sr/
      srprep eval -m carn_m.pth --scale 4 -d benchmark/Set5 --protocol carn
      srprep eval -m fsrcnn_x3.pth --scale 3 -d benchmark/Set5 --protocol fsrcnn
    """
    opts = infer_options_from(tile, overlap, self_ensemble, crop_ensemble, precision, chop)
    report = evaluate_datasets(model, list(datas), arch=arch, scale=scale, lr_convention=lr_convention,
                               make_lr=make_lr, y_only=y_only, border=border, protocol=protocol, opts=opts,
                               device=device, trust_checkpoint=trust_checkpoint, model_kwargs=model_args,
                               save_sr=save_sr)
    click.echo(report.table())
    if csv_path is not None:
        report.write_csv(csv_path)
    if json_path is not None:
        report.write_json(json_path)
    if not ctx.quiet:
        click.echo(report.summary())
