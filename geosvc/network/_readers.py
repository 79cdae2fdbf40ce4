"""Readers: OpenStreetMap XML/PBF, GraphML, osmnx graphs and users' road line layers."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from geosvc._errors import CRSError, InputError, NetworkError
from geosvc.network._build import NON_WALKABLE_HIGHWAYS, graph_from_frames
from geosvc.network._lines import node_lines

__all__ = [
    "graph_from_xml",
    "graph_from_pbf",
    "graph_from_graphml",
    "graph_from_osmnx",
    "graph_from_lines",
    "read_graph",
]

log = logging.getLogger(__name__)

_XML_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".xml", ".xml.bz2", ".xml.gz")
_LINE_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".parquet")


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found; check the path (working directory: {Path.cwd()})")
    return p


def _walkable(edges: pd.DataFrame) -> np.ndarray:
    keep = np.ones(len(edges), dtype=bool)
    if "highway" in edges.columns:
        hw = edges["highway"].astype(str)
        keep &= ~hw.isin(NON_WALKABLE_HIGHWAYS).to_numpy()
    for col in ("foot", "access"):
        if col in edges.columns:
            keep &= ~edges[col].astype(str).isin(["no", "private"]).to_numpy()
    return keep


def graph_from_osmnx(G: nx.MultiDiGraph, *, crs: Any = None, source: str = "osmnx graph",
                     walkable_only: bool = True) -> nx.MultiDiGraph:
    """Convert an osmnx-style graph (projected or not) to a geosvc walking network.

    Streets become two-way, geometry is filled in where missing, ``length_m`` is measured
    in the target metric CRS (the UTM zone at the centre unless ``crs`` names one).
    """
    import osmnx as ox

    if G.number_of_edges() == 0:
        raise NetworkError(f"{source}: the graph has no edges")
    if "crs" not in G.graph:
        raise CRSError(f"{source}: the graph has no G.graph['crs']; set it (e.g. 'EPSG:4326')")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, edges = ox.graph_to_gdfs(G, nodes=True, edges=True, fill_edge_geometry=True)
    edges = edges.reset_index()
    for col in edges.columns:
        if edges[col].dtype == object and col != "geometry":
            edges[col] = edges[col].map(lambda v: ";".join(map(str, v)) if isinstance(v, list) else v)
    if walkable_only:
        edges = edges.loc[_walkable(edges)]
    # keep one direction of each two-way pair (the builder adds both directions again)
    a = np.minimum(edges["u"].to_numpy(), edges["v"].to_numpy())
    b = np.maximum(edges["u"].to_numpy(), edges["v"].to_numpy())
    length_key = np.round(shapely.length(edges.geometry.to_numpy()), 6)
    dedup = pd.DataFrame({"a": a, "b": b, "k": length_key}).duplicated().to_numpy()
    edges = gpd.GeoDataFrame(edges.loc[~dedup], geometry="geometry", crs=edges.crs)
    return graph_from_frames(edges, source=source, crs=crs, u_col="u", v_col="v")


def graph_from_xml(path: str | Path, *, crs: Any = None, simplify: bool = True) -> nx.MultiDiGraph:
    """Read an OpenStreetMap XML file (``.osm``, ``.osm.bz2``, ``.osm.gz``) via osmnx.

    All components are kept (``retain_all``); non-walkable ways (motorways, ``foot=no``)
    are removed.  The result is projected to ``crs`` or the local UTM zone.
    """
    import osmnx as ox

    p = _existing(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            G = ox.graph_from_xml(p, bidirectional=True, simplify=simplify, retain_all=True)
    except Exception as exc:  # osmnx raises many kinds on malformed XML
        raise InputError(f"{p}: not a readable OpenStreetMap XML file ({exc})") from exc
    if G.number_of_edges() == 0:
        raise NetworkError(f"{p}: no street (highway) ways in the file")
    return graph_from_osmnx(G, crs=crs, source=p.name)


def graph_from_pbf(path: str | Path, *, crs: Any = None,
                   network_type: str = "walking") -> nx.MultiDiGraph:
    """Read an OpenStreetMap PBF extract via pyrosm (offline; the file must exist)."""
    import pyrosm

    p = _existing(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            osm = pyrosm.OSM(str(p))
            result = osm.get_network(network_type=network_type, nodes=True)
    except Exception as exc:
        raise InputError(f"{p}: not a readable OpenStreetMap PBF file ({exc})") from exc
    if result is None or result[1] is None or len(result[1]) == 0:
        raise NetworkError(f"{p}: no {network_type} streets in the extract")
    _, edges = result
    edges = edges.loc[_walkable(edges)].copy()
    edges = edges.rename(columns={"id": "osmid"})
    return graph_from_frames(edges, source=p.name, crs=crs, u_col="u", v_col="v")


def graph_from_graphml(path: str | Path, *, crs: Any = None) -> nx.MultiDiGraph:
    """Read a GraphML street network (as osmnx saves it)."""
    import osmnx as ox

    p = _existing(path)
    try:
        G = ox.load_graphml(p)
    except Exception as exc:
        raise InputError(f"{p}: not a readable GraphML street network ({exc})") from exc
    return graph_from_osmnx(G, crs=crs, source=p.name)


def graph_from_lines(
    lines: str | Path | gpd.GeoDataFrame,
    *,
    layer: str | None = None,
    crs: Any = None,
    coord_system: str = "wgs84",
    keep_grade_separated: bool = True,
    grid_m: float = 0.01,
) -> nx.MultiDiGraph:
    """Build a walking network from road lines (GeoPackage, Shapefile, GeoJSON or a frame).

    GIS road layers are often not split at junctions: lines are noded where they share end
    points and where they truly cross.  With ``keep_grade_separated`` (default) lines marked
    as bridges/tunnels (columns ``bridge``/``tunnel`` truthy, or ``layer`` != 0) only join
    other lines at their end points, so a flyover does not create a junction with the street
    below it; set it to False to node every crossing.

    Parameters
    ----------
    lines
        Path of a vector file or a GeoDataFrame of (Multi)LineStrings.
    layer
        Layer name for multi-layer files (GeoPackage).
    crs
        Projected CRS to work in; default the UTM zone of the data's centre.
    coord_system
        ``"wgs84"``, ``"gcj02"`` or ``"bd09"``: the datum of lon/lat input (Chinese web-map
        data is often GCJ-02); converted to WGS-84 before projecting.
    keep_grade_separated
        See above.
    grid_m
        Coordinates are snapped to this grid (metres) so end points that coincide merge.
    """
    source = "road lines"
    if isinstance(lines, str | Path):
        p = _existing(lines)
        source = p.name
        try:
            gdf = gpd.read_file(p, layer=layer)
        except Exception as exc:
            raise InputError(
                f"{p}: cannot read road lines ({exc}); expected a GeoPackage, Shapefile or GeoJSON"
                + ("" if layer is None else f" with a layer {layer!r}")
            ) from exc
    else:
        gdf = lines
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(f"{source}: expected a GeoDataFrame of road lines")
    if gdf.crs is None:
        raise CRSError(
            f"{source}: the road layer has no CRS; set it in the file (e.g. EPSG:4326 for lon/lat)"
        )
    if coord_system != "wgs84":
        from geosvc.crs import to_wgs84_frame

        gdf = to_wgs84_frame(gdf, coord_system=coord_system)
    if len(gdf) == 0:
        raise NetworkError(f"{source}: the road layer is empty; it needs street centre lines")
    types = set(gdf.geom_type.dropna().unique())
    if not types <= {"LineString", "MultiLineString"}:
        raise InputError(
            f"{source}: road layer must hold LineStrings, found {sorted(types)}; "
            "export the street centre lines"
        )
    from geosvc.network._build import local_metric_crs

    target = local_metric_crs(gdf, crs)
    gdf = gdf.to_crs(target).explode(index_parts=False).reset_index(drop=True)
    gdf = gdf.loc[_walkable(gdf)].reset_index(drop=True)
    noded = node_lines(gdf, keep_grade_separated=keep_grade_separated, grid_m=grid_m)
    return graph_from_frames(noded, source=source, crs=target, tol_m=grid_m)


def read_graph(path: str | Path, *, crs: Any = None, layer: str | None = None,
               coord_system: str = "wgs84") -> nx.MultiDiGraph:
    """Read any supported street-network file, dispatching on its extension."""
    p = _existing(path)
    name = p.name.lower()
    if name.endswith(".pbf"):
        return graph_from_pbf(p, crs=crs)
    if name.endswith(_XML_SUFFIXES):
        return graph_from_xml(p, crs=crs)
    if name.endswith(".graphml"):
        return graph_from_graphml(p, crs=crs)
    if name.endswith(_LINE_SUFFIXES):
        return graph_from_lines(p, layer=layer, crs=crs, coord_system=coord_system)
    raise InputError(
        f"{p}: unknown street-network format; use .osm/.osm.bz2/.osm.gz, .osm.pbf, .graphml, "
        "or a line layer (.gpkg, .shp, .geojson)"
    )
