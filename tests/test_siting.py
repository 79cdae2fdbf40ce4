"""Siting on the map: candidates, demand aggregation, ranked proposals against brute force."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geosvc.access import nearest_facility, snap_points
from geosvc.coverage import analyse_coverage
from geosvc.network import compile_network, graph_from_lines
from geosvc.siting import aggregate_demand, candidate_sites, propose_sites, write_siting
from tests.conftest import UTM, grid_lines


@pytest.fixture(scope="module")
def scenario():
    net = compile_network(graph_from_lines(grid_lines(10, 250.0)))
    rng = np.random.default_rng(21)
    pts = rng.uniform(0, 2250, (600, 2))
    hh = gpd.GeoDataFrame({"households": rng.integers(5, 80, 600).astype(float),
                           "elderly": rng.integers(0, 20, 600).astype(float)},
                          geometry=shapely.points(pts), crs=UTM)
    hh.loc[len(hh)] = {"households": 9.0, "elderly": 3.0, "geometry": shapely.Point(5000, 5000)}
    fac = gpd.GeoDataFrame({"facility_id": ["E1"], "category": ["elderly_care"],
                            "subtype": ["day_care_center"], "floor_area_m2": [300.0]},
                           geometry=[shapely.Point(300, 300)], crs=UTM)
    cov = analyse_coverage(net, hh, fac, categories=["elderly_care"])
    cands = gpd.GeoDataFrame({"candidate_id": [f"U{i}" for i in range(9)]},
                             geometry=shapely.points(rng.uniform(0, 2250, (9, 2))), crs=UTM)
    return net, cov, cands


def _brute_force_max_coverage(net, cov, cands, k):
    """All k-subsets of the candidates, coverage from one nearest search per candidate."""
    hh = cov.households
    reach = cov.profile.category("elderly_care").reach_m
    status = hh["status_elderly_care"].to_numpy()
    usable = np.isin(status, ["covered", "uncovered", "unreachable"])
    w = np.where(usable, np.nan_to_num(hh["elderly"].to_numpy()), 0.0)
    already = status == "covered"
    c_anchor = snap_points(net, cands.geometry.to_numpy())
    within = np.vstack([
        nearest_facility(net, c_anchor.subset(np.array([j])), cov.household_anchors).distance_m
        <= reach + 1e-6 for j in range(len(cands))])
    best = 0.0
    for subset in itertools.combinations(range(len(cands)), k):
        covered = already | within[list(subset)].any(axis=0)
        best = max(best, float(w[covered & usable].sum()))
    return best


@pytest.mark.parametrize("k", [1, 2, 3])
def test_exact_max_coverage_equals_brute_force(scenario, k):
    net, cov, cands = scenario
    plan = propose_sites(net, cov, category="elderly_care", model="max-coverage", k=k,
                         solver="exact", candidates=cands, spacing_m=0, n_clusters=0)
    assert plan.plan.objective == pytest.approx(_brute_force_max_coverage(net, cov, cands, k))
    assert plan.plan.gap == pytest.approx(0.0, abs=1e-9)
    greedy = propose_sites(net, cov, category="elderly_care", model="max-coverage", k=k,
                           solver="greedy", candidates=cands, spacing_m=0, n_clusters=0)
    assert greedy.plan.objective <= plan.plan.objective + 1e-9 <= greedy.plan.bound + 1e-9


def test_ranked_table_adds_up(scenario):
    net, cov, cands = scenario
    plan = propose_sites(net, cov, category="elderly_care", model="max-coverage", k=4,
                         candidates=cands, spacing_m=300, n_clusters=5)
    st = plan.stations
    assert st["rank"].tolist() == list(range(1, len(st) + 1))
    hh = cov.households
    total = hh["households"].sum()
    assert plan.coverage_before == pytest.approx(
        hh.loc[hh["status_elderly_care"] == "covered", "households"].sum() / total)
    assert plan.coverage_after == pytest.approx(
        plan.coverage_before + st["households_new"].sum() / total)
    assert np.all(np.diff(plan.curve["coverage_rate"]) >= -1e-12)
    assert set(st["source"]) <= {"network", "cluster", "user"}
    # generated stations sit on the street network; every station's snapped point does
    on_net = st["source"].to_numpy() != "user"
    snapped = shapely.points(st["snapped_x"].to_numpy(), st["snapped_y"].to_numpy())
    for geom in (st.geometry.to_numpy()[on_net], snapped):
        d = shapely.distance(geom[:, None], net.edge_geometry[None, :]).min(axis=1)
        assert d.max() < 1e-6


def test_unreachable_demand_is_reported(scenario):
    net, cov, cands = scenario
    plan = propose_sites(net, cov, category="elderly_care", model="set-cover", target=1.0,
                         candidates=cands, spacing_m=0, n_clusters=0)
    # the row at (5000, 5000) is off the network: not demand; rows no candidate reaches are
    # listed by id and the plan covers what it can
    hh = cov.households
    assert hh["status_elderly_care"].iloc[-1] == "off_network"
    assert len(hh) - 1 not in plan.uncoverable_ids
    assert plan.uncoverable_households == pytest.approx(
        hh.set_index("hh_id").loc[plan.uncoverable_ids, "households"].sum())
    assert plan.coverage_after <= 1.0


def test_capacitated_stations_serve_at_most_capacity(scenario):
    net, cov, cands = scenario
    plan = propose_sites(net, cov, category="elderly_care", model="capacitated", k=3,
                         candidates=cands, spacing_m=0, n_clusters=0, station_floor_area_m2=60)
    cap = 60 / 30 * 100  # 200 households
    assert plan.info["station_capacity_households"] == pytest.approx(cap)
    assert (plan.stations["households_new"] <= cap + 1e-6).all()


def test_p_median_plan(scenario):
    net, cov, cands = scenario
    plan = propose_sites(net, cov, category="elderly_care", model="p-median", k=2,
                         solver="exact", candidates=cands, spacing_m=0, n_clusters=0)
    assert len(plan.stations) == 2 and plan.plan.gap <= 1e-4


def test_aggregation_is_exact():
    from geosvc.access import Anchors

    a = Anchors(edge=np.array([1, 1, 2, 1]), offset_m=np.array([5.0, 5.0, 5.0, 6.0]),
                access_m=np.array([3.0, 3.0, 3.0, 3.0]), snapped_xy=np.zeros((4, 2)),
                status=np.zeros(4, np.int8), compound=np.full(4, -1))
    group, rep = aggregate_demand(a, np.arange(4))
    assert len(rep) == 3 and group[0] == group[1] and len(set(group.tolist())) == 3


def test_candidates_and_writing(tmp_path, scenario):
    net, cov, cands = scenario
    c = candidate_sites(net, spacing_m=250.0, demand_xy=np.array([[10.0, 10], [20, 20]]),
                        n_clusters=1, user_sites=cands)
    assert (c["source"] == "user").sum() == 9 and (c["source"] == "cluster").sum() == 1
    assert (c["source"] == "network").sum() == 180  # 180 edges of 250 m: one point each
    plan = propose_sites(net, cov, category="elderly_care", k=2, candidates=cands,
                         spacing_m=0, n_clusters=0)
    write_siting({"elderly_care": plan}, tmp_path)
    table = gpd.read_file(tmp_path / "siting.gpkg", layer="stations_elderly_care")
    assert len(table) == len(plan.stations)
    assert (tmp_path / "siting.csv").exists() and (tmp_path / "siting_curve.csv").exists()


# --------------------------------------------------------------------------------------------
# the planner's own candidates
# --------------------------------------------------------------------------------------------
def _rooms(cands):
    rooms = cands.rename(columns={"candidate_id": "site_no"}).copy()
    rooms["site_no"] = [f"room-{i}" for i in range(len(rooms))]
    rooms["address"] = [f"{i} Main St" for i in range(len(rooms))]
    rooms["floor_m2"] = np.arange(len(rooms)) * 10.0 + 100.0
    rooms["cap_hh"] = np.array([50, 400, 80, 300, 20, 500, 60, 250, 90], dtype=float)
    return rooms


def test_user_candidates_keep_id_columns_and_geometry(scenario):
    net, cov, cands = scenario
    rooms = _rooms(cands)
    plan = propose_sites(net, cov, category="elderly_care", k=3, candidates=rooms,
                         candidates_id="site_no", candidates_only=True, solver="exact")
    st = plan.stations
    assert plan.n_candidates == len(rooms) and len(st) == 3
    assert set(st["source"]) == {"user"}
    by_id = rooms.set_index("site_no")
    src = by_id.loc[st["candidate_id"].to_numpy()]
    assert st["address"].tolist() == src["address"].tolist()
    assert st["floor_m2"].tolist() == src["floor_m2"].tolist()
    # the planner's geometry unchanged, the street point beside it
    assert shapely.equals_exact(st.geometry.to_numpy(), src.geometry.to_numpy(), 1e-9).all()
    snapped = shapely.points(st["snapped_x"].to_numpy(), st["snapped_y"].to_numpy())
    assert np.allclose(shapely.distance(snapped, src.geometry.to_numpy()),
                       st["snap_distance_m"].to_numpy(), atol=1e-6)
    # the street is the grid line the snapped point lies on
    lines = dict(zip([f"r{i}" for i in range(10)] + [f"c{i}" for i in range(10)],
                     [shapely.LineString([(0, i * 250.0), (2250, i * 250.0)]) for i in range(10)]
                     + [shapely.LineString([(i * 250.0, 0), (i * 250.0, 2250)])
                        for i in range(10)], strict=True))
    for street, pt in zip(st["road_name"], snapped, strict=True):
        assert shapely.distance(lines[street], pt) < 1e-6
    # nothing generated, and the input frame is untouched
    assert "candidate_id" not in rooms.columns


def test_candidates_from_file_with_layer_and_id(tmp_path, scenario):
    net, cov, cands = scenario
    path = tmp_path / "rooms.gpkg"
    _rooms(cands).to_file(path, layer="vacant_rooms")
    plan = propose_sites(net, cov, category="elderly_care", k=2, candidates_path=path,
                         candidates_layer="vacant_rooms", candidates_id="site_no",
                         candidates_only=True)
    assert all(str(c).startswith("room-") for c in plan.stations["candidate_id"])
    assert "address" in plan.stations.columns
    write_siting({"elderly_care": plan}, tmp_path)
    back = gpd.read_file(tmp_path / "siting.gpkg", layer="stations_elderly_care")
    assert back["candidate_id"].tolist() == plan.stations["candidate_id"].tolist()


def test_capacity_per_candidate(scenario):
    net, cov, cands = scenario
    rooms = _rooms(cands)
    plan = propose_sites(net, cov, category="elderly_care", model="capacitated", k=3,
                         candidates=rooms, candidates_id="site_no", candidates_only=True,
                         capacity_column="cap_hh", solver="exact")
    cap = rooms.set_index("site_no")["cap_hh"]
    served = plan.stations.set_index("candidate_id")["households_new"]
    assert (served <= cap.loc[served.index] + 1e-6).all()
    flows = plan.plan.info["flows"]
    per_site = np.bincount(flows["site"], weights=flows["amount"], minlength=len(rooms))
    assert (per_site <= rooms["cap_hh"].to_numpy() + 1e-6).all()
    assert plan.info["station_capacity_households"] == "per candidate"


@pytest.mark.parametrize("change, message", [
    (lambda f: f.assign(site_no=["a"] * len(f)), "appears 9 times"),
    (lambda f: f.drop(columns="site_no"), "candidate id column 'site_no' not found"),
    (lambda f: f.assign(cap_hh=[-1.0] + [1.0] * (len(f) - 1)), "cap_hh"),
])
def test_bad_candidates_are_one_line_errors(scenario, change, message):
    from geosvc._errors import InputError

    net, cov, cands = scenario
    with pytest.raises(InputError, match=message):
        propose_sites(net, cov, category="elderly_care", model="capacitated", k=2,
                      candidates=change(_rooms(cands)), candidates_id="site_no",
                      candidates_only=True, capacity_column="cap_hh")


def test_candidates_only_needs_candidates(scenario):
    from geosvc._errors import InputError

    net, cov, _ = scenario
    with pytest.raises(InputError, match="candidates_only needs candidate sites"):
        propose_sites(net, cov, category="elderly_care", k=2, candidates_only=True)


def test_config_passes_candidates(tmp_path, scenario):
    from geosvc.config import load_config

    _, _, cands = scenario
    _rooms(cands).to_file(tmp_path / "rooms.gpkg", layer="vacant_rooms")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[inputs]\nsample = "district"\n[siting]\nmodel = "capacitated"\n'
                   'candidates = "rooms.gpkg"\ncandidates_layer = "vacant_rooms"\n'
                   'candidates_id = "site_no"\ncandidates_only = true\n'
                   'capacity_column = "cap_hh"\n[output]\nfolder = "out"\n', encoding="utf-8")
    opts = load_config(cfg).siting.propose_options()
    assert opts == {"candidates_path": tmp_path / "rooms.gpkg",
                    "candidates_layer": "vacant_rooms", "candidates_id": "site_no",
                    "candidates_only": True, "capacity_column": "cap_hh"}


# --------------------------------------------------------------------------------------------
# generated candidates at city scale: a stated maximum
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_thinning_drops_only_useless_points_below_the_cap(seed):
    from scipy.spatial.distance import cdist

    from geosvc.siting import thin_network_candidates

    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 5000, (400, 2))
    demand = rng.uniform(0, 5000, (60, 2))
    keep, info = thin_network_candidates(xy, demand, 400.0, max_candidates=10_000)
    useful = np.flatnonzero((cdist(xy, demand) <= 400.0).any(axis=1))  # brute force
    assert keep.tolist() == useful.tolist()
    assert info["kept"] == useful.size and info["cell_m"] is None
    # over the cap: at most the cap, at most one per cell, all of them useful
    keep2, info2 = thin_network_candidates(xy, demand, 400.0, max_candidates=40)
    assert keep2.size <= 40 and np.isin(keep2, useful).all()
    cells = np.floor(xy[keep2] / info2["cell_m"]).astype(int)
    assert len({tuple(c) for c in cells}) == keep2.size
    assert info2["street_points"] == 400 and info2["near_open_demand"] == useful.size


def test_generated_candidates_respect_the_maximum(scenario):
    net, cov, _ = scenario
    full = propose_sites(net, cov, category="elderly_care", k=3, spacing_m=50, n_clusters=0)
    capped = propose_sites(net, cov, category="elderly_care", k=3, spacing_m=50, n_clusters=0,
                           max_candidates=60)
    gen = capped.info["candidate_generation"]
    assert gen["street_points"] == full.info["candidate_generation"]["street_points"]
    assert capped.n_candidates == gen["kept"] <= 60 < full.n_candidates
    assert gen["cell_m"] >= cov.profile.category("elderly_care").reach_m / 4
    # fewer candidates never cover more
    assert capped.plan.objective <= full.plan.objective + 1e-9


def _tight_budget(monkeypatch, n_bytes):
    import geosvc.siting as siting_mod

    monkeypatch.setattr(siting_mod.resources, "available_bytes",
                        lambda *, share=1.0, floor=0: int(n_bytes))


def test_relation_over_the_budget_thins_generated_sites_and_warns(scenario, monkeypatch):
    from geosvc import diagnostics

    net, cov, cands = scenario
    full = propose_sites(net, cov, category="elderly_care", model="max-coverage", k=3,
                         candidates=cands, spacing_m=100.0, n_clusters=0)
    per = full.info["relation"]["pairs_per_candidate_sampled"]
    n_full = full.n_candidates
    # room for about a third of the candidates' pairs
    _tight_budget(monkeypatch, per * 16 * n_full / 3)
    with diagnostics.collect() as seen:
        thin = propose_sites(net, cov, category="elderly_care", model="max-coverage", k=3,
                             candidates=cands, spacing_m=100.0, n_clusters=0)
    codes = [w["code"] for w in seen.to_list()]
    assert "candidates_thinned_for_memory" in codes
    rel = thin.info["relation"]
    assert rel["thinned_for_memory"] and rel["candidates_before"] == n_full
    assert thin.n_candidates == rel["candidates_after"] < n_full
    # every planner's site is kept; the plan is still audited (objective recomputed)
    assert (thin.info["candidates"].get("user", 0)) == len(cands)
    assert thin.plan.objective <= full.plan.objective + 1e-9
    assert thin.plan.info["objective_check"] == "passed"


def test_planner_sites_that_cannot_fit_stop_with_the_fix(scenario, monkeypatch):
    from geosvc._errors import MemoryLimitError

    net, cov, cands = scenario
    _tight_budget(monkeypatch, 16)
    with pytest.raises(MemoryLimitError, match="memory-limit"):
        propose_sites(net, cov, category="elderly_care", model="max-coverage", k=2,
                      candidates=cands, candidates_only=True)


def test_merged_demand_columns_equal_brute_force_set_grouping():
    """locate's compiled demand merge against Python frozensets of covering candidates."""
    import scipy.sparse as sp

    from geosvc.locate._reduce import aggregate_demand as merge

    rng = np.random.default_rng(5)
    n_cand, n_dem = 40, 3000
    # few distinct column patterns, so many columns merge; some columns empty
    patterns = rng.random((25, n_cand)) < 0.15
    cols = patterns[rng.integers(0, 25, n_dem)].T
    cols[:, rng.random(n_dem) < 0.05] = False
    cov = sp.csr_array(cols)
    w = rng.integers(1, 9, n_dem).astype(float)
    active = cols.any(axis=0) & (rng.random(n_dem) < 0.9)
    cov_g, w_g, group = merge(cov, w, active)
    sets = {}
    for i in np.flatnonzero(active):
        sets.setdefault(frozenset(np.flatnonzero(cols[:, i]).tolist()), []).append(i)
    assert cov_g.shape == (n_cand, len(sets))
    dense_g = cov_g.toarray()
    for members in sets.values():
        g = group[members]
        assert (g == g[0]).all()
        assert w_g[g[0]] == pytest.approx(w[members].sum())
        assert (dense_g[:, g[0]] == cols[:, members[0]]).all()
    assert (group[~active] == -1).all()
    assert cov_g.has_sorted_indices and all(
        np.all(np.diff(cov_g.indices[cov_g.indptr[r]:cov_g.indptr[r + 1]]) > 0)
        for r in range(n_cand))
