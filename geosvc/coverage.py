"""Service-circle coverage: per-household verdicts, radius comparison, per-area results.

For every household and category: walking minutes to the nearest facility, which one,
and a status (``covered``, ``uncovered``, ``unreachable``, ``off_network``, ``invalid``).
Convenience coverage is also reported per sub-type and for "every required basic type
within the threshold" (the MOFCOM definition).  Counts always add up to the input rows.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numba as nb
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from geosvc import _schema as schema
from geosvc import resources
from geosvc._errors import InputError
from geosvc._plausibility import mark_unprojectable, warn_after_snapping
from geosvc._schema import COVER_TOLERANCE_M, NOT_COVERED, STATUSES, covered, snap_labels
from geosvc.access import (
    SNAP_OFF_NETWORK,
    Anchors,
    compound_ids,
    nearest_facility,
    pairs_within,
    point_xy,
    snap_points,
)
from geosvc.demand import prepare_households
from geosvc.facilities import prepare_facilities
from geosvc.network import CompiledNetwork
from geosvc.progress import bar
from geosvc.standards import Category, Profile, load_profile

__all__ = [
    "STATUSES",
    "CoverageResult",
    "analyse_coverage",
    "aggregate_areas",
    "two_step_fca",
    "status_counts",
]

log = logging.getLogger(__name__)



@dataclass
class CoverageResult:
    """Everything a coverage run produces (frames aligned to the inputs' rows)."""

    households: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    areas: dict[str, gpd.GeoDataFrame]
    summary: dict[str, Any]
    profile: Profile
    household_anchors: Anchors
    facility_anchors: Anchors
    categories: tuple[str, ...] = field(default_factory=tuple)


class _RadiusIndex:
    """Straight-line radius test over the households, in bounded memory.

    A KD-tree over the household points (built once per analysis) answers "which
    households lie within the radius of these facilities" ball by ball when the balls hold
    few points in total (at most one pair per household: the usual case, milliseconds);
    otherwise each household asks a facility tree for its nearest facility within the
    radius (memory linear in the households whatever the overlap).
    """

    def __init__(self, hxy: np.ndarray) -> None:
        self.n = len(hxy)
        self.rows = np.flatnonzero(np.isfinite(hxy).all(axis=1))
        self.xy = hxy[self.rows]
        self.tree = cKDTree(self.xy, balanced_tree=False, compact_nodes=False) \
            if len(self.rows) else None

    def covered(self, fxy: np.ndarray, radius_m: np.ndarray) -> np.ndarray:
        """Households within the radius of at least one of the given facilities."""
        out = np.zeros(self.n, dtype=bool)
        ok = np.isfinite(fxy).all(axis=1) & np.isfinite(radius_m)
        fxy, radius_m = fxy[ok], radius_m[ok]
        if self.tree is None or len(fxy) == 0:
            return out
        pairs = int(self.tree.query_ball_point(fxy, radius_m, return_length=True).sum())
        if pairs <= len(self.rows):
            hits = self.tree.query_ball_point(fxy, radius_m, return_sorted=False)
            idx = np.fromiter(itertools.chain.from_iterable(hits), dtype=np.int64, count=pairs)
            out[self.rows[idx]] = True
            return out
        for r in np.unique(radius_m):  # one nearest query per distinct radius
            d, _ = cKDTree(fxy[radius_m == r]).query(self.xy, k=1, distance_upper_bound=r)
            out[self.rows[d <= r]] = True
        return out


def _categorical(codes: np.ndarray, categories: Sequence[Any] | np.ndarray) -> pd.Categorical:
    """A categorical column from integer codes (-1 is missing)."""
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64),
                                     categories=pd.Index(list(categories)))


def _ids(index: np.ndarray, ids: np.ndarray) -> Any:
    """``ids[index]`` per row (missing where ``index`` is -1), categorical when ids are unique."""
    if len(ids) == len(pd.unique(ids)) and not pd.isna(ids).any():
        return _categorical(index, ids)
    out = np.full(len(index), None, dtype=object)
    out[index >= 0] = ids[index[index >= 0]]
    return out


def _status(dist_m: np.ndarray, reach_m: float, snap: Anchors, invalid: np.ndarray, *,
            path_dist_m: np.ndarray | None = None) -> pd.Categorical:
    """Status per household (a categorical over :data:`STATUSES`).

    ``unreachable`` means no network path to any facility of the kind (e.g. the household's
    network component has none) while such facilities exist elsewhere; when none exists at
    all the household is simply ``uncovered``.  ``path_dist_m`` (default ``dist_m``) is the
    distance that decides reachability (for "all types" verdicts: the nearest facility of
    any type).
    """
    path = dist_m if path_dist_m is None else path_dist_m
    code = np.full(len(dist_m), 1, dtype=np.int8)  # uncovered
    code[covered(dist_m, reach_m)] = 0
    if np.isfinite(path).any():  # some facility is reachable from somewhere
        code[np.isinf(path)] = 2
    code[snap.status == SNAP_OFF_NETWORK] = 3
    code[invalid] = 4
    return _categorical(code, STATUSES)


@dataclass
class _Subtypes:
    """Per-subtype columns and the per-household reductions over the required subtypes."""

    cols: dict[str, Any]
    any_dist: np.ndarray
    any_src: np.ndarray  # index into the category's facilities, -1 when none
    all_dist: np.ndarray
    worst: np.ndarray
    beyond_bits: np.ndarray
    radius_ok: np.ndarray


def _subtype_columns(cat: Category, ctx: _Context, in_cat: np.ndarray, subtype: np.ndarray,
                     radius_of: np.ndarray) -> _Subtypes:
    """One search per required subtype, reduced on the fly (no subtypes x households stack).

    ``all_dist`` is the largest subtype distance (NaN when unsnapped), ``worst`` the first
    subtype attaining it, ``beyond_bits`` bit ``k`` set when subtype ``k`` is out of reach.
    When every facility of the category has a required subtype, the nearest facility of
    any type is the nearest over the subtype searches (ties: smallest facility index), so
    no extra search is needed.
    """
    name, n = cat.name, len(ctx.invalid)
    idx_cat = np.flatnonzero(in_cat)
    speed = cat.speed_m_s
    cols: dict[str, Any] = {}
    best = np.full(n, -np.inf)
    worst = np.zeros(n, dtype=np.int64)
    nan_any = np.zeros(n, dtype=bool)
    bits = np.zeros(n, dtype=np.int64)
    radius_ok = np.ones(n, dtype=bool)
    any_dist = np.full(n, np.inf)
    any_glob = np.full(n, -1, dtype=np.int64)
    for k, sub in enumerate(cat.required_subtypes):
        idx = np.flatnonzero(in_cat & (subtype == sub))
        r = nearest_facility(ctx.net, ctx.f_anchor.subset(idx), ctx.h_anchor)
        d = r.distance_m
        cols[schema.time_col(name, sub)] = d / speed / 60.0
        cols[schema.status_col(name, sub)] = _status(d, cat.reach_m, ctx.h_anchor, ctx.invalid)
        radius_ok &= ctx.radius.covered(ctx.fxy[idx], radius_of[idx])
        glob = np.where(r.source >= 0, idx[np.clip(r.source, 0, None)] if len(idx) else -1, -1)
        _fold_subtype(d, glob, k, cat.reach_m + COVER_TOLERANCE_M, best, worst, nan_any, bits, any_dist,
                      any_glob)
    all_dist = np.where(nan_any, np.nan, best)
    if np.isin(subtype[idx_cat], cat.required_subtypes).all():
        any_dist[nan_any] = np.nan
        any_src = np.where(any_glob >= 0, np.searchsorted(idx_cat, any_glob), -1)
    else:  # facilities of other subtypes count for "any"
        res = nearest_facility(ctx.net, ctx.f_anchor.subset(idx_cat), ctx.h_anchor)
        any_dist, any_src = res.distance_m, res.source
    return _Subtypes(cols, any_dist, any_src, all_dist, worst, bits, radius_ok)


@nb.njit(cache=True)
def _fold_subtype(d: np.ndarray, glob: np.ndarray, k: int, reach_m: float, best: np.ndarray,
                  worst: np.ndarray, nan_any: np.ndarray, bits: np.ndarray,
                  any_dist: np.ndarray, any_glob: np.ndarray
                  ) -> None:  # pragma: no cover - compiled
    """Fold subtype ``k``'s distances into the running reductions (in place, one pass)."""
    for i in range(len(d)):
        di = d[i]
        if np.isnan(di):
            nan_any[i] = True
            bits[i] |= 1 << k
            if -1.0 > best[i]:
                best[i] = -1.0
                worst[i] = k
            continue
        if di > best[i]:
            best[i] = di
            worst[i] = k
        if di > reach_m:
            bits[i] |= 1 << k
        g = glob[i]
        if di < any_dist[i] or (di == any_dist[i] and g >= 0 and
                                (any_glob[i] < 0 or g < any_glob[i])):
            any_dist[i] = di
            any_glob[i] = g


def _missing_subtypes(beyond_bits: np.ndarray, subtypes: Sequence[str]) -> pd.Categorical:
    """``;``-joined names of the subtypes out of reach, per household (from bit patterns)."""
    patterns, code = np.unique(beyond_bits, return_inverse=True)
    names = [";".join(s for k, s in enumerate(subtypes) if (int(p) >> k) & 1) for p in patterns]
    return _categorical(code.ravel(), names)


def analyse_coverage(
    net: CompiledNetwork,
    households: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    profile: Profile | str | None = None,
    categories: Sequence[str] | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    areas: Mapping[str, gpd.GeoDataFrame] | None = None,
    radius_method: str = "profile",
    households_kw: Mapping[str, Any] | None = None,
) -> CoverageResult:
    """Run the service-circle analysis for every category.

    Parameters
    ----------
    net
        Compiled street network (see :func:`geosvc.network.compile_network`).
    households
        Residential points with ``households`` (and optionally ``persons``,
        ``elderly``, ``compound_id``); validated by
        :func:`geosvc.demand.prepare_households` (``households_kw`` passes options).
    facilities
        Points with ``facility_id``, ``category``, ``subtype``, ``floor_area_m2``.
    profile
        Standards profile or its name (default ``cn-community-2023``).
    categories
        Categories to analyse (default: all in the profile that have a facility or are
        defined).
    compounds
        Gated-compound polygons (``compound_id``) when the points carry no
        ``compound_id``: points inside snap only to the compound's internal paths.
    areas
        Area layers by level name, e.g. ``{"community": gdf, "street": gdf}``, each with
        ``area_id`` and ``name`` columns (optional ``old_area`` flag for the old-area
        floor-area norm).
    radius_method
        ``"profile"`` (one radius per category) or ``"gb50180"`` (per-facility radii
        of GB 50180 appendix C where defined).

    Returns
    -------
    CoverageResult
    """
    prof = profile if isinstance(profile, Profile) else load_profile(profile or
                                                                     "cn-community-2023")
    if radius_method not in ("profile", "gb50180"):
        raise InputError(f"radius_method={radius_method!r}; use 'profile' or 'gb50180'")
    hh = households if {"hh_id", "invalid_reason"} <= set(households.columns) else \
        prepare_households(households, **dict(households_kw or {}))
    fac = facilities if facilities.attrs.get("geosvc_prepared") == prof.name else \
        prepare_facilities(facilities, prof, source=str(facilities.attrs.get("source",
                                                                              "facilities")))
    hh = mark_unprojectable(hh.to_crs(net.crs))
    fac = fac.to_crs(net.crs)
    cats = tuple(categories) if categories is not None else prof.category_names
    for c in cats:
        prof.category(c)  # unknown names raise with the valid list
    _check_memory(len(hh), [prof.category(c) for c in cats])
    ctx = _snapped_context(net, prof, hh, fac, compounds, cats, radius_method)
    h_anchor, f_anchor = ctx.h_anchor, ctx.f_anchor
    cols: dict[str, Any] = {"access_m": h_anchor.access_m}
    for name in cats:
        cols.update(_analyse_category(prof.category(name), ctx))
    out = _with_columns(hh, cols)
    fac_out = fac.copy()
    fac_out["snap_status"] = snap_labels(f_anchor.status)
    fac_out["access_m"] = f_anchor.access_m
    area_frames: dict[str, gpd.GeoDataFrame] = {}
    for level, gdf in (areas or {}).items():
        area_frames[level] = aggregate_areas(out, gdf.to_crs(net.crs), fac_out, prof, cats,
                                             level=level)
    summary = _summary(out, prof, cats, radius_method)
    return CoverageResult(out, fac_out, area_frames, summary, prof, h_anchor, f_anchor, cats)


#: Resident bytes per household row for coverage (the 1M-household city with 14 searches
#: grew by 600 MB: the row's anchors and working arrays, plus each network search's output
#: columns); used to refuse a run that cannot fit before any work starts.
_ROW_BYTES = 300
_SEARCH_ROW_BYTES = 30


def _check_memory(rows: int, cats: Sequence[Category]) -> None:
    searches = sum(1 + len(c.required_subtypes) for c in cats)
    resources.check_fits(
        f"walking-time coverage of {rows:,} household rows ({searches} network searches)",
        rows * (_ROW_BYTES + _SEARCH_ROW_BYTES * searches),
        fix="raise --memory-limit (config [run] memory_limit) or analyse the area in parts "
            "(e.g. one street 街道 at a time)")


@dataclass
class _Context:
    """What every category's analysis shares (anchors, validity, point coordinates)."""

    net: CompiledNetwork
    prof: Profile
    fac: gpd.GeoDataFrame
    fac_ids: np.ndarray
    f_anchor: Anchors
    h_anchor: Anchors
    invalid: np.ndarray
    demand: np.ndarray
    fxy: np.ndarray
    finite_xy: np.ndarray
    radius: _RadiusIndex
    radius_method: str


def _snapped_context(net: CompiledNetwork, prof: Profile, hh: gpd.GeoDataFrame,
                     fac: gpd.GeoDataFrame, compounds: gpd.GeoDataFrame | None,
                     cats: Sequence[str], radius_method: str) -> _Context:
    """Snap households and facilities (compound walls respected), warn, and share the rest."""
    invalid = (hh["invalid_reason"] != "").to_numpy()
    h_anchor = snap_points(net, hh.geometry.to_numpy(), max_snap_m=prof.max_snap_m,
                           compound=compound_ids(hh, compounds))
    f_anchor = snap_points(net, fac.geometry.to_numpy(), max_snap_m=prof.max_snap_m,
                           compound=compound_ids(fac, compounds))
    warn_after_snapping(net, hh, h_anchor.ok, invalid, fac, f_anchor.ok, cats, prof.max_snap_m)
    hxy = point_xy(hh.geometry.to_numpy())
    return _Context(net, prof, fac, fac["facility_id"].to_numpy(), f_anchor, h_anchor, invalid,
                    np.nan_to_num(hh["households"].to_numpy(dtype=float)),
                    point_xy(fac.geometry.to_numpy()), np.isfinite(hxy).all(axis=1),
                    _RadiusIndex(hxy), radius_method)


def _analyse_category(cat: Category, ctx: _Context) -> dict[str, Any]:
    """The columns of one category (name -> array or categorical), in output order."""
    name, fac = cat.name, ctx.fac
    in_cat = (fac["category"] == name).to_numpy()
    subtype = fac["subtype"].to_numpy().astype(str)
    idx_cat = np.flatnonzero(in_cat)
    radius_of = np.full(len(fac), cat.radius_m)
    if ctx.radius_method == "gb50180":
        kinds = np.unique(subtype)
        table = np.array([ctx.prof.subtype_radius_m(k, cat.radius_m) for k in kinds])
        radius_of = table[np.searchsorted(kinds, subtype)]
    cols: dict[str, Any] = {}
    speed = cat.speed_m_s
    if cat.required_subtypes:
        sub = _subtype_columns(cat, ctx, in_cat, subtype, radius_of)
        any_dist, any_src, all_dist, radius_ok = sub.any_dist, sub.any_src, sub.all_dist, \
            sub.radius_ok
        cols.update(sub.cols)
        cols[schema.time_any_col(name)] = any_dist / speed / 60.0
        cols[schema.nearest_id_col(name)] = _ids(any_src, ctx.fac_ids[idx_cat])
        cols[schema.time_col(name)] = all_dist / speed / 60.0
        cols[schema.limiting_subtype_col(name)] = _categorical(sub.worst, cat.required_subtypes)
        cols[schema.missing_subtypes_col(name)] = _missing_subtypes(sub.beyond_bits,
                                                             cat.required_subtypes)
        dist = all_dist
    else:
        res = nearest_facility(ctx.net, ctx.f_anchor.subset(idx_cat), ctx.h_anchor)
        any_dist = res.distance_m
        cols[schema.time_col(name)] = any_dist / speed / 60.0
        cols[schema.nearest_id_col(name)] = _ids(res.source, ctx.fac_ids[idx_cat])
        dist = any_dist
        radius_ok = ctx.radius.covered(ctx.fxy[idx_cat], radius_of[idx_cat])
    status = _status(dist, cat.reach_m, ctx.h_anchor, ctx.invalid, path_dist_m=any_dist)
    cols[schema.access_index_col(name)] = _access_index(ctx, idx_cat, cat.reach_m)
    for c in [c for c in cols if c.startswith(f"time_{name}")]:
        cols[c][ctx.invalid] = np.nan  # arrays computed here (never views of inputs)
    cols[schema.status_col(name)] = status
    radius_ok &= ~ctx.invalid & ctx.finite_xy
    cols[schema.radius_covered_col(name)] = radius_ok
    cols[schema.radius_only_col(name)] = radius_ok & (status.codes != 0)
    return cols


_PAIR_BYTES = 64  # source, target, distance + the kernel's working copies, per pair


def _access_index(ctx: _Context, idx_cat: np.ndarray, reach_m: float) -> np.ndarray:
    """2SFCA index per household, facilities taken in chunks that fit the memory budget.

    A facility's ratio needs only its own catchment, so chunks by facility are exact; the
    first chunk measures the pairs per facility and sizes the next ones from
    :func:`geosvc.resources.available_bytes`.
    """
    n = len(ctx.invalid)
    out = np.zeros(n)
    if len(idx_cat) == 0:
        return out
    supply = ctx.fac["floor_area_m2"].to_numpy(dtype=float)
    start, size, per_fac = 0, min(len(idx_cat), 64), 0.0
    with bar(total=len(idx_cat), desc="access index (2SFCA) searches", unit="facility") as b:
        while start < len(idx_cat):
            chunk = idx_cat[start:start + size]
            pf, ph, _ = pairs_within(ctx.net, ctx.f_anchor.subset(chunk), ctx.h_anchor, reach_m)
            keep = ~ctx.invalid[ph]
            out += two_step_fca(pf[keep], ph[keep], supply[chunk], ctx.demand, n)
            per_fac = max(per_fac, len(pf) / len(chunk), 1.0)
            del pf, ph, keep
            start += len(chunk)
            b.update(len(chunk))
            fit = resources.available_bytes(share=0.25) / (per_fac * _PAIR_BYTES)
            size = int(min(max(fit, 1), len(idx_cat) - start)) or 1
    return out


def _with_columns(frame: gpd.GeoDataFrame, cols: Mapping[str, Any]) -> gpd.GeoDataFrame:
    """A new frame: ``frame``'s columns (replaced where ``cols`` repeats a name) + ``cols``."""
    keep = frame[[c for c in frame.columns if c not in cols]]
    added = pd.DataFrame(dict(cols), index=frame.index)
    joined = pd.concat([keep, added], axis=1)
    return gpd.GeoDataFrame(joined, geometry=frame.geometry.name, crs=frame.crs)


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


def two_step_fca(
    pair_facility: np.ndarray,
    pair_household: np.ndarray,
    supply: np.ndarray,
    demand: np.ndarray,
    n_households: int,
) -> np.ndarray:
    """Two-step floating catchment accessibility from (facility, household) catchment pairs.

    Step 1: each facility's ratio R_j = supply_j / (demand within its catchment).
    Step 2: each household's index A_i = sum of R_j over facilities whose catchment holds
    it.  With supply as floor area (m²) and demand as households, A_i is m² per household.

    Returns
    -------
    numpy.ndarray
        Index per household (0 where no facility is within the catchment).
    """
    supply = np.nan_to_num(np.asarray(supply, dtype=np.float64))
    demand = np.nan_to_num(np.asarray(demand, dtype=np.float64)).clip(min=0.0)
    load = np.bincount(pair_facility, weights=demand[pair_household], minlength=len(supply))
    ratio = np.divide(supply, load, out=np.zeros_like(supply), where=load > 0)
    return np.bincount(pair_household, weights=ratio[pair_facility], minlength=n_households)


def aggregate_areas(
    households: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    profile: Profile,
    categories: Sequence[str],
    *,
    level: str = "area",
) -> gpd.GeoDataFrame:
    """Per-area counts, shares, radius-method gaps and floor area against the norm.

    Households and facilities fall in the area polygon that contains them (households
    outside every area are reported in no row; their count is in ``summary``).  Floor area
    per 100 households uses the profile norm, or the old-area norm where ``old_area`` is
    true.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per area (geometry kept) with ``households``, ``persons``, ``elderly`` and
        per category ``<cat>_households_<status>``, ``<cat>_coverage_rate``,
        ``<cat>_elderly_uncovered``, ``<cat>_radius_only_households``,
        ``<cat>_floor_area_m2``, ``<cat>_floor_area_per_100hh_m2``,
        ``<cat>_norm_per_100hh_m2``, ``<cat>_shortfall_m2`` and ``<cat>_access_index_mean``
        (when ``access_index_<cat>`` exists).
    """
    if "area_id" not in areas.columns:
        raise InputError(f"{level} areas need an 'area_id' column; columns are "
                         f"{list(areas.columns)}")
    area_of_hh = _area_of(households, areas)
    area_of_fac = _area_of(facilities, areas)
    def nonneg(col: str) -> np.ndarray:
        v = households[col].to_numpy(dtype=np.float64)
        return np.where(v >= 0, v, 0.0)

    hh = pd.DataFrame({"area": area_of_hh.to_numpy(), "households": nonneg("households"),
                       "persons": nonneg("persons"), "elderly": nonneg("elderly")})
    res = pd.DataFrame(index=pd.Index(areas["area_id"].to_numpy(), name="area"))
    base = hh.groupby("area")[["households", "persons", "elderly"]].sum()
    res = res.join(base).fillna(0.0)
    res["rows"] = hh.groupby("area").size().reindex(res.index).fillna(0).astype(int)
    old = areas["old_area"].astype(bool).to_numpy() if "old_area" in areas.columns else \
        np.zeros(len(areas), dtype=bool)
    for name in categories:
        _area_category(res, hh, households, facilities, area_of_fac, profile.category(name), old)
    out = areas[[c for c in areas.columns if c != areas.geometry.name]].copy()
    out = out.join(res, on="area_id")
    out["level"] = level
    return gpd.GeoDataFrame(out, geometry=areas.geometry.to_numpy(), crs=areas.crs)


def _area_category(res: pd.DataFrame, hh: pd.DataFrame, households: gpd.GeoDataFrame,
                   facilities: gpd.GeoDataFrame, area_of_fac: pd.Series, cat: Category,
                   old: np.ndarray) -> None:
    """Add one category's columns to the per-area table ``res`` (in place)."""
    name = cat.name

    def acol(measure: str) -> str:
        return schema.area_col(name, measure)

    st = households[schema.status_col(name)].to_numpy()
    for s in STATUSES:
        w = hh["households"].where(st == s, 0.0)
        res[acol(f"households_{s}")] = w.groupby(hh["area"]).sum().reindex(
            res.index).fillna(0.0)
    res[acol("coverage_rate")] = np.where(
        res["households"] > 0, res[acol("households_covered")] / res["households"].where(
            res["households"] > 0, 1.0), np.nan)
    not_cov = np.isin(st, NOT_COVERED)
    res[acol("elderly_uncovered")] = hh["elderly"].where(not_cov, 0.0).groupby(
        hh["area"]).sum().reindex(res.index).fillna(0.0)
    ro = households[schema.radius_only_col(name)].to_numpy()
    res[acol("radius_only_households")] = hh["households"].where(ro, 0.0).groupby(
        hh["area"]).sum().reindex(res.index).fillna(0.0)
    fac_c = facilities["category"].to_numpy() == name
    floor = pd.Series(np.nan_to_num(facilities["floor_area_m2"].to_numpy(dtype=float)))
    fac_area = area_of_fac.to_numpy()
    res[acol("facilities")] = pd.Series(fac_c.astype(int)).groupby(fac_area).sum(
    ).reindex(res.index).fillna(0).astype(int)
    res[acol("floor_area_m2")] = floor.where(fac_c, 0.0).groupby(fac_area).sum(
    ).reindex(res.index).fillna(0.0)
    norm = np.where(old, cat.floor_area_per_100hh_old_area_m2, cat.floor_area_per_100hh_m2)
    hh100 = res["households"].to_numpy() / 100.0
    res[acol("floor_area_per_100hh_m2")] = np.where(
        hh100 > 0, res[acol("floor_area_m2")] / np.where(hh100 > 0, hh100, 1.0), np.nan)
    res[acol("norm_per_100hh_m2")] = norm
    res[acol("shortfall_m2")] = np.maximum(
        0.0, norm * hh100 - res[acol("floor_area_m2")].to_numpy())
    icol = schema.access_index_col(name)
    if icol in households.columns:
        w = hh["households"]
        num = (pd.Series(np.nan_to_num(households[icol].to_numpy(dtype=float))) * w).groupby(
            hh["area"]).sum()
        den = w.groupby(hh["area"]).sum()
        res[acol("access_index_mean")] = (num / den.where(den > 0)).reindex(res.index)


def _area_of(points: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> pd.Series:
    """Area id of the polygon containing each point (first match; NaN outside every area)."""
    xy = point_xy(points.geometry.to_numpy())
    ids = np.full(len(points), None, dtype=object)
    ok = np.isfinite(xy).all(axis=1)
    import shapely

    tree = shapely.STRtree(areas.geometry.to_numpy())
    p_idx, a_idx = tree.query(shapely.points(xy[ok]), predicate="intersects")
    order = np.lexsort((a_idx, p_idx))
    p_idx, a_idx = p_idx[order], a_idx[order]
    first = np.r_[True, p_idx[1:] != p_idx[:-1]] if len(p_idx) else np.array([], bool)
    rows = np.flatnonzero(ok)[p_idx[first]]
    ids[rows] = areas["area_id"].to_numpy()[a_idx[first]]
    return pd.Series(ids, index=range(len(points)))
