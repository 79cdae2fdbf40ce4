"""Checks of kernel inputs: CSR graphs, edge tables, seeds, limits, results, anchors.

Every check raises :class:`~geosvc._errors.InputError` naming the array, the first bad
position and the rule; the compiled scans (``_first_bad_arc``, ``_first_bad_edge_arc``) do
one pass instead of several numpy temporaries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from geosvc._errors import InputError
from geosvc._search._heap import INF

__all__ = ["MAX_NODES", "check_edges", "check_graph", "check_limits", "check_offsets",
           "check_ptr", "check_range", "check_result", "check_sequence", "float_array",
           "int_array"]

MAX_NODES = 2**31 - 1  # heap slots and node ids are stored as int32


def int_array(a: ArrayLike, name: str) -> NDArray[np.int64]:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name} must hold integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def float_array(a: ArrayLike, name: str, *, size: int | None = None) -> NDArray[np.float64]:
    arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {arr.shape}")
    if size is not None and arr.size != size:
        raise InputError(f"{name} has {arr.size} entries, expected {size}")
    if np.isnan(arr).any():
        raise InputError(f"{name} contains NaN at index {int(np.flatnonzero(np.isnan(arr))[0])}")
    return arr


def check_range(arr: NDArray[np.int64], hi: int, name: str, *, lo: int = 0) -> None:
    if arr.size:
        bad = (arr < lo) | (arr >= hi)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{name}[{i}] = {arr[i]} is outside [{lo}, {hi})")


def check_ptr(ptr: NDArray[np.int64], total: int, name: str) -> None:
    if ptr.size == 0 or ptr[0] != 0 or ptr[-1] != total or (np.diff(ptr) < 0).any():
        raise InputError(
            f"{name} must start at 0, be non-decreasing and end at {total} (the length of the "
            "arrays it indexes)"
        )


def check_graph(
    indptr: ArrayLike, indices: ArrayLike, weights: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[Any], NDArray[np.float64]]:
    ip = int_array(indptr, "indptr")
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise InputError(f"indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
    if idx.dtype not in (np.int32, np.int64):
        idx = idx.astype(np.int64)
    idx = np.ascontiguousarray(idx)
    w = np.ascontiguousarray(np.asarray(weights, dtype=np.float64))
    if w.ndim != 1 or w.size != idx.size:
        raise InputError(f"weights must be 1-D with one entry per arc ({idx.size}), got {w.shape}")
    if ip.size == 0 or ip[0] != 0 or ip[-1] != idx.size:
        raise InputError(f"indptr must start at 0 and end at {idx.size} (the number of arcs)")
    n = ip.size - 1
    if n >= MAX_NODES:
        raise InputError(f"graphs with {n} nodes are not supported (at most {MAX_NODES - 1})")
    code, i = _first_bad_arc(ip, idx, w)
    if code == 1:
        raise InputError(f"indptr must be non-decreasing (indptr[{i + 1}] < indptr[{i}])")
    if code == 2:
        raise InputError(f"indices[{i}] = {idx[i]} is outside [0, {n})")
    if code == 3:
        raise InputError(f"weights[{i}] = {w[i]}: arc weights must be finite and > 0")
    return ip, idx, w


@njit(cache=True)
def _first_bad_arc(indptr: Any, indices: Any, weights: Any) -> Any:  # pragma: no cover - njit
    """``(code, position)`` of the first invalid CSR entry, ``(0, -1)`` if all are valid.

    Codes: 1 decreasing ``indptr``, 2 neighbour out of range, 3 weight not finite or
    not ``> 0``.  One pass instead of several numpy temporaries.
    """
    n = indptr.shape[0] - 1
    for x in range(n):
        if indptr[x + 1] < indptr[x]:
            return 1, x
    for a in range(indices.shape[0]):
        v = indices[a]
        if v < 0 or v >= n:
            return 2, a
        w = weights[a]
        if not (w > 0.0 and w < INF):
            return 3, a
    return 0, -1


def check_edges(
    indptr: NDArray[np.int64],
    indices: NDArray[Any],
    edge_ids: ArrayLike,
    edge_u: ArrayLike,
    edge_v: ArrayLike,
    edge_len: ArrayLike,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    eu = int_array(edge_u, "edge_u")
    ev = int_array(edge_v, "edge_v")
    el = float_array(edge_len, "edge_len", size=eu.size)
    if ev.size != eu.size:
        raise InputError(f"edge_v has {ev.size} entries, edge_u has {eu.size}")
    if el.size and not (np.isfinite(el).all() and (el >= 0).all()):
        raise InputError("edge_len must be finite and >= 0")
    eid = int_array(edge_ids, "edge_ids")
    if eid.size != indices.size:
        raise InputError(f"edge_ids has {eid.size} entries, expected one per arc ({indices.size})")
    check_range(eid, eu.size, "edge_ids")
    n = indptr.size - 1
    check_range(eu, n, "edge_u")
    check_range(ev, n, "edge_v")
    x, i = _first_bad_edge_arc(indptr, indices, eid, eu, ev)
    if i >= 0:
        e = eid[i]
        raise InputError(
            f"arc {i} ({x} -> {indices[i]}) has edge id {e} whose ends are "
            f"({eu[e]}, {ev[e]}); edge_ids, edge_u and edge_v disagree with the CSR adjacency"
        )
    return eid, eu, ev, el


@njit(cache=True)
def _first_bad_edge_arc(
    indptr: Any, indices: Any, edge_ids: Any, edge_u: Any, edge_v: Any
) -> Any:  # pragma: no cover - njit
    """``(node, arc)`` of the first arc whose edge does not join its two nodes, or ``(-1, -1)``."""
    for x in range(indptr.shape[0] - 1):
        for a in range(indptr[x], indptr[x + 1]):
            e = edge_ids[a]
            y = indices[a]
            u = edge_u[e]
            v = edge_v[e]
            if not ((u == x and v == y) or (v == x and u == y)):
                return x, a
    return -1, -1


def check_limits(limit: float | ArrayLike, n: int) -> NDArray[np.float64]:
    arr = np.asarray(limit, dtype=np.float64)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.size != n):
        raise InputError(
            f"limit must be a scalar or have one entry per search ({n}), got {arr.shape}"
        )
    out = np.ascontiguousarray(np.broadcast_to(arr, (n,)))
    if out.size and (np.isnan(out).any() or (out < 0).any()):
        raise InputError("limit must be >= 0 (inf for unbounded) and not NaN")
    return out


def check_result(
    out_ptr: ArrayLike, out_nodes: ArrayLike, out_dist: ArrayLike, n_nodes: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    rp = int_array(out_ptr, "out_ptr")
    rn = int_array(out_nodes, "out_nodes")
    rd = float_array(out_dist, "out_dist", size=rn.size)
    check_ptr(rp, rn.size, "out_ptr")
    check_range(rn, n_nodes, "out_nodes")
    return rp, rn, rd


def check_sequence(sequence: ArrayLike | None, n: int) -> NDArray[np.int64] | None:
    """``sequence`` as int64 after checking it is a permutation of ``range(n)``."""
    if sequence is None:
        return None
    seq = int_array(sequence, "sequence")
    if seq.size != n or not np.array_equal(np.sort(seq), np.arange(n)):
        raise InputError(f"sequence must be a permutation of the {n} searches")
    return seq


def check_offsets(
    e: NDArray[np.int64],
    off: NDArray[np.float64],
    acc: NDArray[np.float64],
    el: NDArray[np.float64],
    off_name: str,
    acc_name: str,
) -> None:
    on = e >= 0
    lens = el[np.where(on, e, 0)] if el.size else np.zeros(e.size)
    bad = on & ~((off >= 0) & (off <= lens))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{off_name}[{i}] = {off[i]} is outside its edge [0, {lens[i]}] (edge {e[i]})"
        )
    bad = on & ~((acc >= 0) & np.isfinite(acc))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{acc_name}[{i}] = {acc[i]} must be finite and >= 0")
