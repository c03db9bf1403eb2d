"""What a run writes as it goes: CSV logs, PNG curves and validation crops (TensorBoard: :mod:`.tensorboard`).

``RUN/train.log``  the run's log lines (progress with ETA, validation, warnings), with times; appended on resume
``RUN/train.csv``  step, loss, lr, eco_alpha, skipped (steps skipped since the last row), steps_per_s, elapsed_s
``RUN/val.csv``    step, psnr, ssim, bicubic_psnr, bicubic_ssim, best_psnr
``RUN/curves.png`` training loss (log scale) and validation PSNR against the step, bicubic as a reference line
                   (matplotlib when the ``plots`` extra is installed, else a plainer OpenCV drawing)
``RUN/val_crops.png`` bicubic | SR | HR crops of the first validation images at the latest validation
``RUN/tb/``        TensorBoard events (:mod:`.tensorboard`), when the ``tensorboard`` extra is installed

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
from srprep.ops.figures import Panel, line_panels

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
    """Appends rows to the run's CSV files, draws the PNGs. Only the main process logs."""

    def __init__(self, run_dir: str | os.PathLike, *, resume_step: Optional[int] = None):
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
        self._text = _attach_text_log(self.run_dir / "train.log")

    def _append(self, path: Path, columns: tuple, values: dict) -> None:
        try:
            with open(path, "a", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow([_fmt(values.get(c, "")) for c in columns])
        except OSError as exc:
            raise write_error(path, exc) from exc

    def train_row(self, **values) -> None:
        self._append(self.train_path, TRAIN_COLUMNS, values)

    def val_row(self, **values) -> None:
        self._append(self.val_path, VAL_COLUMNS, values)

    def write_curves(self) -> Path:
        """Draw ``curves.png`` from the CSV files (loss on a log scale; PSNR with the bicubic line), with
        matplotlib when installed (:func:`srprep.ops.figures.line_panels`)."""
        train, val = read_csv(self.train_path), read_csv(self.val_path)
        panels = []
        if train:
            steps = [r["step"] for r in train]
            panels.append(Panel({"loss": (steps, [r["loss"] for r in train])}, title="training loss",
                                xlabel="step", ylabel="loss", log_y=True))
        if val:
            steps = [r["step"] for r in val]
            ref = {"bicubic": val[-1]["bicubic_psnr"]} if math.isfinite(val[-1]["bicubic_psnr"]) else {}
            panels.append(Panel({"PSNR (Y)": (steps, [r["psnr"] for r in val])}, title="validation PSNR",
                                xlabel="step", ylabel="dB", hlines=ref))
        path = self.run_dir / "curves.png"
        if panels:
            write_image(path, line_panels(panels))
        return path

    def write_image(self, name: str, img: np.ndarray) -> Path:
        path = self.run_dir / name
        write_image(path, img)
        return path

    def close(self) -> None:
        _detach_text_log(*self._text)


def _attach_text_log(path: Path) -> tuple[logging.Handler, int]:
    """Copy srprep's log records (INFO and up, whatever the console shows) into ``path`` until detached."""
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("srprep")
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)  # the console handler keeps its own level (see srprep.cli)
    logger.addHandler(handler)
    return handler, level


def _detach_text_log(handler: logging.Handler, level: int) -> None:
    logger = logging.getLogger("srprep")
    logger.removeHandler(handler)
    logger.setLevel(level)
    handler.close()


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)
