"""GeoPackage writing: column types through the Arrow path, batches, atomic replacement."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from geosvc import io, resources


def _frame(n: int = 20) -> gpd.GeoDataFrame:
    status = pd.Categorical.from_codes(np.where(np.arange(n) == 4, -1, np.arange(n) % 3),
                                       categories=["covered", "uncovered", "invalid"])
    ids = pd.Categorical.from_codes(np.arange(n) % 2, categories=[101, 202])  # int categories
    mixed = np.array([1, "a", None, 2.5] * (n // 4), dtype=object)
    text = np.array(["x", None, "z", float("nan")] * (n // 4), dtype=object)
    return gpd.GeoDataFrame({
        "status": status, "nearest_id": ids, "mixed": mixed, "text": text,
        "flag": np.arange(n) % 2 == 0, "time_min": np.where(np.arange(n) == 3, np.nan,
                                                             np.arange(n) / 4),
    }, geometry=shapely.points(np.arange(n), np.arange(n) * 2.0), crs="EPSG:32650")


def test_columns_round_trip_with_their_meaning(tmp_path):
    gdf = _frame()
    path = io.write_gpkg({"households": gdf}, tmp_path / "out.gpkg")
    back = pyogrio.read_dataframe(path, layer="households")
    expected_status = [None if i == 4 else ["covered", "uncovered", "invalid"][i % 3]
                       for i in range(20)]
    assert [None if pd.isna(v) else v for v in back["status"]] == expected_status
    assert back["nearest_id"].tolist() == ["101", "202"] * 10
    assert [None if pd.isna(v) else v for v in back["mixed"]] == ["1", "a", None, "2.5"] * 5
    assert [None if pd.isna(v) else v for v in back["text"]] == ["x", None, "z", None] * 5
    assert back["flag"].tolist() == [1, 0] * 10
    np.testing.assert_array_equal(back["time_min"].to_numpy(), gdf["time_min"].to_numpy())
    assert shapely.equals(back.geometry.to_numpy(), gdf.geometry.to_numpy()).all()
    assert back.crs == gdf.crs
    assert not list(tmp_path.glob(".*tmp*"))


def test_batches_give_the_same_layer(tmp_path, monkeypatch):
    gdf = _frame(40)
    whole = io.write_gpkg({"a": gdf, "b": gdf.iloc[:8]}, tmp_path / "whole.gpkg")
    monkeypatch.setattr(io, "_rows_per_batch", lambda frame: 7)
    parts = io.write_gpkg({"a": gdf, "b": gdf.iloc[:8]}, tmp_path / "parts.gpkg")
    for layer in ("a", "b"):
        x = pyogrio.read_dataframe(whole, layer=layer)
        y = pyogrio.read_dataframe(parts, layer=layer)
        pd.testing.assert_frame_equal(x, y)
    assert len(pyogrio.read_dataframe(parts, layer="a")) == 40


def test_batch_size_follows_the_memory_limit():
    gdf = gpd.GeoDataFrame({"v": np.zeros(2_000_000)},
                           geometry=shapely.points(np.zeros(2_000_000), 0.0), crs="EPSG:3857")
    assert io._rows_per_batch(gdf) == len(gdf)  # no limit: one batch on this machine
    with resources.memory_limit(resources.rss_bytes() + 100 * 2**20):
        rows = io._rows_per_batch(gdf)
    assert 10_000 <= rows < len(gdf)


def test_failed_write_leaves_the_old_file(tmp_path):
    path = io.write_gpkg({"a": _frame()}, tmp_path / "out.gpkg")
    before = path.read_bytes()
    bad = _frame()
    bad["geometry"] = None
    bad = bad.set_geometry("geometry")
    with pytest.raises(Exception):  # noqa: B017 - whatever GDAL raises
        io.write_gpkg({"a": _frame(), "b": bad.drop(columns="geometry")}, path)
    assert path.read_bytes() == before
