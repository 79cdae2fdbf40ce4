"""The interactive coverage map (folium / Leaflet), light and usable offline."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, cast

import folium
import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import pyproj
import shapely
from branca.element import Element, Figure, MacroElement

from geosvc._errors import InputError
from geosvc._schema import area_col, status_col, time_col
from geosvc.io import atomic_path
from geosvc.standards import Profile
from geosvc.viz._common import (
    NOT_COVERED,
    as_frames,
    coverage_rate,
    drawable,
    esc,
    household_weights,
    js_literal,
    metric_crs,
    pick_categories,
)
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
    rate_classes,
    resolve_profile,
    subtype_label,
    text,
)

__all__ = ["BASEMAPS", "MAX_MARKERS", "MAX_CELLS", "MAX_STREET_VERTICES", "coverage_map",
           "is_tile_url", "street_lines", "write_map"]

log = logging.getLogger(__name__)

BASEMAPS = ("osm", "gaode")
GAODE_URL = ("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
             "&x={x}&y={y}&z={z}")
_CANVAS_ABOVE = 4000  # circle markers; above this Leaflet draws on a canvas
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

_CSS = """
<style>
.leaflet-container { background: #f3f1ec; }
.gs-title { position: absolute; top: 10px; left: 56px; z-index: 1000; max-width: 38%; background: rgba(255,255,255,0.92); padding: 6px 14px;
  border-radius: 6px; box-shadow: 0 1px 5px rgba(0,0,0,0.35);
  font: 14px/1.4 "Helvetica Neue", Arial, "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
.gs-title h1 { font-size: 17px; margin: 0 0 2px 0; }
.gs-title div { font-size: 12px; color: #444; }
.gs-legend { background: rgba(255,255,255,0.92); padding: 8px 10px; border-radius: 6px;
  box-shadow: 0 1px 5px rgba(0,0,0,0.35); font: 12px/1.5 Arial, sans-serif; max-width: 260px; }
.gs-legend h4 { font-size: 13px; margin: 4px 0 2px 0; }
.gs-legend i { display: inline-block; width: 14px; height: 12px; margin-right: 6px;
  vertical-align: middle; border: 1px solid rgba(0,0,0,0.25); }
.gs-legend i.dot { width: 9px; height: 9px; border-radius: 50%; margin: 0 8px 0 2px; }
.gs-legend i.ring { width: 12px; height: 12px; border-radius: 50%; background: #fff;
  border-width: 3px; border-style: solid; margin-right: 4px; }
.leaflet-control-layers-expanded { font-size: 12px; max-height: 70vh; overflow-y: auto; }
.gs-icon { background: transparent; border: none; }
.gs-fac { width: 9px; height: 9px; border: 1.5px solid #fff;
  box-shadow: 0 0 0 1px rgba(0,0,0,0.55); }
.gs-st { width: 18px; height: 18px; border-radius: 50%; background: #fff; border: 3px solid;
  font: bold 11px/18px Arial, sans-serif; text-align: center; color: #111;
  box-shadow: 0 0 3px rgba(0,0,0,0.6); }
.gs-pop { font: 12px/1.5 Arial, sans-serif; }
.gs-pop b { font-size: 13px; }
</style>
"""


class _Raw(Element):  # type: ignore[misc]
    """Verbatim markup placed in the page header (styles, inlined libraries)."""

    _template = jinja2.Template("{{ this.code }}")

    def __init__(self, code: str) -> None:
        super().__init__()
        self._name = "Raw"
        self.code = code


class _PointLayer(MacroElement):  # type: ignore[misc]
    """Many points added to the parent feature group from one compact array.

    ``kind="household"``: circle markers with a lazily built tooltip from
    ``[lat, lon, status_index, households, minutes, id]`` rows.  ``kind="icon"``: div-icon
    markers from ``[lat, lon, popup_html, tooltip_html, label]`` rows.  Every string in the
    rows is already HTML-escaped; the array is JSON with ``<`` escaped.
    """

    _template = jinja2.Template("""
{% macro script(this, kwargs) %}
(function () {
  var group = {{ this._parent.get_name() }};
  var rows = {{ this.rows }};
  var opt = {{ this.options }};
  {% if this.kind == "household" %}
  var lab = {{ this.labels }};
  var tip = function (r) {
    var t = r[4] === null ? "" : (r[4] < 0 ? lab.never : r[4].toFixed(1) + " " + lab.min);
    return "<b>" + r[5] + "</b><br>" + r[3] + " " + lab.hh + (t ? " · " + t : "") +
      "<br>" + lab.status[r[2]];
  };
  rows.forEach(function (r) {
    var m = L.circleMarker([r[0], r[1]], opt);
    m.bindTooltip(function () { return tip(r); });
    group.addLayer(m);
  });
  {% else %}
  rows.forEach(function (r) {
    var html = opt.html.replace("{label}", r[4] === undefined ? "" : String(r[4]));
    var icon = L.divIcon({className: "gs-icon", html: html, iconSize: opt.size});
    var m = L.marker([r[0], r[1]], {icon: icon, riseOnHover: true});
    if (r[2]) { m.bindPopup(r[2], {maxWidth: 320}); }
    if (r[3]) { m.bindTooltip(r[3]); }
    group.addLayer(m);
  });
  {% endif %}
})();
{% endmacro %}
""")

    def __init__(self, kind: str, rows: list[list[Any]], options: Mapping[str, Any],
                 labels: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._name = "PointLayer"
        self.kind = kind
        self.n_rows = len(rows)
        self.rows = js_literal(rows)
        self.options = js_literal(dict(options))
        self.labels = js_literal(dict(labels or {}))


class _MapBox(MacroElement):  # type: ignore[misc]
    """A title (top centre) or a legend (a Leaflet control) from escaped HTML."""

    _template = jinja2.Template("""
{% macro script(this, kwargs) %}
(function () {
  var map = {{ this._parent.get_name() }};
  {% if this.kind == "title" %}
  var div = L.DomUtil.create("div", "gs-title", map.getContainer());
  div.innerHTML = {{ this.html }};
  L.DomEvent.disableClickPropagation(div);
  {% else %}
  var box = L.control({position: "bottomleft"});
  box.onAdd = function () {
    var div = L.DomUtil.create("div", "gs-legend");
    div.innerHTML = {{ this.html }};
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    return div;
  };
  box.addTo(map);
  {% endif %}
})();
{% endmacro %}
""")

    def __init__(self, kind: str, html: str) -> None:
        super().__init__()
        self._name = "MapBox"
        self.kind = kind
        self.html = js_literal(html)


@dataclass(frozen=True)
class _Display:
    """Projects geometries to the map's lon/lat (WGS-84, or GCJ-02 for Gaode tiles)."""

    coord_system: str

    def geoms(self, geoms: Any, crs: Any, *, simplify_m: float = 0.0,
              decimals: int = 6) -> np.ndarray:
        """Object array of display geometries, coordinates rounded to ``decimals`` (1e-6
        degrees by default, about 0.1 m)."""
        arr = np.asarray(geoms, dtype=object)
        if simplify_m > 0:
            arr = shapely.simplify(arr, simplify_m, preserve_topology=True)
        ll = gpd.GeoSeries(arr, crs=crs).to_crs(4326)
        out = np.asarray(ll.to_numpy(), dtype=object)
        if self.coord_system != "wgs84":
            from geosvc.crs import from_wgs84_geometries

            out = from_wgs84_geometries(out, coord_system=self.coord_system)
        return np.asarray(shapely.transform(out, lambda c: np.round(c, decimals)),
                          dtype=object)

    def latlon(self, geoms: Any, crs: Any) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude arrays of points (surface points of other shapes)."""
        pts = _points(np.asarray(geoms, dtype=object))
        return self.latlon_xy(np.column_stack([shapely.get_x(pts), shapely.get_y(pts)]), crs)

    def latlon_xy(self, xy: np.ndarray, crs: Any) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude arrays of ``(n, 2)`` coordinates (arrays only, no shapes)."""
        tr = pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(crs), 4326, always_xy=True)
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        if self.coord_system != "wgs84":
            from geosvc.crs import convert_lonlat

            lon, lat = convert_lonlat(lon, lat, source="wgs84", target=self.coord_system)
        return np.round(np.asarray(lat, dtype=float), 6), np.round(np.asarray(lon, dtype=float), 6)


def _features(geoms: np.ndarray, props: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (``id`` = row position) of the non-empty geometries."""
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    feats = [{"type": "Feature", "id": str(i), "properties": dict(props[i]),
              "geometry": shapely.geometry.mapping(geoms[i])}
             for i in np.flatnonzero(ok).tolist()]
    return {"type": "FeatureCollection", "features": feats}


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


@dataclass(frozen=True)
class _Tiles:
    """A basemap: tile URL, attribution and the datum its tiles are drawn in."""

    name: str
    url: str
    attr: str
    coord_system: str
    subdomains: str = "abc"
    max_zoom: int = 19

    def layer(self) -> folium.TileLayer:
        return folium.TileLayer(tiles=self.url, attr=self.attr, name=self.name,
                                subdomains=self.subdomains, max_zoom=self.max_zoom,
                                overlay=False, control=True)


#: Hosts of tile services drawn in GCJ-02 (overlays are shifted to match them).
_GCJ02_HOSTS = ("autonavi.com", "amap.com", "gtimg.com", "qq.com")


def _check_basemap(basemap: str | None) -> _Tiles | None:
    """The tiles of ``basemap`` (``None``, ``osm``, ``gaode`` or a ``{z}/{x}/{y}`` URL)."""
    if basemap is None or basemap == "none":
        return None
    if basemap == "osm":
        return _Tiles("OpenStreetMap", "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                      "&copy; OpenStreetMap contributors", "wgs84")
    if basemap == "gaode":
        return _Tiles("高德地图", GAODE_URL, "高德地图", "gcj02", subdomains="1234",
                      max_zoom=18)
    if is_tile_url(basemap):
        from urllib.parse import urlsplit

        host = urlsplit(basemap).hostname or "tiles"
        gcj = any(host == h or host.endswith("." + h) for h in _GCJ02_HOSTS)
        return _Tiles(host, basemap, esc(host), "gcj02" if gcj else "wgs84")
    raise InputError(f"basemap={basemap!r} is not supported; use None (no tiles, offline), "
                     f"{', '.join(BASEMAPS)}, or a tile URL with {{z}}, {{x}} and {{y}} "
                     "(e.g. https://tile.example.org/{z}/{x}/{y}.png)")


def is_tile_url(value: str) -> bool:
    """Whether ``value`` is an http(s) tile URL template with ``{z}``, ``{x}`` and ``{y}``."""
    return value.startswith(("http://", "https://")) and all(
        k in value for k in ("{z}", "{x}", "{y}"))


def _add_assets(m: folium.Map, inline: bool) -> None:
    """Inline Leaflet (offline pages) and drop folium's other CDN scripts and styles."""
    code: str | None = None
    if inline:
        try:
            base = resources.files("geosvc.viz") / "_assets"
            js = (base / "leaflet.js").read_text(encoding="utf-8")
            css = (base / "leaflet.css").read_text(encoding="utf-8")
            css = "\n".join(line for line in css.splitlines() if "url(images/" not in line)
            js = js.replace("</script", "<\\/script")
            code = f"<style>{css}</style>\n<script>{js}</script>"
        except OSError as exc:  # a wheel built without the asset files
            log.warning("Leaflet assets not found (%s); the map loads Leaflet from a CDN", exc)
    root = cast(Figure, m.get_root())
    if code is not None:
        m.default_js = []
        m.default_css = []
        root.header.add_child(_Raw(code), name="geosvc_leaflet")
    else:
        m.default_js = [p for p in m.default_js if p[0] == "leaflet"]
        m.default_css = [p for p in m.default_css if p[0] == "leaflet_css"]
    root.header.add_child(_Raw(_CSS), name="geosvc_css")


def _popup(title: str, rows: Sequence[tuple[str, str]], note: str = "") -> str:
    """Popup markup from already escaped pieces."""
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    tail = f"<div><i>{note}</i></div>" if note else ""
    return f'<div class="gs-pop"><b>{title}</b><table>{body}</table>{tail}</div>'


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


def _points(geoms: np.ndarray) -> np.ndarray:
    """A point per geometry (points as they are; polygons their point on surface)."""
    is_point = shapely.get_type_id(geoms) == 0
    if is_point.all():
        return geoms
    out = geoms.copy()
    out[~is_point] = shapely.point_on_surface(geoms[~is_point])
    return out


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
        group = folium.FeatureGroup(name=esc(ctx.t(
            "facilities", cat=category_label(ctx.profile, cat, ctx.lang))),
            show=cat == order[0])
        colour = ctx.colour(cat) if cat in ctx.cats else category_colour(cat, order)
        group.add_child(_PointLayer("icon", rows, {
            "html": f'<div class="gs-fac" style="background:{colour}"></div>',
            "size": [12, 12]}))
        group.add_to(m)
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
        group = folium.FeatureGroup(name=esc(ctx.t(
            "stations", cat=category_label(ctx.profile, cat, ctx.lang))),
            show=cat == (ctx.cats[0] if ctx.cats[0] in stations else next(iter(stations))))
        group.add_child(_PointLayer("icon", rows, {
            "html": f'<div class="gs-st" style="border-color:{ctx.colour(cat)}">{{label}}</div>',
            "size": [24, 24]}))
        group.add_to(m)
        drawn.append(cat)
    return drawn


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


def write_map(m: folium.Map, path: str | os.PathLike[str]) -> Path:
    """Write a map to an HTML file atomically (temporary file, then rename).

    Parameters
    ----------
    m
        A map from :func:`coverage_map` (or any folium map).
    path
        Target ``.html`` file; its folder is created when missing.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    html = m.get_root().render()
    out = Path(path)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    log.info("wrote %s (%.2f MB)", out, out.stat().st_size / 1e6)
    return out
