"""All (candidate, demand) pairs within a network distance: the compiled coverage-pair kernel.

One bounded search per candidate (:func:`geosvc._search.bounded_dijkstra_many`) gives node
distances; this kernel walks the edges at every reached node and prices the demand points
on them (both ends, plus the same-edge shortcut), in parallel rounds
(:mod:`geosvc._search._rounds`).  Its only user is :mod:`geosvc.access._pairs`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, NotRequired, TypedDict, Unpack

import numba
import numpy as np
from numba import njit, prange
from numpy.typing import ArrayLike, NDArray

from geosvc._errors import InputError
from geosvc._search._heap import INF
from geosvc._search._rounds import bind_round, claim, job_scratch, n_workers, record, run_rounds
from geosvc._search._validate import (
    check_edges,
    check_graph,
    check_limits,
    check_offsets,
    check_range,
    check_result,
    check_sequence,
    float_array,
    int_array,
)

__all__ = ["CoveragePairs", "PairAnchors", "coverage_pairs"]


class CoveragePairs(NamedTuple):
    """Sparse candidate x demand pairs within the limit (unpacks as ``cand, demand, dist``).

    Sorted by candidate, then by demand index.  Zero distances are real pairs; build a
    boolean matrix with ``scipy.sparse.csr_matrix((np.ones(len(cand), bool), (cand,
    demand)), shape=(n_cand, n_demand))`` rather than from ``dist``.

    Attributes
    ----------
    cand
        int64: candidate (search) index.
    demand
        int64: demand point index.
    dist
        float64: shortest distance candidate -> demand including both access legs.
    """

    cand: NDArray[np.int64]
    demand: NDArray[np.int64]
    dist: NDArray[np.float64]


@njit(cache=True)
def _bucket_by_edge(edge: Any, n_edges: int) -> Any:  # pragma: no cover - njit
    """Stable counting sort of points by edge (``edge < 0`` dropped).

    Returns ``(ptr, idx, pos)``: the points of edge ``e`` are ``idx[ptr[e]:ptr[e + 1]]``
    (ascending), and ``pos[i]`` is point ``i``'s slot in ``idx`` (``-1`` if dropped).
    """
    ptr = np.zeros(n_edges + 1, np.int64)
    for i in range(edge.shape[0]):
        if edge[i] >= 0:
            ptr[edge[i] + 1] += 1
    for e in range(n_edges):
        ptr[e + 1] += ptr[e]
    nxt = ptr[:-1].copy()
    idx = np.empty(ptr[n_edges], np.int64)
    pos = np.full(edge.shape[0], -1, np.int64)
    for i in range(edge.shape[0]):
        e = edge[i]
        if e >= 0:
            slot = nxt[e]
            idx[slot] = i
            pos[i] = slot
            nxt[e] = slot + 1
    return ptr, idx, pos


@njit(cache=True)
def _offer(b: Any, td: Any, m: int, j: int, d: float) -> int:  # pragma: no cover - njit
    """Keep the smaller distance for demand ``j``; returns the new touched count."""
    bj = b[j]
    if bj == INF:
        td[m] = j
        b[j] = d
        return m + 1
    if d < bj:
        b[j] = d
    return m


@njit(cache=True, parallel=True)
def _coverage_round(
    indptr: Any,
    edge_ids: Any,
    res_ptr: Any,
    res_nodes: Any,
    res_dist: Any,
    limits: Any,
    edge_u: Any,
    edge_v: Any,
    edge_len: Any,
    cand_edge: Any,
    cand_off: Any,
    cand_acc: Any,
    dem_ptr: Any,
    dem_idx: Any,
    dem_pos: Any,
    dem_off: Any,
    dem_acc: Any,
    items: Any,
    best: Any,
    touched: Any,
    bits: Any,
    words: Any,
    arena_i: Any,
    arena_f: Any,
    fill: Any,
    rec: Any,
) -> None:  # pragma: no cover - njit
    # Demand is addressed by its position ``p`` in edge order (``dem_idx[p]`` is its index,
    # ``dem_pos`` the inverse), so that the demand of one edge is read contiguously;
    # ``dem_off``/``dem_acc`` and ``best`` are in that order too.
    cap = arena_i.shape[1]
    for k in prange(items.shape[0]):
        t = numba.get_thread_id()
        if fill[t, 1] != 0:
            continue
        b = best[t]
        td = touched[t]
        c = items[k]
        lim = limits[c]
        m = 0
        for q in range(res_ptr[c], res_ptr[c + 1]):
            x = res_nodes[q]
            dx = res_dist[q]
            if not dx <= lim:
                continue
            for a in range(indptr[x], indptr[x + 1]):
                e = edge_ids[a]
                p0 = dem_ptr[e]
                p1 = dem_ptr[e + 1]
                if p0 == p1:
                    continue
                length = edge_len[e]
                is_u = edge_u[e] == x
                is_v = edge_v[e] == x
                for p in range(p0, p1):
                    off = dem_off[p]
                    d = INF
                    if is_u:
                        d = dx + off
                    if is_v:
                        d2 = dx + (length - off)
                        if d2 < d:
                            d = d2
                    d += dem_acc[p]
                    if d <= lim:
                        m = _offer(b, td, m, p, d)
        e = cand_edge[c]
        if e >= 0:
            for p in range(dem_ptr[e], dem_ptr[e + 1]):
                d = abs(cand_off[c] - dem_off[p]) + cand_acc[c] + dem_acc[p]
                if d <= lim:
                    m = _offer(b, td, m, p, d)
        # positions, not ids, are sorted: they cluster by edge (cheap to sort, and
        # sequential to read back); ids follow edge order
        fits, f = claim(fill, t, m, cap, td, bits, words)
        if fits:
            for q in range(m):
                p = td[q]
                arena_i[t, f + q] = dem_idx[p]
                arena_f[t, f + q, 0] = b[p]
                b[p] = INF
        else:
            for q in range(m):
                b[td[q]] = INF
        record(fill, rec, t, k, m, fits)


def _check_anchors(
    prefix: str, edge: NDArray[np.int64], offset_m: ArrayLike, access_m: ArrayLike,
    el: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Offsets and access legs of anchors on ``edge`` (``-1``: off the network), checked."""
    off = float_array(offset_m, f"{prefix}_offset_m", size=edge.size)
    acc = float_array(access_m, f"{prefix}_access_m", size=edge.size)
    check_range(edge, el.size, f"{prefix}_edge", lo=-1)
    check_offsets(edge, off, acc, el, f"{prefix}_offset_m", f"{prefix}_access_m")
    return off, acc


class PairAnchors(TypedDict):
    """The anchor keywords of :func:`coverage_pairs` (and the optional ``sequence``)."""

    cand_edge: ArrayLike
    cand_offset_m: ArrayLike
    cand_access_m: ArrayLike
    demand_edge: ArrayLike
    demand_offset_m: ArrayLike
    demand_access_m: ArrayLike
    sequence: NotRequired[ArrayLike | None]


_ANCHOR_KEYS = ("cand_edge", "cand_offset_m", "cand_access_m", "demand_edge",
                "demand_offset_m", "demand_access_m")


class _Checked(NamedTuple):
    """The inputs of :func:`coverage_pairs`, checked and typed (see its parameters)."""

    ip: NDArray[np.int64]
    eid: NDArray[np.int64]
    rp: NDArray[np.int64]
    rn: NDArray[np.int64]
    rd: NDArray[np.float64]
    limits: NDArray[np.float64]
    eu: NDArray[np.int64]
    ev: NDArray[np.int64]
    el: NDArray[np.float64]
    ce: NDArray[np.int64]
    co: NDArray[np.float64]
    ca: NDArray[np.float64]
    de: NDArray[np.int64]
    do: NDArray[np.float64]
    da: NDArray[np.float64]


def coverage_pairs(
    indptr: ArrayLike,
    indices: ArrayLike,
    weights: ArrayLike,
    edge_ids: ArrayLike,
    out_ptr: ArrayLike,
    out_nodes: ArrayLike,
    out_dist: ArrayLike,
    limit: float | ArrayLike,
    edge_u: ArrayLike,
    edge_v: ArrayLike,
    edge_len: ArrayLike,
    **anchors: Unpack[PairAnchors],
) -> CoveragePairs:
    """All (candidate, demand) pairs within the limit, with their distances.

    Search ``c`` must be candidate ``c``'s bounded search seeded from its anchor
    (``anchor_seeds(cand_edge, cand_offset_m, cand_access_m, ...)``), so that its node
    distances already include the candidate's access leg.  Demand ``j`` on edge ``e``
    at ``offset`` from ``edge_u[e]`` is at::

        min(dist[edge_u] + offset, dist[edge_v] + edge_len - offset) + access_j

    or, when the candidate sits on the same edge, possibly directly at
    ``|off_c - off_j| + access_c + access_j``.  Pairs with distance ``<= limit`` are kept.
    Demand or candidates with ``edge < 0`` (off the network) never pair (a candidate
    off the network has no seeds and no same-edge term).

    Parameters
    ----------
    indptr, indices, weights, edge_ids
        CSR adjacency (both directions) and the edge id of each arc; ``weights`` must
        equal ``edge_len[edge_ids]`` (one unit for everything).
    out_ptr, out_nodes, out_dist
        Bounded search results, one search per candidate.
    limit
        Coverage radius, a scalar or one value per candidate.
    edge_u, edge_v, edge_len
        The edge table.
    **anchors
        Keywords (:class:`PairAnchors`): ``cand_edge``, ``cand_offset_m``,
        ``cand_access_m``, the candidate anchors (edge id or ``-1``, offset from
        ``edge_u``, access leg); ``demand_edge``, ``demand_offset_m``, ``demand_access_m``,
        the demand anchors the same way; optionally ``sequence``, the order in which the
        candidates are processed (see :func:`geosvc._search.bounded_dijkstra_many`).

    Returns
    -------
    CoveragePairs
        ``(cand, demand, dist)``: int64, int64, float64, sorted by candidate, then by the
        demand's place in edge order (edge id, then index).  Demand given sorted by edge
        (as :mod:`geosvc.siting` does) is thus in ascending index order; otherwise sort
        within a candidate if you need it.  Zero distances are kept.

    Examples
    --------
    >>> from geosvc._search import anchor_seeds, bounded_dijkstra_many, csr_from_edges
    >>> eu, ev, el = [0, 1], [1, 2], [100.0, 100.0]
    >>> g = csr_from_edges(3, eu, ev, el)
    >>> seeds = anchor_seeds([0], [50.0], [0.0], eu, ev, el)
    >>> res = bounded_dijkstra_many(*g[:3], *seeds, 120.0)
    >>> pairs = coverage_pairs(*g, *res, 120.0, eu, ev, el, cand_edge=[0], cand_offset_m=[50.0],
    ...     cand_access_m=[0.0], demand_edge=[0, 1, 1], demand_offset_m=[0.0, 60.0, 80.0],
    ...     demand_access_m=[10.0, 5.0, 0.0])
    >>> pairs.demand.tolist(), pairs.dist.tolist()
    ([0, 1], [60.0, 115.0])
    """
    chk = _check_inputs((indptr, indices, weights, edge_ids), (out_ptr, out_nodes, out_dist),
                        limit, (edge_u, edge_v, edge_len), anchors)
    n_cand = chk.rp.size - 1
    if n_cand == 0 or chk.de.size == 0:
        e64 = np.empty(0, np.int64)
        return CoveragePairs(e64, e64.copy(), np.empty(0, np.float64))
    ptr, dem, vals = _run(chk, check_sequence(anchors.get("sequence"), n_cand))
    cand = np.repeat(np.arange(n_cand, dtype=np.int64), np.diff(ptr))
    return CoveragePairs(cand, dem, vals.reshape(-1))


def _check_inputs(graph: tuple[ArrayLike, ArrayLike, ArrayLike, ArrayLike],
                  result: tuple[ArrayLike, ArrayLike, ArrayLike], limit: float | ArrayLike,
                  edges: tuple[ArrayLike, ArrayLike, ArrayLike], anchors: PairAnchors
                  ) -> _Checked:
    """Check the graph, the searches, the limits and both anchor sets (one-line errors)."""
    missing = [k for k in _ANCHOR_KEYS if k not in anchors]
    unknown = sorted(set(anchors) - {*_ANCHOR_KEYS, "sequence"})
    if missing or unknown:
        raise TypeError(f"coverage_pairs() missing keyword arguments {missing} or got unknown "
                        f"ones {unknown}")
    ip, idx, w = check_graph(*graph[:3])
    eid, eu, ev, el = check_edges(ip, idx, graph[3], *edges)
    if w.size and not np.allclose(w, el[eid], rtol=1e-9, atol=1e-9):
        raise InputError("coverage_pairs needs weights equal to edge_len[edge_ids] (one unit)")
    rp, rn, rd = check_result(*result, ip.size - 1)
    n_cand = rp.size - 1
    limits = check_limits(limit, n_cand)
    ce = int_array(anchors["cand_edge"], "cand_edge")
    if ce.size != n_cand:
        raise InputError(f"cand_edge has {ce.size} entries, expected one per search ({n_cand})")
    co, ca = _check_anchors("cand", ce, anchors["cand_offset_m"], anchors["cand_access_m"], el)
    de = int_array(anchors["demand_edge"], "demand_edge")
    do, da = _check_anchors("demand", de, anchors["demand_offset_m"],
                            anchors["demand_access_m"], el)
    return _Checked(ip, eid, rp, rn, rd, limits, eu, ev, el, ce, co, ca, de, do, da)


def _run(chk: _Checked, seq: NDArray[np.int64] | None
         ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """The compiled rounds over every candidate: demand bucketed by edge, per-thread work."""
    n_cand, n_dem = chk.rp.size - 1, chk.de.size
    dem_ptr, dem_idx, dem_pos = _bucket_by_edge(chk.de, chk.eu.size)
    sorted_off = chk.do[dem_idx]
    sorted_acc = chk.da[dem_idx]

    workers = n_workers()
    best = np.full((workers, dem_idx.size), np.inf)
    # chk[:12]: the graph, the searches, the limits, the edge table, the candidate anchors
    run_round = bind_round(_coverage_round, (*chk[:12], dem_ptr, dem_idx, dem_pos, sorted_off,
                                             sorted_acc), (best, *job_scratch(workers, n_dem)))
    return run_rounds(run_round, n_cand, workers, n_dem, 1, seq)
