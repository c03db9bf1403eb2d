"""What a run writes as it goes: CSV logs, optional TensorBoard events, PNG curves and validation crops.

``RUN/train.csv``  step, loss, lr, eco_alpha, skipped (steps skipped since the last row), steps_per_s, elapsed_s
``RUN/val.csv``    step, psnr, ssim, bicubic_psnr, bicubic_ssim, best_psnr
``RUN/curves.png`` training loss (log scale) and validation PSNR against the step, bicubic as a reference line
``RUN/val_crops.png`` bicubic | SR | HR crops of the first validation images at the latest validation
``RUN/tb/``        TensorBoard events, only when the ``tensorboard`` package is importable (it is not a
                   dependency of srprep: its wheel requires Pillow, which would replace pillow-simd)

On resume, rows after the checkpoint's step are dropped so the logs read as one uninterrupted run: the file
is rewritten atomically (a temporary file, then a rename) and its kept lines are copied as they are, never
parsed and formatted again, so a resumed run's CSV has the bytes an uninterrupted run's has (the time
columns ``steps_per_s`` and ``elapsed_s`` aside); a line torn by a kill is dropped with the rows after it.
"""
from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Optional

import numpy as np

from srprep.errors import write_error
from srprep.io.images import write_image
from srprep.ops.plot import line_plot, stack_images

log = logging.getLogger(__name__)

__all__ = ["RunLog", "TRAIN_COLUMNS", "VAL_COLUMNS", "read_csv"]

TRAIN_COLUMNS = ("step", "loss", "lr", "eco_alpha", "skipped", "steps_per_s", "elapsed_s")
VAL_COLUMNS = ("step", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "best_psnr")


def read_csv(path: str | os.PathLike) -> list[dict]:
    """Rows of a log file as dicts of floats ("step" as int); [] if the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = []
        for row in csv.DictReader(fh):
            rows.append({k: (int(float(v)) if k == "step" else float(v) if v not in ("", None) else math.nan)
                         for k, v in row.items()})
        return rows


def _truncate(path: Path, columns: tuple, after_step: int) -> None:
    """Keep the header and the complete rows up to ``after_step`` as they are; replace the file atomically."""
    header = ",".join(columns) + "\r\n"
    kept = [header]
    with open(path, newline="", encoding="utf-8") as fh:
        lines = fh.readlines()
    for line in lines[1:]:
        step = line.split(",", 1)[0]
        if not line.endswith("\n") or not step.isdigit() or int(step) > after_step:
            break  # torn by a kill, or written after the checkpoint we resume from
        kept.append(line)
    text = "".join(kept)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from exc


class RunLog:
    """Appends rows to the run's CSV files (and TensorBoard), draws the PNGs. Only the main process logs."""

    def __init__(self, run_dir: str | os.PathLike, *, resume_step: Optional[int] = None, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.train_path = self.run_dir / "train.csv"
        self.val_path = self.run_dir / "val.csv"
        for path, columns in ((self.train_path, TRAIN_COLUMNS), (self.val_path, VAL_COLUMNS)):
            if resume_step is not None and path.is_file():
                _truncate(path, columns, resume_step)
            elif not path.is_file() or resume_step is None:
                with open(path, "w", newline="", encoding="utf-8") as fh:
                    csv.writer(fh).writerow(columns)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the optional tensorboard package

                self.tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=resume_step)
            except ImportError:
                log.debug("tensorboard is not installed: CSV logs only")

    def _append(self, path: Path, columns: tuple, values: dict) -> None:
        try:
            with open(path, "a", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow([_fmt(values.get(c, "")) for c in columns])
        except OSError as exc:
            raise write_error(path, exc) from exc

    def train_row(self, **values) -> None:
        self._append(self.train_path, TRAIN_COLUMNS, values)
        if self.tb is not None:
            for k in ("loss", "lr", "eco_alpha", "steps_per_s"):
                if k in values and values[k] != "":
                    self.tb.add_scalar(f"train/{k}", values[k], values["step"])

    def val_row(self, **values) -> None:
        self._append(self.val_path, VAL_COLUMNS, values)
        if self.tb is not None:
            for k in ("psnr", "ssim"):
                self.tb.add_scalar(f"val/{k}", values[k], values["step"])

    def write_curves(self) -> Path:
        """Draw ``curves.png`` from the CSV files (loss on a log scale; PSNR with the bicubic line)."""
        train, val = read_csv(self.train_path), read_csv(self.val_path)
        plots = []
        if train:
            steps = [r["step"] for r in train]
            plots.append(line_plot({"loss": (steps, [r["loss"] for r in train])}, title="training loss",
                                   xlabel="step", log_y=True))
        if val:
            steps = [r["step"] for r in val]
            ref = {"bicubic": val[-1]["bicubic_psnr"]} if math.isfinite(val[-1]["bicubic_psnr"]) else {}
            plots.append(line_plot({"PSNR (Y)": (steps, [r["psnr"] for r in val])}, title="validation PSNR",
                                   xlabel="step", ylabel="dB", hlines=ref))
        path = self.run_dir / "curves.png"
        if plots:
            write_image(path, stack_images(plots, gap=6))
        return path

    def write_image(self, name: str, img: np.ndarray) -> Path:
        path = self.run_dir / name
        write_image(path, img)
        if self.tb is not None and name == "val_crops.png":
            try:
                step = read_csv(self.val_path)[-1]["step"]
                self.tb.add_image("val/crops", img, step, dataformats="HWC")
            except (IndexError, KeyError):
                pass
        return path

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)
