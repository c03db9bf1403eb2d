"""Shared fixtures: the real reference data beside the checkout, and small generated images."""
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
SAMPLES = REPO / "srprep" / "samples"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the reference data (Set5 HR/LR, MATLAB .mat files, AIM2020 lists, IMDN weights)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def samples() -> Path:
    """Path of the images bundled inside the package (set5/, kodak/)."""
    return SAMPLES


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
