"""Shared pieces of the district generator: constants, name tables, exact geometry helpers and
the data holders every stage passes on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from geopandas import GeoDataFrame
from shapely.geometry import LineString, Polygon, box
from shapely.geometry.base import BaseGeometry

__all__ = ["CRS", "ORIGIN", "BASE_EXTENT_M", "HIGHWAY_VALUES", "ELDERLY_CARE_SUBTYPES", "CONVENIENCE_SUBTYPES", "exact_point_on_segment", "DistrictFrames"]

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


def _faces(lines: list[LineString]) -> list[Polygon]:
    """Polygonize noded lines into faces."""
    noded = shapely.node(shapely.multilinestrings(lines))
    polys = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    return [p for p in polys if isinstance(p, Polygon) and p.area > 1.0]


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
