"""Many districts in one batch: partitions with a halo, run on Dask, merged exactly.

A batch takes a polygon layer of study areas (districts / streets, with an id and a name)
and province-wide input files sharing one profile and analysis setup.  Each study area is
one partition: a worker reads the roads, households, facilities and compounds inside the
area's bounding box grown by the halo (a bounding-box read, never the whole province),
runs the normal coverage analysis and keeps only the households the area owns (inside it
and in no area listed before it).  Times that the halo cannot prove are withheld (see
:mod:`geosvc.batch._partition`).  Finished partitions are written atomically into
``<out>/partitions/<id>/`` and skipped on a rerun with the same inputs; the merge writes
the province tables.

Schedulers: ``none`` (in-process), ``local`` / ``local:N`` (a ``dask.distributed``
LocalCluster of N single-threaded worker processes), ``threads:N`` (a LocalCluster of
threads in this process) or a scheduler address ``tcp://HOST:PORT``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import shapely

from geosvc._errors import ConfigError, GeosvcError, InputError
from geosvc.batch._cluster import close_started, dask_client, parse_scheduler, start_client
from geosvc.batch._partition import BatchInputs, PartitionTask, run_partition
from geosvc.batch._province import generate_province
from geosvc.batch._siting import BatchSiting, allocate_budget

__all__ = [
    "BatchInputs",
    "BatchSiting",
    "allocate_budget",
    "BatchSpec",
    "BatchError",
    "BatchResult",
    "PartitionTask",
    "min_halo_m",
    "plan_partitions",
    "run_batch",
    "run_batch_config",
    "run_partition",
    "merge_partitions",
    "generate_province",
]

log = logging.getLogger(__name__)


class BatchError(GeosvcError, RuntimeError):
    """One or more partitions failed (the others were completed and kept)."""


@dataclass(frozen=True)
class BatchSpec:
    """A whole batch: study areas, province inputs, one profile and analysis setup."""

    districts: str
    inputs: BatchInputs
    out: str
    districts_layer: str | None = None
    id_col: str = "district_id"
    name_col: str | None = "name"
    profile_name: str = "cn-community-2023"
    profile_overrides: dict[str, Any] = field(default_factory=dict)
    categories: tuple[str, ...] | None = None
    radius_method: str = "profile"
    halo_m: float | None = None
    areas: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: siting plans per district (:class:`BatchSiting`), or None for coverage only
    siting: BatchSiting | None = None
    #: per-district ``map.html`` and ``province.html``
    maps: bool = True
    lang: str = "zh"


@dataclass
class BatchResult:
    """What a batch run produced."""

    households: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    areas: dict[str, gpd.GeoDataFrame]
    summary: dict[str, Any]
    records: list[dict[str, Any]]

    def describe(self, out: Path) -> str:
        """A few lines for the command line."""
        s = self.summary
        done = sum(1 for r in self.records if not r.get("skipped"))
        lines = [f"geosvc batch: {len(self.records)} partitions ({done} computed, "
                 f"{len(self.records) - done} finished before), {s['rows_total']} household "
                 f"rows ({s['rows_outside_districts']} outside every district), halo "
                 f"{s['batch']['halo_m']:.0f} m"]
        for name, c in s["categories"].items():
            lines.append(f"  {name}: coverage {c['coverage_rate']:.1%}; times withheld "
                         f"(beyond {s['batch']['exact_m']:.0f} m) {c['rows_time_withheld']} "
                         f"rows; status unresolved {c['rows_status_unresolved']} rows")
        for name, p in s.get("siting", {}).get("categories", {}).items():
            lines.append(f"  siting {name} ({s['siting']['budget']} budget, k = "
                         f"{s['siting']['k']}): {p['stations']} stations, "
                         f"{p['households_newly_covered']:.0f} households newly covered "
                         f"(owned households only); objective {p['objective']:.1f}, bound "
                         f"{p['bound']:.1f}, gap {p['gap']:.2%}")
        maps = ", province.html, districts/<id>/map.html" if "maps" in s else ""
        lines.append(f"  outputs in {out}/ (households.gpkg, districts.gpkg, districts.csv, "
                     f"summary.json{maps})")
        return "\n".join(lines)


def min_halo_m(profile: Any, categories: Sequence[str] | None = None,
               radius_method: str = "profile") -> float:
    """The narrowest halo that keeps every per-household result exact.

    ``2 * reach + max_snap`` (2SFCA catchments reach ``reach`` beyond a facility that is
    within ``reach`` of the household, and the far households must snap as in the whole
    network), at least the straight-line radius of the radius method, plus 1 m.
    """
    cats = list(categories) if categories else list(profile.category_names)
    reach = max(profile.category(c).reach_m for c in cats)
    radius = max(profile.category(c).radius_m for c in cats)
    if radius_method == "gb50180":
        radius = max([radius] + [float(v) for k, v in profile.values.items()
                                 if k.startswith("subtype_radius_m.")])
    return float(max(2.0 * reach + profile.max_snap_m, radius) + 1.0)


#: Files up to this size are hashed whole; larger ones by a sampled key (see _file_digest).
FULL_HASH_MAX_BYTES = 256 * 2**20
_SAMPLE_BYTES = 1 * 2**20
_SAMPLES = 64


def _file_digest(path: str | None) -> str:
    """The key of an input file in the partitions' inputs hash.

    Files up to :data:`FULL_HASH_MAX_BYTES` are hashed whole (SHA-256).  A larger file is
    keyed by its size, its modification time (ns) and the SHA-256 of 64 blocks of 1 MiB
    spread evenly over it (first and last included): a rerun of a multi-GB province reads
    64 MiB instead of every byte.  Any ordinary edit changes the modification time; an edit
    that keeps size and time (a copy with ``cp -p`` of another file of the same size) is
    caught only when it touches a sampled block.  A copy of the same file gets a new time
    and recomputes every partition (safe, not silent).
    """
    if path is None:
        return ""
    from geosvc.io import file_sha256

    st = os.stat(path)
    if st.st_size <= FULL_HASH_MAX_BYTES:
        return file_sha256(path)
    h = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}".encode())
    last = st.st_size - _SAMPLE_BYTES
    with open(path, "rb") as fh:
        for i in range(_SAMPLES):
            fh.seek(last * i // (_SAMPLES - 1))
            h.update(fh.read(_SAMPLE_BYTES))
    return "sampled:" + h.hexdigest()


def _read_districts(spec: BatchSpec) -> gpd.GeoDataFrame:
    p = Path(spec.districts)
    if not p.exists():
        raise InputError(f"{p}: districts file not found; check [batch] districts")
    gdf = pyogrio.read_dataframe(p, layer=spec.districts_layer)
    if spec.id_col not in gdf.columns:
        raise InputError(f"{p}: no id column {spec.id_col!r}; columns are {list(gdf.columns)} "
                         "(set [batch] id)")
    ids = gdf[spec.id_col].astype(str)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise InputError(f"{p}: district id {dup.iloc[0]!r} appears more than once; ids must "
                         "be unique (they name the partition folders)")
    bad = ~gdf.geometry.is_valid | gdf.geometry.is_empty
    if bad.any():
        raise InputError(f"{p}: district {ids[bad].iloc[0]!r} has an empty or invalid polygon; "
                         "repair it (e.g. buffer(0) in QGIS)")
    out = gpd.GeoDataFrame({"area_id": ids.to_numpy(),
                            "name": gdf[spec.name_col].astype(str).to_numpy()
                            if spec.name_col and spec.name_col in gdf.columns else ids.to_numpy()},
                           geometry=gdf.geometry.to_numpy(), crs=gdf.crs)
    return out


def _check_crs(spec: BatchSpec, districts: gpd.GeoDataFrame) -> None:
    if districts.crs is None or not districts.crs.is_projected:
        raise ConfigError(f"{spec.districts}: a batch needs the districts in a projected "
                          f"(metric) CRS, found {districts.crs}; reproject every layer first "
                          "(e.g. to the local UTM zone)")
    files = [("roads", spec.inputs.roads), ("households", spec.inputs.households),
             ("facilities", spec.inputs.facilities), ("compounds", spec.inputs.compounds)]
    for key, path in files:
        if path is None:
            continue
        if not Path(path).exists():
            raise InputError(f"{path}: {key} file not found")
        info = pyogrio.read_info(path, layer=spec.inputs.layers.get(key))
        from pyproj import CRS

        crs = CRS.from_user_input(info["crs"]) if info["crs"] else None
        if crs is None or not crs.equals(districts.crs):
            raise ConfigError(f"{path}: {key} are in {crs}, the districts in "
                              f"{districts.crs.to_string()}; a batch reads every layer by "
                              "bounding box, so all layers must share the districts' CRS")


def _check_unique_ids(spec: BatchSpec) -> None:
    col = spec.inputs.household_columns.get("id_col")
    if col is None:
        return
    path = spec.inputs.households
    tab = pyogrio.read_dataframe(path, layer=spec.inputs.layers.get("households"),
                                 columns=[col], read_geometry=False)
    if col not in tab.columns:
        raise InputError(f"{path}: no id column {col!r}; columns are {list(tab.columns)}")
    dup = tab[col][tab[col].duplicated() & tab[col].notna()]
    if len(dup):
        raise InputError(f"{path}: household id {dup.iloc[0]!r} appears more than once "
                         f"({len(dup)} repeats); a batch needs unique ids (which row is the "
                         "'first' depends on the partition)")


def plan_partitions(spec: BatchSpec) -> tuple[list[PartitionTask], dict[str, Any]]:
    """Validate the batch and cut it into partition tasks (one per study area)."""
    from geosvc.standards import load_profile

    prof = load_profile(spec.profile_name, overrides=spec.profile_overrides)
    for c in spec.categories or ():
        prof.category(c)
    districts = _read_districts(spec)
    _check_crs(spec, districts)
    _check_unique_ids(spec)
    need = min_halo_m(prof, spec.categories, spec.radius_method)
    halo = need if spec.halo_m is None else float(spec.halo_m)
    if halo < need:
        raise ConfigError(f"[batch] halo_m = {halo:g} is narrower than the {need:.0f} m the "
                          "results need to be exact (2 x the longest reach + the maximum snap "
                          "distance, at least the straight-line radius); raise it or leave it "
                          "out")
    max_snap = prof.max_snap_m
    exact = halo - max_snap - 1.0
    digest = hashlib.sha256()
    setup = {"profile": prof.to_dict(), "categories": spec.categories,
             "radius_method": spec.radius_method, "halo_m": halo,
             "columns": spec.inputs.household_columns, "layers": spec.inputs.layers,
             "geosvc": _version(),
             "siting": spec.siting.to_dict() if spec.siting is not None else None}
    digest.update(json.dumps(setup, sort_keys=True, default=str).encode())
    cand = spec.siting.candidates if spec.siting is not None else None
    for path in (spec.inputs.roads, spec.inputs.households, spec.inputs.facilities,
                 spec.inputs.compounds, cand):
        digest.update(_file_digest(path).encode())
    base = digest.hexdigest()
    geoms = districts.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    tasks = []
    for i, (aid, name, poly) in enumerate(zip(districts["area_id"], districts["name"], geoms,
                                              strict=True)):
        near = tree.query(poly, predicate="intersects")
        earlier = tuple(shapely.to_wkb(geoms[j]) for j in sorted(near) if j < i)
        minx, miny, maxx, maxy = shapely.bounds(poly)
        bbox = (float(minx - halo), float(miny - halo), float(maxx + halo), float(maxy + halo))
        wkb = shapely.to_wkb(poly)
        h = hashlib.sha256(base.encode() + wkb + b"".join(earlier)).hexdigest()
        tasks.append(PartitionTask(
            id=_safe_id(aid), name=str(name), polygon_wkb=wkb, earlier_wkb=earlier,
            bbox=bbox, inputs=spec.inputs,
            profile_name=spec.profile_name, profile_overrides=dict(spec.profile_overrides),
            categories=spec.categories, radius_method=spec.radius_method, halo_m=halo,
            exact_m=exact, max_snap_m=max_snap, inputs_hash=h, out_root=spec.out,
            siting=spec.siting))
    info = {"halo_m": halo, "exact_m": exact, "max_snap_m": max_snap, "min_halo_m": need,
            "inputs_hash": base, "districts": districts}
    return tasks, info


def _safe_id(value: Any) -> str:
    text = str(value)
    if not text or any(ch in text for ch in '/\\:*?"<>|') or text.startswith("."):
        raise InputError(f"district id {text!r} cannot name a folder; use letters, digits, "
                         "'-' and '_'")
    return text


def _version() -> str:
    try:
        return metadata.version("geosvc")
    except metadata.PackageNotFoundError:
        return "unknown"


ProgressFn = Callable[[int, int, dict[str, Any]], None]


def _log_progress(done: int, total: int, rec: dict[str, Any]) -> None:
    width = 20
    bar = "#" * (width * done // max(total, 1))
    what = rec.get("error") or ("skipped (finished before)" if rec.get("skipped") else
                                f"{rec.get('rows_owned', 0)} rows in {rec.get('run_time_s', 0)} s")
    log.info("partitions [%-*s] %d/%d  %s: %s", width, bar, done, total, rec["id"], what)


@contextlib.contextmanager
def _partition_bar(total: int, report: ProgressFn) -> Iterator[ProgressFn]:
    """A ``tqdm`` bar of partitions done/total (:func:`geosvc.progress.bar`: on a terminal or
    in Jupyter, never with ``-q``) around ``report``; log lines go above the bar."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from geosvc.progress import bar, progress_enabled

    with bar(total=total, desc="partitions", unit="partition") as pbar:
        redirect = logging_redirect_tqdm() if progress_enabled() else contextlib.nullcontext()
        with redirect:
            def step(done: int, n: int, rec: dict[str, Any]) -> None:
                pbar.update(1)
                pbar.set_postfix_str(str(rec.get("id")), refresh=False)
                report(done, n, rec)

            yield step


def _run_in_process(tasks: list[PartitionTask], progress: ProgressFn) -> list[dict[str, Any]]:
    records = []
    for i, task in enumerate(tasks, 1):
        try:
            rec = run_partition(task)
        except Exception as exc:
            rec = {"id": task.id, "name": task.name, "error": _reason(exc)}
        records.append(rec)
        progress(i, len(tasks), rec)
    return records


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _work_estimates(tasks: list[PartitionTask]) -> dict[str, int]:
    """Rows of roads and households inside each partition's box (a cheap bounding-box count
    without geometries), to start the largest partitions first."""
    out = {}
    for t in tasks:
        n = 0
        for key in ("roads", "households"):
            path = getattr(t.inputs, key)
            try:
                n += len(pyogrio.read_dataframe(path, layer=t.inputs.layers.get(key),
                                                bbox=t.bbox, columns=[], read_geometry=False,
                                                fid_as_index=True))
            except Exception:  # unreadable here: the partition itself reports why
                pass
        out[t.id] = n
    return out


def _run_on_dask(tasks: list[PartitionTask], client: Any, progress: ProgressFn,
                 work: dict[str, int], idle: Callable[[], Any] | None = None,
                 keep: list[Any] | None = None) -> list[dict[str, Any]]:
    """Every partition on the cluster, largest first; once fewer partitions remain than there
    are workers, ``idle`` is queued on every worker (after its partitions; its futures are
    appended to ``keep``, which must outlive them)."""
    from dask.distributed import as_completed

    rank = {t.id: r for r, t in enumerate(sorted(tasks, key=lambda t: work[t.id]))}
    # largest first (higher priority runs first): the last tasks on the workers are small
    futures = {client.submit(run_partition, t, key=f"geosvc-partition-{t.id}-"
                             f"{t.inputs_hash[:12]}", pure=False,
                             priority=rank[t.id]): t for t in tasks}
    workers = list(client.nthreads()) if idle is not None else []
    records = []
    for i, fut in enumerate(as_completed(list(futures)), 1):
        task = futures[fut]
        try:
            rec = fut.result()
        except Exception as exc:
            rec = {"id": task.id, "name": task.name, "error": _reason(exc)}
        records.append(rec)
        if workers and len(tasks) - i < len(workers):
            keep = keep if keep is not None else []
            keep += [client.submit(idle, pure=False, priority=-1, workers=[w],
                                   allow_other_workers=False) for w in workers]
            workers = []
        progress(i, len(tasks), rec)
    return records


def _warm_up(spec: BatchSpec) -> Callable[[], None] | None:
    """What a worker does once it has no partitions left: import the map modules."""
    if not spec.maps:
        return None
    from geosvc.batch._maps import warm_up

    return warm_up


def run_batch(spec: BatchSpec, *, scheduler: str = "local",
              progress: ProgressFn | None = None) -> BatchResult:
    """Run every partition (skipping finished ones), then merge the province tables.

    Raises
    ------
    BatchError
        When partitions failed; the message names each with its reason.  Finished
        partitions stay on disk, so a rerun after the fix only computes the failed ones.
    """
    started = time.perf_counter()
    from geosvc.batch._merge import PartitionCache, merge_partitions

    with contextlib.ExitStack() as stack:
        starting = None
        if scheduler != "none":
            if not scheduler.startswith(("tcp://", "tls://")):
                parse_scheduler(scheduler)  # a typo fails before anything starts
            # the cluster starts (worker processes import the partition's modules) while
            # this process plans the batch and counts each partition's rows
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))
            starting = pool.submit(start_client, scheduler)
            closer = stack.enter_context(contextlib.ExitStack())
            closer.callback(close_started, starting)  # planning failed: close it again
        tasks, info = plan_partitions(spec)
        log.info("batch: %d partitions, halo %.0f m (times exact up to %.0f m of walking), "
                 "scheduler %s", len(tasks), info["halo_m"], info["exact_m"], scheduler)
        cache = PartitionCache(spec.out, siting=spec.siting is not None, maps=spec.maps)
        client, work = None, {}
        warming: list[Any] = []  # the workers' map warm-up futures (kept until the end)
        if starting is not None:
            work = _work_estimates(tasks)
            closer.pop_all()
            client = stack.enter_context(dask_client(starting))
        with _partition_bar(len(tasks), progress or _log_progress) as report:
            def step(done: int, total: int, rec: dict[str, Any]) -> None:
                report(done, total, rec)
                if "error" not in rec and client is not None:
                    cache.add(rec["id"])  # read it while the other partitions still run

            if client is None:
                records = _run_in_process(tasks, step)
            else:  # a worker out of partitions imports the map modules meanwhile
                records = _run_on_dask(tasks, client, step, work, _warm_up(spec), warming)
        order = {t.id: i for i, t in enumerate(tasks)}
        records.sort(key=lambda r: order[r["id"]])
        failed = [r for r in records if "error" in r]
        if failed:
            names = "; ".join(f"{r['id']} ({r['error']})" for r in failed)
            raise BatchError(f"{len(failed)} of {len(tasks)} partitions failed: {names}; the "
                             f"other {len(tasks) - len(failed)} are in "
                             f"{Path(spec.out) / 'partitions'} and a rerun computes only the "
                             "failed ones")
        return merge_partitions(spec, tasks, records, info, started=started, client=client,
                                cache=cache)


def merge_partitions(*args: Any, **kwargs: Any) -> BatchResult:
    """Merge finished partitions into the province tables (see :mod:`geosvc.batch._merge`)."""
    from geosvc.batch._merge import merge_partitions as _merge

    return _merge(*args, **kwargs)


def _refuse_unsupported(inp: Any) -> None:
    """Options of single runs that a batch (bounding-box reads of projected layers) lacks."""
    if any(v != "wgs84" for v in inp.coord_systems().values()):
        raise ConfigError("[batch] reads projected layers by bounding box; inputs.coord_system "
                          f"= {inp.coord_system!r} needs the layers converted first")
    for key in ("households_crs", "facilities_crs", "compounds_crs", "households_xy",
                "facilities_xy", "crs"):
        if getattr(inp, key, None) is not None:
            raise ConfigError(f"[batch] does not support inputs.{key}: give every layer as a "
                              "GeoPackage/Shapefile in the districts' projected CRS")
    fc = inp.facilities_columns
    if (fc.id, fc.category, fc.subtype, fc.floor_area) != ("facility_id", "category", "subtype",
                                                           "floor_area_m2"):
        raise ConfigError("[batch] does not support inputs.facilities_columns yet: name the "
                          "columns facility_id, category, subtype, floor_area_m2")


def _siting_setup(cfg: Any) -> BatchSiting | None:
    """The batch's siting setup from ``[batch] siting`` and the ``[siting]`` section."""
    if cfg.batch.siting == "off":
        return None
    st = cfg.siting
    if st.capacity_column is not None:
        raise ConfigError("[batch] siting does not support siting.capacity_column yet")
    return BatchSiting(budget=cfg.batch.siting, k=st.k, model=st.model, target=st.target,
                       solver=st.solver,
                       candidates=str(st.candidates) if st.candidates is not None else None,
                       candidates_layer=st.candidates_layer, candidates_id=st.candidates_id,
                       candidates_only=st.candidates_only)


def run_batch_config(cfg: Any, *, scheduler: str | None = None,
                     progress: ProgressFn | None = None) -> BatchResult:
    """Run the batch a validated config describes (``[inputs]``, ``[profile]``,
    ``[analysis]``, ``[batch]``, ``[output]``)."""
    b = cfg.batch
    if b is None:
        raise ConfigError("the config has no [batch] section")
    inp = cfg.inputs
    cols = inp.households_columns
    _refuse_unsupported(inp)
    spec = BatchSpec(
        districts=str(b.districts), districts_layer=b.districts_layer, id_col=b.id,
        name_col=b.name, out=str(cfg.output.folder),
        inputs=BatchInputs(
            roads=str(inp.roads), households=str(inp.households),
            facilities=str(inp.facilities),
            compounds=str(inp.compounds) if inp.compounds else None,
            layers={"roads": inp.roads_layer, "households": inp.households_layer,
                    "facilities": inp.facilities_layer, "compounds": inp.compounds_layer},
            household_columns={"id_col": cols.id, "households_col": None if
                               inp.one_household_per_point else cols.households,
                               "persons_col": cols.persons, "elderly_col": cols.elderly},
            connectivity=inp.connectivity),
        profile_name=cfg.profile.name, profile_overrides=dict(cfg.profile.overrides),
        categories=tuple(cfg.analysis.categories) if cfg.analysis.categories else None,
        radius_method=cfg.analysis.radius_method, halo_m=b.halo_m,
        siting=_siting_setup(cfg), maps=b.maps, lang=cfg.output.lang,
        areas={a.level: {"path": str(a.path), "layer": a.layer, "id": a.id, "name": a.name}
               for a in inp.areas})
    return run_batch(spec, scheduler=scheduler or b.scheduler, progress=progress)
