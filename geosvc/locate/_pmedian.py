"""p-median: ``p`` sites minimising the weighted cost to the nearest open site."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from geosvc._errors import InfeasibleError, InputError
from geosvc.locate import _audit, _highs
from geosvc.locate._bounds import lagrangian_fixing, lagrangian_pmedian
from geosvc.locate._greedy import (
    greedy_pmedian,
    nearest_two,
    swap_pmedian,
)
from geosvc.locate._inputs import (
    Solver,
    check_count,
    check_weights,
    cost_csr,
    is_integral,
    kernel_arrays,
    site_mask,
    solver_name,
)
from geosvc.locate._mip import mip_info, solve_mip
from geosvc.locate._plan import Found, Plan, PlanHead, build_plan, round_bound

__all__ = ["p_median", "LP_BOUND_MAX_PAIRS"]

logger = logging.getLogger("geosvc.locate")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Greedy p-median plans get an LP bound only up to this many allowed pairs (the LP of the
#: cumulative formulation takes minutes at 400,000 pairs); above it the Lagrangian bound alone.
LP_BOUND_MAX_PAIRS = 100_000
#: Subgradient iterations of the Lagrangian p-median bound (greedy; exact uses twice as many).
PMEDIAN_LAGRANGIAN_ITER = 300
#: HiGHS primal-heuristic effort for p-median solves started from the greedy + swap plan, which
#: is usually optimal or nearly so: the time is better spent on the bound.
PMEDIAN_HEURISTIC_EFFORT = 0.0


def p_median(
    costs: Any,
    weights: Any,
    p: int,
    *,
    fixed: Any = None,
    cost_cap: float | None = None,
    solver: Solver = "greedy",
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-4,
) -> Plan:
    """Open ``p`` sites that minimise the total weighted cost to the nearest open site.

    Parameters
    ----------
    costs
        Candidates x demand assignment costs (travel time or distance, non-negative).  Dense:
        every finite entry is allowed (``+inf`` forbids a pair).  scipy.sparse: only stored
        entries are allowed (a stored 0 is an allowed zero cost).
    weights
        Demand weights; demand of weight 0 does not need to be served.
    p
        Number of new sites, in addition to the ``fixed`` ones.
    cost_cap
        Capped p-median: the cost of leaving a demand unserved (e.g. twice the walking
        reach).  Every cost above it counts as the cap, every demand may be left at the cap
        (its ``assignment`` is then -1 and it is not ``uncoverable``), so a few sites can
        serve a district where most demand is out of reach.  ``info["weight_at_cap"]`` is the
        weight left at the cap.
    fixed
        Existing facilities: candidate indices (or a boolean mask over candidates) that are
        open whatever happens.
    solver
        ``"greedy"``: lazy greedy add then best-improvement vertex substitution, bounded by a
        Lagrangian bound and, up to 2 million allowed pairs, the LP relaxation of the
        cumulative formulation (restricted by Lagrangian site fixing, which keeps it valid).  ``"exact"``:
        HiGHS on the cumulative (radius) formulation, warm-started from the heuristic, after
        a Lagrangian bound has fixed closed (or open) the sites that no solution cheaper than
        the heuristic can use -- an exact reduction.
    time_limit_s
        Time limit for each HiGHS solve, in seconds; the swap local search also stops starting
        new iterations once this much time has passed since the call.
    mip_gap
        Relative MIP gap at which HiGHS may stop.

    Returns
    -------
    Plan
        ``objective`` is ``sum_i w_i c(i, nearest open site)`` over the demand that has an
        allowed site; ``assignment`` maps every demand to its nearest open site (fixed ones
        included) or -1; demand with no allowed candidate at all is listed in ``uncoverable``
        and left out of the objective.

    Raises
    ------
    InfeasibleError
        When (sparse costs) no choice of ``p`` sites can serve every positive-weight demand that
        has some allowed site.
    """
    if cost_cap is not None:
        return _capped_p_median(costs, weights, p, fixed=fixed, cost_cap=cost_cap,
                                solver=solver, time_limit_s=time_limit_s, mip_gap=mip_gap)
    t0 = time.perf_counter()
    cmat = cost_csr(costs)
    n_cand, n_dem = cmat.shape
    w = check_weights(weights, n_dem)
    fixed_mask = site_mask(fixed, n_cand, "fixed")
    n_fixed = int(fixed_mask.sum())
    p = check_count(p, n_cand - n_fixed, "p", what="non-fixed candidates")
    if p + n_fixed == 0:
        raise InputError("p must be >= 1 when there is no fixed facility")
    solver = solver_name(solver)
    n_open = p + n_fixed
    indptr, indices = kernel_arrays(cmat)
    data = cmat.data.astype(np.float64)
    allowed = np.zeros(n_dem, dtype=bool)
    allowed[indices] = True
    uncoverable = np.flatnonzero(~allowed)
    active = allowed & (w > 0)
    integral = is_integral(w[active]) and is_integral(data[active[indices]])
    fixed_idx = np.flatnonzero(fixed_mask)
    d1_fixed = nearest_two(cmat, fixed_idx)[0]
    d1_start = np.where(active, d1_fixed, 0.0)
    info: dict[str, Any] = {
        "p": p,
        "n_open": n_open,
        "fixed": fixed_idx,
        "n_candidates": n_cand,
        "n_demand": n_dem,
        "n_pairs": int(cmat.nnz),
        "total_weight": float(w.sum()),
        "uncoverable_weight": float(w[uncoverable].sum()),
    }
    order, _, _, d1 = greedy_pmedian(indptr, indices, data, w, d1_start, ~fixed_mask, p)
    greedy_ok = bool(np.isfinite(d1[active]).all())
    open_sites = np.union1d(fixed_idx, order)
    n_swaps = 0
    if greedy_ok:
        info["greedy_add_objective"] = float(np.sum(w[active] * d1[active]))
        open_sites, n_swaps, swap_stop = swap_pmedian(
            cmat, w, open_sites, fixed_mask, deadline=t0 + time_limit_s
        )
        info["swap_stop"] = swap_stop
    info["swaps"] = n_swaps

    def cost_of(sites: IntArray) -> float:
        dd = nearest_two(cmat, sites)[0]
        return float(np.sum(w[active] * dd[active]))

    def finish(open_mask: BoolArray, bound: float, solver_status: str | None) -> Plan:
        chosen = open_mask & ~fixed_mask
        d1_now = np.where(active, d1_fixed, 0.0)
        seq, fins, unserved_before, _ = greedy_pmedian(
            indptr, indices, data, w, d1_now, chosen, int(chosen.sum())
        )
        final = np.union1d(fixed_idx, seq)
        dd, nn, _ = nearest_two(cmat, final)
        objective = float(np.sum(w[active] * dd[active]))
        marginal = np.where(unserved_before, np.inf, fins)
        partial = uncoverable.size > 0 and float(w[uncoverable].sum()) > 0
        return build_plan(
            PlanHead(model="p_median", solver=solver, t0=t0, maximise=False, uncoverable=uncoverable, info=info),
            Found(
                sites=seq,
                marginal=marginal,
                objective=objective,
                bound=bound,
                solver_status=solver_status,
                recomputed=_audit.pmedian_cost(cmat, w, active, final),
                safe_bound=round_bound(max(lag_bound, 0.0), integral, maximise=False),
                assignment=nn,
                status_override="infeasible_partial" if partial else None,
            ),
        )

    heur_obj = cost_of(open_sites) if greedy_ok else math.inf
    info["heuristic_objective"] = heur_obj
    heur_mask = np.zeros(n_cand, dtype=bool)
    heur_mask[open_sites] = True
    infeasible_msg = (
        f"no {p} sites (plus {n_fixed} fixed) can serve every demand that has an allowed site; "
        "raise p or allow more candidate x demand pairs"
    )

    # Lagrangian bound, then fix the sites that no solution better than the heuristic can use
    closed = np.zeros(n_cand, dtype=bool)
    forced = np.zeros(n_cand, dtype=bool)
    fix_bound = math.inf
    lag_bound = -math.inf
    threshold = math.inf
    if greedy_ok:
        slack = 1.0 - 1e-6 if integral else 0.0
        threshold = heur_obj - slack + 1e-9 * max(1.0, abs(heur_obj))
        lam0 = np.zeros(n_dem)
        lam0[active] = w[active] * nearest_two(cmat, open_sites)[0][active]
        lag = lagrangian_pmedian(
            cmat, w, active, fixed_mask, n_open, heur_obj, start=lam0, stop_at=threshold,
            n_iter=PMEDIAN_LAGRANGIAN_ITER * (2 if solver == "exact" else 1),
        )
        lag_bound = lag.bound
        closed, forced, fix_bound = lagrangian_fixing(
            cmat, w, active, fixed_mask, n_open, lag.lam, threshold
        )
        info["lagrangian_bound"] = lag_bound
        info["lagrangian_iterations"] = lag.iterations
        info["closed_by_lagrangian"] = int(closed.sum())
        info["forced_by_lagrangian"] = int(forced.sum())
    reduced = bool(closed.any() or forced.any())
    row_ids = np.repeat(np.arange(n_cand), np.diff(indptr))
    n_model_pairs = int((active[indices] & ~closed[row_ids]).sum())
    model = None
    if solver == "exact" or n_model_pairs <= LP_BOUND_MAX_PAIRS:
        model = _highs.pmedian_model(cmat, w, active, fixed_mask | forced, n_open, closed)
        info["model_rows"] = model.num_row
        info["model_cols"] = model.num_col

    if solver == "greedy":
        if not greedy_ok:
            if model is not None:
                lp = _highs.solve(
                    model,
                    relax=True,
                    time_limit_s=time_limit_s,
                    mip_gap=mip_gap,
                    lp_solver="simplex",
                )
                if lp.status == "infeasible":
                    raise InfeasibleError(infeasible_msg)
            raise InfeasibleError(
                f"the greedy heuristic found no {p} sites (plus {n_fixed} fixed) serving every "
                "demand that has an allowed site; try solver='exact' or raise p"
            )
        bound = lag_bound
        info["bound_source"] = "lagrangian"
        if model is not None and lag_bound < threshold:
            lp = _highs.solve(
                model, relax=True, time_limit_s=time_limit_s, mip_gap=mip_gap, lp_solver="simplex"
            )
            info["lp_status"] = lp.model_status
            info["lp_time_s"] = lp.runtime_s
            lp_bound = -math.inf
            if lp.status == "optimal":
                lp_bound = lp.bound
            elif lp.status == "infeasible" and reduced:
                lp_bound = math.inf
            lp_bound = min(lp_bound, fix_bound)
            if lp_bound > bound:
                bound = lp_bound
                info["bound_source"] = "lp+lagrangian_fixing" if reduced else "lp"
        return finish(heur_mask, round_bound(bound, integral, maximise=False), None)

    assert model is not None
    start_ok = greedy_ok and not (heur_mask & closed).any() and not (forced & ~heur_mask).any()
    start_vec = _highs.pmedian_start(model, heur_mask) if start_ok else None
    res = solve_mip(
        model,
        time_limit_s=time_limit_s,
        mip_gap=mip_gap,
        start=start_vec,
        info=info,
        heuristic_effort=PMEDIAN_HEURISTIC_EFFORT if start_ok else None,
    )
    info.update(mip_info(res))
    if res.status == "infeasible":
        if not reduced:
            raise InfeasibleError(infeasible_msg)
        restricted_bound = math.inf  # every solution violates a fixing: costs >= fix_bound
    else:
        restricted_bound = res.bound if math.isfinite(res.bound) else -math.inf
    open_mask = heur_mask
    if res.x is not None:
        mip_mask = res.x[:n_cand] > 0.5
        if not greedy_ok or cost_of(np.flatnonzero(mip_mask)) < heur_obj:
            open_mask = mip_mask
    elif not greedy_ok:
        raise InfeasibleError(
            f"HiGHS found no feasible plan within {time_limit_s} s and the heuristic failed"
        )
    bound = max(lag_bound, min(restricted_bound, fix_bound))
    bound = round_bound(bound, integral, maximise=False)
    return finish(open_mask, bound, "optimal" if res.status == "infeasible" else res.status)


def _capped_p_median(costs: Any, weights: Any, p: int, *, fixed: Any, cost_cap: float,
                     solver: Solver, time_limit_s: float, mip_gap: float) -> Plan:
    """The p-median with every cost capped and a virtual "unserved" site always open."""
    cap = float(cost_cap)
    if not (math.isfinite(cap) and cap > 0):
        raise InputError(f"cost_cap must be a positive finite cost, got {cost_cap!r}")
    cmat = cost_csr(costs)
    n_cand, n_dem = cmat.shape
    fixed_mask = site_mask(fixed, n_cand, "fixed")
    clipped = sp.csr_array((np.minimum(cmat.data, cap), cmat.indices, cmat.indptr),
                           shape=cmat.shape)
    capped = sp.csr_array(sp.vstack([clipped, sp.csr_array(np.full((1, n_dem), cap))],
                                    format="csr"))
    plan = p_median(capped, weights, p, fixed=np.append(fixed_mask, True), solver=solver,
                    time_limit_s=time_limit_s, mip_gap=mip_gap)
    at_cap = plan.assignment == n_cand if plan.assignment is not None else np.zeros(n_dem, bool)
    w = check_weights(weights, n_dem)
    info = dict(plan.info)
    info.update(cost_cap=cap, weight_at_cap=float(w[at_cap].sum()),
                fixed=np.asarray(info.get("fixed", []))[np.asarray(info.get("fixed", [])) != n_cand],
                n_candidates=n_cand, n_open=int(info.get("n_open", 1)) - 1)
    assignment = np.where(at_cap, -1, plan.assignment) if plan.assignment is not None else None
    return dataclasses.replace(plan, assignment=assignment, info=info)
