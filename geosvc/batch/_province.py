"""A generated province for tests and benchmarks: one district generator run cut into a
grid of study areas, with facilities placed right on the borders (some inside gated
compounds that the borders cut through)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["generate_province"]


def _border_facilities(xs: np.ndarray, ys: np.ndarray, bounds: tuple[float, ...],
                       compounds: gpd.GeoDataFrame, template: gpd.GeoDataFrame
                       ) -> gpd.GeoDataFrame:
    minx, miny, maxx, maxy = bounds
    lines = [shapely.LineString([(x, miny), (x, maxy)]) for x in xs[1:-1]] + \
        [shapely.LineString([(minx, y), (maxx, y)]) for y in ys[1:-1]]
    subtypes = sorted(template.loc[template["category"] == "convenience", "subtype"].unique())
    eld = sorted(template.loc[template["category"] == "elderly_care", "subtype"].unique())
    rows = []
    comp_geoms = compounds.geometry.to_numpy()
    for i, line in enumerate(lines):
        for j, frac in enumerate((0.2, 0.55, 0.85)):
            pt = line.interpolate(frac, normalized=True)
            cat = "elderly_care" if j == 1 else "convenience"
            sub = eld[i % len(eld)] if cat == "elderly_care" else subtypes[(i * 3 + j) %
                                                                            len(subtypes)]
            rows.append((f"B{i}{j}", cat, sub, pt))
        hit = np.flatnonzero(shapely.intersects(comp_geoms, line))
        if len(hit):  # a station inside a gated compound the border cuts through
            inter = shapely.intersection(comp_geoms[hit[0]], line)
            rows.append((f"B{i}G", "elderly_care", eld[0], inter.interpolate(0.5,
                                                                              normalized=True)))
    comp_id = compounds["compound_id"].to_numpy()
    out = []
    for fid, cat, sub, pt in rows:
        inside = np.flatnonzero(shapely.covers(comp_geoms, pt))
        out.append({"facility_id": fid, "category": cat, "subtype": sub,
                    "name": f"border {fid}", "floor_area_m2": 400.0,
                    "compound_id": int(comp_id[inside[0]]) if len(inside) else -1,
                    "geometry": pt})
    return gpd.GeoDataFrame(out, geometry="geometry", crs=template.crs)


_STRIP_M = 500.0


def _south_strip(d: object, xs: np.ndarray, miny: float
                 ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Rare cases south of the district, inside the southern study areas: a street island
    with no facility across the first border (unreachable households), an island with an
    elderly-care station across the second, a household far from every street
    (off-network), one with a negative count (invalid) and one without a geometry."""
    roads: gpd.GeoDataFrame = d.roads  # type: ignore[attr-defined]
    bld: gpd.GeoDataFrame = d.buildings  # type: ignore[attr-defined]
    fac: gpd.GeoDataFrame = d.facilities  # type: ignore[attr-defined]
    y = miny - 300.0
    new_roads, new_bld = [], []
    rid = int(roads["road_id"].max()) + 1
    bid = int(bld["building_id"].max()) + 1
    for k, x in enumerate(xs[1:3]):
        ring = shapely.LineString([(x - 60, y - 50), (x + 60, y - 50), (x + 60, y + 50),
                                   (x - 60, y + 50), (x - 60, y - 50)])
        new_roads.append({"road_id": rid + k, "highway": "residential", "name": f"island {k}",
                          "bridge": False, "layer": 0, "compound_id": -1, "geometry": ring})
        for j, dx in enumerate((-30.0, 30.0)):
            new_bld.append({"building_id": bid + 2 * k + j, "compound_id": -1,
                            "households": 20 + j, "persons": 50, "elderly": 10,
                            "geometry": shapely.Point(x + dx, y)})
    n = bid + 4
    new_bld += [
        {"building_id": n, "compound_id": -1, "households": 30, "persons": 80, "elderly": 20,
         "geometry": shapely.Point(xs[0] + 200.0, miny - 450.0)},
        {"building_id": n + 1, "compound_id": -1, "households": -3, "persons": 5,
         "elderly": 1, "geometry": shapely.Point(xs[1] + 10.0, miny + 300.0)},
        {"building_id": n + 2, "compound_id": -1, "households": 10, "persons": 25,
         "elderly": 5, "geometry": None},
    ]
    station = {"facility_id": "ISLAND", "category": "elderly_care",
               "subtype": str(fac.loc[fac["category"] == "elderly_care", "subtype"].iloc[0]),
               "name": "island station", "floor_area_m2": 300.0, "compound_id": -1,
               "geometry": shapely.Point(xs[2] + 50.0, y + 55.0)}
    crs = roads.crs
    return (gpd.GeoDataFrame(pd.concat([roads, gpd.GeoDataFrame(new_roads, crs=crs)],
                                       ignore_index=True), crs=crs),
            gpd.GeoDataFrame(pd.concat([bld, gpd.GeoDataFrame(new_bld, crs=crs)],
                                       ignore_index=True), crs=crs),
            gpd.GeoDataFrame([station], geometry="geometry", crs=crs))


def generate_province(out_dir: str | Path, *, seed: int = 7, scale: float = 0.5,
                      grid: tuple[int, int] = (3, 2)) -> dict[str, Path]:
    """Write a small generated province: roads, households, facilities, compounds,
    communities and ``districts`` (a ``grid`` of rectangles over one generated district).

    Parameters
    ----------
    out_dir
        Folder for the GeoPackages.
    seed, scale
        District generator seed and scale (see :func:`geosvc.datasets.generate_district`).
    grid
        Columns and rows of study areas.

    Returns
    -------
    dict
        Paths by layer name (``roads``, ``households``, ``facilities``, ``compounds``,
        ``communities``, ``districts``).
    """
    from geosvc.datasets import generate_district

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = generate_district(seed, scale=scale)
    minx, miny, maxx, maxy = (float(v) for v in d.communities.total_bounds)
    xs = np.linspace(minx, maxx, grid[0] + 1)
    ys = np.linspace(miny, maxy, grid[1] + 1)
    roads, buildings, extra_fac = _south_strip(d, xs, miny)
    ys[0] = miny - _STRIP_M
    cells, ids = [], []
    for j in range(grid[1]):
        for i in range(grid[0]):
            cells.append(shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]))
            ids.append(f"D{j * grid[0] + i + 1}")
    districts = gpd.GeoDataFrame({"district_id": ids, "name": [f"district {k}" for k in ids]},
                                 geometry=cells, crs=d.communities.crs)
    fac = pd.concat([d.facilities, _border_facilities(xs, ys, (minx, miny, maxx, maxy),
                                                      d.compounds, d.facilities), extra_fac],
                    ignore_index=True)
    layers = {"roads": roads, "households": buildings,
              "facilities": gpd.GeoDataFrame(fac, geometry="geometry", crs=d.facilities.crs),
              "compounds": d.compounds, "communities": d.communities, "districts": districts}
    paths = {}
    for name, frame in layers.items():
        p = out / f"{name}.gpkg"
        frame.to_file(p, layer=name, driver="GPKG")
        paths[name] = p
    return paths
