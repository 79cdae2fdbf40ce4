"""Warnings are data: collected per run, printed as ``warning:`` lines, strict mode exits 2."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import shapely

from geosvc import diagnostics


def test_collect_gathers_and_deduplicates(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="geosvc"), diagnostics.collect() as diag:
        diagnostics.warn("a", "first thing", n=1)
        diagnostics.warn("a", "first thing", n=1)
        with diagnostics.collect() as inner:  # nested: same collector
            diagnostics.warn("b", "second thing")
    assert inner is diag
    assert [w["code"] for w in diag.to_list()] == ["a", "b"]
    assert diag.to_list()[0] == {"code": "a", "message": "first thing", "n": 1}
    assert "first thing" in caplog.text
    assert diagnostics.active() is None
    diagnostics.warn("c", "outside any run")  # logged, collected nowhere, no error


def _two_component_roads(tmp_path: Path) -> tuple[Path, Path, Path]:
    crs = "EPSG:32650"
    roads = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (200, 0)]),
                                       shapely.LineString([(5000, 0), (5200, 0)])], crs=crs)
    hh = gpd.GeoDataFrame({"households": [3, 4]},
                          geometry=[shapely.Point(50, 5), shapely.Point(5050, 5)], crs=crs)
    fac = gpd.GeoDataFrame({"facility_id": ["F1"], "category": ["elderly_care"],
                            "subtype": ["community_station"], "floor_area_m2": [300.0]},
                           geometry=[shapely.Point(100, 0)], crs=crs)
    paths = (tmp_path / "roads.gpkg", tmp_path / "hh.gpkg", tmp_path / "fac.gpkg")
    for frame, path in zip((roads, hh, fac), paths, strict=True):
        frame.to_file(path)
    return paths


def _coverage(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    roads, hh, fac = _two_component_roads(tmp_path)
    return subprocess.run(
        [sys.executable, "-m", "geosvc.cli", *extra, "coverage", "--roads", str(roads),
         "--households", str(hh), "--facilities", str(fac), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600, check=False)


def test_cli_prints_warning_lines_and_summary_lists_them(tmp_path: Path) -> None:
    res = _coverage(tmp_path)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert any("disconnected network components" in ln for ln in lines), res.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    codes = [w["code"] for w in summary["warnings"]]
    assert "network_components" in codes


def test_strict_turns_warnings_into_exit_2(tmp_path: Path) -> None:
    res = _coverage(tmp_path, "--strict")
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("geosvc: error: --strict") and "network_components" in last
    assert (tmp_path / "out" / "summary.json").exists()  # outputs are still written


def test_suppressed_codes_are_neither_logged_nor_collected(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="geosvc"), diagnostics.collect() as diag:
        with diagnostics.suppressed("network_components"):
            diagnostics.warn("network_components", "raw graph: 62 components")
            diagnostics.warn("other", "still reported")
        diagnostics.warn("network_components", "after the filter: 2 components")
    assert [w["message"] for w in diag.to_list()] == ["still reported",
                                                      "after the filter: 2 components"]
    assert "62 components" not in caplog.text


def test_pbf_network_reports_components_once(caplog) -> None:
    from geosvc.datasets import get_path
    from geosvc.network import read_network

    with caplog.at_level(logging.WARNING, logger="geosvc"), diagnostics.collect() as diag:
        net = read_network(get_path("helsinki"), min_component_nodes=20)
    comp = [w for w in diag.to_list() if w["code"] == "network_components"]
    assert len(comp) == 1 and comp[0]["components"] == net.n_components
