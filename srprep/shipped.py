"""Files shipped inside the package, found by name: pipelines, training configs, degradation recipes.

``srprep run quickstart`` runs ``srprep/pipelines/quickstart.yaml``, ``srprep train -c tiny_cpu`` reads
``srprep/configs/tiny_cpu.yaml`` and ``--recipe mild`` (or ``degrade.recipe: mild`` in a config) reads
``srprep/configs/degrade/mild.yaml``. A path to an existing file always wins over a shipped name.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import SrprepError

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLES = PACKAGE_DIR / "samples"
PIPELINES = PACKAGE_DIR / "pipelines"
CONFIGS = PACKAGE_DIR / "configs"
RECIPES = CONFIGS / "degrade"

_FOLDERS = {"pipeline": PIPELINES, "config": CONFIGS, "recipe": RECIPES}


def shipped_names(kind: str) -> list[str]:
    """Names of the shipped files of a kind ("pipeline", "config" or "recipe"), sorted."""
    return sorted(p.stem for p in _FOLDERS[kind].glob("*.yaml"))


def shipped_file(name: str | os.PathLike, kind: str) -> Path | None:
    """The shipped file ``name`` (with or without ``.yaml``) names, or None (also for anything with a folder)."""
    name = str(name)
    if not name or os.sep in name or "/" in name:
        return None
    for candidate in (_FOLDERS[kind] / name, _FOLDERS[kind] / f"{name}.yaml"):
        if candidate.suffix == ".yaml" and candidate.is_file():
            return candidate
    return None


def find_file(value: str | os.PathLike, kind: str) -> Path:
    """``value`` if it is an existing file, else the shipped file of that name.

    Raises:
        SrprepError: neither, naming the value and the shipped names.
    """
    path = Path(value)
    if path.is_file():
        return path
    found = shipped_file(value, kind)
    if found is not None:
        return found
    raise SrprepError(f"{value}: no such file, and no shipped {kind} of that name "
                      f"(shipped: {', '.join(shipped_names(kind))})")
