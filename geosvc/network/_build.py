"""Build the geosvc street graph from node/edge frames (the one path every reader takes)."""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geosvc import diagnostics
from geosvc._errors import CRSError, NetworkError
from geosvc.crs import utm_crs_for

__all__ = ["graph_from_frames", "local_metric_crs", "NON_WALKABLE_HIGHWAYS"]

log = logging.getLogger(__name__)

#: OSM ``highway`` values nobody walks on (removed from walking networks).
NON_WALKABLE_HIGHWAYS = frozenset(
    {"motorway", "motorway_link", "construction", "proposed", "abandoned", "raceway",
     "bus_guideway", "escape", "elevated"}
)

_KEEP_ATTRS = ("highway", "name", "bridge", "tunnel", "layer", "compound_id", "osmid", "road_id")


def local_metric_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries, crs: Any = None) -> CRS:
    """Return ``crs`` if given (must be projected) else the UTM zone at the data's centre.

    Raises
    ------
    CRSError
        When the data has no CRS, or ``crs`` is geographic (degrees cannot measure metres).
    """
    if crs is not None:
        target = CRS.from_user_input(crs)
        if not target.is_projected:
            raise CRSError(
                f"CRS {target.to_string()} is geographic (degrees); geosvc measures walking "
                "distances in metres: name a projected CRS such as a UTM zone (e.g. EPSG:32650)"
            )
        return target
    if gdf.crs is None:
        raise CRSError("the data has no coordinate reference system; set one (e.g. EPSG:4326)")
    if gdf.crs.is_projected:
        return CRS.from_user_input(gdf.crs)
    minx, miny, maxx, maxy = gdf.total_bounds
    return utm_crs_for([minx, maxx], [miny, maxy])


def graph_from_frames(
    edges: gpd.GeoDataFrame,
    *,
    source: str,
    crs: Any = None,
    u_col: str | None = None,
    v_col: str | None = None,
    tol_m: float = 0.01,
) -> nx.MultiDiGraph:
    """Build a two-way walking MultiDiGraph from an edge frame of LineStrings.

    Nodes are the edges' end points.  With ``u_col``/``v_col`` the given node ids are used
    (OSM node ids); otherwise end points closer than ``tol_m`` merge into one node.

    Parameters
    ----------
    edges
        LineStrings with a CRS; kept attributes: highway, name, bridge, tunnel, layer,
        compound_id, osmid, road_id.
    source
        Where the data came from (file name), stored as ``G.graph["source"]``.
    crs
        Target projected CRS; default the UTM zone at the data's centre.
    u_col, v_col
        Optional node-id columns.
    tol_m
        Merge tolerance for end points (metres) when no node ids are given.

    Returns
    -------
    networkx.MultiDiGraph
        Projected; every undirected street is stored in both directions with
        ``geometry`` oriented from ``u`` to ``v``, ``length_m`` (= ``length``) and
        ``compound_id`` (-1 on public streets).
    """
    if len(edges) == 0:
        raise NetworkError(f"{source}: the street network is empty (no walkable lines found)")
    target = local_metric_crs(edges, crs)
    edges, geoms, lengths = _positive_lines(edges.to_crs(target), source)
    node_ids, node_xy, u_ids, v_ids = _end_nodes(edges, geoms, u_col, v_col, tol_m)
    # drop self-loops of zero use (a loop street is kept: it has length and geometry)
    G = nx.MultiDiGraph()
    G.graph["crs"] = target.to_string() if target.to_epsg() is None else f"EPSG:{target.to_epsg()}"
    G.graph["source"] = source
    G.graph["simplified"] = False
    G.add_nodes_from(
        (n, {"x": float(x), "y": float(y)}) for n, (x, y) in zip(node_ids.tolist(), node_xy, strict=True)
    )
    attrs = _edge_attr_records(edges)
    rev = shapely.reverse(geoms)
    u_list, v_list = u_ids.tolist(), v_ids.tolist()
    for i, (u, v) in enumerate(zip(u_list, v_list, strict=True)):
        length = float(lengths[i])
        data = dict(attrs[i], geometry=geoms[i], length_m=length, length=length)
        G.add_edge(u, v, **data)
        rdata = dict(attrs[i], geometry=rev[i], length_m=length, length=length)
        G.add_edge(v, u, **rdata)
    report_components(G)
    return G


def _positive_lines(edges: gpd.GeoDataFrame, source: str
                    ) -> tuple[gpd.GeoDataFrame, np.ndarray, np.ndarray]:
    """The LineStrings of positive length (fresh index), their geometries and lengths."""
    geoms = edges.geometry.to_numpy()
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    ok &= shapely.get_type_id(geoms) == 1  # LineString
    edges = edges.loc[ok].reset_index(drop=True)
    geoms = edges.geometry.to_numpy()
    lengths = shapely.length(geoms)
    keep = lengths > 0
    edges, geoms, lengths = edges.loc[keep].reset_index(drop=True), geoms[keep], lengths[keep]
    if len(edges) == 0:
        raise NetworkError(f"{source}: no line with a positive length; check the geometry column")
    return edges, geoms, lengths


def _end_nodes(edges: gpd.GeoDataFrame, geoms: np.ndarray, u_col: str | None,
               v_col: str | None, tol_m: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nodes from the lines' end points: the given ids, or ends within ``tol_m`` merged.

    Returns
    -------
    node_ids, node_xy, u_ids, v_ids
    """
    sxy = shapely.get_coordinates(shapely.get_point(geoms, 0))
    exy = shapely.get_coordinates(shapely.get_point(geoms, -1))
    xy = np.vstack([sxy, exy])
    if u_col is not None and v_col is not None:
        u_ids = edges[u_col].to_numpy()
        v_ids = edges[v_col].to_numpy()
        node_ids, first = np.unique(np.concatenate([u_ids, v_ids]), return_index=True)
        return node_ids, xy[first], u_ids, v_ids
    key = np.round(xy / tol_m).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    return (np.arange(len(first), dtype=np.int64), xy[first], inverse[: len(edges)],
            inverse[len(edges):])


def _edge_attr_records(edges: pd.DataFrame) -> list[dict[str, Any]]:
    cols = [c for c in _KEEP_ATTRS if c in edges.columns]
    frame = edges[cols].copy()
    if "compound_id" in frame.columns:
        frame["compound_id"] = (
            pd.to_numeric(frame["compound_id"], errors="coerce").fillna(-1).astype(np.int64)
        )
    else:
        frame["compound_id"] = np.int64(-1)
    records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()}
                                     for r in frame.to_dict("records")]
    for rec in records:
        for k in list(rec):
            val = rec[k]
            if val is None or (isinstance(val, float) and np.isnan(val)):
                del rec[k]
            elif isinstance(val, np.generic):
                rec[k] = val.item()
    return records


def report_components(G: nx.MultiDiGraph) -> pd.DataFrame:
    """Label weakly connected components; store the count and a table on the graph.

    Components are kept, never dropped: households on a small component are reported as
    ``unreachable`` from facilities on another one.  Sets node attribute ``component``
    (0 = largest) and ``G.graph["n_components"]``.

    Returns
    -------
    pandas.DataFrame
        One row per component: ``component``, ``n_nodes``, ``n_edges``, ``length_km``.
    """
    comps = sorted(nx.weakly_connected_components(G), key=len, reverse=True)
    rows = []
    for cid, nodes in enumerate(comps):
        for n in nodes:
            G.nodes[n]["component"] = cid
        sub = G.subgraph(nodes)
        length = sum(d.get("length_m", 0.0) for _, _, d in sub.edges(data=True)) / 2.0
        rows.append((cid, len(nodes), sub.number_of_edges() // 2, length / 1000.0))
    G.graph["n_components"] = len(comps)
    table = pd.DataFrame(rows, columns=["component", "n_nodes", "n_edges", "length_km"])
    if len(comps) > 1:
        source = G.graph.get("source", "network")
        diagnostics.warn(
            "network_components",
            f"{source}: {len(comps)} disconnected network components (largest {rows[0][1]} "
            "nodes); kept, households on other components may be unreachable",
            source=str(source), components=len(comps), largest_nodes=int(rows[0][1]))
    return table
