"""Run plain Pillow's ``Image.resize`` beside pillow-simd, for tests that compare against it.

pillow-simd is srprep's PIL and both packages own the ``PIL/`` folder, so plain Pillow cannot live in the
same environment. ``scripts/setup.sh --test`` installs it into ``<venv>/plain-pillow`` with
``pip install --target``; the resizes run in a subprocess with that folder first on ``sys.path``.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np
import pytest

PLAIN_PILLOW = Path(sys.prefix) / "plain-pillow"

# Runs in the subprocess: resize every job of an .npz with plain Pillow and save the results.
_SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import PIL
from PIL import Image
from importlib import metadata
if not PIL.__file__.startswith(sys.argv[1]):
    sys.exit(f"PIL was imported from {PIL.__file__}, not from {sys.argv[1]}")
dist = [d for d in metadata.distributions(path=[sys.argv[1]]) if d.metadata["Name"].lower() == "pillow"]
if not dist:
    sys.exit(f"no plain pillow distribution in {sys.argv[1]}")
filters = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "lanczos": Image.LANCZOS}
jobs = np.load(sys.argv[2])
out = {}
for name in jobs.files:
    if not name.startswith("img:"):
        continue
    key = name[4:]
    h, w = (int(v) for v in jobs["size:" + key])
    flt = str(jobs["filter:" + key])
    im = Image.fromarray(jobs[name])
    # "default": Image.resize without a filter argument (its default filter).
    res = im.resize((w, h)) if flt == "default" else im.resize((w, h), filters[flt])
    out[key] = np.asarray(res)
np.savez(sys.argv[3], **out)
print(PIL.__version__)
"""


def require_plain_pillow() -> Path:
    """The plain Pillow folder; skips the calling test when it is absent."""
    if not (PLAIN_PILLOW / "PIL").is_dir():
        pytest.skip(f"plain Pillow not found in {PLAIN_PILLOW} (install it with scripts/setup.sh --test, or "
                    f"`pip install --target {PLAIN_PILLOW} pillow`)")
    return PLAIN_PILLOW


def plain_pillow_resize(jobs: Mapping[str, tuple[np.ndarray, tuple[int, int], str]]
                        ) -> tuple[tuple[int, ...], dict[str, np.ndarray]]:
    """Resize with plain Pillow: ``{key: (uint8 image, (out_h, out_w), filter)}`` -> (Pillow's version,
    ``{key: result}``). ``filter`` is "bicubic", "bilinear", "lanczos" or "default" (no filter argument).
    Skips the calling test when plain Pillow is not installed."""
    folder = require_plain_pillow()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "jobs.npz", Path(tmp) / "out.npz"
        arrays = {}
        for key, (img, size, flt) in jobs.items():
            arrays[f"img:{key}"] = np.ascontiguousarray(img)
            arrays[f"size:{key}"] = np.asarray(size)
            arrays[f"filter:{key}"] = np.asarray(flt)
        np.savez(src, **arrays)
        run = subprocess.run([sys.executable, "-c", _SCRIPT, str(folder), str(src), str(dst)],
                             capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            raise RuntimeError(f"plain Pillow subprocess failed: {run.stderr.strip()[-2000:]}")
        with np.load(dst) as res:
            out = {k: res[k] for k in res.files}
    version = tuple(int(p) for p in run.stdout.strip().split(".")[:2])
    return version, out
