"""Maximal covering: ``k`` sites that cover the most demand weight (greedy + swaps, or HiGHS)."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from geosvc.locate import _audit, _highs, _reduce
from geosvc.locate._cover_bound import lagrangian_max_coverage
from geosvc.locate._greedy import (
    greedy_cover,
)
from geosvc.locate._inputs import (
    Solver,
    check_count,
    is_integral,
    prepare_coverage,
    solver_name,
)
from geosvc.locate._maxcov_ls import swap_max_coverage
from geosvc.locate._mip import lp_bound, mip_info, solve_mip
from geosvc.locate._plan import Found, Plan, PlanHead, build_plan, relative_gap, round_bound

__all__ = ["max_coverage", "MAXCOV_LAGRANGIAN_TIME_S"]

logger = logging.getLogger("geosvc.locate")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Time budget of the Lagrangian bound of greedy max-coverage plans too large for the LP.
MAXCOV_LAGRANGIAN_TIME_S = 5.0


def _covered_groups(
    cov: sp.csr_array, sites: IntArray, group: IntArray, n_groups: int
) -> FloatArray:
    """1.0 for every demand group covered by one of ``sites``."""
    out = np.zeros(n_groups)
    if len(sites):
        g = group[cov[np.asarray(sites)].indices]
        out[g[g >= 0]] = 1.0
    return out


def max_coverage(
    coverage: Any,
    weights: Any,
    k: int,
    *,
    fixed_covered: Any = None,
    solver: Solver = "greedy",
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-4,
) -> Plan:
    """Choose ``k`` candidate sites that cover the most demand weight (maximal covering).

    Parameters
    ----------
    coverage
        Candidates x demand relation, ``True`` where the candidate covers the demand
        (scipy.sparse matrix or dense boolean array).
    weights
        Demand weights (households, persons, ...), one per demand column, non-negative.
    k
        Number of new sites (at most the number of candidates).
    fixed_covered
        Boolean mask over demand already covered by existing facilities; that weight counts in
        the objective but no site gains anything from it.
    solver
        ``"greedy"``: lazy greedy with the better of the LP-relaxation bound and the online
        submodular bound.  ``"exact"``: HiGHS integer programme.
    time_limit_s
        Time limit for each HiGHS solve, in seconds.
    mip_gap
        Relative MIP gap at which HiGHS may stop.

    Returns
    -------
    Plan
        ``objective`` is the total covered weight, fixed facilities' share included; ``sites``
        stop early when no further candidate adds weight.

    Examples
    --------
    >>> import numpy as np
    >>> cov = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=bool)
    >>> plan = max_coverage(cov, np.ones(4), 2)
    >>> plan.sites.tolist(), plan.objective
    ([0, 2], 4.0)
    """
    t0 = time.perf_counter()
    pb = prepare_coverage(coverage, weights, fixed_covered)
    cov, w, fixed, active, uncoverable = pb.cov, pb.w, pb.fixed, pb.active, pb.uncoverable
    indptr, indices = pb.indptr, pb.indices
    n_cand, n_dem = pb.n_cand, pb.n_dem
    k = check_count(k, n_cand, "k")
    solver = solver_name(solver)
    fixed_w = pb.fixed_weight
    reachable_w = fixed_w + float(w[active].sum())
    integral = is_integral(w[active])
    ones = np.ones(n_cand)
    all_cand = np.ones(n_cand, dtype=bool)
    order, gains, online = greedy_cover(indptr, indices, w, fixed, ones, all_cand, k, np.inf, k)
    info: dict[str, Any] = {
        **pb.base_info(),
        "k": k,
        "coverable_weight": reachable_w,
    }
    greedy_obj = fixed_w + float(gains.sum())
    safe_bound = min(reachable_w, fixed_w + float(online))  # the greedy's own bounds

    def finish(chosen_order: IntArray, chosen_gains: FloatArray, bound: float,
               solver_status: str | None) -> Plan:
        return build_plan(
            PlanHead(model="max_coverage", solver=solver, t0=t0, maximise=True, uncoverable=uncoverable, info=info),
            Found(
                sites=chosen_order,
                marginal=chosen_gains,
                objective=fixed_w + float(chosen_gains.sum()),
                bound=bound,
                solver_status=solver_status,
                recomputed=_audit.covered_weight(cov, w, fixed, chosen_order),
                safe_bound=round_bound(safe_bound, integral, maximise=True),
            ),
        )

    if k == 0 or not active.any():
        return finish(order, gains, greedy_obj, None)
    cov_g, w_g, group = _reduce.aggregate_demand(cov, w, active)
    info["n_demand_groups"] = int(w_g.size)
    cov_m = _reduce.drop_dominated(cov_g, np.ones(n_cand), n_dem, info)
    # swaps and kicked restarts from the greedy plan, on the reduced relation
    info["greedy_add_objective"] = greedy_obj
    ls_sites, info["local_search"] = swap_max_coverage(cov_m.indptr, cov_m.indices, w_g, order)
    chosen_ls = np.zeros(n_cand, dtype=bool)
    chosen_ls[ls_sites] = True
    ls_order, ls_gains, _ = greedy_cover(
        indptr, indices, w, fixed, ones, chosen_ls, int(chosen_ls.sum()), np.inf, 0)
    if fixed_w + float(ls_gains.sum()) > greedy_obj:
        order, gains = ls_order, ls_gains
        greedy_obj = fixed_w + float(gains.sum())
    if solver == "greedy":
        bounds = {"online": fixed_w + float(online), "coverable": reachable_w}
        lp = lp_bound(lambda: _highs.max_coverage_model(
            cov_m, w_g, np.ones(w_g.size, dtype=bool), k, fixed_w), cov_m.nnz, time_limit_s,
            mip_gap, info)
        if lp is not None:
            bounds["lp"] = lp
        else:  # too large for the LP: the Lagrangian bound, one pass over the pairs a step
            lag, lag_info = lagrangian_max_coverage(
                cov_m.indptr, cov_m.indices, w_g, k, greedy_obj - fixed_w,
                max_time_s=min(MAXCOV_LAGRANGIAN_TIME_S, 0.25 * time_limit_s))
            bounds["lagrangian"] = fixed_w + lag
            info["lagrangian"] = lag_info
        source = min(bounds, key=lambda s: bounds[s])
        info["bound_source"] = source
        info["bounds"] = bounds
        return finish(order, gains, round_bound(bounds[source], integral, maximise=True), None)
    # The Lagrangian bound first: cheap (one pass over the pairs a step) and, at city scale,
    # far tighter than what HiGHS proves in its time limit; when it already proves the greedy
    # plan within mip_gap there is nothing left for the MIP to do.
    lag, lag_info = lagrangian_max_coverage(
        cov_m.indptr, cov_m.indices, w_g, k, greedy_obj - fixed_w,
        max_time_s=min(MAXCOV_LAGRANGIAN_TIME_S, 0.25 * time_limit_s))
    info["lagrangian"] = {**lag_info, "bound": fixed_w + lag}
    safe_bound = min(safe_bound, fixed_w + lag)
    proven = round_bound(safe_bound, integral, maximise=True)
    if relative_gap(greedy_obj, proven) <= mip_gap:
        info["mip"] = (f"not needed: the Lagrangian bound {proven:.6g} proves the greedy plan "
                       f"within mip_gap {mip_gap:g}")
        info["greedy_objective"] = greedy_obj
        return finish(order, gains, proven, "optimal")
    model = _highs.max_coverage_model(cov_m, w_g, np.ones(w_g.size, dtype=bool), k, fixed_w)
    start = np.zeros(model.num_col)
    start[order] = 1.0
    start[n_cand:] = _covered_groups(cov, order, group, w_g.size)
    res = solve_mip(model, time_limit_s=time_limit_s, mip_gap=mip_gap, start=start, info=info)
    info.update(mip_info(res))
    info["greedy_objective"] = greedy_obj
    if res.x is not None:
        chosen = res.x[:n_cand] > 0.5
        x_order, x_gains, _ = greedy_cover(
            indptr, indices, w, fixed, ones, chosen, int(chosen.sum()), np.inf, 0
        )
        if fixed_w + float(x_gains.sum()) >= greedy_obj:
            order, gains = x_order, x_gains
    bound = res.bound if math.isfinite(res.bound) else reachable_w
    bound = min(bound, safe_bound)  # the greedy's bounds stay valid
    return finish(order, gains, round_bound(bound, integral, maximise=True), res.status)
