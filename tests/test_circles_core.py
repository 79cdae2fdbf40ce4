"""Service circles: reached street length against a networkx oracle, polygon validity,
agreement with the coverage verdicts."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from geosvc.access import snap_points
from geosvc.circles import circle_agreement, reached_lines, service_areas, service_circles
from geosvc.coverage import analyse_coverage
from geosvc.network import compile_network, graph_from_lines
from geosvc.standards import load_profile
from tests.conftest import UTM, grid_lines


@pytest.fixture(scope="module")
def net():
    return compile_network(graph_from_lines(grid_lines(8, 150.0)))


def _oracle_length(net, anchor, reach):
    """Reachable street length: facility inserted as a node splitting its edge (networkx)."""
    e0 = int(anchor.edge[0])
    off, acc = float(anchor.offset_m[0]), float(anchor.access_m[0])
    G = nx.Graph()
    for e in range(net.n_edges):
        if e != e0:
            G.add_edge(int(net.edge_u[e]), int(net.edge_v[e]), weight=float(net.edge_length_m[e]))
    u, v, length = int(net.edge_u[e0]), int(net.edge_v[e0]), float(net.edge_length_m[e0])
    G.add_edge("f", u, weight=off)
    G.add_edge("f", v, weight=length - off)
    budget = reach - acc
    d = nx.single_source_dijkstra_path_length(G, "f", weight="weight")
    total = 0.0
    for a, b, data in G.edges(data=True):
        w = data["weight"]
        ra = max(0.0, budget - d.get(a, np.inf))
        rb = max(0.0, budget - d.get(b, np.inf))
        total += min(w, ra + rb)
    return total


@pytest.mark.parametrize("xy,reach", [((225.0, 10.0), 400.0), ((300.0, 0.0), 640.0),
                                      ((520.0, 451.0), 1080.0), ((75.0, 0.0), 40.0)])
def test_reached_length_equals_oracle(net, xy, reach):
    a = snap_points(net, np.array([xy]))
    lines = reached_lines(net, a, reach)
    assert shapely.length(lines[0]) == pytest.approx(_oracle_length(net, a, reach), abs=1e-6)


def test_partial_frontier_edge_drawn_for_what_the_budget_allows(net):
    # at the corner node (0, 0) with 190 m: both 150 m edges whole plus 40 m beyond each
    a = snap_points(net, np.array([[0.0, 0.0]]))
    lines = reached_lines(net, a, 190.0)
    # corner (0, 0), 190 m: both 150 m edges whole, then 40 m on each of the three streets
    # leaving (150, 0) and (0, 150) that lead away (two of them) -> 300 + 4 x 40
    assert shapely.length(lines[0]) == pytest.approx(300.0 + 4 * 40.0, abs=1e-6)
    assert shapely.length(lines[0]) == pytest.approx(_oracle_length(net, a, 190.0), abs=1e-6)


def test_polygons_are_valid_multipolygons(net):
    a = snap_points(net, np.array([[225.0, 10.0], [900.0, 900.0]]))
    polys = service_areas(net, a, 500.0, tolerance_m=30.0)
    assert len(polys) == 2
    assert all(p.geom_type == "MultiPolygon" and p.is_valid and p.area > 0 for p in polys)
    # the polygon contains the reached lines and no point farther than the tolerance from them
    lines = reached_lines(net, a, 500.0)
    # (the buffer tapers to nothing at the frontier, where no budget is left for a walk in)
    assert shapely.length(shapely.difference(lines[0], polys[0])) < 0.5
    assert polys[0].area <= shapely.buffer(lines[0], 30.0).area * 1.001


def test_circle_agreement_with_verdicts(net):
    rng = np.random.default_rng(2)
    hh = gpd.GeoDataFrame({"households": np.full(800, 10.0), "elderly": np.full(800, 2.0)},
                          geometry=shapely.points(rng.uniform(0, 1050, (800, 2))
                                                  + rng.uniform(-8, 8, (800, 2))), crs=UTM)
    fac = gpd.GeoDataFrame({"facility_id": ["A", "B"], "category": ["elderly_care"] * 2,
                            "subtype": ["x", "y"], "floor_area_m2": [300.0, 300.0]},
                           geometry=shapely.points([[150, 160], [800, 700]]), crs=UTM)
    prof = load_profile()
    res = analyse_coverage(net, hh, fac, categories=["elderly_care"], profile=prof)
    _, per_cat = service_circles(net, res.facilities, prof, thresholds_min=(15.0,),
                                 categories=["elderly_care"])
    agree = circle_agreement(res.households, per_cat, "elderly_care", threshold_min=15.0,
                             tolerance_m=prof.access_tolerance_m)
    assert agree["n"] == 800
    # the circle is drawn with a 30 m access tolerance: a covered household farther than
    # that from its street is outside the drawn circle by construction; all others agree
    within = agree["agree"] + agree["covered_outside_beyond_tolerance"]
    assert within / agree["n"] >= 0.99
    assert agree["uncovered_inside"] == 0
