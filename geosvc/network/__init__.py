"""Street networks: readers, noding, projection, travel times and the compiled arrays.

The networkx ``MultiDiGraph`` is the interchange model (osmnx-compatible: ``G.graph["crs"]``,
node ``x``/``y``, edge ``length``), always projected to a metric CRS and two-way; it
compiles once into a :class:`CompiledNetwork` that every kernel reuses.
"""

from __future__ import annotations

from geosvc._search import CsrGraph
from geosvc.network._build import graph_from_frames, local_metric_crs, report_components
from geosvc.network._compiled import (
    CompiledNetwork,
    compile_network,
    edge_shape_key,
    from_arrays,
    graph_edge_key,
    points_along_edges,
    street_count,
    subset_edges,
    to_graph,
)
from geosvc.network._components import (
    COMPONENT_MODES,
    DEFAULT_MIN_COMPONENT_NODES,
    RUN_MIN_COMPONENT_NODES,
    keep_components,
)
from geosvc.network._connect import CONNECTIVITY_MODES, compile_lines, decide_connectivity
from geosvc.network._lines import node_lines
from geosvc.network._readers import (
    graph_from_graphml,
    graph_from_lines,
    graph_from_osmnx,
    graph_from_pbf,
    graph_from_xml,
    network_from_lines,
    network_from_xml,
    read_graph,
    read_network,
)
from geosvc.network._segments import SegmentIndex, build_segment_index, nearest_segments
from geosvc.network._times import add_edge_times

__all__ = [
    "COMPONENT_MODES",
    "CONNECTIVITY_MODES",
    "DEFAULT_MIN_COMPONENT_NODES",
    "RUN_MIN_COMPONENT_NODES",
    "CompiledNetwork",
    "CsrGraph",
    "SegmentIndex",
    "build_segment_index",
    "nearest_segments",
    "compile_lines",
    "decide_connectivity",
    "keep_components",
    "network_from_lines",
    "network_from_xml",
    "read_network",
    "subset_edges",
    "street_count",
    "add_edge_times",
    "compile_network",
    "edge_shape_key",
    "graph_edge_key",
    "from_arrays",
    "graph_from_frames",
    "graph_from_graphml",
    "graph_from_lines",
    "graph_from_osmnx",
    "graph_from_pbf",
    "graph_from_xml",
    "local_metric_crs",
    "node_lines",
    "points_along_edges",
    "read_graph",
    "report_components",
    "to_graph",
]
