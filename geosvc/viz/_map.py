"""The interactive coverage map (folium / Leaflet), light and usable offline.

:func:`coverage_map` assembles the layers (:mod:`geosvc.viz._layers`), the legend and the
title on a page set up by :mod:`geosvc.viz._leaflet`."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import folium
import geopandas as gpd
import numpy as np
import shapely

from geosvc._errors import InputError
from geosvc._schema import status_col
from geosvc.standards import Profile
from geosvc.viz._common import (
    NOT_COVERED,
    as_frames,
    coverage_rate,
    esc,
    household_weights,
    metric_crs,
    pick_categories,
)
from geosvc.viz._layers import (
    _GAP_COLOURS,
    _GRID_COLOURS,
    _NO_DATA,
    _STREET_COLOUR,
    _UNREACH_COLOURS,
    _UNREACHABLE_FILL,
    MAX_CELLS,
    MAX_MARKERS,
    MAX_STREET_VERTICES,
    _area_layers,
    _cell_size,
    _circle_layers,
    _Ctx,
    _facility_layers,
    _gap_layers,
    _grid_layers,
    _household_layers,
    _station_layers,
    _street_layer,
    street_lines,
)
from geosvc.viz._leaflet import (
    BASEMAPS,
    _add_assets,
    _check_basemap,
    _Display,
    _MapBox,
    _points,
    is_tile_url,
    write_map,
)
from geosvc.viz.style import (
    category_colour,
    category_label,
    circle_style,
    fmt_int,
    fmt_minutes,
    fmt_pct,
    rate_classes,
    resolve_profile,
    text,
)

__all__ = ["BASEMAPS", "MAX_MARKERS", "MAX_CELLS", "MAX_STREET_VERTICES", "MapOptions",
           "coverage_map",
           "is_tile_url", "street_lines", "write_map"]

log = logging.getLogger(__name__)


_CANVAS_ABOVE = 4000  # circle markers; above this Leaflet draws on a canvas


def _class_labels(breaks: Sequence[float]) -> list[str]:
    """Labels of the classes that ``numpy.searchsorted(breaks, v, side="left")`` gives."""
    if not breaks:
        return ["> 0"]
    b = [fmt_int(v) for v in breaks]
    return [f"≤ {b[0]}", *(f"{b[j - 1]} – {b[j]}" for j in range(1, len(b))), f"> {b[-1]}"]


def _legend_swatch(colour: str, rank: int) -> str:
    st = circle_style(rank)
    dash = "dashed" if st["dashArray"] else "solid"
    alpha = min(1.0, 2.0 * float(st["fillOpacity"]) + 0.1)
    return (f'<i style="background:{colour};opacity:{alpha:.2f};border:2px {dash} '
            f'{colour}"></i>')


@dataclass
class _Drawn:
    """What the map drew, for the legend and the title."""

    level_name: str | None = None
    grid_breaks: list[float] | None = None
    gap_breaks: list[float] | None = None
    facility_cats: list[str] = field(default_factory=list)
    station_cats: list[str] = field(default_factory=list)
    circle_levels: dict[str, list[float]] = field(default_factory=dict)
    unreachable_cats: list[str] = field(default_factory=list)
    street_vertices: int = 0
    n_outside: int = 0  #: household rows outside the circle, all categories together
    markers: int = 0  #: household markers drawn (0 when summed in cells)


def _legend(ctx: _Ctx, d: _Drawn) -> str:
    parts = [f"<h4>{esc(ctx.t('legend'))}</h4>"]
    for cat in ctx.cats:
        c = ctx.colour(cat)
        parts.append(f"<div><b>{ctx.label(cat)}</b></div>")
        if d.gap_breaks is None:
            parts.append(f'<div><i class="dot" style="background:{c}"></i>'
                         f"{esc(ctx.t('uncovered_pt'))}</div>")
            if cat in d.unreachable_cats:
                parts.append(f'<div><i class="dot" style="background:{_UNREACHABLE_FILL};'
                             f'border:2px solid {c}"></i>{esc(ctx.t("unreachable_pt"))}</div>')
        if cat in d.facility_cats:
            parts.append(f'<div><i style="background:{c};width:10px;height:10px;'
                         f'margin:0 6px 0 2px"></i>{esc(ctx.t("facility"))}</div>')
        if cat in d.station_cats:
            parts.append(f'<div><i class="ring" style="border-color:{c}"></i>'
                         f"{esc(ctx.t('station'))}</div>")
        for rank, minutes in enumerate(d.circle_levels.get(cat, [])):
            parts.append(f"<div>{_legend_swatch(c, rank)}{esc(ctx.t('circle'))} "
                         f"({esc(ctx.t('threshold', minutes=fmt_minutes(minutes)))})</div>")
    for cat in d.facility_cats:
        if cat not in ctx.cats:
            c = category_colour(cat, ctx.cats + [cat])
            parts.append(f'<div><i style="background:{c};width:10px;height:10px;'
                         f'margin:0 6px 0 2px"></i>{esc(ctx.t("facility"))} · '
                         f"{ctx.label(cat)}</div>")
    if d.street_vertices:
        parts.append(f'<div><i style="background:none;border:none;border-top:2px solid '
                     f'{_STREET_COLOUR};height:0"></i>{esc(ctx.t("street_line"))}</div>')
    if d.level_name is not None:
        parts.append(f"<h4>{esc(ctx.t('legend_rate', level=d.level_name))}</h4>")
        for rc in rate_classes():
            parts.append(f'<div><i style="background:{rc.colour}"></i>{rc.label}</div>')
        parts.append(f'<div><i style="background:{_NO_DATA}"></i>{esc(ctx.t("no_data"))}</div>')
    if d.grid_breaks is not None:
        parts.append(f"<h4>{esc(ctx.t('legend_grid'))}</h4>")
        for colour, label in zip(_GRID_COLOURS, _class_labels(d.grid_breaks), strict=False):
            parts.append(f'<div><i style="background:{colour}"></i>{label}</div>')
    if d.gap_breaks is not None:
        parts.append(f"<h4>{esc(ctx.t('legend_gap_grid'))}</h4>")
        for colour, grey, label in zip(_GAP_COLOURS, _UNREACH_COLOURS,
                                       _class_labels(d.gap_breaks), strict=False):
            parts.append(f'<div><i style="background:{colour}"></i>'
                         f'<i style="background:{grey}"></i>{label}</div>')
        parts.append(f"<div>{esc(ctx.t('legend_gap_note'))}</div>")
    return "".join(parts)


@dataclass(frozen=True)
class MapOptions:
    """How :func:`coverage_map` draws: language, tiles, title and the page's size budget.

    Attributes
    ----------
    profile
        Standards profile (or its name) for category labels and thresholds.
    lang
        ``"zh"`` or ``"en"``.
    basemap
        ``None`` (no tiles, a plain background), ``"osm"`` (OpenStreetMap, WGS-84) or
        ``"gaode"`` (Gaode tiles in GCJ-02: every overlay is shifted to GCJ-02 too), or a
        tile URL template with ``{z}``, ``{x}`` and ``{y}`` (WGS-84 / web-Mercator tiles;
        Gaode and Tencent hosts are taken as GCJ-02).  Tiles are loaded by the browser
        when the page is opened (online); nothing is downloaded while writing the map.
    title
        Map title (default: from the thresholds and what is drawn).
    categories
        Categories to draw (default: those of the profile that the households carry).
    cell_m
        Side of the square cells of the covered-household grid (metres).
    inline_assets
        Embed Leaflet in the page (default) instead of linking to a CDN.
    max_markers, max_cells
        Size budget of the page (a city of a million households stays a few MB): when
        more than ``max_markers`` households are not covered (all categories together),
        they are drawn summed in grid cells (red, with a per-status breakdown) instead of
        one marker each; ``cell_m`` grows in 1-2-5 steps until a grid over the households'
        extent has at most ``max_cells`` cells.  Uncovered and unreachable households
        stay separate layers when summed too (red and grey cells).
    max_street_vertices
        Size budget of the street layer (vertices; about 25 bytes each).
    """

    profile: Profile | str | None = None
    lang: str = "zh"
    basemap: str | None = None
    title: str | None = None
    categories: Sequence[str] | None = None
    cell_m: float = 250.0
    inline_assets: bool = True
    max_markers: int = MAX_MARKERS
    max_cells: int = MAX_CELLS
    max_street_vertices: int = MAX_STREET_VERTICES


class MapKwargs(TypedDict, total=False):
    """The fields of :class:`MapOptions` as keyword arguments (any subset)."""

    profile: Profile | str | None
    lang: str
    basemap: str | None
    title: str | None
    categories: Sequence[str] | None
    cell_m: float
    inline_assets: bool
    max_markers: int
    max_cells: int
    max_street_vertices: int


def coverage_map(
    households: gpd.GeoDataFrame,
    *,
    areas: Mapping[str, gpd.GeoDataFrame] | None = None,
    facilities: gpd.GeoDataFrame | None = None,
    circles: Mapping[str, gpd.GeoDataFrame | None] | gpd.GeoDataFrame | None = None,
    stations: Mapping[str, gpd.GeoDataFrame] | None = None,
    streets: Any = None,
    options: MapOptions | None = None,
    **overrides: Unpack[MapKwargs],
) -> folium.Map:
    """Interactive map of a coverage run: who is outside the circle and where to build.

    Layers (each in the layer control): streets (light grey, simplified); areas coloured
    by household coverage rate per category (the ``community`` level or the first given;
    others as outlines); service circles, one layer per category and threshold (own line
    and fill); covered households summed in ``cell_m`` cells; households outside the
    circle (``uncovered``) as small circles in the category's colour and those that cannot
    reach a facility on foot (``unreachable``, ``off_network``) in their own grey layer;
    facilities with a popup; proposed stations labelled with their rank.  A title (it
    promises stations only when stations are drawn) and a legend.  Strings from data are
    HTML-escaped; Leaflet is inlined and no tiles are added unless ``basemap`` asks, so
    the page works offline.

    Parameters
    ----------
    households
        ``CoverageResult.households``: ``hh_id``, ``households``, and per category
        ``status_<cat>`` and ``time_<cat>_min``; any CRS (projected metres expected).
    areas, facilities
        ``CoverageResult.areas`` (level name -> frame of
        :func:`geosvc.coverage.aggregate_areas`) and ``CoverageResult.facilities``.
    circles
        Service-area polygons: category -> frame (``None`` skips the category) or one
        frame with a ``category`` column; a ``threshold_min`` column splits a category
        into one layer per threshold (the second frame of
        :func:`geosvc.circles.service_circles` as it is).
    stations
        Category -> ``SitingPlan.stations`` (``rank``, ``candidate_id``,
        ``households_new``, ``elderly_new``, ``coverage_rate_cumulative``).
    streets
        Streets to draw under the other layers: a
        :class:`~geosvc.network.CompiledNetwork`, or a GeoDataFrame/GeoSeries of lines.
        Simplified (5 m, more if needed) to at most ``max_street_vertices`` vertices;
        above that only the longest edges are drawn.
    options, **overrides
        :class:`MapOptions` (``profile``, ``lang``, ``basemap``, ``title``,
        ``categories``, ``cell_m``, ``inline_assets``, ``max_markers``, ``max_cells``,
        ``max_street_vertices``); any of its fields as a keyword replaces that field.

    Returns
    -------
    folium.Map
        Save it with :func:`write_map`.

    Examples
    --------
    >>> m = coverage_map(result.households, areas=result.areas,  # doctest: +SKIP
    ...                  facilities=result.facilities, lang="en")
    >>> write_map(m, "map.html")  # doctest: +SKIP
    """
    opts = dataclasses.replace(options or MapOptions(), **overrides)
    tiles = _check_basemap(opts.basemap)
    ctx, homes = _prepare(households, opts, tiles)
    d = _Drawn(n_outside=sum(int(homes.frame[status_col(c)].isin(NOT_COVERED).sum())
                             for c in ctx.cats))
    aggregate = d.n_outside > opts.max_markers
    m = _new_map(homes, prefer_canvas=d.n_outside > _CANVAS_ABOVE, tiles=tiles,
                 inline_assets=opts.inline_assets)
    if streets is not None:
        d.street_vertices = _street_layer(m, ctx, streets, opts.max_street_vertices)
    d.level_name = _area_layers(m, ctx, dict(areas or {}))
    d.circle_levels = _circle_layers(m, ctx, as_frames(circles, "circles"))
    _demand_layers(m, ctx, homes, d, aggregate=aggregate)
    d.facility_cats = (_facility_layers(m, ctx, facilities)
                       if facilities is not None and len(facilities) else [])
    d.station_cats = _station_layers(m, ctx, as_frames(stations, "stations"))
    _finish(m, ctx, homes, d, opts.title)
    _log_map(ctx, d, opts, tiles.name if tiles else "none", aggregate=aggregate)
    return m


def _log_map(ctx: _Ctx, d: _Drawn, opts: MapOptions, base: str, *, aggregate: bool) -> None:
    """One log line: what the page holds and why (the marker budget)."""
    if aggregate:
        log.info("map: %d households outside the circle (above the %d-marker budget) summed "
                 "in %g m cells, %d categories, basemap %s", d.n_outside, opts.max_markers,
                 ctx.cell_m, len(ctx.cats), base)
    else:
        log.info("map: %d household markers, %d categories, %d street vertices, basemap %s",
                 d.markers, len(ctx.cats), d.street_vertices, base)


@dataclass(frozen=True)
class _Homes:
    """The households in the map's metric CRS: points, display lat/lon, weights."""

    frame: gpd.GeoDataFrame
    xy: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    weight: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        """Rows with a finite display position."""
        return np.isfinite(self.lat) & np.isfinite(self.lon)


def _prepare(households: gpd.GeoDataFrame, opts: MapOptions, tiles: Any
             ) -> tuple[_Ctx, _Homes]:
    """Check the options, project the households and set up what every layer needs."""
    text(opts.lang, "title", minutes=15)  # validates lang
    if not opts.cell_m > 0:
        raise InputError(f"cell_m={opts.cell_m!r} must be a positive number of metres")
    prof = resolve_profile(opts.profile)
    cats = pick_categories(households, prof, opts.categories)
    crs = metric_crs(households, "households")
    hh = households.to_crs(crs)
    pts = _points(hh.geometry.to_numpy())
    xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])
    ctx = _Ctx(prof, opts.lang, cats, crs, _Display(tiles.coord_system if tiles else "wgs84"),
               _cell_size(xy, float(opts.cell_m), opts.max_cells))
    lat, lon = ctx.display.latlon_xy(xy, crs)
    return ctx, _Homes(hh, xy, lat, lon, household_weights(hh))


def _new_map(homes: _Homes, *, prefer_canvas: bool, tiles: Any,
             inline_assets: bool) -> folium.Map:
    """An empty map centred on the households, with Leaflet's assets and the tiles."""
    ok = homes.ok
    centre = ([float(np.mean(homes.lat[ok])), float(np.mean(homes.lon[ok]))] if ok.any()
              else [0.0, 0.0])
    m = folium.Map(location=centre, zoom_start=14, tiles=None, control_scale=True,
                   prefer_canvas=prefer_canvas, zoom_snap=0.25)
    _add_assets(m, inline_assets)
    if tiles is not None:
        tiles.layer().add_to(m)
    return m


def _demand_layers(m: folium.Map, ctx: _Ctx, homes: _Homes, d: _Drawn, *,
                   aggregate: bool) -> None:
    """The covered grid, then the households outside the circle (cells or markers)."""
    hh, xy, w = homes.frame, homes.xy, homes.weight
    grid_breaks = _grid_layers(m, ctx, hh, xy, w)
    d.gap_breaks = _gap_layers(m, ctx, hh, xy, w) if aggregate else None
    d.markers = 0 if aggregate else _household_layers(m, ctx, hh, homes.lat, homes.lon, w)
    d.unreachable_cats = [c for c in ctx.cats if hh[status_col(c)].isin(
        ("unreachable", "off_network")).any()]
    if any((hh[status_col(c)] == "covered").any() for c in ctx.cats):
        d.grid_breaks = grid_breaks


def _finish(m: folium.Map, ctx: _Ctx, homes: _Homes, d: _Drawn, title: str | None) -> None:
    """Title, legend, layer control, and the view fitted to the households."""
    m.add_child(_MapBox("title", _title_html(ctx, homes.frame, homes.weight, d, title)))
    m.add_child(_MapBox("legend", _legend(ctx, d)))
    folium.LayerControl(collapsed=False).add_to(m)
    ok, lat, lon = homes.ok, homes.lat, homes.lon
    if ok.any():
        m.fit_bounds([[float(lat[ok].min()), float(lon[ok].min())],
                      [float(lat[ok].max()), float(lon[ok].max())]])


def _title_html(ctx: _Ctx, hh: gpd.GeoDataFrame, w: np.ndarray, d: _Drawn,
                title: str | None) -> str:
    """Title from what is drawn (no siting promise without stations) and key figures."""
    minutes = max((ctx.profile.category(c).threshold_min for c in ctx.cats
                   if c in ctx.profile.category_names), default=15.0)
    key = "title" if d.station_cats else "title_coverage"
    head = esc(title) if title is not None else esc(ctx.t(key, minutes=fmt_minutes(minutes)))
    lines = [esc(ctx.t("total", n=fmt_int(float(w.sum()))))]
    for cat in ctx.cats:
        rate, _ = coverage_rate(hh, cat)
        status = hh[status_col(cat)]
        n_out = float(w[(status == "uncovered").to_numpy()].sum())
        n_unr = float(w[status.isin(("unreachable", "off_network")).to_numpy()].sum())
        label = category_label(ctx.profile, cat, ctx.lang)
        lines.append(esc(ctx.t("summary_unreachable", cat=label, rate=fmt_pct(rate),
                               n=fmt_int(n_out), m=fmt_int(n_unr)) if n_unr > 0 else
                         ctx.t("summary", cat=label, rate=fmt_pct(rate), n=fmt_int(n_out))))
    return f"<h1>{head}</h1><div>{' · '.join(lines)}</div>"
