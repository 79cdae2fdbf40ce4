"""Planners' spreadsheets: CSV (GB18030) and Excel households read quietly and alike."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from geosvc.demand import read_households

ROWS = [("A1", 115.6501234, 34.4102345, 3), ("A2", 115.6512345, 34.4113456, 1),
        ("A3", 115.6523456, 34.4124567, 12)]


def _write_xlsx(path: Path) -> None:
    # written cell by cell with openpyxl, not through pandas (the reader's own route)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "住户"
    sheet.append(["地址编号", "经度", "纬度", "户数"])
    for row in ROWS:
        sheet.append(list(row))
    book.save(path)


def _write_csv(path: Path) -> None:
    lines = ["地址编号,经度,纬度,户数"] + [",".join(map(str, r)) for r in ROWS]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))  # as Chinese Excel saves it


def test_excel_and_gb18030_csv_read_the_same_without_warnings(tmp_path: Path) -> None:
    xlsx, csv = tmp_path / "hh.xlsx", tmp_path / "hh.csv"
    _write_xlsx(xlsx)
    _write_csv(csv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = [read_households(xlsx), read_households(xlsx, layer="住户"), read_households(csv)]
        gc.collect()  # an unclosed workbook file shows up as a ResourceWarning here
    assert [str(w.message) for w in caught] == []
    want_x, want_y = np.array([r[1] for r in ROWS]), np.array([r[2] for r in ROWS])
    for gdf in frames:
        assert gdf.crs is not None and gdf.crs.to_epsg() == 4326
        assert np.allclose(gdf.geometry.x, want_x, rtol=0, atol=1e-9)
        assert np.allclose(gdf.geometry.y, want_y, rtol=0, atol=1e-9)
        assert [str(v) for v in gdf["地址编号"]] == [r[0] for r in ROWS]
        assert [int(v) for v in gdf["户数"]] == [r[3] for r in ROWS]


def test_unknown_sheet_names_the_sheets(tmp_path: Path) -> None:
    from geosvc._errors import InputError

    xlsx = tmp_path / "hh.xlsx"
    _write_xlsx(xlsx)
    with pytest.raises(InputError, match=r"no sheet 'Sheet9'; sheets are \['住户'\]"):
        read_households(xlsx, layer="Sheet9")
