"""Shared pieces of the map and the figures: escaping, categories, weights, frames and CRS.

Colours, labels and number formats are in :mod:`geosvc.viz.style` (public: QGIS uses them too).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from geosvc._errors import CRSError, InputError
from geosvc._schema import NOT_COVERED, status_col
from geosvc.standards import Profile

__all__ = [
    "NOT_COVERED",
    "as_frames",
    "coverage_rate",
    "drawable",
    "esc",
    "household_weights",
    "js_literal",
    "metric_crs",
    "pick_categories",
]


def esc(value: Any) -> str:
    """HTML-escape any value for use in markup, including inside JS template literals.

    Besides ``& < > " '`` the backtick, ``$`` and backslash become entities too, so an
    escaped string is inert wherever folium places it (innerHTML, a JS string or a
    template literal).  ``None`` and NaN give an empty string.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    out = html.escape(str(value), quote=True)
    return out.replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


def js_literal(value: Any) -> str:
    """JSON text safe to place inside an HTML ``<script>`` element.

    ``<`` becomes ``\\u003c`` (no ``</script>`` can end the element early) and the JS line
    separators are escaped; other characters stay readable (UTF-8).
    """
    out = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return out.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def pick_categories(households: pd.DataFrame, profile: Profile,
                    categories: Sequence[str] | None) -> list[str]:
    """Categories to draw: the given ones, else the profile's that have a status column."""
    if categories is not None:
        cats = list(categories)
        missing = [c for c in cats if status_col(c) not in households.columns]
        if missing:
            raise InputError(f"households have no status column for {missing}; analysed "
                             "categories are those with a 'status_<category>' column")
        return cats
    cats = [c for c in profile.category_names if status_col(c) in households.columns]
    if not cats:
        raise InputError("households carry no 'status_<category>' column of any profile "
                         f"category ({', '.join(profile.category_names)}); pass the "
                         "households of geosvc.coverage.analyse_coverage(...)")
    return cats


def household_weights(households: pd.DataFrame) -> np.ndarray:
    """Households per row as floats (missing or negative counts as 0)."""
    if "households" not in households.columns:
        return np.ones(len(households))
    w = pd.to_numeric(households["households"], errors="coerce").to_numpy(dtype=float)
    return np.where(np.isfinite(w) & (w > 0), w, 0.0)


def coverage_rate(households: pd.DataFrame, category: str) -> tuple[float, float]:
    """(share of valid households covered, households not covered) for one category."""
    status = households[status_col(category)]  # pandas compares categoricals by code
    w = household_weights(households)
    valid = (status != "invalid").to_numpy()
    total = float(w[valid].sum())
    covered = float(w[(status == "covered").to_numpy()].sum())
    rate = covered / total if total > 0 else float("nan")
    return rate, float(w[status.isin(NOT_COVERED).to_numpy()].sum())


def drawable(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Rows with a geometry to draw: neither missing nor empty (no geopandas warning)."""
    import shapely

    arr = frame.geometry.to_numpy()
    return ~(shapely.is_missing(arr) | shapely.is_empty(arr))


def metric_crs(frame: gpd.GeoDataFrame, what: str) -> pyproj.CRS:
    """The projected CRS to work in: the frame's own, or a UTM zone for lon/lat data."""
    from geosvc.crs import utm_crs_for

    if frame.crs is None:
        raise CRSError(f"{what} have no CRS; set it with gdf.set_crs(...) (e.g. EPSG:32650 "
                       "for projected metres or EPSG:4326 for lon/lat)")
    crs = pyproj.CRS.from_user_input(frame.crs)
    if not crs.is_geographic:
        return crs
    geoms = frame.geometry[drawable(frame)]
    if not len(geoms):
        raise InputError(f"{what} have no geometry to map")
    minx, miny, maxx, maxy = (float(v) for v in geoms.total_bounds)
    return utm_crs_for([minx, maxx], [miny, maxy])


def as_frames(layers: Any, what: str) -> dict[str, gpd.GeoDataFrame]:
    """A ``{category: frame}`` dict from a dict (``None`` values dropped) or one frame.

    A single frame is split by its ``category`` column.
    """
    if layers is None:
        return {}
    if isinstance(layers, gpd.GeoDataFrame):
        if "category" not in layers.columns:
            raise InputError(f"{what} given as one frame need a 'category' column; columns "
                             f"are {list(layers.columns)}")
        return {str(c): g for c, g in layers.groupby("category", sort=False)}
    if isinstance(layers, Mapping):
        out: dict[str, gpd.GeoDataFrame] = {}
        for key, frame in layers.items():
            if frame is None or len(frame) == 0:
                continue
            if not isinstance(frame, gpd.GeoDataFrame):
                raise InputError(f"{what}[{key!r}] is a {type(frame).__name__}, expected a "
                                 "GeoDataFrame")
            out[str(key)] = frame
        return out
    raise InputError(f"{what} must be a GeoDataFrame or a dict of them, not "
                     f"{type(layers).__name__}")
