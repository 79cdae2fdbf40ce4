"""The look and words of geosvc's maps, shared by the HTML map, the PNG figures and the QGIS
layer styles (:mod:`geosvc.qgis`): category colours, the coverage-rate classes, service-circle
line styles by threshold, labels in Chinese and English, and number formats.

Change a colour or a label here and the map, the figures and the QGIS styles follow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from geosvc._errors import InputError
from geosvc.standards import Profile, load_profile

__all__ = [
    "COVERED_COLOUR",
    "LANGS",
    "RATE_BREAKS",
    "RATE_COLOURS",
    "UNREACHABLE_COLOUR",
    "RateClass",
    "category_colour",
    "category_label",
    "circle_style",
    "fmt_int",
    "fmt_minutes",
    "fmt_pct",
    "rate_classes",
    "rate_class_index",
    "resolve_profile",
    "subtype_label",
    "text",
]

#: Coverage-rate classes (upper bounds of all but the last) and their red-yellow-green ramp.
RATE_BREAKS = (0.5, 0.7, 0.85, 0.95)
RATE_COLOURS = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
#: Covered households (figures, QGIS) and households that cannot reach any facility.
COVERED_COLOUR = "#4f86b8"
UNREACHABLE_COLOUR = "#9e9e9e"


class RateClass(NamedTuple):
    """One coverage-rate class: ``lo <= rate < hi`` (the last class includes 1)."""

    lo: float
    hi: float
    colour: str
    label: str


def rate_classes() -> tuple[RateClass, ...]:
    """The coverage-rate classes with their colours and legend labels (``< 50%`` ... ``≥ 95%``)."""
    bounds = (0.0, *RATE_BREAKS, 1.0)
    last = len(RATE_COLOURS) - 1
    out = []
    for j, colour in enumerate(RATE_COLOURS):
        lo, hi = bounds[j], bounds[j + 1]
        label = f"≥ {lo:.0%}" if j == last else (f"< {hi:.0%}" if j == 0 else f"{lo:.0%} – {hi:.0%}")
        out.append(RateClass(lo, hi, colour, label))
    return tuple(out)


def rate_class_index(rates: Any) -> np.ndarray:
    """Index into :data:`RATE_COLOURS` of each rate (NaN gives 0; mask it yourself)."""
    return np.searchsorted(RATE_BREAKS, np.nan_to_num(np.asarray(rates, dtype=float), nan=-1.0),
                           side="right")


LANGS = ("zh", "en")


# Colour per category: strong hues distinct from the red-yellow-green coverage ramp and
# the blue covered-household grid.
_CATEGORY_COLOURS = {"elderly_care": "#8e24aa", "convenience": "#00838f"}


_EXTRA_COLOURS = ("#e65100", "#5d4037", "#827717", "#283593", "#ad1457", "#33691e")


_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "{minutes}分钟生活圈：服务覆盖与新站点建议",
        "title_coverage": "{minutes}分钟生活圈：服务覆盖",
        "uncovered": "未覆盖住户 · {cat}",
        "unreachable": "不可达住户（无路径或远离道路）· {cat}",
        "unreachable_grid": "不可达住户（{cell}米网格）· {cat}",
        "unreachable_pt": "不可达住户（无路径或远离道路）",
        "streets": "街道（简化）",
        "street_line": "街道",
        "covered_grid": "已覆盖住户（{cell}米网格）· {cat}",
        "circles": "{minutes}分钟服务圈 · {cat}",
        "facilities": "现有设施 · {cat}",
        "stations": "建议新站点 · {cat}",
        "areas": "{level}覆盖率 · {cat}",
        "outline": "{level}边界",
        "level_community": "社区",
        "level_street": "街道",
        "households": "户数",
        "elderly": "老年人",
        "time": "步行时间",
        "min": "分钟",
        "never": "不可达",
        "status_covered": "已覆盖",
        "status_uncovered": "超出服务圈",
        "status_unreachable": "路网不可达",
        "status_off_network": "距道路过远",
        "status_invalid": "数据无效",
        "name": "名称",
        "subtype": "类型",
        "floor_area": "建筑面积",
        "id": "编号",
        "snap_off": "未接入步行路网",
        "rank": "第 {rank} 号建议站点",
        "candidate": "候选点",
        "hh_new": "新增覆盖户数",
        "elderly_new": "新增覆盖老年人",
        "cum_rate": "累计覆盖率",
        "coverage_rate": "覆盖率",
        "hh_uncovered": "未覆盖户数",
        "elderly_uncovered": "未覆盖老年人",
        "shortfall": "设施面积缺口",
        "legend": "图例",
        "legend_rate": "{level}户覆盖率",
        "legend_grid": "每格已覆盖户数",
        "grid_tip": "已覆盖 {n} 户（{rows} 个居住点）",
        "gap_tip": "未覆盖 {n} 户（{rows} 个居住点）",
        "uncovered_grid": "未覆盖住户（{cell}米网格）· {cat}",
        "legend_gap_grid": "每格未覆盖户数",
        "legend_gap_note": "红色：超出服务圈；灰色：不可达",
        "no_data": "无住户",
        "summary": "{cat}覆盖率 {rate}（未覆盖 {n} 户）",
        "summary_unreachable": "{cat}覆盖率 {rate}（超出服务圈 {n} 户，不可达 {m} 户）",
        "total": "共 {n} 户",
        "area": "面积",
        "uncovered_pt": "未覆盖住户",
        "facility": "现有设施",
        "station": "建议站点（序号）",
        "circle": "服务圈",
        "threshold": "{minutes} 分钟",
        "fig_map_title": "{cat}：住户覆盖率 {rate}",
        "fig_time_title": "步行时间分布（按户数）",
        "fig_time_x": "到最近设施的步行时间（分钟）",
        "fig_time_y": "户数",
        "fig_time_sub": "{cat}（覆盖率 {rate}）",
        "n_households": "{label}（{n} 户）",
        "fig_unreachable": "不可达或远离路网：{n} 户",
        "fig_curve_title": "覆盖率与新增站点数",
        "fig_curve_x": "新增站点数",
        "fig_curve_y": "住户覆盖率（%）",
        "easting": "东坐标（米）",
        "northing": "北坐标（米）",
    },
    "en": {
        "title": "{minutes}-minute service circles: coverage and proposed stations",
        "title_coverage": "{minutes}-minute service circles: coverage",
        "uncovered": "Uncovered households · {cat}",
        "unreachable": "Unreachable households (no path or off the network) · {cat}",
        "unreachable_grid": "Unreachable households ({cell} m grid) · {cat}",
        "unreachable_pt": "Unreachable household (no path or off the network)",
        "streets": "Streets (simplified)",
        "street_line": "Street",
        "covered_grid": "Covered households ({cell} m grid) · {cat}",
        "circles": "{minutes}-min service circle · {cat}",
        "facilities": "Existing facilities · {cat}",
        "stations": "Proposed stations · {cat}",
        "areas": "{level} coverage · {cat}",
        "outline": "{level} boundaries",
        "level_community": "Community",
        "level_street": "Street",
        "households": "Households",
        "elderly": "Elderly",
        "time": "Walking time",
        "min": "min",
        "never": "unreachable",
        "status_covered": "covered",
        "status_uncovered": "outside the circle",
        "status_unreachable": "no network path",
        "status_off_network": "too far from a street",
        "status_invalid": "invalid",
        "name": "Name",
        "subtype": "Type",
        "floor_area": "Floor area",
        "id": "ID",
        "snap_off": "not connected to the walking network",
        "rank": "Proposed station no. {rank}",
        "candidate": "Candidate",
        "hh_new": "Households newly covered",
        "elderly_new": "Elderly newly covered",
        "cum_rate": "Cumulative coverage",
        "coverage_rate": "Coverage",
        "hh_uncovered": "Households uncovered",
        "elderly_uncovered": "Elderly uncovered",
        "shortfall": "Floor-area shortfall",
        "legend": "Legend",
        "legend_rate": "{level} household coverage",
        "legend_grid": "Covered households per cell",
        "grid_tip": "{n} households covered ({rows} residential points)",
        "gap_tip": "{n} households not covered ({rows} residential points)",
        "uncovered_grid": "Uncovered households ({cell} m grid) · {cat}",
        "legend_gap_grid": "Uncovered households per cell",
        "legend_gap_note": "red: outside the circle; grey: unreachable",
        "no_data": "no households",
        "summary": "{cat} coverage {rate} ({n} households uncovered)",
        "summary_unreachable": "{cat} coverage {rate} ({n} households outside the circle, "
                               "{m} unreachable)",
        "total": "{n} households",
        "area": "Area",
        "uncovered_pt": "Uncovered household",
        "facility": "Existing facility",
        "station": "Proposed station (rank)",
        "circle": "Service circle",
        "threshold": "{minutes} min",
        "fig_map_title": "{cat}: {rate} of households covered",
        "fig_time_title": "Walking time to the nearest facility (by households)",
        "fig_time_x": "Walking time to the nearest facility (min)",
        "fig_time_y": "Households",
        "fig_time_sub": "{cat} (coverage {rate})",
        "n_households": "{label} ({n} households)",
        "fig_unreachable": "unreachable or off the network: {n} households",
        "fig_curve_title": "Coverage versus number of new stations",
        "fig_curve_x": "New stations",
        "fig_curve_y": "Household coverage (%)",
        "easting": "Easting (m)",
        "northing": "Northing (m)",
    },
}


#: Style of the service-circle layers by rank of the threshold (smallest first): the
#: inner circle strongest and solid, outer ones lighter and dashed, so stacked
#: 5/10/15-minute circles read as rings.
_CIRCLE_STYLES = ({"weight": 2.0, "fillOpacity": 0.22, "dashArray": None},
                  {"weight": 1.6, "fillOpacity": 0.12, "dashArray": "6 4"},
                  {"weight": 1.3, "fillOpacity": 0.06, "dashArray": "2 4"})


def circle_style(rank: int) -> dict[str, Any]:
    """Line weight, fill opacity and dash of the ``rank``-th smallest threshold."""
    return dict(_CIRCLE_STYLES[min(rank, len(_CIRCLE_STYLES) - 1)])


def text(lang: str, key: str, **values: Any) -> str:
    """Label ``key`` in ``lang`` with ``values`` filled in (not escaped)."""
    if lang not in LANGS:
        raise InputError(f"lang={lang!r} is not supported; use one of {', '.join(LANGS)}")
    return _TEXT[lang][key].format(**values)


def fmt_int(value: Any) -> str:
    """Whole number with thousands separators (``—`` when missing)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(v) else f"{v:,.0f}"


def fmt_pct(value: Any) -> str:
    """Share as a percentage with one decimal (``—`` when missing)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(v) else f"{100.0 * v:.1f}%"


def fmt_minutes(value: float) -> str:
    """Threshold minutes without a trailing ``.0``."""
    return f"{value:g}"


def resolve_profile(profile: Profile | str | None) -> Profile:
    """The profile object (loaded by name, the default when ``None``)."""
    if isinstance(profile, Profile):
        return profile
    return load_profile() if profile is None else load_profile(profile)


def category_label(profile: Profile, category: str, lang: str) -> str:
    """Chinese or English label of a category (its name when the profile lacks it)."""
    if category not in profile.category_names:
        return category
    cat = profile.category(category)
    return cat.label_zh if lang == "zh" else cat.label_en


def subtype_label(profile: Profile, subtype: Any, lang: str) -> str:
    """Label of a facility sub-type (Chinese from the profile, English from the key)."""
    if subtype is None or (isinstance(subtype, float) and math.isnan(subtype)):
        return ""
    key = str(subtype)
    return profile.subtype_label_zh(key) if lang == "zh" else key.replace("_", " ")


def category_colour(category: str, order: Sequence[str]) -> str:
    """Stable colour of a category (fixed for the profile's two, cycled for others)."""
    if category in _CATEGORY_COLOURS:
        return _CATEGORY_COLOURS[category]
    others = [c for c in order if c not in _CATEGORY_COLOURS]
    k = others.index(category) if category in others else len(others)
    return _EXTRA_COLOURS[k % len(_EXTRA_COLOURS)]
