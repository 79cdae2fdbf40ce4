"""Leaflet plumbing of the coverage map: page assets and CSS, tiles, custom elements,
the display projection (WGS-84 or GCJ-02 for Gaode tiles), popups and the atomic write."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

import folium
import geopandas as gpd
import jinja2
import numpy as np
import pyproj
import shapely
from branca.element import Element, Figure, MacroElement

from geosvc._errors import InputError
from geosvc.io import atomic_path
from geosvc.viz._common import (
    esc,
    js_literal,
)

__all__ = ["BASEMAPS", "is_tile_url", "write_map"]

log = logging.getLogger(__name__)


BASEMAPS = ("osm", "gaode")


GAODE_URL = ("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
             "&x={x}&y={y}&z={z}")


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


def _points(geoms: np.ndarray) -> np.ndarray:
    """A point per geometry (points as they are; polygons their point on surface)."""
    is_point = shapely.get_type_id(geoms) == 0
    if is_point.all():
        return geoms
    out = geoms.copy()
    out[~is_point] = shapely.point_on_surface(geoms[~is_point])
    return out


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
