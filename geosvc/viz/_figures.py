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
from geosvc.viz._draw import (
    STREET_COLOUR,
    add_streets,
    draw_areas,
    draw_circles,
    draw_facilities,
    draw_stations,
    finish_map_axes,
    level_name,
    occupied_cells,
)
from geosvc.viz._fonts import cjk_font
from geosvc.viz.style import (
    COVERED_COLOUR,
    UNREACHABLE_COLOUR,
    category_colour,
    category_label,
    fmt_int,
    fmt_minutes,
    fmt_pct,
    resolve_profile,
    text,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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


#: Above this many households of one status a map figure draws the cells they occupy
#: (a raster of about 600 x 600 cells) instead of one marker each: same picture at print
#: size, drawing time independent of the number of households.
SCATTER_MAX_POINTS = 50_000


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
            add_streets(ax, streets, crs)
            handles.append(Line2D([], [], color=STREET_COLOUR, linewidth=1.2,
                                  label=text(flang, "street_line")))
        rate_key, level = draw_areas(ax, dict(areas or {}), category, crs, flang)
        handles += draw_circles(ax, as_frames(circles, "circles").get(category), category,
                                crs, colour, prof, flang)
        handles += _draw_households(ax, hh, category, colour, flang, (minx, maxx, miny, maxy))
        handles += draw_facilities(ax, facilities, category, crs, colour, flang)
        handles += draw_stations(ax, as_frames(stations, "stations").get(category), crs,
                                 colour, flang)
        rate, _ = coverage_rate(hh, category)
        finish_map_axes(ax, text(flang, "fig_map_title", cat=label, rate=fmt_pct(rate)),
                        handles, rate_key,
                        text(flang, "legend_rate", level=level_name(flang, level)))
        return _save(fig, path)


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
            occupied_cells(ax, x[sel], y[sel], extent, str(kw["c"]), zorder=z)
        else:
            ax.scatter(x[sel], y[sel], zorder=z, **kw)
        handles.append(Line2D([], [], linestyle="none", marker=kw["marker"],
                              color=kw["c"], markersize=6 if st != "covered" else 4,
                              label=text(flang, "n_households",
                                         label=text(flang, f"status_{st}"),
                                         n=fmt_int(weights[sel].sum()))))
    return handles


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
