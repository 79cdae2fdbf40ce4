"""geosvc: facility siting and 15-minute service-circle analysis over street networks.

Modules (one concept each): :mod:`~geosvc.network` (readers, noding, compiled arrays),
:mod:`~geosvc.access` (snapping, nearest-facility distances, coverage relations),
:mod:`~geosvc.coverage` (verdicts, per-area results), :mod:`~geosvc.circles` (service-area
polygons), :mod:`~geosvc.locate` (siting models and solvers), :mod:`~geosvc.siting`
(candidates and ranked proposals on the map), :mod:`~geosvc.viz` (maps and figures),
:mod:`~geosvc.standards` (planning profiles), :mod:`~geosvc.datasets` (bundled samples),
:mod:`~geosvc.crs` (WGS-84 / GCJ-02 / BD-09), :mod:`~geosvc.demand`,
:mod:`~geosvc.facilities`, :mod:`~geosvc.pipeline`, :mod:`~geosvc.resources` (step times,
peak memory, the memory budget), :mod:`~geosvc.progress` (progress bars, log output),
:mod:`~geosvc.qgis` (layer styles in the GeoPackages), :mod:`~geosvc.compare` (two runs),
:mod:`~geosvc.street_times` (minutes on the graph's nodes and edges), :mod:`~geosvc.config`,
:mod:`~geosvc.cli`.

Submodules and entry points load on first use, so ``import geosvc`` stays cheap and has no
side effects.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_MODULES = ("access", "circles", "cli", "compare", "config", "coverage", "crs", "datasets",
            "demand", "demo", "facilities", "io", "locate", "network", "pipeline", "progress",
            "qgis", "report", "resources", "settings", "siting", "standards", "street_times",
            "viz")
_ENTRY_POINTS = {
    "load_profile": "standards",
    "read_graph": "network",
    "graph_from_lines": "network",
    "compile_network": "network",
    "snap_points": "access",
    "nearest_facility": "access",
    "analyse_coverage": "coverage",
    "service_circles": "circles",
    "propose_sites": "siting",
    "coverage_map": "viz",
    "street_minutes": "street_times",
    "compare_runs": "compare",
    "load_district": "datasets",
    "get_path": "datasets",
}

__all__ = ["__version__", *_MODULES, *_ENTRY_POINTS]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"geosvc.{name}")
    if name in _ENTRY_POINTS:
        return getattr(importlib.import_module(f"geosvc.{_ENTRY_POINTS[name]}"), name)
    raise AttributeError(f"module 'geosvc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
