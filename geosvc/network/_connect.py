"""Connectivity of road line layers, straight to the compiled arrays.

A line layer is either already a network (OpenStreetMap exports, topologically clean centre
lines: lines meet at shared end points; a bridge crosses the street below without a junction)
or raw survey/CAD lines that run through junctions.  :func:`compile_lines` joins lines

* ``"endpoints"``: only where their end points coincide (within ``tol_m``), nothing else
  (ArcGIS Network Analyst's and QGIS's default);
* ``"crossings"``: also where an end point lies on another line's interior and where two lines
  on the same vertical level (``layer``/``bridge``/``tunnel``) cross;
* ``"auto"``: decides from the layer's own counts (see :func:`decide_connectivity`).

A line never joins itself at a self-crossing.  Noding finds the junction points; every piece
keeps the original coordinates (plus the exact junction point), so lengths are measured on
the input geometry, not on a precision grid.  Everything runs on arrays (shapely vectorised
predicates, numpy sorting, scipy components); no networkx graph is built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geosvc import diagnostics
from geosvc._errors import ConfigError
from geosvc.network._crossing_kernels import line_arrays, pair_crossings, points_on_lines

__all__ = [
    "CONNECTIVITY_MODES",
    "LayerCounts",
    "check_connectivity",
    "cluster_points",
    "compile_lines",
    "decide_connectivity",
    "line_junction_points",
]

log = logging.getLogger(__name__)

CONNECTIVITY_MODES = ("endpoints", "crossings", "auto")

#: ``auto`` picks ``crossings`` when at least this share of the layer's junction evidence
#: lies in line interiors (crossings in plan on one level, ends on another line's interior).
AUTO_INTERIOR_SHARE = 0.10
#: Between these shares the decision is flagged as uncertain (a warning names the counts).
AUTO_UNSURE = (0.02, 0.40)


def check_connectivity(mode: object, where: str = "connectivity") -> str:
    """Validate a connectivity mode name; return it lower-cased."""
    name = str(mode).strip().lower()
    if name not in CONNECTIVITY_MODES:
        raise ConfigError(f"{where} = {mode!r}: must be one of {', '.join(CONNECTIVITY_MODES)}")
    return name


@dataclass
class LayerCounts:
    """What a line layer looks like, for the connectivity decision and the summary."""

    lines: int = 0
    line_ends: int = 0
    ends_shared: int = 0
    junctions_at_ends: int = 0
    ends_dangling: int = 0
    ends_on_interior: int | None = None
    crossings_found: int | None = None
    crossings_same_level: int | None = None
    self_crossings: int = 0

    def interior_share(self) -> float:
        """Share of junction evidence inside lines (0 = a clean end-point network)."""
        inner = (self.ends_on_interior or 0) + (self.crossings_same_level or 0)
        total = inner + self.junctions_at_ends
        return inner / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts (``None`` where a count was not computed)."""
        return dict(self.__dict__)


def decide_connectivity(counts: LayerCounts) -> tuple[str, str]:
    """``auto``: the mode a layer calls for, and why.

    ``crossings`` when at least :data:`AUTO_INTERIOR_SHARE` of the junction evidence lies in
    line interiors (lines running through junctions), else ``endpoints``.
    """
    share = counts.interior_share()
    mode = "crossings" if share >= AUTO_INTERIOR_SHARE else "endpoints"
    why = (f"{counts.junctions_at_ends} junctions at shared end points, "
           f"{counts.crossings_same_level} crossings in plan on one level, "
           f"{counts.ends_on_interior} ends on another line's interior "
           f"(interior share {share:.1%}, threshold {AUTO_INTERIOR_SHARE:.0%})")
    return mode, why


# ---------------------------------------------------------------------------
# point clustering (end points within a tolerance become one node)
# ---------------------------------------------------------------------------


def cluster_points(xy: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge points closer than ``tol`` (transitively) into nodes.

    Returns
    -------
    node_of, node_xy
        Node index of every input point; coordinates of each node (its first point).
    """
    if len(xy) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 2))
    # exact duplicates first (one 1-D sort on complex keys is far cheaper than axis=0)
    key = np.ascontiguousarray(xy[:, 0]) + 1j * np.ascontiguousarray(xy[:, 1])
    ukey, inverse = np.unique(key, return_inverse=True)
    inverse = inverse.reshape(-1)
    uniq = np.column_stack([ukey.real, ukey.imag])
    n = len(uniq)
    if tol > 0 and n > 1:
        pts = np.asarray(shapely.points(uniq), dtype=object)
        a, b = shapely.STRtree(pts).query(pts, predicate="dwithin", distance=tol)
        far = a != b
        if far.any():
            graph = coo_matrix((np.ones(int(far.sum()), dtype=np.int8), (a[far], b[far])),
                               shape=(n, n)).tocsr()
            _, label = connected_components(graph, directed=False)
        else:
            label = np.arange(n)
    else:
        label = np.arange(n)
    # number clusters in order of first appearance in the input (deterministic)
    first_pos = np.full(label.max() + 1, len(xy), dtype=np.int64)
    np.minimum.at(first_pos, label[inverse], np.arange(len(xy)))
    order = np.argsort(first_pos, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    node_of = rank[label[inverse]]
    node_xy = xy[np.sort(first_pos)]
    return node_of.astype(np.int64), node_xy


def _end_coords(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_coords = shapely.get_num_coordinates(geoms)
    coords = shapely.get_coordinates(geoms)
    last = np.cumsum(n_coords) - 1
    first = last - n_coords + 1
    return coords[first], coords[last]


# ---------------------------------------------------------------------------
# junction points in line interiors
# ---------------------------------------------------------------------------


def _ends_on_interiors(geoms: np.ndarray, tree: shapely.STRtree, arrays: tuple, tol: float,
                       only: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(line, position, xy) of every end point lying within ``tol`` of another line's interior.

    ``only`` (a mask over the ``2 n`` ends, starts first) limits the ends examined.
    """
    coords, offsets, cum = arrays
    n = len(geoms)
    ends = np.vstack([coords[offsets[:-1]], coords[offsets[1:] - 1]])
    key = ends[:, 0] + 1j * ends[:, 1]
    ukey, inverse = np.unique(key, return_inverse=True)
    inverse = inverse.reshape(-1)
    pxy = np.column_stack([ukey.real, ukey.imag])
    if only is not None:
        wanted = np.zeros(len(ukey), dtype=bool)
        wanted[inverse[only]] = True
        inverse = np.where(wanted[inverse], inverse, -1)
        sub = np.flatnonzero(wanted)
        pxy_all, pxy = pxy, pxy[sub]
        remap = np.full(len(ukey), -1, dtype=np.int64)
        remap[sub] = np.arange(len(sub))
        inverse = np.where(inverse >= 0, remap[np.maximum(inverse, 0)], -1)
        del pxy_all
    boxes = shapely.box(pxy[:, 0] - tol, pxy[:, 1] - tol, pxy[:, 0] + tol, pxy[:, 1] + tol)
    p_idx, l_idx = tree.query(boxes)  # bounding boxes only; the kernel measures exactly
    own = (inverse[l_idx] == p_idx) | (inverse[n + l_idx] == p_idx)  # never join itself
    p_idx, l_idx = p_idx[~own], l_idx[~own]
    dist, pos = points_on_lines(coords, offsets, cum, pxy[p_idx], l_idx)
    length = cum[offsets[1:] - 1][l_idx]
    hit = (dist <= tol) & (pos > tol) & (pos < length - tol)
    return l_idx[hit], pos[hit], pxy[p_idx[hit]]


def line_junction_points(geoms: np.ndarray, level: np.ndarray, *, tol: float,
                         join_levels: bool = False
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Where lines must be cut so that crossings and T-junctions become nodes.

    Candidate pairs come from an STRtree bounding-box query; the segments are tested in
    compiled code (:mod:`geosvc.network._crossing_kernels`).  Collinear overlaps are not
    crossings.  A line is never cut where it crosses itself.

    Parameters
    ----------
    geoms
        LineStrings (one part each), any planar coordinates.
    level
        Vertical level of each line; lines on different levels join only where an end of
        one lies on the other (a ramp), never where they cross in plan.
    tol
        Distance (coordinate units) within which an end point counts as lying on a line.
    join_levels
        Ignore levels (every crossing in plan is a junction).

    Returns
    -------
    line, position, xy, counts
        Cut points (line index, distance along it, coordinates) and the counts
        ``ends_on_interior``, ``crossings_found``, ``crossings_same_level``.
    """
    tree = shapely.STRtree(geoms)
    arrays = line_arrays(geoms)
    t_line, t_pos, t_xy = _ends_on_interiors(geoms, tree, arrays, tol)
    i, j = tree.query(geoms)
    keep = i < j
    i, j = i[keep], j[keep]
    pair, cxy, pos_i, pos_j = pair_crossings(*arrays, i, j, tol)
    crossing_pairs = np.unique(pair)
    same_pair = (level[i] == level[j]) | join_levels
    same = same_pair[pair]
    c_line = np.concatenate([i[pair[same]], j[pair[same]]])
    c_pos = np.concatenate([pos_i[same], pos_j[same]])
    c_xy = np.vstack([cxy[same], cxy[same]])
    counts = {"ends_on_interior": int(len(t_line)), "crossings_found": int(len(crossing_pairs)),
              "crossings_same_level": int(same_pair[crossing_pairs].sum())}
    return (np.concatenate([t_line, c_line]), np.concatenate([t_pos, c_pos]),
            np.vstack([t_xy, c_xy]), counts)


def insert_vertices(geoms: np.ndarray, line: np.ndarray, pos: np.ndarray, xy: np.ndarray
                    ) -> np.ndarray:
    """Insert the points ``xy`` as vertices of ``geoms[line]`` at distances ``pos``."""
    pieces, piece_line = split_lines(geoms, line, pos, xy, tol=0.0)
    out = geoms.copy()
    if len(line) == 0:
        return out
    coords, cidx = shapely.get_coordinates(pieces, return_index=True)
    owner = piece_line[cidx]
    # consecutive pieces of one line share their joint coordinate: drop the repeats
    first_of_piece = np.r_[True, cidx[1:] != cidx[:-1]]
    same_line_start = first_of_piece & np.r_[False, owner[1:] == owner[:-1]]
    keep = ~same_line_start
    coords, owner = coords[keep], owner[keep]
    uniq_lines, start = np.unique(owner, return_index=True)
    merged = shapely.linestrings(coords, indices=np.searchsorted(uniq_lines, owner))
    out[uniq_lines] = merged
    return out


def split_lines(geoms: np.ndarray, line: np.ndarray, pos: np.ndarray, xy: np.ndarray,
                *, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Cut lines at the given points, keeping every original vertex.

    Cuts closer than ``tol`` to an earlier cut on the same line are merged.  Each piece
    runs through the line's original vertices between its cuts and ends exactly on the
    cut points.

    Returns
    -------
    pieces, piece_line
        The pieces (in line order) and the index of the line each came from.
    """
    n = len(geoms)
    has_cut = np.zeros(n, dtype=bool)
    has_cut[line] = True
    plain = np.flatnonzero(~has_cut)
    if len(line) == 0:
        return geoms.copy(), np.arange(n)
    cut_lines = np.flatnonzero(has_cut)
    # cuts sorted along each line, near-duplicates merged
    order = np.lexsort((pos, line))
    line, pos, xy = line[order], pos[order], xy[order]
    dup = np.r_[False, (line[1:] == line[:-1]) & (np.diff(pos) <= tol)]
    line, pos, xy = line[~dup], pos[~dup], xy[~dup]
    # vertices of the lines that are cut, with their distance along the line
    vxy, vidx = shapely.get_coordinates(geoms[cut_lines], return_index=True)
    vline = cut_lines[vidx]
    step = np.r_[0.0, np.hypot(*(vxy[1:] - vxy[:-1]).T)]
    step[np.r_[True, vidx[1:] != vidx[:-1]]] = 0.0
    vpos = np.cumsum(step)
    starts = np.r_[0, np.flatnonzero(vidx[1:] != vidx[:-1]) + 1]
    vpos -= np.repeat(vpos[starts], np.diff(np.r_[starts, len(vidx)]))
    # piece number of a vertex = cuts on its line strictly before it
    line_cut_start = np.searchsorted(line, cut_lines)
    key_cut = np.searchsorted(cut_lines, line)
    rank = np.arange(len(line)) - line_cut_start[key_cut]  # 0-based cut rank on its line
    # global sortable position: (line, position); vertices count cuts before them
    vcount = _count_before(line, pos, vline, vpos)
    rec_line = np.concatenate([vline, line, line])
    rec_piece = np.concatenate([vcount, rank, rank + 1])
    rec_pos = np.concatenate([vpos, pos, pos])
    rec_tie = np.concatenate([np.zeros(len(vline)), np.ones(len(line)), -np.ones(len(line))])
    rec_xy = np.vstack([vxy, xy, xy])
    order = np.lexsort((rec_tie, rec_pos, rec_piece, rec_line))
    rec_line, rec_piece, rec_xy = rec_line[order], rec_piece[order], rec_xy[order]
    # drop repeated coordinates inside a piece
    same_piece = np.r_[False, (rec_line[1:] == rec_line[:-1]) & (rec_piece[1:] == rec_piece[:-1])]
    repeat = same_piece & np.r_[False, np.all(rec_xy[1:] == rec_xy[:-1], axis=1)]
    rec_line, rec_piece, rec_xy = rec_line[~repeat], rec_piece[~repeat], rec_xy[~repeat]
    pid_key = rec_line.astype(np.int64) * (int(rec_piece.max()) + 2) + rec_piece
    uniq, pid, size = np.unique(pid_key, return_inverse=True, return_counts=True)
    ok = size[pid] >= 2
    uniq_ok, pid_ok = np.unique(pid_key[ok], return_inverse=True)
    cut_pieces = shapely.linestrings(rec_xy[ok], indices=pid_ok.reshape(-1))
    cut_owner = (uniq_ok // (int(rec_piece.max()) + 2)).astype(np.int64)
    pieces = np.concatenate([geoms[plain], np.asarray(cut_pieces, dtype=object)])
    owner = np.concatenate([plain, cut_owner])
    order = np.argsort(owner, kind="stable")
    return pieces[order], owner[order]


def _count_before(cut_line: np.ndarray, cut_pos: np.ndarray, vline: np.ndarray,
                  vpos: np.ndarray) -> np.ndarray:
    """For each vertex, the number of cuts on its line at a smaller position."""
    m_line = np.concatenate([vline, cut_line])
    m_pos = np.concatenate([vpos, cut_pos])
    m_cut = np.concatenate([np.zeros(len(vline), dtype=np.int64),
                            np.ones(len(cut_line), dtype=np.int64)])
    order = np.lexsort((m_cut, m_pos, m_line))  # a vertex sorts before a cut at its position
    s_line, s_cut = m_line[order], m_cut[order]
    cum = np.cumsum(s_cut)
    first = np.r_[True, s_line[1:] != s_line[:-1]]
    base = (cum - s_cut)[first]
    group = np.cumsum(first) - 1
    before = cum - s_cut - base[group]
    out = np.empty(len(order), dtype=np.int64)
    out[order] = before
    return out[: len(vline)]


# ---------------------------------------------------------------------------
# the compile step
# ---------------------------------------------------------------------------


@dataclass
class NodedLines:
    """Pieces of a noded line layer, ready for the compiled arrays."""

    pieces: np.ndarray
    piece_line: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    node_xy: np.ndarray
    report: dict[str, Any]


def compile_lines(geoms: np.ndarray, level: np.ndarray, *, connectivity: str = "auto",
                  tol_m: float = 0.01, source: str = "road lines",
                  count_interiors: bool | None = None) -> NodedLines:
    """Node a projected line layer by the connectivity policy.

    Parameters
    ----------
    geoms
        LineStrings (one part each, positive length) in a metric CRS.
    level
        Vertical level per line (see :func:`geosvc.network.grade_level`); all zero to
        ignore grades.
    connectivity
        ``"endpoints"``, ``"crossings"`` or ``"auto"``.
    tol_m
        End points closer than this merge into one node; an end point this close to
        another line's interior lies on it (``crossings``).
    source
        Name for messages.
    count_interiors
        Count crossings and ends on interiors even in ``endpoints`` mode (default: only
        when the mode needs them).

    Returns
    -------
    NodedLines
        Pieces (original coordinates plus junction points), their end nodes and a
        report with the mode, the reason and the counts.
    """
    mode = check_connectivity(connectivity)
    n = len(geoms)
    sxy, exy = _end_coords(geoms)
    end_node, end_node_xy = cluster_points(np.vstack([sxy, exy]), tol_m)
    deg = np.bincount(end_node)
    counts = LayerCounts(lines=n, line_ends=2 * n,
                         ends_shared=int((deg[end_node] >= 2).sum()),
                         junctions_at_ends=int((deg >= 2).sum()),
                         ends_dangling=int((deg[end_node] == 1).sum()),
                         self_crossings=int((~shapely.is_simple(geoms)).sum()))
    need = mode != "endpoints" or bool(count_interiors)
    cuts = None
    if need:
        c_line, c_pos, c_xy, extra = line_junction_points(geoms, level, tol=tol_m)
        counts.ends_on_interior = extra["ends_on_interior"]
        counts.crossings_found = extra["crossings_found"]
        counts.crossings_same_level = extra["crossings_same_level"]
        cuts = (c_line, c_pos, c_xy)
    if not need:  # endpoints: are dangling ends lying on other lines? (cheap: few ends)
        dangling = deg[end_node] == 1
        if dangling.any():
            tree = shapely.STRtree(geoms)
            counts.ends_on_interior = int(len(_ends_on_interiors(
                geoms, tree, line_arrays(geoms), tol_m, only=dangling)[0]))
    chosen, reason = _chosen_mode(mode, counts, source)
    if chosen == "crossings" and cuts is not None:
        pieces, piece_line = split_lines(geoms, cuts[0], cuts[1], cuts[2], tol=tol_m)
        psxy, pexy = _end_coords(pieces)
        node_of, node_xy = cluster_points(np.vstack([psxy, pexy]), tol_m)
        joined = int(len(np.unique(np.round(cuts[2] / max(tol_m, 1e-12)), axis=0)))
    else:
        pieces, piece_line = geoms, np.arange(n)
        node_of, node_xy = end_node, end_node_xy
        joined = 0
    m = len(pieces)
    report: dict[str, Any] = {"connectivity": chosen, "requested": mode, "reason": reason,
                              **counts.to_dict(), "junctions_added": joined,
                              "tolerance_m": tol_m}
    if chosen == "endpoints" and counts.ends_on_interior:
        _warn_unjoined(source, counts)
    log.info("%s: connectivity %s (%s): %d lines -> %d edges, %d nodes; %d self-crossing "
             "lines never joined to themselves", source, chosen, reason, n, m, len(node_xy),
             counts.self_crossings)
    return NodedLines(pieces, piece_line, node_of[:m], node_of[m:], node_xy, report)


def _chosen_mode(mode: str, counts: LayerCounts, source: str) -> tuple[str, str]:
    """The mode to node by and why: as requested, or decided from the counts (``auto``).

    A mixed layer (interior share between :data:`AUTO_UNSURE`) gets a
    ``connectivity_uncertain`` warning.
    """
    if mode != "auto":
        return mode, "requested"
    chosen, reason = decide_connectivity(counts)
    share = counts.interior_share()
    if AUTO_UNSURE[0] < share < AUTO_UNSURE[1]:
        diagnostics.warn(
            "connectivity_uncertain",
            f"{source}: connectivity 'auto' chose '{chosen}' but the layer is mixed "
            f"({reason}); set connectivity explicitly if this is wrong",
            source=source, chosen=chosen, interior_share=round(share, 4))
    return chosen, reason


def _warn_unjoined(source: str, counts: LayerCounts) -> None:
    share = (counts.ends_on_interior or 0) / max(counts.line_ends, 1)
    if share > 0.01:
        diagnostics.warn(
            "dangling_ends",
            f"{source}: {counts.ends_on_interior} line ends ({share:.1%}) lie on another "
            "line's interior without a shared end point and were not joined (connectivity "
            "'endpoints'); if the layer is not split at junctions, use connectivity "
            "'crossings'", source=source, ends_on_interior=int(counts.ends_on_interior or 0))


def frame_levels(frame: pd.DataFrame, keep_grade_separated: bool) -> np.ndarray:
    """Vertical level per row (all 0 when grades are ignored)."""
    from geosvc.network._lines import grade_level

    if not keep_grade_separated:
        return np.zeros(len(frame), dtype=np.int64)
    return grade_level(frame)


def metric_crs_name(crs: CRS) -> str:
    """``EPSG:n`` when the CRS has an EPSG code, else its full string."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else crs.to_string()
