"""Dask worker preload of a local batch cluster: import a partition's modules at start,
skip the final garbage collection at exit.

:func:`geosvc.batch.run_batch` starts its LocalCluster while the client still plans the
batch; each worker process imports what :func:`geosvc.batch.run_partition` needs (geopandas,
the network, coverage and siting modules) in that time instead of in its first partition.

When the batch closes the cluster, each worker process exits through the interpreter's
normal shutdown, whose last garbage collection walks every object the process still holds
(about 300,000 after a province's partitions: the imported libraries, numba's compiled
kernels): 1-2 s per worker, waited for by the client before the batch returns.
:func:`dask_teardown` freezes those objects (:func:`gc.freeze`) so the collection skips
them; the operating system reclaims the memory as the process ends.
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["dask_setup", "dask_teardown"]


def dask_setup(worker: Any) -> None:  # noqa: ARG001 - the hook Dask calls with the worker
    """Import the partition's modules (called by Dask once per worker process)."""
    import geosvc.batch._partition  # noqa: F401
    import geosvc.batch._siting  # noqa: F401
    import geosvc.network  # noqa: F401
    import geosvc.pipeline  # noqa: F401
    import geosvc.siting  # noqa: F401


def dask_teardown(worker: Any) -> None:  # noqa: ARG001 - the hook Dask calls with the worker
    """Freeze the worker process's objects as it closes (called by Dask once per worker
    process, after its last task): its exit then skips collecting them."""
    gc.freeze()
