"""QGIS-ready outputs: layer styles (QML) stored in the GeoPackages.

QGIS reads a GeoPackage's ``layer_styles`` table (the table QGIS itself writes with
"Save as default") and opens each layer with its default style.  geosvc writes one there
for the household, area, circle and station layers, drawn as on the HTML map: households
by status (outside the circle in the category's colour, unreachable grey), communities by
coverage rate (the map's five classes), one circle style per category and threshold
(solid, dashed, dotted), proposed stations as rings labelled with their rank.

The table is a plain SQLite table, not registered in ``gpkg_contents``; GDAL still lists it
as a layer ``layer_styles``, after the data layers (QGIS finds it only that way, through
``GDALDatasetGetLayerByName``).  A plain ``gpd.read_file(path)`` therefore returns the data
layer, and pyogrio warns that the file holds more than one layer; naming the layer
(``layer="households"``) reads it silently.  geosvc's own readers skip the table.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from geosvc._schema import status_col
from geosvc.standards import Profile
from geosvc.viz.style import (
    COVERED_COLOUR,
    UNREACHABLE_COLOUR,
    category_colour,
    category_label,
    circle_style,
    fmt_minutes,
    rate_classes,
    resolve_profile,
    text,
)

__all__ = ["LayerStyle", "area_style", "circle_style_qml", "household_style",
           "read_layer_styles", "station_style", "style_outputs", "write_layer_styles"]

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class LayerStyle:
    """One QML style of one GeoPackage layer."""

    layer: str
    name: str
    qml: str
    default: bool = True
    description: str = ""


def _rgba(hex_colour: str, alpha: float = 1.0) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"{r},{g},{b},{int(round(alpha * 255))}"


def _options(parent: ET.Element, props: dict[str, str]) -> None:
    """Symbol-layer properties in both QML spellings (``<Option>`` and ``<prop>``)."""
    opt = ET.SubElement(parent, "Option", type="Map")
    for k, v in props.items():
        ET.SubElement(opt, "Option", name=k, type="QString", value=v)
    for k, v in props.items():
        ET.SubElement(parent, "prop", k=k, v=v)


def _symbol(symbols: ET.Element, name: str, kind: str, props: dict[str, str],
            alpha: float = 1.0) -> None:
    sym = ET.SubElement(symbols, "symbol", type=kind, name=name, alpha=f"{alpha:g}",
                        clip_to_extent="1", force_rhr="0")
    cls = {"marker": "SimpleMarker", "fill": "SimpleFill", "line": "SimpleLine"}[kind]
    layer = ET.SubElement(sym, "layer", {"class": cls, "enabled": "1", "pass": "0",
                                         "locked": "0"})
    _options(layer, props)


def _marker(colour: str, *, outline: str = "35,35,35,255", size: float = 2.0,
            outline_width: float = 0.2, shape: str = "circle") -> dict[str, str]:
    return {"name": shape, "color": colour, "outline_color": outline, "size": f"{size:g}",
            "size_unit": "MM", "outline_width": f"{outline_width:g}",
            "outline_width_unit": "MM", "outline_style": "solid"}


def _fill(colour: str, outline: str, *, width: float = 0.4, dash: str | None = None
          ) -> dict[str, str]:
    props = {"color": colour, "style": "solid", "outline_color": outline,
             "outline_width": f"{width:g}", "outline_width_unit": "MM",
             "outline_style": "dash" if dash else "solid", "joinstyle": "round"}
    if dash:
        props.update({"use_custom_dash": "1", "customdash": dash.replace(" ", ";"),
                      "customdash_unit": "Pixel"})
    return props


def _document(renderer: ET.Element, labeling: ET.Element | None = None) -> str:
    root = ET.Element("qgis", version="3.28.0", styleCategories="Symbology|Labeling")
    root.append(renderer)
    if labeling is not None:
        root.append(labeling)
    ET.SubElement(root, "blendMode").text = "0"
    ET.SubElement(root, "featureBlendMode").text = "0"
    ET.SubElement(root, "layerGeometryType").text = "0"
    body = ET.tostring(root, encoding="unicode")
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body


def _renderer(kind: str, **attrs: str) -> tuple[ET.Element, ET.Element]:
    r = ET.Element("renderer-v2", {"type": kind, "symbollevels": "0", "enableorderby": "0",
                                   "forceraster": "0", **attrs})
    return r, ET.Element("symbols")


def household_style(category: str, profile: Profile | str | None = None, *,
                    lang: str = "zh", categories: Sequence[str] | None = None) -> LayerStyle:
    """Households categorised by ``status_<category>`` (the map's colours and labels)."""
    prof = resolve_profile(profile)
    colour = category_colour(category, list(categories or prof.category_names))
    rend, symbols = _renderer("categorizedSymbol", attr=status_col(category))
    cats = ET.SubElement(rend, "categories")
    looks = {"covered": _marker(_rgba(COVERED_COLOUR), size=1.4, outline_width=0),
             "uncovered": _marker(_rgba(colour), size=2.2),
             "unreachable": _marker(_rgba(UNREACHABLE_COLOUR), outline=_rgba(colour), size=2.2,
                                    outline_width=0.5),
             "off_network": _marker(_rgba(UNREACHABLE_COLOUR), outline=_rgba(colour), size=2.2,
                                    outline_width=0.5, shape="triangle"),
             "invalid": _marker("200,200,200,255", size=1.2, shape="cross")}
    for i, (status, props) in enumerate(looks.items()):
        ET.SubElement(cats, "category", value=status, symbol=str(i),
                      label=text(lang, f"status_{status}"), render="true")
        _symbol(symbols, str(i), "marker", props)
    rend.append(symbols)
    return LayerStyle("households", f"{category_label(prof, category, lang)}",
                      _document(rend), description=f"households by {status_col(category)}")


def area_style(layer: str, category: str, profile: Profile | str | None = None, *,
               lang: str = "zh") -> LayerStyle:
    """Areas graduated by ``<category>_coverage_rate`` in the map's five classes."""
    prof = resolve_profile(profile)
    attr = f"{category}_coverage_rate"
    rend, symbols = _renderer("graduatedSymbol", attr=attr, graduatedMethod="GraduatedColor")
    ranges = ET.SubElement(rend, "ranges")
    for i, rc in enumerate(rate_classes()):
        ET.SubElement(ranges, "range", lower=f"{rc.lo:g}", upper=f"{rc.hi:g}", symbol=str(i),
                      label=rc.label, render="true")
        _symbol(symbols, str(i), "fill", _fill(_rgba(rc.colour, 0.55), "85,85,85,255", width=0.3))
    rend.append(symbols)
    return LayerStyle(layer, category_label(prof, category, lang), _document(rend),
                      description=f"{layer} by {attr}")


def circle_style_qml(layer: str, pairs: Sequence[tuple[str, float]],
                     profile: Profile | str | None = None, *, lang: str = "zh") -> LayerStyle:
    """Circles with one rule per (category, threshold): the map's colours and line styles."""
    prof = resolve_profile(profile)
    cats = list(dict.fromkeys(c for c, _ in pairs))
    rend, symbols = _renderer("RuleRenderer")
    rules = ET.SubElement(rend, "rules", key="root")
    for i, (cat, minutes) in enumerate(pairs):
        levels = sorted({m for c, m in pairs if c == cat})
        st = circle_style(levels.index(minutes))
        colour = category_colour(cat, cats)
        label = text(lang, "circles", minutes=fmt_minutes(minutes),
                     cat=category_label(prof, cat, lang))
        ET.SubElement(rules, "rule", key=f"r{i}", symbol=str(i), label=label,
                      filter=f"\"category\" = '{cat}' AND \"threshold_min\" = {minutes:g}")
        _symbol(symbols, str(i), "fill", _fill(_rgba(colour, float(st["fillOpacity"])),
                                               _rgba(colour, 0.85), width=0.5,
                                               dash=st["dashArray"]))
    rend.append(symbols)
    return LayerStyle(layer, "service circles", _document(rend),
                      description="one rule per category and threshold")


def station_style(layer: str, category: str, profile: Profile | str | None = None, *,
                  lang: str = "zh") -> LayerStyle:
    """Proposed stations: white rings in the category's colour, labelled with ``rank``."""
    prof = resolve_profile(profile)
    colour = category_colour(category, list(prof.category_names))
    rend, symbols = _renderer("singleSymbol")
    _symbol(symbols, "0", "marker", _marker("255,255,255,255", outline=_rgba(colour),
                                            size=5.0, outline_width=0.9))
    rend.append(symbols)
    lab = ET.Element("labeling", type="simple")
    settings = ET.SubElement(lab, "settings", calloutType="simple")
    ET.SubElement(settings, "text-style", fieldName="rank", isExpression="0", fontSize="8",
                  fontWeight="75", textColor="17,17,17,255", fontSizeUnit="Point")
    ET.SubElement(settings, "placement", placement="1", offsetType="0", quadOffset="4")
    ET.SubElement(settings, "rendering", obstacle="1", drawLabels="1")
    return LayerStyle(layer, category_label(prof, category, lang), _document(rend, lab),
                      description="proposed stations by rank")


_CREATE = """CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
  f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT,
  styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
  update_time DATETIME DEFAULT CURRENT_TIMESTAMP)"""


def write_layer_styles(path: str | os.PathLike[str], styles: Sequence[LayerStyle]) -> int:
    """Store ``styles`` in the GeoPackage's ``layer_styles`` table (replacing same names).

    Layers that the file does not hold are skipped; one default style per layer.

    Returns
    -------
    int
        Number of styles written.
    """
    con = sqlite3.connect(str(path))
    try:
        geom = dict(con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
        con.execute(_CREATE)
        n = 0
        for st in styles:
            if st.layer not in geom:
                continue
            con.execute("DELETE FROM layer_styles WHERE f_table_name = ? AND styleName = ?",
                        (st.layer, st.name))
            if st.default:
                con.execute("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?",
                            (st.layer,))
            con.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, "
                        "f_table_name, f_geometry_column, styleName, styleQML, styleSLD, "
                        "useAsDefault, description, owner, ui) VALUES "
                        "('', '', ?, ?, ?, ?, '', ?, ?, 'geosvc', '')",
                        (st.layer, geom[st.layer], st.name, st.qml, int(st.default),
                         st.description))
            n += 1
        con.commit()
    finally:
        con.close()
    return n


def read_layer_styles(path: str | os.PathLike[str]) -> list[dict[str, object]]:
    """The rows of a GeoPackage's ``layer_styles`` table (empty when there is none)."""
    con = sqlite3.connect(str(path))
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'layer_styles'").fetchone():
            return []
        cur = con.execute("SELECT f_table_name, f_geometry_column, styleName, styleQML, "
                          "useAsDefault, description FROM layer_styles ORDER BY id")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def style_outputs(out_dir: str | os.PathLike[str], categories: Sequence[str],
                  profile: Profile | str | None = None, *, lang: str = "zh") -> int:
    """Add QGIS styles to the GeoPackages of a run folder (those that exist).

    ``households.gpkg`` (one style per category, the first the default), ``areas.gpkg``
    (every level by the first category's coverage rate, the others as extra styles),
    ``service_circles.gpkg`` (both layers) and ``siting.gpkg`` (``stations_<category>``).

    Returns
    -------
    int
        Number of styles written.
    """
    out = Path(out_dir)
    prof = resolve_profile(profile)
    cats = list(categories)
    n = 0
    hh = out / "households.gpkg"
    if hh.exists() and cats:
        n += write_layer_styles(hh, [
            LayerStyle(s.layer, s.name, s.qml, default=i == 0, description=s.description)
            for i, s in enumerate(household_style(c, prof, lang=lang, categories=cats)
                                  for c in cats)])
    areas = out / "areas.gpkg"
    if areas.exists() and cats:
        con = sqlite3.connect(str(areas))
        try:
            levels = [r[0] for r in con.execute("SELECT table_name FROM gpkg_geometry_columns")]
        finally:
            con.close()
        for lv in levels:  # a style per category whose rate column the level has
            have = [c for c in cats if f"{c}_coverage_rate" in _columns(areas, lv)]
            n += write_layer_styles(areas, [
                LayerStyle(st.layer, st.name, st.qml, default=i == 0,
                           description=st.description)
                for i, st in enumerate(area_style(lv, c, prof, lang=lang) for c in have)])
    circles = out / "service_circles.gpkg"
    if circles.exists():
        n += write_layer_styles(circles, [
            circle_style_qml(layer, _pairs(circles, layer), prof, lang=lang)
            for layer in ("category_circles", "facility_circles")])
    siting = out / "siting.gpkg"
    if siting.exists():
        n += write_layer_styles(siting, [station_style(f"stations_{c}", c, prof, lang=lang)
                                         for c in cats])
    log.info("QGIS styles: %d written to the GeoPackages in %s", n, out)
    return n


def _columns(path: Path, layer: str) -> set[str]:
    con = sqlite3.connect(str(path))
    try:
        return {str(r[1]) for r in con.execute(f'PRAGMA table_info("{layer}")')}
    finally:
        con.close()


def _pairs(path: Path, layer: str) -> list[tuple[str, float]]:
    """The (category, threshold) pairs present in a circle layer."""
    con = sqlite3.connect(str(path))
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (layer,)).fetchone():
            return []
        rows = con.execute(f'SELECT DISTINCT category, threshold_min FROM "{layer}" '
                           "ORDER BY category, threshold_min").fetchall()
    finally:
        con.close()
    return [(str(c), float(t)) for c, t in rows if c is not None and t is not None]
