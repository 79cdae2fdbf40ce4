"""Snapping: exact nearest edge (brute-force oracle), max snap distance, compound walls."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geosvc.access import (
    SNAP_INVALID,
    SNAP_OFF_NETWORK,
    SNAP_OK,
    points_in_compounds,
    snap_points,
)
from geosvc.network import compile_network, from_arrays, graph_from_lines
from tests.conftest import UTM


def _random_network(rng, n=15, spacing=70.0):
    xy = np.array([(i * spacing, j * spacing) for j in range(n) for i in range(n)])
    xy = xy + rng.uniform(-20, 20, xy.shape)
    idx = np.arange(n * n).reshape(n, n)
    u = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel()]
    v = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel()]
    keep = rng.random(len(u)) > 0.2  # irregular blocks
    # bent edges: a midpoint vertex moved sideways
    mid = (xy[u] + xy[v]) / 2 + rng.uniform(-10, 10, (len(u), 2))
    geoms = shapely.linestrings(np.stack([xy[u], mid, xy[v]], axis=1))
    return from_arrays(xy, u[keep], v[keep], crs=UTM, edge_geometry=geoms[keep])


def test_snap_matches_brute_force(rng):
    net = _random_network(rng)
    pts = rng.uniform(-400, 1400, (3000, 2))
    a = snap_points(net, pts, max_snap_m=150.0)
    dist = shapely.distance(net.edge_geometry[None, :], shapely.points(pts)[:, None])
    best = dist.min(axis=1)
    ok = a.status == SNAP_OK
    assert np.array_equal(ok, best <= 150.0)
    assert np.allclose(a.access_m[ok], best[ok], atol=1e-9)
    # the chosen edge is at the minimal distance (ties allowed) and offset is exact
    chosen = dist[np.flatnonzero(ok), a.edge[ok]]
    assert np.allclose(chosen, best[ok], atol=1e-9)
    ref_offset = shapely.line_locate_point(net.edge_geometry[a.edge[ok]], shapely.points(pts[ok]))
    assert np.allclose(a.offset_m[ok], ref_offset, atol=1e-6)
    snapped = shapely.line_interpolate_point(net.edge_geometry[a.edge[ok]], ref_offset)
    assert np.allclose(a.snapped_xy[ok], shapely.get_coordinates(snapped), atol=1e-6)
    assert np.all(a.status[~ok] == SNAP_OFF_NETWORK) and np.all(a.edge[~ok] == -1)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-300, 1300), st.floats(-300, 1300)), min_size=1,
                max_size=40), st.floats(1.0, 400.0))
def test_snap_property(points, max_snap):
    net = _random_network(np.random.default_rng(7), n=10, spacing=100.0)
    pts = np.array(points)
    a = snap_points(net, pts, max_snap_m=max_snap)
    best = shapely.distance(net.edge_geometry[None, :], shapely.points(pts)[:, None]).min(axis=1)
    ok = a.status == SNAP_OK
    assert np.array_equal(ok, best <= max_snap)
    assert np.allclose(a.access_m[ok], best[ok], atol=1e-9)
    assert np.all((a.offset_m[ok] >= 0) & (a.offset_m[ok] <= net.edge_length_m[a.edge[ok]] + 1e-9))


def test_invalid_geometries_are_flagged():
    net = _random_network(np.random.default_rng(1), n=5)
    geoms = np.array([shapely.Point(10, 10), None, shapely.Point(), shapely.Point(np.nan, 1),
                      shapely.Polygon([(0, 0), (20, 0), (20, 20)])], dtype=object)
    a = snap_points(net, geoms)
    assert a.status.tolist() == [SNAP_OK, SNAP_INVALID, SNAP_INVALID, SNAP_INVALID, SNAP_OK]


def test_points_are_reprojected_to_the_network_crs(grid_net):
    pts = gpd.GeoSeries([shapely.Point(150, 30)], crs=UTM).to_crs("EPSG:4326")
    a = snap_points(grid_net, pts)
    assert a.access_m[0] == pytest.approx(30.0, abs=1e-4)


def _walled_block():
    """A 200 m street square; a compound inside whose only gate is on the north side."""
    streets = [shapely.LineString([(0, 0), (200, 0), (200, 200), (0, 200), (0, 0)])]
    internal = [shapely.LineString([(50, 150), (150, 150)]),  # internal path
                shapely.LineString([(100, 150), (100, 200)])]  # gate connector to the north
    gdf = gpd.GeoDataFrame({"compound_id": [-1, 7, 7]}, geometry=streets + internal, crs=UTM)
    compound = shapely.Polygon([(20, 20), (180, 20), (180, 180), (20, 180)])
    return compile_network(graph_from_lines(gdf)), compound


def test_compound_points_snap_only_to_internal_paths():
    net, compound = _walled_block()
    pts = shapely.points([(100, 30), (100, -20)])  # inside near the south wall; outside
    comp = points_in_compounds(pts, np.array([compound]), np.array([7]))
    assert comp.tolist() == [7, -1]
    a = snap_points(net, pts, compound=comp)
    assert net.edge_compound[a.edge[0]] == 7
    assert a.access_m[0] == pytest.approx(120.0)  # to the internal path at y=150, not the street
    assert net.edge_compound[a.edge[1]] == -1 and a.access_m[1] == pytest.approx(20.0)
    # without walls the same point would take the south street 30 m away
    b = snap_points(net, pts)
    assert b.access_m[0] == pytest.approx(30.0)


def test_compound_without_paths_falls_back_to_streets(grid_net):
    a = snap_points(grid_net, np.array([[150.0, 40.0]]), compound=np.array([99]))
    assert a.status[0] == SNAP_OK and a.access_m[0] == pytest.approx(40.0)
    assert a.compound[0] == -1


def test_many_points_vectorised(rng):
    net = _random_network(rng, n=30)
    pts = rng.uniform(0, 2000, (200_000, 2))
    a = snap_points(net, pts, max_snap_m=300.0)
    sample = rng.choice(len(pts), 200, replace=False)
    best = shapely.distance(net.edge_geometry[None, :], shapely.points(pts[sample])[:, None])
    assert np.allclose(a.access_m[sample], best.min(axis=1), atol=1e-9)
