"""QGIS styles stored in the GeoPackages: the table QGIS reads, QML that names real columns."""

from __future__ import annotations

import re
import sqlite3
import warnings
import xml.etree.ElementTree as ET

import geopandas as gpd
import pyogrio
import pytest
import shapely

from geosvc.qgis import read_layer_styles, style_outputs
from tests.test_viz import UTM, make_areas, make_households, make_stations

CATS = ["elderly_care", "convenience"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    make_households().to_file(out / "households.gpkg", layer="households")
    for level, frame in make_areas().items():
        frame.to_file(out / "areas.gpkg", layer=level)
    polys = [shapely.Point(430300, 3808300).buffer(50.0 * t) for t in (5, 10, 15)]
    circ = gpd.GeoDataFrame({"category": ["elderly_care"] * 3 + ["convenience"],
                             "threshold_min": [5.0, 10.0, 15.0, 15.0]},
                            geometry=[*polys, polys[0]], crs=UTM)
    circ.to_file(out / "service_circles.gpkg", layer="category_circles")
    circ.assign(facility_id="E1").to_file(out / "service_circles.gpkg", layer="facility_circles")
    make_stations()["elderly_care"].to_file(out / "siting.gpkg", layer="stations_elderly_care")
    n = style_outputs(out, CATS, lang="zh")
    # households x2, communities x2 (streets carry no rates here), 2 circle layers, 1 station
    assert n == 2 + 2 + 2 + 1
    return out


def _columns(path, layer) -> set[str]:
    con = sqlite3.connect(str(path))
    try:
        return {r[1] for r in con.execute(f'PRAGMA table_info("{layer}")')}
    finally:
        con.close()


def _styles(path) -> list[dict]:
    """The layer_styles rows read with plain sqlite3 (as QGIS does), QML parsed."""
    con = sqlite3.connect(str(path))
    try:
        cols = {r[1] for r in con.execute("PRAGMA table_info(layer_styles)")}
        # the columns QGIS reads and writes
        assert {"f_table_name", "f_geometry_column", "styleName", "styleQML", "useAsDefault",
                "update_time"} <= cols
        rows = con.execute("SELECT f_table_name, f_geometry_column, styleName, styleQML, "
                           "useAsDefault FROM layer_styles").fetchall()
    finally:
        con.close()
    out = []
    for layer, geom, name, qml, default in rows:
        assert qml.startswith("<!DOCTYPE qgis")
        out.append({"layer": layer, "geom": geom, "name": name, "default": default,
                    "root": ET.fromstring(qml)})
    return out


def test_household_styles_categorise_the_status_column(run_dir) -> None:
    path = run_dir / "households.gpkg"
    styles = _styles(path)
    cols = _columns(path, "households")
    assert [s["default"] for s in styles] == [1, 0]  # one default style
    for s, cat in zip(styles, CATS, strict=True):
        assert s["layer"] == "households" and s["geom"] in cols
        rend = s["root"].find("renderer-v2")
        assert rend.get("type") == "categorizedSymbol"
        assert rend.get("attr") == f"status_{cat}" and rend.get("attr") in cols
        values = [c.get("value") for c in rend.iter("category")]
        assert set(values) >= set(make_households()[f"status_{cat}"].unique())
        labels = {c.get("value"): c.get("label") for c in rend.iter("category")}
        assert labels["uncovered"] == "超出服务圈" and labels["unreachable"] == "路网不可达"
        # every category points at a symbol that exists
        names = {sym.get("name") for sym in rend.iter("symbol")}
        assert {c.get("symbol") for c in rend.iter("category")} <= names


def test_area_circle_and_station_styles_name_real_columns(run_dir) -> None:
    for file, kind in (("areas.gpkg", "graduatedSymbol"),
                       ("service_circles.gpkg", "RuleRenderer"),
                       ("siting.gpkg", "singleSymbol")):
        path = run_dir / file
        for s in _styles(path):
            cols = _columns(path, s["layer"])
            rend = s["root"].find("renderer-v2")
            assert rend.get("type") == kind
            if kind == "graduatedSymbol":
                assert rend.get("attr") in cols
                bounds = [(float(r.get("lower")), float(r.get("upper")))
                          for r in rend.iter("range")]
                assert bounds[0][0] == 0.0 and bounds[-1][1] == 1.0
            for rule in rend.iter("rule"):
                named = set(re.findall(r'"([^"]+)"', rule.get("filter")))
                assert named and named <= cols, (named, cols)
            for ts in s["root"].iter("text-style"):
                assert ts.get("fieldName") in cols
    circles = [s for s in _styles(run_dir / "service_circles.gpkg")
               if s["layer"] == "category_circles"][0]
    rules = list(circles["root"].iter("rule"))
    labels = [r.get("label") for r in rules]
    assert labels == ["15分钟服务圈 · 一刻钟便民生活圈", "5分钟服务圈 · 一刻钟居家养老服务圈",
                      "10分钟服务圈 · 一刻钟居家养老服务圈", "15分钟服务圈 · 一刻钟居家养老服务圈"]
    # the thresholds of one category look different (as on the map)
    ec = [r.get("symbol") for r in rules[1:]]
    looks = {s.get("name"): ET.tostring(s) for s in circles["root"].iter("symbol")}
    assert len({looks[k] for k in ec}) == 3
    station = _styles(run_dir / "siting.gpkg")[0]
    assert station["layer"] == "stations_elderly_care"
    assert station["root"].find("labeling/settings/text-style").get("fieldName") == "rank"


def test_files_read_as_before_and_restyling_replaces(run_dir) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layers = [name for name, _ in pyogrio.list_layers(run_dir / "households.gpkg")]
        hh = gpd.read_file(run_dir / "households.gpkg", layer="households")
    assert layers == ["households", "layer_styles"]  # GDAL lists QGIS's style table ...
    assert len(hh) == len(make_households())
    # ... and geosvc's readers skip it: a one-layer file saved with a style (as QGIS does)
    # is still a one-layer input, whatever the layer's name
    from geosvc.demand import read_households
    from geosvc.qgis import household_style, write_layer_styles

    own = run_dir / "own.gpkg"
    hh.to_file(own, layer="my_points")
    style = household_style("elderly_care")
    assert write_layer_styles(own, [type(style)("my_points", "s", style.qml)]) == 1
    assert len(read_households(own)) == len(hh)
    before = len(read_layer_styles(run_dir / "siting.gpkg"))
    style_outputs(run_dir, CATS)
    assert len(read_layer_styles(run_dir / "siting.gpkg")) == before  # replaced, not added
