"""A generated province for tests and benchmarks: N generated districts joined along borders.

Each district is one run of the district generator (:func:`geosvc.datasets.generate_district`)
with its own seed, moved onto a grid of ``cols x rows`` tiles.  Neighbouring tiles are
:data:`GAP_M` apart; the shared border of their study areas runs along the middle of that
strip, and the strip holds what joins them:

* **border links**: every public road end on a tile's edge is joined by a straight street
  to the nearest road end on the facing edge of the neighbour, and every end of the
  neighbour to its nearest end here (nearest-neighbour pairs on two parallel lines never
  cross), so the province's streets form one connected network;
* **stations right on the border**: elderly-care and convenience facilities at the point
  where a border link crosses the border;
* **a gated compound the border cuts through** (where two border links leave room): its
  internal path crosses the border, with an elderly-care station on the border inside the
  compound, households on both sides and one right on the border, and one gate to a border
  link;
* below the southern row, a strip of rare cases: a street island across a border without
  any facility (unreachable households), an island whose only station is across the border,
  a household far from every street (off-network), one with a negative household count
  (invalid) and one without a geometry.

Ids are unique across the province: ``road_id``, ``building_id``, ``compound_id``,
``community_id`` and ``street_id`` are renumbered, facility ids are prefixed with the
district id (``D3-EC004``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["generate_province", "GAP_M", "SOUTH_STRIP_M"]

#: distance between neighbouring generated districts; the shared border runs mid-strip
GAP_M = 200.0
#: depth of the strip of rare cases below the southern row of districts
SOUTH_STRIP_M = 500.0
_LINK = {"highway": "local", "name": "border link", "bridge": False, "layer": 0,
         "compound_id": -1}


@dataclass
class _Border:
    """One shared border: the facing tile edges at ``v_lo`` / ``v_hi`` (across), the road
    ends on each (``u``, along), and whether it runs north-south (``vertical``)."""

    vertical: bool
    v_lo: float
    v_hi: float
    u_lo: np.ndarray  # road ends on the lower tile's edge
    u_hi: np.ndarray  # road ends on the higher tile's edge
    u_range: tuple[float, float]  # the tiles' extent along the border

    @property
    def v(self) -> float:
        return 0.5 * (self.v_lo + self.v_hi)

    def xy(self, u: float, v: float) -> tuple[float, float]:
        return (v, u) if self.vertical else (u, v)


def _tile(d: Any, k: int, dx: float, dy: float, offsets: dict[str, int]) -> dict[str, Any]:
    """One district's layers moved by (dx, dy), with province-unique ids."""
    did = f"D{k + 1}"

    def moved(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        out = frame.copy()
        out.geometry = frame.geometry.translate(dx, dy)
        return out

    def renumber(col: pd.Series, key: str) -> pd.Series:
        return col.where(col < 0, col + offsets[key])

    roads, bld, comp = moved(d.roads), moved(d.buildings), moved(d.compounds)
    comm, fac = moved(d.communities), moved(d.facilities)
    roads["road_id"] += offsets["road"]
    bld["building_id"] += offsets["building"]
    for frame in (roads, bld, comp, fac):
        frame["compound_id"] = renumber(frame["compound_id"], "compound")
    comp["community_id"] = renumber(comp["community_id"], "community")
    comm["community_id"] += offsets["community"]
    comm["street_id"] = renumber(comm["street_id"], "street")
    fac["facility_id"] = did + "-" + fac["facility_id"].astype(str)
    offsets["road"] = int(roads["road_id"].max())
    offsets["building"] = int(bld["building_id"].max())
    offsets["compound"] = int(comp["compound_id"].max()) if len(comp) else offsets["compound"]
    offsets["community"] = int(comm["community_id"].max())
    offsets["street"] = int(comm["street_id"].max())
    return {"roads": roads, "buildings": bld, "compounds": comp, "communities": comm,
            "facilities": fac}


def _edge_ends(roads: gpd.GeoDataFrame, value: float, axis: int) -> np.ndarray:
    """Coordinate along the edge of every public road end lying on the edge
    ``coordinate[axis] == value`` (sorted, unique)."""
    public = roads.loc[roads["compound_id"] < 0].geometry.to_numpy()
    starts = shapely.get_coordinates(shapely.get_point(public, 0))
    ends = shapely.get_coordinates(shapely.get_point(public, -1))
    pts = np.vstack([starts, ends])
    on = np.abs(pts[:, axis] - value) < 1e-6
    return np.unique(pts[on, 1 - axis])


def _links(b: _Border) -> list[tuple[float, float]]:
    """(u on the lower edge, u on the higher edge) of every border link: each end to the
    nearest end across, both ways (on two parallel lines such pairs never cross)."""
    if not len(b.u_lo) or not len(b.u_hi):
        return []
    pairs = {(float(a), float(b.u_hi[np.argmin(np.abs(b.u_hi - a))])) for a in b.u_lo}
    pairs |= {(float(b.u_lo[np.argmin(np.abs(b.u_lo - c))]), float(c)) for c in b.u_hi}
    return sorted(pairs, key=lambda p: (p[0] + p[1], p[0]))


def _link_lines(b: _Border, links: list[tuple[float, float]]) -> list[shapely.LineString]:
    return [shapely.LineString([b.xy(a, b.v_lo), b.xy(c, b.v_hi)]) for a, c in links]


def _gated_compound(b: _Border, links: list[tuple[float, float]], cid: int, bid: int,
                    sub: str, tag: str) -> dict[str, list[dict[str, Any]]] | None:
    """A compound of 160 m x 120 m cut in half by the border, between two border links (or
    a border link and the end of the tiles' edges), with one gate to the nearer link."""
    half_v, half_u = 80.0, 60.0
    best, lane = 0.0, None
    first, last = (b.u_range[0],) * 2, (b.u_range[1],) * 2
    bounds = [first, *links, last]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        def at(link: tuple[float, float], v: float) -> float:
            t = (v - b.v_lo) / (b.v_hi - b.v_lo)
            return link[0] + t * (link[1] - link[0])
        room = min(at(hi, v) - at(lo, v) for v in (b.v - half_v, b.v + half_v))
        if room > best:
            best, lane = room, (lo, hi, 0.5 * (at(lo, b.v) + at(hi, b.v)))
    if lane is None or best < 2 * half_u + 60.0:
        return None
    lo, hi, uc = lane
    link = lo if lo is not first else hi
    v = b.v
    poly = shapely.Polygon([b.xy(uc + du, v + dv) for du, dv in
                            ((-half_u, -half_v), (-half_u, half_v), (half_u, half_v),
                             (half_u, -half_v))])
    path = shapely.LineString([b.xy(uc, v - 60.0), b.xy(uc, v), b.xy(uc, v + 60.0)])
    # one gate, from the path's end to the road end a bounding border link starts from
    gate = shapely.LineString([b.xy(uc, v - 60.0), b.xy(link[0], b.v_lo)])
    roads = [{"highway": "path", "name": f"compound {tag} path", "bridge": False, "layer": 0,
              "compound_id": cid, "geometry": path},
             {"highway": "gate", "name": f"compound {tag} gate", "bridge": False, "layer": 0,
              "compound_id": cid, "geometry": gate}]
    bld = [{"building_id": bid + n, "compound_id": cid, "households": 30 + 5 * n,
            "persons": 80 + 10 * n, "elderly": 20 + n, "geometry": shapely.Point(*b.xy(
                uc + du, v + dv))}
           for n, (du, dv) in enumerate(((-30.0, -40.0), (30.0, -40.0), (-30.0, 40.0),
                                        (30.0, 40.0), (30.0, 0.0)))]  # the last on the border
    fac = [{"facility_id": f"B{tag}-G", "category": "elderly_care", "subtype": sub,
            "name": f"border {tag} compound station", "floor_area_m2": 350.0,
            "compound_id": cid, "geometry": shapely.Point(*b.xy(uc, v))}]
    comp = [{"compound_id": cid, "name": f"border compound {tag}", "built_year": 2010,
             "community_id": -1, "n_gates": 1, "geometry": poly}]
    return {"roads": roads, "buildings": bld, "facilities": fac, "compounds": comp}


def _border_stations(b: _Border, links: list[tuple[float, float]], tag: str,
                     eld: list[str], conv: list[str]) -> list[dict[str, Any]]:
    """Three stations where border links cross the border (at 20 %, 55 % and 85 % of them)."""
    out = []
    for j, frac in enumerate((0.2, 0.55, 0.85)):
        a, c = links[min(len(links) - 1, int(frac * len(links)))]
        cat = "elderly_care" if j == 1 else "convenience"
        sub = eld[j % len(eld)] if cat == "elderly_care" else conv[j % len(conv)]
        out.append({"facility_id": f"B{tag}-{j}", "category": cat, "subtype": sub,
                    "name": f"border {tag}-{j}", "floor_area_m2": 400.0, "compound_id": -1,
                    "geometry": shapely.Point(*b.xy(0.5 * (a + c), b.v))})
    return out


def _south_strip(xb: float, x_west: float, y_south: float, ids: dict[str, int], sub: str
                 ) -> dict[str, list[dict[str, Any]]]:
    """Rare cases below the southern row, around the first north-south border ``xb``."""
    roads, bld = [], []
    for k, y in enumerate((y_south - 150.0, y_south - 350.0)):
        ring = shapely.LineString([(xb - 60, y - 50), (xb + 60, y - 50), (xb + 60, y + 50),
                                   (xb - 60, y + 50), (xb - 60, y - 50)])
        roads.append({"highway": "local", "name": f"island {k}", "bridge": False, "layer": 0,
                      "compound_id": -1, "geometry": ring})
        for j, dx in enumerate((-30.0, 30.0)):
            bld.append({"building_id": ids["building"] + 2 * k + j + 1, "compound_id": -1,
                        "households": 20 + j, "persons": 50, "elderly": 10,
                        "geometry": shapely.Point(xb + dx, y)})
    n = ids["building"] + 5
    bld += [
        {"building_id": n, "compound_id": -1, "households": 30, "persons": 80, "elderly": 20,
         "geometry": shapely.Point(x_west + 200.0, y_south - 450.0)},
        {"building_id": n + 1, "compound_id": -1, "households": -3, "persons": 5,
         "elderly": 1, "geometry": shapely.Point(xb + 10.0, y_south + 300.0)},
        {"building_id": n + 2, "compound_id": -1, "households": 10, "persons": 25,
         "elderly": 5, "geometry": None},
    ]
    # the second island's only station, 5 m off its ring and across the border
    fac = [{"facility_id": "ISLAND", "category": "elderly_care", "subtype": sub,
            "name": "island station", "floor_area_m2": 300.0, "compound_id": -1,
            "geometry": shapely.Point(xb + 50.0, y_south - 295.0)}]
    return {"roads": roads, "buildings": bld, "facilities": fac}


def generate_province(out_dir: str | Path, *, seed: int = 7, scale: float = 0.25,
                      grid: tuple[int, int] = (2, 2)) -> dict[str, Path]:
    """Write a generated province: ``grid`` districts joined along their shared borders.

    Parameters
    ----------
    out_dir
        Folder for the GeoPackages.
    seed
        District ``k`` (0-based, row by row from the south-west) is generated with seed
        ``seed + k``.
    scale
        District generator scale of every district (0.25: 2 km x 1.5 km, about 4,000
        households; 0.82: about 6.6 km x 4.9 km, about 50,000 households).
    grid
        Columns and rows of districts (at least 2 columns: the rare cases sit on a
        north-south border).

    Returns
    -------
    dict
        Paths by layer name (``roads``, ``households``, ``facilities``, ``compounds``,
        ``communities``, ``districts``); ``districts`` has ``district_id`` (``D1`` ...) and
        ``name``.
    """
    cols, rows = int(grid[0]), int(grid[1])
    if cols < 2 or rows < 1:
        raise ValueError(f"grid must have at least 2 columns and 1 row, got {grid!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    offsets = {"road": 0, "building": 0, "compound": 0, "community": 0, "street": 0}
    tiles, boxes = _place_tiles(seed, scale, cols, rows, offsets)
    layers = {key: [t[key] for t in tiles] for key in tiles[0]}
    extra = _join_borders(tiles, boxes, cols, rows, offsets)
    fac0 = tiles[0]["facilities"]
    eld = sorted(fac0.loc[fac0["category"] == "elderly_care", "subtype"].unique())
    south = _south_strip(boxes[0][2] + 0.5 * GAP_M, boxes[0][0], boxes[0][1], offsets, eld[0])
    for key, rows_ in south.items():
        extra[key] += rows_
    crs = tiles[0]["roads"].crs
    for key, rows_ in extra.items():
        if rows_:
            layers[key].append(gpd.GeoDataFrame(rows_, geometry="geometry", crs=crs))
    frames = {key: gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry",
                                    crs=crs) for key, parts in layers.items()}
    road_ids = frames["roads"]["road_id"]
    new = road_ids.isna()
    frames["roads"].loc[new, "road_id"] = offsets["road"] + 1 + np.arange(int(new.sum()))
    frames["roads"]["road_id"] = frames["roads"]["road_id"].astype(np.int64)
    frames["districts"] = _districts(boxes, cols, rows, crs)
    return _write_layers(frames, out)


_Box = tuple[float, float, float, float]


def _place_tiles(seed: int, scale: float, cols: int, rows: int,
                 offsets: dict[str, int]) -> tuple[list[dict[str, Any]], list[_Box]]:
    """Generate every district (seed + k) and move it to its grid cell; tiles and boxes."""
    from geosvc.datasets import generate_district

    tiles, boxes = [], []
    for k in range(cols * rows):
        j, i = divmod(k, cols)
        d = generate_district(seed + k, scale=scale)
        x0, y0, x1, y1 = (float(v) for v in d.communities.total_bounds)
        w, h = x1 - x0, y1 - y0
        dx, dy = i * (w + GAP_M), j * (h + GAP_M)
        tiles.append(_tile(d, k, dx, dy, offsets))
        boxes.append((x0 + dx, y0 + dy, x1 + dx, y1 + dy))
    return tiles, boxes


def _join_borders(tiles: list[dict[str, Any]], boxes: list[_Box], cols: int, rows: int,
                  offsets: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """Link roads, stations and a gated compound across every shared border."""
    extra: dict[str, list[dict[str, Any]]] = {"roads": [], "buildings": [], "facilities": [],
                                              "compounds": []}
    fac0 = tiles[0]["facilities"]
    eld = sorted(fac0.loc[fac0["category"] == "elderly_care", "subtype"].unique())
    conv = sorted(fac0.loc[fac0["category"] == "convenience", "subtype"].unique())
    for k in range(cols * rows):
        j, i = divmod(k, cols)
        for di, dj in ((1, 0), (0, 1)):
            if i + di >= cols or j + dj >= rows:
                continue
            n = k + di + dj * cols
            axis = 0 if di else 1
            lo, hi = boxes[k][2 + axis], boxes[n][axis]
            b = _Border(vertical=bool(di), v_lo=lo, v_hi=hi,
                        u_lo=_edge_ends(tiles[k]["roads"], lo, axis),
                        u_hi=_edge_ends(tiles[n]["roads"], hi, axis),
                        u_range=(boxes[k][1 - axis], boxes[k][3 - axis]))
            links = _links(b)
            if not links:
                continue
            tag = f"{k + 1}-{n + 1}"
            extra["roads"] += [{**_LINK, "geometry": g} for g in _link_lines(b, links)]
            extra["facilities"] += _border_stations(b, links, tag, eld, conv)
            offsets["compound"] += 1
            got = _gated_compound(b, links, offsets["compound"], offsets["building"] + 1,
                                  eld[0], tag)
            if got is not None:
                offsets["building"] += len(got["buildings"])
                for key, rows_ in got.items():
                    extra[key] += rows_
    return extra


def _write_layers(frames: dict[str, gpd.GeoDataFrame], out: Path) -> dict[str, Path]:
    """One GeoPackage per layer (households from the buildings); paths by layer name."""
    names = {"roads": "roads", "buildings": "households", "facilities": "facilities",
             "compounds": "compounds", "communities": "communities", "districts": "districts"}
    paths = {}
    for key, name in names.items():
        p = out / f"{name}.gpkg"
        if p.exists():
            p.unlink()
        frames[key].to_file(p, layer=name, driver="GPKG")
        paths[name] = p
    return paths


def _districts(boxes: list[tuple[float, float, float, float]], cols: int, rows: int,
               crs: Any) -> gpd.GeoDataFrame:
    """Study areas: each tile grown by half the strip on every side (the southern row also
    by the strip of rare cases), so neighbours share their border mid-strip."""
    g = 0.5 * GAP_M
    cells, ids = [], []
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        south = SOUTH_STRIP_M if k < cols else g
        cells.append(shapely.box(x0 - g, y0 - south, x1 + g, y1 + g))
        ids.append(f"D{k + 1}")
    return gpd.GeoDataFrame({"district_id": ids, "name": [f"district {k}" for k in ids]},
                            geometry=cells, crs=crs)
