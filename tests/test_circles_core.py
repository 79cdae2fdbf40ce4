"""Service circles: reached street length against a networkx oracle, polygon validity,
agreement with the coverage verdicts."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from geosvc.access import snap_points
from geosvc.circles import circle_agreement, reached_lines, service_areas, service_circles
from geosvc.coverage import analyse_coverage
from geosvc.network import compile_network, from_arrays, graph_from_lines
from geosvc.standards import load_profile
from tests.conftest import UTM, grid_lines


@pytest.fixture(scope="module")
def net():
    return compile_network(graph_from_lines(grid_lines(8, 150.0)))


def _oracle_graph(net, anchor):
    """networkx graph with the facility inserted as node "f" splitting its edge; distances."""
    e0 = int(anchor.edge[0])
    off = float(anchor.offset_m[0])
    G = nx.Graph()
    for e in range(net.n_edges):
        if e != e0:
            G.add_edge(int(net.edge_u[e]), int(net.edge_v[e]), weight=float(net.edge_length_m[e]))
    G.add_edge("f", int(net.edge_u[e0]), weight=off)
    G.add_edge("f", int(net.edge_v[e0]), weight=float(net.edge_length_m[e0]) - off)
    return G, nx.single_source_dijkstra_path_length(G, "f", weight="weight")


def _oracle_length(net, anchor, reach):
    """Reachable street length: facility inserted as a node splitting its edge (networkx)."""
    G, d = _oracle_graph(net, anchor)
    budget = reach - float(anchor.access_m[0])
    total = 0.0
    for a, b, data in G.edges(data=True):
        w = data["weight"]
        ra = max(0.0, budget - d.get(a, np.inf))
        rb = max(0.0, budget - d.get(b, np.inf))
        total += min(w, ra + rb)
    return total


@pytest.mark.parametrize("xy,reach", [((225.0, 10.0), 400.0), ((300.0, 0.0), 640.0),
                                      ((520.0, 451.0), 1080.0), ((75.0, 0.0), 40.0)])
def test_reached_length_equals_oracle(net, xy, reach):
    a = snap_points(net, np.array([xy]))
    lines = reached_lines(net, a, reach)
    assert shapely.length(lines[0]) == pytest.approx(_oracle_length(net, a, reach), abs=1e-6)


def test_partial_frontier_edge_drawn_for_what_the_budget_allows(net):
    # at the corner node (0, 0) with 190 m: both 150 m edges whole plus 40 m beyond each
    a = snap_points(net, np.array([[0.0, 0.0]]))
    lines = reached_lines(net, a, 190.0)
    # corner (0, 0), 190 m: both 150 m edges whole, then 40 m on each of the three streets
    # leaving (150, 0) and (0, 150) that lead away (two of them) -> 300 + 4 x 40
    assert shapely.length(lines[0]) == pytest.approx(300.0 + 4 * 40.0, abs=1e-6)
    assert shapely.length(lines[0]) == pytest.approx(_oracle_length(net, a, 190.0), abs=1e-6)


def _oracle_inside(net, anchor, reach, tol, pts, step_m=1.0):
    """Brute force: p is inside when a street point reached with >= tol to spare is within tol.

    Streets are sampled every ``step_m`` metres; distances come from networkx with the
    facility inserted as a node (the same oracle as the reached length).
    """
    e0 = int(anchor.edge[0])
    off, acc = float(anchor.offset_m[0]), float(anchor.access_m[0])
    _, d = _oracle_graph(net, anchor)
    samples, dist = [], []
    for e in range(net.n_edges):
        geom, length = net.edge_geometry[e], float(net.edge_length_m[e])
        at = np.linspace(0.0, length, int(np.ceil(length / step_m)) + 1)
        du = d.get(int(net.edge_u[e]), np.inf) + at
        dv = d.get(int(net.edge_v[e]), np.inf) + (length - at)
        best = np.minimum(du, dv)
        if e == e0:
            best = np.minimum(best, np.abs(at - off))
        samples.append(shapely.get_coordinates(shapely.line_interpolate_point(geom, at)))
        dist.append(best + acc)
    xy, dist = np.concatenate(samples), np.concatenate(dist)
    xy = xy[dist <= reach - tol + 1e-9]
    gap = np.hypot(pts[:, None, 0] - xy[None, :, 0], pts[:, None, 1] - xy[None, :, 1]).min(1)
    return gap <= tol


@pytest.mark.parametrize("xy,reach", [((225.0, 10.0), 500.0), ((520.0, 451.0), 330.0)])
def test_polygon_equals_brute_force(net, xy, reach):
    tol = 30.0
    a = snap_points(net, np.array([xy]))
    poly = service_areas(net, a, reach, tolerance_m=tol, fill_blocks=False)[0]
    rng = np.random.default_rng(5)
    pts = rng.uniform(-40, 1090, (4000, 2))
    geoms = shapely.points(pts)
    # the buffer's rounded ends are polygons (quad_segs=3): skip points within 1.5 m of the edge
    clear = shapely.distance(shapely.boundary(poly), geoms) > 1.5
    inside = shapely.contains_xy(poly, pts[:, 0], pts[:, 1])
    oracle = _oracle_inside(net, a, reach, tol, pts)
    assert clear.sum() > 3500
    assert (inside[clear] == oracle[clear]).all()
    assert inside.sum() > 200 and (~inside).sum() > 200


def test_polygons_are_valid_multipolygons_without_slivers(net):
    a = snap_points(net, np.array([[225.0, 10.0], [900.0, 900.0], [5000.0, 5000.0]]),
                    max_snap_m=300.0)
    polys = service_areas(net, a, [500.0, 1080.0, 500.0], tolerance_m=30.0)
    assert len(polys) == 3
    assert all(p.geom_type == "MultiPolygon" and p.is_valid for p in polys)
    assert polys[0].area > 0 and polys[1].area > polys[0].area
    assert polys[2].is_empty  # not snapped: nothing drawn
    rings = [r for p in shapely.get_parts(polys[1]) for r in p.interiors]
    assert all(shapely.Polygon(r).area > 100.0 for r in rings)  # no slivers


def test_reached_blocks_are_whole_unreached_interiors_are_holes(net):
    a = snap_points(net, np.array([[525.0, 450.0]]))
    lines = reached_lines(net, a, 300.0)
    filled = service_areas(net, a, 330.0, tolerance_m=30.0)[0]
    bare = service_areas(net, a, 330.0, tolerance_m=30.0, fill_blocks=False)[0]
    # the block (450..600)^2 around the facility: every street reached -> whole
    assert filled.contains(shapely.Point(525.0, 525.0))
    assert not bare.contains(shapely.Point(525.0, 525.0))  # 75 m from every street: a hole
    assert filled.area > bare.area
    # the next block up (450..600 x 600..750) is only partly reached: its middle stays out
    assert lines[0].length > 0
    assert not filled.contains(shapely.Point(525.0, 675.0))
    assert filled.contains(shapely.Point(525.0, 620.0))  # 20 m off a reached street


def _compound_net(gate_open: bool):
    """A 300 m square block; inside, a walled compound whose path starts at a gate (300, 150)."""
    xy = [[0, 0], [300, 0], [300, 150], [300, 300], [0, 300], [0, 150], [150, 150]]
    u = [0, 1, 2, 3, 4, 5, 2 if gate_open else 6]
    v = [1, 2, 3, 4, 5, 0, 6 if gate_open else 6]
    if not gate_open:  # a path that does not connect: a dead end stub from node 6 to (150, 250)
        xy.append([150, 250])
        u[-1], v[-1] = 6, 7
    comp = [-1] * 6 + [0]
    return from_arrays(np.array(xy, float), u, v, crs=UTM, edge_compound=np.array(comp))


def test_compound_interiors_are_reached_only_through_gates():
    wall = shapely.box(20.0, 20.0, 280.0, 280.0)
    net = _compound_net(gate_open=True)
    near_west = snap_points(net, np.array([[0.0, 140.0]]))  # the gate is 310+ m away
    area = service_areas(net, near_west, 200.0, tolerance_m=30.0, walls=[wall])[0]
    leak = service_areas(net, near_west, 200.0, tolerance_m=30.0)[0]
    inside_wall = shapely.Point(25.0, 150.0)  # 25 m from the reached west street
    assert leak.contains(inside_wall) and not area.contains(inside_wall)
    assert area.contains(shapely.Point(-10.0, 150.0))  # the street side is still drawn
    at_gate = snap_points(net, np.array([[300.0, 140.0]]))
    area = service_areas(net, at_gate, 140.0, tolerance_m=30.0, walls=[wall])[0]
    assert area.contains(shapely.Point(220.0, 160.0))  # 10 m off the internal path
    assert not area.contains(shapely.Point(220.0, 200.0))  # 50 m off it
    # with budget to walk the whole path the compound is one reached block: drawn whole
    # (its far corner snaps to the path and is covered: 10 + 150 + 70 <= 260)
    whole = service_areas(net, at_gate, 260.0, tolerance_m=30.0, walls=[wall])[0]
    assert whole.contains(shapely.Point(150.0, 220.0))


def test_a_compound_that_cannot_be_reached_stays_a_hole():
    wall = shapely.box(20.0, 20.0, 280.0, 280.0)
    net = _compound_net(gate_open=False)
    a = snap_points(net, np.array([[0.0, 150.0]]))
    area = service_areas(net, a, 2000.0, tolerance_m=30.0, walls=[wall])[0]
    assert area.is_valid and area.contains(shapely.Point(-10.0, 150.0))
    assert not area.contains(shapely.Point(150.0, 200.0))
    assert sum(len(p.interiors) for p in area.geoms) == 1


def test_circle_agreement_with_verdicts(net):
    rng = np.random.default_rng(2)
    hh = gpd.GeoDataFrame({"households": np.full(800, 10.0), "elderly": np.full(800, 2.0)},
                          geometry=shapely.points(rng.uniform(0, 1050, (800, 2))
                                                  + rng.uniform(-8, 8, (800, 2))), crs=UTM)
    fac = gpd.GeoDataFrame({"facility_id": ["A", "B"], "category": ["elderly_care"] * 2,
                            "subtype": ["nursing_home", "day_care_center"], "floor_area_m2": [300.0, 300.0]},
                           geometry=shapely.points([[150, 160], [800, 700]]), crs=UTM)
    prof = load_profile()
    res = analyse_coverage(net, hh, fac, categories=["elderly_care"], profile=prof)
    _, per_cat = service_circles(net, res.facilities, prof, thresholds_min=(15.0,),
                                 categories=["elderly_care"])
    agree = circle_agreement(res.households, per_cat, "elderly_care", threshold_min=15.0,
                             tolerance_m=prof.access_tolerance_m)
    assert agree["n"] == 800
    assert agree["agree"] + agree["boundary_cases"] <= agree["n"]
    # every covered household within the drawn tolerance of its street is inside
    hh = res.households
    poly = per_cat.geometry.iloc[0]
    inside = shapely.contains(poly, hh.geometry.to_numpy())
    near_street = hh["access_m"].to_numpy() <= prof.access_tolerance_m
    covered = (hh["status_elderly_care"] == "covered").to_numpy()
    assert covered[near_street].sum() > 100
    assert inside[covered & near_street].all()
    # inside but not covered: only near the end of a walk (within the tolerance of the edge)
    assert agree["uncovered_inside"] <= 0.01 * agree["n"]
    # these households sit up to 75 m from a street in 150 m blocks: deep ones are covered
    # when the block is reached whole (filled), else outside the 30 m band
    assert agree["share"] >= 0.90


@pytest.fixture(scope="module")
def district():
    from geosvc.pipeline import district_inputs, run_coverage

    inp = district_inputs()
    prof = load_profile()
    cov = run_coverage(inp, profile=prof)
    per_fac, per_cat = service_circles(inp.net, cov.facilities, prof, thresholds_min=(15.0,),
                                       compounds=inp.compounds)
    return prof, cov, per_fac, per_cat


@pytest.mark.parametrize("category", ["elderly_care", "convenience"])
def test_district_circles_agree_with_verdicts(district, category):
    prof, cov, per_fac, per_cat = district
    res = circle_agreement(cov.households, per_cat, category, 15.0,
                           tolerance_m=prof.access_tolerance_m)
    assert res["n"] >= 1490
    assert res["share_within_tolerance"] >= 0.99  # the goal
    assert res["share"] >= 0.97  # strict, not even allowing the boundary
    assert res["covered_outside"] == 0


def test_district_circles_are_valid_and_union_covers_facilities(district):
    prof, cov, per_fac, per_cat = district
    assert shapely.is_valid(per_fac.geometry.to_numpy()).all()
    assert (per_fac.geometry.geom_type == "MultiPolygon").all()
    for cat, grp in per_fac.groupby("category"):
        union = per_cat.loc[per_cat["category"] == cat].geometry.iloc[0]
        # the category circle is one multi-source walk: it holds every facility's circle, and
        # more where blocks are reached whole only by several facilities together
        merged = shapely.union_all(grp.geometry.to_numpy())
        assert shapely.difference(merged, union).area <= 1e-6 * union.area
        assert union.area >= merged.area


def test_category_circle_equals_union_of_facility_circles_without_fill(net):
    prof = load_profile()
    fac = gpd.GeoDataFrame({"facility_id": ["A", "B", "C"], "category": ["elderly_care"] * 3},
                           geometry=shapely.points([[150, 160], [800, 700], [450, 460]]),
                           crs=UTM)
    per_fac, per_cat = service_circles(net, fac, prof, thresholds_min=(5.0, 10.0),
                                       fill_blocks=False)
    for thr in (5.0, 10.0):
        merged = shapely.union_all(per_fac.loc[per_fac["threshold_min"] == thr].geometry)
        union = per_cat.loc[per_cat["threshold_min"] == thr].geometry.iloc[0]
        assert shapely.symmetric_difference(merged, union).area <= 1e-6 * union.area
    assert per_cat["n_facilities"].tolist() == [3, 3]
    assert per_cat["reach_m"].tolist() == pytest.approx([240.0, 480.0])


def _incidences(bl):
    """(edge, face) pairs of a Blocks table."""
    return np.repeat(np.arange(len(bl.edge_ptr) - 1), np.diff(bl.edge_ptr)), bl.edge_faces


def test_traced_blocks_equal_polygonized_blocks():
    from geosvc.circles._blocks import _build

    # a 4 x 4 grid of 100 m blocks, a dead end into one block, and inside another block an
    # island (a small square with a tail) that is not connected to the streets
    xy = [[x * 100.0, y * 100.0] for y in range(5) for x in range(5)]
    u, v = [], []
    for y in range(5):
        for x in range(5):
            i = y * 5 + x
            if x < 4:
                u.append(i), v.append(i + 1)
            if y < 4:
                u.append(i), v.append(i + 5)
    xy += [[140.0, 140.0]]  # a dead end from the corner (100, 100) into its block
    u.append(6), v.append(25)
    xy += [[320.0, 320.0], [380.0, 320.0], [380.0, 380.0], [320.0, 380.0], [350.0, 350.0]]
    u += [26, 27, 28, 29, 26]
    v += [27, 28, 29, 26, 30]
    net = from_arrays(np.array(xy), u, v, crs=UTM)
    traced, noded = _build(net, None), _build(net, None, trace=False)
    assert traced.n_faces == noded.n_faces == 16 + 1  # the blocks and the island's square
    assert shapely.is_valid(traced.faces).all()
    where = shapely.STRtree(noded.faces).query(shapely.point_on_surface(traced.faces),
                                               predicate="within")
    match = np.full(traced.n_faces, -1)
    match[where[0]] = where[1]
    assert (match >= 0).all()
    assert np.allclose(shapely.area(traced.faces), shapely.area(noded.faces[match]))
    e1, f1 = _incidences(traced)
    e2, f2 = _incidences(noded)
    pairs_traced = set(zip(e1.tolist(), match[f1].tolist(), strict=True))
    assert pairs_traced == set(zip(e2.tolist(), f2.tolist(), strict=True))
    # the block holding the island has it as a hole and counts the island's outer edges;
    # the island's square counts its sides and the tail inside it; the dead end counts
    holed = [i for i, f in enumerate(traced.faces) if len(f.interiors) == 1]
    assert len(holed) == 1 and traced.face_n_edges[holed[0]] == 4 + 4
    island = int(np.argmin(shapely.area(traced.faces)))
    assert traced.face_n_edges[island] == 4 + 1
    dead_end = int(np.flatnonzero(traced.edge_faces[traced.edge_ptr[40]:traced.edge_ptr[41]]
                                  >= 0).size)
    assert dead_end == 1


def test_crossing_streets_are_noded_not_traced():
    from geosvc.circles._planar import planar_faces

    xy = np.array([[0.0, 0.0], [100.0, 100.0], [0.0, 100.0], [100.0, 0.0]])
    net = from_arrays(xy, [0, 2, 0, 1], [1, 3, 2, 3], crs=UTM)  # a bridge over a street
    assert planar_faces(net) is None
    a = snap_points(net, np.array([[0.0, 50.0]]))
    assert service_areas(net, a, 500.0, tolerance_m=10.0)[0].is_valid


def test_every_facility_row_comes_out_with_a_status(net):
    prof = load_profile()
    fac = gpd.GeoDataFrame(
        {"facility_id": ["on", "far", "none"], "category": ["elderly_care"] * 3},
        geometry=[shapely.Point(160, 225), shapely.Point(5000, 5000), None], crs=UTM)
    per_fac, per_cat = service_circles(net, fac, prof, thresholds_min=(10.0,))
    assert per_fac["facility_id"].tolist() == ["on", "far", "none"]
    assert per_fac["snap_status"].tolist() == ["ok", "off_network", "invalid"]
    assert per_fac["access_m"].iloc[0] == pytest.approx(10.0)
    assert per_fac.geometry.iloc[0].area > 0
    assert per_fac.geometry.iloc[1].is_empty and per_fac.geometry.iloc[2].is_empty
    assert per_cat["n_facilities"].tolist() == [3]


def test_unknown_categories_are_named_not_dropped(net):
    from geosvc._errors import InputError

    fac = gpd.GeoDataFrame({"facility_id": ["a", "b"], "category": ["elderly_care", "school"]},
                           geometry=shapely.points([[150, 160], [300, 300]]), crs=UTM)
    with pytest.raises(InputError, match=r"\['school'\].*categories=\["):
        service_circles(net, fac, load_profile())
    per_fac, _ = service_circles(net, fac, load_profile(), categories=["elderly_care"],
                                 thresholds_min=(5.0,))
    assert per_fac["facility_id"].tolist() == ["a"]
