"""Compound stage: parcels split into gated compounds, their internal paths, building spots,
gates and names.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import shapely
from geopandas import GeoDataFrame
from scipy.spatial import cKDTree
from shapely.geometry import LineString, MultiLineString, Point, Polygon

from geosvc.datasets._common import (
    _COMPOUND_PREFIXES,
    _COMPOUND_SUFFIXES_NEW,
    _COMPOUND_SUFFIXES_OLD,
    _GATE_DIRECTIONS,
    _WORK_UNITS,
    CRS,
    FloatArray,
    _Compound,
    _Ctx,
    _dedupe,
    _exact_on_polyline,
    _faces,
    _largest_polygon,
    _longest_line,
    _Road,
    _unique_names,
)


def _oriented_frame(poly: Polygon) -> tuple[FloatArray, FloatArray, FloatArray, float, float]:
    """Centre, long-axis unit vector, short-axis unit vector, long and short side."""
    rect = shapely.oriented_envelope(poly)
    c = shapely.get_coordinates(rect)[:4]
    e1, e2 = c[1] - c[0], c[2] - c[1]
    l1, l2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    if l1 >= l2:
        u, lu, lv = e1 / max(l1, 1e-9), l1, l2
    else:
        u, lu, lv = e2 / max(l2, 1e-9), l2, l1
    v = np.array([-u[1], u[0]])
    return c.mean(axis=0), u, v, lu, lv


def _split_parcel(rng: np.random.Generator, parcel: Polygon, n: int) -> list[Polygon]:
    """Split a parcel into about ``n`` compounds separated by 8 m wall gaps."""
    if n <= 1:
        return [parcel]
    centre, u, v, lu, lv = _oriented_frame(parcel)
    big = 4.0 * (lu + lv)
    cuts: list[tuple[FloatArray, FloatArray]] = []
    if n == 2:
        cuts.append((centre + u * rng.uniform(-0.1, 0.1) * lu, v))
    elif n == 3:
        for s in (-1.0, 1.0):
            cuts.append((centre + u * (s / 6.0 + rng.uniform(-0.03, 0.03)) * lu, v))
    else:
        cuts.append((centre + u * rng.uniform(-0.06, 0.06) * lu, v))
        cuts.append((centre + v * rng.uniform(-0.06, 0.06) * lv, u))
    bands = [LineString([p - d * big, p + d * big]).buffer(4.0, cap_style="flat") for p, d in cuts]
    rest = parcel.difference(shapely.union_all(bands))
    return [g for g in shapely.get_parts(rest) if isinstance(g, Polygon)]


def _clip_ray(
    origin: FloatArray, direction: FloatArray, length: float, region: Polygon
) -> FloatArray | None:
    """The part of a ray from ``origin`` inside ``region`` that starts at ``origin``."""
    ray = LineString([origin, origin + direction * length])
    inter = region.intersection(ray)
    for part in shapely.get_parts(inter):
        if (
            isinstance(part, LineString)
            and not part.is_empty
            and Point(part.coords[0]).distance(Point(origin)) < 1e-6
        ):
            return np.asarray(part.coords, dtype=float)
    return None


def _ring_path(rng: np.random.Generator, poly: Polygon) -> FloatArray | None:
    """A ring path 22-28 m inside a large compound's wall (None when it does not fit)."""
    inner = _largest_polygon(poly.buffer(-rng.uniform(22, 28), join_style="mitre").simplify(3.0))
    if inner is None or inner.area <= 12_000:
        return None
    rc = _dedupe(np.round(np.asarray(inner.exterior.coords, dtype=float)))
    if len(rc) < 4 or not np.all(rc[0] == rc[-1]):
        return None
    ring = LineString(rc)
    if not (ring.is_simple and poly.buffer(-10).contains(ring)):
        return None
    return rc


def _layout_compound(rng: np.random.Generator, comp: _Compound, spacing: float) -> bool:
    """Lay out internal paths and building spots; return False if the compound is unusable."""
    poly = comp.polygon
    area = poly.area
    centre, u, v, lu, lv = _oriented_frame(poly)
    paths: list[FloatArray] = []
    anchors: list[FloatArray] = []
    ring_c = _ring_path(rng, poly) if area > 50_000 else None
    ring_poly = None if ring_c is None else Polygon(ring_c)
    if ring_c is not None:
        paths.append(ring_c)
        anchors.extend(ring_c[:-1])
    region = (
        ring_poly
        if ring_poly is not None
        else _largest_polygon(poly.buffer(-12 if area > 15_000 else -9))
    )
    if region is None or region.is_empty:
        return False
    off = rng.uniform(-0.12, 0.12) * lv
    spine_geom = None
    for axis, perp, lperp in ((u, v, lv), (v, u, lu)):
        base = centre + perp * (off if axis is u else 0.0)
        spine_geom = _longest_line(
            region.intersection(LineString([base - axis * 2 * lu, base + axis * 2 * lu]))
        )
        if spine_geom is not None and spine_geom.length >= 30:
            u, v, lv = axis, perp, lperp
            break
        spine_geom = None
    if spine_geom is None:
        return False
    a = np.asarray(spine_geom.coords[0], dtype=float)
    b = np.asarray(spine_geom.coords[-1], dtype=float)
    if ring_poly is not None:
        ring_c = paths[0]
        ea = _exact_on_polyline(ring_c, a, 16, 1.0)
        eb = _exact_on_polyline(ring_c, b, 16, 1.0)
        if ea is None or eb is None:
            return False
        a, b = np.asarray(ea), np.asarray(eb)
    else:
        a, b = np.round(a), np.round(b)
        anchors.extend([a, b])
    length = float(np.hypot(*(b - a)))
    direction = (b - a) / length
    branch_region = _largest_polygon(ring_poly.buffer(-10)) if ring_poly is not None else region
    spine_pts = [a]
    d = rng.uniform(25, 45)
    step = rng.uniform(55, 80)
    if area > 12_000 and branch_region is not None:
        while d < length - 25:
            p = np.round(a + direction * d)
            spine_pts.append(p)
            sides = (1.0, -1.0) if rng.random() < 0.6 else (float(rng.choice([1.0, -1.0])),)
            for s in sides:
                br = _clip_ray(p, v * s, 2 * lv, branch_region)
                if br is not None and len(br) >= 2:
                    end = np.round(br[-1])
                    if np.hypot(*(end - p)) >= 20:
                        paths.append(np.vstack([p, end]))
                        if ring_poly is None:
                            anchors.append(end)
            d += step
    spine_pts.append(b)
    spine = _dedupe(np.asarray(spine_pts))
    if len(spine) < 2:
        return False
    paths.insert(1 if ring_poly is not None else 0, spine)
    comp.paths = paths
    comp.anchors = np.asarray(anchors, dtype=float).reshape(-1, 2)
    comp.spots = _building_spots(rng, poly, paths, spacing)
    return len(comp.spots) > 0


def _building_spots(
    rng: np.random.Generator, poly: Polygon, paths: list[FloatArray], spacing: float
) -> FloatArray:
    """Candidate building points a few metres either side of the internal paths."""
    lines = [LineString(p) for p in paths]
    pts: list[FloatArray] = []
    for line in lines:
        length = line.length
        if length < 16:
            continue
        ds = np.arange(8.0, length - 7.9, spacing) + rng.uniform(-2, 2)
        ds = np.clip(ds, 1.0, length - 1.0)
        p = shapely.get_coordinates(shapely.line_interpolate_point(line, ds))
        q0 = shapely.get_coordinates(shapely.line_interpolate_point(line, ds - 1.0))
        q1 = shapely.get_coordinates(shapely.line_interpolate_point(line, ds + 1.0))
        t = q1 - q0
        t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)[:, None]
        n = np.column_stack([-t[:, 1], t[:, 0]])
        for side in (1.0, -1.0):
            pts.append(p + n * side * rng.uniform(6.0, 9.0, (len(p), 1)))
    if not pts:
        return np.zeros((0, 2))
    cand = np.vstack(pts)
    inside = shapely.contains_xy(poly.buffer(-3.0), cand[:, 0], cand[:, 1])
    mp = MultiLineString(paths)
    far = shapely.distance(shapely.points(cand), mp) >= 4.5
    cand = cand[inside & far]
    return _thin(cand, 14.0)


def _thin(pts: FloatArray, min_dist: float) -> FloatArray:
    """Greedy thinning keeping points at least ``min_dist`` apart (earlier points win)."""
    if len(pts) == 0:
        return pts.reshape(0, 2)
    neighbours = cKDTree(pts).query_ball_point(pts, r=min_dist * (1.0 - 1e-9))
    blocked = np.zeros(len(pts), dtype=bool)
    keep = np.zeros(len(pts), dtype=bool)
    for i, nb in enumerate(neighbours):
        if not blocked[i]:
            keep[i] = True
            blocked[nb] = True
    return pts[keep]


def _gate_candidates(
    comp: _Compound,
    comp_index: int,
    public: list[_Road],
    public_tree: shapely.STRtree,
    gate_targets: npt.NDArray[np.bool_],
    comp_tree: shapely.STRtree,
    river: Polygon,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Valid gate connectors of one compound: anchor points, street points, street index."""
    poly = comp.polygon
    near = public_tree.query(poly, predicate="dwithin", distance=45.0)
    near = np.sort(near[gate_targets[near]])
    inner: list[FloatArray] = []
    outer: list[tuple[float, float]] = []
    road: list[int] = []
    for r in near:
        coords = public[int(r)].coords
        for anc in comp.anchors:
            s = _exact_on_polyline(coords, anc, 30, vertex_clearance=0.5)
            if s is None:
                continue
            inner.append(anc)
            outer.append(s)
            road.append(int(r))
    if not inner:
        return np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    ai = np.asarray(inner, dtype=float)
    ao = np.asarray(outer, dtype=float)
    ar = np.asarray(road, dtype=np.int64)
    length = np.hypot(*(ao - ai).T)
    ok = (length <= 70.0) & (length >= 5.0)
    conns = shapely.linestrings(np.stack([ai, ao], axis=1))
    ib = shapely.intersection(conns, poly.exterior)
    ok &= shapely.get_type_id(ib) == 0
    mp = MultiLineString(comp.paths)
    ip = shapely.intersection(conns, mp)
    ok &= (shapely.get_type_id(ip) == 0) & (shapely.distance(ip, shapely.points(ai)) == 0.0)
    hit_i, hit_r = public_tree.query(conns, predicate="intersects")
    n_pub = np.bincount(hit_i, minlength=len(ai))
    ok &= n_pub == 1
    hit_i, hit_c = comp_tree.query(conns, predicate="intersects")
    other = np.bincount(hit_i[hit_c != comp_index], minlength=len(ai))
    ok &= other == 0
    ok &= ~shapely.intersects(conns, river)
    return ai[ok], ao[ok], ar[ok]


def _choose_gates(
    rng: np.random.Generator,
    inner: FloatArray,
    outer: FloatArray,
    n_target: int,
) -> list[int]:
    """Pick up to ``n_target`` candidate indices: short, spread apart, distinct anchors."""
    length = np.hypot(*(outer - inner).T) + rng.uniform(0, 10, len(inner))
    chosen: list[int] = []
    for i in np.argsort(length, kind="stable"):
        if len(chosen) >= n_target:
            break
        if all(
            math.dist(outer[i], outer[j]) >= 70.0 and math.dist(inner[i], inner[j]) > 0
            for j in chosen
        ):
            chosen.append(int(i))
    return chosen


def _parcels(ctx: _Ctx, public: list[_Road], river: Polygon, ring_line: LineString
             ) -> tuple[list[Polygon], list[_Compound], list[tuple[Polygon, str]]]:
    """Blocks between the streets; parcels split into compounds or kept non-residential."""
    rng = ctx.rng
    blocks = _faces([r.line for r in public if r.highway != "elevated"] + [ring_line])
    river_faces = [f for f in blocks if f.intersects(river)]
    widths = np.array(
        [
            rng.uniform(18, 25)
            if r.highway in ("arterial", "bridge", "elevated")
            else rng.uniform(14, 18)
            if r.name.startswith("滨河")
            else rng.uniform(10, 14)
            if r.highway == "secondary"
            else rng.uniform(9, 12)
            for r in public
        ]
    )
    road_buf = shapely.buffer(np.array([r.line for r in public], dtype=object), widths, quad_segs=2)
    blocked = shapely.union_all(
        [*road_buf, river.buffer(15.0), ring_line.buffer(10.0, quad_segs=2), *river_faces]
    )
    parcels = [
        p
        for p in shapely.get_parts(ctx.extent.difference(blocked))
        if isinstance(p, Polygon) and p.area >= 5_000
    ]
    parcels.sort(key=lambda p: (round(p.centroid.y, 3), round(p.centroid.x, 3)))
    compounds: list[_Compound] = []
    nonres: list[tuple[Polygon, str]] = []
    for parcel in parcels:
        rp = parcel.representative_point()
        pxy = np.array([[rp.x, rp.y]])
        o = float(ctx.oldness(pxy)[0])
        area_ha = parcel.area / 10_000
        p_nonres = 0.2 + (0.3 if area_ha < 1.5 else 0.0) + (0.1 if area_ha > 30 else 0.0)
        if rng.random() < p_nonres:
            kind = str(rng.choice(["school", "office", "park", "hospital", "commercial"]))
            nonres.append((parcel, kind))
            continue
        target_ha = 6.0 + 10.0 * (1.0 - o) + rng.uniform(-1.5, 1.5)
        n = int(np.clip(round(area_ha / target_ha), 1, 4))
        compounds.extend(_compound_pieces(ctx, parcel, n))
    return blocks, compounds, nonres


def _compound_pieces(ctx: _Ctx, parcel: Polygon, n: int) -> list[_Compound]:
    """A residential parcel split into ``n`` compounds (slivers dropped)."""
    rng = ctx.rng
    out: list[_Compound] = []
    for piece in _split_parcel(rng, parcel, n):
        if piece.area < 8_000:
            continue
        shrunk = _largest_polygon(
            piece.buffer(-rng.uniform(0.0, 3.0), join_style="mitre").simplify(0.5)
        )
        if shrunk is None or shrunk.area < 7_000 or not shrunk.is_valid:
            continue
        pc = shrunk.centroid
        pxy = np.array([[pc.x, pc.y]])
        out.append(_Compound(shrunk, float(ctx.oldness(pxy)[0])))
    return out


def _lay_out_compounds(ctx: _Ctx, compounds: list[_Compound]
                       ) -> tuple[list[_Compound], npt.NDArray[np.int64]]:
    """Built years (old walk-ups near the centre, new towers outside) and internal layouts."""
    rng = ctx.rng
    years = np.clip(
        np.round(
            np.array([2021.0 - 38.0 * c.oldness for c in compounds])
            + rng.normal(0, 3.5, len(compounds))
        ),
        1980,
        2022,
    ).astype(np.int64)
    old = years < 2000
    spacing = np.where(old, 22.0, 34.0)
    usable = [_layout_compound(rng, c, float(s)) for c, s in zip(compounds, spacing, strict=True)]
    compounds = [c for c, u in zip(compounds, usable, strict=True) if u]
    return compounds, years[np.asarray(usable, dtype=bool)]


def _add_gates(ctx: _Ctx, compounds: list[_Compound], years: npt.NDArray[np.int64],
               public: list[_Road], river: Polygon
               ) -> tuple[list[_Compound], npt.NDArray[np.int64]]:
    """Gates to the public streets (a few compounds open only away from the nearest one)."""
    rng = ctx.rng
    public_lines = [r.line for r in public]
    public_tree = shapely.STRtree(public_lines)
    gate_targets = np.array([r.highway in ("arterial", "secondary", "local") for r in public])
    comp_tree = shapely.STRtree([c.polygon for c in compounds])
    cands = [
        _gate_candidates(c, i, public, public_tree, gate_targets, comp_tree, river)
        for i, c in enumerate(compounds)
    ]
    away = _away_candidates(compounds, cands, public_lines, public_tree, gate_targets)
    feasible = np.flatnonzero([a is not None for a in away])
    n_away = min(len(feasible), max(round(0.08 * len(compounds)), 3))
    away_set = set(rng.permutation(feasible)[:n_away].tolist())
    keep = np.zeros(len(compounds), dtype=bool)
    for i, (comp, (ci, co, _cr)) in enumerate(zip(compounds, cands, strict=True)):
        if len(ci) == 0:
            continue
        if i in away_set:
            sel_idx = away[i]
            assert sel_idx is not None
            chosen = [sel_idx]
        else:
            chosen = _choose_gates(rng, ci, co, _gate_count(rng, comp.polygon.area))
        _name_gates(comp, ci, co, chosen)
        keep[i] = True
    return [c for c, k in zip(compounds, keep, strict=True) if k], years[keep]


def _gate_count(rng: np.random.Generator, area_m2: float) -> int:
    """How many gates a compound of this size gets (small: one or two)."""
    if area_m2 < 20_000:
        return 1 if rng.random() < 0.55 else 2
    if area_m2 < 60_000:
        return int(rng.choice([1, 2, 3], p=[0.15, 0.6, 0.25]))
    return int(rng.choice([2, 3], p=[0.5, 0.5]))


def _name_gates(comp: _Compound, ci: FloatArray, co: FloatArray, chosen: list[int]) -> None:
    """Add the chosen gate connectors to ``comp``, named by their direction (东门, 北门 ...)."""
    centre = comp.polygon.centroid
    for j in chosen:
        comp.gates.append(np.vstack([ci[j], co[j]]))
        ang = math.atan2(co[j][1] - centre.y, co[j][0] - centre.x)
        label = _GATE_DIRECTIONS[int(round(ang / (math.pi / 4))) % 8]
        if label in comp.gate_names:
            label = label[:-1] + "二门"
        comp.gate_names.append(label)


def _compounds_frame(compounds: list[_Compound], comp_names: list[str],
                     years: npt.NDArray[np.int64], comp_comm: npt.NDArray[np.int64]
                     ) -> GeoDataFrame:
    """The ``compounds`` layer."""
    return GeoDataFrame(
        {
            "compound_id": np.arange(1, len(compounds) + 1, dtype=np.int64),
            "name": comp_names,
            "built_year": years.astype(np.int64),
            "community_id": comp_comm,
            "n_gates": np.array([len(c.gates) for c in compounds], dtype=np.int64),
        },
        geometry=[c.polygon for c in compounds],
        crs=CRS,
    )


def _away_candidates(
    compounds: list[_Compound],
    cands: list[tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]],
    public_lines: list[LineString],
    public_tree: shapely.STRtree,
    gate_targets: npt.NDArray[np.bool_],
) -> list[int | None]:
    """For each compound, a gate candidate facing away from its nearest street (or None)."""
    out: list[int | None] = []
    for comp, (ci, co, cr) in zip(compounds, cands, strict=True):
        if len(ci) == 0:
            out.append(None)
            continue
        c = comp.polygon.centroid
        roads = public_tree.query(comp.polygon, predicate="dwithin", distance=45.0)
        roads = np.sort(roads[gate_targets[roads]])
        dists = np.array([public_lines[int(r)].distance(c) for r in roads])
        nearest = int(roads[int(np.argmin(dists))])
        d_near = float(dists.min())
        d_gate = np.hypot(co[:, 0] - c.x, co[:, 1] - c.y)
        ok = np.flatnonzero((cr != nearest) & (d_gate >= 1.5 * d_near) & (d_near < 120))
        if len(ok) == 0:
            out.append(None)
            continue
        length = np.hypot(*(co[ok] - ci[ok]).T)
        out.append(int(ok[int(np.argmin(length))]))
    return out


def _compound_names(rng: np.random.Generator, years: npt.NDArray[np.int64]) -> list[str]:
    """Distinct Chinese compound names; work-unit courtyards among the oldest."""
    new_names = _unique_names(rng, _COMPOUND_PREFIXES, _COMPOUND_SUFFIXES_NEW, len(years))
    old_names = _unique_names(rng, _COMPOUND_PREFIXES, _COMPOUND_SUFFIXES_OLD, len(years))
    unit_names = _unique_names(rng, _WORK_UNITS, ("家属院", "宿舍", "生活区"), len(years))
    used: set[str] = set()
    names: list[str] = []
    for y in years.tolist():
        if y < 1995 and rng.random() < 0.45:
            pool = unit_names
        elif y < 2003:
            pool = old_names
        else:
            pool = new_names
        while pool and pool[-1] in used:
            pool.pop()
        nm = pool.pop() if pool else f"第{len(names) + 1}小区"
        used.add(nm)
        names.append(nm)
    return names
