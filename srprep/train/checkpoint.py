"""Training-state checkpoints that resume exactly, and finding the latest one.

``RUN/checkpoints/step_0001000.pt`` holds everything a continuation needs: network and EMA weights,
optimiser and schedule state, the step (which is also the sampler position: the data stream is a function of
the step, see :mod:`srprep.train.data`; recorded under ``sampler`` with the batch, process count and seed it
depends on), the skip rule's last accepted loss, the training-pair pool of Real-ESRGAN's procedure
(``degrade.queue``; the main process's), the global RNG states (torch, CUDA, numpy, python) and the
resolved config. The explicit generators of the augmentations (and the global torch RNG, for dropout) are
re-seeded every step from ``(seed, step, rank)``, so the step number is their state. Values are tensors and
plain Python types only, so the file is read with ``torch.load(weights_only=True)``: loading a checkpoint
cannot run code.

The network alone, in the format :func:`srprep.models.load_pretrained` reads (for ``srprep eval`` and
inference), is written separately as ``RUN/best.pt`` and ``RUN/last.pt`` (:func:`srprep.models.save_checkpoint`).
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from srprep.errors import SrprepError
from srprep.models.pretrained import save_torch_atomic

__all__ = ["CHECKPOINT_DIR", "checkpoint_path", "list_checkpoints", "latest_checkpoint", "save_state",
           "load_state", "rng_state", "set_rng_state", "prune_checkpoints", "remove_torn"]

CHECKPOINT_DIR = "checkpoints"
FORMAT = "srprep-train-state"
_NAME = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:07d}.pt"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of the training-state checkpoints of a run, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike) -> Optional[Path]:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


_TORN = re.compile(r"^(.+\.pt\..+\.tmp|\..+\.tmp\d*)$")  # a checkpoint's, an image's or a CSV log's temporary


def remove_torn(run_dir: str | os.PathLike) -> None:
    """Delete the temporary files of writes a kill interrupted in a run folder (checkpoints, images, logs)."""
    run_dir = Path(run_dir)
    for folder in (run_dir, run_dir / CHECKPOINT_DIR):
        if folder.is_dir():
            for p in folder.iterdir():
                if _TORN.match(p.name) and p.is_file() and not p.is_symlink():
                    p.unlink(missing_ok=True)


def prune_checkpoints(run_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the newest ``keep`` training-state checkpoints."""
    for _, path in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        path.unlink(missing_ok=True)


def rng_state() -> dict:
    """The global RNG states as tensors and plain lists (weights-only loadable)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]),
                   "gauss": py_state[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write a training-state dict atomically (temporary file, then rename)."""
    return save_torch_atomic(path, {"format": FORMAT, **state})


def load_state(path: str | os.PathLike) -> dict:
    """Read a training-state checkpoint (weights only; tensors land on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise SrprepError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign files raise many types
        raise SrprepError(f"{path}: cannot read the training checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SrprepError(f"{path}: not an srprep training checkpoint (for weights only, use it as a "
                          f"pretrained model instead)")
    return state
