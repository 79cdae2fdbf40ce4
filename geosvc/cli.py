"""Command line: ``geosvc demo | coverage | circles | site | run | batch | compare``.

Exit codes: 0 success, 2 bad input or configuration (one clear line), 1 internal error.
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from geosvc import diagnostics, resources
from geosvc._errors import GeosvcError
from geosvc._uri import is_db_uri

__all__ = ["main", "build_parser"]

log = logging.getLogger("geosvc")

DEFAULT_OUT = Path("data/processed/demo")


def _add_inputs(p: argparse.ArgumentParser, *, households: bool = True) -> None:
    p.add_argument("--roads", required=True, help="street network: .osm/.osm.bz2/.osm.gz, "
                   ".osm.pbf, .graphml or a road line layer (.gpkg/.shp/.geojson)")
    if households:
        p.add_argument("--households", required=True,
                       help="residential points with a 'households' column")
    p.add_argument("--facilities", required=True,
                   help="facility points with 'facility_id', 'category', 'subtype', "
                   "'floor_area_m2'")
    p.add_argument("--compounds", help="gated-compound polygons with 'compound_id' (optional)")
    p.add_argument("--areas", action="append", default=[],
                   metavar="LEVEL=PATH[:ID[:NAME[:LAYER]]]",
                   help="area layer for per-area results, e.g. community=communities.gpkg:"
                   "community_id:name (repeatable; LAYER defaults to LEVEL, LEVELs, 'areas')")
    p.add_argument("--profile", default="cn-community-2023", help="standards profile name or "
                   ".toml path (default cn-community-2023)")
    p.add_argument("--crs", help="projected working CRS, e.g. EPSG:32650 (default: local UTM)")
    p.add_argument("--coord-system", action="append", default=[], metavar="[INPUT=]SYSTEM",
                   help="datum of lon/lat inputs: wgs84 (default), gcj02 or bd09 (Chinese "
                   "web-map data is often gcj02); INPUT=SYSTEM for one input, e.g. "
                   "facilities=gcj02 (repeatable)")
    p.add_argument("--connectivity", default="auto", choices=["endpoints", "crossings", "auto"],
                   help="how road lines join: at shared end points only (OSM exports, clean "
                   "centre lines), also where they cross (raw CAD lines), or auto (decide "
                   "from the layer; default)")
    p.add_argument("--components", default="all", choices=["all", "largest"],
                   help="keep every network component or only the largest")
    p.add_argument("--min-component-nodes", type=int, default=20, metavar="N",
                   help="drop network fragments with fewer than N nodes (default 20, "
                   "measured; 1 keeps all)")
    p.add_argument("--out", required=True, help="output folder")
    _add_input_options(p, households=households)


def _add_input_options(p: argparse.ArgumentParser, *, households: bool) -> None:
    """Layers, column mappings, per-input CRS/coord_system and output-folder policy."""
    g = p.add_argument_group("input details (see README 'Inputs you can give')")
    kinds = ["roads", "facilities", "compounds"] + (["households"] if households else [])
    for kind in kinds:
        g.add_argument(f"--{kind}-layer", metavar="NAME",
                       help=f"layer of a multi-layer {kind} file (or Excel sheet)")
    for kind in ["facilities"] + (["households"] if households else []):
        g.add_argument(f"--{kind}-xy", metavar="X,Y",
                       help=f"coordinate columns of a {kind} CSV/Excel table (default: "
                       "detected: lon/lat, lng/lat, longitude/latitude, 经度/纬度, x/y)")
        g.add_argument(f"--{kind}-crs", metavar="CRS",
                       help=f"CRS of the {kind} coordinates (tables; layers without a CRS); "
                       "default EPSG:4326 for lon/lat")
    if households:
        g.add_argument("--households-columns", metavar="KEY=COL[,KEY=COL]",
                       help="household columns: id, households, persons, elderly "
                       "(e.g. id=bldg_id,households=hh)")
        g.add_argument("--one-household-per-point", action="store_true",
                       help="count one household per point (address points; no count column)")
    g.add_argument("--facilities-columns", metavar="KEY=COL[,KEY=COL]",
                   help="facility columns: id, category, subtype, floor_area "
                   "(e.g. id=fid,category=type)")
    p.add_argument("--no-overwrite", action="store_true",
                   help="refuse an output folder that holds an earlier run's results (default: "
                   "the files listed in its manifest are replaced)")


_HH_KEYS = {"id": "id_col", "households": "households_col", "persons": "persons_col",
            "elderly": "elderly_col"}
_FAC_KEYS = {"id": "id_col", "category": "category_col", "subtype": "subtype_col",
             "floor_area": "floor_area_col"}
_INPUTS = ("roads", "households", "facilities", "areas", "compounds")


def _parse_columns(spec: str | None, keys: dict[str, str], option: str) -> dict[str, Any]:
    from geosvc._errors import ConfigError

    out: dict[str, Any] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        key, sep, col = part.partition("=")
        key = key.strip()
        if not sep or key not in keys or not col.strip():
            raise ConfigError(f"{option} {spec!r}: expected KEY=COLUMN pairs separated by commas "
                              f"with KEY one of {', '.join(keys)}")
        out[keys[key]] = col.strip()
    return out


def _parse_coord_systems(specs: Sequence[str]) -> dict[str, str]:
    from geosvc._errors import ConfigError

    systems = ("wgs84", "gcj02", "bd09")
    out = {k: "wgs84" for k in _INPUTS}
    for spec in specs:
        kind, sep, system = spec.rpartition("=")
        if system not in systems or (sep and kind not in _INPUTS):
            raise ConfigError(f"--coord-system {spec!r}: expected one of {', '.join(systems)} "
                              f"for every input, or INPUT=SYSTEM with INPUT one of "
                              f"{', '.join(_INPUTS)} (e.g. facilities=gcj02)")
        for k in ([kind] if sep else _INPUTS):
            out[k] = system
    return out


def _xy(spec: str | None, option: str) -> tuple[str, ...] | None:
    from geosvc._errors import ConfigError

    if spec is None:
        return None
    parts = tuple(s.strip() for s in spec.split(","))
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"{option} {spec!r}: give the x (longitude) and y (latitude) "
                          "columns, e.g. lng,lat")
    return parts


def _version_text() -> str:
    import platform

    from geosvc import __version__

    return f"geosvc {__version__} (Python {platform.python_version()})"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="geosvc",
        description="15-minute service circles and facility siting over street networks.")
    parser.add_argument("--version", action="version", version=_version_text())
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--strict", action="store_true",
                        help="exit 2 when the run raised any warning (for batch jobs); the "
                        "outputs are still written, with the warnings in summary.json")
    parser.add_argument("--memory-limit", metavar="SIZE", dest="memory_limit_top",
                        help="memory budget for the run, e.g. 8GB (also accepted after the "
                        "command); steps chunk to stay inside it, and an input that cannot fit "
                        "stops with exit 2")
    sub = parser.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run the whole analysis on the embedded default district "
                       "(or the Helsinki OSM sample)")
    d.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    d.add_argument("--sample", default="district", choices=["district", "helsinki"])
    d.add_argument("--lang", default="zh", choices=["zh", "en"], help="map and figure labels")
    d.add_argument("--seed", type=int, default=2023, help="district generator seed")
    d.add_argument("--k", type=int, default=10, help="new stations to propose per category")
    d.add_argument("--no-overwrite", action="store_true",
                   help="refuse an output folder that holds an earlier run's results")

    c = sub.add_parser("coverage", help="walking-time coverage per household and area")
    _add_inputs(c)

    ci = sub.add_parser("circles", help="service-circle polygons per facility and category")
    _add_inputs(ci, households=False)
    ci.add_argument("--thresholds", default="5,10,15", help="minutes, comma separated")

    s = sub.add_parser("site", help="propose new service stations")
    _add_inputs(s)
    s.add_argument("--category", required=True, help="category to site, e.g. elderly_care")
    s.add_argument("--model", default="max-coverage",
                   choices=["max-coverage", "set-cover", "p-median", "capacitated"])
    s.add_argument("--k", type=int, default=10, help="number of new stations")
    s.add_argument("--target", type=float, default=0.95, help="set-cover target share")
    s.add_argument("--solver", default="greedy", choices=["greedy", "exact"])
    s.add_argument("--candidates", help="candidate sites (points); default: network points "
                   "and clusters of uncovered demand")
    s.add_argument("--candidates-layer", help="layer of the candidates file")
    s.add_argument("--candidates-id", help="id column of the candidates (kept in the output)")
    s.add_argument("--candidates-only", action="store_true",
                   help="choose among the given candidates only (no generated sites)")
    s.add_argument("--capacity-column", help="capacitated model: candidates' capacity column "
                   "(households)")

    r = sub.add_parser("run", help="batch run from a TOML config file")
    r.add_argument("config", help="path of the config file (see examples/district.toml)")

    b = sub.add_parser("batch", help="many districts in one run: partitions with a halo on "
                       "Dask, resumable (config with a [batch] section)")
    b.add_argument("config", help="config file with [inputs] and [batch] (see "
                   "examples/province.toml)")
    b.add_argument("--scheduler", help="none (in-process), local[:N] (a Dask LocalCluster of "
                   "N worker processes; default N = cores), threads[:N], or tcp://HOST:PORT "
                   "(default: [batch] scheduler, else local)")
    cmp = sub.add_parser("compare", help="compare two run folders (B minus A): coverage per "
                         "category and area, households newly covered")
    cmp.add_argument("run_a", help="output folder of the first run (the baseline)")
    cmp.add_argument("run_b", help="output folder of the second run (the scenario)")
    cmp.add_argument("--out", help="write compare_categories.csv, compare_<level>.csv and "
                     "changed_households.gpkg here (default: print only)")
    for p in (d, c, ci, s, r):
        p.add_argument("--memory-limit", metavar="SIZE", help="memory budget for the run, "
                       "e.g. 8GB or 512MB (for `run`: overrides [run] memory_limit)")
    r.add_argument("--no-overwrite", action="store_true",
                   help="refuse an output folder that holds an earlier run's results")
    for p in (d, r):
        p.add_argument("--basemap", metavar="TILES", help="map background: none (default; the "
                       "page works offline), osm, gaode (overlays shifted to GCJ-02) or a tile "
                       "URL with {z}/{x}/{y} (for `run`: overrides [output] basemap)")
    return parser


def _memory_limit(args: argparse.Namespace) -> str | None:
    return getattr(args, "memory_limit", None) or getattr(args, "memory_limit_top", None)


def _parse_areas(specs: Sequence[str]) -> dict[str, dict[str, Any]]:
    from geosvc._errors import ConfigError

    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if "=" not in spec:
            raise ConfigError(f"--areas {spec!r}: expected LEVEL=PATH[:ID[:NAME[:LAYER]]], "
                              "e.g. community=communities.gpkg:community_id:name")
        level, rest = spec.split("=", 1)
        if is_db_uri(rest):  # postgresql://user@host:port/db?table=t[:ID[:NAME]]
            base, _, query = rest.partition("?")
            extra = query.split(":")
            parts = [f"{base}?{extra[0]}", *extra[1:]]
        else:
            parts = rest.split(":")
        out[level] = {"path": parts[0], "id": parts[1] if len(parts) > 1 else "area_id",
                      "name": parts[2] if len(parts) > 2 else None,
                      "layer": parts[3] if len(parts) > 3 and parts[3] else None}
    return out


def _inputs_from_args(args: argparse.Namespace) -> Any:
    from geosvc.inputs import InputSpec, load_inputs
    from geosvc.standards import load_profile

    has_hh = getattr(args, "households", None) is not None
    hh_cols = _parse_columns(getattr(args, "households_columns", None), _HH_KEYS,
                             "--households-columns")
    if getattr(args, "one_household_per_point", False):
        hh_cols["households_col"] = None
    return load_inputs(InputSpec(
        roads=args.roads, households=args.households if has_hh else None,
        facilities=args.facilities, areas=_parse_areas(args.areas), compounds=args.compounds,
        crs=args.crs, coord_system=_parse_coord_systems(args.coord_system),
        layers={k: getattr(args, f"{k}_layer", None) for k in _INPUTS},
        household_columns=hh_cols, profile=load_profile(args.profile),
        facility_columns=_parse_columns(args.facilities_columns, _FAC_KEYS,
                                        "--facilities-columns"),
        input_crs={k: getattr(args, f"{k}_crs", None) for k in ("households", "facilities")},
        xy={k: _xy(getattr(args, f"{k}_xy", None), f"--{k}-xy")
            for k in ("households", "facilities")},
        name="command line inputs", connectivity=args.connectivity,
        components=args.components, min_component_nodes=args.min_component_nodes))


def _basemap(value: str | None) -> str | None:
    """``--basemap``: checked before any work (one line naming the choices)."""
    from geosvc._errors import ConfigError
    from geosvc.viz import BASEMAPS, is_tile_url

    if value is None or value == "none":
        return None
    if value in BASEMAPS or is_tile_url(value):
        return value
    raise ConfigError(f"--basemap {value!r}: use none, {', '.join(BASEMAPS)} or a tile URL "
                      "with {z}, {x} and {y} (e.g. https://tile.example.org/{z}/{x}/{y}.png)")


def _cmd_demo(args: argparse.Namespace) -> int:
    from geosvc.demo import run_demo

    summary = run_demo(out_dir=Path(args.out), sample=args.sample, lang=args.lang,
                       seed=args.seed, k=args.k, basemap=_basemap(args.basemap))
    _print_key_figures(summary, getattr(args, "out_display", None) or Path(args.out))
    return 0


def _pct(v: Any) -> str:
    """A share as a percentage; ``n/a`` when undefined (no households)."""
    return f"{v:.1%}" if isinstance(v, int | float) and math.isfinite(v) else "n/a"


def _print_key_figures(summary: dict[str, Any], out: Path | str) -> None:
    print(f"geosvc: {summary['run']['name']}")
    print(f"  households {summary['households_total']:.0f} in {summary['rows_total']} rows "
          f"({summary['rows_invalid']} invalid); elderly {summary['elderly_total']:.0f}")
    for name, c in summary["categories"].items():
        print(f"  {name}: {c['threshold_min']:g} min at {c['speed_m_s']} m/s -> coverage "
              f"{_pct(c['coverage_rate'])} (radius method {_pct(c['radius_method_coverage_rate'])}); "
              f"uncovered {c['households_uncovered']:.0f} hh, unreachable "
              f"{c['households_unreachable']:.0f}, off-network {c['households_off_network']:.0f}; "
              f"elderly outside {c['elderly_uncovered']:.0f}")
    for name, plan in summary.get("siting", {}).items():
        print(f"  siting {name}: {plan['model']} k={plan['k']} -> coverage "
              f"{plan['coverage_before']:.1%} -> {plan['coverage_after']:.1%} "
              f"(gap {plan['gap']:.2%})")
    peak = summary["run"].get("peak_rss_mb")
    print(f"  outputs in {out}{'/' if isinstance(out, Path) else ''} ({summary['run']['run_time_s']:.0f} s"
          + (f", peak {resources.format_bytes(peak * 2**20)} resident" if peak else "") + ")")


def _cmd_coverage(args: argparse.Namespace) -> int:
    from geosvc.pipeline import run_coverage, write_coverage
    from geosvc.standards import load_profile

    t0 = time.perf_counter()
    inputs = _inputs_from_args(args)
    res = run_coverage(inputs, profile=load_profile(args.profile))
    summary = write_coverage(res, inputs, args.out, started=t0)
    _print_key_figures(summary, getattr(args, "out_display", None) or Path(args.out))
    return 0


def _cmd_circles(args: argparse.Namespace) -> int:
    from geosvc._errors import ConfigError
    from geosvc.circles import service_circles, write_service_circles
    from geosvc.facilities import prepare_facilities
    from geosvc.resources import step
    from geosvc.standards import load_profile

    try:
        thresholds = tuple(float(t) for t in args.thresholds.split(","))
    except ValueError as exc:
        raise ConfigError(f"--thresholds {args.thresholds!r}: expected minutes like 5,10,15")\
            from exc
    inputs = _inputs_from_args(args)
    prof = load_profile(args.profile)
    fac = prepare_facilities(inputs.facilities, prof)
    with step("service-circle polygons"):
        per_fac, per_cat = service_circles(inputs.net, fac, prof, thresholds_min=thresholds,
                                           compounds=inputs.compounds)
    out = Path(args.out)
    write_service_circles(per_fac, per_cat, out / "service_circles.gpkg")
    from geosvc.qgis import style_outputs

    style_outputs(out, sorted(set(per_cat["category"])), prof)
    print(f"geosvc: {len(per_fac)} facility circles, {len(per_cat)} category circles -> "
          f"{out / 'service_circles.gpkg'}")
    return 0


def _cmd_site(args: argparse.Namespace) -> int:
    from geosvc.pipeline import run_coverage
    from geosvc.siting import propose_sites, write_siting
    from geosvc.standards import load_profile

    prof = load_profile(args.profile)
    prof.category(args.category)  # an unknown category fails before any work
    inputs = _inputs_from_args(args)
    cov = run_coverage(inputs, profile=prof)
    plan = propose_sites(inputs.net, cov, category=args.category, model=args.model, k=args.k,
                         target=args.target, solver=args.solver,
                         candidates_path=args.candidates,
                         candidates_layer=args.candidates_layer,
                         candidates_id=args.candidates_id,
                         candidates_only=args.candidates_only,
                         capacity_column=args.capacity_column)
    write_siting({args.category: plan}, Path(args.out))
    from geosvc.qgis import style_outputs

    style_outputs(Path(args.out), [args.category], prof)
    print(plan.describe())
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from geosvc._errors import ConfigError
    from geosvc.batch import run_batch_config
    from geosvc.config import load_config

    cfg = load_config(args.config)
    if cfg.batch is None:
        raise ConfigError(f"{args.config}: no [batch] section; add one with districts = "
                          "'districts.gpkg' (see examples/province.toml)")
    args.strict = args.strict or cfg.strict
    res = run_batch_config(cfg, scheduler=getattr(args, "scheduler", None))
    print(res.describe(Path(cfg.output.folder)))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from geosvc.config import load_config, run_config
    from geosvc.io import output_run

    cfg = load_config(args.config)
    if cfg.batch is not None:
        return _cmd_batch(args)
    if getattr(args, "basemap", None) is not None:
        cfg = cfg.model_copy(update={"output": cfg.output.model_copy(
            update={"basemap": _basemap(args.basemap)})})
    args.strict = args.strict or cfg.strict
    if isinstance(cfg.output.folder, str):  # a postgresql:// URI
        with _database_output(args, cfg.output.folder) as tmp:
            local = cfg.model_copy(update={"output": cfg.output.model_copy(
                update={"folder": tmp})})
            summary = run_config(local)
            _print_key_figures(summary, args.out_display)
        return 0
    with output_run(cfg.output.folder, overwrite=cfg.output.overwrite and not args.no_overwrite,
                    option=f"{args.config}: output.folder", command="run"):
        summary = run_config(cfg)
    _print_key_figures(summary, Path(cfg.output.folder))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from geosvc.compare import compare_runs, write_comparison

    result = compare_runs(args.run_a, args.run_b)
    print(result.describe())
    if args.out:
        paths = write_comparison(result, args.out)
        print(f"  written: {', '.join(p.name for p in paths)} in {args.out}")
    return 0


_COMMANDS = {"compare": _cmd_compare, "demo": _cmd_demo, "coverage": _cmd_coverage, "circles": _cmd_circles,
             "site": _cmd_site, "run": _cmd_run, "batch": _cmd_batch}


class _LineFormatter(logging.Formatter):
    """Progress lines with a time stamp; warnings as one line beginning ``warning:``."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno >= logging.WARNING:
            return f"warning: {record.getMessage()}"
        return super().format(record)


def _setup_logging(quiet: bool) -> None:
    from geosvc.progress import set_progress

    set_progress(False if quiet else None)  # bars on a terminal, never with -q
    handler = logging.StreamHandler()
    handler.setFormatter(_LineFormatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    logging.getLogger("geosvc").setLevel(logging.WARNING if quiet else logging.INFO)
    for noisy in ("numba", "matplotlib", "fiona", "pyogrio", "PIL", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _strict_failure(diag: diagnostics.Diagnostics) -> int:
    codes = sorted({w.code for w in diag.warnings})
    print(f"geosvc: error: --strict: the run raised {len(diag.warnings)} warning(s) "
          f"({', '.join(codes)}); see the warning: lines above and summary.json['warnings']",
          file=sys.stderr)
    return 2


def _output_folder(args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """The output folder of commands with ``--out``: checked before any work, manifest kept.

    A ``postgresql://…?schema=…`` output runs into a temporary folder (``args.out`` points
    there during the command) whose tables are written to the database in one transaction
    when the command succeeds.
    """
    from geosvc.io import output_run

    if args.command == "run" or getattr(args, "out", None) is None:
        return contextlib.nullcontext()
    if is_db_uri(args.out):
        return _database_output(args, args.out)
    return output_run(args.out, overwrite=not getattr(args, "no_overwrite", False),
                      command=args.command)


@contextlib.contextmanager
def _database_output(args: argparse.Namespace, uri: str) -> Iterator[Path]:
    """Run into a temporary folder, then publish its tables to PostGIS (all or nothing)."""
    import shutil
    import tempfile

    from geosvc.postgis import check_db_output, mask_uri, publish_folder

    schema = check_db_output(uri)  # before any work: a wrong URI fails in a second
    tmp = Path(tempfile.mkdtemp(prefix="geosvc-out-"))
    args.out_display = f"{mask_uri(uri).split('?')[0]} (schema {schema})"
    try:
        args.out = str(tmp)
        yield tmp
        written = publish_folder(tmp, uri)
        print(f"geosvc: {len(written)} tables written to {args.out_display}: "
              f"{', '.join(t.split('.', 1)[1] for t in written)}")
    finally:
        args.out = uri
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``geosvc`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.quiet)
    from geosvc.io import install_signal_cleanup

    install_signal_cleanup()
    if args.command in ("demo", "site", "run", "batch"):
        from geosvc.progress import silence_highs_banner

        silence_highs_banner()
    try:
        with diagnostics.collect() as diag, resources.collect_steps(), \
                resources.memory_limit(_memory_limit(args)), _output_folder(args):
            code = _COMMANDS[args.command](args)
        if code == 0 and args.strict and diag.warnings:
            return _strict_failure(diag)
        return code
    except GeosvcError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"geosvc: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("geosvc: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error: one line unless --debug
        if args.debug:
            traceback.print_exc()
        print(f"geosvc: internal error: {type(exc).__name__}: {exc} (rerun with --debug for "
              "the traceback and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
