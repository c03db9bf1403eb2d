"""``srprep eval``: PSNR/SSIM of a pretrained network on benchmark datasets, as the SR papers report them.

This module finds the pairs of a dataset folder and runs the measurement; the protocols themselves live in
:mod:`srprep.evaluate` (``edsr``, the default: the SR output rounded to uint8, PSNR and SSIM on the Y channel
of MATLAB's BT.601 ``rgb2ycbcr`` in float64, ``scale`` pixels cropped from each border; ``carn``; ``fsrcnn``).
Every image gets PSNR_Y, SSIM_Y and RGB PSNR/SSIM; ``y_only`` only chooses which pair the table and the
means headline.

Grey images are measured as the reference scripts (EDSR-PyTorch, BasicSR, FSRCNN-pytorch) measure them: a
1-channel file is read as R=G=B, the network sees three equal channels and Y is taken of the RGB result,
i.e. ``Y = 16 + 219/255 * v`` for the grey HR. Such images (and RGB files with R=G=B) are named in the
table; MATLAB scripts that use a 1-channel image's own values as its Y report about
20 log10(255/219) = 1.32 dB less on them.

Dataset layouts recognised in ``DATA`` (for scale ``s``), first match wins:

===================  ===========================  ==============================  ====================
layout               HR                           LR                              HR used
===================  ===========================  ==============================  ====================
EDSR benchmark       ``HR/<name>.png``            ``LR_bicubic/X{s}/<name>x{s}``  cropped to LR x s
BasicSR              ``GTmod12/<name>.png``       ``LRbicx{s}/<name>.png``        cropped to LR x s
srprep downsample    ``HR/<key>.png``             ``X{s}/<key>x{s}.png``          cropped to LR x s
HR only              ``HR/``, ``GTmod12/`` or     made: ``imresize_matlab(        ``modcrop(HR, s)``
                     ``DATA`` itself              modcrop(HR, s), 1/s)``
===================  ===========================  ==============================  ====================

LR images are made (``make_lr=True``, or when the dataset has no LR at all) with srprep's MATLAB-exact
bicubic in the chosen convention: ``uint8`` (EDSR/RCAN benchmark LR, rounded after each pass) or
``im2double`` (BasicSR's LRbicx, one rounding at the end). A dataset that has LR folders, but none for
``s``, is an error rather than a silent switch to made LR.

Not a cached step: a measurement is always taken afresh; it is deterministic (same numbers every run on the
same machine and device).
"""
from __future__ import annotations

import csv
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from ..errors import SrprepError, StoreError
from ..evaluate import PROTOCOLS, benchmark_pairs, pil_lr, score_image, summarize
from ..io import images
from ..ops.grid import modcrop
from ..ops.imresize import imresize_matlab, to_uint8
from .network import InferOptions, ModelSpec, resolve_devices

__all__ = ["LR_CONVENTIONS", "PairSource", "DatasetResult", "EvalReport", "find_pairs", "make_lr", "check_lr_files",
           "evaluate_dataset", "evaluate_datasets"]

log = logging.getLogger(__name__)

LR_CONVENTIONS = ("uint8", "im2double")
_HR_DIRS = ("HR", "GTmod12", "GT")


@dataclass(frozen=True)
class PairSource:
    """Where a dataset's pairs come from: the HR folder, and the LR folder or how the LR is made."""

    name: str
    path: Path
    scale: int
    hr_dir: Path
    lr_dir: Optional[Path] = None  # None: LR made from modcrop(HR, s)
    convention: str = "uint8"  # of made LR: uint8 | im2double (MATLAB bicubic) | pil (the fsrcnn protocol)

    def describe(self) -> str:
        if self.lr_dir is None and self.convention == "pil":
            return (f"LR made by plain Pillow bicubic from the HR resized to a multiple of {self.scale} "
                    "(FSRCNN-pytorch's protocol)")
        if self.lr_dir is None:
            return f"LR made by MATLAB bicubic ({self.convention} convention) from modcrop(HR, {self.scale})"
        return f"LR from {self.lr_dir}"


def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in images.IMAGE_EXTENSIONS and not p.name.startswith(".")
                                   for p in folder.iterdir() if p.is_file())


def find_pairs(data: str | os.PathLike, scale: int, *, make_lr: bool = False,
               convention: str = "uint8") -> PairSource:
    """Recognise the layout of a dataset folder (see the module table) for ``scale``.

    Raises:
        StoreError: no such folder, no HR images, or LR folders that lack this scale.
    """
    data = Path(data)
    if convention not in LR_CONVENTIONS + ("pil",):
        raise SrprepError(f"LR convention must be one of {', '.join(LR_CONVENTIONS)}, not {convention!r}")
    if not data.is_dir():
        raise StoreError(f"{data}: no such dataset folder")
    hr_dir = next((data / d for d in _HR_DIRS if _has_images(data / d)), data if _has_images(data) else None)
    if hr_dir is None:
        raise StoreError(f"{data}: no HR images (looked for {', '.join(_HR_DIRS)}/ and images in {data} itself)")
    x = f"X{scale}"
    candidates = [data / "LR_bicubic" / x, data / f"LRbicx{scale}", data / x]
    lr_dir = next((c for c in candidates if c.is_dir()), None)
    name = data.name
    if convention == "pil":  # the fsrcnn protocol always makes its own LR
        return PairSource(name, data, scale, hr_dir, None, convention)
    if make_lr or lr_dir is None:
        if lr_dir is None and not make_lr:
            have = _lr_scales(data)
            if have:
                raise StoreError(f"{data}: no LR folder for x{scale} (looked for "
                                 f"{', '.join(str(c.relative_to(data)) for c in candidates)}; the dataset has LR "
                                 f"for {', '.join(have)}); pass --make-lr to make x{scale} LR from the HR")
            log.info("%s: no LR images; making x%d LR with MATLAB bicubic (%s convention)", data, scale, convention)
        return PairSource(name, data, scale, hr_dir, None, convention)
    return PairSource(name, data, scale, hr_dir, lr_dir, convention)


def _lr_scales(data: Path) -> list[str]:
    found = set()
    for folder in (data, data / "LR_bicubic"):
        if folder.is_dir():
            for p in folder.iterdir():
                m = re.fullmatch(r"(?:X|LRbicx)(\d+)", p.name)
                if m and p.is_dir():
                    found.add(int(m.group(1)))
    return [f"x{s}" for s in sorted(found)]


def make_lr(hr: np.ndarray, scale: int, convention: str = "uint8") -> tuple[np.ndarray, np.ndarray]:
    """``(lr, hr_used)``: MATLAB ``imresize(modcrop(hr, s), 1/s, 'bicubic')`` in ``convention``, uint8
    (``pil``: :func:`srprep.evaluate.pil_lr`, the FSRCNN authors' LR)."""
    if convention == "pil":
        return pil_lr(hr, scale)
    hr = modcrop(hr, scale)
    if convention == "uint8":
        return imresize_matlab(hr, 1.0 / scale), hr
    return to_uint8(imresize_matlab(hr, 1.0 / scale, im2double=True)), hr


def _hr_files(source: PairSource) -> list[Path]:
    return sorted(q for q in source.hr_dir.iterdir() if q.is_file() and not q.name.startswith(".")
                  and q.suffix.lower() in images.IMAGE_EXTENSIONS)


def check_lr_files(source: PairSource) -> None:
    """Raise before any work when an HR image has no LR file (the names :func:`srprep.evaluate.benchmark_pairs`
    accepts: ``<name>x{s}<ext>``, ``<name>x{s}.png`` or ``<name><ext>``), naming both."""
    if source.lr_dir is None:
        return
    s = source.scale
    for hr in _hr_files(source):
        names = (f"{hr.stem}x{s}{hr.suffix}", f"{hr.stem}x{s}.png", hr.name)
        if not any((source.lr_dir / n).is_file() for n in names):
            raise StoreError(f"{hr}: no LR image {names[0]} in {source.lr_dir}")


def colour_of(path: Path, hr: np.ndarray) -> str:
    """``"grey"`` for a 1-channel file, ``"R=G=B"`` for a colour file whose channels are equal, else ``"rgb"``."""
    if images.is_grey_file(path):
        return "grey"
    return "R=G=B" if np.array_equal(hr[..., 0], hr[..., 1]) and np.array_equal(hr[..., 0], hr[..., 2]) else "rgb"


def iter_pairs(source: PairSource) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, lr, hr)`` uint8 pairs of a dataset, names sorted, HR cropped to LR x s."""
    if source.lr_dir is not None:
        yield from benchmark_pairs(source.hr_dir, source.lr_dir, source.scale)
        return
    for p in _hr_files(source):
        hr = images.read_image(p)
        if hr.shape[0] < 4 * source.scale or hr.shape[1] < 4 * source.scale:
            raise SrprepError(f"{p}: {hr.shape[0]}x{hr.shape[1]} is too small to downscale x{source.scale}")
        lr, hr = make_lr(hr, source.scale, source.convention)
        yield p.stem, lr, hr


@dataclass
class DatasetResult:
    """Per-image and mean scores of one dataset."""

    source: PairSource
    # {"name", "psnr", "ssim" (the headline pair: Y or RGB), "psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "colour"}
    rows: list = field(default_factory=list)
    mean: dict = field(default_factory=dict)  # {"count", "psnr", "ssim", and the means of the four metrics}
    seconds: float = 0.0


@dataclass
class EvalReport:
    """The outcome of :func:`evaluate_datasets`: model, options, one :class:`DatasetResult` per dataset."""

    model: ModelSpec
    options: dict
    datasets: list

    def table(self) -> str:
        """Aligned text: per dataset, a header line, one line per image, the mean, and notes on grey images."""
        metric = "Y" if self.options["y_only"] else "RGB"
        protocol = PROTOCOLS[self.options["protocol"]]
        out = []
        for d in self.datasets:
            src = d.source
            border = _border(self.options["border"], protocol, src.scale)
            out.append(f"{src.name} x{src.scale}: {self.model.describe()}; {src.describe()}; protocol "
                       f"{protocol.name}; {metric}, border {border}")
            mean_label = f"mean ({d.mean['count']})"
            w = max([len("image"), len(mean_label)] + [len(r["name"]) for r in d.rows])
            out.append(f"  {'image':<{w}}  {'PSNR (dB)':>9}  {'SSIM':>6}")
            for r in d.rows + [{"name": mean_label, **d.mean}]:
                out.append(f"  {r['name']:<{w}}  {r['psnr']:>9.4f}  {r['ssim']:>6.4f}")
            greys = [f"{r['name']} ({r['colour']})" for r in d.rows if r["colour"] != "rgb"]
            if greys:
                out.append(f"  note: grey images measured as R=G=B, Y = 16 + 219/255 v (as EDSR-PyTorch, BasicSR): "
                           f"{', '.join(greys)}")
        return "\n".join(out)

    def summary(self) -> str:
        n = sum(len(d.rows) for d in self.datasets)
        t = sum(d.seconds for d in self.datasets)
        means = ", ".join(f"{d.source.name} {d.mean['psnr']:.2f} dB / {d.mean['ssim']:.4f}" for d in self.datasets)
        return f"eval: {len(self.datasets)} dataset(s), {n} images ({t:.1f} s): {means}"

    def to_dict(self) -> dict:
        return {
            "model": {"path": self.model.path, **self.model.params()},
            "options": self.options,
            "datasets": [{"name": d.source.name, "path": str(d.source.path), "scale": d.source.scale,
                          "lr": str(d.source.lr_dir) if d.source.lr_dir else None,
                          "lr_made": d.source.lr_dir is None,
                          "lr_convention": d.source.convention if d.source.lr_dir is None else None,
                          "mean": d.mean, "images": d.rows} for d in self.datasets],
        }

    def write_json(self, path: str | os.PathLike) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=True) + "\n", encoding="utf-8")

    def write_csv(self, path: str | os.PathLike) -> None:
        """One row per image and one ``(mean)`` row per dataset: dataset, scale, image, psnr, ssim (the
        headline pair), psnr_y, ssim_y, psnr_rgb, ssim_rgb, colour (rgb, grey or R=G=B; empty for means)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["dataset", "scale", "image", *_METRICS, "colour"])
            for d in self.datasets:
                for r in d.rows + [{"name": "(mean)", "colour": "", **d.mean}]:
                    w.writerow([d.source.name, d.source.scale, r["name"], *(repr(float(r[k])) for k in _METRICS),
                                r["colour"]])


_METRICS = ("psnr", "ssim", "psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")


def _border(border: Optional[int], protocol, scale: int) -> int:
    if border is not None:
        return border
    return scale if protocol.border == "scale" else 0


def evaluate_dataset(model, source: PairSource, *, y_only: bool = True, border: Optional[int] = None,
                     protocol: str = "edsr", opts: InferOptions = InferOptions(), device: str = "cpu",
                     save_sr: str | os.PathLike | None = None) -> DatasetResult:
    """Upscale every LR of ``source`` and score it against its HR as ``protocol`` says
    (:data:`srprep.evaluate.PROTOCOLS`); ``y_only`` picks the headline pair (Y or RGB) of each row.

    ``save_sr``: write each 8-bit SR image as ``save_sr/<name>.png``.
    """
    t0 = time.perf_counter()
    s = source.scale
    proto = PROTOCOLS[protocol]
    hr_paths = {p.stem: p for p in _hr_files(source)}
    result = DatasetResult(source)
    for name, lr, hr in iter_pairs(source):
        scores, sr = score_image(model, lr, hr, scale=s, protocol=proto, border=border, device=device,
                                 **opts.upscale_kwargs())
        headline = "y" if y_only else "rgb"
        result.rows.append({"name": name, "psnr": scores[f"psnr_{headline}"], "ssim": scores[f"ssim_{headline}"],
                            **scores, "colour": colour_of(hr_paths[name], hr)})
        if save_sr is not None:
            images.write_image(Path(save_sr) / f"{name}.png", sr)
    result.mean = {**summarize(result.rows),
                   **{k: float(np.mean([r[k] for r in result.rows])) if result.rows else float("nan")
                      for k in _METRICS[2:]}}
    result.seconds = time.perf_counter() - t0
    return result


def evaluate_datasets(model: str | os.PathLike, datas: Sequence[str | os.PathLike], *, arch: str | None = None,
                      scale: int | None = None, lr_convention: str = "uint8", make_lr: bool = False,
                      y_only: bool = True, border: Optional[int] = None, protocol: str = "edsr",
                      opts: InferOptions = InferOptions(), device: str = "cpu", trust_checkpoint: bool = False,
                      model_kwargs: dict | None = None, save_sr: str | os.PathLike | None = None) -> EvalReport:
    """Evaluate a checkpoint on several datasets (see the module docstring for layouts and protocol).

    Args:
        model: checkpoint file; arch, scale: override what it says (a scale it is not for is an error).
        datas: dataset folders (e.g. ``benchmark/Set5``).
        lr_convention: convention of LR made from HR (``uint8`` or ``im2double``).
        make_lr: make the LR from HR even where the dataset has LR images.
        y_only: headline Y (True, the papers') or RGB. border: pixels cropped (default: the protocol's).
        protocol: ``edsr``, ``carn`` or ``fsrcnn`` (:data:`srprep.evaluate.PROTOCOLS`); ``fsrcnn`` makes its
            own LR from the HR (Pillow bicubic) and ignores LR folders, ``lr_convention`` and ``make_lr``.
        opts: tiling / ensembles / precision. device: ``cpu``, ``cuda`` (the first visible GPU) or ``cuda:N``.
        model_kwargs: constructor arguments the weights do not record (e.g. EDSR's ``res_scale``).
        save_sr: folder for the SR images, one subfolder per dataset.

    Raises:
        SrprepError: the checkpoint does not load, a scale mismatch, a missing LR folder or image (named).
    """
    if not datas:
        raise SrprepError("no dataset given (--data)")
    if protocol not in PROTOCOLS:
        raise SrprepError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    device = resolve_devices(device)[0]  # one image at a time: one device is all a measurement needs
    spec, net, _ = ModelSpec.load(model, arch, scale, trust_checkpoint=trust_checkpoint, model_kwargs=model_kwargs)
    made = "pil" if PROTOCOLS[protocol].lr == "pil" else lr_convention
    sources = [find_pairs(d, spec.scale, make_lr=make_lr, convention=made) for d in datas]
    for src in sources:
        check_lr_files(src)  # a missing file is reported now, not after the images before it
    seen: dict[str, int] = {}
    results = []
    for src in sources:
        seen[src.name] = seen.get(src.name, 0) + 1
        sub = src.name if seen[src.name] == 1 else f"{src.name}_{seen[src.name]}"
        results.append(evaluate_dataset(net, src, y_only=y_only, border=border, protocol=protocol, opts=opts,
                                        device=device, save_sr=Path(save_sr) / sub if save_sr is not None else None))
        log.debug("%s: %.4f dB", src.name, results[-1].mean["psnr"])
    options = {"protocol": protocol, "y_only": y_only, "border": border, "lr_convention": lr_convention,
               "make_lr": make_lr, **opts.params(), "device": device}
    return EvalReport(spec, options, results)
