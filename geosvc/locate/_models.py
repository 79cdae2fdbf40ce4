"""Array entry points of the siting models: max coverage, set cover, p-median, capacitated.

Every function takes plain arrays (a candidate x demand matrix, demand weights, a count) and
returns a :class:`~geosvc.locate.Plan`.  ``solver="greedy"`` runs the lazy greedy (plus a
vertex-substitution local search for the p-median) and proves a bound (LP relaxation through
HiGHS, the online submodular bound or a Lagrangian bound); ``solver="exact"`` solves the
integer programme with HiGHS, warm-started from the greedy plan, and reports HiGHS's own dual
bound.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from geosvc._errors import InfeasibleError, InputError
from geosvc.locate import _audit, _highs, _reduce
from geosvc.locate._bounds import lagrangian_fixing, lagrangian_pmedian
from geosvc.locate._cover_bound import lagrangian_max_coverage
from geosvc.locate._cover_ls import improve_cover
from geosvc.locate._greedy import (
    greedy_capacitated,
    greedy_cover,
    greedy_pmedian,
    nearest_two,
    swap_pmedian,
)
from geosvc.locate._maxcov_ls import swap_max_coverage
from geosvc.locate._plan import Plan, relative_gap

__all__ = ["max_coverage", "set_cover", "p_median", "capacitated_coverage"]

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Solver = Literal["greedy", "exact"]

#: Greedy p-median plans get an LP bound only up to this many allowed pairs (the LP of the
#: cumulative formulation takes minutes at 400,000 pairs); above it the Lagrangian bound alone.
LP_BOUND_MAX_PAIRS = 100_000
#: Subgradient iterations of the Lagrangian p-median bound (greedy; exact uses twice as many).
PMEDIAN_LAGRANGIAN_ITER = 300
#: Greedy plans of the coverage models get an LP-relaxation bound only when the (aggregated) model
#: has at most this many nonzeros; above it the cheaper combinatorial bounds are used alone.
LP_BOUND_MAX_NNZ = 500_000
#: HiGHS primal-heuristic effort for p-median solves started from the greedy + swap plan, which
#: is usually optimal or nearly so: the time is better spent on the bound.
PMEDIAN_HEURISTIC_EFFORT = 0.0
_OPT_TOL = 1e-9
#: Time limit of the LP bound of a greedy capacitated plan (without it: the capacity bound).
CAPACITATED_LP_TIME_S = 5.0
#: Time budget of the Lagrangian bound of greedy max-coverage plans too large for the LP.
MAXCOV_LAGRANGIAN_TIME_S = 5.0
#: Time budget of the set-cover local search (it stops earlier at a proven bound).
COVER_SEARCH_TIME_S = 2.0


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _coverage_csr(coverage: Any) -> sp.csr_array:
    """Candidate x demand boolean relation as a canonical CSR (sorted, no zeros, bool data).

    A canonical sparse input is not copied (its index arrays are shared, never written), so a
    city's relation costs no second copy here.
    """
    if sp.issparse(coverage):
        if coverage.ndim != 2:
            raise InputError("coverage must be 2-D (candidates x demand)")
        mat = sp.csr_array(coverage)
        if not mat.has_canonical_format:
            mat = sp.csr_array(coverage, copy=True)
            mat.sum_duplicates()
        if mat.nnz and not np.all(mat.data):
            mat = sp.csr_array(mat, copy=True)
            mat.eliminate_zeros()
        return _reduce.canonical_relation(mat.indptr, mat.indices, mat.shape)
    arr = np.asarray(coverage)
    if arr.ndim != 2:
        raise InputError(
            f"coverage must be a 2-D candidates x demand array or scipy.sparse matrix, got {arr.ndim}-D"
        )
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"coverage must be boolean or numeric, got dtype {arr.dtype}")
        if np.isnan(arr.astype(np.float64)).any():
            raise InputError(
                "coverage contains NaN; use True/False (or 1/0) per candidate x demand"
            )
    mat = sp.csr_array(arr.astype(bool))
    mat.sort_indices()
    return _reduce.canonical_relation(mat.indptr, mat.indices, mat.shape)


def _cost_csr(costs: Any) -> sp.csr_array:
    """Candidate x demand assignment costs as CSR whose stored entries are the allowed pairs."""
    if sp.issparse(costs):
        coo = sp.coo_array(costs)
        if coo.ndim != 2:
            raise InputError("costs must be 2-D (candidates x demand)")
        rows = np.asarray(coo.row, dtype=np.int64)
        cols = np.asarray(coo.col, dtype=np.int64)
        vals = np.asarray(coo.data, dtype=np.float64)
        shape = (int(coo.shape[0]), int(coo.shape[1]))
        keys = rows * shape[1] + cols
        if np.unique(keys).size != keys.size:
            raise InputError(
                "costs has duplicate stored entries for the same candidate x demand pair; "
                "call .sum_duplicates() or keep one cost per pair"
            )
        bad = ~np.isfinite(vals)
        if bad.any():
            raise InputError(
                f"costs has {int(bad.sum())} non-finite stored entries; leave disallowed pairs unstored"
            )
    else:
        arr = np.asarray(costs, dtype=np.float64)
        if arr.ndim != 2:
            raise InputError(
                f"costs must be a 2-D candidates x demand array or scipy.sparse matrix, got {arr.ndim}-D"
            )
        if np.isnan(arr).any():
            raise InputError(
                "costs contains NaN; use +inf (dense) or leave the entry unstored (sparse) for disallowed pairs"
            )
        shape = (int(arr.shape[0]), int(arr.shape[1]))
        rows, cols = np.nonzero(np.isfinite(arr))
        rows = rows.astype(np.int64)
        cols = cols.astype(np.int64)
        vals = arr[rows, cols]
    if (vals < 0).any():
        raise InputError("costs must be non-negative (travel times or distances)")
    order = np.lexsort((cols, rows))
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sp.csr_array((vals[order], cols[order], indptr), shape=shape)


def _weights(weights: Any, n_dem: int) -> FloatArray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size != n_dem:
        raise InputError(
            f"weights must be 1-D with one entry per demand column ({n_dem}), got shape {w.shape}"
        )
    if not np.isfinite(w).all():
        raise InputError("weights must be finite numbers")
    if (w < 0).any():
        raise InputError(
            f"weights must be non-negative; demand {int(np.argmax(w < 0))} is {w.min()}"
        )
    return w


def _count(value: Any, upper: int, name: str, *, what: str = "candidates") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < 0:
        raise InputError(f"{name} must be >= 0, got {value}")
    if value > upper:
        raise InputError(f"{name}={value} is larger than the number of {what} ({upper})")
    return value


def _demand_mask(mask: Any, n_dem: int, name: str) -> BoolArray:
    if mask is None:
        return np.zeros(n_dem, dtype=bool)
    arr = np.asarray(mask)
    if arr.dtype != np.bool_ or arr.ndim != 1 or arr.size != n_dem:
        raise InputError(
            f"{name} must be a boolean mask with one entry per demand column ({n_dem}), "
            f"got dtype {arr.dtype} and shape {arr.shape}"
        )
    return arr.copy()


def _site_mask(sites: Any, n_cand: int, name: str) -> BoolArray:
    mask = np.zeros(n_cand, dtype=bool)
    if sites is None:
        return mask
    arr = np.asarray(sites)
    if arr.dtype == np.bool_:
        if arr.ndim != 1 or arr.size != n_cand:
            raise InputError(f"{name} as a mask must have one entry per candidate ({n_cand})")
        return arr.copy()
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name} must be candidate indices (integers) or a boolean mask")
    idx = arr.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n_cand):
        raise InputError(f"{name} holds indices outside 0..{n_cand - 1}")
    mask[idx] = True
    return mask


def _site_vector(values: Any, n_cand: int, name: str, *, positive: bool) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size != n_cand:
        raise InputError(
            f"{name} must be 1-D with one entry per candidate ({n_cand}), got shape {arr.shape}"
        )
    if np.isnan(arr).any():
        raise InputError(f"{name} contains NaN")
    if positive and not (arr > 0).all():
        raise InputError(f"{name} must be > 0 for every candidate")
    if not positive and (arr < 0).any():
        raise InputError(f"{name} must be >= 0 for every candidate")
    return arr


def _solver_name(solver: str) -> Solver:
    if solver == "greedy":
        return "greedy"
    if solver in ("exact", "highs"):
        return "exact"
    raise InputError(f"solver must be 'greedy' or 'exact', got {solver!r}")


def _is_integral(values: FloatArray) -> bool:
    return bool(np.all(np.abs(values - np.round(values)) <= 1e-9))


def _round_bound(bound: float, integral: bool, *, maximise: bool) -> float:
    """Tighten a proven bound on an objective that only takes integer values."""
    if not integral or not math.isfinite(bound):
        return bound
    slack = 1e-6 * max(1.0, abs(bound))
    return float(math.floor(bound + slack)) if maximise else float(math.ceil(bound - slack))


def _status(gap: float, solver_status: str | None) -> str:
    if gap <= _OPT_TOL:
        return "optimal"
    if solver_status is None:
        return "heuristic"
    if solver_status == "optimal":
        return "gap_limit"
    if solver_status == "time_limit":
        return "time_limit"
    return "stopped"


def _kernel_arrays(mat: sp.csr_array) -> tuple[IntArray, IntArray]:
    """``indptr`` as int64 and ``indices`` as stored (int32 relations are not widened)."""
    idx = mat.indices if mat.indices.dtype in (np.int32, np.int64) else mat.indices.astype(np.int64)
    return mat.indptr.astype(np.int64), idx


def _plan(
    *,
    model: str,
    solver: str,
    t0: float,
    sites: IntArray,
    marginal: FloatArray,
    objective: float,
    bound: float,
    solver_status: str | None,
    maximise: bool,
    uncoverable: IntArray,
    info: dict[str, Any],
    recomputed: float,
    safe_bound: float,
    assignment: IntArray | None = None,
    status_override: str | None = None,
) -> Plan:
    """Assemble a plan after auditing it.

    ``recomputed`` is the objective evaluated independently from the chosen sites
    (:mod:`geosvc.locate._audit`); the plan reports it, and a disagreement with the kernel's
    ``objective`` is recorded and marks the plan ``"unverified"``.  ``bound`` must lie on the
    right side of the objective (up to round-off); if it does not, it is replaced by
    ``safe_bound`` (a combinatorial bound that needs no solver) and the failure is recorded.
    """
    info = dict(info)
    tol = _audit.objective_tolerance(recomputed)
    verified = True
    if not (abs(objective - recomputed) <= tol or objective == recomputed):
        info["objective_check"] = (
            f"failed: kernel objective {objective:.9g}, recomputed {recomputed:.9g}"
        )
        verified = False
    else:
        info["objective_check"] = "passed"
    objective = recomputed
    wrong_side = bound < objective - tol if maximise else bound > objective + tol
    if not math.isfinite(bound) or wrong_side:
        if math.isfinite(bound):
            info["bound_check"] = (
                f"failed: bound {bound:.9g} is on the wrong side of the objective "
                f"{objective:.9g}; replaced by the combinatorial bound {safe_bound:.9g}"
            )
        else:
            info["bound_check"] = f"no solver bound; combinatorial bound {safe_bound:.9g}"
        bound = safe_bound
        solver_status = None if solver_status == "optimal" else solver_status
    else:
        info["bound_check"] = "passed"
    if maximise:
        bound = max(bound, objective)  # round-off only (checked above)
    else:
        bound = min(bound, objective)
    gap = relative_gap(objective, bound)
    if gap <= _OPT_TOL:
        gap = 0.0
    status = _status(gap, solver_status)
    if not verified:
        status = "unverified"
    info["solve_status"] = status
    if status_override is not None:
        status = status_override
    return Plan(
        sites=np.asarray(sites, dtype=np.int64),
        objective=float(objective),
        bound=float(bound),
        gap=float(gap),
        status=status,
        solver="greedy" if solver == "greedy" else "highs",
        runtime_s=time.perf_counter() - t0,
        model=model,
        marginal=np.asarray(marginal, dtype=np.float64),
        assignment=assignment,
        uncoverable=np.asarray(uncoverable, dtype=np.int64),
        info=info,
    )


def _solve_mip(
    model: _highs.MipModel,
    *,
    time_limit_s: float,
    mip_gap: float,
    start: FloatArray | None,
    info: dict[str, Any],
    heuristic_effort: float | None = None,
) -> _highs.MipResult:
    """Solve a MIP and check what HiGHS returns before anything of it is used.

    HiGHS 1.16 with presolve can mis-map a MIP start: it then reports "Optimal" with an
    objective that no returned vector has (notebook 02's set cover: "optimal 51" with the
    60-site start handed back, true optimum 59).  Every result is therefore audited
    (:func:`geosvc.locate._audit.mip_problem`); an inconsistent result from a warm-started
    solve is thrown away and the model re-solved without the start; one that is still
    inconsistent keeps neither its vector nor its bound.
    """
    t0 = time.perf_counter()
    res = _highs.solve(
        model,
        relax=False,
        time_limit_s=time_limit_s,
        mip_gap=mip_gap,
        start=start,
        heuristic_effort=heuristic_effort,
    )
    problem = _audit.mip_problem(model, res)
    if problem and start is not None:
        logger.info("dropping the MIP start: %s", problem)
        info["warm_start"] = f"dropped ({problem})"
        left = max(time_limit_s - (time.perf_counter() - t0), 1.0)
        res = _highs.solve(model, relax=False, time_limit_s=left, mip_gap=mip_gap)
        problem = _audit.mip_problem(model, res)
    elif start is not None:
        info["warm_start"] = "used"
    if problem:
        info["highs_check"] = f"failed: {problem}"
        return _highs.MipResult(
            status="other",
            model_status=res.model_status,
            objective=math.nan,
            bound=math.nan,
            x=None,
            runtime_s=res.runtime_s,
            nodes=res.nodes,
        )
    info["highs_check"] = "passed"
    return res


def _mip_info(res: _highs.MipResult) -> dict[str, Any]:
    return {
        "highs_status": res.model_status,
        "highs_objective": res.objective,
        "highs_bound": res.bound,
        "highs_time_s": res.runtime_s,
        "mip_nodes": res.nodes,
    }


def _lp_bound(
    build: Callable[[], _highs.MipModel], relation_nnz: int, time_limit_s: float, mip_gap: float,
    info: dict[str, Any]
) -> float | None:
    """LP-relaxation value of the model ``build()`` makes, or None when skipped or unsolved.

    Skipped without building the model when the (reduced) relation has more than
    :data:`LP_BOUND_MAX_NNZ` pairs (the model has at least as many nonzeros).
    """
    if relation_nnz > LP_BOUND_MAX_NNZ:
        info["lp_status"] = f"skipped ({relation_nnz} nonzeros > {LP_BOUND_MAX_NNZ})"
        return None
    model = build()
    if model.matrix.nnz > LP_BOUND_MAX_NNZ:
        info["lp_status"] = f"skipped ({model.matrix.nnz} nonzeros > {LP_BOUND_MAX_NNZ})"
        return None
    lp = _highs.solve(model, relax=True, time_limit_s=time_limit_s, mip_gap=mip_gap)
    info["lp_status"] = lp.model_status
    info["lp_time_s"] = lp.runtime_s
    return lp.bound if lp.status == "optimal" else None


def _covered_groups(
    cov: sp.csr_array, sites: IntArray, group: IntArray, n_groups: int
) -> FloatArray:
    """1.0 for every demand group covered by one of ``sites``."""
    out = np.zeros(n_groups)
    if len(sites):
        g = group[cov[np.asarray(sites)].indices]
        out[g[g >= 0]] = 1.0
    return out


# --------------------------------------------------------------------------------------------
# max coverage
# --------------------------------------------------------------------------------------------
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
    cov = _coverage_csr(coverage)
    n_cand, n_dem = cov.shape
    w = _weights(weights, n_dem)
    k = _count(k, n_cand, "k")
    fixed = _demand_mask(fixed_covered, n_dem, "fixed_covered")
    solver = _solver_name(solver)
    indptr, indices = _kernel_arrays(cov)
    coverable = np.zeros(n_dem, dtype=bool)
    coverable[indices] = True
    uncoverable = np.flatnonzero(~coverable & ~fixed)
    active = coverable & ~fixed & (w > 0)
    fixed_w = float(w[fixed].sum())
    reachable_w = fixed_w + float(w[active].sum())
    integral = _is_integral(w[active])
    ones = np.ones(n_cand)
    all_cand = np.ones(n_cand, dtype=bool)
    order, gains, online = greedy_cover(indptr, indices, w, fixed, ones, all_cand, k, np.inf, k)
    info: dict[str, Any] = {
        "k": k,
        "n_candidates": n_cand,
        "n_demand": n_dem,
        "total_weight": float(w.sum()),
        "fixed_weight": fixed_w,
        "coverable_weight": reachable_w,
        "uncoverable_weight": float(w[uncoverable].sum()),
    }
    greedy_obj = fixed_w + float(gains.sum())
    safe_bound = min(reachable_w, fixed_w + float(online))  # the greedy's own bounds

    def finish(chosen_order: IntArray, chosen_gains: FloatArray, bound: float,
               solver_status: str | None) -> Plan:
        return _plan(
            model="max_coverage",
            solver=solver,
            t0=t0,
            sites=chosen_order,
            marginal=chosen_gains,
            objective=fixed_w + float(chosen_gains.sum()),
            bound=bound,
            solver_status=solver_status,
            maximise=True,
            uncoverable=uncoverable,
            info=info,
            recomputed=_audit.covered_weight(cov, w, fixed, chosen_order),
            safe_bound=_round_bound(safe_bound, integral, maximise=True),
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
        lp = _lp_bound(lambda: _highs.max_coverage_model(
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
        return finish(order, gains, _round_bound(bounds[source], integral, maximise=True), None)
    # The Lagrangian bound first: cheap (one pass over the pairs a step) and, at city scale,
    # far tighter than what HiGHS proves in its time limit; when it already proves the greedy
    # plan within mip_gap there is nothing left for the MIP to do.
    lag, lag_info = lagrangian_max_coverage(
        cov_m.indptr, cov_m.indices, w_g, k, greedy_obj - fixed_w,
        max_time_s=min(MAXCOV_LAGRANGIAN_TIME_S, 0.25 * time_limit_s))
    info["lagrangian"] = {**lag_info, "bound": fixed_w + lag}
    safe_bound = min(safe_bound, fixed_w + lag)
    proven = _round_bound(safe_bound, integral, maximise=True)
    if relative_gap(greedy_obj, proven) <= mip_gap:
        info["mip"] = (f"not needed: the Lagrangian bound {proven:.6g} proves the greedy plan "
                       f"within mip_gap {mip_gap:g}")
        info["greedy_objective"] = greedy_obj
        return finish(order, gains, proven, "optimal")
    model = _highs.max_coverage_model(cov_m, w_g, np.ones(w_g.size, dtype=bool), k, fixed_w)
    start = np.zeros(model.num_col)
    start[order] = 1.0
    start[n_cand:] = _covered_groups(cov, order, group, w_g.size)
    res = _solve_mip(model, time_limit_s=time_limit_s, mip_gap=mip_gap, start=start, info=info)
    info.update(_mip_info(res))
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
    return finish(order, gains, _round_bound(bound, integral, maximise=True), res.status)


# --------------------------------------------------------------------------------------------
# set cover
# --------------------------------------------------------------------------------------------
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
    cov = _coverage_csr(coverage)
    n_cand, n_dem = cov.shape
    w = _weights(weights, n_dem)
    target = float(target)
    if not (0.0 < target <= 1.0):
        raise InputError(f"target must be a share in (0, 1], got {target}")
    cost = np.ones(n_cand) if costs is None else _site_vector(costs, n_cand, "costs", positive=True)
    fixed = _demand_mask(fixed_covered, n_dem, "fixed_covered")
    solver = _solver_name(solver)
    indptr, indices = _kernel_arrays(cov)
    coverable = np.zeros(n_dem, dtype=bool)
    coverable[indices] = True
    uncoverable = np.flatnonzero(~coverable & ~fixed)
    active = coverable & ~fixed & (w > 0)
    total_w = float(w.sum())
    fixed_w = float(w[fixed].sum())
    active_w = float(w[active].sum())
    reachable_w = fixed_w + active_w
    requested = target * total_w
    tol = 1e-9 * max(total_w, 1.0)
    goal = min(requested, reachable_w)
    partial_infeasible = requested > reachable_w + tol
    need = goal - fixed_w  # weight the new sites must add
    full = need >= active_w - tol
    integral = _is_integral(cost)
    info: dict[str, Any] = {
        "target": target,
        "n_candidates": n_cand,
        "n_demand": n_dem,
        "total_weight": total_w,
        "requested_weight": requested,
        "goal_weight": goal,
        "fixed_weight": fixed_w,
        "coverable_weight": reachable_w,
        "uncoverable_weight": float(w[uncoverable].sum()),
        "formulation": "cover_all" if full else "partial",
    }
    if partial_infeasible:
        logger.warning(
            "set cover target %.4g of weight %.6g is unreachable: %d demand (weight %.6g) has no "
            "covering candidate; covering the reachable %.6g instead",
            target,
            total_w,
            uncoverable.size,
            info["uncoverable_weight"],
            reachable_w,
        )
    override = "infeasible_partial" if partial_infeasible else None
    all_cand = np.ones(n_cand, dtype=bool)

    def finish(chosen: BoolArray, bound: float, solver_status: str | None) -> Plan:
        order, gains, _ = greedy_cover(
            indptr, indices, w, fixed, cost, chosen, int(chosen.sum()), np.inf, 0
        )
        info["covered_weight"] = fixed_w + float(gains.sum())
        info["marginal_ratio"] = gains / cost[order]
        reached = _audit.covered_weight(cov, w, fixed, order)
        recomputed = float(np.sum(cost[order]))
        if reached < goal - tol:  # never a plan that misses its target
            recomputed = math.inf
        return _plan(
            model="set_cover",
            solver=solver,
            t0=t0,
            sites=order,
            marginal=gains,
            objective=float(cost[order].sum()),
            bound=bound,
            solver_status=solver_status,
            maximise=False,
            uncoverable=uncoverable,
            info=info,
            recomputed=recomputed,
            safe_bound=safe_bound,
            status_override=override,
        )

    safe_bound = 0.0
    if need <= tol:
        return finish(np.zeros(n_cand, dtype=bool), 0.0, None)
    order, gains, _ = greedy_cover(indptr, indices, w, fixed, cost, all_cand, n_cand, need - tol, 0)
    if gains.sum() < need - tol:  # pragma: no cover - need <= reachable weight by construction
        raise InfeasibleError(
            "set cover greedy could not reach the coverable weight (internal error)"
        )
    keep = _prune_cover(cov, w, fixed, order, cost, need - tol)
    info["greedy_objective"] = float(cost[keep].sum())
    # every site adds at most max_j(gain_j / cost_j) weight per unit of cost
    gain0 = np.bincount(
        np.repeat(np.arange(n_cand), np.diff(indptr)),
        weights=np.where(active, w, 0.0)[indices],
        minlength=n_cand,
    )
    ratio_bound = _round_bound(need / float(np.max(gain0 / cost)), integral, maximise=False)
    safe_bound = ratio_bound
    cov_g, w_g, group = _reduce.aggregate_demand(cov, w, active)
    info["n_demand_groups"] = int(w_g.size)
    cov_m = _reduce.drop_dominated(cov_g, cost, n_dem, info)

    def build() -> _highs.MipModel:
        return _highs.set_cover_model(
            cov_m, w_g, np.ones(w_g.size, dtype=bool), cost, None if full else need - tol
        )

    lp_b = -math.inf
    if solver == "greedy":
        lp = _lp_bound(build, cov_m.nnz, time_limit_s, mip_gap, info)
        lp_b = _round_bound(lp, integral, maximise=False) if lp is not None else -math.inf
        info["bound_source"] = "lp" if lp_b >= ratio_bound else "ratio"
    lower = max(lp_b, ratio_bound)
    keep = _improve_cover(cov_g, w_g, cost, None if full else need - tol, keep, lower,
                          min(COVER_SEARCH_TIME_S, 0.5 * time_limit_s), info)
    if solver == "greedy":
        return finish(keep, lower, None)
    # No MIP start: HiGHS 1.16 mis-maps set-cover starts through presolve (it fixes sites
    # open into an objective offset) and reports a false optimum -- notebook 02: "optimal 51"
    # for a 59-site optimum, 200 x 2,000: "53" for 54.  _solve_mip would catch it and solve
    # again; the local-search plan stays the fallback below instead.
    res = _solve_mip(build(), time_limit_s=time_limit_s, mip_gap=mip_gap, start=None, info=info)
    info.update(_mip_info(res))
    if res.status == "infeasible":  # pragma: no cover - the goal is reachable by construction
        raise InfeasibleError("set cover model is infeasible (internal error)")
    chosen = keep if res.x is None else res.x[:n_cand] > 0.5
    if float(cost[chosen].sum()) > float(cost[keep].sum()) or (
        _audit.covered_weight(cov, w, fixed, np.flatnonzero(chosen)) < goal - tol
    ):
        chosen = keep
    bound = _round_bound(res.bound, integral, maximise=False) if math.isfinite(res.bound) else 0.0
    return finish(chosen, max(bound, ratio_bound), res.status)


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
    whatever its weight).  Stops at ``lower`` (a proven bound) or after ``max_time_s``.
    """
    n_g = int(w_g.size)
    if n_g == 0 or not start.any():
        return start
    cg = sp.csr_array(cov_g)
    cg.sort_indices()
    ls_w = np.ones(n_g) if need is None else w_g
    ls_need = float(n_g) if need is None else float(need)
    t0 = time.perf_counter()
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
    )
    info["local_search"] = {
        "start_cost": float(cost[start].sum()),
        "cost": value,
        "moves": moves,
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


# --------------------------------------------------------------------------------------------
# p-median
# --------------------------------------------------------------------------------------------
def p_median(
    costs: Any,
    weights: Any,
    p: int,
    *,
    fixed: Any = None,
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
    t0 = time.perf_counter()
    cmat = _cost_csr(costs)
    n_cand, n_dem = cmat.shape
    w = _weights(weights, n_dem)
    fixed_mask = _site_mask(fixed, n_cand, "fixed")
    n_fixed = int(fixed_mask.sum())
    p = _count(p, n_cand - n_fixed, "p", what="non-fixed candidates")
    if p + n_fixed == 0:
        raise InputError("p must be >= 1 when there is no fixed facility")
    solver = _solver_name(solver)
    n_open = p + n_fixed
    indptr, indices = _kernel_arrays(cmat)
    data = cmat.data.astype(np.float64)
    allowed = np.zeros(n_dem, dtype=bool)
    allowed[indices] = True
    uncoverable = np.flatnonzero(~allowed)
    active = allowed & (w > 0)
    integral = _is_integral(w[active]) and _is_integral(data[active[indices]])
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
        return _plan(
            model="p_median",
            solver=solver,
            t0=t0,
            sites=seq,
            marginal=marginal,
            objective=objective,
            bound=bound,
            solver_status=solver_status,
            maximise=False,
            uncoverable=uncoverable,
            info=info,
            recomputed=_audit.pmedian_cost(cmat, w, active, final),
            safe_bound=_round_bound(max(lag_bound, 0.0), integral, maximise=False),
            assignment=nn,
            status_override="infeasible_partial" if partial else None,
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
        return finish(heur_mask, _round_bound(bound, integral, maximise=False), None)

    assert model is not None
    start_ok = greedy_ok and not (heur_mask & closed).any() and not (forced & ~heur_mask).any()
    start_vec = _highs.pmedian_start(model, heur_mask) if start_ok else None
    res = _solve_mip(
        model,
        time_limit_s=time_limit_s,
        mip_gap=mip_gap,
        start=start_vec,
        info=info,
        heuristic_effort=PMEDIAN_HEURISTIC_EFFORT if start_ok else None,
    )
    info.update(_mip_info(res))
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
    bound = _round_bound(bound, integral, maximise=False)
    return finish(open_mask, bound, "optimal" if res.status == "infeasible" else res.status)


# --------------------------------------------------------------------------------------------
# capacitated coverage
# --------------------------------------------------------------------------------------------
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
    cov = _coverage_csr(coverage)
    n_cand, n_dem = cov.shape
    w = _weights(weights, n_dem)
    cap = _site_vector(capacities, n_cand, "capacities", positive=False)
    k = _count(k, n_cand, "k")
    fixed = _demand_mask(fixed_covered, n_dem, "fixed_covered")
    solver = _solver_name(solver)
    indptr, indices = _kernel_arrays(cov)
    coverable = np.zeros(n_dem, dtype=bool)
    coverable[indices] = True
    uncoverable = np.flatnonzero(~coverable & ~fixed)
    active = coverable & ~fixed & (w > 0)
    fixed_w = float(w[fixed].sum())
    active_w = float(w[active].sum())
    cap = np.minimum(cap, active_w)  # inf -> the most any site could serve
    integral = _is_integral(w[active]) and _is_integral(cap)
    info: dict[str, Any] = {
        "k": k,
        "n_candidates": n_cand,
        "n_demand": n_dem,
        "total_weight": float(w.sum()),
        "fixed_weight": fixed_w,
        "coverable_weight": fixed_w + active_w,
        "uncoverable_weight": float(w[uncoverable].sum()),
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
        return _plan(
            model="capacitated_coverage",
            solver=solver,
            t0=t0,
            sites=seq,
            marginal=marginal,
            objective=objective,
            bound=bound,
            solver_status=solver_status,
            maximise=True,
            uncoverable=uncoverable,
            info=info,
            recomputed=fixed_w + served_check if not problem else math.nan,
            safe_bound=_round_bound(simple, integral, maximise=True),
            assignment=assignment,
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
        return finish(greedy_mask, _round_bound(simple, integral, maximise=True), None)
    if solver == "greedy":
        lp = _lp_bound(lambda: _highs.capacitated_model(
            cov_g, w_g, np.ones(n_g, dtype=bool), cap, k, fixed_w), cov_g.nnz,
            min(time_limit_s, CAPACITATED_LP_TIME_S), mip_gap, info)
        info["bound_source"] = "lp" if lp is not None and lp < simple else "capacity"
        bound = min(simple, lp if lp is not None else math.inf)
        return finish(greedy_mask, _round_bound(bound, integral, maximise=True), None)
    model = _highs.capacitated_model(cov_g, w_g, np.ones(n_g, dtype=bool), cap, k, fixed_w)
    start = np.zeros(model.num_col)
    start[order] = 1.0
    pair_site = np.asarray(model.meta["pair_site"])
    pair_grp = np.asarray(model.meta["pair_demand"])
    keys = pair_site * n_g + pair_grp  # sorted: CSR order
    col = np.searchsorted(keys, fs * n_g + group[fd])
    np.add.at(start, n_cand + col, fa)
    res = _solve_mip(model, time_limit_s=time_limit_s, mip_gap=mip_gap, start=start, info=info)
    info.update(_mip_info(res))
    chosen = greedy_mask if res.x is None else res.x[:n_cand] > 0.5
    # HiGHS's dual bound can be loose when it stops early; the capacity bound always holds
    bound = min(res.bound, simple) if math.isfinite(res.bound) else simple
    return finish(chosen, _round_bound(bound, integral, maximise=True), res.status)
