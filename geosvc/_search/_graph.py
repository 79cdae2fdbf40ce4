"""The CSR graph every search runs on, built from an edge list, and seeds from points on edges."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geosvc._errors import InputError
from geosvc._search._validate import check_offsets, check_range, float_array, int_array

__all__ = ["CsrGraph", "anchor_seeds", "csr_from_edges"]


class CsrGraph(NamedTuple):
    """Both-directions CSR adjacency of an undirected network (unpacks as
    ``indptr, indices, weights, edge_ids``).

    Attributes
    ----------
    indptr
        ``n_nodes + 1`` offsets (int64, or int32 for the compact copy); the arcs leaving
        node ``x`` are ``indptr[x]:indptr[x + 1]``.
    indices
        One neighbour node per arc (int64 or int32).
    weights
        float64 arc cost (metres), finite and ``> 0``.
    edge_ids
        int64 undirected edge of each arc (both arcs of an edge share it).
    """

    indptr: NDArray[np.integer]
    indices: NDArray[np.integer]
    weights: NDArray[np.float64]
    edge_ids: NDArray[np.int64]


def csr_from_edges(
    n_nodes: int, edge_u: ArrayLike, edge_v: ArrayLike, edge_len: ArrayLike
) -> CsrGraph:
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
    CsrGraph
        ``(indptr, indices, weights, edge_ids)``: int64, int64, float64, int64.  The arcs
        of each node are sorted by neighbour, then by edge id.

    Examples
    --------
    >>> indptr, indices, weights, edge_ids = csr_from_edges(3, [0, 1], [1, 2], [5.0, 7.0])
    >>> indptr.tolist(), indices.tolist(), edge_ids.tolist()
    ([0, 1, 3, 4], [1, 0, 2, 1], [0, 0, 1, 1])
    """
    eu = int_array(edge_u, "edge_u")
    ev = int_array(edge_v, "edge_v")
    el = float_array(edge_len, "edge_len", size=eu.size)
    if ev.size != eu.size:
        raise InputError(f"edge_v has {ev.size} entries, edge_u has {eu.size}")
    check_range(eu, n_nodes, "edge_u")
    check_range(ev, n_nodes, "edge_v")
    if el.size and not (np.isfinite(el).all() and (el > 0).all()):
        raise InputError("edge_len must be finite and > 0")
    eid = np.arange(eu.size, dtype=np.int64)
    src = np.concatenate((eu, ev))
    dst = np.concatenate((ev, eu))
    ids = np.concatenate((eid, eid))
    order = np.lexsort((ids, dst, src))
    indptr = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n_nodes), out=indptr[1:])
    return CsrGraph(indptr, dst[order], np.concatenate((el, el))[order], ids[order])


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
    is not represented by node distances; the coverage-pair kernel
    (:func:`geosvc.access._coverage_kernel.coverage_pairs`) adds it explicitly.

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
        :func:`~geosvc._search.bounded_dijkstra_many`; for
        :func:`~geosvc._search.multi_source_dijkstra` use
        ``seed_label = np.repeat(labels, np.diff(seed_ptr))``.

    Examples
    --------
    >>> ptr, nodes, dist = anchor_seeds([0], [30.0], [5.0], [0], [1], [100.0])
    >>> ptr.tolist(), nodes.tolist(), dist.tolist()
    ([0, 2], [0, 1], [35.0, 75.0])
    """
    e = int_array(edge, "edge")
    off = float_array(offset_m, "offset_m", size=e.size)
    acc = float_array(access_m, "access_m", size=e.size)
    eu = int_array(edge_u, "edge_u")
    ev = int_array(edge_v, "edge_v")
    el = float_array(edge_len, "edge_len", size=eu.size)
    check_range(e, eu.size, "edge", lo=-1)
    on = e >= 0
    check_offsets(e, off, acc, el, "offset_m", "access_m")
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
