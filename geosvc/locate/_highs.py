"""HiGHS model builders (sparse arrays in, ``highspy`` out) and one solve helper.

Every builder assembles the constraint matrix as COO triplets with vectorised numpy, converts
it once to CSC with scipy and hands the arrays to ``Highs.passModel``; no dense matrix and no
per-nonzero Python loop is ever made.  Builders return a :class:`MipModel`; :func:`solve` runs
it as a MIP or as its LP relaxation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from geosvc._native import new_highs

__all__ = [
    "MINIMIZE",
    "MAXIMIZE",
    "csc_matrix",
    "MipModel",
    "MipResult",
    "solve",
    "solve_lp_with_duals",
    "max_coverage_model",
    "set_cover_model",
    "capacitated_model",
    "transport_served",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MAXIMIZE = -1
MINIMIZE = 1

#: HiGHS's ``mip_pool_soft_limit`` for every siting MIP (HiGHS's default is 10,000).  Most of
#: HiGHS's time on them goes into re-solving LPs that carry the cut pool (over 8,000 cuts in a
#: 500 x 5,000 max coverage's root); with a soft limit of 1 the pool's cuts age out at once,
#: the LPs stay small and more nodes are solved per second.
#: Measured on random instances (``benchmarks.cases.planar_instance``), same objectives:
#:
#: - max coverage 500 x 5,000 (seeds 1-26 but 6): 15 of 25 needed HiGHS, all 15 were faster,
#:   HiGHS 53.2 s -> 31.5 s in all (end to end 68.8 s -> 44.5 s); on the whole reduced model
#:   (the path above the LP size), seeds 2, 7, 11, 13: 88.6 s -> 49.9 s, all faster;
#: - set cover 500 x 5,000 (seeds 1-7, 9, 10; 100-150 s limits): of the 5 proven, 4 faster or
#:   equal (36.6 s -> 15.4 s, 52.9 s -> 41.8 s) and the benchmark's seed 7 slower (25.0 s ->
#:   31.0 s); seed 10 proven at 48 in 45.9 s instead of 49 with a 4.3% gap at 150 s; of the
#:   4 stopped by the limit, 1 with a better bound (6.4% -> 4.2%), 3 equal;
#: - p-median 200 x 2,000 exact, level generation (seeds 1-9): 155.3 s -> 97.6 s in all,
#:   8 faster, 1 slower (0.29 s -> 0.33 s);
#: - capacitated coverage 200 x 2,000, k = 20 (seeds 1, 2, 3, 7): 33.5 s -> 30.6 s in all,
#:   the two slow ones faster, the two fast ones equal.
#:
#: Soft limits of 20 and 200 gained little on max coverage.
CUT_POOL_SOFT_LIMIT = 1


@dataclass
class MipModel:
    """A linear model in HiGHS's column-wise form.

    ``integer`` marks the columns that are binary/integer in the MIP; the LP relaxation simply
    drops it.  ``n_site_cols`` columns at the front are the site variables.
    """

    sense: int
    offset: float
    col_cost: FloatArray
    col_lower: FloatArray
    col_upper: FloatArray
    row_lower: FloatArray
    row_upper: FloatArray
    matrix: sp.csc_array
    integer: BoolArray
    n_site_cols: int
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def num_col(self) -> int:
        """Number of columns."""
        return int(self.col_cost.size)

    @property
    def num_row(self) -> int:
        """Number of rows."""
        return int(self.row_lower.size)


@dataclass
class MipResult:
    """What HiGHS returned: status, primal values and the proven bound."""

    status: str
    model_status: str
    objective: float
    bound: float
    x: FloatArray | None
    runtime_s: float
    nodes: int


def csc_matrix(rows: IntArray, cols: IntArray, vals: FloatArray,
               shape: tuple[int, int]) -> sp.csc_array:
    """COO triplets (duplicates summed) as a CSC matrix for HiGHS."""
    mat = sp.csc_array((vals, (rows, cols)), shape=shape)
    mat.sum_duplicates()
    return mat


def solve(
    model: MipModel,
    *,
    relax: bool,
    time_limit_s: float,
    mip_gap: float,
    start: FloatArray | None = None,
    heuristic_effort: float | None = None,
    lp_solver: str = "ipm",
    mip_settings: str = "highs",
) -> MipResult:
    """Solve ``model`` with HiGHS (quietly, one thread, fixed seed).

    Parameters
    ----------
    model
        The model.
    relax
        Solve the LP relaxation instead of the MIP.
    time_limit_s
        Time limit in seconds.
    mip_gap
        Relative MIP gap at which HiGHS stops.
    start
        Optional full primal vector used as the MIP start.
    lp_solver
        HiGHS ``solver`` for LP relaxations: ``"ipm"`` (interior point + crossover, far more
        robust than dual simplex on the degenerate covering LPs) or ``"simplex"``.
    heuristic_effort
        HiGHS's ``mip_heuristic_effort`` (default: HiGHS's own); lower it when ``start`` is
        already (near) optimal so the time goes into proving the bound.
    mip_settings
        ``"highs"``: HiGHS's defaults.  ``"ipm_no_presolve"``: the MIP's LPs by interior point,
        no presolve -- on the degenerate cumulative p-median models this halves the root time
        (about 15 s -> 6-9 s on the first level-generation round of a 200 x 2,000 instance),
        and max coverage 500 x 5,000 is proven optimal in 17 s instead of stopping at its gap
        after 81 s (same machine, load 1-3).  ``"no_presolve"``: simplex LPs, no presolve --
        the set cover's reduced model (:func:`geosvc.locate._reduce.reduce_cover_all`) is
        already smaller than presolve makes it: 500 x 5,000 proven at 49 sites after 650
        nodes in about 30 s, against 1,160 nodes and 40 s with ``"ipm_no_presolve"``.

    Returns
    -------
    MipResult
        ``status`` is ``"optimal"``, ``"time_limit"``, ``"infeasible"`` or ``"other"``;
        ``bound`` is HiGHS's dual bound for a MIP and the optimal value for an LP (``nan``
        when none is proven).
    """
    t0 = time.perf_counter()
    h = _configured(relax=relax, time_limit_s=time_limit_s, mip_gap=mip_gap,
                    lp_solver=lp_solver, mip_settings=mip_settings,
                    heuristic_effort=heuristic_effort)
    _pass_model(h, model, relax)
    if start is not None and not relax:
        sol = highspy.HighsSolution()
        sol.col_value = np.asarray(start, dtype=np.float64)
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    return _result(h, relax, t0)


def solve_lp_with_duals(model: MipModel, *, time_limit_s: float) -> tuple[MipResult, FloatArray]:
    """The LP relaxation (interior point + crossover) and its row duals (HiGHS's signs)."""
    t0 = time.perf_counter()
    h = _configured(relax=True, time_limit_s=time_limit_s, mip_gap=0.0, lp_solver="ipm",
                    mip_settings="highs", heuristic_effort=None)
    _pass_model(h, model, True)
    h.run()
    res = _result(h, True, t0)
    duals = np.asarray(h.getSolution().row_dual, dtype=np.float64)
    return res, duals


def _configured(*, relax: bool, time_limit_s: float, mip_gap: float, lp_solver: str,
                mip_settings: str, heuristic_effort: float | None) -> highspy.Highs:
    """A quiet, single-threaded, seeded HiGHS with the solve's options set (a MIP's cut pool
    at :data:`CUT_POOL_SOFT_LIMIT`)."""
    h = new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("time_limit", float(max(time_limit_s, 1e-3)))
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    if relax:
        h.setOptionValue("solver", lp_solver)
    elif mip_settings in ("ipm_no_presolve", "no_presolve"):
        h.setOptionValue("presolve", "off")
        if mip_settings == "ipm_no_presolve":
            h.setOptionValue("mip_lp_solver", "ipm")
    elif mip_settings != "highs":
        raise ValueError(f"unknown mip_settings {mip_settings!r}")
    if not relax:
        h.setOptionValue("mip_pool_soft_limit", CUT_POOL_SOFT_LIMIT)
    if heuristic_effort is not None:
        h.setOptionValue("mip_heuristic_effort", float(heuristic_effort))
        if heuristic_effort == 0.0:
            for name in (
                "mip_heuristic_run_rins",
                "mip_heuristic_run_rens",
                "mip_heuristic_run_root_reduced_cost",
                "mip_heuristic_run_feasibility_jump",
            ):
                h.setOptionValue(name, False)
    return h


def _pass_model(h: highspy.Highs, model: MipModel, relax: bool) -> None:
    """Hand the column-wise arrays to HiGHS (integrality dropped for the LP relaxation)."""
    integrality = (
        np.zeros(model.num_col, dtype=np.int32) if relax else model.integer.astype(np.int32)
    )
    mat = model.matrix
    status = h.passModel(
        model.num_col,
        model.num_row,
        int(mat.nnz),
        1,  # column-wise
        model.sense,
        float(model.offset),
        np.ascontiguousarray(model.col_cost, dtype=np.float64),
        np.ascontiguousarray(model.col_lower, dtype=np.float64),
        np.ascontiguousarray(model.col_upper, dtype=np.float64),
        np.ascontiguousarray(model.row_lower, dtype=np.float64),
        np.ascontiguousarray(model.row_upper, dtype=np.float64),
        mat.indptr.astype(np.int32),
        mat.indices.astype(np.int32),
        np.ascontiguousarray(mat.data, dtype=np.float64),
        integrality,
    )
    if status == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS rejected the model (internal error in geosvc.locate)")


_STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
}


def _result(h: highspy.Highs, relax: bool, t0: float) -> MipResult:
    """What the finished solve returned: status, primal values, objective and bound."""
    ms = h.getModelStatus()
    info = h.getInfo()
    has_primal = info.primal_solution_status == highspy.kSolutionStatusFeasible
    x = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_primal else None
    status_s = _STATUS.get(ms, "other")
    objective = float(info.objective_function_value) if has_primal else math.nan
    if relax:
        bound = objective if status_s == "optimal" else math.nan
    else:
        bound = float(info.mip_dual_bound)
        if not math.isfinite(bound):
            bound = math.nan
    return MipResult(
        status=status_s,
        model_status=h.modelStatusToString(ms),
        objective=objective,
        bound=bound,
        x=x,
        runtime_s=time.perf_counter() - t0,
        nodes=int(info.mip_node_count) if not relax else 0,
    )


# --------------------------------------------------------------------------------------------
# builders
# --------------------------------------------------------------------------------------------
def _coo_parts(cov: sp.csr_array) -> tuple[IntArray, IntArray]:
    rows = np.repeat(np.arange(cov.shape[0], dtype=np.int64), np.diff(cov.indptr))
    return rows, cov.indices.astype(np.int64)


def max_coverage_model(
    cov: sp.csr_array, w: FloatArray, active_dem: BoolArray, k: int, offset: float
) -> MipModel:
    """Maximal covering location: ``max sum w_i y_i``, ``y_i <= sum_{j covers i} x_j``, ``sum x <= k``.

    Only demand in ``active_dem`` (coverable, not already covered, positive weight) gets a
    ``y`` column and a row.  Columns: ``x`` (all candidates) then ``y``.
    """
    n_cand = cov.shape[0]
    dem = np.flatnonzero(active_dem)
    n_y = dem.size
    row_of = np.full(cov.shape[1], -1, dtype=np.int64)
    row_of[dem] = np.arange(n_y)
    j, i = _coo_parts(cov)
    keep = row_of[i] >= 0
    j, r = j[keep], row_of[i[keep]]
    rows = np.concatenate([r, np.full(n_cand, n_y), np.arange(n_y)])
    cols = np.concatenate([j, np.arange(n_cand), n_cand + np.arange(n_y)])
    vals = np.concatenate([-np.ones(r.size), np.ones(n_cand), np.ones(n_y)])
    mat = csc_matrix(rows, cols, vals, (n_y + 1, n_cand + n_y))
    return MipModel(
        sense=MAXIMIZE,
        offset=offset,
        col_cost=np.concatenate([np.zeros(n_cand), w[dem]]),
        col_lower=np.zeros(n_cand + n_y),
        col_upper=np.ones(n_cand + n_y),
        row_lower=np.full(n_y + 1, -np.inf),
        row_upper=np.concatenate([np.zeros(n_y), [float(k)]]),
        matrix=mat,
        integer=np.concatenate([np.ones(n_cand, bool), np.zeros(n_y, bool)]),
        n_site_cols=n_cand,
        meta={"demand": dem},
    )


def set_cover_model(
    cov: sp.csr_array,
    w: FloatArray,
    active_dem: BoolArray,
    cost: FloatArray,
    need: float | None,
) -> MipModel:
    """(Partial) set cover: ``min sum c_j x_j``.

    With ``need is None`` every active demand must be covered (``sum_{j covers i} x_j >= 1``).
    Otherwise ``y_i <= sum_{j covers i} x_j`` and ``sum w_i y_i >= need``.  Columns: ``x``
    then (partial only) ``y``.
    """
    n_cand = cov.shape[0]
    dem = np.flatnonzero(active_dem)
    n_d = dem.size
    row_of = np.full(cov.shape[1], -1, dtype=np.int64)
    row_of[dem] = np.arange(n_d)
    j, i = _coo_parts(cov)
    keep = row_of[i] >= 0
    j, r = j[keep], row_of[i[keep]]
    if need is None:
        mat = csc_matrix(r, j, np.ones(r.size), (n_d, n_cand))
        return MipModel(
            sense=MINIMIZE,
            offset=0.0,
            col_cost=cost.astype(np.float64),
            col_lower=np.zeros(n_cand),
            col_upper=np.ones(n_cand),
            row_lower=np.ones(n_d),
            row_upper=np.full(n_d, np.inf),
            matrix=mat,
            integer=np.ones(n_cand, bool),
            n_site_cols=n_cand,
            meta={"demand": dem},
        )
    rows = np.concatenate([r, np.arange(n_d), np.full(n_d, n_d)])
    cols = np.concatenate([j, n_cand + np.arange(n_d), n_cand + np.arange(n_d)])
    vals = np.concatenate([np.ones(r.size), -np.ones(n_d), w[dem]])
    mat = csc_matrix(rows, cols, vals, (n_d + 1, n_cand + n_d))
    return MipModel(
        sense=MINIMIZE,
        offset=0.0,
        col_cost=np.concatenate([cost.astype(np.float64), np.zeros(n_d)]),
        col_lower=np.zeros(n_cand + n_d),
        col_upper=np.ones(n_cand + n_d),
        row_lower=np.concatenate([np.zeros(n_d), [need]]),
        row_upper=np.full(n_d + 1, np.inf),
        matrix=mat,
        integer=np.concatenate([np.ones(n_cand, bool), np.zeros(n_d, bool)]),
        n_site_cols=n_cand,
        meta={"demand": dem},
    )


def capacitated_model(
    cov: sp.csr_array,
    w: FloatArray,
    active_dem: BoolArray,
    cap: FloatArray,
    k: int,
    offset: float,
) -> MipModel:
    """Capacitated maximal coverage with fractional assignment.

    Columns: ``x_j`` (binary sites) then ``s_ji >= 0`` for every covering pair with active
    demand (weight served by ``j`` at ``i``).  Rows: ``sum_j s_ji <= w_i`` (demand),
    ``sum_i s_ji - cap_j x_j <= 0`` (capacity), ``s_ji - min(w_i, cap_j) x_j <= 0`` (linking;
    tightens the LP relaxation) and ``sum x <= k``.  Objective ``max sum s_ji + offset``.
    """
    n_cand = cov.shape[0]
    j, i = _coo_parts(cov)
    keep = active_dem[i]
    j, i = j[keep], i[keep]
    n_s = j.size
    dem = np.flatnonzero(active_dem)
    row_of = np.full(cov.shape[1], -1, dtype=np.int64)
    row_of[dem] = np.arange(dem.size)
    n_d = dem.size
    scol = n_cand + np.arange(n_s)
    r_dem = row_of[i]
    r_cap = n_d + j
    r_link = n_d + n_cand + np.arange(n_s)
    r_card = n_d + n_cand + n_s
    link = np.minimum(w[i], cap[j])
    rows = np.concatenate(
        [r_dem, r_cap, r_link, np.arange(n_cand) + n_d, r_link, np.full(n_cand, r_card)]
    )
    cols = np.concatenate([scol, scol, scol, np.arange(n_cand), j, np.arange(n_cand)])
    vals = np.concatenate([np.ones(n_s), np.ones(n_s), np.ones(n_s), -cap, -link, np.ones(n_cand)])
    n_row = r_card + 1
    mat = csc_matrix(rows, cols, vals, (n_row, n_cand + n_s))
    return MipModel(
        sense=MAXIMIZE,
        offset=offset,
        col_cost=np.concatenate([np.zeros(n_cand), np.ones(n_s)]),
        col_lower=np.zeros(n_cand + n_s),
        col_upper=np.concatenate([np.ones(n_cand), link]),
        row_lower=np.full(n_row, -np.inf),
        row_upper=np.concatenate([w[dem], np.zeros(n_cand + n_s), [float(k)]]),
        matrix=mat,
        integer=np.concatenate([np.ones(n_cand, bool), np.zeros(n_s, bool)]),
        n_site_cols=n_cand,
        meta={"pair_site": j, "pair_demand": i},
    )


def transport_served(
    cov: sp.csr_array,
    w: FloatArray,
    active_dem: BoolArray,
    cap: FloatArray,
    sites: IntArray,
    *,
    time_limit_s: float,
) -> tuple[FloatArray, IntArray, IntArray, FloatArray]:
    """Best fractional assignment for the sites in order, one prefix at a time.

    Solves the transportation LP ``max sum s_ji`` (``sum_j s_ji <= w_i``,
    ``sum_i s_ji <= cap_j``) for the prefixes ``sites[:1], sites[:2], ...`` by re-opening one
    capacity row at a time on a warm-started HiGHS instance.

    Returns
    -------
    served, pair_site, pair_demand, flow
        Served weight of each prefix, and the flows of the full set.
    """
    sites = np.asarray(sites, dtype=np.int64)
    n_cand = cov.shape[0]
    chosen = np.zeros(n_cand, dtype=bool)
    chosen[sites] = True
    j, i = _coo_parts(cov)
    keep = active_dem[i] & chosen[j]
    j, i = j[keep], i[keep]
    if sites.size == 0 or j.size == 0:
        return np.zeros(sites.size), j, i, np.zeros(j.size)
    dem = np.unique(i)
    row_of = np.full(cov.shape[1], -1, dtype=np.int64)
    row_of[dem] = np.arange(dem.size)
    site_row = np.full(n_cand, -1, dtype=np.int64)
    site_row[sites] = dem.size + np.arange(sites.size)
    n_s = j.size
    rows = np.concatenate([row_of[i], site_row[j]])
    cols = np.concatenate([np.arange(n_s), np.arange(n_s)])
    n_row = dem.size + sites.size
    mat = csc_matrix(rows, cols, np.ones(2 * n_s), (n_row, n_s))
    h = new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("time_limit", float(max(time_limit_s, 1e-3)))
    upper = np.concatenate([w[dem], np.zeros(sites.size)])
    h.passModel(
        n_s,
        n_row,
        int(mat.nnz),
        1,
        MAXIMIZE,
        0.0,
        np.ones(n_s),
        np.zeros(n_s),
        np.minimum(w[i], cap[j]),
        np.full(n_row, -np.inf),
        upper,
        mat.indptr.astype(np.int32),
        mat.indices.astype(np.int32),
        mat.data,
        np.zeros(n_s, dtype=np.int32),
    )
    served = np.zeros(sites.size)
    x = np.zeros(n_s)
    for t, site in enumerate(sites):
        row = int(site_row[site])
        h.changeRowBounds(row, -np.inf, float(cap[site]))
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError("HiGHS could not solve the assignment LP within the time limit")
        served[t] = float(h.getInfo().objective_function_value)
        if t == sites.size - 1:
            x = np.asarray(h.getSolution().col_value, dtype=np.float64)
    return served, j, i, np.maximum(x, 0.0)
