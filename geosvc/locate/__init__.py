"""Siting: where new service stations should go, with a proof of how far from optimal.

Array entry points (a candidate x demand matrix in, a :class:`Plan` out):

- :func:`max_coverage` -- ``k`` sites covering the most weight;
- :func:`set_cover` -- fewest/cheapest sites reaching a coverage target;
- :func:`p_median` -- ``p`` sites minimising the weighted travel cost;
- :func:`capacitated_coverage` -- ``k`` sites with capacities, maximising served weight;
- :func:`read_orlib_pmed` -- OR-Library p-median instances for benchmarking;
- :func:`lagrangian_max_coverage` -- an upper bound of max coverage cheap at city scale.

Every model has a ``solver="greedy"`` path (lazy greedy with a proven bound) and a
``solver="exact"`` path (HiGHS integer programme).
"""

from __future__ import annotations

from geosvc.locate._capacitated import capacitated_coverage
from geosvc.locate._cover_bound import lagrangian_max_coverage
from geosvc.locate._max_coverage import max_coverage
from geosvc.locate._orlib import read_orlib_pmed
from geosvc.locate._plan import Plan
from geosvc.locate._pmedian import p_median
from geosvc.locate._set_cover import set_cover

__all__ = [
    "Plan",
    "max_coverage",
    "set_cover",
    "p_median",
    "capacitated_coverage",
    "read_orlib_pmed",
    "lagrangian_max_coverage",
]
