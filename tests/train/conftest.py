"""Small data sets for the trainer tests, built once per session from the bundled Kodak crops."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from srprep.io.images import read_image, write_image
from srprep.ops.imresize import imresize_matlab

torch.set_num_threads(1)  # the tests share two cores with other jobs


@pytest.fixture(scope="session")
def kodak_x2(samples, tmp_path_factory) -> Path:
    """The dataset `srprep downsample srprep/samples/kodak DATA --scale 2` writes (DATA/HR, DATA/X2)."""
    data = tmp_path_factory.mktemp("kodak") / "DATA"
    from srprep.stages.downsample import downsample

    downsample(samples / "kodak", data, [2], jobs=1, progress=False)
    return data


@pytest.fixture(scope="session")
def kodak_eco(kodak_x2, tmp_path_factory) -> Path:
    """kodak_x2 plus ECO centroid fields from a stand-in "pretrained network": MATLAB bicubic x2 of the LR.

    sr_pretrained/<key>.png = imresize(lr, 2); lr_pretrained/<key>x2.png = imresize(sr_pretrained, 1/2), the
    layout `srprep centroids` writes.
    """
    data = tmp_path_factory.mktemp("kodak_eco") / "DATA"
    shutil.copytree(kodak_x2, data)
    (data / "sr_pretrained").mkdir()
    (data / "lr_pretrained").mkdir()
    for lr_path in sorted((data / "X2").glob("*.png")):
        key = lr_path.stem[:-2]
        sr = imresize_matlab(read_image(lr_path), 2.0)
        write_image(data / "sr_pretrained" / f"{key}.png", sr)
        write_image(data / "lr_pretrained" / f"{key}x2.png", imresize_matlab(sr, 0.5))
    return data


@pytest.fixture(scope="session")
def kodak_lmdb(kodak_x2, tmp_path_factory) -> Path:
    """kodak_x2 packed by `srprep pack` into raw LMDBs (HR.lmdb, X2.lmdb)."""
    from srprep.stages.pack import pack

    dst = tmp_path_factory.mktemp("kodak_lmdb") / "PACKED"
    pack(kodak_x2, dst, fmt="lmdb", encoding="raw", jobs=1, progress=False)
    return dst


@pytest.fixture(scope="session")
def kodak_hdf5(kodak_x2, tmp_path_factory) -> Path:
    from srprep.stages.pack import pack

    dst = tmp_path_factory.mktemp("kodak_h5") / "PACKED"
    pack(kodak_x2, dst, fmt="hdf5", encoding="raw", jobs=1, progress=False)
    return dst


class DictStore:
    """An in-memory store (the Store interface) for synthetic data."""

    def __init__(self, items: dict):
        self.items = items

    def keys(self):
        return list(self.items)

    def read(self, key):
        return self.items[key]

    def shape(self, key):
        return self.items[key].shape

    def fingerprint(self):
        return "mem"

    def item_fingerprint(self, key):
        return key


def coordinate_images(h: int, w: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """HR whose pixel (i, j) holds (i % 256, j % 256, i // 256 + 16 * (j // 256)), and the LR that samples it
    at (s i, s j): an LR patch lines up with an HR patch exactly when their first pixels say so."""
    i, j = np.meshgrid(np.arange(h * scale), np.arange(w * scale), indexing="ij")
    hr = np.stack([i % 256, j % 256, i // 256 + 16 * (j // 256)], axis=-1).astype(np.uint8)
    return hr, np.ascontiguousarray(hr[::scale, ::scale])
