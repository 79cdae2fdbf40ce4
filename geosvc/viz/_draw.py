"""Drawing pieces of the map figure (matplotlib, on an Axes): polygons, streets, areas
shaded by coverage rate, service circles, facilities, stations, scale bar and legends.

:func:`geosvc.viz.figure_coverage_map` (:mod:`geosvc.viz._figures`) puts them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geosvc.standards import Profile
from geosvc.viz._common import drawable
from geosvc.viz.style import (
    RATE_COLOURS,
    circle_style,
    fmt_minutes,
    rate_class_index,
    rate_classes,
    text,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.path import Path as MplPath

__all__ = ["STREET_COLOUR", "add_polygons", "add_streets", "draw_areas", "draw_circles",
           "draw_facilities", "draw_stations", "finish_map_axes", "level_name",
           "occupied_cells"]


def _polygon_paths(geoms: Sequence[Any]) -> list[MplPath]:
    """One matplotlib path per (multi)polygon, holes included."""
    from matplotlib.path import Path as MplPath

    paths = []
    for geom in geoms:
        if geom is None or geom.is_empty:
            continue
        verts, codes = [], []
        for part in shapely.get_parts(geom):
            if part.geom_type != "Polygon":
                continue
            for ring in (part.exterior, *part.interiors):
                xy = np.asarray(ring.coords)[:, :2]
                if len(xy) < 3:
                    continue
                c = np.full(len(xy), MplPath.LINETO, dtype=np.uint8)
                c[0], c[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
                verts.append(xy)
                codes.append(c)
        if verts:
            paths.append(MplPath(np.concatenate(verts), np.concatenate(codes)))
    return paths


def add_polygons(ax: Axes, geoms: Sequence[Any], **kw: Any) -> None:
    """(Multi)polygons as one path collection (``kw``: its colours, widths, z-order)."""
    from matplotlib.collections import PathCollection

    paths = _polygon_paths(geoms)
    if paths:
        ax.add_collection(PathCollection(paths, **kw))


STREET_COLOUR = "#b0aaa2"
_AREA_ALPHA = 0.45


def add_streets(ax: Axes, streets: Any, crs: Any) -> None:
    """Street lines, thin and light, under everything else."""
    from matplotlib.collections import LineCollection

    from geosvc.viz._map import street_lines

    lines = street_lines(streets, crs)
    if not len(lines):
        return
    parts = shapely.get_parts(lines)
    coords, index = shapely.get_coordinates(parts, return_index=True)
    splits = np.flatnonzero(np.diff(index)) + 1
    segs = [c for c in np.split(coords, splits) if len(c) >= 2]
    ax.add_collection(LineCollection(segs, colors=STREET_COLOUR, linewidths=0.5, zorder=0.5))


def level_name(lang: str, level: str) -> str:
    """Name of an area level (``community``, ``street`` or the key itself)."""
    return text(lang, f"level_{level}") if level in ("community", "street") else level


def _rate_key(rates: np.ndarray, lang: str, level: str) -> list[Any]:
    """Legend patches of the coverage-rate classes (and "no households" when present)."""
    from matplotlib.patches import Patch

    out = [Patch(facecolor=rc.colour, edgecolor="#555555", alpha=_AREA_ALPHA, label=rc.label)
           for rc in rate_classes()]
    if (~np.isfinite(rates)).any():
        out.append(Patch(facecolor="#d9d9d9", edgecolor="#555555", alpha=_AREA_ALPHA,
                         label=text(lang, "no_data")))
    return out


def _rate_colours(rates: np.ndarray) -> list[str]:
    idx = rate_class_index(rates)
    return [RATE_COLOURS[i] if np.isfinite(r) else "#d9d9d9" for i, r in zip(idx, rates,
                                                                              strict=True)]


def _scale_bar(ax: Axes, xmin: float, xmax: float, ymin: float, ymax: float) -> None:
    width = xmax - xmin
    nice = np.array([100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000])
    length = float(nice[np.searchsorted(nice, width / 5.0, side="right") - 1]) \
        if width / 5.0 >= nice[0] else float(nice[0])
    x0, y0 = xmin + 0.04 * width, ymin + 0.04 * (ymax - ymin)
    ax.plot([x0, x0 + length], [y0, y0], color="black", linewidth=3, solid_capstyle="butt")
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(x0 + length / 2, y0 + 0.012 * (ymax - ymin), label, ha="center", va="bottom",
            fontsize=9)


_RASTER_CELLS = 600


def occupied_cells(ax: Axes, x: np.ndarray, y: np.ndarray,
                   extent: tuple[float, float, float, float], colour: str, *,
                   zorder: int) -> None:
    """The cells (of about 600 across the extent) that hold a point, in one colour."""
    from matplotlib.colors import to_rgba

    xmin, xmax, ymin, ymax = extent
    side = max(xmax - xmin, ymax - ymin, 1e-9) / _RASTER_CELLS
    nx = max(1, int(np.ceil((xmax - xmin) / side)))
    ny = max(1, int(np.ceil((ymax - ymin) / side)))
    ok = np.isfinite(x) & np.isfinite(y)
    counts, _, _ = np.histogram2d(x[ok], y[ok], bins=(nx, ny),
                                  range=((xmin, xmin + nx * side), (ymin, ymin + ny * side)))
    img = np.zeros((ny, nx, 4))
    img[counts.T > 0] = to_rgba(colour)
    ax.imshow(img, origin="lower", extent=(xmin, xmin + nx * side, ymin, ymin + ny * side),
              interpolation="nearest", zorder=zorder)


def finish_map_axes(ax: Axes, title: str, handles: list[Any], rate_key: list[Any],
                    rate_title: str) -> None:
    """Scale bar, no ticks, the title, the legend and (lower right) the area colour key."""
    ax.autoscale_view()
    xmin, xmax = ax.get_xlim()
    ymin, ymax = ax.get_ylim()
    _scale_bar(ax, xmin, xmax, ymin, ymax)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=12)
    if handles:
        leg = ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)
        if rate_key:
            ax.add_artist(leg)
    if rate_key:  # the colour key of the area shading
        ax.legend(handles=rate_key, loc="lower right", fontsize=8, framealpha=0.9,
                  title=rate_title, title_fontsize=8)


def draw_areas(ax: Axes, area_frames: dict[str, gpd.GeoDataFrame], category: str,
               crs: Any, flang: str) -> tuple[list[Any], str]:
    """Areas of the main level shaded by coverage rate; their colour key and the level."""
    if not area_frames:
        return [], ""
    level = "community" if "community" in area_frames else next(iter(area_frames))
    fr = area_frames[level].to_crs(crs)
    rate_col = f"{category}_coverage_rate"
    rates = pd.to_numeric(fr[rate_col], errors="coerce").to_numpy(dtype=float) \
        if rate_col in fr.columns else np.full(len(fr), np.nan)
    add_polygons(ax, fr.geometry.to_numpy(), facecolors=_rate_colours(rates),
                 edgecolors="#555555", linewidths=0.6, alpha=_AREA_ALPHA, zorder=1)
    return _rate_key(rates, flang, level), level


def draw_circles(ax: Axes, circ: gpd.GeoDataFrame | None, category: str, crs: Any,
                 colour: str, prof: Profile, flang: str) -> list[Any]:
    """Service circles, one line style per threshold (widest drawn first); legend handles."""
    from matplotlib.patches import Patch

    handles: list[Any] = []
    if circ is None:
        return handles
    circ = circ[drawable(circ)].to_crs(crs)
    mins = (pd.to_numeric(circ["threshold_min"], errors="coerce").to_numpy(dtype=float)
            if "threshold_min" in circ.columns else np.full(len(circ), np.nan))
    levels = sorted(float(v) for v in np.unique(mins[np.isfinite(mins)])) or [np.nan]
    for rank, minutes in reversed(list(enumerate(levels))):
        sel = (mins == minutes) if np.isfinite(minutes) else np.ones(len(circ), bool)
        cst = circle_style(rank)
        ls: Any = (0, tuple(float(v) for v in cst["dashArray"].split())) \
            if cst["dashArray"] else "solid"
        add_polygons(ax, circ.geometry.to_numpy()[sel], facecolors=colour,
                     edgecolors=colour, linewidths=cst["weight"] * 0.7,
                     linestyles=ls, alpha=min(1.0, cst["fillOpacity"] + 0.05), zorder=2)
        thr = fmt_minutes(minutes) if np.isfinite(minutes) else fmt_minutes(
            prof.category(category).threshold_min
            if category in prof.category_names else 15.0)
        handles.append(Patch(facecolor=colour, edgecolor=colour, linestyle=ls,
                             alpha=min(1.0, 2 * cst["fillOpacity"] + 0.1),
                             label=f"{text(flang, 'circle')} "
                                   f"({text(flang, 'threshold', minutes=thr)})"))
    return handles


def draw_facilities(ax: Axes, facilities: gpd.GeoDataFrame | None, category: str, crs: Any,
                    colour: str, flang: str) -> list[Any]:
    """Existing facilities of the category as squares."""
    from matplotlib.lines import Line2D

    if facilities is None or not len(facilities):
        return []
    fac = facilities[(facilities["category"] == category) & drawable(facilities)].to_crs(crs)
    if not len(fac):
        return []
    fp = shapely.point_on_surface(fac.geometry.to_numpy())
    ax.scatter(shapely.get_x(fp), shapely.get_y(fp), s=34, marker="s", c=colour,
               edgecolors="white", linewidths=0.8, zorder=6)
    return [Line2D([], [], linestyle="none", marker="s", color=colour, markeredgecolor="white",
                   markersize=7, label=f"{text(flang, 'facility')} ({len(fac)})")]


def draw_stations(ax: Axes, st_frame: gpd.GeoDataFrame | None, crs: Any, colour: str,
                  flang: str) -> list[Any]:
    """Proposed stations as rings numbered by rank."""
    from matplotlib.lines import Line2D

    if st_frame is None:
        return []
    st = st_frame[drawable(st_frame)].to_crs(crs)
    sp = shapely.point_on_surface(st.geometry.to_numpy())
    sx, sy = shapely.get_x(sp), shapely.get_y(sp)
    ranks = st["rank"].to_numpy() if "rank" in st.columns else np.arange(1, len(st) + 1)
    ax.scatter(sx, sy, s=230, c="white", edgecolors=colour, linewidths=2.5, zorder=7)
    for xi, yi, r in zip(sx, sy, ranks, strict=True):
        ax.text(xi, yi, str(int(r)), ha="center", va="center", fontsize=8, zorder=8)
    return [Line2D([], [], linestyle="none", marker="o", markerfacecolor="white",
                   markeredgecolor=colour, markeredgewidth=2, markersize=10,
                   label=text(flang, "station"))]
