"""The interactive coverage map (folium / Leaflet), light and usable offline.

:func:`coverage_map` assembles the layers (:mod:`geosvc.viz._layers`), the legend and the
title on a page set up by :mod:`geosvc.viz._leaflet`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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

__all__ = ["BASEMAPS", "MAX_MARKERS", "MAX_CELLS", "MAX_STREET_VERTICES", "coverage_map",
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


def coverage_map(
    households: gpd.GeoDataFrame,
    *,
    areas: Mapping[str, gpd.GeoDataFrame] | None = None,
    facilities: gpd.GeoDataFrame | None = None,
    circles: Mapping[str, gpd.GeoDataFrame | None] | gpd.GeoDataFrame | None = None,
    stations: Mapping[str, gpd.GeoDataFrame] | None = None,
    profile: Profile | str | None = None,
    lang: str = "zh",
    basemap: str | None = None,
    streets: Any = None,
    title: str | None = None,
    categories: Sequence[str] | None = None,
    cell_m: float = 250.0,
    inline_assets: bool = True,
    max_markers: int = MAX_MARKERS,
    max_cells: int = MAX_CELLS,
    max_street_vertices: int = MAX_STREET_VERTICES,
) -> folium.Map:
    """Interactive map of a coverage run: who is outside the circle and where to build.

    Layers (each in the layer control): the streets (light grey, simplified), areas
    coloured by household coverage rate per category (the ``community`` level, or the
    first level given; other levels as outlines), the service circles (one layer per
    category and threshold, e.g. 5, 10 and 15 minutes, each with its own line and fill),
    covered households summed in ``cell_m`` square cells, households outside the circle
    (``uncovered``) as small circles in the category's colour, households that cannot
    reach any facility on foot (``unreachable``, ``off_network``) in a separate layer
    (grey, ringed in the category's colour), existing facilities with a popup, and the
    proposed stations labelled with their rank.  A title and a legend are drawn on the
    map; the default title mentions proposed stations only when stations are drawn.

    Every string that comes from data (names, ids, sub-types, profile labels) is
    HTML-escaped.  Leaflet itself is inlined (``inline_assets``) and no tile layer is
    added unless ``basemap`` asks for one, so the page works without internet access.

    Parameters
    ----------
    households
        ``CoverageResult.households``: ``hh_id``, ``households``, and per category
        ``status_<cat>`` and ``time_<cat>_min``; any CRS (projected metres expected).
    areas
        ``CoverageResult.areas``: level name -> frame from
        :func:`geosvc.coverage.aggregate_areas` (``name``, ``households``,
        ``<cat>_coverage_rate``, ...).
    facilities
        ``CoverageResult.facilities``: ``facility_id``, ``category``, ``subtype``,
        ``name``, ``floor_area_m2``, ``snap_status``.
    circles
        Service-area polygons: category -> frame (``None`` skips the category) or one
        frame with a ``category`` column; a ``threshold_min`` column splits a category
        into one layer per threshold (the second frame of
        :func:`geosvc.circles.service_circles` as it is).
    stations
        Category -> ``SitingPlan.stations`` (``rank``, ``candidate_id``,
        ``households_new``, ``elderly_new``, ``coverage_rate_cumulative``).
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
    streets
        Streets to draw under the other layers: a
        :class:`~geosvc.network.CompiledNetwork`, or a GeoDataFrame/GeoSeries of lines.
        Simplified (5 m, more if needed) to at most ``max_street_vertices`` vertices;
        above that only the longest edges are drawn.
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
    tiles = _check_basemap(basemap)
    text(lang, "title", minutes=15)  # validates lang
    if not cell_m > 0:
        raise InputError(f"cell_m={cell_m!r} must be a positive number of metres")
    prof = resolve_profile(profile)
    cats = pick_categories(households, prof, categories)
    crs = metric_crs(households, "households")
    hh = households.to_crs(crs)
    pts = _points(hh.geometry.to_numpy())
    xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])
    ctx = _Ctx(prof, lang, cats, crs, _Display(tiles.coord_system if tiles else "wgs84"),
               _cell_size(xy, float(cell_m), max_cells))
    lat, lon = ctx.display.latlon_xy(xy, crs)
    w = household_weights(hh)
    n_markers = sum(int(hh[status_col(c)].isin(NOT_COVERED).sum()) for c in cats)
    aggregate = n_markers > max_markers

    ok = np.isfinite(lat) & np.isfinite(lon)
    centre = [float(np.mean(lat[ok])), float(np.mean(lon[ok]))] if ok.any() else [0.0, 0.0]
    m = folium.Map(location=centre, zoom_start=14, tiles=None, control_scale=True,
                   prefer_canvas=n_markers > _CANVAS_ABOVE, zoom_snap=0.25)
    _add_assets(m, inline_assets)
    if tiles is not None:
        tiles.layer().add_to(m)

    d = _Drawn()
    if streets is not None:
        d.street_vertices = _street_layer(m, ctx, streets, max_street_vertices)
    d.level_name = _area_layers(m, ctx, dict(areas or {}))
    d.circle_levels = _circle_layers(m, ctx, as_frames(circles, "circles"))
    grid_breaks = _grid_layers(m, ctx, hh, xy, w)
    d.gap_breaks = _gap_layers(m, ctx, hh, xy, w) if aggregate else None
    n_points = 0 if aggregate else _household_layers(m, ctx, hh, lat, lon, w)
    d.facility_cats = _facility_layers(m, ctx, facilities) if facilities is not None and len(
        facilities) else []
    d.station_cats = _station_layers(m, ctx, as_frames(stations, "stations"))
    d.unreachable_cats = [c for c in cats if hh[status_col(c)].isin(
        ("unreachable", "off_network")).any()]
    if any((hh[status_col(c)] == "covered").any() for c in cats):
        d.grid_breaks = grid_breaks

    m.add_child(_MapBox("title", _title_html(ctx, hh, w, d, title)))
    m.add_child(_MapBox("legend", _legend(ctx, d)))
    folium.LayerControl(collapsed=False).add_to(m)
    if ok.any():
        m.fit_bounds([[float(lat[ok].min()), float(lon[ok].min())],
                      [float(lat[ok].max()), float(lon[ok].max())]])
    base = tiles.name if tiles else "none"
    if aggregate:
        log.info("map: %d households outside the circle (above the %d-marker budget) summed "
                 "in %g m cells, %d categories, basemap %s", n_markers, max_markers,
                 ctx.cell_m, len(cats), base)
    else:
        log.info("map: %d household markers, %d categories, %d street vertices, basemap %s",
                 n_points, len(cats), d.street_vertices, base)
    return m


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
