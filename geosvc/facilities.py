"""Facilities: reading and validating service locations by category."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geosvc._errors import CRSError, InputError
from geosvc.standards import Profile

__all__ = ["prepare_facilities", "read_facilities", "facilities_from_osm_pois"]


def read_facilities(path: str | Path, *, layer: str | None = None,
                    coord_system: str = "wgs84") -> gpd.GeoDataFrame:
    """Read a facility layer (GeoPackage, Shapefile, GeoJSON)."""
    from geosvc.demand import _read_layer

    return _read_layer(path, layer=layer, coord_system=coord_system, what="facilities")


def _tag_column(pois: pd.DataFrame, key: str) -> pd.Series:
    """Values of an OSM tag: its own column, else parsed from pyrosm's ``tags`` JSON."""
    if key in pois.columns:
        return pois[key].astype(str)
    if "tags" in pois.columns:
        import json

        def get(raw: object) -> str:
            if isinstance(raw, str) and raw:
                try:
                    return str(json.loads(raw).get(key, ""))
                except (ValueError, AttributeError):
                    return ""
            if isinstance(raw, dict):
                return str(raw.get(key, ""))
            return ""

        return pois["tags"].map(get)
    return pd.Series("", index=pois.index)


def prepare_facilities(
    gdf: gpd.GeoDataFrame,
    profile: Profile,
    *,
    id_col: str = "facility_id",
    category_col: str = "category",
    subtype_col: str = "subtype",
    floor_area_col: str = "floor_area_m2",
    source: str = "facilities",
) -> gpd.GeoDataFrame:
    """Validate facilities and return a new frame with standard columns.

    A category the profile does not define is an error listing the valid ones (a typo would
    otherwise silently leave a whole category uncovered).  Rows with missing geometry are
    an error naming the facility.  ``subtype`` is optional (empty when absent) and
    ``floor_area_m2`` is NaN when unknown.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``facility_id``, ``category``, ``subtype``, ``floor_area_m2``, ``name``
        (when present) and the geometry (centroid for polygons).
    """
    if gdf.crs is None:
        raise CRSError(f"{source}: facilities have no CRS; set it (e.g. EPSG:4326)")
    for col in (category_col,):
        if col not in gdf.columns:
            raise InputError(f"{source}: no {col!r} column; columns are {list(gdf.columns)}")
    out = gdf.copy()
    ids = out[id_col] if id_col in out.columns else pd.Series(
        [f"F{i}" for i in range(len(out))], index=out.index)
    dup = ids.duplicated()
    if dup.any():
        raise InputError(f"{source}: duplicate facility ids {ids[dup].astype(str).tolist()[:5]}; "
                         f"make {id_col!r} unique")
    cats = out[category_col].astype(str)
    valid = set(profile.category_names)
    unknown = sorted(set(cats) - valid)
    if unknown:
        rows = np.flatnonzero(~cats.isin(valid).to_numpy())[:5].tolist()
        raise InputError(
            f"{source}: unknown facility categor{'y' if len(unknown) == 1 else 'ies'} "
            f"{unknown} (rows {rows}); valid categories in profile {profile.name!r}: "
            f"{', '.join(sorted(valid))}"
        )
    geoms = out.geometry.to_numpy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        raise InputError(f"{source}: facilities {ids[missing].astype(str).tolist()[:5]} have no "
                         "geometry; add coordinates or remove them")
    out["facility_id"] = ids.astype(str).to_numpy()
    out["category"] = cats.to_numpy()
    out["subtype"] = (out[subtype_col].fillna("").astype(str).to_numpy()
                      if subtype_col in out.columns else "")
    out["floor_area_m2"] = (pd.to_numeric(out[floor_area_col], errors="coerce").to_numpy()
                            if floor_area_col in out.columns else np.nan)
    non_point = shapely.get_type_id(geoms) != 0
    if non_point.any():
        out.loc[non_point, out.geometry.name] = shapely.centroid(geoms[non_point])
    out.attrs["source"] = source
    out.attrs["geosvc_prepared"] = profile.name
    return out


def facilities_from_osm_pois(pois: gpd.GeoDataFrame, profile: Profile) -> gpd.GeoDataFrame:
    """Map OpenStreetMap POIs to profile categories using the profile's ``osm_tags``.

    A POI matching every (key, value) condition of one of a category's rules gets that
    category (e.g. ``social_facility=day_care`` and ``social_facility:for=senior``); the
    subtype comes from the rule's first value via the profile's ``osm_subtypes``.  The tag
    mapping lives in the profile, not in code.  Unmatched POIs are left out.
    """
    rows = []
    for cat in profile.category_names:
        c = profile.category(cat)
        for rule in c.osm_tags:
            hit = pd.Series(True, index=pois.index)
            for key, val in rule:
                col = _tag_column(pois, key)
                hit &= col == val
            value = rule[0][1]
            if hit.any():
                part = pois.loc[hit.to_numpy()].copy()
                part["category"] = cat
                part["subtype"] = str(profile.values.get(f"osm_subtypes.{value}", value))
                rows.append(part)
    if not rows:
        return gpd.GeoDataFrame({"facility_id": [], "category": [], "subtype": []},
                                geometry=[], crs=pois.crs)
    out = pd.concat(rows, ignore_index=True)
    ids = out["id"].astype(str) if "id" in out.columns else pd.Series(range(len(out))).astype(str)
    out["facility_id"] = (out["category"].str[:2].str.upper() + "-" + ids).to_numpy()
    out = out.drop_duplicates("facility_id")
    out["floor_area_m2"] = np.nan
    keep = [c for c in ("facility_id", "category", "subtype", "name", "floor_area_m2")
            if c in out.columns]
    return gpd.GeoDataFrame(out[keep], geometry=out.geometry.to_numpy(), crs=pois.crs)

