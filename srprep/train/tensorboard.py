"""TensorBoard event files beside the CSV logs and PNG curves (``RUN/tb/``), when the package is installed.

TensorBoard is an optional extra (``tensorboard`` in setup.cfg; see the README); without it, or with
``train.tensorboard: false``, :func:`open_tensorboard` returns None and the run says once that it is off.

Tags: ``train/loss`` (the weighted sum), ``train/loss/<term>`` (each weighted term: ``l1``, ``ssim`` ...),
``train/lr``, ``train/eco_alpha`` (ECO runs), ``train/steps_per_s``; ``val/psnr``, ``val/ssim`` (Y, border =
scale, as ``srprep eval``); ``val/crops``: bicubic | SR | HR crops of the first validation images.
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["TensorBoardLog", "open_tensorboard", "TB_DIR"]

TB_DIR = "tb"


class TensorBoardLog:
    """A thin writer: scalars (NaN and None are left out) and HWC uint8 images, by step."""

    def __init__(self, writer) -> None:
        self.writer = writer

    def scalars(self, step: int, values: Mapping[str, Optional[float]]) -> None:
        """Write ``{tag: value}`` at ``step``; values that are None or NaN (e.g. no ECO) are skipped."""
        for tag, value in values.items():
            if value is not None and not math.isnan(float(value)):
                self.writer.add_scalar(tag, float(value), step)

    def image(self, tag: str, img: np.ndarray, step: int) -> None:
        """``img``: (H, W, 3) uint8 RGB."""
        self.writer.add_image(tag, img, step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


def open_tensorboard(run_dir: str | os.PathLike, *, resume_step: Optional[int] = None) -> Optional[TensorBoardLog]:
    """A writer on ``run_dir/tb`` (events after ``resume_step`` dropped), or None if TensorBoard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # needs the optional tensorboard package
    except ImportError:
        log.info("TensorBoard logging is off: the tensorboard package is not installed (the 'tensorboard' extra, "
                 "see the README); CSV logs and PNG curves only")
        return None
    return TensorBoardLog(SummaryWriter(str(Path(run_dir) / TB_DIR), purge_step=resume_step))
