"""Capacitated coverage: ``k`` sites, each serving at most its capacity of what it covers."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from geosvc.locate import _audit, _highs, _reduce
from geosvc.locate._greedy import (
    greedy_capacitated,
    greedy_cover,
)
from geosvc.locate._inputs import (
    CoverageProblem,
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
    cap = site_vector(capacities, pb.n_cand, "capacities", positive=False)
    run = _Run(pb=pb, cap=np.minimum(cap, pb.active_weight),  # inf -> the most any site serves
               k=check_count(k, pb.n_cand, "k"), solver=solver_name(solver), t0=t0,
               time_limit_s=time_limit_s)
    k, info, fixed_w = run.k, run.info, pb.fixed_weight
    order, g_gains, fs, fd, fa = greedy_capacitated(
        pb.indptr, run.sorted_indices, run.residual, run.cap, np.ones(pb.n_cand, dtype=bool), k)
    info["greedy_assignment_served"] = fixed_w + float(g_gains.sum())
    info["greedy_marginal"] = g_gains
    greedy_mask = np.zeros(pb.n_cand, dtype=bool)
    greedy_mask[order] = True
    if k == 0 or not pb.active.any():
        return run.plan(greedy_mask, fixed_w, None)
    cov_g, w_g, group = _reduce.aggregate_demand(pb.cov, pb.w, pb.active)
    info["n_demand_groups"] = int(w_g.size)
    if run.solver == "greedy":
        return _greedy_plan(run, greedy_mask, cov_g, w_g, mip_gap)
    return _exact_plan(run, _Greedy(order, greedy_mask, fs, fd, fa), cov_g, w_g, group, mip_gap)


@dataclass(frozen=True)
class _Greedy:
    """The greedy's sites (in order and as a mask) and its assignment flows."""

    order: IntArray
    mask: BoolArray
    flow_site: IntArray
    flow_demand: IntArray
    flow_amount: FloatArray


def _greedy_plan(run: _Run, greedy_mask: BoolArray, cov_g: sp.csr_array, w_g: FloatArray,
                 mip_gap: float) -> Plan:
    """The greedy plan with the capacity bound, or the LP bound when it is lower."""
    info, simple = run.info, run.simple
    if float(info["greedy_assignment_served"]) >= simple - 1e-9 * max(1.0, simple):
        info["bound_source"] = "capacity"  # already reached: no LP needed
        return run.plan(greedy_mask, round_bound(simple, run.integral, maximise=True), None)
    lp = lp_bound(lambda: _highs.capacitated_model(
        cov_g, w_g, np.ones(w_g.size, dtype=bool), run.cap, run.k, run.pb.fixed_weight),
        cov_g.nnz, min(run.time_limit_s, CAPACITATED_LP_TIME_S), mip_gap, info)
    info["bound_source"] = "lp" if lp is not None and lp < simple else "capacity"
    bound = min(simple, lp if lp is not None else math.inf)
    return run.plan(greedy_mask, round_bound(bound, run.integral, maximise=True), None)


def _exact_plan(run: _Run, greedy: _Greedy, cov_g: sp.csr_array, w_g: FloatArray,
                group: IntArray, mip_gap: float) -> Plan:
    """HiGHS on the assignment model, started from the greedy sites and flows."""
    pb, info = run.pb, run.info
    model = _highs.capacitated_model(cov_g, w_g, np.ones(w_g.size, dtype=bool), run.cap, run.k,
                                     pb.fixed_weight)
    start = np.zeros(model.num_col)
    start[greedy.order] = 1.0
    keys = (np.asarray(model.meta["pair_site"]) * w_g.size
            + np.asarray(model.meta["pair_demand"]))  # sorted: CSR order
    np.add.at(start, pb.n_cand + np.searchsorted(
        keys, greedy.flow_site * w_g.size + group[greedy.flow_demand]), greedy.flow_amount)
    res = solve_mip(model, time_limit_s=run.time_limit_s, mip_gap=mip_gap, start=start,
                    info=info)
    info.update(mip_info(res))
    chosen = greedy.mask if res.x is None else res.x[:pb.n_cand] > 0.5
    # HiGHS's dual bound can be loose when it stops early; the capacity bound always holds
    bound = min(res.bound, run.simple) if math.isfinite(res.bound) else run.simple
    return run.plan(chosen, round_bound(bound, run.integral, maximise=True), res.status)


@dataclass
class _Run:
    """One capacitated call: the checked problem, capacities, the capacity bound and the
    plan audit (the best fractional assignment of the chosen sites, checked flow by flow)."""

    pb: CoverageProblem
    cap: FloatArray
    k: int
    solver: Solver
    t0: float
    time_limit_s: float
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pb = self.pb
        self.integral = is_integral(pb.w[pb.active]) and is_integral(self.cap)
        self.info.update(pb.base_info(), k=self.k,
                         coverable_weight=pb.fixed_weight + pb.active_weight,
                         assignment="fractional")
        # serve the least flexible demand first: each row sorted by the demand's number of
        # covering sites
        degree = np.bincount(pb.indices, minlength=pb.n_dem)
        row_ids = np.repeat(np.arange(pb.n_cand), np.diff(pb.indptr))
        self.sorted_indices = pb.indices[np.lexsort((pb.indices, degree[pb.indices], row_ids))]
        self.residual = np.where(pb.active, pb.w, 0.0)
        self.simple = self._capacity_bound()

    def _capacity_bound(self) -> float:
        """Every site serves at most its capacity, every demand at most its weight, and k
        sites cover no more than the uncapacitated greedy's online bound."""
        pb, k = self.pb, self.k
        cover_bound = 0.0
        if k > 0:
            cover_bound = greedy_cover(pb.indptr, pb.indices, self.residual, pb.fixed,
                                       np.ones(pb.n_cand), np.ones(pb.n_cand, dtype=bool),
                                       k, np.inf, k)[2]
        fixed_w = pb.fixed_weight
        return min(fixed_w + pb.active_weight, fixed_w + float(np.sort(self.cap)[::-1][:k].sum()),
                   fixed_w + float(cover_bound))

    def plan(self, chosen: BoolArray, bound: float, solver_status: str | None) -> Plan:
        """The audited plan of ``chosen``: served weight from the transport LP, flows checked."""
        pb, info = self.pb, self.info
        seq = greedy_capacitated(pb.indptr, self.sorted_indices, self.residual, self.cap,
                                 chosen, int(chosen.sum()))[0]
        served, ps, pd, flow = _highs.transport_served(
            pb.cov, pb.w, pb.active, self.cap, seq, time_limit_s=self.time_limit_s)
        pos = flow > 1e-12
        ps, pd, flow = ps[pos], pd[pos], flow[pos]
        info["flows"] = {"site": ps, "demand": pd, "amount": flow}
        served_check, problem = _audit.flow_served(pb.cov, self.residual, self.cap, seq, ps, pd,
                                                   flow)
        if problem:
            info["flow_check"] = f"failed: {problem}"
        return build_plan(
            PlanHead(model="capacitated_coverage", solver=self.solver, t0=self.t0,
                     maximise=True, uncoverable=pb.uncoverable, info=info),
            Found(
                sites=seq,
                marginal=np.diff(np.concatenate([[0.0], served])),
                objective=pb.fixed_weight + (float(served[-1]) if served.size else 0.0),
                bound=bound,
                solver_status=solver_status,
                recomputed=pb.fixed_weight + served_check if not problem else math.nan,
                safe_bound=round_bound(self.simple, self.integral, maximise=True),
                assignment=_largest_share(pb.n_dem, ps, pd, flow),
            ),
        )


def _largest_share(n_dem: int, ps: IntArray, pd: IntArray, flow: FloatArray) -> IntArray:
    """Per demand, the site serving its largest share (-1 if none)."""
    assignment = np.full(n_dem, -1, dtype=np.int64)
    if flow.size:
        top = np.lexsort((-flow, pd))
        first = np.ones(top.size, dtype=bool)
        first[1:] = pd[top][1:] != pd[top][:-1]
        assignment[pd[top][first]] = ps[top][first]
    return assignment
