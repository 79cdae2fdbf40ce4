"""Nearest-facility distances against networkx on the same graph (the oracle)."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geosvc.access import nearest_facility, points_in_compounds, snap_points
from geosvc.network import compile_network, from_arrays, graph_from_lines, to_graph
from tests.conftest import UTM


def _perturbed(rng, n=14, spacing=90.0, drop=0.15):
    xy = np.array([(i * spacing, j * spacing) for j in range(n) for i in range(n)], float)
    xy += rng.uniform(-25, 25, xy.shape)
    idx = np.arange(n * n).reshape(n, n)
    u = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel()]
    v = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel()]
    keep = rng.random(len(u)) > drop
    return from_arrays(xy, u[keep], v[keep], crs=UTM)


def test_points_at_nodes_equal_networkx_multi_source(rng):
    net = _perturbed(rng)
    G = to_graph(net)
    linked = np.flatnonzero(np.diff(net.indptr) > 0)
    fac_nodes = rng.choice(linked, 6, replace=False)
    hh_nodes = rng.choice(linked, 150, replace=True)
    fac = snap_points(net, net.node_xy[fac_nodes])
    hh = snap_points(net, net.node_xy[hh_nodes])
    res = nearest_facility(net, fac, hh)
    ref = nx.multi_source_dijkstra_path_length(G, set(fac_nodes.tolist()), weight="length_m")
    expected = np.array([ref.get(int(h), np.inf) for h in hh_nodes])
    assert np.allclose(res.distance_m, expected, rtol=0, atol=1e-9)
    # the reported facility is at that distance (ties may pick either)
    reach = np.isfinite(expected)
    for h, s, d in zip(hh_nodes[reach], res.source[reach], expected[reach], strict=True):
        dn = nx.dijkstra_path_length(G, int(fac_nodes[s]), int(h), weight="length_m")
        assert dn == pytest.approx(d, abs=1e-9)


def _split_oracle(net, pts_anchor):
    """networkx graph where each snapped point is a real node splitting its edge."""
    G = nx.Graph()
    for e in range(net.n_edges):
        G.add_edge(("n", int(net.edge_u[e])), ("n", int(net.edge_v[e])),
                   weight=float(net.edge_length_m[e]), key=e)
    by_edge: dict[int, list[tuple[float, object]]] = {}
    for name, a in pts_anchor.items():
        for i in np.flatnonzero(a.ok):
            by_edge.setdefault(int(a.edge[i]), []).append((float(a.offset_m[i]), (name, int(i))))
    for e, items in by_edge.items():
        u, v = ("n", int(net.edge_u[e])), ("n", int(net.edge_v[e]))
        if G.has_edge(u, v):
            G.remove_edge(u, v)
        items.sort(key=lambda t: t[0])
        chain = [(0.0, u)] + items + [(float(net.edge_length_m[e]), v)]
        for (o1, a1), (o2, a2) in zip(chain[:-1], chain[1:], strict=True):
            G.add_edge(a1, a2, weight=max(o2 - o1, 0.0))
    return G


def test_mid_edge_points_match_split_graph_oracle(rng):
    net = _perturbed(rng, n=10)
    fac = snap_points(net, rng.uniform(0, 800, (5, 2)))
    hh = snap_points(net, rng.uniform(0, 800, (300, 2)))
    res = nearest_facility(net, fac, hh)
    G = _split_oracle(net, {"f": fac, "h": hh})
    G.add_node("super")
    for i in np.flatnonzero(fac.ok):
        G.add_edge("super", ("f", int(i)), weight=float(fac.access_m[i]))
    ref = nx.single_source_dijkstra_path_length(G, "super", weight="weight")
    expected = np.array([ref.get(("h", i), np.inf) + hh.access_m[i] for i in range(len(hh))])
    assert np.allclose(res.distance_m, expected, atol=1e-7)


def test_hand_computed_offsets_on_a_line():
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1000, 0)]),
                                       shapely.LineString([(1000, 0), (1000, 500)])], crs=UTM)
    net = compile_network(graph_from_lines(lines))
    fac = snap_points(net, np.array([[200.0, 10.0]]))  # 10 m off the street at x = 200
    hh = snap_points(net, np.array([[50.0, -5.0], [700.0, 20.0], [1030.0, 400.0]]))
    res = nearest_facility(net, fac, hh)
    # same edge: 10 + 150 + 5; same edge: 10 + 500 + 20; around the corner: 10 + 800 + 400 + 30
    assert res.distance_m.tolist() == pytest.approx([165.0, 530.0, 1240.0])
    assert res.source.tolist() == [0, 0, 0]


def test_unreachable_and_unsnapped(two_component_lines):
    net = compile_network(graph_from_lines(two_component_lines))
    fac = snap_points(net, np.array([[10.0, 0.0]]))
    hh = snap_points(net, np.array([[100.0, 5.0], [50.0, 1000.0], [5000.0, 5000.0]]),
                     max_snap_m=300)
    res = nearest_facility(net, fac, hh)
    assert res.distance_m[0] == pytest.approx(95.0)
    assert np.isinf(res.distance_m[1]) and res.source[1] == -1  # other component
    assert np.isnan(res.distance_m[2]) and res.source[2] == -1  # not snapped


def test_limit_cuts_distances(rng):
    net = _perturbed(rng)
    fac = snap_points(net, rng.uniform(0, 1200, (3, 2)))
    hh = snap_points(net, rng.uniform(0, 1200, (500, 2)))
    full = nearest_facility(net, fac, hh)
    cut = nearest_facility(net, fac, hh, limit_m=400.0)
    inside = full.distance_m <= 400.0
    assert np.allclose(cut.distance_m[inside], full.distance_m[inside])
    assert np.all(np.isinf(cut.distance_m[~inside & np.isfinite(full.distance_m)]))


def test_gate_facing_away_makes_a_near_shop_far():
    """A shop 50 m from the compound in a straight line, but the only gate faces away."""
    streets = [shapely.LineString([(0, 0), (400, 0)]),            # south street, shop here
               shapely.LineString([(0, 0), (0, 300)]),
               shapely.LineString([(0, 300), (400, 300)]),        # north street, the gate
               shapely.LineString([(400, 0), (400, 300)])]
    internal = [shapely.LineString([(100, 150), (300, 150)]),
                shapely.LineString([(200, 150), (200, 300)])]     # gate connector to the north
    gdf = gpd.GeoDataFrame({"compound_id": [-1] * 4 + [1, 1]}, geometry=streets + internal,
                           crs=UTM)
    net = compile_network(graph_from_lines(gdf))
    compound = shapely.Polygon([(20, 20), (380, 20), (380, 280), (20, 280)])
    home = shapely.points([(200, 50)])   # 50 m north of the south street, inside the wall
    comp = points_in_compounds(home, np.array([compound]), np.array([1]))
    hh = snap_points(net, home, compound=comp)
    shop = snap_points(net, np.array([[200.0, -5.0]]))
    res = nearest_facility(net, shop, hh)
    # 100 m to the internal path, 150 m to the gate, around: 200 + 300 + 200 to the shop, +5
    assert res.distance_m[0] == pytest.approx(100 + 150 + 200 + 300 + 200 + 5)
    assert res.distance_m[0] / 60 / 1.2 > 13.0  # well beyond what the straight line suggests
    naive = nearest_facility(net, shop, snap_points(net, home))
    assert naive.distance_m[0] == pytest.approx(55.0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 60))
def test_property_nodes_oracle(seed, n_fac, n_hh):
    rng = np.random.default_rng(seed)
    net = _perturbed(rng, n=6, drop=0.3)
    G = to_graph(net)
    linked = np.flatnonzero(np.diff(net.indptr) > 0)  # an isolated node is not on any street
    fn = rng.choice(linked, min(n_fac, len(linked)), replace=False)
    hn = rng.choice(linked, n_hh)
    res = nearest_facility(net, snap_points(net, net.node_xy[fn]), snap_points(net, net.node_xy[hn]))
    ref = nx.multi_source_dijkstra_path_length(G, set(fn.tolist()), weight="length_m")
    assert np.allclose(res.distance_m, [ref.get(int(h), np.inf) for h in hn], atol=1e-9)
