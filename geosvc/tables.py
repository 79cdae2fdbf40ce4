"""Point tables: households, facilities and candidates from CSV and Excel sheets.

Planners' lists often arrive as spreadsheets with a coordinate pair per row rather than as
GIS layers (Chinese lists are usually geocoded by Gaode, i.e. GCJ-02).  :func:`read_table`
turns such a table into a point GeoDataFrame:

* ``.csv`` (UTF-8, UTF-8 with BOM, or GB18030 as Chinese Excel writes it) and ``.xlsx``
  (first sheet unless one is named);
* the coordinate columns are named (``xy=("lng", "lat")``) or found among the common
  names: ``lon/lat``, ``lng/lat``, ``longitude/latitude``, ``经度/纬度``, ``x/y``
  (case and surrounding blanks ignored);
* the CRS is given, or EPSG:4326 for lon/lat names; ``x/y`` without a CRS is accepted
  as EPSG:4326 only when every value fits the lon/lat range, otherwise it is an error
  asking for the CRS (a projected table read as degrees would be a confident wrong
  answer).

Every row is kept: a row whose coordinates are empty or not numbers gets an empty
geometry (it leaves the analysis as ``invalid``), never dropped.
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
from pyproj import CRS
from pyproj.exceptions import CRSError as PyprojCRSError

from geosvc._errors import CRSError, InputError

__all__ = ["TABLE_SUFFIXES", "COORDINATE_PAIRS", "is_table", "read_table", "parse_crs"]

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".xlsx", ".xlsm")
"""File name endings read as tables."""

COORDINATE_PAIRS: tuple[tuple[str, str], ...] = (
    ("lon", "lat"), ("lng", "lat"), ("longitude", "latitude"), ("经度", "纬度"),
    ("wgs84_lon", "wgs84_lat"), ("gcj02_lon", "gcj02_lat"), ("x", "y"), ("point_x", "point_y"),
    ("东经", "北纬"), ("x坐标", "y坐标"),
)
"""Coordinate column names recognised without being named (case-insensitive)."""

_DEGREE_NAMES = {"lon", "lng", "longitude", "经度", "wgs84_lon", "gcj02_lon", "东经"}


def is_table(path: str | Path) -> bool:
    """True when ``path`` is read by :func:`read_table` (by its ending)."""
    return Path(path).suffix.lower() in TABLE_SUFFIXES


def parse_crs(value: Any, *, option: str) -> CRS:
    """A pyproj CRS from user input; an unknown CRS is a :class:`CRSError` naming ``option``.

    Examples
    --------
    >>> parse_crs("EPSG:4326", option="--crs").to_epsg()
    4326
    """
    try:
        return CRS.from_user_input(value)
    except (PyprojCRSError, TypeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        head, _, tail = option.partition(" (")
        where = f"{head} {value!r}" + (f" ({tail}" if tail else "")
        raise CRSError(f"{where}: not a known coordinate reference system "
                       f"({first}); give an EPSG code such as EPSG:4326 or EPSG:32650") from None


def _read_frame(p: Path, sheet: str | int | None) -> pd.DataFrame:
    suffix = p.suffix.lower()
    if suffix == ".csv":
        last: Exception | None = None
        for enc in ("utf-8-sig", "gb18030"):
            try:
                return pd.read_csv(p, encoding=enc, dtype=str, keep_default_na=False,
                                   na_values=[""], skipinitialspace=True)
            except UnicodeDecodeError as exc:
                last = exc
            except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                raise InputError(f"{p}: not a readable CSV table ({exc}); save it as "
                                 "comma-separated UTF-8") from None
        raise InputError(f"{p}: not UTF-8 or GB18030 text ({last}); save the CSV as UTF-8")
    try:
        import openpyxl  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a dependency
        raise InputError(f"{p}: reading Excel needs openpyxl (pip install openpyxl)") from exc
    try:
        book = pd.ExcelFile(p, engine="openpyxl")
    except Exception as exc:
        raise InputError(f"{p}: not a readable Excel workbook ({exc})") from None
    with book:  # closes the workbook's file handle (no ResourceWarning in a notebook)
        if sheet is not None and sheet not in book.sheet_names and not isinstance(sheet, int):
            raise InputError(f"{p}: no sheet {sheet!r}; sheets are {book.sheet_names}; name "
                             "one as the layer")
        # pd.read_excel on the open book: ExcelFile.parse is deprecated in pandas 3
        frame = pd.read_excel(book, sheet_name=sheet if sheet is not None else 0, dtype=object)
    return frame.astype(object).where(frame.notna(), None)


def _find_pair(columns: Sequence[str], xy: Sequence[str] | None, p: Path, what: str,
               option: str) -> tuple[str, str]:
    if xy is not None:
        if len(xy) != 2:
            raise InputError(f"{option} {','.join(xy)!r}: give two columns, x then y, "
                             "e.g. lng,lat")
        missing = [c for c in xy if c not in columns]
        if missing:
            raise InputError(f"{p}: no column {missing[0]!r} for the {what} coordinates; "
                             f"columns are {list(columns)}; fix {option}")
        return str(xy[0]), str(xy[1])
    norm = {str(c).strip().lower(): str(c) for c in columns}
    for xn, yn in COORDINATE_PAIRS:
        if xn in norm and yn in norm:
            return norm[xn], norm[yn]
    names = ", ".join(f"{a}/{b}" for a, b in COORDINATE_PAIRS[:7])
    raise InputError(f"{p}: no coordinate columns among {list(columns)}; expected {names}; "
                     f"name them with {option} X,Y")


def _looks_like_degrees(x: np.ndarray, y: np.ndarray) -> bool:
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return True
    return bool((np.abs(x[ok]) <= 180).all() and (np.abs(y[ok]) <= 90).all())


def read_table(
    path: str | Path,
    *,
    what: str = "points",
    xy: Sequence[str] | None = None,
    crs: Any = None,
    sheet: str | int | None = None,
    option: str = "--xy",
    crs_option: str = "--crs",
) -> gpd.GeoDataFrame:
    """Read a CSV or Excel table of points.

    Parameters
    ----------
    path
        ``.csv`` or ``.xlsx`` file.
    what
        Name used in messages (``households``, ``facilities`` ...).
    xy
        Names of the x (longitude) and y (latitude) columns; default: detected.
    crs
        CRS of the coordinates; default EPSG:4326 (see the module notes for ``x/y``).
    sheet
        Excel sheet name or index (default the first sheet); ignored for CSV.
    option, crs_option
        The CLI option or config key that names the columns / the CRS, for messages.

    Returns
    -------
    geopandas.GeoDataFrame
        Every row of the table with its columns, point geometry (empty where the
        coordinates are missing or not numbers) and the CRS.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: {what} file not found; check the path")
    frame = _read_frame(p, sheet)
    frame.columns = [str(c).strip() for c in frame.columns]
    xcol, ycol = _find_pair(list(frame.columns), xy, p, what, option)
    x = pd.to_numeric(frame[xcol], errors="coerce").to_numpy(dtype=np.float64)
    y = pd.to_numeric(frame[ycol], errors="coerce").to_numpy(dtype=np.float64)
    if crs is not None:
        use = parse_crs(crs, option=crs_option)
    elif xcol.strip().lower() in _DEGREE_NAMES or _looks_like_degrees(x, y):
        use = CRS.from_epsg(4326)
        if xcol.strip().lower() not in _DEGREE_NAMES:
            log.info("%s: columns %s/%s read as longitude/latitude (EPSG:4326); give the CRS "
                     "with %s when they are not", p.name, xcol, ycol, crs_option)
    else:
        ok = np.isfinite(x) & np.isfinite(y)
        ex = f"row {int(np.flatnonzero(ok)[0])}: {x[ok][0]:g}, {y[ok][0]:g}"
        raise CRSError(f"{p}: columns {xcol}/{ycol} hold projected coordinates ({ex}), not "
                       f"degrees; give their CRS with {crs_option} (e.g. EPSG:4547)")
    ok = np.isfinite(x) & np.isfinite(y)
    geoms = np.full(len(frame), None, dtype=object)
    geoms[ok] = shapely.points(x[ok], y[ok])
    rest = frame.drop(columns=[xcol, ycol])
    for col in rest.columns:  # numbers stay numbers; text columns stay text
        num = pd.to_numeric(rest[col], errors="coerce")
        if num.notna().sum() == rest[col].notna().sum():
            rest[col] = num
    gdf = gpd.GeoDataFrame(rest.reset_index(drop=True), geometry=gpd.array.from_shapely(geoms),
                           crs=use)
    gdf.attrs["source"] = str(p)
    gdf.attrs["xy_columns"] = (xcol, ycol)
    return gdf
