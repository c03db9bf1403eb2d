"""What ``srprep status`` says about a training run: how far it got, its best validation, where it can resume.

A run folder is one that :func:`srprep.train.train` wrote: ``config.yaml`` and ``train.csv`` (see
:mod:`srprep.train.logs`), ``checkpoints/step_*.pt`` and the network files ``best.pt`` / ``last.pt``.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from .logs import read_csv

__all__ = ["RunStatus", "find_runs", "run_status"]


@dataclass
class RunStatus:
    """One training run as found on disk (``math.nan`` / ``None`` where the run has not got there yet)."""

    run_dir: Path
    model: str
    scale: int
    iters: int  # steps the config asks for
    step: int  # last logged step (train.csv)
    best_psnr: float
    best_step: int
    bicubic_psnr: float
    last_checkpoint: Optional[Path]  # newest training-state checkpoint (what --resume auto continues from)
    checkpoint_step: int
    finished: bool  # the run reached its last step and wrote last.pt
    updated: str  # when the newest log or checkpoint was written

    def summary(self) -> str:
        """Two lines: progress and validation; then where it can continue from."""
        state = "finished" if self.finished else "stopped"
        head = f"{self.run_dir}: training {self.model} x{self.scale}, step {self.step} of {self.iters} ({state}, {self.updated})"
        val = (f"best PSNR {self.best_psnr:.3f} dB at step {self.best_step}"
               + (f" (bicubic {self.bicubic_psnr:.3f} dB)" if math.isfinite(self.bicubic_psnr) else "")
               if math.isfinite(self.best_psnr) else "no validation yet")
        if self.last_checkpoint is None:
            ckpt = "no checkpoint yet"
        elif self.finished:
            ckpt = f"last checkpoint {self.last_checkpoint}"
        else:
            ckpt = (f"last checkpoint {self.last_checkpoint} (step {self.checkpoint_step}): continue with "
                    f"srprep train --resume auto --run-dir {self.run_dir}")
        return f"{head}\n  {val}; {ckpt}"


def find_runs(root: str | os.PathLike, max_depth: int = 4) -> list[Path]:
    """Training run folders under ``root`` (including ``root`` itself), sorted."""
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if "train.csv" in filenames and "config.yaml" in filenames:
            found.append(Path(dirpath))
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "checkpoints" and depth < max_depth]
    return sorted(found)


def run_status(run_dir: str | os.PathLike) -> RunStatus:
    """Read a run folder's config, logs and checkpoint names (no checkpoint is loaded)."""
    from .checkpoint import list_checkpoints

    run_dir = Path(run_dir)
    with open(run_dir / "config.yaml", encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh) or {}
    model, train_cfg = cfg.get("model") or {}, cfg.get("train") or {}
    train_rows, val_rows = read_csv(run_dir / "train.csv"), read_csv(run_dir / "val.csv")
    checkpoints = list_checkpoints(run_dir)
    best = max((r for r in val_rows if math.isfinite(r.get("psnr", math.nan))), key=lambda r: r["psnr"], default=None)
    step = max([r["step"] for r in train_rows] + [s for s, _ in checkpoints], default=0)
    iters = int(train_cfg.get("iters") or 0)
    files = [run_dir / "train.csv", run_dir / "val.csv", *(p for _, p in checkpoints)]
    mtime = max((p.stat().st_mtime for p in files if p.is_file()), default=None)
    updated = (_dt.datetime.fromtimestamp(mtime).astimezone().isoformat(timespec="seconds")
               if mtime is not None else "time unknown")
    return RunStatus(
        run_dir=run_dir, model=str(model.get("name", "?")), scale=int(model.get("scale") or 0), iters=iters,
        step=step, best_psnr=best["psnr"] if best else math.nan, best_step=best["step"] if best else 0,
        bicubic_psnr=val_rows[-1].get("bicubic_psnr", math.nan) if val_rows else math.nan,
        last_checkpoint=checkpoints[-1][1] if checkpoints else None,
        checkpoint_step=checkpoints[-1][0] if checkpoints else 0,
        finished=(run_dir / "last.pt").is_file() and step >= iters > 0, updated=updated)
