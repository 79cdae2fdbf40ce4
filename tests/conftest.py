"""Shared factory fixtures: small networks with hand-checkable answers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geosvc.network import compile_network, graph_from_lines

UTM = "EPSG:32650"


def grid_lines(n: int = 4, spacing_m: float = 100.0) -> gpd.GeoDataFrame:
    """An n x n street grid drawn as 2n long lines that are NOT split at junctions."""
    span = (n - 1) * spacing_m
    rows = [shapely.LineString([(0, i * spacing_m), (span, i * spacing_m)]) for i in range(n)]
    cols = [shapely.LineString([(i * spacing_m, 0), (i * spacing_m, span)]) for i in range(n)]
    return gpd.GeoDataFrame({"name": [f"r{i}" for i in range(n)] + [f"c{i}" for i in range(n)]},
                            geometry=rows + cols, crs=UTM)


@pytest.fixture
def grid_graph():
    """A 4 x 4 grid, 100 m blocks: 16 nodes, 24 undirected edges."""
    return graph_from_lines(grid_lines(4, 100.0))


@pytest.fixture
def grid_net(grid_graph):
    return compile_network(grid_graph)


@pytest.fixture
def two_component_lines() -> gpd.GeoDataFrame:
    """A 300 m line and, 1 km away, a separate 200 m line."""
    return gpd.GeoDataFrame(
        {"name": ["main", "island"]},
        geometry=[shapely.LineString([(0, 0), (300, 0)]),
                  shapely.LineString([(0, 1000), (200, 1000)])], crs=UTM)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
