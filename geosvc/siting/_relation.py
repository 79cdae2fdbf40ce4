"""Demand grouped on the network and the candidate x demand relation, within a memory plan.

Households on the same network anchor are one demand group (:func:`aggregate_demand`,
exact); the relation of which candidate covers which group is planned against the memory
budget before it is built (:func:`build_relation`), thinning generated street points when
it cannot fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np

from geosvc import resources
from geosvc._errors import MemoryLimitError
from geosvc.access import (
    RELATION_BYTES_PER_PAIR,
    Anchors,
    Relation,
    coverage_relation,
    mean_pairs_per_source,
)
from geosvc.coverage import CoverageResult
from geosvc.diagnostics import warn
from geosvc.network import CompiledNetwork
from geosvc.progress import chunk_progress
from geosvc.siting._candidates import thin_network_candidates

__all__ = ["RELATION_MEMORY_SHARE", "DemandGroups", "aggregate_demand", "build_relation",
           "demand_groups"]


def aggregate_demand(anchors: Anchors, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group demand rows that sit on the same network anchor (same edge, offset, access).

    Exact: rows in one group have identical distances to every site.

    Returns
    -------
    group_of_row, representative_row
        ``group_of_row[i]`` is the group of ``rows[i]``; ``representative_row[g]`` one row
        of group ``g``.
    """
    key = np.column_stack([anchors.edge[rows].astype(np.float64),
                           np.round(anchors.offset_m[rows], 3),
                           np.round(anchors.access_m[rows], 3)])
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return inverse.reshape(-1), rows[first]



@dataclass(frozen=True)
class DemandGroups:
    """The demand of one category: usable household rows grouped on their network anchors.

    Per household row of the coverage run: ``households``, ``elderly`` and ``weight_row``
    (the model's weight, >= 0).  Per usable row (``rows``): its ``group``.  Per group: the
    ``weight`` and whether it is ``fixed`` (already covered by an existing facility);
    ``rep`` is one row of each group.
    """

    weight_name: str
    rows: np.ndarray
    group: np.ndarray
    rep: np.ndarray
    weight_row: np.ndarray
    weight: np.ndarray
    covered_now: np.ndarray
    fixed: np.ndarray
    households: np.ndarray
    elderly: np.ndarray

    @property
    def gap_rows(self) -> np.ndarray:
        """Usable rows not covered now (the open demand)."""
        return self.rows[~self.covered_now]


def demand_groups(coverage: CoverageResult, category: str, weight_name: str) -> DemandGroups:
    """Every valid, snapped household row of ``category``, grouped on the network.

    Rows whose status is ``covered``, ``uncovered`` or ``unreachable`` are demand; a group
    with a row covered now is fixed (existing facilities stay).
    """
    hh = coverage.households
    status = hh[f"status_{category}"].to_numpy()
    rows = np.flatnonzero(np.isin(status, ["covered", "uncovered", "unreachable"]))
    w_row = np.nan_to_num(hh[weight_name].to_numpy(dtype=float)).clip(min=0.0)
    group, rep = aggregate_demand(coverage.household_anchors, rows)
    n_groups = len(rep)
    covered_now = status[rows] == "covered"
    fixed = np.bincount(group, weights=covered_now.astype(float), minlength=n_groups) > 0
    return DemandGroups(
        weight_name=weight_name, rows=rows, group=group, rep=rep, weight_row=w_row,
        weight=np.bincount(group, weights=w_row[rows], minlength=n_groups),
        covered_now=covered_now, fixed=fixed,
        households=np.nan_to_num(hh["households"].to_numpy(dtype=float)),
        elderly=np.nan_to_num(hh["elderly"].to_numpy(dtype=float)))


def build_relation(net: CompiledNetwork, cands: gpd.GeoDataFrame, c_anchor: Anchors,
                   d_anchor: Anchors, *, reach_m: float, cost_m: float | None,
                   open_xy: np.ndarray | None, category: str
                   ) -> tuple[gpd.GeoDataFrame, Relation, dict[str, Any]]:
    """The candidate x demand relation within ``reach_m`` (and costs within ``cost_m``).

    Its memory is planned first (:func:`_fit_relation`); the candidates it keeps are
    returned with it, row for row.

    Returns
    -------
    candidates, relation, info
        ``info``: the memory plan, the pairs, the compiled chunks and the bytes held.
    """
    fit = _fit_relation(net, c_anchor, d_anchor, reach_m, cost_m, cands, open_xy, category)
    if fit.keep is not None:
        cands = cands.iloc[fit.keep].reset_index(drop=True)
        c_anchor = c_anchor.subset(fit.keep)
    with chunk_progress(f"candidate relation ({category})", unit="candidate") as on_chunk:
        rel = coverage_relation(net, c_anchor, d_anchor, reach_m, cost_limit_m=cost_m,
                                on_chunk=on_chunk)
    cov = rel.covers
    info = {**fit.info, "pairs": int(cov.nnz), "chunks": rel.chunks,
            "bytes": int(cov.indices.nbytes + cov.indptr.nbytes + cov.data.nbytes)}
    return cands, rel, info


#: Share of the free memory budget the candidate x demand relation may take.
RELATION_MEMORY_SHARE = 0.5
#: Bytes a p-median cost pair takes: 12 stored (float64 distance + int32 index) plus the
#: solver's working copies -- measured 97 a pair at the peak of a capped p-median of 6.2M
#: pairs (1,000 x 100,000, p = 30; it was 150 before the incremental vertex substitution).
_COST_BYTES_PER_PAIR = 110


@dataclass
class _Fit:
    keep: np.ndarray | None
    info: dict[str, Any]


def _fit_relation(net: CompiledNetwork, c_anchor: Anchors, d_anchor: Anchors, reach_m: float,
                  cost_m: float | None, cands: gpd.GeoDataFrame, open_xy: np.ndarray | None,
                  category: str) -> _Fit:
    """Plan the relation's memory before building it; thin generated sites if it cannot fit.

    The pairs per candidate are measured on a sample of 256 candidates; the relation
    (:data:`~geosvc.access.RELATION_BYTES_PER_PAIR` a pair, plus the cost pairs of the
    p-median) may take :data:`RELATION_MEMORY_SHARE` of what the budget leaves.  When the
    candidates need more, the generated street points are thinned (one per grid cell,
    :func:`thin_network_candidates`) with a ``candidates_thinned_for_memory`` warning; the
    planner's sites and the demand-cluster centres are never dropped, and when they alone
    cannot fit the run stops (exit 2) saying what to change.
    """
    n = len(c_anchor.edge)
    per, per_cost = mean_pairs_per_source(net, c_anchor, d_anchor, reach_m,
                                          cost_m if cost_m else reach_m)
    per_cost = per_cost if cost_m else 0.0
    bytes_per_cand = per * RELATION_BYTES_PER_PAIR + per_cost * _COST_BYTES_PER_PAIR
    avail = resources.available_bytes(share=RELATION_MEMORY_SHARE)
    info: dict[str, Any] = {"pairs_per_candidate_sampled": round(per, 1),
                            "projected_bytes": int(bytes_per_cand * n),
                            "budget_bytes": int(avail)}
    if bytes_per_cand * n <= avail or n == 0:
        return _Fit(None, info)
    allowed = int(avail // max(bytes_per_cand, 1.0))
    street = np.flatnonzero(cands["source"].to_numpy() == "network")
    fixed = np.flatnonzero(cands["source"].to_numpy() != "network")
    if fixed.size > allowed or allowed - fixed.size < 1:
        raise MemoryLimitError(
            f"siting {category}: the candidate x demand relation of the {fixed.size:,} "
            f"planner/cluster candidates needs about "
            f"{resources.format_bytes(bytes_per_cand * fixed.size)} but the memory budget "
            f"leaves {resources.format_bytes(avail)}; raise --memory-limit (config [run] "
            "memory_limit), give fewer candidates or site one district at a time")
    xy = np.column_stack([cands["snapped_x"].to_numpy()[street],
                          cands["snapped_y"].to_numpy()[street]])
    demand = open_xy if open_xy is not None else np.zeros((0, 2))
    kept, thin = thin_network_candidates(xy, demand, reach_m,
                                         max_candidates=allowed - fixed.size)
    keep = np.sort(np.concatenate([fixed, street[kept]]))
    info.update({"thinned_for_memory": True, "candidates_before": int(n),
                 "candidates_after": int(keep.size), "cell_m": thin.get("cell_m")})
    warn("candidates_thinned_for_memory",
         f"siting {category}: {n:,} candidates would need about "
         f"{resources.format_bytes(bytes_per_cand * n)} for the candidate x demand relation; "
         f"the memory budget leaves {resources.format_bytes(avail)}, so the generated street "
         f"points were thinned to {keep.size:,} candidates (one per "
         f"{thin.get('cell_m') or 0:.0f} m cell); the plan is optimal among these. Raise "
         "--memory-limit to keep more", category=category, candidates_before=int(n),
         candidates_after=int(keep.size))
    return _Fit(keep, info)

