"""Merge finished partitions into the province tables and ``summary.json``.

Each household comes from the one partition that owns it; per-area figures are computed
once from the merged households (never summed from partition summaries), so a community
that straddles two districts is counted once, with the facilities of the whole province.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from geosvc import diagnostics
from geosvc._errors import InputError
from geosvc._schema import NOT_COVERED, beyond_halo_col, status_col, unresolved_col
from geosvc.batch._partition import PartitionTask, fix_unreachable, read_partition, resolve_paths

__all__ = ["merge_partitions", "PartitionCache"]

log = logging.getLogger(__name__)


def _area_layer(level: str, spec: dict[str, Any]) -> gpd.GeoDataFrame:
    from geosvc._errors import InputError

    gdf = pyogrio.read_dataframe(spec["path"], layer=spec.get("layer"))
    id_col = spec.get("id", "area_id")
    if id_col not in gdf.columns:
        raise InputError(f"{spec['path']} ({level}): no id column {id_col!r}; columns are "
                         f"{list(gdf.columns)}")
    name_col = spec.get("name")
    out = gdf.copy()
    out["area_id"] = out[id_col].astype(str)
    out["name"] = out[name_col].astype(str) if name_col and name_col in out.columns else \
        out["area_id"]
    return out


class PartitionCache:
    """Finished partitions read as they finish (while others still run), so the merge does
    not wait for the reading; anything not cached is read when the merge asks for it."""

    def __init__(self, out: str | Path, *, siting: bool = False, maps: bool = False) -> None:
        self.root = Path(out) / "partitions"
        self.siting, self.maps = siting, maps
        self._households: dict[str, gpd.GeoDataFrame] = {}
        self._stations: dict[str, tuple[Any, Any]] = {}
        self._warm = False

    def add(self, pid: str) -> None:
        """Read a finished partition now (its households, its siting plan)."""
        if not self._warm:  # the merge's own imports, while the workers compute
            import geosvc.coverage  # noqa: F401
            import geosvc.facilities  # noqa: F401

            if self.maps:  # the client only cuts the map jobs; the workers import the viz
                import geosvc.batch._maps  # noqa: F401
            self._warm = True
        self._households[pid] = read_partition(self.root / pid)
        if self.siting:
            from geosvc.batch._siting import read_district_siting

            self._stations[pid] = read_district_siting(self.root / pid)

    def households(self, pid: str) -> gpd.GeoDataFrame:
        got = self._households.pop(pid, None)
        return got if got is not None else read_partition(self.root / pid)

    def district_siting(self, pid: str) -> tuple[Any, Any]:
        from geosvc.batch._siting import read_district_siting

        got = self._stations.pop(pid, None)
        return got if got is not None else read_district_siting(self.root / pid)


def merge_partitions(spec: Any, tasks: list[PartitionTask], records: list[dict[str, Any]],
                     info: dict[str, Any], *, started: float, client: Any = None,
                     cache: PartitionCache | None = None) -> Any:
    """Concatenate the owned households, aggregate per district and area, write outputs.

    With a Dask ``client`` the maps are drawn on its workers while this process writes the
    tables; ``cache`` holds partitions read while
    the others were still running.
    """
    from geosvc.batch import BatchResult
    from geosvc.coverage import aggregate_areas
    from geosvc.facilities import prepare_facilities
    from geosvc.io import write_json
    from geosvc.pipeline import step, versions
    from geosvc.standards import load_profile

    out = Path(spec.out)
    prof = load_profile(spec.profile_name, overrides=spec.profile_overrides)
    cats = list(spec.categories) if spec.categories else list(prof.category_names)
    districts: gpd.GeoDataFrame = info["districts"]
    with step(f"merging {len(tasks)} partitions"):
        folders = [out / "partitions" / t.id for t in tasks]
        cache = cache or PartitionCache(out)
        parts = [cache.households(t.id) for t in tasks]
        hh = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=districts.crs)
        hh = hh.sort_values("source_fid", kind="stable").reset_index(drop=True)
        proven = resolve_paths(hh, folders, [t.id for t in tasks])
        fix_unreachable(hh, records, proven)
        fac = prepare_facilities(pyogrio.read_dataframe(
            spec.inputs.facilities, layer=spec.inputs.layers.get("facilities")), prof)
        fac = fac.to_crs(districts.crs)
        dist_tab = aggregate_areas(hh, districts, fac, prof, cats, level="district")
        areas = {level: aggregate_areas(hh, _area_layer(level, a).to_crs(districts.crs), fac,
                                        prof, cats, level=level)
                 for level, a in spec.areas.items()}
    stations, siting = None, None
    if spec.siting is not None:
        with step("province siting plan from the district plans"):
            stations, siting, dist_tab = _siting(spec, cache, tasks, cats, dist_tab)
    # the province map (the longest map) goes to a worker before anything else is written
    maps = [_submit_province_map(spec, hh, districts, dist_tab, stations, prof, cats, client)
            ] if spec.maps and client is not None else []
    rows_file = int(pyogrio.read_info(spec.inputs.households,
                                      layer=spec.inputs.layers.get("households"))["features"])
    w = hh["households"].where(hh["households"] >= 0, 0.0).fillna(0.0)
    summary: dict[str, Any] = {
        "profile": prof.name, "categories": {},
        "rows_in_file": rows_file, "rows_total": int(len(hh)),
        "rows_outside_districts": rows_file - int(len(hh)),
        "households_total": float(w.sum()),
        "batch": {k: info[k] for k in ("halo_m", "exact_m", "max_snap_m", "min_halo_m",
                                       "inputs_hash")},
        "partitions": [{k: v for k, v in r.items() if k not in ("dtypes", "finite_path")}
                       for r in records],
    }
    for name in cats:
        summary["categories"][name] = _category_summary(hh, w, name, prof)
    if siting is not None:
        summary["siting"] = siting
    summary["network"] = _one_connectivity(records)
    summary["versions"] = versions()
    summary["run_time_s"] = round(time.perf_counter() - started, 2)
    _reraise_warnings(records)
    diag = diagnostics.active()
    summary["warnings"] = diag.to_list() if diag is not None else []
    wait_maps = None
    if spec.maps:
        with step(f"maps: {len(tasks)} district map.html and province.html"
                  f"{' (submitted to the workers)' if client is not None else ''}"):
            summary["maps"], wait_maps = _maps(spec, hh, districts, dist_tab, fac, areas,
                                               stations, prof, cats, client, maps)
    with step("writing households.gpkg, districts.gpkg, districts.csv"):
        _write_tables(out, hh, dist_tab, areas, stations)
    if wait_maps is not None:
        with step("waiting for the district maps"):
            wait_maps()
    write_json(summary, out / "summary.json")  # last: a summary means a finished batch
    return BatchResult(hh, dist_tab, areas, summary, records)


def _category_summary(hh: gpd.GeoDataFrame, w: pd.Series, name: str, prof: Any) -> dict[str, Any]:
    """One category's province counts (rows and households per status, coverage, elderly)."""
    from geosvc.coverage import STATUSES, status_counts

    by_hh = status_counts(hh.assign(_w=w), name, weight="_w")
    rows = status_counts(hh, name)
    total = sum(by_hh.values())
    n_un = int(hh[unresolved_col(name)].sum())
    if n_un:
        diagnostics.warn("batch_status_unresolved",
                         f"{name}: {n_un} households have no facility within the halo and "
                         "a street component that leaves their partition: reported "
                         "'uncovered' (they may really be 'unreachable'); widen [batch] "
                         "halo_m to settle them", category=name, rows=n_un)
    return {
        "threshold_min": prof.category(name).threshold_min,
        "reach_m": prof.category(name).reach_m,
        **{f"rows_{s}": int(rows[s]) for s in STATUSES},
        **{f"households_{s}": by_hh[s] for s in STATUSES},
        "coverage_rate": by_hh["covered"] / total if total else float("nan"),
        "elderly_uncovered": float(hh["elderly"].where(
            np.isin(hh[status_col(name)], NOT_COVERED), 0.0).clip(lower=0).sum()),
        "rows_time_withheld": int(hh[beyond_halo_col(name)].sum()),
        "rows_status_unresolved": n_un,
    }


def _write_tables(out: Path, hh: gpd.GeoDataFrame, dist_tab: gpd.GeoDataFrame,
                  areas: dict[str, Any], stations: gpd.GeoDataFrame | None) -> None:
    """households.gpkg, districts.gpkg (districts, areas, stations) and districts.csv."""
    from geosvc.io import write_csv, write_gpkg

    write_gpkg({"households": hh}, out / "households.gpkg")
    layers = {"district": dist_tab, **areas}
    if stations is not None:
        layers["stations"] = stations
    write_gpkg(layers, out / "districts.gpkg")
    write_csv(pd.DataFrame(dist_tab.drop(columns=dist_tab.geometry.name)), out / "districts.csv")


def _links(hh: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> dict[str, str]:
    """District id -> its ``map.html`` (relative), for every district owning households."""
    from geosvc.batch._maps import district_map_path

    owning = set(hh["district_id"].unique())
    return {str(aid): district_map_path(str(aid)) for aid in districts["area_id"]
            if aid in owning}


def _submit_province_map(spec: Any, hh: gpd.GeoDataFrame, districts: gpd.GeoDataFrame,
                         dist_tab: gpd.GeoDataFrame, stations: Any, prof: Any, cats: list[str],
                         client: Any) -> Any:
    """Submit ``province.html`` to the Dask workers (with the household columns it draws
    only); returns its future."""
    from geosvc.batch._maps import map_households, write_province_map

    return client.submit(write_province_map, spec, map_households(hh, cats), dist_tab,
                         stations, prof, cats, _links(hh, districts), pure=False, priority=1,
                         key=f"geosvc-map-province-{uuid.uuid4().hex[:8]}")


def _maps(spec: Any, hh: gpd.GeoDataFrame, districts: gpd.GeoDataFrame,
          dist_tab: gpd.GeoDataFrame, fac: gpd.GeoDataFrame, areas: dict[str, Any],
          stations: Any, prof: Any, cats: list[str], client: Any, futures: list[Any]
          ) -> tuple[dict[str, Any], Callable[[], None] | None]:
    """Every district's ``map.html`` and the province map linking to them.

    With a Dask ``client`` each district map is submitted to its workers as soon as its job
    is cut (``futures`` holds the province map, submitted earlier) and the returned callable
    waits for them all (raising the first failure); else they are drawn here.
    """
    from geosvc.batch._maps import (
        PROVINCE_MAP,
        district_map_jobs,
        render_district_map,
        write_province_map,
    )

    margin = max(prof.category(c).reach_m for c in cats)
    links = _links(hh, districts)
    jobs = district_map_jobs(spec, hh, districts, fac, areas, stations, prof, cats, margin)
    if client is None:
        for _, job in jobs:
            render_district_map(job)
        write_province_map(spec, hh, dist_tab, stations, prof, cats, links)
        return {"province": PROVINCE_MAP, "districts": links}, None
    tag = uuid.uuid4().hex[:8]
    for aid, job in jobs:  # each job is on its way while the next is cut
        futures.append(client.submit(render_district_map, job, pure=False,
                                     key=f"geosvc-map-{aid}-{tag}"))

    def wait() -> None:
        client.gather(futures)

    return {"province": PROVINCE_MAP, "districts": links}, wait


def _siting(spec: Any, cache: PartitionCache, tasks: list[PartitionTask], cats: list[str],
            dist_tab: gpd.GeoDataFrame) -> tuple[Any, dict[str, Any], gpd.GeoDataFrame]:
    """The province plan (see :mod:`geosvc.batch._siting`) and its per-district columns."""
    from geosvc.batch._siting import province_siting

    frames, recs = [], []
    for task in tasks:
        st, rec = cache.district_siting(task.id)
        frames.append(st)
        recs.append({"id": task.id, "siting": rec})
    stations, summary, table = province_siting(recs, frames, spec.siting, cats)
    if stations is None:
        stations = gpd.GeoDataFrame({"district_id": [], "category": [], "rank": []},
                                    geometry=[], crs=dist_tab.crs)
    merged = dist_tab.merge(table, on="area_id", how="left")
    return stations, summary, gpd.GeoDataFrame(merged, geometry=dist_tab.geometry.name,
                                               crs=dist_tab.crs)


def _one_connectivity(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The connectivity mode every partition used; partitions that disagree are an error.

    With ``connectivity = "auto"`` each partition decides from its own lines; a layer whose
    character changes across the province (clean OSM export here, raw CAD lines there) could
    be joined differently on the two sides of a border, so the batch stops and asks for an
    explicit mode instead of merging two networks built by different rules.
    """
    modes: dict[str, list[str]] = {}
    for rec in records:
        mode = rec.get("connectivity")
        if mode is not None:
            modes.setdefault(str(mode), []).append(str(rec.get("id", "?")))
    if len(modes) > 1:
        detail = "; ".join(f"{m}: {', '.join(ids[:5])}" for m, ids in sorted(modes.items()))
        raise InputError(f"partitions decided the road connectivity differently ({detail}); "
                         "set inputs.connectivity = 'endpoints' (clean/OSM-derived lines) or "
                         "'crossings' (raw lines through junctions) in the config")
    return {"connectivity": next(iter(modes), "unknown"), "components": "all",
            "min_component_nodes": 1}


def _reraise_warnings(records: list[dict[str, Any]]) -> None:
    """Each partition's warnings once per distinct message, naming the partitions (a
    facility in the overlap of several halos is reported by each of them)."""
    seen: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}
    for rec in records:
        for w in rec.get("warnings", []):
            seen.setdefault((w["code"], w["message"]), (w, []))[1].append(str(rec["id"]))
    for (code, message), (w, ids) in seen.items():
        data = {k: v for k, v in w.items() if k not in ("code", "message")}
        diagnostics.warn(code, f"partitions {', '.join(ids)}: {message}", partitions=ids, **data)
