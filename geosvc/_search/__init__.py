"""Compiled graph search on CSR street networks (private to geosvc).

The array-level compute core behind nearest-facility times, service-area polygons and the
candidate x demand coverage relation.  Everything works on plain numpy arrays; a
:class:`~geosvc.network.CompiledNetwork` holds them once (``net.csr_graph``, and the int32
copy ``net.csr_graph32``) and every search reuses them.

Modules
-------
``_graph``
    :class:`CsrGraph`, :func:`csr_from_edges` (edge list -> CSR) and :func:`anchor_seeds`
    (points on edges -> search seeds).
``_dijkstra``
    The searches: :func:`bounded_dijkstra_many` (many bounded searches in parallel,
    sparse :class:`SearchResult`) and :func:`multi_source_dijkstra` (nearest seed,
    :class:`NearestSeed`).
``_heap``
    The 4-ary min-heap with decrease-key every search uses.
``_rounds``
    The parallel round driver with per-thread arenas that the many-search kernels share
    (also :mod:`geosvc.access._coverage_kernel`, the coverage-pair kernel beside its user).
``_validate``
    Input checks (one-line :class:`~geosvc._errors.InputError` naming array and position).

Graph representation
--------------------
An undirected walking network is stored as a *directed* CSR adjacency holding both
directions of every edge (:class:`CsrGraph`): ``indptr`` (``n_nodes + 1``; the arcs leaving
node ``x`` are ``indptr[x]:indptr[x + 1]``), ``indices`` (int32 or int64 neighbour per
arc), ``weights`` (float64 arc cost in metres, finite and ``> 0``) and ``edge_ids`` (the
undirected edge of each arc; edge ``e`` joins ``edge_u[e]`` and ``edge_v[e]`` and is
``edge_len[e]`` long).

A *source* is a point on an edge, so every search starts from one or more
``(node, initial_distance)`` seeds.  Search results are sparse and CSR-like
(:class:`SearchResult`): search ``s`` reached ``nodes[ptr[s]:ptr[s + 1]]`` (sorted by node
id) at ``dist[ptr[s]:ptr[s + 1]]``.  Memory is proportional to the reached sets, never
``n_searches x n_nodes``.

All kernels are deterministic: their output depends only on their input, not on the
number of numba threads or on scheduling.

Algorithms
----------
Dijkstra with a 4-ary min-heap with decrease-key (int32 slots, so at most 2**31 - 1
nodes).  ``multi_source_dijkstra`` is one search from a super-source; the many-search
kernels run independent jobs in parallel rounds over ``numba.get_num_threads()`` threads
(see ``_rounds``).

Scratch memory of a many-search call is at most about ``T x n x 32`` bytes plus arenas of
``T x max(n, 65536) x 16`` bytes (``T`` threads, ``n`` nodes, edges or demand points).
Concurrent calls from several Python threads need a thread-safe numba threading layer
(``omp`` or ``tbb``; ``workqueue`` aborts on concurrent parallel launches).
"""

from __future__ import annotations

from geosvc._search._dijkstra import (
    NearestSeed,
    SearchResult,
    bounded_dijkstra_many,
    multi_source_dijkstra,
)
from geosvc._search._graph import CsrGraph, anchor_seeds, csr_from_edges

__all__ = [
    "CsrGraph",
    "NearestSeed",
    "SearchResult",
    "anchor_seeds",
    "bounded_dijkstra_many",
    "csr_from_edges",
    "multi_source_dijkstra",
]
