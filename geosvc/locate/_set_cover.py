"""Set cover: fewest (or cheapest) sites reaching a coverage target (greedy + search, or HiGHS)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from geosvc._errors import InfeasibleError, InputError
from geosvc.locate import _audit, _highs, _reduce
from geosvc.locate._cover_ls import improve_cover
from geosvc.locate._greedy import (
    greedy_cover,
)
from geosvc.locate._inputs import (
    CoverageProblem,
    Solver,
    is_integral,
    prepare_coverage,
    site_vector,
    solver_name,
)
from geosvc.locate._mip import lp_bound, mip_info, solve_mip
from geosvc.locate._plan import Found, Plan, PlanHead, build_plan, round_bound

__all__ = ["set_cover", "COVER_SEARCH_TIME_S"]

logger = logging.getLogger("geosvc.locate")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Work budget of the set-cover local search, in relation entries a move is expected to visit
#: (moves x mean candidates per site x mean candidates per demand): a deterministic limit, so
#: the same input gives the same plan on any machine.  At 500 x 5,000 it allows 15 rounds of
#: 2,000 moves (65 -> 50 sites, optimum 49, about 2 s; 3e8 would reach 49 in about 10 s).  It
#: stops earlier at a proven bound.
COVER_SEARCH_WORK = 5e7
#: Safety limit in seconds (the only machine-dependent stop), at most half the time limit.
COVER_SEARCH_TIME_S = 30.0


def set_cover(
    coverage: Any,
    weights: Any,
    *,
    target: float = 1.0,
    costs: Any = None,
    fixed_covered: Any = None,
    solver: Solver = "greedy",
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-4,
) -> Plan:
    """Fewest (or cheapest) sites so that the covered weight reaches a target share.

    Parameters
    ----------
    coverage
        Candidates x demand relation, ``True`` where the candidate covers the demand.
    weights
        Demand weights; demand of weight 0 need not be covered.
    target
        Share of the total weight to cover, in ``(0, 1]``; below 1 the model is a partial cover.
    costs
        Positive cost per candidate (default 1 each: fewest sites).
    fixed_covered
        Boolean mask over demand already covered by existing facilities (counts toward the
        target, costs nothing).
    solver
        ``"greedy"``: lazy cost-effectiveness greedy plus redundant-site removal, bounded by the
        LP relaxation.  ``"exact"``: HiGHS integer programme.
    time_limit_s
        Time limit for each HiGHS solve, in seconds.
    mip_gap
        Relative MIP gap at which HiGHS may stop.

    Returns
    -------
    Plan
        ``objective`` is the total cost of the sites (their number with unit costs).  When some
        demand has no covering candidate and no fixed facility, its indices are in
        ``uncoverable``; the plan then covers ``min(target * W, coverable weight)`` and, if that
        is less than requested, its status is ``"infeasible_partial"`` (the solve status is in
        ``info["solve_status"]``).  ``info`` holds the requested, reached and uncoverable
        weights.
    """
    t0 = time.perf_counter()
    pb = prepare_coverage(coverage, weights, fixed_covered)
    target = float(target)
    if not (0.0 < target <= 1.0):
        raise InputError(f"target must be a share in (0, 1], got {target}")
    cost = (np.ones(pb.n_cand) if costs is None
            else site_vector(costs, pb.n_cand, "costs", positive=True))
    run = _Run(pb=pb, cost=cost, target=target, solver=solver_name(solver), t0=t0)
    if run.need <= run.tol:
        return run.plan(np.zeros(pb.n_cand, dtype=bool), 0.0, None)
    keep = _greedy_start(run)
    cov_g, w_g, _ = _reduce.aggregate_demand(pb.cov, pb.w, pb.active)
    run.info["n_demand_groups"] = int(w_g.size)
    need_new = None if run.full else run.need - run.tol
    cov_m, w_m = _reduced(run, cov_g, w_g)

    def build() -> _highs.MipModel:
        return _highs.set_cover_model(cov_m, w_m, np.ones(w_m.size, dtype=bool), cost, need_new)

    lp_b = -math.inf
    if run.solver == "greedy":
        lp = lp_bound(build, cov_m.nnz, time_limit_s, mip_gap, run.info)
        lp_b = round_bound(lp, run.integral, maximise=False) if lp is not None else -math.inf
        run.info["bound_source"] = "lp" if lp_b >= run.safe_bound else "ratio"
    search = _Search(cov_g, w_g, need_new, min(COVER_SEARCH_TIME_S, 0.5 * time_limit_s))
    if run.solver == "greedy":
        lower = max(lp_b, run.safe_bound)
        return run.plan(search.improve(run, keep, lower), lower, None)
    return _exact(run, build(), keep, search, time_limit_s, mip_gap)


def _reduced(run: _Run, cov_g: sp.csr_array, w_g: FloatArray) -> tuple[sp.csr_array, FloatArray]:
    """The model's relation and group weights: dominated candidates dropped and, when every
    group must be covered, implied groups too (each group then counts 1)."""
    if run.full:
        cov_m, rows = _reduce.reduce_cover_all(cov_g, run.cost, run.pb.n_dem, run.info)
        return cov_m, w_g[rows]
    return _reduce.drop_dominated(cov_g, run.cost, run.pb.n_dem, run.info), w_g


@dataclass
class _Run:
    """One set-cover call: the checked problem, the weight to reach and the plan audit."""

    pb: CoverageProblem
    cost: FloatArray
    target: float
    solver: Solver
    t0: float
    info: dict[str, Any] = field(default_factory=dict)
    #: the ratio bound once known (every site adds at most max gain/cost per unit of cost)
    safe_bound: float = 0.0

    def __post_init__(self) -> None:
        pb = self.pb
        total_w = float(pb.w.sum())
        reachable_w = pb.fixed_weight + pb.active_weight
        requested = self.target * total_w
        self.tol = 1e-9 * max(total_w, 1.0)
        self.goal = min(requested, reachable_w)
        self.partial_infeasible = requested > reachable_w + self.tol
        self.need = self.goal - pb.fixed_weight  # weight the new sites must add
        self.full = self.need >= pb.active_weight - self.tol
        self.integral = is_integral(self.cost)
        self.info.update(pb.base_info(), target=self.target, requested_weight=requested,
                         goal_weight=self.goal, coverable_weight=reachable_w,
                         formulation="cover_all" if self.full else "partial")
        if self.partial_infeasible:
            logger.warning(
                "set cover target %.4g of weight %.6g is unreachable: %d demand (weight %.6g) "
                "has no covering candidate; covering the reachable %.6g instead",
                self.target, total_w, pb.uncoverable.size, self.info["uncoverable_weight"],
                reachable_w)

    def plan(self, chosen: BoolArray, bound: float, solver_status: str | None) -> Plan:
        """The audited plan of ``chosen`` (sites in greedy order); a plan that misses its
        goal is never believed (its recomputed cost is infinite)."""
        pb, cost, info = self.pb, self.cost, self.info
        order, gains, _ = greedy_cover(
            pb.indptr, pb.indices, pb.w, pb.fixed, cost, chosen, int(chosen.sum()), np.inf, 0)
        info["covered_weight"] = pb.fixed_weight + float(gains.sum())
        info["marginal_ratio"] = gains / cost[order]
        reached = _audit.covered_weight(pb.cov, pb.w, pb.fixed, order)
        recomputed = float(np.sum(cost[order])) if reached >= self.goal - self.tol else math.inf
        return build_plan(
            PlanHead(model="set_cover", solver=self.solver, t0=self.t0, maximise=False,
                     uncoverable=pb.uncoverable, info=info),
            Found(
                sites=order,
                marginal=gains,
                objective=float(cost[order].sum()),
                bound=bound,
                solver_status=solver_status,
                recomputed=recomputed,
                safe_bound=self.safe_bound,
                status_override="infeasible_partial" if self.partial_infeasible else None,
            ),
        )


def _greedy_start(run: _Run) -> BoolArray:
    """Greedy cover with redundant sites removed; sets the ratio bound on ``run``."""
    pb, cost = run.pb, run.cost
    order, gains, _ = greedy_cover(pb.indptr, pb.indices, pb.w, pb.fixed, cost,
                                   np.ones(pb.n_cand, dtype=bool), pb.n_cand,
                                   run.need - run.tol, 0)
    if gains.sum() < run.need - run.tol:  # pragma: no cover - need <= reachable weight
        raise InfeasibleError(
            "set cover greedy could not reach the coverable weight (internal error)"
        )
    keep = _prune_cover(pb.cov, pb.w, pb.fixed, order, cost, run.need - run.tol)
    run.info["greedy_objective"] = float(cost[keep].sum())
    # every site adds at most max_j(gain_j / cost_j) weight per unit of cost
    gain0 = np.bincount(
        np.repeat(np.arange(pb.n_cand), np.diff(pb.indptr)),
        weights=np.where(pb.active, pb.w, 0.0)[pb.indices],
        minlength=pb.n_cand,
    )
    run.safe_bound = round_bound(run.need / float(np.max(gain0 / cost)), run.integral,
                                 maximise=False)
    return keep


def _exact(run: _Run, model: _highs.MipModel, greedy: BoolArray, search: _Search,
           time_limit_s: float, mip_gap: float) -> Plan:
    """HiGHS on the reduced model; the greedy plan improved by the local search is the
    fallback, searched for only when HiGHS does not prove its plan optimal."""
    # No MIP start: HiGHS 1.16 mis-maps set-cover starts through presolve (it fixes sites
    # open into an objective offset) and reports a false optimum -- notebook 02: "optimal 51"
    # for a 59-site optimum, 200 x 2,000: "53" for 54.  solve_mip would catch it and solve
    # again; the local-search plan stays the fallback below instead.
    pb, cost = run.pb, run.cost
    res = solve_mip(model, time_limit_s=time_limit_s, mip_gap=mip_gap, start=None, info=run.info,
                    mip_settings="no_presolve")
    run.info.update(mip_info(res))
    if res.status == "infeasible":  # pragma: no cover - the goal is reachable by construction
        raise InfeasibleError("set cover model is infeasible (internal error)")
    bound = max(round_bound(res.bound, run.integral, maximise=False)
                if math.isfinite(res.bound) else 0.0, run.safe_bound)
    chosen = None if res.x is None else res.x[:pb.n_cand] > 0.5
    if chosen is not None and (
        _audit.covered_weight(pb.cov, pb.w, pb.fixed, np.flatnonzero(chosen))
        < run.goal - run.tol
    ):
        chosen = None
    if chosen is None or res.status != "optimal":
        keep = search.improve(run, greedy, bound)
        if chosen is None or float(cost[chosen].sum()) > float(cost[keep].sum()):
            chosen = keep
    else:
        run.info["local_search"] = "not needed: HiGHS proved its plan optimal"
    return run.plan(chosen, bound, res.status)


@dataclass(frozen=True)
class _Search:
    """The local search's relation (every candidate and aggregated group, not the reduced
    model: a group is implied only among the non-dominated candidates, and the greedy's plan
    may use dominated ones) and its limits."""

    cov_g: sp.csr_array
    w_g: FloatArray
    need: float | None
    max_time_s: float

    def improve(self, run: _Run, start: BoolArray, lower: float) -> BoolArray:
        """``start`` improved by :func:`_improve_cover`, stopping at ``lower``."""
        return _improve_cover(self.cov_g, self.w_g, run.cost, self.need, start, lower,
                              self.max_time_s, run.info)


def _improve_cover(
    cov_g: sp.csr_array,
    w_g: FloatArray,
    cost: FloatArray,
    need: float | None,
    start: BoolArray,
    lower: float,
    max_time_s: float,
    info: dict[str, Any],
) -> BoolArray:
    """Local search from a feasible cover on the aggregated demand (:mod:`._cover_ls`).

    ``need is None`` means every demand group must be covered (each group then counts 1,
    whatever its weight).  Stops at ``lower`` (a proven bound), after its work budget
    (:data:`COVER_SEARCH_WORK`) or, as a safety net only, after ``max_time_s``.
    """
    n_g = int(w_g.size)
    if n_g == 0 or not start.any():
        return start
    cg = sp.csr_array(cov_g)
    cg.sort_indices()
    ls_w = np.ones(n_g) if need is None else w_g
    ls_need = float(n_g) if need is None else float(need)
    t0 = time.perf_counter()
    chunk = 2000
    per_move = max(1.0, cg.nnz / max(1, cg.shape[0])) * max(1.0, cg.nnz / n_g)
    rounds = int(np.clip(COVER_SEARCH_WORK / (chunk * per_move), 1, 50))
    sel, value, moves = improve_cover(
        cg.indptr.astype(np.int64),
        cg.indices.astype(np.int64),
        ls_w,
        np.zeros(n_g, dtype=bool),
        cost,
        ls_need,
        start,
        max_time_s=max_time_s,
        stop_at=lower,
        chunk=chunk,
        max_rounds=rounds,
    )
    info["local_search"] = {
        "start_cost": float(cost[start].sum()),
        "cost": value,
        "moves": moves,
        "rounds_budget": rounds,
        "time_s": time.perf_counter() - t0,
    }
    return sel if value < float(cost[start].sum()) else start


def _prune_cover(
    cov: sp.csr_array,
    w: FloatArray,
    fixed: BoolArray,
    order: IntArray,
    cost: FloatArray,
    need: float,
) -> BoolArray:
    """Drop redundant sites (most expensive first) while the new covered weight stays >= need."""
    n_cand, n_dem = cov.shape
    keep = np.zeros(n_cand, dtype=bool)
    keep[order] = True
    if order.size <= 1:
        return keep
    sub = cov[order]
    count = np.bincount(sub.indices, minlength=n_dem)
    wn = np.where(fixed, 0.0, w)
    have = float(wn[count > 0].sum())
    for pos in np.argsort(-cost[order], kind="stable"):
        j = order[pos]
        dem = cov.indices[cov.indptr[j] : cov.indptr[j + 1]]
        lost = float(wn[dem[count[dem] == 1]].sum())
        if have - lost >= need:
            keep[j] = False
            count[dem] -= 1
            have -= lost
    return keep
