"""Service-circle coverage: per-household verdicts, radius comparison, per-area results.

For every household and category: walking minutes to the nearest facility, which one,
and a status (``covered``, ``uncovered``, ``unreachable``, ``off_network``, ``invalid``).
Convenience coverage is also reported per sub-type and for "every required basic type
within the threshold" (the MOFCOM definition).  Counts always add up to the input rows.

Modules: ``_verdicts`` (:func:`analyse_coverage`), ``_summary`` (:func:`status_counts` and
``summary.json``'s figures), ``_areas`` (:func:`aggregate_areas`), ``_access_index``
(:func:`two_step_fca`).
"""

from __future__ import annotations

from geosvc._schema import STATUSES
from geosvc.coverage._access_index import two_step_fca
from geosvc.coverage._areas import aggregate_areas
from geosvc.coverage._summary import status_counts
from geosvc.coverage._verdicts import CoverageResult, analyse_coverage

__all__ = [
    "STATUSES",
    "CoverageResult",
    "analyse_coverage",
    "aggregate_areas",
    "two_step_fca",
    "status_counts",
]
