"""p-median: ``p`` sites minimising the weighted cost to the nearest open site."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
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
    run = _prepare(costs, weights, p, fixed, solver_name(solver))
    heur_mask, heur_obj, greedy_ok = _heuristic(run, time_limit_s)
    red = _lagrangian_reduction(run, heur_mask, heur_obj, greedy_ok)
    model = None
    if run.solver == "exact" or red.model_pairs <= LP_BOUND_MAX_PAIRS:
        model = _highs.pmedian_model(run.cmat, run.w, run.active, run.fixed_mask | red.forced,
                                     run.n_open, red.closed)
        run.info["model_rows"] = model.num_row
        run.info["model_cols"] = model.num_col
    if run.solver == "greedy":
        return _greedy_plan(run, model, red, heur_mask, greedy_ok, time_limit_s, mip_gap)
    assert model is not None
    return _exact(run, model, red, heur_mask, heur_obj, greedy_ok, time_limit_s, mip_gap)


@dataclass
class _Run:
    """One p-median call: the checked costs, weights and fixed sites, and the plan audit."""

    cmat: sp.csr_array
    w: FloatArray
    fixed_mask: BoolArray
    p: int
    solver: Solver
    t0: float
    info: dict[str, Any] = field(default_factory=dict)
    lag_bound: float = -math.inf

    def __post_init__(self) -> None:
        self.indptr, self.indices = kernel_arrays(self.cmat)
        self.data = self.cmat.data.astype(np.float64)
        allowed = np.zeros(self.cmat.shape[1], dtype=bool)
        allowed[self.indices] = True
        self.uncoverable = np.flatnonzero(~allowed)
        self.active = allowed & (self.w > 0)
        self.integral = is_integral(self.w[self.active]) and is_integral(
            self.data[self.active[self.indices]])
        self.fixed_idx = np.flatnonzero(self.fixed_mask)
        self.n_open = self.p + self.fixed_idx.size
        self.d1_fixed = nearest_two(self.cmat, self.fixed_idx)[0]

    def cost_of(self, sites: IntArray) -> float:
        """Weighted cost of serving the active demand from ``sites``."""
        dd = nearest_two(self.cmat, sites)[0]
        return float(np.sum(self.w[self.active] * dd[self.active]))

    def infeasible_msg(self) -> str:
        return (f"no {self.p} sites (plus {self.fixed_idx.size} fixed) can serve every demand "
                "that has an allowed site; raise p or allow more candidate x demand pairs")

    def plan(self, open_mask: BoolArray, bound: float, solver_status: str | None) -> Plan:
        """The audited plan opening ``open_mask`` (new sites in greedy-add order)."""
        w, active = self.w, self.active
        chosen = open_mask & ~self.fixed_mask
        seq, fins, unserved_before, _ = greedy_pmedian(
            self.indptr, self.indices, self.data, w, np.where(active, self.d1_fixed, 0.0),
            chosen, int(chosen.sum()))
        final = np.union1d(self.fixed_idx, seq)
        dd, nn, _ = nearest_two(self.cmat, final)
        partial = self.uncoverable.size > 0 and float(w[self.uncoverable].sum()) > 0
        return build_plan(
            PlanHead(model="p_median", solver=self.solver, t0=self.t0, maximise=False,
                     uncoverable=self.uncoverable, info=self.info),
            Found(
                sites=seq,
                marginal=np.where(unserved_before, np.inf, fins),
                objective=float(np.sum(w[active] * dd[active])),
                bound=bound,
                solver_status=solver_status,
                recomputed=_audit.pmedian_cost(self.cmat, w, active, final),
                safe_bound=round_bound(max(self.lag_bound, 0.0), self.integral, maximise=False),
                assignment=nn,
                status_override="infeasible_partial" if partial else None,
            ),
        )


@dataclass
class _Reduction:
    """Sites the Lagrangian bound fixed closed/open against the heuristic's cost."""

    closed: BoolArray
    forced: BoolArray
    fix_bound: float
    threshold: float
    model_pairs: int

    @property
    def reduced(self) -> bool:
        return bool(self.closed.any() or self.forced.any())


def _prepare(costs: Any, weights: Any, p: int, fixed: Any, solver: Solver) -> _Run:
    t0 = time.perf_counter()
    cmat = cost_csr(costs)
    n_cand, n_dem = cmat.shape
    w = check_weights(weights, n_dem)
    fixed_mask = site_mask(fixed, n_cand, "fixed")
    n_fixed = int(fixed_mask.sum())
    p = check_count(p, n_cand - n_fixed, "p", what="non-fixed candidates")
    if p + n_fixed == 0:
        raise InputError("p must be >= 1 when there is no fixed facility")
    run = _Run(cmat=cmat, w=w, fixed_mask=fixed_mask, p=p, solver=solver, t0=t0)
    run.info.update({
        "p": p,
        "n_open": run.n_open,
        "fixed": run.fixed_idx,
        "n_candidates": n_cand,
        "n_demand": n_dem,
        "n_pairs": int(cmat.nnz),
        "total_weight": float(w.sum()),
        "uncoverable_weight": float(w[run.uncoverable].sum()),
    })
    return run


def _heuristic(run: _Run, time_limit_s: float) -> tuple[BoolArray, float, bool]:
    """Greedy add, then vertex substitution: the open mask, its cost, whether it serves all."""
    w, active, info = run.w, run.active, run.info
    order, _, _, d1 = greedy_pmedian(run.indptr, run.indices, run.data, w,
                                     np.where(active, run.d1_fixed, 0.0), ~run.fixed_mask, run.p)
    greedy_ok = bool(np.isfinite(d1[active]).all())
    open_sites = np.union1d(run.fixed_idx, order)
    n_swaps = 0
    if greedy_ok:
        info["greedy_add_objective"] = float(np.sum(w[active] * d1[active]))
        open_sites, n_swaps, info["swap_stop"] = swap_pmedian(
            run.cmat, w, open_sites, run.fixed_mask, deadline=run.t0 + time_limit_s)
    info["swaps"] = n_swaps
    heur_obj = run.cost_of(open_sites) if greedy_ok else math.inf
    info["heuristic_objective"] = heur_obj
    heur_mask = np.zeros(run.cmat.shape[0], dtype=bool)
    heur_mask[open_sites] = True
    return heur_mask, heur_obj, greedy_ok


def _lagrangian_reduction(run: _Run, heur_mask: BoolArray, heur_obj: float,
                          greedy_ok: bool) -> _Reduction:
    """Lagrangian bound, then the sites that no solution better than the heuristic can use."""
    n_cand = run.cmat.shape[0]
    red = _Reduction(closed=np.zeros(n_cand, dtype=bool), forced=np.zeros(n_cand, dtype=bool),
                     fix_bound=math.inf, threshold=math.inf, model_pairs=0)
    if greedy_ok:
        w, active = run.w, run.active
        slack = 1.0 - 1e-6 if run.integral else 0.0
        red.threshold = heur_obj - slack + 1e-9 * max(1.0, abs(heur_obj))
        lam0 = np.zeros(run.cmat.shape[1])
        lam0[active] = w[active] * nearest_two(run.cmat, np.flatnonzero(heur_mask))[0][active]
        lag = lagrangian_pmedian(
            run.cmat, w, active, run.fixed_mask, run.n_open, heur_obj, start=lam0,
            stop_at=red.threshold,
            n_iter=PMEDIAN_LAGRANGIAN_ITER * (2 if run.solver == "exact" else 1),
        )
        run.lag_bound = lag.bound
        red.closed, red.forced, red.fix_bound = lagrangian_fixing(
            run.cmat, w, active, run.fixed_mask, run.n_open, lag.lam, red.threshold)
        run.info.update(lagrangian_bound=lag.bound, lagrangian_iterations=lag.iterations,
                        closed_by_lagrangian=int(red.closed.sum()),
                        forced_by_lagrangian=int(red.forced.sum()))
    row_ids = np.repeat(np.arange(n_cand), np.diff(run.indptr))
    red.model_pairs = int((run.active[run.indices] & ~red.closed[row_ids]).sum())
    return red


def _greedy_plan(run: _Run, model: _highs.MipModel | None, red: _Reduction,
                 heur_mask: BoolArray, greedy_ok: bool, time_limit_s: float,
                 mip_gap: float) -> Plan:
    """The heuristic plan with the better of the Lagrangian and the (restricted) LP bound."""
    info = run.info
    if not greedy_ok:
        if model is not None:
            lp = _highs.solve(model, relax=True, time_limit_s=time_limit_s, mip_gap=mip_gap,
                              lp_solver="simplex")
            if lp.status == "infeasible":
                raise InfeasibleError(run.infeasible_msg())
        raise InfeasibleError(
            f"the greedy heuristic found no {run.p} sites (plus {run.fixed_idx.size} fixed) "
            "serving every demand that has an allowed site; try solver='exact' or raise p"
        )
    bound = run.lag_bound
    info["bound_source"] = "lagrangian"
    if model is not None and run.lag_bound < red.threshold:
        lp = _highs.solve(model, relax=True, time_limit_s=time_limit_s, mip_gap=mip_gap,
                          lp_solver="simplex")
        info["lp_status"] = lp.model_status
        info["lp_time_s"] = lp.runtime_s
        lp_b = -math.inf
        if lp.status == "optimal":
            lp_b = lp.bound
        elif lp.status == "infeasible" and red.reduced:
            lp_b = math.inf
        lp_b = min(lp_b, red.fix_bound)
        if lp_b > bound:
            bound = lp_b
            info["bound_source"] = "lp+lagrangian_fixing" if red.reduced else "lp"
    return run.plan(heur_mask, round_bound(bound, run.integral, maximise=False), None)


def _exact(run: _Run, model: _highs.MipModel, red: _Reduction, heur_mask: BoolArray,
           heur_obj: float, greedy_ok: bool, time_limit_s: float, mip_gap: float) -> Plan:
    """HiGHS on the cumulative formulation restricted by the Lagrangian fixing."""
    start_ok = (greedy_ok and not (heur_mask & red.closed).any()
                and not (red.forced & ~heur_mask).any())
    res = solve_mip(
        model,
        time_limit_s=time_limit_s,
        mip_gap=mip_gap,
        start=_highs.pmedian_start(model, heur_mask) if start_ok else None,
        info=run.info,
        heuristic_effort=PMEDIAN_HEURISTIC_EFFORT if start_ok else None,
    )
    run.info.update(mip_info(res))
    if res.status == "infeasible":
        if not red.reduced:
            raise InfeasibleError(run.infeasible_msg())
        restricted_bound = math.inf  # every solution violates a fixing: costs >= fix_bound
    else:
        restricted_bound = res.bound if math.isfinite(res.bound) else -math.inf
    open_mask = heur_mask
    if res.x is not None:
        mip_mask = res.x[:run.cmat.shape[0]] > 0.5
        if not greedy_ok or run.cost_of(np.flatnonzero(mip_mask)) < heur_obj:
            open_mask = mip_mask
    elif not greedy_ok:
        raise InfeasibleError(
            f"HiGHS found no feasible plan within {time_limit_s} s and the heuristic failed"
        )
    bound = max(run.lag_bound, min(restricted_bound, red.fix_bound))
    bound = round_bound(bound, run.integral, maximise=False)
    return run.plan(open_mask, bound, "optimal" if res.status == "infeasible" else res.status)


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
    real_fixed = np.asarray(info["fixed"])
    info.update(cost_cap=cap, weight_at_cap=float(w[at_cap].sum()),
                fixed=real_fixed[real_fixed != n_cand], n_candidates=n_cand,
                n_open=int(info["n_open"]) - 1)
    assignment = np.where(at_cap, -1, plan.assignment) if plan.assignment is not None else None
    return dataclasses.replace(plan, assignment=assignment, info=info)
