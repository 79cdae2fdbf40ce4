"""Tests of the embedded default district generator and the sample-data paths."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from geosvc import datasets
from geosvc._errors import InputError
from geosvc.datasets import (
    CONVENIENCE_SUBTYPES,
    CRS,
    ELDERLY_CARE_SUBTYPES,
    HIGHWAY_VALUES,
    LAYERS,
    District,
    default_data_dir,
    generate_district,
    get_path,
    load_district,
    read_district,
    write_district,
)

SMALL = 0.35
PUBLIC = ("arterial", "secondary", "local", "bridge", "elevated")
AT_GRADE_STREETS = ("arterial", "secondary", "local")


@pytest.fixture(scope="module")
def small() -> District:
    return generate_district(2023, scale=SMALL)


@pytest.fixture(scope="module")
def full_timed() -> tuple[District, float]:
    t0 = time.perf_counter()
    d = generate_district(2023)
    return d, time.perf_counter() - t0


@pytest.fixture(scope="module")
def full(full_timed: tuple[District, float]) -> District:
    return full_timed[0]


@pytest.fixture(params=["small", "full"])
def district(request: pytest.FixtureRequest) -> District:
    return request.getfixturevalue(request.param)


def _assert_same(a: District, b: District) -> None:
    for layer in LAYERS:
        assert_geodataframe_equal(getattr(a, layer), getattr(b, layer))


# ------------------------------------------------------------------ reproducibility


def test_same_seed_gives_identical_frames(small: District) -> None:
    again = generate_district(2023, scale=SMALL)
    _assert_same(small, again)


def test_other_seed_gives_a_different_district(small: District) -> None:
    other = generate_district(7, scale=SMALL)
    assert not small.buildings.geometry.equals(other.buildings.geometry)
    assert not small.roads.geometry.equals(other.roads.geometry)
    assert small.buildings["households"].sum() != other.buildings["households"].sum()


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_seed_is_an_input_error(bad: object) -> None:
    with pytest.raises(InputError, match="seed"):
        generate_district(bad, scale=SMALL)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0.05, 10.0, float("nan"), "big"])
def test_bad_scale_is_an_input_error(bad: object) -> None:
    with pytest.raises(InputError, match="scale"):
        generate_district(1, scale=bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------ sizes at scale 1


def test_full_scale_sizes(full_timed: tuple[District, float]) -> None:
    d, seconds = full_timed
    s = d.summary()
    assert seconds < 60.0
    assert s["n_compounds"] >= 150
    assert s["households"] >= 60_000
    assert s["extent_km"] == pytest.approx((8.0, 6.0), abs=0.1)
    assert 0.18 <= s["elderly_share"] <= 0.22
    assert 25 <= s["n_communities"] <= 35
    assert 5 <= s["n_streets"] <= 7
    assert 20 <= s["n_facilities"]["elderly_care"] <= 32
    assert 300 <= s["n_facilities"]["convenience"] <= 500
    assert s["persons"] == int(d.buildings["persons"].sum())
    bridges = d.roads[d.roads["highway"] == "bridge"]
    assert 3 <= len(bridges) <= 4
    assert (d.roads["highway"] == "elevated").sum() == 1


def test_full_scale_old_town_is_older_and_greyer(full: District) -> None:
    comp = full.compounds
    b = full.buildings.merge(comp[["compound_id", "built_year"]], on="compound_id")
    old = b[b["built_year"] < 2000]
    new = b[b["built_year"] >= 2012]
    assert len(old) and len(new)
    assert 0.24 <= old["elderly"].sum() / old["persons"].sum() <= 0.33
    assert 0.11 <= new["elderly"].sum() / new["persons"].sum() <= 0.16
    assert comp["built_year"].between(1980, 2022).all()


def test_some_single_gates_face_away_from_the_nearest_street(full: District) -> None:
    roads = full.roads
    streets = roads[roads["highway"].isin(AT_GRADE_STREETS)]
    tree = shapely.STRtree(streets.geometry.to_numpy())
    gates = roads[roads["highway"] == "gate"].set_index("compound_id")
    count = 0
    for comp in full.compounds[full.compounds["n_gates"] == 1].itertuples():
        centre = comp.geometry.centroid
        nearest = int(tree.nearest(centre))
        outer = shapely.Point(gates.loc[comp.compound_id].geometry.coords[-1])
        gate_street = int(np.asarray(tree.query(outer, predicate="intersects"))[0])
        d_near = streets.geometry.iloc[nearest].distance(centre)
        if gate_street != nearest and outer.distance(centre) >= 1.5 * d_near:
            count += 1
    assert count >= 10


# ------------------------------------------------------------------ schema


def test_layers_schema_and_crs(district: District) -> None:
    expected = {
        "roads": ["road_id", "highway", "name", "bridge", "layer", "compound_id"],
        "compounds": ["compound_id", "name", "built_year", "community_id", "n_gates"],
        "buildings": ["building_id", "compound_id", "households", "persons", "elderly"],
        "communities": ["community_id", "name", "street_id"],
        "streets": ["street_id", "name"],
        "facilities": [
            "facility_id",
            "category",
            "subtype",
            "name",
            "floor_area_m2",
            "compound_id",
        ],
        "river": ["name"],
    }
    for layer, cols in expected.items():
        frame = getattr(district, layer)
        assert isinstance(frame, gpd.GeoDataFrame)
        assert frame.crs == CRS
        assert set(cols) <= set(frame.columns), layer
        assert len(frame) > 0
        id_col = cols[0]
        if id_col.endswith("_id"):
            assert frame[id_col].is_unique
    x0, y0, _, _ = district.communities.total_bounds
    assert (x0, y0) == (430000.0, 3808000.0)
    roads = district.roads
    assert set(roads["highway"]) <= set(HIGHWAY_VALUES)
    assert set(roads["bridge"]) <= {0, 1}
    public = roads["highway"].isin(PUBLIC)
    assert (roads.loc[public, "compound_id"] == -1).all()
    assert (roads.loc[~public, "compound_id"] > 0).all()
    layered = roads["highway"].isin(["bridge", "elevated"])
    assert (roads.loc[layered, ["bridge", "layer"]] == 1).all().all()
    assert (roads.loc[~layered, ["bridge", "layer"]] == 0).all().all()
    assert roads["name"].str.len().gt(0).all()
    assert re.search(r"[\u4e00-\u9fff]", "".join(district.compounds["name"]))


def test_facility_attributes(district: District) -> None:
    f = district.facilities
    assert set(f["category"]) == {"elderly_care", "convenience"}
    ec = f[f["category"] == "elderly_care"]
    cv = f[f["category"] == "convenience"]
    assert set(ec["subtype"]) <= set(ELDERLY_CARE_SUBTYPES)
    assert set(cv["subtype"]) <= set(CONVENIENCE_SUBTYPES)
    assert ec["facility_id"].str.fullmatch(r"EC\d{3}").all()
    assert cv["facility_id"].str.fullmatch(r"CV\d{4}").all()
    for sub, (_, (lo, hi), _) in {**ELDERLY_CARE_SUBTYPES, **CONVENIENCE_SUBTYPES}.items():
        areas = f.loc[f["subtype"] == sub, "floor_area_m2"]
        assert areas.between(lo - 0.1, hi + 0.1).all(), sub
    # shops stand a few metres off a public street
    streets = district.roads[district.roads["highway"].isin(AT_GRADE_STREETS)]
    dist = shapely.distance(
        cv.geometry.to_numpy()[:, None], streets.geometry.to_numpy()[None, :]
    ).min(axis=1)
    assert dist.min() >= 2.0 and np.quantile(dist, 0.95) <= 9.0
    # compound_id is set exactly for facilities inside a compound
    hit_f, hit_c = shapely.STRtree(district.compounds.geometry.to_numpy()).query(
        f.geometry.to_numpy(), predicate="within"
    )
    expected = np.full(len(f), -1)
    expected[hit_f] = district.compounds["compound_id"].to_numpy()[hit_c]
    np.testing.assert_array_equal(f["compound_id"].to_numpy(), expected)


def test_building_counts_are_consistent(district: District) -> None:
    b = district.buildings
    assert b["households"].between(12, 150).all()
    ratio = b["persons"] / b["households"]
    assert ratio.between(2.35, 3.05).all()
    assert (b["elderly"] >= 0).all() and (b["elderly"] <= b["persons"]).all()
    assert set(b["compound_id"]) == set(district.compounds["compound_id"])


# ------------------------------------------------------------------ geometry invariants


def test_buildings_inside_their_compound(district: District) -> None:
    comp = district.compounds.set_index("compound_id").geometry
    polys = comp.loc[district.buildings["compound_id"]].to_numpy()
    assert shapely.within(district.buildings.geometry.to_numpy(), polys).all()


def test_internal_paths_stay_inside_their_compound(district: District) -> None:
    roads = district.roads
    comp = district.compounds.set_index("compound_id").geometry
    paths = roads[roads["highway"] == "path"]
    polys = comp.loc[paths["compound_id"]].to_numpy()
    assert shapely.within(paths.geometry.to_numpy(), polys).all()
    assert not shapely.intersects(paths.geometry.to_numpy(), shapely.boundary(polys)).any()
    public = shapely.union_all(roads[roads["highway"].isin(PUBLIC)].geometry.to_numpy())
    assert not shapely.intersects(paths.geometry.to_numpy(), public).any()


def test_public_roads_stay_out_of_compounds(district: District) -> None:
    roads = district.roads
    public = roads[roads["highway"].isin(PUBLIC)].geometry.to_numpy()
    tree = shapely.STRtree(district.compounds.geometry.to_numpy())
    hits = tree.query(public, predicate="intersects")
    assert hits.size == 0


def test_gate_connectors(district: District) -> None:
    roads = district.roads
    comp = district.compounds.set_index("compound_id")
    gates = roads[roads["highway"] == "gate"]
    counts = gates.groupby("compound_id").size()
    assert counts.between(1, 3).all()
    np.testing.assert_array_equal(
        comp["n_gates"].to_numpy(), counts.reindex(comp.index, fill_value=0).to_numpy()
    )
    street_lines = roads[roads["highway"].isin(AT_GRADE_STREETS)].geometry.to_numpy()
    street_tree = shapely.STRtree(street_lines)
    paths = roads[roads["highway"] == "path"]
    for g in gates.itertuples():
        poly = comp.geometry.loc[g.compound_id]
        crossing = g.geometry.intersection(poly.exterior)
        assert crossing.geom_type == "Point", g.road_id
        inner = shapely.Point(g.geometry.coords[0])
        outer = shapely.Point(g.geometry.coords[-1])
        near = street_tree.query(outer, predicate="dwithin", distance=1e-6)
        assert len(near) == 1, g.road_id
        # exactly on the (unsplit) street line, not just close to it
        assert shapely.intersects(outer, street_lines[near[0]])
        own = paths[paths["compound_id"] == g.compound_id].geometry
        assert shapely.intersects(inner, own.to_numpy()).any()
        assert poly.contains(inner) and not poly.contains(outer)


def test_t_junctions_end_exactly_on_the_other_line(district: District) -> None:
    roads = district.roads[district.roads["highway"].isin(["arterial", "secondary", "local"])]
    lines = roads.geometry.to_numpy()
    tree = shapely.STRtree(lines)
    ends = np.asarray(
        shapely.points(
            np.vstack([shapely.get_coordinates(shapely.get_point(lines, i)) for i in (0, -1)])
        )
    )
    owner = np.tile(np.arange(len(lines)), 2)
    e_idx, l_idx = tree.query(ends, predicate="dwithin", distance=1e-3)
    other = owner[e_idx] != l_idx
    e_idx, l_idx = e_idx[other], l_idx[other]
    assert len(e_idx) > 10
    assert shapely.intersects(ends[e_idx], lines[l_idx]).all()


def test_river_is_crossed_only_by_bridges(district: District) -> None:
    river = district.river.geometry.iloc[0]
    assert river.is_valid and river.area > 0
    roads = district.roads
    crossing = roads[shapely.intersects(roads.geometry.to_numpy(), river)]
    assert set(crossing["bridge"]) == {1}
    assert (roads["highway"] == "bridge").sum() >= 1
    width = river.area / (river.exterior.length / 2)
    assert 55 <= width <= 105


def test_elevated_road_only_touches_streets_at_its_ends(district: District) -> None:
    roads = district.roads
    elevated = roads[roads["highway"] == "elevated"].geometry
    assert len(elevated) == 1
    line = elevated.iloc[0]
    streets = roads[roads["highway"].isin(AT_GRADE_STREETS)].geometry.to_numpy()
    crossed = shapely.intersects(streets, line).sum()
    assert crossed >= 3
    for end in (line.coords[0], line.coords[-1]):
        assert shapely.intersects(shapely.Point(end), streets).any()


def test_area_units_tile_the_extent(district: District) -> None:
    comm = district.communities
    extent = shapely.box(*comm.total_bounds)
    assert comm.geometry.is_valid.all()
    assert comm.area.sum() == pytest.approx(extent.area, rel=1e-6)
    assert shapely.union_all(comm.geometry.to_numpy()).area == pytest.approx(extent.area, rel=1e-6)
    streets = district.streets.set_index("street_id")
    assert set(comm["street_id"]) == set(streets.index)
    for sid, members in comm.groupby("street_id"):
        assert streets.geometry.loc[sid].area == pytest.approx(members.area.sum(), rel=1e-6)


def test_compounds_and_buildings_in_exactly_one_community(district: District) -> None:
    comm = district.communities
    tree = shapely.STRtree(comm.geometry.to_numpy())
    centroids = district.compounds.geometry.centroid.to_numpy()
    for pts in (centroids, district.buildings.geometry.to_numpy()):
        hit, _ = tree.query(pts, predicate="within")
        assert np.array_equal(np.bincount(hit, minlength=len(pts)), np.ones(len(pts)))
    hit, which = tree.query(centroids, predicate="within")
    ids = comm["community_id"].to_numpy()[which[np.argsort(hit)]]
    np.testing.assert_array_equal(district.compounds["community_id"].to_numpy(), ids)


# ------------------------------------------------------------------ files and paths


def test_write_read_round_trip(small: District, tmp_path: Path) -> None:
    path = write_district(small, tmp_path / "sub" / "d.gpkg")
    assert path == tmp_path / "sub" / "d.gpkg"
    assert sorted(os.listdir(path.parent)) == ["d.gpkg"]  # no temporary left behind
    assert {str(n) for n in pyogrio.list_layers(path)[:, 0]} == set(LAYERS)
    _assert_same(small, read_district(path))
    write_district(small, path)  # overwriting works too
    _assert_same(small, read_district(path))


def test_read_missing_layer_names_file_and_layer(small: District, tmp_path: Path) -> None:
    path = tmp_path / "partial.gpkg"
    small.roads.to_file(path, layer="roads", driver="GPKG")
    with pytest.raises(InputError, match=r"partial\.gpkg.*'compounds'"):
        read_district(path)
    with pytest.raises(InputError, match="not found"):
        read_district(tmp_path / "absent.gpkg")


def test_default_data_dir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "env" / "data"
    monkeypatch.setenv("GEOSVC_DATA_DIR", str(target))
    assert default_data_dir() == target
    assert target.is_dir()


def test_default_data_dir_project_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOSVC_DATA_DIR", raising=False)
    project = tmp_path / "proj"
    (project / "notebooks" / "deep").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "geosvc"\n', encoding="utf-8")
    monkeypatch.chdir(project / "notebooks" / "deep")
    assert default_data_dir() == (project / "data" / "raw").resolve()
    other = tmp_path / "other"
    other.mkdir()
    (other / "pyproject.toml").write_text('[project]\nname = "other"\n', encoding="utf-8")
    monkeypatch.chdir(other)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "geosvc"
    assert (tmp_path / "home" / ".cache" / "geosvc").is_dir()


def test_get_path_district_generates_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOSVC_DATA_DIR", str(tmp_path))
    calls: list[int] = []
    real = datasets.generate_district

    def quick(seed: int = 2023, *, scale: float = 1.0) -> District:
        calls.append(seed)
        return real(seed, scale=0.25)

    monkeypatch.setattr(datasets, "generate_district", quick)
    path = get_path("district", seed=5)
    assert path == tmp_path / "district_5.gpkg" and path.is_file()
    assert get_path("district", seed=5) == path
    assert calls == [5]
    get_path("district", seed=5, regenerate=True)
    assert calls == [5, 5]
    _assert_same(load_district(seed=5), real(5, scale=0.25))


def test_get_path_helsinki_and_unknown() -> None:
    pbf = get_path("helsinki")
    assert pbf.name == "Helsinki.osm.pbf" and pbf.is_file()
    with pytest.raises(InputError, match="district.*helsinki"):
        get_path("nope")
