"""Noding of users' road line layers: split lines where they meet or truly cross."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import ops

__all__ = ["node_lines", "grade_level"]

_TRUE = {"1", "yes", "true", "y", "t", "viaduct", "culvert", "building_passage"}


def _truthy(col: pd.Series) -> np.ndarray:
    return col.astype(str).str.strip().str.lower().isin(_TRUE).to_numpy()


def grade_level(gdf: pd.DataFrame) -> np.ndarray:
    """Vertical level of each line: the ``layer`` value, else +1 for bridges, -1 for tunnels."""
    level: np.ndarray = np.zeros(len(gdf), dtype=np.int64)
    if "layer" in gdf.columns:
        lay = pd.to_numeric(gdf["layer"], errors="coerce").fillna(0).round().astype(np.int64)
        level = lay.to_numpy().copy()
    if "bridge" in gdf.columns:
        level = np.where((level == 0) & _truthy(gdf["bridge"]), 1, level)
    if "tunnel" in gdf.columns:
        level = np.where((level == 0) & _truthy(gdf["tunnel"]), -1, level)
    return level


def _split_at(
    line: shapely.LineString, cuts_m: np.ndarray, cut_xy: np.ndarray
) -> list[shapely.LineString]:
    """Cut ``line`` at distances ``cuts_m``, ending pieces exactly on the points ``cut_xy``."""
    cuts_m, first = np.unique(cuts_m, return_index=True)
    cut_xy = cut_xy[first]
    bounds = np.concatenate([[0.0], cuts_m, [line.length]])
    parts = []
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        coords = np.asarray(ops.substring(line, a, b).coords)
        if k > 0:
            coords[0] = cut_xy[k - 1]
        if k < len(cuts_m):
            coords[-1] = cut_xy[k]
        parts.append(shapely.LineString(coords))
    return parts


def node_lines(
    gdf: gpd.GeoDataFrame, *, keep_grade_separated: bool = True, grid_m: float = 0.01
) -> gpd.GeoDataFrame:
    """Split road lines at shared end points and true crossings.

    Parameters
    ----------
    gdf
        LineStrings in a projected CRS (one part per row).
    keep_grade_separated
        Lines on different vertical levels (see :func:`grade_level`) join only where an
        end point of one lies on the other (a ramp reaching the street), never at a
        crossing in plan.
    grid_m
        Precision grid (metres) for the overlay.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per noded piece with the attributes of the line it came from and
        ``level``.
    """
    geoms = shapely.set_precision(gdf.geometry.to_numpy(), grid_m)
    level = grade_level(gdf) if keep_grade_separated else np.zeros(len(gdf), dtype=np.int64)
    pieces: list[np.ndarray] = []
    piece_level: list[np.ndarray] = []
    for lev in np.unique(level):
        parts = shapely.get_parts(shapely.union_all(geoms[level == lev], grid_size=grid_m))
        parts = parts[shapely.get_type_id(parts) == 1]
        pieces.append(parts)
        piece_level.append(np.full(len(parts), lev, dtype=np.int64))
    all_pieces = np.concatenate(pieces)
    all_level = np.concatenate(piece_level)
    if len(pieces) > 1:
        all_pieces, all_level = _join_levels_at_end_points(all_pieces, all_level, grid_m)
    # recover attributes: nearest source line on the same level to each piece's midpoint
    mid = shapely.line_interpolate_point(all_pieces, 0.5, normalized=True)
    src = np.full(len(all_pieces), -1, dtype=np.int64)
    for lev in np.unique(all_level):
        sel_src = np.flatnonzero(level == lev)
        sel_piece = np.flatnonzero(all_level == lev)
        tree = shapely.STRtree(geoms[sel_src])
        hit = tree.query_nearest(mid[sel_piece], all_matches=False)
        src[sel_piece[hit[0]]] = sel_src[hit[1]]
    attrs = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).iloc[src].reset_index(drop=True)
    attrs["level"] = all_level
    return gpd.GeoDataFrame(attrs, geometry=all_pieces, crs=gdf.crs)


def _join_levels_at_end_points(
    pieces: np.ndarray, level: np.ndarray, grid_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Split pieces where an end point of a piece on another level lies on their interior."""
    ends = np.concatenate([shapely.get_point(pieces, 0), shapely.get_point(pieces, -1)])
    end_level = np.concatenate([level, level])
    tree = shapely.STRtree(pieces)
    e_idx, p_idx = tree.query(ends, predicate="dwithin", distance=grid_m)
    foreign = end_level[e_idx] != level[p_idx]
    e_idx, p_idx = e_idx[foreign], p_idx[foreign]
    if len(e_idx) == 0:
        return pieces, level
    pos = shapely.line_locate_point(pieces[p_idx], ends[e_idx])
    length = shapely.length(pieces[p_idx])
    interior = (pos > grid_m) & (pos < length - grid_m)
    p_idx, pos = p_idx[interior], pos[interior]
    cut_xy = shapely.get_coordinates(ends[e_idx[interior]])
    if len(p_idx) == 0:
        return pieces, level
    order = np.argsort(p_idx, kind="stable")
    p_idx, pos, cut_xy = p_idx[order], pos[order], cut_xy[order]
    split_ids, starts = np.unique(p_idx, return_index=True)
    groups = zip(np.split(pos, starts[1:]), np.split(cut_xy, starts[1:]), strict=True)
    new_parts: list[shapely.LineString] = []
    new_level: list[int] = []
    for pid, (cuts, xy) in zip(split_ids, groups, strict=True):  # pieces with a ramp end on them
        parts = _split_at(pieces[pid], cuts, xy)
        new_parts.extend(parts)
        new_level.extend([int(level[pid])] * len(parts))
    keep = np.ones(len(pieces), dtype=bool)
    keep[split_ids] = False
    out = np.concatenate([pieces[keep], np.array(new_parts, dtype=object)])
    return out, np.concatenate([level[keep], np.array(new_level, dtype=np.int64)])
