"""Per-household verdicts: walking minutes to the nearest facility, status and radius test.

The core of :func:`geosvc.coverage.analyse_coverage`: households and facilities snapped
once, one multi-source search per category (and per required sub-type), the straight-line
radius comparison and the 2SFCA access index in facility chunks sized to the memory budget.
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
from geosvc._schema import COVER_TOLERANCE_M, STATUSES, covered, snap_labels
from geosvc.access import (
    SNAP_OFF_NETWORK,
    Anchors,
    compound_ids,
    nearest_facility,
    pairs_within,
    point_xy,
    snap_points,
)
from geosvc.coverage._access_index import two_step_fca
from geosvc.coverage._areas import aggregate_areas
from geosvc.coverage._summary import _summary
from geosvc.demand import prepare_households
from geosvc.facilities import prepare_facilities
from geosvc.network import CompiledNetwork
from geosvc.progress import bar
from geosvc.standards import Category, Profile, load_profile

__all__ = ["CoverageResult", "analyse_coverage"]

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
