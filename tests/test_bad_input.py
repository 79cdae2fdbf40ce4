"""Bad and awkward input, table-driven: every case ends in a clear exit, never a wrong number.

Each case starts from a small, valid district near Beijing (a 5 x 5 street grid drawn as
lines in EPSG:4326, 12 household points, one facility of every kind), breaks or reshapes
one thing the way a first-time user does, runs the CLI and asserts:

* the exit code (0 usable, 2 bad input; never 1, the internal error);
* the one line that matters (``geosvc: error: ...`` or a ``warning:`` line) names the
  file, row or key and the fix (a regular expression per case);
* for runs that finish: every input row is in ``households.gpkg`` (rows in = rows out)
  and the status counts add up to the rows.

The expected figures come from the case definitions (rows written, counts written), not
from geosvc's intermediate results.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geosvc.cli import main
from geosvc.standards import load_profile

LON0, LAT0 = 116.40, 39.90
M_LAT = 1.0 / 111_320.0
M_LON = 1.0 / (111_320.0 * np.cos(np.radians(LAT0)))
N_HH = 12
PROFILE = load_profile()
pytestmark = pytest.mark.filterwarnings("ignore:Geometry is in a geographic CRS")
CONV = list(PROFILE.category("convenience").subtypes)


def _ll(x_m: float, y_m: float) -> tuple[float, float]:
    return LON0 + x_m * M_LON, LAT0 + y_m * M_LAT


def _roads() -> gpd.GeoDataFrame:
    lines = []
    for i in range(5):
        lines.append(shapely.LineString([_ll(0, i * 100), _ll(400, i * 100)]))
        lines.append(shapely.LineString([_ll(i * 100, 0), _ll(i * 100, 400)]))
    return gpd.GeoDataFrame({"name": [f"s{i}" for i in range(10)]}, geometry=lines,
                            crs="EPSG:4326")


def _households() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(7)
    xy = rng.uniform(20, 380, (N_HH, 2))
    return gpd.GeoDataFrame(
        {"bid": [f"B{i:02d}" for i in range(N_HH)], "households": rng.integers(5, 60, N_HH),
         "persons": 0, "elderly": 0},
        geometry=[shapely.Point(_ll(x, y)) for x, y in xy], crs="EPSG:4326",
    ).assign(persons=lambda d: d["households"] * 3, elderly=lambda d: d["households"] // 2)


def _facilities() -> gpd.GeoDataFrame:
    rows = [("E1", "elderly_care", "nursing_home", 300.0, (110, 90)),
            ("E2", "elderly_care", "day_care_center", 200.0, (290, 310))]
    rows += [(f"C{i}", "convenience", s, 50.0, (100 + 8 * i, 205)) for i, s in enumerate(CONV)]
    return gpd.GeoDataFrame(
        {"facility_id": [r[0] for r in rows], "category": [r[1] for r in rows],
         "subtype": [r[2] for r in rows], "floor_area_m2": [r[3] for r in rows]},
        geometry=[shapely.Point(_ll(*r[4])) for r in rows], crs="EPSG:4326")


@dataclass
class Files:
    """The inputs of one case (written to ``folder``); cases edit them before writing."""

    folder: Path
    roads: gpd.GeoDataFrame = field(default_factory=_roads)
    hh: gpd.GeoDataFrame = field(default_factory=_households)
    fac: gpd.GeoDataFrame = field(default_factory=_facilities)
    hh_path: Path | None = None
    fac_path: Path | None = None
    roads_path: Path | None = None
    rows_in: int | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def out(self) -> Path:
        return self.folder / "out"

    def write(self) -> list[str]:
        """Write what is not written yet; the CLI arguments of a coverage run."""
        if self.roads_path is None:
            self.roads_path = self.folder / "roads.gpkg"
            self.roads.to_file(self.roads_path)
        if self.hh_path is None:
            self.hh_path = self.folder / "hh.gpkg"
            self.hh.to_file(self.hh_path)
            self.rows_in = len(self.hh)
        if self.fac_path is None:
            self.fac_path = self.folder / "fac.gpkg"
            self.fac.to_file(self.fac_path)
        return ["coverage", "--roads", str(self.roads_path), "--households", str(self.hh_path),
                "--facilities", str(self.fac_path), "--out", str(self.out),
                "--households-columns", "id=bid", *self.extra]


def _csv(f: Files, frame: pd.DataFrame, name: str = "hh.csv", **kw: Any) -> Path:
    p = f.folder / name
    frame.to_csv(p, index=False, **kw)
    return p


def _table(f: Files, cols: tuple[str, str] = ("lon", "lat"), swap: bool = False
           ) -> pd.DataFrame:
    xy = shapely.get_coordinates(f.hh.geometry.to_numpy())
    t = pd.DataFrame(f.hh.drop(columns="geometry"))
    t[cols[0]], t[cols[1]] = (xy[:, 1], xy[:, 0]) if swap else (xy[:, 0], xy[:, 1])
    return t


# --- case builders: each edits the inputs (and may add arguments) --------------------------

def c_valid(f: Files) -> None:
    pass


def c_csv_lonlat(f: Files) -> None:
    f.hh_path, f.rows_in = _csv(f, _table(f)), len(f.hh)


def c_csv_lng_lat(f: Files) -> None:
    f.hh_path, f.rows_in = _csv(f, _table(f, ("lng", "lat"))), len(f.hh)


def c_csv_chinese(f: Files) -> None:
    f.hh_path, f.rows_in = _csv(f, _table(f, ("经度", "纬度")), encoding="gb18030"), len(f.hh)


def c_csv_xy_degrees(f: Files) -> None:
    f.hh_path, f.rows_in = _csv(f, _table(f, ("X", "Y"))), len(f.hh)


def c_csv_xy_projected_no_crs(f: Files) -> None:
    t = _table(f, ("x", "y"))
    pts = f.hh.to_crs("EPSG:32650")
    xy = shapely.get_coordinates(pts.geometry.to_numpy())
    t["x"], t["y"] = xy[:, 0], xy[:, 1]
    f.hh_path, f.rows_in = _csv(f, t), len(f.hh)


def c_csv_xy_projected_crs(f: Files) -> None:
    c_csv_xy_projected_no_crs(f)
    f.extra += ["--households-crs", "EPSG:32650"]


def c_csv_named_columns(f: Files) -> None:
    f.hh_path, f.rows_in = _csv(f, _table(f, ("east", "north"))), len(f.hh)
    f.extra += ["--households-xy", "east,north"]


def c_csv_no_coordinates(f: Files) -> None:
    t = _table(f, ("east", "north"))
    f.hh_path, f.rows_in = _csv(f, t), len(f.hh)


def c_csv_wrong_xy_option(f: Files) -> None:
    c_csv_lonlat(f)
    f.extra += ["--households-xy", "lon,latitude"]


def c_csv_empty_coordinate(f: Files) -> None:
    t = _table(f).astype({"lon": object, "lat": object})
    t.loc[3, "lon"] = ""
    t.loc[4, "lat"] = "abc"
    f.hh_path, f.rows_in = _csv(f, t), len(f.hh)


def c_xlsx(f: Files) -> None:
    p = f.folder / "hh.xlsx"
    _table(f, ("经度", "纬度")).to_excel(p, index=False, sheet_name="住户")
    f.hh_path, f.rows_in = p, len(f.hh)


def c_xlsx_wrong_sheet(f: Files) -> None:
    c_xlsx(f)
    f.extra += ["--households-layer", "Sheet9"]


def c_csv_gcj02(f: Files) -> None:
    from geosvc.crs import wgs84_to_gcj02

    t = _table(f)
    lon, lat = wgs84_to_gcj02(t["lon"].to_numpy(), t["lat"].to_numpy())
    t["lon"], t["lat"] = lon, lat
    f.hh_path, f.rows_in = _csv(f, t), len(f.hh)
    f.extra += ["--coord-system", "households=gcj02"]


def c_csv_swapped(f: Files) -> None:
    f.hh_path, f.rows_in = _csv(f, _table(f, swap=True)), len(f.hh)


def c_gpkg_swapped(f: Files) -> None:
    xy = shapely.get_coordinates(f.hh.geometry.to_numpy())
    f.hh = f.hh.set_geometry(shapely.points(xy[:, 1], xy[:, 0]), crs="EPSG:4326")


def c_lines_as_households(f: Files) -> None:
    f.hh = f.hh.set_geometry(f.hh.geometry.buffer(0.0001).boundary)


def c_polygons_as_households(f: Files) -> None:
    f.hh = f.hh.set_geometry(f.hh.geometry.buffer(0.0001))


def c_missing_geometry(f: Files) -> None:
    f.hh.loc[2, "geometry"] = None


def c_duplicate_ids(f: Files) -> None:
    f.hh.loc[5, "bid"] = f.hh.loc[4, "bid"]


def c_count_huge(f: Files) -> None:
    f.hh["households"] = f.hh["households"].astype(float)
    f.hh.loc[0, "households"] = 1e300


def c_count_inf(f: Files) -> None:
    t = _table(f).astype({"households": object})
    t.loc[1, "households"] = "inf"
    f.hh_path, f.rows_in = _csv(f, t), len(f.hh)


def c_count_fraction(f: Files) -> None:
    f.hh["households"] = f.hh["households"].astype(float)
    f.hh.loc[2, "households"] = 2.5


def c_count_negative(f: Files) -> None:
    f.hh.loc[3, "households"] = -4


def c_count_text(f: Files) -> None:
    t = _table(f).astype({"households": object})
    t.loc[6, "households"] = "many"
    f.hh_path, f.rows_in = _csv(f, t), len(f.hh)


def c_elderly_above_persons(f: Files) -> None:
    f.hh.loc[7, "elderly"] = f.hh.loc[7, "persons"] + 10


def c_no_households_column(f: Files) -> None:
    f.hh = f.hh.rename(columns={"households": "hh"})


def c_map_households_column(f: Files) -> None:
    f.hh = f.hh.rename(columns={"households": "hh"})
    f.extra[:] = ["--households-columns", "id=bid,households=hh"]


def c_one_per_point(f: Files) -> None:
    f.hh = f.hh.drop(columns=["households", "persons", "elderly"])
    f.extra += ["--one-household-per-point"]


def c_bad_columns_option(f: Files) -> None:
    f.extra += ["--households-columns", "households"]


def c_missing_id_column(f: Files) -> None:
    f.hh = f.hh.drop(columns="bid")


def c_zero_households(f: Files) -> None:
    f.hh = f.hh.iloc[:0]


def c_households_far_away(f: Files) -> None:  # Helsinki instead of Beijing
    xy = shapely.get_coordinates(f.hh.geometry.to_numpy())
    f.hh = f.hh.set_geometry(shapely.points(xy[:, 0] - 91.5, xy[:, 1] + 20.3), crs="EPSG:4326")


def c_multilayer_wrong_layer(f: Files) -> None:
    p = f.folder / "district.gpkg"
    f.roads.to_file(p, layer="roads")
    f.hh.to_file(p, layer="buildings")
    f.hh_path, f.rows_in = p, len(f.hh)
    f.extra += ["--households-layer", "homes"]


def c_multilayer_default(f: Files) -> None:
    p = f.folder / "district.gpkg"
    f.roads.to_file(p, layer="roads")
    f.hh.to_file(p, layer="buildings")
    f.hh_path, f.rows_in = p, len(f.hh)


def c_multilayer_named(f: Files) -> None:
    p = f.folder / "district.gpkg"
    f.roads.to_file(p, layer="streets")
    f.hh.to_file(p, layer="homes")
    f.hh_path, f.rows_in = p, len(f.hh)
    f.extra += ["--households-layer", "homes", "--roads-layer", "streets"]
    f.roads_path = p


def c_multilayer_ambiguous(f: Files) -> None:
    p = f.folder / "district.gpkg"
    f.roads.to_file(p, layer="streets")
    f.hh.to_file(p, layer="homes")
    f.hh_path, f.rows_in = p, len(f.hh)


def c_no_crs(f: Files) -> None:
    f.hh = f.hh.set_crs(None, allow_override=True)


def c_no_crs_given(f: Files) -> None:
    c_no_crs(f)
    f.extra += ["--households-crs", "EPSG:4326"]


def c_bad_crs(f: Files) -> None:
    f.extra += ["--crs", "EPSG:999999"]


def c_geographic_working_crs(f: Files) -> None:
    f.extra += ["--crs", "EPSG:4326"]


def c_bad_input_crs(f: Files) -> None:
    c_csv_lonlat(f)
    f.extra += ["--households-crs", "WGS 1984 please"]


def c_bad_coord_system(f: Files) -> None:
    f.extra += ["--coord-system", "households=gcj-02"]


def c_missing_households_file(f: Files) -> None:
    f.hh_path = f.folder / "nowhere.gpkg"


def c_missing_roads_file(f: Files) -> None:
    f.roads_path = f.folder / "no_roads.osm"


def c_folder_as_input(f: Files) -> None:
    f.hh_path = f.folder


def c_garbage_file(f: Files) -> None:
    p = f.folder / "hh.gpkg"
    p.write_text("this is not a GeoPackage")
    f.hh_path = p


def c_empty_csv(f: Files) -> None:
    p = f.folder / "hh.csv"
    p.write_text("")
    f.hh_path = p


def c_fac_empty(f: Files) -> None:
    f.fac = f.fac.iloc[:0]


def c_fac_far_away(f: Files) -> None:  # 80 km off the network
    xy = shapely.get_coordinates(f.fac.geometry.to_numpy())
    f.fac = f.fac.set_geometry(shapely.points(xy[:, 0] + 0.95, xy[:, 1]), crs="EPSG:4326")


def c_fac_one_category_missing(f: Files) -> None:
    f.fac = f.fac[f.fac["category"] != "elderly_care"]


def c_fac_negative_floor(f: Files) -> None:
    f.fac.loc[0, "floor_area_m2"] = -300.0


def c_fac_unknown_category(f: Files) -> None:
    f.fac.loc[1, "category"] = "eldercare"


def c_fac_unknown_subtype(f: Files) -> None:
    f.fac.loc[4, "subtype"] = "post_office"


def c_fac_chinese_subtypes(f: Files) -> None:
    f.fac["subtype"] = [PROFILE.subtype_label_zh(s) for s in f.fac["subtype"]]


def c_fac_subtype_wrong_category(f: Files) -> None:
    f.fac.loc[0, "subtype"] = "便利店"


def c_fac_duplicate_ids(f: Files) -> None:
    f.fac.loc[3, "facility_id"] = "E1"


def c_fac_lines(f: Files) -> None:
    f.fac = f.fac.set_geometry(f.fac.geometry.buffer(0.0001).boundary)


def c_fac_polygons(f: Files) -> None:
    f.fac = f.fac.set_geometry(f.fac.geometry.buffer(0.00005))


def c_fac_missing_geometry(f: Files) -> None:
    f.fac.loc[2, "geometry"] = None


def c_fac_csv_columns(f: Files) -> None:
    xy = shapely.get_coordinates(f.fac.geometry.to_numpy())
    t = pd.DataFrame({"编号": f.fac["facility_id"], "类别": f.fac["category"],
                      "类型": f.fac["subtype"], "面积": f.fac["floor_area_m2"],
                      "经度": xy[:, 0], "纬度": xy[:, 1]})
    f.fac_path = _csv(f, t, "fac.csv")
    f.extra += ["--facilities-columns", "id=编号,category=类别,subtype=类型,floor_area=面积"]


def c_fac_no_category(f: Files) -> None:
    f.fac = f.fac.rename(columns={"category": "kind"})


def c_out_is_file(f: Files) -> None:
    f.out.write_text("I am a file")


def c_out_not_writable(f: Files) -> None:
    f.out.mkdir()
    f.out.chmod(0o500)


def c_thresholds_text(f: Files) -> None:
    pass  # (circles command; see test below)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Files], None]
    code: int
    pattern: str  # regular expression the decisive line must match
    invalid: int = 0  # rows expected 'invalid' (exit 0 cases)


CASES = [
    Case("valid district", c_valid, 0, r"coverage"),
    Case("CSV lon/lat", c_csv_lonlat, 0, r"coverage"),
    Case("CSV lng/lat", c_csv_lng_lat, 0, r"coverage"),
    Case("CSV 经度/纬度 in GB18030", c_csv_chinese, 0, r"coverage"),
    Case("CSV X/Y in degrees", c_csv_xy_degrees, 0, r"coverage"),
    Case("CSV x/y projected, no CRS", c_csv_xy_projected_no_crs, 2,
         r"hh\.csv: columns x/y hold projected coordinates .* --households-crs"),
    Case("CSV x/y projected with --households-crs", c_csv_xy_projected_crs, 0, r"coverage"),
    Case("CSV named columns", c_csv_named_columns, 0, r"coverage"),
    Case("CSV without coordinate columns", c_csv_no_coordinates, 2,
         r"hh\.csv: no coordinate columns .*lon/lat.*经度/纬度.*--households-xy"),
    Case("CSV --households-xy names a missing column", c_csv_wrong_xy_option, 2,
         r"hh\.csv: no column 'latitude' .*--households-xy"),
    Case("CSV empty and text coordinates", c_csv_empty_coordinate, 0, r"coverage", invalid=2),
    Case("Excel sheet with 经度/纬度", c_xlsx, 0, r"coverage"),
    Case("Excel sheet that does not exist", c_xlsx_wrong_sheet, 2,
         r"hh\.xlsx: no sheet 'Sheet9'; sheets are \['住户'\]"),
    Case("CSV in GCJ-02 (households only)", c_csv_gcj02, 0, r"coverage"),
    Case("CSV lat/lon swapped", c_csv_swapped, 2,
         r"hh\.csv: 12 of 12 households rows lie outside the lon/lat range .*swapped"),
    Case("GeoPackage lat/lon swapped", c_gpkg_swapped, 2,
         r"hh\.gpkg: 12 of 12 households rows lie outside .*lon/lat swapped"),
    Case("LineStrings as households", c_lines_as_households, 2,
         r"hh\.gpkg: 12 rows are LineString geometries .*points are expected"),
    Case("polygons as households", c_polygons_as_households, 0,
         r"warning: .*hh\.gpkg: 12 polygon rows are used by their representative point"),
    Case("household without geometry", c_missing_geometry, 0, r"coverage", invalid=1),
    Case("duplicate household ids", c_duplicate_ids, 0, r"coverage", invalid=1),
    Case("household count 1e300", c_count_huge, 0, r"coverage", invalid=1),
    Case("household count 'inf'", c_count_inf, 0, r"coverage", invalid=1),
    Case("household count 2.5", c_count_fraction, 0, r"coverage", invalid=1),
    Case("household count negative", c_count_negative, 0, r"coverage", invalid=1),
    Case("household count 'many'", c_count_text, 0, r"coverage", invalid=1),
    Case("elderly above persons", c_elderly_above_persons, 0, r"coverage", invalid=1),
    Case("no 'households' column", c_no_households_column, 2,
         r"hh\.gpkg: no column 'households' .*--households-columns households=NAME"
         r".*--one-household-per-point"),
    Case("households column mapped", c_map_households_column, 0, r"coverage"),
    Case("one household per point", c_one_per_point, 0, r"coverage"),
    Case("malformed --households-columns", c_bad_columns_option, 2,
         r"--households-columns 'households': expected KEY=COLUMN"),
    Case("id column missing", c_missing_id_column, 2,
         r"hh\.gpkg: no id column 'bid'.*--households-columns id=NAME"),
    Case("0 households", c_zero_households, 0, r"warning: .*0 household rows"),
    Case("households far from every street", c_households_far_away, 0,
         r"warning: .*none of the 12 valid households is within 300 m of a street"),
    Case("layer that does not exist", c_multilayer_wrong_layer, 2,
         r"district\.gpkg: no layer 'homes'; layers are \['roads', 'buildings'\]; fix "
         r"--households-layer"),
    Case("multi-layer file, 'buildings' layer found", c_multilayer_default, 0, r"coverage"),
    Case("multi-layer file, layers named", c_multilayer_named, 0, r"coverage"),
    Case("multi-layer file, no layer named", c_multilayer_ambiguous, 2,
         r"district\.gpkg holds 2 layers \['streets', 'homes'\]; name the households layer "
         r"with --households-layer"),
    Case("layer without CRS", c_no_crs, 2, r"hh\.gpkg: the households layer has no CRS; .*"
         r"--households-crs"),
    Case("layer without CRS, --households-crs given", c_no_crs_given, 0, r"coverage"),
    Case("--crs EPSG:999999", c_bad_crs, 2,
         r"--crs 'EPSG:999999' \(config: inputs.crs\): not a known coordinate reference system"),
    Case("--crs geographic", c_geographic_working_crs, 2,
         r"--crs 'EPSG:4326' .*not a projected CRS in metres"),
    Case("--households-crs nonsense", c_bad_input_crs, 2,
         r"--households-crs 'WGS 1984 please' \(config: inputs.households_crs\): not a known "
         r"coordinate reference system"),
    Case("--coord-system misspelt", c_bad_coord_system, 2,
         r"--coord-system 'households=gcj-02': expected one of wgs84, gcj02, bd09"),
    Case("households file missing", c_missing_households_file, 2,
         r"nowhere\.gpkg: households file not found"),
    Case("roads file missing", c_missing_roads_file, 2, r"no_roads\.osm: file not found"),
    Case("folder given as households", c_folder_as_input, 2, r": is a folder, not a households"),
    Case("households file is garbage", c_garbage_file, 2,
         r"hh\.gpkg: cannot read the households file"),
    Case("households CSV empty", c_empty_csv, 2, r"hh\.csv: not a readable CSV table"),
    Case("facility file with 0 rows", c_fac_empty, 0, r"warning: .*fac\.gpkg: 0 facility rows"),
    Case("facilities 80 km off the network", c_fac_far_away, 0,
         r"warning: 14 of 14 facilities in .*fac\.gpkg are farther than 300 m from any street"),
    Case("a category with 0 facilities", c_fac_one_category_missing, 0,
         r"warning: elderly_care: 0 facilities in .*fac\.gpkg"),
    Case("negative floor area", c_fac_negative_floor, 2,
         r"fac\.gpkg: floor_area_m2 is negative for facilities \['E1'\] \(rows \[0\]\)"),
    Case("unknown category", c_fac_unknown_category, 2,
         r"fac\.gpkg: unknown facility category \['eldercare'\] \(rows \[1\]\); valid "
         r"categories"),
    Case("unknown sub-type", c_fac_unknown_subtype, 2,
         r"fac\.gpkg: unknown facility sub-type \['post_office'\] .*\(rows \[4\]\); valid "
         r"sub-types .*convenience_store \(便利店\)"),
    Case("Chinese sub-type labels", c_fac_chinese_subtypes, 0, r"coverage"),
    Case("sub-type of another category", c_fac_subtype_wrong_category, 2,
         r"fac\.gpkg: row 0 has sub-type 'convenience_store' in category 'elderly_care'"),
    Case("duplicate facility ids", c_fac_duplicate_ids, 2,
         r"fac\.gpkg: duplicate facility ids \['E1'\]; make 'facility_id' unique"),
    Case("facilities as lines", c_fac_lines, 2,
         r"fac\.gpkg: facilities .* are LineString geometries .*must be points"),
    Case("facilities as polygons", c_fac_polygons, 0,
         r"warning: .*fac\.gpkg: 14 facility polygons are used by their representative point"),
    Case("facility without geometry", c_fac_missing_geometry, 2,
         r"fac\.gpkg: facilities \['C0'\] have no geometry"),
    Case("facility CSV with Chinese columns", c_fac_csv_columns, 0, r"coverage"),
    Case("facility layer without category", c_fac_no_category, 2,
         r"fac\.gpkg: no 'category' column; .*--facilities-columns category=NAME"),
    Case("--out is an existing file", c_out_is_file, 2,
         r"--out '.*out': is an existing file, not a folder"),
]
if hasattr(os, "geteuid") and os.geteuid() != 0:  # root writes anywhere
    CASES.append(Case("--out not writable", c_out_not_writable, 2,
                      r"--out '.*out': '.*out' is not writable"))


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["-q", *args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = Files(tmp_path)
    f.extra[:] = []
    case.build(f)
    args = f.write()
    code, out, err = _run(args, capsys)
    assert code == case.code, err[-2000:]
    assert "Traceback" not in err and "internal error" not in err
    if code == 2:
        errors = [ln for ln in err.splitlines() if ln.startswith("geosvc: error:")]
        assert len(errors) == 1, err
        assert re.search(case.pattern, errors[0]), errors[0]
        assert not (f.out / "households.gpkg").exists()  # stopped before any result
        return
    text = out + err
    assert re.search(case.pattern, text, flags=re.M), text
    hh = gpd.read_file(f.out / "households.gpkg", layer="households")
    assert len(hh) == f.rows_in  # rows in = rows out
    summary = json.loads((f.out / "summary.json").read_text(encoding="utf-8"))
    for cat, s in summary["categories"].items():
        assert sum(s[f"rows_{k}"] for k in ("covered", "uncovered", "unreachable",
                                            "off_network", "invalid")) == f.rows_in, cat
        assert s["rows_invalid"] == case.invalid, hh["invalid_reason"].tolist()
        assert s["households_total"] is not None  # finite
    warnings_printed = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warnings_printed) == len({w["message"] for w in summary["warnings"]})


def test_case_table_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


def _helsinki(f: Files) -> None:
    """Move the whole district to Helsinki, where swapped lon/lat is still a valid lon/lat."""
    def move(g: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        geoms = shapely.transform(g.geometry.to_numpy(),
                                  lambda xy: xy - [LON0, LAT0] + [24.94, 60.17])
        return g.set_geometry(geoms, crs="EPSG:4326")

    f.roads, f.hh, f.fac = move(f.roads), move(f.hh), move(f.fac)


def test_swapped_but_in_range_is_a_warning_naming_the_swap(tmp_path, capsys) -> None:
    f = Files(tmp_path)
    _helsinki(f)
    xy = shapely.get_coordinates(f.hh.geometry.to_numpy())
    f.hh = f.hh.set_geometry(shapely.points(xy[:, 1], xy[:, 0]), crs="EPSG:4326")
    code, _, err = _run(f.write(), capsys)
    assert code == 0, err
    assert re.search(r"^warning: .*none of the 12 valid households is within 300 m of a street; "
                     r"are lon/lat swapped\?", err, flags=re.M), err
    code, _, err = _run(["--strict", *f.write()], capsys)
    assert code == 2 and "no_household_near_streets" in err.splitlines()[-1]


def _config(f: Files, body: str) -> Path:
    args = f.write()
    cfg = f.folder / "run.toml"
    for key, value in (("@roads@", args[2]), ("@hh@", args[4]), ("@fac@", args[6]),
                       ("@out@", str(f.out))):
        body = body.replace(key, value)
    cfg.write_text(body, encoding="utf-8")
    return cfg


CONFIG = """@top@
[inputs]
roads = "@roads@"
households = "@hh@"
facilities = "@fac@"
@inputs@

[analysis]
thresholds_min = [15]

[siting]
k = 1

[output]
folder = "@out@"
lang = "en"
@output@
"""


def _cfg_text(top: str = "", inputs: str = "", output: str = "") -> str:
    return CONFIG.replace("@top@", top).replace("@inputs@", inputs).replace("@output@", output)


def test_config_strict_equals_flag(tmp_path, capsys) -> None:
    f = Files(tmp_path)
    f.fac = f.fac[f.fac["category"] != "elderly_care"]  # a category with 0 facilities
    cfg = _config(f, _cfg_text(top="strict = true"))
    code, _, err = _run(["run", str(cfg)], capsys)
    assert code == 2, err
    assert re.search(r"^geosvc: error: --strict: .*no_facilities", err.splitlines()[-1])
    summary = json.loads((f.out / "summary.json").read_text(encoding="utf-8"))
    assert "no_facilities" in {w["code"] for w in summary["warnings"]}


def test_config_columns_per_input_coord_system_and_one_per_point(tmp_path, capsys) -> None:
    from geosvc.crs import wgs84_to_gcj02

    f = Files(tmp_path)
    xy = shapely.get_coordinates(f.fac.geometry.to_numpy())
    lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
    t = pd.DataFrame({"fid": f.fac["facility_id"], "kind": f.fac["category"],
                      "type": [PROFILE.subtype_label_zh(s) for s in f.fac["subtype"]],
                      "lng": lon, "lat": lat})
    f.fac_path = _csv(f, t, "fac.csv")
    f.hh = f.hh.drop(columns=["households", "persons", "elderly"])
    cfg = _config(f, _cfg_text(inputs="""one_household_per_point = true
coord_system = { facilities = "gcj02" }
[inputs.households_columns]
id = "bid"
[inputs.facilities_columns]
id = "fid"
category = "kind"
subtype = "type"
"""))
    code, out, err = _run(["run", str(cfg)], capsys)
    assert code == 0, err
    hh = gpd.read_file(f.out / "households.gpkg", layer="households")
    assert len(hh) == N_HH and hh["households"].tolist() == [1.0] * N_HH
    # the GCJ-02 shift (~500 m here) is undone: every facility sits on its street again
    fac = gpd.read_file(f.out / "service_circles.gpkg", layer="facility_circles")
    assert set(fac["snap_status"]) == {"ok"}
    assert fac["access_m"].max() < 15.0


def test_config_bad_input_crs_and_output_file(tmp_path, capsys) -> None:
    f = Files(tmp_path)
    cfg = _config(f, _cfg_text(inputs='households_crs = "EPSG:999999"'))
    code, _, err = _run(["run", str(cfg)], capsys)
    assert code == 2
    assert re.search(r"run\.toml: inputs.households_crs 'EPSG:999999': not a known", err)
    f.out.write_text("a file")
    cfg = _config(f, _cfg_text())
    code, _, err = _run(["run", str(cfg)], capsys)
    assert code == 2 and re.search(r"output.folder '.*out': is an existing file", err), err


def test_rerun_removes_only_the_earlier_runs_files(tmp_path, capsys) -> None:
    f = Files(tmp_path)
    f.out.mkdir()
    (f.out / "notes.txt").write_text("the planner's own file")
    cfg = _config(f, _cfg_text())
    code, _, err = _run(["run", str(cfg)], capsys)
    assert code == 0, err
    first = json.loads((f.out / ".geosvc-manifest.json").read_text(encoding="utf-8"))
    assert {"households.gpkg", "summary.json", "map.html", "siting.csv"} <= set(first["files"])
    assert "notes.txt" not in first["files"] and first["complete"]
    # a dead process's temporary and a second, smaller run (coverage only) into the same folder
    (f.out / ".map.tmp-999999999.png").write_text("left by a killed run")
    code, _, err = _run(f.write(), capsys)
    assert code == 0, err
    names = {p.name for p in f.out.iterdir()}
    assert "map.html" not in names and "siting.csv" not in names  # earlier run's, removed
    assert "notes.txt" in names  # never anything else
    assert ".map.tmp-999999999.png" not in names
    second = json.loads((f.out / ".geosvc-manifest.json").read_text(encoding="utf-8"))
    assert set(second["files"]) == {"households.gpkg", "summary.json"}
    code, _, err = _run([*f.write(), "--no-overwrite"], capsys)
    assert code == 2 and re.search(r"--out '.*out': holds the 2 output files of an earlier run",
                                   err), err
    assert (f.out / "households.gpkg").exists()
    # a rerun stopped by bad input keeps the earlier results and their manifest
    f.hh_path = f.folder / "nowhere.csv"
    code, _, err = _run(f.write(), capsys)
    assert code == 2 and "nowhere.csv: households file not found" in err
    assert {"households.gpkg", "summary.json", ".geosvc-manifest.json"} <= {
        p.name for p in f.out.iterdir()}


def test_sigterm_leaves_no_temporary(tmp_path) -> None:
    import signal
    import subprocess
    import sys
    import time

    script = ("import time, sys\n"
              "from geosvc.io import atomic_path, install_signal_cleanup\n"
              "install_signal_cleanup()\n"
              f"with atomic_path({str(tmp_path / 'map.png')!r}) as tmp:\n"
              "    tmp.write_text('half')\n"
              "    print('ready', flush=True)\n"
              "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    assert list(tmp_path.glob(".map.tmp-*.png"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.1)
    assert not list(tmp_path.iterdir())


def test_site_unknown_category_fails_before_the_network(tmp_path, capsys) -> None:
    f = Files(tmp_path)
    args = f.write()
    f.roads_path.write_text("not read")  # type: ignore[union-attr]
    code, _, err = _run(["site", *args[1:], "--category", "eldercare"], capsys)
    assert code == 2 and "unknown category 'eldercare'" in err


def test_column_errors_come_before_the_network(tmp_path, capsys) -> None:
    f = Files(tmp_path)
    f.hh = f.hh.rename(columns={"households": "hh"})
    args = f.write()
    f.roads_path.write_text("not a road file")  # type: ignore[union-attr]
    code, _, err = _run(args, capsys)
    assert code == 2 and "no column 'households'" in err, err


BAUTZEN = Path("/work/shared/data/osm/bautzen.osm")


@pytest.mark.skipif(not BAUTZEN.exists(), reason="real OSM extract not available")
def test_real_osm_table_and_swapped_table(tmp_path, capsys) -> None:
    """Address points taken from the raw OSM nodes (read by osmnx, not by geosvc)."""
    import warnings

    import osmnx as ox

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        G = ox.graph_from_xml(BAUTZEN, simplify=False, retain_all=True)
    walk = {"residential", "unclassified", "primary", "service", "track"}  # walkable ways
    on_walk = sorted({n for u, v, d in G.edges(data=True) if d.get("highway") in walk
                      and d.get("access") not in ("no", "private") for n in (u, v)})
    nodes = ox.graph_to_gdfs(G, edges=False).loc[on_walk].sample(150, random_state=1,
                                                                  replace=len(on_walk) < 150)
    lon, lat = nodes.geometry.x.to_numpy(), nodes.geometry.y.to_numpy()
    hh = pd.DataFrame({"编号": [f"H{i}" for i in range(150)], "户数": 3, "经度": lon, "纬度": lat})
    hh.to_csv(tmp_path / "hh.csv", index=False, encoding="utf-8-sig")
    hh.rename(columns={"经度": "lat", "纬度": "lon"}).to_csv(tmp_path / "swapped.csv", index=False)
    fac = nodes.iloc[:3]
    pd.DataFrame({"facility_id": ["E0", "E1", "E2"], "category": "elderly_care",
                  "subtype": ["养老院", "日间照料中心", "社区养老服务站"],
                  "lng": fac.geometry.x, "lat": fac.geometry.y}).to_csv(tmp_path / "fac.csv",
                                                                      index=False)
    base = ["coverage", "--roads", str(BAUTZEN), "--facilities", str(tmp_path / "fac.csv"),
            "--households-columns", "id=编号,households=户数"]
    code, _, err = _run([*base, "--households", str(tmp_path / "hh.csv"), "--out",
                         str(tmp_path / "a")], capsys)
    assert code == 0, err
    out = gpd.read_file(tmp_path / "a" / "households.gpkg", layer="households")
    assert len(out) == 150 and (out["invalid_reason"] == "").all()
    assert out["access_m"].max() < 1.0  # nodes of walkable OSM ways: on the network
    assert "no_household_near_streets" not in err and "swapped" not in err
    code, _, err = _run([*base, "--households", str(tmp_path / "swapped.csv"), "--out",
                         str(tmp_path / "b")], capsys)
    assert code == 0, err
    assert re.search(r"^warning: .*swapped\.csv: none of the 150 valid households is within "
                     r"300 m of a street; are lon/lat swapped\?", err, flags=re.M), err


def test_output_folder_not_writable_or_full(tmp_path, monkeypatch, capsys) -> None:
    """Checked before any work (root may write anywhere, so the OS answer is simulated)."""
    import shutil
    from collections import namedtuple

    import geosvc.io as gio

    f = Files(tmp_path)
    args = f.write()
    monkeypatch.setattr(gio.os, "access", lambda *a, **k: False)
    code, _, err = _run(args, capsys)
    assert code == 2 and re.search(r"--out '.*out': '.*' is not writable; choose a folder", err)
    monkeypatch.undo()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 10**6, 10**6))
    code, _, err = _run(args, capsys)
    assert code == 2 and re.search(r"--out '.*out': only 1 MB free on its disk; a run needs at "
                                   r"least 50 MB", err), err
    assert not f.out.exists()
