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

from geosvc import locate
from geosvc._errors import InputError
from geosvc.access import Anchors, snap_points
from geosvc.access._pairs import pairs_within
from geosvc.coverage import CoverageResult
from geosvc.io import write_csv, write_gpkg
from geosvc.network import CompiledNetwork, points_along_edges

__all__ = ["SitingPlan", "candidate_sites", "aggregate_demand", "propose_sites", "write_siting",
           "MODELS"]

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
      demand (typically the uncovered households), later moved onto the network by
      snapping;
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
        km = KMeans(n_clusters=k, n_init=3, random_state=seed)
        km.fit(demand_xy, sample_weight=demand_weight)
        parts.append(gpd.GeoDataFrame({"source": "cluster"}, index=range(k),
                                      geometry=shapely.points(km.cluster_centers_), crs=net.crs))
    if user_sites is not None and len(user_sites):
        u = user_sites.to_crs(net.crs)
        frame = gpd.GeoDataFrame({"source": "user"}, index=range(len(u)),
                                 geometry=u.geometry.to_numpy(), crs=net.crs)
        if "candidate_id" in u.columns:
            frame["user_id"] = u["candidate_id"].astype(str).to_numpy()
        parts.append(frame)
    if not parts:
        raise InputError("no candidate sites: give user sites, a spacing or clusters")
    out = pd.concat(parts, ignore_index=True)
    out["candidate_id"] = [f"C{i:05d}" for i in range(len(out))]
    return gpd.GeoDataFrame(out, geometry="geometry", crs=net.crs)


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
    spacing_m: float = 250.0,
    n_clusters: int = 40,
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
    candidates, candidates_path
        User candidate sites (frame or file); network points every ``spacing_m`` and
        ``n_clusters`` k-means centres of uncovered demand are added.
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
    user = candidates
    if candidates_path is not None:
        from geosvc.facilities import read_facilities

        user = read_facilities(candidates_path)
    gap_rows = rows[~covered_now]
    xy = np.column_stack([hh.geometry.x.to_numpy()[gap_rows], hh.geometry.y.to_numpy()[gap_rows]]) \
        if len(gap_rows) else None
    cands = candidate_sites(net, spacing_m=spacing_m, demand_xy=xy,
                            demand_weight=w_row[gap_rows] + 1e-9 if len(gap_rows) else None,
                            n_clusters=n_clusters if len(gap_rows) else 0, user_sites=user,
                            seed=seed)
    c_anchor = snap_points(net, cands.geometry.to_numpy(), max_snap_m=prof.max_snap_m)
    keep = c_anchor.ok
    cands = cands.loc[keep].reset_index(drop=True)
    c_anchor = c_anchor.subset(keep)
    cands["geometry"] = shapely.points(c_anchor.snapped_xy)  # stations sit on the street
    d_anchor = anchors.subset(rep)
    reach = cat.reach_m
    cs, ds, dist = pairs_within(net, c_anchor, d_anchor, reach if model != "p-median"
                                else 2.0 * reach)
    within = dist <= reach + 1e-6
    cov = sp.csr_matrix((np.ones(int(within.sum()), dtype=bool), (cs[within], ds[within])),
                        shape=(len(cands), n_groups))
    reachable = np.asarray(cov.sum(axis=0)).ravel() > 0
    uncoverable = ~reachable & ~fixed
    unc_rows = rows[uncoverable[group]]
    info: dict[str, Any] = {"demand_groups": int(n_groups), "demand_rows": int(len(rows)),
                            "pairs": int(within.sum()), "reach_m": reach}
    plan = _solve(model, cov, w, fixed, k=k, target=target, solver=solver,
                  time_limit_s=time_limit_s, costs=(cs, ds, dist), n_cand=len(cands),
                  n_groups=n_groups, capacity=station_floor_area_m2 /
                  cat.floor_area_per_100hh_m2 * 100.0, info=info)
    stations, curve, before, after = _rank(plan, cands, cov, group, rows, fixed, households,
                                           elderly, hh, category, usable,
                                           capacitated=model == "capacitated")
    return SitingPlan(category, model, plan, stations, curve, before, after, weight_name,
                      len(cands), hh["hh_id"].to_numpy()[unc_rows].tolist(),
                      float(households[unc_rows].sum()), info)


def _solve(model: str, cov: sp.csr_matrix, w: np.ndarray, fixed: np.ndarray, *, k: int,
           target: float, solver: Literal["greedy", "exact"], time_limit_s: float,
           costs: tuple[np.ndarray, np.ndarray, np.ndarray], n_cand: int, n_groups: int,
           capacity: float, info: dict[str, Any]) -> locate.Plan:
    k = int(min(k, n_cand))
    if model == "max-coverage":
        return locate.max_coverage(cov, w, k, fixed_covered=fixed, solver=solver,
                                   time_limit_s=time_limit_s)
    if model == "set-cover":
        return locate.set_cover(cov, w, target=target, fixed_covered=fixed, solver=solver,
                                time_limit_s=time_limit_s)
    if model == "capacitated":
        caps = np.full(n_cand, capacity)
        info["station_capacity_households"] = capacity
        return locate.capacitated_coverage(cov, w, caps, k, fixed_covered=fixed,
                                           solver=solver, time_limit_s=time_limit_s)
    # p-median over the demand not yet covered.  Walking distances are searched up to
    # twice the reach; a fixed "no station" row at exactly that distance caps every cost,
    # so the model stays feasible with few stations (a capped p-median).
    cs, ds, dist = costs
    cap_m = 2.0 * float(info["reach_m"])
    need = np.flatnonzero(~fixed)
    col_of = np.full(n_groups, -1, dtype=np.int64)
    col_of[need] = np.arange(len(need))
    sel = col_of[ds] >= 0
    rows_ = np.concatenate([cs[sel], np.full(len(need), n_cand)])
    cols_ = np.concatenate([col_of[ds[sel]], np.arange(len(need))])
    vals = np.concatenate([np.minimum(dist[sel], cap_m), np.full(len(need), cap_m)])
    cmat = sp.csr_matrix((vals, (rows_, cols_)), shape=(n_cand + 1, len(need)))
    info["p_median_demand_groups"] = int(len(need))
    info["p_median_cap_m"] = cap_m
    plan = locate.p_median(cmat, w[need], k, fixed=np.array([n_cand]), solver=solver,
                           time_limit_s=time_limit_s)
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
        ll = stations.to_crs(4326)
        stations["lon"] = ll.geometry.x.to_numpy()
        stations["lat"] = ll.geometry.y.to_numpy()
        stations["x"] = stations.geometry.x.to_numpy()
        stations["y"] = stations.geometry.y.to_numpy()
    curve = pd.DataFrame({"n_stations": np.arange(len(table) + 1),
                          "coverage_rate": [before] + table["coverage_rate_cumulative"].tolist(),
                          "category": category})
    return stations, curve, before, after


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
