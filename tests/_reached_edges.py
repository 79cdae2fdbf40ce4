"""Edges reached by many searches, with how far along them each search gets (compiled).

Test-only: the service-area polygons compute their reached intervals themselves
(:mod:`geosvc.circles._reach`); this kernel stays as a checked building block of
``tests/test_kernels.py`` (moved here from ``geosvc/_kernels.py``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numba
import numpy as np
from numba import njit, prange
from numpy.typing import ArrayLike, NDArray

from geosvc._search._rounds import bind_round, claim, job_scratch, n_workers, record, run_rounds
from geosvc._search._validate import check_edges, check_graph, check_limits, check_result

__all__ = ["ReachedEdges", "reached_edges"]


class ReachedEdges(NamedTuple):
    """Edges reached by many searches (unpacks as ``ptr, edge, reach_u, reach_v``).

    Attributes
    ----------
    ptr
        int64, ``n_searches + 1``: search ``s`` owns entries ``ptr[s]:ptr[s + 1]``.
    edge
        int64: edge ids, sorted ascending within each search.
    reach_u
        float64: how far along the edge (from ``edge_u``, in edge-length units) the
        search gets from the ``edge_u`` end; 0 if that end is unreached.
    reach_v
        float64: the same from the ``edge_v`` end.  The edge is fully covered when
        ``reach_u + reach_v >= edge_len``.
    """

    ptr: NDArray[np.int64]
    edge: NDArray[np.int64]
    reach_u: NDArray[np.float64]
    reach_v: NDArray[np.float64]


@njit(cache=True, parallel=True)
def _reached_edges_round(
    indptr: Any,
    weights: Any,
    edge_ids: Any,
    res_ptr: Any,
    res_nodes: Any,
    res_dist: Any,
    limits: Any,
    edge_u: Any,
    edge_v: Any,
    edge_len: Any,
    items: Any,
    reach_u: Any,
    reach_v: Any,
    touched: Any,
    bits: Any,
    words: Any,
    arena_i: Any,
    arena_f: Any,
    fill: Any,
    rec: Any,
) -> None:  # pragma: no cover - njit
    cap = arena_i.shape[1]
    for k in prange(items.shape[0]):
        t = numba.get_thread_id()
        if fill[t, 1] != 0:
            continue
        ru = reach_u[t]
        rv = reach_v[t]
        te = touched[t]
        s = items[k]
        lim = limits[s]
        m = 0
        for q in range(res_ptr[s], res_ptr[s + 1]):
            x = res_nodes[q]
            rem = lim - res_dist[q]
            if not rem >= 0.0:
                continue
            for a in range(indptr[x], indptr[x + 1]):
                e = edge_ids[a]
                w = weights[a]
                length = edge_len[e]
                r = length if rem >= w else rem * (length / w)
                if ru[e] < 0.0:
                    ru[e] = 0.0
                    rv[e] = 0.0
                    te[m] = e
                    m += 1
                if edge_u[e] == x and r > ru[e]:
                    ru[e] = r
                if edge_v[e] == x and r > rv[e]:
                    rv[e] = r
        fits, f = claim(fill, t, m, cap, te, bits, words)
        if fits:
            for q in range(m):
                e = te[q]
                arena_i[t, f + q] = e
                arena_f[t, f + q, 0] = ru[e]
                arena_f[t, f + q, 1] = rv[e]
        for q in range(m):
            e = te[q]
            ru[e] = -1.0
            rv[e] = -1.0
        record(fill, rec, t, k, m, fits)


def reached_edges(
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
) -> ReachedEdges:
    """Edges touched by each search, with how far along them the search gets.

    For every reached node ``x`` (``dist <= limit``) and every edge ``e`` at ``x``, the
    search gets ``min(limit - dist[x], w) / w * edge_len[e]`` along ``e`` from the ``x``
    end, where ``w`` is the weight of the arc leaving ``x`` along ``e`` (with weights equal
    to lengths this is simply the remaining budget capped to the edge length).  Partial
    edges at the frontier are included; an end that is not reached contributes 0.

    The interior of a source's own edge (between a facility and the edge's end nodes)
    is not derived from node distances; add it from the source anchor if needed.

    Parameters
    ----------
    indptr, indices, weights, edge_ids
        CSR adjacency (both directions) and the edge id of each arc.
    out_ptr, out_nodes, out_dist
        The searches' results (a :class:`geosvc._search.SearchResult` or any slice-consistent subset).
    limit
        The searches' limit, a scalar or one value per search.
    edge_u, edge_v, edge_len
        The edge table (``edge_len`` in the unit of the output reaches).

    Returns
    -------
    ReachedEdges
        ``(ptr, edge, reach_u, reach_v)``: int64 offsets (``n_searches + 1``), int64 edge
        ids sorted ascending within each search, float64 reaches from each end.

    Examples
    --------
    >>> from geosvc._search import bounded_dijkstra_many, csr_from_edges
    >>> eu, ev, el = [0, 1], [1, 2], [5.0, 7.0]
    >>> g = csr_from_edges(3, eu, ev, el)
    >>> res = bounded_dijkstra_many(*g[:3], [0, 1], [0], [0.0], 8.0)
    >>> r = reached_edges(*g, *res, 8.0, eu, ev, el)
    >>> r.edge.tolist(), r.reach_u.tolist(), r.reach_v.tolist()
    ([0, 1], [5.0, 3.0], [3.0, 0.0])
    """
    ip, idx, w = check_graph(indptr, indices, weights)
    eid, eu, ev, el = check_edges(ip, idx, edge_ids, edge_u, edge_v, edge_len)
    rp, rn, rd = check_result(out_ptr, out_nodes, out_dist, ip.size - 1)
    n_search = rp.size - 1
    limits = check_limits(limit, n_search)
    n_edges = eu.size
    if n_search == 0 or rn.size == 0:
        empty = np.empty(0, np.float64)
        return ReachedEdges(
            np.zeros(n_search + 1, np.int64), np.empty(0, np.int64), empty, empty.copy()
        )

    workers = n_workers()
    reach_u = np.full((workers, n_edges), -1.0)
    reach_v = np.full((workers, n_edges), -1.0)
    run_round = bind_round(_reached_edges_round, (ip, w, eid, rp, rn, rd, limits, eu, ev, el),
                           (reach_u, reach_v, *job_scratch(workers, n_edges)))
    ptr, edges, vals = run_rounds(run_round, n_search, workers, n_edges, 2)
    return ReachedEdges(
        ptr, edges, np.ascontiguousarray(vals[:, 0]), np.ascontiguousarray(vals[:, 1])
    )
