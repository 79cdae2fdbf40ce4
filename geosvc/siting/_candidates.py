"""Candidate station sites: generated (street points, demand clusters) and the planner's own.

Generation (:func:`candidate_sites`), thinning to a stated maximum
(:func:`thin_network_candidates`), reading and checking the planner's sites
(:func:`read_candidates`, :func:`prepare_candidates`), their capacities, and snapping every
candidate onto the street it is reached from (:func:`snap_candidates`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geosvc._errors import InputError
from geosvc.access import Anchors, snap_points
from geosvc.diagnostics import warn
from geosvc.network import CompiledNetwork, points_along_edges

__all__ = ["KMEANS_MAX_POINTS", "MAX_GENERATED_CANDIDATES", "candidate_capacity",
           "candidate_sites", "limit_generated", "prepare_candidates", "read_candidates",
           "snap_candidates", "snap_points_of", "thin_network_candidates"]

log = logging.getLogger(__name__)


def candidate_sites(
    net: CompiledNetwork,
    *,
    spacing_m: float | None = 250.0,
    demand_xy: np.ndarray | None = None,
    demand_weight: np.ndarray | None = None,
    n_clusters: int = 0,
    user_sites: gpd.GeoDataFrame | None = None,
    seed: int = 0,
) -> gpd.GeoDataFrame:
    """Candidate station sites from three sources.

    * ``network``: points every ``spacing_m`` along the streets;
    * ``cluster``: k-means centres (scikit-learn, weighted by households) of the given
      demand (typically the uncovered households; above :data:`KMEANS_MAX_POINTS` points
      their weighted centroids per grid cell), later moved onto the network by snapping;
    * ``user``: sites the planner supplies (e.g. vacant lots, rooms for rent).

    Returns
    -------
    geopandas.GeoDataFrame
        ``candidate_id``, ``source`` and point geometry in the network CRS.
    """
    parts: list[gpd.GeoDataFrame] = []
    if spacing_m:
        xy, _ = points_along_edges(net, float(spacing_m))
        parts.append(gpd.GeoDataFrame({"source": "network"}, index=range(len(xy)),
                                      geometry=shapely.points(xy), crs=net.crs))
    if n_clusters and demand_xy is not None and len(demand_xy) > 0:
        from sklearn.cluster import KMeans

        k = int(min(n_clusters, len(demand_xy)))
        pts, pts_w = _binned_demand(np.asarray(demand_xy, dtype=float), demand_weight)
        km = KMeans(n_clusters=min(k, len(pts)), n_init=3, random_state=seed)
        km.fit(pts, sample_weight=pts_w)
        k = len(km.cluster_centers_)
        parts.append(gpd.GeoDataFrame({"source": "cluster"}, index=range(k),
                                      geometry=shapely.points(km.cluster_centers_), crs=net.crs))
    if user_sites is not None and len(user_sites):
        u = user_sites.to_crs(net.crs)
        ids = (u["candidate_id"].astype(str).to_numpy() if "candidate_id" in u.columns
               else np.array([f"U{i:05d}" for i in range(len(u))]))
        parts.append(gpd.GeoDataFrame({"source": "user", "candidate_id": ids,
                                       "user_row": np.arange(len(u))},
                                      index=range(len(u)), geometry=u.geometry.to_numpy(),
                                      crs=net.crs))
    if not parts:
        raise InputError("no candidate sites: give user sites, a spacing or clusters")
    out = pd.concat(parts, ignore_index=True)
    generated = out["source"].to_numpy() != "user"
    if "user_row" not in out.columns:
        out["user_row"] = -1
    out["user_row"] = out["user_row"].fillna(-1).astype(np.int64)
    gen_ids = np.array([f"C{i:05d}" for i in range(len(out))], dtype=object)
    if "candidate_id" in out.columns:
        clash = np.isin(gen_ids[generated], out.loc[~generated, "candidate_id"].to_numpy())
        if clash.any():
            raise InputError(f"user candidate id {gen_ids[generated][clash][0]!r} collides with "
                             "a generated candidate id (C00000...); rename it or set "
                             "candidates_only")
        out["candidate_id"] = np.where(generated, gen_ids, out["candidate_id"].astype(object))
    else:
        out["candidate_id"] = gen_ids
    out = out[["candidate_id", "source", "user_row", "geometry"]]
    return gpd.GeoDataFrame(out, geometry="geometry", crs=net.crs)


#: Above this many demand points, k-means runs on their weighted centroids per grid cell.
KMEANS_MAX_POINTS = 20_000


def _binned_demand(xy: np.ndarray, weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Demand points summed into square cells (weighted centroids) when there are many.

    The k-means centres are only candidate sites (the model then chooses exactly among
    them), so clustering a city's million households through ~:data:`KMEANS_MAX_POINTS`
    cell centroids loses nothing that matters and takes a fraction of the time.
    """
    w = np.ones(len(xy)) if weight is None else np.asarray(weight, dtype=float)
    if len(xy) <= KMEANS_MAX_POINTS:
        return xy, w
    lo = xy.min(axis=0)
    span = np.ptp(xy, axis=0)
    cell = max(float(np.sqrt(span[0] * span[1] / KMEANS_MAX_POINTS)), float(span.max()) / 1e4,
               1e-6)
    ij = np.floor((xy - lo) / cell).astype(np.int64)
    _, inv = np.unique(ij[:, 0] * (int(ij[:, 1].max()) + 1) + ij[:, 1], return_inverse=True)
    inv = inv.reshape(-1)
    cw = np.bincount(inv, weights=w)
    cx = np.bincount(inv, weights=w * xy[:, 0]) / cw
    cy = np.bincount(inv, weights=w * xy[:, 1]) / cw
    return np.column_stack([cx, cy]), cw


#: Upper limit on generated candidate sites (network points + clusters) per category: the
#: candidate x demand relation grows with it (369,719 candidates at city scale exhausted 24 GB).
MAX_GENERATED_CANDIDATES = 20_000


def thin_network_candidates(xy: np.ndarray, demand_xy: np.ndarray, reach_m: float, *,
                            max_candidates: int = MAX_GENERATED_CANDIDATES
                            ) -> tuple[np.ndarray, dict[str, Any]]:
    """Keep the generated street points that can matter, at most one per grid cell.

    Two steps, both vectorised:

    1. *exact*: a point with no open demand within ``reach_m`` in a straight line covers
       nothing new (a walk is never shorter than the straight line), so it is dropped;
    2. *spacing*, only when more than ``max_candidates`` remain: one point per square cell
       of ``reach_m / 4`` (the point nearest the cell centre), the cell growing by 25 % until
       at most ``max_candidates`` remain.  A quarter of the reach moves a station by at most
       ~18 % of its reach, so little coverage is lost; the cell used is reported.

    Returns
    -------
    keep, info
        Indices of the kept points and what was done (counts, cell size).
    """
    from scipy.spatial import cKDTree

    info: dict[str, Any] = {"street_points": int(len(xy)), "max_candidates": int(max_candidates)}
    if len(xy) == 0:
        return np.zeros(0, dtype=np.int64), info
    if len(demand_xy):
        dist, _ = cKDTree(demand_xy).query(xy, k=1, distance_upper_bound=reach_m * (1 + 1e-9))
        near = np.flatnonzero(np.isfinite(dist))
    else:
        near = np.zeros(0, dtype=np.int64)
    info["near_open_demand"] = int(near.size)
    if near.size <= max_candidates:
        info["cell_m"] = None
        info["kept"] = int(near.size)
        return near, info
    cell = reach_m / 4.0
    while True:
        ij = np.floor(xy[near] / cell).astype(np.int64)
        centre = (ij + 0.5) * cell
        off = np.hypot(*(xy[near] - centre).T)
        ij = ij - ij.min(axis=0)
        key = ij[:, 0] * (int(ij[:, 1].max()) + 1) + ij[:, 1]
        order = np.lexsort((near, off, key))
        first = np.ones(order.size, dtype=bool)
        first[1:] = key[order][1:] != key[order][:-1]
        keep = np.sort(near[order[first]])
        if keep.size <= max_candidates:
            break
        cell *= 1.25
    info["cell_m"] = float(cell)
    info["kept"] = int(keep.size)
    return keep, info


def read_candidates(path: str | Path, *, layer: str | None = None,
                    id_column: str | None = None, coord_system: str = "wgs84"
                    ) -> gpd.GeoDataFrame:
    """Read the planner's candidate sites (vacant rooms, lots, community centres).

    Parameters
    ----------
    path
        GeoPackage, Shapefile or GeoJSON with point (or polygon) geometries.
    layer
        Layer name (GeoPackage with several layers).
    id_column
        Column holding each site's id (unique); default ``candidate_id`` if present, else
        ``U00000``... in file order.
    coord_system
        ``wgs84`` (default), ``gcj02`` or ``bd09`` for Chinese web-map coordinates.

    Returns
    -------
    geopandas.GeoDataFrame
        The file's rows and columns unchanged, plus ``candidate_id`` (str).
    """
    from geosvc.demand import read_points

    gdf = read_points(path, layer=layer, coord_system=coord_system, what="candidates")
    return prepare_candidates(gdf, id_column=id_column, where=str(path))


def prepare_candidates(frame: gpd.GeoDataFrame, *, id_column: str | None = None,
                       where: str = "candidates") -> gpd.GeoDataFrame:
    """Check user candidates and give each a string ``candidate_id`` (the planner's id).

    Raises
    ------
    InputError
        Missing id column, duplicate or empty ids, missing or empty geometries.
    """
    if frame.crs is None:
        raise InputError(f"{where}: the candidate layer has no CRS; set it (e.g. EPSG:4326)")
    out = frame.copy()
    col = id_column or ("candidate_id" if "candidate_id" in out.columns else None)
    if col is not None:
        if col not in out.columns:
            raise InputError(f"{where}: candidate id column {col!r} not found; columns are "
                             f"{[c for c in out.columns if c != out.geometry.name]}")
        raw = out[col]
        empty = raw.isna().to_numpy() | (raw.astype(str).str.strip() == "").to_numpy()
        if empty.any():
            raise InputError(f"{where}: row {int(np.argmax(empty))} has no {col!r}; give "
                             "every candidate an id")
        ids = raw.astype(str).to_numpy()
        dup = pd.Series(ids).duplicated(keep=False).to_numpy()
        if dup.any():
            raise InputError(f"{where}: candidate id {ids[dup][0]!r} appears "
                             f"{int((ids == ids[dup][0]).sum())} times in {col!r}; ids must "
                             "be unique")
    else:
        ids = np.array([f"U{i:05d}" for i in range(len(out))])
    geom = out.geometry.to_numpy()
    bad = shapely.is_missing(geom) | shapely.is_empty(geom)
    if bad.any():
        raise InputError(f"{where}: candidate {ids[bad][0]!r} (row {int(np.argmax(bad))}) has "
                         "no geometry; drop it or give it a location")
    out["candidate_id"] = ids
    return out


def candidate_capacity(user: gpd.GeoDataFrame | None, cands: gpd.GeoDataFrame,
                        column: str | None, default: float) -> np.ndarray:
    """Capacity (households) per candidate: the user's column, ``default`` elsewhere."""
    caps = np.full(len(cands), float(default))
    if column is None:
        return caps
    if user is None:
        raise InputError(f"capacity column {column!r} needs user candidates (candidates=...)")
    if column not in user.columns:
        raise InputError(f"candidates: capacity column {column!r} not found; columns are "
                         f"{[c for c in user.columns if c != user.geometry.name]}")
    vals = pd.to_numeric(user[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(vals) | (vals < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"candidates: {column!r} of candidate "
                         f"{user['candidate_id'].iloc[i]!r} is {user[column].iloc[i]!r}; "
                         "give a number of households >= 0")
    rows = cands["user_row"].to_numpy()
    caps[rows >= 0] = vals[rows[rows >= 0]]
    return caps



def limit_generated(cands: gpd.GeoDataFrame, open_xy: np.ndarray | None, reach_m: float,
                     max_candidates: int) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Thin the generated street points of ``cands`` (:func:`thin_network_candidates`)."""
    street = np.flatnonzero(cands["source"].to_numpy() == "network")
    if street.size == 0:
        return cands, {"street_points": 0}
    xy = shapely.get_coordinates(cands.geometry.to_numpy()[street])
    demand = open_xy if open_xy is not None else np.zeros((0, 2))
    keep, info = thin_network_candidates(xy, demand, reach_m, max_candidates=max_candidates)
    mask = np.ones(len(cands), dtype=bool)
    mask[street] = False
    mask[street[keep]] = True
    if info["kept"] < info["street_points"]:
        log.info("candidates: %d street points -> %d (%d near open demand; cell %s m)",
                 info["street_points"], info["kept"], info["near_open_demand"],
                 info["cell_m"])
    return cands.loc[mask].reset_index(drop=True), info


def snap_points_of(geom: np.ndarray) -> np.ndarray:
    """Points to snap: the geometry itself for points, a point inside it otherwise."""
    is_point = shapely.get_type_id(geom) == 0
    return np.where(is_point, geom, shapely.point_on_surface(geom))


def _street(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = ";".join(str(v) for v in value if v)
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)




def snap_candidates(net: CompiledNetwork, cands: gpd.GeoDataFrame, *, max_snap_m: float,
                    category: str) -> tuple[gpd.GeoDataFrame, Anchors]:
    """Snap the candidates onto the network; drop (and warn about) those too far from a street.

    Generated sites move onto the street; the planner's sites keep their own geometry.  Every
    kept candidate gets ``snapped_x``/``snapped_y``, ``snap_distance_m`` and the
    ``road_name`` it is reached from.

    Returns
    -------
    candidates, anchors
        The kept candidates (fresh index) and their network anchors, row for row.
    """
    c_anchor = snap_points(net, snap_points_of(cands.geometry.to_numpy()), max_snap_m=max_snap_m)
    keep = c_anchor.ok
    lost_user = ~keep & (cands["source"].to_numpy() == "user")
    if lost_user.any():
        warn("candidates_not_snapped",
             f"{int(lost_user.sum())} of the planner's candidate sites are farther than "
             f"{max_snap_m:g} m from any street and cannot be proposed "
             f"(e.g. {cands['candidate_id'].to_numpy()[lost_user][0]!r})",
             category=category, candidate_ids=cands["candidate_id"].to_numpy()[lost_user]
             [:50].tolist())
    cands = cands.loc[keep].reset_index(drop=True)
    c_anchor = c_anchor.subset(keep)
    generated = cands["user_row"].to_numpy() < 0
    # generated sites sit on the street; the planner's sites keep their own geometry
    snapped = np.asarray(shapely.points(c_anchor.snapped_xy), dtype=object)
    cands["geometry"] = np.where(generated, snapped, cands.geometry.to_numpy())
    cands["snapped_x"] = c_anchor.snapped_xy[:, 0]
    cands["snapped_y"] = c_anchor.snapped_xy[:, 1]
    cands["snap_distance_m"] = c_anchor.access_m
    names = net.edge_attrs.get("name")
    cands["road_name"] = (pd.Series(np.asarray(names, dtype=object)[c_anchor.edge]).map(_street)
                          .to_numpy() if names is not None else "")
    return cands, c_anchor
