"""``srprep upscale``: run a pretrained SR network over a store of LR images, as a cached, resumable step.

Layout: ``OUT/<key>.png``, the keys of the input store (an LR folder in the DIV2K/EDSR naming ``0001x2.png``
gives the key ``0001``). Pixels are :func:`srprep.infer.upscale` with ``output="uint8"``. The network runs
through :mod:`srprep.stages.network` (model pinned by its SHA-256 and loaded once per process and device;
per item on the CPU, pipelined on accelerators), which ``srprep centroids`` shares.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import StoreError
from ..io.stores import FolderWriter, open_store, store_location
from ..runner import Item, ItemResult, Step, StepReport
from .network import (InferOptions, ModelSpec, device_kind, item_source, read_item,
                      resolve_devices, run_model_step)

__all__ = ["InferOptions", "upscale_store"]


def _write_sr(payload, sr: np.ndarray, *, out: str, png_level: int) -> ItemResult:
    key = payload[0]
    name = FolderWriter(out, png_level=png_level).write(key, sr)
    return ItemResult(outputs=[name], info={"size": list(sr.shape[:2])})


def upscale_store(src: str | os.PathLike, dst: str | os.PathLike, model: str | os.PathLike, *,
                  arch: str | None = None, scale: int | None = None, opts: InferOptions = InferOptions(),
                  device: str | Sequence[str] = "cpu", trust_checkpoint: bool = False,
                  model_kwargs: dict | None = None, png_level: int = 1,
                  batch: int = 1, pipelined: bool | None = None, jobs: int | None = None, force: bool = False,
                  dry_run: bool = False, progress: bool = True) -> StepReport:
    """Super-resolve every image of ``src`` with a pretrained network into ``dst/<key>.png``.

    Each output equals ``srprep.infer.upscale(model, lr, scale=s, output="uint8", **opts)``. The step's
    parameters hold the model file's SHA-256 and every option, so changing either redoes it; a killed run
    resumes per image.

    Args:
        src: LR images: a folder (``0001x2.png`` or ``0001.png``), an LMDB or ``FILE.h5/FIELD``.
        dst: output folder (owned by this step; cache state in ``dst/.srprep``).
        model: checkpoint file (any format :func:`srprep.models.load_pretrained` reads).
        arch, scale: override what is inferred from the checkpoint (a scale the weights are not for is
            an error).
        opts: tiling, ensembles, precision.
        device: ``"cpu"`` (``jobs`` worker processes, one model each), ``"cuda"`` (every visible GPU,
            pipelined, this process plus one per extra GPU), ``"cuda:1"``, or a comma-separated list.
        trust_checkpoint: allow checkpoints that pickle Python objects (runs code from the file).
        model_kwargs: network constructor arguments the weights do not record (e.g. EDSR's ``res_scale``).
        png_level: PNG compression level (pixels are the same at every level).
        batch: images of equal size run through the network together (pipelined mode).
        pipelined: force the pipelined mode on or off (default: on for accelerators).
        jobs, force, dry_run, progress: see :func:`srprep.runner.run_step`.

    Raises:
        SrprepError: the checkpoint does not load (names the missing keys), a scale mismatch, unreadable
            input (names the file), or an item failed (names the key).
    """
    devices = resolve_devices(device)
    spec, _, _ = ModelSpec.load(model, arch, scale, trust_checkpoint=trust_checkpoint, model_kwargs=model_kwargs)
    src, dst = Path(src), Path(dst)
    store = open_store(src, scale=spec.scale)
    if len(store.keys()) == 0:
        raise StoreError(f"{src}: no images")
    items = [Item(k, store.item_fingerprint(k), (k, item_source(store, k))) for k in store.keys()]
    params = {"model": spec.params(), **opts.params(), "device": device_kind(devices), "png_level": png_level}
    step = Step("upscale", dst, params, {"src": str(src.resolve())}, reads=(store_location(store) or src,))
    finish = functools.partial(_write_sr, out=str(dst), png_level=png_level)
    return run_model_step(step, items, spec=spec, opts=opts, devices=devices, read=read_item, finish=finish,
                          output="uint8", pipelined=pipelined, batch=batch, jobs=jobs, force=force, dry_run=dry_run,
                          progress=progress)
