"""Scale-out: run the runner's items on a Dask distributed cluster instead of local processes.

The runner maps items with joblib; inside :func:`use_dask` joblib's Dask backend sends them to the
cluster's workers. Workers write per-item files (atomically) or return encoded records to the one
writer in this process, exactly as local worker processes do, so the output is the same byte for byte.
Workers must see the same file system paths (a shared disk) and have srprep installed; the command line
makes every path it is given absolute (workers have working directories of their own) and checks once,
with :func:`check_paths`, that the workers see them.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Sequence

from .errors import SrprepError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def use_dask(address: str):
    """Within this context, :func:`srprep.runner.run_step` runs items on the cluster at ``address``."""
    try:
        from distributed import Client
        from joblib import parallel_config
    except ImportError as exc:
        raise SrprepError("--scheduler needs Dask: pip install 'dask[distributed]' "
                          "(or bash scripts/setup.sh --test)") from exc
    try:
        client = Client(address, timeout=20)
    except (OSError, TimeoutError) as exc:
        raise SrprepError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    log.info("running on Dask cluster %s (%d workers)", address, len(client.scheduler_info()["workers"]))
    try:
        with parallel_config(backend="dask"):
            yield client
    finally:
        client.close()


def _missing(paths: Sequence[str]) -> list[str]:
    """On a worker: the paths it does not see."""
    return [p for p in paths if not os.path.exists(p)]


def check_paths(client, paths: Sequence[str | os.PathLike]) -> None:
    """Check, in one round trip, that every worker sees each absolute path that exists here (for a path that
    does not exist yet, e.g. an output folder, its nearest existing parent).

    Raises:
        SrprepError: naming the first path a worker does not see, and the worker.
    """
    wanted: dict[str, str] = {}
    for path in paths:
        here = os.path.abspath(os.fspath(path))
        while not os.path.exists(here) and os.path.dirname(here) != here:
            here = os.path.dirname(here)
        wanted.setdefault(here, os.fspath(path))
    if not wanted:
        return
    for worker, missing in sorted(client.run(_missing, list(wanted)).items()):
        if missing:
            seen = missing[0]
            given = wanted[seen] if wanted[seen] == seen else f"{wanted[seen]} ({seen})"
            raise SrprepError(f"{given}: not found by the Dask worker {worker}; the workers need the same files at "
                              f"the same paths (a shared disk)")
