"""Which network components to keep (fragments that would trap households)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from geosvc import diagnostics
from geosvc._errors import ConfigError
from geosvc.network._compiled import CompiledNetwork, subset_edges

__all__ = ["COMPONENT_MODES", "DEFAULT_MIN_COMPONENT_NODES", "RUN_MIN_COMPONENT_NODES",
           "keep_components"]

log = logging.getLogger(__name__)

COMPONENT_MODES = ("all", "largest")

#: Library readers keep every component unless asked otherwise.
DEFAULT_MIN_COMPONENT_NODES = 1
#: Runs (CLI, config, :func:`geosvc.pipeline.load_inputs`) drop fragments below this size.
#: Measured (README "Roads and connectivity"): of 20,000 points within 25 m of the main
#: network, 1.26% snapped to a fragment in Helsinki with no filter, 0.36% at 10 nodes, 0.01%
#: at 20, for 3.1% of the street length dropped (1.0% north of Bayreuth).
RUN_MIN_COMPONENT_NODES = 20
#: ... and only components with fewer than this share of the largest one's nodes are fragments.
FRAGMENT_SHARE = 0.01


def keep_components(net: CompiledNetwork, *, components: str = "all",
                    min_component_nodes: int = DEFAULT_MIN_COMPONENT_NODES,
                    source: str = "network") -> CompiledNetwork:
    """Drop fragments: keep every component, or only the largest, of at least a size.

    Households and facilities then snap only to the components kept, the way osmnx's
    ``truncate.largest_component`` does it for graphs.

    Parameters
    ----------
    net
        The compiled network.
    components
        ``"all"`` (keep every component of at least ``min_component_nodes`` nodes) or
        ``"largest"`` (only the largest).
    min_component_nodes
        Smallest component kept (nodes); 1 keeps everything.  Only components that also
        have fewer than 1% of the largest component's nodes are dropped (a small network,
        or a real piece of street cut off by an extract's edge, is not a fragment).
    source
        Name for messages.

    Returns
    -------
    CompiledNetwork
        The kept network; ``graph_attrs["components_report"]`` says what was dropped
        (components, nodes, edges, length).
    """
    mode = str(components).strip().lower()
    if mode not in COMPONENT_MODES:
        raise ConfigError(f"components = {components!r}: must be one of "
                          f"{', '.join(COMPONENT_MODES)}")
    if not isinstance(min_component_nodes, int | np.integer) or min_component_nodes < 1:
        raise ConfigError(f"min_component_nodes = {min_component_nodes!r}: must be a whole "
                          "number >= 1 (1 keeps every component)")
    label = net.node_component
    sizes = np.bincount(label)
    # a fragment is small in itself AND next to the main network (an extract cut off a
    # 6-node piece of real street from a 26-node network: that is not a mapping island)
    keep_comp = (sizes >= int(min_component_nodes)) | (sizes >= FRAGMENT_SHARE * sizes[0])
    if mode == "largest":
        keep_comp[1:] = False
    keep_comp[0] = True  # the largest always stays
    edge_keep = keep_comp[label[net.edge_u]]
    dropped = ~keep_comp
    report: dict[str, Any] = {
        "mode": mode, "min_component_nodes": int(min_component_nodes),
        "components": int(len(sizes)), "components_kept": int(keep_comp.sum()),
        "components_dropped": int(dropped.sum()),
        "nodes_dropped": int(sizes[dropped].sum()),
        "edges_dropped": int((~edge_keep).sum()),
        "length_dropped_km": round(float(net.edge_length_m[~edge_keep].sum()) / 1000.0, 3),
        "largest_nodes": int(sizes[0]) if len(sizes) else 0,
    }
    attrs = dict(net.graph_attrs, components_report=report)
    if not dropped.any():
        net.graph_attrs["components_report"] = report
        _warn_fragmented(net, source)
        return net
    log.info("%s: dropped %d of %d components (%d nodes, %d edges, %.2f km) below %d nodes%s",
             source, report["components_dropped"], report["components"],
             report["nodes_dropped"], report["edges_dropped"], report["length_dropped_km"],
             min_component_nodes, " or not the largest" if mode == "largest" else "")
    out = subset_edges(net, edge_keep, graph_attrs=attrs)
    _warn_fragmented(out, source)
    return out


def _warn_fragmented(net: CompiledNetwork, source: str) -> None:
    n = net.n_components
    if n > 1:
        sizes = np.bincount(net.node_component)
        diagnostics.warn(
            "network_components",
            f"{source}: {n} disconnected network components (largest {int(sizes[0])} nodes); "
            "kept, households on other components may be unreachable (components = "
            "'largest' or min_component_nodes drop fragments)",
            source=str(source), components=int(n), largest_nodes=int(sizes[0]))
