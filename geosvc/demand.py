"""Households (demand): reading and validating residential points.

Every input row is kept.  Rows that cannot be analysed get an ``invalid_reason``
(missing geometry, coordinates outside the lon/lat range, non-numeric, infinite, negative,
non-integral or implausibly large counts, duplicate or missing id) and leave every analysis
with status ``invalid``; they are never dropped.  Problems that concern the whole input
(a missing column, lines given as households, lon/lat swapped in every row) are errors
naming the file and the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geosvc import diagnostics
from geosvc._errors import CRSError, InputError
from geosvc.io import read_layer

__all__ = ["prepare_households", "read_households", "households_from_buildings",
           "households_from_raster", "rasterize_population", "read_points",
           "MAX_HOUSEHOLDS_PER_POINT", "MAX_PERSONS_PER_POINT",
           "check_household_columns"]

log = logging.getLogger(__name__)

read_points = read_layer
"""Alias of :func:`geosvc.io.read_layer` (kept for existing callers)."""

MAX_HOUSEHOLDS_PER_POINT = 20_000.0
"""Largest plausible household count of one point (a very large compound is ~10,000)."""
MAX_PERSONS_PER_POINT = 100_000.0
"""Largest plausible person (or elderly) count of one point."""

_LINE_TYPES = (1, 2, 5)  # LineString, LinearRing, MultiLineString
_POLYGON_TYPES = (3, 6)
def read_households(path: str | Path, *, layer: str | None = None,
                    coord_system: str = "wgs84", crs: Any = None,
                    xy: Sequence[str] | None = None) -> gpd.GeoDataFrame:
    """Read a household layer or table.

    GeoPackage, Shapefile, GeoJSON, or a ``.csv``/``.xlsx`` table with coordinate
    columns (see :func:`geosvc.tables.read_table`).  ``layer`` names the GeoPackage layer
    or Excel sheet; ``crs`` is the CRS of a table's coordinates (or of a layer that has
    none); ``coord_system`` the datum of lon/lat (``wgs84``, ``gcj02``, ``bd09``).
    """
    return read_layer(path, layer=layer, coord_system=coord_system, what="households",
                      crs=crs, xy=xy)


def _numeric(frame: pd.DataFrame, col: str, reason: np.ndarray, label: str, *,
             required: bool, maximum: float, integer: bool) -> np.ndarray:
    """Counts of ``col`` as floats; implausible rows get a reason (unusable values -> NaN)."""
    raw = frame[col]
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad_type = np.isnan(num) & (raw.notna().to_numpy() | required)
    _add_reason(reason, bad_type, f"{label} is not a number")
    _add_reason(reason, np.isinf(num), f"{label} is infinite")
    _add_reason(reason, num < 0, f"{label} is negative")
    big = np.isfinite(num) & (num > maximum)
    _add_reason(reason, big, f"{label} exceeds the per-point maximum of {maximum:g}")
    if integer:
        fin = np.where(np.isfinite(num), num, 0.0)
        frac = np.abs(fin - np.round(fin)) > 1e-9
        _add_reason(reason, frac, f"{label} is not a whole number")
    num = np.where(np.isinf(num) | big, np.nan, num)
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
    max_households_per_point: float = MAX_HOUSEHOLDS_PER_POINT,
    max_persons_per_point: float = MAX_PERSONS_PER_POINT,
    integer_counts: bool = True,
) -> gpd.GeoDataFrame:
    """Validate household points and return a new frame with the standard columns.

    Parameters
    ----------
    gdf
        Residential points with a CRS.  Polygons are used by their representative point
        (a point inside each polygon; stated in a warning); lines and multi-part points are
        refused (an error naming the rows).
    id_col
        Column of unique ids; default the index.  Repeated ids after the first become
        ``invalid`` ("duplicate id").
    households_col
        Household count per row; ``None`` counts one household per row (address points).
    persons_col, elderly_col
        Optional counts of persons and of elderly (60+) persons.
    source
        Name used in error messages (file name).
    max_households_per_point, max_persons_per_point
        Counts above these are ``invalid`` ("exceeds the per-point maximum").
    integer_counts
        Counts must be whole numbers (estimates from rasters pass ``False``).

    Returns
    -------
    geopandas.GeoDataFrame
        The input columns plus ``hh_id``, ``households``, ``persons``, ``elderly`` (float,
        NaN when unknown or unusable) and ``invalid_reason`` ("" for valid rows), same row
        order.  A row is invalid for: missing/empty geometry, coordinates outside the
        lon/lat range, a count that is empty (households), not a number, infinite,
        negative, not whole, above the maximum, elderly above persons, a missing or
        duplicate id.
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(f"{source}: expected a GeoDataFrame of household points")
    if gdf.crs is None:
        raise CRSError(f"{source}: households have no CRS; set it (e.g. EPSG:4326)")
    check_household_columns(gdf, id_col=id_col, households_col=households_col,
                            source=source)
    out = gdf.copy()
    n = len(out)
    reason = np.full(n, "", dtype=object)
    geoms = _point_geometries(out, source)
    out = out.set_geometry(gpd.array.from_shapely(geoms, crs=out.crs))
    _check_coordinates(geoms, reason, geographic=out.crs.is_geographic)
    if households_col is None:
        hh = np.ones(n)
    else:
        hh = _numeric(out, households_col, reason, households_col, required=True,
                      maximum=max_households_per_point, integer=integer_counts)
    persons = _optional_count(out, persons_col, reason, max_persons_per_point, integer_counts)
    elderly = _optional_count(out, elderly_col, reason, max_persons_per_point, integer_counts)
    _add_reason(reason, elderly > persons + 1e-9, f"{elderly_col} exceeds {persons_col}")
    out["hh_id"] = _checked_ids(out, id_col, reason)
    out["households"] = hh
    out["persons"] = persons
    out["elderly"] = elderly
    out["invalid_reason"] = reason.astype(str)
    out.attrs["source"] = source
    if n == 0:
        diagnostics.warn("no_households", f"{source}: 0 household rows; every coverage rate is "
                         "undefined (check the file and layer)", source=source)
    return out


def _check_coordinates(geoms: np.ndarray, reason: np.ndarray, *, geographic: bool) -> None:
    """Reasons for missing or empty geometries, non-finite or out-of-range lon/lat."""
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    xy = np.full((len(geoms), 2), np.nan)
    if (~missing).any():
        xy[~missing] = shapely.get_coordinates(geoms[~missing])[:, :2]
    _add_reason(reason, missing, "missing or empty geometry")
    _add_reason(reason, ~missing & ~np.isfinite(xy).all(axis=1), "coordinates are not finite")
    if geographic:
        outside = ~missing & ((np.abs(xy[:, 0]) > 180) | (np.abs(xy[:, 1]) > 90))
        _add_reason(reason, outside, "coordinates outside the lon/lat range "
                    "(|lon| <= 180, |lat| <= 90)")


def _optional_count(out: pd.DataFrame, col: str | None, reason: np.ndarray, maximum: float,
                    integer: bool) -> np.ndarray:
    """An optional count column, checked (NaN everywhere when it is not given)."""
    if col is None or col not in out.columns:
        return np.full(len(out), np.nan)
    return _numeric(out, col, reason, col, required=False, maximum=maximum, integer=integer)


def _checked_ids(out: pd.DataFrame, id_col: str | None, reason: np.ndarray) -> np.ndarray:
    """The row ids (``id_col`` or the index); repeated and missing ids get a reason."""
    ids: Any = out[id_col] if id_col is not None else pd.Series(out.index, index=out.index)
    dup = ids.duplicated(keep="first").to_numpy() & ids.notna().to_numpy()
    _add_reason(reason, dup, "duplicate id")
    _add_reason(reason, ids.isna().to_numpy(), "missing id")
    return ids.to_numpy()


def check_household_columns(gdf: pd.DataFrame, *, id_col: str | None = None,
                            households_col: str | None = "households",
                            source: str = "households", **_: Any) -> None:
    """Raise :class:`InputError` when a named household column is missing (preflight)."""
    cols = list(gdf.columns)
    if households_col is not None and households_col not in gdf.columns:
        raise InputError(
            f"{source}: no column {households_col!r} with household counts; columns are "
            f"{cols}. Name the right column (--households-columns households=NAME / "
            "inputs.households_columns.households) or count one household per point "
            "(--one-household-per-point / inputs.one_household_per_point = true)")
    if id_col is not None and id_col not in gdf.columns:
        raise InputError(f"{source}: no id column {id_col!r}; columns are {cols}; fix "
                         "--households-columns id=NAME (config: inputs.households_columns.id)")


def _point_geometries(gdf: gpd.GeoDataFrame, source: str) -> np.ndarray:
    """Point per row: points as they are, polygons by their representative point.

    Lines, multi-part points and collections are refused: their centroid is not where
    anybody lives, and silently using it would give a plausible wrong answer.
    """
    geoms = gdf.geometry.to_numpy()
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    kind = np.where(present, shapely.get_type_id(geoms), 0)
    multi_pt = (kind == 4) & (shapely.get_num_geometries(geoms) == 1)
    geoms = geoms.copy()
    if multi_pt.any():
        geoms[multi_pt] = shapely.get_geometry(geoms[multi_pt], 0)
        kind[multi_pt] = 0
    bad = present & ~np.isin(kind, (0, *_POLYGON_TYPES))
    if bad.any():
        rows = np.flatnonzero(bad)
        names = sorted({str(t) for t in shapely.get_type_id(geoms[rows])})
        types = {"1": "LineString", "2": "LinearRing", "4": "MultiPoint", "5": "MultiLineString",
                 "7": "GeometryCollection"}
        raise InputError(
            f"{source}: {len(rows)} rows are {'/'.join(types.get(t, t) for t in names)} "
            f"geometries (rows {rows[:5].tolist()}); points are expected: give point or polygon "
            "layers (e.g. building points), or the right layer/file")
    poly = present & np.isin(kind, _POLYGON_TYPES)
    if poly.any():
        geoms[poly] = shapely.point_on_surface(geoms[poly])
        diagnostics.warn("polygons_as_points", f"{source}: {int(poly.sum())} polygon rows are "
                         "used by their representative point (a point inside each polygon)",
                         source=source, rows=int(poly.sum()))
    return geoms


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


def _read_population(p: Path) -> tuple[np.ndarray, Any, Any]:
    """Persons per cell (nodata, negative and non-finite cells 0), transform and CRS."""
    import rasterio

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
    return np.where(np.isfinite(pop) & (pop > 0), pop, 0.0), transform, rcrs


def _cells_of(xy: np.ndarray, to_raster: Any, transform: Any, shape: tuple[int, ...]
              ) -> tuple[np.ndarray, np.ndarray]:
    """Which raster cell (flat index, ``-1`` outside) each point of ``xy`` falls in."""
    nrow, ncol = shape
    rx, ry = to_raster.transform(xy[:, 0], xy[:, 1])
    inv = ~transform
    colf, rowf = inv @ (np.asarray(rx), np.asarray(ry))
    col = np.floor(colf).astype(np.int64)
    row = np.floor(rowf).astype(np.int64)
    inside = (col >= 0) & (col < ncol) & (row >= 0) & (row < nrow)
    return inside, np.where(inside, row * ncol + col, -1)


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
        ``elderly``, ``cell``, ``on_street``, already validated (``hh_id``,
        ``invalid_reason``; fractional counts are allowed).
    """
    from pyproj import Transformer

    from geosvc.network import points_along_edges

    p = Path(path)
    pop, transform, rcrs = _read_population(p)
    nrow, ncol = pop.shape
    xy, edge = points_along_edges(net, spacing_m)
    if public_streets_only:
        keep = net.edge_compound[edge] < 0
        xy = xy[keep]
    inside, cell = _cells_of(xy, Transformer.from_crs(net.crs, rcrs, always_xy=True),
                             transform, pop.shape)
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
    pts = gpd.GeoDataFrame({
        "point_id": np.arange(len(pts_xy)),
        "persons": persons_pt,
        "households": persons_pt / persons_per_household,
        "elderly": persons_pt * elderly_share,
        "cell": cells_pt,
        "on_street": on_street,
    }, geometry=shapely.points(pts_xy), crs=net.crs)
    # estimates are fractional by construction: validated here, not as whole-number counts
    return prepare_households(pts, id_col="point_id", integer_counts=False,
                              max_households_per_point=np.inf, max_persons_per_point=np.inf,
                              source=str(p))
