"""The one UTM picker of geosvc: the WGS-84 UTM zone of a study area (antimeridian-safe)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pyproj

from geosvc._errors import CRSError

__all__ = ["utm_crs_for"]


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
