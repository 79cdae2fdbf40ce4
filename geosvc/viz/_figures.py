"""Static PNG figures (matplotlib, drawn on an Agg canvas without pyplot).

Figures are built with :class:`matplotlib.figure.Figure` directly, so no backend is
selected and no global pyplot state is touched.  Chinese labels need a CJK font; when
``fc-list :lang=zh`` (or matplotlib's font list) finds none, the figures fall back to
English labels and say so in the log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geosvc._errors import InputError
from geosvc._schema import status_col, time_col
from geosvc.io import atomic_path
from geosvc.standards import Profile
from geosvc.viz._common import (
    NOT_COVERED,
    as_frames,
    coverage_rate,
    drawable,
    household_weights,
    metric_crs,
    pick_categories,
)
from geosvc.viz._fonts import cjk_font
from geosvc.viz.style import (
    COVERED_COLOUR,
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
    text,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.path import Path as MplPath

__all__ = [
    "cjk_font",
    "figure_coverage_curve",
    "figure_coverage_map",
    "figure_time_distribution",
    "write_figures",
]

log = logging.getLogger(__name__)

DPI = 120
def _figure_lang(lang: str) -> str:
    text(lang, "title", minutes=15)  # validates lang
    if lang == "zh" and cjk_font() is None:
        log.info("no CJK font found (fc-list :lang=zh is empty; e.g. apt-get install "
                 "fonts-noto-cjk); figures use English labels")
        return "en"
    return lang


@contextmanager
def _style(lang: str) -> Iterator[None]:
    """Font settings for one figure (restored afterwards)."""
    import matplotlib

    params: Any = {"axes.unicode_minus": False, "font.size": 10}
    font = cjk_font() if lang == "zh" else None
    if font is not None:
        params["font.family"] = "sans-serif"
        params["font.sans-serif"] = [font, "DejaVu Sans"]
    with matplotlib.rc_context(params):
        yield


def _new_figure(size: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI, layout="constrained")


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    log.info("wrote %s", out)
    return out


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


def _add_polygons(ax: Axes, geoms: Sequence[Any], **kw: Any) -> None:
    from matplotlib.collections import PathCollection

    paths = _polygon_paths(geoms)
    if paths:
        ax.add_collection(PathCollection(paths, **kw))


_STREET_COLOUR = "#b0aaa2"
_AREA_ALPHA = 0.45


def _add_streets(ax: Axes, streets: Any, crs: Any) -> None:
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
    ax.add_collection(LineCollection(segs, colors=_STREET_COLOUR, linewidths=0.5, zorder=0.5))


def _level_name(lang: str, level: str) -> str:
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


#: Above this many households of one status a map figure draws the cells they occupy
#: (a raster of about 600 x 600 cells) instead of one marker each: same picture at print
#: size, drawing time independent of the number of households.
SCATTER_MAX_POINTS = 50_000
_RASTER_CELLS = 600


def _occupied_cells(ax: Axes, x: np.ndarray, y: np.ndarray,
                    extent: tuple[float, float, float, float], colour: str, *,
                    zorder: int) -> None:
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


def figure_coverage_map(
    households: gpd.GeoDataFrame,
    category: str,
    *,
    areas: Mapping[str, gpd.GeoDataFrame] | None = None,
    circles: Mapping[str, gpd.GeoDataFrame | None] | gpd.GeoDataFrame | None = None,
    stations: Mapping[str, gpd.GeoDataFrame] | None = None,
    facilities: gpd.GeoDataFrame | None = None,
    streets: Any = None,
    profile: Profile | str | None = None,
    lang: str = "zh",
    path: str | os.PathLike[str],
) -> Path:
    """PNG map of one category: households by status, circles, areas, stations.

    Areas (the ``community`` level, or the first given) are shaded by the category's
    household coverage rate (with its colour key, lower right); streets are light grey
    lines; each circle threshold has its own line style (solid, dashed, dotted);
    covered households are small blue dots, households not covered are drawn in the
    category colour (``unreachable`` and ``off_network`` with their own markers);
    existing facilities are squares and proposed stations are numbered by rank.  Every
    colour on the figure has a legend entry.

    Parameters
    ----------
    households
        ``CoverageResult.households`` (``status_<category>`` needed).
    category
        Category to draw.
    areas, circles, stations, facilities, streets
        As for :func:`geosvc.viz.coverage_map`; each optional.
    profile
        Profile for labels and the threshold.
    lang
        ``"zh"`` or ``"en"`` (English when no CJK font is installed).
    path
        PNG file to write (atomically).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    prof = resolve_profile(profile)
    pick_categories(households, prof, [category])
    flang = _figure_lang(lang)
    crs = metric_crs(households, "households")
    hh = households.to_crs(crs)
    colour = category_colour(category, [c for c in prof.category_names
                                        if status_col(c) in hh.columns] or [category])
    label = category_label(prof, category, flang)
    ok = drawable(hh)
    minx, miny, maxx, maxy = hh.geometry[ok].total_bounds if ok.any() else (0, 0, 1, 1)
    ratio = float(np.clip((maxy - miny) / max(maxx - minx, 1e-9), 0.4, 2.0))
    with _style(flang):
        fig = _new_figure((9.0, 9.0 * ratio + 0.8))
        ax = fig.add_subplot()
        ax.set_aspect("equal")
        from matplotlib.lines import Line2D

        handles: list[Any] = []
        if streets is not None:
            _add_streets(ax, streets, crs)
            handles.append(Line2D([], [], color=_STREET_COLOUR, linewidth=1.2,
                                  label=text(flang, "street_line")))
        rate_key, level = _draw_areas(ax, dict(areas or {}), category, crs, flang)
        handles += _draw_circles(ax, as_frames(circles, "circles").get(category), category,
                                 crs, colour, prof, flang)
        handles += _draw_households(ax, hh, category, colour, flang, (minx, maxx, miny, maxy))
        handles += _draw_facilities(ax, facilities, category, crs, colour, flang)
        handles += _draw_stations(ax, as_frames(stations, "stations").get(category), crs,
                                  colour, flang)
        ax.autoscale_view()
        xmin, xmax = ax.get_xlim()
        ymin, ymax = ax.get_ylim()
        _scale_bar(ax, xmin, xmax, ymin, ymax)
        ax.set_xticks([])
        ax.set_yticks([])
        rate, _ = coverage_rate(hh, category)
        ax.set_title(text(flang, "fig_map_title", cat=label, rate=fmt_pct(rate)), fontsize=12)
        if handles:
            leg = ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)
            if rate_key:
                ax.add_artist(leg)
        if rate_key:  # the colour key of the area shading
            ax.legend(handles=rate_key, loc="lower right", fontsize=8, framealpha=0.9,
                      title=text(flang, "legend_rate", level=_level_name(flang, level)),
                      title_fontsize=8)
        return _save(fig, path)


def _draw_areas(ax: Axes, area_frames: dict[str, gpd.GeoDataFrame], category: str,
                crs: Any, flang: str) -> tuple[list[Any], str]:
    """Areas of the main level shaded by coverage rate; their colour key and the level."""
    if not area_frames:
        return [], ""
    level = "community" if "community" in area_frames else next(iter(area_frames))
    fr = area_frames[level].to_crs(crs)
    rate_col = f"{category}_coverage_rate"
    rates = pd.to_numeric(fr[rate_col], errors="coerce").to_numpy(dtype=float) \
        if rate_col in fr.columns else np.full(len(fr), np.nan)
    _add_polygons(ax, fr.geometry.to_numpy(), facecolors=_rate_colours(rates),
                  edgecolors="#555555", linewidths=0.6, alpha=_AREA_ALPHA, zorder=1)
    return _rate_key(rates, flang, level), level


def _draw_circles(ax: Axes, circ: gpd.GeoDataFrame | None, category: str, crs: Any,
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
        _add_polygons(ax, circ.geometry.to_numpy()[sel], facecolors=colour,
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


def _draw_households(ax: Axes, hh: gpd.GeoDataFrame, category: str, colour: str, flang: str,
                     extent: tuple[float, float, float, float]) -> list[Any]:
    """Households by status (a raster of occupied cells above the point budget)."""
    from matplotlib.lines import Line2D

    handles: list[Any] = []
    pts = hh.geometry.to_numpy()
    if not (shapely.get_type_id(pts) == 0).all():
        pts = shapely.point_on_surface(pts)
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    status = hh[status_col(category)].to_numpy()
    weights = household_weights(hh)
    styles: list[tuple[str, dict[str, Any], int]] = [("covered", dict(s=5, c=COVERED_COLOUR, marker="o", linewidths=0), 3),
              ("uncovered", dict(s=12, c=colour, marker="o", edgecolors="#222222",
                                 linewidths=0.3), 4),
              ("unreachable", dict(s=18, c="#000000", marker="x", linewidths=0.9), 5),
              ("off_network", dict(s=14, c="#7f7f7f", marker="^", linewidths=0), 5)]
    for st, kw, z in styles:
        sel = status == st
        if not sel.any():
            continue
        if sel.sum() > SCATTER_MAX_POINTS:  # a raster of occupied cells, not 1M markers
            _occupied_cells(ax, x[sel], y[sel], extent, str(kw["c"]), zorder=z)
        else:
            ax.scatter(x[sel], y[sel], zorder=z, **kw)
        handles.append(Line2D([], [], linestyle="none", marker=kw["marker"],
                              color=kw["c"], markersize=6 if st != "covered" else 4,
                              label=text(flang, "n_households",
                                         label=text(flang, f"status_{st}"),
                                         n=fmt_int(weights[sel].sum()))))
    return handles


def _draw_facilities(ax: Axes, facilities: gpd.GeoDataFrame | None, category: str, crs: Any,
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


def _draw_stations(ax: Axes, st_frame: gpd.GeoDataFrame | None, crs: Any, colour: str,
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


def figure_time_distribution(
    households: pd.DataFrame,
    categories: Sequence[str] | None = None,
    *,
    profile: Profile | str | None = None,
    lang: str = "zh",
    path: str | os.PathLike[str],
) -> Path:
    """Histogram of walking minutes to the nearest facility, one panel per category.

    Bars are weighted by households (one-minute bins); the threshold is a dashed line,
    bars beyond it are grey, times beyond four thresholds are gathered in the last bin
    and households with no finite time (unreachable, off the network) are counted in
    the corner.

    Parameters
    ----------
    households
        ``CoverageResult.households`` with ``time_<cat>_min`` and ``status_<cat>``.
    categories
        Categories to draw (default: all that the households carry).
    profile, lang, path
        Labels and thresholds; language; PNG file to write.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    prof = resolve_profile(profile)
    cats = pick_categories(households, prof, categories)
    flang = _figure_lang(lang)
    w = household_weights(households)
    from matplotlib.ticker import FuncFormatter

    with _style(flang):
        fig = _new_figure((5.2 * len(cats), 4.2))
        axes = fig.subplots(1, len(cats), squeeze=False)[0]
        for ax, cat in zip(axes, cats, strict=True):
            colour = category_colour(cat, cats)
            thr = prof.category(cat).threshold_min if cat in prof.category_names else 15.0
            col = time_col(cat)
            t = households[col].to_numpy(dtype=float) if col in households.columns else \
                np.full(len(households), np.nan)
            fin = np.isfinite(t)
            cap = float(np.ceil(4 * thr))
            tt = np.minimum(t[fin], cap - 1e-9)
            bins = np.arange(0.0, cap + 1.0, 1.0)
            inside = tt <= thr
            ax.hist([tt[inside], tt[~inside]], bins=bins, weights=[w[fin][inside],
                    w[fin][~inside]], stacked=True, color=[colour, UNREACHABLE_COLOUR])
            ax.axvline(thr, color="black", linestyle="--", linewidth=1.2)
            ax.text(thr, ax.get_ylim()[1] * 0.97, " " + text(flang, "threshold",
                    minutes=fmt_minutes(thr)), ha="left", va="top", fontsize=9)
            status = households[status_col(cat)].to_numpy()
            lost = np.isin(status, NOT_COVERED) & ~fin
            if lost.any():
                ax.text(0.98, 0.85, text(flang, "fig_unreachable", n=fmt_int(w[lost].sum())),
                        transform=ax.transAxes, ha="right", va="top", fontsize=8)
            rate, _ = coverage_rate(households, cat)
            ax.set_title(text(flang, "fig_time_sub", cat=category_label(prof, cat, flang),
                              rate=fmt_pct(rate)), fontsize=10)
            ax.set_xlabel(text(flang, "fig_time_x"))
            ax.set_ylabel(text(flang, "fig_time_y"))
            ax.set_xlim(0, cap)
            ax.xaxis.set_major_formatter(FuncFormatter(
                lambda v, _pos, cap=cap: f"≥{v:g}" if v >= cap else f"{v:g}"))
        fig.suptitle(text(flang, "fig_time_title"), fontsize=12)
        return _save(fig, path)


def _curve_frame(curves: pd.DataFrame | Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    if isinstance(curves, Mapping):
        parts = [c.assign(category=k) if "category" not in c.columns else c
                 for k, c in curves.items() if c is not None and len(c)]
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["n_stations", "coverage_rate", "category"])
    else:
        frame = curves
    missing = {"n_stations", "coverage_rate", "category"} - set(frame.columns)
    if missing:
        raise InputError(f"coverage curves need columns n_stations, coverage_rate, category; "
                         f"missing {sorted(missing)}")
    return frame


def figure_coverage_curve(
    curves: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    profile: Profile | str | None = None,
    lang: str = "zh",
    path: str | os.PathLike[str],
) -> Path:
    """Household coverage against the number of new stations, one line per category.

    Parameters
    ----------
    curves
        ``n_stations``, ``coverage_rate`` (0-1) and ``category`` columns (the
        ``SitingPlan.curve`` frames, concatenated or as a dict by category).
    profile, lang, path
        Labels; language; PNG file to write.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    prof = resolve_profile(profile)
    frame = _curve_frame(curves)
    flang = _figure_lang(lang)
    cats = list(dict.fromkeys(frame["category"].astype(str)))
    with _style(flang):
        fig = _new_figure((7.0, 4.6))
        ax = fig.add_subplot()
        for cat in cats:
            c = frame[frame["category"].astype(str) == cat].sort_values("n_stations")
            n = c["n_stations"].to_numpy(dtype=float)
            r = 100.0 * c["coverage_rate"].to_numpy(dtype=float)
            colour = category_colour(cat, cats)
            ax.plot(n, r, marker="o", color=colour, linewidth=2, markersize=5,
                    label=category_label(prof, cat, flang))
            if len(n):
                ax.annotate(f"{r[-1]:.1f}%", (n[-1], r[-1]), textcoords="offset points",
                            xytext=(4, 4), fontsize=8, color=colour)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(text(flang, "fig_curve_x"))
        ax.set_ylabel(text(flang, "fig_curve_y"))
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        if cats:
            ax.legend(loc="lower right", fontsize=9)
        ax.set_title(text(flang, "fig_curve_title"), fontsize=12)
        return _save(fig, path)


def write_figures(
    households: gpd.GeoDataFrame,
    *,
    categories: Sequence[str] | None = None,
    areas: Mapping[str, gpd.GeoDataFrame] | None = None,
    circles: Mapping[str, gpd.GeoDataFrame | None] | gpd.GeoDataFrame | None = None,
    stations: Mapping[str, gpd.GeoDataFrame] | None = None,
    curves: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    facilities: gpd.GeoDataFrame | None = None,
    streets: Any = None,
    profile: Profile | str | None = None,
    lang: str = "zh",
    out_dir: str | os.PathLike[str],
) -> list[Path]:
    """Write every figure into ``out_dir``.

    Files: ``coverage_<category>.png`` per category, ``walking_time.png`` and, when
    ``curves`` has rows, ``coverage_curve.png``.

    Returns
    -------
    list of pathlib.Path
        The written files, in that order.
    """
    prof = resolve_profile(profile)
    cats = pick_categories(households, prof, categories)
    out = Path(out_dir)
    paths = [figure_coverage_map(households, cat, areas=areas, circles=circles,
                                 stations=stations, facilities=facilities, streets=streets,
                                 profile=prof,
                                 lang=lang, path=out / f"coverage_{cat}.png") for cat in cats]
    paths.append(figure_time_distribution(households, cats, profile=prof, lang=lang,
                                          path=out / "walking_time.png"))
    if curves is not None and len(_curve_frame(curves)):
        paths.append(figure_coverage_curve(curves, profile=prof, lang=lang,
                                           path=out / "coverage_curve.png"))
    return paths
