"""Capacitated coverage: ``k`` sites, each serving at most its capacity of what it covers."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from geosvc.locate import _audit, _highs, _reduce
from geosvc.locate._greedy import (
    greedy_capacitated,
    greedy_cover,
)
from geosvc.locate._inputs import (
    Solver,
    check_count,
    is_integral,
    prepare_coverage,
    site_vector,
    solver_name,
)
from geosvc.locate._mip import lp_bound, mip_info, solve_mip
from geosvc.locate._plan import Found, Plan, PlanHead, build_plan, round_bound

__all__ = ["capacitated_coverage", "CAPACITATED_LP_TIME_S"]

logger = logging.getLogger("geosvc.locate")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Time limit of the LP bound of a greedy capacitated plan (without it: the capacity bound).
CAPACITATED_LP_TIME_S = 5.0


def capacitated_coverage(
    coverage: Any,
    weights: Any,
    capacities: Any,
    k: int,
    *,
    fixed_covered: Any = None,
    solver: Solver = "greedy",
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-4,
) -> Plan:
    """Choose ``k`` sites, each serving at most its capacity of the demand it covers.

    Sites are binary; a demand's weight may be split across several covering sites (fractional
    assignment), so for a fixed set of sites the served weight is a transportation LP.

    Parameters
    ----------
    coverage
        Candidates x demand relation, ``True`` where the candidate covers the demand.
    weights
        Demand weights, non-negative.
    capacities
        Weight each candidate can serve if opened (``inf`` for uncapacitated).
    k
        Number of new sites.
    fixed_covered
        Boolean mask over demand already served by existing facilities (assumed to have the
        capacity for it); counted in the objective, never assigned to new sites.
    solver
        ``"greedy"``: lazy greedy on ``min(capacity, residual covered weight)`` with a simple
        assignment, then the best assignment for the chosen sites, bounded by the LP relaxation.
        ``"exact"``: HiGHS mixed-integer programme with assignment variables on covering pairs.
    time_limit_s
        Time limit for each HiGHS solve, in seconds.
    mip_gap
        Relative MIP gap at which HiGHS may stop.

    Returns
    -------
    Plan
        ``objective`` is the served weight (fixed share included) under the best fractional
        assignment for the chosen sites; ``marginal`` are the served-weight gains of each prefix
        of ``sites`` (not necessarily non-increasing); ``assignment`` gives per demand the site
        serving its largest share (-1 if none, also for fixed-covered demand);
        ``info["flows"]`` holds the full fractional assignment.
    """
    t0 = time.perf_counter()
    pb = prepare_coverage(coverage, weights, fixed_covered)
    cov, w, fixed, active, uncoverable = pb.cov, pb.w, pb.fixed, pb.active, pb.uncoverable
    indptr, indices = pb.indptr, pb.indices
    n_cand, n_dem = pb.n_cand, pb.n_dem
    cap = site_vector(capacities, n_cand, "capacities", positive=False)
    k = check_count(k, n_cand, "k")
    solver = solver_name(solver)
    fixed_w = pb.fixed_weight
    active_w = float(w[active].sum())
    cap = np.minimum(cap, active_w)  # inf -> the most any site could serve
    integral = is_integral(w[active]) and is_integral(cap)
    info: dict[str, Any] = {
        **pb.base_info(),
        "k": k,
        "coverable_weight": fixed_w + active_w,
        "assignment": "fractional",
    }
    # serve the least flexible demand first: sort each row by the demand's number of covering sites
    degree = np.bincount(indices, minlength=n_dem)
    row_ids = np.repeat(np.arange(n_cand), np.diff(indptr))
    sorted_indices = indices[np.lexsort((indices, degree[indices], row_ids))]
    residual = np.where(active, w, 0.0)
    all_cand = np.ones(n_cand, dtype=bool)
    order, g_gains, fs, fd, fa = greedy_capacitated(
        indptr, sorted_indices, residual, cap, all_cand, k
    )
    info["greedy_assignment_served"] = fixed_w + float(g_gains.sum())
    info["greedy_marginal"] = g_gains

    def finish(chosen: BoolArray, bound: float, solver_status: str | None) -> Plan:
        seq, _, _, _, _ = greedy_capacitated(
            indptr, sorted_indices, residual, cap, chosen, int(chosen.sum())
        )
        served, ps, pd, flow = _highs.transport_served(
            cov, w, active, cap, seq, time_limit_s=time_limit_s
        )
        marginal = np.diff(np.concatenate([[0.0], served]))
        objective = fixed_w + (float(served[-1]) if served.size else 0.0)
        pos = flow > 1e-12
        ps, pd, flow = ps[pos], pd[pos], flow[pos]
        assignment = np.full(n_dem, -1, dtype=np.int64)
        if flow.size:
            top = np.lexsort((-flow, pd))
            first = np.ones(top.size, dtype=bool)
            first[1:] = pd[top][1:] != pd[top][:-1]
            assignment[pd[top][first]] = ps[top][first]
        info["flows"] = {"site": ps, "demand": pd, "amount": flow}
        served_check, problem = _audit.flow_served(cov, np.where(active, w, 0.0), cap, seq, ps, pd, flow)
        if problem:
            info["flow_check"] = f"failed: {problem}"
        return build_plan(
            PlanHead(model="capacitated_coverage", solver=solver, t0=t0, maximise=True, uncoverable=uncoverable, info=info),
            Found(
                sites=seq,
                marginal=marginal,
                objective=objective,
                bound=bound,
                solver_status=solver_status,
                recomputed=fixed_w + served_check if not problem else math.nan,
                safe_bound=round_bound(simple, integral, maximise=True),
                assignment=assignment,
            ),
        )

    # every site serves at most its capacity, every demand at most its weight, and no more
    # than k sites can cover (the online bound of the uncapacitated greedy)
    _, _, cover_bound = greedy_cover(
        indptr, indices, np.where(active, w, 0.0), fixed, np.ones(n_cand),
        np.ones(n_cand, dtype=bool), k, np.inf, k,
    ) if k > 0 else (None, None, 0.0)
    simple = min(fixed_w + active_w, fixed_w + float(np.sort(cap)[::-1][:k].sum()),
                 fixed_w + float(cover_bound))
    greedy_mask = np.zeros(n_cand, dtype=bool)
    greedy_mask[order] = True
    if k == 0 or not active.any():
        return finish(greedy_mask, fixed_w, None)
    cov_g, w_g, group = _reduce.aggregate_demand(cov, w, active)
    n_g = int(w_g.size)
    info["n_demand_groups"] = n_g
    if solver == "greedy" and float(info["greedy_assignment_served"]) >= simple - 1e-9 * max(
        1.0, simple
    ):
        info["bound_source"] = "capacity"  # already reached: no LP needed
        return finish(greedy_mask, round_bound(simple, integral, maximise=True), None)
    if solver == "greedy":
        lp = lp_bound(lambda: _highs.capacitated_model(
            cov_g, w_g, np.ones(n_g, dtype=bool), cap, k, fixed_w), cov_g.nnz,
            min(time_limit_s, CAPACITATED_LP_TIME_S), mip_gap, info)
        info["bound_source"] = "lp" if lp is not None and lp < simple else "capacity"
        bound = min(simple, lp if lp is not None else math.inf)
        return finish(greedy_mask, round_bound(bound, integral, maximise=True), None)
    model = _highs.capacitated_model(cov_g, w_g, np.ones(n_g, dtype=bool), cap, k, fixed_w)
    start = np.zeros(model.num_col)
    start[order] = 1.0
    pair_site = np.asarray(model.meta["pair_site"])
    pair_grp = np.asarray(model.meta["pair_demand"])
    keys = pair_site * n_g + pair_grp  # sorted: CSR order
    col = np.searchsorted(keys, fs * n_g + group[fd])
    np.add.at(start, n_cand + col, fa)
    res = solve_mip(model, time_limit_s=time_limit_s, mip_gap=mip_gap, start=start, info=info)
    info.update(mip_info(res))
    chosen = greedy_mask if res.x is None else res.x[:n_cand] > 0.5
    # HiGHS's dual bound can be loose when it stops early; the capacity bound always holds
    bound = min(res.bound, simple) if math.isfinite(res.bound) else simple
    return finish(chosen, round_bound(bound, integral, maximise=True), res.status)
