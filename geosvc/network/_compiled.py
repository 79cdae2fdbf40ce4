"""The compiled network: arrays every kernel reuses (CSR adjacency, node xy, edge index)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp
import shapely
from pyproj import CRS
from scipy.sparse.csgraph import connected_components

from geosvc._errors import CRSError, InputError, NetworkError
from geosvc._search import CsrGraph
from geosvc.network._segments import SegmentIndex, build_segment_index

__all__ = ["CompiledNetwork", "compile_network", "edge_shape_key", "graph_edge_key", "from_arrays", "street_count",
           "subset_edges", "to_graph"]


@dataclass(frozen=True, eq=False)
class CompiledNetwork:
    """An undirected walking network as arrays.

    Attributes
    ----------
    crs
        Projected CRS of all coordinates.
    node_ids
        Original node labels (position = compiled node index).
    node_xy
        ``(n_nodes, 2)`` coordinates in metres.
    edge_u, edge_v
        Compiled end nodes of each undirected edge; ``edge_geometry`` runs from u to v.
    edge_length_m
        Edge lengths (metres).
    edge_geometry
        Shapely LineStrings.
    edge_compound
        Gated-compound id of internal paths, -1 on public streets.
    indptr, indices, weights, arc_edge
        CSR adjacency with both directions of every edge (``weights`` in metres,
        ``arc_edge`` the undirected edge of each arc); :attr:`csr_graph` bundles them.
    """

    crs: CRS
    node_ids: np.ndarray
    node_xy: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    edge_geometry: np.ndarray
    edge_compound: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    arc_edge: np.ndarray
    edge_attrs: dict[str, np.ndarray] = field(default_factory=dict)
    graph_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(len(self.node_xy))

    @property
    def n_edges(self) -> int:
        """Number of undirected edges."""
        return int(len(self.edge_u))

    @cached_property
    def csr(self) -> sp.csr_matrix:
        """Adjacency as a scipy CSR matrix (metres), both directions."""
        return sp.csr_matrix((self.weights, self.indices, self.indptr),
                             shape=(self.n_nodes, self.n_nodes))

    @property
    def csr_graph(self) -> CsrGraph:
        """The CSR adjacency the graph searches take: ``(indptr, indices, weights, edge_ids)``."""
        return CsrGraph(self.indptr, self.indices, self.weights, self.arc_edge)

    @cached_property
    def csr_graph32(self) -> CsrGraph:
        """:attr:`csr_graph` with int32 ``indptr``/``indices`` (half the memory traffic of a
        search), cached on the network; the int64 graph itself when too large for int32.
        """
        if self.indices.size >= 2**31 - 1:
            return self.csr_graph
        return CsrGraph(self.indptr.astype(np.int32), self.indices.astype(np.int32),
                        self.weights, self.arc_edge)

    @cached_property
    def node_component(self) -> np.ndarray:
        """Connected-component label of every node (0 = largest)."""
        _, labels = connected_components(self.csr, directed=False)
        sizes = np.bincount(labels)
        rank = np.empty_like(sizes)
        rank[np.argsort(-sizes, kind="stable")] = np.arange(len(sizes))
        return rank[labels]

    @property
    def n_components(self) -> int:
        """Number of connected components."""
        return int(self.node_component.max()) + 1 if self.n_nodes else 0

    @cached_property
    def edge_tree(self) -> shapely.STRtree:
        """Spatial index over edge geometries."""
        return shapely.STRtree(self.edge_geometry)

    @cached_property
    def compound_ids(self) -> np.ndarray:
        """Sorted ids of the gated compounds that have internal paths."""
        return np.unique(self.edge_compound[self.edge_compound >= 0])

    @cached_property
    def segment_index(self) -> SegmentIndex:
        """Grid index over edge segments, one layer per compound (walls hold in queries).

        Group 0 holds public streets, group k + 1 the internal paths of
        ``compound_ids[k]``.
        """
        group = np.where(self.edge_compound >= 0,
                         np.searchsorted(self.compound_ids, self.edge_compound) + 1, 0)
        return build_segment_index(self.edge_geometry, group)

    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of the nodes."""
        lo = self.node_xy.min(axis=0)
        hi = self.node_xy.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _arcs_to_csr(
    n_nodes: int, edge_u: np.ndarray, edge_v: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    m = len(edge_u)
    tail = np.concatenate([edge_u, edge_v])
    head = np.concatenate([edge_v, edge_u])
    w = np.concatenate([length, length])
    eid = np.concatenate([np.arange(m), np.arange(m)])
    order = np.lexsort((head, tail))
    tail, head, w, eid = tail[order], head[order], w[order], eid[order]
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(tail, minlength=n_nodes), out=indptr[1:])
    return indptr, head.astype(np.int64), w.astype(np.float64), eid.astype(np.int64)


def edge_shape_key(geom: Any, iu: int, iv: int) -> bytes:
    """The line's vertices (mm) in a direction-independent order (``iu``, ``iv``: end nodes).

    Two directions of one street (osmnx stores both, the geometry reversed) share it; two
    different streets between the same nodes with equal length (the halves of a
    roundabout, the two carriageways around a square) do not, so neither is lost.
    """
    xy = np.round(shapely.get_coordinates(geom), 3)
    if iu == iv:  # a loop: either direction
        return min(xy.tobytes(), xy[::-1].tobytes())
    return (xy[::-1] if iu > iv else xy).tobytes()


def _refuse_raw_osmnx(G: nx.MultiDiGraph) -> None:
    """An osmnx graph must go through :func:`graph_from_osmnx` (walkable filter, two-way).

    osmnx marks its graphs with ``G.graph["created_with"] = "OSMnx ..."``; geosvc's graphs
    carry ``length_m`` on every edge.  A graph with the first and not the second skipped
    the conversion (motorways and private roads would stay in, one-way streets one-way).
    """
    made_by = str(G.graph.get("created_with", ""))
    if not made_by.lower().startswith("osmnx") or G.number_of_edges() == 0:
        return
    _, _, first = next(iter(G.edges(data=True)))
    if "length_m" not in first:
        raise InputError(
            f"this graph comes straight from {made_by} (no 'length_m' on its edges): it has "
            "not been made walkable (motorways, private roads and one-way streets stay as "
            "they are); convert it first: "
            "compile_network(geosvc.network.graph_from_osmnx(G))")


def graph_edge_key(data: dict[str, Any], iu: int, iv: int, node_xy: np.ndarray
                   ) -> tuple[Any, float, tuple[int, int, float, bytes]]:
    """A graph edge's geometry, length and the key :func:`compile_network` merges it by.

    Both directions of one street share the key (ends, length to the millimetre, the
    direction-free shape); ``iu``/``iv`` are the end nodes' positions in ``node_xy``.
    """
    geom = data.get("geometry")
    if geom is None:
        geom = shapely.LineString([node_xy[iu], node_xy[iv]])
    length = float(data.get("length_m", data.get("length", geom.length)))
    return geom, length, (min(iu, iv), max(iu, iv), round(length, 3),
                          edge_shape_key(geom, iu, iv))


def compile_network(G: nx.MultiDiGraph, *, edge_attrs: tuple[str, ...] = ("highway", "name")
                    ) -> CompiledNetwork:
    """Compile a projected street graph into arrays (done once, reused by every query).

    Each pair of opposite directed edges becomes one undirected edge; a one-way edge is
    walkable both ways.  Edges need ``geometry`` or get a straight line; ``length_m``
    (else ``length``, else the geometry's length) is the weight.

    Raises
    ------
    InputError
        When ``G`` is an osmnx graph that did not go through :func:`graph_from_osmnx`.
    CRSError
        When the graph is not in a projected CRS.
    NetworkError
        When the graph has no edges.
    """
    _refuse_raw_osmnx(G)
    crs_in = G.graph.get("crs")
    if crs_in is None:
        raise CRSError("graph has no G.graph['crs']; build it with geosvc.network readers")
    crs = CRS.from_user_input(crs_in)
    if not crs.is_projected:
        raise CRSError(
            f"graph CRS {crs.to_string()} is geographic (degrees); project it first "
            "(geosvc.network.graph_from_osmnx(G) picks the local UTM zone)"
        )
    if G.number_of_edges() == 0:
        raise NetworkError("the street network has no edges")
    node_ids = np.array(list(G.nodes), dtype=object)
    try:
        node_ids = node_ids.astype(np.int64)
    except (TypeError, ValueError):
        pass
    index = {n: i for i, n in enumerate(G.nodes)}
    node_xy = np.array([(d["x"], d["y"]) for _, d in G.nodes(data=True)], dtype=np.float64)
    us, vs, geoms, lens, comps = [], [], [], [], []
    extra: dict[str, list[Any]] = {a: [] for a in edge_attrs}
    seen: set[tuple[int, int, float, bytes]] = set()
    for u, v, d in G.edges(data=True):
        iu, iv = index[u], index[v]
        geom, length, key = graph_edge_key(d, iu, iv, node_xy)
        if key in seen:  # the opposite direction of an edge already taken
            continue
        seen.add(key)
        us.append(iu)
        vs.append(iv)
        geoms.append(geom)
        lens.append(length)
        comps.append(int(d.get("compound_id", -1)))
        for a in edge_attrs:
            extra[a].append(d.get(a))
    edge_u = np.array(us, dtype=np.int64)
    edge_v = np.array(vs, dtype=np.int64)
    length_m = np.array(lens, dtype=np.float64)
    if np.any(length_m <= 0):
        length_m = np.maximum(length_m, 1e-6)
    indptr, indices, weights, arc_edge = _arcs_to_csr(len(node_xy), edge_u, edge_v, length_m)
    return CompiledNetwork(
        crs=crs,
        node_ids=node_ids,
        node_xy=node_xy,
        edge_u=edge_u,
        edge_v=edge_v,
        edge_length_m=length_m,
        edge_geometry=np.array(geoms, dtype=object),
        edge_compound=np.array(comps, dtype=np.int64),
        indptr=indptr,
        indices=indices,
        weights=weights,
        arc_edge=arc_edge,
        edge_attrs={a: np.array(vals, dtype=object) for a, vals in extra.items()},
        graph_attrs={k: v for k, v in G.graph.items() if k != "crs"},
    )


def from_arrays(
    node_xy: np.ndarray,
    edge_u: np.ndarray,
    edge_v: np.ndarray,
    *,
    crs: Any,
    edge_geometry: np.ndarray | None = None,
    edge_compound: np.ndarray | None = None,
    node_ids: np.ndarray | None = None,
    edge_attrs: dict[str, np.ndarray] | None = None,
    graph_attrs: dict[str, Any] | None = None,
) -> CompiledNetwork:
    """Compile a network straight from arrays (readers, generated cases, benchmarks).

    Straight edges are drawn between nodes when ``edge_geometry`` is not given; lengths
    are the geometries' lengths (measured on their own coordinates).  ``node_ids`` default
    to ``0..n-1``; ``edge_attrs`` (e.g. ``highway``, ``name``) and ``graph_attrs`` (e.g.
    ``source``, the reader's ``network_report``) are carried along.
    """
    node_xy = np.asarray(node_xy, dtype=np.float64)
    edge_u = np.asarray(edge_u, dtype=np.int64)
    edge_v = np.asarray(edge_v, dtype=np.int64)
    if edge_geometry is None:
        coords = np.stack([node_xy[edge_u], node_xy[edge_v]], axis=1)
        edge_geometry = np.asarray(shapely.linestrings(coords), dtype=object)
    length_m = np.maximum(shapely.length(edge_geometry), 1e-6)
    if edge_compound is None:
        edge_compound = np.full(len(edge_u), -1, dtype=np.int64)
    indptr, indices, weights, arc_edge = _arcs_to_csr(len(node_xy), edge_u, edge_v, length_m)
    crs_obj = CRS.from_user_input(crs)
    if not crs_obj.is_projected:
        raise CRSError(f"CRS {crs_obj.to_string()} is geographic; give a projected CRS")
    return CompiledNetwork(
        crs=crs_obj,
        node_ids=(np.arange(len(node_xy), dtype=np.int64) if node_ids is None
                  else np.asarray(node_ids)),
        node_xy=node_xy, edge_u=edge_u, edge_v=edge_v, edge_length_m=length_m,
        edge_geometry=np.asarray(edge_geometry, dtype=object),
        edge_compound=np.asarray(edge_compound, dtype=np.int64),
        indptr=indptr, indices=indices, weights=weights, arc_edge=arc_edge,
        edge_attrs=dict(edge_attrs or {}), graph_attrs=dict(graph_attrs or {}),
    )


def street_count(net: CompiledNetwork) -> np.ndarray:
    """Physical streets meeting at every node (osmnx's ``street_count`` rule).

    Each edge counts once at both ends; the self-loops at a node count twice, once per node
    however many there are (as :func:`osmnx.stats.count_streets_per_node` does).
    """
    n = net.n_nodes
    loop = net.edge_u == net.edge_v
    count = (np.bincount(net.edge_u[~loop], minlength=n)
             + np.bincount(net.edge_v[~loop], minlength=n))
    has_loop = np.zeros(n, dtype=bool)
    has_loop[net.edge_u[loop]] = True
    return count + 2 * has_loop


def to_graph(net: CompiledNetwork) -> nx.MultiDiGraph:
    """Turn a compiled network back into a two-way osmnx-style MultiDiGraph.

    Nodes carry ``x``, ``y``, ``component`` and ``street_count`` (so
    :func:`osmnx.stats.basic_stats` works on it); every street is two directed edges with
    ``geometry``, ``length`` and ``length_m`` (metres), ``compound_id``, ``osmid`` (the
    compiled edge index unless the edge attributes kept the OSM way id) and the compiled
    edge attributes (``highway``, ``name``).
    """
    G = nx.MultiDiGraph()
    G.graph.update(net.graph_attrs)
    epsg = net.crs.to_epsg()
    G.graph["crs"] = f"EPSG:{epsg}" if epsg is not None else net.crs.to_string()
    ids = net.node_ids.tolist()
    G.add_nodes_from((n, {"x": float(x), "y": float(y)}) for n, (x, y) in zip(ids, net.node_xy,
                                                                                 strict=True))
    comp = net.node_component
    nx.set_node_attributes(G, dict(zip(ids, comp.tolist(), strict=True)), "component")
    nx.set_node_attributes(G, dict(zip(ids, street_count(net).tolist(), strict=True)),
                           "street_count")
    G.graph["n_components"] = net.n_components
    rev = shapely.reverse(net.edge_geometry)
    for e in range(net.n_edges):
        u, v = ids[net.edge_u[e]], ids[net.edge_v[e]]
        # osmnx pairs the two directions of a street by osmid: the edge index unless the
        # compiled attributes kept the OSM way id
        base = {"osmid": e, **{a: vals[e] for a, vals in net.edge_attrs.items()
                               if vals[e] is not None}}
        length = float(net.edge_length_m[e])
        cid = int(net.edge_compound[e])
        G.add_edge(u, v, **base, geometry=net.edge_geometry[e], length_m=length, length=length,
                   compound_id=cid)
        G.add_edge(v, u, **base, geometry=rev[e], length_m=length, length=length,
                   compound_id=cid)
    return G


def points_along_edges(net: CompiledNetwork, spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``spacing_m`` along every edge (at least each edge's midpoint).

    Returns
    -------
    xy, edge
        ``(n, 2)`` coordinates and the edge each point lies on.
    """
    n_per = np.maximum(1, np.floor(net.edge_length_m / spacing_m).astype(np.int64))
    edge = np.repeat(np.arange(net.n_edges), n_per)
    k = np.arange(len(edge)) - np.repeat(np.cumsum(n_per) - n_per, n_per)
    frac = (k + 0.5) / np.repeat(n_per, n_per)
    pts = shapely.line_interpolate_point(net.edge_geometry[edge], frac, normalized=True)
    return shapely.get_coordinates(pts), edge


def subset_edges(net: CompiledNetwork, keep_edge: np.ndarray, *,
                 graph_attrs: dict[str, Any] | None = None) -> CompiledNetwork:
    """A new network with only the edges ``keep_edge`` (and the nodes they use)."""
    keep_edge = np.asarray(keep_edge, dtype=bool)
    used = np.zeros(net.n_nodes, dtype=bool)
    used[net.edge_u[keep_edge]] = True
    used[net.edge_v[keep_edge]] = True
    new_id = np.cumsum(used) - 1
    return from_arrays(
        net.node_xy[used], new_id[net.edge_u[keep_edge]], new_id[net.edge_v[keep_edge]],
        crs=net.crs, edge_geometry=net.edge_geometry[keep_edge],
        edge_compound=net.edge_compound[keep_edge], node_ids=net.node_ids[used],
        edge_attrs={k: v[keep_edge] for k, v in net.edge_attrs.items()},
        graph_attrs=dict(net.graph_attrs if graph_attrs is None else graph_attrs))
