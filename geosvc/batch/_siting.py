"""Siting in a batch: one plan per district, with a budget per district or one for the province.

Each partition proposes stations for its own district with :func:`geosvc.siting.propose_sites`
on its own network:

* **demand** is the households the district *owns* (the rows it reports); households of a
  neighbour district inside the halo are not demand of this plan;
* **candidates** are the usual generated sites (street points every 250 m and k-means centres
  of the district's uncovered households), kept when they lie inside the district;
* a station near a border also reaches households across it, but only the owned households
  are counted: every household is counted by its own district's plan only, never twice.  The
  figures are therefore a lower bound of what the stations really add (the spill-over across
  borders is not credited), and the province objective is separable by district.

**Global budget** (``budget = "province"``, max coverage only).  Every district solves for
the whole budget K and reports its value curve ``f_d(k)``, the weight newly covered by the
first ``k`` stations of its greedy sequence (k = 0..K), and an upper curve ``u_d(k) >=``
the district's optimum with ``k`` stations: ``min_j f_d(j) + k * g_d(j+1)`` over the greedy
steps ``j`` (``g_d(j+1)`` is the next greedy gain, the largest single gain after ``j``
stations; submodularity), capped by the plan's own proven bound for K (only that cap when
the solver's swaps replaced the greedy sequence by a better set: :func:`is_greedy_sequence`).
An exact dynamic
programme over the districts allocates K to maximise ``sum f_d(k_d)``; the same programme
over the ``u_d`` is a proven upper bound of the province optimum (because the objective is
separable, the optimum is ``max sum OPT_d(k_d)``).  The gap is stated against that bound.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from geosvc._errors import ConfigError

__all__ = ["BatchSiting", "allocate_budget", "district_plans", "is_greedy_sequence",
           "upper_curve",
           "STATIONS_FILE", "SITING_FILE"]

STATIONS_FILE = "stations.gpkg"
SITING_FILE = "siting.json"
BUDGETS = ("district", "province")


@dataclass(frozen=True)
class BatchSiting:
    """The siting setup of a batch.

    Attributes
    ----------
    budget
        ``district`` (``k`` stations per district) or ``province`` (``k`` stations in all,
        allocated across districts; max coverage only).
    k
        Stations per district, or in the whole province.
    model, target, solver
        As for :func:`geosvc.siting.propose_sites`.
    spacing_m, n_clusters
        Generated candidates: street points every ``spacing_m`` and ``n_clusters`` k-means
        centres of the district's uncovered households.
    candidates, candidates_layer, candidates_id, candidates_only
        The planner's province-wide candidate file: each partition reads the sites in its
        district's box and keeps those its district owns (inside it and in no district
        listed before it, like households), with their ids (``candidates_id``, else the
        file's row number) and columns; generated sites are added (ids ``generated-<n>``)
        unless ``candidates_only``.
    """

    budget: str = "district"
    k: int = 10
    model: str = "max-coverage"
    target: float = 0.95
    solver: str = "greedy"
    spacing_m: float = 250.0
    n_clusters: int = 40
    candidates: str | None = None
    candidates_layer: str | None = None
    candidates_id: str | None = None
    candidates_only: bool = False

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ConfigError(f"[batch] siting_budget = {self.budget!r}: use 'district' or "
                              "'province'")
        if self.budget == "province" and self.model != "max-coverage":
            raise ConfigError(f"[batch] siting_budget = 'province' needs siting.model = "
                              f"'max-coverage' (got {self.model!r}): a global budget is shared "
                              "by adding up per-district coverage gains")
        if self.k < 1:
            raise ConfigError(f"siting k = {self.k} must be at least 1")
        if self.candidates_only and self.candidates is None:
            raise ConfigError("siting.candidates_only = true needs siting.candidates (the "
                              "planner's candidate file)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready setup (part of the inputs hash)."""
        return dataclasses.asdict(self)


def _district_candidates(net: Any, hh: gpd.GeoDataFrame, polygon: Any, category: str,
                         reach_m: float, max_snap_m: float, setup: BatchSiting
                         ) -> gpd.GeoDataFrame | None:
    """Generated candidates inside the district, within ``max_snap_m`` of a public street and
    within a straight reach of the district's open demand (others cannot cover anything)."""
    from geosvc.access import snap_points
    from geosvc.siting import candidate_sites

    status = hh[f"status_{category}"].to_numpy()
    gap = np.isin(status, ["uncovered", "unreachable"])
    if not gap.any():
        return None
    xy = np.column_stack([hh.geometry.x.to_numpy()[gap], hh.geometry.y.to_numpy()[gap]])
    w = np.nan_to_num(hh["households"].to_numpy(dtype=float)[gap]).clip(min=0.0) + 1e-9
    cands = candidate_sites(net, spacing_m=setup.spacing_m, demand_xy=xy, demand_weight=w,
                            n_clusters=setup.n_clusters, seed=0)
    pts = cands.geometry.to_numpy()
    shapely.prepare(polygon)
    inside = shapely.covers(polygon, pts)
    cxy = shapely.get_coordinates(pts)
    dist, _ = cKDTree(xy).query(cxy, distance_upper_bound=reach_m)
    keep = inside & np.isfinite(dist)
    # the same snap as propose_sites (public streets only): the others cannot be proposed
    keep[keep] = snap_points(net, cxy[keep], max_snap_m=max_snap_m).ok
    if not keep.any():
        return None
    out = cands.loc[keep, ["candidate_id", "source", "geometry"]].rename(
        columns={"source": "origin"}).reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=cands.crs)


def upper_curve(marginal: np.ndarray, k_max: int, plan_bound_gain: float, *,
                greedy: bool) -> np.ndarray:
    """Upper bounds ``u(k)``, k = 0..``k_max``, of the best gain with ``k`` stations.

    Parameters
    ----------
    marginal
        Gains of the plan's stations in order (greedy: each the largest single gain then).
    k_max
        The budget the plan was solved for.
    plan_bound_gain
        The plan's proven bound for ``k_max`` stations, minus what is covered already.
    greedy
        Whether ``marginal`` is a greedy sequence; otherwise only the monotone cap
        ``OPT(k) <= OPT(k_max) <= bound`` is used.
    """
    k = np.arange(k_max + 1, dtype=float)
    u = np.full(k_max + 1, float(plan_bound_gain))
    if greedy:
        g = np.asarray(marginal, dtype=float)[:k_max]
        f = np.concatenate([[0.0], np.cumsum(g)])
        nxt = g if len(g) == k_max else np.concatenate([g, [0.0]])  # stopped: nothing adds
        for j, gain in enumerate(nxt):  # at most k_max + 1 terms, not a hot path
            u = np.minimum(u, f[j] + k * gain)
    u[0] = 0.0
    return np.maximum.accumulate(u)


def is_greedy_sequence(plan: Any) -> bool:
    """Whether a max-coverage plan's stations are the plain greedy sequence (each the
    largest single gain over *all* candidates at its step), which the upper curve needs.

    The greedy solver improves its plan by swaps and restarts; when they found a better
    set, the stations are that set in greedy order *within the set*, and only the monotone
    cap (the plan's bound for K) is a valid upper bound for smaller k.
    """
    if plan.solver != "greedy":
        return False
    greedy_add = plan.info.get("greedy_add_objective")
    if greedy_add is None:  # a greedy without local search
        return True
    return bool(abs(float(plan.objective) - float(greedy_add)) <= 1e-9 * max(
        1.0, abs(float(greedy_add))))


def _planner_candidates(setup: BatchSiting, polygon: Any, earlier_wkb: tuple[bytes, ...]
                        ) -> gpd.GeoDataFrame:
    """The planner's sites this district owns (inside it, in no district listed before it),
    read by bounding box; ``candidate_id`` is the file's id (text), every column kept."""
    import pyogrio

    from geosvc._errors import InputError

    path = str(setup.candidates)
    try:
        gdf = pyogrio.read_dataframe(path, layer=setup.candidates_layer,
                                     bbox=tuple(float(v) for v in shapely.bounds(polygon)),
                                     fid_as_index=True)
    except Exception as exc:  # pyogrio raises its own DataSourceError hierarchy
        raise InputError(f"{path}: cannot read the candidate sites by bounding box "
                         f"({exc})") from exc
    col = setup.candidates_id
    if col is not None and col not in gdf.columns:
        raise InputError(f"{path}: no candidate id column {col!r}; columns are "
                         f"{list(gdf.columns)} (set siting.candidates_id)")
    ids = gdf[col] if col is not None else pd.Series(gdf.index, index=gdf.index)
    pts = gdf.geometry.to_numpy()
    mine = shapely.covers(polygon, pts)
    for wkb in earlier_wkb:
        mine &= ~shapely.covers(shapely.from_wkb(wkb), pts)
    out = gdf.loc[mine].drop(columns=[c for c in ("candidate_id", "origin") if c in
                                      gdf.columns and c != col]).copy()
    out["candidate_id"] = ids[mine].astype(str).to_numpy()
    if col is not None and col != "candidate_id":
        out = out.drop(columns=[col])
    out["origin"] = "planner"
    return gpd.GeoDataFrame(out.reset_index(drop=True), geometry=gdf.geometry.name,
                            crs=gdf.crs)


def _candidates(net: Any, hh: gpd.GeoDataFrame, polygon: Any, earlier_wkb: tuple[bytes, ...],
                category: str, reach_m: float, max_snap_m: float, setup: BatchSiting
                ) -> gpd.GeoDataFrame | None:
    """The district's candidate sites: generated ones, the planner's, or both."""
    generated = None
    if not setup.candidates_only:
        generated = _district_candidates(net, hh, polygon, category, reach_m, max_snap_m,
                                         setup)
    if setup.candidates is None:
        return generated
    planner = _planner_candidates(setup, polygon, earlier_wkb)
    if generated is not None:
        generated = generated.assign(candidate_id="generated-" +
                                     generated["candidate_id"].astype(str))
        planner = gpd.GeoDataFrame(pd.concat([planner, generated], ignore_index=True),
                                   geometry=planner.geometry.name, crs=planner.crs)
    return planner if len(planner) else None


def district_plans(net: Any, coverage: Any, owned: np.ndarray, polygon_wkb: bytes,
                   district_id: str, setup: BatchSiting,
                   earlier_wkb: tuple[bytes, ...] = ()) -> tuple[gpd.GeoDataFrame,
                                                                 dict[str, Any]]:
    """Plans of one district (every analysed category) over its owned households.

    Returns the stations in plan order (all categories, ``district_id``, ``category``,
    ``rank``) and per category the plan record with the value curves.
    """
    from geosvc import diagnostics
    from geosvc.siting import propose_sites

    rows = np.flatnonzero(owned)
    hh = coverage.households.iloc[rows].reset_index(drop=True)
    mine = dataclasses.replace(coverage, households=hh,
                               household_anchors=coverage.household_anchors.subset(rows),
                               areas={})
    polygon = shapely.from_wkb(polygon_wkb)
    frames, records = [], {}
    for cat in coverage.categories:
        reach = coverage.profile.category(cat).reach_m
        cands = _candidates(net, hh, polygon, earlier_wkb, cat, reach,
                            coverage.profile.max_snap_m, setup)
        if cands is None:
            records[cat] = _empty_record(hh, cat, setup)
            continue
        with diagnostics.collect(diagnostics.Diagnostics()):  # thinning notes stay local
            plan = propose_sites(net, mine, category=cat, model=setup.model, k=setup.k,
                                 target=setup.target, solver=setup.solver,  # type: ignore[arg-type]
                                 candidates=cands, candidates_id="candidate_id",
                                 candidates_only=True)
        st = plan.stations
        if len(st):
            st = st.copy()
            st["source"] = st["origin"] if "origin" in st.columns else st["source"]
            st = st.drop(columns=[c for c in ("origin", "user_origin") if c in st.columns])
            st.insert(0, "district_id", district_id)
            frames.append(st)
        d = plan.to_dict()
        marg = np.asarray(plan.plan.marginal, dtype=float)
        fixed = float(plan.plan.objective) - float(np.sum(marg)) if len(marg) else \
            float(plan.plan.objective)
        rec = {k: v for k, v in d.items() if k not in ("uncoverable_ids_sample", "relation")}
        rec["fixed_weight"] = fixed
        rec["gain"] = np.concatenate([[0.0], np.cumsum(marg)]).tolist()
        if setup.model == "max-coverage":
            rec["gain_upper"] = upper_curve(marg, setup.k, float(plan.plan.bound) - fixed,
                                            greedy=is_greedy_sequence(plan.plan)).tolist()
        rec["coverage_curve"] = plan.curve["coverage_rate"].astype(float).tolist()
        rec["households_new_curve"] = np.concatenate(
            [[0.0], np.cumsum(st["households_new"].to_numpy(dtype=float))]).tolist() \
            if len(st) else [0.0]
        records[cat] = rec
    stations = (pd.concat(frames, ignore_index=True) if frames else
                gpd.GeoDataFrame({"district_id": [], "category": [], "rank": []},
                                 geometry=[], crs=net.crs))
    return gpd.GeoDataFrame(stations, geometry="geometry", crs=net.crs), records


def _empty_record(hh: gpd.GeoDataFrame, cat: str, setup: BatchSiting) -> dict[str, Any]:
    """A district with no open demand (or no candidate inside it): no station to propose."""
    status = hh[f"status_{cat}"].to_numpy()
    w = np.nan_to_num(hh["households"].to_numpy(dtype=float)).clip(min=0.0)
    valid = np.isin(status, ["covered", "uncovered", "unreachable", "off_network"])
    total = float(w[valid].sum())
    rate = float(w[status == "covered"].sum() / total) if total else float("nan")
    return {"model": setup.model, "k": 0, "objective": 0.0, "bound": 0.0, "gap": 0.0,
            "status": "no_candidates", "coverage_before": rate, "coverage_after": rate,
            "fixed_weight": 0.0, "gain": [0.0], "gain_upper": [0.0] * (setup.k + 1),
            "coverage_curve": [rate], "households_new_curve": [0.0]}


def _pad(curve: list[float], n: int) -> np.ndarray:
    a = np.asarray(curve, dtype=float)
    if len(a) >= n:
        return a[:n]
    return np.concatenate([a, np.full(n - len(a), a[-1] if len(a) else 0.0)])


def allocate_budget(curves: list[np.ndarray], budget: int) -> tuple[np.ndarray, float]:
    """Exact allocation of ``budget`` stations across districts over their value curves.

    Maximises ``sum_d curves[d][k_d]`` subject to ``sum_d k_d <= budget`` by dynamic
    programming (O(D K^2)); curves are non-decreasing with ``curves[d][0] = 0``.  Among equal
    totals the fewest stations are used.

    Returns
    -------
    (numpy.ndarray, float)
        Stations per district and the total value.
    """
    kk = int(budget) + 1
    vals = [_pad(list(c), kk) for c in curves]
    best = np.full(kk, -np.inf)
    best[0] = 0.0
    choice = []
    j = np.arange(kk)[:, None]
    t = np.arange(kk)[None, :]
    for v in vals:
        prev = np.where(t <= j, best[np.clip(j - t, 0, None)], -np.inf)
        tot = prev + v[None, :]
        arg = np.argmax(tot, axis=1)
        choice.append(arg)
        best = tot[np.arange(kk), arg]
    top = float(np.max(best))
    used = int(np.flatnonzero(best >= top - 1e-9 * max(1.0, abs(top)))[0])
    alloc = np.zeros(len(vals), dtype=np.int64)
    for d in range(len(vals) - 1, -1, -1):
        alloc[d] = choice[d][used]
        used -= int(alloc[d])
    return alloc, top


def province_siting(records: list[dict[str, Any]], stations: list[gpd.GeoDataFrame],
                    setup: BatchSiting, categories: list[str]
                    ) -> tuple[gpd.GeoDataFrame | None, dict[str, Any], pd.DataFrame]:
    """The province plan from the districts' plans: stations, summary and district columns.

    ``records`` are the partitions' ``siting`` records (per category), in district order.
    """
    ids = [str(r["id"]) for r in records]
    summary: dict[str, Any] = {"budget": setup.budget, "k": setup.k, "model": setup.model,
                               "solver": setup.solver, "counting": "owned households only",
                               "categories": {}}
    cols: dict[str, Any] = {"area_id": ids}
    chosen = []
    allst = pd.concat([s for s in stations if len(s)], ignore_index=True) if any(
        len(s) for s in stations) else None
    for cat in categories:
        recs = [r["siting"][cat] for r in records]
        if setup.budget == "province":
            lower = [np.asarray(r["gain"], dtype=float) for r in recs]
            upper = [np.asarray(r["gain_upper"], dtype=float) for r in recs]
            alloc, value = allocate_budget(lower, setup.k)
            _, bound = allocate_budget(upper, setup.k)
            fixed = float(sum(r["fixed_weight"] for r in recs))
            obj, bnd = fixed + value, fixed + max(bound, value)
            summary["categories"][cat] = {
                "method": "per-district greedy value curves f_d(k), k = 0..K; exact dynamic "
                          "programme over districts; bound: the same programme over the "
                          "per-district upper curves",
                "stations": int(alloc.sum()), "objective": obj, "bound": bnd,
                "gap": (bnd - obj) / max(abs(bnd), 1e-12), "gain": value,
                "gain_bound": max(bound, value),
                "gain_gap": (max(bound, value) - value) / max(abs(bound), 1e-12)}
        else:
            alloc = np.array([int(r.get("k", 0)) for r in recs], dtype=np.int64)
            obj = float(sum(r["objective"] for r in recs))
            bnd = float(sum(r["bound"] for r in recs))
            summary["categories"][cat] = {
                "method": "one plan per district", "stations": int(alloc.sum()),
                "objective": obj, "bound": bnd,
                "gap": abs(bnd - obj) / max(abs(bnd), 1e-12)}
        hh_new = [float(_pad(r["households_new_curve"], a + 1)[a]) for r, a in zip(recs, alloc,
                                                                                   strict=True)]
        after = [float(_pad(r["coverage_curve"], a + 1)[a]) for r, a in zip(recs, alloc,
                                                                             strict=True)]
        cols[f"stations_{cat}"] = alloc
        cols[f"households_new_{cat}"] = hh_new
        cols[f"coverage_before_{cat}"] = [float(r["coverage_before"]) for r in recs]
        cols[f"coverage_after_{cat}"] = after
        cols[f"siting_gap_{cat}"] = [float(r["gap"]) for r in recs]
        summary["categories"][cat]["households_newly_covered"] = float(sum(hh_new))
        summary["categories"][cat]["per_district"] = {
            i: {"stations": int(a), "households_new": h, "coverage_after": c,
                "district_plan_gap": float(r["gap"]), "status": r.get("status")}
            for i, a, h, c, r in zip(ids, alloc, hh_new, after, recs, strict=True)}
        if allst is not None:
            take = dict(zip(ids, alloc.tolist(), strict=True))
            st = allst[allst["category"] == cat]
            keep = st["rank"].to_numpy() <= st["district_id"].map(take).to_numpy()
            chosen.append(st.loc[keep])
    table = pd.DataFrame(cols)
    out = None
    if chosen:
        out = gpd.GeoDataFrame(pd.concat(chosen, ignore_index=True), geometry="geometry",
                               crs=allst.crs if allst is not None else None)
    return out, summary, table


def write_district_siting(folder: Path, stations: gpd.GeoDataFrame,
                          records: dict[str, Any]) -> None:
    """Write a partition's stations and plan records (inside its temporary folder)."""
    from geosvc.io import write_gpkg

    write_gpkg({"stations": stations}, folder / STATIONS_FILE)
    (folder / SITING_FILE).write_text(json.dumps(records, default=float))


def read_district_siting(folder: Path) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Read back what :func:`write_district_siting` wrote."""
    import pyogrio

    st = pyogrio.read_dataframe(folder / STATIONS_FILE, layer="stations")
    return st, json.loads((folder / SITING_FILE).read_text())
