"""Connectivity policy of line layers, self-crossings, lengths, datum-safe junctions, components."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geosvc import diagnostics
from geosvc._errors import ConfigError
from geosvc.network import keep_components, network_from_lines
from geosvc.pipeline import network_summary
from tests.conftest import UTM, grid_lines


def _report(net):
    return net.graph_attrs["network_report"]


def _split_grid(n: int = 4, spacing_m: float = 100.0) -> gpd.GeoDataFrame:
    """The same grid as ``grid_lines`` but split at every junction (an OSM-like export)."""
    segs = []
    for i in range(n):
        for j in range(n - 1):
            segs.append(shapely.LineString([(j * spacing_m, i * spacing_m),
                                            ((j + 1) * spacing_m, i * spacing_m)]))
            segs.append(shapely.LineString([(i * spacing_m, j * spacing_m),
                                            (i * spacing_m, (j + 1) * spacing_m)]))
    return gpd.GeoDataFrame(geometry=segs, crs=UTM)


def test_auto_reads_raw_cad_lines_as_crossings_with_counts():
    net = network_from_lines(grid_lines(4))
    rep = _report(net)
    assert rep["requested"] == "auto" and rep["connectivity"] == "crossings"
    # 8 long lines: the 4 corners are shared ends, 8 ends lie on a through line (T), and
    # the 4 inner junctions are crossings in plan
    assert rep["junctions_at_ends"] == 4
    assert rep["ends_on_interior"] == 8
    assert rep["crossings_found"] == rep["crossings_same_level"] == 4
    assert net.n_nodes == 16 and net.n_edges == 24 and net.n_components == 1
    assert "junctions at shared end points" in rep["reason"]


def test_auto_reads_a_split_layer_as_endpoints():
    net = network_from_lines(_split_grid(4))
    rep = _report(net)
    assert rep["connectivity"] == "endpoints"
    assert rep["ends_on_interior"] == 0 and rep["crossings_found"] == 0
    assert rep["ends_shared"] == rep["line_ends"] - rep["ends_dangling"]
    assert net.n_nodes == 16 and net.n_edges == 24


def test_endpoints_never_joins_a_crossing_or_a_t_and_warns():
    with diagnostics.collect() as diag:
        net = network_from_lines(grid_lines(4), connectivity="endpoints")
    assert net.n_edges == 8  # nothing split
    codes = {w.code for w in diag.warnings}
    assert "dangling_ends" in codes  # 8 ends lie on other lines: told, not guessed


def test_underpass_joins_the_street_above_only_in_crossings_mode():
    # a footway under a street, untagged (its tunnel tag was lost in an export)
    street = shapely.LineString([(0, 0), (400, 0)])
    under = shapely.LineString([(200, -150), (200, 150)])
    lines = gpd.GeoDataFrame({"highway": ["primary", "footway"]}, geometry=[street, under],
                             crs=UTM)
    ends = network_from_lines(lines, connectivity="endpoints")
    assert ends.n_components == 2
    cross = network_from_lines(lines, connectivity="crossings")
    assert cross.n_components == 1 and cross.n_nodes == 5
    # tagged as a tunnel, crossings mode keeps it apart (grade rule)
    tagged = lines.assign(tunnel=["no", "yes"])
    assert network_from_lines(tagged, connectivity="crossings").n_components == 2


def test_a_line_never_joins_itself_at_a_self_crossing():
    # a ramp that loops over itself (crosses itself once) and meets a street at its end
    ramp = shapely.LineString([(0, 0), (100, 0), (100, 60), (50, 60), (50, -40)])
    street = shapely.LineString([(50, -40), (300, -40)])
    lines = gpd.GeoDataFrame(geometry=[ramp, street], crs=UTM)
    for mode in ("endpoints", "crossings", "auto"):
        net = network_from_lines(lines, connectivity=mode)
        assert net.n_edges == 2 and net.n_nodes == 3, mode
        assert _report(net)["self_crossings"] == 1
        assert np.isclose(net.edge_length_m.sum(), ramp.length + street.length, atol=1e-9)
    # a second street crossing the loop does join it (another line), the self-crossing not
    other = shapely.LineString([(75, -20), (75, 100)])
    net = network_from_lines(gpd.GeoDataFrame(geometry=[ramp, street, other], crs=UTM),
                             connectivity="crossings")
    assert _report(net)["crossings_same_level"] == 1
    # `other` crosses the ramp twice (y=0, y=60): both cut in three; the street stays whole
    assert net.n_edges == 3 + 3 + 1


def test_lengths_come_from_the_original_coordinates():
    rng = np.random.default_rng(3)
    lines = []
    for _ in range(40):
        xy = rng.uniform(0, 500, (4, 2)) + rng.uniform(0, 1e-3, (4, 2))  # off any cm grid
        lines.append(shapely.LineString(xy))
    gdf = gpd.GeoDataFrame(geometry=lines, crs=UTM)
    net = network_from_lines(gdf, connectivity="crossings")
    # every piece lies on its line: total length is the input's, to float precision
    total = sum(g.length for g in lines)
    assert net.edge_length_m.sum() == pytest.approx(total, rel=1e-12)
    assert net.n_edges > 200  # the random lines cross a lot
    # every edge's geometry length is its weight
    assert np.allclose(shapely.length(net.edge_geometry), net.edge_length_m, rtol=0, atol=1e-9)


def test_bad_connectivity_is_a_config_error():
    with pytest.raises(ConfigError, match="connectivity = 'nodes'"):
        network_from_lines(grid_lines(2), connectivity="nodes")


def _china_grid(n: int = 6, spacing_deg: float = 0.01):
    """A lon/lat grid in Beijing drawn as long CAD lines (junctions inside lines) plus
    dead-end stubs ending on a line's interior between vertices."""
    x0, y0 = 116.30, 39.90
    span = (n - 1) * spacing_deg
    rows = [shapely.LineString([(x0, y0 + i * spacing_deg), (x0 + span, y0 + i * spacing_deg)])
            for i in range(n)]
    cols = [shapely.LineString([(x0 + i * spacing_deg, y0), (x0 + i * spacing_deg, y0 + span)])
            for i in range(n)]
    stubs = [shapely.LineString([(x0 + (i + 0.37) * spacing_deg, y0 + spacing_deg),
                                 (x0 + (i + 0.37) * spacing_deg, y0 + 1.5 * spacing_deg)])
             for i in range(n - 1)]
    return gpd.GeoDataFrame(geometry=rows + cols + stubs, crs="EPSG:4326")


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_junctions_survive_datum_conversion(system, monkeypatch):
    # a layer drawn on a Chinese web map: its junctions are exact in GCJ-02/BD-09 coordinates
    layer = _china_grid(6, 0.004)
    as_drawn = network_from_lines(layer, connectivity="crossings")  # topology as drawn
    assert (as_drawn.n_nodes, as_drawn.n_edges, as_drawn.n_components) == (46, 70, 1)
    assert _report(as_drawn)["ends_on_interior"] == 21
    conv = network_from_lines(layer, coord_system=system, connectivity="crossings",
                              crs=as_drawn.crs)
    assert (conv.n_nodes, conv.n_edges, conv.n_components) == (46, 70, 1)
    assert _report(conv)["ends_on_interior"] == 21
    # the datum shift itself stretches lengths by well under 1%
    assert conv.edge_length_m.sum() == pytest.approx(as_drawn.edge_length_m.sum(), rel=0.01)
    assert network_from_lines(layer, coord_system=system, crs=as_drawn.crs).n_nodes == 46
    # without making junction points vertices first, the shift bends them apart
    import geosvc.network._readers as readers

    monkeypatch.setattr(readers, "_lonlat_junctions_as_vertices", lambda g, lv, t: g)
    broken = network_from_lines(layer, coord_system=system, connectivity="crossings",
                                crs=as_drawn.crs)
    assert _report(broken)["ends_on_interior"] < 21


def test_components_largest_and_min_nodes(two_component_lines):
    net = network_from_lines(two_component_lines)
    assert net.n_components == 2
    # a 15 x 15 grid (225 nodes) with a 2-node island 3 km away
    lines = gpd.GeoDataFrame(geometry=list(_split_grid(15).geometry)
                             + [shapely.LineString([(0, 3000), (200, 3000)])], crs=UTM)
    small = network_from_lines(lines, min_component_nodes=3)
    rep = small.graph_attrs["components_report"]
    assert small.n_components == 1 and small.n_edges == 2 * 15 * 14
    assert rep["components_dropped"] == 1 and rep["nodes_dropped"] == 2
    assert rep["edges_dropped"] == 1
    assert rep["length_dropped_km"] == pytest.approx(0.2)
    largest = keep_components(net, components="largest")
    assert largest.n_edges == 1 and largest.edge_length_m[0] == pytest.approx(300.0)
    # a network smaller than the threshold is small, not fragmented: kept whole; so is a
    # component with at least 1% of the largest one's nodes
    assert keep_components(net, min_component_nodes=20).n_components == 2
    nine = gpd.GeoDataFrame(geometry=list(_split_grid(3).geometry)
                            + [shapely.LineString([(0, 3000), (200, 3000)])], crs=UTM)
    assert network_from_lines(nine, min_component_nodes=3).n_components == 2
    with pytest.raises(ConfigError, match="min_component_nodes"):
        keep_components(net, min_component_nodes=0)
    with pytest.raises(ConfigError, match="components = 'biggest'"):
        keep_components(net, components="biggest")


def test_network_summary_block():
    net = network_from_lines(grid_lines(3))
    block = network_summary(net)
    json.dumps(block)  # JSON-ready
    assert block["connectivity"] == "crossings" and block["requested"] == "auto"
    assert block["nodes"] == 9 and block["edges"] == 12 and block["components"] == 1
    assert block["components_filter"]["components_dropped"] == 0


def test_cli_connectivity_option_lands_in_the_summary(tmp_path):
    import subprocess
    import sys

    from geosvc.datasets import generate_district

    d = generate_district(seed=5, scale=0.3)
    roads, hh, fac = tmp_path / "roads.gpkg", tmp_path / "hh.gpkg", tmp_path / "fac.gpkg"
    d.roads.to_file(roads)
    d.buildings.to_file(hh)
    d.facilities.to_file(fac)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "geosvc.cli", "coverage", "--roads", str(roads), "--households",
         str(hh), "--facilities", str(fac), "--out", str(out), "--connectivity", "endpoints",
         "--min-component-nodes", "3"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "warning: roads.gpkg:" in proc.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    block = summary["network"]
    assert block["connectivity"] == "endpoints" and block["requested"] == "endpoints"
    assert block["components_filter"]["min_component_nodes"] == 3
    assert any(w["code"] == "dangling_ends" for w in summary["warnings"])
