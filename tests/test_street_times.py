"""osmnx habits: basic_stats on to_graph output, raw osmnx graphs refused, minutes on the
graph's nodes and edges (checked against networkx on the same graph), one facility id rule."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from geosvc._errors import InputError
from geosvc.network import compile_network, graph_from_osmnx, street_count, to_graph
from geosvc.standards import load_profile
from geosvc.street_times import street_minutes

ox = pytest.importorskip("osmnx")
BAUTZEN = Path("/work/shared/data/osm/bautzen.osm")
pytestmark = pytest.mark.skipif(not BAUTZEN.exists(), reason="shared OSM extract missing")


@pytest.fixture(scope="module")
def raw():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ox.graph_from_xml(BAUTZEN, retain_all=True)  # offline: a local file


@pytest.fixture(scope="module")
def G(raw):
    return graph_from_osmnx(raw)


def test_to_graph_passes_osmnx_basic_stats(G) -> None:
    net = compile_network(G)
    T = to_graph(net)
    stats = ox.stats.basic_stats(T)
    assert stats["n"] == net.n_nodes and stats["m"] == 2 * net.n_edges
    assert stats["street_length_total"] == pytest.approx(net.edge_length_m.sum())
    # street_count as osmnx itself counts it on the same graph
    assert nx.get_node_attributes(T, "street_count") == ox.stats.count_streets_per_node(T)
    assert street_count(net).sum() == 2 * net.n_edges  # no self-loops in this extract


def test_raw_osmnx_graph_is_refused_with_the_fix(raw) -> None:
    projected = ox.project_graph(raw)
    with pytest.raises(InputError, match=r"compile_network\(geosvc.network.graph_from_osmnx"
                                         r"\(G\)\)") as err:
        compile_network(projected)
    assert "\n" not in str(err.value)
    compile_network(graph_from_osmnx(raw))  # the conversion makes it acceptable


def test_street_minutes_match_networkx_on_the_same_graph(G) -> None:
    prof = load_profile()
    speed = prof.category("elderly_care").speed_m_s
    nodes = list(G.nodes)
    src = [nodes[0], nodes[len(nodes) // 2]]
    crs = G.graph["crs"]
    fac = gpd.GeoDataFrame({"category": "elderly_care", "subtype": "day_care_center"},
                           geometry=[shapely.Point(G.nodes[n]["x"], G.nodes[n]["y"]) for n in src],
                           index=[0, 1], crs=crs)
    sm = street_minutes(G, fac, category="elderly_care", profile=prof)
    assert list(sm.edges.index) == list(G.edges(keys=True))
    assert list(sm.nodes.index) == nodes
    # oracle: networkx multi-source Dijkstra on G's own edge lengths
    dist = nx.multi_source_dijkstra_path_length(G, set(src), weight="length_m")
    for n in nodes:
        want = dist.get(n, np.inf) / speed / 60.0
        assert sm.nodes[n] == pytest.approx(want, abs=1e-9) or (
            np.isinf(want) and np.isinf(sm.nodes[n]))
    for (u, v, k), got in sm.edges.items():
        length = G.edges[u, v, k]["length_m"]
        want = min(dist.get(u, np.inf), dist.get(v, np.inf)) + length / 2.0
        assert got == pytest.approx(want / speed / 60.0, abs=1e-9) or np.isinf(want)
    assert np.isfinite(sm.edges).mean() > 0.5  # the search reached most streets
    # a compiled network works too: the Series align with to_graph(net)
    sm2 = street_minutes(compile_network(G), fac, category="elderly_care", profile=prof)
    assert list(sm2.edges.index) == list(sm2.graph.edges(keys=True))
    assert np.allclose(np.sort(sm2.nodes.to_numpy()), np.sort(sm.nodes.to_numpy()))


def test_one_facility_id_rule_for_coverage_and_circles(G) -> None:
    from geosvc.circles import service_circles
    from geosvc.facilities import prepare_facilities

    net = compile_network(G)
    xy = net.node_xy[[0, 5]]
    fac = gpd.GeoDataFrame({"category": "elderly_care", "subtype": "day_care_center"},
                           geometry=shapely.points(xy), index=[10, 11], crs=net.crs)
    per_fac, _ = service_circles(net, fac, thresholds_min=[5.0])  # no facility_id column
    ids = prepare_facilities(fac, load_profile())["facility_id"].tolist()
    assert sorted(per_fac["facility_id"]) == sorted(ids) == ["F0", "F1"]


def test_equal_length_parallel_streets_get_their_own_minutes():
    """Roundabout halves (same ends, same length): each street keeps its own value."""
    from geosvc.standards import load_profile

    t = np.linspace(0.0, np.pi, 33)
    upper = shapely.LineString(np.column_stack([50 - 50 * np.cos(t), 50 * np.sin(t)]))
    lower = shapely.LineString(np.column_stack([50 - 50 * np.cos(t), -50 * np.sin(t)]))
    G = nx.MultiDiGraph(crs="EPSG:32650")
    G.add_node(1, x=0.0, y=0.0)
    G.add_node(2, x=100.0, y=0.0)
    for key, arc in enumerate((upper, lower)):
        G.add_edge(1, 2, key, geometry=arc, length=arc.length)
        G.add_edge(2, 1, key, geometry=arc.reverse(), length=arc.length)
    fac = gpd.GeoDataFrame({"category": ["elderly_care"], "subtype": ["day_care_center"],
                            "floor_area_m2": [300.0]},
                           geometry=[lower.interpolate(0.5, normalized=True)], crs="EPSG:32650")
    sm = street_minutes(G, fac, category="elderly_care")
    speed = load_profile().category("elderly_care").speed_m_s
    # the facility sits at the lower half's midpoint; the upper midpoint is a half circle away
    assert sm.edges[(1, 2, 1)] == pytest.approx(0.0, abs=1e-9)
    assert sm.edges[(2, 1, 1)] == pytest.approx(0.0, abs=1e-9)
    assert sm.edges[(1, 2, 0)] == pytest.approx(upper.length / speed / 60.0, rel=1e-9)
