"""The coverage summary: status counts per category and the figures of ``summary.json``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geosvc import _schema as schema
from geosvc._schema import STATUSES
from geosvc.standards import Profile

__all__ = ["status_counts"]


def status_counts(households: pd.DataFrame, category: str, *, weight: str | None = None
                  ) -> dict[str, float]:
    """Rows (or summed ``weight``) per status for one category; always all five keys."""
    status = households[schema.status_col(category)]
    if weight is None:
        counts = status.value_counts()
    else:
        w = pd.to_numeric(households[weight], errors="coerce").fillna(0.0).clip(lower=0.0)
        counts = w.groupby(status).sum()
    return {s: float(counts.get(s, 0.0)) for s in STATUSES}


def _summary(out: gpd.GeoDataFrame, prof: Profile, cats: Sequence[str],
             radius_method: str) -> dict[str, Any]:
    valid_w = ~out["households"].isna() & (out["households"] >= 0)
    hh_w = out["households"].where(valid_w, 0.0)
    summary: dict[str, Any] = {
        "profile": prof.name,
        "profile_version": prof.version,
        "radius_method": radius_method,
        "rows_total": int(len(out)),
        "households_total": float(hh_w.sum()),
        "persons_total": float(out["persons"].where(out["persons"] >= 0, 0.0).sum()),
        "elderly_total": float(out["elderly"].where(out["elderly"] >= 0, 0.0).sum()),
        "rows_invalid": int((out["invalid_reason"] != "").sum()),
        "categories": {},
    }
    for name in cats:
        cat = prof.category(name)
        rows = status_counts(out, name)
        hh = status_counts(out.assign(_w=hh_w), name, weight="_w")
        eld = status_counts(out, name, weight="elderly")
        total = sum(hh.values())
        rad = out[schema.radius_covered_col(name)].to_numpy()
        entry: dict[str, Any] = {
            "label_zh": cat.label_zh,
            "label_en": cat.label_en,
            "threshold_min": cat.threshold_min,
            "speed_m_s": cat.speed_m_s,
            "reach_m": cat.reach_m,
            "radius_m": cat.radius_m,
            "rows_total": int(len(out)),
            **{f"rows_{s}": int(rows[s]) for s in STATUSES},
            "households_total": total,
            **{f"households_{s}": hh[s] for s in STATUSES},
            "coverage_rate": hh["covered"] / total if total else float("nan"),
            "elderly_uncovered": eld["uncovered"] + eld["unreachable"] + eld["off_network"],
            "elderly_coverage_rate": (eld["covered"] / sum(eld.values())
                                      if sum(eld.values()) else float("nan")),
            "radius_method_coverage_rate": float(hh_w[rad].sum() / total) if total else
            float("nan"),
            "radius_only_households": float(hh_w[out[schema.radius_only_col(name)].to_numpy()].sum()),
            "median_time_min": _finite_median(out[schema.time_col(name)].to_numpy(dtype=float)),
        }
        if cat.required_subtypes:
            entry["subtypes"] = {
                sub: {"coverage_rate": float(hh_w[(out[schema.status_col(name, sub)] == "covered")
                                                   .to_numpy()].sum() / total) if total else
                      float("nan")}
                for sub in cat.required_subtypes
            }
        summary["categories"][name] = entry
    return summary


def _finite_median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else float("nan")
