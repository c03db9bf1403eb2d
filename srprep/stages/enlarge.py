"""``srprep enlarge``: turn pairs of one scale into pairs of a smaller scale (AIM2020: x3 pairs into x2 pairs).

A top AIM2020 Real-SR team enlarged the washed x2 training set with the washed x3 pairs: each x3 HR was
resized to ``2 * (H // 3)`` x ``2 * (W // 3)`` and paired with the unchanged x3 LR (``H // 3`` x ``W // 3``),
which makes it an x2 pair; 18,475 + 18,643 = 37,118 x2 pairs. Generalised here to ``to_scale * (H //
from_scale)`` for any ``from_scale > to_scale``.

For each pair of ``x3_dir`` (fields ``HR`` and ``LR``, or ``X3``; folders of images):

* the HR is cropped bottom/right to a multiple of ``from_scale`` (``modcrop``, a no-op when the HR is
  exactly ``from_scale`` times its LR) and resized by exactly ``to/from`` to ``to * h`` x ``to * w``, so
  the new HR covers the same scene as the LR pixel for pixel (resizing an uncropped HR to that size would
  squeeze it by up to ``(from - 1) / H``);
* the resize is MATLAB's bicubic (``resize="matlab"``, default: :func:`srprep.ops.imresize.imresize_matlab`
  with an explicit size, the uint8 convention: rounded after each 1-D pass, antialiased), or plain Pillow's
  bicubic (``resize="pil"``: the recipe's own call, ``HR_img.resize(size)`` with Pillow's default filter,
  BICUBIC, under the Pillow 7.1.2 its authors pinned; reproduced bit for bit by
  :func:`srprep.ops.pil_resize.pil_resize`, whatever PIL is installed: pillow-simd's bicubic differs).
  The two differ in about 20 % of values: by 0.22 level on average on B100 (0.09-0.27 per image; Set5
  0.17-0.24, Kodak 0.20-0.26), by up to 12 levels (4-10 on Set5 and Kodak) at edges;
* the LR file is linked or copied unchanged (byte-identical);
* the output key is the input key with a prefix or suffix (default suffix ``_x3``), so that it cannot
  collide with the x2 set it is merged with, whose keys (``000000`` ...) are the same numbers.

Output (AIM layout): ``DST/HR/<key>.png`` (PNG) and ``DST/LR/<key><LR's extension>``. With ``merge``,
the pairs of that x2 set are linked into the same folders under their own names, and a key that exists
in both sets is an error before anything is written.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageError, StoreError
from ..fingerprint import fingerprint
from ..io import images
from ..io.keys import check_key
from ..io.stores import store_location
from ..ops.grid import modcrop
from ..ops.imresize import imresize_matlab
from ..ops.pil_resize import pil_resize
from ..runner import Item, ItemResult, Step, StepReport, run_step
from .pairs import DatasetField, check_output_dir, find_pair
from .wash import LINK_KINDS, link_file, probe_link

__all__ = ["RESIZE_METHODS", "EnlargeReport", "enlarged_size", "resize_hr", "enlarge"]

RESIZE_METHODS = ("matlab", "pil")
# The Pillow release AIM2020's authors pinned (its pass order is the one reproduced by resize="pil").
AIM_PILLOW = (7, 1, 2)


def enlarged_size(hr_size: tuple[int, int], from_scale: int, to_scale: int) -> tuple[int, int]:
    """``(to * (H // from), to * (W // from))``: the new HR size for an HR of ``(H, W)``.

    Example:
        >>> enlarged_size((1356, 2040), 3, 2)
        (904, 1360)
    """
    h, w = hr_size
    return to_scale * (h // from_scale), to_scale * (w // from_scale)


def resize_hr(hr: np.ndarray, from_scale: int, to_scale: int, method: str = "matlab") -> np.ndarray:
    """The enlarged set's HR: ``modcrop(hr, from)`` resized by ``to/from`` (see the module docstring).

    Args:
        hr: ``(H, W, 3)`` uint8 RGB.
        from_scale, to_scale: integers, ``from_scale > to_scale >= 1``.
        method: "matlab" (bicubic, uint8 convention) or "pil" (plain Pillow 7.1.2 bicubic, exactly).

    Returns:
        ``(to * (H // from), to * (W // from), 3)`` uint8.
    """
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_METHODS)}, not {method!r}")
    size = enlarged_size(hr.shape[:2], from_scale, to_scale)
    if min(size) < 1:
        raise ValueError(f"HR of {hr.shape[0]}x{hr.shape[1]} is smaller than the scale {from_scale}")
    crop = modcrop(hr, from_scale)
    if method == "matlab":
        return imresize_matlab(crop, size=size)
    return pil_resize(np.ascontiguousarray(crop), size, "bicubic", pillow=AIM_PILLOW)


def _enlarge_one(payload, *, out: str, from_scale: int, to_scale: int, method: str, kind: str,
                 png_level: int) -> ItemResult:
    if payload[0] == "link":
        _, links = payload
        for src, rel in links:
            link_file(src, Path(out) / rel, kind)
        return ItemResult(outputs=[rel for _, rel in links])
    _, hr_path, lr_path, hr_rel, lr_rel = payload
    hr = images.read_image(hr_path)
    h, w = images.image_size(lr_path)
    H, W = hr.shape[:2]
    if (H // from_scale, W // from_scale) != (h, w):
        raise ImageError(f"{lr_path} is {h}x{w} but {hr_path} is {H}x{W}: at x{from_scale} the LR should be "
                         f"{H // from_scale}x{W // from_scale}")
    new = resize_hr(hr, from_scale, to_scale, method)
    images.write_image(Path(out) / hr_rel, new, png_level=png_level)
    link_file(lr_path, Path(out) / lr_rel, kind)
    return ItemResult(outputs=[hr_rel, lr_rel], info={"hr": [H, W], "new_hr": list(new.shape[:2])})


@dataclass
class EnlargeReport:
    """What :func:`enlarge` did: the step, the enlarged and the merged pair counts."""

    step: StepReport
    enlarged: int
    merged: int
    rename: str

    def summary(self) -> str:
        head = "would write" if self.step.status == "dry run" else "wrote"
        merged = f" + {self.merged} merged x2 pairs" if self.merged else ""
        return (f"enlarge: {head} {self.enlarged} enlarged pairs (keys {self.rename}){merged} = "
                f"{self.enlarged + self.merged} pairs\n  {self.step.summary()}")


def _folder_pair(src: Path, scale: int) -> tuple[DatasetField, DatasetField, list[str]]:
    hr, lr, keys = find_pair(src, scale)
    for f in (hr, lr):
        if not f.is_folder:
            raise StoreError(f"{f.path}: enlarge reads folders of images (the LR files are linked unchanged); "
                             f"run it before packing")
    return hr, lr, keys


def enlarge(x3_dir: str | os.PathLike, dst: str | os.PathLike, *, from_scale: int = 3, to_scale: int = 2,
            resize: str = "matlab", key_prefix: str | None = None, key_suffix: str | None = None,
            merge: str | os.PathLike | None = None, link: str = "hardlink", png_level: int = 1,
            jobs: int | None = None, force: bool = False, dry_run: bool = False,
            progress: bool = True) -> EnlargeReport:
    """Write the pairs of ``x3_dir`` as ``to_scale`` pairs into ``dst`` (and merge an x2 set into it).

    Args:
        x3_dir: dataset folder of the ``from_scale`` pairs (``HR`` + ``LR`` or ``X{from}``, folders).
        dst: output folder (AIM layout ``DST/HR``, ``DST/LR``), owned by the step.
        from_scale, to_scale: the scales, ``from_scale > to_scale >= 1``.
        resize: "matlab" or "pil" (see the module docstring).
        key_prefix, key_suffix: renaming of the enlarged keys; when neither is given the suffix is
            ``_x{from_scale}``. ``key_suffix=""`` keeps the keys (then a merge must not collide).
        merge: dataset folder of ``to_scale`` pairs linked into ``dst`` unchanged (AIM layout, folders).
        link: how LR files (and merged pairs) get into ``dst``: "hardlink", "symlink" or "copy".
        png_level: PNG compression of the resized HR images.
        jobs, force, dry_run, progress: see :func:`srprep.runner.run_step`.

    Raises:
        StoreError: HR/LR that do not pair up or whose sizes do not match ``from_scale`` (files named), keys
            that collide with the merged set, a packed input, ``dst`` overlapping an input.
    """
    if int(from_scale) != from_scale or int(to_scale) != to_scale or not from_scale > to_scale >= 1:
        raise ValueError(f"need integers from_scale > to_scale >= 1, got {from_scale} and {to_scale}")
    from_scale, to_scale = int(from_scale), int(to_scale)
    if resize not in RESIZE_METHODS:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_METHODS)}, not {resize!r}")
    if link not in LINK_KINDS:
        raise ValueError(f"link must be one of {', '.join(LINK_KINDS)}, not {link!r}")
    if key_prefix is None and key_suffix is None:
        key_suffix = f"_x{from_scale}"
    prefix, suffix = key_prefix or "", key_suffix or ""
    rename = f"{prefix}<key>{suffix}"

    hr, lr, keys = _folder_pair(Path(x3_dir), from_scale)
    sources = [x3_dir] + ([merge] if merge is not None else [])
    dst = check_output_dir(dst, *sources)
    items, new_keys = [], {}
    for k in keys:
        nk = check_key(f"{prefix}{k}{suffix}")
        new_keys[nk] = k
        lr_file = lr.store.path(k)
        items.append(Item(nk, fingerprint([hr.store.item_fingerprint(k), lr.store.item_fingerprint(k)]),
                          ("enlarge", os.path.abspath(hr.store.path(k)), os.path.abspath(lr_file), f"HR/{nk}.png",
                           f"LR/{nk}{lr_file.suffix.lower()}")))
    inputs = {"HR": hr.store.fingerprint(), "LR": lr.store.fingerprint()}
    merged = 0
    if merge is not None:
        mhr, mlr, mkeys = _folder_pair(Path(merge), to_scale)
        clash = [k for k in mkeys if k in new_keys]
        if clash:
            raise StoreError(f"key collision: {len(clash)} enlarged key(s) also exist in {merge}: "
                             f"{', '.join(clash[:5])}{' ...' if len(clash) > 5 else ''} "
                             f"(e.g. {mhr.where(clash[0])} vs {hr.where(new_keys[clash[0]])}); "
                             f"choose another --key-suffix or --key-prefix")
        for k in mkeys:
            a, b = mhr.store.path(k), mlr.store.path(k)
            # Named <key><ext> in both folders (the AIM layout), whatever the merged set's LR naming was.
            items.append(Item(k, fingerprint([mhr.store.item_fingerprint(k), mlr.store.item_fingerprint(k)]),
                              ("link", [(os.path.abspath(a), f"HR/{k}{a.suffix.lower()}"),
                                        (os.path.abspath(b), f"LR/{k}{b.suffix.lower()}")])))
        merged = len(mkeys)
        inputs.update({"merge_HR": mhr.store.fingerprint(), "merge_LR": mlr.store.fingerprint()})
    # Output file names must be unique too (two keys differing only in extension case, say).
    seen: dict[str, str] = {}
    for it in items:
        rels = [it.payload[3], it.payload[4]] if it.payload[0] == "enlarge" else [r for _, r in it.payload[1]]
        for rel in rels:
            if rel in seen:
                raise StoreError(f"two pairs would write {dst / rel} ({seen[rel]!r} and {it.key!r}); choose another "
                                 f"--key-suffix or --key-prefix")
            seen[rel] = it.key
    params = {"from": from_scale, "to": to_scale, "resize": resize, "prefix": prefix, "suffix": suffix,
              "link": link, "png_level": png_level}
    if resize == "pil":  # outputs of earlier srprep versions used pillow-simd's bicubic: not up to date
        params["pillow"] = ".".join(map(str, AIM_PILLOW))
    reads = [store_location(hr.store), store_location(lr.store)]
    if merge is not None:
        reads += [store_location(mhr.store), store_location(mlr.store)]
    step = Step("enlarge", dst, params, inputs, reads=tuple(p for p in reads if p is not None))
    if not dry_run:
        probe_link(lr.store.path(keys[0]), dst / "LR", link)
    # Absolute paths (here and in the payloads): a worker of a reused pool may run in another directory.
    worker = functools.partial(_enlarge_one, out=os.path.abspath(dst), from_scale=from_scale, to_scale=to_scale,
                               method=resize, kind=link, png_level=png_level)
    rep = run_step(step, items, worker, jobs=jobs, force=force, dry_run=dry_run, progress=progress, unit="pair")
    return EnlargeReport(rep, len(keys), merged, rename)
