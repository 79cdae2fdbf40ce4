"""Geometries and GeoDataFrames from GCJ-02/BD-09 lon/lat to WGS-84 and back (every vertex)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pyproj
import shapely

from geosvc._errors import CRSError
from geosvc.crs._datums import ArrayLike, FloatArray, LonLat, check_system, convert_lonlat

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["from_wgs84_geometries", "to_wgs84_frame", "to_wgs84_geometries",
           "to_wgs84_vertices"]

_G = TypeVar("_G")


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
    return _convert_geometries(geoms, coord_system, to_wgs84=True)


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
    return _convert_geometries(geoms, coord_system, to_wgs84=False)


def _convert_geometries(geoms: _G, coord_system: str, *, to_wgs84: bool) -> _G:
    """Every vertex from ``coord_system`` to WGS-84 (``to_wgs84``) or back."""
    system = check_system(coord_system, "coord_system")
    if _is_geoseries(geoms):
        _require_lonlat_crs(getattr(geoms, "crs", None), system, "GeoSeries")
    source, target = (system, "wgs84") if to_wgs84 else ("wgs84", system)
    return _transform_geometries(  # type: ignore[no-any-return]
        geoms, lambda x, y: convert_lonlat(x, y, source=source, target=target)
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
    system = check_system(coord_system, "coord_system")
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
    system = check_system(coord_system, "coord_system")
    arr = np.asarray(geoms, dtype=object)
    if system == "wgs84" or len(arr) == 0:
        return arr.copy()
    coords = shapely.get_coordinates(arr)
    uniq, inverse = np.unique(coords, axis=0, return_inverse=True)
    lon, lat = convert_lonlat(uniq[:, 0], uniq[:, 1], source=system, target="wgs84")
    new = np.column_stack([lon, lat])[inverse.reshape(-1)]
    return shapely.set_coordinates(shapely.force_2d(arr), new)
