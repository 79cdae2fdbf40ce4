"""Independent re-evaluation of plans and of what HiGHS hands back.

A plan's objective is never taken from a solver: it is recomputed here from the chosen sites
with plain scipy.sparse arithmetic (no shared code with the greedy kernels or the model
builders), and every MIP result is checked for consistency (reported objective equals the
objective of the returned vector, the vector is feasible, the dual bound lies on the right
side of it) before its bound is believed.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from geosvc.locate._highs import MINIMIZE, MipModel, MipResult

__all__ = [
    "covered_weight",
    "pmedian_cost",
    "flow_served",
    "mip_problem",
    "objective_tolerance",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Feasibility tolerance used when re-checking a solver's vector (HiGHS's default is 1e-7).
FEAS_TOL = 1e-6


def objective_tolerance(value: float) -> float:
    """Absolute tolerance for comparing two computations of one objective value."""
    return 1e-6 * max(1.0, abs(value)) if math.isfinite(value) else 0.0


def covered_weight(cov: sp.csr_array, w: FloatArray, fixed: BoolArray, sites: IntArray) -> float:
    """Weight of the demand covered by ``sites`` or already covered (``fixed``)."""
    hit = fixed.copy()
    sites = np.asarray(sites, dtype=np.int64)
    if sites.size:
        hit |= np.asarray(cov[sites].sum(axis=0)).ravel() > 0
    return float(w[hit].sum())


def pmedian_cost(cmat: sp.csr_array, w: FloatArray, active: BoolArray, sites: IntArray) -> float:
    """``sum_i w_i min_{j in sites} c_ij`` over ``active`` demand (``inf`` if one is unserved)."""
    sites = np.asarray(sites, dtype=np.int64)
    n_dem = cmat.shape[1]
    best = np.full(n_dem, np.inf)
    if sites.size:
        sub = sp.csc_array(cmat[sites])
        sub.sort_indices()
        counts = np.diff(sub.indptr)
        nz = np.flatnonzero(counts)
        if nz.size:
            best[nz] = np.minimum.reduceat(sub.data, sub.indptr[nz])
    d = best[active]
    if np.isinf(d).any():
        return math.inf
    return float(np.sum(w[active] * d))


def flow_served(
    cov: sp.csr_array,
    w: FloatArray,
    cap: FloatArray,
    sites: IntArray,
    pair_site: IntArray,
    pair_demand: IntArray,
    flow: FloatArray,
) -> tuple[float, str]:
    """Total of a fractional assignment after checking it is one.

    Returns the served weight and an empty string, or ``nan`` and what is wrong (a flow on a
    pair that is not a covering pair of a chosen site, above a demand's weight or a site's
    capacity, or negative).
    """
    if flow.size == 0:
        return 0.0, ""
    tol = FEAS_TOL * max(1.0, float(np.max(flow)))
    if (flow < -tol).any():
        return math.nan, "negative flow"
    chosen = np.zeros(cov.shape[0], dtype=bool)
    chosen[np.asarray(sites, dtype=np.int64)] = True
    if not chosen[pair_site].all():
        return math.nan, "flow from a site that is not chosen"
    if not (np.asarray(cov[pair_site, pair_demand]).ravel() > 0).all():
        return math.nan, "flow on a pair outside the coverage relation"
    per_dem = np.bincount(pair_demand, weights=flow, minlength=cov.shape[1])
    if (per_dem > w + tol).any():
        return math.nan, "a demand receives more than its weight"
    per_site = np.bincount(pair_site, weights=flow, minlength=cov.shape[0])
    if (per_site > cap + tol).any():
        return math.nan, "a site serves more than its capacity"
    return float(flow.sum()), ""


def mip_problem(model: MipModel, res: MipResult) -> str:
    """What is inconsistent in a MIP result, or ``""`` when it passes every check.

    Checks: a claimed optimum comes with a vector; the reported objective equals the model
    objective of the returned vector; the vector respects the column bounds, integrality and
    row bounds; the dual bound lies on the right side of the reported objective.
    """
    if res.x is None:
        return "HiGHS claims optimality without a solution" if res.status == "optimal" else ""
    x = res.x
    value = float(model.col_cost @ x + model.offset)
    tol = objective_tolerance(value)
    if not (math.isfinite(res.objective) and abs(value - res.objective) <= tol):
        return (
            f"HiGHS reported objective {res.objective:.9g} but its solution vector has "
            f"objective {value:.9g}"
        )
    if (x < model.col_lower - FEAS_TOL).any() or (x > model.col_upper + FEAS_TOL).any():
        return "HiGHS's solution violates a column bound"
    xi = x[model.integer]
    if (np.abs(xi - np.round(xi)) > FEAS_TOL).any():
        return "HiGHS's solution is not integral"
    act = model.matrix @ x
    slack = FEAS_TOL * np.maximum(1.0, np.abs(act))
    if (act < model.row_lower - slack).any() or (act > model.row_upper + slack).any():
        return "HiGHS's solution violates a constraint"
    if math.isfinite(res.bound):
        if model.sense == MINIMIZE and res.bound > value + tol:
            return f"HiGHS's lower bound {res.bound:.9g} exceeds its objective {value:.9g}"
        if model.sense != MINIMIZE and res.bound < value - tol:
            return f"HiGHS's upper bound {res.bound:.9g} is below its objective {value:.9g}"
    return ""
