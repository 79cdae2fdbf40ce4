"""The output vocabulary: statuses, snap labels, column names and the one coverage rule.

Every module that writes or reads a result column builds its name here, so the scheme
documented in the README (``status_<category>``, ``time_<category>_min``,
``<category>_coverage_rate`` …) lives in one place, and "covered" means the same thing in
the verdicts (metres), the subtype reductions and the circle check.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = [
    "STATUSES",
    "NOT_COVERED",
    "VERDICT_STATUSES",
    "SNAP_LABELS",
    "COVER_TOLERANCE_M",
    "covered",
    "snap_labels",
    "status_col",
    "time_col",
    "time_any_col",
    "nearest_id_col",
    "limiting_subtype_col",
    "missing_subtypes_col",
    "access_index_col",
    "radius_covered_col",
    "radius_only_col",
    "beyond_halo_col",
    "unresolved_col",
    "area_col",
]

STATUSES = ("covered", "uncovered", "unreachable", "off_network", "invalid")
"""Household status per category, in categorical code order (0 = covered … 4 = invalid)."""
NOT_COVERED = ("uncovered", "unreachable", "off_network")
"""Valid households that are not covered (the ones a plan should reach)."""
VERDICT_STATUSES = ("covered", "uncovered")
"""Statuses decided by a walking distance (on the network, some facility reachable or none)."""
SNAP_LABELS = ("ok", "off_network", "invalid")
"""``snap_status`` of a facility, indexed by the access module's ``SNAP_*`` codes."""

COVER_TOLERANCE_M = 1e-6
"""Slack (metres) under which a walk counts as within reach: float noise, not distance."""


def covered(dist_m: np.ndarray | float, reach_m: np.ndarray | float) -> np.ndarray:
    """The coverage rule: a walk of ``dist_m`` is within ``reach_m`` (NaN/inf: not covered).

    Parameters
    ----------
    dist_m
        Walking distances (network + access legs), metres.
    reach_m
        Reach of the category (``threshold_min x 60 x speed_m_s``), metres.

    Returns
    -------
    numpy.ndarray
        Boolean array, ``dist_m <= reach_m + COVER_TOLERANCE_M``.
    """
    with np.errstate(invalid="ignore"):
        return np.asarray(np.asarray(dist_m) <= np.asarray(reach_m) + COVER_TOLERANCE_M)


def snap_labels(codes: np.ndarray) -> np.ndarray:
    """``snap_status`` text per ``SNAP_*`` code (0 ok, 1 off_network, 2 invalid)."""
    return np.asarray(SNAP_LABELS, dtype=object)[np.asarray(codes, dtype=np.int64)]


def status_col(category: str, subtype: str | None = None) -> str:
    """``status_<category>`` (or ``status_<category>_<subtype>``)."""
    return f"status_{category}" if subtype is None else f"status_{category}_{subtype}"


def time_col(category: str, subtype: str | None = None) -> str:
    """``time_<category>_min`` (or ``time_<category>_<subtype>_min``): walking minutes."""
    return f"time_{category}_min" if subtype is None else f"time_{category}_{subtype}_min"


def time_any_col(category: str) -> str:
    """``time_<category>_any_min``: minutes to the nearest facility of any subtype."""
    return f"time_{category}_any_min"


def nearest_id_col(category: str) -> str:
    """``nearest_<category>_id``."""
    return f"nearest_{category}_id"


def limiting_subtype_col(category: str) -> str:
    """``limiting_<category>_subtype``: the required subtype farthest away."""
    return f"limiting_{category}_subtype"


def missing_subtypes_col(category: str) -> str:
    """``missing_<category>_subtypes``: required subtypes out of reach."""
    return f"missing_{category}_subtypes"


def access_index_col(category: str) -> str:
    """``access_index_<category>``: the 2SFCA index (m² floor area per household)."""
    return f"access_index_{category}"


def radius_covered_col(category: str) -> str:
    """``radius_covered_<category>``: within the straight-line radius of a facility."""
    return f"radius_covered_{category}"


def radius_only_col(category: str) -> str:
    """``radius_only_<category>``: inside the radius but not covered on foot."""
    return f"radius_only_{category}"


def beyond_halo_col(category: str) -> str:
    """``beyond_halo_<category>`` (batch runs): the walk may leave the partition's halo."""
    return f"beyond_halo_{category}"


def unresolved_col(category: str) -> str:
    """``unresolved_<category>`` (batch runs): status the partition could not prove."""
    return f"unresolved_{category}"


AreaMeasure = Literal[
    "coverage_rate", "elderly_uncovered", "radius_only_households", "facilities",
    "floor_area_m2", "floor_area_per_100hh_m2", "norm_per_100hh_m2", "shortfall_m2",
    "access_index_mean",
    "households_covered", "households_uncovered", "households_unreachable",
    "households_off_network", "households_invalid",
]


def area_col(category: str, measure: AreaMeasure | str) -> str:
    """``<category>_<measure>`` of the area tables (e.g. ``elderly_care_coverage_rate``)."""
    return f"{category}_{measure}"
