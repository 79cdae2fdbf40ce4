"""Tests for geosvc.crs: WGS-84 / GCJ-02 / BD-09 transforms and CRS helpers."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon

from geosvc._errors import CRSError
from geosvc.crs import (
    COORD_SYSTEMS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert_lonlat,
    from_wgs84_geometries,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84_frame,
    to_wgs84_geometries,
    utm_crs_for,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = pyproj.Geod(ellps="WGS84")
BEIJING = (116.397, 39.909)
HELSINKI = (24.94, 60.17)
ROUND_TRIP_TOL_M = 0.5


def _dist_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance in metres (vectorised)."""
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2], dtype=float)


# --- independent scalar oracle (plain ``math``, written from the public formula) ---


def _oracle_wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271):
        return lon, lat
    a = 6378245.0
    ee = 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    pi = math.pi

    t_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    t_lat += (20.0 * math.sin(6.0 * x * pi) + 20.0 * math.sin(2.0 * x * pi)) * 2.0 / 3.0
    t_lat += (20.0 * math.sin(y * pi) + 40.0 * math.sin(y / 3.0 * pi)) * 2.0 / 3.0
    t_lat += (160.0 * math.sin(y / 12.0 * pi) + 320.0 * math.sin(y * pi / 30.0)) * 2.0 / 3.0

    t_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    t_lon += (20.0 * math.sin(6.0 * x * pi) + 20.0 * math.sin(2.0 * x * pi)) * 2.0 / 3.0
    t_lon += (20.0 * math.sin(x * pi) + 40.0 * math.sin(x / 3.0 * pi)) * 2.0 / 3.0
    t_lon += (150.0 * math.sin(x / 12.0 * pi) + 300.0 * math.sin(x / 30.0 * pi)) * 2.0 / 3.0

    rad = lat / 180.0 * pi
    magic = 1.0 - ee * math.sin(rad) * math.sin(rad)
    sq = math.sqrt(magic)
    d_lat = (t_lat * 180.0) / ((a * (1.0 - ee)) / (magic * sq) * pi)
    d_lon = (t_lon * 180.0) / (a / sq * math.cos(rad) * pi)
    return lon + d_lon, lat + d_lat


def _oracle_gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    if not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271):
        return lon, lat
    x_pi = math.pi * 3000.0 / 180.0
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * x_pi)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * x_pi)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


# --- known offsets --------------------------------------------------------------


def test_beijing_gcj02_offset_is_a_few_hundred_metres() -> None:
    glon, glat = wgs84_to_gcj02(*BEIJING)
    d = float(_dist_m(BEIJING[0], BEIJING[1], glon, glat))
    assert 100.0 < d < 700.0
    # Known direction of the Beijing shift: east and north.
    assert float(glon) > BEIJING[0]
    assert float(glat) > BEIJING[1]


def test_beijing_bd09_offset_is_about_a_kilometre() -> None:
    # BD-09 adds Baidu's own ~0.0065/0.006 degree shift on top of GCJ-02, so in
    # Beijing WGS-84 -> BD-09 is ~1.4 km (not a few hundred metres) and the
    # GCJ-02 -> BD-09 step alone is ~0.9 km.
    blon, blat = wgs84_to_bd09(*BEIJING)
    d = float(_dist_m(BEIJING[0], BEIJING[1], blon, blat))
    assert 1000.0 < d < 1700.0
    glon, glat = wgs84_to_gcj02(*BEIJING)
    d_step = float(_dist_m(glon, glat, blon, blat))
    assert 700.0 < d_step < 1100.0
    assert float(blon) > float(glon) and float(blat) > float(glat)


def test_regression_value_matches_scalar_oracle() -> None:
    glon, glat = wgs84_to_gcj02(*BEIJING)
    olon, olat = _oracle_wgs84_to_gcj02(*BEIJING)
    assert float(glon) == pytest.approx(olon, abs=1e-12)
    assert float(glat) == pytest.approx(olat, abs=1e-12)
    # Pinned value (regression guard against accidental formula edits).
    assert float(glon) == pytest.approx(116.40324351, abs=1e-8)
    assert float(glat) == pytest.approx(39.9104034, abs=1e-7)


def test_vectorised_matches_scalar_oracle_on_random_points() -> None:
    rng = np.random.default_rng(20240601)
    lon = rng.uniform(70.0, 140.0, 200)  # includes some points outside the box
    lat = rng.uniform(0.0, 58.0, 200)
    glon, glat = wgs84_to_gcj02(lon, lat)
    blon, blat = gcj02_to_bd09(glon, glat)
    assert glon.shape == (200,) and glon.dtype == np.float64
    for i in range(lon.size):
        olon, olat = _oracle_wgs84_to_gcj02(float(lon[i]), float(lat[i]))
        assert abs(glon[i] - olon) <= 1e-12
        assert abs(glat[i] - olat) <= 1e-12
        bl, bt = _oracle_gcj02_to_bd09(float(glon[i]), float(glat[i]))
        assert abs(blon[i] - bl) <= 1e-12
        assert abs(blat[i] - bt) <= 1e-12


# --- round trips ------------------------------------------------------------------

lons = st.floats(min_value=73.0, max_value=135.0, allow_nan=False)
lats = st.floats(min_value=18.0, max_value=53.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(lon=lons, lat=lats)
def test_round_trip_gcj02_hypothesis(lon: float, lat: float) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert float(_dist_m(lon, lat, *back)) < ROUND_TRIP_TOL_M


@settings(max_examples=300, deadline=None)
@given(lon=lons, lat=lats)
def test_round_trip_bd09_hypothesis(lon: float, lat: float) -> None:
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert float(_dist_m(lon, lat, *back)) < ROUND_TRIP_TOL_M


def test_round_trip_large_vectorised_array() -> None:
    rng = np.random.default_rng(7)
    n = 100_000
    lon = rng.uniform(73.0, 135.0, n)
    lat = rng.uniform(18.0, 53.0, n)

    glon, glat = wgs84_to_gcj02(lon, lat)
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    err_gcj = _dist_m(lon, lat, wlon, wlat)
    assert err_gcj.shape == (n,)
    assert err_gcj.max() < 1e-3  # iterative inverse: sub-millimetre

    blon, blat = wgs84_to_bd09(lon, lat)
    wlon2, wlat2 = bd09_to_wgs84(blon, blat)
    err_bd = _dist_m(lon, lat, wlon2, wlat2)
    assert err_bd.max() < ROUND_TRIP_TOL_M

    # The forward shift really moved every point (so the round trip is not trivial).
    assert _dist_m(lon, lat, glon, glat).min() > 1.0


def test_bd09_gcj02_round_trip() -> None:
    lon = np.array([116.397, 121.47, 113.26, 104.07])
    lat = np.array([39.909, 31.23, 23.13, 30.67])
    back = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert _dist_m(lon, lat, *back).max() < ROUND_TRIP_TOL_M


# --- conventions: outside China, NaN, shapes ------------------------------------------


@pytest.mark.parametrize(
    "func",
    [wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02, wgs84_to_bd09, bd09_to_wgs84],
)
def test_outside_china_unchanged(func) -> None:
    lon = np.array([HELSINKI[0], -74.006, 151.21])
    lat = np.array([HELSINKI[1], 40.713, -33.87])
    out_lon, out_lat = func(lon, lat)
    np.testing.assert_array_equal(out_lon, lon)
    np.testing.assert_array_equal(out_lat, lat)


@pytest.mark.parametrize(
    "func",
    [wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02, wgs84_to_bd09, bd09_to_wgs84],
)
def test_nan_passes_through(func) -> None:
    lon = np.array([np.nan, 116.397, 116.397])
    lat = np.array([39.9, np.nan, 39.909])
    out_lon, out_lat = func(lon, lat)
    assert np.isnan(out_lon[0]) and np.isnan(out_lat[1])
    assert np.isfinite(out_lon[2]) and np.isfinite(out_lat[2])
    assert out_lon[2] != lon[2]  # the valid point was still converted
    all_nan = func(np.nan, np.nan)
    assert np.isnan(all_nan[0]) and np.isnan(all_nan[1])


def test_scalar_input_gives_float64_arrays_and_input_not_mutated() -> None:
    lon, lat = wgs84_to_gcj02(116.397, 39.909)
    assert isinstance(lon, np.ndarray) and lon.dtype == np.float64 and lon.size == 1
    src_lon = np.array([116.397, 121.47])
    src_lat = [39.909, 31.23]  # list input accepted
    before = src_lon.copy()
    out_lon, _ = gcj02_to_wgs84(src_lon, src_lat)
    np.testing.assert_array_equal(src_lon, before)
    assert out_lon.shape == (2,)


def test_shape_mismatch_raises_value_error() -> None:
    with pytest.raises(ValueError):
        wgs84_to_gcj02([116.0, 117.0], [39.0, 40.0, 41.0])


# --- dispatcher -----------------------------------------------------------------------


def test_convert_lonlat_dispatches_all_pairs() -> None:
    lon, lat = np.array([116.397, 121.47]), np.array([39.909, 31.23])
    expected = {
        ("wgs84", "gcj02"): wgs84_to_gcj02(lon, lat),
        ("gcj02", "wgs84"): gcj02_to_wgs84(lon, lat),
        ("gcj02", "bd09"): gcj02_to_bd09(lon, lat),
        ("bd09", "gcj02"): bd09_to_gcj02(lon, lat),
        ("wgs84", "bd09"): wgs84_to_bd09(lon, lat),
        ("bd09", "wgs84"): bd09_to_wgs84(lon, lat),
    }
    for src in COORD_SYSTEMS:
        for dst in COORD_SYSTEMS:
            got = convert_lonlat(lon, lat, source=src, target=dst)
            want = (lon, lat) if src == dst else expected[(src, dst)]
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    # Case-insensitive names.
    got = convert_lonlat(lon, lat, source="WGS84", target="GCJ02")
    np.testing.assert_array_equal(got[0], expected[("wgs84", "gcj02")][0])


@pytest.mark.parametrize("bad", ["wgs-84", "baidu", "", "epsg:4326"])
def test_unknown_coord_system_raises(bad: str) -> None:
    with pytest.raises(CRSError) as exc:
        convert_lonlat(116.0, 39.0, source=bad, target="wgs84")
    msg = str(exc.value)
    for name in COORD_SYSTEMS:
        assert name in msg
    with pytest.raises(CRSError):
        convert_lonlat(116.0, 39.0, source="wgs84", target=bad)
    with pytest.raises(CRSError):
        to_wgs84_geometries(np.array([Point(116, 39)]), coord_system=bad)
    with pytest.raises(CRSError):
        to_wgs84_frame(gpd.GeoDataFrame(geometry=[Point(116, 39)], crs=4326), coord_system=bad)
    assert issubclass(CRSError, ValueError)


# --- geometries and frames --------------------------------------------------------------


def _sample_geoms() -> np.ndarray:
    poly = Polygon([(116.30, 39.85), (116.45, 39.85), (116.45, 39.95), (116.30, 39.95)])
    line = LineString([(121.40, 31.20), (121.50, 31.25), (121.55, 31.30)])
    pt = Point(113.26, 23.13)
    return np.array([poly, line, pt, None, Polygon()], dtype=object)


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_geometry_helpers_convert_vertices_and_round_trip(system: str) -> None:
    geoms = _sample_geoms()
    wgs = to_wgs84_geometries(geoms, coord_system=system)
    assert isinstance(wgs, np.ndarray) and wgs.shape == geoms.shape
    assert wgs[3] is None
    assert wgs[4].is_empty
    for g_in, g_out in zip(geoms[:3], wgs[:3], strict=True):
        assert g_out.geom_type == g_in.geom_type
        c_in = shapely.get_coordinates(g_in)
        c_out = shapely.get_coordinates(g_out)
        assert c_in.shape == c_out.shape
        want = convert_lonlat(c_in[:, 0], c_in[:, 1], source=system, target="wgs84")
        np.testing.assert_allclose(c_out[:, 0], want[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(c_out[:, 1], want[1], rtol=0, atol=1e-12)
        assert _dist_m(c_in[:, 0], c_in[:, 1], c_out[:, 0], c_out[:, 1]).min() > 100.0
    back = from_wgs84_geometries(wgs, coord_system=system)
    for g_in, g_back in zip(geoms[:3], back[:3], strict=True):
        c_in = shapely.get_coordinates(g_in)
        c_back = shapely.get_coordinates(g_back)
        assert _dist_m(c_in[:, 0], c_in[:, 1], c_back[:, 0], c_back[:, 1]).max() < 0.5
    assert back[3] is None


def test_geometry_helpers_keep_z_and_geoseries_metadata() -> None:
    gs = gpd.GeoSeries(
        [Point(116.397, 39.909, 55.0), LineString([(121.4, 31.2), (121.5, 31.3)])],
        index=["a", "b"],
        name="shape",
        crs=4326,
    )
    out = to_wgs84_geometries(gs, coord_system="gcj02")
    assert isinstance(out, gpd.GeoSeries)
    assert list(out.index) == ["a", "b"] and out.name == "shape" and out.crs == gs.crs
    assert out.iloc[0].has_z and out.iloc[0].z == 55.0
    want = gcj02_to_wgs84(116.397, 39.909)
    assert out.iloc[0].x == pytest.approx(float(want[0]), abs=1e-12)
    assert not out.iloc[1].has_z
    projected = gs.to_crs(32650)
    with pytest.raises(CRSError):
        to_wgs84_geometries(projected, coord_system="bd09")


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
@pytest.mark.parametrize("crs", [4326, None])
def test_to_wgs84_frame_converts_copy(system: str, crs: int | None) -> None:
    geoms = _sample_geoms()[:2]
    gdf = gpd.GeoDataFrame({"name": ["park", "road"]}, geometry=list(geoms), crs=crs)
    snapshot = gdf.copy()
    out = to_wgs84_frame(gdf, coord_system=system)
    assert out is not gdf
    assert out.crs is not None and out.crs.to_epsg() == 4326
    assert list(out["name"]) == ["park", "road"]
    # Input is not mutated.
    assert gdf.crs == snapshot.crs
    assert all(a.equals_exact(b, 0.0) for a, b in zip(gdf.geometry, snapshot.geometry, strict=True))
    expected = to_wgs84_geometries(geoms, coord_system=system)
    for got, want in zip(out.geometry, expected, strict=True):
        assert got.equals_exact(want, 1e-12)
    # Polygon moved by hundreds of metres.
    c0 = gdf.geometry.iloc[0].centroid
    c1 = out.geometry.iloc[0].centroid
    assert float(_dist_m(c0.x, c0.y, c1.x, c1.y)) > 100.0


def test_to_wgs84_frame_wgs84_is_plain_reprojection() -> None:
    gdf = gpd.GeoDataFrame(geometry=[Point(116.397, 39.909)], crs=4326).to_crs(32650)
    out = to_wgs84_frame(gdf, coord_system="wgs84")
    assert out is not gdf and out.crs.to_epsg() == 4326 and gdf.crs.to_epsg() == 32650
    assert out.geometry.iloc[0].x == pytest.approx(116.397, abs=1e-9)
    assert out.geometry.iloc[0].y == pytest.approx(39.909, abs=1e-9)
    same = gpd.GeoDataFrame(geometry=[Point(116.397, 39.909)], crs=4326)
    copy = to_wgs84_frame(same, coord_system="wgs84")
    assert copy is not same
    assert copy.geometry.iloc[0].equals(same.geometry.iloc[0])


def test_to_wgs84_frame_rejects_projected_chinese_system() -> None:
    gdf = gpd.GeoDataFrame(geometry=[Point(116.397, 39.909)], crs=4326).to_crs(32650)
    with pytest.raises(CRSError) as exc:
        to_wgs84_frame(gdf, coord_system="gcj02")
    msg = str(exc.value)
    assert "longitude/latitude" in msg and "EPSG:4326" in msg


def test_to_wgs84_frame_rejects_crsless_metres() -> None:
    gdf = gpd.GeoDataFrame(geometry=[Point(450000.0, 4420000.0)])
    with pytest.raises(CRSError):
        to_wgs84_frame(gdf, coord_system="bd09")


# --- UTM --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [
        (116.397, 39.909, 32650),  # Beijing
        (121.47, 31.23, 32651),  # Shanghai
        (87.62, 43.83, 32645),  # Urumqi
        (-180.0, 10.0, 32601),
        (180.0, 10.0, 32660),
        (24.94, 60.17, 32635),  # Helsinki
        (151.21, -33.87, 32756),  # Sydney
    ],
)
def test_utm_crs_for(lon: float, lat: float, epsg: int) -> None:
    crs = utm_crs_for(lon, lat)
    assert isinstance(crs, pyproj.CRS)
    assert crs.to_epsg() == epsg


@pytest.mark.parametrize(("lon", "lat"), [(float("nan"), 30.0), (200.0, 30.0), (100.0, 88.0)])
def test_utm_crs_for_rejects_bad_centres(lon: float, lat: float) -> None:
    with pytest.raises(CRSError):
        utm_crs_for(lon, lat)


@pytest.mark.parametrize(
    ("lons", "lat", "epsg"),
    [
        ([179.1, 179.9, -179.8, -179.2], -17.8, 32760),  # Fiji across 180: centre 179.95 E
        ([177.5, 179.9, -179.6], -17.8, 32760),  # centre 179.15 E
        ([179.9, -179.6, -178.0], 65.0, 32601),  # Chukotka side: centre 179.15 W
        ([-179.9, 179.9], 10.0, 32660),  # only two points, 0.2 degrees apart
        ([-10.0, 10.0], 45.0, 32631),  # no wrap: plain middle (0 E)
        ([-100.0, 100.0], 0.0, 32660),  # 200 degrees wide: the 160-degree arc across 180 wins
    ],
)
def test_utm_crs_for_arrays_and_antimeridian(lons: list[float], lat: float, epsg: int) -> None:
    # hand-checked zones: zone = floor((centre + 180) / 6) + 1, zone 60 for the centre 180
    assert utm_crs_for(lons, [lat] * len(lons)).to_epsg() == epsg


def test_one_utm_picker_for_networks_and_maps() -> None:
    """The network reader's and the map's CRS choice agree with utm_crs_for at 180 degrees."""
    import geopandas as gpd
    import shapely

    from geosvc.network import local_metric_crs
    from geosvc.viz._common import metric_crs

    pts = gpd.GeoDataFrame(geometry=shapely.points([179.95, -179.97], [-16.5, -16.6]),
                           crs=4326)
    assert local_metric_crs(pts).to_epsg() == 32760
    assert metric_crs(pts, "points").to_epsg() == 32760
    # east of the antimeridian only: zone 1 for both
    east = gpd.GeoDataFrame(geometry=shapely.points([-179.5, -179.0], [-16.5, -16.6]), crs=4326)
    assert local_metric_crs(east).to_epsg() == metric_crs(east, "points").to_epsg() == 32701
