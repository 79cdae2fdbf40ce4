"""The result of every siting model: :class:`Plan`."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from geosvc.locate import _audit

__all__ = ["Plan", "PlanHead", "Found", "relative_gap", "round_bound", "plan_status", "build_plan"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_OPT_TOL = 1e-9


def relative_gap(objective: float, bound: float) -> float:
    """Relative distance between an objective value and a proven bound.

    Parameters
    ----------
    objective
        Value of the solution found.
    bound
        Proven bound on the optimum (upper for maximisation, lower for minimisation).

    Returns
    -------
    float
        ``|bound - objective| / max(|bound|, 1e-12)``; ``inf`` when either value is not finite.
    """
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.inf
    return abs(bound - objective) / max(abs(bound), 1e-12)


@dataclass(frozen=True, eq=False)
class Plan:
    """A siting plan: which candidate sites, in what order, and how far from optimal.

    Attributes
    ----------
    sites
        Chosen candidate indices (rows of the input matrix) in order of decreasing marginal
        value: station 1 adds most.  Fixed (existing) facilities are not listed.  May hold fewer
        than ``k``/``p`` entries when further sites would add nothing.
    objective
        Objective value of the plan, in the model's own sense (covered weight including the
        fixed facilities' share for coverage models; total site cost for set cover; weighted
        assignment cost for p-median).
    bound
        Proven bound on the optimum: an upper bound for maximisation models, a lower bound for
        minimisation models.
    gap
        Relative optimality gap ``|bound - objective| / max(|bound|, 1e-12)``; 0 when proven
        optimal.
    status
        ``"optimal"`` (gap proven 0), ``"gap_limit"`` (solver stopped at ``mip_gap``),
        ``"time_limit"``, ``"heuristic"`` (greedy plan with a gap > 0) or
        ``"infeasible_partial"`` (the requested target was unreachable; the plan reaches what
        is reachable).
    solver
        ``"greedy"`` or ``"highs"``.
    runtime_s
        Wall-clock time of the whole call, in seconds.
    model
        ``"max_coverage"``, ``"set_cover"``, ``"p_median"`` or ``"capacitated_coverage"``.
    marginal
        Objective gain of each site of ``sites`` in order (weight added for coverage models,
        cost decrease for p-median, where ``inf`` marks a site without which some demand had
        no service at all).
    assignment
        For p-median and capacitated coverage: per demand, the index of the site serving it
        (the largest share for capacitated coverage), fixed facilities included, or -1.
        ``None`` for the other models.
    uncoverable
        Demand indices that no candidate and no fixed facility can serve.
    info
        Model-specific details (weights, bound source, solver statistics, ...).
    """

    sites: IntArray
    objective: float
    bound: float
    gap: float
    status: str
    solver: str
    runtime_s: float
    model: str
    marginal: FloatArray
    assignment: IntArray | None = None
    uncoverable: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sites(self) -> int:
        """Number of chosen sites."""
        return int(self.sites.size)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly summary (lists and plain numbers; non-finite numbers as None).

        Returns
        -------
        dict
            Every field except ``assignment``, with arrays converted to lists.
        """

        def clean(value: Any) -> Any:
            if isinstance(value, np.ndarray):
                return [clean(v) for v in value.tolist()]
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            if isinstance(value, dict):
                return {str(k): clean(v) for k, v in value.items()}
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                return None
            return value

        return {
            "model": self.model,
            "solver": self.solver,
            "status": self.status,
            "sites": clean(self.sites),
            "marginal": clean(self.marginal),
            "objective": clean(self.objective),
            "bound": clean(self.bound),
            "gap": clean(self.gap),
            "runtime_s": self.runtime_s,
            "uncoverable": clean(self.uncoverable),
            "info": clean(self.info),
        }

    def __repr__(self) -> str:
        return (
            f"Plan(model={self.model!r}, solver={self.solver!r}, status={self.status!r}, "
            f"n_sites={self.n_sites}, objective={self.objective:.6g}, bound={self.bound:.6g}, "
            f"gap={self.gap:.3%}, runtime_s={self.runtime_s:.3f})"
        )


def round_bound(bound: float, integral: bool, *, maximise: bool) -> float:
    """Tighten a proven bound on an objective that only takes integer values."""
    if not integral or not math.isfinite(bound):
        return bound
    slack = 1e-6 * max(1.0, abs(bound))
    return float(math.floor(bound + slack)) if maximise else float(math.ceil(bound - slack))


def plan_status(gap: float, solver_status: str | None) -> str:
    """A plan's status from its gap and what the solver said."""
    if gap <= _OPT_TOL:
        return "optimal"
    if solver_status is None:
        return "heuristic"
    if solver_status == "optimal":
        return "gap_limit"
    if solver_status == "time_limit":
        return "time_limit"
    return "stopped"


@dataclass(frozen=True)
class PlanHead:
    """What a model call fixes before it solves: which model, solver, clock, sense, info."""

    model: str
    solver: str
    t0: float
    maximise: bool
    uncoverable: IntArray
    info: dict[str, Any]


@dataclass(frozen=True)
class Found:
    """What a model found, before the audit: sites, objective and bound as the kernel says,
    the objective recomputed independently, and a combinatorial bound that needs no solver."""

    sites: IntArray
    marginal: FloatArray
    objective: float
    bound: float
    solver_status: str | None
    recomputed: float
    safe_bound: float
    assignment: IntArray | None = None
    status_override: str | None = None


def build_plan(head: PlanHead, found: Found) -> Plan:
    """Assemble a plan after auditing it.

    ``recomputed`` is the objective evaluated independently from the chosen sites
    (:mod:`geosvc.locate._audit`); the plan reports it, and a disagreement with the kernel's
    ``objective`` is recorded and marks the plan ``"unverified"``.  ``bound`` must lie on the
    right side of the objective (up to round-off); if it does not, it is replaced by
    ``safe_bound`` (a combinatorial bound that needs no solver) and the failure is recorded.
    """
    info = dict(head.info)
    maximise = head.maximise
    objective, bound, recomputed = found.objective, found.bound, found.recomputed
    solver_status, safe_bound = found.solver_status, found.safe_bound
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
    status = plan_status(gap, solver_status)
    if not verified:
        status = "unverified"
    info["solve_status"] = status
    if found.status_override is not None:
        status = found.status_override
    return Plan(
        sites=np.asarray(found.sites, dtype=np.int64),
        objective=float(objective),
        bound=float(bound),
        gap=float(gap),
        status=status,
        solver="greedy" if head.solver == "greedy" else "highs",
        runtime_s=time.perf_counter() - head.t0,
        model=head.model,
        marginal=np.asarray(found.marginal, dtype=np.float64),
        assignment=found.assignment,
        uncoverable=np.asarray(head.uncoverable, dtype=np.int64),
        info=info,
    )
