"""Blocks: the faces of the street network, and which edges bound or lie inside each.

The street lines (and, when given, the walls of gated compounds) are cut into faces once per
network: traced directly from the network when no two streets cross
(:mod:`geosvc.circles._planar`), else noded and polygonised with GEOS.  Each face (a city block, or the inside of a compound between its walls
and paths) knows the network edges that touch it from either side, including dead ends
inside it.  A search that reaches every one of those edges completely covers the block:
every point of it snaps to a reached street (its nearest street is on the block's own
boundary or inside it), so the block is drawn whole instead of as a ring of buffers.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from geosvc.circles._planar import planar_faces
from geosvc.network import CompiledNetwork

IntArray = NDArray[np.int64]
ObjArray = NDArray[np.object_]

_SIDE_M = 1e-3  # offset of the side probes from a noded piece (metres)


@dataclass(frozen=True)
class Blocks:
    """Faces and their edges, as CSR tables both ways."""

    faces: ObjArray  # Polygon per face
    face_n_edges: IntArray  # distinct network edges touching each face
    edge_ptr: IntArray  # edge -> its faces: edge_faces[edge_ptr[e]:edge_ptr[e + 1]]
    edge_faces: IntArray
    edge_whole: NDArray[np.bool_]  # the edge was not cut by the noding (walls, crossings)
    face_wall: IntArray  # the wall polygon (compound) the face lies in, -1 outside walls
    edge_wall: IntArray  # a wall polygon one of the edge's faces lies in, -1 if none
    walls: ObjArray | None  # the wall polygons
    walls_union: Any  # the union of the wall polygons (None without walls)

    @property
    def face_in_wall(self) -> NDArray[np.bool_]:
        return self.face_wall >= 0

    @property
    def n_faces(self) -> int:
        return len(self.faces)


_CACHE: weakref.WeakKeyDictionary[CompiledNetwork, dict[str, Blocks]] = \
    weakref.WeakKeyDictionary()


def blocks(net: CompiledNetwork, walls: ObjArray | None = None) -> Blocks:
    """The blocks of ``net`` (cut further by the ``walls`` polygons' boundaries, if any).

    Cached per network and set of walls (by content).
    """
    per_net = _CACHE.setdefault(net, {})
    key = "" if walls is None or len(walls) == 0 else hashlib.sha1(
        b"".join(shapely.to_wkb(np.asarray(walls, dtype=object)))).hexdigest()
    if key not in per_net:
        per_net.clear()  # keep one walls variant per network
        per_net[key] = _build(net, None if key == "" else walls)
    return per_net[key]


def _build(net: CompiledNetwork, walls: ObjArray | None, *, trace: bool = True) -> Blocks:
    if walls is None and trace:
        plane = planar_faces(net)  # no crossings: trace the faces directly (fast)
        if plane is not None:
            faces, edge, face = plane
            return _incidence(net, faces, edge, face, np.ones(net.n_edges, bool), None, None)
    lines = np.asarray(net.edge_geometry, dtype=object)
    walls_union = None
    if walls is not None and len(walls):
        rings = shapely.get_parts(shapely.boundary(np.asarray(walls, dtype=object)))
        lines = np.concatenate([lines, np.asarray(rings, dtype=object)])
        walls_union = shapely.union_all(np.asarray(walls, dtype=object))
        shapely.prepare(walls_union)
    noded = shapely.get_parts(shapely.node(shapely.multilinestrings(lines)))
    faces = np.asarray(shapely.get_parts(shapely.polygonize(noded)), dtype=object)
    n_e = net.n_edges
    if len(faces) == 0 or len(noded) == 0:
        return Blocks(faces, np.zeros(len(faces), np.int64), np.zeros(n_e + 1, np.int64),
                      np.empty(0, np.int64), np.ones(n_e, bool),
                      np.full(len(faces), -1, np.int64), np.full(n_e, -1, np.int64), None, None)
    # probe both sides of every noded piece at its middle
    length = shapely.length(noded)
    half = length / 2.0
    step = np.minimum(_SIDE_M, half / 2.0)
    a = shapely.get_coordinates(shapely.line_interpolate_point(noded, half - step))
    b = shapely.get_coordinates(shapely.line_interpolate_point(noded, half + step))
    d = b - a
    norm = np.hypot(d[:, 0], d[:, 1])
    ok = norm > 0
    mid = (a + b) / 2.0
    nrm = np.zeros_like(d)
    nrm[ok] = np.column_stack([-d[ok, 1], d[ok, 0]]) / norm[ok, None]
    # which network edge each piece is part of (none for wall pieces)
    e_tree = shapely.STRtree(net.edge_geometry)
    piece, edge = e_tree.query(shapely.points(mid), predicate="dwithin", distance=1e-6)
    f_tree = shapely.STRtree(faces)
    pairs_e, pairs_f = [], []
    for sign in (1.0, -1.0):
        probe = shapely.points(mid + sign * _SIDE_M * nrm)
        p_i, f_i = f_tree.query(probe, predicate="within")
        face_of = np.full(len(noded), -1, np.int64)
        face_of[p_i] = f_i
        f = face_of[piece]
        keep = (f >= 0) & ok[piece]
        pairs_e.append(edge[keep])
        pairs_f.append(f[keep])
    whole = np.bincount(edge, minlength=n_e) <= 1
    return _incidence(net, faces, np.concatenate(pairs_e), np.concatenate(pairs_f), whole,
                      None if walls_union is None else np.asarray(walls, dtype=object),
                      walls_union)


def _incidence(net: CompiledNetwork, faces: ObjArray, edge: IntArray, face: IntArray,
               whole: NDArray[np.bool_], walls: ObjArray | None, walls_union: Any) -> Blocks:
    """Blocks from (edge, face) incidence pairs (duplicates allowed)."""
    n_e, n_f = net.n_edges, max(len(faces), 1)
    key = np.sort(np.asarray(edge, np.int64) * n_f + np.asarray(face, np.int64))
    key = key[np.r_[True, key[1:] != key[:-1]]] if key.size else key  # unique (sort is faster)
    e_of, f_of = key // n_f, key % n_f
    edge_ptr = np.zeros(n_e + 1, np.int64)
    np.cumsum(np.bincount(e_of, minlength=n_e), out=edge_ptr[1:])
    face_n_edges = np.bincount(f_of, minlength=len(faces)).astype(np.int64)
    face_wall = np.full(len(faces), -1, np.int64)
    edge_wall = np.full(n_e, -1, np.int64)
    if walls is not None and len(faces):
        i, j = shapely.STRtree(walls).query(shapely.point_on_surface(faces), predicate="within")
        face_wall[i[::-1]] = j[::-1]  # the first wall when walls overlap
        fw = face_wall[f_of]
        edge_wall[e_of[fw >= 0]] = fw[fw >= 0]
    return Blocks(faces, face_n_edges, edge_ptr, f_of.astype(np.int64), whole, face_wall,
                  edge_wall, walls, walls_union)


def expand(bl: Blocks, edge: IntArray) -> tuple[IntArray, IntArray]:
    """``(row, face)`` for every face of every ``edge[row]`` (rows with no face drop out)."""
    cnt = bl.edge_ptr[edge + 1] - bl.edge_ptr[edge]
    row = np.repeat(np.arange(len(edge), dtype=np.int64), cnt)
    start = np.repeat(bl.edge_ptr[edge] - np.cumsum(cnt) + cnt, cnt)
    return row, bl.edge_faces[start + np.arange(row.size)]


def filled_faces(bl: Blocks, search: IntArray, edge: IntArray, full: NDArray[np.bool_]
                 ) -> tuple[IntArray, IntArray]:
    """Faces every edge of which a search reaches completely: ``(search, face)`` pairs.

    ``search``, ``edge`` and ``full`` describe reached intervals, one per (search, edge).
    """
    s_full, e_full = search[full], edge[full]
    row, face = expand(bl, e_full)
    key, count = np.unique(s_full[row] * bl.n_faces + face, return_counts=True)
    done = count == bl.face_n_edges[key % bl.n_faces]
    return key[done] // bl.n_faces, key[done] % bl.n_faces


def touches_filled(bl: Blocks, search: IntArray, edge: IntArray, filled_key: IntArray
                   ) -> NDArray[np.bool_]:
    """Whether each (search, edge) lies on whole blocks (sorted keys ``search * n_faces + face``).

    An edge in one piece lies on the boundary of every block it touches, so one whole block
    next to it is enough; an edge cut by walls or crossings needs all its blocks whole.
    """
    row, face = expand(bl, edge)
    key = search[row] * bl.n_faces + face
    pos = np.searchsorted(filled_key, key)
    hit = (pos < filled_key.size) & (filled_key[np.minimum(pos, filled_key.size - 1)] == key) \
        if filled_key.size else np.zeros(key.size, bool)
    n_hit = np.bincount(row[hit], minlength=len(edge))
    n_face = bl.edge_ptr[edge + 1] - bl.edge_ptr[edge]
    return np.where(bl.edge_whole[edge], n_hit > 0, (n_hit == n_face) & (n_face > 0))


def compound_polygons(compounds: gpd.GeoDataFrame | None, net: CompiledNetwork
               ) -> tuple[ObjArray, IntArray] | None:
    """Compound polygons in the network CRS and their ids (``compound_id`` or position)."""
    if compounds is None or len(compounds) == 0:
        return None
    if compounds.crs is not None and not compounds.crs.equals(net.crs):
        compounds = compounds.to_crs(net.crs)
    geoms = np.asarray(compounds.geometry.to_numpy(), dtype=object)
    if "compound_id" in compounds.columns:
        ids = pd.to_numeric(compounds["compound_id"], errors="coerce").fillna(-1).to_numpy()
    else:
        ids = np.arange(len(geoms))
    return geoms, np.asarray(ids, dtype=np.int64)


def walls_with_paths(comp: tuple[ObjArray, IntArray] | None, net: CompiledNetwork) -> ObjArray | None:
    """Compounds that have internal paths in the network (their walls cut the blocks)."""
    if comp is None:
        return None
    with_paths = np.isin(comp[1], np.unique(net.edge_compound[net.edge_compound >= 0]))
    return comp[0][with_paths] if with_paths.any() else None
