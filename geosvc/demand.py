"""Households (demand): reading and validating residential points.

Every input row is kept.  Rows that cannot be analysed get an ``invalid_reason``
(missing geometry, non-numeric or negative counts, duplicate id) and leave every analysis
with status ``invalid``; they are never dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geosvc._errors import CRSError, InputError

__all__ = ["prepare_households", "read_households", "households_from_buildings"]


def read_households(path: str | Path, *, layer: str | None = None,
                    coord_system: str = "wgs84") -> gpd.GeoDataFrame:
    """Read a household layer (GeoPackage, Shapefile, GeoJSON, CSV with x/y not supported)."""
    return _read_layer(path, layer=layer, coord_system=coord_system, what="households")


def _read_layer(path: str | Path, *, layer: str | None, coord_system: str,
                what: str) -> gpd.GeoDataFrame:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: {what} file not found; check the path")
    try:
        gdf = gpd.read_file(p, layer=layer)
    except Exception as exc:
        raise InputError(f"{p}: cannot read the {what} layer"
                         + (f" {layer!r}" if layer else "") + f" ({exc})") from exc
    if gdf.crs is None:
        raise CRSError(f"{p}: the {what} layer has no CRS; set it (e.g. EPSG:4326)")
    if coord_system != "wgs84":
        from geosvc.crs import to_wgs84_frame

        gdf = to_wgs84_frame(gdf, coord_system=coord_system)
    gdf.attrs["source"] = str(p)
    return gdf


def _numeric(frame: pd.DataFrame, col: str, reason: np.ndarray, label: str,
             required: bool) -> np.ndarray:
    raw = frame[col]
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad_type = np.isnan(num) & (raw.notna().to_numpy() | required)
    _add_reason(reason, bad_type, f"{label} is not a number")
    _add_reason(reason, num < 0, f"{label} is negative")
    return num


def _add_reason(reason: np.ndarray, mask: np.ndarray, text: str) -> None:
    sel = mask & (reason == "")
    reason[sel] = text
    both = mask & (reason != "") & (reason != text)
    if both.any():
        reason[both] = np.char.add(np.char.add(reason[both].astype(str), "; "), text)


def prepare_households(
    gdf: gpd.GeoDataFrame,
    *,
    id_col: str | None = None,
    households_col: str | None = "households",
    persons_col: str | None = "persons",
    elderly_col: str | None = "elderly",
    source: str = "households",
) -> gpd.GeoDataFrame:
    """Validate household points and return a new frame with the standard columns.

    Parameters
    ----------
    gdf
        Residential points (or polygons: their centroid is used) with a CRS.
    id_col
        Column of unique ids; default the index.  Repeated ids after the first become
        ``invalid`` ("duplicate id").
    households_col
        Household count per row; ``None`` counts one household per row.
    persons_col, elderly_col
        Optional counts of persons and of elderly (60+) persons.
    source
        Name used in error messages (file name).

    Returns
    -------
    geopandas.GeoDataFrame
        The input columns plus ``hh_id``, ``households``, ``persons``, ``elderly`` (float,
        NaN when unknown) and ``invalid_reason`` ("" for valid rows), same row order.
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(f"{source}: expected a GeoDataFrame of household points")
    if gdf.crs is None:
        raise CRSError(f"{source}: households have no CRS; set it (e.g. EPSG:4326)")
    cols = list(gdf.columns)
    for name, col in (("households", households_col), ("persons", persons_col),
                      ("elderly", elderly_col)):
        if col is not None and col not in gdf.columns and name == "households":
            raise InputError(
                f"{source}: no column {col!r} with household counts; columns are {cols}. "
                "Name the right column (households_col=...) or pass households_col=None "
                "to count one household per point"
            )
    if id_col is not None and id_col not in gdf.columns:
        raise InputError(f"{source}: no id column {id_col!r}; columns are {cols}")
    out = gdf.copy()
    n = len(out)
    reason = np.full(n, "", dtype=object)
    geoms = out.geometry.to_numpy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    xy = np.full((n, 2), np.nan)
    if (~missing).any():
        xy[~missing] = shapely.get_coordinates(shapely.centroid(geoms[~missing]))[:, :2]
    _add_reason(reason, missing | ~np.isfinite(xy).all(axis=1), "missing or empty geometry")
    if households_col is None:
        hh = np.ones(n)
    else:
        hh = _numeric(out, households_col, reason, households_col, required=True)
    persons = (_numeric(out, persons_col, reason, persons_col, required=False)
               if persons_col is not None and persons_col in out.columns else np.full(n, np.nan))
    elderly = (_numeric(out, elderly_col, reason, elderly_col, required=False)
               if elderly_col is not None and elderly_col in out.columns else np.full(n, np.nan))
    ids: Any = out[id_col] if id_col is not None else pd.Series(out.index, index=out.index)
    dup = ids.duplicated(keep="first").to_numpy() & ids.notna().to_numpy()
    _add_reason(reason, dup, "duplicate id")
    _add_reason(reason, ids.isna().to_numpy(), "missing id")
    out["hh_id"] = ids.to_numpy()
    out["households"] = hh
    out["persons"] = persons
    out["elderly"] = elderly
    out["invalid_reason"] = reason.astype(str)
    out.attrs["source"] = source
    return out


def households_from_buildings(
    buildings: gpd.GeoDataFrame,
    *,
    floor_area_per_household_m2: float = 80.0,
    persons_per_household: float = 2.6,
    elderly_share: float = 0.2,
    default_levels: float = 3.0,
    residential_tags: tuple[str, ...] = ("apartments", "residential", "house", "detached",
                                        "terrace", "dormitory", "semidetached_house", "yes"),
) -> gpd.GeoDataFrame:
    """Estimate households from building footprints (e.g. OpenStreetMap buildings).

    households = footprint area x levels / ``floor_area_per_household_m2`` (at least 1),
    for buildings whose ``building`` tag is residential (``yes`` counts: most OSM buildings
    carry no more detail).  ``levels`` come from ``building:levels`` when numeric, else
    ``default_levels``.  Persons and elderly use the given ratios.  The footprint must be
    in a projected CRS (area in m²).

    Returns
    -------
    geopandas.GeoDataFrame
        Points (centroids) with ``building_id``, ``households``, ``persons``, ``elderly``,
        ``levels``, ``footprint_m2``.
    """
    if buildings.crs is None or not buildings.crs.is_projected:
        raise CRSError("buildings must be in a projected CRS to measure footprint areas in m²")
    tag = buildings.get("building", pd.Series("yes", index=buildings.index)).astype(str)
    res = buildings.loc[tag.isin(residential_tags).to_numpy()]
    res = res.loc[res.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()]
    area = res.geometry.area.to_numpy()
    levels = pd.to_numeric(res.get("building:levels", pd.Series(np.nan, index=res.index)),
                           errors="coerce").to_numpy(dtype=np.float64)
    levels = np.where(np.isfinite(levels) & (levels > 0), levels, default_levels)
    hh = np.maximum(1.0, np.round(area * levels / floor_area_per_household_m2))
    persons = np.round(hh * persons_per_household)
    elderly = np.round(persons * elderly_share)
    ids = res["id"].to_numpy() if "id" in res.columns else np.arange(len(res))
    return gpd.GeoDataFrame(
        {"building_id": ids, "households": hh, "persons": persons, "elderly": elderly,
         "levels": levels, "footprint_m2": area},
        geometry=res.geometry.representative_point().to_numpy(), crs=res.crs,
    ).reset_index(drop=True)
