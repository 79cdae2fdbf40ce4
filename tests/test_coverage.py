"""Coverage verdicts, status accounting, radius method, 2SFCA and per-area results."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geosvc._errors import InputError
from geosvc.access import nearest_facility, snap_points
from geosvc.coverage import STATUSES, analyse_coverage, two_step_fca
from geosvc.network import compile_network, graph_from_lines, to_graph
from geosvc.standards import load_profile
from tests.conftest import UTM, grid_lines

SUBTYPES = list(load_profile().category("convenience").required_subtypes)


@pytest.fixture(scope="module")
def big_grid():
    return compile_network(graph_from_lines(grid_lines(8, 150.0)))


def _facilities(xy, cats, subtypes, floor=None):
    n = len(xy)
    return gpd.GeoDataFrame({
        "facility_id": [f"F{i}" for i in range(n)], "category": cats, "subtype": subtypes,
        "floor_area_m2": floor if floor is not None else [100.0] * n,
    }, geometry=shapely.points(np.asarray(xy, float)), crs=UTM)


def _households(xy, hh=None, elderly=None):
    n = len(xy)
    return gpd.GeoDataFrame({
        "bid": np.arange(n),
        "households": hh if hh is not None else np.full(n, 10.0),
        "elderly": elderly if elderly is not None else np.full(n, 2.0),
    }, geometry=shapely.points(np.asarray(xy, float)), crs=UTM)


def test_times_at_nodes_equal_networkx(big_grid):
    net = big_grid
    G = to_graph(net)
    rng = np.random.default_rng(3)
    fnodes = rng.choice(net.n_nodes, 3, replace=False)
    hnodes = rng.choice(net.n_nodes, 40)
    fac = _facilities(net.node_xy[fnodes], ["elderly_care"] * 3, ["community_station"] * 3)
    hh = _households(net.node_xy[hnodes])
    res = analyse_coverage(net, hh, fac, categories=["elderly_care"])
    ref = nx.multi_source_dijkstra_path_length(G, set(fnodes.tolist()), weight="length_m")
    expect_min = np.array([ref[int(h)] for h in hnodes]) / 0.8 / 60.0
    assert np.allclose(res.households["time_elderly_care_min"], expect_min, atol=1e-9)
    covered = expect_min <= 15.0 + 1e-9
    assert np.array_equal(res.households["status_elderly_care"] == "covered", covered)
    s = res.summary["categories"]["elderly_care"]
    assert s["threshold_min"] == 15.0 and s["speed_m_s"] == 0.8
    assert s["rows_covered"] == covered.sum()
    assert s["coverage_rate"] == pytest.approx(covered.mean())


def test_bad_rows_become_invalid_with_reasons(big_grid):
    hh = _households([(10, 10), (20, 20), (30, 30), (40, 40), (50, 50)])
    hh["households"] = pd.Series([5, -1, np.nan, 7, 3], dtype=float)
    hh.loc[3, "geometry"] = None
    hh["bid"] = [1, 2, 3, 4, 1]  # duplicate id on the last row
    fac = _facilities([(0, 0)], ["elderly_care"], ["nursing_home"])
    res = analyse_coverage(big_grid, hh, fac, categories=["elderly_care"],
                           households_kw={"id_col": "bid"})
    out = res.households
    assert out["invalid_reason"].tolist() == [
        "", "households is negative", "households is not a number", "missing or empty geometry",
        "duplicate id"]
    assert out["status_elderly_care"].tolist() == ["covered"] + ["invalid"] * 4
    assert np.isnan(out["time_elderly_care_min"].iloc[1])
    s = res.summary["categories"]["elderly_care"]
    assert sum(s[f"rows_{k}"] for k in STATUSES) == 5
    assert s["rows_invalid"] == 4


def test_unknown_category_lists_valid_ones(big_grid):
    fac = _facilities([(0, 0)], ["eldercare"], ["x"])
    with pytest.raises(InputError, match="valid categories.*convenience.*elderly_care"):
        analyse_coverage(big_grid, _households([(0, 0)]), fac)


def test_missing_household_column_names_it(big_grid):
    hh = _households([(0, 0)]).rename(columns={"households": "hh"})
    with pytest.raises(InputError, match="no column 'households'.*households_col"):
        analyse_coverage(big_grid, hh, _facilities([(0, 0)], ["elderly_care"], ["nursing_home"]))


def test_off_network_and_unreachable(two_component_lines):
    net = compile_network(graph_from_lines(two_component_lines))
    hh = _households([(100, 10), (100, 1010), (100, 600)])  # main; island; 400 m from both
    fac = _facilities([(50, 0)], ["elderly_care"], ["nursing_home"])
    res = analyse_coverage(net, hh, fac, categories=["elderly_care"])
    assert res.households["status_elderly_care"].tolist() == ["covered", "unreachable",
                                                              "off_network"]
    assert np.isinf(res.households["time_elderly_care_min"].iloc[1])


def test_gate_facing_away_is_uncovered_though_shop_is_50m_away():
    streets = [shapely.LineString([(0, 0), (400, 0)]), shapely.LineString([(0, 0), (0, 300)]),
               shapely.LineString([(0, 300), (400, 300)]),
               shapely.LineString([(400, 0), (400, 300)])]
    internal = [shapely.LineString([(100, 150), (300, 150)]),
                shapely.LineString([(200, 150), (200, 300)])]
    roads = gpd.GeoDataFrame({"compound_id": [-1] * 4 + [1, 1]}, geometry=streets + internal,
                             crs=UTM)
    net = compile_network(graph_from_lines(roads))
    compounds = gpd.GeoDataFrame({"compound_id": [1]}, geometry=[
        shapely.Polygon([(20, 20), (380, 20), (380, 280), (20, 280)])], crs=UTM)
    hh = _households([(200, 50)])
    fac = _facilities([(200, -5)], ["elderly_care"], ["day_care_center"])
    res = analyse_coverage(net, hh, fac, categories=["elderly_care"], compounds=compounds)
    row = res.households.iloc[0]
    assert row["status_elderly_care"] == "uncovered"
    assert row["time_elderly_care_min"] == pytest.approx(955 / 0.8 / 60)
    assert bool(row["radius_only_elderly_care"])  # the radius method calls it covered


def test_convenience_needs_every_required_type(big_grid):
    # all 12 types near the origin, except the pharmacy far away
    xy = [(1050.0, 1050.0) if sub == "pharmacy" else (5.0 * k, 0.0)
          for k, sub in enumerate(SUBTYPES)]
    fac = _facilities(xy, ["convenience"] * 12, SUBTYPES)
    hh = _households([(0, 20), (1050, 1030)])
    res = analyse_coverage(big_grid, hh, fac, categories=["convenience"])
    out = res.households
    assert out["status_convenience_convenience_store"].tolist() == ["covered", "uncovered"]
    assert out["status_convenience_pharmacy"].tolist() == ["uncovered", "covered"]
    assert out["status_convenience"].tolist() == ["uncovered", "uncovered"]
    assert out["missing_convenience_subtypes"].iloc[0] == "pharmacy"
    assert out["limiting_convenience_subtype"].iloc[0] == "pharmacy"
    # time_convenience_min is the time until the last required type is reached
    d_pharm = (1030 + 1050) / 1.2 / 60  # up the x = 0 street, then east
    assert out["time_convenience_min"].iloc[0] == pytest.approx(d_pharm)
    assert out["time_convenience_any_min"].iloc[0] == pytest.approx(20 / 1.2 / 60)


def test_two_step_fca_against_brute_force(big_grid):
    rng = np.random.default_rng(8)
    fac = _facilities(rng.uniform(0, 1050, (6, 2)), ["elderly_care"] * 6, ["nursing_home"] * 6,
                      floor=rng.uniform(100, 800, 6))
    hh = _households(rng.uniform(0, 1050, (120, 2)), hh=rng.integers(1, 60, 120).astype(float))
    res = analyse_coverage(big_grid, hh, fac, categories=["elderly_care"])
    reach = load_profile().category("elderly_care").reach_m
    h_anchor = snap_points(big_grid, hh.geometry.to_numpy())
    dist = np.vstack([nearest_facility(big_grid, snap_points(big_grid, fac.geometry.to_numpy()[[j]]),
                                       h_anchor).distance_m for j in range(6)])
    within = dist <= reach
    load = (within * hh["households"].to_numpy()[None, :]).sum(axis=1)
    ratio = np.where(load > 0, fac["floor_area_m2"].to_numpy() / np.where(load > 0, load, 1), 0)
    expected = (within * ratio[:, None]).sum(axis=0)
    assert np.allclose(res.households["access_index_elderly_care"], expected, atol=1e-9)


def test_two_step_fca_hand_case():
    # two facilities (100 m2, 300 m2); A serves h0,h1 (10+30 hh), B serves h1,h2 (30+20 hh)
    idx = two_step_fca(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 2]), np.array([100.0, 300.0]),
                       np.array([10.0, 30.0, 20.0]), 4)
    assert idx.tolist() == pytest.approx([2.5, 2.5 + 6.0, 6.0, 0.0])


def test_areas_add_up_and_floor_area_shortfall(big_grid):
    rng = np.random.default_rng(5)
    hh = _households(rng.uniform(0, 1050, (200, 2)), hh=np.full(200, 10.0))
    fac = _facilities([(100, 100), (900, 900)], ["elderly_care"] * 2, ["nursing_home", "nursing_home"],
                      floor=[300.0, 200.0])
    west = shapely.box(-1, -1, 525, 1051)
    east = shapely.box(525, -1, 1051, 1051)
    areas = gpd.GeoDataFrame({"area_id": ["W", "E"], "name": ["西", "东"], "old_area": [False, True]},
                             geometry=[west, east], crs=UTM)
    res = analyse_coverage(big_grid, hh, fac, categories=["elderly_care"],
                           areas={"community": areas})
    a = res.areas["community"].set_index("area_id")
    assert a["households"].sum() == pytest.approx(2000.0)
    cols = [f"elderly_care_households_{s}" for s in STATUSES]
    assert np.allclose(a[cols].sum(axis=1), a["households"])
    assert a[cols[0]].sum() == pytest.approx(
        res.summary["categories"]["elderly_care"]["households_covered"])
    n_w = (res.households.geometry.x < 525).sum() * 10.0
    assert a.loc["W", "households"] == pytest.approx(n_w)
    assert a.loc["W", "elderly_care_floor_area_m2"] == 300.0
    assert a.loc["W", "elderly_care_norm_per_100hh_m2"] == 30.0
    assert a.loc["E", "elderly_care_norm_per_100hh_m2"] == 20.0  # old area norm
    assert a.loc["W", "elderly_care_shortfall_m2"] == pytest.approx(max(0, 30 * n_w / 100 - 300))
    assert a.loc["W", "elderly_care_floor_area_per_100hh_m2"] == pytest.approx(300 / (n_w / 100))


def test_inputs_are_not_mutated(big_grid):
    hh = _households([(10, 10), (500, 500)])
    before = hh.copy()
    analyse_coverage(big_grid, hh, _facilities([(0, 0)], ["elderly_care"], ["nursing_home"]),
                     categories=["elderly_care"])
    pd.testing.assert_frame_equal(hh, before)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-600, 1700), st.floats(-600, 1700),
                          st.one_of(st.floats(-5, 80), st.just(float("nan"))),
                          st.booleans()), min_size=1, max_size=40))
def test_status_accounting_property(rows):
    net = _grid_cache()
    xy = np.array([(r[0], r[1]) for r in rows])
    hh = _households(xy, hh=np.array([r[2] for r in rows]))
    geoms = hh.geometry.to_numpy().copy()
    geoms[[r[3] and i % 3 == 0 for i, r in enumerate(rows)]] = None
    hh = hh.set_geometry(geoms)
    fac = _facilities([(0, 0), (700, 700)] + [(10.0 * k, 5) for k in range(12)],
                      ["elderly_care"] * 2 + ["convenience"] * 12, ["nursing_home", "day_care_center"] + SUBTYPES)
    res = analyse_coverage(net, hh, fac)
    for cat, s in res.summary["categories"].items():
        assert sum(s[f"rows_{k}"] for k in STATUSES) == len(rows)
        assert sum(s[f"households_{k}"] for k in STATUSES) == pytest.approx(s["households_total"])
        assert set(res.households[f"status_{cat}"]) <= set(STATUSES)
        assert 0.0 <= s["coverage_rate"] <= 1.0 or np.isnan(s["coverage_rate"])


_NET = {}


def _grid_cache():
    if "g" not in _NET:
        _NET["g"] = compile_network(graph_from_lines(grid_lines(8, 150.0)))
    return _NET["g"]


def test_no_facility_of_a_kind_means_uncovered_not_unreachable(two_component_lines):
    net = compile_network(graph_from_lines(two_component_lines))
    hh = _households([(100, 10), (100, 1010)])
    # elderly care exists only on the main line; convenience has no pharmacy anywhere
    subs = [s for s in SUBTYPES if s != "pharmacy"]
    fac = _facilities([(50, 0)] + [(60, 0)] * len(subs), ["elderly_care"] + ["convenience"] *
                      len(subs), ["nursing_home"] + subs)
    res = analyse_coverage(net, hh, fac)
    out = res.households
    assert out["status_elderly_care"].tolist() == ["covered", "unreachable"]
    assert out["status_convenience_pharmacy"].tolist() == ["uncovered", "uncovered"]
    assert out["status_convenience_convenience_store"].tolist() == ["covered", "unreachable"]
    # all basic types: the island has no shop at all (unreachable); the main line lacks one type
    assert out["status_convenience"].tolist() == ["uncovered", "unreachable"]
    assert out["missing_convenience_subtypes"].iloc[0] == "pharmacy"


def test_osm_rules_need_every_condition():
    from geosvc.facilities import facilities_from_osm_pois

    pois = gpd.GeoDataFrame({
        "id": [1, 2, 3, 4],
        "amenity": ["social_facility", "nursing_home", "social_facility", "pharmacy"],
        "social_facility": ["day_care", None, "day_care", None],
        "social_facility:for": ["senior", None, "child", None],
        "shop": [None, None, None, None],
    }, geometry=shapely.points([(0, 0), (1, 1), (2, 2), (3, 3)]), crs=UTM)
    fac = facilities_from_osm_pois(pois, load_profile())
    got = sorted(zip(fac["facility_id"], fac["category"], fac["subtype"], strict=True))
    assert got == [("CO-4", "convenience", "pharmacy"),
                   ("EL-1", "elderly_care", "day_care_center"),
                   ("EL-2", "elderly_care", "nursing_home")]  # the children's day care is out


def test_access_index_in_facility_chunks_equals_one_pass(big_grid, monkeypatch):
    """A memory budget only changes how many facilities share a pairs chunk, not the index."""
    from geosvc.access._pairs import pairs_within
    from geosvc.coverage import _verdicts as coverage  # where analyse_coverage runs

    rng = np.random.default_rng(11)
    lo, hi = big_grid.node_xy.min(axis=0), big_grid.node_xy.max(axis=0)
    fxy = rng.uniform(lo, hi, size=(90, 2))
    hxy = rng.uniform(lo, hi, size=(400, 2))
    fac = _facilities(fxy, ["elderly_care"] * 90, ["community_station"] * 90,
                      floor=rng.uniform(50, 500, 90))
    hh = _households(hxy, hh=rng.integers(1, 20, 400).astype(float))
    full = analyse_coverage(big_grid, hh, fac, categories=["elderly_care"])
    # oracle: 2SFCA from every (facility, household) pair of one search, no chunks
    reach = load_profile().category("elderly_care").reach_m
    pf, ph, _ = pairs_within(big_grid, full.facility_anchors, full.household_anchors, reach)
    expected = two_step_fca(pf, ph, fac["floor_area_m2"].to_numpy(), hh["households"].to_numpy(),
                            len(hh))
    np.testing.assert_allclose(full.households["access_index_elderly_care"], expected,
                               rtol=1e-12)
    calls = []
    real = coverage.pairs_within
    monkeypatch.setattr(coverage, "pairs_within",
                        lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    monkeypatch.setattr(coverage.resources, "available_bytes", lambda **k: 1)  # no room
    small = analyse_coverage(big_grid, hh, fac, categories=["elderly_care"])
    assert calls[0] == 64 and set(calls[1:]) == {1} and sum(calls) == 90
    np.testing.assert_allclose(small.households["access_index_elderly_care"], expected,
                               rtol=1e-12)


def test_coverage_that_cannot_fit_the_memory_limit_says_so(big_grid):
    from geosvc import resources
    from geosvc._errors import MemoryLimitError

    fac = _facilities([[75.0, 0.0]], ["elderly_care"], ["community_station"])
    hh = _households([[10.0, 10.0], [300.0, 5.0]])
    with resources.memory_limit("1MB"), \
            pytest.raises(MemoryLimitError, match=r"walking-time coverage of 2 household rows "
                                                  r"\(1 network searches\) needs about .* but "
                                                  r"the memory limit 1\.0 MB leaves 0 B"):
        analyse_coverage(big_grid, hh, fac, categories=["elderly_care"])
    with resources.memory_limit("64GB"):  # room enough: the same call runs
        analyse_coverage(big_grid, hh, fac, categories=["elderly_care"])
