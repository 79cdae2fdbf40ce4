"""``propose_sites``: one category's ranked station proposal, step by step; ``write_siting``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Unpack

import geopandas as gpd
import numpy as np
import pandas as pd

from geosvc import locate
from geosvc._errors import InputError
from geosvc.coverage import CoverageResult
from geosvc.io import write_csv, write_gpkg
from geosvc.network import CompiledNetwork
from geosvc.siting._candidates import (
    candidate_capacity,
    candidate_sites,
    limit_generated,
    prepare_candidates,
    read_candidates,
    snap_candidates,
)
from geosvc.siting._options import MODELS, ProposeKwargs, ProposeOptions
from geosvc.siting._relation import DemandGroups, build_relation, demand_groups
from geosvc.siting._solve import describe_stations, rank_stations, solve_model
from geosvc.standards import Category

__all__ = ["SitingPlan", "propose_sites", "write_siting"]


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




def propose_sites(
    net: CompiledNetwork,
    coverage: CoverageResult,
    *,
    category: str,
    options: ProposeOptions | None = None,
    **overrides: Unpack[ProposeKwargs],
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
    options
        The model and its candidates (:class:`ProposeOptions`; default: its defaults).
    **overrides
        Any field of :class:`ProposeOptions` as a keyword (``model=``, ``k=``, ``target=``,
        ``solver=``, ``candidates=``, ``candidates_path=``, ``spacing_m=``, ...); it replaces
        that field of ``options``.

    Stations also carry the road they are reached from (``road_name``, the network's ``name``)
    and, for every area level of the coverage run, the area containing them
    (``<level>_id``, ``<level>_name``).

    Examples
    --------
    >>> plan = propose_sites(net, cov, category="elderly_care", k=5)  # doctest: +SKIP
    >>> opts = ProposeOptions(model="set-cover", target=0.9)
    >>> plan = propose_sites(net, cov, category="elderly_care", options=opts)  # doctest: +SKIP
    """
    opts = dataclasses.replace(options or ProposeOptions(), **overrides)
    prof = coverage.profile
    cat = _checked_category(coverage, category, opts.model)
    hh = coverage.households
    demand = demand_groups(coverage, category,
                           _weight_name(cat.demand_weight, hh, opts.model))
    user = _user_candidates(opts)
    xy = _open_xy(hh, demand.gap_rows)
    cands, gen_info = _generated(net, demand, user, xy, opts,
                                 reach_m=cat.reach_m * (2.0 if opts.model == "p-median" else 1.0))
    cands, c_anchor = snap_candidates(net, cands, max_snap_m=prof.max_snap_m, category=category)
    reach = cat.reach_m
    cands, rel, rel_info = build_relation(
        net, cands, c_anchor, coverage.household_anchors.subset(demand.rep), reach_m=reach,
        cost_m=2.0 * reach if opts.model == "p-median" else None, open_xy=xy, category=category)
    cov = rel.covers
    info: dict[str, Any] = {"demand_groups": int(len(demand.rep)),
                            "demand_rows": int(len(demand.rows)), "pairs": int(cov.nnz),
                            "reach_m": reach, "relation": rel_info}
    capacity = candidate_capacity(
        user, cands, opts.capacity_column if opts.model == "capacitated" else None,
        opts.station_floor_area_m2 / cat.floor_area_per_100hh_m2 * 100.0)
    plan = solve_model(opts, rel, demand, n_cand=len(cands), capacity=capacity, info=info)
    info["candidates"] = {src: int(n) for src, n in cands["source"].value_counts().items()}
    info["candidate_generation"] = gen_info
    stations, curve, before, after = rank_stations(plan, cands, cov, demand, hh, category,
                                                   capacitated=opts.model == "capacitated")
    stations = describe_stations(stations, cands, plan.sites, user, coverage.areas)
    unc_rows = _uncoverable_rows(demand, cov)
    return SitingPlan(category, opts.model, plan, stations, curve, before, after,
                      demand.weight_name, len(cands), hh["hh_id"].to_numpy()[unc_rows].tolist(),
                      float(demand.households[unc_rows].sum()), info)


def _checked_category(coverage: CoverageResult, category: str, model: str) -> Category:
    """The profile's ``category``, after checking the model name and that it was analysed."""
    if model not in MODELS:
        raise InputError(f"unknown siting model {model!r}; choose one of {', '.join(MODELS)}")
    cat = coverage.profile.category(category)
    if category not in coverage.categories:
        raise InputError(f"category {category!r} was not analysed; analysed: "
                         f"{', '.join(coverage.categories)}")
    return cat


def _open_xy(hh: gpd.GeoDataFrame, gap_rows: np.ndarray) -> np.ndarray | None:
    """Coordinates of the open demand rows (None when there are none)."""
    if not len(gap_rows):
        return None
    return np.column_stack([hh.geometry.x.to_numpy()[gap_rows],
                            hh.geometry.y.to_numpy()[gap_rows]])


def _weight_name(demand_weight: str, hh: gpd.GeoDataFrame, model: str) -> str:
    """The household column the model weighs demand by (households when the other is empty)."""
    name = demand_weight if demand_weight in ("households", "elderly", "persons") \
        else "households"
    if name != "households" and not np.nansum(hh[name].to_numpy(dtype=float)) > 0:
        name = "households"
    if model == "capacitated":
        name = "households"
    return name


def _user_candidates(opts: ProposeOptions) -> gpd.GeoDataFrame | None:
    """The planner's sites (file or frame), checked; None when there are none."""
    user = None
    if opts.candidates_path is not None:
        user = read_candidates(opts.candidates_path, layer=opts.candidates_layer,
                               id_column=opts.candidates_id)
    elif opts.candidates is not None:
        user = prepare_candidates(opts.candidates, id_column=opts.candidates_id)
    if opts.candidates_only and (user is None or not len(user)):
        raise InputError("candidates_only needs candidate sites: pass candidates= or a "
                         "candidates file")
    return user


def _generated(net: CompiledNetwork, demand: DemandGroups, user: gpd.GeoDataFrame | None,
               open_xy: np.ndarray | None, opts: ProposeOptions, *, reach_m: float
               ) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """All candidates (generated unless ``candidates_only``, and the planner's), thinned."""
    spacing_m, n_clusters = (0.0, 0) if opts.candidates_only else (opts.spacing_m,
                                                                    opts.n_clusters)
    gap_rows = demand.gap_rows
    cands = candidate_sites(net, spacing_m=spacing_m, demand_xy=open_xy,
                            demand_weight=demand.weight_row[gap_rows] + 1e-9
                            if len(gap_rows) else None,
                            n_clusters=n_clusters if len(gap_rows) else 0, user_sites=user,
                            seed=opts.seed)
    return limit_generated(cands, open_xy, reach_m, opts.max_candidates)


def _uncoverable_rows(demand: DemandGroups, cov: Any) -> np.ndarray:
    """Demand rows that no candidate reaches and no existing facility covers."""
    reachable = np.bincount(cov.indices, minlength=len(demand.rep)) > 0
    uncoverable = ~reachable & ~demand.fixed
    return demand.rows[uncoverable[demand.group]]


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
