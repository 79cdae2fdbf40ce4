"""Exact maximal covering when its LP fits: LP multipliers, a restricted MIP, Lagrangian fixing.

The plain MIP spends its time in HiGHS's root cut loop and sub-MIP heuristics on the whole
relation.  When the LP relaxation is affordable this module shrinks what HiGHS sees:

1. the LP relaxation gives multipliers ``u`` for the covering rows (any ``u >= 0`` gives a
   valid Lagrangian bound ``L(u)``; the LP duals give the best one, the LP bound);
2. a MIP restricted to the candidates the LP uses (plus the best plan's) finds a better plan
   quickly: it is the same model on a few dozen candidates;
3. Lagrangian fixing: a candidate ``j`` outside the ``k`` best scores can only enter a plan at
   a cost of ``score_[k] - score_j`` to the bound; when ``L(u)`` minus that cannot beat the
   best plan, no better plan uses ``j`` and it is removed;
4. HiGHS solves the model on the kept candidates (demand re-aggregated on them), started
   from the best plan.  Plans without a removed candidate are all in it, and plans with one
   cover no more than the best plan, so the larger of its bound and the best plan's weight
   bounds the full problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from geosvc.locate import _highs, _reduce
from geosvc.locate._cover_bound import lagrangian_value
from geosvc.locate._mip import solve_mip

__all__ = ["LpDuals", "lp_duals", "fixed_out", "solve_restricted", "RESTRICTED_TIME_SHARE"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Share of the time limit the restricted (heuristic) MIP may take.
RESTRICTED_TIME_SHARE = 0.1


@dataclass(frozen=True)
class LpDuals:
    """The LP relaxation's value, site values and covering-row multipliers (``>= 0``)."""

    value: float
    x: FloatArray
    u: FloatArray
    time_s: float


def lp_duals(cov_m: sp.csr_array, w_g: FloatArray, k: int, time_limit_s: float) -> LpDuals | None:
    """The LP relaxation of max coverage on the aggregated relation (None if not solved)."""
    model = _highs.max_coverage_model(cov_m, w_g, np.ones(w_g.size, dtype=bool), k, 0.0)
    res, row_dual = _highs.solve_lp_with_duals(model, time_limit_s=time_limit_s)
    if res.status != "optimal" or res.x is None:
        return None
    u = np.clip(np.abs(row_dual[: w_g.size]), 0.0, w_g)  # u_i > w_i never helps the bound
    return LpDuals(value=res.bound, x=res.x[: cov_m.shape[0]], u=u, time_s=res.runtime_s)


def fixed_out(cov_m: sp.csr_array, w_g: FloatArray, k: int, u: FloatArray, lower: float,
              integral: bool, keep: BoolArray) -> tuple[BoolArray, float]:
    """Candidates no plan covering more than ``lower`` can use; and the bound ``L(u)``.

    ``integral``: weights are integers, so "more than ``lower``" means at least
    ``lower + 1``.  Candidates in ``keep`` (the best plan's) are never removed.
    """
    n_cand = cov_m.shape[0]
    bound, score = lagrangian_value(cov_m.indptr, cov_m.indices, w_g, u, k)
    if k >= n_cand:
        return np.zeros(n_cand, dtype=bool), bound
    order = np.argsort(-score, kind="stable")
    kth = score[order[k - 1]]
    in_top = np.zeros(n_cand, dtype=bool)
    in_top[order[:k]] = True
    with_j = bound - (kth - score)  # the bound of plans forced to use j (j outside the top k)
    need = lower + 1.0 - 1e-6 if integral else lower + 1e-9 * max(1.0, abs(lower))
    out = ~in_top & (with_j < need) & ~keep
    return out, bound


def solve_restricted(
    cov_m: sp.csr_array,
    w_g: FloatArray,
    k: int,
    allowed: BoolArray,
    start: IntArray,
    *,
    time_limit_s: float,
    mip_gap: float,
    info: dict[str, Any],
    heuristic_effort: float | None = None,
) -> tuple[_highs.MipResult, dict[str, int]]:
    """Max coverage over the ``allowed`` candidates only, started from ``start`` (allowed).

    Demand is re-aggregated on the allowed candidates and dominated candidates dropped, so
    the model is as small as the restriction makes it.  The result's ``x`` covers every
    candidate (removed ones at 0); its objective and bound are covered weights.
    """
    n_cand = cov_m.shape[0]
    sub = _reduce.keep_candidates(cov_m, allowed)
    reachable = np.bincount(sub.indices, minlength=sub.shape[1]) > 0
    cov_r, w_r, _ = _reduce.aggregate_demand(sub, w_g, reachable & (w_g > 0))
    sub_info: dict[str, Any] = {}
    cov_r = _reduce.drop_dominated(cov_r, np.ones(n_cand), int(w_g.size), sub_info)
    model = _highs.max_coverage_model(cov_r, w_r, np.ones(w_r.size, dtype=bool), k, 0.0)
    model.col_upper[:n_cand] = np.where(np.diff(cov_r.indptr) > 0, 1.0, 0.0)
    model.col_upper[start] = 1.0
    x0 = np.zeros(model.num_col)
    x0[start] = 1.0
    covered = np.zeros(w_r.size)
    covered[cov_r[start].indices] = 1.0
    x0[n_cand:] = covered
    res = solve_mip(model, time_limit_s=time_limit_s, mip_gap=mip_gap, start=x0, info=info,
                    mip_settings="ipm_no_presolve", heuristic_effort=heuristic_effort)
    sizes = {"candidates": int(np.count_nonzero(np.diff(cov_r.indptr))),
             "demand_groups": int(w_r.size), "nonzeros": int(model.matrix.nnz)}
    return res, sizes
