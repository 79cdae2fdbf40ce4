"""Micro benchmark of the compiled graph-search kernels against scipy and networkx.

Graph: a 450 x 450 grid (202,500 nodes, 404,100 edges) with edge lengths drawn uniformly
from [80, 120] m.  Timings exclude numba compilation (every kernel is warmed up first)
and the construction of the peer libraries' graph objects; each entry is the best of a
few runs.  Both wall-clock and process CPU seconds are recorded: on a busy machine the
wall-clock gain from threads shrinks, while CPU seconds show the work done.  Ratios
(``wall x``, ``cpu x``) are relative to the fastest geosvc row of the same task.

(a) Many bounded searches (limit 1080 m) from random nodes:
    ``bounded_dijkstra_many`` (all numba threads, and one thread) vs networkx
    ``single_source_dijkstra_path_length(cutoff=...)`` per source vs
    ``scipy.sparse.csgraph.dijkstra(limit=...)`` (a dense row per source; 200 sources
    only).
(b) One nearest-seed search from 500 random nodes over the whole graph:
    ``multi_source_dijkstra`` vs scipy ``dijkstra(indices=..., min_only=True)`` (with and
    without ``return_predecessors``, which also yields the nearest source) vs networkx
    ``multi_source_dijkstra_path_length``.

Run ``python benchmarks/bench_kernels.py``; prints a table and writes
``benchmarks/results/kernels.json``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import numba
import numpy as np
import scipy
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from geosvc._search import bounded_dijkstra_many, csr_from_edges, multi_source_dijkstra

__all__ = ["main", "grid_edges"]

SIDE = 450
LIMIT_M = 1080.0
N_SEEDS = 500
SEED = 20240601
RESULTS = Path(__file__).resolve().parent / "results" / "kernels.json"


def grid_edges(
    side: int, rng: np.random.Generator
) -> tuple[int, NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """A ``side x side`` grid with edge lengths uniform in [80, 120] m.

    Returns ``(n_nodes, edge_u, edge_v, edge_len_m)``.
    """
    ids = np.arange(side * side, dtype=np.int64).reshape(side, side)
    u = np.concatenate((ids[:, :-1].ravel(), ids[:-1, :].ravel()))
    v = np.concatenate((ids[:, 1:].ravel(), ids[1:, :].ravel()))
    return side * side, u, v, rng.uniform(80.0, 120.0, size=u.size)


class Table:
    """Collects timings; ratios are relative to the fastest geosvc row of each task."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def time(self, task: str, impl: str, fn: Callable[[], Any], *, repeat: int) -> Any:
        """Run ``fn`` ``repeat`` times, record the best run, return its last result."""
        best = (np.inf, np.inf)
        out: Any = None
        for _ in range(repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            best = min(best, (time.perf_counter() - w0, time.process_time() - c0))
        self.rows.append({"task": task, "impl": impl, "seconds": best[0], "cpu_seconds": best[1]})
        return out

    def note(self, **extra: Any) -> None:
        """Attach extra facts (result sizes, cross-check errors) to the last row."""
        self.rows[-1].update(extra)

    def finish(self) -> None:
        """Add ``wall_ratio`` and ``cpu_ratio`` (row / fastest geosvc row of the task)."""
        for r in self.rows:
            ours = [
                o for o in self.rows if o["task"] == r["task"] and o["impl"].startswith("geosvc")
            ]
            r["wall_ratio"] = r["seconds"] / min(o["seconds"] for o in ours)
            r["cpu_ratio"] = r["cpu_seconds"] / min(o["cpu_seconds"] for o in ours)

    def print(self) -> None:
        print(
            f"{'task':<38} {'implementation':<28} {'wall s':>8} {'cpu s':>8} "
            f"{'wall x':>7} {'cpu x':>7}"
        )
        for r in self.rows:
            print(
                f"{r['task']:<38} {r['impl']:<28} {r['seconds']:>8.4f} {r['cpu_seconds']:>8.4f} "
                f"{r['wall_ratio']:>7.2f} {r['cpu_ratio']:>7.2f}"
            )


def main() -> dict[str, Any]:
    """Run the benchmark, print a table and write the JSON results."""
    rng = np.random.default_rng(SEED)
    n, eu, ev, el = grid_edges(SIDE, rng)
    indptr, indices, weights, _ = csr_from_edges(n, eu, ev, el)
    csr = sp.csr_matrix((weights, indices, indptr), shape=(n, n))
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from(zip(eu.tolist(), ev.tolist(), el.tolist(), strict=True), "length")
    threads = numba.get_num_threads()
    load_before = os.getloadavg()[0]
    table = Table()

    # warm-up: load (or compile) every specialisation used below
    warm = np.arange(4, dtype=np.int64)
    bounded_dijkstra_many(indptr, indices, weights, np.arange(5), warm, np.zeros(4), LIMIT_M)
    multi_source_dijkstra(indptr, indices, weights, warm, np.zeros(4), warm)

    # (a) many bounded searches ----------------------------------------------------------
    for n_src in (200, 2000):
        task = f"bounded x{n_src} (limit {LIMIT_M:.0f} m)"
        src = rng.choice(n, size=n_src, replace=False).astype(np.int64)
        seed_ptr = np.arange(n_src + 1, dtype=np.int64)
        zeros = np.zeros(n_src)

        def ours(src: Any = src, seed_ptr: Any = seed_ptr, zeros: Any = zeros) -> Any:
            return bounded_dijkstra_many(indptr, indices, weights, seed_ptr, src, zeros, LIMIT_M)

        res = table.time(task, f"geosvc numba ({threads} thr)", ours, repeat=5)
        table.note(reached=int(res.nodes.size))
        numba.set_num_threads(1)
        try:
            table.time(task, "geosvc numba (1 thr)", ours, repeat=5)
        finally:
            numba.set_num_threads(threads)

        def nx_each(src: Any = src) -> int:
            return sum(
                len(
                    nx.single_source_dijkstra_path_length(graph, s, cutoff=LIMIT_M, weight="length")
                )
                for s in src.tolist()
            )

        table.note(reached=table.time(task, "networkx per source", nx_each, repeat=1))

        if n_src <= 200:

            def scipy_rows(src: Any = src) -> Any:
                return dijkstra(csr, directed=True, indices=src, limit=LIMIT_M)

            dense = table.time(task, "scipy csgraph (dense rows)", scipy_rows, repeat=2)
            rows = np.repeat(np.arange(n_src), np.diff(res.ptr))
            table.note(
                reached=int(np.isfinite(dense).sum()),
                max_abs_diff=float(np.abs(dense[rows, res.nodes] - res.dist).max()),
            )
            del dense

    # (b) one nearest-seed search ----------------------------------------------------------
    task = f"multi-source, {N_SEEDS} seeds (unbounded)"
    seeds = rng.choice(n, size=N_SEEDS, replace=False).astype(np.int64)
    labels = np.arange(N_SEEDS, dtype=np.int64)
    zeros = np.zeros(N_SEEDS)
    dist, label = table.time(
        task,
        "geosvc numba",
        lambda: multi_source_dijkstra(indptr, indices, weights, seeds, zeros, labels),
        repeat=7,
    )
    sp_dist = table.time(
        task,
        "scipy min_only",
        lambda: dijkstra(csr, directed=True, indices=seeds, min_only=True),
        repeat=7,
    )
    table.note(max_abs_diff=float(np.abs(sp_dist - dist).max()))
    _, _, sp_src = table.time(
        task,
        "scipy min_only + sources",
        lambda: dijkstra(
            csr, directed=True, indices=seeds, min_only=True, return_predecessors=True
        ),
        repeat=7,
    )
    table.note(same_nearest=bool(np.array_equal(seeds[label], sp_src)))
    nx_dist = table.time(
        task,
        "networkx",
        lambda: nx.multi_source_dijkstra_path_length(graph, set(seeds.tolist()), weight="length"),
        repeat=1,
    )
    table.note(reached=len(nx_dist))

    # report -----------------------------------------------------------------------------
    load_after = os.getloadavg()[0]
    print(f"graph: {SIDE}x{SIDE} grid, {n} nodes, {eu.size} edges; numba threads: {threads}")
    if max(load_before, load_after) > 0.5 * (os.cpu_count() or 1):
        print(
            f"note: machine busy (1-min load {load_before:.1f} -> {load_after:.1f}); noisy timings"
        )
    table.finish()
    table.print()
    out = {
        "graph": {
            "kind": "grid",
            "side": SIDE,
            "n_nodes": n,
            "n_edges": int(eu.size),
            "edge_len_m": [80.0, 120.0],
            "seed": SEED,
        },
        "limit_m": LIMIT_M,
        "machine": {
            "cpu_count": os.cpu_count(),
            "numba_threads": threads,
            "numba_threading_layer": numba.threading_layer(),
            "load_avg_1min": [load_before, load_after],
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "numba": numba.__version__,
            "networkx": nx.__version__,
        },
        "results": table.rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")
    return out


if __name__ == "__main__":
    main()
