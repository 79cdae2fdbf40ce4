"""Sparse source x target pairs within a network distance (bounded compiled searches)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from geosvc import resources
from geosvc._schema import covered
from geosvc._search import anchor_seeds, bounded_dijkstra_many
from geosvc.access._coverage_kernel import coverage_pairs
from geosvc.access._snap import Anchors
from geosvc.network import CompiledNetwork

__all__ = ["pairs_within", "coverage_matrix", "coverage_relation", "Relation",
           "RELATION_BYTES_PER_PAIR", "mean_pairs_per_source"]

#: Resident bytes one kept pair costs while the relation is built and solved: its int32
#: column index (4), a second copy for the demand-merging and ranking steps (4), and the
#: solver's working copies (~8).  Used to size chunks and to refuse what cannot fit.
RELATION_BYTES_PER_PAIR = 16
#: Bytes one pair costs inside one chunk's compiled search (arena, id, distance, filtering).
_CHUNK_BYTES_PER_PAIR = 64
#: Pairs one chunk aims at (smaller when the memory budget is tight).
_CHUNK_PAIRS = 4_000_000
#: Candidates in the first chunk, which measures the pairs per candidate.
_FIRST_CHUNK = 64


def pairs_within(
    net: CompiledNetwork, sources: Anchors, targets: Anchors, limit_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (source, target) pairs whose edge-based network distance is ``<= limit_m``.

    One bounded search per source runs in compiled code with sparse output; distances
    include both access legs and partial edges, exactly as :func:`nearest_facility`.
    Sources or targets that are not snapped take part in no pair.

    Sources are searched in spatial (Z-curve) order so that consecutive searches share
    cached memory; the result does not depend on it.

    Returns
    -------
    source, target, distance_m
        Parallel arrays (indices into ``sources`` and ``targets``), sorted by source, then
        by the target's place in edge order (ascending index for targets sorted by edge).
    """
    s_edge = np.where(sources.ok, sources.edge, -1)
    t_edge = np.where(targets.ok, targets.edge, -1)
    s_off = np.nan_to_num(sources.offset_m)
    s_acc = np.nan_to_num(sources.access_m)
    seed_ptr, seed_nodes, seed_dist = anchor_seeds(
        s_edge, s_off, s_acc, net.edge_u, net.edge_v, net.edge_length_m)
    seq = spatial_order(sources.snapped_xy, max(float(limit_m), 1.0) / 8.0)
    g = net.csr_graph
    res = bounded_dijkstra_many(g.indptr, g.indices, g.weights, seed_ptr, seed_nodes,
                                seed_dist, float(limit_m), sequence=seq)
    pairs = coverage_pairs(
        g.indptr, g.indices, g.weights, g.edge_ids, res.ptr, res.nodes, res.dist,
        float(limit_m), net.edge_u, net.edge_v, net.edge_length_m,
        cand_edge=s_edge, cand_offset_m=s_off, cand_access_m=s_acc,
        demand_edge=t_edge, demand_offset_m=np.nan_to_num(targets.offset_m),
        demand_access_m=np.nan_to_num(targets.access_m), sequence=seq)
    return (np.asarray(pairs.cand, dtype=np.int64), np.asarray(pairs.demand, dtype=np.int64),
            np.asarray(pairs.dist, dtype=np.float64))


def _spread_bits(v: np.ndarray) -> np.ndarray:
    """Interleave zeros between the low 32 bits of ``v`` (uint64), for a Z-curve key."""
    v = v & np.uint64(0xFFFFFFFF)
    for shift, mask in ((16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF),
                        (4, 0x0F0F0F0F0F0F0F0F), (2, 0x3333333333333333),
                        (1, 0x5555555555555555)):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


def spatial_order(xy: np.ndarray, cell_m: float) -> np.ndarray:
    """Indices of ``xy`` in Z-curve (Morton) order of ``cell_m`` cells; NaN points last."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(xy) == 0:
        return np.zeros(0, dtype=np.int64)
    ok = np.isfinite(xy).all(axis=1)
    base = xy[ok].min(axis=0) if ok.any() else np.zeros(2)
    ij = np.zeros((len(xy), 2), dtype=np.uint64)
    ij[ok] = np.clip(np.floor((xy[ok] - base) / cell_m), 0, 2**32 - 1).astype(np.uint64)
    key = _spread_bits(ij[:, 0]) | (_spread_bits(ij[:, 1]) << np.uint64(1))
    key[~ok] = np.iinfo(np.uint64).max
    return np.argsort(key, kind="stable").astype(np.int64)


def coverage_matrix(
    net: CompiledNetwork, sources: Anchors, targets: Anchors, limit_m: float
) -> sp.csr_matrix:
    """Boolean sparse matrix (sources x targets): True where within ``limit_m``."""
    s, t, _ = pairs_within(net, sources, targets, limit_m)
    data = np.ones(len(s), dtype=bool)
    m = sp.csr_matrix((data, (s, t)), shape=(len(sources), len(targets)))
    m.sum_duplicates()
    return m


class Relation(NamedTuple):
    """A candidate x demand relation built chunk by chunk (see :func:`coverage_relation`).

    ``covers`` is boolean CSR (int32 column indices, sorted rows): within ``limit_m``.
    ``costs`` is float64 CSR of the walking distance of every pair within ``cost_limit_m``
    (``None`` unless asked for).  ``chunks`` is the number of compiled calls.
    """

    covers: sp.csr_array
    costs: sp.csr_array | None
    chunks: int


def coverage_relation(
    net: CompiledNetwork,
    sources: Anchors,
    targets: Anchors,
    limit_m: float,
    *,
    cost_limit_m: float | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> Relation:
    """Which sources cover which targets within ``limit_m``, with bounded memory.

    The same compiled searches as :func:`pairs_within`, run over chunks of sources whose
    size follows the memory budget (:func:`geosvc.resources.available_bytes`): the first
    chunk measures the pairs per source, later chunks aim at a fixed number of pairs.  Only
    the int32 column index of each covering pair is kept (4 bytes a pair instead of the 24
    of ``pairs_within``); distances are kept only when ``cost_limit_m`` asks for them
    (p-median), as float64.

    Parameters
    ----------
    net, sources, targets
        The network and the snapped sources (candidates) and targets (demand).
    limit_m
        Coverage reach; a pair is covering by :func:`geosvc._schema.covered` (the rule of
        the households' coverage).
    cost_limit_m
        Also return the distances of every pair within this (``>= limit_m``) reach.
    on_chunk
        Called with (sources done, sources total) after each chunk (progress).

    Returns
    -------
    Relation
    """
    n_src, n_tgt = len(sources.edge), len(targets.edge)
    search_m = float(limit_m if cost_limit_m is None else max(cost_limit_m, limit_m))
    ptr = np.zeros(n_src + 1, dtype=np.int64)
    cols: list[np.ndarray] = []
    cost_cols: list[np.ndarray] = []
    cost_vals: list[np.ndarray] = []
    cost_counts = np.zeros(n_src, dtype=np.int64)
    start, chunks, size = 0, 0, min(_FIRST_CHUNK, n_src)
    while start < n_src:
        idx = np.arange(start, min(n_src, start + size))
        cs, ds, dist = pairs_within(net, sources.subset(idx), targets, search_m)
        within = covered(dist, limit_m)
        ptr[start + 1:start + 1 + idx.size] = np.bincount(cs[within], minlength=idx.size)
        cols.append(ds[within].astype(np.int32))
        if cost_limit_m is not None:
            keep = covered(dist, cost_limit_m)
            cost_counts[idx] = np.bincount(cs[keep], minlength=idx.size)
            cost_cols.append(ds[keep].astype(np.int32))
            cost_vals.append(dist[keep])
        chunks += 1
        start += idx.size
        per_source = max(len(dist) / max(idx.size, 1), 1.0)
        budget = resources.available_bytes(share=0.25) // _CHUNK_BYTES_PER_PAIR
        size = int(max(1, min(_CHUNK_PAIRS, budget) // per_source))
        del cs, ds, dist, within
        if on_chunk is not None:
            on_chunk(start, n_src)
    np.cumsum(ptr, out=ptr)
    covers = sp.csr_array((np.ones(int(ptr[-1]), dtype=bool), _concat(cols), ptr),
                          shape=(n_src, n_tgt))
    covers.has_sorted_indices = True
    costs = None
    if cost_limit_m is not None:
        cptr = np.zeros(n_src + 1, dtype=np.int64)
        np.cumsum(cost_counts, out=cptr[1:])
        costs = sp.csr_array((np.concatenate(cost_vals) if cost_vals else np.zeros(0),
                              _concat(cost_cols), cptr), shape=(n_src, n_tgt))
        costs.has_sorted_indices = True
    return Relation(covers, costs, chunks)


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=np.int32)
    out = np.concatenate(parts) if len(parts) > 1 else parts[0]
    parts.clear()
    return out


def mean_pairs_per_source(net: CompiledNetwork, sources: Anchors, targets: Anchors,
                          *limits_m: float, sample: int = 256, seed: int = 0) -> list[float]:
    """Pairs per source within each of ``limits_m``, from one search of a random sample.

    The sample of ``sample`` sources is searched once, to the largest limit; used to
    project a relation's size before building it (memory planning).
    """
    n_src = len(sources.edge)
    if n_src == 0 or not limits_m:
        return [0.0] * len(limits_m)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n_src, size=min(sample, n_src), replace=False))
    _, _, dist = pairs_within(net, sources.subset(idx), targets, max(limits_m))
    return [float(np.count_nonzero(covered(dist, lim))) / idx.size for lim in limits_m]
