"""Results back on the street graph: walking minutes to the nearest facility per node/edge.

osmnx users colour streets from an edge attribute (``ox.plot_graph(G, edge_color=...)``,
``nx.set_edge_attributes``).  :func:`street_minutes` gives the walking time from the
nearest facility of a category to every node and to the midpoint of every edge, as pandas
Series indexed like ``G.nodes`` and ``G.edges(keys=True)``, computed with the same
edge-based search, access legs and walking speed as the household verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd

from geosvc._errors import InputError
from geosvc.access import (
    SNAP_OK,
    Anchors,
    compound_ids,
    nearest_facility,
    node_distances,
    snap_points,
)
from geosvc.facilities import prepare_facilities
from geosvc.network import (
    CompiledNetwork,
    compile_network,
    edge_shape_key,
    graph_edge_key,
    to_graph,
)
from geosvc.standards import Profile, load_profile

__all__ = ["StreetMinutes", "street_minutes"]


@dataclass(frozen=True)
class StreetMinutes:
    """Walking minutes from the nearest facility of one category.

    Attributes
    ----------
    nodes
        Minutes per node, indexed by node id (``G.nodes``); ``inf`` where no facility can
        be reached.
    edges
        Minutes to the midpoint of every directed edge, indexed by ``(u, v, key)`` in the
        order of ``G.edges(keys=True)`` (both directions of a street carry the same value).
    graph
        The graph the Series align with (``G`` itself, or ``to_graph(net)``).
    category, speed_m_s
        What was searched and at which speed.
    """

    nodes: pd.Series
    edges: pd.Series
    graph: nx.MultiDiGraph
    category: str
    speed_m_s: float


def _edge_index(G: nx.MultiDiGraph, net: CompiledNetwork) -> tuple[pd.MultiIndex, np.ndarray]:
    """``G``'s directed edges and the compiled edge each one became (compile's own key)."""
    pos = {n: i for i, n in enumerate(G.nodes)}
    node_xy = net.node_xy
    compiled: dict[tuple[int, int, float, bytes], int] = {}
    ends = zip(net.edge_u.tolist(), net.edge_v.tolist(), net.edge_length_m.tolist(),
               net.edge_geometry, strict=True)
    for e, (a, b, length, geom) in enumerate(ends):
        compiled.setdefault((min(a, b), max(a, b), round(length, 3),
                             edge_shape_key(geom, a, b)), e)
    rows = list(G.edges(keys=True, data=True))
    edge = np.full(len(rows), -1, dtype=np.int64)
    for r, (u, v, _, d) in enumerate(rows):  # the graph's own edges, as compile_network reads them
        edge[r] = compiled.get(graph_edge_key(d, pos[u], pos[v], node_xy)[2], -1)
    index = pd.MultiIndex.from_tuples([(r[0], r[1], r[2]) for r in rows],
                                      names=["u", "v", "key"])
    return index, edge


def street_minutes(
    graph: nx.MultiDiGraph | CompiledNetwork,
    facilities: gpd.GeoDataFrame,
    *,
    category: str,
    profile: Profile | str | None = None,
) -> StreetMinutes:
    """Walking minutes from the nearest ``category`` facility to every node and edge.

    Parameters
    ----------
    graph
        A geosvc street graph (from :func:`geosvc.network.to_graph`,
        :func:`geosvc.network.graph_from_osmnx` or the readers) or a compiled network
        (the Series then align with ``to_graph(net)``, returned as ``.graph``).
    facilities
        Facility points (``category``; ``facility_id`` optional — the same id rule as
        :func:`geosvc.coverage.analyse_coverage`), any CRS.
    category
        Profile category, e.g. ``"elderly_care"`` (its walking speed is used).
    profile
        Standards profile or its name.

    Returns
    -------
    StreetMinutes
        ``.nodes`` and ``.edges`` Series.

    Examples
    --------
    >>> sm = street_minutes(G, facilities, category="elderly_care")  # doctest: +SKIP
    >>> nx.set_edge_attributes(G, sm.edges.to_dict(), "minutes")      # doctest: +SKIP
    """
    prof = profile if isinstance(profile, Profile) else load_profile(profile or
                                                                     "cn-community-2023")
    speed = float(prof.category(category).speed_m_s)
    if isinstance(graph, CompiledNetwork):
        net, G = graph, to_graph(graph)
    elif isinstance(graph, nx.MultiDiGraph):
        net, G = compile_network(graph), graph
    else:
        raise InputError(f"graph must be a networkx MultiDiGraph or a CompiledNetwork, not "
                         f"{type(graph).__name__}")
    fac = facilities if facilities.attrs.get("geosvc_prepared") == prof.name else \
        prepare_facilities(facilities, prof)
    fac = fac[fac["category"] == category].to_crs(net.crs)
    anchors = snap_points(net, fac.geometry.to_numpy(), max_snap_m=prof.max_snap_m,
                          compound=compound_ids(fac, None))
    node_m, _ = node_distances(net, anchors)
    n_e = net.n_edges
    mid = Anchors(np.arange(n_e), net.edge_length_m / 2.0, np.zeros(n_e),
                  np.full((n_e, 2), np.nan), np.full(n_e, SNAP_OK), np.full(n_e, -1))
    edge_m = nearest_facility(net, anchors, mid).distance_m
    to_min = 1.0 / (speed * 60.0)
    nodes = pd.Series(node_m * to_min, index=pd.Index(list(G.nodes), name="node"),
                      name=f"minutes_{category}")
    index, edge = _edge_index(G, net)
    values = np.where(edge >= 0, edge_m[np.maximum(edge, 0)] * to_min, np.nan)
    edges = pd.Series(values, index=index, name=f"minutes_{category}")
    return StreetMinutes(nodes, edges, G, category, speed)
