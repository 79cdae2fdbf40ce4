"""Chinese web-map coordinate systems (GCJ-02, BD-09) and CRS helpers.

Most Chinese map providers publish coordinates that are *not* WGS-84:

``gcj02``
    The national "Mars" datum (GCJ-02) used by AutoNavi/Amap, Tencent and the
    Chinese editions of Google/Apple maps.  It is WGS-84 longitude/latitude plus
    a deterministic, spatially varying offset of a few hundred metres.
``bd09``
    Baidu's system: GCJ-02 followed by a further small rotation and shift.
``wgs84``
    Plain WGS-84 longitude/latitude (EPSG:4326), as used by GPS and
    OpenStreetMap.

All transforms here use the public formulas (Krasovsky ellipsoid, the
``transformLat``/``transformLon`` polynomial-plus-sine series, and Baidu's
``x_pi`` rotation).  By convention, points outside China's bounding box
(longitude 72.004-137.8347, latitude 0.8293-55.8271) are returned unchanged by
every transform; the bounding-box test is made on the *input* coordinates of
each function.

Every coordinate function is vectorised with numpy: it accepts scalars or
array-likes of longitude and latitude (broadcast against each other), and
returns a ``(lon, lat)`` tuple of float64 arrays with the broadcast shape.
Scalar inputs therefore give 0-d arrays (use ``float(x)`` or ``x.item()`` to
get a Python float).  NaN inputs produce NaN outputs.

The GCJ-02 to WGS-84 direction has no closed form; it is solved by a
vectorised fixed-point iteration that stops once the largest coordinate change
is below 1e-9 degrees (about 0.1 mm) or after 30 iterations; its round-trip
error is below a millimetre.  BD-09 to GCJ-02 uses the usual closed-form
(analytic) inverse, which is approximate: its round-trip error is typically
about 5 cm and at most about 0.25 m inside the bounding box.

Points within a few hundred metres of the bounding-box edges may be moved
across the edge by a forward transform; the inverse then treats them as
outside China and leaves them unchanged, so round trips are only exact away
from the edges (which are far from any Chinese city).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import numpy as np
import numpy.typing as npt
import pyproj
import shapely

from geosvc._errors import CRSError, InputError

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "COORD_SYSTEMS",
    "convert_lonlat",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "to_wgs84_geometries",
    "from_wgs84_geometries",
    "to_wgs84_frame",
    "utm_crs_for",
    "to_wgs84_vertices",
]

FloatArray = npt.NDArray[np.float64]
LonLat = tuple[FloatArray, FloatArray]
ArrayLike = npt.ArrayLike
_G = TypeVar("_G")

#: Names of the coordinate systems understood by :func:`convert_lonlat`.
COORD_SYSTEMS: Final[tuple[str, ...]] = ("wgs84", "gcj02", "bd09")

# Krasovsky 1940 ellipsoid, as used by the public GCJ-02 formula.
_A: Final = 6378245.0
_EE: Final = 0.00669342162296594323
_X_PI: Final = math.pi * 3000.0 / 180.0

# China bounding box: outside it every transform is the identity.
_LON_MIN: Final = 72.004
_LON_MAX: Final = 137.8347
_LAT_MIN: Final = 0.8293
_LAT_MAX: Final = 55.8271

_INVERSE_TOL_DEG: Final = 1e-9
_INVERSE_MAX_ITER: Final = 30


# ---------------------------------------------------------------------------
# Low-level helpers
# ---------------------------------------------------------------------------


def _as_lonlat(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Return ``lon`` and ``lat`` as broadcast float64 arrays (fresh copies).

    Parameters
    ----------
    lon, lat : array_like
        Longitudes and latitudes in degrees.

    Returns
    -------
    tuple of numpy.ndarray
        Float64 arrays with the common broadcast shape.

    Raises
    ------
    InputError
        If the values are not numeric or the shapes do not broadcast.
    """
    try:
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"longitude/latitude must be numeric: {exc}") from exc
    try:
        bx, by = np.broadcast_arrays(x, y)
    except ValueError as exc:
        raise InputError(
            f"longitude shape {x.shape} and latitude shape {y.shape} do not broadcast; "
            "pass arrays of equal length"
        ) from exc
    return np.array(bx, dtype=np.float64), np.array(by, dtype=np.float64)


def _in_china(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    """Boolean mask of points inside China's bounding box (NaN counts as outside)."""
    return (lon >= _LON_MIN) & (lon <= _LON_MAX) & (lat >= _LAT_MIN) & (lat <= _LAT_MAX)


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> LonLat:
    """GCJ-02 offset (degrees) to add to a WGS-84 point, without the China mask.

    Parameters
    ----------
    lon, lat : numpy.ndarray
        WGS-84 longitude and latitude in degrees.

    Returns
    -------
    tuple of numpy.ndarray
        ``(dlon, dlat)`` in degrees, same shape as the inputs.
    """
    x = lon - 105.0
    y = lat - 35.0
    pi = np.pi
    # Shared "x" sine terms of both series.
    common = (20.0 * np.sin(6.0 * pi * x) + 20.0 * np.sin(2.0 * pi * x)) * 2.0 / 3.0
    sqrt_abs_x = np.sqrt(np.abs(x))

    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat += common
    dlat += (20.0 * np.sin(pi * y) + 40.0 * np.sin(pi * y / 3.0)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(pi * y / 12.0) + 320.0 * np.sin(pi * y / 30.0)) * 2.0 / 3.0

    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon += common
    dlon += (20.0 * np.sin(pi * x) + 40.0 * np.sin(pi * x / 3.0)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(pi * x / 12.0) + 300.0 * np.sin(pi * x / 30.0)) * 2.0 / 3.0

    rad_lat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * pi)
    return dlon, dlat


# ---------------------------------------------------------------------------
# Point transforms
# ---------------------------------------------------------------------------


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert WGS-84 longitude/latitude to GCJ-02.

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 longitude and latitude in degrees (scalars or arrays that
        broadcast against each other).

    Returns
    -------
    lon, lat : numpy.ndarray
        GCJ-02 coordinates as float64 arrays of the broadcast shape (0-d for
        scalar input).  Points outside China's bounding box and NaN inputs are
        returned unchanged.
    """
    x, y = _as_lonlat(lon, lat)
    inside = _in_china(x, y)
    dlon, dlat = _gcj_offset(x, y)
    return np.where(inside, x + dlon, x), np.where(inside, y + dlat, y)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert GCJ-02 longitude/latitude to WGS-84 by fixed-point iteration.

    Solves ``wgs + offset(wgs) = gcj`` with the update
    ``wgs <- gcj - offset(wgs)`` applied to all points at once, stopping when
    the largest change of any coordinate is below 1e-9 degrees or after 30
    iterations (in practice it converges in a handful).

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitude and latitude in degrees.

    Returns
    -------
    lon, lat : numpy.ndarray
        WGS-84 coordinates as float64 arrays of the broadcast shape (0-d for
        scalar input).  Points outside China's bounding box (tested on the
        GCJ-02 input) and NaN inputs are returned unchanged.
    """
    gx, gy = _as_lonlat(lon, lat)
    inside = _in_china(gx, gy)
    if not inside.any():
        return gx, gy
    tx, ty = gx[inside], gy[inside]
    wx, wy = tx.copy(), ty.copy()
    for _ in range(_INVERSE_MAX_ITER):
        dlon, dlat = _gcj_offset(wx, wy)
        nx, ny = tx - dlon, ty - dlat
        change = max(float(np.max(np.abs(nx - wx))), float(np.max(np.abs(ny - wy))))
        wx, wy = nx, ny
        if change < _INVERSE_TOL_DEG:
            break
    out_x, out_y = gx.copy(), gy.copy()
    out_x[inside] = wx
    out_y[inside] = wy
    return out_x, out_y


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert GCJ-02 longitude/latitude to Baidu BD-09.

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitude and latitude in degrees.

    Returns
    -------
    lon, lat : numpy.ndarray
        BD-09 coordinates as float64 arrays of the broadcast shape (0-d for
        scalar input).  Points outside China's bounding box and NaN inputs are
        returned unchanged.
    """
    x, y = _as_lonlat(lon, lat)
    inside = _in_china(x, y)
    z = np.hypot(x, y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    bx = z * np.cos(theta) + 0.0065
    by = z * np.sin(theta) + 0.006
    return np.where(inside, bx, x), np.where(inside, by, y)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert Baidu BD-09 longitude/latitude to GCJ-02 (analytic inverse).

    Uses the standard closed-form approximation; a GCJ-02 -> BD-09 -> GCJ-02
    round trip is typically off by about 5 cm and by at most about 0.25 m.

    Parameters
    ----------
    lon, lat : array_like
        BD-09 longitude and latitude in degrees.

    Returns
    -------
    lon, lat : numpy.ndarray
        GCJ-02 coordinates as float64 arrays of the broadcast shape (0-d for
        scalar input).  Points outside China's bounding box (tested on the
        BD-09 input) and NaN inputs are returned unchanged.
    """
    bx, by = _as_lonlat(lon, lat)
    inside = _in_china(bx, by)
    x = bx - 0.0065
    y = by - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return np.where(inside, z * np.cos(theta), bx), np.where(inside, z * np.sin(theta), by)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert WGS-84 longitude/latitude to Baidu BD-09 (via GCJ-02).

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 longitude and latitude in degrees.

    Returns
    -------
    lon, lat : numpy.ndarray
        BD-09 coordinates as float64 arrays of the broadcast shape (0-d for
        scalar input).  Points outside China's bounding box and NaN inputs are
        returned unchanged.
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert Baidu BD-09 longitude/latitude to WGS-84 (via GCJ-02).

    Parameters
    ----------
    lon, lat : array_like
        BD-09 longitude and latitude in degrees.

    Returns
    -------
    lon, lat : numpy.ndarray
        WGS-84 coordinates as float64 arrays of the broadcast shape (0-d for
        scalar input).  Points outside China's bounding box and NaN inputs are
        returned unchanged.
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def _identity(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Return the inputs as float64 arrays (the "same system" conversion)."""
    return _as_lonlat(lon, lat)


_CONVERTERS: Final[dict[tuple[str, str], Callable[[ArrayLike, ArrayLike], LonLat]]] = {
    ("wgs84", "gcj02"): wgs84_to_gcj02,
    ("gcj02", "wgs84"): gcj02_to_wgs84,
    ("gcj02", "bd09"): gcj02_to_bd09,
    ("bd09", "gcj02"): bd09_to_gcj02,
    ("wgs84", "bd09"): wgs84_to_bd09,
    ("bd09", "wgs84"): bd09_to_wgs84,
}


def _check_system(name: object, role: str) -> str:
    """Validate and normalise a coordinate-system name.

    Parameters
    ----------
    name : object
        The user-supplied name (case-insensitive, surrounding blanks ignored).
    role : str
        Which argument it came from, for the error message.

    Returns
    -------
    str
        The canonical lower-case name, one of :data:`COORD_SYSTEMS`.

    Raises
    ------
    CRSError
        If the name is not one of :data:`COORD_SYSTEMS`.
    """
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in COORD_SYSTEMS:
        raise CRSError(
            f"unknown {role} coordinate system {name!r}; "
            f"valid names are {', '.join(repr(s) for s in COORD_SYSTEMS)}"
        )
    assert key is not None
    return key


def convert_lonlat(lon: ArrayLike, lat: ArrayLike, *, source: str, target: str) -> LonLat:
    """Convert longitude/latitude between WGS-84, GCJ-02 and BD-09.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees in the ``source`` system.
    source, target : str
        One of :data:`COORD_SYSTEMS` (``"wgs84"``, ``"gcj02"``, ``"bd09"``;
        case-insensitive).

    Returns
    -------
    lon, lat : numpy.ndarray
        Float64 arrays of the broadcast shape (0-d for scalar input) in the
        ``target`` system.  If ``source == target`` the inputs are returned
        as new float64 arrays.

    Raises
    ------
    CRSError
        If ``source`` or ``target`` is not a known system name.
    """
    src = _check_system(source, "source")
    dst = _check_system(target, "target")
    if src == dst:
        return _identity(lon, lat)
    return _CONVERTERS[(src, dst)](lon, lat)


# ---------------------------------------------------------------------------
# Geometries and frames
# ---------------------------------------------------------------------------


def _coords_transformer(
    func: Callable[[ArrayLike, ArrayLike], LonLat],
) -> Callable[[FloatArray], FloatArray]:
    """Wrap a ``(lon, lat) -> (lon, lat)`` function for :func:`shapely.transform`.

    The returned callable maps an ``(N, 2)`` or ``(N, 3)`` coordinate array to
    a new array of the same shape; a third (Z) column is copied unchanged.
    """

    def _apply(coords: FloatArray) -> FloatArray:
        out = np.array(coords, dtype=np.float64, copy=True)
        lon, lat = func(out[:, 0], out[:, 1])
        out[:, 0] = lon
        out[:, 1] = lat
        return out

    return _apply


def _transform_geometries(geoms: Any, func: Callable[[ArrayLike, ArrayLike], LonLat]) -> Any:
    """Apply a lon/lat conversion to every vertex of ``geoms`` (Z kept).

    Parameters
    ----------
    geoms : array_like of shapely.Geometry or None, or geopandas.GeoSeries
        Geometries in lon/lat.
    func : callable
        Vectorised ``(lon, lat) -> (lon, lat)`` conversion.

    Returns
    -------
    numpy.ndarray or geopandas.GeoSeries
        Converted geometries, as a GeoSeries (same index, name and CRS) if a
        GeoSeries was passed, otherwise an object ndarray of the input shape.
    """
    series_index = None
    series_name = None
    series_crs = None
    is_series = _is_geoseries(geoms)
    if is_series:
        series_index = geoms.index
        series_name = geoms.name
        series_crs = geoms.crs
        arr = np.asarray(geoms.values, dtype=object)
    else:
        arr = np.asarray(geoms, dtype=object)
    transformer = _coords_transformer(func)
    has_z = np.asarray(shapely.has_z(arr), dtype=bool)
    out = np.asarray(shapely.transform(arr, transformer, include_z=False), dtype=object)
    if has_z.any():
        out[has_z] = shapely.transform(arr[has_z], transformer, include_z=True)
    if is_series:
        import geopandas as gpd

        return gpd.GeoSeries(out, index=series_index, name=series_name, crs=series_crs)
    return out


def _is_geoseries(obj: object) -> bool:
    """True if ``obj`` is a GeoSeries, without importing geopandas needlessly."""
    gpd_mod = sys.modules.get("geopandas")
    return gpd_mod is not None and isinstance(obj, gpd_mod.GeoSeries)


def _require_lonlat_crs(crs: Any, coord_system: str, what: str) -> None:
    """Raise if a projected CRS is paired with a GCJ-02/BD-09 claim.

    Parameters
    ----------
    crs : pyproj.CRS or None
        CRS attached to the data.
    coord_system : str
        Canonical coordinate-system name.
    what : str
        Description of the data for the message.

    Raises
    ------
    CRSError
        If ``coord_system`` is ``"gcj02"``/``"bd09"`` and ``crs`` is not geographic.
    """
    if coord_system == "wgs84" or crs is None:
        return
    if not pyproj.CRS.from_user_input(crs).is_geographic:
        raise CRSError(
            f"{what} has projected CRS {crs.to_string()!r} but coord_system={coord_system!r}; "
            "GCJ-02 and BD-09 coordinates are longitude/latitude in degrees, so they cannot be "
            "in a projected CRS. Load the data with its raw lon/lat columns and set CRS "
            "EPSG:4326 (or none) before converting, or use coord_system='wgs84' if the "
            "projected data is already true WGS-84-based"
        )


def to_wgs84_geometries(geoms: _G, *, coord_system: str) -> _G:
    """Convert lon/lat geometries from a named system to WGS-84.

    Parameters
    ----------
    geoms : numpy.ndarray of shapely.Geometry, or geopandas.GeoSeries
        Geometries whose coordinates are longitude/latitude in
        ``coord_system``.  Points, lines, polygons and multi-/collection types
        are supported; ``None`` and empty geometries pass through; Z values
        are kept unchanged.
    coord_system : str
        One of :data:`COORD_SYSTEMS`.

    Returns
    -------
    numpy.ndarray or geopandas.GeoSeries
        New geometries in WGS-84 lon/lat.  A GeoSeries input yields a
        GeoSeries with the same index and name (and its CRS, if any); other
        inputs yield an object ndarray of the same shape.

    Raises
    ------
    CRSError
        If ``coord_system`` is unknown, or a GeoSeries with a projected CRS is
        passed with ``coord_system`` ``"gcj02"`` or ``"bd09"``.
    """
    system = _check_system(coord_system, "coord_system")
    if _is_geoseries(geoms):
        _require_lonlat_crs(getattr(geoms, "crs", None), system, "GeoSeries")
    return _transform_geometries(  # type: ignore[no-any-return]
        geoms, lambda x, y: convert_lonlat(x, y, source=system, target="wgs84")
    )


def from_wgs84_geometries(geoms: _G, *, coord_system: str) -> _G:
    """Convert WGS-84 lon/lat geometries to a named system.

    Parameters
    ----------
    geoms : numpy.ndarray of shapely.Geometry, or geopandas.GeoSeries
        Geometries in WGS-84 longitude/latitude.  ``None`` and empty
        geometries pass through; Z values are kept unchanged.
    coord_system : str
        One of :data:`COORD_SYSTEMS`.

    Returns
    -------
    numpy.ndarray or geopandas.GeoSeries
        New geometries in ``coord_system`` lon/lat.  A GeoSeries input yields
        a GeoSeries with the same index, name and CRS label; other inputs
        yield an object ndarray of the same shape.

    Raises
    ------
    CRSError
        If ``coord_system`` is unknown, or a GeoSeries with a projected CRS is
        passed with ``coord_system`` ``"gcj02"`` or ``"bd09"``.
    """
    system = _check_system(coord_system, "coord_system")
    if _is_geoseries(geoms):
        _require_lonlat_crs(getattr(geoms, "crs", None), system, "GeoSeries")
    return _transform_geometries(  # type: ignore[no-any-return]
        geoms, lambda x, y: convert_lonlat(x, y, source="wgs84", target=system)
    )


def to_wgs84_frame(gdf: gpd.GeoDataFrame, *, coord_system: str) -> gpd.GeoDataFrame:
    """Return a new GeoDataFrame in EPSG:4326 converted from a named system.

    Only the active geometry column is converted; the input is never mutated.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Input data.  For ``"gcj02"``/``"bd09"`` it must be in a geographic
        CRS (normally EPSG:4326, which is how GCJ-02/BD-09 data is usually
        labelled) or have no CRS, in which case its coordinates are assumed
        to be longitude/latitude.  For ``"wgs84"`` any CRS is accepted and
        reprojected.
    coord_system : str
        One of :data:`COORD_SYSTEMS`: the system the coordinates are really in.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with WGS-84 geometries and CRS EPSG:4326.

    Raises
    ------
    CRSError
        If ``coord_system`` is unknown; if it is ``"gcj02"``/``"bd09"`` and
        ``gdf`` has a projected CRS; or if ``gdf`` has no CRS and its bounds are
        not valid longitude/latitude.
    """
    system = _check_system(coord_system, "coord_system")
    if gdf.crs is None:
        if len(gdf) and not gdf.geometry.is_empty.all():
            minx, miny, maxx, maxy = (float(v) for v in gdf.geometry.total_bounds)
            if not (-180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0):
                raise CRSError(
                    "GeoDataFrame has no CRS and its bounds "
                    f"({minx:.6g}, {miny:.6g}, {maxx:.6g}, {maxy:.6g}) are not longitude/"
                    "latitude degrees; set the correct CRS with gdf.set_crs(...) first"
                )
        base = gdf.set_crs(4326)
    elif system == "wgs84":
        return gdf.to_crs(4326)
    else:
        _require_lonlat_crs(gdf.crs, system, "GeoDataFrame")
        base = gdf.to_crs(4326) if not gdf.crs.equals(pyproj.CRS.from_epsg(4326)) else gdf.copy()
    if system == "wgs84":
        return base
    geom_name = base.geometry.name
    converted = to_wgs84_geometries(
        np.asarray(base.geometry.values, dtype=object), coord_system=system
    )
    out = base.copy()
    out[geom_name] = converted
    return out.set_geometry(geom_name, crs=4326)


# ---------------------------------------------------------------------------
# UTM
# ---------------------------------------------------------------------------


def utm_crs_for(lon: npt.ArrayLike, lat: npt.ArrayLike) -> pyproj.CRS:
    """Return the WGS-84 UTM zone CRS of a study area: the one UTM picker of geosvc.

    Uses the regular 6-degree zones (no Norway/Svalbard exceptions):
    EPSG:326xx north of the equator (``lat >= 0``) and EPSG:327xx south.  Given arrays, the
    centre is the middle of the shortest longitude interval holding every point, so an area
    that straddles the antimeridian (longitudes near +180 and -180) gets zone 60 or 1, not
    a zone near Greenwich; the latitude centre is the middle of the latitude range.

    Parameters
    ----------
    lon, lat : float or array-like
        WGS-84 longitudes and latitudes in degrees: the centre, or the points of the area
        (NaN entries are ignored).

    Returns
    -------
    pyproj.CRS
        The UTM zone CRS, e.g. EPSG:32650 for Beijing.

    Raises
    ------
    CRSError
        If the point is not finite, out of lon/lat range, or outside UTM's
        latitude limits (80 S to 84 N).
    """
    try:
        xs = np.atleast_1d(np.asarray(lon, dtype=np.float64)).ravel()
        ys = np.atleast_1d(np.asarray(lat, dtype=np.float64)).ravel()
    except (TypeError, ValueError) as exc:
        raise CRSError(f"UTM centre must be numeric lon/lat, got {lon!r}, {lat!r}") from exc
    ok = np.isfinite(xs) & np.isfinite(ys) if len(xs) == len(ys) else np.zeros(0, bool)
    if not ok.any() or not (np.abs(xs[ok]) <= 180.0).all():
        raise CRSError(
            f"UTM centre ({lon!r}, {lat!r}) is not a valid longitude/latitude in degrees; "
            "reproject the data to EPSG:4326 before choosing a UTM zone"
        )
    x = _centre_longitude(xs[ok])
    y = (float(ys[ok].min()) + float(ys[ok].max())) / 2.0
    if not -80.0 <= y <= 84.0:
        raise CRSError(
            f"UTM is defined only between 80 S and 84 N, centre latitude is {y}; "
            "use a polar stereographic CRS instead"
        )
    zone = min(int(math.floor((x + 180.0) / 6.0)) + 1, 60)
    return pyproj.CRS.from_epsg((32600 if y >= 0.0 else 32700) + zone)


def _centre_longitude(lon: np.ndarray) -> float:
    """Middle of the shortest arc holding every longitude, in [-180, 180]."""
    lo, hi = float(lon.min()), float(lon.max())
    if hi - lo <= 180.0:
        return (lo + hi) / 2.0
    u = np.unique(lon)
    gaps = np.diff(np.r_[u, u[0] + 360.0])  # the gap after each longitude, wrapping round
    k = int(np.argmax(gaps))
    if k == len(u) - 1:  # the widest gap is the one across the antimeridian: no wrap
        return (lo + hi) / 2.0
    start, end = float(u[k + 1]), float(u[k]) + 360.0  # the points run from start east to end
    mid = (start + end) / 2.0
    return mid - 360.0 if mid > 180.0 else mid


# ---------------------------------------------------------------------------
# Line layers (junction-safe)
# ---------------------------------------------------------------------------


def to_wgs84_vertices(geoms: Any, *, coord_system: str) -> Any:
    """Convert lon/lat line geometries to WGS-84 vertex by vertex, junction-safe.

    Every distinct input vertex is converted exactly once and written back to every place it
    occurs, so lines that share a vertex before the conversion share it afterwards (bit for
    bit), whatever the batch, order or iteration count.  Junctions that are not vertices
    (a line ending on another line's interior) are not preserved by any non-linear datum
    shift; insert them as vertices first (the road readers do).

    Parameters
    ----------
    geoms : numpy.ndarray of shapely.Geometry
        Geometries in ``coord_system`` longitude/latitude (2D).
    coord_system : str
        One of :data:`COORD_SYSTEMS`.

    Returns
    -------
    numpy.ndarray
        New geometries in WGS-84 lon/lat.
    """
    system = _check_system(coord_system, "coord_system")
    arr = np.asarray(geoms, dtype=object)
    if system == "wgs84" or len(arr) == 0:
        return arr.copy()
    coords = shapely.get_coordinates(arr)
    uniq, inverse = np.unique(coords, axis=0, return_inverse=True)
    lon, lat = convert_lonlat(uniq[:, 0], uniq[:, 1], source=system, target="wgs84")
    new = np.column_stack([lon, lat])[inverse.reshape(-1)]
    return shapely.set_coordinates(shapely.force_2d(arr), new)
