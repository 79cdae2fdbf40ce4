"""Street stage: secondary and local streets in each superblock, the expressway, the roads layer."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely
from geopandas import GeoDataFrame
from shapely.geometry import LineString, Point, Polygon

from geosvc.datasets._common import (
    _STREET_PREFIXES,
    _STREET_SUFFIXES,
    CRS,
    XY,
    FloatArray,
    _Compound,
    _Ctx,
    _dedupe,
    _exact_on_polyline,
    _faces,
    _longest_line,
    _Road,
    _unique_names,
)
from geosvc.datasets._layout import _Arterials


class _Snapper:
    """Find the road under a point of a superblock boundary and snap onto it exactly."""

    def __init__(self, ctx: _Ctx, roads: list[_Road]) -> None:
        self.ctx = ctx
        self.roads = roads
        self.tree = shapely.STRtree([r.line for r in roads])

    def snap(self, xy: XY) -> tuple[tuple[float, float], bool]:
        """Return the snapped point and whether it lies on a road (else on the extent)."""
        c = self.ctx
        x, y = float(xy[0]), float(xy[1])
        for edge, val in ((0, c.x0), (0, c.x0 + c.width), (1, c.y0), (1, c.y0 + c.height)):
            if abs((x, y)[edge] - val) < 1e-3:
                return ((val, float(round(y))) if edge == 0 else (float(round(x)), val)), False
        idx = self.tree.query(Point(x, y), predicate="dwithin", distance=0.01)
        if len(idx) == 0:
            return (float(round(x)), float(round(y))), False
        best = min(
            sorted(int(i) for i in idx), key=lambda i: self.roads[i].line.distance(Point(x, y))
        )
        p = _exact_on_polyline(self.roads[best].coords, (x, y), 16, vertex_clearance=1.0)
        if p is None:
            return (float(round(x)), float(round(y))), False
        return p, True


def _polyline(
    a: Sequence[float], b: Sequence[float], rng: np.random.Generator, jitter: float
) -> FloatArray:
    """Straight-ish street from ``a`` to ``b`` with one jittered whole-metre mid vertex."""
    pa, pb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = pb - pa
    length = float(np.hypot(*d))
    if length < 60 or jitter <= 0:
        return np.vstack([pa, pb])
    perp = np.array([-d[1], d[0]]) / length
    mid = np.round(pa + 0.5 * d + perp * rng.uniform(-jitter, jitter))
    return np.vstack([pa, mid, pb])


def _secondaries(ctx: _Ctx, block: Polygon, snapper: _Snapper, names: list[str]) -> list[_Road]:
    """Secondary and local streets inside one arterial superblock."""
    rng = ctx.rng
    bx0, by0, bx1, by1 = block.bounds
    w, h = bx1 - bx0, by1 - by0
    c = block.centroid
    o = float(ctx.oldness(np.array([[c.x, c.y]]))[0])
    # the old town is finely divided; newer areas keep many large superblocks whole
    if min(w, h) < 240 or rng.random() < 0.5 - 0.45 * o:
        return []
    vertical_primary = w >= h
    span_p, span_s = (w, h) if vertical_primary else (h, w)
    n_p = max(0, round(span_p / rng.uniform(300 + 100 * (1 - o), 400 + 80 * (1 - o))) - 1)
    n_s = max(0, round(span_s / rng.uniform(300 + 100 * (1 - o), 400 + 80 * (1 - o))) - 1)
    out: list[_Road] = []

    def line_at(frac_pos: float, primary: bool, tilt: float) -> LineString | None:
        if primary == vertical_primary:  # a north-south line
            x = bx0 + frac_pos * w
            seg = LineString([(x - tilt, by0 - 5), (x + tilt, by1 + 5)])
        else:
            y = by0 + frac_pos * h
            seg = LineString([(bx0 - 5, y - tilt), (bx1 + 5, y + tilt)])
        return _longest_line(block.intersection(seg))

    def name() -> str:
        return names.pop() if names else "无名路"

    primaries: list[_Road] = []
    for i in range(n_p):
        pos = (i + 1) / (n_p + 1) + rng.uniform(-0.04, 0.04)
        seg = line_at(pos, True, rng.uniform(-25, 25))
        if seg is None or seg.length < 150:
            continue
        coords, highway = _primary_street(rng, seg, snapper)
        road = _Road(coords, highway, name())
        primaries.append(road)
        out.append(road)
    prim_lines = [r.line for r in primaries]
    for j in range(n_s):
        pos = (j + 1) / (n_s + 1) + rng.uniform(-0.04, 0.04)
        seg = line_at(pos, False, rng.uniform(-25, 25))
        if seg is None or seg.length < 150:
            continue
        street = _cross_street(rng, seg, primaries, prim_lines, snapper)
        if street is not None:
            out.append(_Road(street[0], street[1], name()))
    return out


def _primary_street(rng: np.random.Generator, seg: LineString, snapper: _Snapper
                    ) -> tuple[FloatArray, str]:
    """A street across the superblock; sometimes a dead end stopping short of the far side."""
    ends = [snapper.snap(c) for c in (seg.coords[0], seg.coords[-1])]
    a, b = ends[0][0], ends[1][0]
    on_road = [e[1] for e in ends]
    if any(on_road) and rng.random() < 0.22:  # dead end: stops short of the far street
        if not on_road[0] or (on_road[1] and rng.random() < 0.5):
            a, b = b, a
        f = rng.uniform(0.5, 0.75)
        b = tuple(np.round(np.asarray(a) + f * (np.asarray(b) - np.asarray(a))))
        return _polyline(a, b, rng, 5.0), "local"
    return _polyline(a, b, rng, 6.0), "secondary"


def _cross_street(rng: np.random.Generator, seg: LineString, primaries: list[_Road],
                  prim_lines: list[LineString], snapper: _Snapper
                  ) -> tuple[FloatArray, str] | None:
    """A street across the primaries: through, a T, between two of them, or a dead end."""
    c0 = np.asarray(seg.coords[0])
    c1 = np.asarray(seg.coords[-1])
    direction = (c1 - c0) / seg.length
    hits: list[tuple[float, int, Point]] = []
    for k, pl in enumerate(prim_lines):
        inter = seg.intersection(pl)
        for p in shapely.get_parts(inter):
            if isinstance(p, Point):
                hits.append((float(np.dot(np.array([p.x, p.y]) - c0, direction)), k, p))
    hits.sort(key=lambda e: e[0])
    mode = rng.choice(["through", "t", "between", "dead"], p=[0.3, 0.4, 0.15, 0.15])
    if mode == "between" and len(hits) < 2:
        mode = "t"
    if mode == "t" and not hits:
        mode = "through"
    ends = _cross_ends(rng, str(mode), seg, direction, hits, primaries, snapper)
    if ends is None:
        return None
    a_xy, b_xy, highway = ends
    if math.dist(a_xy, b_xy) < 80:
        return None
    coords = _polyline(a_xy, b_xy, rng, 4.0 if mode != "through" else 0.0)
    cand = LineString(coords)
    # dead ends (this one's and the primaries') must stay clear of every other street
    if mode == "dead" and any(
        cand.intersects(pl) or Point(b_xy).distance(pl) < 30 for pl in prim_lines
    ):
        return None
    if any(
        pr.highway == "local" and Point(pr.coords[-1]).distance(cand) < 30 for pr in primaries
    ):
        return None
    return coords, highway


def _cross_ends(rng: np.random.Generator, mode: str, seg: LineString, direction: FloatArray,
                hits: list[tuple[float, int, Point]], primaries: list[_Road], snapper: _Snapper
                ) -> tuple[tuple[float, float], tuple[float, float], str] | None:
    """End points and highway class of a cross street in ``mode`` (None: not possible)."""
    c0 = np.asarray(seg.coords[0])
    c1 = np.asarray(seg.coords[-1])
    if mode == "through":
        return snapper.snap(c0)[0], snapper.snap(c1)[0], "secondary"
    if mode == "t":
        if rng.random() < 0.5:
            a_xy = snapper.snap(c0)[0]
            _, k, p = hits[0]
        else:
            a_xy = snapper.snap(c1)[0]
            _, k, p = hits[-1]
        pe = _exact_on_polyline(primaries[k].coords, (p.x, p.y), 16, vertex_clearance=1.0)
        return None if pe is None else (a_xy, pe, "local")
    if mode == "between":
        m = int(rng.integers(0, len(hits) - 1))
        pa = _exact_on_polyline(
            primaries[hits[m][1]].coords, (hits[m][2].x, hits[m][2].y), 16, 1.0
        )
        pb = _exact_on_polyline(
            primaries[hits[m + 1][1]].coords, (hits[m + 1][2].x, hits[m + 1][2].y), 16, 1.0
        )
        if pa is None or pb is None or hits[m + 1][0] - hits[m][0] < 80:
            return None
        return pa, pb, "local"
    from_start = rng.random() < 0.5
    start = c0 if from_start else c1
    limit = seg.length * rng.uniform(0.35, 0.6)
    if hits:
        first = hits[0][0] if from_start else seg.length - hits[-1][0]
        limit = min(limit, first - 45.0)
    if limit < 80:
        return None
    a_xy, on_road_a = snapper.snap(start)
    if not on_road_a:
        return None
    step = direction if from_start else -direction
    b_xy = (
        float(round(start[0] + step[0] * limit)),
        float(round(start[1] + step[1] * limit)),
    )
    return a_xy, b_xy, "local"


def _street_network(ctx: _Ctx, arterials: _Arterials, river: Polygon
                    ) -> tuple[list[_Road], LineString]:
    """Secondary streets in every superblock, then the elevated expressway."""
    rng = ctx.rng
    frame = arterials.frame
    ring_line = LineString(np.asarray(ctx.extent.exterior.coords))
    faces = _faces([r.line for r in frame] + [ring_line])
    land = [f for f in faces if not f.intersects(river)]
    land.sort(key=lambda f: (round(f.centroid.y, 3), round(f.centroid.x, 3)))
    snapper = _Snapper(ctx, frame)
    sec_names = _unique_names(
        rng, _STREET_PREFIXES, _STREET_SUFFIXES, len(_STREET_PREFIXES) * len(_STREET_SUFFIXES)
    )
    secondary: list[_Road] = []
    for blk in land:
        secondary.extend(_secondaries(ctx, blk, snapper, sec_names))
    public: list[_Road] = frame + secondary
    # elevated expressway (crosses streets without junctions)
    elevated = _elevated(ctx, arterials.elevated_bases)
    if elevated is not None:
        public.append(elevated)
    return public, ring_line


def _roads_frame(public: list[_Road], compounds: list[_Compound], comp_names: list[str]
                 ) -> GeoDataFrame:
    """The ``roads`` layer: public roads, then each compound's paths and gates."""
    rows: list[_Road] = list(public)
    for i, comp in enumerate(compounds):
        cid = i + 1
        for p in comp.paths:
            rows.append(_Road(p, "path", comp_names[i] + "内部道路", 0, 0, cid))
        for g, gname in zip(comp.gates, comp.gate_names, strict=True):
            rows.append(_Road(g, "gate", comp_names[i] + gname, 0, 0, cid))
    return GeoDataFrame(
        {
            "road_id": np.arange(1, len(rows) + 1, dtype=np.int64),
            "highway": [r.highway for r in rows],
            "name": [r.name for r in rows],
            "bridge": np.array([r.bridge for r in rows], dtype=np.int64),
            "layer": np.array([r.layer for r in rows], dtype=np.int64),
            "compound_id": np.array([r.compound_id for r in rows], dtype=np.int64),
        },
        geometry=[r.line for r in rows],
        crs=CRS,
    )


def _elevated(ctx: _Ctx, candidates: list[tuple[FloatArray, str, list[_Road]]]) -> _Road | None:
    """An elevated expressway running 6 m beside the longest arterial, ramps at both ends.

    ``candidates`` holds (full centre line, name, the at-grade pieces of that line); a
    north-south arterial interrupted by the river may carry the expressway across it.
    """
    if not candidates:
        return None
    rng = ctx.rng
    base, name, pieces = max(candidates, key=lambda c: LineString(c[0]).length)
    line = LineString(base)
    piece_lines = shapely.multilinestrings([p.line for p in pieces])
    length = line.length
    side = float(rng.choice([-1.0, 1.0]))
    for attempt in range(12):
        if attempt == 6:
            side = -side
        d0 = length * rng.uniform(0.1, 0.2)
        d1 = length * rng.uniform(0.8, 0.9)
        ds = np.arange(d0 + 60.0, d1 - 59.0, 40.0)
        if len(ds) < 2:
            return None
        p = shapely.get_coordinates(shapely.line_interpolate_point(line, ds))
        t = shapely.get_coordinates(
            shapely.line_interpolate_point(line, ds + 1.0)
        ) - shapely.get_coordinates(shapely.line_interpolate_point(line, ds - 1.0))
        t /= np.hypot(t[:, 0], t[:, 1])[:, None]
        n = np.column_stack([-t[:, 1], t[:, 0]]) * side
        offset = 6.0 * np.minimum(1.0, np.minimum(ds - d0, d1 - ds) / 100.0)
        mid = np.round(p + n * offset[:, None])
        ends = []
        for d in (d0, d1):
            q = line.interpolate(d)
            owner = min(pieces, key=lambda r: r.line.distance(q))
            e = _exact_on_polyline(owner.coords, (q.x, q.y), 16, vertex_clearance=1.0)
            if e is None:
                break
            ends.append(e)
        if len(ends) != 2:
            continue
        coords = _dedupe(np.vstack([[ends[0]], mid, [ends[1]]]))
        el = LineString(coords)
        inter = el.intersection(piece_lines)
        parts = shapely.get_parts(inter)
        if len(parts) == 2 and all(isinstance(g, Point) for g in parts):
            return _Road(coords, "elevated", name + "高架", 1, 1)
    return None
