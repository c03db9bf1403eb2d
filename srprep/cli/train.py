from __future__ import annotations

from pathlib import Path

import click

from ..errors import SrprepError
from ..shipped import shipped_names
from .common import ShippedFile


@click.command("train", context_settings={"max_content_width": 100})
@click.option("-c", "--config", "config_path", type=ShippedFile("config"), metavar="FILE|NAME",
              help=f"YAML config: a file, or the name of a shipped one ({', '.join(shipped_names('config'))}). "
                   "Optional with --resume: the run's own config.yaml is used.")
@click.argument("overrides", nargs=-1, metavar="[SECTION.KEY=VALUE]...")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the run writes (default: runs/<name>).")
@click.option("--resume", metavar="auto|PATH",
              help="Continue a run: 'auto' = latest checkpoint in the run dir (fresh start if none), or a "
                   "checkpoints/step_*.pt file.")
@click.option("--device", help="cpu, cuda, cuda:1 ... (overrides train.device).")
@click.option("--trust-checkpoint", is_flag=True,
              help="Allow a model.pretrained checkpoint that pickles Python objects (this runs code from the file: "
                   "only for files from a source you trust).")
@click.option("--plot-eco", type=click.Path(dir_okay=False, path_type=Path),
              help="Only write a PNG of the ECO schedule (the config's shift, else 0) and exit.")
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
@click.pass_obj
def train_cmd(ctx, config_path, overrides, run_dir, resume, device, trust_checkpoint, plot_eco, print_config) -> None:
    """Train an SR network on paired patches from a dataset folder, LMDB or HDF5 store.

    A config file sets the defaults; SECTION.KEY=VALUE arguments override them (values are YAML:
    train.iters=1000, data.keys=[a,b], val.root=null, loss.0.weight=255, model.kwargs.num_blocks=8).
    Unknown keys and wrong types are errors naming the option. Sections: model, data, val, eco, augment,
    degrade, loss, optim, schedule, train (see the shipped configs in srprep/configs/, every option
    commented).

    Fine-tuning: model.pretrained=FILE starts from a checkpoint in any format srprep eval reads
    (architecture, scale and options from the file unless the model section names them; only the
    weights: optimiser, schedule and step start fresh). model.strict=false loads what fits (x2 -> x3:
    the body; the upsampler keeps its initialisation and is named). Your own network:
    model.name=package.module:Class or path/to/file.py:Class (this imports and runs that code).

    \b
    The run folder gets:
      config.yaml        the resolved config (train -c it to repeat the run; records the
                         SHA-256 of model.pretrained)
      train.csv val.csv  loss / learning rate / ECO weight; PSNR, SSIM (Y, border = scale) vs bicubic
      curves.png         loss and PSNR curves;  val_crops.png: bicubic | SR | HR crops
      tb/                TensorBoard events (when the tensorboard package is installed)
      best.pt last.pt    the network (EMA weights when train.ema > 0), for srprep eval / upscale
      checkpoints/       full training state: --resume auto continues bit for bit
      eco_schedule.png   with eco.enabled: the centroid weight over training

    \b
    Examples:
      srprep downsample srprep/samples/kodak DATA --scale 2 --scale 4
      srprep train -c tiny_cpu
      srprep train -c edsr_x2_eco train.iters=1000 data.batch=16
      srprep train -c tiny_cpu --run-dir ft model.name=null model.kwargs={} model.pretrained=IMDN_x2.pth optim.lr=1e-5
      srprep train -c tiny_cpu --run-dir runs/x4 model.scale=4 model.pretrained=runs/tiny_cpu/best.pt model.strict=false
      srprep train -c tiny_cpu --run-dir runs/espcn model.name=examples/tiny_espcn.py:TinyESPCN model.kwargs={}
      srprep train --resume auto --run-dir runs/edsr_x2_eco
      torchrun --nproc_per_node 4 -m srprep train -c edsr_x2_eco
      srprep train --plot-eco eco.png

    On several GPUs, start the same command with torchrun: each process takes data.batch patches
    per step (the global batch is data.batch x processes).
    """
    from ..io.images import write_image
    from ..models.user import is_user_spec
    from ..train import eco_schedule_plot, load_config, train
    from ..train.checkpoint import load_state

    base = None
    if config_path is None and resume:
        candidate = (Path(resume).parent.parent if resume != "auto" else run_dir)
        if candidate is None:
            raise SrprepError("--resume auto without -c needs --run-dir (the run to continue)")
        saved = candidate / "config.yaml"
        if saved.is_file():
            config_path = saved
        elif resume != "auto":
            base = load_state(resume)["config"]
            name = (base.get("model") or {}).get("name")
            if name and is_user_spec(name) and not any(o.startswith("model.name=") for o in overrides):
                # a checkpoint never chooses code to import: the user names it
                raise SrprepError(f"{resume}: the run trained the network {name!r}, which is not part of srprep; "
                                  f"give model.name={name} (or -c CONFIG) to import that code, if you trust it")
        else:
            raise SrprepError(f"{candidate}: no config.yaml to resume from; pass -c CONFIG")
        run_dir = run_dir or candidate
    if config_path is None and base is None and not plot_eco:
        raise SrprepError("give a config: srprep train -c tiny_cpu (see srprep train --help)")
    cfg = load_config(config_path, list(overrides), base=base)
    if plot_eco:
        write_image(plot_eco, eco_schedule_plot(cfg.eco.shift))
        click.echo(f"wrote {plot_eco}")
        return
    if print_config:
        import yaml

        from ..train.config import config_to_dict
        from ..train.finetune import resolve_pretrained

        cfg, _ = resolve_pretrained(cfg, trust_checkpoint=trust_checkpoint)
        click.echo(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), nl=False)
        return
    if run_dir is None and resume and resume != "auto":
        run_dir = Path(resume).parent.parent  # RUN/checkpoints/step_N.pt
    if run_dir is None:
        name = cfg.name or (config_path.stem if config_path else "run")
        run_dir = Path("runs") / name
    result = train(cfg, run_dir, resume=resume, device=device, trust_checkpoint=trust_checkpoint)
    if (ctx is not None and ctx.quiet) or not result.main_process:
        return
    cfg = result.config
    speed = f" ({result.steps_per_s:.2f} steps/s)" if result.steps_per_s == result.steps_per_s else ""
    click.echo(f"trained {cfg.model.name} x{cfg.model.scale} for {result.steps} steps in {result.run_dir}{speed}")
    if result.best_psnr == result.best_psnr:
        click.echo(f"best PSNR {result.best_psnr:.3f} dB (Y, border {cfg.model.scale}) at step {result.best_step}; "
                   f"bicubic {result.bicubic_psnr:.3f} dB; last {result.last_psnr:.3f} dB")
    if result.best_checkpoint:
        click.echo(f"best weights:  {result.best_checkpoint}")
    if result.last_checkpoint:
        click.echo(f"last weights:  {result.last_checkpoint}")
    if result.state_checkpoint:
        click.echo(f"train state:   {result.state_checkpoint} (srprep train --resume auto --run-dir {result.run_dir})")
