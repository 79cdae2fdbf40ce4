"""Maximal covering: ``k`` sites that cover the most demand weight (greedy + swaps, or HiGHS)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from geosvc.locate import _audit, _highs, _maxcov_exact, _reduce
from geosvc.locate._cover_bound import lagrangian_max_coverage
from geosvc.locate._greedy import (
    greedy_cover,
)
from geosvc.locate._inputs import (
    CoverageProblem,
    Solver,
    check_count,
    is_integral,
    prepare_coverage,
    solver_name,
)
from geosvc.locate._maxcov_exact import RESTRICTED_TIME_SHARE
from geosvc.locate._maxcov_ls import swap_max_coverage
from geosvc.locate._mip import LP_BOUND_MAX_NNZ, lp_bound, mip_info, solve_mip
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
        submodular bound.  ``"exact"``: proven by a Lagrangian bound when it already meets
        the plan; otherwise, when the LP relaxation fits, LP duals, a MIP on the LP's
        candidates, Lagrangian fixing and a HiGHS integer programme on the kept candidates
        (:mod:`._maxcov_exact`); above that size a HiGHS integer programme on the whole
        reduced relation.
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
    run = _Run(pb=pb, k=check_count(k, pb.n_cand, "k"), solver=solver_name(solver), t0=t0,
               integral=is_integral(pb.w[pb.active]))
    k = run.k
    order, gains, online = greedy_cover(pb.indptr, pb.indices, pb.w, pb.fixed,
                                        np.ones(pb.n_cand), np.ones(pb.n_cand, dtype=bool),
                                        k, np.inf, k)
    run.info.update(pb.base_info(), k=k, coverable_weight=run.reachable_w)
    run.safe_bound = min(run.reachable_w, pb.fixed_weight + float(online))  # greedy's bounds
    if k == 0 or not pb.active.any():
        return run.plan(order, gains, pb.fixed_weight + float(gains.sum()), None)
    cov_g, w_g, group = _reduce.aggregate_demand(pb.cov, pb.w, pb.active)
    run.info["n_demand_groups"] = int(w_g.size)
    cov_m = _reduce.drop_dominated(cov_g, np.ones(pb.n_cand), pb.n_dem, run.info)
    # swaps and kicked restarts from the greedy plan, on the reduced relation
    run.info["greedy_add_objective"] = pb.fixed_weight + float(gains.sum())
    ls_sites, run.info["local_search"] = swap_max_coverage(cov_m.indptr, cov_m.indices, w_g,
                                                           order)
    order, gains = run.better(order, gains, ls_sites)
    if run.solver == "greedy":
        bound = _greedy_bound(run, cov_m, w_g, float(online), float(gains.sum()),
                              time_limit_s, mip_gap)
        return run.plan(order, gains, bound, None)
    return _exact(run, cov_m, w_g, group, order, gains, time_limit_s, mip_gap)


@dataclass
class _Run:
    """One max-coverage call: its checked problem, settings and what every plan reports."""

    pb: CoverageProblem
    k: int
    solver: Solver
    t0: float
    integral: bool
    info: dict[str, Any] = field(default_factory=dict)
    safe_bound: float = math.inf

    @property
    def reachable_w(self) -> float:
        """Weight covered by existing facilities plus what new sites can reach."""
        return self.pb.fixed_weight + self.pb.active_weight

    def in_greedy_order(self, chosen: IntArray | BoolArray) -> tuple[IntArray, FloatArray]:
        """The chosen sites in greedy order with their marginal gains."""
        mask = np.zeros(self.pb.n_cand, dtype=bool)
        mask[chosen] = True
        order, gains, _ = greedy_cover(self.pb.indptr, self.pb.indices, self.pb.w, self.pb.fixed,
                                       np.ones(self.pb.n_cand), mask, int(mask.sum()), np.inf, 0)
        return order, gains

    def better(self, order: IntArray, gains: FloatArray, chosen: IntArray | BoolArray,
               *, ties: bool = False) -> tuple[IntArray, FloatArray]:
        """``chosen`` in greedy order if it covers more (``ties``: no less) than ``order``."""
        c_order, c_gains = self.in_greedy_order(chosen)
        now, other = float(gains.sum()), float(c_gains.sum())
        return (c_order, c_gains) if other > now or (ties and other >= now) else (order, gains)

    def plan(self, order: IntArray, gains: FloatArray, bound: float,
             solver_status: str | None) -> Plan:
        """The audited plan of ``order``."""
        pb = self.pb
        return build_plan(
            PlanHead(model="max_coverage", solver=self.solver, t0=self.t0, maximise=True,
                     uncoverable=pb.uncoverable, info=self.info),
            Found(
                sites=order,
                marginal=gains,
                objective=pb.fixed_weight + float(gains.sum()),
                bound=bound,
                solver_status=solver_status,
                recomputed=_audit.covered_weight(pb.cov, pb.w, pb.fixed, order),
                safe_bound=round_bound(self.safe_bound, self.integral, maximise=True),
            ),
        )


def _greedy_bound(run: _Run, cov_m: sp.csr_array, w_g: FloatArray, online: float,
                  new_weight: float, time_limit_s: float, mip_gap: float) -> float:
    """The best of the greedy's bounds and the LP (or, too large for it, Lagrangian) bound."""
    fixed_w, info = run.pb.fixed_weight, run.info
    bounds = {"online": fixed_w + online, "coverable": run.reachable_w}
    lp = lp_bound(lambda: _highs.max_coverage_model(
        cov_m, w_g, np.ones(w_g.size, dtype=bool), run.k, fixed_w), cov_m.nnz, time_limit_s,
        mip_gap, info)
    if lp is not None:
        bounds["lp"] = lp
    else:  # too large for the LP: the Lagrangian bound, one pass over the pairs a step
        lag, lag_info = lagrangian_max_coverage(
            cov_m.indptr, cov_m.indices, w_g, run.k, new_weight,
            max_time_s=min(MAXCOV_LAGRANGIAN_TIME_S, 0.25 * time_limit_s))
        bounds["lagrangian"] = fixed_w + lag
        info["lagrangian"] = lag_info
    source = min(bounds, key=lambda s: bounds[s])
    info["bound_source"] = source
    info["bounds"] = bounds
    return round_bound(bounds[source], run.integral, maximise=True)


def _exact(run: _Run, cov_m: sp.csr_array, w_g: FloatArray, group: IntArray, order: IntArray,
           gains: FloatArray, time_limit_s: float, mip_gap: float) -> Plan:
    """The Lagrangian bound, then (if it does not already prove the plan) HiGHS."""
    pb, info = run.pb, run.info
    fixed_w = pb.fixed_weight
    greedy_obj = fixed_w + float(gains.sum())
    info["greedy_objective"] = greedy_obj
    # The Lagrangian bound first: cheap (one pass over the pairs a step) and, at city scale,
    # far tighter than what HiGHS proves in its time limit; when it already proves the greedy
    # plan within mip_gap there is nothing left for the MIP to do.
    lag, lag_info = lagrangian_max_coverage(
        cov_m.indptr, cov_m.indices, w_g, run.k, greedy_obj - fixed_w,
        max_time_s=min(MAXCOV_LAGRANGIAN_TIME_S, 0.25 * time_limit_s))
    info["lagrangian"] = {**lag_info, "bound": fixed_w + lag}
    run.safe_bound = min(run.safe_bound, fixed_w + lag)
    proven = round_bound(run.safe_bound, run.integral, maximise=True)
    if relative_gap(greedy_obj, proven) <= mip_gap:
        info["mip"] = (f"not needed: the Lagrangian bound {proven:.6g} proves the greedy plan "
                       f"within mip_gap {mip_gap:g}")
        return run.plan(order, gains, proven, "optimal")
    if cov_m.nnz <= LP_BOUND_MAX_NNZ:
        return _exact_fixed(run, cov_m, w_g, order, gains, time_limit_s, mip_gap)
    model = _highs.max_coverage_model(cov_m, w_g, np.ones(w_g.size, dtype=bool), run.k, fixed_w)
    start = np.zeros(model.num_col)
    start[order] = 1.0
    start[pb.n_cand:] = _covered_groups(pb.cov, order, group, w_g.size)
    res = solve_mip(model, time_limit_s=time_limit_s, mip_gap=mip_gap, start=start, info=info,
                    mip_settings="ipm_no_presolve")
    info.update(mip_info(res))
    if res.x is not None:
        order, gains = run.better(order, gains, res.x[:pb.n_cand] > 0.5, ties=True)
    bound = res.bound if math.isfinite(res.bound) else run.reachable_w
    bound = min(bound, run.safe_bound)  # the greedy's bounds stay valid
    return run.plan(order, gains, round_bound(bound, run.integral, maximise=True), res.status)


def _exact_fixed(run: _Run, cov_m: sp.csr_array, w_g: FloatArray, order: IntArray,
                 gains: FloatArray, time_limit_s: float, mip_gap: float) -> Plan:
    """LP multipliers, a MIP on the LP's candidates, Lagrangian fixing, then the MIP on the
    kept candidates (:mod:`._maxcov_exact`)."""
    info, fixed_w, k = run.info, run.pb.fixed_weight, run.k
    lp = _maxcov_exact.lp_duals(cov_m, w_g, k, time_limit_s)
    if lp is not None:
        run.safe_bound = min(run.safe_bound, fixed_w + lp.value)
        info["lp_bound"] = fixed_w + lp.value
        info["lp_time_s"] = lp.time_s
        support = lp.x > 1e-6
        support[order] = True
        res, sizes = _maxcov_exact.solve_restricted(
            cov_m, w_g, k, support, order, time_limit_s=RESTRICTED_TIME_SHARE * time_limit_s,
            mip_gap=0.0, info={})
        info["lp_support_mip"] = {**sizes, "status": res.status, "objective": res.objective}
        if res.x is not None:
            order, gains = run.better(order, gains, res.x[:run.pb.n_cand] > 0.5)
    lower = float(gains.sum())
    if relative_gap(fixed_w + lower, round_bound(run.safe_bound, run.integral,
                                                 maximise=True)) <= mip_gap:
        info["mip"] = "not needed: the LP bound proves the plan within mip_gap"
        return run.plan(order, gains, round_bound(run.safe_bound, run.integral, maximise=True),
                        "optimal")
    keep = np.zeros(run.pb.n_cand, dtype=bool)
    keep[order] = True
    out = np.zeros(run.pb.n_cand, dtype=bool)
    if lp is not None:
        out, lag = _maxcov_exact.fixed_out(cov_m, w_g, k, lp.u, lower, run.integral, keep)
        info["fixing"] = {"bound": fixed_w + lag, "lower": fixed_w + lower,
                          "candidates_out": int(out.sum())}
    # no HiGHS heuristics: the start is the LP-guided plan, and the time goes into the bound
    res, sizes = _maxcov_exact.solve_restricted(
        cov_m, w_g, k, ~out, order, time_limit_s=time_limit_s, mip_gap=mip_gap, info=info,
        heuristic_effort=0.0)
    info["reduced_mip"] = sizes
    info.update(mip_info(res))
    if res.x is not None:
        order, gains = run.better(order, gains, res.x[:run.pb.n_cand] > 0.5, ties=True)
    # plans using a removed candidate cover at most ``lower`` (the fixing test)
    bound = fixed_w + max(res.bound, lower) if math.isfinite(res.bound) else run.reachable_w
    bound = min(bound, run.safe_bound)
    return run.plan(order, gains, round_bound(bound, run.integral, maximise=True), res.status)
