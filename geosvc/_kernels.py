"""Compiled graph-search kernels on CSR street networks.

This is the array-level compute core behind nearest-facility times, service-area
polygons and the candidate x demand coverage relation.  Everything here works on plain
numpy arrays; the domain modules compile a street network into them once and reuse them.

Graph representation
--------------------
An undirected walking network is stored as a *directed* CSR adjacency holding both
directions of every edge:

``indptr``
    int64, ``n_nodes + 1``; the arcs leaving node ``x`` are ``indptr[x]:indptr[x + 1]``.
``indices``
    int32 or int64, one per arc: the neighbour node.
``weights``
    float64, one per arc: the arc cost (metres), finite and ``> 0``.
``edge_ids``
    int64, one per arc: the undirected edge the arc belongs to (both arcs of an edge
    share it).  Edge ``e`` joins ``edge_u[e]`` and ``edge_v[e]`` and is ``edge_len[e]``
    long.  :func:`csr_from_edges` builds all four arrays from an edge list.

A *source* is a point on an edge, so every search starts from one or more
``(node, initial_distance)`` seeds; :func:`anchor_seeds` turns points on edges
(edge, offset from ``edge_u``, off-network access leg) into such seeds.

Search results are sparse and CSR-like (:class:`SearchResult`): search ``s`` reached
``nodes[ptr[s]:ptr[s + 1]]`` (sorted by node id) at ``dist[ptr[s]:ptr[s + 1]]``.
Memory is proportional to the reached sets, never ``n_searches x n_nodes``.

All kernels are deterministic: their output depends only on their input, not on the
number of numba threads or on scheduling.

Algorithms
----------
Dijkstra with a 4-ary min-heap with decrease-key (int32 slots, so at most 2**31 - 1
nodes).  ``multi_source_dijkstra`` is one search from a super-source; the many-search
kernels (:func:`bounded_dijkstra_many`, :func:`reached_edges`, :func:`coverage_pairs`)
run independent jobs in parallel over ``numba.get_num_threads()`` threads.

Jobs are processed in rounds.  Within a round, ``prange`` hands jobs to threads
dynamically (small chunks); each thread owns its scratch arrays (e.g. a distance array
of size ``n_nodes`` initialised once and reset only on the entries a job touched) and
appends its outputs to its own arena, booking ``(thread, start, count)`` per job.  After
the round, outputs are copied out and finally scattered into job order.  Round sizes
adapt to the observed output sizes so that arenas rarely overflow; a job that does not
fit is re-run in the next round.  Each job's ids are sorted (a bitmap over the id range
when the ids are clustered, quicksort otherwise), so results do not depend on the thread
count or on scheduling.

Scratch memory of a many-search call is at most about ``T x n x 32`` bytes plus arenas of
``T x max(n, 65536) x 16`` bytes (``T`` threads, ``n`` nodes, edges or demand points).
Concurrent calls from several Python threads need a thread-safe numba threading layer
(``omp`` or ``tbb``; ``workqueue`` aborts on concurrent parallel launches).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numba
import numpy as np
from numba import njit, prange
from numpy.typing import ArrayLike, NDArray

from geosvc._errors import InputError

__all__ = [
    "SearchResult",
    "NearestSeed",
    "ReachedEdges",
    "CoveragePairs",
    "csr_from_edges",
    "anchor_seeds",
    "bounded_dijkstra_many",
    "multi_source_dijkstra",
    "reached_edges",
    "coverage_pairs",
]

_INF = np.inf
_SETTLED = -2
_NOT_IN_HEAP = -1
_MIN_ARENA = 1 << 16
_MAX_ROUND = 1 << 15
_ROUND_FILL = 0.5  # rounds are sized to fill about half of each arena
_MAX_NODES = 2**31 - 1  # heap slots and node ids are stored as int32
_CHUNK = 2  # prange chunk size: searches are handed to threads dynamically, two at a time


def _debruijn_table() -> NDArray[np.int64]:
    """Lookup table turning ``(lowest_set_bit * _DEBRUIJN) >> 58`` into the bit index."""
    table = np.zeros(64, np.int64)
    for i in range(64):
        table[(((1 << i) * 0x03F79D71B4CB0A89) & 0xFFFFFFFFFFFFFFFF) >> 58] = i
    return table


_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_TABLE = _debruijn_table()


# --------------------------------------------------------------------------------------
# Result containers
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Compiled building blocks
# --------------------------------------------------------------------------------------


# The priority queue is a 4-ary min-heap with decrease-key: ``hkey``/``hnode`` hold the
# keys and nodes, ``pos[node]`` the node's slot (``-1`` never queued, ``-2`` settled).
# A 4-ary heap is shallower than a binary one and its children share a cache line.


@njit(cache=True)
def _sift_up(hkey: Any, hnode: Any, pos: Any, i: int) -> None:  # pragma: no cover - njit
    key = hkey[i]
    node = hnode[i]
    while i > 0:
        parent = (i - 1) >> 2
        pkey = hkey[parent]
        if pkey <= key:
            break
        pnode = hnode[parent]
        hkey[i] = pkey
        hnode[i] = pnode
        pos[pnode] = i
        i = parent
    hkey[i] = key
    hnode[i] = node
    pos[node] = i


@njit(cache=True)
def _sift_down(hkey: Any, hnode: Any, pos: Any, i: int, size: int) -> None:  # pragma: no cover
    key = hkey[i]
    node = hnode[i]
    while True:
        first = (i << 2) + 1
        if first >= size:
            break
        best = first
        bkey = hkey[first]
        for c in range(first + 1, min(first + 4, size)):
            ckey = hkey[c]
            if ckey < bkey:
                bkey = ckey
                best = c
        if bkey >= key:
            break
        bnode = hnode[best]
        hkey[i] = bkey
        hnode[i] = bnode
        pos[bnode] = i
        i = best
    hkey[i] = key
    hnode[i] = node
    pos[node] = i


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
            if dv == _INF:
                touched[m] = v
                m += 1
                hkey[size] = d
                hnode[size] = v
                size += 1
                _sift_up(hkey, hnode, pos, size - 1)
            else:
                i = pos[v]
                hkey[i] = d
                _sift_up(hkey, hnode, pos, i)
    while size > 0:
        u = hnode[0]
        du = hkey[0]
        size -= 1
        if size > 0:
            hkey[0] = hkey[size]
            hnode[0] = hnode[size]
            _sift_down(hkey, hnode, pos, 0, size)
        pos[u] = _SETTLED
        for a in range(indptr[u], indptr[u + 1]):
            v = indices[a]
            nd = du + weights[a]
            if nd > limit:
                continue
            dv = dist[v]
            if nd < dv:  # never true for settled nodes: weights are > 0
                dist[v] = nd
                if dv == _INF:
                    touched[m] = v
                    m += 1
                    hkey[size] = nd
                    hnode[size] = v
                    size += 1
                    _sift_up(hkey, hnode, pos, size - 1)
                else:
                    i = pos[v]
                    hkey[i] = nd
                    _sift_up(hkey, hnode, pos, i)
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
        f = fill[t, 0]
        fits = f + m <= cap
        if fits:
            _sort_ids(touched_t, m, bits[t], words[t])
            for q in range(m):
                v = touched_t[q]
                arena_i[t, f + q] = v
                arena_f[t, f + q, 0] = dist_t[v]
        for q in range(m):
            v = touched_t[q]
            dist_t[v] = _INF
            pos_t[v] = _NOT_IN_HEAP
        _record(fill, rec, t, k, m, fits)


@njit(cache=True)
def _record(fill: Any, rec: Any, t: int, k: int, m: int, fits: bool) -> None:  # pragma: no cover
    """Book job ``k``'s output (``m`` entries) in worker ``t``'s arena, or mark overflow."""
    if fits:
        rec[k, 0] = t
        rec[k, 1] = fill[t, 0]
        rec[k, 2] = m
        fill[t, 0] += m
    else:
        fill[t, 1] = 1


@njit(cache=True)
def _sort_ids(a: Any, m: int, bits: Any, words: Any) -> None:  # pragma: no cover - njit
    """Sort the distinct non-negative ids ``a[:m]`` in place.

    A bitmap sort over the touched 64-bit words only: set one bit per id in ``bits``
    (an all-zero uint64 scratch with one bit per possible id), sort the distinct word
    indices (``words`` is an int64 scratch with one slot per word), then read the set
    bits back in order, clearing ``bits`` again.  Ids of one search are clustered, so
    there are far fewer words than ids; in the worst case it is a quicksort of ``m``.
    """
    if m < 2:
        return
    one = np.uint64(1)
    n_words = 0
    for q in range(m):
        v = a[q]
        wi = v >> 6
        if bits[wi] == 0:
            words[n_words] = wi
            n_words += 1
        bits[wi] |= one << np.uint64(v & 63)
    if n_words > 1:
        words[:n_words].sort()
    o = 0
    for k in range(n_words):
        wi = words[k]
        word = bits[wi]
        bits[wi] = 0
        base = wi << 6
        while word != 0:
            low = word & (~word + one)
            a[o] = base + _DEBRUIJN_TABLE[np.int64((low * _DEBRUIJN) >> np.uint64(58))]
            o += 1
            word ^= low


@njit(cache=True)
def _collect_round(rec: Any, arena_i: Any, arena_f: Any) -> Any:  # pragma: no cover - njit
    """Concatenate a round's outputs in round order (jobs with ``rec[k, 0] >= 0`` only)."""
    n_cols = arena_f.shape[2]
    total = 0
    for k in range(rec.shape[0]):
        if rec[k, 0] >= 0:
            total += rec[k, 2]
    out_i = np.empty(total, np.int64)
    out_f = np.empty((total, n_cols), np.float64)
    o = 0
    for k in range(rec.shape[0]):
        t = rec[k, 0]
        if t < 0:
            continue
        f = rec[k, 1]
        c = rec[k, 2]
        out_i[o : o + c] = arena_i[t, f : f + c]
        out_f[o : o + c] = arena_f[t, f : f + c]
        o += c
    return out_i, out_f


@njit(cache=True)
def _scatter(
    ptr: Any, items: Any, counts: Any, src_i: Any, src_f: Any, dst_i: Any, dst_f: Any
) -> None:  # pragma: no cover - njit
    o = 0
    for k in range(items.shape[0]):
        p = ptr[items[k]]
        c = counts[k]
        dst_i[p : p + c] = src_i[o : o + c]
        dst_f[p : p + c] = src_f[o : o + c]
        o += c


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
    dist = np.full(n, _INF)
    label = np.full(n, -1, np.int64)
    pos = np.full(n, _NOT_IN_HEAP, np.int32)
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
            if dv == _INF:
                hkey[size] = d
                hnode[size] = v
                size += 1
                _sift_up(hkey, hnode, pos, size - 1)
            else:
                i = pos[v]
                hkey[i] = d
                _sift_up(hkey, hnode, pos, i)
        elif d == dv and lab < label[v]:
            label[v] = lab
    while size > 0:
        u = hnode[0]
        du = hkey[0]
        size -= 1
        if size > 0:
            hkey[0] = hkey[size]
            hnode[0] = hnode[size]
            _sift_down(hkey, hnode, pos, 0, size)
        pos[u] = _SETTLED
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
                if dv == _INF:
                    hkey[size] = nd
                    hnode[size] = v
                    size += 1
                    _sift_up(hkey, hnode, pos, size - 1)
                else:
                    i = pos[v]
                    hkey[i] = nd
                    _sift_up(hkey, hnode, pos, i)
            elif nd == dv and lu < label[v] and pos[v] != _SETTLED:
                label[v] = lu
    return dist, label


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
        f = fill[t, 0]
        fits = f + m <= cap
        if fits:
            _sort_ids(te, m, bits[t], words[t])
            for q in range(m):
                e = te[q]
                arena_i[t, f + q] = e
                arena_f[t, f + q, 0] = ru[e]
                arena_f[t, f + q, 1] = rv[e]
        for q in range(m):
            e = te[q]
            ru[e] = -1.0
            rv[e] = -1.0
        _record(fill, rec, t, k, m, fits)


@njit(cache=True)
def _offer(b: Any, td: Any, m: int, j: int, d: float) -> int:  # pragma: no cover - njit
    """Keep the smaller distance for demand ``j``; returns the new touched count."""
    bj = b[j]
    if bj == _INF:
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
                    d = _INF
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
        f = fill[t, 0]
        fits = f + m <= cap
        if fits:
            # positions, not ids, are sorted: they cluster by edge (cheap to sort, and
            # sequential to read back); ids follow edge order
            _sort_ids(td, m, bits[t], words[t])
            for q in range(m):
                p = td[q]
                arena_i[t, f + q] = dem_idx[p]
                arena_f[t, f + q, 0] = b[p]
                b[p] = _INF
        else:
            for q in range(m):
                b[td[q]] = _INF
        _record(fill, rec, t, k, m, fits)


# --------------------------------------------------------------------------------------
# Round driver (Python; one compiled call per round)
# --------------------------------------------------------------------------------------

_RoundFn = Callable[
    [
        NDArray[np.int64],
        NDArray[np.int64],
        NDArray[np.float64],
        NDArray[np.int64],
        NDArray[np.int64],
    ],
    None,
]


def _run_rounds(
    run_round: _RoundFn, n_items: int, n_workers: int, cap: int, n_cols: int,
    sequence: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Run ``n_items`` independent jobs in adaptive rounds and assemble a CSR result.

    ``sequence`` (a permutation of the jobs) is the order they are handed out in, e.g.
    spatial order so that consecutive searches touch the same memory; the result is in job
    order whatever the sequence.

    ``run_round(items, arena_i, arena_f, fill, rec)`` processes one round in parallel.
    The worker (thread ``t``) that runs job ``k`` writes its output at
    ``arena[t, fill[t, 0]:...]`` and books ``rec[k] = (t, start, count)``; a job that does
    not fit sets ``fill[t, 1]`` and the worker skips the rest of the round.  Jobs left
    with ``rec[k, 0] == -1`` are carried over to the next round.  ``cap`` must be at
    least the largest possible output of a single job, which guarantees progress.
    """
    arena_i = np.empty((n_workers, cap), np.int64)
    arena_f = np.empty((n_workers, cap, n_cols), np.float64)
    fill = np.zeros((n_workers, 2), np.int64)
    count_all = np.zeros(n_items, np.int64)
    pieces: list[
        tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]
    ] = []
    carried = np.empty(0, np.int64)
    next_item = 0
    round_size = 4 * n_workers
    n_done = 0
    n_out = 0
    while next_item < n_items or carried.size:
        take = max(round_size - carried.size, 0)
        stop = min(n_items, next_item + take)
        fresh = (np.arange(next_item, stop, dtype=np.int64) if sequence is None
                 else sequence[next_item:stop])
        items = np.concatenate((carried, fresh))
        next_item = stop
        rec = np.full((items.size, 3), -1, np.int64)
        fill[:] = 0
        with numba.parallel_chunksize(_CHUNK):
            run_round(items, arena_i, arena_f, fill, rec)
        out_i, out_f = _collect_round(rec, arena_i, arena_f)
        done = rec[:, 0] >= 0
        items_done = items[done]
        counts_done = rec[done, 2]
        pieces.append((items_done, counts_done, out_i, out_f))
        count_all[items_done] = counts_done
        carried = items[~done]
        n_done += int(items_done.size)
        n_out += int(out_i.size)
        mean = max(n_out / max(n_done, 1), 1.0)
        round_size = int(min(max(n_workers, n_workers * _ROUND_FILL * cap / mean), _MAX_ROUND))
    ptr = np.zeros(n_items + 1, np.int64)
    np.cumsum(count_all, out=ptr[1:])
    order = np.concatenate([piece[0] for piece in pieces])
    if len(pieces) == 1 and np.all(order[1:] > order[:-1]):
        return ptr, pieces[0][2], pieces[0][3]
    if np.all(order[1:] > order[:-1]):  # no job was carried over: already in job order
        return ptr, np.concatenate([p[2] for p in pieces]), np.concatenate([p[3] for p in pieces])
    total = int(ptr[-1])
    dst_i = np.empty(total, np.int64)
    dst_f = np.empty((total, n_cols), np.float64)
    for items_done, counts_done, out_i, out_f in pieces:
        _scatter(ptr, items_done, counts_done, out_i, out_f, dst_i, dst_f)
    return ptr, dst_i, dst_f


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _int_array(a: ArrayLike, name: str) -> NDArray[np.int64]:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name} must hold integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _float_array(a: ArrayLike, name: str, *, size: int | None = None) -> NDArray[np.float64]:
    arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {arr.shape}")
    if size is not None and arr.size != size:
        raise InputError(f"{name} has {arr.size} entries, expected {size}")
    if np.isnan(arr).any():
        raise InputError(f"{name} contains NaN at index {int(np.flatnonzero(np.isnan(arr))[0])}")
    return arr


def _check_range(arr: NDArray[np.int64], hi: int, name: str, *, lo: int = 0) -> None:
    if arr.size:
        bad = (arr < lo) | (arr >= hi)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{name}[{i}] = {arr[i]} is outside [{lo}, {hi})")


def _check_ptr(ptr: NDArray[np.int64], total: int, name: str) -> None:
    if ptr.size == 0 or ptr[0] != 0 or ptr[-1] != total or (np.diff(ptr) < 0).any():
        raise InputError(
            f"{name} must start at 0, be non-decreasing and end at {total} (the length of the "
            "arrays it indexes)"
        )


def _check_graph(
    indptr: ArrayLike, indices: ArrayLike, weights: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[Any], NDArray[np.float64]]:
    ip = _int_array(indptr, "indptr")
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
    if n >= _MAX_NODES:
        raise InputError(f"graphs with {n} nodes are not supported (at most {_MAX_NODES - 1})")
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
        if not (w > 0.0 and w < _INF):
            return 3, a
    return 0, -1


def _check_edges(
    indptr: NDArray[np.int64],
    indices: NDArray[Any],
    edge_ids: ArrayLike,
    edge_u: ArrayLike,
    edge_v: ArrayLike,
    edge_len: ArrayLike,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    eu = _int_array(edge_u, "edge_u")
    ev = _int_array(edge_v, "edge_v")
    el = _float_array(edge_len, "edge_len", size=eu.size)
    if ev.size != eu.size:
        raise InputError(f"edge_v has {ev.size} entries, edge_u has {eu.size}")
    if el.size and not (np.isfinite(el).all() and (el >= 0).all()):
        raise InputError("edge_len must be finite and >= 0")
    eid = _int_array(edge_ids, "edge_ids")
    if eid.size != indices.size:
        raise InputError(f"edge_ids has {eid.size} entries, expected one per arc ({indices.size})")
    _check_range(eid, eu.size, "edge_ids")
    n = indptr.size - 1
    _check_range(eu, n, "edge_u")
    _check_range(ev, n, "edge_v")
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


def _check_limits(limit: float | ArrayLike, n: int) -> NDArray[np.float64]:
    arr = np.asarray(limit, dtype=np.float64)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.size != n):
        raise InputError(
            f"limit must be a scalar or have one entry per search ({n}), got {arr.shape}"
        )
    out = np.ascontiguousarray(np.broadcast_to(arr, (n,)))
    if out.size and (np.isnan(out).any() or (out < 0).any()):
        raise InputError("limit must be >= 0 (inf for unbounded) and not NaN")
    return out


def _check_result(
    out_ptr: ArrayLike, out_nodes: ArrayLike, out_dist: ArrayLike, n_nodes: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    rp = _int_array(out_ptr, "out_ptr")
    rn = _int_array(out_nodes, "out_nodes")
    rd = _float_array(out_dist, "out_dist", size=rn.size)
    _check_ptr(rp, rn.size, "out_ptr")
    _check_range(rn, n_nodes, "out_nodes")
    return rp, rn, rd


def _check_sequence(sequence: ArrayLike | None, n: int) -> NDArray[np.int64] | None:
    """``sequence`` as int64 after checking it is a permutation of ``range(n)``."""
    if sequence is None:
        return None
    seq = _int_array(sequence, "sequence")
    if seq.size != n or not np.array_equal(np.sort(seq), np.arange(n)):
        raise InputError(f"sequence must be a permutation of the {n} searches")
    return seq


def _n_workers() -> int:
    return max(int(numba.get_num_threads()), 1)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def csr_from_edges(
    n_nodes: int, edge_u: ArrayLike, edge_v: ArrayLike, edge_len: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Build the both-directions CSR adjacency of an undirected edge list.

    Parameters
    ----------
    n_nodes
        Number of nodes; node ids are ``0 .. n_nodes - 1``.
    edge_u, edge_v
        End nodes of each undirected edge ``e``.  Parallel edges and self-loops are kept
        (a self-loop yields two arcs ``x -> x``).
    edge_len
        Length of each edge (the arc weight of both its arcs), finite and ``> 0``.

    Returns
    -------
    tuple
        ``(indptr, indices, weights, edge_ids)``: int64, int64, float64, int64.  The arcs
        of each node are sorted by neighbour, then by edge id.

    Examples
    --------
    >>> indptr, indices, weights, edge_ids = csr_from_edges(3, [0, 1], [1, 2], [5.0, 7.0])
    >>> indptr.tolist(), indices.tolist(), edge_ids.tolist()
    ([0, 1, 3, 4], [1, 0, 2, 1], [0, 0, 1, 1])
    """
    eu = _int_array(edge_u, "edge_u")
    ev = _int_array(edge_v, "edge_v")
    el = _float_array(edge_len, "edge_len", size=eu.size)
    if ev.size != eu.size:
        raise InputError(f"edge_v has {ev.size} entries, edge_u has {eu.size}")
    _check_range(eu, n_nodes, "edge_u")
    _check_range(ev, n_nodes, "edge_v")
    if el.size and not (np.isfinite(el).all() and (el > 0).all()):
        raise InputError("edge_len must be finite and > 0")
    eid = np.arange(eu.size, dtype=np.int64)
    src = np.concatenate((eu, ev))
    dst = np.concatenate((ev, eu))
    ids = np.concatenate((eid, eid))
    order = np.lexsort((ids, dst, src))
    indptr = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n_nodes), out=indptr[1:])
    return indptr, dst[order], np.concatenate((el, el))[order], ids[order]


def anchor_seeds(
    edge: ArrayLike,
    offset_m: ArrayLike,
    access_m: ArrayLike,
    edge_u: ArrayLike,
    edge_v: ArrayLike,
    edge_len: ArrayLike,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Seeds for searches that start at points on edges.

    Point ``i`` sits on edge ``edge[i]`` at ``offset_m[i]`` from ``edge_u`` and is
    ``access_m[i]`` away from the network.  Its search gets two seeds:
    ``(edge_u, access + offset)`` and ``(edge_v, access + len - offset)``.  A point with
    ``edge < 0`` (not on the network) gets no seeds, so its search reaches nothing.

    Note that travel *along the point's own edge* (to another point on the same edge)
    is not represented by node distances; :func:`coverage_pairs` adds it explicitly.

    Parameters
    ----------
    edge
        Edge id of each point, or ``-1``.
    offset_m
        Distance along the edge from ``edge_u``, in ``[0, edge_len]``.
    access_m
        Off-network leg, ``>= 0``.
    edge_u, edge_v, edge_len
        The edge table.

    Returns
    -------
    tuple
        ``(seed_ptr, seed_nodes, seed_dist)`` (int64, int64, float64) for
        :func:`bounded_dijkstra_many`; for :func:`multi_source_dijkstra` use
        ``seed_label = np.repeat(labels, np.diff(seed_ptr))``.

    Examples
    --------
    >>> ptr, nodes, dist = anchor_seeds([0], [30.0], [5.0], [0], [1], [100.0])
    >>> ptr.tolist(), nodes.tolist(), dist.tolist()
    ([0, 2], [0, 1], [35.0, 75.0])
    """
    e = _int_array(edge, "edge")
    off = _float_array(offset_m, "offset_m", size=e.size)
    acc = _float_array(access_m, "access_m", size=e.size)
    eu = _int_array(edge_u, "edge_u")
    ev = _int_array(edge_v, "edge_v")
    el = _float_array(edge_len, "edge_len", size=eu.size)
    _check_range(e, eu.size, "edge", lo=-1)
    on = e >= 0
    _check_offsets(e, off, acc, el, "offset_m", "access_m")
    k = np.flatnonzero(on)
    ek = e[k]
    nodes = np.empty(2 * k.size, np.int64)
    dist = np.empty(2 * k.size, np.float64)
    nodes[0::2] = eu[ek]
    nodes[1::2] = ev[ek]
    dist[0::2] = acc[k] + off[k]
    dist[1::2] = acc[k] + (el[ek] - off[k])
    ptr = np.zeros(e.size + 1, np.int64)
    np.cumsum(np.where(on, 2, 0), out=ptr[1:])
    return ptr, nodes, dist


def _check_offsets(
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
    >>> indptr, indices, weights, _ = csr_from_edges(3, [0, 1], [1, 2], [5.0, 7.0])
    >>> res = bounded_dijkstra_many(indptr, indices, weights, [0, 1, 3], [0, 2, 1], [0.0, 0.0, 1.0], 6.0)
    >>> res.ptr.tolist(), res.nodes.tolist(), res.dist.tolist()
    ([0, 2, 5], [0, 1, 0, 1, 2], [0.0, 5.0, 6.0, 1.0, 0.0])
    """
    ip, idx, w = _check_graph(indptr, indices, weights)
    n = ip.size - 1
    sp = _int_array(seed_ptr, "seed_ptr")
    sn = _int_array(seed_nodes, "seed_nodes")
    sd = _float_array(seed_dist, "seed_dist", size=sn.size)
    _check_ptr(sp, sn.size, "seed_ptr")
    _check_range(sn, n, "seed_nodes")
    if sd.size and (sd < 0).any():
        raise InputError("seed_dist must be >= 0")
    n_search = sp.size - 1
    limits = _check_limits(limit, n_search)
    if n_search == 0 or n == 0:
        return SearchResult(np.zeros(n_search + 1, np.int64), np.empty(0, np.int64), np.empty(0))

    n_workers = _n_workers()
    dist = np.full((n_workers, n), np.inf)
    pos = np.full((n_workers, n), _NOT_IN_HEAP, np.int32)
    hkey = np.empty((n_workers, n), np.float64)
    hnode = np.empty((n_workers, n), np.int32)
    touched = np.empty((n_workers, n), np.int64)
    bits = np.zeros((n_workers, (n >> 6) + 1), np.uint64)
    words = np.empty((n_workers, (n >> 6) + 1), np.int64)

    def run_round(
        items: NDArray[np.int64],
        arena_i: NDArray[np.int64],
        arena_f: NDArray[np.float64],
        fill: NDArray[np.int64],
        rec: NDArray[np.int64],
    ) -> None:
        _bounded_round(
            ip, idx, w, sp, sn, sd, limits, items,
            dist, pos, hkey, hnode, touched, bits, words, arena_i, arena_f, fill, rec,
        )  # fmt: skip

    ptr, nodes, vals = _run_rounds(run_round, n_search, n_workers, max(n, _MIN_ARENA), 1,
                                   _check_sequence(sequence, n_search))
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
    >>> indptr, indices, weights, _ = csr_from_edges(3, [0, 1], [1, 2], [5.0, 7.0])
    >>> d, lab = multi_source_dijkstra(indptr, indices, weights, [0, 2], [0.0, 0.0], [10, 20])
    >>> d.tolist(), lab.tolist()
    ([0.0, 5.0, 0.0], [10, 10, 20])
    """
    if trusted_graph:
        ip, idx, w = np.asarray(indptr), np.asarray(indices), np.asarray(weights, np.float64)
    else:
        ip, idx, w = _check_graph(indptr, indices, weights)
    n = ip.size - 1
    sn = _int_array(seed_nodes, "seed_nodes")
    sd = _float_array(seed_dist, "seed_dist", size=sn.size)
    sl = _int_array(seed_label, "seed_label")
    if sl.size != sn.size:
        raise InputError(f"seed_label has {sl.size} entries, seed_nodes has {sn.size}")
    _check_range(sn, n, "seed_nodes")
    if sd.size and (sd < 0).any():
        raise InputError("seed_dist must be >= 0")
    if sl.size and (sl < 0).any():
        raise InputError("seed_label must be >= 0 (-1 marks unreached nodes)")
    lim = float(limit)
    if np.isnan(lim) or lim < 0:
        raise InputError(f"limit must be >= 0, got {limit}")
    dist, label = _multi_source(ip, idx, w, sn, sd, sl, lim)
    return NearestSeed(dist, label)


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
        The searches' results (a :class:`SearchResult` or any slice-consistent subset).
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
    >>> eu, ev, el = [0, 1], [1, 2], [5.0, 7.0]
    >>> g = csr_from_edges(3, eu, ev, el)
    >>> res = bounded_dijkstra_many(*g[:3], [0, 1], [0], [0.0], 8.0)
    >>> r = reached_edges(*g, *res, 8.0, eu, ev, el)
    >>> r.edge.tolist(), r.reach_u.tolist(), r.reach_v.tolist()
    ([0, 1], [5.0, 3.0], [3.0, 0.0])
    """
    ip, idx, w = _check_graph(indptr, indices, weights)
    eid, eu, ev, el = _check_edges(ip, idx, edge_ids, edge_u, edge_v, edge_len)
    rp, rn, rd = _check_result(out_ptr, out_nodes, out_dist, ip.size - 1)
    n_search = rp.size - 1
    limits = _check_limits(limit, n_search)
    n_edges = eu.size
    if n_search == 0 or rn.size == 0:
        empty = np.empty(0, np.float64)
        return ReachedEdges(
            np.zeros(n_search + 1, np.int64), np.empty(0, np.int64), empty, empty.copy()
        )

    n_workers = _n_workers()
    reach_u = np.full((n_workers, n_edges), -1.0)
    reach_v = np.full((n_workers, n_edges), -1.0)
    touched = np.empty((n_workers, n_edges), np.int64)
    bits = np.zeros((n_workers, (n_edges >> 6) + 1), np.uint64)
    words = np.empty((n_workers, (n_edges >> 6) + 1), np.int64)

    def run_round(
        items: NDArray[np.int64],
        arena_i: NDArray[np.int64],
        arena_f: NDArray[np.float64],
        fill: NDArray[np.int64],
        rec: NDArray[np.int64],
    ) -> None:
        _reached_edges_round(
            ip, w, eid, rp, rn, rd, limits, eu, ev, el, items,
            reach_u, reach_v, touched, bits, words, arena_i, arena_f, fill, rec,
        )  # fmt: skip

    ptr, edges, vals = _run_rounds(run_round, n_search, n_workers, max(n_edges, _MIN_ARENA), 2)
    return ReachedEdges(
        ptr, edges, np.ascontiguousarray(vals[:, 0]), np.ascontiguousarray(vals[:, 1])
    )


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
    *,
    cand_edge: ArrayLike,
    cand_offset_m: ArrayLike,
    cand_access_m: ArrayLike,
    demand_edge: ArrayLike,
    demand_offset_m: ArrayLike,
    demand_access_m: ArrayLike,
    sequence: ArrayLike | None = None,
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
    cand_edge, cand_offset_m, cand_access_m
        Candidate anchors (edge id or ``-1``, offset from ``edge_u``, access leg).
    demand_edge, demand_offset_m, demand_access_m
        Demand anchors, the same way.
    sequence
        Order in which the candidates are processed (see :func:`bounded_dijkstra_many`).

    Returns
    -------
    CoveragePairs
        ``(cand, demand, dist)``: int64, int64, float64, sorted by candidate, then by the
        demand's place in edge order (edge id, then index).  Demand given sorted by edge
        (as :mod:`geosvc.siting` does) is thus in ascending index order; otherwise sort
        within a candidate if you need it.  Zero distances are kept.

    Examples
    --------
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
    ip, idx, w = _check_graph(indptr, indices, weights)
    eid, eu, ev, el = _check_edges(ip, idx, edge_ids, edge_u, edge_v, edge_len)
    if w.size and not np.allclose(w, el[eid], rtol=1e-9, atol=1e-9):
        raise InputError("coverage_pairs needs weights equal to edge_len[edge_ids] (one unit)")
    rp, rn, rd = _check_result(out_ptr, out_nodes, out_dist, ip.size - 1)
    n_cand = rp.size - 1
    limits = _check_limits(limit, n_cand)
    ce = _int_array(cand_edge, "cand_edge")
    if ce.size != n_cand:
        raise InputError(f"cand_edge has {ce.size} entries, expected one per search ({n_cand})")
    co = _float_array(cand_offset_m, "cand_offset_m", size=n_cand)
    ca = _float_array(cand_access_m, "cand_access_m", size=n_cand)
    _check_range(ce, eu.size, "cand_edge", lo=-1)
    _check_offsets(ce, co, ca, el, "cand_offset_m", "cand_access_m")
    de = _int_array(demand_edge, "demand_edge")
    n_dem = de.size
    do = _float_array(demand_offset_m, "demand_offset_m", size=n_dem)
    da = _float_array(demand_access_m, "demand_access_m", size=n_dem)
    _check_range(de, eu.size, "demand_edge", lo=-1)
    _check_offsets(de, do, da, el, "demand_offset_m", "demand_access_m")
    if n_cand == 0 or n_dem == 0:
        e64 = np.empty(0, np.int64)
        return CoveragePairs(e64, e64.copy(), np.empty(0, np.float64))

    dem_ptr, dem_idx, dem_pos = _bucket_by_edge(de, eu.size)
    sorted_off = do[dem_idx]
    sorted_acc = da[dem_idx]

    n_workers = _n_workers()
    best = np.full((n_workers, dem_idx.size), np.inf)
    touched = np.empty((n_workers, n_dem), np.int64)
    bits = np.zeros((n_workers, (n_dem >> 6) + 1), np.uint64)
    words = np.empty((n_workers, (n_dem >> 6) + 1), np.int64)

    def run_round(
        items: NDArray[np.int64],
        arena_i: NDArray[np.int64],
        arena_f: NDArray[np.float64],
        fill: NDArray[np.int64],
        rec: NDArray[np.int64],
    ) -> None:
        _coverage_round(
            ip, eid, rp, rn, rd, limits, eu, ev, el, ce, co, ca,
            dem_ptr, dem_idx, dem_pos, sorted_off, sorted_acc, items, best, touched, bits, words, arena_i, arena_f, fill, rec,
        )  # fmt: skip

    ptr, dem, vals = _run_rounds(run_round, n_cand, n_workers, max(n_dem, _MIN_ARENA), 1,
                                 _check_sequence(sequence, n_cand))
    cand = np.repeat(np.arange(n_cand, dtype=np.int64), np.diff(ptr))
    return CoveragePairs(cand, dem, vals.reshape(-1))
