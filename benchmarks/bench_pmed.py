"""Benchmark: OR-Library p-median instances pmed1-pmed20, exact (HiGHS) and greedy + swap.

Run with the project's interpreter::

    .venv/bin/python benchmarks/bench_pmed.py            # pmed1..pmed20
    .venv/bin/python benchmarks/bench_pmed.py --first 1 --last 5

Prints one row per instance (n, p, proven optimum, exact objective and time, greedy objective,
gap to the optimum and time) and writes ``benchmarks/results/pmed.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from geosvc.locate import p_median, read_orlib_pmed

DATA = Path("/work/shared/data/orlib-pmed")
OUT = Path(__file__).resolve().parent / "results" / "pmed.json"


def read_optima(folder: Path) -> dict[str, float]:
    """Proven optimal costs from ``optima.csv``."""
    with open(folder / "optima.csv", newline="") as fh:
        return {row["instance"]: float(row["optimal_cost"]) for row in csv.DictReader(fh)}


def run_instance(path: Path, optimum: float, time_limit_s: float) -> dict[str, Any]:
    """Solve one instance both ways and return the table row."""
    costs, p = read_orlib_pmed(path)
    n = costs.shape[0]
    weights = np.ones(n)
    t0 = time.perf_counter()
    exact = p_median(costs, weights, p, solver="exact", time_limit_s=time_limit_s, mip_gap=0.0)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    greedy = p_median(costs, weights, p, solver="greedy", time_limit_s=time_limit_s)
    t_greedy = time.perf_counter() - t0
    return {
        "instance": path.stem,
        "n": n,
        "p": p,
        "optimum": optimum,
        "exact_objective": exact.objective,
        "exact_bound": exact.bound,
        "exact_status": exact.status,
        "exact_matches": bool(exact.objective == optimum),
        "exact_time_s": t_exact,
        "exact_mip_nodes": exact.info.get("mip_nodes"),
        "model_rows": exact.info.get("model_rows"),
        "model_cols": exact.info.get("model_cols"),
        "greedy_objective": greedy.objective,
        "greedy_gap_pct": 100.0 * (greedy.objective - optimum) / optimum,
        "greedy_bound": greedy.bound,
        "greedy_bound_gap_pct": 100.0 * greedy.gap,
        "greedy_swaps": greedy.info.get("swaps"),
        "greedy_time_s": t_greedy,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with pmedN.txt files")
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--last", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds per HiGHS solve")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"OR-Library folder {args.data} not found", file=sys.stderr)
        return 2
    optima = read_optima(args.data)
    # compile the numba kernels once so that the first row does not pay for it
    p_median(np.array([[0.0, 1.0], [1.0, 0.0]]), np.ones(2), 1)
    header = (
        f"{'instance':<9}{'n':>5}{'p':>5}{'optimum':>9}{'exact':>9}{'exact s':>9}"
        f"{'greedy':>9}{'gap %':>8}{'greedy s':>10}{'bound gap %':>13}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for k in range(args.first, args.last + 1):
        name = f"pmed{k}"
        row = run_instance(args.data / f"{name}.txt", optima[name], args.time_limit)
        rows.append(row)
        flag = "" if row["exact_matches"] else "  <-- MISMATCH"
        print(
            f"{name:<9}{row['n']:>5}{row['p']:>5}{row['optimum']:>9.0f}"
            f"{row['exact_objective']:>9.0f}{row['exact_time_s']:>9.2f}"
            f"{row['greedy_objective']:>9.0f}{row['greedy_gap_pct']:>8.2f}"
            f"{row['greedy_time_s']:>10.2f}{row['greedy_bound_gap_pct']:>13.2f}{flag}",
            flush=True,
        )
    total_exact = sum(r["exact_time_s"] for r in rows)
    total_greedy = sum(r["greedy_time_s"] for r in rows)
    matched = sum(r["exact_matches"] for r in rows)
    print("-" * len(header))
    print(
        f"exact optimum reproduced on {matched}/{len(rows)}; total time exact {total_exact:.1f} s, "
        f"greedy {total_greedy:.1f} s; mean greedy gap "
        f"{np.mean([r['greedy_gap_pct'] for r in rows]):.2f} %"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "OR-Library pmed (Beasley 1985)",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "settings": {"time_limit_s": args.time_limit, "exact_mip_gap": 0.0, "threads": 1},
        "rows": rows,
    }
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")
    return 0 if matched == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
