"""Household inputs: validation, buildings, population rasters."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geosvc._errors import CRSError, InputError
from geosvc.demand import (
    households_from_buildings,
    households_from_raster,
    prepare_households,
    rasterize_population,
)
from geosvc.network import compile_network, graph_from_lines
from tests.conftest import UTM, grid_lines


def test_prepare_keeps_every_row_and_explains_invalid_ones():
    gdf = gpd.GeoDataFrame({"id": ["a", "b", "b", "c", None],
                            "households": ["3", "x", 4, -2, 1],
                            "elderly": [1, 2, -1, 0, 0]},
                           geometry=[shapely.Point(0, 0), shapely.Point(1, 1), shapely.Point(2, 2),
                                     None, shapely.Point(3, 3)], crs=UTM)
    out = prepare_households(gdf, id_col="id")
    assert len(out) == 5
    assert out["invalid_reason"].tolist() == [
        "", "households is not a number", "elderly is negative; duplicate id",
        "missing or empty geometry; households is negative", "missing id"]
    assert out["households"].iloc[0] == 3.0
    assert "invalid_reason" not in gdf.columns  # input untouched


def test_prepare_errors_name_columns():
    gdf = gpd.GeoDataFrame({"hh": [1]}, geometry=[shapely.Point(0, 0)], crs=UTM)
    with pytest.raises(InputError, match="no column 'households'.*\\['hh', 'geometry'\\]"):
        prepare_households(gdf)
    assert prepare_households(gdf, households_col=None)["households"].tolist() == [1.0]
    with pytest.raises(CRSError):
        prepare_households(gdf.set_crs(None, allow_override=True), households_col="hh")


def test_households_from_buildings():
    b = gpd.GeoDataFrame({"building": ["apartments", "yes", "school"],
                          "building:levels": ["6", None, "3"], "id": [1, 2, 3]},
                         geometry=[shapely.box(0, 0, 20, 20), shapely.box(50, 0, 60, 10),
                                   shapely.box(100, 0, 150, 50)], crs=UTM)
    hh = households_from_buildings(b)
    assert hh["building_id"].tolist() == [1, 2]  # the school is not residential
    assert hh["households"].tolist() == [30.0, 4.0]  # 400 m2 x 6 / 80; 100 m2 x 3 / 80 -> 4
    assert hh["persons"].tolist() == [78.0, 10.0]


def test_raster_round_trip_preserves_persons(tmp_path, rng):
    net = compile_network(graph_from_lines(grid_lines(6, 200.0)))
    pts = rng.uniform(0, 1000, (400, 2))
    people = gpd.GeoDataFrame({"persons": rng.integers(1, 40, 400).astype(float)},
                              geometry=shapely.points(pts), crs=UTM)
    # one populated spot far from any street: it keeps its people at the cell centre
    people.loc[len(people)] = {"persons": 17.0, "geometry": shapely.Point(1420, 1420)}
    path = rasterize_population(people, tmp_path / "pop.tif", cell_m=100.0)
    hh = households_from_raster(path, net, spacing_m=20.0)
    assert hh["persons"].sum() == pytest.approx(people["persons"].sum())
    assert hh["households"].sum() == pytest.approx(people["persons"].sum() / 2.6)
    on = hh["on_street"].to_numpy()
    d = shapely.distance(hh.geometry.to_numpy()[on][:, None], net.edge_geometry[None, :]).min(1)
    assert d.max() < 1e-6  # street points lie on streets
    far = hh.loc[~on & (hh.geometry.x > 1300).to_numpy()]
    assert len(far) == 1 and far["persons"].iloc[0] == pytest.approx(17.0)
    assert far.geometry.iloc[0].distance(shapely.Point(1450, 1450)) < 100.0
    # each cell's persons stay inside that cell
    import rasterio

    with rasterio.open(path) as src:
        grid = src.read(1)
        ncol = src.width
    per_cell = hh.groupby("cell")["persons"].sum()
    assert np.allclose(per_cell.to_numpy(), grid.ravel()[per_cell.index.to_numpy()], rtol=1e-5)
    assert ncol > 0


def test_raster_errors(tmp_path):
    net = compile_network(graph_from_lines(grid_lines(3, 100.0)))
    with pytest.raises(InputError, match="not found"):
        households_from_raster(tmp_path / "none.tif", net)
    bad = tmp_path / "bad.tif"
    bad.write_text("not a raster")
    with pytest.raises(InputError, match="not a readable raster"):
        households_from_raster(bad, net)
