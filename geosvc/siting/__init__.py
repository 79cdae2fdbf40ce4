"""Siting on the map: candidates, the coverage relation, and ranked station proposals.

The optimisation itself is array-level (:mod:`geosvc.locate`); this package turns a coverage
run into its inputs and its output back into ranked, mapped stations with the households
and elderly each one newly covers:

* ``_candidates``: candidate sites (street points, demand clusters, the planner's own),
  thinning to a stated maximum, snapping onto the street;
* ``_relation``: demand grouped on network anchors and the sparse candidate x demand
  relation within the walking threshold, planned against the memory budget;
* ``_solve``: the model solved over the relation and the plan ranked on the map;
* ``_options``: :class:`ProposeOptions`, the options of :func:`propose_sites`;
* ``_propose``: :func:`propose_sites` (step by step) and :func:`write_siting`.
"""

from __future__ import annotations

from geosvc import resources  # noqa: F401  (geosvc.siting.resources: the budget of the relation)
from geosvc.siting._candidates import (
    MAX_GENERATED_CANDIDATES,
    candidate_sites,
    prepare_candidates,
    read_candidates,
    thin_network_candidates,
)
from geosvc.siting._options import MODELS, ProposeOptions
from geosvc.siting._propose import SitingPlan, propose_sites, write_siting
from geosvc.siting._relation import aggregate_demand

__all__ = ["SitingPlan", "candidate_sites", "read_candidates", "prepare_candidates",
           "thin_network_candidates", "MAX_GENERATED_CANDIDATES",
           "aggregate_demand", "propose_sites", "write_siting", "MODELS", "ProposeOptions"]
