"""``srprep modcrop``: crop HR images bottom/right to a multiple of the scale, as the SR benchmarks did."""
from __future__ import annotations

import functools
from pathlib import Path

from ..errors import ImageError
from ..io import images
from ..io.stores import FolderStore, FolderWriter
from ..ops.grid import modcrop as modcrop_array
from ..runner import Item, ItemResult, Step, StepReport, run_step


def _modcrop_one(payload: tuple[str, str, str], *, scale: int, out: str, png_level: int,
                 exif_orientation: str = "ignore") -> ItemResult:
    key, src, name = payload
    img = images.read_image(src, exif_orientation=exif_orientation)
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise ImageError(f"{src}: {h}x{w} image is smaller than the scale {scale}")
    crop = modcrop_array(img, scale)
    FolderWriter(out, png_level=png_level).write(key, crop)
    return ItemResult(outputs=[name], info={"size": [h, w], "cropped": list(crop.shape[:2])})


def modcrop(src: str | Path, dst: str | Path, scale: int, *, jobs: int | None = None, force: bool = False,
            dry_run: bool = False, progress: bool = True, png_level: int = 1,
            exif_orientation: str = "ignore") -> StepReport:
    """Write every image of ``src`` cropped to a multiple of ``scale`` as ``dst/<key>.png``.

    The crop keeps the top-left corner (rows and columns beyond ``H - H % scale`` / ``W - W % scale`` are
    dropped), which is MATLAB's ``modcrop`` as used to make the SR benchmarks' LR images.

    Args:
        src: folder of images (any format srprep reads); keys are file stems.
        dst: output folder (owned by this step: its cache state lives in ``dst/.srprep``).
        scale: positive integer.
        jobs, force, dry_run, progress: see :func:`srprep.runner.run_step`.
        png_level: PNG compression level 0-9 of the outputs (pixels are identical at every level).
        exif_orientation: "ignore" (pixels as stored) or "apply" (each photo turned upright first, as its EXIF
            orientation tag says; then the crop is bottom/right of the upright image).
    """
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, not {scale!r}")
    scale = int(scale)
    dst = Path(dst).resolve()  # worker processes are reused and keep their own working directory
    store = FolderStore(src, naming="same")
    writer = FolderWriter(dst)
    items = [Item(k, store.item_fingerprint(k), (k, str(store.path(k)), writer.name(k))) for k in store.keys()]
    if exif_orientation not in images.EXIF_ORIENTATION:
        raise ValueError(f"exif_orientation must be ignore or apply, not {exif_orientation!r}")
    params = {"scale": scale, "png_level": png_level}
    if exif_orientation == "apply":  # only then: the default keeps the parameters of earlier runs
        params["exif_orientation"] = "apply"
    step = Step("modcrop", Path(dst), params, {"src": str(Path(src).resolve())}, reads=(Path(src),))
    worker = functools.partial(_modcrop_one, scale=scale, out=str(dst), png_level=png_level,
                               exif_orientation=exif_orientation)
    return run_step(step, items, worker, jobs=jobs, force=force, dry_run=dry_run, progress=progress, unit="img")
