"""Chinese web-map coordinate systems (GCJ-02, BD-09) and CRS helpers.

``gcj02`` (AutoNavi/Amap, Tencent), ``bd09`` (Baidu) and ``wgs84`` longitude/latitude:
the formulas, the China bounding-box convention, the vectorised behaviour and the round-trip
accuracy of every transform are described in :mod:`geosvc.crs._datums`.

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
