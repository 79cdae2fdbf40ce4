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
from geosvc.locate._greedy import greedy_pmedian
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
from geosvc.locate._plan import Found, Plan, PlanHead, build_plan, relative_gap, round_bound
from geosvc.locate._pmedian_model import pmedian_model, pmedian_start
from geosvc.locate._pmedian_search import lagrangian_heuristic, next_cost_above
from geosvc.locate._pmedian_swap import nearest_two, swap_pmedian

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
    weights, p
        Demand weights (weight 0 need not be served); new sites besides the ``fixed`` ones.
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
        ``"greedy"``: lazy greedy add then best-improvement vertex substitution, and the
        Lagrangian heuristic (the site sets of the Lagrangian bound's subgradient steps, the
        best three polished by vertex substitution); bounded by the Lagrangian bound and, up to
        :data:`LP_BOUND_MAX_PAIRS` allowed pairs, the LP relaxation of the cumulative
        formulation (restricted by Lagrangian site fixing, which keeps it valid).  ``"exact"``:
        the same heuristics, Lagrangian site fixing against the best plan, then level
        generation on the cumulative (radius) formulation with HiGHS: each demand's cost
        ladder is cut just above the cost the best plan and the Lagrangian multipliers give
        it, the truncated model (a relaxation) is solved, and the ladders of the demand its
        plan serves beyond the cut are extended until a round's plan is valued exactly
        (García, Labbé and Marín 2011).
    time_limit_s
        Time limit in seconds: for the vertex substitution (from the call), and for the level
        generation as a whole (each HiGHS solve gets what is left, at least 1 s).
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
    red, heur_mask, heur_obj = _lagrangian_reduction(run, heur_mask, heur_obj, greedy_ok,
                                                     time_limit_s)
    if run.solver == "exact":
        return _exact(run, red, heur_mask if greedy_ok else None, heur_obj, time_limit_s,
                      mip_gap)
    model = None
    if red.model_pairs <= LP_BOUND_MAX_PAIRS:
        model = pmedian_model(run.cmat, run.w, run.active, run.fixed_mask | red.forced,
                                     run.n_open, red.closed)
        run.info["model_rows"] = model.num_row
        run.info["model_cols"] = model.num_col
    return _greedy_plan(run, model, red, heur_mask, greedy_ok, time_limit_s, mip_gap)


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
    #: Per demand, the cost up to which the Lagrangian multipliers price its sites (lam / w).
    lag_reach: FloatArray | None = None

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

    def nearest(self, mask: BoolArray) -> FloatArray:
        """Cost from each demand to its nearest site in ``mask`` (``inf`` when none)."""
        return nearest_two(self.cmat, np.flatnonzero(mask))[0]

    def cost_of(self, sites: IntArray) -> float:
        """Weighted cost of serving the active demand from ``sites``."""
        return self.cost_served(nearest_two(self.cmat, sites)[0])

    def cost_served(self, served: FloatArray) -> float:
        """Weighted cost of the active demand at the service costs ``served``."""
        return float(np.sum(self.w[self.active] * served[self.active]))

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


def _lagrangian_reduction(run: _Run, heur_mask: BoolArray, heur_obj: float, greedy_ok: bool,
                          time_limit_s: float) -> tuple[_Reduction, BoolArray, float]:
    """Lagrangian bound and heuristic, then the sites no solution better than the best plan uses.

    Returns the reduction and the best plan known (the heuristic's or the Lagrangian one's).
    """
    n_cand = run.cmat.shape[0]
    red = _Reduction(closed=np.zeros(n_cand, dtype=bool), forced=np.zeros(n_cand, dtype=bool),
                     fix_bound=math.inf, threshold=math.inf, model_pairs=0)
    if greedy_ok:
        w, active = run.w, run.active
        n_iter = PMEDIAN_LAGRANGIAN_ITER * (2 if run.solver == "exact" else 1)
        lam0 = np.zeros(run.cmat.shape[1])
        lam0[active] = w[active] * nearest_two(run.cmat, np.flatnonzero(heur_mask))[0][active]
        lag = lagrangian_pmedian(
            run.cmat, w, active, run.fixed_mask, run.n_open, heur_obj, start=lam0,
            stop_at=_threshold(run, heur_obj), n_iter=n_iter, keep_sets=n_iter,
        )
        run.lag_bound = lag.bound
        run.lag_reach = np.where(active, lag.lam / np.where(w > 0, w, 1.0), 0.0)
        heur_mask, heur_obj = _lagrangian_plan(run, lag.open_sets, heur_mask, heur_obj,
                                               time_limit_s)
        red.threshold = _threshold(run, heur_obj)
        red.closed, red.forced, red.fix_bound = lagrangian_fixing(
            lag, active, run.fixed_mask, run.n_open, red.threshold)
        run.info.update(lagrangian_bound=lag.bound, lagrangian_iterations=lag.iterations,
                        closed_by_lagrangian=int(red.closed.sum()),
                        forced_by_lagrangian=int(red.forced.sum()))
    row_ids = np.repeat(np.arange(n_cand), np.diff(run.indptr))
    red.model_pairs = int((run.active[run.indices] & ~red.closed[row_ids]).sum())
    return red, heur_mask, heur_obj


def _threshold(run: _Run, cost: float) -> float:
    """Costs a solution must beat to matter against a plan of ``cost`` (integral data: by 1)."""
    slack = 1.0 - 1e-6 if run.integral else 0.0
    return cost - slack + 1e-9 * max(1.0, abs(cost))


def _lagrangian_plan(run: _Run, open_sets: list[BoolArray], heur_mask: BoolArray,
                     heur_obj: float, time_limit_s: float) -> tuple[BoolArray, float]:
    """The better of the heuristic plan and the polished Lagrangian site sets."""
    mask, cost = lagrangian_heuristic(run.cmat, run.w, run.active, run.fixed_mask, open_sets,
                                      deadline=run.t0 + time_limit_s)
    run.info["lagrangian_heuristic_objective"] = cost
    if mask is not None and cost < heur_obj - 1e-9 * max(1.0, abs(heur_obj)):
        run.info["heuristic_objective"] = cost
        run.info["heuristic_source"] = "lagrangian"
        return mask, cost
    run.info["heuristic_source"] = "greedy+swap"
    return heur_mask, heur_obj


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


def _exact(run: _Run, red: _Reduction, start_mask: BoolArray | None, start_cost: float,
           time_limit_s: float, mip_gap: float) -> Plan:
    """Level generation: HiGHS on truncated cumulative models until a plan is valued exactly.

    Each round solves the cumulative model restricted by the Lagrangian fixing, with every
    demand's ladder cut just above its cost in the best plan known (no cut without one).  A
    truncated model is a relaxation, so its bound is a lower bound of the p-median.  When the
    round's plan serves every demand below its cut, the model values it exactly and its
    optimum is the p-median's; otherwise the demands served beyond their cut get their ladder
    extended and the next round starts (García, Labbé and Marín 2011).
    """
    t_start = time.perf_counter()
    best = _Best(start_mask, start_cost)
    cut = None if start_mask is None else _first_cut(run, start_mask)
    lower, status, rounds = -math.inf, "time_limit", 0
    while True:
        rounds += 1
        left = max(time_limit_s - (time.perf_counter() - t_start), 1.0)
        res, model = _solve_round(run, red, cut, best.mask, left, mip_gap)
        if res.status == "infeasible":
            if not red.reduced:
                raise InfeasibleError(run.infeasible_msg())
            lower, status = max(lower, red.fix_bound), "optimal"  # every plan breaks a fixing
            break
        if math.isfinite(res.bound):
            lower = max(lower, min(res.bound, red.fix_bound))
        if res.x is None:
            status = res.status
            break
        served = best.offer_round(run, res.x[:run.cmat.shape[0]] > 0.5, t_start + time_limit_s)
        logger.debug("level round %d: %d rows, HiGHS %.1f s (%s, bound %.6g), best %.6g, %.1f s",
                     rounds, model.num_row, res.runtime_s, res.status, lower, best.cost,
                     time.perf_counter() - t_start)
        under = run.active & (served > cut) if cut is not None else np.zeros(0, dtype=bool)
        if not under.any():
            status = res.status  # the truncated model valued its plan exactly
            break
        if relative_gap(best.cost, lower) <= mip_gap:
            status = "optimal"
            break
        if time.perf_counter() - t_start >= time_limit_s:
            break
        assert cut is not None
        cut = np.where(under, next_cost_above(run.cmat, served), cut)
    run.info.update(mip_info(res), level_rounds=rounds, model_rows=model.num_row,
                    model_cols=model.num_col,
                    truncated_demand=int(model.meta["n_truncated"]))  # type: ignore[call-overload]
    if best.mask is None:
        raise InfeasibleError(
            f"HiGHS found no feasible plan within {time_limit_s} s and the heuristic failed")
    bound = round_bound(max(run.lag_bound, lower), run.integral, maximise=False)
    return run.plan(best.mask, bound, status)


def _first_cut(run: _Run, start_mask: BoolArray) -> FloatArray:
    """Ladder cuts above the best plan's service costs and the costs the multipliers price.

    At (near-)optimal multipliers ``lam``, the LP serves demand ``i`` only from sites with
    ``w_i c_ij <= lam_i``; keeping those levels gives a first model close to the full LP.
    """
    reach = run.nearest(start_mask)
    if run.lag_reach is not None:
        reach = np.maximum(reach, run.lag_reach)
    return next_cost_above(run.cmat, reach)


def _solve_round(run: _Run, red: _Reduction, cut: FloatArray | None, best_mask: BoolArray | None,
                 time_limit_s: float, mip_gap: float) -> tuple[_highs.MipResult, _highs.MipModel]:
    """One truncated cumulative model, solved from the best plan when it respects the fixing."""
    model = pmedian_model(run.cmat, run.w, run.active, run.fixed_mask | red.forced,
                                 run.n_open, red.closed, cut)
    start = None
    if (best_mask is not None and not (best_mask & red.closed).any()
            and not (red.forced & ~best_mask).any()):
        start = pmedian_start(model, best_mask)
    res = solve_mip(
        model,
        time_limit_s=time_limit_s,
        mip_gap=mip_gap,
        start=start,
        info=run.info,
        heuristic_effort=PMEDIAN_HEURISTIC_EFFORT if start is not None else None,
        mip_settings="ipm_no_presolve",
    )
    return res, model


@dataclass
class _Best:
    """The cheapest plan seen so far (its open mask and true cost)."""

    mask: BoolArray | None
    cost: float

    def offer(self, mask: BoolArray, cost: float) -> None:
        if cost < self.cost or self.mask is None and math.isfinite(cost):
            self.mask, self.cost = mask, cost

    def offer_round(self, run: _Run, mask: BoolArray, deadline: float) -> FloatArray:
        """Take a round's plan and its vertex-substitution polish; its service cost per demand."""
        served = run.nearest(mask)
        cost = run.cost_served(served)  # one nearest-site pass for both
        self.offer(mask, cost)
        if math.isfinite(cost):
            sites, _, _ = swap_pmedian(run.cmat, run.w, np.flatnonzero(mask), run.fixed_mask,
                                       deadline=deadline)
            polished = np.zeros_like(mask)
            polished[sites] = True
            self.offer(polished, run.cost_of(sites))
        return served


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
