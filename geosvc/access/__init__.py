"""Access: snapping to the network, nearest-facility times and coverage relations."""

from __future__ import annotations

from geosvc.access._nearest import NearestResult, nearest_facility, node_distances
from geosvc.access._pairs import (
    RELATION_BYTES_PER_PAIR,
    Relation,
    coverage_matrix,
    coverage_relation,
    mean_pairs_per_source,
    pairs_within,
)
from geosvc.access._snap import (
    SNAP_INVALID,
    SNAP_OFF_NETWORK,
    SNAP_OK,
    Anchors,
    compound_ids,
    point_xy,
    points_in_compounds,
    snap_points,
)

__all__ = [
    "SNAP_INVALID",
    "SNAP_OFF_NETWORK",
    "SNAP_OK",
    "Anchors",
    "NearestResult",
    "compound_ids",
    "point_xy",
    "RELATION_BYTES_PER_PAIR",
    "Relation",
    "coverage_matrix",
    "coverage_relation",
    "mean_pairs_per_source",
    "pairs_within",
    "nearest_facility",
    "node_distances",
    "points_in_compounds",
    "snap_points",
]
