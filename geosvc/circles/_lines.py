"""Edge geometries as flat coordinate arrays, and the parts of edges a search reaches."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numba import njit
from numpy.typing import NDArray

from geosvc._errors import InputError
from geosvc.network import CompiledNetwork

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
ObjArray = NDArray[np.object_]


@dataclass(frozen=True)
class Polylines:
    """Every edge's polyline in one array (ends snapped onto the node coordinates)."""

    xy: FloatArray  # (n_vertices, 2)
    ptr: IntArray  # edge -> its vertices xy[ptr[e]:ptr[e + 1]]
    cum_m: FloatArray  # length along the edge at each vertex
    length_m: FloatArray  # geometric length of each edge


_CACHE: weakref.WeakKeyDictionary[CompiledNetwork, Polylines] = weakref.WeakKeyDictionary()


def polylines(net: CompiledNetwork) -> Polylines:
    """The network's edge polylines (computed once per network)."""
    cached = _CACHE.get(net)
    if cached is not None:
        return cached
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
    out = Polylines(xy, ptr, cum, cum[ptr[1:] - 1])
    _CACHE[net] = out
    return out


def edge_parts(net: CompiledNetwork, edge: IntArray, lo_m: FloatArray, hi_m: FloatArray
               ) -> ObjArray:
    """LineStrings of the edge parts ``[lo_m, hi_m]`` (metres along ``edge_length_m``).

    A zero-length part is a two-point LineString at one spot (it buffers to a disc).
    """
    if len(edge) == 0:
        return np.empty(0, dtype=object)
    poly = polylines(net)
    length = net.edge_length_m[edge]
    fa = np.clip(lo_m / length, 0.0, 1.0)
    fb = np.clip(hi_m / length, 0.0, 1.0)
    xy, off = _substrings(poly.xy, poly.ptr, poly.cum_m, poly.length_m, edge, fa, fb)
    idx = np.repeat(np.arange(len(edge)), np.diff(off))
    return np.asarray(shapely.linestrings(xy, indices=idx), dtype=object)


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
        _point_at(xy, cum, p0, p1, a, out, o)
        o += 1
        for j in range(p0 + 1, p1 - 1):
            if cum[j] > a and cum[j] < b:
                out[o, 0] = xy[j, 0]
                out[o, 1] = xy[j, 1]
                o += 1
        _point_at(xy, cum, p0, p1, b, out, o)
    return out, off


@njit(cache=True)
def _point_at(xy: Any, cum: Any, p0: int, p1: int, d: float, out: Any, o: int
              ) -> None:  # pragma: no cover - njit
    """Write the point at distance ``d`` along the polyline ``p0:p1`` into ``out[o]``."""
    if d <= 0.0:
        out[o, 0] = xy[p0, 0]
        out[o, 1] = xy[p0, 1]
        return
    for j in range(p0, p1 - 1):
        if cum[j + 1] >= d:
            seg = cum[j + 1] - cum[j]
            t = (d - cum[j]) / seg if seg > 0.0 else 0.0
            out[o, 0] = xy[j, 0] + t * (xy[j + 1, 0] - xy[j, 0])
            out[o, 1] = xy[j, 1] + t * (xy[j + 1, 1] - xy[j, 1])
            return
    out[o, 0] = xy[p1 - 1, 0]
    out[o, 1] = xy[p1 - 1, 1]
