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
from pyproj import CRS, Transformer

from geosvc import diagnostics
from geosvc._errors import CRSError, InputError, NetworkError
from geosvc.network._build import NON_WALKABLE_HIGHWAYS, graph_from_frames, local_metric_crs
from geosvc.network._compiled import CompiledNetwork, compile_network, from_arrays, to_graph
from geosvc.network._components import DEFAULT_MIN_COMPONENT_NODES, keep_components
from geosvc.network._connect import (
    check_connectivity,
    compile_lines,
    frame_levels,
    insert_vertices,
    line_junction_points,
)
from geosvc.network._osmxml import read_osm_ways, way_pieces

__all__ = [
    "graph_from_xml",
    "graph_from_pbf",
    "graph_from_graphml",
    "graph_from_osmnx",
    "graph_from_lines",
    "read_graph",
    "network_from_lines",
    "network_from_xml",
    "read_network",
]

log = logging.getLogger(__name__)

_XML_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".xml", ".xml.bz2", ".xml.gz")
_LINE_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".parquet")
_EDGE_ATTRS = ("highway", "name", "bridge", "tunnel", "layer", "osmid", "road_id")
_READ_COLS = frozenset(_EDGE_ATTRS + ("compound_id", "foot", "access"))


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found; check the path (working directory: {Path.cwd()})")
    return p


def _walkable(edges: pd.DataFrame) -> np.ndarray:
    """Rows people may walk on (a merged edge ``"motorway;primary"`` counts as walkable)."""
    keep = np.ones(len(edges), dtype=bool)
    if "highway" in edges.columns and len(edges):
        codes, values = pd.factorize(edges["highway"])  # few distinct values: decide once each
        ok = np.array([not all(p.strip() in NON_WALKABLE_HIGHWAYS for p in str(v).split(";"))
                       for v in values] + [True], dtype=bool)
        keep &= ok[codes]  # code -1 (missing) maps to the trailing True
    for col in ("foot", "access"):
        if col in edges.columns:
            codes, values = pd.factorize(edges[col])
            ok = np.r_[~pd.Index(values.astype(str)).isin(["no", "private"]), True]
            keep &= ok[codes]
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


def network_from_xml(path: str | Path, *, crs: Any = None, components: str = "all",
                     min_component_nodes: int = DEFAULT_MIN_COMPONENT_NODES
                     ) -> CompiledNetwork:
    """Read an OpenStreetMap XML file (``.osm``, ``.osm.bz2``, ``.osm.gz``) into arrays.

    geosvc parses the XML itself (no osmnx), so clipped extracts read: each way is cut into
    the runs of nodes present in the file, and ``graph_attrs["network_report"]`` (and the
    log) say how many ways were cut and how many way segments were lost.  Only ``highway``
    ways are read; non-walkable ones (motorways, ``foot=no``, ``access=private``) are
    removed.  Ways join where they share an OSM node, nowhere else.
    """
    p = _existing(path)
    ways = read_osm_ways(p)
    keep = _walkable(ways.way_tags)
    piece_way, ptr, piece_nodes, counts = way_pieces(ways, keep)
    if len(piece_way) == 0:
        raise NetworkError(f"{p}: no walkable street with two nodes in the file")
    lonlat = ways.node_lonlat[piece_nodes]
    target = local_metric_crs(_bounds_series(lonlat), crs)
    xy = _project_lonlat(lonlat, target)
    sizes = np.diff(ptr)
    geoms = np.asarray(shapely.linestrings(xy, indices=np.repeat(np.arange(len(sizes)), sizes)),
                       dtype=object)
    ends = np.concatenate([piece_nodes[ptr[:-1]], piece_nodes[ptr[1:] - 1]])
    used, local = np.unique(ends, return_inverse=True)
    u, v = local[: len(sizes)], local[len(sizes):]
    node_xy = _project_lonlat(ways.node_lonlat[used], target)
    tags = ways.way_tags.iloc[piece_way].reset_index(drop=True)
    tags["osmid"] = ways.way_id[piece_way]
    report: dict[str, Any] = {"connectivity": "osm_node_ids", "requested": "osm",
                              "reason": "OSM ways join at shared node ids", **counts,
                              "lines": int(counts["ways"] - counts["ways_dropped"]),
                              "self_crossings": int((~shapely.is_simple(geoms)).sum())}
    if counts["ways_cut"]:
        diagnostics.warn(
            "clipped_extract",
            f"{p.name}: clipped extract: {counts['ways_cut']} ways reference nodes missing from "
            f"the file; cut into the runs of nodes present ({counts['segments_lost']} way "
            f"segments lost, {counts['ways_dropped']} ways dropped entirely)",
            source=p.name, ways_cut=counts["ways_cut"], segments_lost=counts["segments_lost"])
    log.info("%s: %d highway ways -> %d edges; %d ways cut by the extract boundary, %d "
             "segments lost", p.name, counts["ways"], len(geoms), counts["ways_cut"],
             counts["segments_lost"])
    net = from_arrays(node_xy, u, v, crs=target, edge_geometry=geoms,
                      node_ids=ways.node_id[used], edge_attrs=_attr_arrays(tags),
                      graph_attrs={"source": p.name, "simplified": True,
                                   "network_report": report})
    return keep_components(net, components=components,
                           min_component_nodes=min_component_nodes, source=p.name)


def _bounds_series(lonlat: np.ndarray) -> gpd.GeoSeries:
    lo, hi = lonlat.min(axis=0), lonlat.max(axis=0)
    return gpd.GeoSeries([shapely.box(lo[0], lo[1], hi[0], hi[1])], crs="EPSG:4326")


def _project_lonlat(lonlat: np.ndarray, target: Any) -> np.ndarray:
    tr = Transformer.from_crs("EPSG:4326", target, always_xy=True)
    x, y = tr.transform(lonlat[:, 0], lonlat[:, 1])
    return np.column_stack([x, y])


def _attr_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for col in _EDGE_ATTRS:
        if col in frame.columns:
            vals = frame[col].to_numpy(dtype=object)
            missing = pd.isna(frame[col]).to_numpy()
            if missing.any():
                vals = vals.copy()
                vals[missing] = None
            out[col] = vals
    return out


def graph_from_xml(path: str | Path, *, crs: Any = None, simplify: bool = True
                   ) -> nx.MultiDiGraph:
    """Read an OpenStreetMap XML file as a networkx graph (see :func:`network_from_xml`).

    ``simplify`` is kept for compatibility: ways are always split at shared nodes only.
    """
    return to_graph(network_from_xml(path, crs=crs))


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


def _read_line_file(p: Path, layer: str | None) -> gpd.GeoDataFrame:
    """Read only the columns geosvc uses (fast path through pyogrio/Arrow)."""
    import pyogrio

    try:
        if p.name.lower().endswith(".parquet"):
            return gpd.read_parquet(p)
        info = pyogrio.read_info(p, layer=layer)
        cols = [c for c in info["fields"] if c in _READ_COLS]
        return gpd.read_file(p, layer=layer, columns=cols, engine="pyogrio", use_arrow=True)
    except Exception as exc:
        raise InputError(
            f"{p}: cannot read road lines ({exc}); expected a GeoPackage, Shapefile or GeoJSON"
            + ("" if layer is None else f" with a layer {layer!r}")
        ) from exc


def _line_frame(lines: str | Path | gpd.GeoDataFrame, layer: str | None
                ) -> tuple[gpd.GeoDataFrame, str]:
    source = "road lines"
    if isinstance(lines, str | Path):
        p = _existing(lines)
        source = p.name
        gdf = _read_line_file(p, layer)
    else:
        gdf = lines
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(f"{source}: expected a GeoDataFrame of road lines")
    if gdf.crs is None:
        raise CRSError(
            f"{source}: the road layer has no CRS; set it in the file (e.g. EPSG:4326 for lon/lat)"
        )
    if len(gdf) == 0:
        raise NetworkError(f"{source}: the road layer is empty; it needs street centre lines")
    geoms = gdf.geometry.to_numpy()
    kind = shapely.get_type_id(geoms)
    bad = ~np.isin(kind, [-1, 1, 5])
    if bad.any():
        types = sorted(set(gdf.geom_type[bad].dropna().unique()))
        raise InputError(
            f"{source}: road layer must hold LineStrings, found {types}; "
            "export the street centre lines"
        )
    if (kind == 5).any():
        gdf = gdf.explode(index_parts=False)
    gdf = gdf.loc[_walkable(gdf)].reset_index(drop=True)
    return gdf, source


def _lonlat_junctions_as_vertices(geoms: np.ndarray, level: np.ndarray, tol_m: float
                                  ) -> np.ndarray:
    """Insert the layer's junction points as vertices before a non-linear datum shift."""
    ok = shapely.get_type_id(geoms) == 1
    ok[ok] = shapely.length(geoms[ok]) > 0
    sub = geoms[ok]
    line, pos, xy, _ = line_junction_points(sub, level[ok], tol=tol_m / 111_000.0)
    out = geoms.copy()
    out[ok] = insert_vertices(sub, line, pos, xy)
    return out


def _metric_lines(gdf: gpd.GeoDataFrame, level: np.ndarray, *, crs: Any, coord_system: str,
                  junctions: bool, tol_m: float, source: str) -> tuple[np.ndarray, CRS]:
    """The layer's lines in the working metric CRS (``crs`` or the local UTM zone).

    Lon/lat input keeps its junctions through the projection (and a GCJ-02/BD-09 datum
    shift) when ``junctions`` asks for them: they become vertices first.
    """
    geoms = gdf.geometry.to_numpy()
    src_crs = CRS.from_user_input(gdf.crs)
    if coord_system != "wgs84" and not src_crs.is_geographic:
        raise CRSError(
            f"{source}: coord_system={coord_system!r} but the layer has the projected CRS "
            f"{src_crs.to_string()}; GCJ-02/BD-09 coordinates are lon/lat degrees: label the "
            "layer EPSG:4326, or use coord_system='wgs84'")
    if src_crs.is_geographic and junctions:
        # projection and datum shifts bend straight segments: a junction that is not a
        # vertex (an end on another line's interior, a crossing) would drift apart, so
        # junction points become vertices first, in the source coordinates
        geoms = _lonlat_junctions_as_vertices(geoms, level, tol_m)
    if coord_system != "wgs84":
        from geosvc.crs import to_wgs84_vertices

        geoms = gpd.GeoSeries(geoms, crs=src_crs).to_crs(4326).to_numpy()
        geoms = to_wgs84_vertices(geoms, coord_system=coord_system)
        src_crs = CRS.from_epsg(4326)
    series = gpd.GeoSeries(geoms, crs=src_crs)
    target = local_metric_crs(series, crs)
    return series.to_crs(target).to_numpy(), target


def _compound_ids(attrs: pd.DataFrame) -> np.ndarray:
    """Each piece's ``compound_id`` (int64; ``-1`` for public streets or no column)."""
    if "compound_id" not in attrs.columns:
        return np.full(len(attrs), -1, dtype=np.int64)
    return pd.to_numeric(attrs["compound_id"], errors="coerce").fillna(-1) \
        .astype(np.int64).to_numpy()


def network_from_lines(
    lines: str | Path | gpd.GeoDataFrame,
    *,
    layer: str | None = None,
    crs: Any = None,
    coord_system: str = "wgs84",
    connectivity: str = "auto",
    keep_grade_separated: bool = True,
    tol_m: float = 0.01,
    components: str = "all",
    min_component_nodes: int = DEFAULT_MIN_COMPONENT_NODES,
) -> CompiledNetwork:
    """Build the compiled walking network from road lines, without a networkx graph.

    Parameters
    ----------
    lines
        Path of a vector file (GeoPackage, Shapefile, GeoJSON, ...) or a GeoDataFrame of
        (Multi)LineStrings.
    layer
        Layer name for multi-layer files (GeoPackage).
    crs
        Projected CRS to work in; default the UTM zone of the data's centre.
    coord_system
        ``"wgs84"``, ``"gcj02"`` or ``"bd09"``: the datum of lon/lat input (Chinese web-map
        data is often GCJ-02).  Junction points are made vertices first, every distinct
        vertex is converted once, and noding runs after the conversion, so junctions hold.
    connectivity
        ``"endpoints"`` (lines join only where end points coincide), ``"crossings"`` (also
        where an end lies on another line or two lines on one level cross) or ``"auto"``
        (decide from the layer and report why); see :mod:`geosvc.network._connect`.  A line
        never joins itself at a self-crossing.
    keep_grade_separated
        In ``crossings`` mode, lines on different levels (``layer``, ``bridge``,
        ``tunnel``) join only where an end of one lies on the other (a ramp), never where
        they cross in plan.
    tol_m
        End points closer than this (metres) are one node.
    components, min_component_nodes
        Fragments to drop (see :func:`geosvc.network.keep_components`).

    Returns
    -------
    CompiledNetwork
        With ``graph_attrs["network_report"]``: mode, reason and counts (ends shared,
        crossings found, junctions added, self-crossings, ...).
    """
    mode = check_connectivity(connectivity)
    gdf, source = _line_frame(lines, layer)
    level = frame_levels(gdf, keep_grade_separated)
    geoms, target = _metric_lines(gdf, level, crs=crs, coord_system=coord_system,
                                  junctions=mode != "endpoints", tol_m=tol_m, source=source)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    ok[ok] = shapely.length(geoms[ok]) > 0
    if not ok.any():
        raise NetworkError(f"{source}: no line with a positive length; check the geometry column")
    dropped = int((~ok).sum())
    geoms, level, frame = geoms[ok], level[ok], gdf.loc[ok].reset_index(drop=True)
    noded = compile_lines(geoms, level, connectivity=mode, tol_m=tol_m, source=source)
    attrs = frame.iloc[noded.piece_line].reset_index(drop=True)
    compound = _compound_ids(attrs)
    report = dict(noded.report, empty_lines_dropped=dropped)
    net = from_arrays(noded.node_xy, noded.edge_u, noded.edge_v, crs=target,
                      edge_geometry=noded.pieces, edge_compound=compound,
                      edge_attrs=_attr_arrays(attrs),
                      graph_attrs={"source": source, "simplified": False,
                                   "network_report": report})
    return keep_components(net, components=components,
                           min_component_nodes=min_component_nodes, source=source)


def graph_from_lines(
    lines: str | Path | gpd.GeoDataFrame,
    *,
    layer: str | None = None,
    crs: Any = None,
    coord_system: str = "wgs84",
    connectivity: str = "auto",
    keep_grade_separated: bool = True,
    tol_m: float = 0.01,
    components: str = "all",
    min_component_nodes: int = DEFAULT_MIN_COMPONENT_NODES,
) -> nx.MultiDiGraph:
    """Build a walking network from road lines as a networkx graph.

    Same parameters as :func:`network_from_lines` (which skips the graph and is what the
    pipeline uses); the graph carries the report as ``G.graph["network_report"]``.
    """
    return to_graph(network_from_lines(
        lines, layer=layer, crs=crs, coord_system=coord_system, connectivity=connectivity,
        keep_grade_separated=keep_grade_separated, tol_m=tol_m, components=components,
        min_component_nodes=min_component_nodes))


def read_network(path: str | Path, *, crs: Any = None, layer: str | None = None,
                 coord_system: str = "wgs84", connectivity: str = "auto",
                 components: str = "all",
                 min_component_nodes: int = DEFAULT_MIN_COMPONENT_NODES) -> CompiledNetwork:
    """Read any supported street-network file into the compiled arrays.

    ``connectivity`` applies to line layers (OSM files carry their topology in node ids;
    GraphML in its edges).
    """
    p = _existing(path)
    name = p.name.lower()
    check_connectivity(connectivity)
    if name.endswith(_LINE_SUFFIXES):
        return network_from_lines(p, layer=layer, crs=crs, coord_system=coord_system,
                                  connectivity=connectivity, components=components,
                                  min_component_nodes=min_component_nodes)
    if name.endswith(_XML_SUFFIXES):
        return network_from_xml(p, crs=crs, components=components,
                                min_component_nodes=min_component_nodes)
    with diagnostics.suppressed("network_components"):  # reported after the fragment filter
        if name.endswith(".pbf"):
            G = graph_from_pbf(p, crs=crs)
        elif name.endswith(".graphml"):
            G = graph_from_graphml(p, crs=crs)
        else:
            G = None
    if G is None:
        raise InputError(
            f"{p}: unknown street-network format; use .osm/.osm.bz2/.osm.gz, .osm.pbf, "
            ".graphml, or a line layer (.gpkg, .shp, .geojson)"
        )
    net = compile_network(G, edge_attrs=("highway", "name", "bridge", "tunnel", "layer"))
    net.graph_attrs["network_report"] = {"connectivity": "graph_edges",
                                         "requested": "graph", "reason": "a graph file"}
    return keep_components(net, components=components,
                           min_component_nodes=min_component_nodes, source=p.name)


def read_graph(path: str | Path, *, crs: Any = None, layer: str | None = None,
               coord_system: str = "wgs84", connectivity: str = "auto") -> nx.MultiDiGraph:
    """Read any supported street-network file as a networkx graph, by its extension."""
    return to_graph(read_network(path, crs=crs, layer=layer, coord_system=coord_system,
                                 connectivity=connectivity))
