"""Paired training patches from stores: a seeded, resumable sampler, uint8 batches, a device prefetcher.

Where the data comes from: each field (HR, LR x{s}, and for ECO the centroids ``sr_pretrained`` /
``lr_pretrained``) is a store found by name in the dataset folder (see :func:`open_field`), so the same
config reads a folder dataset (``srprep downsample``), LMDBs or an HDF5 file (``srprep pack``) by changing
``data.root``. Stores are paired by key and their sizes checked before training starts.

Sampling: sample ``i`` (a global index: step ``t`` of process ``r`` of ``W`` takes ``(t W + r) B ... + B``)
picks its image from a permutation of the keys drawn for epoch ``i // n`` and its crop and flips from a
random stream seeded by ``(seed, i)`` alone. A batch is therefore the same whatever the number of
DataLoader workers, and resuming at step ``t`` only needs ``t``. Crops start on the scale grid: the LR
window ``(y, x, P/s)`` and the HR window ``(s y, s x, P)`` cover the same scene.

Flips as BasicSR's ``augment``: ``data.flip`` draws the horizontal flip (``use_hflip``), ``data.rot90`` the
vertical flip and the transposition (``use_rot``: with the horizontal flip, all 8 rotations/reflections).

What a batch holds (CPU, from the DataLoader): ``hr``/``lr`` (and ``hr_c``/``lr_c`` for ECO) as (B, P, P, 3)
uint8 (NHWC, so the later permute gives a channels-last tensor for free), ``flags`` (B, 3) uint8 (horizontal
flip, vertical flip, transpose) and, with on-the-fly degradation, ``params`` (a list of
:class:`~srprep.ops.degrade.DegradationParams` drawn per sample). Flips and everything else are applied on
the device (:mod:`srprep.train.augment`).

Real-ESRGAN's procedure (``degrade.crop_pad``, e.g. 400): the sample is not the training patch but a
``crop_pad`` square GT (Real-ESRGAN's dataset: flips of the whole image, then reflect-101 padding at the
bottom/right up to ``crop_pad`` when a side is shorter, then a random ``crop_pad`` crop). The flips are then
already applied on the host (``flags`` come back zero), the degradation parameters are drawn for the
``crop_pad`` GT, and ``crop`` (B, 2) holds the top-left corner, on the LR grid, of the training patch that the
loop cuts from the degraded pair (Real-ESRNet's ``paired_random_crop``: LR ``P/s``, GT ``P``). A sample's
draws, in order: flags, the GT crop (top, left), the degradation parameters, the patch (top, left).

For other trainers, ``mode="basicsr"`` (and :func:`patch_dataset`, which opens a dataset folder or packed
stores by field name) gives what BasicSR's paired datasets give: item ``i`` is key ``i`` with a random crop,
as ``{"lq": (3, P/s, P/s), "gt": (3, P, P), "key": str}`` float32 tensors in [0, 1] with the flips and the
transposition already applied, for a plain ``torch.utils.data.DataLoader`` (``shuffle=True``). Crops are
drawn from ``(seed, epoch, i)``: call :meth:`PatchDataset.set_epoch` each epoch for new ones.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from srprep.errors import SrprepError, StoreError
from srprep.io.stores import Store, open_store
from srprep.train.augment import dihedral

log = logging.getLogger(__name__)

__all__ = ["open_field", "check_fields", "PatchDataset", "BatchIndexSampler", "make_loader", "Prefetcher",
           "nchw", "to_unit_float", "sample_rng", "build_dataset", "check_readable", "patch_dataset", "MODES"]

#: What :class:`PatchDataset` items look like: srprep's trainer batches, or BasicSR's ``{"lq", "gt"}``.
MODES = ("srprep", "basicsr")
_BASICSR_NAMES = {"hr": "gt", "lr": "lq", "hr_c": "gt_centroid", "lr_c": "lq_centroid"}

_HDF5_NAME = "data.h5"


def open_field(root: str | Path, name: str, *, scale: Optional[int] = None, purpose: str = "") -> Store:
    """Open the store of field ``name`` of the dataset in ``root``.

    Looked for, in order: ``name`` itself if it is an absolute path; ``root/name`` (a folder of images, an
    LMDB folder or a view); ``root/name.lmdb``; ``name`` relative to the working directory if it has a
    ``/``; group ``name`` of ``root/data.h5`` or of ``root/centroids/data.h5``. ``scale`` strips the
    ``x{scale}`` suffix of LR file names in folders.

    Raises:
        StoreError: nothing found, naming every place looked at and what the field is for.
    """
    root = Path(root) if root else Path(".")
    direct = Path(name)
    tried = []
    candidates = [direct] if direct.is_absolute() else []
    candidates += [root / name, root / f"{name}.lmdb"]
    if not direct.is_absolute() and len(direct.parts) > 1:
        candidates.append(direct)  # a path relative to the working directory (e.g. centroids made with --out)
    for path in candidates:
        tried.append(str(path))
        if path.exists():
            return open_store(path, scale=scale)
    # srprep pack writes one HDF5 file per data set; srprep centroids adds its fields in centroids/data.h5
    for h5 in (root / _HDF5_NAME, root / "centroids" / _HDF5_NAME):
        tried.append(f"{h5} (group {name})")
        if h5.is_file():
            from srprep.io.hdf5_store import fields_of

            if name in fields_of(h5):
                return open_store(h5 / name)
    why = f" ({purpose})" if purpose else ""
    raise StoreError(f"{root}: no field {name!r}{why}; looked for {', '.join(tried)}")


def _store_name(store: Store) -> str:
    return str(getattr(store, "root", None) or getattr(store, "path", None) or store)


def check_fields(stores: dict[str, Store], keys: Sequence[str], *, scale: int, patch: int,
                 lr_fields: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Check that every store has every key, LR sizes are HR / scale and the patch fits; return LR sizes.

    HR-size fields may be up to ``scale - 1`` pixels larger than ``LR x scale`` (an HR not mod-cropped, as
    ``srprep downsample`` keeps it); patches are then cut from the top-left ``LR x scale`` part.

    Returns:
        ``{key: (h, w)}`` of the LR grid (HR // scale when there is no LR field).

    Raises:
        StoreError: a missing key, a size ratio that is not the model's scale (naming the store and key),
        an image smaller than the patch.
    """
    names = list(stores)
    for name in names:
        have = set(stores[name].keys())
        missing = [k for k in keys if k not in have]
        if missing:
            hint = ""
            suffixes = {m.group(1) for k in have if (m := re.search(r"x(\d+)$", k))}
            if have and len(suffixes) == 1 and all(re.search(r"x\d+$", k) for k in have):
                hint = (f" (its names end in x{suffixes.pop()}: LR images of another scale? model.scale is "
                        f"{scale})")
            raise StoreError(f"{_store_name(stores[name])} ({name}): {len(missing)} training keys missing, "
                             f"e.g. {missing[:3]}{hint}")
    hr_names = [n for n in names if n not in lr_fields]
    grid: dict[str, tuple[int, int]] = {}
    lp = patch // scale
    for key in keys:
        hr_shapes = {n: tuple(stores[n].shape(key)[:2]) for n in hr_names}
        lr_shapes = {n: tuple(stores[n].shape(key)[:2]) for n in lr_fields}
        first = next(iter(lr_shapes), None)
        if first is not None:
            h, w = lr_shapes[first]
            for n, hw in lr_shapes.items():
                if hw != (h, w):
                    raise StoreError(f"{_store_name(stores[n])} ({n}): item {key!r} is {hw[1]}x{hw[0]}, but "
                                     f"{first} is {w}x{h}; LR-size fields must match")
        else:
            big = next(iter(hr_shapes.values()))
            h, w = big[0] // scale, big[1] // scale
        for n, (hh, ww) in hr_shapes.items():
            if not (h * scale <= hh < (h + 1) * scale and w * scale <= ww < (w + 1) * scale):
                ratio = f"x{hh / h:.3g}" if h else "?"
                lr_where = f"{_store_name(stores[first])} ({first})" if first else "the LR grid"
                raise StoreError(
                    f"{lr_where}: item {key!r} is {w}x{h}, and {ww}x{hh} in {_store_name(stores[n])} ({n}): "
                    f"{ratio}, but model.scale is {scale}; use the LR field of that scale or change model.scale")
        if h < lp or w < lp:
            raise StoreError(f"item {key!r}: {w * scale}x{h * scale} (HR) is smaller than data.patch={patch}; "
                             f"lower data.patch or drop small images")
        grid[key] = (h, w)
    return grid


def _packed_by_srprep(store: Store) -> bool:
    """A complete LMDB or HDF5 store that srprep wrote: every value was decoded or encoded by its writer."""
    from srprep.io.hdf5_store import Hdf5Store
    from srprep.io.lmdb_store import LmdbStore

    if isinstance(store, LmdbStore):
        return not store.foreign and bool(store.meta.get("complete"))
    return isinstance(store, Hdf5Store)


def check_readable(dataset: "PatchDataset", run_dir: str | Path, *, workers: int = 1) -> None:
    """Read every training image once before step 0, so that a broken file stops the run at once with a
    one-line error naming it, not mid-run inside a DataLoader worker.

    Folders of images (and LMDBs that other programs wrote) are decoded; LMDB and HDF5 stores that srprep
    wrote are not (their writer decoded every image, and ``srprep verify`` checks their values). A check
    that passed is remembered in ``RUN/.srprep/data_check.json`` under the stores' fingerprints and keys, so
    a resumed run does not repeat it.

    Raises:
        StoreError: an image that cannot be read (the first one's file and cause, and how many failed).
    """
    import concurrent.futures
    import json

    from srprep.fingerprint import fingerprint

    stores = {name: st for name, st in dataset.stores.items() if not _packed_by_srprep(st)}
    if not stores:
        return
    fp = fingerprint({name: [st.fingerprint(), dataset.keys] for name, st in stores.items()})
    path = Path(run_dir) / ".srprep" / "data_check.json"
    try:
        done = json.loads(path.read_text(encoding="utf-8")).get("passed", [])
    except (OSError, ValueError):
        done = []
    if fp in done:
        return
    log.info("checking that the %d training images of %s can be read (once per data set)", len(dataset.keys),
             ", ".join(_store_name(st) for st in stores.values()))

    def read(job):
        store, key = job
        try:
            store.read(key)
            return None
        except SrprepError as exc:
            return str(exc)

    jobs = [(st, k) for st in stores.values() for k in dataset.keys]
    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:  # decoders release the GIL
        errors = [e for e in pool.map(read, jobs) if e is not None]
    if errors:
        more = f" ({len(errors)} unreadable training images in all)" if len(errors) > 1 else ""
        raise StoreError(f"{errors[0]}{more}; found before training started")
    from srprep.runner import write_json_atomic

    write_json_atomic(path, {"passed": (done + [fp])[-20:]})


def sample_rng(seed: int, index: int, stream: int = 1) -> np.random.Generator:
    """The random stream of sample ``index`` (stream 1) or of epoch ``index`` (stream 0) under ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=int(seed),
                                                                      spawn_key=(stream, int(index)))))


class PatchDataset(Dataset):
    """Map-style dataset of paired patches.

    ``mode="srprep"`` (the trainer's): indexed by the *global sample index* (0, 1, 2, ... without end); an
    item holds (P, P, 3) uint8 patches per field and ``flags`` (3,) uint8 (horizontal flip, vertical flip,
    transpose) that the trainer applies on the device. ``mode="basicsr"``: index ``i < len(self)`` is key
    ``i``; an item is ``{"lq": (3, P/s, P/s), "gt": (3, P, P), "key": str}`` float32 in [0, 1] with the flags
    applied (ECO fields as ``lq_centroid`` / ``gt_centroid``), crops drawn from ``(seed, epoch, i)``.

    Args:
        stores: field name -> store (``hr``, ``lr``, ``hr_c``, ``lr_c``; only ``hr`` with degradation).
        keys: training keys.
        grid: ``{key: (h, w)}`` LR grid sizes (from :func:`check_fields`).
        scale, patch, seed: the model's scale, the HR patch side, the run's seed.
        lr_fields: which fields are LR-size.
        flip, rot90: draw the horizontal flip / the vertical flip and transposition (BasicSR's use_hflip / use_rot).
        degrade: a :class:`~srprep.ops.degrade.DegradationConfig` to draw per-sample parameters from.
        crop_pad: with ``degrade``: the GT side Real-ESRGAN crops or pads to before degrading (module doc);
            None: the training patch itself is degraded.
        cache: keep whole decoded images in memory (per process) for stores that cannot read a region.
        mode: "srprep" or "basicsr" (see above).
    """

    def __init__(self, stores: dict[str, Store], keys: Sequence[str], grid: dict[str, tuple[int, int]], *,
                 scale: int, patch: int, seed: int, lr_fields: Sequence[str], flip: bool = True,
                 rot90: bool = True, degrade=None, crop_pad: Optional[int] = None, cache: bool = False,
                 mode: str = "srprep"):
        if not keys:
            raise StoreError("no training keys")
        if crop_pad is not None and (degrade is None or crop_pad < patch or crop_pad % scale):
            raise ValueError(f"crop_pad {crop_pad} needs on-the-fly degradation and a multiple of the scale "
                             f"{scale} that is at least the patch {patch}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.stores, self.keys, self.grid = stores, list(keys), grid
        self.scale, self.patch, self.seed = scale, patch, seed
        self.lr_fields = set(lr_fields)
        self.flip, self.rot90, self.degrade, self.cache = flip, rot90, degrade, cache
        self.crop_pad = crop_pad
        self.mode, self.epoch = mode, 0
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        self._orders: dict[int, np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:
        """``mode="basicsr"``: draw the crops and flips of this epoch (a DataLoader's workers see the value
        it had when their iterator started)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:  # one epoch; the sampler itself runs forever
        return len(self.keys)

    def _order(self, epoch: int) -> np.ndarray:
        """The key permutation of an epoch (the last two are kept: a batch may straddle two epochs)."""
        perm = self._orders.get(epoch)
        if perm is None:
            perm = sample_rng(self.seed, epoch, stream=0).permutation(len(self.keys))
            self._orders = {e: p for e, p in self._orders.items() if e == epoch - 1}
            self._orders[epoch] = perm
        return perm

    def key_at(self, index: int) -> str:
        n = len(self.keys)
        return self.keys[int(self._order(index // n)[index % n])]

    def _read(self, name: str, key: str, top: int, left: int, size: int) -> np.ndarray:
        store = self.stores[name]
        reader = getattr(store, "read_region", None)
        if reader is not None and not self.cache:
            patch = reader(key, top, left, size, size)
            if patch.ndim == 2:
                patch = np.repeat(patch[..., None], 3, axis=2)
        else:
            patch = self._read_whole(name, key)[top:top + size, left:left + size]
        if patch.shape != (size, size, 3):
            raise StoreError(f"{_store_name(store)} ({name}): item {key!r} gave a {patch.shape} patch at "
                             f"({top}, {left}); expected ({size}, {size}, 3)")
        return np.ascontiguousarray(patch)

    def _flags(self, rng: np.random.Generator) -> np.ndarray:
        flags = rng.random(3) < 0.5
        flags[0] &= self.flip  # BasicSR's use_hflip
        flags[1:] &= self.rot90  # its use_rot: vertical flip and transposition
        return flags

    def __getitem__(self, index: int) -> dict:
        if self.mode == "basicsr":
            return self._basicsr_item(index)
        return self._sample(self.key_at(index), sample_rng(self.seed, index))

    def _basicsr_item(self, index: int) -> dict:
        n = len(self.keys)
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} keys")
        key = self.keys[index]
        sample = self._sample(key, sample_rng(self.seed, self.epoch * n + index))
        flags = torch.from_numpy(sample.pop("flags"))[None]
        item = {"key": key}
        for name, value in sample.items():
            if name != "params":
                value = to_unit_float(dihedral(torch.from_numpy(value).permute(2, 0, 1)[None], flags))[0]
            item[_BASICSR_NAMES.get(name, name)] = value.contiguous() if torch.is_tensor(value) else value
        return item

    def _sample(self, key: str, rng: np.random.Generator) -> dict:
        """One key's patches (HWC uint8 per field), its flags and degradation parameters, from ``rng``."""
        if self.crop_pad is not None:
            return self._crop_pad_sample(key, rng)
        h, w = self.grid[key]
        lp = self.patch // self.scale
        y = int(rng.integers(0, h - lp + 1))
        x = int(rng.integers(0, w - lp + 1))
        out: dict = {}
        for name in self.stores:
            f = 1 if name in self.lr_fields else self.scale
            out[name] = self._read(name, key, y * f, x * f, lp * f)
        out["flags"] = self._flags(rng).astype(np.uint8)
        if self.degrade is not None:
            from srprep.ops.degrade import draw_params

            out["params"] = draw_params(self.degrade, rng, (self.patch, self.patch))
        return out

    def _crop_pad_sample(self, key: str, rng: np.random.Generator) -> dict:
        """Real-ESRGAN's GT sample (module doc): flips, reflect-101 pad to ``crop_pad``, a ``crop_pad`` crop;
        then the degradation parameters for it and the training patch's corner on the LR grid."""
        from srprep.ops.degrade import draw_params

        cp, s = self.crop_pad, self.scale
        f = self._flags(rng)
        h, w = self.stores["hr"].shape(key)[:2]
        fh, fw = (w, h) if f[2] else (h, w)  # the flipped image's size
        ph, pw = max(fh, cp), max(fw, cp)  # ... after padding
        top = int(rng.integers(0, ph - cp + 1))
        left = int(rng.integers(0, pw - cp + 1))
        if fh >= cp and fw >= cp:
            # read only the window: the crop of the flipped image is the flipped crop of the mapped window
            r0, c0 = (left, top) if f[2] else (top, left)
            r0 = h - r0 - cp if f[1] else r0
            c0 = w - c0 - cp if f[0] else c0
            gt = _flip_host(self._read("hr", key, r0, c0, cp), f)
        else:
            import cv2

            img = self._read_whole("hr", key)
            img = _flip_host(img, f)
            img = cv2.copyMakeBorder(img, 0, ph - fh, 0, pw - fw, cv2.BORDER_REFLECT_101)
            gt = np.ascontiguousarray(img[top:top + cp, left:left + cp])
        params = draw_params(self.degrade, rng, (cp, cp))
        lp, lcp = self.patch // s, cp // s
        crop = np.array([rng.integers(0, lcp - lp + 1), rng.integers(0, lcp - lp + 1)], dtype=np.int64)
        return {"hr": gt, "flags": np.zeros(3, np.uint8), "params": params, "crop": crop}

    def _read_whole(self, name: str, key: str) -> np.ndarray:
        """A whole image as (H, W, 3) uint8 (gray replicated), kept in memory with ``cache``."""
        img = self._cache.get((name, key)) if self.cache else None
        if img is None:
            img = self.stores[name].read(key)
            if self.cache:
                self._cache[(name, key)] = img
        return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def _flip_host(img: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """BasicSR's ``augment`` of one HWC image: horizontal flip, vertical flip, transposition, in that order."""
    if flags[0]:
        img = img[:, ::-1]
    if flags[1]:
        img = img[::-1]
    if flags[2]:
        img = img.transpose(1, 0, 2)
    return np.ascontiguousarray(img)


def collate_patches(samples: list[dict]) -> dict:
    """Stack per-sample arrays into (B, ...) tensors; keep degradation parameters as a list."""
    batch = {}
    for name in samples[0]:
        values = [s[name] for s in samples]
        batch[name] = values if name == "params" else torch.from_numpy(np.stack(values))
    return batch


class BatchIndexSampler(Sampler):
    """Yields the global sample indices of each step's batch for one process, from ``start_step`` on, forever.

    The indices of a step do not depend on the number of DataLoader workers, so a run is reproducible and
    resumes exactly; with ``world`` processes each takes its own slice (DistributedSampler's job).
    """

    def __init__(self, batch: int, start_step: int = 0, rank: int = 0, world: int = 1):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} out of range for world size {world}")
        self.batch, self.start, self.rank, self.world = batch, start_step, rank, world

    def indices(self, step: int) -> list[int]:
        base = (step * self.world + self.rank) * self.batch
        return list(range(base, base + self.batch))

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start
        while True:
            yield self.indices(step)
            step += 1


def make_loader(dataset: PatchDataset, *, batch: int, start_step: int, rank: int = 0, world: int = 1,
                workers: int = 0, pin_memory: bool = False, timeout: float = 0) -> DataLoader:
    """A DataLoader over :class:`BatchIndexSampler` batches (order kept; workers persistent).

    Workers are forked and run one torch thread each (the DataLoader's default). They must not call
    ``cv2.setNumThreads``: after the parent has used OpenCV's thread pool (MATLAB bicubic of the validation
    images does) that call deadlocks in a forked child.
    """
    return DataLoader(dataset, batch_sampler=BatchIndexSampler(batch, start_step, rank, world),
                      num_workers=workers, collate_fn=collate_patches, pin_memory=pin_memory,
                      persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
                      timeout=timeout if workers > 0 else 0)


class Prefetcher:
    """Moves the next batch to the device while the current step runs.

    On CUDA the copy is issued on a side stream from pinned memory (``non_blocking``), and the compute stream
    waits for it only when the batch is taken; elsewhere batches pass through unchanged.
    """

    def __init__(self, loader: DataLoader, device: torch.device):
        self.iterator = iter(loader)
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self._next = self._load()

    def _move(self, batch: dict) -> dict:
        return {k: (v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}

    def _load(self) -> dict:
        try:
            batch = next(self.iterator)
        except SrprepError as exc:
            raise _one_line(exc) from None
        if self.stream is None:
            return self._move(batch) if self.device.type != "cpu" else batch
        with torch.cuda.stream(self.stream):
            return self._move(batch)

    def next(self) -> dict:
        batch = self._next
        if self.stream is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(self.stream)
            for v in batch.values():
                if torch.is_tensor(v):
                    v.record_stream(current)  # the caching allocator must not reuse it while compute reads it
        self._next = self._load()
        return batch


def _one_line(exc: Exception) -> Exception:
    """A DataLoader worker's error as its own message: torch re-raises it with the worker's whole traceback."""
    text = str(exc)
    if "Original Traceback" not in text:
        return exc
    last = text.strip().splitlines()[-1]
    name, _, message = last.partition(": ")
    return type(exc)(message if name.rsplit(".", 1)[-1] == type(exc).__name__ else last)


def nchw(x: torch.Tensor) -> torch.Tensor:
    """(B, H, W, C) -> (B, C, H, W) view (no copy: the strides become channels-last)."""
    return x.permute(0, 3, 1, 2)


def to_unit_float(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 (or float already in [0, 1]) -> float32 in [0, 1], memory format kept."""
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    return x.float()


def _degradation_config(cfg):
    """The DegradationConfig of a run: recipe file (a path, else a shipped recipe's name), then inline
    options; the scale is the model's."""
    import yaml

    from srprep.ops.degrade import DegradationConfig
    from srprep.shipped import shipped_file

    options: dict = {}
    if cfg.degrade.recipe:
        path = Path(cfg.degrade.recipe)
        if not path.is_file():
            path = shipped_file(path, "recipe") or path
        try:
            options = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise StoreError(f"degrade.recipe: cannot read {path} ({exc})") from None
        if not isinstance(options, dict):
            raise StoreError(f"degrade.recipe: {path} is not a mapping of options")
        options.pop("strict", None)
    options = {**options, **cfg.degrade.options, "scale": cfg.model.scale}
    try:
        return DegradationConfig.from_dict(options)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"degrade options: {exc}") from None


def patch_dataset(root: str | Path, *, scale: int, patch: int, hr: str = "HR", lr: Optional[str] = None,
                  seed: int = 0, flip: bool = True, rot90: bool = True, cache: bool = False,
                  mode: str = "basicsr") -> PatchDataset:
    """A :class:`PatchDataset` of the dataset in ``root`` (a folder from ``srprep downsample`` / ``crop``, or
    ``srprep pack``'s LMDBs / HDF5), every key of the HR field, sizes checked.

    Args:
        root: the dataset folder; fields are found by name as the trainer finds them (:func:`open_field`).
        scale: LR = HR / scale. patch: HR patch side (a multiple of ``scale``).
        hr, lr: field names (``lr`` default ``X{scale}``).
        mode: "basicsr" (``{"lq", "gt"}`` float tensors, flips applied) or "srprep" (the trainer's items).

    Raises:
        StoreError: a missing field or key, sizes that are not x scale, images smaller than the patch.
    """
    if patch % scale:
        raise StoreError(f"patch {patch} is not a multiple of the scale {scale}")
    stores = {"hr": open_field(root, hr, purpose="HR"),
              "lr": open_field(root, lr or f"X{scale}", scale=scale, purpose="LR")}
    keys = list(stores["hr"].keys())
    grid = check_fields(stores, keys, scale=scale, patch=patch, lr_fields=["lr"])
    return PatchDataset(stores, keys, grid, scale=scale, patch=patch, seed=seed, lr_fields=["lr"], flip=flip,
                        rot90=rot90, cache=cache, mode=mode)


def build_dataset(cfg, holdout: Sequence[str] = ()) -> PatchDataset:
    """The training :class:`PatchDataset` of a :class:`~srprep.train.config.Config`, every field checked.

    ``holdout``: keys kept out of training (the validation images of the same data set).

    Raises:
        StoreError: a missing field (for ECO: the centroid fields, with how to make them), missing keys,
        sizes that are not x scale, images smaller than the patch.
    """
    s, d = cfg.model.scale, cfg.data
    stores = {"hr": open_field(d.root, cfg.field_name(d.hr), purpose="training HR")}
    lr_fields = []
    if not cfg.degrade.enabled:
        stores["lr"] = open_field(d.root, cfg.field_name(d.lr), scale=s, purpose="training LR")
        lr_fields.append("lr")
    if cfg.eco.enabled:
        how = ("ECO is on (eco.enabled) and needs the centroid fields; make them with `srprep centroids` "
               "or set eco.enabled=false")
        stores["hr_c"] = open_field(d.root, cfg.field_name(d.centroid_hr), purpose=how)
        stores["lr_c"] = open_field(d.root, cfg.field_name(d.centroid_lr), scale=s, purpose=how)
        lr_fields.append("lr_c")
    keys = list(d.keys) if d.keys else list(stores["hr"].keys())
    held = set(holdout)
    keys = [k for k in keys if k not in held]
    if not keys:
        raise StoreError(f"{d.root}: no training keys left after holding out the validation keys {sorted(held)}")
    crop_pad = cfg.degrade.crop_pad if cfg.degrade.enabled else None
    # Real-ESRGAN pads a GT smaller than crop_pad, so with it any image of at least 2x2 (reflect-101) will do
    grid = check_fields(stores, keys, scale=s, patch=d.patch if crop_pad is None else 2 * s, lr_fields=lr_fields)
    degrade = _degradation_config(cfg) if cfg.degrade.enabled else None
    log.info("training data: %d images from %s (%s)", len(keys), d.root or ".", ", ".join(
        f"{n}={_store_name(st)}" for n, st in stores.items()))
    return PatchDataset(stores, keys, grid, scale=s, patch=d.patch, seed=cfg.train.seed, lr_fields=lr_fields,
                        flip=d.flip, rot90=d.rot90, degrade=degrade, crop_pad=crop_pad, cache=d.cache)
