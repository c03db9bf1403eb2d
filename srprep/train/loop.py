"""The training loop: one function, :func:`train`, readable top to bottom.

Per step, on the device: take the prefetched uint8 batch, flip/transpose it per sample, convert to float,
(degrade the HR into the LR on the fly; with Real-ESRGAN's procedure, cut the training pair from the degraded
``crop_pad`` GT and pass it through the training-pair pool), (mix with the ECO centroids), apply the batch
augmentations, run the network under autocast, backpropagate, clip, (skip a step whose loss jumped), update
the weights and the EMA. The step never waits for the GPU: the loss is summed on the device and read every
``log_every`` steps; the skip decision is a device tensor the optimiser reads (:mod:`srprep.train.optim`).

Every random choice of step ``t`` comes from generators seeded by ``(seed, t, rank)`` (and the data stream
from ``(seed, sample index)``), so a run resumed from a checkpoint continues bit for bit (on the CPU; cuDNN
kernels may be non-deterministic on the GPU).
"""
from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from srprep.errors import SrprepError
from srprep.models import create_model, save_checkpoint

from . import checkpoint as ckpt
from .augment import apply_batch_augment, dihedral, draw_batch_augment
from .config import Config, config_to_dict, save_config
from .data import Prefetcher, build_dataset, check_readable, make_loader, nchw, to_unit_float
from .distributed import all_reduce_mean, barrier, init_distributed, shutdown
from .eco import eco_alpha, eco_mix, eco_schedule_plot
from .finetune import WeightsReport, load_matching, resolve_pretrained
from .logs import RunLog
from .losses import build_loss
from .optim import LrSchedule, ModelEma, build_optimizer, clip_gradients
from .pool import PairPool
from .tensorboard import open_tensorboard
from .validate import Validator, validation_keys

log = logging.getLogger(__name__)

__all__ = ["TrainResult", "train", "step_seeds"]


@dataclass
class TrainResult:
    """What a run ended with (the CLI prints it)."""

    run_dir: Path
    steps: int  # steps completed
    best_psnr: float  # best validation PSNR (Y) so far, NaN without validation
    best_step: int
    bicubic_psnr: float  # MATLAB bicubic on the same validation images
    last_psnr: float
    best_checkpoint: Optional[Path]  # network weights (srprep checkpoint, loadable by load_pretrained)
    last_checkpoint: Optional[Path]
    state_checkpoint: Optional[Path]  # full training state, for --resume
    steps_per_s: float  # training throughput, validation and checkpoint time excluded
    stopped_early: bool
    main_process: bool = True  # False in the other processes of a torchrun launch
    config: Optional[Config] = None  # the config the run used (model.* filled in from model.pretrained)
    init: Optional[WeightsReport] = None  # what model.pretrained gave (None without it, or when resuming)


def step_seeds(seed: int, step: int, rank: int) -> list[int]:
    """Three 63-bit seeds (global torch RNG, host generator, device generator) for one step of one process."""
    words = np.random.SeedSequence([seed, step, rank]).generate_state(6, dtype=np.uint32)
    return [int((int(words[2 * i]) << 31) ^ int(words[2 * i + 1])) for i in range(3)]


def paired_crop(lr: torch.Tensor, hr: torch.Tensor, corners: torch.Tensor, lr_patch: int,
                scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut each sample's training pair: LR ``[y:y+p, x:x+p]`` and HR ``[s y:s (y+p), s x:s (x+p)]`` for its
    corner ``(y, x)`` (``corners``: (B, 2) on the LR grid), as Real-ESRNet's ``paired_random_crop``."""
    ys, xs = corners[:, 0].tolist(), corners[:, 1].tolist()
    p, s = lr_patch, scale
    lr = torch.stack([lr[i, :, y:y + p, x:x + p] for i, (y, x) in enumerate(zip(ys, xs))])
    hr = torch.stack([hr[i, :, s * y:s * (y + p), s * x:s * (x + p)] for i, (y, x) in enumerate(zip(ys, xs))])
    return lr, hr


def _inputs(batch: dict, cfg: Config, step: int, host: torch.Generator, devgen: torch.Generator,
            device: torch.device, fmt, pool: Optional[PairPool] = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(LR input, HR target, ECO alpha) of one step, from the uint8 batch, everything on the device.

    ``pool``: the training-pair pool (``degrade.queue``); it draws its shuffle from ``host``."""
    flags = batch["flags"]
    hr = to_unit_float(dihedral(nchw(batch["hr"]), flags))
    alpha = math.nan
    if cfg.degrade.enabled:
        from srprep.ops.degrade import apply_batch, usm_sharp_torch

        params = batch["params"]
        lr = apply_batch(hr, params, noise=cfg.degrade.noise)
        sharpen = cfg.degrade.sharpen_target
        if sharpen if sharpen is not None else params[0].gt_usm:
            hr = usm_sharp_torch(hr)  # Real-ESRGAN's L1 target is the sharpened GT it degraded
        if "crop" in batch:  # Real-ESRGAN: the pair is cut from the degraded crop_pad GT, then pooled
            lr, hr = paired_crop(lr, hr, batch["crop"], cfg.data.patch // cfg.model.scale, cfg.model.scale)
        if pool is not None:
            lr, hr = pool(lr, hr, host)
    else:
        lr = to_unit_float(dihedral(nchw(batch["lr"]), flags))
    if cfg.eco.enabled:
        alpha = eco_alpha(step, cfg.eco.iters or cfg.train.iters, cfg.eco.schedule, cfg.eco.shift)
        lr = eco_mix(lr, to_unit_float(dihedral(nchw(batch["lr_c"]), flags)), alpha)
        hr = eco_mix(hr, to_unit_float(dihedral(nchw(batch["hr_c"]), flags)), alpha)
    aug = draw_batch_augment(cfg.augment, hr.shape[0], host, devgen, device)
    if aug.active:
        lr, hr = apply_batch_augment(lr, aug), apply_batch_augment(hr, aug)
    return lr.contiguous(memory_format=fmt), hr.contiguous(memory_format=fmt), alpha


def format_eta(seconds: float) -> str:
    """``"1h02m"``, ``"3m05s"``, ``"42s"``; ``"?"`` when unknown (training time only: validation adds to it).

    >>> format_eta(3725), format_eta(185), format_eta(42.4), format_eta(float("inf"))
    ('1h02m', '3m05s', '42s', '?')
    """
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _save_state(run_dir: Path, step: int, model, ema, optimizer, schedule, last_loss, best, cfg, info,
                pool: Optional[PairPool], logged: dict) -> Path:
    path = ckpt.save_state(ckpt.checkpoint_path(run_dir, step), {
        "step": step, "model": model.state_dict(), "ema": ema.state_dict() if ema else None,
        "pool": pool.state_dict() if pool is not None else None,
        "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "last_loss": last_loss.cpu(),
        "best_psnr": best[0], "best_step": best[1], "rng": ckpt.rng_state(), "config": config_to_dict(cfg),
        # the data stream and the per-step generators are functions of (seed, step, rank): this is their state
        "sampler": {"next_step": step, "batch": cfg.data.batch, "world": info.world, "seed": cfg.train.seed},
        # the sums behind the next train.csv row, so a resumed run writes the row an uninterrupted one would
        "log": {"loss_sum": logged["loss_sum"].cpu(), "skipped": logged["skipped"].cpu(), "since": logged["since"]}})
    ckpt.prune_checkpoints(run_dir, cfg.train.keep_ckpts)
    return path


def train(cfg: Config, run_dir: str | Path, *, resume: Optional[str] = None, stop_at: Optional[int] = None,
          device: Optional[str] = None, trust_checkpoint: bool = False) -> TrainResult:
    """Train ``cfg.model`` as configured, writing everything under ``run_dir``.

    Args:
        cfg: a checked :class:`~srprep.train.config.Config`.
        run_dir: output folder (config.yaml, logs, PNGs, tb/, checkpoints/, best.pt, last.pt).
        resume: ``"auto"`` (latest checkpoint in ``run_dir``, or a fresh start if none) or a checkpoint path.
        stop_at: stop after this many steps (a checkpoint is written), as an interruption would.
        device: overrides ``cfg.train.device``.
        trust_checkpoint: let ``model.pretrained`` be a checkpoint that pickles Python objects (runs its code).

    Raises:
        SrprepError: bad data or options (see :func:`srprep.train.data.build_dataset`), a run folder that
        already has checkpoints when not resuming, a checkpoint of another network, a ``model.pretrained``
        that cannot be read or does not fit (see :mod:`srprep.train.finetune`).
    """
    run_dir = Path(run_dir)
    info, dev = init_distributed(device or cfg.train.device)
    say = log.info if info.is_main else log.debug  # one voice per run, not one per process
    if dev.type == "cpu" and cfg.train.cpu_threads:
        torch.set_num_threads(cfg.train.cpu_threads)
    state = None
    if resume:
        path = ckpt.latest_checkpoint(run_dir) if resume == "auto" else Path(resume)
        if path is not None:
            state = ckpt.load_state(path)
        else:
            say("no checkpoint in %s: starting from step 0", run_dir)
    elif ckpt.list_checkpoints(run_dir):
        raise SrprepError(f"{run_dir}: already holds checkpoints; continue with --resume auto, or choose another "
                          f"--run-dir")
    # model.pretrained: the network's name, scale and options may come from the file; its weights only matter
    # for a fresh start (a resumed run has its own)
    cfg, source = resolve_pretrained(cfg, trust_checkpoint=trust_checkpoint, need_weights=state is None)
    if state:
        if state["config"]["model"] != config_to_dict(cfg)["model"]:
            raise SrprepError(f"{path}: the checkpoint is of model {state['config']['model']}, the config asks "
                              f"for {config_to_dict(cfg)['model']}")
        say("resuming from %s (step %d)", path, state["step"])
    start = int(state["step"]) if state else 0
    saved = state["sampler"] if state else None
    if saved and (saved["world"], saved["batch"], saved["seed"]) != (info.world, cfg.data.batch, cfg.train.seed):
        log.warning("resuming with %d x %d patches per step (seed %d) instead of %d x %d (seed %d): the data "
                    "stream differs from an uninterrupted run", info.world, cfg.data.batch, cfg.train.seed,
                    saved["world"], saved["batch"], saved["seed"])

    dataset = build_dataset(cfg, holdout=validation_keys(cfg) or ())
    if info.is_main:
        check_readable(dataset, run_dir, workers=max(1, cfg.data.workers))
    validator = Validator(cfg) if info.is_main and cfg.val.every > 0 else None
    torch.manual_seed(cfg.train.seed)  # the same initial weights for the same seed
    # srprep draws nothing from Python's and numpy's global generators, but their states are saved in each
    # checkpoint: seeded, a run's checkpoints hold the same values however often it was interrupted
    random.seed(cfg.train.seed)
    np.random.seed(cfg.train.seed % 2**32)
    model = create_model(cfg.model.name, scale=cfg.model.scale, **cfg.model.kwargs)
    init = load_matching(model, source, strict=cfg.model.strict) if source is not None else None
    model = model.to(dev)
    channels_last = cfg.train.channels_last if cfg.train.channels_last is not None else dev.type == "cuda"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    ema = ModelEma(model, cfg.train.ema, cfg.train.ema_start) if cfg.train.ema > 0 else None
    optimizer = build_optimizer(model.parameters(), cfg.optim, dev)
    schedule = LrSchedule(optimizer, cfg.schedule, cfg.train.iters)
    last_loss = torch.full((), math.inf, device=dev)  # the skip rule compares with the last accepted loss
    best = (math.nan, 0)
    pool = PairPool(cfg.degrade.queue) if cfg.degrade.enabled and cfg.degrade.queue else None
    if state:
        model.load_state_dict(state["model"])
        if ema is not None and state["ema"] is not None:
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        last_loss = state["last_loss"].to(dev)
        best = (float(state["best_psnr"]), int(state["best_step"]))
        ckpt.set_rng_state(state["rng"])
        if pool is not None and state.get("pool") is not None:
            if info.is_main:
                pool.load_state_dict(state["pool"], dev)
            else:  # the checkpoint holds the main process's pool; this one refills, as at the start
                log.warning("process %d: the training-pair pool starts empty again (only process 0's pool is "
                            "in the checkpoint)", info.rank)
    net: nn.Module = torch.compile(model) if cfg.train.compile else model
    if info.enabled:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    loss_fn = build_loss(cfg.loss)
    bf16 = cfg.train.precision == "bf16" or (cfg.train.precision == "auto" and dev.type == "cuda")
    params = [p for p in model.parameters() if p.requires_grad]

    runlog = tb = None
    if info.is_main:
        ckpt.remove_torn(run_dir)
        save_config(cfg, run_dir / "config.yaml")
        runlog = RunLog(run_dir, resume_step=start if state else None)
        tb = open_tensorboard(run_dir, resume_step=start if state else None) if cfg.train.tensorboard else None
        if cfg.eco.enabled:
            runlog.write_image("eco_schedule.png", eco_schedule_plot(cfg.eco.shift))
    loader = make_loader(dataset, batch=cfg.data.batch, start_step=start, rank=info.rank, world=info.world,
                         workers=cfg.data.workers, pin_memory=dev.type == "cuda")
    prefetch = Prefetcher(loader, dev)
    host_gen, dev_gen = torch.Generator(), torch.Generator(device=dev)
    loss_sum = torch.zeros((), device=dev)
    term_sum = torch.zeros(len(loss_fn.names), device=dev)
    skipped = torch.zeros((), device=dev)
    timed = [0, 0.0]  # steps and seconds counted for the throughput (after the first log interval)
    last_psnr = math.nan
    bicubic = validator.bicubic_psnr if validator else math.nan
    state_path = None
    done = start
    tick, since = time.perf_counter(), start
    if state and "log" in state:
        loss_sum += state["log"]["loss_sum"].to(dev)
        skipped += state["log"]["skipped"].to(dev)
        since = int(state["log"]["since"])
    total = cfg.train.iters if stop_at is None else min(cfg.train.iters, stop_at)
    say("training %s x%d for %d steps (from %d) on %s%s, %d patch(es) of %d per step%s", cfg.model.name,
        cfg.model.scale, cfg.train.iters, start, dev, f" x {info.world} processes" if info.enabled else "",
        cfg.data.batch, cfg.data.patch, ", bf16" if bf16 else "")
    try:
        for step in range(start, total):
            seeds = step_seeds(cfg.train.seed, step, info.rank)
            torch.manual_seed(seeds[0])  # dropout and anything else on the global RNG
            host_gen.manual_seed(seeds[1])
            dev_gen.manual_seed(seeds[2])
            lr, hr, alpha = _inputs(prefetch.next(), cfg, step, host_gen, dev_gen, dev, fmt, pool)
            rate = schedule.apply(step)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                sr = net(lr)
            loss, terms = loss_fn.terms(sr, hr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(params, cfg.train.grad_clip_mode, cfg.train.grad_clip)
            if cfg.train.skip_threshold > 0:
                value = all_reduce_mean(loss.detach().float(), info)  # every process must decide alike
                skip = value > last_loss * cfg.train.skip_threshold
                last_loss = torch.where(skip, last_loss, value)
                optimizer.found_inf = skip.float()
                skipped += skip
            optimizer.step()
            if ema is not None:
                ema.update(model, step)
            loss_sum += loss.detach()
            term_sum += terms.detach()
            done = step + 1

            if done % cfg.train.log_every == 0 or done == cfg.train.iters:
                # the one host sync, every log_every steps (the mean over processes under torchrun); not at
                # a stop_at step: the sums go into the checkpoint, so the resumed run writes the same rows
                mean_loss = float(all_reduce_mean(loss_sum, info)) / (done - since)
                mean_terms = (all_reduce_mean(term_sum, info) / (done - since)).tolist()  # every process joins
                seconds = time.perf_counter() - tick
                if since > start or done == total:
                    timed[0] += done - since
                    timed[1] += seconds
                if runlog is not None:
                    runlog.train_row(step=done, loss=mean_loss, lr=rate, eco_alpha=alpha, skipped=int(skipped),
                                     steps_per_s=(done - since) / max(seconds, 1e-9), elapsed_s=seconds)
                if tb is not None:
                    tb.scalars(done, {"train/loss": mean_loss, "train/lr": rate, "train/eco_alpha": alpha,
                                      "train/steps_per_s": (done - since) / max(seconds, 1e-9),
                                      **{f"train/loss/{n}": v for n, v in zip(loss_fn.names, mean_terms)}})
                speed = timed[0] / timed[1] if timed[1] > 0 else (done - since) / max(seconds, 1e-9)
                say("step %d/%d  loss %.5f  lr %.3g%s  %.2f steps/s  ETA %s", done, cfg.train.iters, mean_loss, rate,
                    "" if math.isnan(alpha) else f"  eco alpha {alpha:.3f}", (done - since) / max(seconds, 1e-9),
                    format_eta((total - done) / speed if speed > 0 else math.inf))
                loss_sum.zero_()
                term_sum.zero_()
                skipped.zero_()
                since = done
            if cfg.val.every > 0 and (done % cfg.val.every == 0 or done == cfg.train.iters) and validator is None:
                barrier(info)  # the other processes wait while the main one validates
            elif cfg.val.every > 0 and (done % cfg.val.every == 0 or done == cfg.train.iters):
                shown = ema.module if ema is not None and cfg.val.use_ema else model
                res = validator.run(shown, dev)
                last_psnr = res["psnr"]
                if math.isnan(best[0]) or last_psnr > best[0]:
                    best = (last_psnr, done)
                    save_checkpoint(shown, run_dir / "best.pt", cfg.model.name, cfg.model.scale,
                                    config_to_dict(cfg))
                runlog.val_row(step=done, psnr=res["psnr"], ssim=res["ssim"], bicubic_psnr=validator.bicubic_psnr,
                               bicubic_ssim=validator.bicubic_ssim, best_psnr=best[0])
                if res["sheet"] is not None:
                    runlog.write_image("val_crops.png", res["sheet"])
                if tb is not None:
                    tb.scalars(done, {"val/psnr": res["psnr"], "val/ssim": res["ssim"]})
                    if res["sheet"] is not None:
                        tb.image("val/crops", res["sheet"], done)
                runlog.write_curves()
                log.info("validation at step %d: PSNR %.3f dB, SSIM %.4f (bicubic %.3f dB; best %.3f at %d)", done,
                         res["psnr"], res["ssim"], validator.bicubic_psnr, best[0], best[1])
                barrier(info)
            if done % cfg.train.ckpt_every == 0 or done == total:
                if info.is_main:
                    state_path = _save_state(run_dir, done, model, ema, optimizer, schedule, last_loss, best, cfg,
                                             info, pool, {"loss_sum": loss_sum, "skipped": skipped, "since": since})
                barrier(info)
            if done % cfg.train.log_every == 0:
                tick = time.perf_counter()  # validation and checkpoints are not training time
    except KeyboardInterrupt:
        if info.is_main and done > start:
            path = _save_state(run_dir, done, model, ema, optimizer, schedule, last_loss, best, cfg, info, pool,
                               {"loss_sum": loss_sum, "skipped": skipped, "since": since})
            log.warning("interrupted at step %d; state saved to %s: continue with --resume auto", done, path)
        raise
    finally:
        if tb is not None:
            tb.close()
        shutdown(info)

    last_path = None
    if info.is_main:
        shown = ema.module if ema is not None else model
        last_path = save_checkpoint(shown, run_dir / "last.pt", cfg.model.name, cfg.model.scale, config_to_dict(cfg))
    best_path = run_dir / "best.pt"
    return TrainResult(run_dir=run_dir, steps=done, best_psnr=best[0], best_step=best[1], bicubic_psnr=bicubic,
                       last_psnr=last_psnr, best_checkpoint=best_path if best_path.is_file() else None,
                       last_checkpoint=last_path, state_checkpoint=state_path,
                       steps_per_s=timed[0] / timed[1] if timed[1] > 0 else math.nan,
                       stopped_early=done < cfg.train.iters, main_process=info.is_main, config=cfg, init=init)
