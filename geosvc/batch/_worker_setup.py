"""Dask worker preload of a local batch cluster: import a partition's modules at start.

:func:`geosvc.batch.run_batch` starts its LocalCluster while the client still plans the
batch; each worker process imports what :func:`geosvc.batch.run_partition` needs (geopandas,
the network, coverage and siting modules) in that time instead of in its first partition.
"""

from __future__ import annotations

from typing import Any

__all__ = ["dask_setup"]


def dask_setup(worker: Any) -> None:  # noqa: ARG001 - the hook Dask calls with the worker
    """Import the partition's modules (called by Dask once per worker process)."""
    import geosvc.batch._partition  # noqa: F401
    import geosvc.batch._siting  # noqa: F401
    import geosvc.network  # noqa: F401
    import geosvc.pipeline  # noqa: F401
    import geosvc.siting  # noqa: F401
