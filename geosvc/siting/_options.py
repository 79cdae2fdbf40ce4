"""The options of :func:`geosvc.siting.propose_sites`, in one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict

import geopandas as gpd

from geosvc.siting._candidates import MAX_GENERATED_CANDIDATES

__all__ = ["MODELS", "ProposeKwargs", "ProposeOptions"]

MODELS = ("max-coverage", "set-cover", "p-median", "capacitated")


@dataclass(frozen=True)
class ProposeOptions:
    """How :func:`~geosvc.siting.propose_sites` sites one category.

    Attributes
    ----------
    model
        ``max-coverage`` (k stations, most weight covered), ``set-cover`` (fewest stations
        to reach ``target`` of the weight), ``p-median`` (k stations, least total weighted
        walking distance) or ``capacitated`` (k stations of ``station_floor_area_m2`` each,
        serving at most floor area / norm x 100 households).
    k, target, solver, time_limit_s
        Model options; ``solver`` is ``greedy`` (with a proven bound) or ``exact`` (HiGHS).
    candidates, candidates_path, candidates_layer, candidates_id
        The planner's candidate sites, as a frame or a file (layer, id column).  They keep
        their id (``candidate_id``), every column and their original geometry; the point
        on the street they are reached from is in ``snapped_x``/``snapped_y``
        (``snap_distance_m`` away).
    candidates_only
        Choose among the planner's candidates only (no generated sites).
    capacity_column
        Capacitated model: column of the planner's candidates with each site's capacity in
        households (generated sites get the ``station_floor_area_m2`` capacity).
    spacing_m, n_clusters, seed
        Generated candidates, added unless ``candidates_only``: network points every
        ``spacing_m``, ``n_clusters`` k-means centres of the uncovered demand (``seed``).
    max_candidates
        At most this many generated street points: those with no open demand within the
        reach in a straight line are dropped (they cannot cover anything new), the rest
        thinned to one per grid cell (:func:`thin_network_candidates`); counts and cell size
        in ``info["candidate_generation"]``.  The planner's sites are never dropped.
    station_floor_area_m2
        Floor area of a new station (the capacitated model's capacity).
    """

    model: str = "max-coverage"
    k: int = 10
    target: float = 0.95
    solver: Literal["greedy", "exact"] = "greedy"
    candidates: gpd.GeoDataFrame | None = None
    candidates_path: str | Path | None = None
    candidates_layer: str | None = None
    candidates_id: str | None = None
    candidates_only: bool = False
    capacity_column: str | None = None
    spacing_m: float = 250.0
    n_clusters: int = 40
    max_candidates: int = MAX_GENERATED_CANDIDATES
    station_floor_area_m2: float = 300.0
    time_limit_s: float = 60.0
    seed: int = 0


class ProposeKwargs(TypedDict, total=False):
    """The fields of :class:`ProposeOptions` as keyword arguments (any subset)."""

    model: str
    k: int
    target: float
    solver: Literal["greedy", "exact"]
    candidates: gpd.GeoDataFrame | None
    candidates_path: str | Path | None
    candidates_layer: str | None
    candidates_id: str | None
    candidates_only: bool
    capacity_column: str | None
    spacing_m: float
    n_clusters: int
    max_candidates: int
    station_floor_area_m2: float
    time_limit_s: float
    seed: int
