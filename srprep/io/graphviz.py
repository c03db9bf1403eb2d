"""Rendering Graphviz DOT text to a picture with the ``dot`` program, when it is installed."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import SrprepError

__all__ = ["dot_available", "render_dot", "write_dot"]

FORMATS = ("png", "svg", "pdf")


def dot_available() -> bool:
    """Whether Graphviz's ``dot`` is on the PATH (Debian/Ubuntu: ``apt-get install graphviz``)."""
    return shutil.which("dot") is not None


def write_dot(text: str, path: str | os.PathLike) -> Path:
    """Write DOT ``text`` to ``path`` (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def render_dot(text: str, path: str | os.PathLike) -> Path:
    """Render DOT ``text`` to ``path``; the format comes from its suffix (.png, .svg, .pdf). Written atomically.

    Raises:
        SrprepError: no ``dot`` program, an unknown suffix, or ``dot`` failing (its message included).
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise SrprepError(f"{path}: cannot render a graph to .{fmt} (use {', '.join('.' + f for f in FORMATS)})")
    dot = shutil.which("dot")
    if dot is None:
        raise SrprepError(f"{path}: rendering the graph needs Graphviz's dot program (apt-get install graphviz); "
                          "--graph-dot writes the DOT text without it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        proc = subprocess.run([dot, f"-T{fmt}", "-o", str(tmp)], input=text, text=True, capture_output=True,
                              timeout=120)
        if proc.returncode != 0:
            raise SrprepError(f"{path}: dot failed: {' '.join(proc.stderr.split())}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
