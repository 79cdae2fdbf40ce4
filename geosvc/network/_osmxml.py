"""OpenStreetMap XML read by geosvc itself, so clipped extracts work.

Extracts cut by a bounding box or polygon (osmium, osmconvert, JOSM, Overpass) hold ways that
reference nodes outside the cut.  osmnx refuses such files; here each way is cut into the runs
of nodes that are present, and the reader reports how many ways were cut and how many way
segments were lost (their length beyond the cut is unknown: the missing nodes carry the
coordinates).

Topology comes from OSM node ids: ways join where they share a node, nowhere else (a
footbridge crossing a street without a shared node stays apart).  Each run is split at its
nodes shared with other ways (or visited twice), like osmnx's simplified graph.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from geosvc._errors import InputError, NetworkError

__all__ = ["OsmWays", "read_osm_ways", "way_pieces"]

log = logging.getLogger(__name__)

#: Way tags kept as edge attributes (plus the walkability tags ``foot`` and ``access``).
WAY_TAGS = ("highway", "name", "bridge", "tunnel", "layer", "foot", "access", "area")


@dataclass
class OsmWays:
    """Nodes and highway ways of an OSM XML file, as arrays."""

    node_id: np.ndarray  # sorted
    node_lonlat: np.ndarray
    way_id: np.ndarray
    way_tags: pd.DataFrame
    ref_way: np.ndarray  # way index of every node reference, in way order
    ref_node: np.ndarray
    counts: dict[str, Any] = field(default_factory=dict)


def _open(path: Path) -> IO[bytes]:
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if name.endswith(".bz2"):
        return bz2.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _elements(path: Path) -> Iterator[ET.Element]:
    from geosvc.progress import reading

    with _open(path) as fh, reading(fh, path=path, desc=f"reading {path.name}") as src:
        for _, elem in ET.iterparse(src, events=("end",)):
            if elem.tag in ("node", "way"):
                yield elem
            elif elem.tag == "relation":
                elem.clear()


def read_osm_ways(path: Path) -> OsmWays:
    """Parse nodes and ``highway`` ways (XML parsing is the only per-element Python work)."""
    nid: list[int] = []
    lon: list[float] = []
    lat: list[float] = []
    wid: list[int] = []
    tags: list[dict[str, str]] = []
    ref_way: list[int] = []
    ref_node: list[int] = []
    try:
        for elem in _elements(path):
            if elem.tag == "node":
                nid.append(int(elem.attrib["id"]))
                lon.append(float(elem.attrib["lon"]))
                lat.append(float(elem.attrib["lat"]))
            else:
                t = {c.attrib["k"]: c.attrib["v"] for c in elem if c.tag == "tag"}
                if "highway" in t:
                    refs = [int(c.attrib["ref"]) for c in elem if c.tag == "nd"]
                    ref_way.extend([len(wid)] * len(refs))
                    ref_node.extend(refs)
                    wid.append(int(elem.attrib["id"]))
                    tags.append({k: t[k] for k in WAY_TAGS if k in t})
            elem.clear()
    except (ET.ParseError, KeyError, ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable OpenStreetMap XML file ({exc})") from exc
    if not wid:
        raise NetworkError(f"{path}: no street (highway) ways in the file")
    node_id = np.asarray(nid, dtype=np.int64)
    order = np.argsort(node_id, kind="stable")
    lonlat = np.column_stack([np.asarray(lon), np.asarray(lat)])[order]
    frame = pd.DataFrame.from_records(tags, columns=list(WAY_TAGS))
    return OsmWays(node_id[order], lonlat, np.asarray(wid, dtype=np.int64), frame,
                   np.asarray(ref_way, dtype=np.int64), np.asarray(ref_node, dtype=np.int64))


def way_pieces(ways: OsmWays, keep_way: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Cut the kept ways into runs of present nodes and split runs at shared nodes.

    Returns
    -------
    piece_way, piece_ptr, piece_nodes, counts
        Way index of each piece; CSR pointer into ``piece_nodes`` (node positions in
        ``ways.node_id``); counts ``ways``, ``ways_cut``, ``ways_dropped``,
        ``segments_lost``, ``missing_node_refs``.
    """
    sel = keep_way[ways.ref_way]
    rway, rnode = ways.ref_way[sel], ways.ref_node[sel]
    # repeated consecutive references (a sloppy edit) are one node
    rep = np.r_[False, (rway[1:] == rway[:-1]) & (rnode[1:] == rnode[:-1])]
    rway, rnode = rway[~rep], rnode[~rep]
    pos = np.searchsorted(ways.node_id, rnode)
    pos = np.minimum(pos, max(len(ways.node_id) - 1, 0))
    present = (len(ways.node_id) > 0) & (ways.node_id[pos] == rnode)
    new_way = np.r_[True, rway[1:] != rway[:-1]]
    seg_same_way = ~new_way[1:]
    seg_lost = seg_same_way & ~(present[1:] & present[:-1])
    clipped_ways = np.unique(rway[~present])
    # runs: maximal stretches of present refs inside one way
    run_start = present & (new_way | np.r_[True, ~present[:-1]])
    run_id = np.cumsum(run_start) - 1
    rway_p, pos_p, run_p = rway[present], pos[present], run_id[present]
    run_len = np.bincount(run_p, minlength=int(run_id.max()) + 1 if len(run_id) else 0)
    ok = run_len[run_p] >= 2
    rway_p, pos_p, run_p = rway_p[ok], pos_p[ok], run_p[ok]
    n_ways = int(keep_way.sum())
    kept_ways = np.unique(rway_p)
    counts = {"ways": n_ways, "ways_cut": int(len(clipped_ways)),
              "ways_dropped": int(n_ways - len(kept_ways)),
              "segments_lost": int(seg_lost.sum()), "missing_node_refs": int((~present).sum())}
    if len(rway_p) == 0:
        return (np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64),
                np.zeros(0, dtype=np.int64), counts)
    # split at nodes used more than once (by another way, or twice by this one)
    uses = np.bincount(pos_p, minlength=len(ways.node_id))
    first = np.r_[True, run_p[1:] != run_p[:-1]]
    last = np.r_[run_p[1:] != run_p[:-1], True]
    brk = (uses[pos_p] >= 2) & ~first & ~last
    cum = np.cumsum(brk | first)  # piece number (global, 1-based) of each ref as a start
    piece_of = cum - 1
    # a break ref also ends the previous piece
    rec_piece = np.concatenate([piece_of, piece_of[brk] - 1])
    rec_order = np.concatenate([np.arange(len(pos_p)), np.flatnonzero(brk)])
    rec_node = np.concatenate([pos_p, pos_p[brk]])
    order = np.lexsort((rec_order, rec_piece))
    rec_piece, rec_node = rec_piece[order], rec_node[order]
    n_pieces = int(piece_of.max()) + 1
    ptr = np.zeros(n_pieces + 1, dtype=np.int64)
    np.cumsum(np.bincount(rec_piece, minlength=n_pieces), out=ptr[1:])
    piece_way = rway_p[first | brk]
    return piece_way, ptr, rec_node, counts
