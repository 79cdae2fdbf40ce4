"""Polygons from reached edges: whole blocks where every street is reached, buffered lines
at the frontier, one GEOS buffer per search (run on all cores)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from geosvc import settings
from geosvc._errors import InputError
from geosvc.access import Anchors
from geosvc.circles._blocks import (
    Blocks,
    blocks,
    compound_polygons,
    filled_faces,
    touches_filled,
    walls_with_paths,
)
from geosvc.circles._lines import edge_parts
from geosvc.circles._reach import Sources, reach_array, reached
from geosvc.network import CompiledNetwork

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
ObjArray = NDArray[np.object_]

_CHUNKS_PER_WORKER = 4
_PARTS_ALONE = 150  # collections with more parts are buffered part by part, then joined


def n_workers() -> int:
    """Threads for the GEOS work: :func:`geosvc.settings.threads`."""
    return settings.threads()


def check_tolerance(tolerance_m: float, quad_segs: int) -> tuple[float, int]:
    tol = float(tolerance_m)
    if not (np.isfinite(tol) and tol > 0):
        raise InputError(f"tolerance_m must be a positive distance in metres, got {tolerance_m}")
    if int(quad_segs) < 1:
        raise InputError(f"quad_segs must be >= 1, got {quad_segs}")
    return tol, int(quad_segs)


def areas(net: CompiledNetwork, src: Sources, reach_m: FloatArray, *, tolerance_m: float,
          taper: bool = True, fill_blocks: bool = True, quad_segs: int = 3,
          walls: ObjArray | None = None) -> ObjArray:
    """One MultiPolygon per search (empty when nothing is reached).

    With ``taper`` the lines are drawn at ``reach - tol`` and buffered by
    ``tol = min(tolerance_m, reach)``: the polygon ends where the walk ends (a point
    ``a <= tol`` off a street is inside when that street point is reached with ``a`` to
    spare, up to the rounding of the buffer).  Without it the lines reached at ``reach`` are
    buffered by the full tolerance.  With ``walls`` (gated compounds that have internal
    paths), public streets are drawn only outside the walls and internal paths only inside.
    """
    n = src.n_search
    tol = np.minimum(tolerance_m, reach_m) if taper else np.full(n, float(tolerance_m))
    line_reach = np.maximum(reach_m - tol, 0.0) if taper else reach_m
    r = reached(net, src, line_reach)
    has_walls = walls is not None and len(walls) > 0
    bl = blocks(net, walls if has_walls else None) if (fill_blocks or has_walls) else None
    f_search, f_face = np.empty(0, np.int64), np.empty(0, np.int64)
    if bl is not None and fill_blocks and len(r.edge):
        f_search, f_face = filled_faces(bl, r.search, r.edge, r.full)
    inner_edge = (net.edge_compound[r.edge] >= 0) if has_walls else np.zeros(len(r.edge), bool)
    inner_face = bl.face_in_wall[f_face] if bl is not None else np.zeros(len(f_face), bool)
    # a line is left out when a whole block of its own kind (public / inside a wall) is
    # drawn next to it: that block's buffer covers it
    keep = np.ones(len(r.edge), bool)
    for kind in (False, True):
        sel_f, sel_e = inner_face == kind, inner_edge == kind
        if bl is not None and sel_f.any() and sel_e.any():
            keys = np.sort(f_search[sel_f] * bl.n_faces + f_face[sel_f])
            keep[sel_e] = ~touches_filled(bl, r.search[sel_e], r.edge[sel_e], keys)
    lines = edge_parts(net, r.edge[keep], r.lo_m[keep], r.hi_m[keep])
    l_search, inner_line = r.search[keep], inner_edge[keep]
    # public streets and whole public blocks: one buffer per search
    b_search, b_geom = np.empty(0, np.int64), np.empty(0, object)
    if bl is not None and (~inner_face).any():
        b_search, b_geom = _union_per_search(f_search[~inner_face], bl.faces[f_face[~inner_face]])
    public = _collect(np.concatenate([lines[~inner_line], b_geom]),
                      np.concatenate([l_search[~inner_line], b_search]), n)
    out = _buffer(public, tol, quad_segs)
    if has_walls and bl is not None:
        # inside the walls: one buffer per (search, compound), clipped to that compound
        n_g = len(bl.walls) + 1 if bl.walls is not None else 1
        g_line = bl.edge_wall[r.edge[keep][inner_line]] + 1
        g_face = bl.face_wall[f_face[inner_face]] + 1
        fk, fg = _union_per_search(f_search[inner_face] * n_g + g_face,
                                   bl.faces[f_face[inner_face]])
        keys, groups = _group(np.concatenate([lines[inner_line], fg]),
                              np.concatenate([l_search[inner_line] * n_g + g_line, fk]))
        out = _clip_to_walls(out, keys // n_g, keys % n_g - 1, groups, bl, tol, quad_segs)
    return _to_multipolygons(out)


def _clip_to_walls(public: ObjArray, g_search: IntArray, g_wall: IntArray, groups: ObjArray,
                   bl: Blocks, tol: FloatArray, quad_segs: int) -> ObjArray:
    """The public layer outside the walls, joined with each compound's own buffer inside it.

    Buffering the internal paths compound by compound (small inputs) instead of all of a
    search's at once is several times cheaper in GEOS.
    """
    touch = shapely.intersects(bl.walls_union, public)
    out = public.copy()
    out[touch] = _threaded(shapely.difference, public[touch], bl.walls_union)
    if len(groups) == 0:
        return out
    inside = _buffer(groups, tol[g_search], quad_segs)
    own = g_wall >= 0
    assert bl.walls is not None
    inside[own] = _threaded(shapely.intersection, inside[own], bl.walls[g_wall[own]])
    inside[~own] = _threaded(shapely.intersection, inside[~own], bl.walls_union)
    # one row per search: its public part and its compounds' pieces, joined
    has, table = _rows(g_search, inside)
    table = np.column_stack([out[has], table])
    out[has] = _threaded(lambda t: shapely.union_all(t, axis=1), table)
    return out


def _rows(keys: IntArray, values: ObjArray) -> tuple[IntArray, ObjArray]:
    """The distinct keys, and a table with one row per key holding its values (None-padded)."""
    order = np.argsort(keys, kind="stable")
    has, start, count = np.unique(keys[order], return_index=True, return_counts=True)
    table = np.full((len(has), int(count.max()) if len(has) else 0), None, dtype=object)
    table[np.repeat(np.arange(len(has)), count),
          np.arange(len(keys)) - np.repeat(start, count)] = values[order]
    return has, table


def _group(parts: ObjArray, keys: IntArray) -> tuple[IntArray, ObjArray]:
    """One GeometryCollection per distinct key (sorted keys, their collections)."""
    if len(parts) == 0:
        return np.empty(0, np.int64), np.empty(0, object)
    order = np.argsort(keys, kind="stable")
    k_sorted = keys[order]
    uk = np.unique(k_sorted)
    return uk, np.asarray(shapely.geometrycollections(
        parts[order], indices=np.searchsorted(uk, k_sorted)), dtype=object)


def _collect(parts: ObjArray, search: IntArray, n: int) -> ObjArray:
    """One GeometryCollection per search of its ``parts`` (empty where it has none)."""
    coll = np.full(n, None, dtype=object)
    has, groups = _group(parts, search)
    coll[has] = groups
    coll[shapely.is_missing(coll)] = shapely.GeometryCollection()
    return coll


def _union_per_search(search: IntArray, faces: ObjArray) -> tuple[IntArray, ObjArray]:
    """Coverage union of each search's faces: the searches, one geometry each."""
    if len(search) == 0:
        return np.empty(0, np.int64), np.empty(0, object)
    has, table = _rows(search, faces)
    return has, np.asarray(shapely.coverage_union_all(table, axis=1), dtype=object)


def _buffer(geoms: ObjArray, dist: FloatArray, quad_segs: int) -> ObjArray:
    """Buffer of each collection, on all cores (GEOS releases the GIL).

    GEOS buffers a collection of many overlapping lines far more slowly than it unions their
    separate buffers (11x on the Helsinki sample's 1,080 m walks, ~800 lines each); for a
    few dozen lines one buffer is quicker.  Both give the same polygon.
    """
    n_parts = shapely.get_num_geometries(geoms)
    big = n_parts > _PARTS_ALONE
    out = np.empty(len(geoms), dtype=object)
    small = np.flatnonzero(~big)
    if small.size:
        out[small] = _threaded(lambda g, d: shapely.buffer(g, d, quad_segs=quad_segs),
                               geoms[small], dist[small])
    if big.any():
        out[big] = _buffer_parts(geoms[big], dist[big], quad_segs)
    return out


def _buffer_parts(geoms: ObjArray, dist: FloatArray, quad_segs: int) -> ObjArray:
    """Every part buffered alone, then one cascaded union per geometry."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    pieces = _threaded(lambda g, d: shapely.buffer(g, d, quad_segs=quad_segs), parts,
                       dist[owner])
    has, table = _rows(owner, pieces)
    out = np.full(len(geoms), None, dtype=object)
    out[has] = _threaded(lambda t: shapely.union_all(t, axis=1), table)
    out[shapely.is_missing(out)] = shapely.Polygon()
    return out


def _threaded(fn: Callable[..., Any], geoms: ObjArray, *args: Any) -> ObjArray:
    """``fn(geoms[idx], *[a[idx] ...])`` over chunks on all cores (shapely releases the GIL).

    Arguments that are arrays of ``len(geoms)`` are split with the geometries; others are
    passed whole (e.g. one polygon to intersect everything with).
    """
    n = len(geoms)
    workers = min(n_workers(), max(1, n))
    split = [isinstance(a, np.ndarray) and a.shape[:1] == (n,) for a in args]
    if workers == 1 or n < 8:
        return np.asarray(fn(geoms, *args), dtype=object)
    # big geometries first so the chunks even out
    size = shapely.get_num_coordinates(geoms)
    order = np.argsort(-(size.sum(axis=1) if size.ndim == 2 else size), kind="stable")
    chunks = [order[i::workers * _CHUNKS_PER_WORKER] for i in range(workers * _CHUNKS_PER_WORKER)]
    out = np.empty(n, dtype=object)

    def run(idx: IntArray) -> None:
        out[idx] = fn(geoms[idx], *[a[idx] if s else a for a, s in zip(args, split, strict=True)])

    from geosvc.progress import bar

    todo = [c for c in chunks if len(c)]
    with ThreadPoolExecutor(workers) as pool, bar(total=n, desc="service-circle polygons",
                                                   unit="polygon") as b:
        for idx, _ in zip(todo, pool.map(run, todo), strict=True):
            b.update(len(idx))
    return out


def _to_multipolygons(geoms: ObjArray) -> ObjArray:
    """Every result as one MultiPolygon (empty for nothing reached)."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    poly = shapely.get_type_id(parts) == 3
    out = np.empty(len(geoms), dtype=object)
    if poly.any():
        has = np.unique(idx[poly])
        out[has] = shapely.multipolygons(parts[poly], indices=np.searchsorted(has, idx[poly]))
    out[shapely.is_missing(out)] = shapely.MultiPolygon()
    return out


def reached_lines(net: CompiledNetwork, anchors: Anchors, reach_m: float | ArrayLike
                  ) -> ObjArray:
    """The street lines each snapped point reaches within ``reach_m`` (no buffering).

    Every reached edge is included, the partial ones at the frontier for exactly the part
    the remaining budget allows, and the point's own edge from its offset both ways; the
    access leg is spent first.

    Parameters
    ----------
    net
        Compiled network.
    anchors
        Snapped points (:func:`geosvc.access.snap_points`), e.g. facilities.
    reach_m
        Walking distance (metres): one value, or one per point.

    Returns
    -------
    numpy.ndarray
        One MultiLineString per point (empty when it did not snap).

    Examples
    --------
    >>> from geosvc.network import from_arrays
    >>> from geosvc.access import snap_points
    >>> net = from_arrays([[0.0, 0.0], [100.0, 0.0]], [0], [1], crs="EPSG:32650")
    >>> round(reached_lines(net, snap_points(net, [[50.0, 0.0]]), 30.0)[0].length, 6)
    60.0
    """
    n = len(anchors)
    r = reached(net, Sources.from_anchors(anchors), reach_array(reach_m, n))
    lines = edge_parts(net, r.edge, r.lo_m, r.hi_m)
    out = np.full(n, None, dtype=object)
    if len(lines):
        has = np.unique(r.search)
        out[has] = shapely.multilinestrings(lines, indices=np.searchsorted(has, r.search))
    out[shapely.is_missing(out)] = shapely.MultiLineString()
    return out


def service_areas(net: CompiledNetwork, anchors: Anchors, reach_m: float | ArrayLike, *,
                  tolerance_m: float = 30.0, taper: bool = True, fill_blocks: bool = True,
                  quad_segs: int = 3, walls: ArrayLike | gpd.GeoDataFrame | None = None
                  ) -> ObjArray:
    """The area each snapped point (facility) reaches on foot within ``reach_m``.

    Parameters
    ----------
    net
        Compiled network.
    anchors
        Snapped facilities (:func:`geosvc.access.snap_points`; snap facilities inside a
        gated compound with their ``compound`` so they start on its paths).
    reach_m
        Walking distance (metres): one value, or one per facility.
    tolerance_m
        Off-network leg drawn around the reached streets (the profile's
        ``access_tolerance_m``).
    taper
        Draw the tolerance as ``min(tolerance_m, budget left)``: the polygon ends where the
        walk ends.  ``False`` buffers the lines reached at ``reach_m`` by the full tolerance.
    fill_blocks
        Draw a block (face of the street network) whole when every street bounding it or
        inside it is reached completely; else only its reached streets are buffered and the
        unreached interior stays a hole.
    quad_segs
        Segments per quarter circle of the rounded ends.
    walls
        Gated compounds: polygons, or a GeoDataFrame with ``compound_id`` (then only the
        compounds with internal paths in ``net`` count).  Public streets are drawn only
        outside them, internal paths only inside, and the inside of a compound is a block
        of its own, whole only when its paths are reached.

    Returns
    -------
    numpy.ndarray
        One valid MultiPolygon per facility (empty when it did not snap).

    Examples
    --------
    >>> from geosvc.network import from_arrays
    >>> from geosvc.access import snap_points
    >>> net = from_arrays([[0.0, 0.0], [400.0, 0.0]], [0], [1], crs="EPSG:32650")
    >>> area = service_areas(net, snap_points(net, [[200.0, 0.0]]), 100.0, tolerance_m=10.0)[0]
    >>> area.geom_type, round(area.bounds[2] - area.bounds[0], 6)
    ('MultiPolygon', 200.0)
    """
    tol, qs = check_tolerance(tolerance_m, quad_segs)
    n = len(anchors)
    if isinstance(walls, gpd.GeoDataFrame):
        w = walls_with_paths(compound_polygons(walls, net), net)
    else:
        w = None if walls is None else np.asarray(walls, dtype=object)
    return areas(net, Sources.from_anchors(anchors), reach_array(reach_m, n), tolerance_m=tol,
                 taper=taper, fill_blocks=fill_blocks, quad_segs=qs, walls=w)
