"""Street networks: readers, noding, projection, travel times and the compiled arrays.

The networkx ``MultiDiGraph`` is the interchange model (osmnx-compatible: ``G.graph["crs"]``,
node ``x``/``y``, edge ``length``), always projected to a metric CRS and two-way; it
compiles once into a :class:`CompiledNetwork` that every kernel reuses.
"""

from __future__ import annotations

from geosvc.network._build import graph_from_frames, local_metric_crs, report_components
from geosvc.network._compiled import (
    CompiledNetwork,
    compile_network,
    from_arrays,
    points_along_edges,
    to_graph,
)
from geosvc.network._lines import node_lines
from geosvc.network._readers import (
    graph_from_graphml,
    graph_from_lines,
    graph_from_osmnx,
    graph_from_pbf,
    graph_from_xml,
    read_graph,
)
from geosvc.network._times import add_edge_times

__all__ = [
    "CompiledNetwork",
    "add_edge_times",
    "compile_network",
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
