"""One partition of a batch: read a study area plus its halo, analyse, keep what is exact.

Why the results are exact (see the README section "Many districts"):

* a walk of length L from a household never leaves the disc of radius L around it (every
  edge is at least as long as the straight line between its ends, access legs are straight
  lines), so every street, gate and facility a walk of length <= ``exact_m`` uses lies in
  the loaded box when the halo is ``exact_m + max_snap_m`` (street lines are read whole, so
  the facility at the far end snaps to the same edge as in the whole network);
* the 2SFCA catchments reach ``reach`` beyond a facility that is itself within ``reach``:
  the halo is at least ``2 * reach + max_snap_m``;
* a partition distance ``d <= exact_m`` equals the whole network's distance; a larger one
  only proves that the true one is larger than ``exact_m``: such times are withheld (NaN,
  ``beyond_halo_<cat>``), their status is proven by the household's street component when
  that component lies wholly inside the box (shrunk by two snap distances), else it stays
  ``uncovered`` with ``unresolved_<cat>`` set (it may really be ``unreachable``).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geosvc._errors import InputError
from geosvc._schema import (
    beyond_halo_col,
    covered,
    limiting_subtype_col,
    nearest_id_col,
    status_col,
    time_any_col,
    time_col,
    unresolved_col,
)
from geosvc.resources import peak_rss_bytes

__all__ = ["BatchInputs", "PartitionTask", "run_partition", "read_partition", "is_finished",
           "resolve_paths", "fix_unreachable"]

KEY_GRID_M = 0.01  # node coordinates are snapped to this grid when lines are noded
COMPONENTS_FILE = "components.npz"
_IN_PARTITION: contextvars.ContextVar[bool] = contextvars.ContextVar("geosvc_in_partition",
                                                                      default=False)


class _QuietCut(logging.Filter):
    """Drops the network-components warning lines raised inside a partition (the cut
    leaves pieces at the box's rim; they are not a property of the data)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_IN_PARTITION.get() and "disconnected network components" in
                    record.getMessage())


DONE_FILE = "partition.json"
HOUSEHOLDS_FILE = "households.gpkg"


@dataclass(frozen=True)
class BatchInputs:
    """Province-wide input files (all in one projected CRS; read by bounding box)."""

    roads: str
    households: str
    facilities: str
    compounds: str | None = None
    layers: dict[str, str | None] = field(default_factory=dict)
    household_columns: dict[str, Any] = field(default_factory=dict)
    #: ``endpoints``/``crossings``/``auto``; with ``auto`` every partition decides from its
    #: own lines and the merge refuses partitions that decided differently.
    connectivity: str = "auto"


@dataclass(frozen=True)
class PartitionTask:
    """Everything a worker needs for one study area (small and picklable)."""

    id: str
    name: str
    polygon_wkb: bytes
    earlier_wkb: tuple[bytes, ...]
    bbox: tuple[float, float, float, float]
    inputs: BatchInputs
    profile_name: str
    profile_overrides: dict[str, Any]
    categories: tuple[str, ...] | None
    radius_method: str
    halo_m: float
    exact_m: float
    max_snap_m: float
    inputs_hash: str
    out_root: str
    siting: Any = None  #: a :class:`geosvc.batch._siting.BatchSiting`, or None


def _read_box(path: str, layer: str | None, bbox: tuple[float, float, float, float]
              ) -> gpd.GeoDataFrame:
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer, bbox=bbox, fid_as_index=True)
    except Exception as exc:  # pyogrio raises its own DataSourceError hierarchy
        raise InputError(f"{path}: cannot read layer {layer or '(first)'} by bounding box "
                         f"({exc})") from exc
    gdf = gdf.sort_index()
    gdf["source_fid"] = gdf.index.to_numpy(dtype=np.int64)
    return gdf.reset_index(drop=True)


def is_finished(folder: Path, inputs_hash: str) -> bool:
    """True when ``folder`` holds a finished partition computed from the same inputs."""
    done = folder / DONE_FILE
    if not done.is_file() or not (folder / HOUSEHOLDS_FILE).is_file():
        return False
    try:
        return bool(json.loads(done.read_text())["inputs_hash"] == inputs_hash)
    except (ValueError, KeyError):
        return False


def run_partition(task: PartitionTask) -> dict[str, Any]:
    """Analyse one partition and write it atomically into ``<out_root>/partitions/<id>/``.

    Returns the partition's record (also written as ``partition.json``); a finished
    partition with the same inputs hash is not recomputed (``"skipped": True``).
    """
    folder = Path(task.out_root) / "partitions" / task.id
    if is_finished(folder, task.inputs_hash):
        rec = dict(json.loads((folder / DONE_FILE).read_text()))
        rec["skipped"] = True
        return rec
    t0 = time.perf_counter()
    owned, stats, comps, siting = _analyse(task)
    rec = {"id": task.id, "name": task.name, "inputs_hash": task.inputs_hash,
           "rows_owned": int(len(owned)), "run_time_s": round(time.perf_counter() - t0, 2),
           # VmHWM: the worker's own high-water mark (ru_maxrss of a spawned process starts
           # from its parent's resident size at the fork, here the Dask client's)
           "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1),
           "pid": os.getpid(), "dtypes": {c: str(t) for c, t in owned.dtypes.items()
                                           if c != owned.geometry.name},
           **stats}
    _write_atomic(folder, owned, rec, comps, siting)
    rec["skipped"] = False
    return rec


def _write_atomic(folder: Path, owned: gpd.GeoDataFrame, rec: dict[str, Any],
                  comps: dict[str, Any], siting: tuple[Any, Any] | None = None) -> None:
    from geosvc.io import write_gpkg, write_json

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        write_gpkg({"households": owned}, tmp / HOUSEHOLDS_FILE)
        np.savez_compressed(tmp / COMPONENTS_FILE, **comps)
        if siting is not None:
            from geosvc.batch._siting import write_district_siting

            write_district_siting(tmp, *siting)
        write_json(rec, tmp / DONE_FILE)
        if folder.exists():  # stale (other inputs): replaced as a whole
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_partition(folder: Path) -> gpd.GeoDataFrame:
    """Read a finished partition's households back with their original dtypes."""
    rec = json.loads((folder / DONE_FILE).read_text())
    gdf = pyogrio.read_dataframe(folder / HOUSEHOLDS_FILE, layer="households", use_arrow=True)
    for col, dtype in rec["dtypes"].items():
        if col not in gdf.columns:
            continue
        if dtype == "bool":
            gdf[col] = gdf[col].astype(bool)
        elif dtype == "object" or dtype.startswith(("str", "string")):
            gdf[col] = gdf[col].astype(object).where(gdf[col].notna(), None)
        else:
            gdf[col] = gdf[col].astype(dtype)
    return gdf


def _analyse(task: PartitionTask) -> tuple[gpd.GeoDataFrame, dict[str, Any], dict[str, Any],
                                          tuple[Any, Any] | None]:
    from geosvc import diagnostics

    token = _IN_PARTITION.set(True)
    quiet = _QuietCut()
    logging.getLogger("geosvc.diagnostics").addFilter(quiet)
    try:
        with diagnostics.collect(diagnostics.Diagnostics()) as diag:
            owned, stats, comps, siting = _analyse_inner(task)
    finally:
        logging.getLogger("geosvc.diagnostics").removeFilter(quiet)
        _IN_PARTITION.reset(token)
    # disconnected pieces at the box's rim are an artefact of the cut, not of the data
    stats["warnings"] = [w for w in diag.to_list() if w["code"] != "network_components"]
    return owned, stats, comps, siting


def _analyse_inner(task: PartitionTask
                   ) -> tuple[gpd.GeoDataFrame, dict[str, Any], dict[str, Any],
                              tuple[Any, Any] | None]:
    from geosvc.network import network_from_lines
    from geosvc.pipeline import Inputs, run_coverage
    from geosvc.standards import load_profile

    prof = load_profile(task.profile_name, overrides=task.profile_overrides)
    inp = task.inputs
    ly = inp.layers
    roads = _read_box(inp.roads, ly.get("roads"), task.bbox)
    if roads.empty:
        raise InputError(f"partition {task.id}: no road lines within {task.halo_m:.0f} m of "
                         "the study area")
    # every street component is kept: whether a piece is a "fragment" depends on the size of
    # the network it sits in, which a partition cuts (the merge judges components instead).
    # The compiled arrays directly, as `geosvc run` reads a line layer (no networkx graph:
    # its round trip cost a third of a partition's time)
    net = network_from_lines(roads, crs=roads.crs, connectivity=inp.connectivity,
                             components="all", min_component_nodes=1)
    decided = str(net.graph_attrs.get("network_report", {}).get("connectivity",
                                                                inp.connectivity))
    hh = _read_box(inp.households, ly.get("households"), task.bbox)
    fac = _read_box(inp.facilities, ly.get("facilities"), task.bbox)
    comp = (_read_box(inp.compounds, ly.get("compounds"), task.bbox)
            if inp.compounds else None)
    cols = dict(inp.household_columns)
    if cols.get("id_col") is None:
        cols["id_col"] = "source_fid"
    inputs = Inputs(f"partition {task.id}", None, net, hh.to_crs(net.crs), fac.to_crs(net.crs),
                    {}, comp, [], cols)
    res = run_coverage(inputs, profile=prof, categories=list(task.categories)
                       if task.categories else None, radius_method=task.radius_method)
    out = res.households
    node_ok = _complete_components(net, task)
    label = net.node_component
    edge = res.household_anchors.edge
    snapped = edge >= 0
    h_comp = np.full(len(out), -1, dtype=np.int64)
    h_comp[snapped] = label[net.edge_u[edge[snapped]]]
    h_comp_ok = np.zeros(len(out), dtype=bool)
    h_comp_ok[snapped] = node_ok[net.edge_u[edge[snapped]]]
    stats: dict[str, Any] = {"rows_loaded": int(len(out)), "nodes": int(net.n_nodes),
                             "edges": int(net.n_edges), "facilities_loaded": int(len(fac)),
                             "connectivity": decided}
    for name in res.categories:
        _make_exact(out, prof.category(name), task.exact_m, h_comp_ok)
    out["_comp"] = h_comp
    mask = _owned(out, task)
    siting = None
    if task.siting is not None:
        from geosvc.batch._siting import district_plans

        siting = district_plans(net, res, mask, task.polygon_wkb, task.id, task.siting,
                                task.earlier_wkb)
    owned = out.loc[mask].reset_index(drop=True)
    owned.insert(0, "district_id", task.id)
    flags = [c for c in owned.columns if c.startswith("_finite_")]
    stats["finite_path"] = {c[len("_finite_"):]: bool(owned[c].any()) for c in flags}
    owned = owned.drop(columns=flags)
    comps = _component_table(net, res, task, [c for c in out.columns if c.startswith("status_")])
    return owned, stats, comps, siting


def _component_table(net: Any, res: Any, task: PartitionTask, status_cols: list[str]
                     ) -> dict[str, Any]:
    """Node keys per component and, per status column, the components holding a facility
    of that kind that snaps here exactly as in the whole network (for the merge's proof that
    a household beyond the halo still has a path, i.e. is ``uncovered``)."""
    label = net.node_component
    n_comp = int(label.max()) + 1 if len(label) else 0
    keys = np.round(net.node_xy / KEY_GRID_M).astype(np.int64)
    fac = res.facilities
    anchors = res.facility_anchors
    xy = shapely.get_coordinates(fac.geometry.to_numpy())
    minx, miny, maxx, maxy = task.bbox
    m = 2.0 * task.max_snap_m + 1.0
    well = anchors.ok & (xy[:, 0] > minx + m) & (xy[:, 1] > miny + m) & \
        (xy[:, 0] < maxx - m) & (xy[:, 1] < maxy - m)
    f_comp = np.where(well, label[net.edge_u[np.clip(anchors.edge, 0, None)]], -1)
    category = fac["category"].to_numpy().astype(str)
    subtype = fac["subtype"].to_numpy().astype(str)
    table: dict[str, Any] = {"keys": keys, "label": label.astype(np.int64)}
    for col in status_cols:
        name = next(c for c in res.categories if col == f"status_{c}" or
                    col.startswith(f"status_{c}_"))
        sub = col[len(f"status_{name}_"):] if col != f"status_{name}" else None
        kind = (category == name) & (subtype == sub if sub is not None else True) & well
        has = np.zeros(n_comp, dtype=bool)
        has[f_comp[kind]] = True
        table[f"has__{col}"] = has
    return table


def _complete_components(net: Any, task: PartitionTask) -> np.ndarray:
    """Per node: its street component lies wholly inside the box shrunk by 2 snap distances.

    Such a component is a whole component of the full network with the same facilities
    snapped to it, so every distance inside it is exact (including infinity).
    """
    minx, miny, maxx, maxy = task.bbox
    m = 2.0 * task.max_snap_m + 1.0
    b = shapely.bounds(net.edge_geometry)
    inside = (b[:, 0] > minx + m) & (b[:, 1] > miny + m) & (b[:, 2] < maxx - m) & \
        (b[:, 3] < maxy - m)
    label = net.node_component
    n_comp = int(label.max()) + 1 if len(label) else 0
    bad = np.zeros(n_comp, dtype=bool)
    bad[label[net.edge_u[~inside]]] = True
    return ~bad[label]


def _make_exact(out: gpd.GeoDataFrame, cat: Any, exact_m: float, comp_ok: np.ndarray) -> None:
    """Withhold times the partition cannot prove; settle or flag the statuses they decide.

    Adds ``beyond_halo_<cat>`` (a time of this category was withheld), ``unresolved_<cat>``
    (a status is ``uncovered`` but may really be ``unreachable``) and, per status column,
    a private ``_finite_<status column>`` flag for the whole-run "unreachable" rule.
    """
    name = cat.name
    speed = cat.speed_m_s
    time_cols = [c for c in out.columns if c.startswith(f"time_{name}") and c.endswith("_min")]
    dist = {c: out[c].to_numpy(dtype=float) * 60.0 * speed for c in time_cols}
    withheld = {c: ~np.isnan(d) & ~covered(d, exact_m) & ~comp_ok for c, d in dist.items()}
    beyond = np.zeros(len(out), dtype=bool)
    for w in withheld.values():
        beyond |= w
    unresolved = np.zeros(len(out), dtype=bool)
    main_path = time_any_col(name) if time_any_col(name) in dist else time_col(name)
    for col in [c for c in out.columns if c.startswith(status_col(name))]:
        sub = col[len(status_col(name)):]
        path = main_path if sub == "" else f"time_{name}{sub}_min"
        d, w = dist[path], withheld[path]
        st = out[col].to_numpy(dtype=object).copy()
        open_ = np.isin(st, ["uncovered", "unreachable"])
        st[open_ & ~w & np.isinf(d)] = "unreachable"  # whole-run rule applied at the merge
        st[open_ & ~w & np.isfinite(d)] = "uncovered"
        st[open_ & w] = "uncovered"
        unresolved |= open_ & w
        out[col] = st
        out[f"_unres_{col}"] = open_ & w
        out[f"_finite_{col}"] = np.isfinite(d) & ~w
    for col, w in withheld.items():
        vals = out[col].to_numpy(dtype=float).copy()
        vals[w] = np.nan
        out[col] = vals
    nearest, limiting = nearest_id_col(name), limiting_subtype_col(name)
    if nearest in out.columns:
        out[nearest] = out[nearest].where(~withheld[main_path], None)
    if limiting in out.columns:
        out[limiting] = out[limiting].where(~withheld[time_col(name)], None)
    out[beyond_halo_col(name)] = beyond
    out[unresolved_col(name)] = unresolved


def _owned(out: gpd.GeoDataFrame, task: PartitionTask) -> np.ndarray:
    """Rows whose point lies in this area and in no area listed before it."""
    from geosvc.access import point_xy

    xy = point_xy(out.geometry.to_numpy())
    ok = np.isfinite(xy).all(axis=1)
    pts = shapely.points(np.where(ok[:, None], xy, 0.0))
    poly = shapely.from_wkb(task.polygon_wkb)
    shapely.prepare(poly)
    mine = ok & shapely.covers(poly, pts)
    for wkb in task.earlier_wkb:
        other = shapely.from_wkb(wkb)
        mine &= ~shapely.covers(other, pts)
    return np.asarray(mine)


def fix_unreachable(households: pd.DataFrame, records: list[dict[str, Any]],
                    proven: dict[str, bool]) -> None:
    """The whole-run rule: a status column whose facilities nobody reaches has no
    ``unreachable`` rows (see :func:`geosvc.coverage.analyse_coverage`)."""
    for col in [c for c in households.columns if c.startswith("status_")]:
        if not proven.get(col) and not any(r.get("finite_path", {}).get(col, False)
                                           for r in records):
            households[col] = households[col].where(households[col] != "unreachable",
                                                    "uncovered")


def _junction_index(keys: np.ndarray) -> np.ndarray:
    """One index per distinct node key (a row of two grid coordinates), as
    ``np.unique(keys, axis=0, return_inverse=True)`` numbers them: each row becomes one
    integer ``dx * span_y + dy`` (the same lexicographic order), unique over a flat array
    (10x faster than over rows); rows whose code would not fit in 62 bits go the slow way."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    lo = keys.min(axis=0)
    span = keys.max(axis=0) - lo + 1
    if float(span[0]) * float(span[1]) >= 2.0**62:
        return np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)
    code = (keys[:, 0] - lo[0]) * span[1] + (keys[:, 1] - lo[1])
    return np.unique(code, return_inverse=True)[1].reshape(-1)


def resolve_paths(households: pd.DataFrame, folders: list[Path], ids: list[str]
                  ) -> dict[str, bool]:
    """Settle ``uncovered`` vs ``unreachable`` for households beyond the halo.

    The partitions' street components are joined where they share a node (the same
    coordinates in two partitions are the same junction of the whole network; the union
    of partition graphs never connects what the whole network does not).  A household
    whose joined component holds a facility of the kind (snapped exactly) has a path: it is
    proven ``uncovered``.  The others keep ``unresolved_<cat>``.  Drops the private
    ``_unres_*`` and ``_comp`` columns; returns, per status column, whether any household
    was proven to reach a facility.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    tabs = [dict(np.load(f / COMPONENTS_FILE)) for f in folders]
    sizes = [int(t["label"].max()) + 1 if len(t["label"]) else 0 for t in tabs]
    offset = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n_comp = int(offset[-1])
    keys = np.concatenate([t["keys"] for t in tabs]) if tabs else np.zeros((0, 2), np.int64)
    comp_of_node = np.concatenate([t["label"] + offset[i] for i, t in enumerate(tabs)])
    key_idx = _junction_index(keys)
    n = n_comp + int(key_idx.max()) + 1 if len(key_idx) else n_comp
    graph = coo_matrix((np.ones(len(key_idx)), (comp_of_node, n_comp + key_idx)), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    part = pd.Series(range(len(ids)), index=ids).reindex(households["district_id"]).to_numpy()
    local = households["_comp"].to_numpy(dtype=np.int64)
    comp_g = np.where(local >= 0, offset[part] + local, -1)
    proven_any: dict[str, bool] = {}
    for col in [c for c in households.columns if c.startswith("_unres_")]:
        status_col = col[len("_unres_"):]
        has = np.zeros(n, dtype=bool)
        for i, t in enumerate(tabs):
            lab = np.flatnonzero(t[f"has__{status_col}"])
            has[group[offset[i] + lab]] = True
        unres = households[col].to_numpy(dtype=bool)
        proven = unres & (comp_g >= 0) & has[group[np.clip(comp_g, 0, None)]]
        households[col] = unres & ~proven
        proven_any[status_col] = bool(proven.any())
    cats = sorted({c[len("unresolved_"):] for c in households.columns
                   if c.startswith("unresolved_")})
    for cat in cats:
        cols = [c for c in households.columns if c == f"_unres_status_{cat}" or
                c.startswith(f"_unres_status_{cat}_")]
        households[f"unresolved_{cat}"] = households[cols].any(axis=1).to_numpy()
    for col in [c for c in households.columns if c.startswith("_unres_") or c == "_comp"]:
        del households[col]
    return proven_any
