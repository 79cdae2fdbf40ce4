"""Internals of the embedded default district generator.

The public entry point is :func:`geosvc.datasets.generate_district`; this module builds
the geometry and attribute tables it returns.  Everything here is deterministic for a
given ``numpy.random.Generator`` state.

Geometry conventions
--------------------
* All coordinates are metres in EPSG:32650 (UTM zone 50N).  The district's lower-left
  corner is :data:`ORIGIN`.
* Road vertices are whole metres, except the free end of a line that ends on another
  line (a T-junction, a gate or a ramp).  Such an end point is placed *exactly* on the
  other line, i.e. ``shapely.intersects(end_point, other_line)`` is true, by choosing a
  point of the segment whose coordinates are dyadic rationals (see
  :func:`exact_point_on_segment`).  Lines are never split at junctions: a noding step
  in the network loader is expected to do that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from geopandas import GeoDataFrame
from scipy.spatial import cKDTree
from shapely.geometry import LineString, MultiLineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

__all__ = [
    "CRS",
    "ORIGIN",
    "BASE_EXTENT_M",
    "ELDERLY_CARE_SUBTYPES",
    "CONVENIENCE_SUBTYPES",
    "HIGHWAY_VALUES",
    "DistrictFrames",
    "build_district",
    "exact_point_on_segment",
]

FloatArray = npt.NDArray[np.float64]
XY = Sequence[float] | FloatArray

CRS = "EPSG:32650"
"""Coordinate reference system of every generated layer (UTM zone 50N)."""

ORIGIN: tuple[float, float] = (430000.0, 3808000.0)
"""Lower-left corner of the district (easting, northing), near Shangqiu, Henan."""

BASE_EXTENT_M: tuple[float, float] = (8000.0, 6000.0)
"""Width and height of the district at ``scale=1``."""

HIGHWAY_VALUES: tuple[str, ...] = (
    "arterial",
    "secondary",
    "local",
    "path",
    "gate",
    "bridge",
    "elevated",
)
"""Allowed values of the ``highway`` column of the roads layer."""

# subtype -> (Chinese label, (min, max) floor area in m2, relative frequency)
ELDERLY_CARE_SUBTYPES: dict[str, tuple[str, tuple[float, float], float]] = {
    "day_care_center": ("日间照料中心", (300.0, 800.0), 0.40),
    "community_station": ("社区养老服务站", (150.0, 400.0), 0.48),
    "nursing_home": ("养老院", (1500.0, 4000.0), 0.12),
}
"""Elderly-care facility subtypes: label, floor-area range (m²), relative frequency."""

CONVENIENCE_SUBTYPES: dict[str, tuple[str, tuple[float, float], float]] = {
    "convenience_store": ("便利店", (40.0, 150.0), 0.28),
    "supermarket": ("综合超市", (600.0, 4000.0), 0.045),
    "wet_market": ("菜市场", (800.0, 3500.0), 0.015),
    "fresh_grocery": ("生鲜超市", (120.0, 600.0), 0.08),
    "breakfast": ("早餐店", (30.0, 120.0), 0.14),
    "laundry": ("洗染店", (20.0, 80.0), 0.04),
    "hair_beauty": ("美容美发", (40.0, 200.0), 0.14),
    "print_photo": ("照相文印", (20.0, 90.0), 0.03),
    "housekeeping": ("家政服务点", (20.0, 80.0), 0.025),
    "repair": ("维修点", (15.0, 60.0), 0.05),
    "pharmacy": ("药店", (60.0, 300.0), 0.09),
    "post_express": ("邮政快递综合服务点", (30.0, 150.0), 0.045),
}
"""MOFCOM basic convenience types: label, floor-area range (m²), relative frequency."""

# --------------------------------------------------------------------------- names

_ARTERIAL_NAMES = (
    "人民路", "建设路", "解放路", "中山路", "文化路", "胜利路", "和平路", "新华路",
    "长江大道", "黄河路", "神火大道", "凯旋路", "南京路", "北海路", "华夏大道", "民主路",
    "团结路", "归德路", "睢阳大道", "商都大道", "平原路", "八一路", "青年路", "工业大道",
    "迎宾大道", "金桥路", "光明路", "东方大道", "中州路", "宋城路",
)  # fmt: skip
_STREET_PREFIXES = (
    "府前", "育才", "梨园", "花园", "桂花", "银杏", "槐树", "柳园", "康宁", "平安",
    "金穗", "丰收", "永安", "长寿", "翠竹", "朝阳", "星火", "振兴", "健康", "幸福",
    "纺织", "机械", "粮库", "仓前", "学府", "书院", "新村", "太平", "民生", "兴隆",
    "东关", "西关", "南关", "北关", "车站", "电厂", "棉厂", "糖厂", "公园", "体育",
    "荷花", "牡丹", "石榴", "海棠", "紫荆", "玉兰", "红枫", "松涛", "柏林", "梧桐",
)  # fmt: skip
_STREET_SUFFIXES = ("街", "路", "巷", "东街", "西街", "南街", "北街")
_COMPOUND_PREFIXES = (
    "幸福", "金水", "翰林", "锦绣", "阳光", "和谐", "书香", "康乐", "富贵", "紫荆",
    "桂园", "丽景", "润泽", "世纪", "东方", "盛世", "金桂", "银河", "华府", "御景",
    "星河", "碧水", "绿城", "凤凰", "梧桐", "春晖", "滨河", "文昌", "鑫苑", "兴业",
    "永乐", "天润", "怡和", "安居", "宏达", "民生", "建业", "正商", "清华", "香榭",
    "水岸", "龙湖", "恒信", "万家", "枫林", "百合", "明珠", "瑞祥", "嘉禾", "融汇",
)  # fmt: skip
_COMPOUND_SUFFIXES_NEW = (
    "家园", "苑", "花园", "名居", "华庭", "佳苑", "雅居", "城", "府", "嘉园", "公馆",
    "国际", "壹号", "上城", "悦府",
)  # fmt: skip
_COMPOUND_SUFFIXES_OLD = ("小区", "新村", "花园", "里", "家园")
_WORK_UNITS = (
    "纺织厂", "机械厂", "供电局", "粮食局", "化肥厂", "棉纺厂", "教育局", "卫生局",
    "铁路", "邮电局", "商业局", "农机厂", "面粉厂", "电业局", "水利局", "建筑公司",
    "汽修厂", "印刷厂", "食品厂", "烟草公司",
)  # fmt: skip
_COMMUNITY_PREFIXES = (
    "和平", "建设", "文化", "胜利", "光明", "团结", "民主", "新华", "朝阳", "东风",
    "红旗", "解放", "长征", "幸福", "友谊", "繁荣", "振兴", "育才", "康乐", "向阳",
    "健康", "平安", "兴华", "阳光", "春风", "金桥", "南湖", "北海", "东湖", "西城",
    "古城", "府前", "商都", "凯旋", "归德", "宋城", "文庙", "车站", "滨河", "学苑",
)  # fmt: skip
_STREET_OFFICE_NAMES = (
    "新华街道", "文化街道", "东风街道", "古城街道", "平原街道", "中州街道", "八八街道",
    "宋城街道", "团结街道", "东方街道", "学院街道", "长征街道",
)  # fmt: skip
_SHOP_BRANDS: dict[str, tuple[str, ...]] = {
    "convenience_store": ("美宜佳便利店", "好邻居便利店", "便民超市", "万家福便利", "十足便利店"),
    "supermarket": ("世纪联华超市", "丹尼斯生活广场", "胖东来超市", "万果园超市", "大张超市"),
    "wet_market": ("农贸市场", "菜市场", "综合市场"),
    "fresh_grocery": ("生鲜超市", "百果园", "绿叶蔬菜店", "鲜丰生鲜"),
    "breakfast": ("早餐店", "胡辣汤", "永和豆浆", "包子铺", "豆腐脑"),
    "laundry": ("洗衣店", "福奈特干洗", "洗染店"),
    "hair_beauty": ("理发店", "美发沙龙", "美容院", "发艺"),
    "print_photo": ("图文快印", "照相馆", "复印打字"),
    "housekeeping": ("家政服务", "好帮手家政", "巾帼家政"),
    "repair": ("家电维修", "修鞋配钥匙", "手机维修", "自行车维修"),
    "pharmacy": ("张仲景大药房", "老百姓大药房", "益丰大药房", "惠民药店"),
    "post_express": ("菜鸟驿站", "中国邮政便民服务站", "快递综合服务点"),
}
_NURSING_PREFIXES = ("福寿", "康宁", "颐和", "夕阳红", "松鹤", "安康", "椿萱", "百岁")
_GATE_DIRECTIONS = ("东门", "东北门", "北门", "西北门", "西门", "西南门", "南门", "东南门")


def _unique_names(
    rng: np.random.Generator,
    prefixes: Sequence[str],
    suffixes: Sequence[str],
    n: int,
) -> list[str]:
    """Return ``n`` distinct prefix+suffix names; ``pop()`` yields un-numbered ones first."""
    combos = [p + s for p in prefixes for s in suffixes]
    names = [combos[i] for i in rng.permutation(len(combos))]
    numerals = "二三四五六七八九"
    k = 0
    while len(names) < n:
        names.extend(f"{p}{numerals[k % len(numerals)]}{s}" for p in prefixes for s in suffixes)
        k += 1
    return names[:n][::-1]


# ---------------------------------------------------------------- exact geometry


def _pow2_exponent(value: Fraction) -> int:
    """Return ``k`` such that the (dyadic) denominator of ``value`` is ``2**k``."""
    return int(value.denominator).bit_length() - 1


def exact_point_on_segment(
    p: XY,
    q: XY,
    t: float,
    frac_bits: int = 30,
) -> tuple[float, float] | None:
    """Return a point of segment ``p``–``q`` that lies *exactly* on it in floating point.

    The point is chosen near parameter ``t`` (0 at ``p``, 1 at ``q``) on the lattice of
    points ``p + s * (q - p) / N`` whose coordinates are representable doubles, so that
    exact predicates (``shapely.intersects``) and noders see it on the segment.

    Parameters
    ----------
    p, q : sequence of float or numpy.ndarray
        Segment end points.  Their coordinates must be at most a few million in size.
    t : float
        Wanted parameter along the segment, in ``(0, 1)``.
    frac_bits : int, default 30
        Number of binary digits after the point allowed in the result; smaller values
        give coarser points that later exact snaps onto this point's line can still use.

    Returns
    -------
    tuple of float or None
        The point, strictly inside the segment, or ``None`` when no interior lattice
        point exists at this resolution.
    """
    fp = (Fraction(p[0]), Fraction(p[1]))
    fq = (Fraction(q[0]), Fraction(q[1]))
    k = max(_pow2_exponent(v) for v in (*fp, *fq))
    den = 1 << k
    dx = int((fq[0] - fp[0]) * den)
    dy = int((fq[1] - fp[1]) * den)
    g = math.gcd(dx, dy)
    if g == 0:
        return None
    a, b = dx // g, dy // g
    for m in range(max(frac_bits - k, 0), -1, -1):
        n_steps = g << m
        if n_steps < 2:
            return None
        s = min(max(round(t * n_steps), 1), n_steps - 1)
        scale = den << m
        x = fp[0] + Fraction(s * a, scale)
        y = fp[1] + Fraction(s * b, scale)
        fx, fy = float(x), float(y)
        if Fraction(fx) == x and Fraction(fy) == y:
            return fx, fy
    return None


def _project_on_polyline(coords: FloatArray, pt: XY) -> tuple[int, float, float]:
    """Return (segment index, parameter, distance) of the point of ``coords`` nearest ``pt``."""
    p0 = coords[:-1]
    d = coords[1:] - p0
    l2 = np.einsum("ij,ij->i", d, d)
    l2 = np.where(l2 > 0, l2, 1.0)
    rel = np.asarray(pt, dtype=float) - p0
    t = np.clip(np.einsum("ij,ij->i", rel, d) / l2, 0.0, 1.0)
    proj = p0 + d * t[:, None]
    dist = np.hypot(*(proj - np.asarray(pt, dtype=float)).T)
    i = int(np.argmin(dist))
    return i, float(t[i]), float(dist[i])


def _exact_on_polyline(
    coords: FloatArray,
    pt: XY,
    frac_bits: int,
    vertex_clearance: float = 0.5,
) -> tuple[float, float] | None:
    """Return the point of polyline ``coords`` nearest ``pt``, exactly on the polyline.

    The point is kept at least ``vertex_clearance`` metres away from the polyline's
    vertices so that it falls in a segment's interior.
    """
    i, t, _ = _project_on_polyline(coords, pt)
    seg_len = float(np.hypot(*(coords[i + 1] - coords[i])))
    if seg_len <= 2.5 * vertex_clearance:
        return None
    eps = vertex_clearance / seg_len
    t = min(max(t, eps), 1.0 - eps)
    return exact_point_on_segment(coords[i], coords[i + 1], t, frac_bits)


def _dedupe(coords: FloatArray) -> FloatArray:
    """Drop consecutive duplicate vertices."""
    keep = np.ones(len(coords), dtype=bool)
    keep[1:] = np.any(np.diff(coords, axis=0) != 0.0, axis=1)
    return coords[keep]


def _round_inner(coords: FloatArray) -> FloatArray:
    """Round all but the first and last vertex to whole metres."""
    out = coords.copy()
    out[1:-1] = np.round(out[1:-1])
    return _dedupe(out)


def _longest_line(geom: BaseGeometry) -> LineString | None:
    """Return the longest LineString part of ``geom`` (or None)."""
    best: LineString | None = None
    for part in shapely.get_parts(
        shapely.line_merge(geom) if geom.geom_type == "MultiLineString" else geom
    ):
        if isinstance(part, LineString) and (best is None or part.length > best.length):
            best = part
    return best


def _largest_polygon(geom: BaseGeometry) -> Polygon | None:
    """Return the largest Polygon part of ``geom`` (or None)."""
    best: Polygon | None = None
    for part in shapely.get_parts(geom):
        if (
            isinstance(part, Polygon)
            and not part.is_empty
            and (best is None or part.area > best.area)
        ):
            best = part
    return best


# ---------------------------------------------------------------- data holders


@dataclass(eq=False)
class _Road:
    coords: FloatArray
    highway: str
    name: str
    bridge: int = 0
    layer: int = 0
    compound_id: int = -1

    @property
    def line(self) -> LineString:
        return LineString(self.coords)


@dataclass(eq=False)
class _Compound:
    polygon: Polygon
    oldness: float
    paths: list[FloatArray] = field(default_factory=list)
    anchors: FloatArray = field(default_factory=lambda: np.zeros((0, 2)))
    spots: FloatArray = field(default_factory=lambda: np.zeros((0, 2)))
    gates: list[FloatArray] = field(default_factory=list)
    gate_names: list[str] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class DistrictFrames:
    """The generated layers, all GeoDataFrames in :data:`CRS`."""

    roads: GeoDataFrame
    compounds: GeoDataFrame
    buildings: GeoDataFrame
    communities: GeoDataFrame
    streets: GeoDataFrame
    facilities: GeoDataFrame
    river: GeoDataFrame


@dataclass
class _Ctx:
    rng: np.random.Generator
    x0: float
    y0: float
    width: float
    height: float
    old_centre: tuple[float, float]
    old_radius: float
    gap_x: float
    river_y: Any = None  # callable x -> centre-line northing

    @property
    def extent(self) -> Polygon:
        return box(self.x0, self.y0, self.x0 + self.width, self.y0 + self.height)

    def oldness(self, xy: FloatArray) -> FloatArray:
        """Old-town intensity in [0, 1] at points ``xy`` (n, 2)."""
        xy = np.atleast_2d(xy)
        d2 = (xy[:, 0] - self.old_centre[0]) ** 2 + (xy[:, 1] - self.old_centre[1]) ** 2
        o = np.exp(-d2 / (2.0 * self.old_radius**2))
        return np.where(self.is_north(xy), 0.25 * o, o)

    def is_north(self, xy: FloatArray) -> npt.NDArray[np.bool_]:
        """True for points north of the river centre line."""
        xy = np.atleast_2d(xy)
        return np.asarray(xy[:, 1] > self.river_y(xy[:, 0]), dtype=bool)

    def gap_zone(self, xy: FloatArray) -> npt.NDArray[np.bool_]:
        """True in the newly built north-eastern edge across the river (few services)."""
        xy = np.atleast_2d(xy)
        return self.is_north(xy) & (xy[:, 0] > self.gap_x)


# ---------------------------------------------------------------- river and frame


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


# ---------------------------------------------------------------- secondary streets


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
        ends = [snapper.snap(c) for c in (seg.coords[0], seg.coords[-1])]
        a, b = ends[0][0], ends[1][0]
        on_road = [e[1] for e in ends]
        if any(on_road) and rng.random() < 0.22:  # dead end: stops short of the far street
            if not on_road[0] or (on_road[1] and rng.random() < 0.5):
                a, b = b, a
            f = rng.uniform(0.5, 0.75)
            b = tuple(np.round(np.asarray(a) + f * (np.asarray(b) - np.asarray(a))))
            road = _Road(_polyline(a, b, rng, 5.0), "local", name())
        else:
            road = _Road(_polyline(a, b, rng, 6.0), "secondary", name())
        primaries.append(road)
        out.append(road)
    prim_lines = [r.line for r in primaries]
    for j in range(n_s):
        pos = (j + 1) / (n_s + 1) + rng.uniform(-0.04, 0.04)
        seg = line_at(pos, False, rng.uniform(-25, 25))
        if seg is None or seg.length < 150:
            continue
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
        a_xy: tuple[float, float]
        b_xy: tuple[float, float]
        if mode == "through":
            a_xy = snapper.snap(c0)[0]
            b_xy = snapper.snap(c1)[0]
            highway = "secondary"
        elif mode == "t":
            if rng.random() < 0.5:
                a_xy = snapper.snap(c0)[0]
                _, k, p = hits[0]
            else:
                a_xy = snapper.snap(c1)[0]
                _, k, p = hits[-1]
            pe = _exact_on_polyline(primaries[k].coords, (p.x, p.y), 16, vertex_clearance=1.0)
            if pe is None:
                continue
            b_xy = pe
            highway = "local"
        elif mode == "between":
            m = int(rng.integers(0, len(hits) - 1))
            pa = _exact_on_polyline(
                primaries[hits[m][1]].coords, (hits[m][2].x, hits[m][2].y), 16, 1.0
            )
            pb = _exact_on_polyline(
                primaries[hits[m + 1][1]].coords, (hits[m + 1][2].x, hits[m + 1][2].y), 16, 1.0
            )
            if pa is None or pb is None or hits[m + 1][0] - hits[m][0] < 80:
                continue
            a_xy, b_xy = pa, pb
            highway = "local"
        else:
            from_start = rng.random() < 0.5
            start = c0 if from_start else c1
            limit = seg.length * rng.uniform(0.35, 0.6)
            if hits:
                first = hits[0][0] if from_start else seg.length - hits[-1][0]
                limit = min(limit, first - 45.0)
            if limit < 80:
                continue
            a_xy, on_road_a = snapper.snap(start)
            if not on_road_a:
                continue
            step = direction if from_start else -direction
            b_xy = (
                float(round(start[0] + step[0] * limit)),
                float(round(start[1] + step[1] * limit)),
            )
            highway = "local"
        if math.dist(a_xy, b_xy) < 80:
            continue
        coords = _polyline(a_xy, b_xy, rng, 4.0 if mode != "through" else 0.0)
        cand = LineString(coords)
        # dead ends (this one's and the primaries') must stay clear of every other street
        if mode == "dead" and any(
            cand.intersects(pl) or Point(b_xy).distance(pl) < 30 for pl in prim_lines
        ):
            continue
        if any(
            pr.highway == "local" and Point(pr.coords[-1]).distance(cand) < 30 for pr in primaries
        ):
            continue
        out.append(_Road(coords, highway, name()))
    return out


# ---------------------------------------------------------------- compounds


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


def _layout_compound(rng: np.random.Generator, comp: _Compound, spacing: float) -> bool:
    """Lay out internal paths and building spots; return False if the compound is unusable."""
    poly = comp.polygon
    area = poly.area
    centre, u, v, lu, lv = _oriented_frame(poly)
    paths: list[FloatArray] = []
    anchors: list[FloatArray] = []
    ring_poly: Polygon | None = None
    if area > 50_000:
        inner = _largest_polygon(
            poly.buffer(-rng.uniform(22, 28), join_style="mitre").simplify(3.0)
        )
        if inner is not None and inner.area > 12_000:
            rc = _dedupe(np.round(np.asarray(inner.exterior.coords, dtype=float)))
            if len(rc) >= 4 and np.all(rc[0] == rc[-1]):
                ring = LineString(rc)
                if ring.is_simple and poly.buffer(-10).contains(ring):
                    ring_poly = Polygon(rc)
                    paths.append(rc)
                    anchors.extend(rc[:-1])
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


# ---------------------------------------------------------------- area units


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


# ---------------------------------------------------------------- main builder


def build_district(seed: int, scale: float) -> DistrictFrames:
    """Generate all layers of the default district.

    Parameters
    ----------
    seed : int
        Seed of the ``numpy.random.Generator`` driving every random choice.
    scale : float
        Linear scale of the extent (1.0 gives about 8 km x 6 km).

    Returns
    -------
    DistrictFrames
        The layers as GeoDataFrames in EPSG:32650.
    """
    rng = np.random.default_rng(seed)
    width = float(round(BASE_EXTENT_M[0] * scale))
    height = float(round(BASE_EXTENT_M[1] * scale))
    x0, y0 = ORIGIN
    ctx = _Ctx(
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
    extent = ctx.extent
    river, south_rd, north_rd = _river(ctx)

    # --- arterial frame -----------------------------------------------------------
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

    # --- superblocks and secondary streets -----------------------------------------
    ring_line = LineString(np.asarray(extent.exterior.coords))
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

    # --- elevated expressway (crosses streets without junctions) --------------------
    elevated = _elevated(ctx, elevated_bases)
    if elevated is not None:
        public.append(elevated)

    # --- blocks, parcels, compounds -------------------------------------------------
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
        for p in shapely.get_parts(extent.difference(blocked))
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
            compounds.append(_Compound(shrunk, float(ctx.oldness(pxy)[0])))

    # built year from old-town intensity: old walk-ups near the centre, new towers outside
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
    years = years[np.asarray(usable, dtype=bool)]

    # --- gates ------------------------------------------------------------------------
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
            area = comp.polygon.area
            if area < 20_000:
                n_target = 1 if rng.random() < 0.55 else 2
            elif area < 60_000:
                n_target = int(rng.choice([1, 2, 3], p=[0.15, 0.6, 0.25]))
            else:
                n_target = int(rng.choice([2, 3], p=[0.5, 0.5]))
            chosen = _choose_gates(rng, ci, co, n_target)
        centre = comp.polygon.centroid
        for j in chosen:
            comp.gates.append(np.vstack([ci[j], co[j]]))
            ang = math.atan2(co[j][1] - centre.y, co[j][0] - centre.x)
            label = _GATE_DIRECTIONS[int(round(ang / (math.pi / 4))) % 8]
            if label in comp.gate_names:
                label = label[:-1] + "二门"
            comp.gate_names.append(label)
        keep[i] = True
    compounds = [c for c, k in zip(compounds, keep, strict=True) if k]
    years = years[keep]

    # --- buildings -----------------------------------------------------------------
    target_hh = 72_000.0 * (width * height) / (BASE_EXTENT_M[0] * BASE_EXTENT_M[1])
    target_hh *= rng.uniform(0.95, 1.05)
    old = years < 2000
    density = np.array([1.0 + 3.0 * c.oldness for c in compounds]) * rng.uniform(
        0.8, 1.2, len(compounds)
    )
    raw = density * np.array([c.polygon.area for c in compounds])
    hh_comp = raw / raw.sum() * target_hh
    mean_hh = np.where(
        old, rng.uniform(24, 40, len(compounds)), rng.uniform(70, 110, len(compounds))
    )
    b_xy: list[FloatArray] = []
    b_comp: list[FloatArray] = []
    b_hh: list[FloatArray] = []
    for i, comp in enumerate(compounds):
        spots = comp.spots
        if comp.gates:
            gl = MultiLineString(comp.gates)
            spots = spots[shapely.distance(shapely.points(spots), gl) >= 5.0]
        if len(spots) == 0:
            spots = comp.spots[:1]
        n_b = int(np.clip(round(hh_comp[i] / mean_hh[i]), 1, len(spots)))
        pick = np.sort(rng.choice(len(spots), size=n_b, replace=False))
        shares = rng.dirichlet(np.full(n_b, 12.0))
        hh = np.clip(np.round(shares * hh_comp[i]), 12, 150)
        b_xy.append(spots[pick])
        b_comp.append(np.full(n_b, i + 1, dtype=float))
        b_hh.append(hh)
    bxy = np.vstack(b_xy)
    bcomp = np.concatenate(b_comp).astype(np.int64)
    households = np.concatenate(b_hh).astype(np.int64)
    persons = np.round(households * rng.uniform(2.4, 3.0, len(households))).astype(np.int64)
    comp_share = np.clip(
        0.13 + 0.17 * np.clip((2012.0 - years) / 25.0, 0.0, 1.0) + rng.normal(0, 0.01, len(years)),
        0.12,
        0.32,
    )
    elderly = rng.binomial(persons, comp_share[bcomp - 1]).astype(np.int64)
    share = elderly.sum() / persons.sum()
    if share > 0.215:
        elderly = rng.binomial(elderly, 0.205 / share).astype(np.int64)
    elif share < 0.185:
        q = (0.195 - share) / (1.0 - share)
        elderly = elderly + rng.binomial(persons - elderly, q).astype(np.int64)

    # --- communities and streets ---------------------------------------------------
    communities, streets = _area_units(ctx, blocks)
    comm_tree = shapely.STRtree(list(communities.geometry))
    comp_centroids = shapely.centroid(np.array([c.polygon for c in compounds], dtype=object))
    ci_idx, cc_idx = comm_tree.query(comp_centroids, predicate="within")
    comp_comm = np.full(len(compounds), -1, dtype=np.int64)
    comp_comm[ci_idx] = communities["community_id"].to_numpy()[cc_idx]

    # --- names ---------------------------------------------------------------------
    comp_names = _compound_names(rng, years)

    # --- roads frame --------------------------------------------------------------
    rows: list[_Road] = list(public)
    for i, comp in enumerate(compounds):
        cid = i + 1
        for p in comp.paths:
            rows.append(_Road(p, "path", comp_names[i] + "内部道路", 0, 0, cid))
        for g, gname in zip(comp.gates, comp.gate_names, strict=True):
            rows.append(_Road(g, "gate", comp_names[i] + gname, 0, 0, cid))
    roads = GeoDataFrame(
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
    compounds_gdf = GeoDataFrame(
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
    buildings_gdf = GeoDataFrame(
        {
            "building_id": np.arange(1, len(bxy) + 1, dtype=np.int64),
            "compound_id": bcomp,
            "households": households,
            "persons": persons,
            "elderly": elderly,
        },
        geometry=shapely.points(bxy),
        crs=CRS,
    )
    comp_hh = np.asarray(
        np.bincount(bcomp - 1, weights=households, minlength=len(compounds)), dtype=np.float64
    )
    facilities = _facilities(
        ctx,
        compounds,
        comp_names,
        comp_hh,
        nonres,
        public,
        communities,
        compounds_gdf,
        horizontal + vertical,
    )
    river_gdf = GeoDataFrame(
        {"name": ["古宋河"], "width_m": [round(float(river.area / _river_length(river)), 1)]},
        geometry=[river],
        crs=CRS,
    )
    return DistrictFrames(
        roads=roads,
        compounds=compounds_gdf,
        buildings=buildings_gdf,
        communities=communities,
        streets=streets,
        facilities=facilities,
        river=river_gdf,
    )


def _river_length(river: Polygon) -> float:
    """Approximate centre-line length of a long thin polygon (half its perimeter)."""
    return max(river.exterior.length / 2.0, 1.0)


def _faces(lines: list[LineString]) -> list[Polygon]:
    """Polygonize noded lines into faces."""
    noded = shapely.node(shapely.multilinestrings(lines))
    polys = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    return [p for p in polys if isinstance(p, Polygon) and p.area > 1.0]


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


def _as_polygon(geom: BaseGeometry) -> Polygon:
    """The geometry itself if a Polygon, else its largest polygon part."""
    if isinstance(geom, Polygon):
        return geom
    p = _largest_polygon(geom)
    assert p is not None
    return p


def _clean(geom: BaseGeometry) -> BaseGeometry:
    """Merge a union of faces into one valid geometry without interior slivers."""
    g = shapely.make_valid(geom)
    if isinstance(g, Polygon):
        return Polygon(g.exterior, [r for r in g.interiors if Polygon(r).area > 1.0])
    return g


# ---------------------------------------------------------------- facilities


def _facilities(
    ctx: _Ctx,
    compounds: list[_Compound],
    comp_names: list[str],
    comp_hh: FloatArray,
    nonres: list[tuple[Polygon, str]],
    public: list[_Road],
    communities: GeoDataFrame,
    compounds_gdf: GeoDataFrame,
    arterials: list[_Road],
) -> GeoDataFrame:
    """Elderly-care sites (clustered in the old town) and convenience shops along streets."""
    rng = ctx.rng
    area_factor = ctx.width * ctx.height / (BASE_EXTENT_M[0] * BASE_EXTENT_M[1])
    comm_tree = shapely.STRtree(list(communities.geometry))
    comm_names = communities["name"].tolist()

    def community_name(xy: FloatArray) -> str:
        hit = comm_tree.query(Point(xy), predicate="intersects")
        return str(comm_names[int(np.min(hit))]) if len(hit) else "城区"

    rows: list[dict[str, Any]] = []
    geoms: list[Point] = []

    # elderly care ---------------------------------------------------------------
    n_ec = max(4, round(30 * area_factor * rng.uniform(0.93, 1.03)))
    n_nh = max(1, round(0.12 * n_ec))
    n_dc = round(0.4 * n_ec)
    subtypes = ["nursing_home"] * n_nh + ["day_care_center"] * n_dc
    subtypes += ["community_station"] * (n_ec - len(subtypes))
    cxy = np.array([[c.polygon.centroid.x, c.polygon.centroid.y] for c in compounds])
    w = comp_hh * (0.8 + 1.0 * ctx.oldness(cxy)) * np.where(ctx.is_north(cxy), 0.8, 1.0)
    w = np.where(ctx.gap_zone(cxy), 0.0, w)
    ec_pool: list[int] = []
    n_pool = n_ec - n_nh
    while len(ec_pool) < n_pool and w.sum() > 0:
        k = int(rng.choice(len(compounds), p=w / w.sum()))
        ec_pool.append(k)
        # spread the sites out: fewer very close pairs (closer in the old town)
        radius = 1300.0 - 600.0 * float(ctx.oldness(cxy[k : k + 1])[0])
        near = np.hypot(cxy[:, 0] - cxy[k, 0], cxy[:, 1] - cxy[k, 1]) < radius
        w = np.where(near, w * 0.05, w)
        w[k] = 0.0
    nxy = (
        np.array([[p.representative_point().x, p.representative_point().y] for p, _ in nonres])
        if nonres
        else np.zeros((0, 2))
    )
    ec_id = 0
    for sub in subtypes:
        label, (fa0, fa1), _ = ELDERLY_CARE_SUBTYPES[sub]
        area = float(round(rng.uniform(fa0, fa1), 1))
        cid = -1
        if sub == "nursing_home" and len(nxy):
            wn = (0.1 + ctx.oldness(nxy)) * np.where(ctx.gap_zone(nxy), 0.0, 1.0)
            if wn.sum() <= 0:
                wn = np.ones(len(nxy))
            k = int(rng.choice(len(nxy), p=wn / wn.sum()))
            pt = _parcel_front(nonres[k][0], public)
            name = f"{rng.choice(np.asarray(_NURSING_PREFIXES, dtype=object))}{label}"
        else:
            if not ec_pool:
                break
            ci = int(ec_pool.pop(0))
            comp = compounds[ci]
            inside = not comp.gates or rng.random() < (0.7 if sub == "community_station" else 0.3)
            pt_opt = _spot_near_gate(rng, comp) if inside else _street_spot(rng, comp, public)
            if pt_opt is None:
                continue
            pt = pt_opt
            if inside:
                cid = ci + 1
                name = f"{comp_names[ci]}{label}"
            else:
                name = f"{community_name(pt)}{label}"
        ec_id += 1
        rows.append(
            {
                "facility_id": f"EC{ec_id:03d}",
                "category": "elderly_care",
                "subtype": sub,
                "name": name,
                "floor_area_m2": area,
                "compound_id": cid,
            }
        )
        geoms.append(Point(pt))

    # convenience ------------------------------------------------------------------
    streets = [r for r in public if r.highway in ("arterial", "secondary", "local")]
    lines = np.array([r.line for r in streets], dtype=object)
    lengths = shapely.length(lines)
    seg_i: list[FloatArray] = []
    seg_d: list[FloatArray] = []
    for i, length in enumerate(lengths.tolist()):
        d = np.arange(15.0, length - 14.9, 20.0)
        seg_i.append(np.full(len(d), i, dtype=float))
        seg_d.append(d)
    si = np.concatenate(seg_i).astype(np.int64)
    sd = np.concatenate(seg_d)
    sxy = shapely.get_coordinates(shapely.line_interpolate_point(lines[si], sd))
    base = np.array(
        [
            1.0 if r.highway == "arterial" else 0.35 if r.name.startswith("滨河") else 0.75
            for r in streets
        ]
    )
    # one or two commercial corridors: the arterials closest to the old-town centre
    oc = Point(ctx.old_centre)
    art_names = sorted(
        {r.name for r in arterials},
        key=lambda nm: min(r.line.distance(oc) for r in arterials if r.name == nm),
    )
    corridors = set(art_names[: 2 if len(art_names) > 2 else 1])
    corridor = np.array([r.name in corridors for r in streets])
    o = ctx.oldness(sxy)
    wsh = base[si] * (0.12 + 1.6 * o) * np.where(corridor[si], 3.0, 1.0)
    wsh *= np.where(ctx.is_north(sxy), 0.4, 1.0)
    wsh *= np.where(ctx.gap_zone(sxy), 0.0, 1.0)
    n_cv = max(20, round(420 * area_factor * rng.uniform(0.9, 1.1)))
    street_tree = shapely.STRtree(lines)
    li = np.zeros(n_cv, dtype=np.int64)
    pxy = np.zeros((n_cv, 2))
    todo = np.arange(n_cv)
    for _round in range(20):
        if len(todo) == 0:
            break
        k = len(todo)
        pick = rng.choice(len(sd), size=k, replace=True, p=wsh / wsh.sum())
        lk = si[pick]
        dd = np.clip(sd[pick] + rng.uniform(-9.0, 9.0, k), 1.0, lengths[lk] - 1.0)
        p = shapely.get_coordinates(shapely.line_interpolate_point(lines[lk], dd))
        t = shapely.get_coordinates(
            shapely.line_interpolate_point(lines[lk], dd + 1.0)
        ) - shapely.get_coordinates(shapely.line_interpolate_point(lines[lk], dd - 1.0))
        t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)[:, None]
        nrm = np.column_stack([-t[:, 1], t[:, 0]])
        side = rng.choice([-1.0, 1.0], size=k)
        li[todo] = lk
        pxy[todo] = p + nrm * (side * rng.uniform(4.0, 8.0, k))[:, None]
        # a shop near a junction must not end up on (or too near) the crossing street
        near, _ = street_tree.query(shapely.points(pxy[todo]), predicate="dwithin", distance=3.5)
        todo = todo[np.unique(near)]
    if len(todo):
        keep_mask = np.ones(n_cv, dtype=bool)
        keep_mask[todo] = False
        li, pxy, n_cv = li[keep_mask], pxy[keep_mask], int(keep_mask.sum())
    keys = list(CONVENIENCE_SUBTYPES)
    freq = np.array([CONVENIENCE_SUBTYPES[k][2] for k in keys])
    sub_idx = rng.choice(len(keys), size=n_cv, p=freq / freq.sum())
    # neighbourhood commercial centres (便民商业中心): a full set of the basic types within a
    # few hundred metres, as the MOFCOM guideline plans them; the other shops stay scattered
    from scipy.spatial import cKDTree

    n_centres = min(max(2, round(16 * area_factor)), n_cv // len(keys))
    tree = cKDTree(pxy)
    taken = np.zeros(n_cv, dtype=bool)
    for c in rng.choice(n_cv, size=n_centres, replace=False):  # a dozen centres
        if taken[c]:
            continue
        _, nb = tree.query(pxy[c], k=min(4 * len(keys), n_cv))
        free = nb[~taken[nb]][: len(keys)]
        sub_idx[free] = np.arange(len(free))
        taken[free] = True
    u = rng.random(n_cv)
    for j in range(n_cv):
        sub = keys[int(sub_idx[j])]
        label, (fa0, fa1), _ = CONVENIENCE_SUBTYPES[sub]
        area = float(round(math.exp(math.log(fa0) + u[j] * (math.log(fa1) - math.log(fa0))), 1))
        brands = _SHOP_BRANDS[sub]
        brand = brands[int(rng.integers(0, len(brands)))]
        rows.append(
            {
                "facility_id": f"CV{j + 1:04d}",
                "category": "convenience",
                "subtype": sub,
                "name": f"{brand}({streets[int(li[j])].name}店)",
                "floor_area_m2": area,
                "compound_id": -1,
            }
        )
        geoms.append(Point(pxy[j]))
    fac = GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=CRS)
    # facilities inside a compound carry its id
    hit_f, hit_c = shapely.STRtree(list(compounds_gdf.geometry)).query(
        fac.geometry.to_numpy(), predicate="within"
    )
    cids = fac["compound_id"].to_numpy().copy()
    cids[hit_f] = compounds_gdf["compound_id"].to_numpy()[hit_c]
    fac["compound_id"] = cids.astype(np.int64)
    fac["floor_area_m2"] = fac["floor_area_m2"].astype(np.float64)
    return fac


def _spot_near_gate(rng: np.random.Generator, comp: _Compound) -> FloatArray | None:
    """A point a few metres off an internal path near one of the compound's gates."""
    inner = comp.polygon.buffer(-3.0)
    lines = MultiLineString([*comp.paths, *comp.gates])
    verts = np.vstack([g[0] for g in comp.gates] if comp.gates else comp.paths)
    for attempt in range(40):
        v = verts[int(rng.integers(0, len(verts)))]
        ang = rng.uniform(0, 2 * np.pi)
        q = v + (6.0 + attempt * 0.5) * np.array([math.cos(ang), math.sin(ang)])
        pq = Point(q)
        if inner.contains(pq) and pq.distance(lines) >= 3.0:
            return q
    return None


def _parcel_front(parcel: Polygon, public: list[_Road]) -> FloatArray:
    """A point just inside a parcel's edge, on the side facing its nearest street."""
    rp = parcel.representative_point()
    best = min(
        (r for r in public if r.highway in ("arterial", "secondary", "local")),
        key=lambda r: r.line.distance(rp),
    )
    foot = best.line.interpolate(best.line.project(rp))
    edge = np.asarray(shapely.get_coordinates(shapely.shortest_line(parcel.exterior, foot))[0])
    inward = np.asarray(rp.coords[0]) - edge
    inward /= max(float(np.hypot(*inward)), 1e-9)
    return np.asarray(edge + inward * 6.0, dtype=float)


def _street_spot(
    rng: np.random.Generator, comp: _Compound, public: list[_Road]
) -> FloatArray | None:
    """A point 6 m off the street beside one of the compound's gates, on the compound side."""
    gate = comp.gates[int(rng.integers(0, len(comp.gates)))]
    inner, outer = gate[0], gate[1]
    tree_pt = Point(outer)
    best = min(public, key=lambda r: r.line.distance(tree_pt))
    line = best.line
    d = line.project(tree_pt) + float(rng.choice([-1.0, 1.0])) * rng.uniform(12.0, 25.0)
    d = min(max(d, 1.0), line.length - 1.0)
    p = np.asarray(line.interpolate(d).coords[0])
    q = np.asarray(line.interpolate(min(d + 1.0, line.length)).coords[0]) - np.asarray(
        line.interpolate(max(d - 1.0, 0.0)).coords[0]
    )
    q /= max(float(np.hypot(*q)), 1e-9)
    n = np.array([-q[1], q[0]])
    if np.dot(inner - outer, n) < 0:
        n = -n
    return np.asarray(p + n * 6.0, dtype=float)
