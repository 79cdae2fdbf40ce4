"""Siting on the map: candidates, the coverage relation, and ranked station proposals.

The optimisation itself is array-level (:mod:`geosvc.locate`); this module turns a coverage
run into its inputs (demand aggregated to network anchors, candidate sites, the sparse
candidate x demand relation within the walking threshold) and its output back into ranked,
mapped stations with the households and elderly each one newly covers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from geosvc import locate, resources
from geosvc._errors import InputError, MemoryLimitError
from geosvc.access import (
    RELATION_BYTES_PER_PAIR,
    Anchors,
    coverage_relation,
    mean_pairs_per_source,
    snap_points,
)
from geosvc.coverage import CoverageResult
from geosvc.diagnostics import warn
from geosvc.io import write_csv, write_gpkg
from geosvc.network import CompiledNetwork, points_along_edges
from geosvc.progress import chunk_progress

__all__ = ["SitingPlan", "candidate_sites", "read_candidates", "prepare_candidates",
           "thin_network_candidates", "MAX_GENERATED_CANDIDATES",
           "aggregate_demand", "propose_sites", "write_siting", "MODELS"]

log = logging.getLogger(__name__)

MODELS = ("max-coverage", "set-cover", "p-median", "capacitated")


@dataclass
class SitingPlan:
    """A ranked proposal of new stations for one category."""

    category: str
    model: str
    plan: locate.Plan
    stations: gpd.GeoDataFrame
    curve: pd.DataFrame
    coverage_before: float
    coverage_after: float
    weight: str
    n_candidates: int
    uncoverable_ids: list[Any] = field(default_factory=list)
    uncoverable_households: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One paragraph for the console."""
        p = self.plan
        text = (f"{self.category}: {self.model} ({p.solver}) proposes {len(self.stations)} "
                f"stations from {self.n_candidates} candidates; household coverage "
                f"{self.coverage_before:.1%} -> {self.coverage_after:.1%}; objective "
                f"{p.objective:.1f}, bound {p.bound:.1f}, gap {p.gap:.2%} ({p.status})")
        if self.uncoverable_ids:
            text += (f"; {len(self.uncoverable_ids)} rows ({self.uncoverable_households:.0f} "
                     "households) have no candidate within the threshold")
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (for ``summary.json``)."""
        return {
            "model": self.model, "solver": self.plan.solver, "k": int(len(self.stations)),
            "weight": self.weight, "n_candidates": self.n_candidates,
            "objective": self.plan.objective, "bound": self.plan.bound, "gap": self.plan.gap,
            "status": self.plan.status, "runtime_s": self.plan.runtime_s,
            "coverage_before": self.coverage_before, "coverage_after": self.coverage_after,
            "households_newly_covered": float(self.stations["households_new"].sum())
            if len(self.stations) else 0.0,
            "elderly_newly_covered": float(self.stations["elderly_new"].sum())
            if len(self.stations) else 0.0,
            "uncoverable_rows": len(self.uncoverable_ids),
            "uncoverable_households": self.uncoverable_households,
            "uncoverable_ids_sample": [str(v) for v in self.uncoverable_ids[:50]],
            **self.info,
        }


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


def _candidate_capacity(user: gpd.GeoDataFrame | None, cands: gpd.GeoDataFrame,
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


def aggregate_demand(anchors: Anchors, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group demand rows that sit on the same network anchor (same edge, offset, access).

    Exact: rows in one group have identical distances to every site.

    Returns
    -------
    group_of_row, representative_row
        ``group_of_row[i]`` is the group of ``rows[i]``; ``representative_row[g]`` one row
        of group ``g``.
    """
    key = np.column_stack([anchors.edge[rows].astype(np.float64),
                           np.round(anchors.offset_m[rows], 3),
                           np.round(anchors.access_m[rows], 3)])
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return inverse.reshape(-1), rows[first]


def propose_sites(
    net: CompiledNetwork,
    coverage: CoverageResult,
    *,
    category: str,
    model: str = "max-coverage",
    k: int = 10,
    target: float = 0.95,
    solver: Literal["greedy", "exact"] = "greedy",
    candidates: gpd.GeoDataFrame | None = None,
    candidates_path: str | Path | None = None,
    candidates_layer: str | None = None,
    candidates_id: str | None = None,
    candidates_only: bool = False,
    capacity_column: str | None = None,
    spacing_m: float = 250.0,
    n_clusters: int = 40,
    max_candidates: int = MAX_GENERATED_CANDIDATES,
    station_floor_area_m2: float = 300.0,
    time_limit_s: float = 60.0,
    seed: int = 0,
) -> SitingPlan:
    """Propose new stations for ``category`` from a coverage run.

    Demand is every valid, snapped household row (weight: the category's
    ``demand_weight``, elderly for elderly care, households for convenience); rows already
    covered by existing facilities count as covered (existing facilities are fixed).
    A new convenience station is taken to offer all basic types (a community commercial
    point).  Rows that no candidate can reach within the threshold are reported, and the
    model is solved for the rest.

    Parameters
    ----------
    net
        The compiled network of the coverage run.
    coverage
        Result of :func:`geosvc.coverage.analyse_coverage`.
    category
        Category to site.
    model
        ``max-coverage`` (k stations, most weight covered), ``set-cover`` (fewest stations
        to reach ``target`` of the weight), ``p-median`` (k stations, least total weighted
        walking distance) or ``capacitated`` (k stations of ``station_floor_area_m2`` each,
        serving at most floor area / norm x 100 households).
    k, target, solver, time_limit_s
        Model options; ``solver`` is ``greedy`` (with a proven bound) or ``exact`` (HiGHS).
    candidates, candidates_path, candidates_layer, candidates_id
        The planner's candidate sites, as a frame or a file (layer, id column).  They keep
        their id (``candidate_id``), every column and their original geometry; the point
        on the street they are reached from is in ``snapped_x``/``snapped_y``
        (``snap_distance_m`` away).  Network points every ``spacing_m`` and ``n_clusters``
        k-means centres of uncovered demand are added unless ``candidates_only``.
    candidates_only
        Choose among the planner's candidates only (no generated sites).
    max_candidates
        At most this many generated street points: those with no open demand within the
        reach in a straight line are dropped (they cannot cover anything new), the rest
        thinned to one per grid cell (:func:`thin_network_candidates`); counts and cell size
        in ``info["candidate_generation"]``.  The planner's sites are never dropped.
    capacity_column
        Capacitated model: column of the planner's candidates with each site's capacity in
        households (generated sites get the ``station_floor_area_m2`` capacity).

    Stations also carry the road they are reached from (``road_name``, the network's ``name``)
    and, for every area level of the coverage run, the area containing them
    (``<level>_id``, ``<level>_name``).
    """
    if model not in MODELS:
        raise InputError(f"unknown siting model {model!r}; choose one of {', '.join(MODELS)}")
    prof = coverage.profile
    cat = prof.category(category)
    if category not in coverage.categories:
        raise InputError(f"category {category!r} was not analysed; analysed: "
                         f"{', '.join(coverage.categories)}")
    hh = coverage.households
    status = hh[f"status_{category}"].to_numpy()
    anchors = coverage.household_anchors
    usable = np.isin(status, ["covered", "uncovered", "unreachable"])
    rows = np.flatnonzero(usable)
    households = np.nan_to_num(hh["households"].to_numpy(dtype=float))
    elderly = np.nan_to_num(hh["elderly"].to_numpy(dtype=float))
    weight_name = cat.demand_weight if cat.demand_weight in ("households", "elderly", "persons") \
        else "households"
    if weight_name != "households" and not np.nansum(hh[weight_name].to_numpy(dtype=float)) > 0:
        weight_name = "households"
    if model == "capacitated":
        weight_name = "households"
    w_row = np.nan_to_num(hh[weight_name].to_numpy(dtype=float)).clip(min=0.0)
    group, rep = aggregate_demand(anchors, rows)
    n_groups = len(rep)
    w = np.bincount(group, weights=w_row[rows], minlength=n_groups)
    covered_now = status[rows] == "covered"
    fixed = np.bincount(group, weights=covered_now.astype(float), minlength=n_groups) > 0
    # candidates
    user = None
    if candidates_path is not None:
        user = read_candidates(candidates_path, layer=candidates_layer, id_column=candidates_id)
    elif candidates is not None:
        user = prepare_candidates(candidates, id_column=candidates_id)
    if candidates_only:
        if user is None or not len(user):
            raise InputError("candidates_only needs candidate sites: pass candidates= or a "
                             "candidates file")
        spacing_m, n_clusters = 0.0, 0
    gap_rows = rows[~covered_now]
    xy = np.column_stack([hh.geometry.x.to_numpy()[gap_rows], hh.geometry.y.to_numpy()[gap_rows]]) \
        if len(gap_rows) else None
    cands = candidate_sites(net, spacing_m=spacing_m, demand_xy=xy,
                            demand_weight=w_row[gap_rows] + 1e-9 if len(gap_rows) else None,
                            n_clusters=n_clusters if len(gap_rows) else 0, user_sites=user,
                            seed=seed)
    cands, gen_info = _limit_generated(cands, xy, cat.reach_m * (2.0 if model == "p-median"
                                                                  else 1.0), max_candidates)
    c_anchor = snap_points(net, _snap_points_of(cands.geometry.to_numpy()),
                           max_snap_m=prof.max_snap_m)
    keep = c_anchor.ok
    lost_user = ~keep & (cands["source"].to_numpy() == "user")
    if lost_user.any():
        warn("candidates_not_snapped",
             f"{int(lost_user.sum())} of the planner's candidate sites are farther than "
             f"{prof.max_snap_m:g} m from any street and cannot be proposed "
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
    d_anchor = anchors.subset(rep)
    reach = cat.reach_m
    cost_m = 2.0 * reach if model == "p-median" else None
    fit = _fit_relation(net, c_anchor, d_anchor, reach, cost_m, cands, xy, category)
    if fit.keep is not None:
        cands = cands.iloc[fit.keep].reset_index(drop=True)
        c_anchor = c_anchor.subset(fit.keep)
    with chunk_progress(f"candidate relation ({category})", unit="candidate") as on_chunk:
        rel = coverage_relation(net, c_anchor, d_anchor, reach, cost_limit_m=cost_m,
                                on_chunk=on_chunk)
    cov = rel.covers
    reachable = np.bincount(cov.indices, minlength=n_groups) > 0
    uncoverable = ~reachable & ~fixed
    unc_rows = rows[uncoverable[group]]
    info: dict[str, Any] = {"demand_groups": int(n_groups), "demand_rows": int(len(rows)),
                            "pairs": int(cov.nnz), "reach_m": reach,
                            "relation": {**fit.info, "pairs": int(cov.nnz),
                                         "chunks": rel.chunks,
                                         "bytes": int(cov.indices.nbytes + cov.indptr.nbytes
                                                      + cov.data.nbytes)}}
    plan = _solve(model, cov, w, fixed, k=k, target=target, solver=solver,
                  time_limit_s=time_limit_s, costs=rel.costs, n_cand=len(cands),
                  n_groups=n_groups, capacity=_candidate_capacity(
                      user, cands, capacity_column if model == "capacitated" else None,
                      station_floor_area_m2 / cat.floor_area_per_100hh_m2 * 100.0),
                      info=info)
    info["candidates"] = {src: int(n) for src, n in cands["source"].value_counts().items()}
    info["candidate_generation"] = gen_info
    stations, curve, before, after = _rank(plan, cands, cov, group, rows, fixed, households,
                                           elderly, hh, category, usable,
                                           capacitated=model == "capacitated")
    stations = _describe_stations(stations, cands, plan.sites, user, coverage.areas)
    return SitingPlan(category, model, plan, stations, curve, before, after, weight_name,
                      len(cands), hh["hh_id"].to_numpy()[unc_rows].tolist(),
                      float(households[unc_rows].sum()), info)


def _solve(model: str, cov: sp.csr_matrix, w: np.ndarray, fixed: np.ndarray, *, k: int,
           target: float, solver: Literal["greedy", "exact"], time_limit_s: float,
           costs: sp.csr_array | None, n_cand: int, n_groups: int,
           capacity: np.ndarray, info: dict[str, Any]) -> locate.Plan:
    k = int(min(k, n_cand))
    if model == "max-coverage":
        return locate.max_coverage(cov, w, k, fixed_covered=fixed, solver=solver,
                                   time_limit_s=time_limit_s)
    if model == "set-cover":
        return locate.set_cover(cov, w, target=target, fixed_covered=fixed, solver=solver,
                                time_limit_s=time_limit_s)
    if model == "capacitated":
        caps = capacity
        if np.ptp(caps) == 0 if len(caps) else True:
            info["station_capacity_households"] = float(caps[0]) if len(caps) else 0.0
        else:
            info["station_capacity_households"] = "per candidate"
        return locate.capacitated_coverage(cov, w, caps, k, fixed_covered=fixed,
                                           solver=solver, time_limit_s=time_limit_s)
    # p-median over the demand not yet covered.  Walking distances are searched up to
    # twice the reach, which caps every cost: demand may be left "unserved" at the cap, so
    # the model stays feasible with few stations (a capped p-median).
    assert costs is not None  # built with cost_limit_m for the p-median
    cap_m = 2.0 * float(info["reach_m"])
    need = np.flatnonzero(~fixed)
    info["p_median_demand_groups"] = int(len(need))
    info["p_median_cap_m"] = cap_m
    plan = locate.p_median(sp.csr_array(costs[:, need]), w[need], k, cost_cap=cap_m,
                           solver=solver, time_limit_s=time_limit_s)
    return plan


def _rank(plan: locate.Plan, cands: gpd.GeoDataFrame, cov: sp.csr_matrix, group: np.ndarray,
          rows: np.ndarray, fixed: np.ndarray, households: np.ndarray, elderly: np.ndarray,
          hh: gpd.GeoDataFrame, category: str, usable: np.ndarray, *, capacitated: bool = False
          ) -> tuple[gpd.GeoDataFrame, pd.DataFrame, float, float]:
    """Stations in plan order with the households/elderly each newly covers (in sequence).

    For the capacitated model a station newly serves what its capacity allows (the plan's
    marginal served households), not everyone within reach; its elderly are that share of
    the elderly it newly reaches.
    """
    total_hh = float(households[(hh["invalid_reason"] == "").to_numpy()].sum())
    hh_g = np.bincount(group, weights=households[rows], minlength=cov.shape[1])
    el_g = np.bincount(group, weights=elderly[rows], minlength=cov.shape[1])
    covered = fixed.copy()
    before = float(hh_g[covered].sum() / total_hh) if total_hh else float("nan")
    recs = []
    csr = cov.tocsr()
    served_total = float(hh_g[covered].sum())
    for rank, site in enumerate(plan.sites.tolist(), start=1):  # k stations, not a hot path
        cols = csr.indices[csr.indptr[site]:csr.indptr[site + 1]]
        new = cols[~covered[cols]]
        covered[new] = True
        reach_hh, reach_el = float(hh_g[new].sum()), float(el_g[new].sum())
        if capacitated:
            served = min(float(plan.marginal[rank - 1]), reach_hh) if reach_hh else 0.0
            share = served / reach_hh if reach_hh else 0.0
            new_hh, new_el = served, reach_el * share
        else:
            new_hh, new_el = reach_hh, reach_el
        served_total += new_hh
        recs.append({"rank": rank, "candidate_id": cands["candidate_id"].iloc[site],
                     "source": cands["source"].iloc[site], "category": category,
                     "households_new": new_hh,
                     "elderly_new": new_el,
                     "coverage_rate_cumulative": served_total / total_hh
                     if total_hh else float("nan"),
                     "marginal_objective": float(plan.marginal[rank - 1])
                     if rank - 1 < len(plan.marginal) else float("nan")})
    after = served_total / total_hh if total_hh else float("nan")
    table = pd.DataFrame(recs, columns=["rank", "candidate_id", "source", "category",
                                        "households_new", "elderly_new",
                                        "coverage_rate_cumulative", "marginal_objective"])
    geom = cands.geometry.to_numpy()[plan.sites] if len(plan.sites) else []
    stations = gpd.GeoDataFrame(table, geometry=list(geom), crs=cands.crs)
    if len(stations):
        pts = gpd.GeoSeries(_snap_points_of(stations.geometry.to_numpy()), crs=cands.crs)
        ll = pts.to_crs(4326)
        stations["lon"] = ll.x.to_numpy()
        stations["lat"] = ll.y.to_numpy()
        stations["x"] = pts.x.to_numpy()
        stations["y"] = pts.y.to_numpy()
    curve = pd.DataFrame({"n_stations": np.arange(len(table) + 1),
                          "coverage_rate": [before] + table["coverage_rate_cumulative"].tolist(),
                          "category": category})
    return stations, curve, before, after


#: Share of the free memory budget the candidate x demand relation may take.
RELATION_MEMORY_SHARE = 0.5
#: Bytes a stored p-median cost pair takes (float64 distance + int32 index).
_COST_BYTES_PER_PAIR = 12


@dataclass
class _Fit:
    keep: np.ndarray | None
    info: dict[str, Any]


def _fit_relation(net: CompiledNetwork, c_anchor: Anchors, d_anchor: Anchors, reach_m: float,
                  cost_m: float | None, cands: gpd.GeoDataFrame, open_xy: np.ndarray | None,
                  category: str) -> _Fit:
    """Plan the relation's memory before building it; thin generated sites if it cannot fit.

    The pairs per candidate are measured on a sample of 256 candidates; the relation
    (:data:`~geosvc.access.RELATION_BYTES_PER_PAIR` a pair, plus the cost pairs of the
    p-median) may take :data:`RELATION_MEMORY_SHARE` of what the budget leaves.  When the
    candidates need more, the generated street points are thinned (one per grid cell,
    :func:`thin_network_candidates`) with a ``candidates_thinned_for_memory`` warning; the
    planner's sites and the demand-cluster centres are never dropped, and when they alone
    cannot fit the run stops (exit 2) saying what to change.
    """
    n = len(c_anchor.edge)
    per, per_cost = mean_pairs_per_source(net, c_anchor, d_anchor, reach_m,
                                          cost_m if cost_m else reach_m)
    per_cost = per_cost if cost_m else 0.0
    bytes_per_cand = per * RELATION_BYTES_PER_PAIR + per_cost * _COST_BYTES_PER_PAIR
    avail = resources.available_bytes(share=RELATION_MEMORY_SHARE)
    info: dict[str, Any] = {"pairs_per_candidate_sampled": round(per, 1),
                            "projected_bytes": int(bytes_per_cand * n),
                            "budget_bytes": int(avail)}
    if bytes_per_cand * n <= avail or n == 0:
        return _Fit(None, info)
    allowed = int(avail // max(bytes_per_cand, 1.0))
    street = np.flatnonzero(cands["source"].to_numpy() == "network")
    fixed = np.flatnonzero(cands["source"].to_numpy() != "network")
    if fixed.size > allowed or allowed - fixed.size < 1:
        raise MemoryLimitError(
            f"siting {category}: the candidate x demand relation of the {fixed.size:,} "
            f"planner/cluster candidates needs about "
            f"{resources.format_bytes(bytes_per_cand * fixed.size)} but the memory budget "
            f"leaves {resources.format_bytes(avail)}; raise --memory-limit (config [run] "
            "memory_limit), give fewer candidates or site one district at a time")
    xy = np.column_stack([cands["snapped_x"].to_numpy()[street],
                          cands["snapped_y"].to_numpy()[street]])
    demand = open_xy if open_xy is not None else np.zeros((0, 2))
    kept, thin = thin_network_candidates(xy, demand, reach_m,
                                         max_candidates=allowed - fixed.size)
    keep = np.sort(np.concatenate([fixed, street[kept]]))
    info.update({"thinned_for_memory": True, "candidates_before": int(n),
                 "candidates_after": int(keep.size), "cell_m": thin.get("cell_m")})
    warn("candidates_thinned_for_memory",
         f"siting {category}: {n:,} candidates would need about "
         f"{resources.format_bytes(bytes_per_cand * n)} for the candidate x demand relation; "
         f"the memory budget leaves {resources.format_bytes(avail)}, so the generated street "
         f"points were thinned to {keep.size:,} candidates (one per "
         f"{thin.get('cell_m') or 0:.0f} m cell); the plan is optimal among these. Raise "
         "--memory-limit to keep more", category=category, candidates_before=int(n),
         candidates_after=int(keep.size))
    return _Fit(keep, info)


def _limit_generated(cands: gpd.GeoDataFrame, open_xy: np.ndarray | None, reach_m: float,
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


def _snap_points_of(geom: np.ndarray) -> np.ndarray:
    """Points to snap: the geometry itself for points, a point inside it otherwise."""
    is_point = shapely.get_type_id(geom) == 0
    return np.where(is_point, geom, shapely.point_on_surface(geom))


def _street(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = ";".join(str(v) for v in value if v)
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _describe_stations(stations: gpd.GeoDataFrame, cands: gpd.GeoDataFrame, sites: np.ndarray,
                       user: gpd.GeoDataFrame | None,
                       areas: dict[str, gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Add street, areas, snapped point and (for the planner's sites) their own columns."""
    out = stations.copy()
    chosen = cands.iloc[np.asarray(sites, dtype=np.int64)]
    for col in ("road_name", "snapped_x", "snapped_y", "snap_distance_m"):
        out[col] = chosen[col].to_numpy()
    geom = out.geometry.to_numpy()
    for level, frame in (areas or {}).items():
        f = frame.to_crs(out.crs)
        ids = np.full(len(out), None, dtype=object)
        labels = np.full(len(out), None, dtype=object)
        if len(out) and len(f):
            pts = _snap_points_of(geom)
            hit_pt, hit_area = shapely.STRtree(f.geometry.to_numpy()).query(
                pts, predicate="intersects")
            first = np.unique(hit_pt, return_index=True)[1]
            hit_pt, hit_area = hit_pt[first], hit_area[first]
            if "area_id" in f.columns:
                ids[hit_pt] = f["area_id"].to_numpy()[hit_area]
            if "name" in f.columns:
                labels[hit_pt] = f["name"].to_numpy()[hit_area]
        out[f"{level}_id"] = ids
        out[f"{level}_name"] = labels
    if user is not None and len(out):
        rows = chosen["user_row"].to_numpy()
        extra = [c for c in user.columns if c not in (user.geometry.name, "candidate_id")]
        for col in extra:
            name = col if col not in out.columns else f"user_{col}"
            vals = np.full(len(out), None, dtype=object)
            vals[rows >= 0] = user[col].to_numpy()[rows[rows >= 0]]
            out[name] = pd.Series(vals, index=out.index).infer_objects()
    return out


def write_siting(plans: dict[str, SitingPlan], out_dir: str | Path) -> None:
    """Write ``siting.gpkg`` (layer per category), ``siting.csv`` and ``siting_curve.csv``."""
    out = Path(out_dir)
    layers = {f"stations_{cat}": p.stations for cat, p in plans.items()}
    write_gpkg(layers, out / "siting.gpkg")
    table = pd.concat([pd.DataFrame(p.stations.drop(columns="geometry")).assign(
        model=p.model, solver=p.plan.solver) for p in plans.values()], ignore_index=True)
    write_csv(table, out / "siting.csv")
    curve = pd.concat([p.curve for p in plans.values()], ignore_index=True)
    write_csv(curve, out / "siting_curve.csv")
