"""District layout stage: the river, the arterial frame, communities and streets (街道)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from geopandas import GeoDataFrame
from shapely.geometry import LineString, Point, Polygon

from geosvc.datasets._common import (
    _ARTERIAL_NAMES,
    _COMMUNITY_PREFIXES,
    _STREET_OFFICE_NAMES,
    BASE_EXTENT_M,
    CRS,
    ORIGIN,
    FloatArray,
    _as_polygon,
    _clean,
    _Compound,
    _Ctx,
    _dedupe,
    _exact_on_polyline,
    _largest_polygon,
    _longest_line,
    _project_on_polyline,
    _Road,
    _round_inner,
    _unique_names,
)


def _river(ctx: _Ctx) -> tuple[Polygon, FloatArray, FloatArray]:
    """Build the river polygon and the two riverside roads (south, north)."""
    rng = ctx.rng
    w, h = ctx.width, ctx.height
    base = ctx.y0 + rng.uniform(0.46, 0.56) * h
    a1, l1, f1 = rng.uniform(90, 150), rng.uniform(2200, 3200), rng.uniform(0, 2 * np.pi)
    a2, l2, f2 = rng.uniform(30, 60), rng.uniform(700, 1100), rng.uniform(0, 2 * np.pi)
    slope = rng.uniform(-0.03, 0.03)
    wmid, wamp, wl, wf = (
        rng.uniform(75, 85),
        rng.uniform(8, 15),
        rng.uniform(900, 1600),
        rng.uniform(0, 2 * np.pi),
    )
    xm = ctx.x0 + w / 2

    def centre(x: FloatArray) -> FloatArray:
        u = np.asarray(x, dtype=float) - ctx.x0
        return np.asarray(
            base
            + a1 * np.sin(2 * np.pi * u / l1 + f1)
            + a2 * np.sin(2 * np.pi * u / l2 + f2)
            + slope * (np.asarray(x) - xm),
            dtype=float,
        )

    def dcentre(x: FloatArray) -> FloatArray:
        u = np.asarray(x, dtype=float) - ctx.x0
        return np.asarray(
            a1 * 2 * np.pi / l1 * np.cos(2 * np.pi * u / l1 + f1)
            + a2 * 2 * np.pi / l2 * np.cos(2 * np.pi * u / l2 + f2)
            + slope,
            dtype=float,
        )

    ctx.river_y = centre
    xs = np.arange(ctx.x0 - 400.0, ctx.x0 + w + 400.0 + 1.0, 20.0)
    yc = centre(xs)
    dy = dcentre(xs)
    norm = np.hypot(1.0, dy)
    nx, ny = -dy / norm, 1.0 / norm
    half = (wmid + wamp * np.sin(2 * np.pi * (xs - ctx.x0) / wl + wf)) / 2.0
    left = np.column_stack([xs + nx * half, yc + ny * half])
    right = np.column_stack([xs - nx * half, yc - ny * half])
    raw = Polygon(np.vstack([left, right[::-1]]))
    river = _largest_polygon(shapely.make_valid(raw).intersection(ctx.extent))
    assert river is not None
    roads = []
    for sign in (-1.0, 1.0):
        off = half + rng.uniform(20.0, 24.0)
        pts = np.column_stack([xs + sign * nx * off, yc + sign * ny * off])[::2]
        line = _longest_line(LineString(pts).intersection(ctx.extent))
        assert line is not None
        c = np.asarray(line.coords, dtype=float)
        if c[0, 0] > c[-1, 0]:
            c = c[::-1]
        c[0, 0], c[-1, 0] = ctx.x0, ctx.x0 + w
        c[0, 1], c[-1, 1] = round(c[0, 1]), round(c[-1, 1])
        roads.append(_round_inner(c))
    return river, roads[0], roads[1]


def _axis_positions(rng: np.random.Generator, lo: float, hi: float) -> list[float]:
    """Evenly spread arterial positions in ``[lo, hi]`` about 800–1100 m apart."""
    length = hi - lo
    if length < 0:
        return []
    if length < 500:
        return [lo + length / 2 + rng.uniform(-30, 30)]
    n = round(length / 950.0) + 1
    step = length / (n - 1)
    return [lo + i * step + rng.uniform(-40, 40) for i in range(n)]


def _bent_line(
    rng: np.random.Generator,
    along0: float,
    along1: float,
    across: float,
    vertical: bool,
    max_slope: float,
) -> FloatArray:
    """A slightly bent, slightly tilted arterial polyline with whole-metre vertices."""
    stops = [along0]
    while stops[-1] + 500.0 < along1:
        stops.append(stops[-1] + rng.uniform(250.0, 500.0))
    stops.append(along1)
    offs = np.clip(np.cumsum(rng.normal(0.0, 14.0, len(stops))), -35.0, 35.0)
    offs += rng.uniform(-max_slope, max_slope) * (np.asarray(stops) - (along0 + along1) / 2)
    a = np.round(np.asarray(stops))
    a[0], a[-1] = along0, along1
    b = np.round(across + offs)
    pts = np.column_stack([b, a]) if vertical else np.column_stack([a, b])
    return _dedupe(pts.astype(float))


def _cut_at(coords: FloatArray, line: FloatArray, keep_before: bool) -> tuple[FloatArray, Point]:
    """Cut polyline ``coords`` where it crosses ``line``; end exactly on ``line``."""
    inter = LineString(coords).intersection(LineString(line))
    pts = [p for p in shapely.get_parts(inter) if isinstance(p, Point)]
    if len(pts) != 1:
        raise RuntimeError("arterial does not cross the riverside road exactly once")
    x = pts[0]
    j = _exact_on_polyline(line, (x.x, x.y), 16)
    assert j is not None
    i, t, _ = _project_on_polyline(coords, (x.x, x.y))
    if keep_before:
        head = coords[: i + 1]
        if len(head) > 1 and np.hypot(*(head[-1] - j)) < 8.0:
            head = head[:-1]
        out = np.vstack([head, [j]])
    else:
        tail = coords[i + 1 :]
        if len(tail) > 1 and np.hypot(*(tail[0] - j)) < 8.0:
            tail = tail[1:]
        out = np.vstack([[j], tail])
    return out, Point(j)


def _contiguous_labels(
    faces: Sequence[Polygon], labels: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Reassign faces so that every label's union is one connected polygon."""
    labels = labels.copy()
    tree = shapely.STRtree(list(faces))
    left, right = tree.query(list(faces), predicate="intersects")
    mask = left != right
    left, right = left[mask], right[mask]
    shared = shapely.length(
        shapely.intersection(
            shapely.boundary(np.asarray(faces, dtype=object)[left]),
            shapely.boundary(np.asarray(faces, dtype=object)[right]),
        )
    )
    neighbours: dict[int, list[tuple[int, float]]] = {}
    for a, b, s in zip(left.tolist(), right.tolist(), shared.tolist(), strict=True):
        if s > 0:
            neighbours.setdefault(a, []).append((b, s))
    for _ in range(20):
        changed = False
        for lab in np.unique(labels):
            members = np.flatnonzero(labels == lab)
            # connected components of the member faces via shared edges
            comp_of = {int(m): -1 for m in members}
            n_comp = 0
            sizes: list[float] = []
            for m in members:
                if comp_of[int(m)] >= 0:
                    continue
                stack = [int(m)]
                comp_of[int(m)] = n_comp
                size = 0.0
                while stack:
                    f = stack.pop()
                    size += faces[f].area
                    for nb, _s in neighbours.get(f, []):
                        if nb in comp_of and comp_of[nb] < 0:
                            comp_of[nb] = n_comp
                            stack.append(nb)
                sizes.append(size)
                n_comp += 1
            if n_comp <= 1:
                continue
            main = int(np.argmax(sizes))
            for f, c in comp_of.items():
                if c == main:
                    continue
                votes: dict[int, float] = {}
                for nb, s in neighbours.get(f, []):
                    if labels[nb] != lab:
                        votes[int(labels[nb])] = votes.get(int(labels[nb]), 0.0) + s
                if votes:
                    labels[f] = max(sorted(votes), key=lambda k: votes[k])
                    changed = True
        if not changed:
            break
    return labels


def _context(seed: int, scale: float) -> _Ctx:
    """The generator state and the district's extent, old town and eastern gap."""
    rng = np.random.default_rng(seed)
    width = float(round(BASE_EXTENT_M[0] * scale))
    height = float(round(BASE_EXTENT_M[1] * scale))
    x0, y0 = ORIGIN
    return _Ctx(
        rng=rng,
        x0=x0,
        y0=y0,
        width=width,
        height=height,
        old_centre=(
            x0 + rng.uniform(0.30, 0.45) * width,
            y0 + rng.uniform(0.22, 0.32) * height,
        ),
        old_radius=0.25 * width,
        gap_x=x0 + rng.uniform(0.62, 0.72) * width,
    )


@dataclass
class _Arterials:
    """The arterial frame: every frame road, and the bases an expressway may follow."""

    frame: list[_Road]
    horizontal: list[_Road]
    vertical: list[_Road]
    elevated_bases: list[tuple[FloatArray, str, list[_Road]]]


def _arterial_frame(ctx: _Ctx, south_rd: FloatArray, north_rd: FloatArray) -> _Arterials:
    """Riverside roads, a bent grid of arterials, and bridges over the river."""
    rng = ctx.rng
    x0, y0, width, height = ctx.x0, ctx.y0, ctx.width, ctx.height
    art_pool = [str(n) for n in rng.permutation(np.asarray(_ARTERIAL_NAMES, dtype=object))]

    def art_name() -> str:
        return art_pool.pop() if art_pool else f"{len(frame) + 1}号路"

    frame: list[_Road] = [
        _Road(south_rd, "secondary", "滨河南路"),
        _Road(north_rd, "secondary", "滨河北路"),
    ]
    band_low = float(south_rd[:, 1].min()) - 250.0
    band_high = float(north_rd[:, 1].max()) + 250.0
    ys = _axis_positions(rng, y0 + rng.uniform(400, 650), band_low) + _axis_positions(
        rng, band_high, y0 + height - rng.uniform(400, 650)
    )
    xs = _axis_positions(rng, x0 + rng.uniform(400, 650), x0 + width - rng.uniform(400, 650))
    n_bridges = int(np.clip(round(len(xs) * 0.45), 1, 4))
    bridge_idx = (
        set(np.sort(rng.choice(len(xs), size=min(n_bridges, len(xs)), replace=False)).tolist())
        if xs
        else set()
    )
    horizontal: list[_Road] = []
    for y in ys:
        nm = art_name()
        road = _Road(
            _bent_line(rng, x0, x0 + width, y, vertical=False, max_slope=0.01), "arterial", nm
        )
        horizontal.append(road)
    vertical: list[_Road] = []
    elevated_bases: list[tuple[FloatArray, str, list[_Road]]] = [
        (r.coords, r.name, [r]) for r in horizontal
    ]
    for i, x in enumerate(xs):
        nm = art_name()
        full = _bent_line(rng, y0, y0 + height, x, vertical=True, max_slope=0.02)
        south_c, js = _cut_at(full, south_rd, keep_before=True)
        north_c, jn = _cut_at(full, north_rd, keep_before=False)
        vertical.append(_Road(south_c, "arterial", nm))
        vertical.append(_Road(north_c, "arterial", nm))
        if i not in bridge_idx:
            elevated_bases.append((full, nm, [vertical[-2], vertical[-1]]))
        if i in bridge_idx:
            frame.append(_Road(np.array([[js.x, js.y], [jn.x, jn.y]]), "bridge", nm + "桥", 1, 1))
    frame = horizontal + vertical + frame
    return _Arterials(frame, horizontal, vertical, elevated_bases)


def _community_of(compounds: list[_Compound], communities: GeoDataFrame
                  ) -> npt.NDArray[np.int64]:
    """Community id of each compound (-1 when its centroid is in none)."""
    comm_tree = shapely.STRtree(list(communities.geometry))
    comp_centroids = shapely.centroid(np.array([c.polygon for c in compounds], dtype=object))
    ci_idx, cc_idx = comm_tree.query(comp_centroids, predicate="within")
    comp_comm = np.full(len(compounds), -1, dtype=np.int64)
    comp_comm[ci_idx] = communities["community_id"].to_numpy()[cc_idx]
    return comp_comm


def _river_frame(river: Polygon) -> GeoDataFrame:
    """The ``river`` layer (one polygon, its mean width)."""
    return GeoDataFrame(
        {"name": ["古宋河"], "width_m": [round(float(river.area / _river_length(river)), 1)]},
        geometry=[river],
        crs=CRS,
    )


def _river_length(river: Polygon) -> float:
    """Approximate centre-line length of a long thin polygon (half its perimeter)."""
    return max(river.exterior.length / 2.0, 1.0)


def _area_units(ctx: _Ctx, blocks: list[Polygon]) -> tuple[GeoDataFrame, GeoDataFrame]:
    """Communities (unions of blocks) and streets (unions of communities)."""
    rng = ctx.rng
    nx = max(1, round(ctx.width / 1330.0))
    ny = max(1, round(ctx.height / 1200.0))
    seeds = []
    for j in range(ny):
        for i in range(nx):
            seeds.append(
                (
                    ctx.x0 + (i + 0.5 + rng.uniform(-0.25, 0.25)) * ctx.width / nx,
                    ctx.y0 + (j + 0.5 + rng.uniform(-0.25, 0.25)) * ctx.height / ny,
                )
            )
    seed_xy = np.asarray(seeds)
    cent = shapely.get_coordinates(shapely.centroid(np.asarray(blocks, dtype=object)))
    d2 = ((cent[:, None, :] - seed_xy[None, :, :]) ** 2).sum(axis=2)
    labels = np.argmin(d2, axis=1).astype(np.int64)
    labels = _contiguous_labels(blocks, labels)
    used = np.unique(labels)
    comm_geoms = [
        shapely.union_all([blocks[k] for k in np.flatnonzero(labels == lab)]) for lab in used
    ]
    # streets: coarse grid over the community seeds
    sx = max(1, round(ctx.width / 2700.0))
    sy = max(1, round(ctx.height / 3000.0))
    if sx * sy == 1 and len(used) >= 2:
        sx = 2
    s_xy = seed_xy[used]
    col = np.clip(((s_xy[:, 0] - ctx.x0) / ctx.width * sx).astype(int), 0, sx - 1)
    row = np.clip(((s_xy[:, 1] - ctx.y0) / ctx.height * sy).astype(int), 0, sy - 1)
    st_labels = (row * sx + col).astype(np.int64)
    st_labels = _contiguous_labels([_as_polygon(g) for g in comm_geoms], st_labels)
    st_used = np.unique(st_labels)
    st_remap = {int(lab): i + 1 for i, lab in enumerate(st_used)}
    comm_street = np.array([st_remap[int(lab)] for lab in st_labels], dtype=np.int64)
    comm_names = _unique_names(rng, _COMMUNITY_PREFIXES, ("社区",), len(used))
    street_names = [str(n) for n in rng.permutation(np.asarray(_STREET_OFFICE_NAMES, dtype=object))]
    while len(street_names) < len(st_used):
        street_names.append(f"第{len(street_names) + 1}街道")
    communities = GeoDataFrame(
        {
            "community_id": np.arange(1, len(used) + 1, dtype=np.int64),
            "name": comm_names,
            "street_id": comm_street,
        },
        geometry=[_clean(g) for g in comm_geoms],
        crs=CRS,
    )
    street_geoms = [
        _clean(shapely.union_all([comm_geoms[k] for k in np.flatnonzero(comm_street == sid)]))
        for sid in range(1, len(st_used) + 1)
    ]
    streets = GeoDataFrame(
        {
            "street_id": np.arange(1, len(st_used) + 1, dtype=np.int64),
            "name": street_names[: len(st_used)],
        },
        geometry=street_geoms,
        crs=CRS,
    )
    return communities, streets
