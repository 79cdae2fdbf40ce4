"""Nearest-facility distances: one multi-source search per category, edge-based and exact.

Each facility sits on a point of an edge (offset from the edge's ``u`` end) and is reached
over an off-network access leg.  A virtual node per facility is joined to both ends of its
edge (weights: access + partial edge), and one compiled Dijkstra
(``scipy.sparse.csgraph.dijkstra(min_only=True)``) labels every street node with the
distance to, and the index of, its nearest facility.  Households then add their own partial
edge and access leg; a facility on the household's own edge is also reached directly along
that edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from geosvc.access._snap import Anchors
from geosvc.network import CompiledNetwork

__all__ = ["NearestResult", "nearest_facility", "node_distances"]


@dataclass(frozen=True)
class NearestResult:
    """Distance (metres, network + access legs) and index of the nearest source per target.

    ``distance_m`` is inf for unreachable targets (no path, e.g. another component) and NaN
    for targets that are not snapped; ``source`` is -1 in both cases.
    """

    distance_m: np.ndarray
    source: np.ndarray


def node_distances(
    net: CompiledNetwork, sources: Anchors, *, limit_m: float = np.inf
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from every network node to its nearest snapped source, and that source.

    Returns
    -------
    dist_m, source
        Arrays over nodes; ``source`` indexes ``sources`` (-1 where unreached).
    """
    s_idx = np.flatnonzero(sources.ok)
    n = net.n_nodes
    if len(s_idx) == 0:
        return np.full(n, np.inf), np.full(n, -1, dtype=np.int64)
    e = sources.edge[s_idx]
    off = sources.offset_m[s_idx]
    acc = sources.access_m[s_idx]
    length = net.edge_length_m[e]
    k = len(s_idx)
    heads = np.empty(2 * k, dtype=np.int64)
    heads[0::2] = net.edge_u[e]
    heads[1::2] = net.edge_v[e]
    w = np.empty(2 * k)
    w[0::2] = acc + off
    w[1::2] = acc + (length - off)
    indptr = np.concatenate([net.indptr, net.indptr[-1] + 2 * np.arange(1, k + 1)])
    # nodes n..n+k-1 are the virtual facility nodes (no arcs lead into them)
    indptr = np.concatenate([indptr[: n + 1], indptr[n + 1:]])
    graph = sp.csr_matrix(
        (np.concatenate([net.weights, w]), np.concatenate([net.indices, heads]), indptr),
        shape=(n + k, n + k),
    )
    dist, _, src = dijkstra(graph, directed=True, indices=np.arange(n, n + k),
                            min_only=True, return_predecessors=True, limit=limit_m)
    src = src[:n].astype(np.int64)
    label = np.where(src >= 0, s_idx[np.clip(src - n, 0, k - 1)], -1)
    return dist[:n], label


def nearest_facility(
    net: CompiledNetwork, sources: Anchors, targets: Anchors, *, limit_m: float = np.inf
) -> NearestResult:
    """Edge-based network distance from every target to its nearest source.

    Parameters
    ----------
    net
        Compiled network.
    sources
        Snapped facilities (only ``ok`` ones take part).
    targets
        Snapped households.
    limit_m
        Optional search bound; targets beyond it get ``inf``.

    Returns
    -------
    NearestResult
    """
    node_dist, node_src = node_distances(net, sources, limit_m=limit_m)
    ok = sources.ok
    s_idx = np.flatnonzero(ok)
    order = s_idx[np.argsort(sources.edge[s_idx], kind="stable")]
    src_ptr = np.zeros(net.n_edges + 1, dtype=np.int64)
    np.cumsum(np.bincount(sources.edge[order], minlength=net.n_edges), out=src_ptr[1:])
    t_edge = np.where(targets.ok, targets.edge, -1)
    dist, who = _lookup(
        t_edge, targets.offset_m, targets.access_m, net.edge_u, net.edge_v,
        net.edge_length_m, node_dist, node_src, src_ptr, order,
        sources.offset_m, sources.access_m, float(limit_m))
    return NearestResult(dist, who)


@nb.njit(cache=True, parallel=True)
def _lookup(t_edge: np.ndarray, t_off: np.ndarray, t_acc: np.ndarray, edge_u: np.ndarray,
            edge_v: np.ndarray, edge_len: np.ndarray, node_dist: np.ndarray,
            node_src: np.ndarray, src_ptr: np.ndarray, src_order: np.ndarray,
            s_off: np.ndarray, s_acc: np.ndarray, limit: float
            ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    m = len(t_edge)
    out_d = np.full(m, np.nan)
    out_s = np.full(m, -1, dtype=np.int64)
    for i in nb.prange(m):
        e = t_edge[i]
        if e < 0:
            continue
        u = edge_u[e]
        v = edge_v[e]
        best = node_dist[u] + t_off[i]
        who = node_src[u]
        dv = node_dist[v] + (edge_len[e] - t_off[i])
        if dv < best:
            best = dv
            who = node_src[v]
        for k in range(src_ptr[e], src_ptr[e + 1]):  # facilities on the same edge
            s = src_order[k]
            d = abs(s_off[s] - t_off[i]) + s_acc[s]
            if d < best or (d == best and s < who):
                best = d
                who = s
        best += t_acc[i]
        if not (best <= limit) or not np.isfinite(best):
            best = np.inf
            who = -1
        out_d[i] = best
        out_s[i] = who
    return out_d, out_s
