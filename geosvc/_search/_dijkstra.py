"""The searches: many bounded multi-seed Dijkstra runs in parallel, and one multi-source run."""

from __future__ import annotations

from typing import Any, NamedTuple

import numba
import numpy as np
from numba import njit, prange
from numpy.typing import ArrayLike, NDArray

from geosvc._errors import InputError
from geosvc._search._heap import INF, NOT_IN_HEAP, SETTLED, pop_min, queue, sift_down, sift_up
from geosvc._search._rounds import bind_round, claim, job_scratch, n_workers, record, run_rounds
from geosvc._search._validate import (
    check_graph,
    check_limits,
    check_ptr,
    check_range,
    check_sequence,
    float_array,
    int_array,
)

__all__ = ["NearestSeed", "SearchResult", "bounded_dijkstra_many", "multi_source_dijkstra"]


class SearchResult(NamedTuple):
    """Sparse result of many bounded searches (unpacks as ``ptr, nodes, dist``).

    Attributes
    ----------
    ptr
        int64, ``n_searches + 1``: search ``s`` owns entries ``ptr[s]:ptr[s + 1]``.
    nodes
        int64: the reached nodes, sorted by node id within each search.
    dist
        float64: exact shortest distance of each reached node (``<= limit``), in the
        unit of the weights.
    """

    ptr: NDArray[np.int64]
    nodes: NDArray[np.int64]
    dist: NDArray[np.float64]


class NearestSeed(NamedTuple):
    """Result of one multi-source search (unpacks as ``dist, label``).

    Attributes
    ----------
    dist
        float64, ``n_nodes``: distance to the nearest seed, ``inf`` if unreached.
    label
        int64, ``n_nodes``: label of that seed, ``-1`` if unreached.
    """

    dist: NDArray[np.float64]
    label: NDArray[np.int64]


@njit(cache=True)
def _bounded_search(
    indptr: Any,
    indices: Any,
    weights: Any,
    s_nodes: Any,
    s_dist: Any,
    limit: float,
    dist: Any,
    pos: Any,
    hkey: Any,
    hnode: Any,
    touched: Any,
) -> int:  # pragma: no cover - njit
    """One bounded Dijkstra; returns the number of touched (= reached) nodes.

    ``dist`` must be all ``inf`` and ``pos`` all ``-1`` on entry.  On exit, the first
    ``m`` entries of ``touched`` list the reached nodes (in discovery order), ``dist``
    holds their exact distances and ``pos`` is ``-2`` on them; the caller resets both.
    """
    m = 0
    size = 0
    for k in range(s_nodes.shape[0]):
        v = s_nodes[k]
        d = s_dist[k]
        if not d <= limit:
            continue
        dv = dist[v]
        if d < dv:
            dist[v] = d
            if dv == INF:
                touched[m] = v
                m += 1
            size = queue(hkey, hnode, pos, size, v, d, dv != INF)
    while size > 0:
        u, du, size = pop_min(hkey, hnode, pos, size)
        for a in range(indptr[u], indptr[u + 1]):
            v = indices[a]
            nd = du + weights[a]
            if nd > limit:
                continue
            dv = dist[v]
            if nd < dv:  # never true for settled nodes: weights are > 0
                dist[v] = nd
                if dv == INF:
                    touched[m] = v
                    m += 1
                size = queue(hkey, hnode, pos, size, v, nd, dv != INF)
    return m


@njit(cache=True, parallel=True)
def _bounded_round(
    indptr: Any,
    indices: Any,
    weights: Any,
    seed_ptr: Any,
    seed_nodes: Any,
    seed_dist: Any,
    limits: Any,
    items: Any,
    dist: Any,
    pos: Any,
    hkey: Any,
    hnode: Any,
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
        if fill[t, 1] != 0:  # this worker's arena overflowed: leave the rest for later
            continue
        s = items[k]
        lo = seed_ptr[s]
        hi = seed_ptr[s + 1]
        dist_t = dist[t]
        pos_t = pos[t]
        touched_t = touched[t]
        m = _bounded_search(
            indptr,
            indices,
            weights,
            seed_nodes[lo:hi],
            seed_dist[lo:hi],
            limits[s],
            dist_t,
            pos_t,
            hkey[t],
            hnode[t],
            touched_t,
        )
        fits, f = claim(fill, t, m, cap, touched_t, bits, words)
        if fits:
            for q in range(m):
                v = touched_t[q]
                arena_i[t, f + q] = v
                arena_f[t, f + q, 0] = dist_t[v]
        for q in range(m):
            v = touched_t[q]
            dist_t[v] = INF
            pos_t[v] = NOT_IN_HEAP
        record(fill, rec, t, k, m, fits)


@njit(cache=True)
def _multi_source(
    indptr: Any,
    indices: Any,
    weights: Any,
    seed_nodes: Any,
    seed_dist: Any,
    seed_label: Any,
    limit: float,
) -> Any:  # pragma: no cover - njit
    n = indptr.shape[0] - 1
    dist = np.full(n, INF)
    label = np.full(n, -1, np.int64)
    pos = np.full(n, NOT_IN_HEAP, np.int32)
    hkey = np.empty(n, np.float64)
    hnode = np.empty(n, np.int32)
    size = 0
    for k in range(seed_nodes.shape[0]):
        v = seed_nodes[k]
        d = seed_dist[k]
        lab = seed_label[k]
        if not d <= limit:
            continue
        dv = dist[v]
        if d < dv:
            dist[v] = d
            label[v] = lab
            if dv == INF:
                hkey[size] = d
                hnode[size] = v
                size += 1
                sift_up(hkey, hnode, pos, size - 1)
            else:
                i = pos[v]
                hkey[i] = d
                sift_up(hkey, hnode, pos, i)
        elif d == dv and lab < label[v]:
            label[v] = lab
    # the heap steps are written out here (not queue/pop_min): as inlined helpers this
    # search measured ~10 % slower, unlike the bounded searches
    while size > 0:
        u = hnode[0]
        du = hkey[0]
        size -= 1
        if size > 0:
            hkey[0] = hkey[size]
            hnode[0] = hnode[size]
            sift_down(hkey, hnode, pos, 0, size)
        pos[u] = SETTLED
        lu = label[u]
        for a in range(indptr[u], indptr[u + 1]):
            v = indices[a]
            nd = du + weights[a]
            if nd > limit:
                continue
            dv = dist[v]
            if nd < dv:
                dist[v] = nd
                label[v] = lu
                if dv == INF:
                    hkey[size] = nd
                    hnode[size] = v
                    size += 1
                    sift_up(hkey, hnode, pos, size - 1)
                else:
                    i = pos[v]
                    hkey[i] = nd
                    sift_up(hkey, hnode, pos, i)
            elif nd == dv and lu < label[v] and pos[v] != SETTLED:
                label[v] = lu
    return dist, label


def bounded_dijkstra_many(
    indptr: ArrayLike,
    indices: ArrayLike,
    weights: ArrayLike,
    seed_ptr: ArrayLike,
    seed_nodes: ArrayLike,
    seed_dist: ArrayLike,
    limit: float | ArrayLike,
    *,
    sequence: ArrayLike | None = None,
) -> SearchResult:
    """Run many independent bounded multi-seed Dijkstra searches in parallel.

    Search ``s`` starts from the seeds ``seed_nodes[seed_ptr[s]:seed_ptr[s + 1]]`` with
    initial distances ``seed_dist[...]`` (e.g. both end nodes of the edge a facility sits
    on) and settles every node whose shortest distance is ``<= limit``.  Seeds farther
    than the limit are ignored; duplicate seeds keep their smallest distance.

    Parameters
    ----------
    indptr, indices, weights
        CSR adjacency (both directions), weights finite and ``> 0``.
    seed_ptr
        ``n_searches + 1`` offsets into the seed arrays.
    seed_nodes
        Seed node of each seed.
    seed_dist
        Initial distance of each seed, ``>= 0`` (``inf`` allowed: ignored).
    limit
        Search radius, a scalar or one value per search (``inf`` for unbounded).
    sequence
        Order in which the searches are run (a permutation; default index order).  Running
        nearby searches one after another keeps their memory in cache; the result is the
        same in any order.

    Returns
    -------
    SearchResult
        ``(ptr, nodes, dist)``: int64 offsets (``n_searches + 1``), int64 reached nodes
        sorted by node id within each search, float64 exact distances ``<= limit``.

    Examples
    --------
    >>> from geosvc._search import csr_from_edges
    >>> indptr, indices, weights, _ = csr_from_edges(3, [0, 1], [1, 2], [5.0, 7.0])
    >>> res = bounded_dijkstra_many(indptr, indices, weights, [0, 1, 3], [0, 2, 1], [0.0, 0.0, 1.0], 6.0)
    >>> res.ptr.tolist(), res.nodes.tolist(), res.dist.tolist()
    ([0, 2, 5], [0, 1, 0, 1, 2], [0.0, 5.0, 6.0, 1.0, 0.0])
    """
    ip, idx, w = check_graph(indptr, indices, weights)
    n = ip.size - 1
    sp = int_array(seed_ptr, "seed_ptr")
    sn = int_array(seed_nodes, "seed_nodes")
    sd = float_array(seed_dist, "seed_dist", size=sn.size)
    check_ptr(sp, sn.size, "seed_ptr")
    check_range(sn, n, "seed_nodes")
    if sd.size and (sd < 0).any():
        raise InputError("seed_dist must be >= 0")
    n_search = sp.size - 1
    limits = check_limits(limit, n_search)
    if n_search == 0 or n == 0:
        return SearchResult(np.zeros(n_search + 1, np.int64), np.empty(0, np.int64), np.empty(0))

    workers = n_workers()
    dist = np.full((workers, n), np.inf)
    pos = np.full((workers, n), NOT_IN_HEAP, np.int32)
    hkey = np.empty((workers, n), np.float64)
    hnode = np.empty((workers, n), np.int32)
    scratch = (dist, pos, hkey, hnode, *job_scratch(workers, n))
    run_round = bind_round(_bounded_round, (ip, idx, w, sp, sn, sd, limits), scratch)
    ptr, nodes, vals = run_rounds(run_round, n_search, workers, n, 1,
                                   check_sequence(sequence, n_search))
    return SearchResult(ptr, nodes, vals.reshape(-1))


def multi_source_dijkstra(
    indptr: ArrayLike,
    indices: ArrayLike,
    weights: ArrayLike,
    seed_nodes: ArrayLike,
    seed_dist: ArrayLike,
    seed_label: ArrayLike,
    limit: float = np.inf,
    *,
    trusted_graph: bool = False,
) -> NearestSeed:
    """One Dijkstra from all seeds at once: distance to, and label of, the nearest seed.

    Ties are broken deterministically: among seeds at exactly the same (floating-point)
    distance, the smallest label wins.

    Parameters
    ----------
    indptr, indices, weights
        CSR adjacency (both directions), weights finite and ``> 0``.
    seed_nodes
        Seed node of each seed.
    seed_dist
        Initial distance of each seed, ``>= 0``.
    seed_label
        Label of each seed (e.g. facility index), ``>= 0``.
    limit
        Nodes farther than this stay unreached.
    trusted_graph
        Skip the graph checks and use ``indptr``/``indices`` as given (int32 allowed): for
        a :class:`~geosvc.network.CompiledNetwork`'s own arrays, valid by construction.
        The seeds are always checked.

    Returns
    -------
    NearestSeed
        ``(dist, label)``: float64 and int64 arrays of length ``n_nodes``; ``inf`` and
        ``-1`` where unreached.

    Examples
    --------
    >>> from geosvc._search import csr_from_edges
    >>> indptr, indices, weights, _ = csr_from_edges(3, [0, 1], [1, 2], [5.0, 7.0])
    >>> d, lab = multi_source_dijkstra(indptr, indices, weights, [0, 2], [0.0, 0.0], [10, 20])
    >>> d.tolist(), lab.tolist()
    ([0.0, 5.0, 0.0], [10, 10, 20])
    """
    if trusted_graph:
        ip, idx, w = np.asarray(indptr), np.asarray(indices), np.asarray(weights, np.float64)
    else:
        ip, idx, w = check_graph(indptr, indices, weights)
    n = ip.size - 1
    sn = int_array(seed_nodes, "seed_nodes")
    sd = float_array(seed_dist, "seed_dist", size=sn.size)
    sl = int_array(seed_label, "seed_label")
    if sl.size != sn.size:
        raise InputError(f"seed_label has {sl.size} entries, seed_nodes has {sn.size}")
    check_range(sn, n, "seed_nodes")
    if sd.size and (sd < 0).any():
        raise InputError("seed_dist must be >= 0")
    if sl.size and (sl < 0).any():
        raise InputError("seed_label must be >= 0 (-1 marks unreached nodes)")
    lim = float(limit)
    if np.isnan(lim) or lim < 0:
        raise InputError(f"limit must be >= 0, got {limit}")
    dist, label = _multi_source(ip, idx, w, sn, sd, sl, lim)
    return NearestSeed(dist, label)
