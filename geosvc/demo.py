"""``geosvc demo``: the whole analysis on the embedded default district (or Helsinki).

Coverage for both categories, service circles, a siting plan for each category, the map,
the figures and ``summary.json``, all written to one folder.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd

from geosvc import resources
from geosvc.coverage import CoverageResult
from geosvc.pipeline import (
    Inputs,
    attach_resources,
    build_summary,
    district_inputs,
    helsinki_inputs,
    run_coverage,
    step,
)
from geosvc.standards import Profile, load_profile

__all__ = ["run_demo", "run_analysis"]

log = logging.getLogger(__name__)


def run_demo(*, out_dir: str | Path = "data/processed/demo", sample: str = "district",
             lang: str = "zh", seed: int = 2023, k: int = 10) -> dict[str, Any]:
    """Run the demo on a bundled sample and write every output; returns the summary."""
    from geosvc._errors import InputError

    started = time.perf_counter()
    prof = load_profile()
    if sample not in ("district", "helsinki"):
        raise InputError(f"unknown sample {sample!r}; use 'district' or 'helsinki'")
    with resources.collect_steps():
        inputs = district_inputs(seed=seed) if sample == "district" else \
            helsinki_inputs(profile=prof)
        return run_analysis(inputs, prof, out_dir=Path(out_dir), lang=lang, k=k,
                            started=started)


def run_analysis(inputs: Inputs, prof: Profile, *, out_dir: Path, lang: str = "zh",
                 k: int = 10, model: str = "max-coverage", target: float = 0.95,
                 solver: Literal["greedy", "exact"] = "greedy", categories: list[str] | None = None,
                 thresholds_min: tuple[float, ...] = (5.0, 10.0, 15.0),
                 started: float | None = None, basemap: str | None = None,
                 radius_method: str = "profile",
                 siting_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Coverage, circles, siting, map and figures for ``inputs``; writes all outputs.

    ``siting_options`` are passed on to :func:`geosvc.siting.propose_sites` (candidates).

    Every step is timed with its peak resident memory (``summary.json["steps"]``); a memory
    limit opened with :func:`geosvc.resources.memory_limit` is respected by the steps.
    """
    from geosvc.io import write_json

    t0 = started if started is not None else time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    with resources.collect_steps():
        cov = run_coverage(inputs, profile=prof, categories=categories,
                           radius_method=radius_method)
        cats = list(cov.categories)
        _write_coverage_layers(cov, out_dir)
        per_cat, agreement = _circles(inputs, cov, prof, cats, thresholds_min, out_dir)
        plans = _siting(inputs, cov, cats, out_dir, model=model, k=k, target=target,
                        solver=solver, options=siting_options)
        circles_15 = per_cat[per_cat["threshold_min"] == max(thresholds_min)]
        figures = _map_and_figures(inputs, cov, prof, plans, circles_15, cats, out_dir,
                                   lang=lang, basemap=basemap)
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
        _reports(summary, cov, plans, figures, out_dir, lang=lang)
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
    import pandas as pd

    from geosvc.report import write_excel_report, write_markdown_report

    with step("report.xlsx and report.md"):
        station_rows = [p.stations for p in plans.values() if len(p.stations)]
        all_stations = pd.concat(station_rows, ignore_index=True) if station_rows else None
        write_excel_report(out_dir / "report.xlsx", summary, areas=cov.areas,
                           stations=all_stations, figures=figures, lang=lang)
        write_markdown_report(out_dir / "report.md", summary, areas=cov.areas, lang=lang)


def _write_coverage_layers(cov: CoverageResult, out_dir: Path) -> None:
    from geosvc.io import write_gpkg

    with step("writing households.gpkg"):
        write_gpkg({"households": cov.households}, out_dir / "households.gpkg")
    if cov.areas:
        with step("writing areas.gpkg"):
            write_gpkg(cov.areas, out_dir / "areas.gpkg")


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


def _siting(inputs: Inputs, cov: CoverageResult, cats: list[str], out_dir: Path, *,
            model: str, k: int, target: float, solver: Literal["greedy", "exact"],
            options: dict[str, Any] | None = None) -> dict[str, Any]:
    from geosvc.siting import propose_sites, write_siting

    plans = {}
    for c in cats:
        with step(f"siting new {c} stations ({model}, k={k})"):
            plans[c] = propose_sites(inputs.net, cov, category=c, model=model, k=k,
                                     target=target, solver=solver, **(options or {}))
            log.info("%s", plans[c].describe())
    with step("writing the siting plans"):
        write_siting(plans, out_dir)
    return plans


def _map_and_figures(inputs: Inputs, cov: CoverageResult, prof: Profile, plans: dict[str, Any],
                     circles_15: gpd.GeoDataFrame, cats: list[str], out_dir: Path, *,
                     lang: str, basemap: str | None) -> list[Path]:
    import pandas as pd

    from geosvc.viz import coverage_map, write_figures, write_map

    stations = {c: p.stations for c, p in plans.items()}
    with step("map.html"):
        m = coverage_map(cov.households, areas=cov.areas, facilities=cov.facilities,
                         circles=circles_15, stations=stations, profile=prof, lang=lang,
                         basemap=basemap, title=inputs.name)
        write_map(m, out_dir / "map.html")
    curves = pd.concat([p.curve for p in plans.values()], ignore_index=True)
    with step("figures"):
        return write_figures(cov.households, categories=cats, areas=cov.areas,
                             circles=circles_15, stations=stations, curves=curves,
                             profile=prof, lang=lang, out_dir=out_dir)
