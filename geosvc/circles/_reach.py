"""Which parts of which edges each search reaches (arrays; compiled kernels).

A *search* is one walk budget from one or more sources: a facility at one threshold, or all
facilities of a category at one threshold (their union).  The result is a flat table of
reached intervals ``[lo_m, hi_m]`` (metres from the edge's ``u`` end), merged per
(search, edge), with the partial edges at the frontier cut exactly where the budget ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from geosvc._errors import InputError
from geosvc._search import anchor_seeds, bounded_dijkstra_many
from geosvc.access import Anchors
from geosvc.network import CompiledNetwork

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

EPS_M = 1e-6  # an interval this close to both edge ends is the whole edge (metres)


@dataclass(frozen=True)
class Sources:
    """Snapped sources grouped into searches (sources of one search walk together)."""

    search: IntArray  # search of each source
    edge: IntArray
    offset_m: FloatArray
    access_m: FloatArray
    n_search: int

    @classmethod
    def from_anchors(cls, anchors: Anchors, search: ArrayLike | None = None,
                     n_search: int | None = None) -> Sources:
        """Sources from snapped points; points that did not snap are left out.

        ``search`` gives the search of each point (default: one search per point).
        """
        n = len(anchors)
        grp = np.arange(n, dtype=np.int64) if search is None else np.asarray(search, np.int64)
        if grp.shape != (n,):
            raise InputError(f"search has {grp.size} entries for {n} anchors")
        n_s = n if n_search is None else int(n_search)
        if grp.size and (grp.min() < 0 or grp.max() >= n_s):
            raise InputError(f"search ids must be in [0, {n_s}); got {grp.min()}..{grp.max()}")
        ok = np.flatnonzero(anchors.ok)
        return cls(grp[ok], anchors.edge[ok].astype(np.int64),
                   anchors.offset_m[ok].astype(np.float64),
                   anchors.access_m[ok].astype(np.float64), n_s)


@dataclass(frozen=True)
class Reached:
    """Reached intervals, sorted by (search, edge, lo_m); disjoint within an edge."""

    search: IntArray
    edge: IntArray
    lo_m: FloatArray
    hi_m: FloatArray
    full: NDArray[np.bool_]  # the interval is the whole edge
    n_search: int


def reach_array(reach_m: Any, n: int, name: str = "reach_m") -> FloatArray:
    """``reach_m`` as one finite value >= 0 per search."""
    arr = np.broadcast_to(np.asarray(reach_m, dtype=np.float64), (n,)).copy() \
        if np.ndim(reach_m) == 0 else np.asarray(reach_m, dtype=np.float64)
    if arr.shape != (n,):
        raise InputError(f"{name} has {arr.size} values for {n} searches")
    if arr.size and not (np.isfinite(arr).all() and (arr >= 0).all()):
        i = int(np.flatnonzero(~(np.isfinite(arr) & (arr >= 0)))[0])
        raise InputError(f"{name}[{i}] = {arr[i]} must be a finite distance >= 0 (metres)")
    return arr


def reached(net: CompiledNetwork, src: Sources, reach_m: FloatArray) -> Reached:
    """Reached intervals of every search within its budget ``reach_m[search]``.

    Each source spends its access leg first, then walks both ways along its own edge and on
    through the network (one bounded multi-seed Dijkstra per search, compiled, sparse output).
    """
    order = np.argsort(src.search, kind="stable")
    ptr1, nodes, dist = anchor_seeds(src.edge[order], src.offset_m[order], src.access_m[order],
                                     net.edge_u, net.edge_v, net.edge_length_m)
    counts = np.bincount(src.search[order], weights=np.diff(ptr1),
                         minlength=src.n_search).astype(np.int64)
    seed_ptr = np.zeros(src.n_search + 1, np.int64)
    np.cumsum(counts, out=seed_ptr[1:])
    g = net.csr_graph
    res = bounded_dijkstra_many(g.indptr, g.indices, g.weights, seed_ptr, nodes, dist, reach_m)
    # the source's own edge, around its offset
    own = reach_m[src.search] - src.access_m
    keep = own >= 0.0
    length = net.edge_length_m[src.edge[keep]]
    off = src.offset_m[keep]
    own_lo = np.clip(off - own[keep], 0.0, length)
    own_hi = np.clip(off + own[keep], 0.0, length)
    s, e, lo, hi = _raw_intervals(res.ptr, res.nodes, res.dist, reach_m, g.indptr,
                                  g.edge_ids, net.edge_u, net.edge_length_m,
                                  src.search[keep], src.edge[keep], own_lo, own_hi)
    order = np.lexsort((lo, e, s))
    s, e, lo, hi = _merge_sorted(s[order], e[order], lo[order], hi[order])
    full = (lo <= EPS_M) & (hi >= net.edge_length_m[e] - EPS_M)
    return Reached(s, e, lo, hi, full, src.n_search)


@njit(cache=True)
def _raw_intervals(
    ptr: Any, nodes: Any, dist: Any, lim: Any, indptr: Any, arc_edge: Any, edge_u: Any,
    edge_len: Any, own_s: Any, own_e: Any, own_lo: Any, own_hi: Any,
) -> Any:  # pragma: no cover - njit
    """Reached intervals per (search, edge), unmerged.

    A node reached at ``d <= lim`` reaches ``min(lim - d, len)`` along every edge at it
    (zero-length intervals included: the node itself is reached).
    """
    n_search = ptr.shape[0] - 1
    count = own_s.shape[0]
    for s in range(n_search):
        for q in range(ptr[s], ptr[s + 1]):
            if dist[q] <= lim[s]:
                x = nodes[q]
                count += indptr[x + 1] - indptr[x]
    out_s = np.empty(count, np.int64)
    out_e = np.empty(count, np.int64)
    out_lo = np.empty(count, np.float64)
    out_hi = np.empty(count, np.float64)
    m = 0
    for s in range(n_search):
        for q in range(ptr[s], ptr[s + 1]):
            rem = lim[s] - dist[q]
            if not rem >= 0.0:
                continue
            x = nodes[q]
            for a in range(indptr[x], indptr[x + 1]):
                e = arc_edge[a]
                length = edge_len[e]
                r = rem if rem < length else length
                out_s[m] = s
                out_e[m] = e
                if edge_u[e] == x:
                    out_lo[m] = 0.0
                    out_hi[m] = r
                else:
                    out_lo[m] = length - r
                    out_hi[m] = length
                m += 1
    for k in range(own_s.shape[0]):
        out_s[m] = own_s[k]
        out_e[m] = own_e[k]
        out_lo[m] = own_lo[k]
        out_hi[m] = own_hi[k]
        m += 1
    return out_s[:m], out_e[:m], out_lo[:m], out_hi[:m]


@njit(cache=True)
def _merge_sorted(s: Any, e: Any, lo: Any, hi: Any) -> Any:  # pragma: no cover - njit
    """Merge intervals sorted by (search, edge, lo) into disjoint ones."""
    n = s.shape[0]
    ms = np.empty(n, np.int64)
    me = np.empty(n, np.int64)
    mlo = np.empty(n, np.float64)
    mhi = np.empty(n, np.float64)
    m = -1
    for i in range(n):
        if m >= 0 and s[i] == ms[m] and e[i] == me[m] and lo[i] <= mhi[m]:
            if hi[i] > mhi[m]:
                mhi[m] = hi[i]
            continue
        m += 1
        ms[m] = s[i]
        me[m] = e[i]
        mlo[m] = lo[i]
        mhi[m] = hi[i]
    return ms[: m + 1], me[: m + 1], mlo[: m + 1], mhi[: m + 1]
