"""Networks that users bring: ``"package.module:ClassOrFactory"`` or ``"path/to/file.py:ClassOrFactory"``.

The contract (the same as srprep's own networks): ``factory(scale=s, **kwargs)`` returns an ``nn.Module`` that
maps float NCHW RGB in [0, 1], shape (N, 3, H, W), to float (N, 3, H*s, W*s) in about [0, 1]. Anything
else (normalisation, a mean shift, an internal 0-255 range) stays inside the module.

Importing a module runs its code. srprep imports one only when the user names it (``model.name`` in a
training config, ``--arch`` on the command line); a checkpoint that was saved from a user network records the
name, but :func:`srprep.models.load_pretrained` never imports what a file names on its own.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

from torch import nn

from srprep.errors import SrprepError

__all__ = ["is_user_spec", "load_user_factory"]


def is_user_spec(name: str) -> bool:
    """True for ``"module:attr"`` / ``"file.py:attr"`` specs (registry names never contain a colon)."""
    module, sep, attr = str(name).rpartition(":")
    return bool(sep and module and attr)


def _import_file(path: Path, spec: str):
    """Import a ``.py`` file under a name derived from its absolute path (importing it again reuses it)."""
    if not path.is_file():
        raise SrprepError(f"model {spec!r}: no such file {path}")
    resolved = path.resolve()
    name = f"srprep_user_{resolved.stem}_{hashlib.sha256(str(resolved).encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise SrprepError(f"model {spec!r}: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # before running it, as the import system does (dataclasses, pickling need it)
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _construct(factory: Callable[..., Any], spec: str, /, scale: int, **kwargs: Any) -> nn.Module:
    try:
        model = factory(scale=scale, **kwargs)
    except TypeError:
        raise  # a bad keyword: create_model names the arguments
    except Exception as exc:  # whatever the user's constructor raises
        raise SrprepError(f"model {spec!r}: constructing it with scale={scale} and {kwargs} failed "
                          f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(model, nn.Module):
        raise SrprepError(f"model {spec!r}: returned a {type(model).__name__}, not a torch.nn.Module")
    if not hasattr(model, "arch_kwargs"):
        # what srprep checkpoints record to build the network again (srprep's own networks set it themselves)
        model.arch_kwargs = dict(kwargs)
    return model


def load_user_factory(spec: str) -> Callable[..., nn.Module]:
    """Import the module of ``spec`` and return a constructor ``f(scale=s, **kwargs) -> nn.Module``.

    ``spec`` is ``"package.module:Name"`` (the module must be importable: on ``sys.path``/``PYTHONPATH``) or
    ``"path/to/file.py:Name"`` (relative to the working directory); ``Name`` may be dotted (``Outer.build``).
    This runs the module's code.

    Raises:
        SrprepError: a malformed spec, a missing file or module, an import that fails (its exception type and
        message are in the error), no such attribute, or an attribute that is not callable.
    """
    if not is_user_spec(spec):
        raise SrprepError(f"model {spec!r}: expected package.module:ClassOrFactory or path/to/file.py:ClassOrFactory")
    module_name, _, attr = spec.rpartition(":")
    try:
        if module_name.endswith(".py") or "/" in module_name:
            module = _import_file(Path(module_name), spec)
        else:
            module = importlib.import_module(module_name)
    except SrprepError:
        raise
    except ModuleNotFoundError as exc:
        raise SrprepError(f"model {spec!r}: cannot import {module_name!r} ({exc}); put its folder on PYTHONPATH "
                          f"or name the file: path/to/file.py:{attr}") from exc
    except Exception as exc:  # whatever the user's module raises while it is imported
        raise SrprepError(f"model {spec!r}: importing {module_name!r} failed ({type(exc).__name__}: {exc})") from exc
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise SrprepError(f"model {spec!r}: {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise SrprepError(f"model {spec!r}: {attr!r} is a {type(target).__name__}, not a class or function")
    return functools.partial(_construct, target, spec)
