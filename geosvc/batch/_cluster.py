"""The Dask side of a batch: the client and local cluster for ``--scheduler``, its options.

A local cluster starts while the client still plans the batch (:func:`start_client` runs in a
thread); its worker processes import a partition's modules as they start
(:data:`WORKER_SETUP`), get their share of the cores for numba and GEOS, and sample their
statistical profile every 100 ms.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from geosvc._errors import ConfigError

__all__ = ["start_client", "parse_scheduler", "worker_threads", "dask_client", "close_started",
           "WORKER_SETUP"]

log = logging.getLogger("geosvc.batch")


def start_client(scheduler: str) -> Any:
    """A Dask client (and the LocalCluster it owns, or None) for ``--scheduler``."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(f"--scheduler {scheduler}: Dask is not installed; pip install "
                          "'geosvc[batch]' (or use --scheduler none)") from None

    if scheduler.startswith("tcp://") or scheduler.startswith("tls://"):
        return Client(scheduler), None
    kind, workers = parse_scheduler(scheduler)
    if kind == "local":
        # each worker process gets its share of the cores for its numba kernels and GEOS
        # work: N workers x all cores would oversubscribe the machine (and make 1 worker
        # look like 2)
        share = str(worker_threads(workers))
        with _quiet_profiler():
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", preload=[WORKER_SETUP],
                                   env={"NUMBA_NUM_THREADS": share, "GEOSVC_THREADS": share})
    else:
        cluster = LocalCluster(n_workers=1, threads_per_worker=workers, processes=False,
                               dashboard_address=None)
    return Client(cluster), cluster


#: imported by every local worker process as it starts (the partition's modules), while the
#: client still plans the batch
WORKER_SETUP = "geosvc.batch._worker_setup"
#: the Dask workers' statistical profiler (the dashboard's "Profile" page): sampling the
#: running task every 10 ms (Dask's default) took ~1.6 s of CPU per worker in a 20 s batch,
#: time a worker takes from the partitions when every core runs one; 100 ms keeps the page
_PROFILE_INTERVAL = "100ms"


@contextlib.contextmanager
def _quiet_profiler() -> Iterator[None]:
    """Sample the workers' profile every 100 ms unless the Dask config set its own interval."""
    import dask

    key = "distributed.worker.profile.interval"
    if str(dask.config.get(key, "10ms")).replace(" ", "") != "10ms":
        yield
        return
    with dask.config.set({key: _PROFILE_INTERVAL}):
        yield


def parse_scheduler(scheduler: str) -> tuple[str, int]:
    """``("local" | "threads", N)`` from ``local[:N]`` / ``threads[:N]``; else ConfigError."""
    kind, _, n = scheduler.partition(":")
    try:
        workers = int(n) if n else (os.cpu_count() or 1)
    except ValueError:
        workers = 0
    if kind not in ("local", "threads") or workers < 1:
        raise ConfigError(f"--scheduler {scheduler!r}: expected none, local[:N], threads[:N] "
                          "or tcp://HOST:PORT")
    return kind, workers


def worker_threads(workers: int) -> int:
    """Numba and GEOS threads per local worker process: its share of the cores, at most
    ``GEOSVC_THREADS`` when that is set (``GEOSVC_THREADS=1 --scheduler local:1`` is the
    one-core baseline)."""
    share = max(1, (os.cpu_count() or 1) // max(1, workers))
    cap = os.environ.get("GEOSVC_THREADS", "").strip()
    if cap.isdigit() and int(cap) > 0:
        share = min(share, int(cap))
    return share


@contextlib.contextmanager
def dask_client(starting: Any) -> Iterator[Any]:
    """The Dask client for the whole batch (partitions, then the district maps), from the
    future of :func:`start_client` that started the cluster; closed on exit."""
    client, cluster = starting.result()
    try:
        if client.dashboard_link:
            log.info("Dask dashboard: %s", client.dashboard_link)
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def close_started(starting: Any) -> None:
    """Close a cluster whose start was begun, when the batch stops before using it."""
    with contextlib.suppress(Exception):
        client, cluster = starting.result()
        client.close()
        if cluster is not None:
            cluster.close()
