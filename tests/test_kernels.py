"""Tests for the compiled graph-search kernels (``geosvc._search``, the coverage-pair kernel
``geosvc.access._coverage_kernel`` and the test-only ``tests._reached_edges``).

Oracles are independent of the kernels: networkx Dijkstra on the same graph (with a
virtual super-source joined to the seeds by their initial distances), scipy's csgraph,
plain-Python brute force for reached edges, and, for coverage pairs, networkx on a graph
where candidate and demand points are inserted as real nodes splitting their edges.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import networkx as nx
import numba
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from geosvc._errors import InputError
from geosvc._search import (
    SearchResult,
    _dijkstra,
    _rounds,
    anchor_seeds,
    bounded_dijkstra_many,
    csr_from_edges,
    multi_source_dijkstra,
)
from geosvc._search._rounds import sort_ids
from geosvc.access import _coverage_kernel
from geosvc.access._coverage_kernel import CoveragePairs, coverage_pairs
from tests._reached_edges import ReachedEdges, reached_edges

TOL = 1e-9
Edges = tuple[int, NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]


# --------------------------------------------------------------------------------------
# graph factories
# --------------------------------------------------------------------------------------


def perturbed_grid(
    rows: int, cols: int, seed: int, *, drop: float = 0.1, permute: bool = True
) -> Edges:
    """Grid with lengths in [80, 120] m, a fraction of edges dropped, node ids shuffled."""
    rng = np.random.default_rng(seed)
    ids = np.arange(rows * cols).reshape(rows, cols)
    u = np.concatenate((ids[:, :-1].ravel(), ids[:-1, :].ravel()))
    v = np.concatenate((ids[:, 1:].ravel(), ids[1:, :].ravel()))
    keep = rng.random(u.size) >= drop
    u, v = u[keep], v[keep]
    if permute:
        perm = rng.permutation(rows * cols)
        u, v = perm[u], perm[v]
    return rows * cols, u.astype(np.int64), v.astype(np.int64), rng.uniform(80.0, 120.0, u.size)


def random_geometric(n: int, radius: float, seed: int) -> Edges:
    """Random geometric graph in a 1 km square; lengths = 1.0-1.3 x straight distance."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, 1000.0, size=(n, 2))
    i, j = np.triu_indices(n, k=1)
    d = np.hypot(*(xy[i] - xy[j]).T)
    close = d < radius
    u, v, d = i[close], j[close], d[close]
    return n, u.astype(np.int64), v.astype(np.int64), d * rng.uniform(1.0, 1.3, d.size) + 1e-3


def two_components_with_parallel(seed: int) -> Edges:
    """Two grids (one shuffled), parallel edges, a self-loop and three isolated nodes."""
    n1, u1, v1, l1 = perturbed_grid(6, 7, seed, drop=0.0, permute=False)
    n2, u2, v2, l2 = perturbed_grid(5, 5, seed + 1, drop=0.15)
    rng = np.random.default_rng(seed)
    par = rng.choice(u1.size, 8, replace=False)
    u = np.concatenate((u1, u2 + n1, u1[par], [3]))
    v = np.concatenate((v1, v2 + n1, v1[par], [3]))
    length = np.concatenate((l1, l2, l1[par] * rng.uniform(0.5, 1.5, par.size), [40.0]))
    return n1 + n2 + 3, u.astype(np.int64), v.astype(np.int64), length


GRAPHS = {
    "grid": lambda: perturbed_grid(12, 14, 1),
    "grid_sorted_ids": lambda: perturbed_grid(10, 10, 2, permute=False),
    "geometric": lambda: random_geometric(180, 130.0, 3),
    "two_components": lambda: two_components_with_parallel(4),
}


def to_nx(n: int, eu: NDArray[Any], ev: NDArray[Any], el: NDArray[Any]) -> nx.MultiGraph:
    graph = nx.MultiGraph()
    graph.add_nodes_from(range(n))
    for e, (a, b, length) in enumerate(zip(eu.tolist(), ev.tolist(), el.tolist(), strict=True)):
        graph.add_edge(a, b, key=e, length=length)
    return graph


def nx_seeded(graph: nx.MultiGraph, nodes: Any, dists: Any, limit: float) -> dict[int, float]:
    """networkx distances from a virtual super-source joined to the seeds."""
    src = "virtual-source"
    graph.add_node(src)
    try:
        for a, d in zip(list(nodes), list(dists), strict=True):
            graph.add_edge(src, int(a), length=float(d))
        cutoff = None if np.isinf(limit) else float(limit)
        out = nx.single_source_dijkstra_path_length(graph, src, cutoff=cutoff, weight="length")
    finally:
        graph.remove_node(src)
    out.pop(src)
    return out


def random_searches(
    n: int,
    eu: NDArray[np.int64],
    ev: NDArray[np.int64],
    el: NDArray[np.float64],
    n_search: int,
    seed: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Mix of edge anchors (two seeds), single node seeds and empty searches."""
    rng = np.random.default_rng(seed)
    ptr, nodes, dist = [0], [], []
    for _ in range(n_search):
        kind = rng.integers(0, 6)
        if kind <= 2 and eu.size:
            e = int(rng.integers(eu.size))
            off = rng.uniform(0, el[e])
            acc = rng.uniform(0, 30) if kind else 0.0
            nodes += [eu[e], ev[e]]
            dist += [acc + off, acc + el[e] - off]
        elif kind <= 4:
            k = int(rng.integers(1, 4))
            nodes += rng.integers(0, n, k).tolist()
            dist += rng.uniform(0, 50, k).tolist()
        ptr.append(len(nodes))
    return np.array(ptr), np.array(nodes, dtype=np.int64), np.array(dist, dtype=np.float64)


def assert_search_equal(res: SearchResult, s: int, expected: dict[int, float]) -> None:
    lo, hi = res.ptr[s], res.ptr[s + 1]
    nodes = res.nodes[lo:hi]
    assert np.all(np.diff(nodes) > 0), "nodes must be sorted by id and unique"
    assert set(nodes.tolist()) == set(expected), f"search {s}: reached sets differ"
    want = np.array([expected[x] for x in nodes.tolist()])
    np.testing.assert_allclose(res.dist[lo:hi], want, rtol=0, atol=TOL)


@contextmanager
def threads(k: int) -> Iterator[None]:
    old = numba.get_num_threads()
    numba.set_num_threads(k)
    try:
        yield
    finally:
        numba.set_num_threads(old)


# --------------------------------------------------------------------------------------
# csr_from_edges / anchor_seeds
# --------------------------------------------------------------------------------------


def test_csr_from_edges_layout_with_parallel_edges_and_self_loop() -> None:
    indptr, indices, weights, edge_ids = csr_from_edges(
        4, [0, 1, 0, 2], [1, 2, 1, 2], [5.0, 7.0, 3.0, 2.0]
    )
    assert indptr.tolist() == [0, 2, 5, 8, 8]
    assert indices.tolist() == [1, 1, 0, 0, 2, 1, 2, 2]
    assert edge_ids.tolist() == [0, 2, 0, 2, 1, 1, 3, 3]
    assert weights.tolist() == [5.0, 3.0, 5.0, 3.0, 7.0, 7.0, 2.0, 2.0]
    assert indptr.dtype == indices.dtype == edge_ids.dtype == np.int64
    assert weights.dtype == np.float64


def test_anchor_seeds_two_seeds_per_point_and_none_off_network() -> None:
    ptr, nodes, dist = anchor_seeds(
        [1, -1, 0], [2.0, 0.0, 5.0], [1.0, 3.0, 0.0], [0, 1], [1, 2], [5.0, 7.0]
    )
    assert ptr.tolist() == [0, 2, 2, 4]
    assert nodes.tolist() == [1, 2, 0, 1]
    assert dist.tolist() == [3.0, 6.0, 5.0, 0.0]


def test_anchor_seeds_rejects_offset_outside_edge() -> None:
    with pytest.raises(InputError, match=r"offset_m\[0\]"):
        anchor_seeds([0], [6.0], [0.0], [0], [1], [5.0])


# --------------------------------------------------------------------------------------
# bounded_dijkstra_many
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_bounded_matches_networkx(name: str) -> None:
    n, eu, ev, el = GRAPHS[name]()
    graph = to_nx(n, eu, ev, el)
    indptr, indices, weights, _ = csr_from_edges(n, eu, ev, el)
    seed_ptr, seed_nodes, seed_dist = random_searches(n, eu, ev, el, 60, seed=7)
    rng = np.random.default_rng(8)
    limits = rng.choice([0.0, 95.0, 250.0, 400.0, 1000.0, np.inf], size=60)
    res = bounded_dijkstra_many(indptr, indices, weights, seed_ptr, seed_nodes, seed_dist, limits)
    assert res.ptr.dtype == res.nodes.dtype == np.int64 and res.dist.dtype == np.float64
    assert res.ptr.shape == (61,) and res.ptr[-1] == res.nodes.size == res.dist.size
    for s in range(60):
        sl = slice(seed_ptr[s], seed_ptr[s + 1])
        expected = nx_seeded(graph, seed_nodes[sl], seed_dist[sl], limits[s])
        assert_search_equal(res, s, expected)
        assert np.all(res.dist[res.ptr[s] : res.ptr[s + 1]] <= limits[s])


def test_bounded_scalar_limit_and_int32_indices_give_identical_results() -> None:
    n, eu, ev, el = GRAPHS["geometric"]()
    indptr, indices, weights, _ = csr_from_edges(n, eu, ev, el)
    seeds = random_searches(n, eu, ev, el, 40, seed=9)
    a = bounded_dijkstra_many(indptr, indices, weights, *seeds, 300.0)
    b = bounded_dijkstra_many(indptr, indices.astype(np.int32), weights, *seeds, np.full(40, 300.0))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_bounded_hand_checked_path() -> None:
    # 0 -5- 1 -7- 2 -1- 3, seeds: search 0 from node 0; search 1 from 1 (at 2.0) and 3 (at 0.0)
    indptr, indices, weights, _ = csr_from_edges(4, [0, 1, 2], [1, 2, 3], [5.0, 7.0, 1.0])
    res = bounded_dijkstra_many(
        indptr, indices, weights, [0, 1, 3], [0, 1, 3], [0.0, 2.0, 0.0], 12.0
    )
    assert res.ptr.tolist() == [0, 3, 7]
    assert res.nodes.tolist() == [0, 1, 2, 0, 1, 2, 3]
    assert res.dist.tolist() == [0.0, 5.0, 12.0, 7.0, 2.0, 1.0, 0.0]


def test_bounded_limit_zero_keeps_only_zero_distance_seeds() -> None:
    n, eu, ev, el = GRAPHS["grid"]()
    indptr, indices, weights, _ = csr_from_edges(n, eu, ev, el)
    res = bounded_dijkstra_many(
        indptr, indices, weights, [0, 3, 4], [5, 9, 5, 7], [0.0, 1e-9, 0.0, 0.0], 0.0
    )
    assert res.ptr.tolist() == [0, 1, 2]  # node 9 (at 1e-9) is beyond the limit
    assert res.nodes.tolist() == [5, 7] and res.dist.tolist() == [0.0, 0.0]


def test_bounded_isolated_and_unreachable() -> None:
    n, eu, ev, el = two_components_with_parallel(5)
    indptr, indices, weights, _ = csr_from_edges(n, eu, ev, el)
    isolated = n - 1
    res = bounded_dijkstra_many(
        indptr, indices, weights, [0, 1, 2], [isolated, 0], [4.0, 0.0], np.inf
    )
    assert res.nodes[res.ptr[0] : res.ptr[1]].tolist() == [isolated]
    assert res.dist[res.ptr[0] : res.ptr[1]].tolist() == [4.0]
    # unbounded search from component 1 reaches exactly component 1 (42 nodes)
    comp = res.nodes[res.ptr[1] : res.ptr[2]]
    assert comp.tolist() == list(range(42))


def test_bounded_duplicate_seeds_and_parallel_edges_take_the_minimum() -> None:
    # two parallel edges 0-1 (10 and 4) and 1-2 (3); seeds: node 0 twice, at 6 and 1
    indptr, indices, weights, _ = csr_from_edges(3, [0, 0, 1], [1, 1, 2], [10.0, 4.0, 3.0])
    res = bounded_dijkstra_many(indptr, indices, weights, [0, 2], [0, 0], [6.0, 1.0], 100.0)
    assert res.nodes.tolist() == [0, 1, 2]
    assert res.dist.tolist() == [1.0, 5.0, 8.0]


def test_bounded_seed_beyond_limit_is_ignored_and_empty_inputs() -> None:
    indptr, indices, weights, _ = csr_from_edges(3, [0, 1], [1, 2], [1.0, 1.0])
    res = bounded_dijkstra_many(indptr, indices, weights, [0, 1, 1], [0], [5.0], 2.0)
    assert res.ptr.tolist() == [0, 0, 0] and res.nodes.size == 0
    res = bounded_dijkstra_many(indptr, indices, weights, [0], [], [], 2.0)
    assert res.ptr.tolist() == [0] and res.nodes.size == 0 and res.dist.size == 0


def test_bounded_deterministic_across_threads_and_round_overflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    n, eu, ev, el = perturbed_grid(30, 30, 11)
    indptr, indices, weights, _ = csr_from_edges(n, eu, ev, el)
    seeds = random_searches(n, eu, ev, el, 700, seed=12)
    limits = np.random.default_rng(13).choice([150.0, 600.0, np.inf], size=700)
    base = bounded_dijkstra_many(indptr, indices, weights, *seeds, limits)
    with threads(1):
        single = bounded_dijkstra_many(indptr, indices, weights, *seeds, limits)
    # tiny arenas (one full-graph search per worker), overfilled rounds: carry-over
    monkeypatch.setattr(_rounds, "MIN_ARENA", 1)
    monkeypatch.setattr(_rounds, "_ROUND_FILL", 8.0)
    tight = bounded_dijkstra_many(indptr, indices, weights, *seeds, limits)
    again = bounded_dijkstra_many(indptr, indices, weights, *seeds, limits)
    for other in (single, tight, again):
        for x, y in zip(base, other, strict=True):
            np.testing.assert_array_equal(x, y)
    # and each search equals the search run alone
    for s in range(0, 700, 37):
        sl = slice(seeds[0][s], seeds[0][s + 1])
        alone = bounded_dijkstra_many(
            indptr, indices, weights, [0, sl.stop - sl.start], seeds[1][sl], seeds[2][sl], limits[s]
        )
        np.testing.assert_array_equal(alone.nodes, base.nodes[base.ptr[s] : base.ptr[s + 1]])
        np.testing.assert_array_equal(alone.dist, base.dist[base.ptr[s] : base.ptr[s + 1]])


def test_sort_ids_clustered_and_scattered_ids() -> None:
    rng = np.random.default_rng(0)
    bits = np.zeros(100_000 // 64 + 1, np.uint64)
    words = np.empty(bits.size, np.int64)
    cases = (
        rng.choice(300, 200, replace=False),
        rng.choice(100_000, 50, replace=False),
        np.concatenate(
            (rng.choice(500, 80, replace=False), 99_000 + rng.choice(900, 90, replace=False))
        ),
        np.array([7]),
        np.array([99_999, 0]),
    )
    for ids in cases:
        a = ids.astype(np.int64)
        sort_ids(a, a.size, bits, words)
        np.testing.assert_array_equal(a, np.sort(ids))
        assert not bits.any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": [1.0, -1.0, 1.0, 1.0]}, "weights"),
        ({"weights": [1.0, np.nan, 1.0, 1.0]}, "weights"),
        ({"indices": [1, 0, 9, 1]}, "indices"),
        ({"indptr": [0, 1, 3]}, "indptr"),
        ({"seed_nodes": [5]}, "seed_nodes"),
        ({"seed_dist": [-1.0]}, "seed_dist"),
        ({"limit": np.nan}, "limit"),
        ({"limit": [1.0, 2.0]}, "limit"),
        ({"seed_ptr": [0, 2]}, "seed_ptr"),
    ],
)
def test_bounded_rejects_bad_input(kwargs: dict[str, Any], match: str) -> None:
    indptr, indices, weights, _ = csr_from_edges(3, [0, 1], [1, 2], [1.0, 1.0])
    args: dict[str, Any] = {
        "indptr": indptr,
        "indices": indices,
        "weights": weights,
        "seed_ptr": [0, 1],
        "seed_nodes": [0],
        "seed_dist": [0.0],
        "limit": 1.0,
    }
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        bounded_dijkstra_many(**args)


# --------------------------------------------------------------------------------------
# multi_source_dijkstra
# --------------------------------------------------------------------------------------


def scipy_virtual_source(
    n: int,
    eu: NDArray[Any],
    ev: NDArray[Any],
    el: NDArray[Any],
    nodes: NDArray[Any],
    dists: NDArray[Any],
) -> NDArray[np.float64]:
    """scipy csgraph distances from a virtual node ``n`` (parallel arcs reduced by min)."""
    rows = np.concatenate((eu, ev, np.full(nodes.size, n)))
    cols = np.concatenate((ev, eu, nodes))
    vals = np.concatenate((el, el, dists))
    order = np.lexsort((vals, cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    first = np.ones(rows.size, bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    mat = sp.csr_matrix((vals[first], (rows[first], cols[first])), shape=(n + 1, n + 1))
    return np.asarray(dijkstra(mat, directed=True, indices=n))[:n]


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_multi_source_matches_networkx_and_scipy(name: str) -> None:
    n, eu, ev, el = GRAPHS[name]()
    graph = to_nx(n, eu, ev, el)
    indptr, indices, weights, _ = csr_from_edges(n, eu, ev, el)
    rng = np.random.default_rng(21)
    n_fac = 9
    fac_edge = rng.choice(eu.size, n_fac, replace=False)
    seed_ptr, seed_nodes, seed_dist = anchor_seeds(
        fac_edge, rng.uniform(0, 1, n_fac) * el[fac_edge], rng.uniform(0, 20, n_fac), eu, ev, el
    )
    seed_label = np.repeat(np.arange(n_fac) * 10, np.diff(seed_ptr))
    dist, label = multi_source_dijkstra(indptr, indices, weights, seed_nodes, seed_dist, seed_label)
    assert (
        dist.dtype == np.float64 and label.dtype == np.int64 and dist.shape == label.shape == (n,)
    )

    expected = nx_seeded(graph, seed_nodes, seed_dist, np.inf)
    reached = np.isfinite(dist)
    assert set(np.flatnonzero(reached).tolist()) == set(expected)
    np.testing.assert_allclose(
        dist[reached], [expected[x] for x in np.flatnonzero(reached).tolist()], atol=TOL, rtol=0
    )
    assert np.all(label[~reached] == -1) and np.all(label[reached] >= 0)

    np.testing.assert_allclose(
        dist, scipy_virtual_source(n, eu, ev, el, seed_nodes, seed_dist), atol=TOL, rtol=0
    )

    # labels: the labelled facility really is (one of) the nearest
    per_fac = np.stack(
        [
            scipy_virtual_source(
                n,
                eu,
                ev,
                el,
                seed_nodes[seed_ptr[f] : seed_ptr[f + 1]],
                seed_dist[seed_ptr[f] : seed_ptr[f + 1]],
            )
            for f in range(n_fac)
        ]
    )
    fac = label[reached] // 10
    np.testing.assert_allclose(
        per_fac[fac, np.flatnonzero(reached)], dist[reached], atol=TOL, rtol=0
    )


def test_multi_source_zero_offsets_match_networkx_multi_source() -> None:
    n, eu, ev, el = GRAPHS["grid"]()
    graph = to_nx(n, eu, ev, el)
    indptr, indices, weights, _ = csr_from_edges(n, eu, ev, el)
    seeds = np.random.default_rng(3).choice(n, 6, replace=False)
    dist, label = multi_source_dijkstra(indptr, indices, weights, seeds, np.zeros(6), np.arange(6))
    lengths, paths = nx.multi_source_dijkstra(graph, set(seeds.tolist()), weight="length")
    for node, d in lengths.items():
        assert dist[node] == pytest.approx(d, abs=TOL)
        assert seeds[label[node]] == paths[node][0]
    assert np.isfinite(dist).sum() == len(lengths)


def test_multi_source_ties_go_to_the_smallest_label() -> None:
    # unit grid 5x5, seeds at the two ends of the middle row: the middle column is tied
    n, eu, ev, _ = perturbed_grid(5, 5, 0, drop=0.0, permute=False)
    indptr, indices, weights, _ = csr_from_edges(n, eu, ev, np.ones(eu.size))
    for labels in ([4, 2], [2, 4]):
        dist, label = multi_source_dijkstra(indptr, indices, weights, [10, 14], [0.0, 0.0], labels)
        grid_lab = label.reshape(5, 5)
        assert np.all(grid_lab[:, 2] == 2)
        assert np.all(grid_lab[:, :2] == labels[0]) and np.all(grid_lab[:, 3:] == labels[1])
        assert dist.reshape(5, 5)[0].tolist() == [2.0, 3.0, 4.0, 3.0, 2.0]
    # same node seeded twice at the same distance: smallest label; smaller distance wins first
    dist, label = multi_source_dijkstra(
        indptr, indices, weights, [0, 0, 24], [1.0, 1.0, 0.5], [7, 3, 9]
    )
    assert label[0] == 3 and dist[0] == 1.0 and label[24] == 9


def test_multi_source_limit_unreachable_and_no_seeds() -> None:
    n, eu, ev, el = two_components_with_parallel(6)
    indptr, indices, weights, _ = csr_from_edges(n, eu, ev, el)
    full, full_lab = multi_source_dijkstra(indptr, indices, weights, [0, 5], [0.0, 30.0], [0, 1])
    assert np.all(np.isinf(full[42:])) and np.all(full_lab[42:] == -1)
    assert np.all(np.isfinite(full[:42]))
    cut, cut_lab = multi_source_dijkstra(
        indptr, indices, weights, [0, 5], [0.0, 30.0], [0, 1], limit=250.0
    )
    inside = full <= 250.0
    np.testing.assert_array_equal(cut[inside], full[inside])
    np.testing.assert_array_equal(cut_lab[inside], full_lab[inside])
    assert np.all(np.isinf(cut[~inside])) and np.all(cut_lab[~inside] == -1)
    none_d, none_l = multi_source_dijkstra(indptr, indices, weights, [], [], [])
    assert np.all(np.isinf(none_d)) and np.all(none_l == -1)
    with pytest.raises(InputError, match="seed_label"):
        multi_source_dijkstra(indptr, indices, weights, [0], [0.0], [-1])


# --------------------------------------------------------------------------------------
# reached_edges
# --------------------------------------------------------------------------------------


def brute_reached_edges(
    eu: NDArray[Any],
    ev: NDArray[Any],
    el: NDArray[Any],
    dist: dict[int, float],
    limit: float,
    scale: float = 1.0,
) -> dict[int, tuple[float, float]]:
    """Per edge: how far the search gets from each end (weights = scale x length)."""
    out: dict[int, tuple[float, float]] = {}
    for e, (a, b, length) in enumerate(zip(eu.tolist(), ev.tolist(), el.tolist(), strict=True)):
        da, db = dist.get(a), dist.get(b)
        if da is None and db is None:
            continue
        ra = 0.0 if da is None else min(limit - da, scale * length) / scale
        rb = 0.0 if db is None else min(limit - db, scale * length) / scale
        out[e] = (ra, rb)
    return out


def check_reached_edges(
    rep: ReachedEdges, s: int, expected: dict[int, tuple[float, float]]
) -> None:
    lo, hi = rep.ptr[s], rep.ptr[s + 1]
    edges = rep.edge[lo:hi]
    assert np.all(np.diff(edges) > 0)
    assert set(edges.tolist()) == set(expected)
    want = np.array([expected[e] for e in edges.tolist()]).reshape(-1, 2)
    np.testing.assert_allclose(rep.reach_u[lo:hi], want[:, 0], atol=TOL, rtol=0)
    np.testing.assert_allclose(rep.reach_v[lo:hi], want[:, 1], atol=TOL, rtol=0)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_reached_edges_matches_brute_force(name: str) -> None:
    n, eu, ev, el = GRAPHS[name]()
    graph = to_nx(n, eu, ev, el)
    g = csr_from_edges(n, eu, ev, el)
    seeds = random_searches(n, eu, ev, el, 40, seed=31)
    limits = np.random.default_rng(32).choice([0.0, 60.0, 230.0, 500.0], size=40)
    res = bounded_dijkstra_many(*g[:3], *seeds, limits)
    rep = reached_edges(*g, *res, limits, eu, ev, el)
    assert rep.ptr.dtype == rep.edge.dtype == np.int64
    assert rep.reach_u.dtype == rep.reach_v.dtype == np.float64
    for s in range(40):
        sl = slice(seeds[0][s], seeds[0][s + 1])
        dist = nx_seeded(graph, seeds[1][sl], seeds[2][sl], limits[s])
        check_reached_edges(rep, s, brute_reached_edges(eu, ev, el, dist, limits[s]))


def test_reached_edges_hand_checked_frontier_and_full_cover() -> None:
    # 0 -100- 1 -100- 2, plus a self-loop (30) at 1 and a parallel edge 1-2 of 40
    eu, ev, el = (
        np.array([0, 1, 1, 1]),
        np.array([1, 2, 1, 2]),
        np.array([100.0, 100.0, 30.0, 40.0]),
    )
    g = csr_from_edges(3, eu, ev, el)
    res = bounded_dijkstra_many(*g[:3], [0, 1], [0], [0.0], 150.0)
    rep = reached_edges(*g, *res, 150.0, eu, ev, el)
    assert rep.edge.tolist() == [0, 1, 2, 3]
    assert rep.reach_u.tolist() == [100.0, 50.0, 30.0, 40.0]
    # node 2 is reached at 140 m via the 40 m parallel edge, leaving 10 m on edges 1 and 3
    assert rep.reach_v.tolist() == [50.0, 10.0, 30.0, 10.0]


def test_reached_edges_with_weights_not_lengths_and_lower_limit() -> None:
    n, eu, ev, el = GRAPHS["geometric"]()
    graph = to_nx(n, eu, ev, 2.0 * el)
    indptr, indices, weights, edge_ids = csr_from_edges(n, eu, ev, 2.0 * el)
    seeds = random_searches(n, eu, ev, el, 15, seed=41)
    res = bounded_dijkstra_many(indptr, indices, weights, *seeds, 600.0)
    # polygons for a tighter limit than the search used: nodes beyond 400 are ignored
    rep = reached_edges(indptr, indices, weights, edge_ids, *res, 400.0, eu, ev, el)
    for s in range(15):
        sl = slice(seeds[0][s], seeds[0][s + 1])
        dist = nx_seeded(graph, seeds[1][sl], seeds[2][sl], 400.0)
        check_reached_edges(rep, s, brute_reached_edges(eu, ev, el, dist, 400.0, scale=2.0))


def test_reached_edges_rejects_inconsistent_edge_table() -> None:
    eu, ev, el = np.array([0, 1]), np.array([1, 2]), np.array([5.0, 7.0])
    g = csr_from_edges(3, eu, ev, el)
    res = bounded_dijkstra_many(*g[:3], [0, 1], [0], [0.0], 8.0)
    with pytest.raises(InputError, match="disagree"):
        reached_edges(*g, *res, 8.0, ev, eu[::-1], el)


# --------------------------------------------------------------------------------------
# coverage_pairs
# --------------------------------------------------------------------------------------


def split_graph_distances(
    n: int,
    eu: NDArray[Any],
    ev: NDArray[Any],
    el: NDArray[Any],
    cand: tuple[NDArray[Any], NDArray[Any], NDArray[Any]],
    dem: tuple[NDArray[Any], NDArray[Any], NDArray[Any]],
) -> NDArray[np.float64]:
    """Dense candidate x demand distances on a graph with the points inserted as nodes."""
    on_edge: dict[int, list[tuple[float, Any]]] = {}
    for kind, (edges, offs, _) in (("c", cand), ("d", dem)):
        for i, (e, off) in enumerate(zip(edges.tolist(), offs.tolist(), strict=True)):
            if e >= 0:
                on_edge.setdefault(e, []).append((off, (kind, i)))
    graph = nx.MultiGraph()
    graph.add_nodes_from(range(n))
    for e, (a, b, length) in enumerate(zip(eu.tolist(), ev.tolist(), el.tolist(), strict=True)):
        points = sorted(on_edge.get(e, []), key=lambda p: p[0])
        prev, prev_off = a, 0.0
        for off, node in points:
            graph.add_edge(prev, node, length=off - prev_off)
            prev, prev_off = node, off
        graph.add_edge(prev, b, length=length - prev_off)
    out = np.full((cand[0].size, dem[0].size), np.inf)
    for c in range(cand[0].size):
        if cand[0][c] < 0:
            continue
        lengths = nx.single_source_dijkstra_path_length(graph, ("c", c), weight="length")
        for j in range(dem[0].size):
            if ("d", j) in lengths:
                out[c, j] = cand[2][c] + lengths[("d", j)] + dem[2][j]
    return out


def random_points(
    eu: NDArray[Any],
    el: NDArray[Any],
    k: int,
    rng: np.random.Generator,
    *,
    off_network: float = 0.1,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    edge = rng.integers(0, eu.size, k)
    frac = rng.choice([0.0, 1.0, 0.5, -1.0], size=k, p=[0.1, 0.1, 0.1, 0.7])
    frac = np.where(frac < 0, rng.random(k), frac)
    off = frac * el[edge]
    acc = np.where(rng.random(k) < 0.3, 0.0, rng.uniform(0, 40, k))
    edge = np.where(rng.random(k) < off_network, -1, edge)
    return edge.astype(np.int64), off, acc


def check_pairs(
    pairs: CoveragePairs, oracle: NDArray[np.float64], limits: NDArray[np.float64],
    demand_edge: NDArray[np.int64],
) -> None:
    assert pairs.cand.dtype == pairs.demand.dtype == np.int64 and pairs.dist.dtype == np.float64
    # documented order: by candidate, then the demand's place in edge order (edge, index)
    order = np.lexsort((pairs.demand, demand_edge[pairs.demand], pairs.cand))
    np.testing.assert_array_equal(order, np.arange(pairs.cand.size))
    key = pairs.cand * oracle.shape[1] + pairs.demand
    assert np.unique(key).size == key.size
    np.testing.assert_allclose(pairs.dist, oracle[pairs.cand, pairs.demand], atol=1e-8, rtol=0)
    assert np.all(pairs.dist <= limits[pairs.cand])
    must = np.isfinite(oracle) & (oracle <= limits[:, None] - 1e-8)
    got = np.zeros_like(must)
    got[pairs.cand, pairs.demand] = True
    assert np.all(got[must])


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_coverage_pairs_match_split_graph_oracle(name: str) -> None:
    n, eu, ev, el = GRAPHS[name]()
    rng = np.random.default_rng(51)
    g = csr_from_edges(n, eu, ev, el)
    cand = random_points(eu, el, 25, rng)
    dem = random_points(eu, el, 300, rng)
    # put some demand on candidate edges to exercise the same-edge term
    dem[0][:25] = np.where(cand[0] >= 0, cand[0], dem[0][:25])
    dem[1][:25] = rng.random(25) * el[np.maximum(dem[0][:25], 0)]
    limits = rng.choice([0.0, 150.0, 400.0, 900.0], size=25)
    seeds = anchor_seeds(*cand, eu, ev, el)
    res = bounded_dijkstra_many(*g[:3], *seeds, limits)
    pairs = coverage_pairs(
        *g, *res, limits, eu, ev, el,
        cand_edge=cand[0], cand_offset_m=cand[1], cand_access_m=cand[2],
        demand_edge=dem[0], demand_offset_m=dem[1], demand_access_m=dem[2],
    )  # fmt: skip
    oracle = split_graph_distances(n, eu, ev, el, cand, dem)
    check_pairs(pairs, oracle, limits, dem[0])
    assert pairs.cand.size > 50  # the test is not vacuous


def test_reached_edges_and_coverage_pairs_survive_arena_overflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    n, eu, ev, el = perturbed_grid(15, 15, 61)
    rng = np.random.default_rng(62)
    g = csr_from_edges(n, eu, ev, el)
    cand = random_points(eu, el, 120, rng, off_network=0.0)
    dem = random_points(eu, el, 400, rng)
    seeds = anchor_seeds(*cand, eu, ev, el)
    res = bounded_dijkstra_many(*g[:3], *seeds, 700.0)

    def both() -> tuple[Any, ...]:
        rep = reached_edges(*g, *res, 700.0, eu, ev, el)
        pairs = coverage_pairs(
            *g, *res, 700.0, eu, ev, el,
            cand_edge=cand[0], cand_offset_m=cand[1], cand_access_m=cand[2],
            demand_edge=dem[0], demand_offset_m=dem[1], demand_access_m=dem[2],
        )  # fmt: skip
        return (*rep, *pairs)

    base = both()

    def in_sequence(seq: NDArray[np.int64]) -> tuple[Any, ...]:
        res_s = bounded_dijkstra_many(*g[:3], *seeds, 700.0, sequence=seq)
        pairs = coverage_pairs(
            *g, *res_s, 700.0, eu, ev, el,
            cand_edge=cand[0], cand_offset_m=cand[1], cand_access_m=cand[2],
            demand_edge=dem[0], demand_offset_m=dem[1], demand_access_m=dem[2], sequence=seq,
        )  # fmt: skip
        return (*res_s, *pairs)

    # the processing order (spatial order in pairs_within) never changes the result,
    # with one round (all jobs fit) or many
    shuffled = in_sequence(rng.permutation(cand[0].size))
    for x, y in zip((*res, *base[-3:]), shuffled, strict=True):
        np.testing.assert_array_equal(x, y)
    monkeypatch.setattr(_rounds, "_MAX_ROUND", 1 << 15)
    with monkeypatch.context() as m:
        for mod in (_dijkstra, _coverage_kernel):  # first round takes 256 >= 120 jobs
            m.setattr(mod, "n_workers", lambda: 64)
        one_round = in_sequence(rng.permutation(cand[0].size))
    for x, y in zip((*res, *base[-3:]), one_round, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(InputError, match="permutation"):
        in_sequence(np.zeros(cand[0].size, dtype=np.int64))
    # arenas that hold one job's worst case, and rounds sized to overfill them 8x
    monkeypatch.setattr(_rounds, "MIN_ARENA", 1)
    monkeypatch.setattr(_rounds, "_ROUND_FILL", 8.0)
    with threads(1):
        tight = both()
    for x, y in zip(base, tight, strict=True):
        np.testing.assert_array_equal(x, y)
    assert base[4].size > 5 * 400  # many candidates cover much of the demand


def test_coverage_pairs_keeps_zero_distance_and_same_edge_shortcut() -> None:
    # 0 -100- 1 -100- 2 ; candidate at 50 m on edge 0
    eu, ev, el = np.array([0, 1]), np.array([1, 2]), np.array([100.0, 100.0])
    g = csr_from_edges(3, eu, ev, el)
    cand = (np.array([0]), np.array([50.0]), np.array([0.0]))
    dem = (
        np.array([0, 0, 1, -1]),
        np.array([50.0, 70.0, 100.0, 0.0]),
        np.array([0.0, 1.0, 0.0, 0.0]),
    )
    res = bounded_dijkstra_many(*g[:3], *anchor_seeds(*cand, eu, ev, el), 60.0)
    pairs = coverage_pairs(
        *g, *res, 60.0, eu, ev, el,
        cand_edge=cand[0], cand_offset_m=cand[1], cand_access_m=cand[2],
        demand_edge=dem[0], demand_offset_m=dem[1], demand_access_m=dem[2],
    )  # fmt: skip
    # no node is within 60 m... except node 0 and 1 at 50 m; demand 2 (node 2) is at 150 m
    assert pairs.cand.tolist() == [0, 0]
    assert pairs.demand.tolist() == [0, 1]
    assert pairs.dist.tolist() == [0.0, 21.0]


def test_coverage_pairs_requires_weights_equal_lengths() -> None:
    eu, ev, el = np.array([0]), np.array([1]), np.array([10.0])
    indptr, indices, weights, edge_ids = csr_from_edges(2, eu, ev, el)
    res = bounded_dijkstra_many(indptr, indices, weights, [0, 1], [0], [0.0], 5.0)
    with pytest.raises(InputError, match="weights"):
        coverage_pairs(
            indptr, indices, 2 * weights, edge_ids, *res, 5.0, eu, ev, el,
            cand_edge=[0], cand_offset_m=[0.0], cand_access_m=[0.0],
            demand_edge=[0], demand_offset_m=[1.0], demand_access_m=[0.0],
        )  # fmt: skip


# --------------------------------------------------------------------------------------
# property tests on small random graphs (parallel edges and self-loops included)
# --------------------------------------------------------------------------------------

lengths_st = st.one_of(st.integers(1, 20).map(float), st.floats(0.25, 20.0, allow_nan=False))


@st.composite
def small_problem(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 8))
    m = draw(st.integers(0, 14))
    eu = np.array(draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m)), dtype=np.int64)
    ev = np.array(draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m)), dtype=np.int64)
    el = np.array(draw(st.lists(lengths_st, min_size=m, max_size=m)), dtype=np.float64)
    n_search = draw(st.integers(0, 4))
    ptr, nodes, dists = [0], [], []
    for _ in range(n_search):
        k = draw(st.integers(0, 3))
        nodes += draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k))
        dists += draw(st.lists(st.one_of(st.just(0.0), lengths_st), min_size=k, max_size=k))
        ptr.append(len(nodes))
    limits = draw(
        st.lists(
            st.one_of(st.just(0.0), lengths_st, st.just(np.inf)),
            min_size=n_search,
            max_size=n_search,
        )
    )
    return {
        "n": n, "eu": eu, "ev": ev, "el": el,
        "seed_ptr": np.array(ptr, dtype=np.int64), "seed_nodes": np.array(nodes, dtype=np.int64),
        "seed_dist": np.array(dists, dtype=np.float64), "limits": np.array(limits, dtype=np.float64),
    }  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problem())
def test_property_bounded_multi_and_reached_edges(p: dict[str, Any]) -> None:
    n, eu, ev, el = p["n"], p["eu"], p["ev"], p["el"]
    graph = to_nx(n, eu, ev, el)
    g = csr_from_edges(n, eu, ev, el)
    sp_, sn, sd, limits = p["seed_ptr"], p["seed_nodes"], p["seed_dist"], p["limits"]
    res = bounded_dijkstra_many(*g[:3], sp_, sn, sd, limits)
    rep = reached_edges(*g, *res, limits, eu, ev, el)
    for s in range(sp_.size - 1):
        expected = nx_seeded(graph, sn[sp_[s] : sp_[s + 1]], sd[sp_[s] : sp_[s + 1]], limits[s])
        assert_search_equal(res, s, expected)
        check_reached_edges(rep, s, brute_reached_edges(eu, ev, el, expected, limits[s]))
    # all seeds of all searches together, labelled by search
    labels = np.repeat(np.arange(sp_.size - 1), np.diff(sp_))
    lim = float(limits.max()) if limits.size else np.inf
    dist, label = multi_source_dijkstra(*g[:3], sn, sd, labels, limit=lim)
    expected = nx_seeded(graph, sn, sd, lim)
    assert set(np.flatnonzero(np.isfinite(dist)).tolist()) == set(expected)
    for x, d in expected.items():
        assert dist[x] == pytest.approx(d, abs=TOL)
        own = nx_seeded(graph, sn[labels == label[x]], sd[labels == label[x]], np.inf)
        assert own[x] == pytest.approx(d, abs=TOL)


@st.composite
def small_coverage(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 7))
    m = draw(st.integers(1, 10))
    eu = np.array(draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m)), dtype=np.int64)
    ev = np.array(draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m)), dtype=np.int64)
    el = np.array(draw(st.lists(lengths_st, min_size=m, max_size=m)), dtype=np.float64)

    def points(k_max: int) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        k = draw(st.integers(0, k_max))
        edge = np.array(
            draw(st.lists(st.integers(-1, m - 1), min_size=k, max_size=k)), dtype=np.int64
        )
        frac = np.array(
            draw(
                st.lists(
                    st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(0, 1), min_size=k, max_size=k
                )
            )
        )
        acc = np.array(
            draw(st.lists(st.sampled_from([0.0, 1.0, 2.5]), min_size=k, max_size=k)),
            dtype=np.float64,
        )
        return edge, (frac * el[np.maximum(edge, 0)]).astype(np.float64), acc

    return {"n": n, "eu": eu, "ev": ev, "el": el, "cand": points(4), "dem": points(8),
            "limit": draw(st.sampled_from([0.0, 3.0, 10.0, 25.0, np.inf]))}  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_coverage())
def test_property_coverage_pairs(p: dict[str, Any]) -> None:
    n, eu, ev, el, cand, dem = p["n"], p["eu"], p["ev"], p["el"], p["cand"], p["dem"]
    g = csr_from_edges(n, eu, ev, el)
    limits = np.full(cand[0].size, p["limit"])
    seeds = anchor_seeds(cand[0], cand[1], cand[2], eu, ev, el)
    res = bounded_dijkstra_many(*g[:3], *seeds, limits)
    pairs = coverage_pairs(
        *g, *res, limits, eu, ev, el,
        cand_edge=cand[0], cand_offset_m=cand[1], cand_access_m=cand[2],
        demand_edge=dem[0], demand_offset_m=dem[1], demand_access_m=dem[2],
    )  # fmt: skip
    check_pairs(pairs, split_graph_distances(n, eu, ev, el, cand, dem), limits, dem[0])
