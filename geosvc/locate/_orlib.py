"""Reader for Beasley's OR-Library p-median instances (``pmed1.txt`` ... ``pmed40.txt``)."""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from geosvc._errors import InputError

__all__ = ["read_orlib_pmed"]


def read_orlib_pmed(path: str | os.PathLike[str]) -> tuple[npt.NDArray[np.float64], int]:
    """Read an OR-Library ``pmed`` file and build its all-pairs shortest-path cost matrix.

    The file holds ``n m p`` on its first line, then ``m`` lines ``i j cost``: undirected edges
    between vertices numbered from 1.  When an edge appears more than once the last cost read
    wins (Beasley's rule); duplicates are resolved before the sparse graph is built because
    scipy would otherwise add them up.

    Parameters
    ----------
    path
        Path of the instance file.

    Returns
    -------
    costs, p
        The ``n x n`` matrix of shortest-path costs (every vertex is both a candidate and a
        demand of weight 1) and the number of medians.

    Examples
    --------
    >>> costs, p = read_orlib_pmed("pmed1.txt")  # doctest: +SKIP
    >>> costs.shape, p  # doctest: +SKIP
    ((100, 100), 5)
    """
    try:
        with open(path, encoding="ascii") as fh:
            tokens = fh.read().split()
    except OSError as exc:
        raise InputError(
            f"cannot read OR-Library p-median file {os.fspath(path)!r}: {exc}"
        ) from exc
    try:
        numbers = np.array(tokens, dtype=np.int64)
    except ValueError as exc:
        raise InputError(f"{os.fspath(path)!r}: expected integers only ({exc})") from exc
    if numbers.size < 3:
        raise InputError(f"{os.fspath(path)!r}: missing the 'n m p' header line")
    n, m, p = (int(v) for v in numbers[:3])
    edges = numbers[3:]
    if edges.size != 3 * m:
        raise InputError(
            f"{os.fspath(path)!r}: header announces {m} edges but the file holds "
            f"{edges.size / 3:g} edge lines of 'i j cost'"
        )
    edges = edges.reshape(m, 3)
    a, b, cost = edges[:, 0] - 1, edges[:, 1] - 1, edges[:, 2].astype(np.float64)
    if m and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n):
        raise InputError(f"{os.fspath(path)!r}: vertex numbers must lie in 1..{n}")
    if (cost < 0).any():
        raise InputError(f"{os.fspath(path)!r}: edge costs must be non-negative")
    if not 1 <= p <= n:
        raise InputError(f"{os.fspath(path)!r}: p={p} must lie in 1..{n}")
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    loop = lo == hi
    lo, hi, cost = lo[~loop], hi[~loop], cost[~loop]
    # last occurrence wins: take the first occurrence in the reversed list
    key = lo[::-1] * n + hi[::-1]
    _, first = np.unique(key, return_index=True)
    last = lo.size - 1 - first
    lo, hi, cost = lo[last], hi[last], cost[last]
    graph = sp.csr_array(
        (np.concatenate([cost, cost]), (np.concatenate([lo, hi]), np.concatenate([hi, lo]))),
        shape=(n, n),
    )
    dist = shortest_path(graph, method="D", directed=True)
    if not np.isfinite(dist).all():
        raise InputError(f"{os.fspath(path)!r}: the graph is not connected")
    return np.asarray(dist, dtype=np.float64), p
