"""Batch over many districts: the merged partitions equal the single-machine run.

The oracle is the whole-province run of the ordinary pipeline on the same files (one
network, no partitions, no halo); the generated province has facilities right on the
partition borders (some inside gated compounds the borders cut), a street island without
facilities across a border (unreachable), an island with its own station, an off-network,
an invalid and a geometry-less household.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.affinity

from geosvc import diagnostics
from geosvc._errors import ConfigError
from geosvc.batch import (
    BatchError,
    BatchInputs,
    BatchSpec,
    generate_province,
    min_halo_m,
    run_batch,
)
from geosvc.coverage import aggregate_areas
from geosvc.network import compile_network, graph_from_lines
from geosvc.pipeline import Inputs, run_coverage
from geosvc.standards import load_profile

# short circles keep the halo (2 x reach + snap) well inside the 4 km x 3 km province
OVERRIDES = {"categories.elderly_care.threshold_min": 5.0,
             "categories.convenience.threshold_min": 5.0,
             "categories.elderly_care.radius_m": 300.0,
             "categories.convenience.radius_m": 300.0,
             "network.max_snap_m": 150.0}
COLUMNS = {"id_col": "building_id"}


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate_province(tmp_path_factory.mktemp("province"), seed=7, scale=0.25,
                             grid=(2, 2))


def _spec(paths: dict[str, Path], out: Path, **kw: object) -> BatchSpec:
    inputs = BatchInputs(roads=str(paths["roads"]), households=str(paths["households"]),
                         facilities=str(paths["facilities"]),
                         compounds=str(paths["compounds"]), household_columns=COLUMNS)
    base: dict = {"districts": str(paths["districts"]), "inputs": inputs, "out": str(out),
                  "profile_overrides": OVERRIDES, "maps": False,
                  "areas": {"community": {"path": str(paths["communities"]),
                                          "id": "community_id", "name": "name"}}}
    base.update(kw)
    return BatchSpec(**base)


@pytest.fixture(scope="module")
def single(province: dict[str, Path]):
    roads = gpd.read_file(province["roads"])
    G = graph_from_lines(roads, crs=roads.crs)
    inputs = Inputs("whole province", G, compile_network(G),
                    gpd.read_file(province["households"]),
                    gpd.read_file(province["facilities"]), {},
                    gpd.read_file(province["compounds"]), [], COLUMNS)
    return run_coverage(inputs, profile=load_profile(overrides=OVERRIDES))


@pytest.fixture(scope="module")
def batch(province: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("batch")
    with diagnostics.collect(diagnostics.Diagnostics()):
        return run_batch(_spec(province, out), scheduler="none"), out


def test_province_has_the_border_cases(province: dict[str, Path]) -> None:
    districts = gpd.read_file(province["districts"])
    fac = gpd.read_file(province["facilities"])
    comp = gpd.read_file(province["compounds"])
    borders = shapely.union_all(districts.boundary.to_numpy())
    on_border = fac[fac.geometry.distance(borders) < 1e-6]
    assert len(on_border) >= 10
    assert (on_border["compound_id"] >= 0).any()  # a station inside a cut compound
    cut = [g for g in comp.geometry if (districts.geometry.intersection(g).area > 1).sum() > 1]
    assert len(cut) == 4  # one per shared border


def _components(lines: np.ndarray) -> list[set[int]]:
    """Street components of raw lines by networkx: lines meet where one's end point lies on
    the other (shared ends and T-junctions; crossings without a shared point stay apart)."""
    import networkx as nx

    ends = np.unique(np.vstack([shapely.get_coordinates(shapely.get_point(lines, 0)),
                                shapely.get_coordinates(shapely.get_point(lines, -1))]),
                     axis=0)
    pi, li = shapely.STRtree(lines).query(shapely.points(ends), predicate="dwithin",
                                           distance=1e-6)
    G = nx.Graph()
    G.add_nodes_from(("line", i) for i in range(len(lines)))
    G.add_edges_from((("end", int(a)), ("line", int(b))) for a, b in zip(pi, li, strict=True))
    return [{i for kind, i in c if kind == "line"} for c in nx.connected_components(G)]


def test_province_is_generated_districts_joined_along_borders(province) -> None:
    """Four districts from the generator (seeds 7..10) side by side, their streets joined
    across every shared border into one connected network (apart from the two islands)."""
    from geosvc.datasets import generate_district

    districts = gpd.read_file(province["districts"])
    assert list(districts["district_id"]) == ["D1", "D2", "D3", "D4"]
    assert districts["name"].notna().all()
    roads = gpd.read_file(province["roads"])
    hh = gpd.read_file(province["households"])
    fac = gpd.read_file(province["facilities"])
    comp = gpd.read_file(province["compounds"])
    for frame, col in ((roads, "road_id"), (hh, "building_id"), (fac, "facility_id"),
                       (comp, "compound_id")):
        assert frame[col].is_unique, col
    # district k is the generator's district for seed 7 + k, moved onto its tile
    for k in range(4):
        d = generate_district(7 + k, scale=0.25)
        tile = fac[fac["facility_id"].str.startswith(f"D{k + 1}-")]
        assert len(tile) == len(d.facilities)
        shift = np.asarray(tile.geometry.iloc[0].coords[0]) - \
            np.asarray(d.facilities.geometry.iloc[0].coords[0])
        moved = d.buildings.geometry.translate(*shift).to_numpy()
        placed = hh[hh.geometry.notna()].reset_index(drop=True)
        src, dst = shapely.STRtree(placed.geometry.to_numpy()).query(moved, predicate="intersects")
        assert len(np.unique(src)) == len(d.buildings)
        mine = placed.iloc[np.unique(dst)]
        assert mine["households"].sum() == d.buildings["households"].sum()
    comps = sorted(_components(roads.geometry.to_numpy()), key=len, reverse=True)
    islands = [sorted(roads["name"].iloc[sorted(c)]) for c in comps[1:]]
    assert islands == [["island 0"], ["island 1"]]
    # the main component holds roads of every district and crosses every shared border
    main = roads.iloc[sorted(comps[0])]
    polys = districts.geometry.to_numpy()
    for i, j in itertools.combinations(range(4), 2):
        border = shapely.intersection(polys[i], polys[j])
        if border.length > 0:
            assert main.geometry.crosses(border).sum() >= 2, (i, j)
    for poly in polys:
        assert main.geometry.within(poly).sum() > 100


def test_merged_batch_equals_single_run(batch, single, province) -> None:
    res, _ = batch
    prof = load_profile(overrides=OVERRIDES)
    rows_file = len(gpd.read_file(province["households"]))
    b = res.households.set_index("hh_id")
    s = single.households.set_index("hh_id")
    assert b.index.is_unique
    # every row accounted: owned once, or outside every district (no geometry)
    assert res.summary["rows_in_file"] == rows_file == len(b) + 1
    assert res.summary["rows_outside_districts"] == 1
    s = s.loc[b.index]
    status_cols = [c for c in s.columns if c.startswith("status_")]
    assert len(status_cols) == 14
    for col in status_cols:
        assert (b[col] == s[col]).all(), col
    seen = set(np.concatenate([b[c].unique() for c in status_cols]))
    assert {"covered", "uncovered", "unreachable", "off_network", "invalid"} <= seen
    halo = res.summary["batch"]["halo_m"]
    exact_m = res.summary["batch"]["exact_m"]
    assert halo == pytest.approx(min_halo_m(prof))
    withheld_total = 0
    for col in [c for c in s.columns if c.startswith("time_")]:
        cat = "elderly_care" if col.startswith("time_elderly_care") else "convenience"
        speed = prof.category(cat).speed_m_s
        bv, sv = b[col].to_numpy(float), s[col].to_numpy(float)
        kept = ~np.isnan(bv)
        assert np.array_equal(np.isinf(bv[kept]), np.isinf(sv[kept])), col
        fin = kept & np.isfinite(bv)
        np.testing.assert_allclose(bv[fin], sv[fin], rtol=0, atol=1e-9, err_msg=col)
        # a withheld time is truly longer than the halo proves (or the row has no time)
        w = ~kept & ~np.isnan(sv)
        assert (sv[w] * 60 * speed > exact_m).all(), col
        # and every single-run time within the proven reach is kept
        assert not (np.isnan(bv) & (sv * 60 * speed <= exact_m)).any(), col
        assert (b.loc[w, f"beyond_halo_{cat}"]).all()
        withheld_total += int(w.sum())
    assert withheld_total > 100  # the halo really cuts (not a trivially whole network)
    for col in [c for c in s.columns if c.startswith(("access_index_", "radius_"))]:
        np.testing.assert_allclose(b[col].astype(float), s[col].astype(float), atol=1e-12,
                                   err_msg=col)
    for col in ["nearest_elderly_care_id", "nearest_convenience_id"]:
        kept = b[col].notna()
        assert (b.loc[kept, col] == s.loc[kept, col]).all()
    assert int(b[[c for c in b.columns if c.startswith("unresolved_")]].to_numpy().sum()) == 0


def test_cross_border_walks_are_used(batch, single, province) -> None:
    """Households are served by stations on, and beyond, their district's border."""
    res, _ = batch
    b = res.households
    fac = gpd.read_file(province["facilities"])
    served = b["nearest_elderly_care_id"].dropna()
    border_ids = set(fac.loc[fac["facility_id"].str.startswith("B"), "facility_id"])
    assert served.isin(border_ids).any()
    dist = gpd.read_file(province["districts"]).set_index("district_id")
    home = b.loc[served.index, "district_id"]
    fpts = fac.set_index("facility_id").geometry
    other = [not dist.geometry[d].covers(fpts[f]) for d, f in zip(home, served, strict=True)]
    assert any(other)


def test_district_table_counts_each_household_once(batch, single, province) -> None:
    res, out = batch
    prof = load_profile(overrides=OVERRIDES)
    districts = gpd.read_file(province["districts"]).rename(columns={"district_id": "area_id"})
    hh = single.households
    oracle = aggregate_areas(hh, districts, single.facilities, prof, single.categories,
                             level="district").set_index("area_id")
    got = res.districts.set_index("area_id")
    for col in [c for c in oracle.columns if c.endswith(("_coverage_rate", "_households_covered",
                                                         "_elderly_uncovered",
                                                         "_floor_area_m2", "_shortfall_m2"))]:
        np.testing.assert_allclose(got[col].astype(float), oracle[col].astype(float),
                                   err_msg=col)
    assert got["households"].sum() == pytest.approx(hh.loc[hh.geometry.notna() & (
        hh["households"] >= 0), "households"].sum())
    csv = pd.read_csv(out / "districts.csv")
    assert list(csv["area_id"]) == list(got.index)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["categories"]["elderly_care"]["rows_unreachable"] == 2
    assert {"district", "community"} <= set(gpd.list_layers(out / "districts.gpkg")["name"])


def test_rerun_skips_finished_partitions_and_resumes(province, tmp_path) -> None:
    spec = _spec(province, tmp_path)
    first = run_batch(spec, scheduler="none")
    shutil.rmtree(tmp_path / "partitions" / "D2")
    (tmp_path / "partitions" / "D4" / "partition.json").unlink()  # killed before it finished
    again = run_batch(spec, scheduler="none")
    computed = sorted(r["id"] for r in again.records if not r["skipped"])
    assert computed == ["D2", "D4"]
    pd.testing.assert_frame_equal(pd.DataFrame(first.households.drop(columns="geometry")),
                                  pd.DataFrame(again.households.drop(columns="geometry")))
    # other inputs (a different halo) invalidate every finished partition
    wider = run_batch(_spec(province, tmp_path, halo_m=1200.0), scheduler="none")
    assert not any(r["skipped"] for r in wider.records)
    assert wider.summary["categories"]["elderly_care"]["rows_time_withheld"] < \
        first.summary["categories"]["elderly_care"]["rows_time_withheld"]


def test_failing_partition_is_named_and_others_complete(province, tmp_path) -> None:
    districts = gpd.read_file(province["districts"])
    far = districts.iloc[[0]].copy()
    far["district_id"] = "FAR"
    far["geometry"] = far.geometry.translate(50_000, 0)
    path = tmp_path / "districts.gpkg"
    pd.concat([districts, far]).pipe(gpd.GeoDataFrame, crs=districts.crs).to_file(path)
    spec = _spec({**province, "districts": path}, tmp_path / "out")
    with pytest.raises(BatchError, match=r"1 of 5 partitions failed: FAR \(InputError: "
                       r"partition FAR: no road lines"):
        run_batch(spec, scheduler="none")
    done = sorted(p.name for p in (tmp_path / "out" / "partitions").iterdir())
    assert done == ["D1", "D2", "D3", "D4"]


def test_halo_narrower_than_the_reach_is_refused(province, tmp_path) -> None:
    with pytest.raises(ConfigError, match="halo_m = 500 is narrower than the 871 m"):
        run_batch(_spec(province, tmp_path, halo_m=500.0), scheduler="none")


def test_local_cluster_matches_in_process(batch, province, tmp_path) -> None:
    """Two threads on a Dask LocalCluster: the same merged households."""
    res, _ = batch
    got = run_batch(_spec(province, tmp_path), scheduler="threads:2")
    pd.testing.assert_frame_equal(pd.DataFrame(res.households.drop(columns="geometry")),
                                  pd.DataFrame(got.households.drop(columns="geometry")))


def _config(province: dict[str, Path], tmp_path: Path, districts: Path) -> Path:
    ov = "\n".join(f'"{k}" = {v}' for k, v in OVERRIDES.items())
    cfg = tmp_path / "province.toml"
    cfg.write_text(f"""
[inputs]
roads = "{province['roads']}"
households = "{province['households']}"
facilities = "{province['facilities']}"
compounds = "{province['compounds']}"
[inputs.households_columns]
id = "building_id"
[profile.overrides]
{ov}
[batch]
districts = "{districts}"
id = "district_id"
name = "name"
scheduler = "local:2"
[output]
folder = "{tmp_path / 'out'}"
""")
    return cfg


def test_cli_batch_on_a_local_cluster(province, tmp_path) -> None:
    """``geosvc batch`` with two worker processes, then a failing district: exit 2 naming it."""
    cfg = _config(province, tmp_path, province["districts"])
    proc = subprocess.run([sys.executable, "-m", "geosvc.cli", "batch", str(cfg)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4 partitions (4 computed" in proc.stdout
    assert (tmp_path / "out" / "households.gpkg").exists()
    districts = gpd.read_file(province["districts"])
    bad = districts.copy()
    bad.loc[3, "geometry"] = shapely.affinity.translate(bad.geometry.iloc[3], 50_000, 0)
    bad_path = tmp_path / "bad.gpkg"
    bad.to_file(bad_path)
    cfg = _config(province, tmp_path, bad_path)
    proc = subprocess.run([sys.executable, "-m", "geosvc.cli", "batch", str(cfg),
                           "--scheduler", "none"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("geosvc: error: 1 of 4 partitions failed: D4 (InputError: ")
    assert "D1: skipped (finished before)" in proc.stderr  # unchanged districts resume


def test_a_warning_of_overlapping_partitions_is_reported_once() -> None:
    from geosvc.batch._merge import _reraise_warnings

    w = {"code": "facilities_off_network", "message": "1 facility serves nobody", "n": 1}
    records = [{"id": "D1", "warnings": [w]}, {"id": "D2", "warnings": [w]},
               {"id": "D3", "warnings": []}]
    with diagnostics.collect(diagnostics.Diagnostics()) as diag:
        _reraise_warnings(records)
    assert [x.to_dict() for x in diag.warnings] == [
        {"code": "facilities_off_network", "message": "partitions D1, D2: 1 facility serves "
         "nobody", "partitions": ["D1", "D2"], "n": 1}]


def test_partitions_that_decide_connectivity_differently_are_refused() -> None:
    from geosvc._errors import InputError
    from geosvc.batch._merge import _one_connectivity

    same = [{"id": "A", "connectivity": "crossings"}, {"id": "B", "connectivity": "crossings"}]
    assert _one_connectivity(same)["connectivity"] == "crossings"
    mixed = [{"id": "A", "connectivity": "endpoints"}, {"id": "B", "connectivity": "crossings"}]
    with pytest.raises(InputError, match="set inputs.connectivity"):
        _one_connectivity(mixed)


def test_large_inputs_are_keyed_by_size_time_and_sampled_blocks(tmp_path, monkeypatch) -> None:
    import os

    import geosvc.batch as batch

    path = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(1).integers(0, 256, 3 * 2**20, dtype=np.uint8))
    path.write_bytes(bytes(data))
    full = batch._file_digest(str(path))
    monkeypatch.setattr(batch, "FULL_HASH_MAX_BYTES", 2**20)
    key = batch._file_digest(str(path))
    assert key.startswith("sampled:") and not full.startswith("sampled:")
    assert batch._file_digest(str(path)) == key  # stable across reruns
    st = os.stat(path)
    data[0] ^= 0xFF  # same size, same time, a sampled byte changed
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert batch._file_digest(str(path)) != key
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert batch._file_digest(str(path)) == key
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # touched: recomputed
    assert batch._file_digest(str(path)) != key


def test_work_estimates_count_rows_in_each_box(province, tmp_path) -> None:
    """The largest partitions start first; their size is the rows read in their box."""
    from geosvc.batch import _work_estimates, plan_partitions

    tasks, _ = plan_partitions(_spec(province, tmp_path))
    got = _work_estimates(tasks)
    roads = gpd.read_file(province["roads"])
    hh = gpd.read_file(province["households"])
    for t in tasks:
        box = shapely.box(*t.bbox)
        want = int(roads.intersects(box).sum()) + int(hh.intersects(box).sum())
        assert abs(got[t.id] - want) <= 0.01 * want, (t.id, got[t.id], want)


def test_junction_index_numbers_keys_as_unique_over_rows() -> None:
    """The merge's node-key numbering equals numpy's unique over rows (negative keys, repeats,
    and a span too wide for one 62-bit code, which takes numpy's own way)."""
    from geosvc.batch._partition import _junction_index

    rng = np.random.default_rng(3)
    for scale in (50, 4 * 10**8, 2**40):
        keys = rng.integers(-scale, scale, size=(3_000, 2), dtype=np.int64)
        keys = np.concatenate([keys, keys[::7]])  # shared junctions
        want = np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)
        assert np.array_equal(_junction_index(keys), want)
    assert len(_junction_index(np.zeros((0, 2), dtype=np.int64))) == 0
