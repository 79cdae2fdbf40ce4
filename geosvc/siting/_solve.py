"""Solving a siting model over the relation, and the plan back on the map.

:func:`solve_model` hands the relation to :mod:`geosvc.locate`; :func:`rank_stations` turns
the plan into ranked stations with the households and elderly each newly covers and the
coverage curve; :func:`describe_stations` adds street, areas and the planner's columns.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from geosvc import locate
from geosvc.access import Relation
from geosvc.siting._candidates import snap_points_of
from geosvc.siting._options import ProposeOptions
from geosvc.siting._relation import DemandGroups

__all__ = ["describe_stations", "rank_stations", "solve_model"]


def solve_model(opts: ProposeOptions, rel: Relation, demand: DemandGroups, *, n_cand: int,
                capacity: np.ndarray, info: dict[str, Any]) -> locate.Plan:
    """Solve ``opts.model`` over the relation; model facts go into ``info``."""
    cov, w, fixed, solver = rel.covers, demand.weight, demand.fixed, opts.solver
    k = int(min(opts.k, n_cand))
    if opts.model == "max-coverage":
        return locate.max_coverage(cov, w, k, fixed_covered=fixed, solver=solver,
                                   time_limit_s=opts.time_limit_s)
    if opts.model == "set-cover":
        return locate.set_cover(cov, w, target=opts.target, fixed_covered=fixed, solver=solver,
                                time_limit_s=opts.time_limit_s)
    if opts.model == "capacitated":
        caps = capacity
        if np.ptp(caps) == 0 if len(caps) else True:
            info["station_capacity_households"] = float(caps[0]) if len(caps) else 0.0
        else:
            info["station_capacity_households"] = "per candidate"
        return locate.capacitated_coverage(cov, w, caps, k, fixed_covered=fixed,
                                           solver=solver, time_limit_s=opts.time_limit_s)
    # p-median over the demand not yet covered.  Walking distances are searched up to
    # twice the reach, which caps every cost: demand may be left "unserved" at the cap, so
    # the model stays feasible with few stations (a capped p-median).
    costs = rel.costs
    assert costs is not None  # built with cost_limit_m for the p-median
    cap_m = 2.0 * float(info["reach_m"])
    need = np.flatnonzero(~fixed)
    info["p_median_demand_groups"] = int(len(need))
    info["p_median_cap_m"] = cap_m
    plan = locate.p_median(sp.csr_array(costs[:, need]), w[need], k, cost_cap=cap_m,
                           solver=solver, time_limit_s=opts.time_limit_s)
    return plan


def rank_stations(plan: locate.Plan, cands: gpd.GeoDataFrame, cov: sp.csr_array,
                  demand: DemandGroups, hh: gpd.GeoDataFrame, category: str, *,
                  capacitated: bool = False
                  ) -> tuple[gpd.GeoDataFrame, pd.DataFrame, float, float]:
    """Stations in plan order with the households/elderly each newly covers (in sequence).

    For the capacitated model a station newly serves what its capacity allows (the plan's
    marginal served households), not everyone within reach; its elderly are that share of
    the elderly it newly reaches.
    """
    group, rows, households = demand.group, demand.rows, demand.households
    total_hh = float(households[(hh["invalid_reason"] == "").to_numpy()].sum())
    hh_g = np.bincount(group, weights=households[rows], minlength=cov.shape[1])
    el_g = np.bincount(group, weights=demand.elderly[rows], minlength=cov.shape[1])
    covered = demand.fixed.copy()
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
        pts = gpd.GeoSeries(snap_points_of(stations.geometry.to_numpy()), crs=cands.crs)
        ll = pts.to_crs(4326)
        stations["lon"] = ll.x.to_numpy()
        stations["lat"] = ll.y.to_numpy()
        stations["x"] = pts.x.to_numpy()
        stations["y"] = pts.y.to_numpy()
    curve = pd.DataFrame({"n_stations": np.arange(len(table) + 1),
                          "coverage_rate": [before] + table["coverage_rate_cumulative"].tolist(),
                          "category": category})
    return stations, curve, before, after



def describe_stations(stations: gpd.GeoDataFrame, cands: gpd.GeoDataFrame, sites: np.ndarray,
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
            pts = snap_points_of(geom)
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

