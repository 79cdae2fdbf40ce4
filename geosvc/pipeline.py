"""Config-free runs from inputs to outputs: load inputs, run steps, write files.

The CLI (``geosvc.cli``) and notebooks call these functions; they only orchestrate the
library modules and write results through :mod:`geosvc.io` (atomic writes).  Reading the
inputs lives in :mod:`geosvc.inputs` (re-exported here: :func:`load_inputs`,
:class:`InputSpec`, :class:`Inputs`, the samples); :func:`step` in :mod:`geosvc.resources`.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import pandas as pd

from geosvc import diagnostics, resources
from geosvc.coverage import CoverageResult, analyse_coverage
from geosvc.inputs import Inputs, InputSpec, district_inputs, helsinki_inputs, load_inputs
from geosvc.io import write_gpkg, write_json
from geosvc.network import CompiledNetwork
from geosvc.resources import step
from geosvc.standards import Profile, load_profile

__all__ = [
    "InputSpec",
    "Inputs",
    "RunOptions",
    "SitingOptions",
    "run_all",
    "load_inputs",
    "district_inputs",
    "helsinki_inputs",
    "run_coverage",
    "write_coverage",
    "write_coverage_layers",
    "step",
    "attach_resources",
    "versions",
    "network_summary",
]

log = logging.getLogger(__name__)


def versions() -> dict[str, str]:
    """Versions of geosvc, Python and the key libraries (for ``summary.json``)."""
    out = {"python": platform.python_version()}
    for pkg in ("geosvc", "numpy", "scipy", "shapely", "geopandas", "networkx", "osmnx",
                "pyrosm", "highspy", "numba", "folium"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def run_coverage(inputs: Inputs, *, profile: Profile | None = None,
                 categories: list[str] | None = None,
                 radius_method: str = "profile") -> CoverageResult:
    """Coverage for every category on the inputs (see :func:`analyse_coverage`)."""
    prof = profile or load_profile()
    with step("walking-time coverage (one network search per category and sub-type)"):
        return analyse_coverage(inputs.net, inputs.households, inputs.facilities, profile=prof,
                                categories=categories, compounds=inputs.compounds,
                                areas=inputs.areas, radius_method=radius_method,
                                households_kw=inputs.household_columns)


def write_coverage(result: CoverageResult, inputs: Inputs, out_dir: str | Path, *,
                   started: float, extra: Mapping[str, Any] | None = None,
                   write_summary: bool = True) -> dict[str, Any]:
    """Write ``households.gpkg``, ``areas.gpkg`` and ``summary.json``; return the summary."""
    out = Path(out_dir)
    write_coverage_layers(result, out)
    summary = build_summary(result, inputs, started=started, extra=extra)
    if write_summary:
        write_json(summary, out / "summary.json")
    return summary


def write_coverage_layers(result: CoverageResult, out_dir: Path) -> None:
    """Write ``households.gpkg`` and (when there are areas) ``areas.gpkg`` into ``out_dir``.

    Both carry QGIS styles (:func:`geosvc.qgis.style_outputs`): they open styled in QGIS.
    """
    from geosvc.qgis import style_outputs

    out_dir.mkdir(parents=True, exist_ok=True)
    with step("writing households.gpkg"):
        write_gpkg({"households": result.households}, out_dir / "households.gpkg")
    if result.areas:
        with step("writing areas.gpkg"):
            write_gpkg(result.areas, out_dir / "areas.gpkg")
    style_outputs(out_dir, list(result.categories), result.profile)


def build_summary(result: CoverageResult, inputs: Inputs, *, started: float,
                  extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``summary.json`` content: results, inputs, profile, versions and run time."""
    summary = dict(result.summary)
    summary["run"] = {
        "name": inputs.name,
        "inputs": inputs.sources,
        "network": {"nodes": inputs.net.n_nodes, "edges": inputs.net.n_edges,
                    "components": inputs.net.n_components, "crs": inputs.net.crs.to_string()},
        "versions": versions(),
        "run_time_s": round(time.perf_counter() - started, 2),
    }
    attach_resources(summary)
    summary["network"] = network_summary(inputs.net)
    summary["profile_values"] = result.profile.to_dict()
    summary["facilities"] = {
        "rows": int(len(result.facilities)),
        "snapped": int((result.facilities["snap_status"] == "ok").sum()),
        "by_category": result.facilities.groupby("category").size().astype(int).to_dict(),
    }
    for level, frame in result.areas.items():
        summary.setdefault("areas", {})[level] = {"rows": int(len(frame))}
    if extra:
        summary.update(extra)
    diag = diagnostics.active()
    summary["warnings"] = diag.to_list() if diag is not None else []
    return summary


def attach_resources(summary: dict[str, Any]) -> dict[str, Any]:
    """Put the run's steps (time, peak memory), peak and memory limit into ``summary``."""
    steps = resources.active_steps()
    limit = resources.active_limit()
    run = summary.setdefault("run", {})
    run["memory_limit_mb"] = None if limit is None else round(limit / 2**20, 1)
    run["peak_rss_mb"] = round(max(steps.peak_rss_mb if steps else 0.0,
                                   resources.peak_rss_bytes() / 2**20), 1)
    summary["steps"] = steps.to_list() if steps is not None else []
    return summary


def network_summary(net: CompiledNetwork) -> dict[str, Any]:
    """The ``summary.json["network"]`` block: how the roads were read and joined.

    ``connectivity`` (the mode used), the reader's counts (line ends shared, crossings
    found, junctions added, self-crossings, clipped ways, ...) and what the components
    option dropped.
    """
    report = dict(net.graph_attrs.get("network_report", {}))
    out: dict[str, Any] = {"source": net.graph_attrs.get("source"), **report,
                           "nodes": net.n_nodes, "edges": net.n_edges,
                           "components": net.n_components,
                           "length_km": round(float(net.edge_length_m.sum()) / 1000.0, 3)}
    if "components_report" in net.graph_attrs:
        out["components_filter"] = dict(net.graph_attrs["components_report"])
    return out


# ---------------------------------------------------------------------------
# The whole analysis: one entry point the CLI, the config and the demo all use
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SitingOptions:
    """How new stations are proposed (see :func:`geosvc.siting.propose_sites`)."""

    model: str = "max-coverage"
    k: int = 10
    target: float = 0.95
    solver: Literal["greedy", "exact"] = "greedy"
    candidates_path: Path | None = None
    candidates_layer: str | None = None
    candidates_id: str | None = None
    candidates_only: bool = False
    capacity_column: str | None = None

    def candidate_kwargs(self) -> dict[str, Any]:
        """The candidate options as keyword arguments of ``propose_sites``."""
        return {"candidates_path": self.candidates_path,
                "candidates_layer": self.candidates_layer,
                "candidates_id": self.candidates_id, "candidates_only": self.candidates_only,
                "capacity_column": self.capacity_column}


@dataclass(frozen=True)
class RunOptions:
    """Everything :func:`run_all` needs besides the inputs.

    Attributes
    ----------
    out_dir
        Output folder (created).
    profile
        Standards profile (default: :func:`geosvc.standards.load_profile`).
    lang
        Language of the map, figures and reports: ``zh`` or ``en``.
    categories
        Categories to analyse (default: the profile's).
    thresholds_min
        Walking times of the service circles; each is a layer of the map.
    radius_method
        ``profile`` or ``gb50180`` (see :func:`geosvc.coverage.analyse_coverage`).
    basemap
        Map tiles (``osm``, ``gaode`` or a ``{z}/{x}/{y}`` tile URL; default none: offline).
    siting
        Siting model and candidates.
    """

    out_dir: Path
    profile: Profile | None = None
    lang: str = "zh"
    categories: tuple[str, ...] | None = None
    thresholds_min: tuple[float, ...] = (5.0, 10.0, 15.0)
    radius_method: str = "profile"
    basemap: str | None = None
    siting: SitingOptions = field(default_factory=SitingOptions)


def run_all(inputs: Inputs, options: RunOptions, *, started: float | None = None
            ) -> dict[str, Any]:
    """Coverage, circles, siting, map, figures and reports for ``inputs``; writes them all.

    Every step is timed with its peak resident memory (``summary.json["steps"]``); a memory
    limit opened with :func:`geosvc.resources.memory_limit` is respected by the steps.

    Returns
    -------
    dict
        The summary, also written to ``summary.json``.
    """
    t0 = started if started is not None else time.perf_counter()
    out_dir = Path(options.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prof = options.profile or load_profile()
    with resources.collect_steps():
        cov = run_coverage(inputs, profile=prof,
                           categories=None if options.categories is None else
                           list(options.categories),
                           radius_method=options.radius_method)
        cats = list(cov.categories)
        write_coverage_layers(cov, out_dir)
        per_cat, agreement = _circles(inputs, cov, prof, cats, options.thresholds_min, out_dir)
        plans = _siting(inputs, cov, cats, out_dir, options.siting)
        with step("QGIS styles in the GeoPackages"):
            from geosvc.qgis import style_outputs

            style_outputs(out_dir, cats, prof, lang=options.lang)
        figures = _map_and_figures(inputs, cov, prof, plans, per_cat, cats, options)
        summary = build_summary(cov, inputs, started=t0, extra={
            "circles": {"agreement": agreement,
                        "category_area_km2": {f"{r.category}@{r.threshold_min:g}min":
                                              round(float(r.area_m2) / 1e6, 3)
                                              for r in per_cat.itertuples()}},
            "siting": {c: p.to_dict() for c, p in plans.items()},
            "outputs": sorted(str(p.name) for p in out_dir.iterdir()
                              if not p.name.startswith(".")),
            "figures": [p.name for p in figures],
        })
        _reports(summary, cov, plans, figures, out_dir, lang=options.lang)
        summary["outputs"] = sorted({*summary["outputs"], "report.xlsx", "report.md",
                                     "summary.json"})
        attach_resources(summary)  # the report step too
        summary["run"]["run_time_s"] = round(time.perf_counter() - t0, 2)
        write_json(summary, out_dir / "summary.json")
    log.info("run finished in %.1f s; peak resident memory %s", summary["run"]["run_time_s"],
             resources.format_bytes(summary["run"]["peak_rss_mb"] * 2**20))
    return summary


def _reports(summary: dict[str, Any], cov: CoverageResult, plans: dict[str, Any],
             figures: list[Path], out_dir: Path, *, lang: str) -> None:
    from geosvc.report import write_excel_report, write_markdown_report

    with step("report.xlsx and report.md"):
        station_rows = [p.stations for p in plans.values() if len(p.stations)]
        all_stations = pd.concat(station_rows, ignore_index=True) if station_rows else None
        write_excel_report(out_dir / "report.xlsx", summary, areas=cov.areas,
                           stations=all_stations, figures=figures, lang=lang)
        write_markdown_report(out_dir / "report.md", summary, areas=cov.areas, lang=lang)


def _circles(inputs: Inputs, cov: CoverageResult, prof: Profile, cats: list[str],
             thresholds_min: tuple[float, ...], out_dir: Path
             ) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    from geosvc.circles import circle_agreement, service_circles, write_service_circles

    with step("service-circle polygons (5/10/15 min per facility and category)"):
        per_fac, per_cat = service_circles(inputs.net, cov.facilities, prof,
                                           thresholds_min=thresholds_min, categories=cats,
                                           compounds=inputs.compounds)
    with step("writing service_circles.gpkg"):
        write_service_circles(per_fac, per_cat, out_dir / "service_circles.gpkg")
    with step("households inside the circle polygons (agreement check)"):
        agreement = {c: circle_agreement(cov.households, per_cat, c,
                                         threshold_min=prof.category(c).threshold_min,
                                         tolerance_m=prof.access_tolerance_m)
                     for c in cats if prof.category(c).threshold_min in thresholds_min}
    return per_cat, agreement


def _siting(inputs: Inputs, cov: CoverageResult, cats: list[str], out_dir: Path,
            opts: SitingOptions) -> dict[str, Any]:
    from geosvc.siting import propose_sites, write_siting

    plans = {}
    for c in cats:
        with step(f"siting new {c} stations ({opts.model}, k={opts.k})"):
            plans[c] = propose_sites(inputs.net, cov, category=c, model=opts.model, k=opts.k,
                                     target=opts.target, solver=opts.solver,
                                     **opts.candidate_kwargs())
            log.info("%s", plans[c].describe())
    with step("writing the siting plans"):
        write_siting(plans, out_dir)
    return plans


def _map_and_figures(inputs: Inputs, cov: CoverageResult, prof: Profile, plans: dict[str, Any],
                     circles: gpd.GeoDataFrame, cats: list[str], options: RunOptions
                     ) -> list[Path]:
    from geosvc.viz import coverage_map, write_figures, write_map

    out_dir = Path(options.out_dir)
    stations = {c: p.stations for c, p in plans.items()}
    with step("map.html"):  # every threshold is its own layer on the map
        m = coverage_map(cov.households, areas=cov.areas, facilities=cov.facilities,
                         circles=circles, stations=stations, profile=prof, lang=options.lang,
                         basemap=options.basemap, streets=inputs.net, title=inputs.name)
        write_map(m, out_dir / "map.html")
    curves = pd.concat([p.curve for p in plans.values()], ignore_index=True)
    # figures: the outermost circle (the map has every threshold)
    top = circles[circles["threshold_min"] == circles["threshold_min"].max()]
    with step("figures"):
        return write_figures(cov.households, categories=cats, areas=cov.areas,
                             facilities=cov.facilities, streets=inputs.net,
                             circles=top, stations=stations, curves=curves,
                             profile=prof, lang=options.lang, out_dir=out_dir)
