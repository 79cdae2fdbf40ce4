"""Chinese web-map coordinate systems (GCJ-02, BD-09): point transforms between datums.

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
from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt

from geosvc._errors import CRSError, InputError

__all__ = [
    "COORD_SYSTEMS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "check_system",
    "convert_lonlat",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray = npt.NDArray[np.float64]
LonLat = tuple[FloatArray, FloatArray]
ArrayLike = npt.ArrayLike


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


def check_system(name: object, role: str) -> str:
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
    src = check_system(source, "source")
    dst = check_system(target, "target")
    if src == dst:
        return _identity(lon, lat)
    return _CONVERTERS[(src, dst)](lon, lat)
