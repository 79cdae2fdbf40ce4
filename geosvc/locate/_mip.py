"""HiGHS solves of the siting models, audited before anything of them is used."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from geosvc.locate import _audit, _highs

__all__ = ["LP_BOUND_MAX_NNZ", "solve_mip", "mip_info", "lp_bound"]

logger = logging.getLogger("geosvc.locate")

FloatArray = npt.NDArray[np.float64]

#: Greedy plans of the coverage models get an LP-relaxation bound only when the (aggregated) model
#: has at most this many nonzeros; above it the cheaper combinatorial bounds are used alone.
LP_BOUND_MAX_NNZ = 500_000


def solve_mip(
    model: _highs.MipModel,
    *,
    time_limit_s: float,
    mip_gap: float,
    start: FloatArray | None,
    info: dict[str, Any],
    heuristic_effort: float | None = None,
    mip_settings: str = "highs",
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
        mip_settings=mip_settings,
    )
    problem = _audit.mip_problem(model, res)
    if problem and start is not None:
        logger.info("dropping the MIP start: %s", problem)
        info["warm_start"] = f"dropped ({problem})"
        left = max(time_limit_s - (time.perf_counter() - t0), 1.0)
        res = _highs.solve(model, relax=False, time_limit_s=left, mip_gap=mip_gap,
                           mip_settings=mip_settings)
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


def mip_info(res: _highs.MipResult) -> dict[str, Any]:
    return {
        "highs_status": res.model_status,
        "highs_objective": res.objective,
        "highs_bound": res.bound,
        "highs_time_s": res.runtime_s,
        "mip_nodes": res.nodes,
    }


def lp_bound(
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
