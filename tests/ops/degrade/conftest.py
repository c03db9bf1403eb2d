"""Fixtures for the degradation tests: real photos as RGB uint8 arrays."""
from pathlib import Path

import cv2
import numpy as np
import pytest


def read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


@pytest.fixture(scope="session")
def kodak(samples) -> list[np.ndarray]:
    """kodim01..08 bundled with srprep (RGB uint8)."""
    return [read_rgb(samples / "kodak" / f"kodim0{i}.png") for i in range(1, 9)]


@pytest.fixture(scope="session")
def photo(samples) -> np.ndarray:
    """One bundled real photo (Kodak kodim03), RGB uint8, cropped to 256x256."""
    return read_rgb(samples / "kodak" / "kodim03.png")[100:356, 100:356].copy()


@pytest.fixture(scope="session")
def set5_butterfly(samples) -> np.ndarray:
    """Set5 butterfly (256x256), RGB uint8."""
    return read_rgb(samples / "set5" / "butterfly.png")
