"""srprep: dataset preparation for single-image super-resolution.

The command line (``srprep --help``) is the main way in. From Python, the pieces a notebook wants::

    import srprep
    lr = srprep.imresize_matlab(hr, 1 / 4)                      # MATLAB-exact bicubic, (H, W, C) uint8 numpy
    store = srprep.open_store("data/DIV2K_packed/HR.lmdb")       # .keys(), .read(key) -> (H, W, 3) uint8
    model, info = srprep.load_pretrained("IMDN_x2.pth")         # any common checkpoint layout, weights only
    ds = srprep.patch_dataset("data/DIV2K", scale=2, patch=96)  # {"lq", "gt"} float CHW tensors in [0, 1]

They are loaded on first use, so ``import srprep`` stays light (no torch until a name that needs it).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "imresize_matlab": "srprep.ops.imresize",
    "imresize_matlab_torch": "srprep.ops.imresize_torch",
    "read_image": "srprep.io.images",
    "write_image": "srprep.io.images",
    "open_store": "srprep.io.stores",
    "load_pretrained": "srprep.models",
    "create_model": "srprep.models",
    "PatchDataset": "srprep.train.data",
    "patch_dataset": "srprep.train.data",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:  # for editors and type checkers; at run time the names are loaded on first use
    from srprep.io.images import read_image as read_image
    from srprep.io.images import write_image as write_image
    from srprep.io.stores import open_store as open_store
    from srprep.models import create_model as create_model
    from srprep.models import load_pretrained as load_pretrained
    from srprep.ops.imresize import imresize_matlab as imresize_matlab
    from srprep.ops.imresize_torch import imresize_matlab_torch as imresize_matlab_torch
    from srprep.train.data import PatchDataset as PatchDataset
    from srprep.train.data import patch_dataset as patch_dataset


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'srprep' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
