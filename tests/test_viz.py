"""Maps and figures: escaping, layers, offline page, GCJ-02 shift, aggregation, PNGs."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from jinja2.utils import htmlsafe_json_dumps

from geosvc._errors import CRSError, InputError
from geosvc.crs import wgs84_to_gcj02
from geosvc.standards import load_profile
from geosvc.viz import (
    coverage_map,
    figure_coverage_curve,
    figure_coverage_map,
    figure_time_distribution,
    write_figures,
    write_map,
)

UTM = "EPSG:32650"
SCRIPT_NAME = "<script>alert(1)</script>"
QUOTES_NAME = '"quotes" & ampersand'
GEOD = pyproj.Geod(ellps="WGS84")


def make_households() -> gpd.GeoDataFrame:
    """11 buildings; 5 not covered for elderly care, 4 for convenience, one invalid."""
    xy = [(430100, 3808100), (430150, 3808120), (430180, 3808200),  # one 250 m cell
          (430600, 3808600), (430620, 3808640),                      # another cell
          (431500, 3809500), (431700, 3809600), (431900, 3809900),
          (431200, 3809800), (430900, 3809950), (431000, 3809000)]
    ec = ["covered"] * 5 + ["uncovered", "uncovered", "uncovered", "unreachable",
                            "off_network", "invalid"]
    cv = ["covered", "covered", "covered", "covered", "uncovered", "covered", "covered",
          "uncovered", "uncovered", "uncovered", "invalid"]
    t_ec = [3.0, 4.5, 6.0, 9.0, 14.9, 16.2, 18.0, 25.5, np.inf, np.nan, np.nan]
    t_cv = [5.0, 5.5, 6.0, 8.0, 15.5, 9.0, 10.0, 21.0, 22.0, 30.0, np.nan]
    n = len(xy)
    return gpd.GeoDataFrame({
        "hh_id": [f"B{i:03d}" for i in range(n - 1)] + ["H<1>"],
        "households": [40, 60, 80, 30, 50, 120, 20, 70, 10, 25, np.nan],
        "persons": [100] * n, "elderly": [12] * n,
        "invalid_reason": [""] * (n - 1) + ["households missing"],
        "time_elderly_care_min": t_ec, "nearest_elderly_care_id": ["E1"] * n,
        "status_elderly_care": ec,
        "time_convenience_min": t_cv, "nearest_convenience_id": ["C1"] * n,
        "status_convenience": cv,
        "access_m": [5.0] * n,
    }, geometry=[shapely.Point(p) for p in xy], crs=UTM)


def make_areas() -> dict[str, gpd.GeoDataFrame]:
    com = gpd.GeoDataFrame({
        "area_id": ["C1", "C2"], "name": ["幸福社区", "<img src=x onerror=alert(2)>"],
        "households": [260.0, 245.0],
        "elderly_care_coverage_rate": [1.0, 0.2], "convenience_coverage_rate": [0.8, 0.55],
        "elderly_care_households_uncovered": [0.0, 190.0],
        "elderly_care_elderly_uncovered": [0.0, 36.0],
        "elderly_care_shortfall_m2": [0.0, 120.5],
        "convenience_households_uncovered": [50.0, 105.0],
    }, geometry=[shapely.box(430000, 3808000, 431000, 3809000),
                 shapely.box(431000, 3809000, 432000, 3810000)], crs=UTM)
    street = gpd.GeoDataFrame({"area_id": ["S1"], "name": ["A&B 街道"], "households": [505.0]},
                              geometry=[shapely.box(430000, 3808000, 432000, 3810000)], crs=UTM)
    return {"community": com, "street": street}


def make_facilities() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "facility_id": ["E1", "C1", "C2"], "category": ["elderly_care", "convenience",
                                                        "convenience"],
        "subtype": ["day_care_center", "convenience_store", "${x}`\\u"],
        "name": [SCRIPT_NAME, QUOTES_NAME, "普通商店"],
        "floor_area_m2": [350.0, 80.0, np.nan], "snap_status": ["ok", "ok", "off_network"],
    }, geometry=[shapely.Point(430300, 3808300), shapely.Point(431400, 3809400),
                 shapely.Point(431800, 3809800)], crs=UTM)


def make_circles() -> dict[str, gpd.GeoDataFrame | None]:
    poly = shapely.Point(430300, 3808300).buffer(700.0)
    return {"elderly_care": gpd.GeoDataFrame({"category": ["elderly_care"],
                                              "threshold_min": [15.0],
                                              "area_m2": [poly.area]}, geometry=[poly],
                                             crs=UTM),
            "convenience": None}


def make_stations() -> dict[str, gpd.GeoDataFrame]:
    return {"elderly_care": gpd.GeoDataFrame({
        "rank": [1, 2], "candidate_id": ["C0001", "<b>C2</b>"], "households_new": [190.0, 35.0],
        "elderly_new": [45.0, 12.0], "coverage_rate_cumulative": [0.82, 0.9],
    }, geometry=[shapely.Point(431600, 3809550), shapely.Point(431050, 3809900)], crs=UTM)}


@pytest.fixture(scope="module")
def inputs() -> dict:
    return {"households": make_households(), "areas": make_areas(),
            "facilities": make_facilities(), "circles": make_circles(),
            "stations": make_stations(), "profile": load_profile()}


def render(inputs: dict, **kw) -> str:
    m = coverage_map(inputs["households"], areas=inputs["areas"],
                     facilities=inputs["facilities"], circles=inputs["circles"],
                     stations=inputs["stations"], profile=inputs["profile"], **kw)
    return m.get_root().render()


def point_layers(html: str) -> list[list[list]]:
    """The row arrays of every compact point layer, in page order."""
    return [json.loads(s) for s in re.findall(r"var rows = (\[.*?\]);\n", html)]


def geojson_layers(html: str) -> list[dict]:
    return [json.loads(s) for s in re.findall(r"_add\((\{\"features\".*?\})\);\n", html)]


@pytest.fixture(scope="module")
def html_zh(inputs: dict) -> str:
    return render(inputs, lang="zh")


def test_user_strings_are_escaped(html_zh: str) -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_zh
    assert SCRIPT_NAME not in html_zh
    assert "&quot;quotes&quot; &amp; ampersand" in html_zh
    assert QUOTES_NAME not in html_zh
    assert "<img src=x" not in html_zh and "<b>C2</b>" not in html_zh
    assert "&lt;b&gt;C2&lt;/b&gt;" in html_zh  # station candidate id
    assert "H&lt;1&gt;" not in html_zh  # the invalid row is not drawn at all
    # $, ` and \ of a sub-type become entities, inert in JS template literals
    assert "&#36;{x}&#96;&#92;u" in html_zh
    # names in the area tooltips travel as JSON of the already escaped text
    tips = [f["properties"]["t"] for g in geojson_layers(html_zh) for f in g["features"]
            if "t" in f["properties"]]
    assert any("&lt;img src=x onerror=alert(2)&gt;" in t for t in tips)
    assert any("A&amp;B 街道" in t for t in tips)


def test_layer_names_and_legend(inputs: dict, html_zh: str) -> None:
    for name in ("未覆盖住户 · 一刻钟居家养老服务圈", "未覆盖住户 · 一刻钟便民生活圈",
                 "已覆盖住户（250米网格）· 一刻钟居家养老服务圈",
                 "15分钟服务圈 · 一刻钟居家养老服务圈", "现有设施 · 一刻钟居家养老服务圈",
                 "现有设施 · 一刻钟便民生活圈", "建议新站点 · 一刻钟居家养老服务圈",
                 "社区覆盖率 · 一刻钟居家养老服务圈", "街道边界"):
        assert htmlsafe_json_dumps(name) in html_zh, name
    assert "L.control.layers" in html_zh
    assert "gs-legend" in html_zh and "gs-title" in html_zh
    assert "15分钟生活圈" in html_zh  # title, as JSON text with < escaped
    # no circle layer for a category whose circles are None
    assert htmlsafe_json_dumps("15分钟服务圈 · 一刻钟便民生活圈") not in html_zh
    en = render(inputs, lang="en", title="Demo <district>")
    for name in ("Uncovered households · 15-minute home elderly-care circle",
                 "Proposed stations · 15-minute home elderly-care circle",
                 "Community coverage · 15-minute convenience circle"):
        assert htmlsafe_json_dumps(name) in en, name
    assert "Demo &lt;district&gt;" in en and "Demo <district>" not in en


def test_offline_page_without_tiles(inputs: dict, html_zh: str) -> None:
    assert "L.tileLayer" not in html_zh
    assert "openstreetmap" not in html_zh.lower() and "autonavi" not in html_zh
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"?https?:", html_zh)
    assert "Leaflet 1.9.4" in html_zh  # inlined
    osm = render(inputs, basemap="osm")
    assert "L.tileLayer" in osm and "tile.openstreetmap.org" in osm
    own = render(inputs, basemap="https://tiles.example.org/{z}/{x}/{y}.png")
    assert "tiles.example.org/{z}/{x}/{y}.png" in own and "L.tileLayer" in own
    cdn = coverage_map(inputs["households"], inline_assets=False).get_root().render()
    assert "leaflet.js" in cdn and "jquery" not in cdn


def test_uncovered_points_and_covered_grid(inputs: dict, html_zh: str) -> None:
    hh = inputs["households"]
    layers = point_layers(html_zh)
    households_layers = [rows for rows in layers if rows and isinstance(rows[0][2], int)]
    # elderly care: 3 outside the circle, 2 unreachable/off-network; convenience: 4 outside
    assert [len(r) for r in households_layers] == [3, 2, 4]
    assert {r[5] for r in households_layers[1]} == {"B008", "B009"}
    assert all(r[2] == 0 for r in households_layers[0] + households_layers[2])  # uncovered
    n_uncovered = sum(int(hh[f"status_{c}"].isin(["uncovered", "unreachable",
                                                   "off_network"]).sum())
                      for c in ("elderly_care", "convenience"))
    assert sum(len(r) for r in households_layers) == n_uncovered
    ec = {r[5]: r for r in households_layers[0] + households_layers[1]}
    assert set(ec) == {"B005", "B006", "B007", "B008", "B009"}
    assert ec["B005"][3:5] == [120, 16.2]
    assert ec["B008"][4] == -1 and ec["B009"][4] is None  # inf -> unreachable, NaN -> none
    grids = [g for g in geojson_layers(html_zh)
             if g["features"] and "已覆盖" in g["features"][0]["properties"].get("t", "")]
    assert len(grids) == 2
    # elderly care: 5 covered buildings in 2 cells (180 and 80 households)
    assert len(grids[0]["features"]) == 2
    counts = sorted(int(f["properties"]["t"].split(" ")[1]) for f in grids[0]["features"])
    assert counts == [80, 180]
    poly = shapely.geometry.shape(grids[0]["features"][0]["geometry"])
    assert poly.geom_type == "Polygon" and shapely.get_num_coordinates(poly) == 5


def _facility_lonlat(html: str, marker: str) -> tuple[float, float]:
    for rows in point_layers(html):
        for r in rows:
            if isinstance(r[2], str) and marker in r[2]:
                return r[1], r[0]
    raise AssertionError(f"no point with {marker!r}")


def test_gaode_basemap_shifts_overlays_to_gcj02(inputs: dict, html_zh: str) -> None:
    gaode = render(inputs, basemap="gaode")
    assert "webrd0{s}.is.autonavi.com" in gaode and "L.tileLayer" in gaode
    marker = "&lt;script&gt;alert(1)&lt;/script&gt;"
    lon0, lat0 = _facility_lonlat(html_zh, marker)
    lon1, lat1 = _facility_lonlat(gaode, marker)
    true = gpd.GeoSeries([shapely.Point(430300, 3808300)], crs=UTM).to_crs(4326).iloc[0]
    _, _, d_wgs = GEOD.inv(true.x, true.y, lon0, lat0)
    assert d_wgs < 0.2  # WGS-84 page: the true position (1e-6 degree rounding)
    _, _, shift = GEOD.inv(lon0, lat0, lon1, lat1)
    assert 300.0 < shift < 700.0
    gx, gy = wgs84_to_gcj02(true.x, true.y)
    assert GEOD.inv(float(gx), float(gy), lon1, lat1)[2] < 0.2
    # households and polygons move by the same offset
    hh0 = [r for r in point_layers(html_zh)[0]]
    hh1 = [r for r in point_layers(gaode)[0]]
    d = GEOD.inv(hh0[0][1], hh0[0][0], hh1[0][1], hh1[0][0])[2]
    assert abs(d - shift) < 30.0
    c0 = geojson_layers(html_zh)[0]["features"][0]["geometry"]["coordinates"][0][0]
    c1 = geojson_layers(gaode)[0]["features"][0]["geometry"]["coordinates"][0][0]
    assert abs(GEOD.inv(c0[0], c0[1], c1[0], c1[1])[2] - shift) < 30.0


def test_coordinates_rounded_and_inputs_unchanged(inputs: dict, html_zh: str) -> None:
    before = inputs["households"].copy()
    render(inputs)
    pd.testing.assert_frame_equal(pd.DataFrame(before), pd.DataFrame(inputs["households"]))
    for rows in point_layers(html_zh):
        for r in rows:
            assert round(r[0], 6) == r[0] and round(r[1], 6) == r[1]
    assert not re.search(r"\d+\.\d{7,}", "".join(re.findall(r"var rows = .*", html_zh)))


def test_bad_arguments(inputs: dict) -> None:
    hh = inputs["households"]
    with pytest.raises(InputError, match="lang"):
        coverage_map(hh, lang="fr")
    with pytest.raises(InputError, match="basemap"):
        coverage_map(hh, basemap="google")
    with pytest.raises(CRSError):
        coverage_map(hh.set_crs(None, allow_override=True))
    with pytest.raises(InputError, match="status"):
        coverage_map(hh.drop(columns=["status_elderly_care", "status_convenience"]))
    with pytest.raises(InputError, match="status"):
        coverage_map(hh, categories=["schools"])


def test_lonlat_input_and_minimal_map(inputs: dict) -> None:
    ll = inputs["households"].to_crs(4326)
    html = coverage_map(ll, lang="en").get_root().render()
    assert [len(r) for r in point_layers(html)] == [3, 2, 4]


def test_write_map_atomic_and_small(tmp_path, inputs: dict) -> None:
    m = coverage_map(inputs["households"], areas=inputs["areas"],
                     facilities=inputs["facilities"], stations=inputs["stations"])
    out = write_map(m, tmp_path / "new" / "map.html")
    assert out == tmp_path / "new" / "map.html" and out.exists()
    assert [p.name for p in out.parent.iterdir()] == ["map.html"]
    assert out.stat().st_size < 400_000  # Leaflet (~160 kB) and the layers
    write_map(m, out)  # replaces cleanly
    assert [p.name for p in out.parent.iterdir()] == ["map.html"]


def test_page_stays_light_for_10k_households(tmp_path) -> None:
    rng = np.random.default_rng(7)
    n = 10_000
    x = rng.uniform(430000, 436000, n)
    y = rng.uniform(3808000, 3814000, n)
    status = rng.choice(["covered", "uncovered", "unreachable"], n, p=[0.6, 0.38, 0.02])
    t = np.where(status == "covered", rng.uniform(1, 15, n), rng.uniform(15, 40, n))
    t[status == "unreachable"] = np.inf
    hh = gpd.GeoDataFrame({
        "hh_id": [f"B{i:05d}" for i in range(n)], "households": rng.integers(10, 150, n),
        "persons": 250, "elderly": 40, "invalid_reason": "",
        "time_elderly_care_min": t, "status_elderly_care": status,
        "time_convenience_min": t[::-1], "status_convenience": status[::-1],
    }, geometry=shapely.points(x, y), crs=UTM)
    out = write_map(coverage_map(hh), tmp_path / "map.html")
    size = out.stat().st_size
    assert size < 3_000_000, size
    rows = point_layers(out.read_text(encoding="utf-8"))
    assert sum(len(r) for r in rows) == int((status != "covered").sum() * 2)


def _random_households(n: int, seed: int, p_covered: float = 0.3) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    status = rng.choice(["covered", "uncovered", "unreachable", "off_network"], n,
                        p=[p_covered, (1 - p_covered) * 0.8, (1 - p_covered) * 0.15,
                           (1 - p_covered) * 0.05])
    return gpd.GeoDataFrame({
        "hh_id": np.arange(n), "households": rng.integers(1, 5, n), "invalid_reason": "",
        "time_elderly_care_min": np.where(status == "covered", 8.0, 30.0),
        "status_elderly_care": pd.Categorical(status),
    }, geometry=shapely.points(rng.uniform(430000, 460000, n),
                               rng.uniform(3808000, 3838000, n)), crs=UTM)


def test_households_above_the_marker_budget_are_summed_in_cells(tmp_path) -> None:
    hh = _random_households(30_000, 5)
    out = write_map(coverage_map(hh, lang="en", max_markers=1_000, max_cells=400),
                    tmp_path / "map.html")
    html = out.read_text(encoding="utf-8")
    assert not [r for r in point_layers(html) if r and isinstance(r[0][2], int)]  # no markers
    gap = [g for g in geojson_layers(html)
           if g["features"] and "not covered" in g["features"][0]["properties"]["t"]]
    assert len(gap) == 2  # outside the circle, and unreachable (no path or off the network)
    # 30 km square, at most ~400 cells -> 1.5 km needed -> 2000 m cells (1-2-5 steps)
    assert "Uncovered households (2000 m grid)" in html
    assert "Unreachable households (2000 m grid)" in html
    assert all(len(g["features"]) <= 16 * 16 for g in gap)
    status = hh["status_elderly_care"]
    for g, statuses in zip(gap, (["uncovered"], ["unreachable", "off_network"]), strict=True):
        total = sum(int(f["properties"]["t"].split(" ")[0].replace(",", ""))
                    for f in g["features"])
        # every household in a cell of its own layer
        assert total == int(hh.loc[status.isin(statuses), "households"].sum())
    poly = shapely.geometry.shape(gap[1]["features"][0]["geometry"])
    assert poly.geom_type == "Polygon"
    tips = " ".join(f["properties"]["t"] for f in gap[1]["features"])
    assert "no network path" in tips and "too far from a street" in tips  # breakdown
    assert "outside the circle" not in tips
    assert out.stat().st_size < 1_000_000


def test_map_size_stays_bounded_for_a_city(tmp_path) -> None:
    hh = _random_households(300_000, 6, p_covered=0.5)
    size = write_map(coverage_map(hh, lang="en"), tmp_path / "map.html").stat().st_size
    # default budget: 20,000 markers, ~4,000 cells per layer; three grid layers here
    # (covered, outside the circle, unreachable), ~1.1 MB each
    assert size < 3_500_000, size


def test_map_figure_draws_cells_above_the_point_budget(tmp_path, monkeypatch) -> None:
    from geosvc.viz import _figures

    hh = _random_households(4_000, 8)
    monkeypatch.setattr(_figures, "SCATTER_MAX_POINTS", 500)
    path = _figures.figure_coverage_map(hh, "elderly_care", lang="en",
                                        path=tmp_path / "cells.png")
    _assert_png(path)


# --- figures -------------------------------------------------------------------------


def _assert_png(path) -> None:
    from matplotlib.image import imread

    assert path.exists() and path.stat().st_size > 10_000
    img = imread(str(path))
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 300
    assert float(img[..., :3].std()) > 0.01
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files


def test_write_figures(tmp_path, inputs: dict) -> None:
    curves = pd.DataFrame({"n_stations": [0, 1, 2, 0, 1], "coverage_rate": [0.5, 0.8, 0.9,
                                                                             0.6, 0.7],
                           "category": ["elderly_care"] * 3 + ["convenience"] * 2})
    paths = write_figures(inputs["households"], categories=None, areas=inputs["areas"],
                          circles=inputs["circles"], stations=inputs["stations"],
                          curves=curves, facilities=inputs["facilities"],
                          profile=inputs["profile"], lang="zh", out_dir=tmp_path / "fig")
    assert [p.name for p in paths] == ["coverage_elderly_care.png", "coverage_convenience.png",
                                       "walking_time.png", "coverage_curve.png"]
    for p in paths:
        _assert_png(p)


def test_figures_fall_back_to_english_without_cjk_font(tmp_path, inputs: dict, monkeypatch,
                                                        caplog) -> None:
    import geosvc.viz._figures as figs

    monkeypatch.setattr(figs, "cjk_font", lambda: None)
    with caplog.at_level(logging.INFO, logger="geosvc.viz._figures"):
        p = figure_time_distribution(inputs["households"], ["elderly_care", "convenience"],
                                     profile=inputs["profile"], lang="zh",
                                     path=tmp_path / "t.png")
    assert any("English" in r.getMessage() for r in caplog.records)
    _assert_png(p)
    p = figure_coverage_map(inputs["households"], "convenience", lang="en",
                            path=tmp_path / "m.png")
    _assert_png(p)
    p = figure_coverage_curve({"elderly_care": pd.DataFrame({"n_stations": [0, 1, 2],
                                                             "coverage_rate": [0.2, 0.5, 0.6]})},
                              lang="en", path=tmp_path / "c.png")
    _assert_png(p)
    with pytest.raises(InputError, match="n_stations"):
        figure_coverage_curve(pd.DataFrame({"x": [1]}), path=tmp_path / "bad.png")


def test_import_has_no_side_effects(tmp_path) -> None:
    code = (
        "import sys, geosvc.viz\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'\n"
        "from tests.test_viz import make_households\n"
        "from geosvc.viz import figure_time_distribution\n"
        f"figure_time_distribution(make_households(), path={str(tmp_path / 'x.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(__file__).parents[1]))
    assert res.returncode == 0, res.stderr


def _rings(thresholds=(5.0, 10.0, 15.0)) -> gpd.GeoDataFrame:
    """Per-category circles of ``service_circles``: one polygon per threshold."""
    polys = [shapely.Point(430300, 3808300).buffer(50.0 * t) for t in thresholds]
    return gpd.GeoDataFrame({"category": "elderly_care", "threshold_min": list(thresholds),
                             "area_m2": [p.area for p in polys]}, geometry=polys, crs=UTM)


def test_one_circle_layer_per_threshold_with_its_own_style(inputs: dict) -> None:
    html = coverage_map(inputs["households"], circles=_rings(), lang="zh",
                        profile=inputs["profile"]).get_root().render()
    for minutes in (5, 10, 15):
        assert htmlsafe_json_dumps(f"{minutes}分钟服务圈 · 一刻钟居家养老服务圈") in html
    rings = [g for g in geojson_layers(html)
             if len(g["features"]) == 1 and g["features"][0]["geometry"]["type"] == "Polygon"
             and not g["features"][0]["properties"]]
    assert len(rings) == 3  # not one layer of three stacked polygons
    # drawn largest first (the 5-minute ring on top); each layer holds its own polygon
    areas = [shapely.geometry.shape(g["features"][0]["geometry"]).area for g in rings]
    assert areas[0] > areas[1] > areas[2]
    styles = re.findall(r'"dashArray": ("[0-9 ]+"|null), "fillColor": "#8e24aa", '
                        r'"fillOpacity": ([0-9.]+)', html)
    assert len(set(styles)) == 3, styles  # three distinct styles
    # the legend names each threshold
    for minutes in (5, 10, 15):
        assert f"服务圈 ({minutes} 分钟)" in html


def test_streets_drawn_light_and_within_budget(inputs: dict) -> None:
    rng = np.random.default_rng(1)
    x0 = rng.uniform(430000, 432000, 400)
    y0 = rng.uniform(3808000, 3810000, 400)
    # wiggly lines: 50 vertices each, mostly removed by the 5 m simplification
    lines = [shapely.LineString(np.column_stack([x + np.linspace(0, 200, 50),
                                                 y + rng.normal(0, 0.3, 50)]))
             for x, y in zip(x0, y0, strict=True)]
    streets = gpd.GeoDataFrame(geometry=lines, crs=UTM)
    html = coverage_map(inputs["households"], streets=streets, lang="en").get_root().render()
    assert htmlsafe_json_dumps("Streets (simplified)") in html
    layer = [g for g in geojson_layers(html) if g["features"]
             and g["features"][0]["geometry"]["type"] == "MultiLineString"]
    assert len(layer) == 1 and len(layer[0]["features"]) == 1
    n = sum(len(p) for p in layer[0]["features"][0]["geometry"]["coordinates"])
    assert n == 2 * 400  # straight within 5 m: two vertices per street
    small = coverage_map(inputs["households"], streets=streets.to_crs(4326),
                         max_street_vertices=100).get_root().render()
    layer = [g for g in geojson_layers(small) if g["features"]
             and g["features"][0]["geometry"]["type"] == "MultiLineString"]
    assert sum(len(p) for p in layer[0]["features"][0]["geometry"]["coordinates"]) <= 100
    with pytest.raises(InputError, match="streets"):
        coverage_map(inputs["households"], streets=[1, 2])


def test_title_promises_stations_only_when_drawn(inputs: dict, html_zh: str) -> None:
    assert "新站点建议" in html_zh  # stations drawn
    plain = coverage_map(inputs["households"], lang="zh").get_root().render()
    assert "15分钟生活圈：服务覆盖" in plain and "新站点建议" not in plain
    en = coverage_map(inputs["households"], lang="en").get_root().render()
    assert "proposed stations" not in en.lower()
    # key figures separate households outside the circle from unreachable ones
    # (elderly care: 120+20+70 outside, 10+25 unreachable or off the network)
    assert "(210 households outside the circle, 35 unreachable)" in en


def test_map_figure_has_a_legend_entry_for_every_colour(tmp_path, inputs, monkeypatch) -> None:
    from geosvc.viz import _figures

    saved = []
    monkeypatch.setattr(_figures, "_save", lambda fig, path: saved.append(fig) or path)
    streets = gpd.GeoDataFrame(geometry=[shapely.LineString([(430000, 3808000 + 250 * i),
                                                             (432000, 3808000 + 250 * i)])
                                         for i in range(9)], crs=UTM)
    figure_coverage_map(inputs["households"], "elderly_care", areas=inputs["areas"],
                        circles=_rings(), stations=inputs["stations"],
                        facilities=inputs["facilities"], streets=streets, lang="en",
                        path=tmp_path / "f.png")
    ax = saved[0].axes[0]
    legends = [a for a in ax.get_children() if type(a).__name__ == "Legend"]
    labels = [t.get_text() for leg in legends for t in leg.get_texts()]
    for want in ("Street", "Service circle (5 min)", "Service circle (10 min)",
                 "Service circle (15 min)", "Existing facility (1)",
                 "Proposed station (rank)", "< 50%", "≥ 95%"):
        assert want in labels, (want, labels)
    assert any(leg.get_title().get_text() == "Community household coverage"
               for leg in legends)
    # household dots: each status says it counts households, summed from the input rows
    hh = inputs["households"]
    for status, word in (("covered", "covered"), ("uncovered", "outside the circle")):
        n = hh.loc[hh["status_elderly_care"] == status, "households"].sum()
        assert f"{word} ({n:,.0f} households)" in labels, (status, n, labels)
    # the existing facility is drawn where it is (a square at E1)
    offsets = np.concatenate([c.get_offsets() for c in ax.collections
                              if hasattr(c, "get_offsets") and len(c.get_offsets())])
    assert np.isclose(offsets, [430300, 3808300]).all(axis=1).any()
    # streets: one line collection with every street
    lines = [c for c in ax.collections if type(c).__name__ == "LineCollection"]
    assert len(lines) == 1 and len(lines[0].get_segments()) == 9


def test_time_distribution_titles_say_coverage(tmp_path, inputs, monkeypatch) -> None:
    from geosvc.viz import _figures

    saved = []
    monkeypatch.setattr(_figures, "_save", lambda fig, path: saved.append(fig) or path)
    hh = inputs["households"]
    for lang, want in (("en", "(coverage {})"), ("zh", "（覆盖率 {}）")):
        figure_time_distribution(hh, ["elderly_care"], lang=lang, path=tmp_path / "t.png")
        title = saved[-1].axes[0].get_title()
        # covered households over the valid ones, from the input columns
        ok = hh["status_elderly_care"] != "invalid"
        rate = hh.loc[hh["status_elderly_care"] == "covered", "households"].sum() / \
            hh.loc[ok, "households"].sum()
        assert title.endswith(want.format(f"{rate:.1%}")), (title, rate)
