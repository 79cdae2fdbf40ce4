"""Plausibility checks that need the network: warnings for valid but suspicious inputs.

Called once per coverage run after snapping.  Each condition becomes one
:func:`geosvc.diagnostics.warn` (a ``warning:`` line in the CLI, an entry in
``summary.json["warnings"]``, exit 2 under ``--strict``):

* ``no_facilities`` -- an analysed category has 0 facilities;
* ``facilities_unsnapped`` -- facilities farther than the snapping distance from any street
  (they serve nobody);
* ``no_household_near_streets`` -- valid households exist but none is within the snapping
  distance of a street ("are lon/lat swapped?" when swapping them would fit the network);
* ``unprojectable`` rows are marked ``invalid`` by :func:`mark_unprojectable`.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
from pyproj import CRS, Transformer

from geosvc import diagnostics

__all__ = ["mark_unprojectable", "warn_after_snapping", "swap_would_fit"]


def mark_unprojectable(hh: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Rows whose coordinates became non-finite in the working CRS get an ``invalid_reason``."""
    from geosvc.access import point_xy

    xy = point_xy(hh.geometry.to_numpy())
    geoms = hh.geometry.to_numpy()
    present = ~(gpd.GeoSeries(geoms).is_empty.to_numpy() | gpd.GeoSeries(geoms).isna().to_numpy())
    bad = present & ~np.isfinite(xy).all(axis=1) & (hh["invalid_reason"] == "").to_numpy()
    if not bad.any():
        return hh
    out = hh.copy()
    out.loc[bad, "invalid_reason"] = ("coordinates cannot be projected to the network CRS "
                                      f"{hh.crs.to_string() if hh.crs else ''} (outside its area)")
    return out


def swap_would_fit(xy: np.ndarray, crs: CRS, bounds: tuple[float, float, float, float],
                   *, margin_m: float = 1000.0) -> bool:
    """Would most points land inside ``bounds`` if their lon/lat were swapped?"""
    ok = np.isfinite(xy).all(axis=1)
    if not ok.any():
        return False
    to_ll = Transformer.from_crs(crs, 4326, always_xy=True)
    back = Transformer.from_crs(4326, crs, always_xy=True)
    lon, lat = to_ll.transform(xy[ok, 0], xy[ok, 1])
    lon, lat = np.asarray(lon), np.asarray(lat)
    fits = (np.abs(lon) <= 90) & (np.abs(lat) <= 180)
    if not fits.any():
        return False
    with np.errstate(all="ignore"):
        sx, sy = back.transform(lat[fits], lon[fits])
    sx, sy = np.asarray(sx), np.asarray(sy)
    minx, miny, maxx, maxy = bounds
    inside = ((sx >= minx - margin_m) & (sx <= maxx + margin_m) & (sy >= miny - margin_m)
              & (sy <= maxy + margin_m))
    return bool(inside.sum() > 0.5 * ok.sum())


def warn_after_snapping(net: object, hh: gpd.GeoDataFrame, h_ok: np.ndarray,
                        invalid: np.ndarray, fac: gpd.GeoDataFrame, f_ok: np.ndarray,
                        categories: Sequence[str], max_snap_m: float) -> None:
    """Raise the warnings listed in the module notes (``*_ok``: snapped per point)."""
    from geosvc.access import point_xy

    crs = net.crs  # type: ignore[attr-defined]
    bounds = net.bounds()  # type: ignore[attr-defined]
    src = str(fac.attrs.get("source", "facilities"))
    for c in categories:
        if not (fac["category"] == c).any():
            diagnostics.warn("no_facilities", f"{c}: 0 facilities in {src}; every household is "
                             f"uncovered for {c} (check the category column)", category=c)
    unsnapped = ~f_ok
    if len(fac) and unsnapped.any():
        ids = fac["facility_id"].to_numpy()[unsnapped][:5].astype(str).tolist()
        hint = ""
        if unsnapped.all():
            hint = (" Are lon/lat swapped?" if swap_would_fit(point_xy(
                fac.geometry.to_numpy()), crs, bounds) else
                " Do the facilities and the roads cover the same area (and coord_system)?")
        diagnostics.warn("facilities_unsnapped",
                         f"{int(unsnapped.sum())} of {len(fac)} facilities in {src} are farther "
                         f"than {max_snap_m:g} m from any street and serve nobody (e.g. {ids})."
                         + hint, facilities=int(unsnapped.sum()), ids=ids)
    valid = ~invalid
    if valid.any() and not (h_ok & valid).any():
        hsrc = str(hh.attrs.get("source", "households"))
        xy = point_xy(hh.geometry.to_numpy())[valid]
        hint = ("are lon/lat swapped? Swapping them would put the households on the network"
                if swap_would_fit(xy, crs, bounds) else
                "do the households and the roads cover the same area (and coord_system)?")
        diagnostics.warn("no_household_near_streets",
                         f"{hsrc}: none of the {int(valid.sum())} valid households is within "
                         f"{max_snap_m:g} m of a street; {hint}", households=int(valid.sum()))
