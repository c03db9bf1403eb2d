"""Explicit, order-independent random streams: one per (seed, item key).

:func:`item_rng` derives a ``numpy.random.Generator`` from a run seed and an item's key (e.g. its file
stem) through ``SeedSequence(entropy=seed, spawn_key=<SHA-256 words of the key>)``. The stream depends on
nothing else: not on the order items are processed in, the number of worker processes, or Python's
per-process ``hash()`` randomisation. SeedSequence and the PCG64 bit generator are stable across numpy
versions; the samplers built on them (normal, Poisson) are stable in practice but numpy does not promise it
across major versions, so record the numpy version next to data generated from these streams.

>>> a = item_rng(0, "0001").random()
>>> b = item_rng(0, "0001").random()
>>> a == b, a != item_rng(1, "0001").random(), a != item_rng(0, "0002").random()
(True, True, True)
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported by torch_generator only
    import torch

#: Largest seed :func:`draw_seed` returns (exclusive): fits a signed 64-bit integer, as torch needs.
SEED_BOUND = 2 ** 63


def _key_words(key: str | bytes) -> tuple[int, ...]:
    data = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    digest = hashlib.sha256(data).digest()
    return tuple(int(w) for w in np.frombuffer(digest, dtype="<u4"))


def item_seed_sequence(seed: int, key: str | bytes) -> np.random.SeedSequence:
    """The SeedSequence of item ``key`` under run ``seed`` (a non-negative integer)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence(entropy=int(seed), spawn_key=_key_words(key))


def item_rng(seed: int, key: str | bytes) -> np.random.Generator:
    """A PCG64 Generator for item ``key`` under run ``seed``; see the module doc."""
    return np.random.Generator(np.random.PCG64(item_seed_sequence(seed, key)))


def draw_seed(rng: np.random.Generator) -> int:
    """Draw a seed in ``[0, 2**63)`` for a sub-stream (e.g. the noise of one degradation)."""
    return int(rng.integers(0, SEED_BOUND, dtype=np.int64))


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (CPU and CUDA streams differ)."""
    import torch

    return torch.Generator(device=device).manual_seed(int(seed))
