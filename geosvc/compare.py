"""Scenarios: compare two run folders (``geosvc compare RUN_A RUN_B``).

Two runs of the same households (two candidate lists, two profiles, before and after new
facilities) are compared row by row: per category the coverage rates and household counts
of both runs and their difference, per area (community, street) the same, and the
households whose status changed — newly covered in B, or covered in A and not in B.
Everything is read from the runs' own outputs (``summary.json``, ``households.gpkg``,
``areas.gpkg``), never recomputed.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geosvc._errors import InputError
from geosvc._schema import area_col, status_col

__all__ = ["RunComparison", "compare_runs", "write_comparison"]

log = logging.getLogger(__name__)


@dataclass
class RunComparison:
    """The difference between two runs (B minus A).

    Attributes
    ----------
    categories
        One row per category both runs analysed: ``coverage_rate_a``, ``coverage_rate_b``,
        ``coverage_rate_change`` (percentage points as a share), ``households_covered_a/b``,
        ``households_newly_covered``, ``households_no_longer_covered``,
        ``elderly_uncovered_a/b``.
    areas
        Level (``community``, ``street``) -> one row per area in both runs:
        ``area_id``, ``name``, per category ``<cat>_coverage_rate_a/_b/_change`` and
        ``<cat>_households_covered_change``.
    changed
        Households whose status changed in any category: ``hh_id``, ``households``,
        per category ``status_<cat>_a``, ``status_<cat>_b``, ``change_<cat>``
        (``newly_covered``, ``no_longer_covered``, ``other`` or empty); geometry from B.
    """

    run_a: Path
    run_b: Path
    categories: pd.DataFrame
    areas: dict[str, pd.DataFrame] = field(default_factory=dict)
    changed: gpd.GeoDataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """A few lines for the console."""
        lines = [f"geosvc compare: A = {self.run_a}, B = {self.run_b}"]
        for r in self.categories.to_dict("records"):
            a, b = float(r["coverage_rate_a"]), float(r["coverage_rate_b"])
            lines.append(
                f"  {r['category']}: coverage {a:.1%} -> {b:.1%} ({100 * (b - a):+.1f} points); "
                f"{float(r['households_newly_covered']):,.0f} households newly covered, "
                f"{float(r['households_no_longer_covered']):,.0f} no longer covered")
        for level, frame in self.areas.items():
            for cat in self.categories["category"]:
                col = f"{cat}_coverage_rate_change"
                if col not in frame.columns or not len(frame):
                    continue
                top = frame.sort_values(col, ascending=False).head(3)
                best = ", ".join(f"{n} {100 * v:+.1f}" for n, v in zip(
                    top["name"].astype(str), top[col], strict=True) if np.isfinite(v))
                lines.append(f"  {level}, {cat}: largest gains (points) {best or 'none'}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _summary(run: Path) -> dict[str, Any]:
    path = run / "summary.json"
    if not path.exists():
        raise InputError(f"{run}: no summary.json; give the output folders of two geosvc "
                         "runs (geosvc run/demo/coverage --out DIR)")
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{path}: not readable JSON ({exc}); rerun that analysis") from None
    return data


def _households(run: Path, cats: list[str]) -> gpd.GeoDataFrame:
    path = run / "households.gpkg"
    if not path.exists():
        raise InputError(f"{run}: no households.gpkg; compare needs the households of both "
                         "runs (every geosvc run writes it)")
    cols = ["hh_id", "households", *(status_col(c) for c in cats)]
    frame = gpd.read_file(path, layer="households", columns=cols, engine="pyogrio")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: no column {missing[0]!r}; was it written by geosvc?")
    return frame


def _change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.full(len(a), "", dtype=object)
    diff = a != b
    out[diff] = "other"
    out[diff & (b == "covered")] = "newly_covered"
    out[diff & (a == "covered")] = "no_longer_covered"
    return out


def _area_diff(a: pd.DataFrame, b: pd.DataFrame, cats: list[str]) -> pd.DataFrame:
    key = "area_id"
    if key not in a.columns or key not in b.columns:
        return pd.DataFrame()
    keep = [key] + [c for c in ("name",) if c in b.columns]
    out = b[keep].copy()
    merged = a.drop(columns="geometry", errors="ignore").merge(
        b.drop(columns="geometry", errors="ignore"), on=key, suffixes=("_a", "_b"))
    out = out.merge(merged[[key]], on=key)
    for cat in cats:
        for what in ("coverage_rate", "households_covered"):
            col = area_col(cat, what)
            if f"{col}_a" not in merged.columns:
                continue
            va = pd.to_numeric(merged[f"{col}_a"], errors="coerce").to_numpy(float)
            vb = pd.to_numeric(merged[f"{col}_b"], errors="coerce").to_numpy(float)
            if what == "coverage_rate":
                out[f"{col}_a"], out[f"{col}_b"] = va, vb
            out[f"{col}_change"] = vb - va
    return out


def compare_runs(run_a: str | os.PathLike[str], run_b: str | os.PathLike[str]
                 ) -> RunComparison:
    """Compare two run folders (B minus A); see :class:`RunComparison`.

    Households are matched by ``hh_id``; rows present in only one run are left out of
    the household comparison and counted in ``notes``.

    Raises
    ------
    geosvc._errors.InputError
        A folder is not a geosvc run, or the runs share no category or no household.
    """
    a_dir, b_dir = Path(run_a), Path(run_b)
    sa, sb = _summary(a_dir), _summary(b_dir)
    cats = [c for c in sa.get("categories", {}) if c in sb.get("categories", {})]
    if not cats:
        raise InputError(f"{a_dir} and {b_dir} share no analysed category "
                         f"(A: {list(sa.get('categories', {}))}, "
                         f"B: {list(sb.get('categories', {}))})")
    ha, hb = _households(a_dir, cats), _households(b_dir, cats)
    ida, idb = ha["hh_id"].astype(str), hb["hh_id"].astype(str)
    if ida.duplicated().any() or idb.duplicated().any():
        raise InputError("hh_id repeats within a run; compare needs unique household ids")
    both = hb.assign(_id=idb.to_numpy()).merge(
        ha.drop(columns="geometry").assign(_id=ida.to_numpy()), on="_id", suffixes=("_b", "_a"))
    if not len(both):
        raise InputError(f"{a_dir} and {b_dir} share no household id (hh_id); compare runs "
                         "of the same households")
    notes = []
    only_a, only_b = len(ha) - len(both), len(hb) - len(both)
    if only_a or only_b:
        notes.append(f"{only_a} household rows only in A and {only_b} only in B are left out")
    w = pd.to_numeric(both["households_b"], errors="coerce").fillna(0.0).to_numpy(float)
    rows, changed_any = [], np.zeros(len(both), bool)
    table = pd.DataFrame({"hh_id": both["hh_id_b"].to_numpy(), "households": w})
    for cat in cats:
        a = both[f"{status_col(cat)}_a"].astype(str).to_numpy()
        b = both[f"{status_col(cat)}_b"].astype(str).to_numpy()
        ch = _change(a, b)
        changed_any |= ch != ""
        table[f"{status_col(cat)}_a"], table[f"{status_col(cat)}_b"] = a, b
        table[f"change_{cat}"] = ch
        ca, cb = sa["categories"][cat], sb["categories"][cat]
        rows.append({
            "category": cat,
            "coverage_rate_a": float(ca["coverage_rate"]),
            "coverage_rate_b": float(cb["coverage_rate"]),
            "coverage_rate_change": float(cb["coverage_rate"]) - float(ca["coverage_rate"]),
            "households_covered_a": float(ca["households_covered"]),
            "households_covered_b": float(cb["households_covered"]),
            "households_newly_covered": float(w[ch == "newly_covered"].sum()),
            "households_no_longer_covered": float(w[ch == "no_longer_covered"].sum()),
            "elderly_uncovered_a": float(ca.get("elderly_uncovered", np.nan)),
            "elderly_uncovered_b": float(cb.get("elderly_uncovered", np.nan)),
        })
    changed = gpd.GeoDataFrame(table[changed_any].reset_index(drop=True),
                               geometry=both.geometry.to_numpy()[changed_any], crs=hb.crs)
    areas: dict[str, pd.DataFrame] = {}
    if (a_dir / "areas.gpkg").exists() and (b_dir / "areas.gpkg").exists():
        import pyogrio

        la = {str(n) for n in pyogrio.list_layers(a_dir / "areas.gpkg")[:, 0]}
        lb = [str(n) for n in pyogrio.list_layers(b_dir / "areas.gpkg")[:, 0]]
        for level in (n for n in lb if n in la and n != "layer_styles"):
            diff = _area_diff(gpd.read_file(a_dir / "areas.gpkg", layer=level),
                              gpd.read_file(b_dir / "areas.gpkg", layer=level), cats)
            if len(diff):
                areas[level] = diff
    return RunComparison(a_dir, b_dir, pd.DataFrame(rows), areas, changed, notes)


def write_comparison(cmp: RunComparison, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``compare_categories.csv``, ``compare_<level>.csv`` and ``changed_households.gpkg``.

    Returns
    -------
    list of pathlib.Path
        The written files.
    """
    from geosvc.io import write_gpkg

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "compare_categories.csv"]
    cmp.categories.to_csv(paths[0], index=False, encoding="utf-8-sig")
    for level, frame in cmp.areas.items():
        p = out / f"compare_{level}.csv"
        frame.to_csv(p, index=False, encoding="utf-8-sig")
        paths.append(p)
    if cmp.changed is not None:
        p = out / "changed_households.gpkg"
        write_gpkg({"changed_households": cmp.changed}, p)
        paths.append(p)
    log.info("comparison written to %s", out)
    return paths
