"""Nearest-facility distances: one multi-source search per category, edge-based and exact.

Each facility sits on a point of an edge (offset from the edge's ``u`` end) and is reached
over an off-network access leg.  Both ends of its edge are seeded (access + partial edge),
and one compiled multi-source Dijkstra (:func:`geosvc._search.multi_source_dijkstra`)
labels every street node with the distance to, and the index of, its nearest facility (ties:
the smallest index).  Households then add their own partial
edge and access leg; a facility on the household's own edge is also reached directly along
that edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from geosvc._errors import InputError
from geosvc._search import anchor_seeds, multi_source_dijkstra
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
    ptr, nodes, dist = anchor_seeds(sources.edge[s_idx], sources.offset_m[s_idx],
                                    sources.access_m[s_idx], net.edge_u, net.edge_v,
                                    net.edge_length_m)
    label = np.repeat(s_idx.astype(np.int64), np.diff(ptr))
    lim = float(limit_m)
    if np.isnan(lim) or lim < 0:
        raise InputError(f"limit_m must be >= 0, got {limit_m}")
    # the compiled network's CSR is valid by construction (its int32 copy cached on it)
    g = net.csr_graph32
    res = multi_source_dijkstra(g.indptr, g.indices, g.weights, nodes, dist, label, lim,
                                trusted_graph=True)
    return res.dist, res.label


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
    # one row per edge with what a target on it needs: two cache lines per target
    f_tab, i_tab = _edge_table(net.edge_u, net.edge_v, net.edge_length_m, node_dist, node_src,
                               src_ptr)
    dist, who = _lookup(t_edge, targets.offset_m, targets.access_m, f_tab, i_tab, order,
                        sources.offset_m, sources.access_m, float(limit_m))
    return NearestResult(dist, who)


@nb.njit(cache=True, parallel=True)
def _edge_table(edge_u: np.ndarray, edge_v: np.ndarray, edge_len: np.ndarray,
                node_dist: np.ndarray, node_src: np.ndarray, src_ptr: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Per edge: (dist at u, dist at v, length) and (source at u, at v, own sources range)."""
    m = len(edge_u)
    f = np.empty((m, 3))
    i = np.empty((m, 4), dtype=np.int64)
    for e in nb.prange(m):
        u, v = edge_u[e], edge_v[e]
        f[e, 0] = node_dist[u]
        f[e, 1] = node_dist[v]
        f[e, 2] = edge_len[e]
        i[e, 0] = node_src[u]
        i[e, 1] = node_src[v]
        i[e, 2] = src_ptr[e]
        i[e, 3] = src_ptr[e + 1]
    return f, i


@nb.njit(cache=True, parallel=True)
def _lookup(t_edge: np.ndarray, t_off: np.ndarray, t_acc: np.ndarray, f_tab: np.ndarray,
            i_tab: np.ndarray, src_order: np.ndarray, s_off: np.ndarray, s_acc: np.ndarray,
            limit: float) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    m = len(t_edge)
    out_d = np.empty(m)
    out_s = np.empty(m, dtype=np.int64)
    for i in nb.prange(m):
        e = t_edge[i]
        if e < 0:
            out_d[i] = np.nan
            out_s[i] = -1
            continue
        off = t_off[i]
        best = f_tab[e, 0] + off
        who = i_tab[e, 0]
        dv = f_tab[e, 1] + (f_tab[e, 2] - off)
        if dv < best:
            best = dv
            who = i_tab[e, 1]
        for k in range(i_tab[e, 2], i_tab[e, 3]):  # facilities on the same edge
            s = src_order[k]
            d = abs(s_off[s] - off) + s_acc[s]
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
