"""``srprep downsample``: MATLAB-exact bicubic LR images of a folder of HR images.

Layout written (EDSR/DIV2K naming, the layout every later step reads)::

    DST/HR/<key>.png          the HR images as used (uncropped, or cropped to --mod N), unless --no-hr
    DST/X2/<key>x2.png        imresize(modcrop(HR, 2), 1/2, 'bicubic')
    DST/X3/<key>x3.png        ...

With ``layout="basicsr"`` (BasicSR's test sets, made by its ``generate_bicubic_img.m``) the folders are
``DST/GTmod12/<key>.png`` (HR cropped to a multiple of ``mod``) and ``DST/LRbicx4/<key>.png``.

Each output folder is its own cached step, so adding ``--scale 8`` to an earlier run computes only X8,
and switching ``--im2double`` redoes the LR folders but not HR. The HR of a pair is the HR image cropped
to ``LR size * s`` from the top left (which is ``modcrop(HR, s)``), the benchmark convention.

A grey (1-channel) HR file gives grey (1-channel) PNGs, as MATLAB's ``imresize`` of a 2-D image does; the
values are those of any channel of the image read as R=G=B (the resize works on each channel alone).

Work per image (the CPU path): the folders' steps run together (:func:`srprep.fanout.run_together`), so an
HR image is decoded once for every folder that needs it, whatever the number of scales. ``DST/HR/<key>.png``
is the source file itself when its pixels are the HR's (an 8-bit RGB PNG that ``--mod`` leaves uncropped,
orientation ignored): a hard link (no space, no encode), or a byte copy where a link cannot be made (another
file system); otherwise the cropped image, encoded once. Being a link, it changes if the source file is
rewritten in place (srprep never does that; its own writes replace files).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageError, OptionError
from ..fanout import run_together
from ..io import images, png
from ..io.stores import FolderStore, FolderWriter, scale_suffix
from ..ops.grid import modcrop
from ..ops.imresize import imresize_matlab
from ..runner import Item, ItemResult, Step, StepReport, default_jobs, run_step
from .devicepipe import run_device_step
from .network import resolve_devices
from .wash import link_or_copy


@dataclass(frozen=True)
class DownsampleOptions:
    """What decides the LR pixels (all of it goes into the cache fingerprint).

    im2double: MATLAB's im2double convention (double throughout, one rounding) instead of the uint8
        convention (each pass rounded half away from zero and saturated).
    modcrop: crop HR to a multiple of the scale first (the benchmarks did); without it the LR size is
        ceil(H/s) and HR = LR*s no longer holds.
    mod: crop HR to a multiple of this first (12 gives BasicSR's GTmod12 layout), or 0.
    fmt: "png" (uint8) or "npy" (float32, 1.0 = 255: with im2double, MATLAB's double result unrounded and
        unclipped, so bicubic ringing may take it slightly outside [0, 1]; uint8 convention: the uint8
        result / 255).
    naming: "div2k" (``<key>x2.png``) or "same" (``<key>.png``).
    exif_orientation: "ignore" (pixels as stored) or "apply" (each photo turned upright first).
    """

    im2double: bool = False
    modcrop: bool = True
    mod: int = 0
    fmt: str = "png"
    naming: str = "div2k"
    png_level: int = 1
    exif_orientation: str = "ignore"

    def params(self) -> dict:
        """The options as a step's parameters (the orientation only when applied, so that the parameters of
        runs made before the option existed stay the same)."""
        d = dict(self.__dict__)
        if d["exif_orientation"] == "ignore":
            del d["exif_orientation"]
        return d


def lr_name_suffix(scale: float, naming: str) -> str:
    return scale_suffix(scale) if naming == "div2k" else ""


def _check_scale(scale: float, opts: DownsampleOptions) -> float:
    if not scale > 0:
        raise OptionError(f"scale must be positive, not {scale}")
    if opts.modcrop and not float(scale).is_integer():
        raise OptionError(f"scale {scale:g}: --modcrop needs an integer scale (use --no-modcrop for {scale:g})")
    return float(scale)


def prepare_hr(img: np.ndarray, opts: DownsampleOptions, name: str) -> np.ndarray:
    """The HR image as the dataset uses it: cropped to a multiple of ``opts.mod`` when set."""
    if opts.mod:
        if img.shape[0] < opts.mod or img.shape[1] < opts.mod:
            raise ImageError(f"{name}: {img.shape[0]}x{img.shape[1]} image is smaller than --mod {opts.mod}")
        img = modcrop(img, opts.mod)
    return img


def _crop_for_scale(hr: np.ndarray, scale: float, opts: DownsampleOptions, name: str) -> np.ndarray:
    """The HR an LR of ``scale`` is made from: ``prepare_hr``, then ``modcrop`` to the scale when asked."""
    hr = prepare_hr(hr, opts, name)
    if opts.modcrop:
        s = int(scale)
        if hr.shape[0] < s or hr.shape[1] < s:
            raise ImageError(f"{name}: {hr.shape[0]}x{hr.shape[1]} image is smaller than the scale {s}")
        hr = modcrop(hr, s)
    return hr


def _final(out: np.ndarray, opts: DownsampleOptions) -> np.ndarray:
    """Resize output (uint8, or float64 0..1 for --im2double with npy) -> what is stored."""
    if opts.fmt == "npy":
        return (out if out.dtype != np.uint8 else out / 255.0).astype(np.float32)
    return out


def downsample_image(hr: np.ndarray, scale: float, opts: DownsampleOptions, *, name: str = "image",
                     device: str = "cpu", threads: int | None = None) -> np.ndarray:
    """LR of one HR image: (H, W, 3) uint8 -> (h, w, 3) uint8, or float32 (1.0 = 255) when ``opts.fmt == "npy"``.

    h = floor(H/s) with modcrop (= ceil of the cropped size / s), else ceil(H/s). ``device``: "cpu" (the numpy
    path; ``threads`` for its compiled kernel) or a torch device (the torch path; same bytes).
    """
    hr = _crop_for_scale(hr, scale, opts, name)
    if device == "cpu":
        u8 = np.uint8 if opts.fmt == "png" else None
        out = imresize_matlab(hr, 1.0 / scale, im2double=opts.im2double, out_dtype=u8, threads=threads)
        return _final(out, opts)
    return _resize_batch([hr], scale=scale, opts=opts, device=device)[0]


def _resize_batch(hrs: list, *, scale: float, opts: DownsampleOptions, device: str) -> list:
    """Equal-size HR images (H, W, C) uint8, already cropped -> their stored LR arrays, on a torch device.

    One NCHW batch through :func:`~srprep.ops.imresize_torch.imresize_matlab_torch`; the im2double result is
    rounded on the device too (``out_dtype``), so only uint8 crosses back unless npy asks for the float values."""
    import torch

    from ..ops.imresize_torch import imresize_matlab_torch

    x = torch.from_numpy(np.ascontiguousarray(np.stack(hrs).transpose(0, 3, 1, 2))).to(device)
    u8 = torch.uint8 if opts.fmt == "png" else None
    y = imresize_matlab_torch(x, 1.0 / scale, im2double=opts.im2double, out_dtype=u8)
    y = y.permute(0, 2, 3, 1).cpu().numpy()
    return [_final(np.ascontiguousarray(a), opts) for a in y]


@dataclass(frozen=True)
class ResizeCompute:
    """MATLAB bicubic of equal-size HR batches on a device (a :class:`~srprep.stages.devicepipe.BatchCompute`)."""

    scale: float
    opts: DownsampleOptions

    def prepare(self, device: str):
        return functools.partial(_resize_batch, scale=self.scale, opts=self.opts, device=device)


def _read_for_scale(payload, *, scale: float, opts: DownsampleOptions) -> np.ndarray:
    key, src = payload
    return _crop_for_scale(images.read_image(src, exif_orientation=opts.exif_orientation), scale, opts, src)


def _grey_if_grey(img: np.ndarray, src: str) -> np.ndarray:
    """What a PNG of ``src``'s image holds: one of the (equal) channels when ``src`` is a grey file."""
    return img[..., 0] if img.ndim == 3 and images.is_grey_file(src) else img


def _write_lr(payload, lr: np.ndarray, *, scale: float, opts: DownsampleOptions, out: str) -> ItemResult:
    key, src = payload
    if opts.fmt == "png":
        lr = _grey_if_grey(lr, src)
    ext = ".npy" if opts.fmt == "npy" else ".png"
    name = FolderWriter(out, ext=ext, suffix=lr_name_suffix(scale, opts.naming), png_level=opts.png_level).write(
        key, lr)
    return ItemResult(outputs=[name], info={"lr": list(lr.shape[:2])})


def _hr_one(payload, *, opts: DownsampleOptions, out: str) -> ItemResult:
    key, src = payload
    return _write_hr(key, src, None, opts=opts, out=out)


def _write_hr(key: str, src: str, hr: np.ndarray | None, *, opts: DownsampleOptions, out: str) -> ItemResult:
    """``DST/HR/<key>.png``: the source file itself (linked, else copied) when it holds the HR's pixels (an
    8-bit RGB PNG that ``--mod`` leaves whole, orientation ignored), else the (cropped) image encoded once.
    ``hr``: the decoded source, if the caller has it."""
    name = f"{key}.png"
    size = png.rgb8_size(src) if opts.exif_orientation == "ignore" else None
    if size is not None and (not opts.mod or (size[0] % opts.mod == 0 and size[1] % opts.mod == 0)):
        link_or_copy(src, Path(out) / name)
        return ItemResult(outputs=[name])
    if hr is None:
        hr = images.read_image(src, exif_orientation=opts.exif_orientation)
    hr = _grey_if_grey(prepare_hr(hr, opts, src), src)
    return ItemResult(outputs=[FolderWriter(out, png_level=opts.png_level).write(key, hr)])


def _image_one(job: dict, *, opts: DownsampleOptions, outs: dict, scales: dict, threads: int | None) -> dict:
    """Every output one source image still needs, from one decode: ``job`` maps step names (the HR step and
    the scales' steps) to that image's payload; returns their :class:`ItemResult` lists."""
    key, src = next(iter(job.values()))[0]
    hr = None
    results = {}
    for name in job:
        if name in scales:
            hr = images.read_image(src, exif_orientation=opts.exif_orientation) if hr is None else hr
            lr = downsample_image(hr, scales[name], opts, name=src, threads=threads)
            res = _write_lr((key, src), lr, scale=scales[name], opts=opts, out=outs[name])
            res.info["hr"] = list(hr.shape[:2])
            results[name] = [res]
    for name in job:
        if name not in scales:
            results[name] = [_write_hr(key, src, hr, opts=opts, out=outs[name])]
    return results


def scale_dir_name(scale: float) -> str:
    """``X2`` for 2, ``X1.5`` for 1.5."""
    return "X" + scale_suffix(scale)[1:]


LAYOUTS = ("div2k", "basicsr")


def layout_dirs(layout: str, opts: DownsampleOptions, scales: list[float]) -> tuple[str, list[str]]:
    """Folder names of a layout: (HR folder, one LR folder per scale).

    >>> layout_dirs("div2k", DownsampleOptions(), [2, 4]), layout_dirs("basicsr", DownsampleOptions(mod=12), [4])
    (('HR', ['X2', 'X4']), ('GTmod12', ['LRbicx4']))
    """
    if layout == "div2k":
        return "HR", [scale_dir_name(s) for s in scales]
    if layout == "basicsr":
        if not opts.mod:
            raise OptionError("layout basicsr names the HR folder GTmod<N>: give --mod N (BasicSR used 12)")
        return f"GTmod{opts.mod}", [f"LRbicx{s:g}" for s in scales]
    raise OptionError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")


def downsample(src: str | Path, dst: str | Path, scales: list[float], *, opts: DownsampleOptions = DownsampleOptions(),
               write_hr: bool = True, device: str = "cpu", batch: int = 8, pipelined: bool | None = None,
               layout: str = "div2k", jobs: int | None = None, force: bool = False, dry_run: bool = False,
               progress: bool = True) -> list[StepReport]:
    """Write MATLAB-bicubic LR images of every image in ``src`` for each scale (see the module docstring).

    Args:
        src: folder of HR images (keys are file stems).
        dst: dataset folder; gets ``HR/`` (if ``write_hr``) and ``X{s}/`` per scale.
        scales: downscaling factors (2 means LR = HR/2).
        opts: the conventions; see :class:`DownsampleOptions`.
        device: "cpu" (numpy path with the compiled kernel, parallel over ``jobs`` processes) or torch
            devices such as "cuda" or "cuda:0,cuda:1" (the torch path, same bytes: images decoded ahead,
            consecutive images of equal size resized together, up to ``batch`` at a time; PNG encoding in
            writer threads while the next batch runs).
        batch: most images per device batch (``device`` other than cpu).
        pipelined: the device path (default: whenever ``device`` is not cpu); True with "cpu" runs it with
            the CPU as torch device (same bytes, for checking it where there is no GPU).
        layout: folder names: "div2k" (``HR``, ``X2``...) or "basicsr" (``GTmod<mod>``, ``LRbicx2``...; needs
            ``opts.mod``; BasicSR names LR files like their HR, so use ``naming="same"`` with it).
    Returns:
        One :class:`StepReport` per output folder (HR first).
    """
    if opts.fmt not in ("png", "npy"):
        raise OptionError(f"format must be png or npy, not {opts.fmt!r}")
    if opts.naming not in ("div2k", "same"):
        raise OptionError(f"naming must be div2k or same, not {opts.naming!r}")
    if batch < 1:
        raise OptionError(f"batch must be >= 1, not {batch}")
    if opts.exif_orientation not in images.EXIF_ORIENTATION:
        raise OptionError(f"exif_orientation must be ignore or apply, not {opts.exif_orientation!r}")
    scales = [_check_scale(s, opts) for s in scales]
    if len(set(scales)) != len(scales):
        raise OptionError(f"scale given twice: {scales}")
    if not scales:
        raise OptionError("at least one --scale is needed")
    hr_dir, lr_dirs = layout_dirs(layout, opts, scales)
    devices = resolve_devices(device)
    # Absolute: worker processes are reused across calls and keep their own working directory.
    dst = Path(dst).resolve()
    store = FolderStore(src, naming="same")
    items = [Item(k, store.item_fingerprint(k), (k, str(store.path(k)))) for k in store.keys()]
    src_id = {"src": str(Path(src).resolve())}
    hr_params = {k: v for k, v in opts.params().items() if k in ("mod", "png_level", "exif_orientation")}
    hr_step = Step(f"downsample:{hr_dir}", dst / hr_dir, hr_params, src_id, reads=(Path(src),))
    lr_steps = {s: Step(f"downsample:{lr_dir}", dst / lr_dir, {"scale": s, **opts.params()}, src_id,
                        reads=(Path(src),)) for s, lr_dir in zip(scales, lr_dirs)}
    if not (pipelined if pipelined is not None else devices != ["cpu"]):
        # One process per core already: the compiled kernel then runs single-threaded in each.
        threads = 1 if (jobs or default_jobs()) > 1 else None
        steps = ([hr_step] if write_hr else []) + list(lr_steps.values())
        worker = functools.partial(_image_one, opts=opts, outs={st.name: str(st.output) for st in steps},
                                   scales={st.name: s for s, st in lr_steps.items()}, threads=threads)
        return run_together([(st, items) for st in steps], worker, jobs=jobs, force=force, dry_run=dry_run,
                            progress=progress, unit="img")
    run = functools.partial(run_step, force=force, dry_run=dry_run, progress=progress, unit="img")
    reports = []
    if write_hr:
        reports.append(run(hr_step, items, functools.partial(_hr_one, opts=opts, out=str(hr_step.output)),
                           jobs=jobs))
    for s, step in lr_steps.items():
        reports.append(run_device_step(
            step, items, compute=ResizeCompute(s, opts), devices=devices,
            read=functools.partial(_read_for_scale, scale=s, opts=opts),
            finish=functools.partial(_write_lr, scale=s, opts=opts, out=str(step.output)), batch=batch,
            force=force, dry_run=dry_run, progress=progress, unit="img"))
    return reports
