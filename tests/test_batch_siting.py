"""Siting and maps in a batch: per-district plans, one global budget across the province,
the district maps and the province map linking to them.

Oracles: brute force over every allocation of the budget (the dynamic programme), brute force
over every set of k candidates on small random coverage instances (the per-district upper
curve brackets the true optimum), and the merged household table of the batch itself for the
owned-households-only counting (a district's new stations never cover more households than
the district has outside the circle).
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geosvc.batch import (
    BatchInputs,
    BatchSiting,
    BatchSpec,
    allocate_budget,
    generate_province,
    run_batch,
)
from geosvc.batch._siting import upper_curve

OVERRIDES = {"categories.elderly_care.threshold_min": 5.0,
             "categories.convenience.threshold_min": 5.0,
             "categories.elderly_care.radius_m": 300.0,
             "categories.convenience.radius_m": 300.0,
             "network.max_snap_m": 150.0}
CATS = ("elderly_care", "convenience")


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate_province(tmp_path_factory.mktemp("province4"), seed=7, scale=0.25,
                             grid=(2, 2))


def _spec(paths: dict[str, Path], out: Path, siting: BatchSiting, *, maps: bool = False
          ) -> BatchSpec:
    inputs = BatchInputs(roads=str(paths["roads"]), households=str(paths["households"]),
                         facilities=str(paths["facilities"]),
                         compounds=str(paths["compounds"]),
                         household_columns={"id_col": "building_id"})
    return BatchSpec(districts=str(paths["districts"]), inputs=inputs, out=str(out),
                     profile_overrides=OVERRIDES, siting=siting, maps=maps, lang="en")


@pytest.fixture(scope="module")
def per_district(province, tmp_path_factory):
    out = tmp_path_factory.mktemp("per_district")
    return run_batch(_spec(province, out, BatchSiting(budget="district", k=3), maps=True),
                     scheduler="none"), out


@pytest.fixture(scope="module")
def global_budget(province, tmp_path_factory):
    out = tmp_path_factory.mktemp("global")
    return run_batch(_spec(province, out, BatchSiting(budget="province", k=5)),
                     scheduler="none"), out


def _brute_allocation(curves: list[np.ndarray], budget: int) -> float:
    best = -np.inf
    ranges = [range(min(len(c) - 1, budget) + 1) for c in curves]
    for alloc in itertools.product(*ranges):
        if sum(alloc) <= budget:
            best = max(best, sum(float(c[a]) for c, a in zip(curves, alloc, strict=True)))
    return best


def test_allocation_equals_brute_force_on_random_curves() -> None:
    rng = np.random.default_rng(3)
    for _ in range(40):
        d, k = int(rng.integers(1, 5)), int(rng.integers(0, 7))
        # not concave on purpose: a DP must not rely on diminishing returns
        curves = [np.concatenate([[0.0], np.cumsum(rng.integers(0, 9, size=k))]).astype(float)
                  for _ in range(d)]
        alloc, value = allocate_budget(curves, k)
        assert alloc.sum() <= k
        assert value == pytest.approx(sum(c[a] for c, a in zip(curves, alloc, strict=True)))
        assert value == pytest.approx(_brute_allocation(curves, k))


def _greedy(cover: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    covered = np.zeros(cover.shape[1], dtype=bool)
    gains = []
    for _ in range(k):
        g = (cover & ~covered) @ w
        if g.max() <= 0:
            break
        best = int(np.argmax(g))
        gains.append(float(g[best]))
        covered |= cover[best]
    return np.asarray(gains)


def test_upper_curve_brackets_the_brute_force_optimum() -> None:
    rng = np.random.default_rng(11)
    for _ in range(25):
        n_c, n_d, k = 7, 12, 4
        cover = rng.random((n_c, n_d)) < 0.3
        w = rng.integers(1, 10, size=n_d).astype(float)
        gains = _greedy(cover, w, k)
        opt = [0.0] + [max(float(w[cover[list(s)].any(axis=0)].sum())
                           for s in itertools.combinations(range(n_c), kk))
                       for kk in range(1, k + 1)]
        u = upper_curve(gains, k, plan_bound_gain=float(w.sum()), greedy=True)
        f = np.concatenate([[0.0], np.cumsum(gains)])
        f = np.concatenate([f, np.full(k + 1 - len(f), f[-1])])
        assert np.all(f <= np.asarray(opt) + 1e-9)
        assert np.all(u >= np.asarray(opt) - 1e-9), (u, opt)


def _owned_open(res, cat: str) -> pd.Series:
    hh = res.households
    w = hh["households"].where(hh["households"] > 0, 0.0).fillna(0.0)
    return w[hh[f"status_{cat}"] != "covered"].groupby(hh["district_id"]).sum()


def test_per_district_plans(per_district, province) -> None:
    res, out = per_district
    districts = gpd.read_file(province["districts"]).set_index("district_id")
    st = gpd.read_file(out / "districts.gpkg", layer="stations")
    assert len(st) > 0
    for (did, _cat), grp in st.groupby(["district_id", "category"]):
        assert len(grp) <= 3
        assert list(grp["rank"]) == list(range(1, len(grp) + 1))
        # stations of a district lie in it
        assert shapely.covers(districts.geometry[did], grp.geometry.to_numpy()).all()
    tab = pd.read_csv(out / "districts.csv").set_index("area_id")
    for cat in CATS:
        counts = st[st["category"] == cat].groupby("district_id").size()
        assert (tab[f"stations_{cat}"] == counts.reindex(tab.index, fill_value=0)).all()
        new = st[st["category"] == cat].groupby("district_id")["households_new"].sum()
        assert np.allclose(tab[f"households_new_{cat}"], new.reindex(tab.index, fill_value=0))
        # owned households only: never more than the district has outside the circle
        open_ = _owned_open(res, cat).reindex(tab.index, fill_value=0)
        assert (tab[f"households_new_{cat}"] <= open_ + 1e-6).all()
        assert (tab[f"coverage_after_{cat}"] >= tab[f"coverage_before_{cat}"] - 1e-12).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["siting"]["counting"] == "owned households only"
    assert summary["siting"]["categories"]["elderly_care"]["stations"] == \
        int(tab["stations_elderly_care"].sum())


def test_owned_counting_equals_point_in_polygon(per_district, province) -> None:
    """Every district counts exactly the households it owns: an independent count by shapely
    point-in-polygon on the raw households file and the district polygons, a household on a
    shared border going to the district listed first."""
    res, out = per_district
    raw = gpd.read_file(province["households"])
    districts = gpd.read_file(province["districts"])
    pts = raw.geometry.to_numpy()
    owner = np.full(len(raw), "", dtype=object)
    for did, poly in zip(districts["district_id"], districts.geometry.to_numpy(), strict=True):
        owner[(owner == "") & shapely.covers(poly, pts)] = did
    raw["owner"] = owner
    on_border = shapely.covers(shapely.union_all(districts.boundary.to_numpy()), pts)
    assert on_border.sum() >= 4  # one in every border compound
    assert set(raw.loc[on_border, "owner"]) == {"D1", "D2", "D3"}  # first listed wins
    mine = raw[raw["owner"] != ""].set_index("building_id")
    got = res.households.set_index("building_id")
    pd.testing.assert_series_equal(got["district_id"].astype(object).sort_index(),
                                   mine["owner"].astype(object).sort_index(),
                                   check_names=False)
    for did in districts["district_id"]:
        own = mine[mine["owner"] == did]
        hh = own["households"].where(own["households"] > 0, 0.0)
        for cat in CATS:
            rec = json.loads((out / "partitions" / did / "siting.json").read_text())[cat]
            covered = (got.loc[own.index, f"status_{cat}"] == "covered").to_numpy()
            weight = own[rec["weight"]].where(own[rec["weight"]] > 0, 0.0).to_numpy()
            assert rec["fixed_weight"] == pytest.approx(weight[covered].sum()), (did, cat)
            assert rec["coverage_before"] == pytest.approx(hh[covered].sum() / hh.sum()), \
                (did, cat)


def test_global_budget_is_the_best_allocation_of_the_district_curves(global_budget) -> None:
    res, out = global_budget
    summary = json.loads((out / "summary.json").read_text())["siting"]
    tab = pd.read_csv(out / "districts.csv").set_index("area_id")
    st = gpd.read_file(out / "districts.gpkg", layer="stations")
    for cat in CATS:
        recs = [json.loads((out / "partitions" / d / "siting.json").read_text())[cat]
                for d in tab.index]
        lower = [np.asarray(r["gain"], dtype=float) for r in recs]
        upper = [np.asarray(r["gain_upper"], dtype=float) for r in recs]
        plan = summary["categories"][cat]
        assert plan["stations"] <= 5
        assert int(tab[f"stations_{cat}"].sum()) == plan["stations"] == \
            int((st["category"] == cat).sum())
        assert plan["gain"] == pytest.approx(_brute_allocation(lower, 5))
        assert plan["gain_bound"] == pytest.approx(max(_brute_allocation(upper, 5),
                                                       plan["gain"]))
        assert plan["gain"] <= plan["gain_bound"] + 1e-9
        # the chosen prefix of every district's sequence gives the stated gain
        got = sum(float(r["gain"][min(int(a), len(r["gain"]) - 1)])
                  for r, a in zip(recs, tab[f"stations_{cat}"], strict=True))
        assert got == pytest.approx(plan["gain"])
        open_ = _owned_open(res, cat).reindex(tab.index, fill_value=0)
        assert (tab[f"households_new_{cat}"] <= open_ + 1e-6).all()


def test_global_budget_needs_max_coverage() -> None:
    from geosvc._errors import ConfigError

    with pytest.raises(ConfigError, match="needs siting.model = 'max-coverage'"):
        BatchSiting(budget="province", model="p-median")


def test_province_map_links_to_every_district_map(per_district, province) -> None:
    res, out = per_district
    page = (out / "province.html").read_text(encoding="utf-8")
    links = sorted(set(re.findall(r'href=\\"([^"\\]+/map\.html)\\"', page)))
    ids = sorted(gpd.read_file(province["districts"])["district_id"])
    assert links == [f"districts/{i}/map.html" for i in ids]
    for link in links:
        target = out / unquote(link)
        assert target.is_file()
        district = target.parent.name
        html = target.read_text(encoding="utf-8")
        assert f"district {district}" in html  # its title: the district's name
        n_rows = int((res.households["district_id"] == district).sum())
        assert n_rows > 0
    # offline like the other maps: Leaflet inlined, no script or style from the network
    for path in [out / "province.html", *[out / unquote(x) for x in links]]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r'<script[^>]+src="https?://', text), path
        assert not re.search(r'<link[^>]+href="https?://', text), path
    summary = json.loads((out / "summary.json").read_text())
    assert summary["maps"]["province"] == "province.html"
    assert sorted(summary["maps"]["districts"].values()) == links


def _page(path: Path) -> str:
    """A map page without folium's random element ids."""
    return re.sub(r"[0-9a-f]{32}", "ID", path.read_text(encoding="utf-8"))


def test_district_maps_drawn_on_workers_equal_the_in_process_ones(per_district, province,
                                                                   tmp_path) -> None:
    """On a Dask cluster the workers draw the district maps from the merged rows the client
    sends: the pages equal the ones drawn in-process (resumed from the same partitions)."""
    res, out = per_district
    shutil.copytree(out / "partitions", tmp_path / "partitions")
    again = run_batch(_spec(province, tmp_path, BatchSiting(budget="district", k=3),
                            maps=True), scheduler="threads:2")
    assert all(r["skipped"] for r in again.records)
    links = json.loads((out / "summary.json").read_text())["maps"]["districts"]
    assert json.loads((tmp_path / "summary.json").read_text())["maps"]["districts"] == links
    for link in [*links.values(), "province.html"]:
        assert _page(tmp_path / link) == _page(out / link), link


def test_maps_drawn_from_the_drawn_columns_equal_maps_of_the_whole_table(per_district,
                                                                          tmp_path) -> None:
    """The maps get only the household columns a map draws (the workers receive less): a
    coverage map of those columns is the page of the whole merged table, for one district's
    households and for the whole province with its district table."""
    from geosvc.batch._maps import map_households
    from geosvc.standards import load_profile
    from geosvc.viz import coverage_map, write_map

    res, _ = per_district
    hh, prof = res.households, load_profile(overrides=OVERRIDES)
    drawn = map_households(hh, list(CATS))
    assert len(drawn.columns) < len(hh.columns) / 3
    pages = []
    for frame in (hh, drawn):
        d1 = frame.loc[hh["district_id"].to_numpy() == "D1"].reset_index(drop=True)
        for name, part in (("d1", d1), ("all", frame)):
            path = tmp_path / f"{name}-{len(frame.columns)}.html"
            write_map(coverage_map(part, areas={"district": res.districts}, profile=prof,
                                   lang="en", categories=list(CATS)), path)
            pages.append(_page(path))
    assert pages[:2] == pages[2:]


def test_planner_candidates_are_clipped_per_district_with_their_ids(province, tmp_path
                                                                    ) -> None:
    """A province-wide candidate file: each district chooses only among the sites it owns
    (a site on a shared border belongs to the district listed first), ids kept."""
    roads = gpd.read_file(province["roads"])
    districts = gpd.read_file(province["districts"])
    public = roads[(roads["compound_id"] < 0) & ~roads["name"].str.startswith("island")]
    mids = public.geometry.interpolate(0.5, normalized=True).to_numpy()
    links = roads["name"].eq("border link").to_numpy()[public.index]
    far = shapely.points(districts.total_bounds[2] + 5_000.0, districts.total_bounds[3])
    pts = np.concatenate([mids[::4], mids[links], [far]])
    sites = gpd.GeoDataFrame({"site": [f"S{i:04d}" for i in range(len(pts))],
                              "note": "planner"}, geometry=pts, crs=roads.crs)
    path = tmp_path / "sites.gpkg"
    sites.to_file(path)
    setup = BatchSiting(budget="district", k=4, candidates=str(path), candidates_id="site",
                        candidates_only=True)
    res = run_batch(_spec(province, tmp_path / "out", setup), scheduler="none")
    st = gpd.read_file(tmp_path / "out" / "districts.gpkg", layer="stations")
    assert len(st) >= 8
    owner = np.full(len(sites), "", dtype=object)
    for did, poly in zip(districts["district_id"], districts.geometry.to_numpy(), strict=True):
        owner[(owner == "") & shapely.covers(poly, pts)] = did
    own = dict(zip(sites["site"], owner, strict=True))
    assert set(st["candidate_id"]) <= set(sites["site"])
    assert all(own[c] == d for c, d in zip(st["candidate_id"], st["district_id"],
                                           strict=True))
    assert not st.groupby("category")["candidate_id"].apply(lambda c: c.duplicated().any()).any()
    on_border = [c for c, p in zip(sites["site"], pts, strict=True)
                 if shapely.covers(shapely.union_all(districts.boundary.to_numpy()), p)]
    assert on_border and {own[c] for c in on_border} <= {"D1", "D2", "D3"}
    for cat in CATS:
        rec = json.loads((tmp_path / "out" / "partitions" / "D1" / "siting.json")
                         .read_text())[cat]
        n_own = sum(1 for c in sites["site"] if own[c] == "D1")
        assert rec["n_candidates"] <= n_own
    assert res.summary["siting"]["counting"] == "owned households only"


def test_config_batch_siting_keys(province, tmp_path) -> None:
    from geosvc._errors import ConfigError
    from geosvc.batch import _siting_setup
    from geosvc.config import load_config

    def cfg(extra: str) -> Path:
        path = tmp_path / "p.toml"
        path.write_text(f"""
[inputs]
roads = "{province['roads']}"
households = "{province['households']}"
facilities = "{province['facilities']}"
[batch]
districts = "{province['districts']}"
siting = "province"
maps = false
[siting]
k = 7
{extra}
[output]
folder = "{tmp_path / 'out'}"
""")
        return path

    c = load_config(cfg(""))
    assert c.batch is not None and c.batch.maps is False
    assert _siting_setup(c) == BatchSiting(budget="province", k=7)
    with pytest.raises(ConfigError, match="needs siting.model = 'max-coverage'"):
        _siting_setup(load_config(cfg('model = "p-median"')))
    (tmp_path / "cands.gpkg").write_bytes(b"")
    got = _siting_setup(load_config(cfg('candidates = "cands.gpkg"\ncandidates_id = "site"\n'
                                        'candidates_only = true')))
    assert got is not None and got.candidates == str(tmp_path / "cands.gpkg")
    assert (got.candidates_id, got.candidates_only) == ("site", True)
    with pytest.raises(ConfigError, match="capacity_column"):
        _siting_setup(load_config(cfg('capacity_column = "cap"')))


def test_upper_curve_uses_greedy_steps_only_for_a_greedy_sequence() -> None:
    from types import SimpleNamespace

    from geosvc.batch._siting import is_greedy_sequence
    from geosvc.locate import max_coverage

    rng = np.random.default_rng(5)
    cover = rng.random((12, 40)) < 0.2
    plan = max_coverage(cover, rng.integers(1, 9, size=40).astype(float), 4)
    kept = SimpleNamespace(solver="greedy", objective=10.0, info={"greedy_add_objective": 10.0})
    swapped = SimpleNamespace(solver="greedy", objective=12.0,
                              info={"greedy_add_objective": 10.0})
    exact = SimpleNamespace(solver="highs", objective=12.0, info={})
    assert is_greedy_sequence(kept) and not is_greedy_sequence(swapped)
    assert not is_greedy_sequence(exact)
    # the real solver states what its greedy pass reached (before its swaps)
    assert plan.solver == "greedy" and "greedy_add_objective" in plan.info
    # without the greedy property the curve is the flat cap
    u = upper_curve(np.array([9.0, 1.0]), 3, 15.0, greedy=False)
    assert u.tolist() == [0.0, 15.0, 15.0, 15.0]
