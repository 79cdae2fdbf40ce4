"""Facility stage: elderly-care sites and convenience shops."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from geopandas import GeoDataFrame
from scipy.spatial import cKDTree
from shapely.geometry import MultiLineString, Point, Polygon

from geosvc.datasets._common import (
    _NURSING_PREFIXES,
    _SHOP_BRANDS,
    BASE_EXTENT_M,
    CONVENIENCE_SUBTYPES,
    CRS,
    ELDERLY_CARE_SUBTYPES,
    FloatArray,
    _Compound,
    _Ctx,
    _Road,
)


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
    rows, geoms = _elderly_care_sites(ctx, compounds, comp_names, comp_hh, nonres, public,
                                      communities)
    shop_rows, shop_geoms = _convenience_shops(ctx, public, arterials)
    fac = GeoDataFrame(pd.DataFrame(rows + shop_rows), geometry=geoms + shop_geoms, crs=CRS)
    # facilities inside a compound carry its id
    hit_f, hit_c = shapely.STRtree(list(compounds_gdf.geometry)).query(
        fac.geometry.to_numpy(), predicate="within"
    )
    cids = fac["compound_id"].to_numpy().copy()
    cids[hit_f] = compounds_gdf["compound_id"].to_numpy()[hit_c]
    fac["compound_id"] = cids.astype(np.int64)
    fac["floor_area_m2"] = fac["floor_area_m2"].astype(np.float64)
    return fac


def _area_factor(ctx: _Ctx) -> float:
    """The district's area relative to the base extent (counts scale with it)."""
    return ctx.width * ctx.height / (BASE_EXTENT_M[0] * BASE_EXTENT_M[1])


def _elderly_care_sites(
    ctx: _Ctx,
    compounds: list[_Compound],
    comp_names: list[str],
    comp_hh: FloatArray,
    nonres: list[tuple[Polygon, str]],
    public: list[_Road],
    communities: GeoDataFrame,
) -> tuple[list[dict[str, Any]], list[Point]]:
    """Nursing homes on non-residential parcels; day care and stations in or by compounds."""
    rng = ctx.rng
    comm_tree = shapely.STRtree(list(communities.geometry))
    comm_names = communities["name"].tolist()

    def community_name(xy: FloatArray) -> str:
        hit = comm_tree.query(Point(xy), predicate="intersects")
        return str(comm_names[int(np.min(hit))]) if len(hit) else "城区"

    rows: list[dict[str, Any]] = []
    geoms: list[Point] = []
    n_ec = max(4, round(30 * _area_factor(ctx) * rng.uniform(0.93, 1.03)))
    n_nh = max(1, round(0.12 * n_ec))
    n_dc = round(0.4 * n_ec)
    subtypes = ["nursing_home"] * n_nh + ["day_care_center"] * n_dc
    subtypes += ["community_station"] * (n_ec - len(subtypes))
    ec_pool = _elderly_care_pool(ctx, compounds, comp_hh, n_ec - n_nh)
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
    return rows, geoms


def _elderly_care_pool(ctx: _Ctx, compounds: list[_Compound], comp_hh: FloatArray,
                       n_pool: int) -> list[int]:
    """Compounds that get a site, drawn by households and oldness, spread out."""
    rng = ctx.rng
    cxy = np.array([[c.polygon.centroid.x, c.polygon.centroid.y] for c in compounds])
    w = comp_hh * (0.8 + 1.0 * ctx.oldness(cxy)) * np.where(ctx.is_north(cxy), 0.8, 1.0)
    w = np.where(ctx.gap_zone(cxy), 0.0, w)
    ec_pool: list[int] = []
    while len(ec_pool) < n_pool and w.sum() > 0:
        k = int(rng.choice(len(compounds), p=w / w.sum()))
        ec_pool.append(k)
        # spread the sites out: fewer very close pairs (closer in the old town)
        radius = 1300.0 - 600.0 * float(ctx.oldness(cxy[k : k + 1])[0])
        near = np.hypot(cxy[:, 0] - cxy[k, 0], cxy[:, 1] - cxy[k, 1]) < radius
        w = np.where(near, w * 0.05, w)
        w[k] = 0.0
    return ec_pool


@dataclass
class _Frontage:
    """Sample points every 20 m along the shopping streets, with their weights."""

    streets: list[_Road]
    lines: npt.NDArray[np.object_]
    lengths: FloatArray
    si: npt.NDArray[np.int64]  # street of each sample
    sd: FloatArray  # distance of each sample along its street
    weight: FloatArray


def _frontage(ctx: _Ctx, public: list[_Road], arterials: list[_Road]) -> _Frontage:
    """Street frontage weighted to the old town and one or two commercial corridors."""
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
    return _Frontage(streets, lines, lengths, si, sd, wsh)


def _shop_points(rng: np.random.Generator, f: _Frontage, n_cv: int
                 ) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Street and position of each shop: 4-8 m off a street, clear of crossing streets."""
    street_tree = shapely.STRtree(f.lines)
    lines, si, sd, wsh = f.lines, f.si, f.sd, f.weight
    li = np.zeros(n_cv, dtype=np.int64)
    pxy = np.zeros((n_cv, 2))
    todo = np.arange(n_cv)
    for _round in range(20):
        if len(todo) == 0:
            break
        k = len(todo)
        pick = rng.choice(len(sd), size=k, replace=True, p=wsh / wsh.sum())
        lk = si[pick]
        dd = np.clip(sd[pick] + rng.uniform(-9.0, 9.0, k), 1.0, f.lengths[lk] - 1.0)
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
        li, pxy = li[keep_mask], pxy[keep_mask]
    return li, pxy


def _shop_subtypes(ctx: _Ctx, pxy: FloatArray, keys: list[str]) -> npt.NDArray[np.int64]:
    """Subtype of each shop by frequency, with full sets around a few commercial centres."""
    rng = ctx.rng
    n_cv = len(pxy)
    freq = np.array([CONVENIENCE_SUBTYPES[k][2] for k in keys])
    sub_idx = rng.choice(len(keys), size=n_cv, p=freq / freq.sum())
    # neighbourhood commercial centres (便民商业中心): a full set of the basic types within a
    # few hundred metres, as the MOFCOM guideline plans them; the other shops stay scattered
    n_centres = min(max(2, round(16 * _area_factor(ctx))), n_cv // len(keys))
    tree = cKDTree(pxy)
    taken = np.zeros(n_cv, dtype=bool)
    for c in rng.choice(n_cv, size=n_centres, replace=False):  # a dozen centres
        if taken[c]:
            continue
        _, nb = tree.query(pxy[c], k=min(4 * len(keys), n_cv))
        free = nb[~taken[nb]][: len(keys)]
        sub_idx[free] = np.arange(len(free))
        taken[free] = True
    return np.asarray(sub_idx, dtype=np.int64)


def _convenience_shops(ctx: _Ctx, public: list[_Road], arterials: list[_Road]
                       ) -> tuple[list[dict[str, Any]], list[Point]]:
    """About 420 shops per 48 km² along the streets, named by brand and street."""
    rng = ctx.rng
    f = _frontage(ctx, public, arterials)
    n_cv = max(20, round(420 * _area_factor(ctx) * rng.uniform(0.9, 1.1)))
    li, pxy = _shop_points(rng, f, n_cv)
    n_cv = len(pxy)
    keys = list(CONVENIENCE_SUBTYPES)
    sub_idx = _shop_subtypes(ctx, pxy, keys)
    rows: list[dict[str, Any]] = []
    geoms: list[Point] = []
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
                "name": f"{brand}({f.streets[int(li[j])].name}店)",
                "floor_area_m2": area,
                "compound_id": -1,
            }
        )
        geoms.append(Point(pxy[j]))
    return rows, geoms


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
