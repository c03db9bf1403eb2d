"""Fixtures shared by the stage tests that run a real network: the real IMDN x2 weights."""
import pytest
import torch

from srprep.models import load_pretrained


@pytest.fixture(scope="module")
def weights(ref_data):
    """Path of the real IMDN x2 weights (``IMDN_x2.pth``) in tests/data."""
    return ref_data / "weights" / "IMDN_x2.pth"


@pytest.fixture(scope="module")
def imdn(weights):
    """The IMDN x2 network loaded from :func:`weights`, once per test module, with one torch thread: the one
    thread every network step runs its items with (its pixels do not depend on the machine's cores)."""
    torch.set_num_threads(1)
    return load_pretrained(weights)[0]
