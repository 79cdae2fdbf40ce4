"""Per-area results: households by status, coverage rates and floor area against the norm."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from geosvc import _schema as schema
from geosvc._errors import InputError
from geosvc._schema import NOT_COVERED, STATUSES
from geosvc.access import point_xy
from geosvc.standards import Category, Profile

__all__ = ["aggregate_areas"]


def aggregate_areas(
    households: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    profile: Profile,
    categories: Sequence[str],
    *,
    level: str = "area",
) -> gpd.GeoDataFrame:
    """Per-area counts, shares, radius-method gaps and floor area against the norm.

    Households and facilities fall in the area polygon that contains them (households
    outside every area are reported in no row; their count is in ``summary``).  Floor area
    per 100 households uses the profile norm, or the old-area norm where ``old_area`` is
    true.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per area (geometry kept) with ``households``, ``persons``, ``elderly`` and
        per category ``<cat>_households_<status>``, ``<cat>_coverage_rate``,
        ``<cat>_elderly_uncovered``, ``<cat>_radius_only_households``,
        ``<cat>_floor_area_m2``, ``<cat>_floor_area_per_100hh_m2``,
        ``<cat>_norm_per_100hh_m2``, ``<cat>_shortfall_m2`` and ``<cat>_access_index_mean``
        (when ``access_index_<cat>`` exists).
    """
    if "area_id" not in areas.columns:
        raise InputError(f"{level} areas need an 'area_id' column; columns are "
                         f"{list(areas.columns)}")
    area_of_hh = _area_of(households, areas)
    area_of_fac = _area_of(facilities, areas)
    def nonneg(col: str) -> np.ndarray:
        v = households[col].to_numpy(dtype=np.float64)
        return np.where(v >= 0, v, 0.0)

    hh = pd.DataFrame({"area": area_of_hh.to_numpy(), "households": nonneg("households"),
                       "persons": nonneg("persons"), "elderly": nonneg("elderly")})
    res = pd.DataFrame(index=pd.Index(areas["area_id"].to_numpy(), name="area"))
    base = hh.groupby("area")[["households", "persons", "elderly"]].sum()
    res = res.join(base).fillna(0.0)
    res["rows"] = hh.groupby("area").size().reindex(res.index).fillna(0).astype(int)
    old = areas["old_area"].astype(bool).to_numpy() if "old_area" in areas.columns else \
        np.zeros(len(areas), dtype=bool)
    for name in categories:
        _area_category(res, hh, households, facilities, area_of_fac, profile.category(name), old)
    out = areas[[c for c in areas.columns if c != areas.geometry.name]].copy()
    out = out.join(res, on="area_id")
    out["level"] = level
    return gpd.GeoDataFrame(out, geometry=areas.geometry.to_numpy(), crs=areas.crs)


def _area_category(res: pd.DataFrame, hh: pd.DataFrame, households: gpd.GeoDataFrame,
                   facilities: gpd.GeoDataFrame, area_of_fac: pd.Series, cat: Category,
                   old: np.ndarray) -> None:
    """Add one category's columns to the per-area table ``res`` (in place)."""
    name = cat.name

    def acol(measure: str) -> str:
        return schema.area_col(name, measure)

    st = households[schema.status_col(name)].to_numpy()
    for s in STATUSES:
        w = hh["households"].where(st == s, 0.0)
        res[acol(f"households_{s}")] = w.groupby(hh["area"]).sum().reindex(
            res.index).fillna(0.0)
    res[acol("coverage_rate")] = np.where(
        res["households"] > 0, res[acol("households_covered")] / res["households"].where(
            res["households"] > 0, 1.0), np.nan)
    not_cov = np.isin(st, NOT_COVERED)
    res[acol("elderly_uncovered")] = hh["elderly"].where(not_cov, 0.0).groupby(
        hh["area"]).sum().reindex(res.index).fillna(0.0)
    ro = households[schema.radius_only_col(name)].to_numpy()
    res[acol("radius_only_households")] = hh["households"].where(ro, 0.0).groupby(
        hh["area"]).sum().reindex(res.index).fillna(0.0)
    fac_c = facilities["category"].to_numpy() == name
    floor = pd.Series(np.nan_to_num(facilities["floor_area_m2"].to_numpy(dtype=float)))
    fac_area = area_of_fac.to_numpy()
    res[acol("facilities")] = pd.Series(fac_c.astype(int)).groupby(fac_area).sum(
    ).reindex(res.index).fillna(0).astype(int)
    res[acol("floor_area_m2")] = floor.where(fac_c, 0.0).groupby(fac_area).sum(
    ).reindex(res.index).fillna(0.0)
    norm = np.where(old, cat.floor_area_per_100hh_old_area_m2, cat.floor_area_per_100hh_m2)
    hh100 = res["households"].to_numpy() / 100.0
    res[acol("floor_area_per_100hh_m2")] = np.where(
        hh100 > 0, res[acol("floor_area_m2")] / np.where(hh100 > 0, hh100, 1.0), np.nan)
    res[acol("norm_per_100hh_m2")] = norm
    res[acol("shortfall_m2")] = np.maximum(
        0.0, norm * hh100 - res[acol("floor_area_m2")].to_numpy())
    icol = schema.access_index_col(name)
    if icol in households.columns:
        w = hh["households"]
        num = (pd.Series(np.nan_to_num(households[icol].to_numpy(dtype=float))) * w).groupby(
            hh["area"]).sum()
        den = w.groupby(hh["area"]).sum()
        res[acol("access_index_mean")] = (num / den.where(den > 0)).reindex(res.index)


def _area_of(points: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> pd.Series:
    """Area id of the polygon containing each point (first match; NaN outside every area)."""
    xy = point_xy(points.geometry.to_numpy())
    ids = np.full(len(points), None, dtype=object)
    ok = np.isfinite(xy).all(axis=1)
    import shapely

    tree = shapely.STRtree(areas.geometry.to_numpy())
    p_idx, a_idx = tree.query(shapely.points(xy[ok]), predicate="intersects")
    order = np.lexsort((a_idx, p_idx))
    p_idx, a_idx = p_idx[order], a_idx[order]
    first = np.r_[True, p_idx[1:] != p_idx[:-1]] if len(p_idx) else np.array([], bool)
    rows = np.flatnonzero(ok)[p_idx[first]]
    ids[rows] = areas["area_id"].to_numpy()[a_idx[first]]
    return pd.Series(ids, index=range(len(points)))
