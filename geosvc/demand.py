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

__all__ = ["prepare_households", "read_households", "households_from_buildings",
           "households_from_raster", "rasterize_population"]


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
    if not mask.any():
        return
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
    point = ~missing & (shapely.get_type_id(geoms) == 0)
    xy[point] = shapely.get_coordinates(geoms[point])[:, :2]  # a point is its own centroid
    other = ~missing & ~point
    if other.any():
        xy[other] = shapely.get_coordinates(shapely.centroid(geoms[other]))[:, :2]
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


def rasterize_population(points: gpd.GeoDataFrame, path: str | Path, *, cell_m: float = 100.0,
                         column: str = "persons") -> Path:
    """Write a WorldPop-style GeoTIFF: persons per ``cell_m`` square cell (float32).

    ``points`` must be in a projected CRS; the raster shares it.  Used to make a raster of
    the default district for the raster workflow (nothing is downloaded).
    """
    import rasterio
    from rasterio.transform import from_origin

    if points.crs is None or not points.crs.is_projected:
        raise CRSError("rasterize_population needs points in a projected CRS (metres)")
    xy = shapely.get_coordinates(points.geometry.to_numpy())
    w = pd.to_numeric(points[column], errors="coerce").fillna(0.0).to_numpy()
    x0 = np.floor(xy[:, 0].min() / cell_m) * cell_m
    y1 = np.ceil(xy[:, 1].max() / cell_m) * cell_m + cell_m
    ncol = int(np.ceil((xy[:, 0].max() - x0) / cell_m)) + 1
    nrow = int(np.ceil((y1 - xy[:, 1].min()) / cell_m)) + 1
    col = ((xy[:, 0] - x0) // cell_m).astype(np.int64)
    row = ((y1 - xy[:, 1]) // cell_m).astype(np.int64)
    grid = np.bincount(row * ncol + col, weights=w, minlength=nrow * ncol).reshape(nrow, ncol)
    from geosvc.io import atomic_path

    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", driver="GTiff", height=nrow, width=ncol, count=1,
                           dtype="float32", crs=points.crs.to_wkt(), nodata=-1.0,
                           transform=from_origin(x0, y1, cell_m, cell_m)) as dst:
            dst.write(grid.astype(np.float32), 1)
    return Path(path)


def households_from_raster(
    path: str | Path,
    net: Any,
    *,
    spacing_m: float = 25.0,
    persons_per_household: float = 2.6,
    elderly_share: float = 0.2,
    public_streets_only: bool = False,
) -> gpd.GeoDataFrame:
    """Disaggregate a population raster (persons per cell) to points on the streets.

    For cities without building-level data: each cell's persons are spread evenly over
    points every ``spacing_m`` along the street edges inside the cell (the households live
    along their streets); a populated cell with no street gets one point at its centre
    (flagged ``on_street = False``).  Totals are preserved exactly.

    Parameters
    ----------
    path
        GeoTIFF of persons per cell (WorldPop style), any CRS; nodata and negative
        cells are treated as empty.
    net
        :class:`geosvc.network.CompiledNetwork` the points are placed on.
    spacing_m
        Distance between points along streets.
    persons_per_household, elderly_share
        Ratios to derive ``households`` and ``elderly`` from ``persons``.
    public_streets_only
        Place points only along public streets (not compound paths).

    Returns
    -------
    geopandas.GeoDataFrame
        Points in the network CRS with ``point_id``, ``persons``, ``households``,
        ``elderly``, ``cell``, ``on_street``.
    """
    import rasterio
    from pyproj import Transformer

    from geosvc.network import points_along_edges

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: population raster not found")
    try:
        with rasterio.open(p) as src:
            pop = src.read(1).astype(np.float64)
            nodata = src.nodata
            transform = src.transform
            rcrs = src.crs
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{p}: not a readable raster ({exc})") from exc
    if rcrs is None:
        raise CRSError(f"{p}: the raster has no CRS; set it (e.g. with gdal_edit.py -a_srs)")
    if nodata is not None:
        pop[pop == nodata] = 0.0
    pop = np.where(np.isfinite(pop) & (pop > 0), pop, 0.0)
    nrow, ncol = pop.shape
    xy, edge = points_along_edges(net, spacing_m)
    if public_streets_only:
        keep = net.edge_compound[edge] < 0
        xy = xy[keep]
    to_r = Transformer.from_crs(net.crs, rcrs, always_xy=True)
    rx, ry = to_r.transform(xy[:, 0], xy[:, 1])
    inv = ~transform
    colf, rowf = inv @ (np.asarray(rx), np.asarray(ry))
    col = np.floor(colf).astype(np.int64)
    row = np.floor(rowf).astype(np.int64)
    inside = (col >= 0) & (col < ncol) & (row >= 0) & (row < nrow)
    cell = np.where(inside, row * ncol + col, -1)
    flat = pop.ravel()
    per_cell = np.bincount(cell[inside], minlength=nrow * ncol)
    use = inside & (flat[np.clip(cell, 0, None)] > 0)
    persons_pt = flat[cell[use]] / per_cell[cell[use]]
    pts_xy = xy[use]
    cells_pt = cell[use]
    # populated cells without a street: one point at the cell centre
    lonely = np.flatnonzero((flat > 0) & (per_cell == 0))
    if len(lonely):
        r, c = np.divmod(lonely, ncol)
        cx, cy = transform @ (c + 0.5, r + 0.5)
        back = Transformer.from_crs(rcrs, net.crs, always_xy=True)
        bx, by = back.transform(np.asarray(cx), np.asarray(cy))
        pts_xy = np.vstack([pts_xy, np.column_stack([bx, by])])
        persons_pt = np.concatenate([persons_pt, flat[lonely]])
        cells_pt = np.concatenate([cells_pt, lonely])
    on_street = np.r_[np.ones(int(use.sum()), bool), np.zeros(len(lonely), bool)]
    return gpd.GeoDataFrame({
        "point_id": np.arange(len(pts_xy)),
        "persons": persons_pt,
        "households": persons_pt / persons_per_household,
        "elderly": persons_pt * elderly_share,
        "cell": cells_pt,
        "on_street": on_street,
    }, geometry=shapely.points(pts_xy), crs=net.crs)
