"""The layers of the coverage map: areas by coverage rate, service circles, streets, household
markers and grids, facilities and proposed stations (each builder adds to a folium map)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geosvc._errors import InputError
from geosvc._schema import area_col, status_col, time_col
from geosvc.standards import Profile
from geosvc.viz._common import (
    drawable,
    esc,
)
from geosvc.viz._leaflet import _Display, _features, _PointLayer, _popup
from geosvc.viz.style import (
    RATE_COLOURS,
    UNREACHABLE_COLOUR,
    category_colour,
    category_label,
    circle_style,
    fmt_int,
    fmt_minutes,
    fmt_pct,
    rate_class_index,
    subtype_label,
    text,
)

__all__ = ["MAX_CELLS", "MAX_MARKERS", "MAX_STREET_VERTICES", "street_lines"]

log = logging.getLogger(__name__)


_SIMPLIFY_M = 2.0


_NO_DATA = "#bdbdbd"


_STREET_COLOUR = "#a8a29a"


#: Households with no walking path to any facility (``unreachable``) or too far from a
#: street (``off_network``): grey fill, ringed in the category's colour.
_UNREACHABLE_FILL = UNREACHABLE_COLOUR


_GRID_COLOURS = ("#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")


_GAP_COLOURS = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")


_UNREACH_COLOURS = ("#f0f0f0", "#d9d9d9", "#bdbdbd", "#969696", "#636363")


#: Size budget of the page: at most this many household markers in total (above it, the
#: households outside the circle are summed in grid cells like the covered ones) ...
MAX_MARKERS = 20_000


#: ... and at most about this many cells per grid layer (the cell grows in 1-2-5 steps).
MAX_CELLS = 4_000


_NICE_CELLS_M = (100.0, 200.0, 250.0, 500.0, 1000.0, 2000.0, 2500.0, 5000.0, 10000.0,
                 20000.0, 50000.0)


_STATUS_ORDER = ("uncovered", "unreachable", "off_network")


def _rate_colour(rate: float) -> str:
    if not np.isfinite(rate):
        return _NO_DATA
    return RATE_COLOURS[int(rate_class_index(rate))]


def _grid_breaks(counts: np.ndarray) -> list[float]:
    """Four class breaks (upper bounds of the lower classes) at rounded quantiles."""
    if not len(counts):
        return []
    qs = np.quantile(counts, [0.2, 0.4, 0.6, 0.8])
    out: list[float] = []
    for q in qs:
        mag = 10 ** max(0, int(np.floor(np.log10(max(q, 1.0)))) - 1)
        v = float(np.ceil(q / mag) * mag)
        if v < counts.max() and (not out or v > out[-1]):
            out.append(v)
    return out


@dataclass
class _Ctx:
    """What every layer builder needs."""

    profile: Profile
    lang: str
    cats: list[str]
    crs: pyproj.CRS
    display: _Display
    cell_m: float

    def label(self, cat: str) -> str:
        return esc(category_label(self.profile, cat, self.lang))

    def t(self, key: str, **values: Any) -> str:
        return text(self.lang, key, **values)

    def colour(self, cat: str) -> str:
        return category_colour(cat, self.cats)

    def level_name(self, level: str) -> str:
        """Name of an area level (``community``, ``street`` or the key itself)."""
        return self.t(f"level_{level}") if level in ("community", "street") else level

    def minutes(self, cat: str) -> str:
        if cat in self.profile.category_names:
            return fmt_minutes(self.profile.category(cat).threshold_min)
        return "15"


def _num_col(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column as floats (NaN when absent or not a number)."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)


def _area_layers(m: folium.Map, ctx: _Ctx, areas: Mapping[str, gpd.GeoDataFrame]) -> str | None:
    """Choropleth per category for the main level, outlines for the others."""
    if not areas:
        return None
    main = "community" if "community" in areas else next(iter(areas))
    for level, frame in areas.items():
        if frame is None or not len(frame):
            continue
        level_name = ctx.level_name(level)
        frame = frame.to_crs(ctx.crs)
        geoms = ctx.display.geoms(frame.geometry.to_numpy(), ctx.crs, simplify_m=_SIMPLIFY_M)
        names = frame["name"] if "name" in frame.columns else frame.get(
            "area_id", pd.Series(range(len(frame)), index=frame.index))
        names_esc = [esc(v) for v in names]
        if level != main:
            props = [{"t": f"<b>{n}</b>"} for n in names_esc]
            folium.GeoJson(
                _features(geoms, props), name=esc(ctx.t("outline", level=level_name)),
                style_function=lambda f: {"color": "#333333", "weight": 2.2, "opacity": 0.8,
                                          "fill": False, "dashArray": "6 4"},
                tooltip=folium.GeoJsonTooltip(fields=["t"], labels=False, sticky=True),
                show=True,  # not filled: only the line itself takes the mouse
            ).add_to(m)
            continue
        hh = frame["households"].to_numpy(dtype=float) if "households" in frame.columns \
            else np.full(len(frame), np.nan)
        for k, cat in enumerate(ctx.cats):
            rate_col = area_col(cat, "coverage_rate")
            if rate_col not in frame.columns:
                continue
            rates = pd.to_numeric(frame[rate_col], errors="coerce").to_numpy(dtype=float)
            unc = (_num_col(frame, area_col(cat, "households_uncovered")) + np.nan_to_num(_num_col(
                frame, area_col(cat, "households_unreachable"))) + np.nan_to_num(_num_col(
                    frame, area_col(cat, "households_off_network"))))
            eld = _num_col(frame, area_col(cat, "elderly_uncovered"))
            short = _num_col(frame, area_col(cat, "shortfall_m2"))
            props = []
            for i, n in enumerate(names_esc):
                rows = [(ctx.t("households"), fmt_int(hh[i])),
                        (ctx.t("coverage_rate"), fmt_pct(rates[i])),
                        (ctx.t("hh_uncovered"), fmt_int(unc[i])),
                        (ctx.t("elderly_uncovered"), fmt_int(eld[i]))]
                if np.isfinite(short[i]):
                    rows.append((ctx.t("shortfall"), f"{fmt_int(short[i])} m²"))
                body = "".join(f"<br>{esc(a)}: {b}" for a, b in rows)
                props.append({"t": f"<b>{n}</b> · {ctx.label(cat)}{body}"})
            fills = [_rate_colour(r) for r in rates]
            folium.GeoJson(
                _features(geoms, props),
                name=esc(ctx.t("areas", level=level_name, cat=category_label(
                    ctx.profile, cat, ctx.lang))),
                style_function=lambda f, fills=fills: {
                    "color": "#555555", "weight": 1.0, "fillColor": fills[int(f["id"])],
                    "fillOpacity": 0.3},
                highlight_function=lambda f: {"weight": 3.0, "color": "#000000"},
                tooltip=folium.GeoJsonTooltip(fields=["t"], labels=False, sticky=True),
                show=k == 0,
            ).add_to(m)
    return ctx.level_name(main)


def _thresholds(frame: gpd.GeoDataFrame, default: float) -> np.ndarray:
    """Threshold minutes of each circle row (``default`` without a column)."""
    if "threshold_min" not in frame.columns:
        return np.full(len(frame), default)
    return pd.to_numeric(frame["threshold_min"], errors="coerce").to_numpy(dtype=float)


def _circle_layers(m: folium.Map, ctx: _Ctx, circles: Mapping[str, gpd.GeoDataFrame]
                   ) -> dict[str, list[float]]:
    """One layer per category and threshold, each with its own style and label.

    Returns the thresholds drawn per category (ascending).
    """
    drawn: dict[str, list[float]] = {}
    for cat, frame in circles.items():
        frame = frame[drawable(frame)].to_crs(ctx.crs)
        if not len(frame):
            continue
        mins = _thresholds(frame, float(ctx.minutes(cat)))
        levels = sorted(float(v) for v in np.unique(mins[np.isfinite(mins)]))
        main = float(ctx.minutes(cat))
        colour = ctx.colour(cat)
        for rank, minutes in reversed(list(enumerate(levels))):  # largest below
            sel = frame[mins == minutes]
            geoms = ctx.display.geoms(sel.geometry.to_numpy(), ctx.crs, simplify_m=_SIMPLIFY_M)
            style = circle_style(rank)
            folium.GeoJson(
                _features(geoms, [{} for _ in range(len(geoms))]),
                name=esc(ctx.t("circles", minutes=fmt_minutes(minutes),
                               cat=category_label(ctx.profile, cat, ctx.lang))),
                style_function=lambda f, c=colour, st=style: {
                    "color": c, "weight": st["weight"], "opacity": 0.85, "fillColor": c,
                    "fillOpacity": st["fillOpacity"], "dashArray": st["dashArray"]},
                interactive=False,
                show=cat == ctx.cats[0] and (minutes == main or main not in levels),
            ).add_to(m)
        drawn[cat] = levels
    return drawn


#: Size budget of the street layer: at most this many vertices (about 25 bytes each);
#: above it the simplification tolerance doubles, then only the longest edges are kept.
MAX_STREET_VERTICES = 60_000


_STREET_SIMPLIFY_M = (5.0, 10.0, 20.0, 40.0)


def street_lines(streets: Any, crs: pyproj.CRS) -> np.ndarray:
    """Line geometries (in ``crs``) of a network, a line frame or a GeoSeries."""
    from geosvc.network import CompiledNetwork

    if isinstance(streets, CompiledNetwork):
        geoms = gpd.GeoSeries(streets.edge_geometry, crs=streets.crs)
    elif isinstance(streets, gpd.GeoDataFrame | gpd.GeoSeries):
        if streets.crs is None:
            raise InputError("streets have no CRS; set it with .set_crs(...)")
        geoms = streets.geometry if isinstance(streets, gpd.GeoDataFrame) else streets
    else:
        raise InputError(f"streets must be a CompiledNetwork, a GeoDataFrame or a GeoSeries "
                         f"of lines, not {type(streets).__name__}")
    arr = np.asarray(geoms.to_crs(crs).to_numpy(), dtype=object)
    keep = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
    arr = arr[keep]
    return arr[np.isin(shapely.get_type_id(arr), (1, 5))]  # (multi)line strings


def _street_layer(m: folium.Map, ctx: _Ctx, streets: Any, max_vertices: int) -> int:
    """Light, simplified street lines as one non-interactive feature; returns vertices."""
    lines = street_lines(streets, ctx.crs)
    if not len(lines):
        return 0
    for tol in _STREET_SIMPLIFY_M:
        simple = shapely.simplify(lines, tol, preserve_topology=False)
        n_vert = int(shapely.get_num_coordinates(simple).sum())
        if n_vert <= max_vertices:
            break
    if n_vert > max_vertices:  # still too many: the longest edges carry the picture
        counts = shapely.get_num_coordinates(simple)
        order = np.argsort(-shapely.length(simple), kind="stable")
        keep = order[np.cumsum(counts[order]) <= max_vertices]
        log.info("map: %d of %d street edges drawn (vertex budget %d)", len(keep),
                 len(simple), max_vertices)
        simple = simple[keep]
        n_vert = int(counts[keep].sum())
    merged = shapely.multilinestrings(shapely.get_parts(simple))
    geoms = ctx.display.geoms(np.array([merged], dtype=object), ctx.crs)
    folium.GeoJson(
        _features(geoms, [{}]), name=esc(ctx.t("streets")),
        style_function=lambda f: {"color": _STREET_COLOUR, "weight": 1.0, "opacity": 0.8},
        interactive=False, show=True,
    ).add_to(m)
    return n_vert


def _cell_size(xy: np.ndarray, cell_m: float, max_cells: int) -> float:
    """``cell_m``, or the next 1-2-5 size whose grid over the points' extent has at most
    ``max_cells`` cells."""
    ok = np.isfinite(xy).all(axis=1)
    if not ok.any():
        return cell_m
    span = xy[ok].max(axis=0) - xy[ok].min(axis=0)
    need = float(np.sqrt(max(span[0], 1.0) * max(span[1], 1.0) / max(max_cells, 1)))
    if cell_m >= need:
        return cell_m
    return next((c for c in _NICE_CELLS_M if c >= need), need)


@dataclass
class _Cells:
    """Points summed in square cells: cell boxes (display CRS), weights and row counts."""

    geoms: np.ndarray
    weight: np.ndarray
    rows: np.ndarray
    inverse: np.ndarray  # cell of each selected point


def _cells(ctx: _Ctx, xy: np.ndarray, w: np.ndarray) -> _Cells:
    cells = np.floor(xy / ctx.cell_m).astype(np.int64)
    base = cells.min(axis=0)
    cells -= base
    width = int(cells[:, 1].max()) + 1
    flat, inv = np.unique(cells[:, 0] * width + cells[:, 1], return_inverse=True)
    inv = inv.ravel()
    keys = np.column_stack([flat // width, flat % width]) + base  # same order as axis=0
    lo = keys * ctx.cell_m
    boxes = shapely.box(lo[:, 0], lo[:, 1], lo[:, 0] + ctx.cell_m, lo[:, 1] + ctx.cell_m)
    # cells are at least 100 m wide: 1e-5 degrees (about 1 m) is plenty
    return _Cells(ctx.display.geoms(boxes, ctx.crs, decimals=5),
                  np.bincount(inv, weights=w, minlength=len(keys)),
                  np.bincount(inv, minlength=len(keys)), inv)


def _grid_layer(m: folium.Map, name: str, cells: _Cells, tips: list[str],
                colours: Sequence[str], breaks: list[float], *, show: bool) -> None:
    cls = np.searchsorted(np.asarray(breaks, dtype=float), cells.weight, side="left")
    fills = [colours[min(int(c), len(colours) - 1)] for c in cls]
    folium.GeoJson(
        _features(cells.geoms, [{"t": t} for t in tips]), name=name,
        style_function=lambda f, fills=fills: {
            "color": "#ffffff", "weight": 0.5, "fillColor": fills[int(f["id"])],
            "fillOpacity": 0.75},
        tooltip=folium.GeoJsonTooltip(fields=["t"], labels=False), show=show,
    ).add_to(m)


def _grid_layers(m: folium.Map, ctx: _Ctx, hh: gpd.GeoDataFrame, xy: np.ndarray,
                 w: np.ndarray) -> list[float]:
    """Covered households summed in square cells (vectorised floor division)."""
    breaks_all: list[float] = []
    finite = np.isfinite(xy).all(axis=1)
    for k, cat in enumerate(ctx.cats):
        covered = (hh[status_col(cat)] == "covered").to_numpy() & finite
        if not covered.any():
            continue
        cells = _cells(ctx, xy[covered], w[covered])
        breaks = _grid_breaks(cells.weight) if k == 0 or not breaks_all else breaks_all
        breaks_all = breaks_all or breaks
        tips = [esc(ctx.t("grid_tip", n=fmt_int(c), rows=r))
                for c, r in zip(cells.weight, cells.rows, strict=True)]
        _grid_layer(m, esc(ctx.t("covered_grid", cell=fmt_minutes(ctx.cell_m),
                                 cat=category_label(ctx.profile, cat, ctx.lang))),
                    cells, tips, _GRID_COLOURS, breaks, show=k == 0)
    return breaks_all


#: The households not covered, drawn in two groups: outside the circle (``uncovered``)
#: and with no way to reach a facility on foot (``unreachable``, ``off_network``).
_NOT_COVERED_GROUPS = (("uncovered", ("uncovered",)),
                       ("unreachable", ("unreachable", "off_network")))


def _gap_layers(m: folium.Map, ctx: _Ctx, hh: gpd.GeoDataFrame, xy: np.ndarray,
                w: np.ndarray) -> list[float]:
    """Households not covered summed in cells (for pages above the marker budget).

    Uncovered and unreachable households are separate layers sharing one set of classes.
    """
    breaks_all: list[float] = []
    finite = np.isfinite(xy).all(axis=1)
    labels = [esc(ctx.t(f"status_{s}")) for s in _STATUS_ORDER]
    for k, cat in enumerate(ctx.cats):
        status = hh[status_col(cat)].to_numpy()
        for group, statuses in _NOT_COVERED_GROUPS:
            sel = hh[status_col(cat)].isin(statuses).to_numpy() & finite
            if not sel.any():
                continue
            cells = _cells(ctx, xy[sel], w[sel])
            code = pd.Categorical(status[sel], categories=_STATUS_ORDER).codes
            k_st = len(_STATUS_ORDER)
            by_status = np.bincount(cells.inverse * k_st + code, weights=w[sel],
                                    minlength=len(cells.weight) * k_st).reshape(-1, k_st)
            breaks = breaks_all or _grid_breaks(cells.weight)
            breaks_all = breaks_all or breaks
            tips = [esc(ctx.t("gap_tip", n=fmt_int(c), rows=r)) + ("<br>" + " · ".join(
                        f"{lab} {fmt_int(v)}" for lab, v in zip(labels, row, strict=True)
                        if v > 0) if len(statuses) > 1 else "")
                    for c, r, row in zip(cells.weight, cells.rows, by_status, strict=True)]
            key = "uncovered_grid" if group == "uncovered" else "unreachable_grid"
            _grid_layer(m, esc(ctx.t(key, cell=fmt_minutes(ctx.cell_m),
                                     cat=category_label(ctx.profile, cat, ctx.lang))),
                        cells, tips, _GAP_COLOURS if group == "uncovered" else _UNREACH_COLOURS,
                        breaks, show=k == 0)
    return breaks_all


def _household_layers(m: folium.Map, ctx: _Ctx, hh: gpd.GeoDataFrame, lat: np.ndarray,
                      lon: np.ndarray, w: np.ndarray) -> int:
    """A marker per household not covered: uncovered and unreachable in separate layers."""
    ok = np.isfinite(lat) & np.isfinite(lon)
    ids = hh["hh_id"].to_numpy() if "hh_id" in hh.columns else hh.index.to_numpy()
    status_labels = [esc(ctx.t(f"status_{s}")) for s in _STATUS_ORDER]
    labels = {"hh": esc(ctx.t("households")), "min": esc(ctx.t("min")),
              "never": esc(ctx.t("never")), "status": status_labels}
    n_points = 0
    for cat in ctx.cats:
        status = hh[status_col(cat)].to_numpy()
        tcol = time_col(cat)
        minutes = hh[tcol].to_numpy(dtype=float) if tcol in hh.columns else \
            np.full(len(hh), np.nan)
        colour = ctx.colour(cat)
        for group, statuses in _NOT_COVERED_GROUPS:
            sel = np.flatnonzero(hh[status_col(cat)].isin(statuses).to_numpy() & ok)
            if group == "unreachable" and not len(sel):
                continue  # no empty "unreachable" layer
            code = pd.Categorical(status[sel], categories=_STATUS_ORDER).codes
            mins = minutes[sel]
            rows = [[float(la), float(lo), int(c), int(round(hw)),
                     None if np.isnan(t) else (-1 if np.isinf(t) else round(float(t), 1)),
                     esc(i)]
                    for la, lo, c, hw, t, i in zip(lat[sel], lon[sel], code, w[sel], mins,
                                                   ids[sel], strict=True)]
            layer = folium.FeatureGroup(name=esc(ctx.t(
                group, cat=category_label(ctx.profile, cat, ctx.lang))),
                show=cat == ctx.cats[0])
            style = ({"radius": 3.5, "color": "#212121", "weight": 0.8, "fillColor": colour,
                      "fillOpacity": 0.95} if group == "uncovered" else
                     {"radius": 3.5, "color": colour, "weight": 1.6,
                      "fillColor": _UNREACHABLE_FILL, "fillOpacity": 0.9})
            layer.add_child(_PointLayer("household", rows, style, labels))
            layer.add_to(m)
            n_points += len(rows)
    return n_points


def _facility_layers(m: folium.Map, ctx: _Ctx, facilities: gpd.GeoDataFrame) -> list[str]:
    fac = facilities[drawable(facilities)].to_crs(ctx.crs)
    if not len(fac):
        return []
    lat, lon = ctx.display.latlon(fac.geometry.to_numpy(), ctx.crs)
    cat_col = fac["category"].astype(str).to_numpy() if "category" in fac.columns else \
        np.full(len(fac), "")

    def column(name: str) -> np.ndarray:
        return fac[name].to_numpy() if name in fac.columns else np.full(len(fac), None)

    names, subtypes, ids = column("name"), column("subtype"), column("facility_id")
    floor = pd.to_numeric(pd.Series(column("floor_area_m2")), errors="coerce").to_numpy()
    snap = column("snap_status")
    order = list(ctx.cats) + sorted(set(cat_col) - set(ctx.cats))
    drawn = []
    for cat in order:
        idx = np.flatnonzero((cat_col == cat) & np.isfinite(lat) & np.isfinite(lon))
        if not len(idx):
            continue
        rows = []
        for i in idx:  # one popup per facility (hundreds at most): not a hot path
            title = esc(names[i]) or esc(ids[i])
            pop = _popup(title, [
                (esc(ctx.t("subtype")), esc(subtype_label(ctx.profile, subtypes[i], ctx.lang))),
                (esc(ctx.t("floor_area")), f"{fmt_int(floor[i])} m²"),
                (esc(ctx.t("id")), esc(ids[i]))],
                note=esc(ctx.t("snap_off")) if snap[i] not in (None, "ok") else "")
            rows.append([float(lat[i]), float(lon[i]), pop, title])
        colour = ctx.colour(cat) if cat in ctx.cats else category_colour(cat, order)
        _icon_layer(m, ctx, "facilities", cat, rows, show=cat == order[0], icon={
            "html": f'<div class="gs-fac" style="background:{colour}"></div>',
            "size": [12, 12]})
        drawn.append(cat)
    return drawn


def _station_layers(m: folium.Map, ctx: _Ctx, stations: Mapping[str, gpd.GeoDataFrame]
                    ) -> list[str]:
    drawn = []
    for cat, frame in stations.items():
        st = frame[drawable(frame)].to_crs(ctx.crs)
        if "rank" in st.columns:
            st = st.sort_values("rank")
        if not len(st):
            continue
        lat, lon = ctx.display.latlon(st.geometry.to_numpy(), ctx.crs)
        ranks = st["rank"].to_numpy() if "rank" in st.columns else np.arange(1, len(st) + 1)

        def column(name: str, st: gpd.GeoDataFrame = st) -> np.ndarray:
            return st[name].to_numpy() if name in st.columns else np.full(len(st), None)

        cand, hh_new, el_new, cum = (column("candidate_id"), column("households_new"),
                                     column("elderly_new"), column("coverage_rate_cumulative"))
        rows = []
        for i in range(len(st)):  # k stations
            rank = int(ranks[i])
            title = f"{esc(ctx.t('rank', rank=rank))} · {ctx.label(cat)}"
            pop = _popup(title, [
                (esc(ctx.t("hh_new")), fmt_int(hh_new[i])),
                (esc(ctx.t("elderly_new")), fmt_int(el_new[i])),
                (esc(ctx.t("cum_rate")), fmt_pct(cum[i])),
                (esc(ctx.t("candidate")), esc(cand[i]))])
            rows.append([float(lat[i]), float(lon[i]), pop, title, rank])
        _icon_layer(m, ctx, "stations", cat, rows,
                    show=cat == (ctx.cats[0] if ctx.cats[0] in stations else next(iter(stations))),
                    icon={"html": f'<div class="gs-st" style="border-color:{ctx.colour(cat)}">'
                                  "{label}</div>", "size": [24, 24]})
        drawn.append(cat)
    return drawn


def _icon_layer(m: folium.Map, ctx: _Ctx, key: str, cat: str, rows: list[list[Any]], *,
                show: bool, icon: dict[str, Any]) -> None:
    """One layer of icon markers (facilities or stations of ``cat``), named by ``key``."""
    group = folium.FeatureGroup(name=esc(ctx.t(
        key, cat=category_label(ctx.profile, cat, ctx.lang))), show=show)
    group.add_child(_PointLayer("icon", rows, icon))
    group.add_to(m)
