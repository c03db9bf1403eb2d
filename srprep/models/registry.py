"""Name -> network constructor registry.

Architectures register themselves when their module is imported (``@register_model("edsr")`` on the class or on
a preset function); :mod:`srprep.models` imports every architecture module explicitly, so the registry is complete
as soon as the package is imported. Nothing scans folders or entry points.

A registered constructor is called as ``factory(scale=scale, **kwargs)`` and returns an ``nn.Module`` that maps
float NCHW input in [0, 1] to float NCHW output in (about) [0, 1], ``scale`` times larger.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from torch import nn

from srprep.errors import SrprepError
from srprep.models.user import is_user_spec, load_user_factory

# An inferer looks at a state dict (already stripped of wrapper prefixes) and returns
# ``{"scale": s, **kwargs}`` if the keys are this architecture's layout, else None.
Inferer = Callable[[Mapping[str, Any]], Optional[dict]]


@dataclass(frozen=True)
class ModelEntry:
    """One registry row: the public name, the constructor and (for base architectures) a key-layout inferer."""

    name: str
    factory: Callable[..., nn.Module]
    infer: Optional[Inferer] = None
    description: str = ""
    alias_of: Optional[str] = None  # another name for the same network (same weights layout)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str, *, infer: Optional[Inferer] = None, description: str = "", alias_of: Optional[str] = None
):
    """Decorator that registers a model class or factory function under ``name`` (lower-case).

    ``infer`` recognises checkpoints of this architecture (see :data:`Inferer`); when omitted and the decorated
    object has a callable ``infer_config`` attribute (a staticmethod on the class), that is used.
    ``alias_of`` marks ``name`` as another name of an already registered network: it then shares that
    network's inferer, but checkpoint auto-detection reports the original name.
    Registering the same name twice is a programming error and raises ``ValueError``.
    """
    key = name.lower()

    def decorate(obj):
        if key in _REGISTRY:
            raise ValueError(f"model name {key!r} is already registered")
        inferer = infer if infer is not None else getattr(obj, "infer_config", None)
        if inferer is None and alias_of is not None:
            inferer = get_entry(alias_of).infer
        doc_lines = (obj.__doc__ or "").strip().splitlines()
        summary = description or (doc_lines[0] if doc_lines else "")
        _REGISTRY[key] = ModelEntry(key, obj, inferer, summary, alias_of.lower() if alias_of else None)
        return obj

    return decorate


def list_models() -> list[str]:
    """Sorted names accepted by :func:`create_model`."""
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registry row for ``name``; raises :class:`SrprepError` listing the known names if absent.

    A user network spec (``"package.module:Class"``, ``"path/file.py:Class"``, see :mod:`srprep.models.user`)
    gets a row of its own, built on the spot: this imports the user's module (runs its code).
    """
    if is_user_spec(name):
        return ModelEntry(name, load_user_factory(name), description="user network")
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise SrprepError(f"unknown model {name!r}; known models: {', '.join(list_models())}, or a network of "
                          f"your own as package.module:Class or path/to/file.py:Class") from None


def iter_entries() -> list[ModelEntry]:
    """All registry rows, in registration order."""
    return list(_REGISTRY.values())


def create_model(name: str, scale: int = 4, **kwargs: Any) -> nn.Module:
    """Build the registered network ``name`` for upscaling factor ``scale``; ``kwargs`` go to its constructor.

    Raises :class:`SrprepError` for an unknown name, an unsupported scale or a bad keyword.
    """
    entry = get_entry(name)
    try:
        return entry.factory(scale=scale, **kwargs)
    except TypeError as exc:
        # A misspelt keyword should read as a user error, not a traceback.
        raise SrprepError(f"model {entry.name!r}: bad arguments {sorted(kwargs)}: {exc}") from exc


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters (the count papers report: learnable weights, not fixed buffers such as MeanShift)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
