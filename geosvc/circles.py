"""Service circles: the area reachable on foot from a facility, as polygons (isochrones).

A facility's circle at a walking distance ``R`` is built from the street network, the same
edge-based distances the coverage verdicts use (:mod:`geosvc.coverage`): the facility's
access leg and its own partial edge first, then every street reached, including the partial
edge at the frontier (an edge reached with 40 m to spare is drawn for 40 m), buffered by the
access tolerance (the off-network leg a household may have and still be covered).

How the buffer agrees with the verdicts
---------------------------------------
A household at off-network distance ``a`` from street point ``p`` is covered when ``p`` is
reached with at least ``a`` of budget left.  Within the tolerance ``t`` that is the union of
the discs ``disc(p, min(t, b(p)))`` over the reached points ``p`` with budget ``b(p)``.  Every
disc of radius ``b < t`` lies inside the disc of radius ``t`` around the point ``t - b``
earlier on its shortest path (walking distance is at least straight-line distance), so this
union is exactly the reached lines at ``R - t`` buffered by ``t`` (plus, when the facility's
own access leg leaves less than ``t``, one disc of the remaining budget).  That is what
``taper=True`` (the default) draws: the polygon ends exactly where the walk ends, instead
of ``t`` beyond it.  ``taper=False`` buffers the lines at ``R`` (the simple reading).

Block by block
--------------
The buffer is taken block by block: the street network is cut into its faces (blocks) once,
and a street only buffers into the blocks it borders (and, within ``t`` of a junction, into
the blocks around that junction).  A household across an unreached street snaps to that
street and is not covered, so the polygon does not leak across it either; likewise gated
compound walls (``compounds``): internal paths buffer only inside their compound, public
streets only outside compounds that have internal paths (the snapping rule of
:func:`geosvc.access.snap_points`).  Blocks whose every street is reached are whole (a
precomputed ring with the unreachable interior as a hole); only the frontier blocks need
geometry work, and the pieces are joined with a topological coverage union.  This is both
faithful (holes of unreachable block interiors are kept) and fast (no overlay union of
hundreds of overlapping buffers).

Examples
--------
>>> from geosvc.network import from_arrays
>>> from geosvc.access import snap_points
>>> net = from_arrays([[0.0, 0.0], [100.0, 0.0]], [0], [1], crs="EPSG:32650")
>>> anchors = snap_points(net, [[50.0, 0.0]])
>>> round(reached_lines(net, anchors, 30.0)[0].length, 6)
60.0
"""

from __future__ import annotations

import logging
import os
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numba import njit
from numpy.typing import ArrayLike, NDArray

from geosvc._errors import InputError
from geosvc._kernels import anchor_seeds, bounded_dijkstra_many
from geosvc.access import Anchors, points_in_compounds, snap_points
from geosvc.network import CompiledNetwork
from geosvc.standards import Profile, load_profile

__all__ = [
    "reached_lines",
    "service_areas",
    "service_circles",
    "write_service_circles",
    "circle_agreement",
]

log = logging.getLogger(__name__)

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
ObjArray = NDArray[np.object_]

_EPS_M = 1e-6  # geometric coincidence (metres)
_SNAP_M = 5e-3  # corners of neighbouring pieces closer than this are merged (metres)
_FRAME_M = 2000.0  # margin of the outer frame face around the network
_ANY = -2  # unit class that accepts every street (no compound walls given)
_EXACT_MAX_SEG = 12  # convex blocks with at most this many sides are drawn exactly


# --------------------------------------------------------------------------------------
# Reached pieces of edges (compiled)
# --------------------------------------------------------------------------------------


@njit(cache=True)
def _raw_intervals(
    ptr: Any, nodes: Any, dist: Any, lim: Any, indptr: Any, arc_edge: Any, edge_u: Any,
    edge_v: Any, edge_len: Any, own_s: Any, own_e: Any, own_lo: Any, own_hi: Any,
) -> Any:  # pragma: no cover - njit
    """Reached intervals ``[lo, hi]`` (metres from ``edge_u``) per (search, edge), unmerged.

    A node reached at ``d <= lim`` reaches ``min(lim - d, len)`` along every edge at it
    (zero-length intervals included: the node itself is reached).  ``own_*`` adds the
    intervals of each source's own edge around its offset.
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
                if edge_u[e] == x:
                    out_s[m] = s
                    out_e[m] = e
                    out_lo[m] = 0.0
                    out_hi[m] = r
                else:
                    out_s[m] = s
                    out_e[m] = e
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


@dataclass(frozen=True)
class _Pieces:
    """Disjoint reached intervals per (search, edge), in metres from ``edge_u``."""

    search: IntArray
    edge: IntArray
    lo: FloatArray
    hi: FloatArray
    full: NDArray[np.bool_]


@dataclass(frozen=True)
class _Sources:
    """Sources grouped into searches (one search per facility, or per category union)."""

    search: IntArray  # search of each source
    edge: IntArray
    offset_m: FloatArray
    access_m: FloatArray
    snapped_xy: FloatArray
    n_search: int


def _sources(anchors: Anchors, group: IntArray | None, n_search: int) -> _Sources:
    ok = np.flatnonzero(anchors.ok)
    grp = np.arange(len(anchors), dtype=np.int64) if group is None else np.asarray(group, np.int64)
    return _Sources(grp[ok], anchors.edge[ok].astype(np.int64), anchors.offset_m[ok].astype(float),
                    anchors.access_m[ok].astype(float), np.asarray(anchors.snapped_xy)[ok],
                    n_search)


def _search(net: CompiledNetwork, src: _Sources, limit: FloatArray
            ) -> tuple[IntArray, IntArray, FloatArray]:
    """One bounded multi-seed Dijkstra per search (seeds: both ends of each source's edge)."""
    order = np.argsort(src.search, kind="stable")
    ptr1, nodes, dist = anchor_seeds(src.edge[order], src.offset_m[order], src.access_m[order],
                                     net.edge_u, net.edge_v, net.edge_length_m)
    per_source = np.diff(ptr1)
    counts = np.bincount(src.search[order], weights=per_source,
                         minlength=src.n_search).astype(np.int64)
    seed_ptr = np.zeros(src.n_search + 1, np.int64)
    np.cumsum(counts, out=seed_ptr[1:])
    res = bounded_dijkstra_many(net.indptr, net.indices, net.weights, seed_ptr, nodes, dist,
                                np.maximum(limit, 0.0))
    return res.ptr, res.nodes, res.dist


def _pieces(net: CompiledNetwork, src: _Sources, search: tuple[IntArray, IntArray, FloatArray],
            lim: FloatArray) -> _Pieces:
    """Reached intervals of every edge for limits ``lim`` (one per search)."""
    ptr, nodes, dist = search
    own = lim[src.search] - src.access_m
    keep = own >= 0.0
    length = net.edge_length_m[src.edge[keep]]
    off = src.offset_m[keep]
    own_lo = np.clip(off - own[keep], 0.0, length)
    own_hi = np.clip(off + own[keep], 0.0, length)
    s, e, lo, hi = _raw_intervals(ptr, nodes, dist, lim, net.indptr, net.arc_edge, net.edge_u,
                                  net.edge_v, net.edge_length_m, src.search[keep],
                                  src.edge[keep], own_lo, own_hi)
    order = np.lexsort((lo, e, s))
    s, e, lo, hi = _merge_sorted(s[order], e[order], lo[order], hi[order])
    full = (lo <= _EPS_M) & (hi >= net.edge_length_m[e] - _EPS_M)
    return _Pieces(s, e, lo, hi, full)


# --------------------------------------------------------------------------------------
# Edge polylines and line substrings (compiled)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Polylines:
    """Edge geometries as one coordinate array (ends snapped onto the node coordinates)."""

    xy: FloatArray  # (n_vertices, 2)
    ptr: IntArray  # edge -> vertices
    cum: FloatArray  # cumulative length along each edge, per vertex
    length: FloatArray  # geometric length per edge


def _polylines(net: CompiledNetwork) -> _Polylines:
    xy, idx = shapely.get_coordinates(net.edge_geometry, return_index=True)
    counts = np.bincount(idx, minlength=net.n_edges)
    if (counts < 2).any():
        raise InputError(f"edge {int(np.flatnonzero(counts < 2)[0])} has an empty or one-point "
                         "geometry; rebuild the network")
    ptr = np.zeros(net.n_edges + 1, np.int64)
    np.cumsum(counts, out=ptr[1:])
    xy = np.ascontiguousarray(xy[:, :2], dtype=np.float64)
    xy[ptr[:-1]] = net.node_xy[net.edge_u]
    xy[ptr[1:] - 1] = net.node_xy[net.edge_v]
    seg = np.hypot(*(np.diff(xy, axis=0)).T)
    seg[ptr[1:-1] - 1] = 0.0  # no length across edge boundaries
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    cum = cum - np.repeat(cum[ptr[:-1]], counts)
    length = cum[ptr[1:] - 1]
    return _Polylines(xy, ptr, cum, length)


@njit(cache=True)
def _substrings(xy: Any, ptr: Any, cum: Any, glen: Any, edge: Any, fa: Any, fb: Any
                ) -> Any:  # pragma: no cover - njit
    """Coordinates of the parts ``[fa, fb]`` (fractions of length) of edges, and offsets."""
    n = edge.shape[0]
    counts = np.empty(n, np.int64)
    for i in range(n):
        e = edge[i]
        a = fa[i] * glen[e]
        b = fb[i] * glen[e]
        c = 2
        for j in range(ptr[e] + 1, ptr[e + 1] - 1):
            if cum[j] > a and cum[j] < b:
                c += 1
        counts[i] = c
    off = np.zeros(n + 1, np.int64)
    for i in range(n):
        off[i + 1] = off[i] + counts[i]
    out = np.empty((off[n], 2), np.float64)
    for i in range(n):
        e = edge[i]
        p0 = ptr[e]
        p1 = ptr[e + 1]
        a = fa[i] * glen[e]
        b = fb[i] * glen[e]
        o = off[i]
        out[o] = _point_at(xy, cum, p0, p1, a)
        o += 1
        for j in range(p0 + 1, p1 - 1):
            if cum[j] > a and cum[j] < b:
                out[o, 0] = xy[j, 0]
                out[o, 1] = xy[j, 1]
                o += 1
        out[o] = _point_at(xy, cum, p0, p1, b)
    return out, off


@njit(cache=True)
def _point_at(xy: Any, cum: Any, p0: int, p1: int, d: float) -> Any:  # pragma: no cover
    """Point at distance ``d`` along the polyline of vertices ``p0:p1``."""
    res = np.empty(2, np.float64)
    if d <= 0.0:
        res[0] = xy[p0, 0]
        res[1] = xy[p0, 1]
        return res
    for j in range(p0, p1 - 1):
        if cum[j + 1] >= d:
            seg = cum[j + 1] - cum[j]
            t = (d - cum[j]) / seg if seg > 0.0 else 0.0
            res[0] = xy[j, 0] + t * (xy[j + 1, 0] - xy[j, 0])
            res[1] = xy[j, 1] + t * (xy[j + 1, 1] - xy[j, 1])
            return res
    res[0] = xy[p1 - 1, 0]
    res[1] = xy[p1 - 1, 1]
    return res


def _lines(poly: _Polylines, net: CompiledNetwork, edge: IntArray, lo_m: FloatArray,
           hi_m: FloatArray) -> ObjArray:
    """LineStrings of the edge parts ``[lo_m, hi_m]`` (metres along ``edge_length_m``)."""
    if len(edge) == 0:
        return np.empty(0, dtype=object)
    length = net.edge_length_m[edge]
    fa = np.clip(lo_m / length, 0.0, 1.0)
    fb = np.clip(hi_m / length, 0.0, 1.0)
    xy, off = _substrings(poly.xy, poly.ptr, poly.cum, poly.length, edge, fa, fb)
    return np.asarray(shapely.linestrings(xy, indices=np.repeat(np.arange(len(edge)),
                                                                 np.diff(off))), dtype=object)


# --------------------------------------------------------------------------------------
# Faces of the street network (compiled planar partition)
# --------------------------------------------------------------------------------------


@njit(cache=True)
def _cell_entries(bx0: Any, by0: Any, bx1: Any, by1: Any, x0: float, y0: float, c: float,
                  ny: int) -> Any:  # pragma: no cover - njit
    """(grid cell key, segment) pairs for every cell a segment's bounding box overlaps."""
    n = bx0.shape[0]
    total = 0
    for i in range(n):
        total += (int((bx1[i] - x0) / c) - int((bx0[i] - x0) / c) + 1) * (
            int((by1[i] - y0) / c) - int((by0[i] - y0) / c) + 1)
    keys = np.empty(total, np.int64)
    segs = np.empty(total, np.int64)
    m = 0
    for i in range(n):
        for ix in range(int((bx0[i] - x0) / c), int((bx1[i] - x0) / c) + 1):
            for iy in range(int((by0[i] - y0) / c), int((by1[i] - y0) / c) + 1):
                keys[m] = ix * ny + iy
                segs[m] = i
                m += 1
    return keys, segs


@njit(cache=True)
def _orient(ax: float, ay: float, bx: float, by: float, cx: float, cy: float
            ) -> float:  # pragma: no cover - njit
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


@njit(cache=True)
def _on_box(ax: float, ay: float, bx: float, by: float, px: float, py: float
            ) -> bool:  # pragma: no cover - njit
    return (min(ax, bx) <= px <= max(ax, bx)) and (min(ay, by) <= py <= max(ay, by))


@njit(cache=True)
def _shared_node_at(px: float, py: float, e1: int, e2: int, edge_u: Any, edge_v: Any,
                    node_xy: Any) -> bool:  # pragma: no cover - njit
    """True when ``(px, py)`` is exactly a node both edges end at."""
    for n1 in (edge_u[e1], edge_v[e1]):
        if n1 == edge_u[e2] or n1 == edge_v[e2]:
            if node_xy[n1, 0] == px and node_xy[n1, 1] == py:
                return True
    return False


@njit(cache=True)
def _conflicting_edges(sx0: Any, sy0: Any, sx1: Any, sy1: Any, s_edge: Any, order: Any,
                       keys: Any, segs: Any, edge_u: Any, edge_v: Any, node_xy: Any,
                       n_edges: int) -> Any:  # pragma: no cover - njit
    """Edges that cross or touch another edge anywhere but at a shared end node."""
    bad = np.zeros(n_edges, np.bool_)
    n = order.shape[0]
    i = 0
    while i < n:
        j = i
        while j < n and keys[order[j]] == keys[order[i]]:
            j += 1
        for a in range(i, j):
            p = segs[order[a]]
            e1 = s_edge[p]
            for b in range(a + 1, j):
                q = segs[order[b]]
                e2 = s_edge[q]
                if e1 == e2 or (bad[e1] and bad[e2]):
                    continue
                if _segments_conflict(sx0[p], sy0[p], sx1[p], sy1[p], sx0[q], sy0[q], sx1[q],
                                      sy1[q], e1, e2, edge_u, edge_v, node_xy):
                    bad[e1] = True
                    bad[e2] = True
        i = j
    return bad


@njit(cache=True)
def _segments_conflict(ax: float, ay: float, bx: float, by: float, cx: float, cy: float,
                       dx: float, dy: float, e1: int, e2: int, edge_u: Any, edge_v: Any,
                       node_xy: Any) -> bool:  # pragma: no cover - njit
    if max(ax, bx) < min(cx, dx) or max(cx, dx) < min(ax, bx):
        return False
    if max(ay, by) < min(cy, dy) or max(cy, dy) < min(ay, by):
        return False
    d1 = _orient(cx, cy, dx, dy, ax, ay)
    d2 = _orient(cx, cy, dx, dy, bx, by)
    d3 = _orient(ax, ay, bx, by, cx, cy)
    d4 = _orient(ax, ay, bx, by, dx, dy)
    if ((d1 > 0 and d2 < 0) or (d1 < 0 and d2 > 0)) and ((d3 > 0 and d4 < 0) or
                                                        (d3 < 0 and d4 > 0)):
        return True
    if d1 == 0 and d2 == 0:  # collinear: any overlap longer than a point conflicts
        if abs(bx - ax) >= abs(by - ay):
            lo = max(min(ax, bx), min(cx, dx))
            hi = min(max(ax, bx), max(cx, dx))
        else:
            lo = max(min(ay, by), min(cy, dy))
            hi = min(max(ay, by), max(cy, dy))
        if hi > lo:
            return True
    if d1 == 0 and _on_box(cx, cy, dx, dy, ax, ay):
        if not _shared_node_at(ax, ay, e1, e2, edge_u, edge_v, node_xy):
            return True
    if d2 == 0 and _on_box(cx, cy, dx, dy, bx, by):
        if not _shared_node_at(bx, by, e1, e2, edge_u, edge_v, node_xy):
            return True
    if d3 == 0 and _on_box(ax, ay, bx, by, cx, cy):
        if not _shared_node_at(cx, cy, e1, e2, edge_u, edge_v, node_xy):
            return True
    if d4 == 0 and _on_box(ax, ay, bx, by, dx, dy):
        if not _shared_node_at(dx, dy, e1, e2, edge_u, edge_v, node_xy):
            return True
    return False


def _nonplanar_edges(net: CompiledNetwork, poly: _Polylines) -> NDArray[np.bool_]:
    """Edges that cross another edge without a shared node (bridges, unnoded lines)."""
    xy = poly.xy
    is_seg = np.ones(len(xy) - 1, dtype=bool)
    is_seg[poly.ptr[1:-1] - 1] = False
    start = np.flatnonzero(is_seg)
    if len(start) == 0:
        return np.zeros(net.n_edges, dtype=bool)
    s_edge = np.repeat(np.arange(net.n_edges), np.diff(poly.ptr) - 1)
    x0, y0, x1, y1 = xy[start, 0], xy[start, 1], xy[start + 1, 0], xy[start + 1, 1]
    seglen = np.hypot(x1 - x0, y1 - y0)
    lo = xy.min(axis=0)
    hi = xy.max(axis=0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0))
    c = float(max(np.median(seglen), span / 4096.0, 1e-3))
    ny = int((hi[1] - lo[1]) / c) + 2
    keys, segs = _cell_entries(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1),
                               np.maximum(y0, y1), float(lo[0]), float(lo[1]), c, ny)
    order = np.argsort(keys, kind="stable")
    return np.asarray(_conflicting_edges(x0, y0, x1, y1, s_edge, order, keys, segs, net.edge_u,
                                         net.edge_v, net.node_xy, net.n_edges))


@njit(cache=True)
def _end_directions(xy: Any, ptr: Any) -> Any:  # pragma: no cover - njit
    """Angle of each edge leaving its u end and leaving its v end (first distinct vertex)."""
    m = ptr.shape[0] - 1
    au = np.zeros(m, np.float64)
    av = np.zeros(m, np.float64)
    for e in range(m):
        p0 = ptr[e]
        p1 = ptr[e + 1]
        for j in range(p0 + 1, p1):
            if xy[j, 0] != xy[p0, 0] or xy[j, 1] != xy[p0, 1]:
                au[e] = np.arctan2(xy[j, 1] - xy[p0, 1], xy[j, 0] - xy[p0, 0])
                break
        for j in range(p1 - 2, p0 - 1, -1):
            if xy[j, 0] != xy[p1 - 1, 0] or xy[j, 1] != xy[p1 - 1, 1]:
                av[e] = np.arctan2(xy[j, 1] - xy[p1 - 1, 1], xy[j, 0] - xy[p1 - 1, 0])
                break
    return au, av


@njit(cache=True)
def _trace_cycles(nxt: Any, active: Any) -> Any:  # pragma: no cover - njit
    """Cycles of the permutation ``nxt`` over active half-edges (face walks)."""
    n = nxt.shape[0]
    cyc = np.full(n, -1, np.int64)
    seq = np.empty(n, np.int64)
    ptr = np.zeros(n + 1, np.int64)
    m = 0
    c = 0
    for h0 in range(n):
        if not active[h0] or cyc[h0] >= 0:
            continue
        h = h0
        while cyc[h] < 0:
            cyc[h] = c
            seq[m] = h
            m += 1
            h = nxt[h]
        c += 1
        ptr[c] = m
    return cyc, seq[:m], ptr[: c + 1]


@njit(cache=True)
def _simple_cycles(seq: Any, ptr: Any, origin: Any, n_nodes: int) -> Any:  # pragma: no cover
    """Split each walk at repeated nodes into simple cycles (walk id, half-edge ranges)."""
    pos = np.full(n_nodes, -1, np.int64)
    stack = np.empty(seq.shape[0], np.int64)
    out = np.empty(seq.shape[0], np.int64)
    optr = np.zeros(seq.shape[0] + 1, np.int64)
    owalk = np.empty(seq.shape[0], np.int64)
    m = 0
    c = 0
    for w in range(ptr.shape[0] - 1):
        top = 0
        for i in range(ptr[w], ptr[w + 1]):
            h = seq[i]
            o = origin[h]
            if pos[o] >= 0:
                start = pos[o]
                for k in range(start, top):
                    pos[origin[stack[k]]] = -1
                    out[m] = stack[k]
                    m += 1
                owalk[c] = w
                c += 1
                optr[c] = m
                top = start
            stack[top] = h
            pos[o] = top
            top += 1
        for k in range(top):
            pos[origin[stack[k]]] = -1
            out[m] = stack[k]
            m += 1
        owalk[c] = w
        c += 1
        optr[c] = m
    return out[:m], optr[: c + 1], owalk[:c]


@njit(cache=True)
def _ring_coords(cyc_seq: Any, cyc_ptr: Any, xy: Any, ptr: Any) -> Any:  # pragma: no cover
    """Closed ring coordinates of each simple cycle of half-edges."""
    n = cyc_ptr.shape[0] - 1
    off = np.zeros(n + 1, np.int64)
    for c in range(n):
        k = 0
        for i in range(cyc_ptr[c], cyc_ptr[c + 1]):
            e = cyc_seq[i] >> 1
            k += ptr[e + 1] - ptr[e] - 1
        off[c + 1] = off[c] + k + 1
    out = np.empty((off[n], 2), np.float64)
    for c in range(n):
        o = off[c]
        for i in range(cyc_ptr[c], cyc_ptr[c + 1]):
            h = cyc_seq[i]
            e = h >> 1
            p0 = ptr[e]
            p1 = ptr[e + 1]
            if h & 1 == 0:
                for j in range(p0, p1 - 1):
                    out[o] = xy[j]
                    o += 1
            else:
                for j in range(p1 - 1, p0, -1):
                    out[o] = xy[j]
                    o += 1
        out[o] = out[off[c]]
    return out, off


@dataclass(eq=False)
class _Faces:
    """Planar partition of the plane by the street network (face 0: the outer frame)."""

    n_faces: int
    geom: ObjArray  # Polygon per face
    plain: NDArray[np.bool_]  # boundary = its own streets only, no holes, no inner streets
    seg_xy: FloatArray  # (n_segments, 4): every edge's segments (x0, y0, x1, y1)
    seg_ptr: IntArray  # edge -> its segments
    face_seg_ptr: IntArray  # face -> segments on its rings
    face_seg: IntArray
    face_prim_ptr: IntArray  # face -> primary edges (on its boundary or inside it)
    face_prim: IntArray
    edge_face_ptr: IntArray  # edge -> faces it is primary in
    edge_face: IntArray
    face_node_ptr: IntArray  # face -> nodes on its rings or on the streets inside it
    face_node: IntArray
    shell_ptr: IntArray  # face -> half-edges of its outer ring, in counter-clockwise order
    shell_h: IntArray
    walk_ptr: IntArray  # face -> half-edges of the walks around it (dead ends included)
    walk_h: IntArray  # ... in walk order, the face on their left
    walk_id: IntArray  # walk of each of them
    planar: NDArray[np.bool_]  # edges of the planar part (the others are drawn by overlay)
    poly: _Polylines
    units: dict[Any, _Units] = field(default_factory=dict)


def _csr(keys: IntArray, vals: IntArray, n: int) -> tuple[IntArray, IntArray]:
    order = np.lexsort((vals, keys))
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=ptr[1:])
    return ptr, vals[order].astype(np.int64)


def _build_faces(net: CompiledNetwork) -> _Faces:
    """Trace the faces of the network (half-edge walk over the planar part of it)."""
    poly = _polylines(net)
    m = net.n_edges
    origin_xy = net.node_xy.min(axis=0)
    loop = net.edge_u == net.edge_v
    degenerate = poly.length <= _EPS_M
    active_e = ~(loop | degenerate | _nonplanar_edges(net, poly))
    au, av = _end_directions(poly.xy, poly.ptr)
    origin = np.empty(2 * m, np.int64)
    origin[0::2] = net.edge_u
    origin[1::2] = net.edge_v
    angle = np.empty(2 * m)
    angle[0::2] = au
    angle[1::2] = av
    # signed area contribution of each half-edge (shoelace, local origin)
    lx = poly.xy[:, 0] - origin_xy[0]
    ly = poly.xy[:, 1] - origin_xy[1]
    cross = lx[:-1] * ly[1:] - lx[1:] * ly[:-1]
    cross[poly.ptr[1:-1] - 1] = 0.0
    csum = np.concatenate([[0.0], np.cumsum(cross)])
    area_e = 0.5 * (csum[poly.ptr[1:] - 1] - csum[poly.ptr[:-1]])
    h_area = np.empty(2 * m)
    h_area[0::2] = area_e
    h_area[1::2] = -area_e
    planar = active_e.copy()
    walks: tuple[IntArray, IntArray] | None = None
    for _ in range(4):  # remove cut edges (both sides in one walk) and trace again
        active = np.repeat(active_e, 2)
        nxt = _next_half_edges(origin, angle, active, net.n_nodes)
        cyc, seq, ptr = _trace_cycles(nxt, active)
        if walks is None:  # the first walks keep dead ends and bridges (both sides)
            walks = (seq, ptr)
        cut = active_e & (cyc[0::2] == cyc[1::2])
        if not cut.any():
            break
        active_e = active_e & ~cut
    sub_seq, sub_ptr, sub_walk = _simple_cycles(seq, ptr, origin, net.n_nodes)
    walk_area = np.add.reduceat(h_area[seq], ptr[:-1]) if len(seq) else np.zeros(0)
    sub_area = np.add.reduceat(h_area[sub_seq], sub_ptr[:-1]) if len(sub_seq) else np.zeros(0)
    ring_xy, ring_off = _ring_coords(sub_seq, sub_ptr, poly.xy, poly.ptr)
    n_walk = len(ptr) - 1
    bounded = walk_area > 0.0
    face_of_walk = np.full(n_walk, -1, np.int64)
    face_of_walk[bounded] = np.arange(1, int(bounded.sum()) + 1)
    n_faces = int(bounded.sum()) + 1
    # shells: the largest positive simple cycle of every bounded walk
    sub_pos = sub_area > 0.0
    shell_sub = np.full(n_walk, -1, np.int64)
    cand = np.flatnonzero(sub_pos & bounded[sub_walk])
    order = cand[np.lexsort((-sub_area[cand], sub_walk[cand]))]
    first = np.unique(sub_walk[order], return_index=True)[1]
    shell_sub[sub_walk[order[first]]] = order[first]
    rings = shapely.linearrings(ring_xy, indices=np.repeat(np.arange(len(ring_off) - 1),
                                                           np.diff(ring_off)))
    irregular = np.zeros(n_faces, dtype=bool)
    extra_pos = sub_pos & bounded[sub_walk]
    extra_pos[shell_sub[shell_sub >= 0]] = False
    irregular[face_of_walk[sub_walk[extra_pos]]] = True
    # walks around a component's outside: holes of the face that contains them
    outline_walks = np.flatnonzero(~bounded)
    shells_walk = np.flatnonzero(shell_sub >= 0)
    shell_poly = shapely.polygons(rings[shell_sub[shells_walk]])
    if len(outline_walks):
        test_xy = poly.xy[np.where(seq[ptr[outline_walks]] & 1 == 0,
                                   poly.ptr[seq[ptr[outline_walks]] >> 1],
                                   poly.ptr[(seq[ptr[outline_walks]] >> 1) + 1] - 1)]
        tree = shapely.STRtree(shell_poly)
        pi, si = tree.query(shapely.points(test_xy), predicate="within")
        area = shapely.area(shell_poly)[si]
        o = np.lexsort((area, pi))
        pi, si = pi[o], si[o]
        firsts = np.unique(pi, return_index=True)[1]
        container = np.zeros(len(outline_walks), np.int64)  # frame by default
        container[pi[firsts]] = face_of_walk[shells_walk[si[firsts]]]
        face_of_walk[outline_walks] = container
    # ring list: (face, is_hole, ring)
    sub_face = face_of_walk[sub_walk]
    is_shell = np.zeros(len(sub_area), dtype=bool)
    is_shell[shell_sub[shell_sub >= 0]] = True
    keep = is_shell | (sub_area < 0.0)  # drop zero-area and extra positive cycles
    lo = net.node_xy.min(axis=0) - _FRAME_M
    hi = net.node_xy.max(axis=0) + _FRAME_M
    frame = shapely.linearrings([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]],
                                 [lo[0], hi[1]]])
    r_face = np.concatenate([[0], sub_face[keep]])
    r_hole = np.concatenate([[False], ~is_shell[keep]])
    r_geom = np.concatenate([[frame], rings[keep]])
    o = np.lexsort((r_hole, r_face))
    geom = np.empty(n_faces, dtype=object)
    shapely.polygons(r_geom[o], indices=r_face[o], out=geom)
    valid = shapely.is_valid(geom)
    bad = ~valid | irregular
    if bad.any():
        fixed = shapely.make_valid(geom[bad])
        geom[bad] = [shapely.union_all(shapely.get_parts(g)[shapely.get_type_id(
            shapely.get_parts(g)) == 3]) for g in fixed]
        log.debug("circles: %d irregular street faces repaired", int(bad.sum()))
    # face of every active half-edge
    h_face = np.full(2 * m, -1, np.int64)
    h_face[seq] = np.repeat(face_of_walk, np.diff(ptr))
    # segments of every edge
    seg_ptr = np.zeros(m + 1, np.int64)
    np.cumsum(np.diff(poly.ptr) - 1, out=seg_ptr[1:])
    is_seg = np.ones(len(poly.xy) - 1, dtype=bool)
    is_seg[poly.ptr[1:-1] - 1] = False
    st = np.flatnonzero(is_seg)
    seg_xy = np.column_stack([poly.xy[st], poly.xy[st + 1]])
    hs = np.flatnonzero(h_face >= 0)
    nseg = seg_ptr[(hs >> 1) + 1] - seg_ptr[hs >> 1]
    f_rep = np.repeat(h_face[hs], nseg)
    s_rep = np.repeat(seg_ptr[hs >> 1], nseg) + (np.arange(nseg.sum()) - np.repeat(
        np.cumsum(nseg) - nseg, nseg))
    face_seg_ptr, face_seg = _csr(f_rep, s_rep, n_faces)
    # primary edges: boundary edges, and the edges left out of the planar part (inside a face)
    pf = [h_face[hs]]
    pe = [hs >> 1]
    inner = np.flatnonzero(~active_e)
    if len(inner):
        tree = shapely.STRtree(geom)
        ei, fi = tree.query(net.edge_geometry[inner], predicate="intersects")
        strict = shapely.relate_pattern(net.edge_geometry[inner[ei]], geom[fi], "1********")
        has = np.zeros(len(inner), dtype=bool)
        has[ei[strict]] = True
        sel = strict | ~has[ei]
        pf.append(fi[sel])
        pe.append(inner[ei[sel]])
        plain_off = np.unique(fi[sel])
    else:
        plain_off = np.zeros(0, np.int64)
    prim_f = np.concatenate(pf)
    prim_e = np.concatenate(pe)
    key = np.unique(prim_f * m + prim_e)
    prim_f, prim_e = key // m, key % m
    face_prim_ptr, face_prim = _csr(prim_f, prim_e, n_faces)
    edge_face_ptr, edge_face = _csr(prim_e, prim_f, m)
    # nodes of a face: on its rings, and the ends of the streets inside it
    inner_f = np.concatenate(pf[1:]) if len(pf) > 1 else np.zeros(0, np.int64)
    inner_e = np.concatenate(pe[1:]) if len(pe) > 1 else np.zeros(0, np.int64)
    fn_f = np.concatenate([h_face[hs], inner_f, inner_f])
    fn_n = np.concatenate([origin[hs], net.edge_u[inner_e], net.edge_v[inner_e]])
    fn = np.unique(fn_f * net.n_nodes + fn_n)
    face_node_ptr, face_node = _csr(fn // net.n_nodes, fn % net.n_nodes, n_faces)
    plain = ~bad & (shapely.get_num_interior_rings(geom) == 0)
    plain[0] = False
    plain[plain_off] = False
    # face of every first walk: that of its half-edges still on a face ring, else (a tree
    # of streets on its own) the face around it
    assert walks is not None
    w_seq, w_ptr = walks
    n_w = len(w_ptr) - 1
    w_of = np.repeat(np.arange(n_w), np.diff(w_ptr))
    hf = h_face[w_seq]
    ok = np.flatnonzero(hf >= 0)
    walk_face = np.full(n_w, -1, np.int64)
    firsts = np.unique(w_of[ok], return_index=True)[1]
    walk_face[w_of[ok[firsts]]] = hf[ok[firsts]]
    lone = np.flatnonzero(walk_face < 0)
    if len(lone):
        pts = shapely.points(net.node_xy[origin[w_seq[w_ptr[lone]]]])
        pi, fi = shapely.STRtree(geom[1:]).query(pts, predicate="within")
        walk_face[lone] = 0
        walk_face[lone[pi]] = fi + 1
    shell_cnt = np.zeros(n_faces, np.int64)
    sh = shell_sub[shells_walk]
    shell_cnt[face_of_walk[shells_walk]] = np.diff(sub_ptr)[sh]
    shell_ptr = np.zeros(n_faces + 1, np.int64)
    np.cumsum(shell_cnt, out=shell_ptr[1:])
    shell_h = np.empty(int(shell_ptr[-1]), np.int64)
    order_f = np.argsort(face_of_walk[shells_walk], kind="stable")
    shell_h[:] = sub_seq[_ranges(sub_ptr[sh[order_f]], np.diff(sub_ptr)[sh[order_f]])]
    o = np.argsort(walk_face[w_of], kind="stable")
    face_walk_ptr = np.zeros(n_faces + 1, np.int64)
    np.cumsum(np.bincount(walk_face[w_of], minlength=n_faces), out=face_walk_ptr[1:])
    return _Faces(n_faces, geom, plain, seg_xy, seg_ptr, face_seg_ptr, face_seg, face_prim_ptr,
                  face_prim, edge_face_ptr, edge_face, face_node_ptr, face_node, shell_ptr,
                  shell_h, face_walk_ptr, w_seq[o], w_of[o], planar, poly)


def _ranges(starts: IntArray, counts: IntArray) -> IntArray:
    """Concatenated ``arange(starts[i], starts[i] + counts[i])``."""
    counts = np.asarray(counts, np.int64)
    return np.repeat(np.asarray(starts, np.int64) - (np.cumsum(counts) - counts), counts) + \
        np.arange(int(counts.sum()), dtype=np.int64)


def _next_half_edges(origin: IntArray, angle: FloatArray, active: NDArray[np.bool_],
                     n_nodes: int) -> IntArray:
    """Face-walk successor: at the head, the first half-edge clockwise from the way back."""
    h = np.flatnonzero(active)
    o = np.lexsort((angle[h], origin[h]))
    srt = h[o]
    rank = np.empty(len(origin), np.int64)
    rank[srt] = np.arange(len(srt))
    start = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(np.bincount(origin[h], minlength=n_nodes), out=start[1:])
    twin = h ^ 1
    head = origin[twin]
    deg = start[head + 1] - start[head]
    r = rank[twin] - start[head]
    nxt = np.full(len(origin), -1, np.int64)
    nxt[h] = srt[start[head] + (r - 1) % deg]
    return nxt


# --------------------------------------------------------------------------------------
# Units: faces, split by compound walls where needed
# --------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Units:
    """Pieces of the plane each street buffers into (faces, or faces cut by walls)."""

    n: int
    face: IntArray
    cls: IntArray  # compound id, -1 public, _ANY without walls
    geom: ObjArray
    plain: NDArray[np.bool_]
    n_prim: IntArray  # primary edges of the unit's class
    cand_ptr: IntArray  # unit -> candidate seam segments (face rings and walls)
    cand: IntArray
    sxy: FloatArray  # all seam segments (street segments, then wall segments)
    edge_unit_ptr: IntArray  # edge -> units it buffers into (primary, compatible class)
    edge_unit: IntArray
    unit_edge_ptr: IntArray  # unit -> its primary edges
    unit_edge: IntArray
    node_unit_ptr: IntArray  # node -> units around it (compatible class)
    node_unit: IntArray
    seg_ptr: IntArray  # unit -> the street segments around and inside it, in walk order
    seg_xy: FloatArray  # (x0, y0, x1, y1), the unit on the left
    seg_edge: IntArray  # street edge of each segment
    seg_m: FloatArray  # (m0, m1): positions of its ends along the edge (edge-length units)
    seg_prev: IntArray  # previous / next segment along the walk (-1: none of this unit)
    seg_next: IntArray
    tri_ptr: IntArray  # unit -> triangles to clip its pieces with (units cut by walls)
    tri_xy: FloatArray  # (n, 6)
    complete: dict[tuple[float, int], _RingStore] = field(default_factory=dict)
    sites: dict[float, _Sites] = field(default_factory=dict)


def _compound_input(compounds: Any, net: CompiledNetwork) -> tuple[ObjArray, IntArray] | None:
    """Compound polygons (network CRS) and their ids, or None."""
    if compounds is None:
        return None
    if isinstance(compounds, gpd.GeoDataFrame | gpd.GeoSeries):
        if compounds.crs is not None and not compounds.crs.equals(net.crs):
            compounds = compounds.to_crs(net.crs)
        geoms = np.asarray(compounds.geometry.to_numpy() if isinstance(compounds, gpd.GeoDataFrame)
                           else compounds.to_numpy(), dtype=object)
        if isinstance(compounds, gpd.GeoDataFrame) and "compound_id" in compounds.columns:
            ids = pd.to_numeric(compounds["compound_id"], errors="coerce").fillna(-1).to_numpy()
        else:
            ids = np.arange(len(geoms))
    else:
        geoms = np.asarray(compounds, dtype=object)
        ids = np.arange(len(geoms))
    return geoms, np.asarray(ids, dtype=np.int64)


def _units(faces: _Faces, net: CompiledNetwork, comp: tuple[ObjArray, IntArray] | None
           ) -> _Units:
    key: Any = None
    walls: ObjArray = np.empty(0, dtype=object)
    wall_ids: IntArray = np.empty(0, np.int64)
    if comp is not None:
        geoms, ids = comp
        has_paths = np.isin(ids, net.compound_ids) & ~shapely.is_missing(geoms) & \
            ~shapely.is_empty(geoms)
        walls = shapely.make_valid(geoms[has_paths])
        wall_ids = ids[has_paths]
        if len(walls):
            key = (len(walls), shapely.to_wkb(shapely.union_all(walls)), wall_ids.tobytes())
    if key in faces.units:
        return faces.units[key]
    m = net.n_edges
    nf = faces.n_faces
    n_seg = len(faces.seg_xy)
    edge_cls = np.where(np.isin(net.edge_compound, wall_ids), net.edge_compound, -1)
    if key is None:
        u_face = np.arange(nf, dtype=np.int64)
        u_cls = np.full(nf, _ANY, np.int64)
        u_geom = faces.geom
        extra_u = np.empty(0, np.int64)
        extra_s = np.empty(0, np.int64)
        sxy = faces.seg_xy
    else:
        u_face, u_cls, u_geom, extra_u, extra_s, sxy = _split_faces(faces, walls, wall_ids,
                                                                    n_seg)
    n = len(u_face)
    # candidate seam segments per unit: its face's ring segments, plus wall segments
    fs_cnt = np.diff(faces.face_seg_ptr)[u_face]
    cu = np.concatenate([np.repeat(np.arange(n), fs_cnt), extra_u])
    cs = np.concatenate([faces.face_seg[_ranges(faces.face_seg_ptr[u_face], fs_cnt)], extra_s])
    cand_ptr, cand = _csr(cu, cs, n)
    # edge -> unit (primary streets of the unit's class)
    fu_ptr, fu = _csr(u_face, np.arange(n, dtype=np.int64), nf)
    ef_cnt = np.diff(faces.edge_face_ptr)
    ef_e = np.repeat(np.arange(m), ef_cnt)
    k = np.diff(fu_ptr)[faces.edge_face]
    ie = np.repeat(ef_e, k)
    iu = fu[_ranges(fu_ptr[faces.edge_face], k)]
    ok = (u_cls[iu] == _ANY) | (u_cls[iu] == edge_cls[ie])
    ie, iu = ie[ok], iu[ok]
    edge_unit_ptr, edge_unit = _csr(ie, iu, m)
    unit_edge_ptr, unit_edge = _csr(iu, ie, n)
    n_prim = np.diff(unit_edge_ptr)
    # node -> unit: a node serves a unit when one of its streets has the unit's class
    fn_cnt = np.diff(faces.face_node_ptr)
    fn_f = np.repeat(np.arange(nf), fn_cnt)
    k = np.diff(fu_ptr)[fn_f]
    nn = np.repeat(faces.face_node, k)
    nu = fu[_ranges(fu_ptr[fn_f], k)]
    if key is not None:
        deg = np.diff(net.indptr)[nn]
        arc = _ranges(net.indptr[nn], deg)
        good = u_cls[np.repeat(nu, deg)] == edge_cls[net.arc_edge[arc]]
        hit = np.zeros(len(nn), dtype=bool)
        hit[np.repeat(np.arange(len(nn)), deg)[good]] = True
        nn, nu = nn[hit], nu[hit]
    node_unit_ptr, node_unit = _csr(nn, nu, net.n_nodes)
    face_prim_cnt = np.diff(faces.face_prim_ptr)[u_face]
    split = np.bincount(u_face, minlength=nf)[u_face] > 1
    plain = faces.plain[u_face] & ~split & (n_prim == face_prim_cnt)
    seg = _unit_segments(faces, net, u_face, u_cls, u_geom, edge_cls)
    # units cut by walls: their pieces are clipped to them through a triangulation
    tri_ptr = np.zeros(n + 1, np.int64)
    tri_xy = np.zeros((0, 6))
    if split.any():
        su = np.flatnonzero(split)
        tris, tidx = shapely.get_parts(shapely.constrained_delaunay_triangles(u_geom[su]),
                                       return_index=True)
        txy = shapely.get_coordinates(tris).reshape(-1, 4, 2)[:, :3, :]
        tri_xy = np.ascontiguousarray(txy.reshape(-1, 6))
        np.cumsum(np.bincount(su[tidx], minlength=n), out=tri_ptr[1:])
        # their sides are seams between the pieces of neighbouring triangles
        t_sides = np.concatenate([tri_xy[:, [0, 1, 2, 3]], tri_xy[:, [2, 3, 4, 5]],
                                  tri_xy[:, [4, 5, 0, 1]]])
        base = len(sxy)
        sxy = np.concatenate([sxy, t_sides])
        t_unit = np.tile(su[tidx], 3)
        cand_ptr, cand = _csr(np.concatenate([np.repeat(np.arange(n), np.diff(cand_ptr)),
                                              t_unit]),
                              np.concatenate([cand, base + np.arange(len(t_sides))]), n)
    units = _Units(n, u_face, u_cls, u_geom, plain, n_prim, cand_ptr, cand, sxy, edge_unit_ptr,
                   edge_unit, unit_edge_ptr, unit_edge, node_unit_ptr, node_unit, *seg,
                   tri_ptr, tri_xy)
    faces.units[key] = units
    return units


def _ring_segments(hs: IntArray, poly: _Polylines, edge_len: FloatArray
                   ) -> tuple[FloatArray, IntArray, FloatArray]:
    """Segments walked by the half-edges ``hs`` (in order): coordinates, edge, positions."""
    e = hs >> 1
    fwd = (hs & 1) == 0
    nseg = np.diff(poly.ptr)[e] - 1
    rep = np.repeat(np.arange(len(hs)), nseg)
    j = np.arange(int(nseg.sum())) - np.repeat(np.cumsum(nseg) - nseg, nseg)
    k = np.where(fwd[rep], j, nseg[rep] - 1 - j)
    v0 = poly.ptr[e[rep]] + k
    a = np.where(fwd[rep], v0, v0 + 1)
    b = np.where(fwd[rep], v0 + 1, v0)
    scale = edge_len[e[rep]] / np.where(poly.length[e[rep]] > 0, poly.length[e[rep]], 1.0)
    xy = np.column_stack([poly.xy[a], poly.xy[b]])
    m = np.column_stack([poly.cum[a] * scale, poly.cum[b] * scale])
    return xy, e[rep], m


def _unit_segments(faces: _Faces, net: CompiledNetwork, u_face: IntArray, u_cls: IntArray,
                   u_geom: ObjArray, edge_cls: IntArray
                   ) -> tuple[IntArray, FloatArray, IntArray, FloatArray, IntArray, IntArray]:
    """The street segments of every unit, in walk order (its face on their left).

    Dead ends appear twice (one segment per side).  A segment belongs to the unit of its
    face that has its class and contains it; ``prev``/``next`` link consecutive segments of
    one walk within one unit (-1 where the walk leaves the unit or changes class).
    """
    n = len(u_face)
    nf = faces.n_faces
    hs = faces.walk_h
    xy, e, m = _ring_segments(hs, faces.poly, net.edge_length_m)
    nseg_h = np.diff(faces.poly.ptr)[hs >> 1] - 1
    h_rep = np.repeat(np.arange(len(hs)), nseg_h)
    walk = faces.walk_id[h_rep]
    face = np.repeat(np.arange(nf), np.diff(faces.walk_ptr))[h_rep]
    fu_ptr, fu = _csr(u_face, np.arange(n, dtype=np.int64), nf)
    n_fu = np.diff(fu_ptr)[face]
    unit = np.full(len(e), -1, np.int64)
    one = np.flatnonzero(n_fu == 1)
    u1 = fu[fu_ptr[face[one]]]
    ok = (u_cls[u1] == _ANY) | (u_cls[u1] == edge_cls[e[one]])
    unit[one[ok]] = u1[ok]
    many = np.flatnonzero(n_fu > 1)
    if len(many):  # faces cut by walls: the part that holds the segment's middle
        cnt = n_fu[many]
        rep = np.repeat(np.arange(len(many)), cnt)
        cu = fu[_ranges(fu_ptr[face[many]], cnt)]
        mid = shapely.points(0.5 * (xy[many, :2] + xy[many, 2:]))
        compat = (u_cls[cu] == _ANY) | (u_cls[cu] == edge_cls[e[many]][rep])
        # the part that holds the segment's middle, else (a path just outside its wall) the
        # nearest part of its class
        dist = np.where(compat, shapely.distance(u_geom[cu], mid[rep]), np.inf)
        o = np.lexsort((dist, rep))
        rep_o, cu_o, d_o = rep[o], cu[o], dist[o]
        first = np.unique(rep_o, return_index=True)[1]
        ok = np.isfinite(d_o[first])
        unit[many[rep_o[first][ok]]] = cu_o[first][ok]
    # consecutive segments of one walk (walks are contiguous and closed)
    k = np.arange(len(e))
    w_start = np.concatenate([[0], np.flatnonzero(walk[1:] != walk[:-1]) + 1])
    w_end = np.append(w_start[1:], len(e))
    w_of = np.repeat(np.arange(len(w_start)), w_end - w_start)
    nxt = np.where(k + 1 < w_end[w_of], k + 1, w_start[w_of])
    link = (unit >= 0) & (unit[nxt] == unit)
    keep = np.flatnonzero(unit >= 0)
    order = keep[np.argsort(unit[keep], kind="stable")]
    new_of = np.full(len(e), -1, np.int64)
    new_of[order] = np.arange(len(order))
    seg_next = np.where(link[order], new_of[nxt[order]], -1)
    seg_prev = np.full(len(order), -1, np.int64)
    has = seg_next >= 0
    seg_prev[seg_next[has]] = np.flatnonzero(has)
    seg_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(unit[order], minlength=n), out=seg_ptr[1:])
    sxy = np.ascontiguousarray(xy[order])
    _link_open_ends(sxy, unit[order], seg_prev, seg_next)
    return (seg_ptr, sxy, e[order], np.ascontiguousarray(m[order]), seg_prev, seg_next)


def _link_open_ends(sxy: FloatArray, unit: IntArray, seg_prev: IntArray, seg_next: IntArray
                    ) -> None:
    """Join walk ends where the walk only stepped out of the unit and came back.

    A walk that follows a street of another class (a gate into a compound) and returns to
    the same corner leaves an open end and an open start there; they are linked as the
    walk would run without the other class: the first turn clockwise from the way back.
    """
    ends = np.flatnonzero(seg_next < 0)
    starts = np.flatnonzero(seg_prev < 0)
    if len(ends) == 0 or len(starts) == 0:
        return
    bits = sxy.view(np.int64)
    key_e = np.column_stack([unit[ends], bits[ends, 2], bits[ends, 3]])
    key_s = np.column_stack([unit[starts], bits[starts, 0], bits[starts, 1]])
    allk = np.concatenate([key_e, key_s])
    _, inv = np.unique(allk, axis=0, return_inverse=True)
    inv = inv.ravel()
    ge, gs = inv[: len(ends)], inv[len(ends):]
    both = np.intersect1d(ge, gs)
    for g in both:
        es = ends[ge == g]
        ss = list(starts[gs == g])
        for i in es:
            if not ss:
                break
            tx, ty = sxy[i, 2] - sxy[i, 0], sxy[i, 3] - sxy[i, 1]
            back = np.arctan2(-ty, -tx)
            turns = []
            for j in ss:
                ang = np.arctan2(sxy[j, 3] - sxy[j, 1], sxy[j, 2] - sxy[j, 0])
                turns.append((back - ang) % (2 * np.pi) or 2 * np.pi)
            j = ss.pop(int(np.argmin(turns)))
            seg_next[i] = j
            seg_prev[j] = i


@njit(cache=True)
def _unit_vec(x0: float, y0: float, x1: float, y1: float
              ) -> tuple[float, float]:  # pragma: no cover - njit
    dx = x1 - x0
    dy = y1 - y0
    ln = np.hypot(dx, dy)
    if ln <= 0.0:
        return 0.0, 0.0
    return dx / ln, dy / ln


@njit(cache=True)
def _convex_turn(ax: float, ay: float, bx: float, by: float) -> bool:  # pragma: no cover
    """Whether turning from direction a to direction b keeps the left side convex."""
    cr = ax * by - ay * bx
    if cr > 1e-12:
        return True
    if cr < -1e-12:
        return False
    return ax * bx + ay * by > 0.0


@njit(cache=True)
def _sites_nb(seg_xy: Any, seg_unit: Any, seg_prev: Any, seg_next: Any, tol: float
              ) -> Any:  # pragma: no cover - njit
    """Sectors (round corners and open ends) and the seams between the segments' cells.

    Sector kinds: 0 the outside of a reflex corner at the end of a segment, 1 the open end
    of a segment (the walk leaves the unit), 2 an open start.  Seams are returned as
    segments with their unit: the corner lines of every cell.
    """
    n = seg_xy.shape[0]
    tl = 1.01 * tol + 1.0  # seams a little longer than the cells reach
    # number of segment ends at every segment's end and start corner (same unit)
    size = 1
    while size < 4 * n + 4:
        size *= 2
    mask = size - 1
    table = np.full((size, 4), -1, np.int64)
    count = np.zeros(size, np.int64)
    bits = seg_xy.view(np.int64)
    for i in range(n):
        for end in range(2):
            h = _hash_slot(table, bits[i, 2 * end], bits[i, 2 * end + 1], seg_unit[i], mask)
            if table[h, 0] == -1:
                table[h, 0] = 1
                table[h, 1] = bits[i, 2 * end]
                table[h, 2] = bits[i, 2 * end + 1]
                table[h, 3] = seg_unit[i]
            count[h] += 1
    sec_seg = np.empty(2 * n, np.int64)
    sec_kind = np.empty(2 * n, np.int64)
    seams = np.empty((4 * n, 4), np.float64)
    seam_unit = np.empty(4 * n, np.int64)
    ns = 0
    nm = 0
    for i in range(n):
        x0, y0, x1, y1 = seg_xy[i, 0], seg_xy[i, 1], seg_xy[i, 2], seg_xy[i, 3]
        tx, ty = _unit_vec(x0, y0, x1, y1)
        nx, ny = -ty, tx
        u = seg_unit[i]
        j = seg_next[i]
        if j < 0:
            h = _hash_slot(table, bits[i, 2], bits[i, 3], u, mask)
            if count[h] == 1:  # a real open end (no other street of the unit here)
                sec_seg[ns] = i
                sec_kind[ns] = 1
                ns += 1
            seams[nm] = (x1, y1, x1 + tl * nx, y1 + tl * ny)
            seam_unit[nm] = u
            nm += 1
            seams[nm] = (x1, y1, x1 + tl * tx, y1 + tl * ty)
            seam_unit[nm] = u
            nm += 1
        else:
            jx, jy = _unit_vec(seg_xy[j, 0], seg_xy[j, 1], seg_xy[j, 2], seg_xy[j, 3])
            if _convex_turn(tx, ty, jx, jy):
                dx = jx - tx
                dy = jy - ty
                dl = np.hypot(dx, dy)
                if dl < 1e-9:
                    dx, dy = nx, ny
                else:
                    dx /= dl
                    dy /= dl
                # sin of half the inner angle: the cell corner is tol / sin away
                half = max(0.5 * np.hypot(tx + jx, ty + jy), 0.05)
                ln = 1.01 * tol / half + 1.0
                seams[nm] = (x1, y1, x1 + ln * dx, y1 + ln * dy)
                seam_unit[nm] = u
                nm += 1
            else:
                sec_seg[ns] = i
                sec_kind[ns] = 0
                ns += 1
                seams[nm] = (x1, y1, x1 + tl * nx, y1 + tl * ny)
                seam_unit[nm] = u
                nm += 1
                seams[nm] = (x1, y1, x1 - tl * jy, y1 + tl * jx)
                seam_unit[nm] = u
                nm += 1
        if seg_prev[i] < 0 and count[_hash_slot(table, bits[i, 0], bits[i, 1], u, mask)] == 1:
            sec_seg[ns] = i
            sec_kind[ns] = 2
            ns += 1
            seams[nm] = (x0, y0, x0 + tl * nx, y0 + tl * ny)
            seam_unit[nm] = u
            nm += 1
            seams[nm] = (x0, y0, x0 - tl * tx, y0 - tl * ty)
            seam_unit[nm] = u
            nm += 1
    return sec_seg[:ns], sec_kind[:ns], seams[:nm], seam_unit[:nm]


@njit(cache=True)
def _sector_point(seg_xy: Any, i: int, kind: int) -> tuple[float, float]:  # pragma: no cover
    if kind == 2:
        return seg_xy[i, 0], seg_xy[i, 1]
    return seg_xy[i, 2], seg_xy[i, 3]


@njit(cache=True)
def _site_box(seg_xy: Any, sec_seg: Any, sec_kind: Any, n_seg: int, site: int
              ) -> tuple[float, float, float, float]:  # pragma: no cover - njit
    if site < n_seg:
        return (min(seg_xy[site, 0], seg_xy[site, 2]), min(seg_xy[site, 1], seg_xy[site, 3]),
                max(seg_xy[site, 0], seg_xy[site, 2]), max(seg_xy[site, 1], seg_xy[site, 3]))
    k = site - n_seg
    px, py = _sector_point(seg_xy, sec_seg[k], sec_kind[k])
    return px, py, px, py


@njit(cache=True)
def _relation(seg_xy: Any, seg_prev: Any, seg_next: Any, sec_seg: Any, sec_kind: Any,
              n_seg: int, p: int, q: int, out: Any) -> int:  # pragma: no cover - njit
    """How the cells of two nearby sites are split.

    Returns 0 (no split needed), 1 (two round corners: the half-plane ``out[:3] = (a, b,
    c)``, ``p`` keeps ``a x + b y + c >= 0``, ``q`` the rest), 2 (a segment and a round
    corner on its left: the parabola of points equidistant from the corner and the
    segment's line; ``out[:3]`` = segment, corner x, corner y) or 3 (two segments: each
    loses the wedge where it is on the other's left and nearer to it).
    """
    eps = 1e-9
    if p < n_seg and q < n_seg:
        if seg_next[p] == q or seg_prev[p] == q:
            return 0
        tpx, tpy = _unit_vec(seg_xy[p, 0], seg_xy[p, 1], seg_xy[p, 2], seg_xy[p, 3])
        tqx, tqy = _unit_vec(seg_xy[q, 0], seg_xy[q, 1], seg_xy[q, 2], seg_xy[q, 3])
        if abs(tpx - tqx) + abs(tpy - tqy) < 1e-9:
            # parallel, same way: on one line their cells are apart already
            off_ = -tpy * (seg_xy[q, 0] - seg_xy[p, 0]) + tpx * (seg_xy[q, 1] - seg_xy[p, 1])
            if abs(off_) < 1e-6:
                return 0
        return 3
    if p >= n_seg and q >= n_seg:  # two round corners: the perpendicular bisector
        kp = p - n_seg
        kq = q - n_seg
        ax, ay = _sector_point(seg_xy, sec_seg[kp], sec_kind[kp])
        bx, by = _sector_point(seg_xy, sec_seg[kq], sec_kind[kq])
        if abs(ax - bx) + abs(ay - by) < eps:
            return 0
        mx = 0.5 * (ax + bx)
        my = 0.5 * (ay + by)
        out[0] = ax - bx
        out[1] = ay - by
        out[2] = -(out[0] * mx + out[1] * my)
        return 1
    # a segment and a round corner
    s_ = q if p >= n_seg else p
    k = (p if p >= n_seg else q) - n_seg
    i = sec_seg[k]
    if i == s_:
        return 0
    if sec_kind[k] == 0 and seg_next[i] == s_:
        return 0
    wx, wy = _sector_point(seg_xy, i, sec_kind[k])
    x0, y0, x1, y1 = seg_xy[s_, 0], seg_xy[s_, 1], seg_xy[s_, 2], seg_xy[s_, 3]
    tx, ty = _unit_vec(x0, y0, x1, y1)
    d = -ty * (wx - x0) + tx * (wy - y0)
    if d <= eps:
        return 0
    out[0] = s_
    out[1] = wx
    out[2] = wy
    return 2


@njit(cache=True)
def _wedge(seg_xy: Any, p: int, q: int, x0: float, y0: float, x1: float, y1: float
           ) -> Any:  # pragma: no cover - njit
    """Box ``(x0, y0, x1, y1)`` cut to where ``x`` is on segment ``q``'s left and nearer
    to ``q``'s line than to ``p``'s (counter-clockwise vertices)."""
    tpx, tpy = _unit_vec(seg_xy[p, 0], seg_xy[p, 1], seg_xy[p, 2], seg_xy[p, 3])
    tqx, tqy = _unit_vec(seg_xy[q, 0], seg_xy[q, 1], seg_xy[q, 2], seg_xy[q, 3])
    npx, npy = -tpy, tpx
    nqx, nqy = -tqy, tqx
    cp = npx * seg_xy[p, 0] + npy * seg_xy[p, 1]
    cq = nqx * seg_xy[q, 0] + nqy * seg_xy[q, 1]
    hp = np.empty((4, 3), np.float64)
    hp[0] = (nqx, nqy, -cq)  # d_q >= 0
    hp[1] = (npx - nqx, npy - nqy, cq - cp)  # d_p - d_q >= 0
    # where the foot on q falls within q (elsewhere q's ends and neighbours compete)
    hp[2] = (tqx, tqy, -(tqx * seg_xy[q, 0] + tqy * seg_xy[q, 1]))
    hp[3] = (-tqx, -tqy, tqx * seg_xy[q, 2] + tqy * seg_xy[q, 3])
    bx = np.array([x0, x1, x1, x0])
    by = np.array([y0, y0, y1, y1])
    cx, cy = _clip_halfplanes(bx, by, 4, hp, 4)
    return cx, cy


@njit(cache=True)
def _relations_nb(seg_xy: Any, seg_unit: Any, seg_prev: Any, seg_next: Any, sec_seg: Any,
                  sec_kind: Any, pair_p: Any, pair_q: Any, tol: float
                  ) -> Any:  # pragma: no cover - njit
    """Splits of every candidate pair: each site's half-planes, each segment's excluded
    polygons (wedges nearer another segment, parabola regions of nearby corners), and the
    seams they draw."""
    n_seg = seg_xy.shape[0]
    n_sites = n_seg + sec_seg.shape[0]
    m = pair_p.shape[0]
    kk = 4  # parabola samples on each side
    code = np.zeros(m, np.int64)
    val = np.empty((m, 3), np.float64)
    buf = np.empty(3, np.float64)
    cnt = np.zeros(n_sites + 1, np.int64)
    for k in range(m):
        c = _relation(seg_xy, seg_prev, seg_next, sec_seg, sec_kind, n_seg, pair_p[k],
                      pair_q[k], buf)
        code[k] = c
        val[k] = buf
        if c == 1:
            cnt[pair_p[k] + 1] += 1
            cnt[pair_q[k] + 1] += 1
        elif c == 2:
            s_ = int(buf[0])
            corner = pair_q[k] if pair_p[k] == s_ else pair_p[k]
            cnt[corner + 1] += 2 * kk + 1
    for s in range(n_sites):
        cnt[s + 1] += cnt[s]
    rel = np.empty((cnt[n_sites], 3), np.float64)
    fill = cnt[:-1].copy()
    # excluded polygons, collected then sorted by site
    ex_site = [0]
    ex_site.pop()
    ex_len = [0]
    ex_len.pop()
    ex_pts = np.empty((16 * m + 16, 2), np.float64)
    npts = 0
    seams = np.empty((4 * m + 16, 4), np.float64)
    seam_unit = np.empty(4 * m + 16, np.int64)
    nm = 0
    for k in range(m):
        if code[k] == 0:
            continue
        p = pair_p[k]
        q = pair_q[k]
        p_seg = p if p < n_seg else sec_seg[p - n_seg]
        u = seg_unit[p_seg]
        bx0, by0, bx1, by1 = _site_box(seg_xy, sec_seg, sec_kind, n_seg, p)
        cx0, cy0, cx1, cy1 = _site_box(seg_xy, sec_seg, sec_kind, n_seg, q)
        x0 = min(bx0, cx0) - 2.0 * tol
        y0 = min(by0, cy0) - 2.0 * tol
        x1 = max(bx1, cx1) + 2.0 * tol
        y1 = max(by1, cy1) + 2.0 * tol
        if nm + 2 * kk + 4 > seams.shape[0]:
            grown = np.empty((2 * seams.shape[0], 4), np.float64)
            grown[:nm] = seams[:nm]
            seams = grown
            gu = np.empty(2 * seam_unit.shape[0], np.int64)
            gu[:nm] = seam_unit[:nm]
            seam_unit = gu
        if code[k] == 1:
            rel[fill[p]] = val[k]
            fill[p] += 1
            rel[fill[q], 0] = -val[k, 0]
            rel[fill[q], 1] = -val[k, 1]
            rel[fill[q], 2] = -val[k, 2]
            fill[q] += 1
            nm = _line_seam(val[k, 0], val[k, 1], val[k, 2], x0, y0, x1, y1, seams, seam_unit,
                            nm, u)
            continue
        if code[k] == 3:
            for a_, b_ in ((p, q), (q, p)):
                wx, wy = _wedge(seg_xy, a_, b_, x0, y0, x1, y1)
                if wx.shape[0] < 3:
                    continue
                if npts + wx.shape[0] > ex_pts.shape[0]:
                    grown = np.empty((2 * (npts + wx.shape[0]), 2), np.float64)
                    grown[:npts] = ex_pts[:npts]
                    ex_pts = grown
                ex_pts[npts:npts + wx.shape[0], 0] = wx
                ex_pts[npts:npts + wx.shape[0], 1] = wy
                npts += wx.shape[0]
                ex_site.append(a_)
                ex_len.append(wx.shape[0])
            # seams: both lines (beyond the segments), their normals at the ends, and the
            # bisector
            if nm + 8 > seams.shape[0]:
                grown = np.empty((2 * seams.shape[0], 4), np.float64)
                grown[:nm] = seams[:nm]
                seams = grown
                gu = np.empty(2 * seam_unit.shape[0], np.int64)
                gu[:nm] = seam_unit[:nm]
                seam_unit = gu
            for s2 in (p, q):
                tx, ty = _unit_vec(seg_xy[s2, 0], seg_xy[s2, 1], seg_xy[s2, 2], seg_xy[s2, 3])
                nm = _line_seam(-ty, tx, ty * seg_xy[s2, 0] - tx * seg_xy[s2, 1], x0, y0, x1,
                                y1, seams, seam_unit, nm, u)
                for end in range(2):
                    nm = _line_seam(tx, ty, -(tx * seg_xy[s2, 2 * end] +
                                              ty * seg_xy[s2, 2 * end + 1]),
                                    x0, y0, x1, y1, seams, seam_unit, nm, u)
            tpx, tpy = _unit_vec(seg_xy[p, 0], seg_xy[p, 1], seg_xy[p, 2], seg_xy[p, 3])
            tqx, tqy = _unit_vec(seg_xy[q, 0], seg_xy[q, 1], seg_xy[q, 2], seg_xy[q, 3])
            a = -tqy + tpy
            b = tqx - tpx
            c = -(-tqy * seg_xy[q, 0] + tqx * seg_xy[q, 1]) + (-tpy * seg_xy[p, 0] +
                                                               tpx * seg_xy[p, 1])
            nm = _line_seam(a, b, c, x0, y0, x1, y1, seams, seam_unit, nm, u)
            continue
        s_ = int(val[k, 0])
        corner = q if p == s_ else p
        poly = _parabola(seg_xy, s_, val[k, 1], val[k, 2], tol + 1.0, kk)
        npt = poly.shape[0]
        if npts + npt > ex_pts.shape[0]:
            grown = np.empty((2 * (npts + npt), 2), np.float64)
            grown[:npts] = ex_pts[:npts]
            ex_pts = grown
        ex_pts[npts:npts + npt] = poly
        npts += npt
        ex_site.append(s_)
        ex_len.append(npt)
        for j in range(npt):  # the corner keeps the inside of the parabola polygon
            ax, ay = poly[j, 0], poly[j, 1]
            bx, by = poly[(j + 1) % npt, 0], poly[(j + 1) % npt, 1]
            a = -(by - ay)
            b = bx - ax
            c = -(a * ax + b * ay)
            rel[fill[corner], 0] = a
            rel[fill[corner], 1] = b
            rel[fill[corner], 2] = c
            fill[corner] += 1
            nm = _line_seam(a, b, c, x0, y0, x1, y1, seams, seam_unit, nm, u)
    # excluded polygons grouped by site
    ne = len(ex_site)
    es = np.empty(ne, np.int64)
    el = np.empty(ne, np.int64)
    for j in range(ne):
        es[j] = ex_site[j]
        el[j] = ex_len[j]
    start = np.zeros(ne + 1, np.int64)
    for j in range(ne):
        start[j + 1] = start[j] + el[j]
    order = np.argsort(es, kind="mergesort")
    ex_ptr = np.zeros(n_sites + 1, np.int64)
    for j in range(ne):
        ex_ptr[es[j] + 1] += 1
    for s in range(n_sites):
        ex_ptr[s + 1] += ex_ptr[s]
    ex_vptr = np.zeros(ne + 1, np.int64)
    ex_xy = np.empty((npts, 2), np.float64)
    o = 0
    for jj in range(ne):
        j = order[jj]
        ex_xy[o:o + el[j]] = ex_pts[start[j]:start[j] + el[j]]
        o += el[j]
        ex_vptr[jj + 1] = o
    return cnt, rel, ex_ptr, ex_vptr, ex_xy, seams[:nm], seam_unit[:nm]


@njit(cache=True)
def _parabola(seg_xy: Any, s_: int, wx: float, wy: float, reach: float, k: int
              ) -> Any:  # pragma: no cover - njit
    """Convex polygon (counter-clockwise) of the points nearer the corner ``w`` than the line
    of segment ``s_``, up to ``reach`` beyond ``w``: the parabola sampled at ``2 k + 1``
    points, closed by a chord."""
    x0, y0, x1, y1 = seg_xy[s_, 0], seg_xy[s_, 1], seg_xy[s_, 2], seg_xy[s_, 3]
    tx, ty = _unit_vec(x0, y0, x1, y1)
    nx, ny = -ty, tx
    d = nx * (wx - x0) + ny * (wy - y0)
    top = d + reach
    ymax = np.sqrt(max(2.0 * d * top - d * d, 0.0))
    pts = np.empty((2 * k + 1, 2), np.float64)
    bx = wx - d * nx  # the corner's foot on the line; the parabola is v = (y^2 + d^2) / 2d
    by = wy - d * ny
    for q in range(2 * k + 1):
        yy = ymax * (q - k) / k
        v = (yy * yy + d * d) / (2.0 * d)
        pts[q, 0] = bx + yy * tx + v * nx
        pts[q, 1] = by + yy * ty + v * ny
    return pts  # counter-clockwise: along the line's direction, then the closing chord


@njit(cache=True)
def _line_seam(a: float, b: float, c: float, x0: float, y0: float, x1: float, y1: float,
               seams: Any, seam_unit: Any, nm: int, u: int) -> int:  # pragma: no cover
    """Append the part of the line ``a x + b y + c = 0`` inside a box as a seam."""
    nrm = a * a + b * b
    if nrm <= 0.0:
        return nm
    ox = -a * c / nrm
    oy = -b * c / nrm
    dx = -b
    dy = a
    tmin = -np.inf
    tmax = np.inf
    for lo_, hi_, o_, d_ in ((x0, x1, ox, dx), (y0, y1, oy, dy)):
        if d_ == 0.0:
            if o_ < lo_ or o_ > hi_:
                return nm
            continue
        ta = (lo_ - o_) / d_
        tb = (hi_ - o_) / d_
        tmin = max(tmin, min(ta, tb))
        tmax = min(tmax, max(ta, tb))
    if tmax > tmin:
        seams[nm, 0] = ox + tmin * dx
        seams[nm, 1] = oy + tmin * dy
        seams[nm, 2] = ox + tmax * dx
        seams[nm, 3] = oy + tmax * dy
        seam_unit[nm] = u
        nm += 1
    return nm


@dataclass(eq=False)
class _Sites:
    """Cells of a unit's segments and round corners for one tolerance (see _site_pieces)."""

    sec_ptr: IntArray  # unit -> its sectors
    sec_seg: IntArray  # segment of each sector
    sec_kind: IntArray  # 0 reflex corner, 1 open end, 2 open start
    rel_ptr: IntArray  # site (segments, then sectors) -> half-planes splitting it from others
    rel: FloatArray
    ex_ptr: IntArray  # site -> convex polygons cut out of its cell (other sites nearer)
    ex_vptr: IntArray  # polygon -> its vertices
    ex_xy: FloatArray
    cand_ptr: IntArray  # unit -> seams for matching (units' seams and the cells')
    cand: IntArray
    sxy: FloatArray


def _sites(units: _Units, tol: float) -> _Sites:
    """Sites and cells of every unit for tolerance ``tol`` (cached)."""
    got = units.sites.get(tol)
    if got is not None:
        return got
    n_seg = len(units.seg_edge)
    seg_unit = np.repeat(np.arange(units.n), np.diff(units.seg_ptr))
    sec_seg, sec_kind, c_seams, c_unit = _sites_nb(units.seg_xy, seg_unit, units.seg_prev,
                                                   units.seg_next, tol)
    sec_ptr = np.zeros(units.n + 1, np.int64)
    np.cumsum(np.bincount(seg_unit[sec_seg], minlength=units.n), out=sec_ptr[1:])
    # nearby sites of one unit: a grid of 2 tol cells
    sec_xy = np.where(sec_kind[:, None] == 2, units.seg_xy[sec_seg, :2],
                      units.seg_xy[sec_seg, 2:])
    site_unit = np.concatenate([seg_unit, seg_unit[sec_seg]])
    bx0 = np.concatenate([np.minimum(units.seg_xy[:, 0], units.seg_xy[:, 2]), sec_xy[:, 0]])
    by0 = np.concatenate([np.minimum(units.seg_xy[:, 1], units.seg_xy[:, 3]), sec_xy[:, 1]])
    bx1 = np.concatenate([np.maximum(units.seg_xy[:, 0], units.seg_xy[:, 2]), sec_xy[:, 0]])
    by1 = np.concatenate([np.maximum(units.seg_xy[:, 1], units.seg_xy[:, 3]), sec_xy[:, 1]])
    if len(site_unit):
        lo = np.array([bx0.min(), by0.min()]) - 2 * tol
        c = 2.0 * tol
        ny = int((by1.max() - lo[1]) / c) + 2
        nx = int((bx1.max() - lo[0]) / c) + 2
        keys, sites = _cell_entries(bx0 - tol, by0 - tol, bx1 + tol, by1 + tol, float(lo[0]),
                                    float(lo[1]), c, ny)
        keys = keys + site_unit[sites] * (nx * ny)
        pp, qq = _cell_pairs(keys, sites)
        pk = np.unique(np.minimum(pp, qq) * (n_seg + len(sec_seg)) + np.maximum(pp, qq))
        pair_p = pk // (n_seg + len(sec_seg))
        pair_q = pk % (n_seg + len(sec_seg))
    else:
        pair_p = pair_q = np.zeros(0, np.int64)
    rel_ptr, rel, ex_ptr, ex_vptr, ex_xy, r_seams, r_unit = _relations_nb(
        units.seg_xy, seg_unit, units.seg_prev, units.seg_next, sec_seg, sec_kind, pair_p,
        pair_q, tol)
    # seams of the cells: the segments themselves, corner lines and splitting lines
    base = len(units.sxy)
    extra = np.concatenate([units.seg_xy, c_seams, r_seams])
    extra_unit = np.concatenate([seg_unit, c_unit, r_unit])
    cand_ptr, cand = _csr(np.concatenate([np.repeat(np.arange(units.n), np.diff(units.cand_ptr)),
                                          extra_unit]),
                          np.concatenate([units.cand, base + np.arange(len(extra))]), units.n)
    out = _Sites(sec_ptr, sec_seg, sec_kind, rel_ptr, rel, ex_ptr, ex_vptr, ex_xy, cand_ptr, cand,
                 np.concatenate([units.sxy, extra]))
    units.sites[tol] = out
    return out


@njit(cache=True)
def _cell_pairs(keys: Any, sites: Any) -> Any:  # pragma: no cover - njit
    """All pairs of different sites sharing a grid cell."""
    order = np.argsort(keys)
    n = order.shape[0]
    total = 0
    i = 0
    while i < n:
        j = i
        while j < n and keys[order[j]] == keys[order[i]]:
            j += 1
        total += (j - i) * (j - i - 1) // 2
        i = j
    pp = np.empty(total, np.int64)
    qq = np.empty(total, np.int64)
    m = 0
    i = 0
    while i < n:
        j = i
        while j < n and keys[order[j]] == keys[order[i]]:
            j += 1
        for a in range(i, j):
            for b in range(a + 1, j):
                pp[m] = sites[order[a]]
                qq[m] = sites[order[b]]
                m += 1
        i = j
    keep = pp != qq
    return pp[keep], qq[keep]


@njit(cache=True)
def _clip_halfplanes(px: Any, py: Any, m: int, hp: Any, nh: int) -> Any:  # pragma: no cover
    """Sutherland-Hodgman clip of a polygon (``m`` vertices, open) by half-planes."""
    cx = px[:m].copy()
    cy = py[:m].copy()
    for h in range(nh):
        if m == 0:
            break
        a = hp[h, 0]
        b = hp[h, 1]
        c = hp[h, 2]
        nx = np.empty(2 * m + 2, np.float64)
        ny = np.empty(2 * m + 2, np.float64)
        k = 0
        for q in range(m):
            ax = cx[q]
            ay = cy[q]
            bx = cx[(q + 1) % m]
            by = cy[(q + 1) % m]
            sa = a * ax + b * ay + c
            sb = a * bx + b * by + c
            if sa >= 0.0:
                nx[k] = ax
                ny[k] = ay
                k += 1
            if (sa >= 0.0) != (sb >= 0.0):
                t = sa / (sa - sb)
                nx[k] = ax + t * (bx - ax)
                ny[k] = ay + t * (by - ay)
                k += 1
        cx = nx
        cy = ny
        m = k
    return cx[:m], cy[:m]


@njit(cache=True)
def _budget(m: float, L: float, R: float, du: float, dv: float, soff: Any, sacc: Any, a: int,
            b: int) -> float:  # pragma: no cover - njit
    """Walking budget left at position ``m`` of an edge (from either end or a source on it)."""
    best = max(R - du - m, R - dv - (L - m))
    for q in range(a, b):
        best = max(best, R - sacc[q] - abs(m - soff[q]))
    return best


@njit(cache=True)
def _along(x0: float, y0: float, x1: float, y1: float, t: float
           ) -> tuple[float, float]:  # pragma: no cover - njit
    """Point at fraction ``t`` of a segment, exactly its ends at 0 and 1."""
    if t <= 0.0:
        return x0, y0
    if t >= 1.0:
        return x1, y1
    return x0 + t * (x1 - x0), y0 + t * (y1 - y0)


@njit(cache=True)
def _emit(out: Any, o: int, cx: Any, cy: Any) -> Any:  # pragma: no cover - njit
    """Append a closed ring to the coordinate buffer (grown as needed)."""
    mm = cx.shape[0]
    if o + mm + 1 > out.shape[0]:
        grown = np.empty((2 * (o + mm + 1), 2), np.float64)
        grown[:o] = out[:o]
        out = grown
    for j in range(mm):
        out[o + j, 0] = cx[j]
        out[o + j, 1] = cy[j]
    out[o + mm, 0] = cx[0]
    out[o + mm, 1] = cy[0]
    return out, o + mm + 1


@njit(cache=True)
def _subtract_convex(ax: Any, ay: Any, ex: Any) -> Any:  # pragma: no cover - njit
    """Parts of a polygon outside a convex counter-clockwise polygon ``ex`` (one part per
    side of ``ex`` it crosses, split along the sides' lines)."""
    parts = [(ax, ay)]
    parts.pop()
    if ax.max() < ex[:, 0].min() or ax.min() > ex[:, 0].max() or \
            ay.max() < ex[:, 1].min() or ay.min() > ex[:, 1].max():
        parts.append((ax, ay))
        return parts
    hp = np.empty((1, 3), np.float64)
    rx, ry = ax, ay
    n = ex.shape[0]
    for j in range(n):
        x0, y0 = ex[j, 0], ex[j, 1]
        x1, y1 = ex[(j + 1) % n, 0], ex[(j + 1) % n, 1]
        a = -(y1 - y0)
        b = x1 - x0
        c = -(a * x0 + b * y0)
        hp[0, 0], hp[0, 1], hp[0, 2] = -a, -b, -c  # outside this side
        ox, oy = _clip_halfplanes(rx, ry, rx.shape[0], hp, 1)
        if ox.shape[0] >= 3:
            parts.append((ox, oy))
        hp[0, 0], hp[0, 1], hp[0, 2] = a, b, c
        rx, ry = _clip_halfplanes(rx, ry, rx.shape[0], hp, 1)
        if rx.shape[0] < 3:
            break
    return parts


@njit(cache=True)
def _clip_emit(px: Any, py: Any, m: int, hp: Any, nh: int, ex_vptr: Any, ex_xy: Any, e0: int,
               e1: int, tri_xy: Any, t0: int, t1: int, out: Any, o: int, off: Any, owner: Any, g: int,
               who: Any, site: int) -> Any:  # pragma: no cover - njit
    """Clip a polygon by half-planes, cut out the excluded polygons ``e0:e1``, clip by each
    triangle (if any), and keep the parts."""
    cx, cy = _clip_halfplanes(px, py, m, hp, nh)
    if cx.shape[0] < 3:
        return out, o
    parts = [(cx, cy)]
    for e in range(e0, e1):
        ex = ex_xy[ex_vptr[e]:ex_vptr[e + 1]]
        nxt = [(cx, cy)]
        nxt.pop()
        for pa in parts:
            for pb in _subtract_convex(pa[0], pa[1], ex):
                nxt.append(pb)
        parts = nxt
    th = np.empty((3, 3), np.float64)
    for pa in parts:
        qx, qy = pa
        if t1 == t0:
            out, o = _emit(out, o, qx, qy)
            off.append(o)
            owner.append(g)
            who.append(site)
            continue
        bx0 = qx.min()
        bx1 = qx.max()
        by0 = qy.min()
        by1 = qy.max()
        for t in range(t0, t1):
            xs = (tri_xy[t, 0], tri_xy[t, 2], tri_xy[t, 4])
            ys = (tri_xy[t, 1], tri_xy[t, 3], tri_xy[t, 5])
            if max(xs) < bx0 or min(xs) > bx1 or max(ys) < by0 or min(ys) > by1:
                continue
            area = (xs[1] - xs[0]) * (ys[2] - ys[0]) - (xs[2] - xs[0]) * (ys[1] - ys[0])
            for q in range(3):
                a0 = q if area > 0 else (3 - q) % 3
                a1 = (q + 1) % 3 if area > 0 else (2 - q) % 3
                ex_ = xs[a1] - xs[a0]
                ey_ = ys[a1] - ys[a0]
                th[q, 0] = -ey_
                th[q, 1] = ex_
                th[q, 2] = ey_ * xs[a0] - ex_ * ys[a0]
            tx, ty = _clip_halfplanes(qx, qy, qx.shape[0], th, 3)
            if tx.shape[0] >= 3:
                out, o = _emit(out, o, tx, ty)
                off.append(o)
                owner.append(g)
                who.append(site)
    return out, o


@njit(cache=True)
def _site_pieces(g_unit: Any, g_reach: Any, row_ptr: Any, row_du: Any, row_dv: Any,
                 row_sa: Any, row_sb: Any, soff: Any, sacc: Any, seg_ptr: Any, seg_xy: Any,
                 seg_edge: Any, seg_m: Any, seg_prev: Any, seg_next: Any, sec_ptr: Any,
                 sec_seg: Any, sec_kind: Any, rel_ptr: Any, rel: Any, ex_ptr: Any,
                 ex_vptr: Any, ex_xy: Any, tri_ptr: Any, tri_xy: Any, edge_len: Any, tol: float, quad_segs: int
                 ) -> Any:  # pragma: no cover - njit
    """Pieces of partly reached units, as the verdicts see them.

    A point snaps to its nearest street segment (within the unit: the segment's cell);
    at distance ``h`` from a street point with budget ``b`` it is covered when
    ``h <= min(tol, b)``.  Each segment contributes the region under the profile
    ``min(tol, b)`` on its side (tapering at 45 degrees where the walk runs out), clipped to
    its cell; the outside of a reflex corner and an open street end contribute a sector of
    radius ``min(tol, b)``.  Cells are bounded by the corner lines (angle bisectors, normals)
    and by the splitting half-planes of nearby sites (``rel``).  Rows are the groups'
    segments in order (``row_ptr``): distances of the segment's edge ends and the sources
    on it.
    """
    n_seg = seg_xy.shape[0]
    out = np.empty((256, 2), np.float64)
    off = [0]
    owner = [0]
    owner.pop()
    who = [0]
    who.pop()
    o = 0
    for g in range(g_unit.shape[0]):
        u = g_unit[g]
        lo = seg_ptr[u]
        hi = seg_ptr[u + 1]
        R = g_reach[g]
        t0 = tri_ptr[u]
        t1 = tri_ptr[u + 1]
        for i in range(lo, hi):
            r = row_ptr[g] + (i - lo)
            du = row_du[r]
            dv = row_dv[r]
            L = edge_len[seg_edge[i]]
            m0 = seg_m[i, 0]
            dm = seg_m[i, 1] - m0
            sa = row_sa[r]
            sb = row_sb[r]
            ns = sb - sa
            # budget lines: falling (c - m) and rising (c + m); breakpoints where two meet,
            # where one reaches the tolerance or runs out, and at sources
            dn = np.empty(ns + 1, np.float64)
            up = np.empty(ns + 1, np.float64)
            dn[0] = R - du
            up[0] = R - dv - L
            for k in range(ns):
                dn[k + 1] = R - sacc[sa + k] + soff[sa + k]
                up[k + 1] = R - sacc[sa + k] - soff[sa + k]
            cand = np.empty((ns + 1) * (ns + 1) + 4 * (ns + 1) + ns, np.float64)
            nc = 0
            for k in range(ns):
                cand[nc] = soff[sa + k]
                nc += 1
            for k1 in range(ns + 1):
                if np.isfinite(dn[k1]):
                    cand[nc] = dn[k1] - tol
                    cand[nc + 1] = dn[k1]
                    nc += 2
                if np.isfinite(up[k1]):
                    cand[nc] = tol - up[k1]
                    cand[nc + 1] = -up[k1]
                    nc += 2
                for k2 in range(ns + 1):
                    if np.isfinite(dn[k1]) and np.isfinite(up[k2]):
                        cand[nc] = 0.5 * (dn[k1] - up[k2])
                        nc += 1
            ts = np.empty(nc + 2, np.float64)
            ts[0] = 0.0
            ts[1] = 1.0
            nt = 2
            if dm != 0.0:
                for k in range(nc):
                    t = (cand[k] - m0) / dm
                    if t > 0.0 and t < 1.0:
                        ts[nt] = t
                        nt += 1
            ts = np.sort(ts[:nt])
            hs = np.empty(nt, np.float64)
            for k in range(nt):
                b = _budget(m0 + ts[k] * dm, L, R, du, dv, soff, sacc, sa, sb)
                hs[k] = min(tol, max(b, 0.0))
            x0 = seg_xy[i, 0]
            y0 = seg_xy[i, 1]
            x1 = seg_xy[i, 2]
            y1 = seg_xy[i, 3]
            tx, ty = _unit_vec(x0, y0, x1, y1)
            if tx == 0.0 and ty == 0.0:
                continue
            nx = -ty
            ny = tx
            # the cell: h >= 0, the corner lines, the splitting half-planes
            nr = rel_ptr[i + 1] - rel_ptr[i]
            hp = np.empty((nr + 3, 3), np.float64)
            hp[0] = (nx, ny, -(nx * x0 + ny * y0))
            p = seg_prev[i]
            if p >= 0:
                pxv, pyv = _unit_vec(seg_xy[p, 0], seg_xy[p, 1], seg_xy[p, 2], seg_xy[p, 3])
                if _convex_turn(pxv, pyv, tx, ty):
                    sx = pxv + tx
                    sy = pyv + ty
                else:
                    sx = tx
                    sy = ty
            else:
                sx = tx
                sy = ty
            hp[1] = (sx, sy, -(sx * x0 + sy * y0))
            q = seg_next[i]
            if q >= 0:
                qxv, qyv = _unit_vec(seg_xy[q, 0], seg_xy[q, 1], seg_xy[q, 2], seg_xy[q, 3])
                if _convex_turn(tx, ty, qxv, qyv):
                    sx = tx + qxv
                    sy = ty + qyv
                else:
                    sx = tx
                    sy = ty
            else:
                sx = tx
                sy = ty
            hp[2] = (-sx, -sy, sx * x1 + sy * y1)
            for k in range(nr):
                hp[3 + k] = rel[rel_ptr[i] + k]
            px = np.empty(nt + 3, np.float64)
            py = np.empty(nt + 3, np.float64)
            k = 0
            while k < nt - 1:
                if hs[k] <= 0.0 and hs[k + 1] <= 0.0:
                    k += 1
                    continue
                a_ = k
                b_ = k + 1
                while b_ < nt - 1 and hs[b_] > 0.0:
                    b_ += 1
                # polygon: along the side from a_ to b_, then back along the profile
                m = 0
                px[m], py[m] = _along(x0, y0, x1, y1, ts[a_])
                m += 1
                px[m], py[m] = _along(x0, y0, x1, y1, ts[b_])
                m += 1
                for j in range(b_, a_ - 1, -1):
                    if hs[j] > 0.0:
                        bx, by = _along(x0, y0, x1, y1, ts[j])
                        px[m] = bx + hs[j] * nx
                        py[m] = by + hs[j] * ny
                        m += 1
                k = b_
                if m >= 3:
                    out, o = _clip_emit(px, py, m, hp, nr + 3, ex_vptr, ex_xy, ex_ptr[i],
                                        ex_ptr[i + 1], tri_xy, t0, t1, out, o, off, owner, g,
                                        who, i)
        # round corners and open ends: sectors of radius min(tol, budget at the corner)
        for k in range(sec_ptr[u], sec_ptr[u + 1]):
            i = sec_seg[k]
            kind = sec_kind[k]
            r = row_ptr[g] + (i - lo)
            L = edge_len[seg_edge[i]]
            mv = seg_m[i, 0] if kind == 2 else seg_m[i, 1]
            b = _budget(mv, L, R, row_du[r], row_dv[r], soff, sacc, row_sa[r], row_sb[r])
            rad = min(tol, b)
            if not rad > 1e-9:
                continue
            tx, ty = _unit_vec(seg_xy[i, 0], seg_xy[i, 1], seg_xy[i, 2], seg_xy[i, 3])
            nx = -ty
            ny = tx
            vx, vy = _sector_point(seg_xy, i, kind)
            if kind == 0:
                j = seg_next[i]
                jx, jy = _unit_vec(seg_xy[j, 0], seg_xy[j, 1], seg_xy[j, 2], seg_xy[j, 3])
                a_from = np.arctan2(ny, nx)
                a_to = np.arctan2(jx, -jy)
            elif kind == 1:
                a_from = np.arctan2(ny, nx)
                a_to = np.arctan2(ty, tx)
            else:
                a_from = np.arctan2(-ty, -tx)
                a_to = np.arctan2(ny, nx)
            sweep = a_from - a_to
            while sweep <= 1e-12:
                sweep += 2.0 * np.pi
            while sweep > 2.0 * np.pi:
                sweep -= 2.0 * np.pi
            steps = max(1, int(np.ceil(sweep / (0.5 * np.pi) * quad_segs)))
            px = np.empty(steps + 2, np.float64)
            py = np.empty(steps + 2, np.float64)
            px[0] = vx
            py[0] = vy
            for q in range(steps + 1):  # counter-clockwise: from a_to back to a_from
                ang = a_to + sweep * q / steps
                px[q + 1] = vx + rad * np.cos(ang)
                py[q + 1] = vy + rad * np.sin(ang)
            site = n_seg + k
            nr = rel_ptr[site + 1] - rel_ptr[site]
            hp = np.empty((nr, 3), np.float64)
            for q in range(nr):
                hp[q] = rel[rel_ptr[site] + q]
            out, o = _clip_emit(px, py, steps + 2, hp, nr, ex_vptr, ex_xy, 0, 0, tri_xy, t0, t1,
                                out, o, off, owner, g, who, site)
    return (out[:o], np.array(off, dtype=np.int64), np.array(owner, dtype=np.int64),
            np.array(who, dtype=np.int64))


def _split_faces(faces: _Faces, walls: ObjArray, wall_ids: IntArray, n_seg: int
                 ) -> tuple[IntArray, IntArray, ObjArray, IntArray, IntArray, FloatArray]:
    """Cut the faces crossed by compound walls into inside and outside parts."""
    nf = faces.n_faces
    tree = shapely.STRtree(walls)
    fi, ci = tree.query(faces.geom, predicate="intersects")
    inside2d = shapely.relate_pattern(faces.geom[fi], walls[ci], "2********")
    fi, ci = fi[inside2d], ci[inside2d]
    covered = shapely.covered_by(faces.geom[fi], walls[ci])
    cls = np.full(nf, -1, np.int64)
    cls[fi[covered]] = wall_ids[ci[covered]]
    straddle = np.zeros(nf, dtype=bool)
    straddle[fi[~covered]] = True
    straddle[fi[covered]] = False
    sf = np.flatnonzero(straddle)
    # wall segments
    ring_parts = shapely.get_rings(walls, return_index=True)
    wxy, widx = shapely.get_coordinates(ring_parts[0], return_index=True)
    same = widx[:-1] == widx[1:]
    ws = np.flatnonzero(same)
    wall_seg_xy = np.column_stack([wxy[ws], wxy[ws + 1]])
    wall_of_seg = ring_parts[1][widx[ws]]
    wseg_ptr, wseg = _csr(wall_of_seg, np.arange(len(ws), dtype=np.int64) + n_seg, len(walls))
    sxy = np.concatenate([faces.seg_xy, wall_seg_xy])
    u_face = [np.flatnonzero(~straddle)]
    u_cls = [cls[~straddle]]
    u_geom = [faces.geom[~straddle]]
    extra_u: list[IntArray] = []
    extra_s: list[IntArray] = []
    if len(sf):
        pair = np.isin(fi, sf) & ~covered
        pf, pc = fi[pair], ci[pair]
        inner = shapely.intersection(faces.geom[pf], walls[pc])
        grp = np.searchsorted(sf, pf)
        cut = np.empty(len(sf), dtype=object)
        shapely.multipolygons(shapely.get_parts(walls[pc]), indices=np.repeat(
            grp, shapely.get_num_geometries(walls[pc])), out=cut)
        outer = shapely.difference(faces.geom[sf], cut)
        geoms = np.concatenate([inner, outer])
        gface = np.concatenate([pf, sf])
        gcls = np.concatenate([wall_ids[pc], np.full(len(sf), -1, np.int64)])
        gwall_face = np.concatenate([pf, pf])  # walls touching each straddling face
        gwall = np.concatenate([pc, pc])
        parts, pidx = shapely.get_parts(geoms, return_index=True)
        keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > _EPS_M)
        parts, pidx = parts[keep], pidx[keep]
        base = sum(len(a) for a in u_face)
        new_face = gface[pidx]
        u_face.append(new_face)
        u_cls.append(gcls[pidx])
        u_geom.append(parts)
        # every part of a straddling face gets the segments of every wall crossing that face
        wk = np.unique(gwall_face * len(walls) + gwall)
        wf, ww = wk // len(walls), wk % len(walls)
        uid = base + np.arange(len(parts))
        fw_ptr, fw = _csr(wf, ww, nf)
        cnt = np.diff(fw_ptr)[new_face]
        u_rep = np.repeat(uid, cnt)
        w_rep = fw[np.repeat(fw_ptr[new_face], cnt) + (np.arange(cnt.sum()) - np.repeat(
            np.cumsum(cnt) - cnt, cnt))]
        scnt = np.diff(wseg_ptr)[w_rep]
        extra_u.append(np.repeat(u_rep, scnt))
        extra_s.append(wseg[np.repeat(wseg_ptr[w_rep], scnt) + (np.arange(scnt.sum()) - np.repeat(
            np.cumsum(scnt) - scnt, scnt))])
    return (np.concatenate(u_face).astype(np.int64), np.concatenate(u_cls).astype(np.int64),
            np.concatenate(u_geom), np.concatenate(extra_u) if extra_u else np.empty(0, np.int64),
            np.concatenate(extra_s) if extra_s else np.empty(0, np.int64), sxy)


_FACES: weakref.WeakKeyDictionary[CompiledNetwork, _Faces] = weakref.WeakKeyDictionary()


def _faces_of(net: CompiledNetwork) -> _Faces:
    faces = _FACES.get(net)
    if faces is None:
        faces = _build_faces(net)
        _FACES[net] = faces
    return faces


# --------------------------------------------------------------------------------------
# Joining the pieces: make shared boundaries match, then a topological coverage union
# --------------------------------------------------------------------------------------


@dataclass
class _Rings:
    """Closed rings with the covered side on their left (shells CCW, holes CW)."""

    xy: FloatArray
    off: IntArray
    search: IntArray
    unit: IntArray

    @staticmethod
    def empty() -> _Rings:
        return _Rings(np.zeros((0, 2)), np.zeros(1, np.int64), np.zeros(0, np.int64),
                      np.zeros(0, np.int64))

    @staticmethod
    def concat(parts: Sequence[_Rings]) -> _Rings:
        parts = [p for p in parts if len(p.search)]
        if not parts:
            return _Rings.empty()
        offs = [parts[0].off]
        base = parts[0].off[-1]
        for p in parts[1:]:
            offs.append(p.off[1:] + base)
            base += p.off[-1]
        return _Rings(np.concatenate([p.xy for p in parts]), np.concatenate(offs),
                      np.concatenate([p.search for p in parts]),
                      np.concatenate([p.unit for p in parts]))


def _polygon_rings(geoms: ObjArray, search: IntArray, unit: IntArray) -> _Rings:
    """Rings of (multi)polygons, oriented with the interior on the left."""
    geoms = np.asarray(geoms, dtype=object)
    tid = shapely.get_type_id(geoms)
    simple = tid == 3
    sub_list = [geoms[simple]]
    own_list = [np.flatnonzero(simple)]
    if not simple.all():  # explode multi-part results (and collections of an overlay)
        multi = np.flatnonzero(~simple)
        parts, idx = shapely.get_parts(geoms[multi], return_index=True)
        sub, sidx = shapely.get_parts(parts, return_index=True)
        ok = shapely.get_type_id(sub) == 3
        sub_list.append(sub[ok])
        own_list.append(multi[idx[sidx[ok]]])
    sub = np.concatenate(sub_list)
    owner = np.concatenate(own_list)
    live = ~shapely.is_empty(sub)
    sub, owner = sub[live], owner[live]
    if len(sub) == 0:
        return _Rings.empty()
    sub = shapely.orient_polygons(sub)
    _, xy, (ring_off, poly_off) = shapely.to_ragged_array(sub)
    ring_owner = np.repeat(owner, np.diff(poly_off))
    return _Rings(np.ascontiguousarray(xy, dtype=np.float64), ring_off.astype(np.int64),
                  search[ring_owner], unit[ring_owner])


@dataclass(eq=False)
class _RingStore:
    """Cached whole-unit pieces: GEOS polygons and their rings, filled on demand."""

    geom: ObjArray
    first: IntArray  # first ring of each unit (-1: not computed yet)
    count: IntArray
    xy: FloatArray = field(default_factory=lambda: np.zeros((0, 2)))
    off: IntArray = field(default_factory=lambda: np.zeros(1, np.int64))

    def add(self, u: IntArray, geoms: ObjArray) -> None:
        self.geom[u] = geoms
        r = _polygon_rings(geoms, np.zeros(len(u), np.int64), u)
        order = np.argsort(r.unit, kind="stable")
        lens = np.diff(r.off)[order]
        xy = r.xy[_ranges(r.off[:-1][order], lens)]
        n_old = len(self.off) - 1
        self.off = np.concatenate([self.off, self.off[-1] + np.cumsum(lens)])
        self.xy = np.concatenate([self.xy, xy])
        cnt = np.bincount(r.unit[order], minlength=len(self.first))
        self.count[u] = cnt[u]
        start = n_old + np.concatenate([[0], np.cumsum(cnt)[:-1]])
        self.first[u] = start[u]

    def rings(self, u: IntArray, search: IntArray) -> _Rings:
        cnt = self.count[u]
        ridx = _ranges(self.first[u], cnt)
        lens = self.off[ridx + 1] - self.off[ridx]
        off = np.zeros(len(ridx) + 1, np.int64)
        np.cumsum(lens, out=off[1:])
        return _Rings(self.xy[_ranges(self.off[ridx], lens)], off, np.repeat(search, cnt),
                      np.repeat(u, cnt))


@njit(cache=True)
def _classify_segments(xy: Any, ring_off: Any, ring_unit: Any, cand_ptr: Any, cand: Any,
                       sxy: Any, eps: float) -> Any:  # pragma: no cover - njit
    """Seam segment (or -1) of every ring segment, with the end parameters along it.

    A ring segment is on a seam when both its ends lie on one of the candidate segments of
    its unit (the face's street segments, the walls cutting it, the cell boundaries of an
    exactly drawn block).
    """
    nv = xy.shape[0]
    seam = np.full(nv, -1, np.int64)
    t0 = np.zeros(nv, np.float64)
    t1 = np.zeros(nv, np.float64)
    local = np.empty(64, np.int64)
    for r in range(ring_off.shape[0] - 1):
        u = ring_unit[r]
        a = ring_off[r]
        b = ring_off[r + 1]
        if b - a < 2:
            continue
        # candidates near this ring only (a frame face has thousands)
        bx0 = xy[a:b, 0].min() - eps
        bx1 = xy[a:b, 0].max() + eps
        by0 = xy[a:b, 1].min() - eps
        by1 = xy[a:b, 1].max() + eps
        nl = 0
        for j in range(cand_ptr[u], cand_ptr[u + 1]):
            s = cand[j]
            if max(sxy[s, 0], sxy[s, 2]) < bx0 or min(sxy[s, 0], sxy[s, 2]) > bx1:
                continue
            if max(sxy[s, 1], sxy[s, 3]) < by0 or min(sxy[s, 1], sxy[s, 3]) > by1:
                continue
            if nl == local.shape[0]:
                grown = np.empty(2 * nl, np.int64)
                grown[:nl] = local
                local = grown
            local[nl] = s
            nl += 1
        for k in range(a, b - 1):
            ax = xy[k, 0]
            ay = xy[k, 1]
            bx = xy[k + 1, 0]
            by = xy[k + 1, 1]
            for q in range(nl):
                s = local[q]
                x0 = sxy[s, 0]
                y0 = sxy[s, 1]
                dx = sxy[s, 2] - x0
                dy = sxy[s, 3] - y0
                l2 = dx * dx + dy * dy
                if l2 <= 0.0:
                    continue
                ln = np.sqrt(l2)
                if abs((ax - x0) * dy - (ay - y0) * dx) / ln > eps:
                    continue
                if abs((bx - x0) * dy - (by - y0) * dx) / ln > eps:
                    continue
                ta = ((ax - x0) * dx + (ay - y0) * dy) / l2
                tb = ((bx - x0) * dx + (by - y0) * dy) / l2
                tol = eps / ln
                if ta < -tol or ta > 1.0 + tol or tb < -tol or tb > 1.0 + tol:
                    continue
                seam[k] = s
                t0[k] = min(max(ta, 0.0), 1.0)
                t1[k] = min(max(tb, 0.0), 1.0)
                break
    return seam, t0, t1


@njit(cache=True)
def _clusters(rec_key: Any, rec_t: Any, rec_seam: Any, rec_vertex: Any, xy: Any, sxy: Any,
              eps: float) -> Any:  # pragma: no cover - njit
    """Group the (sorted) vertex records on each seam into clusters of coincident points."""
    n = rec_key.shape[0]
    cl = np.empty(n, np.int64)
    cx = np.empty(n, np.float64)
    cy = np.empty(n, np.float64)
    c = -1
    start = 0
    for i in range(n):
        s = rec_seam[i]
        ln = np.hypot(sxy[s, 2] - sxy[s, 0], sxy[s, 3] - sxy[s, 1])
        if c < 0 or rec_key[i] != rec_key[i - 1] or (rec_t[i] - rec_t[i - 1]) * ln > eps:
            c += 1
            start = i
            v = rec_vertex[i]
            cx[c] = xy[v, 0]
            cy[c] = xy[v, 1]
        cl[i] = c
        # a cluster at a seam end takes the exact end point
        if rec_t[start] * ln <= eps:
            cx[c] = sxy[s, 0]
            cy[c] = sxy[s, 1]
        elif (1.0 - rec_t[i]) * ln <= eps:
            cx[c] = sxy[s, 2]
            cy[c] = sxy[s, 3]
    return cl, cx[: c + 1], cy[: c + 1]


@njit(cache=True)
def _rebuild_rings(xy: Any, ring_off: Any, seam: Any, seg_c0: Any, seg_c1: Any, vert_c: Any,
                   cx: Any, cy: Any) -> Any:  # pragma: no cover - njit
    """Ring coordinates with matched vertices: snapped to their cluster, and every other
    cluster on a seam segment inserted into it."""
    nr = ring_off.shape[0] - 1
    cap = xy.shape[0]
    for k in range(xy.shape[0]):
        if seam[k] >= 0:
            cap += abs(seg_c1[k] - seg_c0[k])
    out = np.empty((cap + nr, 2), np.float64)
    off = np.zeros(nr + 1, np.int64)
    o = 0
    for r in range(nr):
        begin = o
        for k in range(ring_off[r], ring_off[r + 1] - 1):
            c = vert_c[k]
            px = xy[k, 0] if c < 0 else cx[c]
            py = xy[k, 1] if c < 0 else cy[c]
            if o == begin or out[o - 1, 0] != px or out[o - 1, 1] != py:
                out[o, 0] = px
                out[o, 1] = py
                o += 1
            if seam[k] >= 0:
                a = seg_c0[k]
                b = seg_c1[k]
                step = 1 if b > a else -1
                for q in range(a + step, b, step):
                    if out[o - 1, 0] != cx[q] or out[o - 1, 1] != cy[q]:
                        out[o, 0] = cx[q]
                        out[o, 1] = cy[q]
                        o += 1
        while o - begin > 1 and out[o - 1, 0] == out[begin, 0] and out[o - 1, 1] == out[begin, 1]:
            o -= 1
        if o - begin < 3:
            o = begin  # degenerate ring: dropped
        else:
            out[o] = out[begin]
            o += 1
        off[r + 1] = o
    return out[:o], off


def _match_rings(rings: _Rings, units: _Units, sites: _Sites) -> _Rings:
    """Rings with the vertices of every shared boundary matched on both sides.

    Where two units meet (a street, a wall), the boundary points of one side's piece are
    inserted into the other side's boundary and near-coincident points are snapped
    together, so that shared edges are identical and cancel exactly when joined.
    """
    if len(rings.search) == 0:
        return rings
    xy, ring_off = rings.xy, rings.off
    seam, t0, t1 = _classify_segments(xy, ring_off, rings.unit, sites.cand_ptr, sites.cand,
                                      sites.sxy, _EPS_M)
    k = np.flatnonzero(seam >= 0)
    ring_of_v = np.repeat(np.arange(len(ring_off) - 1), np.diff(ring_off))
    closing = k + 1 == ring_off[ring_of_v[k] + 1] - 1
    nxt_v = np.where(closing, ring_off[ring_of_v[k]], k + 1)
    rec_seam = np.concatenate([seam[k], seam[k]])
    rec_t = np.concatenate([t0[k], t1[k]])
    rec_v = np.concatenate([k, nxt_v])
    rec_key = rings.search[ring_of_v[np.concatenate([k, k])]] * len(sites.sxy) + rec_seam
    order = np.lexsort((rec_t, rec_key))
    cl_sorted, cx, cy = _clusters(rec_key[order], rec_t[order], rec_seam[order], rec_v[order],
                                  xy, sites.sxy, _EPS_M)
    cl = np.empty(len(order), np.int64)
    cl[order] = cl_sorted
    seg_c0 = np.full(len(xy), -1, np.int64)
    seg_c1 = np.full(len(xy), -1, np.int64)
    seg_c0[k] = cl[: len(k)]
    seg_c1[k] = cl[len(k):]
    vert_c = np.full(len(xy), -1, np.int64)
    vert_c[rec_v] = cl
    new_xy, new_off = _rebuild_rings(xy, ring_off, seam, seg_c0, seg_c1, vert_c, cx, cy)
    new_xy, new_off = _snap_vertices(new_xy, new_off, rings.search, _SNAP_M)
    alive = np.diff(new_off) > 0
    lens = np.diff(new_off)[alive]
    off = np.zeros(len(lens) + 1, np.int64)
    np.cumsum(lens, out=off[1:])
    return _Rings(new_xy, off, rings.search[alive], rings.unit[alive])


@njit(cache=True)
def _snap_vertices(xy: Any, off: Any, ring_search: Any, eps: float
                   ) -> Any:  # pragma: no cover - njit
    """Merge the vertices of one search that lie within ``eps`` of each other.

    Half-plane clipping can leave slivers whose corners miss each other by millimetres;
    merging them lets shared edges cancel.  Rings are rebuilt without repeated points and
    dropped when fewer than three remain.
    """
    nv = xy.shape[0]
    size = 1
    while size < 4 * nv + 4:
        size *= 2
    mask = size - 1
    table = np.full((size, 4), -1, np.int64)  # [rep vertex, cell x, cell y, search]
    rep = np.empty(nv, np.int64)
    for r in range(off.shape[0] - 1):
        s = ring_search[r]
        for k in range(off[r], off[r + 1]):
            cx = int(np.floor(xy[k, 0] / eps))
            cy = int(np.floor(xy[k, 1] / eps))
            found = -1
            for ddx in range(-1, 2):
                for ddy in range(-1, 2):
                    h = _hash_slot(table, cx + ddx, cy + ddy, s, mask)
                    if table[h, 0] >= 0:
                        v = table[h, 0]
                        if abs(xy[v, 0] - xy[k, 0]) <= eps and abs(xy[v, 1] - xy[k, 1]) <= eps:
                            found = v
                    if found >= 0:
                        break
                if found >= 0:
                    break
            if found < 0:
                h = _hash_slot(table, cx, cy, s, mask)
                if table[h, 0] < 0:
                    table[h, 0] = k
                    table[h, 1] = cx
                    table[h, 2] = cy
                    table[h, 3] = s
                found = k
            rep[k] = found
    out = np.empty((nv, 2), np.float64)
    new_off = np.zeros(off.shape[0], np.int64)
    o = 0
    for r in range(off.shape[0] - 1):
        begin = o
        for k in range(off[r], off[r + 1] - 1):
            v = rep[k]
            if o == begin or out[o - 1, 0] != xy[v, 0] or out[o - 1, 1] != xy[v, 1]:
                out[o, 0] = xy[v, 0]
                out[o, 1] = xy[v, 1]
                o += 1
        while o - begin > 1 and out[o - 1, 0] == out[begin, 0] and out[o - 1, 1] == out[begin, 1]:
            o -= 1
        if o - begin < 3:
            o = begin
        else:
            out[o] = out[begin]
            o += 1
        new_off[r + 1] = o
    return out[:o], new_off


@njit(cache=True)
def _chain(tail: Any, head: Any, vxy: Any, n_vert: int) -> Any:  # pragma: no cover - njit
    """Successor of every boundary edge: at its head, the outgoing edge that turns most
    clockwise from the way back (keeps each ring around one connected interior)."""
    m = tail.shape[0]
    cnt = np.zeros(n_vert + 1, np.int64)
    for e in range(m):
        cnt[tail[e] + 1] += 1
    for v in range(n_vert):
        cnt[v + 1] += cnt[v]
    fill = cnt[:-1].copy()
    out_e = np.empty(m, np.int64)
    for e in range(m):
        out_e[fill[tail[e]]] = e
        fill[tail[e]] += 1
    nxt = np.full(m, -1, np.int64)
    taken = np.zeros(m, np.int64)
    for e in range(m):
        h = head[e]
        lo = cnt[h]
        hi = cnt[h + 1]
        if hi - lo == 1:
            nxt[e] = out_e[lo]
        elif hi - lo > 1:
            bx = vxy[tail[e], 0] - vxy[h, 0]
            by = vxy[tail[e], 1] - vxy[h, 1]
            back = np.arctan2(by, bx)
            best = -1
            best_turn = 1e9
            for q in range(lo, hi):
                o = out_e[q]
                ang = np.arctan2(vxy[head[o], 1] - vxy[h, 1], vxy[head[o], 0] - vxy[h, 0])
                turn = back - ang
                while turn <= 0.0:
                    turn += 2.0 * np.pi
                while turn > 2.0 * np.pi:
                    turn -= 2.0 * np.pi
                if turn < best_turn:
                    best_turn = turn
                    best = o
            nxt[e] = best
        if nxt[e] >= 0:
            taken[nxt[e]] += 1
    ok = True
    for e in range(m):
        if nxt[e] < 0 or taken[e] != 1:
            ok = False
    pinch = np.zeros(n_vert, np.bool_)
    for v in range(n_vert):
        pinch[v] = cnt[v + 1] - cnt[v] > 1
    return nxt, ok, pinch


@njit(cache=True)
def _cycles_of(nxt: Any) -> Any:  # pragma: no cover - njit
    m = nxt.shape[0]
    seen = np.zeros(m, np.bool_)
    seq = np.empty(m, np.int64)
    ptr = np.zeros(m + 1, np.int64)
    k = 0
    c = 0
    for e0 in range(m):
        if seen[e0]:
            continue
        e = e0
        while not seen[e]:
            seen[e] = True
            seq[k] = e
            k += 1
            e = nxt[e]
        c += 1
        ptr[c] = k
    return seq, ptr[: c + 1]


@njit(cache=True)
def _point_in_ring(px: float, py: float, xy: Any, a: int, b: int) -> bool:  # pragma: no cover
    inside = False
    for i in range(a, b - 1):
        x0 = xy[i, 0]
        y0 = xy[i, 1]
        x1 = xy[i + 1, 0]
        y1 = xy[i + 1, 1]
        if (y0 > py) != (y1 > py):
            if px < x0 + (py - y0) * (x1 - x0) / (y1 - y0):
                inside = not inside
    return inside


@njit(cache=True)
def _holes_to_shells(xy: Any, off: Any, sptr: Any, area: Any) -> Any:  # pragma: no cover
    """Shell ring of every hole ring: the smallest shell of the same search around it."""
    nr = off.shape[0] - 1
    owner = np.full(nr, -1, np.int64)
    for s in range(sptr.shape[0] - 1):
        n_shell = 0
        last = -1
        for r in range(sptr[s], sptr[s + 1]):
            if area[r] > 0.0:
                owner[r] = r
                n_shell += 1
                last = r
        for r in range(sptr[s], sptr[s + 1]):
            if area[r] >= 0.0:
                continue
            if n_shell == 1:
                owner[r] = last
                continue
            # a point just inside the hole: off the middle of its longest edge, to its right
            best = -1.0
            px = 0.0
            py = 0.0
            for i in range(off[r], off[r + 1] - 1):
                dx = xy[i + 1, 0] - xy[i, 0]
                dy = xy[i + 1, 1] - xy[i, 1]
                ln = np.hypot(dx, dy)
                if ln > best:
                    best = ln
                    step = min(1e-4, 0.01 * ln) / ln
                    px = 0.5 * (xy[i, 0] + xy[i + 1, 0]) + dy * step
                    py = 0.5 * (xy[i, 1] + xy[i + 1, 1]) - dx * step
            smallest = np.inf
            for q in range(sptr[s], sptr[s + 1]):
                if area[q] <= 0.0 or area[q] >= smallest:
                    continue
                if _point_in_ring(px, py, xy, off[q], off[q + 1]):
                    smallest = area[q]
                    owner[r] = q
    return owner


@njit(cache=True)
def _hash_slot(table_key: Any, k1: int, k2: int, k3: int, mask: int) -> int:  # pragma: no cover
    h = (k1 * 0x9E3779B97F4A7C15 + k2 * 0xC2B2AE3D27D4EB4F + k3 * 0x165667B19E3779F9) & mask
    while table_key[h, 0] != -1 and not (table_key[h, 1] == k1 and table_key[h, 2] == k2 and
                                        table_key[h, 3] == k3):
        h = (h + 1) & mask
    return h


@njit(cache=True)
def _boundary_edges(xb: Any, yb: Any, ring_search: Any, off: Any) -> Any:  # pragma: no cover
    """Vertex ids (exact coordinates, per search) and the directed edges left after
    opposite copies of every edge cancel (the boundary of the union of the pieces)."""
    nv = xb.shape[0]
    size = 1
    while size < 2 * nv + 2:
        size *= 2
    mask = size - 1
    vt = np.full((size, 4), -1, np.int64)  # [vertex id, x bits, y bits, search]
    vid = np.empty(nv, np.int64)
    v_first = np.empty(nv, np.int64)
    nvid = 0
    for r in range(off.shape[0] - 1):
        s = ring_search[r]
        for k in range(off[r], off[r + 1]):
            h = _hash_slot(vt, xb[k], yb[k], s, mask)
            if vt[h, 0] == -1:
                vt[h, 0] = nvid
                vt[h, 1] = xb[k]
                vt[h, 2] = yb[k]
                vt[h, 3] = s
                v_first[nvid] = k
                nvid += 1
            vid[k] = vt[h, 0]
    et = np.full((size, 4), -1, np.int64)  # [used, lo, hi, 0] and net count in a side array
    net = np.zeros(size, np.int64)
    slots = np.empty(nv, np.int64)
    ns = 0
    for r in range(off.shape[0] - 1):
        for k in range(off[r], off[r + 1] - 1):
            a = vid[k]
            b = vid[k + 1]
            if a == b:
                continue
            lo = min(a, b)
            hi = max(a, b)
            h = _hash_slot(et, lo, hi, 0, mask)
            if et[h, 0] == -1:
                et[h, 0] = 1
                et[h, 1] = lo
                et[h, 2] = hi
                et[h, 3] = 0
                slots[ns] = h
                ns += 1
            net[h] += 1 if a == lo else -1
    m = 0
    for i in range(ns):
        m += abs(net[slots[i]])
    tail = np.empty(m, np.int64)
    head = np.empty(m, np.int64)
    j = 0
    for i in range(ns):
        h = slots[i]
        c = net[h]
        for _ in range(abs(c)):
            if c > 0:
                tail[j] = et[h, 1]
                head[j] = et[h, 2]
            else:
                tail[j] = et[h, 2]
                head[j] = et[h, 1]
            j += 1
    return v_first[:nvid], vid, tail, head


def _assemble(rings: _Rings, n_search: int
              ) -> tuple[ObjArray, NDArray[np.bool_], NDArray[np.bool_]]:
    """Union of the (matched, interior-disjoint) pieces of each search, as MultiPolygons.

    Edges shared by two pieces cancel; the rest is chained into rings, shells
    (counter-clockwise) take the holes (clockwise) they contain.  Returns the polygons, a
    flag per search whose boundary did not chain consistently (to be redone by overlay) and
    a flag per search worth a validity check (rings touching at a point, several shells).
    """
    out = np.empty(n_search, dtype=object)
    out[:] = shapely.MultiPolygon()
    broken = np.zeros(n_search, dtype=bool)
    suspect = np.zeros(n_search, dtype=bool)
    if len(rings.search) == 0:
        return out, broken, suspect
    bits = np.ascontiguousarray(rings.xy).view(np.int64)
    v_first, vid, tail, head = _boundary_edges(bits[:, 0], bits[:, 1], rings.search, rings.off)
    vxy = rings.xy[v_first]
    v_s = rings.search[np.repeat(np.arange(len(rings.off) - 1), np.diff(rings.off))][v_first]
    if len(tail) == 0:
        return out, broken, suspect
    nxt, ok, pinch = _chain(tail, head, vxy, len(vxy))
    suspect[np.unique(v_s[pinch])] = True
    if not ok:
        bad_e = np.flatnonzero(nxt < 0)
        taken = np.bincount(nxt[nxt >= 0], minlength=len(nxt))
        bad_e = np.concatenate([bad_e, np.flatnonzero(taken != 1)])
        broken[np.unique(v_s[tail[bad_e]])] = True
        nxt = np.where(nxt < 0, np.arange(len(nxt)), nxt)
    seq, ptr = _cycles_of(nxt)
    # a ring through a corner twice (a hole touching its shell there) becomes two rings
    seq, ptr, _ = _simple_cycles(seq, ptr, tail, len(vxy))
    ring_v = tail[seq]
    r_len = np.diff(ptr)
    r_id = np.repeat(np.arange(len(r_len)), r_len)
    # closed ring coordinates
    close = np.zeros(len(ring_v) + len(r_len), np.int64)
    pos = np.arange(len(ring_v)) + r_id
    close[pos] = ring_v
    close[ptr[1:] + np.arange(len(r_len))] = ring_v[ptr[:-1]]
    cxy = vxy[close]
    c_off = ptr + np.arange(len(ptr))
    r_search = v_s[ring_v[ptr[:-1]]]
    x0 = cxy[:, 0] - vxy[:, 0].min()
    y0 = cxy[:, 1] - vxy[:, 1].min()
    cr = x0[:-1] * y0[1:] - x0[1:] * y0[:-1]
    cr[c_off[1:-1] - 1] = 0.0
    csum = np.concatenate([[0.0], np.cumsum(cr)])
    area = 0.5 * (csum[c_off[1:] - 1] - csum[c_off[:-1]])
    keep = (r_len >= 3) & (np.abs(area) > 1e-9)
    o = np.argsort(r_search, kind="stable")
    o = o[keep[o]]
    r_search, area, lens = r_search[o], area[o], r_len[o] + 1
    idx = _ranges(c_off[:-1][o], lens)
    cxy = cxy[idx]
    c_off = np.zeros(len(o) + 1, np.int64)
    np.cumsum(lens, out=c_off[1:])
    sptr = np.zeros(n_search + 1, np.int64)
    np.cumsum(np.bincount(r_search, minlength=n_search), out=sptr[1:])
    owner = _holes_to_shells(cxy, c_off, sptr, area)
    n_shell = np.bincount(r_search[area > 0], minlength=n_search)
    n_hole = np.bincount(r_search[area < 0], minlength=n_search)
    suspect |= (n_shell > 1) & (n_hole > 0)
    alive = owner >= 0
    broken[np.unique(r_search[area < 0][owner[area < 0] < 0])] = True
    # polygons: shell then its holes; multipolygons per search
    ro = np.lexsort((area < 0, owner, r_search))
    ro = ro[alive[ro]]
    shell_of = owner[ro]
    is_shell = area[ro] > 0
    rl = lens[ro]
    coords = cxy[_ranges(c_off[:-1][ro], rl)]
    ring_offsets = np.zeros(len(ro) + 1, np.int64)
    np.cumsum(rl, out=ring_offsets[1:])
    poly_start = np.flatnonzero(is_shell)
    poly_offsets = np.append(poly_start, len(ro)).astype(np.int64)
    p_search = r_search[shell_of[poly_start]] if len(poly_start) else np.zeros(0, np.int64)
    s_cnt = np.bincount(p_search, minlength=n_search)
    multi_offsets = np.zeros(n_search + 1, np.int64)
    np.cumsum(s_cnt, out=multi_offsets[1:])
    mp = shapely.from_ragged_array(shapely.GeometryType.MULTIPOLYGON, coords,
                                   (ring_offsets, poly_offsets, multi_offsets))
    return np.asarray(mp, dtype=object), broken, suspect


# --------------------------------------------------------------------------------------
# Service areas
# --------------------------------------------------------------------------------------


def _unit_lines(units: _Units, net: CompiledNetwork, u: IntArray) -> tuple[ObjArray, IntArray]:
    """Geometries of the primary streets of units ``u`` and the index of their unit."""
    cnt = np.diff(units.unit_edge_ptr)[u]
    e = units.unit_edge[_ranges(units.unit_edge_ptr[u], cnt)]
    return np.asarray(net.edge_geometry[e], dtype=object), np.repeat(np.arange(len(u)), cnt)


def _complete_store(units: _Units, net: CompiledNetwork, need: IntArray, tol: float,
                    quad_segs: int) -> _RingStore:
    """Whole-unit pieces (every street of the unit reached), computed once per tolerance."""
    store = units.complete.get((tol, quad_segs))
    if store is None:
        store = _RingStore(np.full(units.n, None, dtype=object), np.full(units.n, -1, np.int64),
                           np.zeros(units.n, np.int64))
        units.complete[(tol, quad_segs)] = store
    missing = np.unique(need[store.first[need] < 0])
    plain = missing[units.plain[missing]]
    other = missing[~units.plain[missing]]
    if len(plain):  # the block's ring with its interior beyond the tolerance as holes
        g = units.geom[plain]
        core = shapely.buffer(g, -tol, quad_segs=quad_segs)
        parts, pidx = shapely.get_parts(core, return_index=True)
        ok = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
        holes = shapely.get_exterior_ring(parts[ok])
        rings = np.concatenate([shapely.get_exterior_ring(g), holes])
        idx = np.concatenate([np.arange(len(plain)), pidx[ok]])
        is_hole = np.concatenate([np.zeros(len(plain), bool), np.ones(len(holes), bool)])
        o = np.lexsort((is_hole, idx))
        out = np.empty(len(plain), dtype=object)
        shapely.polygons(rings[o], indices=idx[o], out=out)
        store.add(plain, out)
    if len(other):
        lines, li = _unit_lines(units, net, other)
        mls = np.empty(len(other), dtype=object)
        if len(lines):
            shapely.multilinestrings(lines, indices=li, out=mls)
        mls[shapely.is_missing(mls)] = shapely.MultiLineString()
        buf = shapely.buffer(mls, tol, quad_segs=quad_segs)
        store.add(other, np.asarray(shapely.intersection(units.geom[other], buf), dtype=object))
    return store


def _as_multipolygons(geoms: ObjArray) -> ObjArray:
    """Valid MultiPolygons (empty where nothing is reached)."""
    out = np.empty(len(geoms), dtype=object)
    geoms = np.asarray(geoms, dtype=object).copy()
    geoms[shapely.is_missing(geoms)] = shapely.MultiPolygon()
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms[bad] = shapely.make_valid(geoms[bad])
    parts, idx = shapely.get_parts(geoms, return_index=True)
    sub, sidx = shapely.get_parts(parts, return_index=True)  # collections inside collections
    keep = (shapely.get_type_id(sub) == 3) & ~shapely.is_empty(sub)
    out[:] = shapely.MultiPolygon()
    if keep.any():
        shapely.multipolygons(sub[keep], indices=idx[sidx[keep]], out=out)
        out[shapely.is_missing(out)] = shapely.MultiPolygon()
    return out


def _areas(net: CompiledNetwork, src: _Sources, reach: FloatArray, tol: float, taper: bool,
           comp: tuple[ObjArray, IntArray] | None, quad_segs: int) -> ObjArray:
    """Service-area polygon of every search (the array-level core).

    Units (blocks) a search reaches wholly take their cached whole piece; the others are
    drawn by :func:`_site_pieces`; the pieces are joined by :func:`_assemble`.  Streets
    that cross others without a junction (bridges) are buffered and added by overlay.
    """
    n_search = src.n_search
    walk = reach if taper else reach + tol  # without taper the walk is drawn tol further
    faces = _faces_of(net)
    units = _units(faces, net, comp)
    sites = _sites(units, tol)
    srch = _search(net, src, walk)
    touched = _pieces(net, src, srch, walk)
    inner = _pieces(net, src, srch, np.where(walk >= tol, walk - tol, -1.0))
    nu = units.n
    # (search, unit) groups: the units around every street with some budget left on it
    cnt = np.diff(units.edge_unit_ptr)[touched.edge]
    r_unit = units.edge_unit[_ranges(units.edge_unit_ptr[touched.edge], cnt)]
    r_search = np.repeat(touched.search, cnt)
    gkeys = np.unique(r_search * nu + r_unit)
    g_search, g_unit = gkeys // nu, gkeys % nu
    # a unit whose every street keeps at least tol of budget is complete
    fe = inner.full
    cnt = np.diff(units.edge_unit_ptr)[inner.edge[fe]]
    f_key = np.repeat(inner.search[fe], cnt) * nu + units.edge_unit[
        _ranges(units.edge_unit_ptr[inner.edge[fe]], cnt)]
    full_cnt = np.bincount(np.searchsorted(gkeys, f_key), minlength=len(gkeys))
    complete = (full_cnt == units.n_prim[g_unit]) & (units.n_prim[g_unit] > 0)
    parts: list[_Rings] = []
    if complete.any():
        cg = np.flatnonzero(complete)
        store = _complete_store(units, net, g_unit[cg], tol, quad_segs)
        parts.append(store.rings(g_unit[cg], g_search[cg]))
    partly = np.flatnonzero(~complete & (np.diff(units.seg_ptr)[g_unit] > 0))
    if len(partly):
        parts.append(_site_rings(net, units, sites, src, srch, walk, tol, partly, g_search,
                                 g_unit, quad_segs))
    rings = _Rings.concat(parts)
    o = np.argsort(rings.search, kind="stable")
    lens = np.diff(rings.off)[o]
    off = np.zeros(len(o) + 1, np.int64)
    np.cumsum(lens, out=off[1:])
    rings = _Rings(rings.xy[_ranges(rings.off[:-1][o], lens)], off, rings.search[o],
                   rings.unit[o])
    res, broken, suspect = _assemble(_match_rings(rings, units, sites), n_search)
    check = np.flatnonzero(suspect & ~broken)
    bad = broken.copy()
    bad[check] = ~shapely.is_valid(res[check])
    if bad.any():  # rare: redo those searches by overlay union of their pieces
        log.debug("circles: %d service areas rebuilt by overlay union", int(bad.sum()))
        res[bad] = _overlay_union(rings, np.flatnonzero(bad))
        res = _as_multipolygons(res)
    extra = ~faces.planar[inner.edge]
    if extra.any():  # streets crossing others without a junction: buffered, by overlay
        e = np.flatnonzero(extra)
        lines = _lines(faces.poly, net, inner.edge[e], inner.lo[e], inner.hi[e])
        which = np.unique(inner.search[e])
        add = np.empty(len(which), dtype=object)
        shapely.multilinestrings(lines, indices=np.searchsorted(which, inner.search[e]),
                                 out=add)
        buf = shapely.buffer(add, tol, quad_segs=quad_segs)
        res[which] = _as_multipolygons(shapely.union(res[which], buf))
    return res


def _overlay_union(rings: _Rings, which: IntArray) -> ObjArray:
    """Robust (slow) union of the pieces of searches ``which`` by overlay.

    The pieces are interior-disjoint and every hole lies inside its own piece, so the union
    is the union of the outer rings minus the union of the holes.
    """
    out = np.empty(len(which), dtype=object)
    area = shapely.area(shapely.polygons(shapely.linearrings(
        rings.xy, indices=np.repeat(np.arange(len(rings.search)), np.diff(rings.off)))))
    x0 = rings.xy[:, 0] - rings.xy[:, 0].min() if len(rings.xy) else rings.xy[:, 0]
    y0 = rings.xy[:, 1] - rings.xy[:, 1].min() if len(rings.xy) else rings.xy[:, 1]
    cr = x0[:-1] * y0[1:] - x0[1:] * y0[:-1]
    cr[rings.off[1:-1] - 1] = 0.0
    csum = np.concatenate([[0.0], np.cumsum(cr)])
    signed = 0.5 * (csum[rings.off[1:] - 1] - csum[rings.off[:-1]])
    for i, s in enumerate(which):
        r = np.flatnonzero((rings.search == s) & (area > 0))
        lens = np.diff(rings.off)[r]
        polys = shapely.make_valid(shapely.polygons(shapely.linearrings(
            rings.xy[_ranges(rings.off[:-1][r], lens)], indices=np.repeat(np.arange(len(r)),
                                                                           lens))))
        unit = rings.unit[r]
        pieces = []
        for u in np.unique(unit):  # holes stay within their own unit
            mine = unit == u
            outer = shapely.union_all(polys[mine & (signed[r] > 0)])
            pieces.append(shapely.difference(outer, shapely.union_all(
                polys[mine & (signed[r] < 0)])))
        out[i] = shapely.union_all(np.asarray(pieces, dtype=object))
    return out


def _site_rings(net: CompiledNetwork, units: _Units, sites: _Sites, src: _Sources,
                search: tuple[IntArray, IntArray, FloatArray], reach: FloatArray, tol: float,
                groups: IntArray, g_search: IntArray, g_unit: IntArray, quad_segs: int
                ) -> _Rings:
    """Rings of the partly reached units (compiled, see :func:`_site_pieces`)."""
    ptr, nodes, dist = search
    gu = g_unit[groups]
    gs = g_search[groups]
    cnt = np.diff(units.seg_ptr)[gu]
    row_ptr = np.zeros(len(groups) + 1, np.int64)
    np.cumsum(cnt, out=row_ptr[1:])
    seg = _ranges(units.seg_ptr[gu], cnt)
    r_s = np.repeat(gs, cnt)
    e = units.seg_edge[seg]
    n_s = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    keys = n_s * net.n_nodes + nodes

    def lookup(node: IntArray) -> FloatArray:
        if len(keys) == 0:
            return np.full(len(node), np.inf)
        q = r_s * net.n_nodes + node
        pos = np.clip(np.searchsorted(keys, q), 0, len(keys) - 1)
        return np.where(keys[pos] == q, dist[pos], np.inf)

    du = lookup(net.edge_u[e])
    dv = lookup(net.edge_v[e])
    s_key = src.search * net.n_edges + src.edge
    so = np.argsort(s_key, kind="stable")
    s_key = s_key[so]
    rk = r_s * net.n_edges + e
    sa = np.searchsorted(s_key, rk, side="left")
    sb = np.searchsorted(s_key, rk, side="right")
    xy, off, owner, _who = _site_pieces(gu, reach[gs], row_ptr, du, dv, sa, sb, src.offset_m[so],
                                  src.access_m[so], units.seg_ptr, units.seg_xy,
                                  units.seg_edge, units.seg_m, units.seg_prev, units.seg_next,
                                  sites.sec_ptr, sites.sec_seg, sites.sec_kind, sites.rel_ptr,
                                  sites.rel, sites.ex_ptr, sites.ex_vptr, sites.ex_xy,
                                  units.tri_ptr,
                                  units.tri_xy, net.edge_length_m, tol, quad_segs)
    return _Rings(xy, off, gs[owner], gu[owner])


def _reach_array(reach_m: float | ArrayLike, n: int, name: str = "reach_m") -> FloatArray:
    r = np.asarray(reach_m, dtype=np.float64)
    if r.ndim == 0:
        r = np.full(n, float(r))
    if r.shape != (n,):
        raise InputError(f"{name} has {r.size} values for {n} facilities; give one or a scalar")
    if not np.isfinite(r).all() or (r < 0).any():
        raise InputError(f"{name} must be finite and >= 0")
    return r


def reached_lines(net: CompiledNetwork, anchors: Anchors, reach_m: float | ArrayLike
                  ) -> ObjArray:
    """The street lines each facility reaches within ``reach_m`` (before any buffering).

    Every reached edge is included, the partial ones at the frontier for exactly the part
    the remaining budget allows, and the facility's own edge from its offset in both
    directions; the facility's access leg is spent first.

    Parameters
    ----------
    net
        Compiled network.
    anchors
        Snapped facilities (:func:`geosvc.access.snap_points`).
    reach_m
        Walking distance (metres), a scalar or one per facility.

    Returns
    -------
    numpy.ndarray
        One MultiLineString per facility (empty when not snapped or out of reach).
    """
    n = len(anchors)
    reach = _reach_array(reach_m, n)
    src = _sources(anchors, None, n)
    lim = np.where(reach - np.zeros(n) >= 0, reach, -1.0)
    pcs = _pieces(net, src, _search(net, src, reach), lim)
    poly = _faces_of(net).poly if net in _FACES else _polylines(net)
    lines = _lines(poly, net, pcs.edge, pcs.lo, pcs.hi)
    out = np.empty(n, dtype=object)
    if len(lines):
        shapely.multilinestrings(lines, indices=pcs.search, out=out)
    out[shapely.is_missing(out)] = shapely.MultiLineString()
    return out


def service_areas(
    net: CompiledNetwork,
    facility_anchors: Anchors,
    reach_m: float | ArrayLike,
    *,
    tolerance_m: float = 30.0,
    compounds: Any = None,
    taper: bool = True,
    quad_segs: int = 4,
) -> ObjArray:
    """Polygon of the area each facility reaches on foot within ``reach_m``.

    Parameters
    ----------
    net
        Compiled network.
    facility_anchors
        Snapped facilities (:func:`geosvc.access.snap_points`).
    reach_m
        Walking distance (metres): a scalar or one value per facility.
    tolerance_m
        Off-network leg drawn around the reached streets (the profile's
        ``access_tolerance_m``).
    compounds
        Gated-compound polygons (GeoDataFrame with ``compound_id``, or an array of
        polygons whose ids are their positions).  Compounds with internal paths in the
        network act as walls: their paths buffer only inside, public streets only outside.
    taper
        Draw the tolerance as ``min(tolerance_m, budget left)`` (exact agreement with the
        edge-based verdicts: the circle ends where the walk ends).  ``False`` buffers the
        lines reached at ``reach_m`` by the full tolerance.
    quad_segs
        Segments per quarter circle of the rounded buffer ends.

    Returns
    -------
    numpy.ndarray
        One valid MultiPolygon per facility (empty when not snapped or out of reach).

    Examples
    --------
    >>> from geosvc.network import from_arrays
    >>> from geosvc.access import snap_points
    >>> net = from_arrays([[0.0, 0.0], [400.0, 0.0]], [0], [1], crs="EPSG:32650")
    >>> area = service_areas(net, snap_points(net, [[200.0, 0.0]]), 100.0, tolerance_m=10.0)[0]
    >>> area.geom_type, round(area.bounds[2] - area.bounds[0], 6)
    ('MultiPolygon', 200.0)
    """
    tol = float(tolerance_m)
    if not (0.0 < tol <= _FRAME_M / 2):
        raise InputError(f"tolerance_m must be in (0, {_FRAME_M / 2:g}] metres, got {tolerance_m}")
    if int(quad_segs) < 1:
        raise InputError(f"quad_segs must be >= 1, got {quad_segs}")
    n = len(facility_anchors)
    reach = _reach_array(reach_m, n)
    src = _sources(facility_anchors, None, n)
    return _areas(net, src, reach, tol, taper, _compound_input(compounds, net), int(quad_segs))


# --------------------------------------------------------------------------------------
# Per facility and per category (GeoDataFrames), output, agreement with the verdicts
# --------------------------------------------------------------------------------------


def _facility_compounds(fac: gpd.GeoDataFrame, comp: tuple[ObjArray, IntArray] | None
                        ) -> IntArray:
    """Compound of each facility: its ``compound_id`` column, else the polygon it is in."""
    if "compound_id" in fac.columns:
        return pd.to_numeric(fac["compound_id"], errors="coerce").fillna(-1).astype(
            np.int64).to_numpy()
    if comp is None:
        return np.full(len(fac), -1, np.int64)
    return points_in_compounds(fac.geometry.to_numpy(), comp[0], comp[1])


def service_circles(
    net: CompiledNetwork,
    facilities: gpd.GeoDataFrame,
    profile: Profile | str | None = None,
    *,
    thresholds_min: Sequence[float] = (5.0, 10.0, 15.0),
    categories: Sequence[str] | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    max_snap_m: float | None = None,
    taper: bool = True,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Service circles of every facility and every category at each threshold.

    Each category walks at its own speed (``threshold_min x 60 x speed_m_s`` metres) and is
    drawn with the profile's ``access_tolerance_m``; a category's circle is the union of its
    facilities' circles (computed directly as one multi-source area, not by overlaying).

    Parameters
    ----------
    net
        Compiled street network.
    facilities
        Points with ``facility_id`` and ``category`` (any CRS; reprojected to the network's),
        optionally ``compound_id``.
    profile
        Standards profile or its name (default ``cn-community-2023``).
    thresholds_min
        Walking times (minutes).
    categories
        Categories to draw (default: those of the profile that have facilities).
    compounds
        Gated-compound polygons with ``compound_id`` (walls, and the compound of facilities
        without a ``compound_id`` column).
    max_snap_m
        Longest facility access leg (default: the profile's ``max_snap_m``, as the verdicts).
    taper
        See :func:`service_areas`.

    Returns
    -------
    per_facility, per_category
        ``per_facility``: ``facility_id``, ``category``, ``threshold_min``, ``reach_m``,
        ``area_m2``, geometry (one MultiPolygon per facility and threshold, empty for a
        facility off the network).  ``per_category``: ``category``, ``threshold_min``,
        ``reach_m``, ``n_facilities``, ``area_m2``, geometry.  Both in the network CRS.
    """
    prof = profile if isinstance(profile, Profile) else load_profile(profile or
                                                                     "cn-community-2023")
    for col in ("facility_id", "category"):
        if col not in facilities.columns:
            raise InputError(f"facilities need a {col!r} column; columns are "
                             f"{list(facilities.columns)}")
    if facilities.crs is None:
        raise InputError("facilities have no CRS; set it (e.g. facilities.set_crs('EPSG:4326'))")
    thr = np.asarray([float(t) for t in thresholds_min], dtype=np.float64)
    if len(thr) == 0 or not np.isfinite(thr).all() or (thr <= 0).any():
        raise InputError(f"thresholds_min must be positive minutes, got {list(thresholds_min)}")
    fac = facilities.to_crs(net.crs)
    cat_col = fac["category"].astype(str).to_numpy()
    cats = list(categories) if categories is not None else [
        c for c in prof.category_names if (cat_col == c).any()]
    specs = [prof.category(c) for c in cats]  # unknown names raise with the valid list
    keep = np.isin(cat_col, cats)
    fac = fac[keep]
    cat_col = cat_col[keep]
    comp = _compound_input(compounds, net)
    anchors = snap_points(net, fac.geometry.to_numpy(),
                          max_snap_m=prof.max_snap_m if max_snap_m is None else float(max_snap_m),
                          compound=_facility_compounds(fac, comp))
    tol = prof.access_tolerance_m
    speed = np.zeros(len(fac))
    for c in specs:
        speed[cat_col == c.name] = c.speed_m_s
    n_f, n_t = len(fac), len(thr)
    # per facility: one search per (facility, threshold)
    reach_f = np.round(np.repeat(speed, n_t) * np.tile(thr, n_f) * 60.0, 9)
    src = _sources(_repeat_anchors(anchors, n_t), np.arange(n_f * n_t), n_f * n_t)
    geoms_f = _areas(net, src, reach_f, tol, taper, comp, 4) if n_f else np.empty(0, object)
    per_facility = gpd.GeoDataFrame({
        "facility_id": np.repeat(fac["facility_id"].astype(str).to_numpy(), n_t),
        "category": np.repeat(cat_col, n_t),
        "threshold_min": np.tile(thr, n_f),
        "reach_m": reach_f,
        "area_m2": shapely.area(geoms_f) if n_f else np.zeros(0),
    }, geometry=gpd.GeoSeries(geoms_f, crs=net.crs), crs=net.crs)
    # per category: one multi-source search per (category, threshold)
    n_c = len(specs)
    pos = {c: i for i, c in enumerate(cats)}
    cat_of_fac = np.array([pos[c] for c in cat_col], dtype=np.int64)
    group = (np.repeat(cat_of_fac, n_t) * n_t + np.tile(np.arange(n_t), n_f)).astype(np.int64)
    reach_c = np.round(np.array([[c.speed_m_s * t * 60.0 for t in thr] for c in specs]).ravel(),
                       9) if n_c else np.zeros(0)
    src_c = _sources(_repeat_anchors(anchors, n_t), group, n_c * n_t)
    geoms_c = _areas(net, src_c, reach_c, tol, taper, comp, 4) if n_c else np.empty(0, object)
    per_category = gpd.GeoDataFrame({
        "category": np.repeat(np.asarray(cats, dtype=object), n_t),
        "threshold_min": np.tile(thr, n_c),
        "reach_m": reach_c,
        "n_facilities": np.repeat([int((cat_col == c).sum()) for c in cats], n_t),
        "area_m2": shapely.area(geoms_c) if n_c else np.zeros(0),
    }, geometry=gpd.GeoSeries(geoms_c, crs=net.crs), crs=net.crs)
    return per_facility, per_category


def _repeat_anchors(a: Anchors, k: int) -> Anchors:
    """Every anchor ``k`` times in a row (one copy per threshold)."""
    idx = np.repeat(np.arange(len(a)), k)
    return a.subset(idx)


def write_service_circles(per_facility: gpd.GeoDataFrame, per_category: gpd.GeoDataFrame,
                          path: str | os.PathLike[str]) -> Path:
    """Write the circles to a GeoPackage: layers ``facility_circles`` and ``category_circles``.

    The file is written next to ``path`` under a temporary name and moved into place, so
    readers never see a half-written file.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".tmp.gpkg", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        per_facility.to_file(tmp, layer="facility_circles", driver="GPKG")
        per_category.to_file(tmp, layer="category_circles", driver="GPKG", mode="a")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def circle_agreement(
    households: gpd.GeoDataFrame,
    per_category: gpd.GeoDataFrame,
    category: str,
    threshold_min: float = 15.0,
    *,
    tolerance_m: float | None = None,
) -> dict[str, Any]:
    """How well "inside the category's circle" matches "status covered".

    Only households whose ``status_<category>`` is ``covered`` or ``uncovered`` count.  For
    a category with required sub-types (convenience: every basic type within the threshold)
    the circle is the union of all its facilities, so the verdict compared is "some facility
    of the category within the threshold" (``time_<category>_any_min``), over the households
    on the network.

    Parameters
    ----------
    households
        The households frame of :func:`geosvc.coverage.analyse_coverage`.
    per_category
        The category circles of :func:`service_circles`.
    category, threshold_min
        Which circle (the threshold the verdicts used).
    tolerance_m
        When given (and ``access_m`` is a column), also count the covered households
        outside the circle whose access leg is longer than the tolerance drawn.

    Returns
    -------
    dict
        ``verdict`` (the column compared), ``n`` (households compared), ``agree``, ``share``
        (agree / n), ``covered_inside``,
        ``covered_outside``, ``uncovered_inside``, ``uncovered_outside`` and, with
        ``tolerance_m``, ``covered_outside_beyond_tolerance``.
    """
    col = f"status_{category}"
    if col not in households.columns:
        raise InputError(f"households have no {col!r} column; run analyse_coverage with "
                         f"category {category!r}")
    rows = per_category[(per_category["category"] == category) &
                        np.isclose(per_category["threshold_min"].astype(float), threshold_min)]
    if len(rows) != 1:
        raise InputError(f"per_category has {len(rows)} circles for {category!r} at "
                         f"{threshold_min:g} min; expected one")
    poly = rows.geometry.iloc[0]
    hh = households if households.crs is None or per_category.crs is None or \
        households.crs.equals(per_category.crs) else households.to_crs(per_category.crs)
    status = hh[col].to_numpy()
    any_col = f"time_{category}_any_min"
    if any_col in hh.columns:
        # a category with required sub-types: its status needs every type, the circle is
        # the union of all its facilities; compare with "any facility within the threshold"
        t_any = hh[any_col].to_numpy(dtype=float)
        use = ~np.isin(status, ["off_network", "invalid"]) & ~np.isnan(t_any)
        covered_all = t_any <= float(threshold_min) + 1e-9
        verdict = f"{any_col} <= {threshold_min:g}"
    else:
        use = np.isin(status, ["covered", "uncovered"])
        covered_all = status == "covered"
        verdict = col
    geoms = hh.geometry.to_numpy()[use]
    pts = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.centroid(geoms))
    shapely.prepare(poly)
    inside = shapely.intersects(poly, pts)
    covered = covered_all[use]
    out: dict[str, Any] = {
        "category": category,
        "threshold_min": float(threshold_min),
        "verdict": verdict,
        "n": int(use.sum()),
        "covered_inside": int((covered & inside).sum()),
        "covered_outside": int((covered & ~inside).sum()),
        "uncovered_inside": int((~covered & inside).sum()),
        "uncovered_outside": int((~covered & ~inside).sum()),
    }
    out["agree"] = out["covered_inside"] + out["uncovered_outside"]
    out["share"] = out["agree"] / out["n"] if out["n"] else float("nan")
    if tolerance_m is not None and "access_m" in hh.columns:
        acc = hh["access_m"].to_numpy(dtype=float)[use]
        out["covered_outside_beyond_tolerance"] = int(
            (covered & ~inside & (acc > float(tolerance_m))).sum())
    return out
