"""Facilities: reading and validating service locations by category."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geosvc import diagnostics
from geosvc._errors import CRSError, InputError
from geosvc.standards import Profile

__all__ = ["facility_ids", "prepare_facilities", "read_facilities", "facilities_from_osm_pois",
           "subtype_aliases"]


def read_facilities(path: str | Path, *, layer: str | None = None,
                    coord_system: str = "wgs84", crs: Any = None,
                    xy: Sequence[str] | None = None, what: str = "facilities"
                    ) -> gpd.GeoDataFrame:
    """Read a facility layer (GeoPackage, Shapefile, GeoJSON) or a CSV/Excel table.

    See :func:`geosvc.io.read_layer` for ``layer``, ``coord_system``, ``crs`` and
    ``xy``; ``what`` names the input in messages (``candidates`` for candidate sites).
    """
    from geosvc.io import read_layer

    return read_layer(path, layer=layer, coord_system=coord_system, what=what, crs=crs,
                      xy=xy)


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


def subtype_aliases(profile: Profile) -> dict[str, str]:
    """Accepted spellings of every sub-type -> its key (keys, any case; Chinese labels).

    Examples
    --------
    >>> from geosvc.standards import load_profile
    >>> subtype_aliases(load_profile())["便利店"]
    'convenience_store'
    """
    out: dict[str, str] = {}
    for cat in profile.category_names:
        for key in profile.category(cat).subtypes:
            out[key] = key
            out[key.lower()] = key
            label = profile.subtype_label_zh(key)
            out[label] = key
    return out


def _subtypes(raw: pd.Series, cats: pd.Series, profile: Profile, source: str,
              col: str) -> np.ndarray:
    """Sub-type keys per row (aliases resolved); unknown or misfiled ones are an error."""
    text = raw.fillna("").astype(str).str.strip()
    alias = subtype_aliases(profile)
    keys = text.map(lambda v: alias.get(v, alias.get(v.lower(), None)) if v else "")
    unknown = keys.isna().to_numpy()
    if unknown.any():
        rows = np.flatnonzero(unknown)
        bad = sorted(set(text.to_numpy()[rows]))
        valid = "; ".join(
            f"{c}: " + ", ".join(f"{k} ({profile.subtype_label_zh(k)})"
                                 for k in profile.category(c).subtypes)
            for c in profile.category_names)
        raise InputError(f"{source}: unknown facility sub-type{'s' if len(bad) > 1 else ''} "
                         f"{bad[:5]} in column {col!r} (rows {rows[:5].tolist()}); valid sub-types "
                         f"of profile {profile.name!r} (key or Chinese label): {valid}")
    keys = keys.astype(str)
    of_cat = {c: set(profile.category(c).subtypes) for c in profile.category_names}
    misfiled = np.array([bool(k) and k not in of_cat.get(c, set())
                         for k, c in zip(keys.to_numpy(), cats.to_numpy(), strict=True)],
                        dtype=bool)
    if misfiled.any():
        r = int(np.flatnonzero(misfiled)[0])
        c = str(cats.iloc[r])
        raise InputError(f"{source}: row {r} has sub-type {keys.iloc[r]!r} in category {c!r}; "
                         f"{c} sub-types are {', '.join(profile.category(c).subtypes)}; fix the "
                         "category or the sub-type")
    return keys.to_numpy()


def _floor_area(out: pd.DataFrame, col: str, ids: pd.Series, source: str) -> np.ndarray:
    if col not in out.columns:
        return np.full(len(out), np.nan)
    raw = out[col]
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    for mask, what in ((np.isnan(num) & raw.notna().to_numpy(), "is not a number"),
                       (np.isinf(num), "is infinite"), (num < 0, "is negative")):
        if mask.any():
            rows = np.flatnonzero(mask)
            raise InputError(f"{source}: {col} {what} for facilities "
                             f"{ids.iloc[rows[:5]].astype(str).tolist()} (rows "
                             f"{rows[:5].tolist()}); give the floor area in m² or leave it empty")
    return num


def _facility_points(out: gpd.GeoDataFrame, ids: pd.Series, source: str) -> np.ndarray:
    """Points per facility: polygons by representative point (warned), lines refused."""
    geoms = out.geometry.to_numpy().copy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        raise InputError(f"{source}: facilities {ids[missing].astype(str).tolist()[:5]} have no "
                         "geometry; add coordinates or remove them")
    kind = shapely.get_type_id(geoms)
    single = (kind == 4) & (shapely.get_num_geometries(geoms) == 1)
    if single.any():
        geoms[single] = shapely.get_geometry(geoms[single], 0)
        kind[single] = 0
    bad = ~np.isin(kind, (0, 3, 6))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(f"{source}: facilities {ids.iloc[rows[:5]].astype(str).tolist()} are "
                         f"{geoms[rows[0]].geom_type} geometries (rows {rows[:5].tolist()}); "
                         "facilities must be points (or building polygons): give the point "
                         "layer")
    poly = np.isin(kind, (3, 6))
    if poly.any():
        geoms[poly] = shapely.point_on_surface(geoms[poly])
        diagnostics.warn("polygons_as_points", f"{source}: {int(poly.sum())} facility polygons "
                         "are used by their representative point (a point inside each polygon)",
                         source=source, rows=int(poly.sum()))
    if out.crs is not None and out.crs.is_geographic:
        xy = shapely.get_coordinates(geoms)
        outside = (np.abs(xy[:, 0]) > 180) | (np.abs(xy[:, 1]) > 90)
        if outside.any():
            rows = np.flatnonzero(outside)
            raise InputError(f"{source}: facilities {ids.iloc[rows[:5]].astype(str).tolist()} "
                             "lie outside the lon/lat range (|lon| <= 180, |lat| <= 90); fix "
                             "their coordinates (lon/lat swapped?)")
    return geoms


def facility_ids(gdf: pd.DataFrame, *, id_col: str = "facility_id",
                 source: str = "facilities") -> pd.Series:
    """The facility id rule shared by every function that takes facilities.

    The ``id_col`` column when present (no missing or repeated values), else ``F0``,
    ``F1``, ... by row position — the same ids in :func:`geosvc.coverage.analyse_coverage`
    (``nearest_<cat>_id``) and :func:`geosvc.circles.service_circles` (``facility_id``).

    Returns
    -------
    pandas.Series
        The ids (strings or the column's values), aligned with ``gdf``.
    """
    if id_col not in gdf.columns:
        return pd.Series([f"F{i}" for i in range(len(gdf))], index=gdf.index, dtype=object)
    ids = gdf[id_col]
    if ids.isna().any():
        rows = np.flatnonzero(ids.isna().to_numpy())
        raise InputError(f"{source}: facilities in rows {rows[:5].tolist()} have no "
                         f"{id_col!r}; give every facility an id")
    dup = ids.duplicated()
    if dup.any():
        raise InputError(f"{source}: duplicate facility ids {ids[dup].astype(str).tolist()[:5]}; "
                         f"make {id_col!r} unique")
    return ids


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
    otherwise silently leave a whole category uncovered); so is a sub-type the profile does
    not know (the profile's Chinese labels, e.g. 便利店, are accepted for their keys), a
    negative, infinite or non-numeric floor area, a facility without geometry and a line.
    Polygons are used by their representative point (with a warning).  ``subtype`` is
    optional (empty when absent) and ``floor_area_m2`` is NaN when unknown.  A layer with
    0 facilities is a warning, not an error.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``facility_id``, ``category``, ``subtype``, ``floor_area_m2``, ``name``
        (when present) and the point geometry.
    """
    if gdf.crs is None:
        raise CRSError(f"{source}: facilities have no CRS; set it (e.g. EPSG:4326)")
    if category_col not in gdf.columns:
        raise InputError(f"{source}: no {category_col!r} column; columns are "
                         f"{list(gdf.columns)}; name it with --facilities-columns category=NAME "
                         "(config: inputs.facilities_columns.category)")
    for key, col in (("id", id_col), ("subtype", subtype_col), ("floor_area", floor_area_col)):
        if col not in gdf.columns and col != {"id": "facility_id", "subtype": "subtype",
                                              "floor_area": "floor_area_m2"}[key]:
            raise InputError(f"{source}: no column {col!r}; columns are {list(gdf.columns)}; "
                             f"fix --facilities-columns {key}=NAME (config: "
                             f"inputs.facilities_columns.{key})")
    out = gdf.copy()
    ids = facility_ids(out, id_col=id_col, source=source)
    cats = out[category_col].astype(str).str.strip()
    valid = set(profile.category_names)
    unknown = sorted(set(cats) - valid)
    if unknown:
        rows = np.flatnonzero(~cats.isin(valid).to_numpy())[:5].tolist()
        raise InputError(
            f"{source}: unknown facility categor{'y' if len(unknown) == 1 else 'ies'} "
            f"{unknown} (rows {rows}); valid categories in profile {profile.name!r}: "
            f"{', '.join(sorted(valid))}"
        )
    geoms = _facility_points(out, ids, source)
    out = out.set_geometry(gpd.array.from_shapely(geoms, crs=out.crs))
    out["facility_id"] = ids.astype(str).to_numpy()
    out["category"] = cats.to_numpy()
    out["subtype"] = (_subtypes(out[subtype_col], cats, profile, source, subtype_col)
                      if subtype_col in out.columns else "")
    out["floor_area_m2"] = _floor_area(out, floor_area_col, ids, source)
    out.attrs["source"] = source
    out.attrs["geosvc_prepared"] = profile.name
    _warn_facility_gaps(out, profile, source)
    return out


def _warn_facility_gaps(out: gpd.GeoDataFrame, profile: Profile, source: str) -> None:
    if len(out) == 0:
        diagnostics.warn("no_facilities", f"{source}: 0 facility rows; every household will be "
                         "uncovered (check the file and layer)", source=source)
        return
    for c in profile.category_names:
        cat = profile.category(c)
        if not cat.required_subtypes:
            continue
        sel = (out["category"] == c).to_numpy()
        blank = int((sel & (out["subtype"].to_numpy() == "")).sum())
        if blank:
            diagnostics.warn("facilities_without_subtype", f"{source}: {blank} {c} facilities "
                             f"have no sub-type; {c} needs every type of "
                             f"{', '.join(cat.required_subtypes)} within reach, so they count for "
                             "none (fill the 'subtype' column)", source=source, category=c,
                             facilities=blank)


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

