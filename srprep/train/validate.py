"""Validation during training: whole held-out images, the metrics of ``srprep eval``, and a picture.

Each validation image is super-resolved whole (or tiled) by :func:`srprep.infer.upscale`, quantised to uint8
and scored with :func:`srprep.ops.metrics.psnr` / :func:`~srprep.ops.metrics.ssim` on the BT.601 Y channel
with ``scale`` border pixels cropped: the numbers papers report. The HR is cropped top-left to LR x scale
(the benchmark modcrop). MATLAB-bicubic upsampling of the same LR is scored once as the baseline.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from srprep.errors import SrprepError, StoreError
from srprep.infer import upscale
from srprep.ops.imresize import imresize_matlab
from srprep.ops.metrics import psnr, ssim

from .data import open_field

log = logging.getLogger(__name__)

__all__ = ["ValImage", "Validator", "validation_keys"]


@dataclass
class ValImage:
    key: str
    lr: np.ndarray  # (h, w, 3) uint8
    hr: np.ndarray  # (h*s, w*s, 3) uint8
    bicubic: np.ndarray  # (h*s, w*s, 3) uint8, MATLAB bicubic of lr
    bicubic_psnr: float
    bicubic_ssim: float


def validation_keys(cfg) -> Optional[list[str]]:
    """Keys validated on the training data (to hold out of training), or None for a separate set."""
    if cfg.val.every <= 0 or cfg.val.root is not None:
        return None
    return list(cfg.val.keys or [])


class Validator:
    """Loads the validation pairs once; :meth:`run` scores a network on them.

    Args:
        cfg: the run's :class:`~srprep.train.config.Config`.
    Raises:
        SrprepError: no validation images named, missing fields or keys, LR/HR sizes not x scale.
    """

    def __init__(self, cfg):
        s = cfg.model.scale
        self.scale = s
        self.cfg = cfg.val
        root = cfg.val.root if cfg.val.root is not None else cfg.data.root
        lr_name = cfg.field_name(cfg.val.lr if cfg.val.lr is not None else cfg.data.lr)
        if lr_name is None:
            raise SrprepError("val.lr: name the validation LR field (with degrade.enabled there is no data.lr), "
                              "e.g. a set made with `srprep degrade`")
        if cfg.val.root is None and not cfg.val.keys:
            raise SrprepError("validation needs held-out images: list val.keys (keys of data.root kept out of "
                              "training) or give val.root (a separate set such as Set5); val.every=0 disables it")
        hr_store = open_field(root, cfg.field_name(cfg.val.hr), purpose="validation HR")
        lr_store = open_field(root, lr_name, scale=s, purpose="validation LR")
        keys = list(cfg.val.keys) if cfg.val.keys else list(hr_store.keys())
        have_hr, have_lr = set(hr_store.keys()), set(lr_store.keys())
        missing = [k for k in keys if k not in have_hr or k not in have_lr]
        if missing:
            raise StoreError(f"{root}: validation keys missing in {cfg.val.hr} or {lr_name}: {missing[:5]}")
        self.images: list[ValImage] = []
        for key in keys:
            lr, hr = lr_store.read(key), hr_store.read(key)
            if lr.dtype != np.uint8 or hr.dtype != np.uint8:
                raise StoreError(f"{root}: validation item {key!r} is not 8-bit")
            h, w = lr.shape[0] * s, lr.shape[1] * s
            if not (h <= hr.shape[0] < h + s and w <= hr.shape[1] < w + s):
                raise StoreError(f"{root}: validation item {key!r}: LR {lr.shape[1]}x{lr.shape[0]} and HR "
                                 f"{hr.shape[1]}x{hr.shape[0]} are not x{s} (model.scale)")
            hr = np.ascontiguousarray(hr[:h, :w])
            bic = imresize_matlab(lr, float(s))
            self.images.append(ValImage(key, lr, hr, bic, psnr(bic, hr, border=s), ssim(bic, hr, border=s)))
        self.bicubic_psnr = float(np.mean([im.bicubic_psnr for im in self.images]))
        self.bicubic_ssim = float(np.mean([im.bicubic_ssim for im in self.images]))
        log.info("validation: %d images from %s (bicubic %.3f dB)", len(self.images), root, self.bicubic_psnr)

    def run(self, model: nn.Module, device: torch.device) -> dict:
        """Score ``model``; returns ``{"psnr", "ssim", "images": [{key, psnr, ssim}], "sheet": uint8 image}``."""
        rows, labels, scores = [], [], []
        for i, im in enumerate(self.images):
            sr = upscale(model, im.lr, scale=self.scale, tile=self.cfg.tile, precision=self.cfg.precision,
                         device=device, output="uint8")
            p, q = psnr(sr, im.hr, border=self.scale), ssim(sr, im.hr, border=self.scale)
            scores.append({"key": im.key, "psnr": p, "ssim": q})
            if i < self.cfg.crops:
                box = self._crop_box(im.hr.shape)
                rows.append([im.bicubic[box], sr[box], im.hr[box]])
                labels.append([f"{im.key}: {im.bicubic_psnr:.2f} dB", f"{p:.2f} dB", im.key])
        result = {"psnr": float(np.mean([r["psnr"] for r in scores])),
                  "ssim": float(np.mean([r["ssim"] for r in scores])), "images": scores, "sheet": None}
        if rows:
            try:
                from srprep.ops.sheet import contact_sheet

                result["sheet"] = contact_sheet(rows, labels, titles=["bicubic", "SR (this step)", "HR"])
            except ImportError:  # pragma: no cover - the sheet module ships with srprep
                result["sheet"] = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
        return result

    def _crop_box(self, shape) -> tuple[slice, slice]:
        c = min(self.cfg.crop_size, shape[0], shape[1])
        s = self.scale
        top = (shape[0] - c) // 2 // s * s
        left = (shape[1] - c) // 2 // s * s
        return slice(top, top + c), slice(left, left + c)
