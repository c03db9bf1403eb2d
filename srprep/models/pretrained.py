"""Loading pretrained weights in the formats people distribute, and srprep's own checkpoint format.

Recognised containers (detected from the file's content, not its name):

* srprep checkpoints: ``{"arch", "scale", "kwargs", "config", "model": state_dict}`` (see :func:`save_checkpoint`);
* BasicSR ``.pth``: ``{"params_ema": ..., "params": ...}`` (``params_ema`` preferred: the EMA weights are the
  ones BasicSR evaluates and publishes);
* official EDSR-PyTorch / RCAN ``.pt``: plain state dicts with ``sub_mean.*``, ``head.0.*``, ``body.*``, ``tail.*``;
* other programs' key names for srprep's networks (BasicSR's EDSR and RCAN, the Reflash Dropout SRResNets):
  recognised and renamed by :mod:`srprep.models.layouts`;
* any plain state dict, also wrapped as ``{"state_dict": ...}``, with ``module.`` (DataParallel) or
  ``_orig_mod.`` (torch.compile) prefixes stripped;
* ``.safetensors`` files (needs the optional ``safetensors`` package).

Architectures srprep has no code for load through the optional spandrel backend
(:mod:`srprep.models.spandrel_backend`), from the same safely read tensors.

Pickled files are always read with ``torch.load(..., weights_only=True)``, which cannot run code from the file;
a checkpoint that pickles other objects is refused unless the caller passes ``trust_checkpoint=True``
(``--trust-checkpoint`` on the command line).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

from srprep.errors import SrprepError, write_error
from srprep.models import layouts
from srprep.models import spandrel_backend
from srprep.models.registry import create_model, get_entry, iter_entries
from srprep.models.user import is_user_spec

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

CHECKPOINT_FORMAT = "srprep-checkpoint"
CHECKPOINT_VERSION = 1
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP, torch.compile
_SHOW = 5  # how many offending keys an error message names


@dataclass(frozen=True)
class PretrainedInfo:
    """What :func:`load_pretrained` found.

    ``source_format`` is one of ``"srprep"``, ``"basicsr:params_ema"``, ``"basicsr:params"``, ``"edsr-pytorch"``,
    ``"state_dict"``, ``"safetensors"``, ``"pickled-module"``; ``stripped_prefix`` is the wrapper prefix removed
    from every key (e.g. ``"module."``) or ``""``. ``config`` is the training config stored in srprep checkpoints.
    ``key_layout`` names the foreign key layout the weights were renamed from (see :mod:`srprep.models.layouts`)
    or is ``""``.
    """

    arch: str
    scale: int
    kwargs: dict
    source_format: str
    sha256: str
    path: str = ""
    stripped_prefix: str = ""
    config: Optional[dict] = field(default=None, repr=False)
    key_layout: str = ""


# --- reading ------------------------------------------------------------------------------------------------


def file_sha256(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_safetensors(path: Path) -> bool:
    # safetensors layout: u64 little-endian header length, then a JSON header starting with '{'.
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 0 < n < os.path.getsize(path)


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    try:
        from safetensors import safe_open  # optional dependency, imported only when needed
    except ImportError:
        raise SrprepError(
            f"{path}: is a safetensors file, but the 'safetensors' package is not installed; "
            "install it with: pip install safetensors"
        ) from None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except Exception as exc:  # the library raises its own error types for corrupt files
        raise SrprepError(f"{path}: cannot read safetensors file: {exc}") from exc
    return tensors, metadata


def _json_metadata(text: str, path: Path) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise SrprepError(f"{path}: safetensors metadata 'kwargs' is not a JSON object")
    return value
def _unsafe_global(path: Path, message: str) -> str | None:
    """The first Python global a checkpoint's pickle names that the weights-only reader refuses, or None.

    Asked of torch (it lists them without running anything) where it can; otherwise read from its error
    message, whose wording changed between releases."""
    lister = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if lister is not None:
        try:
            names = lister(path)
            if names:
                return names[0]
        except Exception:  # noqa: BLE001 - fall back to the message
            pass
    m = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", message)
    return m.group(1) if m else None


def _read_pickle(path: Path, trust_checkpoint: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if not trust_checkpoint:
            name = _unsafe_global(path, message)
            if name:
                raise SrprepError(
                    f"{path}: the checkpoint pickles a Python object ({name}), not just tensors; loading it "
                    "would run code from the file. If you trust its source, pass --trust-checkpoint "
                    "(trust_checkpoint=True)."
                ) from None
            raise SrprepError(
                f"{path}: not a readable PyTorch weights file (corrupt, or a pickle the safe reader refuses); "
                "if it is a full pickle from a source you trust, --trust-checkpoint (trust_checkpoint=True) "
                "may read it."
            ) from None
    except Exception as exc:  # corrupt data surfaces as many types (RuntimeError, EOFError, IndexError...)
        raise SrprepError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from exc
    log.warning("%s: loading with weights_only=False (trusted checkpoint): the file may run code", path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # arbitrary unpickling errors: missing modules, corrupt data...
        raise SrprepError(f"{path}: cannot read checkpoint even as a full pickle: {exc}") from exc


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _unwrap(obj: Any, path: Path) -> tuple[dict, str, dict]:
    """Find the state dict inside a loaded checkpoint: (state_dict, source_format, srprep metadata)."""
    if isinstance(obj, nn.Module):
        return dict(obj.state_dict()), "pickled-module", {}
    if not isinstance(obj, Mapping):
        raise SrprepError(f"{path}: checkpoint holds a {type(obj).__name__}, not a state dict")
    if obj.get("format") == CHECKPOINT_FORMAT or ("arch" in obj and "model" in obj):
        state = obj.get("model")
        if not _is_state_dict(state):
            raise SrprepError(f"{path}: srprep checkpoint without a 'model' state dict")
        meta = {k: obj.get(k) for k in ("arch", "scale", "kwargs", "config")}
        return dict(state), "srprep", meta
    for key in ("params_ema", "params"):
        if _is_state_dict(obj.get(key)):
            return dict(obj[key]), f"basicsr:{key}", {}
    if _is_state_dict(obj):
        return dict(obj), "state_dict", {}
    for key in ("state_dict", "model", "net", "generator"):
        if _is_state_dict(obj.get(key)):
            return dict(obj[key]), "state_dict", {}
    keys = ", ".join(map(str, list(obj)[:_SHOW]))
    raise SrprepError(f"{path}: no state dict found in the checkpoint (top-level keys: {keys})")


def _strip_wrapper_prefixes(state: dict) -> tuple[dict, str]:
    """Remove prefixes that every key carries (``module.``, ``_orig_mod.``, possibly nested)."""
    stripped = ""
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                stripped += prefix
                changed = True
    return state, stripped


# --- architecture inference -----------------------------------------------------------------------------------


def infer_architecture(state: Mapping[str, Any]) -> tuple[str, Optional[int], dict]:
    """(arch, scale, constructor kwargs) of a state dict, from its key names and tensor shapes.

    ``scale`` is None when the weights do not record it (multi-scale CARN files, FSRCNN, SRCNN, PAN x2/x3).

    Raises :class:`SrprepError` if no registered architecture recognises the keys.
    """
    for entry in iter_entries():
        if entry.infer is None or entry.alias_of is not None:
            continue
        config = entry.infer(state)
        if config is not None:
            config = dict(config)
            scale = config.pop("scale")
            return entry.name, None if scale is None else int(scale), config
    sample = ", ".join(list(state)[:_SHOW])
    known = ", ".join(e.name for e in iter_entries() if e.infer is not None and e.alias_of is None)
    raise SrprepError(
        f"cannot tell the architecture from the checkpoint keys ({len(state)} keys, e.g. {sample}); "
        f"known layouts: {known}; pass the architecture explicitly"
    )


def _mismatch_report(model: nn.Module, state: Mapping[str, torch.Tensor]) -> Optional[str]:
    """None if ``state`` fits ``model`` exactly, else a short description of the differences."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches (checkpoint vs model)", wrong_shape)):
        if items:
            more = f", ... ({len(items) - _SHOW} more)" if len(items) > _SHOW else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:_SHOW])}{more}")
    return "; ".join(parts) or None


# --- public API -----------------------------------------------------------------------------------------------


def load_pretrained(
    path: PathLike,
    arch: Optional[str] = None,
    scale: Optional[int] = None,
    *,
    trust_checkpoint: bool = False,
    device: Union[str, torch.device] = "cpu",
    model_kwargs: Optional[Mapping[str, Any]] = None,
) -> tuple[nn.Module, PretrainedInfo]:
    """Build the network a checkpoint file was saved from and load its weights (strictly).

    Args:
        path: checkpoint file (any format listed in this module's docstring).
        arch: registry name (see :func:`srprep.models.list_models`) or a user network spec (imported:
            :mod:`srprep.models.user`); inferred from the keys when None. A checkpoint saved from a user
            network is refused without ``arch``: a file never chooses the code that is imported.
        scale: upscaling factor; inferred when None. A value that contradicts the weights is an error.
        trust_checkpoint: allow full unpickling (``weights_only=False``) for files that need it.
        device: where the returned model lives.
        model_kwargs: extra constructor arguments (e.g. ``res_scale``, ``dropout``); they override inferred ones.

    Returns:
        ``(model, info)``: the model in eval mode on ``device``, and a :class:`PretrainedInfo`.

    Raises:
        SrprepError: unreadable file, refused pickle, unknown layout, or weights that do not fit the network
        (the message names a few missing / unexpected / mis-shaped keys and their counts).
    """
    path = Path(path)
    if not path.is_file():
        raise SrprepError(f"{path}: checkpoint file not found")
    meta: dict = {}
    if _is_safetensors(path):
        state, st_meta = _read_safetensors(path)
        fmt = "safetensors"
        if "arch" in st_meta:
            meta["arch"] = st_meta["arch"]
        if "scale" in st_meta and st_meta["scale"].isdigit():
            meta["scale"] = int(st_meta["scale"])
        if "kwargs" in st_meta:
            meta["kwargs"] = _json_metadata(st_meta["kwargs"], path)
    else:
        state, fmt, meta = _unwrap(_read_pickle(path, trust_checkpoint), path)
    state, stripped = _strip_wrapper_prefixes(state)
    if fmt == "state_dict" and "sub_mean.weight" in state and "head.0.weight" in state:
        fmt = "edsr-pytorch"
    state, layout = layouts.to_srprep(state)

    arch_name = arch or meta.get("arch")
    if arch is None and arch_name is not None and is_user_spec(arch_name):
        # the file names code; srprep imports code only when the user names it
        raise SrprepError(f"{path}: saved from the network {arch_name!r}, which is not part of srprep; pass it "
                          f"yourself (--arch {arch_name}, or model.name) to import that code, if you trust it")
    if arch_name is None:
        try:
            arch_name, found_scale, kwargs = infer_architecture(state)
        except SrprepError as unknown:  # no srprep architecture knows the keys: the optional spandrel backend may
            arch_name = spandrel_backend.recognise(state, unknown)
    elif not spandrel_backend.is_spandrel_arch(arch_name):
        entry = get_entry(arch_name)
        arch_name = entry.name
        config = entry.infer(state) if entry.infer is not None else None
        if config is not None:
            config = dict(config)
            found_scale = config.pop("scale")
            kwargs = config
        else:
            found_scale, kwargs = None, {}
    if spandrel_backend.is_spandrel_arch(arch_name):
        model, arch_name, built_scale = spandrel_backend.build(state, arch_name, scale, path)
        return model.to(device).eval(), PretrainedInfo(
            arch=arch_name, scale=built_scale, kwargs={}, source_format=fmt, sha256=file_sha256(path),
            path=str(path), stripped_prefix=stripped)
    if meta.get("kwargs"):
        kwargs = {**kwargs, **meta["kwargs"]}
    if found_scale is None:
        found_scale = meta.get("scale")
    if scale is not None and found_scale is not None and int(scale) != int(found_scale):
        raise SrprepError(f"{path}: the weights are for x{found_scale}, but x{scale} was requested")
    if scale is None and found_scale is None:
        raise SrprepError(f"{path}: the {arch_name} weights do not record their scale (one file for several "
                          "scales, or the same shapes at every scale); pass it explicitly (--scale)")
    final_scale = int(scale if scale is not None else found_scale)
    kwargs = {**kwargs, **dict(model_kwargs or {})}

    model = create_model(arch_name, scale=final_scale, **kwargs)
    if layout is not None:
        state = layout.complete(state, model)
    problems = _mismatch_report(model, state)
    if problems:
        try:
            other, other_scale, _ = infer_architecture(state)
            hint = f" (the keys look like {other}{f' x{other_scale}' if other_scale else ''})"
        except SrprepError:
            hint = ""
        raise SrprepError(f"{path}: weights do not fit {arch_name} x{final_scale} {kwargs}: {problems}{hint}")
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    info = PretrainedInfo(
        arch=arch_name, scale=final_scale, kwargs=kwargs, source_format=fmt, sha256=file_sha256(path),
        path=str(path), stripped_prefix=stripped, config=meta.get("config"),
        key_layout=layout.name if layout is not None else "",
    )
    log.info("loaded %s x%d from %s (%s, sha256 %s)", arch_name, final_scale, path, fmt, info.sha256[:12])
    return model, info


def _plain(value: Any, where: str) -> Any:
    """Convert a config value to types the weights-only reader accepts (Path -> str, tuple -> list)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise SrprepError(f"checkpoint config {where}: cannot store a {type(value).__name__}; use plain values")


def save_checkpoint(
    model: nn.Module, path: PathLike, arch: str, scale: int, config: Optional[Mapping[str, Any]] = None
) -> Path:
    """Write an srprep checkpoint that :func:`load_pretrained` reads back with ``weights_only=True``.

    Layout: ``{"format": "srprep-checkpoint", "version": 1, "arch", "scale", "kwargs", "config", "model"}`` where
    ``model`` is the CPU state dict (DataParallel / compile prefixes removed) and ``kwargs`` the network's
    constructor arguments (its ``arch_kwargs``). ``config`` must hold plain values (numbers, strings, lists,
    dicts; paths are stored as strings). The file is written atomically (temporary file + rename).
    """
    entry = get_entry(arch)
    inner = model
    while True:  # unwrap DataParallel / DistributedDataParallel / torch.compile wrappers
        if isinstance(inner, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            inner = inner.module
        elif isinstance(getattr(inner, "_orig_mod", None), nn.Module):
            inner = inner._orig_mod
        else:
            break
    state, _ = _strip_wrapper_prefixes({k: v.detach().cpu() for k, v in inner.state_dict().items()})
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": entry.name,
        "scale": int(scale),
        "kwargs": _plain(getattr(inner, "arch_kwargs", {}), "kwargs"),
        "config": _plain(dict(config or {}), "config"),
        "model": state,
    }
    return save_torch_atomic(path, payload)


def save_torch_atomic(path: str | os.PathLike, payload) -> Path:
    """``torch.save`` through a temporary file in the same folder and a rename: never a torn checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, (OSError, RuntimeError)):  # torch reports a failed write as a RuntimeError
            raise write_error(path, exc, "cannot write the checkpoint") from exc
        raise
    return path
