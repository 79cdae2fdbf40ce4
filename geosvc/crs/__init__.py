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

Modules: ``_datums`` (point transforms, :func:`convert_lonlat`), ``_geometries``
(geometries and frames, every vertex), ``_utm`` (:func:`utm_crs_for`).
"""

from __future__ import annotations

from geosvc.crs._datums import (
    COORD_SYSTEMS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert_lonlat,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geosvc.crs._geometries import (
    from_wgs84_geometries,
    to_wgs84_frame,
    to_wgs84_geometries,
    to_wgs84_vertices,
)
from geosvc.crs._utm import utm_crs_for

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
