"""The result of every siting model: :class:`Plan`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Plan", "relative_gap"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


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
