"""Reports planners hand in: an Excel workbook (``report.xlsx``) and a short Markdown summary.

The workbook holds, under Chinese (or English) headers:

* ``概要`` / ``Summary`` — per category: threshold, walking speed, households by status, coverage
  rate (network and straight-line radius method), elderly outside the circle; the run's
  warnings;
* ``街道`` / ``Streets`` and ``社区`` / ``Communities`` — per area unit: households, elderly, and
  per category the coverage rate, uncovered households, elderly outside, facility floor area,
  floor area per 100 households against the norm and the shortfall;
* ``建议站点`` / ``Proposed stations`` — the siting plan in rank order with the community and
  street of each station when known, and the plan's bound and optimality gap;
* ``图表`` / ``Figures`` — the PNG figures of the run.

Every number is copied from the run's tables and ``summary.json``; nothing is recomputed here,
so the workbook and the GeoPackages cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from geosvc._schema import STATUSES, area_col
from geosvc.io import atomic_path

__all__ = ["write_excel_report", "write_markdown_report", "area_table", "SHEETS"]

#: Sheet names per language.
SHEETS = {
    "zh": {"summary": "概要", "street": "街道", "community": "社区", "plan": "建议站点",
           "figures": "图表"},
    "en": {"summary": "Summary", "street": "Streets", "community": "Communities",
           "plan": "Proposed stations", "figures": "Figures"},
}

_STATUS = {
    "zh": {"covered": "覆盖户数", "uncovered": "未覆盖户数", "unreachable": "不可达户数",
           "off_network": "离路网户数", "invalid": "无效户数"},
    "en": {"covered": "households covered", "uncovered": "households uncovered",
           "unreachable": "households unreachable", "off_network": "households off network",
           "invalid": "households invalid"},
}

_WORDS = {
    "zh": {"category": "服务圈", "threshold_min": "时间阈值(分钟)", "speed_m_s": "步行速度(米/秒)",
           "households_total": "总户数", "coverage_rate": "覆盖率",
           "radius_method_coverage_rate": "直线半径法覆盖率", "elderly_uncovered": "圈外老年人口",
           "area_id": "编号", "name": "名称", "street": "所属街道", "households": "户数",
           "elderly": "老年人口", "facilities": "设施数", "floor_area_m2": "设施面积(平方米)",
           "per_100hh": "每百户面积(平方米)", "norm": "标准(每百户平方米)",
           "shortfall": "缺口(平方米)", "rank": "序号", "candidate_id": "候选点编号",
           "households_new": "新增覆盖户数", "elderly_new": "新增覆盖老年人口",
           "cumulative": "累计覆盖率", "community": "社区", "lon": "经度", "lat": "纬度",
           "warnings": "提示", "run": "分析名称", "profile": "标准", "model": "模型",
           "bound": "界", "gap": "最优性差距", "status": "求解状态", "objective": "目标值",
           "before": "现状覆盖率", "after": "建设后覆盖率", "overrides": "标准调整"},
    "en": {"category": "circle", "threshold_min": "threshold (min)", "speed_m_s": "walking speed (m/s)",
           "households_total": "households", "coverage_rate": "coverage rate",
           "radius_method_coverage_rate": "radius-method coverage rate",
           "elderly_uncovered": "elderly outside", "area_id": "id", "name": "name",
           "street": "street", "households": "households", "elderly": "elderly",
           "facilities": "facilities", "floor_area_m2": "floor area (m²)",
           "per_100hh": "floor area per 100 hh (m²)", "norm": "norm per 100 hh (m²)",
           "shortfall": "shortfall (m²)", "rank": "rank", "candidate_id": "candidate",
           "households_new": "households newly covered", "elderly_new": "elderly newly covered",
           "cumulative": "cumulative coverage rate", "community": "community", "lon": "lon",
           "lat": "lat", "warnings": "warnings", "run": "run", "profile": "profile",
           "model": "model", "bound": "bound", "gap": "optimality gap", "status": "status",
           "objective": "objective", "before": "coverage before", "after": "coverage after",
           "overrides": "profile overrides"},
}

_LEVEL_ZH = {"community": "社区", "street": "街道", "district": "区县", "grid": "网格"}



def _w(lang: str, key: str) -> str:
    return _WORDS[lang][key]


def _cat_label(summary: Mapping[str, Any], cat: str, lang: str) -> str:
    info = summary.get("categories", {}).get(cat, {})
    return str(info.get("label_zh" if lang == "zh" else "label_en", cat))


def summary_table(summary: Mapping[str, Any], lang: str = "zh") -> pd.DataFrame:
    """One row per category with the headline figures of ``summary.json``."""
    rows = []
    for cat, c in summary.get("categories", {}).items():
        row: dict[str, Any] = {
            _w(lang, "category"): _cat_label(summary, cat, lang),
            _w(lang, "threshold_min"): c["threshold_min"],
            _w(lang, "speed_m_s"): c["speed_m_s"],
            _w(lang, "households_total"): c["households_total"],
        }
        for st in STATUSES:
            row[_STATUS[lang][st]] = c.get(f"households_{st}", 0.0)
        row[_w(lang, "coverage_rate")] = c["coverage_rate"]
        row[_w(lang, "radius_method_coverage_rate")] = c.get("radius_method_coverage_rate")
        row[_w(lang, "elderly_uncovered")] = c.get("elderly_uncovered")
        rows.append(row)
    return pd.DataFrame(rows)


def area_table(frame: pd.DataFrame, categories: Sequence[str], summary: Mapping[str, Any],
               lang: str = "zh") -> pd.DataFrame:
    """Per-area table with headers in ``lang``: one block of columns per category."""
    cols: dict[str, Any] = {
        _w(lang, "area_id"): frame["area_id"] if "area_id" in frame else frame.index,
        _w(lang, "name"): frame.get("name", pd.Series([""] * len(frame), index=frame.index)),
    }
    if "street_id" in frame.columns and frame.get("level", pd.Series(dtype=str)).eq(
            "community").any():
        cols[_w(lang, "street")] = frame["street_id"]
    cols[_w(lang, "households")] = frame["households"]
    if "elderly" in frame.columns:
        cols[_w(lang, "elderly")] = frame["elderly"]
    for cat in categories:
        label = _cat_label(summary, cat, lang)
        mapping = [("coverage_rate", "coverage_rate"),
                   ("households_uncovered", None),
                   ("elderly_uncovered", "elderly_uncovered"),
                   ("facilities", "facilities"),
                   ("floor_area_m2", "floor_area_m2"),
                   ("floor_area_per_100hh_m2", "per_100hh"),
                   ("norm_per_100hh_m2", "norm"),
                   ("shortfall_m2", "shortfall")]
        for suffix, word in mapping:
            col = area_col(cat, suffix)
            if col not in frame.columns:
                continue
            head = _STATUS[lang]["uncovered"] if word is None else _w(lang, word)
            cols[f"{label} {head}"] = frame[col]
    return pd.DataFrame(cols).reset_index(drop=True)


def plan_table(stations: pd.DataFrame, summary: Mapping[str, Any], lang: str = "zh"
               ) -> pd.DataFrame:
    """The proposed stations in rank order with headers in ``lang``."""
    if stations is None or len(stations) == 0:
        return pd.DataFrame()
    src = pd.DataFrame(stations).copy()
    out: dict[str, Any] = {}
    if "category" in src:
        out[_w(lang, "category")] = [_cat_label(summary, c, lang) for c in src["category"]]
    pairs = [("rank", "rank"), ("candidate_id", "candidate_id"),
             ("households_new", "households_new"), ("elderly_new", "elderly_new"),
             ("coverage_rate_cumulative", "cumulative"), ("community", "community"),
             ("community_name", "community"), ("street", "street"), ("street_name", "street"),
             ("lon", "lon"), ("lat", "lat")]
    for col, word in pairs:
        if col in src.columns and _w(lang, word) not in out:
            out[_w(lang, word)] = src[col].to_numpy()
    return pd.DataFrame(out)


def _plan_rows(summary: Mapping[str, Any], lang: str) -> list[list[Any]]:
    rows = []
    for cat, p in summary.get("siting", {}).items():
        rows.append([_cat_label(summary, cat, lang), p.get("model"), p.get("k"),
                     p.get("objective"), p.get("bound"), p.get("gap"), p.get("status"),
                     p.get("coverage_before"), p.get("coverage_after")])
    return rows


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return _finite(v.item())
    return v


def _write_frame(ws: Any, df: pd.DataFrame, *, start_row: int = 1) -> int:
    """Write ``df`` with a bold header at ``start_row``; returns the next free row."""
    from openpyxl.styles import Font, PatternFill

    head_font = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for j, col in enumerate(df.columns, start=1):
        cell = ws.cell(row=start_row, column=j, value=str(col))
        cell.font, cell.fill = head_font, fill
    for i, rec in enumerate(df.itertuples(index=False), start=start_row + 1):
        for j, val in enumerate(rec, start=1):
            cell = ws.cell(row=i, column=j, value=_finite(val))
            name = str(df.columns[j - 1])
            if "率" in name or "rate" in name or "gap" in name or "差距" in name:
                cell.number_format = "0.0%"
            elif isinstance(cell.value, float):
                cell.number_format = "#,##0.0"
    for j, col in enumerate(df.columns, start=1):
        width = max([len(str(col))] + [len(str(v)) for v in df.iloc[:, j - 1].head(200)])
        ws.column_dimensions[ws.cell(row=start_row, column=j).column_letter].width = \
            min(max(10, width * 1.3 + 2), 40)
    return start_row + len(df) + 2


def write_excel_report(path: str | Path, summary: Mapping[str, Any], *,
                       areas: Mapping[str, pd.DataFrame] | None = None,
                       stations: pd.DataFrame | None = None,
                       figures: Sequence[str | Path] = (), lang: str = "zh") -> Path:
    """Write the planners' workbook (see the module docstring); returns its path.

    Parameters
    ----------
    path
        Target ``.xlsx`` file (written atomically).
    summary
        The run's ``summary.json`` content.
    areas
        Per-area result frames by level (``community``, ``street`` …), as written to
        ``areas.gpkg``.
    stations
        Proposed stations of every category (rank order), e.g. ``siting.csv``.
    figures
        PNG files to place on the figures sheet.
    lang
        ``"zh"`` (Chinese headers) or ``"en"``.
    """
    from openpyxl import Workbook

    if lang not in SHEETS:
        raise ValueError(f"lang {lang!r}: use 'zh' or 'en'")
    names = SHEETS[lang]
    cats = list(summary.get("categories", {}))
    wb = Workbook()
    ws = wb.active
    ws.title = names["summary"]
    _summary_sheet(ws, summary, lang)
    for level in ("street", "community"):
        if areas and level in areas:
            sheet = wb.create_sheet(names[level])
            _write_frame(sheet, area_table(areas[level], cats, summary, lang))
            sheet.freeze_panes = "C2"
            sheet.auto_filter.ref = sheet.dimensions
    for level, frame in (areas or {}).items():
        if level not in ("street", "community"):
            title = _LEVEL_ZH.get(str(level), str(level)) if lang == "zh" else str(level)
            sheet = wb.create_sheet(title[:31])
            _write_frame(sheet, area_table(frame, cats, summary, lang))
    plan = plan_table(stations, summary, lang) if stations is not None else pd.DataFrame()
    if len(plan):
        sheet = wb.create_sheet(names["plan"])
        _write_frame(sheet, plan)
        sheet.freeze_panes = "A2"
    pngs = [Path(f) for f in figures if Path(f).suffix.lower() == ".png" and Path(f).exists()]
    if pngs:
        _figure_sheet(wb.create_sheet(names["figures"]), pngs)
    out = Path(path)
    with atomic_path(out) as tmp:
        wb.save(tmp)
    return out


def _summary_sheet(ws: Any, summary: Mapping[str, Any], lang: str) -> None:
    """Run, profile (and its overrides), the coverage table, the plans and the warnings."""
    run = summary.get("run", {})
    ws.cell(row=1, column=1, value=_w(lang, "run")).font = _bold()
    ws.cell(row=1, column=2, value=str(run.get("name", "")))
    ws.cell(row=2, column=1, value=_w(lang, "profile")).font = _bold()
    ws.cell(row=2, column=2, value=str(summary.get("profile", "")))
    changed = _overrides_text(summary)
    if changed:  # a circle measured with changed values must not read as the standard's
        ws.cell(row=3, column=1, value=_w(lang, "overrides")).font = _bold()
        ws.cell(row=3, column=2, value=changed)
    nxt = _write_frame(ws, summary_table(summary, lang), start_row=4)
    plan_rows = _plan_rows(summary, lang)
    if plan_rows:
        head = [_w(lang, k) for k in ("category", "model")] + ["k"] + \
            [_w(lang, k) for k in ("objective", "bound", "gap", "status", "before", "after")]
        nxt = _write_frame(ws, pd.DataFrame(plan_rows, columns=head), start_row=nxt)
    warnings = summary.get("warnings", [])
    ws.cell(row=nxt, column=1, value=_w(lang, "warnings")).font = _bold()
    for i, w in enumerate(warnings, start=nxt + 1):
        ws.cell(row=i, column=1, value=str(w.get("code", "")))
        ws.cell(row=i, column=2, value=str(w.get("message", "")))


def _figure_sheet(sheet: Any, pngs: Sequence[Path]) -> None:
    """The PNG figures one below the other, at most 900 px wide."""
    from openpyxl.drawing.image import Image

    row = 1
    for png in pngs:
        img = Image(str(png))
        scale = min(1.0, 900 / max(img.width, 1))
        img.width, img.height = int(img.width * scale), int(img.height * scale)
        sheet.add_image(img, f"A{row}")
        row += int(img.height / 20) + 2


def _bold() -> Any:
    from openpyxl.styles import Font

    return Font(bold=True)


def write_markdown_report(path: str | Path, summary: Mapping[str, Any], *,
                          areas: Mapping[str, pd.DataFrame] | None = None,
                          lang: str = "zh", worst_n: int = 5) -> Path:
    """A one-page Markdown summary: headline coverage, the worst areas, the plan, warnings."""
    cats = list(summary.get("categories", {}))
    lines = [f"# {summary.get('run', {}).get('name', 'geosvc')}", ""]
    changed = _overrides_text(summary)
    lines += [f"{_w(lang, 'profile')}: {summary.get('profile', '')}"
              + (f"; {_w(lang, 'overrides')}: {changed}" if changed else ""), ""]
    table = summary_table(summary, lang)
    if len(table):
        lines += [_markdown(table), ""]
    level = "community" if areas and "community" in areas else next(iter(areas or {}), None)
    if areas and level is not None:
        frame = areas[level]
        for cat in cats:
            col = area_col(cat, "coverage_rate")
            if col not in frame.columns:
                continue
            worst = area_table(frame.sort_values(col).head(worst_n), [cat], summary, lang)
            title = (f"覆盖率最低的{_LEVEL_ZH.get(str(level), str(level))}" if lang == "zh"
                     else f"lowest coverage ({level})")
            lines += [f"## {_cat_label(summary, cat, lang)}: {title}", "", _markdown(worst), ""]
    for cat, p in summary.get("siting", {}).items():
        lines.append(f"* {_cat_label(summary, cat, lang)}: {p.get('model')} k={p.get('k')}: "
                     f"{_pct(p.get('coverage_before'))} → {_pct(p.get('coverage_after'))} "
                     f"(gap {_pct(p.get('gap'), 2)}, {p.get('status')})")
    warnings = summary.get("warnings", [])
    if warnings:
        lines += ["", f"## {_w(lang, 'warnings')}", ""]
        lines += [f"* {w.get('message', '')}" for w in warnings]
    out = Path(path)
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _overrides_text(summary: Mapping[str, Any]) -> str:
    """The profile values the run changed, ``key = value; ...`` (empty when none)."""
    changed = (summary.get("profile_values") or {}).get("overrides") or {}
    return "; ".join(f"{k} = {v}" for k, v in sorted(changed.items()))


def _pct(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{float(v):.{digits}%}"


def _markdown(df: pd.DataFrame) -> str:
    def fmt(col: str, v: Any) -> str:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "–"
        if isinstance(v, float):
            if "率" in col or "rate" in col:
                return _pct(v)
            return f"{v:,.0f}" if abs(v) >= 100 or v == round(v) else f"{v:.2g}"
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(fmt(str(c), v) for c, v in zip(df.columns, r, strict=True)) + " |"
            for r in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])
