"""A check shared by the store tests: one store object read by many threads at once."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def assert_threads_read_at_once(store, want: dict) -> None:
    """Read every key of ``want`` (key -> expected (h, w, 3) uint8 image) from ``store``, one thread per key,
    all started together; each read must equal its image. Closes the store at the end."""
    with ThreadPoolExecutor(len(want)) as pool:
        got = dict(zip(want, pool.map(store.read, want)))
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    store.close()
