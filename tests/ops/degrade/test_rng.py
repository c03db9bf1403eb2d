"""item_rng: a stream per (seed, key), independent of order, job count and Python's hash seed."""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from srprep.ops.degrade.rng import draw_seed, item_rng, torch_generator


def _draw(seed, key):
    return item_rng(seed, key).standard_normal(4).tolist()


def test_same_seed_same_stream_different_seed_or_key_differs():
    assert _draw(0, "0001") == _draw(0, "0001")
    assert _draw(0, "0001") != _draw(1, "0001")
    assert _draw(0, "0001") != _draw(0, "0002")
    assert _draw(0, "a/b") != _draw(0, "ab")
    assert _draw(0, "0001") == _draw(0, b"0001")


def test_independent_of_processing_order_and_workers():
    keys = [f"{i:04d}" for i in range(40)]
    forward = {k: _draw(7, k) for k in keys}
    backward = {k: _draw(7, k) for k in reversed(keys)}
    with ThreadPoolExecutor(4) as ex:
        parallel = dict(zip(keys, ex.map(lambda k: _draw(7, k), keys)))
    assert forward == backward == parallel


def test_independent_of_python_hash_seed():
    code = "from srprep.ops.degrade.rng import item_rng; print(item_rng(3, 'kodim01').integers(0, 2**62))"
    outs = set()
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                                text=True).stdout.strip())
    assert outs == {str(item_rng(3, "kodim01").integers(0, 2 ** 62))}


def test_bad_seed_and_helpers():
    with pytest.raises(ValueError):
        item_rng(-1, "a")
    with pytest.raises(ValueError):
        item_rng(1.5, "a")
    s = draw_seed(np.random.default_rng(0))
    assert 0 <= s < 2 ** 63
    a = torch_generator(s).initial_seed()
    assert a == s
