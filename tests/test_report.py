"""The planners' Excel workbook and Markdown report agree with summary.json and areas.gpkg."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geosvc.network import compile_network, graph_from_lines
from geosvc.pipeline import Inputs, RunOptions, SitingOptions, run_all
from geosvc.standards import load_profile
from tests.conftest import UTM, grid_lines

openpyxl = pytest.importorskip("openpyxl")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    prof = load_profile()
    G = graph_from_lines(grid_lines(7, 150.0))
    net = compile_network(G)
    rng = np.random.default_rng(7)
    n = 300
    xy = rng.uniform(0, 900, size=(n, 2))
    hh = gpd.GeoDataFrame({"bid": np.arange(n), "households": rng.integers(1, 30, n).astype(float),
                           "elderly": rng.integers(0, 10, n).astype(float)},
                          geometry=shapely.points(xy), crs=UTM)
    subtypes = list(prof.category("convenience").required_subtypes)
    fac = gpd.GeoDataFrame(
        {"facility_id": [f"F{i}" for i in range(1 + len(subtypes))],
         "category": ["elderly_care"] + ["convenience"] * len(subtypes),
         "subtype": ["community_station", *subtypes],
         "floor_area_m2": [150.0] * (1 + len(subtypes))},
        geometry=shapely.points([(150.0, 150.0)] * (1 + len(subtypes))), crs=UTM)
    west, east = shapely.box(-10, -10, 450, 910), shapely.box(450, -10, 910, 910)
    community = gpd.GeoDataFrame({"area_id": ["C1", "C2"], "name": ["西社区", "东社区"],
                                  "street_id": ["S1", "S1"]}, geometry=[west, east], crs=UTM)
    street = gpd.GeoDataFrame({"area_id": ["S1"], "name": ["一街道"]},
                              geometry=[shapely.box(-10, -10, 910, 910)], crs=UTM)
    inputs = Inputs("report test grid", G, net, hh, fac,
                    {"community": community, "street": street}, None, [],
                    {"id_col": "bid"})
    out = tmp_path_factory.mktemp("report")
    run_all(inputs, RunOptions(out_dir=out, profile=prof, thresholds_min=(15.0,),
                               siting=SitingOptions(k=3)))
    return out


def _sheet_frame(ws, header_row: int = 1) -> pd.DataFrame:
    rows = list(ws.iter_rows(min_row=header_row, values_only=True))
    head = rows[0]
    body = [r for r in rows[1:] if any(v is not None for v in r)]
    return pd.DataFrame(body, columns=head)


def test_workbook_tables_match_summary_and_areas(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert {"report.xlsx", "report.md"} <= set(summary["outputs"])
    wb = openpyxl.load_workbook(run_dir / "report.xlsx")
    assert wb.sheetnames[:3] == ["概要", "街道", "社区"]
    assert "建议站点" in wb.sheetnames
    # summary sheet: one row per category, straight from summary.json
    ws = wb["概要"]
    head = [c.value for c in ws[4]]
    rates = {}
    for r in ws.iter_rows(min_row=5, max_row=4 + len(summary["categories"]), values_only=True):
        rates[r[0]] = dict(zip(head, r, strict=True))
    for c in summary["categories"].values():
        row = rates[c["label_zh"]]
        assert row["覆盖率"] == pytest.approx(c["coverage_rate"])
        assert row["未覆盖户数"] == pytest.approx(c["households_uncovered"])
        assert row["总户数"] == pytest.approx(c["households_total"])
        # statuses add up to the total in the sheet, as in the summary
        parts = ["覆盖户数", "未覆盖户数", "不可达户数", "离路网户数", "无效户数"]
        assert sum(row[p] for p in parts) == pytest.approx(row["总户数"])
    # community sheet equals areas.gpkg
    areas = gpd.read_file(run_dir / "areas.gpkg", layer="community")
    table = _sheet_frame(wb["社区"])
    assert list(table["编号"]) == list(areas["area_id"])
    assert list(table["名称"]) == ["西社区", "东社区"]
    label = summary["categories"]["elderly_care"]["label_zh"]
    assert np.allclose(table[f"{label} 覆盖率"], areas["elderly_care_coverage_rate"])
    assert np.allclose(table[f"{label} 缺口(平方米)"], areas["elderly_care_shortfall_m2"])
    assert table["户数"].sum() == pytest.approx(summary["households_total"])
    # plan sheet: the stations of siting.csv in rank order
    plan = _sheet_frame(wb["建议站点"])
    siting = pd.read_csv(run_dir / "siting.csv")
    assert list(plan["候选点编号"]) == list(siting["candidate_id"])
    assert np.allclose(plan["新增覆盖户数"], siting["households_new"])


def test_markdown_report_names_the_worst_community(run_dir: Path) -> None:
    text = (run_dir / "report.md").read_text(encoding="utf-8")
    areas = gpd.read_file(run_dir / "areas.gpkg", layer="community")
    worst = areas.sort_values("elderly_care_coverage_rate").iloc[0]
    assert worst["name"] in text
    assert "| 服务圈 |" in text


def test_english_headers(run_dir: Path, tmp_path: Path) -> None:
    from geosvc.report import write_excel_report

    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    out = write_excel_report(tmp_path / "r.xlsx", summary, lang="en")
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Summary"]
    assert "coverage rate" in [c.value for c in wb["Summary"][4]]


def test_overrides_and_other_levels_are_named(run_dir: Path, tmp_path: Path) -> None:
    """A run with changed profile values says so in both reports; a grid level gets a Chinese sheet."""
    from geosvc.report import write_excel_report, write_markdown_report

    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["profile_values"]["overrides"] == {}
    areas = {"grid": gpd.read_file(run_dir / "areas.gpkg", layer="community")}
    plain_md = write_markdown_report(tmp_path / "plain.md", summary, areas=areas).read_text("utf-8")
    assert "标准调整" not in plain_md and "标准: cn-community-2023" in plain_md
    summary["profile_values"]["overrides"] = {
        "categories.convenience.required_subtypes": ["supermarket", "breakfast"]}
    want = "categories.convenience.required_subtypes = ['supermarket', 'breakfast']"
    wb = openpyxl.load_workbook(write_excel_report(tmp_path / "r.xlsx", summary, areas=areas))
    ws = wb["概要"]
    assert (ws.cell(row=3, column=1).value, ws.cell(row=3, column=2).value) == ("标准调整", want)
    assert "网格" in wb.sheetnames and "grid" not in wb.sheetnames
    md = write_markdown_report(tmp_path / "r.md", summary, areas=areas).read_text("utf-8")
    assert f"标准调整: {want}" in md
    wb_en = openpyxl.load_workbook(write_excel_report(tmp_path / "en.xlsx", summary, areas=areas,
                                                      lang="en"))
    assert wb_en["Summary"].cell(row=3, column=1).value == "profile overrides"
    assert "grid" in wb_en.sheetnames


def test_every_run_geopackage_opens_on_its_data_layer(run_dir: Path) -> None:
    """A plain ``gpd.read_file`` of each GeoPackage a run writes returns its main data layer.

    GDAL lists QGIS's ``layer_styles`` table as a layer (QGIS finds it only that way, by
    ``GDALDatasetGetLayerByName``), after the data layers; pyogrio reads the first layer and warns
    whenever a file lists more than one.  Reads that name the layer are silent.
    """
    import pyogrio

    main = {"households.gpkg": "households", "areas.gpkg": "community",
            "service_circles.gpkg": "facility_circles", "siting.gpkg": "stations_elderly_care"}
    found = sorted(p.name for p in run_dir.glob("*.gpkg"))
    assert found == sorted(main)
    for name, first in main.items():
        path = run_dir / name
        layers = [str(n) for n, _ in pyogrio.list_layers(path)]
        assert layers[0] == first and layers[-1] == "layer_styles", (name, layers)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # named reads: no warning at all
            named = {layer: gpd.read_file(path, layer=layer) for layer in layers[:-1]}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plain = gpd.read_file(path)
        # the only warning names the data layer as the default, never the style table
        assert [str(w.message).split(". ")[0] for w in caught] == [
            f"More than one layer found in '{name}': " + ", ".join(
                [f"'{first}' (default)"] + [f"'{n}'" for n in layers[1:]])], name
        assert plain.geometry.name == named[first].geometry.name and plain.crs == named[first].crs
        pd.testing.assert_frame_equal(pd.DataFrame(plain.drop(columns="geometry")),
                                      pd.DataFrame(named[first].drop(columns="geometry")))
        assert plain.geometry.geom_equals(named[first].geometry).all()
