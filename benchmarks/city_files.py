"""The generated city written as the files a GIS team would hand over, plus a run config.

:func:`write_city_files` turns a :class:`benchmarks.cases.CityCase` into

* ``roads.gpkg``: one LineString per street segment (compound paths included), ``highway``
  column (``residential``; compound paths ``footway``), already noded at shared end points;
* ``households.gpkg``: one point per household row with ``building_id``, ``households``,
  ``persons`` and ``elderly`` columns;
* ``facilities.gpkg``: ``facility_id``, ``category`` (about 40% elderly care, 60% convenience
  spread over the twelve MOFCOM basic types), ``subtype``, ``floor_area_m2``;
* ``city.toml``: a ``geosvc run`` config (max coverage, ``k`` new stations per category).

Everything is in :data:`benchmarks.cases.CITY_CRS` (metres).  Deterministic for a given spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from benchmarks.cases import CITY_CRS, CityCase

__all__ = ["CityFiles", "write_city_files"]

_ELDERLY = ("day_care_center", "community_station", "nursing_home")
_CONVENIENCE = ("convenience_store", "supermarket", "wet_market", "fresh_grocery", "breakfast",
                "laundry", "hair_beauty", "print_photo", "housekeeping", "repair", "pharmacy",
                "post_express")


@dataclass(frozen=True)
class CityFiles:
    """Paths of the written city."""

    folder: Path
    roads: Path
    households: Path
    facilities: Path
    config: Path


def _write(gdf: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    if path.exists():
        path.unlink()
    pyogrio.write_dataframe(gdf, path, layer=layer, driver="GPKG", use_arrow=True)


def _roads(case: CityCase) -> gpd.GeoDataFrame:
    xy = case.node_xy
    coords = np.stack([xy[case.edge_u], xy[case.edge_v]], axis=1)
    lines = shapely.linestrings(coords)
    highway = np.where(case.edge_compound >= 0, "footway", "residential")
    return gpd.GeoDataFrame({"road_id": np.arange(len(lines)), "highway": highway},
                            geometry=lines, crs=CITY_CRS)


def _households(case: CityCase, rng: np.random.Generator) -> gpd.GeoDataFrame:
    n = len(case.household_xy)
    hh = rng.integers(1, 4, size=n).astype(np.int64)
    persons = hh * 2 + rng.integers(0, 2, size=n)
    elderly = rng.binomial(persons, 0.2)
    return gpd.GeoDataFrame(
        {"building_id": np.arange(n, dtype=np.int64), "households": hh, "persons": persons,
         "elderly": elderly},
        geometry=shapely.points(case.household_xy), crs=CITY_CRS)


def _facilities(case: CityCase, rng: np.random.Generator) -> gpd.GeoDataFrame:
    n = len(case.facility_xy)
    n_eld = int(round(n * 0.4))
    cat = np.array(["elderly_care"] * n_eld + ["convenience"] * (n - n_eld), dtype=object)
    sub = np.concatenate([np.asarray(_ELDERLY, dtype=object)[np.arange(n_eld) % len(_ELDERLY)],
                          np.asarray(_CONVENIENCE, dtype=object)[
                              np.arange(n - n_eld) % len(_CONVENIENCE)]])
    floor = rng.uniform(100.0, 800.0, size=n).round(0)
    return gpd.GeoDataFrame(
        {"facility_id": [f"F{i:05d}" for i in range(n)], "category": cat, "subtype": sub,
         "floor_area_m2": floor},
        geometry=shapely.points(case.facility_xy), crs=CITY_CRS)


def write_city_files(case: CityCase, folder: str | Path, *, k: int = 20,
                     out_folder: str | Path | None = None,
                     memory_limit: str | None = None) -> CityFiles:
    """Write the city's roads, households and facilities and a ``geosvc run`` config.

    Parameters
    ----------
    case
        A generated city (see :func:`benchmarks.cases.city_case`).
    folder
        Where the files go (created).
    k
        New stations per category in the config's siting section.
    out_folder
        Output folder written into the config (default ``<folder>/out``).
    memory_limit
        Written as ``[run] memory_limit`` when given (e.g. ``"8GB"``).
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(case.spec.seed + 1)
    paths = {name: root / f"{name}.gpkg" for name in ("roads", "households", "facilities")}
    _write(_roads(case), paths["roads"], "roads")
    _write(_households(case, rng), paths["households"], "households")
    _write(_facilities(case, rng), paths["facilities"], "facilities")
    out = Path(out_folder) if out_folder is not None else root / "out"
    lines = [
        "[inputs]",
        'roads = "roads.gpkg"',
        'households = "households.gpkg"',
        'facilities = "facilities.gpkg"',
        f'crs = "{CITY_CRS}"',
        "",
        "[inputs.households_columns]",
        'id = "building_id"',
        "",
        "[siting]",
        'model = "max-coverage"',
        f"k = {int(k)}",
        "",
        "[output]",
        f'folder = "{out.as_posix()}"',
        'lang = "en"',
    ]
    if memory_limit:
        lines += ["", "[run]", f'memory_limit = "{memory_limit}"']
    config = root / "city.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return CityFiles(root, paths["roads"], paths["households"], paths["facilities"], config)
