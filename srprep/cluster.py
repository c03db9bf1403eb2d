"""Scale-out: run the runner's items on a Dask distributed cluster instead of local processes.

The runner maps items with joblib; inside :func:`use_dask` joblib's Dask backend sends them to the
cluster's workers. Workers write per-item files (atomically) or return encoded records to the one
writer in this process, exactly as local worker processes do, so the output is the same byte for byte.
Workers must see the same file system paths (a shared disk) and have srprep installed.
"""
from __future__ import annotations

import contextlib
import logging

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
