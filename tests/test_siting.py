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
    # stations sit on the street network
    d = shapely.distance(st.geometry.to_numpy()[:, None], net.edge_geometry[None, :]).min(axis=1)
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
