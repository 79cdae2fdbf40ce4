"""Faces of a plane street network by tracing its half-edges (compiled).

When no two edges cross (every meeting of streets is a node), the faces follow from the
network itself: around every node the half-edges leaving it are sorted by angle, and a face
is walked by always turning to the next half-edge clockwise of the one we came back on.
Each half-edge belongs to exactly one walk, so which faces an edge touches comes for free.
Walks with positive area are faces; a walk with negative area is the outside of a connected
piece of network, a hole in the face that contains it (or in nothing).  A network whose
edges cross (bridges, tunnels) returns ``None``: it is noded with GEOS instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from numba import njit
from numpy.typing import NDArray

from geosvc.circles._lines import polylines
from geosvc.network import CompiledNetwork, build_segment_index

IntArray = NDArray[np.int64]
ObjArray = NDArray[np.object_]

_AREA_EPS_M2 = 1e-6  # walks with less area than this are slivers between duplicate edges


def planar_faces(net: CompiledNetwork) -> tuple[ObjArray, IntArray, IntArray] | None:
    """``(faces, edge, face)``: face polygons and (edge, face) incidences (with repeats), or
    ``None``.

    ``None`` when two edges cross without a node (the network is not plane).
    """
    if net.n_edges == 0 or _has_crossings(net):
        return None
    poly = polylines(net)
    h_origin, h_angle = _half_edges(poly.xy, poly.ptr, net.edge_u, net.edge_v)
    order = np.lexsort((h_angle, h_origin))
    nxt = _next_half_edges(order, h_origin, net.n_nodes)
    cyc_of, cyc_seq, cyc_ptr = _trace(nxt)
    ring_xy, ring_ptr = _ring_coords(cyc_seq, cyc_ptr, poly.xy, poly.ptr)
    area = _signed_areas(ring_xy, ring_ptr)
    shell = area > _AREA_EPS_M2
    shell_ids = np.flatnonzero(shell)
    rings = np.asarray(shapely.linearrings(ring_xy, indices=np.repeat(
        np.arange(len(ring_ptr) - 1), np.diff(ring_ptr))), dtype=object)
    shells = np.asarray(shapely.polygons(rings[shell_ids]), dtype=object)
    # the face each other walk (outside of a piece of network, or a tree) lies in: the
    # smallest shell containing its first vertex
    face_of_cycle = np.full(len(area), -1, np.int64)
    face_of_cycle[shell_ids] = np.arange(len(shell_ids))
    outer_ids = np.flatnonzero(~shell)
    if outer_ids.size and shell_ids.size:
        probe = shapely.points(ring_xy[ring_ptr[outer_ids]])
        hit_o, hit_s = shapely.STRtree(shells).query(probe)  # boxes first: few candidates
        cand = np.unique(hit_s)
        shells[cand] = _valid(shells[cand])
        inside = shapely.within(probe[hit_o], shells[hit_s])
        hit_o, hit_s = hit_o[inside], hit_s[inside]
        if hit_o.size:
            best = np.lexsort((shapely.area(shells[hit_s]), hit_o))
            hit_o, hit_s = hit_o[best], hit_s[best]
            first = np.unique(hit_o, return_index=True)[1]
            face_of_cycle[outer_ids[hit_o[first]]] = hit_s[first]
    # face polygons: shell first, then the outer walks it contains as holes
    hole_cyc = outer_ids[(face_of_cycle[outer_ids] >= 0) & (area[outer_ids] < -_AREA_EPS_M2)]
    ring_face = np.concatenate([np.arange(len(shell_ids)), face_of_cycle[hole_cyc]])
    ring_pick = np.concatenate([shell_ids, hole_cyc])
    by_face = np.argsort(ring_face, kind="stable")
    faces = _valid(np.asarray(shapely.polygons(rings[ring_pick[by_face]],
                                               indices=ring_face[by_face]), dtype=object))
    # incidences: every half-edge's walk gives a face of its edge (a dead end gives it twice;
    # the caller removes repeats)
    h_face = face_of_cycle[cyc_of]
    ok = np.flatnonzero(h_face >= 0)
    return faces, ok // 2, h_face[ok]


def _valid(polys: ObjArray) -> ObjArray:
    """Walk polygons made valid: a dead end walked out and back is a spike of the ring, a
    face touching itself at a node a self-touch; drop the spikes, split at the touches (no
    new vertices, so neighbouring faces still share their edges exactly)."""
    bad = ~shapely.is_valid(polys)
    if bad.any():
        polys[bad] = shapely.make_valid(polys[bad], method="structure", keep_collapsed=False)
    return polys


def _has_crossings(net: CompiledNetwork) -> bool:
    idx = build_segment_index(net.edge_geometry, np.zeros(net.n_edges, np.int64))
    return bool(_any_crossing(idx.x0, idx.y0, idx.x1, idx.y1, idx.cell_start, idx.cell_segs))


@njit(cache=True)
def _orient(ax: float, ay: float, bx: float, by: float, cx: float, cy: float
            ) -> float:  # pragma: no cover - njit
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


@njit(cache=True)
def _any_crossing(x0: Any, y0: Any, x1: Any, y1: Any, cell_start: Any, cell_segs: Any
                  ) -> bool:  # pragma: no cover - njit
    """Whether two segments in a common grid cell cross at a point inside both."""
    for c in range(cell_start.shape[0] - 1):
        for i in range(cell_start[c], cell_start[c + 1]):
            a = cell_segs[i]
            for j in range(i + 1, cell_start[c + 1]):
                b = cell_segs[j]
                d1 = _orient(x0[a], y0[a], x1[a], y1[a], x0[b], y0[b])
                d2 = _orient(x0[a], y0[a], x1[a], y1[a], x1[b], y1[b])
                d3 = _orient(x0[b], y0[b], x1[b], y1[b], x0[a], y0[a])
                d4 = _orient(x0[b], y0[b], x1[b], y1[b], x1[a], y1[a])
                if d1 * d2 < 0.0 and d3 * d4 < 0.0:
                    return True
    return False


@njit(cache=True)
def _half_edges(xy: Any, ptr: Any, edge_u: Any, edge_v: Any) -> Any:  # pragma: no cover
    """Origin node and leaving angle of half-edges ``2e`` (u -> v) and ``2e + 1`` (v -> u)."""
    n = edge_u.shape[0]
    origin = np.empty(2 * n, np.int64)
    angle = np.empty(2 * n, np.float64)
    for e in range(n):
        p0, p1 = ptr[e], ptr[e + 1] - 1
        k = p0 + 1  # the first vertex away from the start (skip repeated points)
        while k < p1 and xy[k, 0] == xy[p0, 0] and xy[k, 1] == xy[p0, 1]:
            k += 1
        origin[2 * e] = edge_u[e]
        angle[2 * e] = np.arctan2(xy[k, 1] - xy[p0, 1], xy[k, 0] - xy[p0, 0])
        k = p1 - 1
        while k > p0 and xy[k, 0] == xy[p1, 0] and xy[k, 1] == xy[p1, 1]:
            k -= 1
        origin[2 * e + 1] = edge_v[e]
        angle[2 * e + 1] = np.arctan2(xy[k, 1] - xy[p1, 1], xy[k, 0] - xy[p1, 0])
    return origin, angle


@njit(cache=True)
def _next_half_edges(order: Any, origin: Any, n_nodes: int) -> Any:  # pragma: no cover
    """``next[h]``: at h's head, the half-edge just clockwise of h's twin (face on the left)."""
    m = order.shape[0]
    pos = np.empty(m, np.int64)
    start = np.full(n_nodes + 1, m, np.int64)
    for i in range(m - 1, -1, -1):
        pos[order[i]] = i
        start[origin[order[i]]] = i
    for v in range(n_nodes - 1, -1, -1):
        if start[v] == m or start[v] > start[v + 1]:
            start[v] = start[v + 1]
    nxt = np.empty(m, np.int64)
    for h in range(m):
        twin = h ^ 1
        v = origin[twin]
        i = pos[twin]
        j = i - 1 if i > start[v] else start[v + 1] - 1
        nxt[h] = order[j]
    return nxt


@njit(cache=True)
def _trace(nxt: Any) -> Any:  # pragma: no cover - njit
    """Walk every cycle of ``nxt``: cycle of each half-edge, half-edges in walk order."""
    m = nxt.shape[0]
    cyc_of = np.full(m, -1, np.int64)
    seq = np.empty(m, np.int64)
    ptr = np.zeros(m + 1, np.int64)
    k = 0
    c = 0
    for h0 in range(m):
        if cyc_of[h0] >= 0:
            continue
        h = h0
        while cyc_of[h] < 0:
            cyc_of[h] = c
            seq[k] = h
            k += 1
            h = nxt[h]
        c += 1
        ptr[c] = k
    return cyc_of, seq, ptr[: c + 1]


@njit(cache=True)
def _ring_coords(seq: Any, cptr: Any, xy: Any, ptr: Any) -> Any:  # pragma: no cover - njit
    """Closed coordinate rings of the walks (each half-edge's polyline in its direction)."""
    n_c = cptr.shape[0] - 1
    rptr = np.zeros(n_c + 1, np.int64)
    for c in range(n_c):
        cnt = 1
        for i in range(cptr[c], cptr[c + 1]):
            e = seq[i] >> 1
            cnt += ptr[e + 1] - ptr[e] - 1
        rptr[c + 1] = rptr[c] + max(cnt, 4)
    out = np.empty((rptr[n_c], 2), np.float64)
    for c in range(n_c):
        o = rptr[c]
        for i in range(cptr[c], cptr[c + 1]):
            h = seq[i]
            e = h >> 1
            if h & 1 == 0:
                for j in range(ptr[e], ptr[e + 1] - 1):
                    out[o, 0] = xy[j, 0]
                    out[o, 1] = xy[j, 1]
                    o += 1
            else:
                for j in range(ptr[e + 1] - 1, ptr[e], -1):
                    out[o, 0] = xy[j, 0]
                    out[o, 1] = xy[j, 1]
                    o += 1
        while o < rptr[c + 1]:  # close the ring (and pad walks too short to be a ring)
            out[o, 0] = out[rptr[c], 0]
            out[o, 1] = out[rptr[c], 1]
            o += 1
    return out, rptr


@njit(cache=True)
def _signed_areas(xy: Any, rptr: Any) -> Any:  # pragma: no cover - njit
    n = rptr.shape[0] - 1
    out = np.zeros(n, np.float64)
    for c in range(n):
        s = 0.0
        x0, y0 = xy[rptr[c], 0], xy[rptr[c], 1]
        for i in range(rptr[c], rptr[c + 1] - 1):
            s += (xy[i, 0] - x0) * (xy[i + 1, 1] - y0) - (xy[i + 1, 0] - x0) * (xy[i, 1] - y0)
        out[c] = 0.5 * s
    return out
