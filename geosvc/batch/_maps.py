"""Maps of a batch: one ``map.html`` per district and the province map ``province.html``.

Both are the ordinary offline coverage map (:func:`geosvc.viz.coverage_map`, Leaflet inlined,
no tiles unless asked), drawn from the *merged* households, so they show exactly what the
province tables say.  A district's map holds its owned households, its areas, the
facilities and streets around it and its proposed stations; the province map colours the
districts by coverage rate (one layer per category) and adds a layer "district maps" whose
popups link to each district's page (``districts/<id>/map.html``, relative, so the output
folder can be moved or zipped as a whole).

On a Dask cluster the maps are drawn by the workers, the province map first (submitted as
soon as the district table and the siting plan exist), then one task per district
(:class:`DistrictMap`: the merged rows of the district, each submitted as soon as it is cut),
while the client writes the tables.  The maps get only the household columns a map draws
(:func:`map_households`), so the client serialises, and the workers receive, a fraction of
the merged table.  Each worker imports the map modules (:func:`warm_up`) while the client
still merges.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

__all__ = ["DistrictMap", "district_map_jobs", "district_map_path", "map_households",
           "render_district_map", "warm_up", "write_district_maps", "write_province_map"]

log = logging.getLogger(__name__)

MAPS_DIR = "districts"
PROVINCE_MAP = "province.html"

_TEXT = {"zh": {"open": "打开本区地图", "coverage": "覆盖率", "layer": "各区地图（点击打开）",
                "title": "全省一刻钟服务圈覆盖（{n} 个区）"},
         "en": {"open": "open the district map", "coverage": "coverage",
                "layer": "district maps (click to open)",
                "title": "15-minute circle coverage across the province ({n} districts)"}}


def district_map_path(district_id: str) -> str:
    """Path of a district's map relative to the batch output folder (URL-safe)."""
    return f"{MAPS_DIR}/{quote(str(district_id), safe='')}/map.html"


def map_households(hh: gpd.GeoDataFrame, cats: list[str]) -> gpd.GeoDataFrame:
    """The household columns a coverage map draws (:func:`geosvc.viz.coverage_map`: the
    id, the weight, per category the status and the walking time, the point)."""
    from geosvc._schema import status_col, time_col

    keep = ["hh_id", "households"] + [c for cat in cats for c in (status_col(cat),
                                                                   time_col(cat))]
    cols = [c for c in keep if c in hh.columns] + [hh.geometry.name]
    return hh[cols]


def warm_up() -> None:
    """Import the map modules (a worker runs this while the client merges, so its first map
    does not pay for them)."""
    import geosvc.viz._layers  # noqa: F401
    import geosvc.viz._leaflet  # noqa: F401
    import geosvc.viz._map  # noqa: F401


def _stations_of(stations: gpd.GeoDataFrame | None, mask: np.ndarray | None,
                 cats: list[str]) -> dict[str, gpd.GeoDataFrame]:
    if stations is None or not len(stations):
        return {}
    st = stations if mask is None else stations.loc[mask]
    return {c: st[st["category"] == c].reset_index(drop=True) for c in cats
            if (st["category"] == c).any()}


@dataclass(frozen=True)
class DistrictMap:
    """Everything one district's ``map.html`` needs (small and picklable: a Dask worker
    renders it from the merged rows the client sends, reading the streets itself)."""

    path: str
    title: str
    households: gpd.GeoDataFrame
    areas: dict[str, gpd.GeoDataFrame]
    facilities: gpd.GeoDataFrame
    stations: dict[str, gpd.GeoDataFrame]
    roads: str
    roads_layer: str | None
    bbox: tuple[float, float, float, float]
    profile: Any
    lang: str
    categories: list[str]


def render_district_map(job: DistrictMap) -> str:
    """Draw and write one district's map (on a Dask worker or in-process); returns its path."""
    from geosvc.viz import coverage_map, write_map

    streets = pyogrio.read_dataframe(job.roads, layer=job.roads_layer, bbox=job.bbox,
                                     columns=[], use_arrow=True)
    m = coverage_map(job.households, areas=job.areas, facilities=job.facilities,
                     stations=job.stations, profile=job.profile, lang=job.lang,
                     streets=streets, title=job.title, categories=job.categories)
    write_map(m, Path(job.path))
    return job.path


def district_map_jobs(spec: Any, hh: gpd.GeoDataFrame, districts: gpd.GeoDataFrame,
                      facilities: gpd.GeoDataFrame, areas: dict[str, gpd.GeoDataFrame],
                      stations: gpd.GeoDataFrame | None, prof: Any, cats: list[str],
                      margin_m: float) -> Iterator[tuple[str, DistrictMap]]:
    """``(district id, DistrictMap)`` for every district that owns households, one at a time
    (a Dask client submits each as soon as it is cut): its owned (merged) households, the
    areas it touches, the facilities within ``margin_m`` of it, its stations and the streets
    in its box."""
    out = Path(spec.out)
    by_district = hh.groupby("district_id", sort=False).indices
    homes = map_households(hh, cats)
    fxy = shapely.get_coordinates(facilities.geometry.to_numpy())
    for aid, name, poly in zip(districts["area_id"], districts["name"],
                               districts.geometry.to_numpy(), strict=True):
        rows = by_district.get(aid)
        if rows is None or not len(rows):
            continue
        minx, miny, maxx, maxy = shapely.bounds(poly)
        box = (minx - margin_m, miny - margin_m, maxx + margin_m, maxy + margin_m)
        near = (fxy[:, 0] >= box[0]) & (fxy[:, 0] <= box[2]) & (fxy[:, 1] >= box[1]) & \
            (fxy[:, 1] <= box[3])
        local_areas = {lvl: a.loc[a.geometry.intersects(poly)].reset_index(drop=True)
                       for lvl, a in areas.items()}
        mask = None if stations is None else (stations["district_id"] == aid).to_numpy()
        yield str(aid), DistrictMap(
            path=str(out / district_map_path(str(aid))), title=str(name),
            households=homes.iloc[rows].reset_index(drop=True), areas=local_areas,
            facilities=facilities.loc[near].reset_index(drop=True),
            stations=_stations_of(stations, mask, cats), roads=spec.inputs.roads,
            roads_layer=spec.inputs.layers.get("roads"),
            bbox=(float(minx), float(miny), float(maxx), float(maxy)), profile=prof,
            lang=spec.lang, categories=cats)


def write_district_maps(spec: Any, hh: gpd.GeoDataFrame, districts: gpd.GeoDataFrame,
                        facilities: gpd.GeoDataFrame, areas: dict[str, gpd.GeoDataFrame],
                        stations: gpd.GeoDataFrame | None, prof: Any, cats: list[str],
                        margin_m: float) -> dict[str, str]:
    """Write ``<out>/districts/<id>/map.html`` for every district in this process; returns
    id -> path (relative to the output folder)."""
    done = {}
    for aid, job in district_map_jobs(spec, hh, districts, facilities, areas, stations, prof,
                                      cats, margin_m):
        render_district_map(job)
        done[aid] = district_map_path(aid)
    return done


def write_province_map(spec: Any, hh: gpd.GeoDataFrame, dist_tab: gpd.GeoDataFrame,
                       stations: gpd.GeoDataFrame | None, prof: Any, cats: list[str],
                       links: dict[str, str]) -> Path:
    """Write ``<out>/province.html``: districts coloured by coverage, linking to their maps."""
    import folium

    from geosvc.viz import coverage_map, write_map

    lang = spec.lang if spec.lang in _TEXT else "en"
    t = _TEXT[lang]
    m = coverage_map(map_households(hh, cats), areas={"district": dist_tab},
                     stations=_stations_of(stations, None, cats),
                     profile=prof, lang=spec.lang, categories=cats,
                     title=t["title"].format(n=len(dist_tab)))
    frame = dist_tab.to_crs(4326)
    popups = []
    for _, row in frame.iterrows():  # one popup per district (hundreds), not a hot path
        rates = " · ".join(f"{html.escape(c)} {t['coverage']} {row[f'{c}_coverage_rate']:.1%}"
                           for c in cats if f"{c}_coverage_rate" in row.index and
                           np.isfinite(row[f"{c}_coverage_rate"]))
        aid = str(row["area_id"])
        head = html.escape(str(row["name"]))
        link = (f'<a href="{html.escape(links[aid])}" target="_blank">{t["open"]}</a>'
                if aid in links else "")
        popups.append(f"<b>{head}</b><br>{rates}<br>{link}")
    data = gpd.GeoDataFrame({"popup": popups, "name": frame["name"].astype(str).map(
        html.escape).to_numpy()}, geometry=frame.geometry.to_numpy(), crs=4326)
    layer = folium.GeoJson(
        json.loads(data.to_json()), name=t["layer"],
        style_function=lambda _f: {"color": "#333333", "weight": 1.5, "fillOpacity": 0.0},
        highlight_function=lambda _f: {"weight": 3, "fillOpacity": 0.1},
        tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False))
    layer.add_to(m)
    return write_map(m, Path(spec.out) / PROVINCE_MAP)
