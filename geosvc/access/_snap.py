"""Snapping: project points onto their nearest street edge, respecting compound walls."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geosvc._errors import CRSError, InputError
from geosvc.network import CompiledNetwork, nearest_segments

__all__ = ["Anchors", "snap_points", "points_in_compounds", "compound_ids", "point_xy",
           "SNAP_OK", "SNAP_OFF_NETWORK", "SNAP_INVALID"]

SNAP_OK = 0
SNAP_OFF_NETWORK = 1
SNAP_INVALID = 2


@dataclass(frozen=True)
class Anchors:
    """Where points meet the network (arrays aligned with the input points).

    Attributes
    ----------
    edge
        Undirected edge index, -1 when not snapped.
    offset_m
        Distance along the edge from its ``u`` end to the snapped point.
    access_m
        Off-network leg: straight-line distance from the point to the edge.
    snapped_xy
        ``(n, 2)`` snapped coordinates (NaN when not snapped).
    status
        ``SNAP_OK``, ``SNAP_OFF_NETWORK`` (farther than the max snap distance) or
        ``SNAP_INVALID`` (missing or empty geometry).
    compound
        Gated compound of each point (-1 outside compounds).
    """

    edge: np.ndarray
    offset_m: np.ndarray
    access_m: np.ndarray
    snapped_xy: np.ndarray
    status: np.ndarray
    compound: np.ndarray

    def __len__(self) -> int:
        return int(len(self.edge))

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of snapped points."""
        return self.status == SNAP_OK

    def subset(self, mask: np.ndarray) -> Anchors:
        """Anchors of the points selected by a boolean mask or index array."""
        return Anchors(self.edge[mask], self.offset_m[mask], self.access_m[mask],
                       self.snapped_xy[mask], self.status[mask], self.compound[mask])


def points_in_compounds(points: np.ndarray, compounds: np.ndarray,
                        compound_ids: np.ndarray) -> np.ndarray:
    """Id of the compound polygon containing each point (-1 if none; first match wins)."""
    out = np.full(len(points), -1, dtype=np.int64)
    if len(compounds) == 0 or len(points) == 0:
        return out
    tree = shapely.STRtree(compounds)
    pt_idx, poly_idx = tree.query(points, predicate="within")
    order = np.argsort(pt_idx, kind="stable")
    pt_idx, poly_idx = pt_idx[order], poly_idx[order]
    first = np.unique(pt_idx, return_index=True)[1]
    out[pt_idx[first]] = np.asarray(compound_ids, dtype=np.int64)[poly_idx[first]]
    return out


def _as_points(points: object, net: CompiledNetwork) -> np.ndarray:
    """Shapely geometries (object array) or an ``(n, 2)`` float array of coordinates."""
    if isinstance(points, gpd.GeoSeries | gpd.GeoDataFrame):
        if points.crs is None:
            raise CRSError("points have no CRS; set it (e.g. points.set_crs('EPSG:4326'))")
        if not points.crs.equals(net.crs):
            points = points.to_crs(net.crs)
        series: gpd.GeoSeries = points.geometry if isinstance(points, gpd.GeoDataFrame) \
            else points
        geoms = np.array(series.to_numpy(), dtype=object)
    else:
        arr = np.asarray(points)
        if arr.dtype != object:
            if arr.ndim != 2 or arr.shape[1] != 2:
                raise InputError("points must be shapely Points or an (n, 2) coordinate array")
            return arr.astype(np.float64)
        geoms = arr
    return geoms


def compound_ids(points: gpd.GeoDataFrame,
                 compounds: gpd.GeoDataFrame | tuple[np.ndarray, np.ndarray] | None
                 ) -> np.ndarray:
    """Gated compound of each point: its ``compound_id`` column, else the polygon it is in.

    Parameters
    ----------
    points
        Points (households or facilities); a ``compound_id`` column wins when present
        (missing or non-numeric values mean "outside any compound").
    compounds
        Compound polygons with ``compound_id`` (else numbered by row), reprojected to the
        points' CRS; or ``(polygons, ids)`` arrays already in that CRS; or ``None``.

    Returns
    -------
    numpy.ndarray
        int64 compound id per point, -1 outside every compound.
    """
    if "compound_id" in points.columns:
        return pd.to_numeric(points["compound_id"], errors="coerce").fillna(-1).astype(
            np.int64).to_numpy()
    if compounds is None:
        return np.full(len(points), -1, dtype=np.int64)
    if isinstance(compounds, tuple):
        polygons, ids = compounds
    else:
        comp = compounds.to_crs(points.crs)
        polygons = comp.geometry.to_numpy()
        ids = comp["compound_id"].to_numpy() if "compound_id" in comp.columns else \
            np.arange(len(comp))
    return points_in_compounds(points.geometry.to_numpy(), polygons, ids)


def point_xy(geoms: np.ndarray) -> np.ndarray:
    """Coordinates of points (centroids of other geometries); NaN for missing/empty.

    Parameters
    ----------
    geoms
        Object array of shapely geometries; an ``(n, 2)`` float array is returned as is.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` float coordinates.
    """
    if geoms.dtype != object:
        return geoms
    xy = np.full((len(geoms), 2), np.nan)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    is_point = ok & (shapely.get_type_id(geoms) == 0)
    if is_point.any():
        xy[is_point] = shapely.get_coordinates(geoms[is_point])[:, :2]
    other = ok & ~is_point
    if other.any():
        xy[other] = shapely.get_coordinates(shapely.centroid(geoms[other]))[:, :2]
    return xy


def snap_points(
    net: CompiledNetwork,
    points: object,
    *,
    max_snap_m: float = 300.0,
    compound: np.ndarray | None = None,
) -> Anchors:
    """Project points onto their nearest street edge (vectorised, one spatial-index query).

    Points inside a gated compound (``compound`` >= 0) snap only to that compound's
    internal paths (``edge_compound`` equal to it), so their trips leave through a gate;
    other points snap only to public streets.  A compound without internal paths falls
    back to the public streets.  Points farther than ``max_snap_m`` are flagged
    ``SNAP_OFF_NETWORK``, never attached.

    Parameters
    ----------
    net
        Compiled network.
    points
        Shapely points (array / GeoSeries / GeoDataFrame; reprojected to the network CRS
        when they carry another CRS) or an ``(n, 2)`` array of coordinates in the
        network CRS.  Non-point geometries use their centroid.
    max_snap_m
        Longest allowed off-network access leg (metres).
    compound
        Compound id per point (-1 outside); see :func:`points_in_compounds`.

    Returns
    -------
    Anchors
    """
    geoms = _as_points(points, net)
    n = len(geoms)
    status = np.full(n, SNAP_OK, dtype=np.int8)
    xy = point_xy(geoms)
    bad = ~np.isfinite(xy).all(axis=1)
    status[bad] = SNAP_INVALID
    comp = np.full(n, -1, dtype=np.int64) if compound is None else np.asarray(compound, np.int64)
    if len(comp) != n:
        raise InputError(f"compound ids: {len(comp)} values for {n} points")
    # compounds that have internal paths keep their points; others fall back to public
    has_paths = np.isin(comp, net.edge_compound[net.edge_compound >= 0])
    comp = np.where(has_paths, comp, -1)
    ids = net.compound_ids
    group = np.where(comp >= 0, np.searchsorted(ids, comp) + 1, 0)
    group[bad] = 0
    edge, access, geom_offset, snapped = nearest_segments(net.segment_index, xy, group, max_snap_m)
    rows = np.flatnonzero(edge >= 0)
    e = edge[rows]
    geom_len = shapely.length(net.edge_geometry[e])
    frac = np.clip(geom_offset[rows] / np.where(geom_len > 0, geom_len, 1.0), 0.0, 1.0)
    offset = np.full(n, np.nan)
    offset[rows] = frac * net.edge_length_m[e]
    access[edge < 0] = np.nan
    unsnapped = np.ones(n, dtype=bool)
    unsnapped[rows] = False
    status[unsnapped & ~bad] = SNAP_OFF_NETWORK
    return Anchors(edge, offset, access, snapped, status, comp)
