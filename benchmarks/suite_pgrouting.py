"""pgRouting as a peer: the nearest-facility search and the coverage relation in PostgreSQL.

The benchmark starts its own PostgreSQL + PostGIS + pgRouting server (``tests.pgserver``),
loads the city's street edges (``COPY``; the load time is reported as a set-up row, not
compared) and runs

* one multi-source bounded search from every facility node (``pgr_drivingDistance`` with
  ``equicost``: each node gets the cost of its nearest facility), against geosvc's
  ``nearest_facility`` bounded at the same distance for points at the same nodes;
* single-source bounded searches from candidate nodes (``pgr_drivingDistance`` with several
  start vertices and ``equicost = false``: one reach set per candidate) for a sample of
  candidates, scaled to all candidates, against geosvc's ``pairs_within`` for all candidates.

Exactness: node costs from pgRouting against geosvc's node distances (both node-level here).
"""

from __future__ import annotations

import io
import math

import numpy as np

from benchmarks._harness import Recorder
from benchmarks.suite_network import LIMIT_M, NUMBA_THREADS, _city, node_anchors
from geosvc.access import nearest_facility
from geosvc.access._pairs import pairs_within

__all__ = ["case_pgrouting"]

_EDGES_SQL = "SELECT id, source, target, cost, cost AS reverse_cost FROM edges"


def _load_edges(conn, u: np.ndarray, v: np.ndarray, length_m: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE edges (id bigint, source bigint, target bigint, cost float8)")
        buf = io.StringIO()
        # vertex ids are node indices + 1 (pgRouting reserves 0)
        # lengths at full double precision, so both sides search the same graph exactly
        np.savetxt(buf, np.c_[np.arange(1, len(u) + 1), u + 1, v + 1, length_m],
                   fmt=["%d", "%d", "%d", "%.17g"],
                   delimiter="\t")
        buf.seek(0)
        with cur.copy("COPY edges FROM STDIN") as copy:
            while chunk := buf.read(1 << 20):
                copy.write(chunk)
        cur.execute("CREATE INDEX ON edges (source)")
        cur.execute("CREATE INDEX ON edges (target)")
        cur.execute("ANALYZE edges")
    conn.commit()


def _driving(conn, starts: np.ndarray, equicost: bool) -> list[tuple]:  # type: ignore[no-untyped-def]
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM pgr_drivingDistance(%s, %s::bigint[], %s, directed => false, "
                    "equicost => %s)", (_EDGES_SQL, (starts + 1).tolist(), LIMIT_M, equicost))
        names = [d.name for d in cur.description]
        rows = cur.fetchall()
    start_col = "start_vid" if "start_vid" in names else "from_v"
    i_s, i_n, i_c = names.index(start_col), names.index("node"), names.index("agg_cost")
    return [(r[i_s] - 1, r[i_n] - 1, r[i_c]) for r in rows]


def _networkx_reference(net, sources: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Bounded multi-source node distances with networkx on the raw edge arrays."""
    import networkx as nx

    G = nx.Graph()
    order = np.argsort(-net.edge_length_m)  # keep the shortest of parallel edges (added last)
    G.add_weighted_edges_from(zip(net.edge_u[order].tolist(), net.edge_v[order].tolist(),
                                  net.edge_length_m[order].tolist(), strict=True))
    d = nx.multi_source_dijkstra_path_length(G, set(sources.tolist()), cutoff=LIMIT_M)
    ref = np.full(net.n_nodes, np.inf)
    ref[np.fromiter(d.keys(), dtype=np.int64)] = np.fromiter(d.values(), dtype=np.float64)
    return ref


def case_pgrouting(quick: bool) -> Recorder:
    """geosvc vs pgRouting on the city: nearest facility and the coverage relation."""
    import psycopg

    from tests.pgserver import PASSWORD, TempPostgres

    rec = Recorder("pgrouting", "generated city")
    c = _city(quick, rec)
    net = c.net
    try:
        server = rec.timed("pg_start", "initdb + start PostgreSQL (PostGIS, pgRouting)",
                           lambda: TempPostgres().start(), task="peer set-up (not compared)",
                           threads=1, repeat=1)
    except (RuntimeError, OSError) as exc:
        rec.notes.append(f"pgRouting peer skipped: {exc}")
        return rec
    try:
        version = server.sql("SELECT pgr_version()").strip()
        rec.info["pgrouting"] = version
        conn = psycopg.connect(host="127.0.0.1", port=server.port, user="geosvc",
                               password=PASSWORD, dbname="geosvc")
        rec.timed("pg_load", f"COPY {net.n_edges:,} edges + indexes",
                  lambda: _load_edges(conn, net.edge_u, net.edge_v, net.edge_length_m),
                  task="peer set-up: database load (not compared)", threads=1, repeat=1)
        # ---------------- nearest facility: facilities at nodes ---------------------------
        rng = np.random.default_rng(3)
        f_nodes = np.unique(rng.choice(net.n_nodes, size=len(c.case.facility_xy),
                                       replace=False))
        all_nodes = np.arange(net.n_nodes)
        f_anchor = node_anchors(net, f_nodes, c.node_compound)
        n_anchor = node_anchors(net, all_nodes, c.node_compound)
        task = (f"nearest facility within {LIMIT_M:g} m, {len(f_nodes)} facilities, "
                f"every node ({net.n_nodes:,})")
        ours = rec.timed("geosvc_nearest", "geosvc nearest_facility(limit_m) at every node",
                         lambda: nearest_facility(net, f_anchor, n_anchor, limit_m=LIMIT_M),
                         task=task, threads=NUMBA_THREADS, repeat=5)
        rows = rec.timed("pgr_nearest", "pgRouting pgr_drivingDistance(equicost) + fetch",
                         lambda: _driving(conn, f_nodes, True), task=task, threads=1, repeat=3,
                         budget_s=20.0)
        pg_cost = np.full(net.n_nodes, np.inf)
        if rows:
            arr = np.asarray([(r[1], r[2]) for r in rows], dtype=np.float64)
            pg_cost[arr[:, 0].astype(np.int64)] = arr[:, 1]
        ref = _networkx_reference(net, f_nodes)
        fin = np.isfinite(ref)
        ours_err = float(np.max(np.abs(ours.distance_m[fin] - ref[fin]))) if fin.any() \
            else math.nan
        ours_same = bool(np.array_equal(fin, np.isfinite(ours.distance_m)
                                        & (ours.distance_m <= LIMIT_M)))
        pg_ok = fin & np.isfinite(pg_cost)
        pg_diff = np.abs(pg_cost[pg_ok] - ref[pg_ok])
        pg_err = float(pg_diff.max()) if pg_diff.size else math.nan
        pg_same = bool(np.array_equal(fin, np.isfinite(pg_cost)))
        rec.info["nearest_exactness"] = {
            "geosvc_vs_networkx_max_m": ours_err, "geosvc_same_reached": ours_same,
            "pgrouting_vs_networkx_max_m": pg_err, "pgrouting_same_reached": pg_same,
            "pgrouting_nodes_off_by_more_than_1mm": int((pg_diff > 1e-3).sum())}
        rec.compare(task, "geosvc_nearest", "pgr_nearest", goal=">= 20x pgRouting",
                    min_speedup=20, exact=ours_err < 1e-6 and ours_same,
                    exactness=f"oracle networkx multi-source Dijkstra (cutoff {LIMIT_M:g} m): "
                    f"geosvc max |diff| {ours_err:.1e} m, same reached set {ours_same}; "
                    f"pgRouting {version} equicost max |diff| {pg_err:.1e} m at "
                    f"{int((pg_diff > 1e-3).sum())} nodes (too long), same reached set "
                    f"{pg_same}")
        # ---------------- coverage relation ---------------------------------------------
        from geosvc.access import snap_points

        cand = snap_points(net, c.case.candidate_xy)
        n_cand = len(cand)
        task2 = (f"coverage relation {n_cand:,} candidates x {len(c.households):,} households "
                 f"within {LIMIT_M:g} m")
        rec.timed("geosvc_pairs", "geosvc pairs_within (all candidates)",
                  lambda: pairs_within(net, cand, c.households, LIMIT_M), task=task2,
                  threads=NUMBA_THREADS, repeat=3, budget_s=10.0)
        n_sub = min(200, n_cand)
        sub_nodes = rng.choice(net.n_nodes, size=n_sub, replace=False)
        sub_rows = rec.timed("pgr_pairs_part", f"pgRouting pgr_drivingDistance, {n_sub} "
                             "single-source searches + fetch",
                             lambda: _driving(conn, sub_nodes, False), task=f"{n_sub} candidates",
                             threads=1, repeat=1)
        scale = n_cand / n_sub
        rec.add("pgr_pairs", f"pgRouting single-source searches, {n_cand:,} candidates (scaled)",
                rec.seconds("pgr_pairs_part") * scale, task=task2, threads=1,
                peak_mb=rec.rows["pgr_pairs_part"]["peak_mb"],
                note=f"measured on {n_sub} candidates x{scale:g}; node reach sets only (the "
                "join to households is not counted for pgRouting)")
        # exactness on the sample: per-source node costs vs geosvc at nodes
        got = np.asarray(sub_rows, dtype=np.float64).reshape(-1, 3)
        worst = 0.0
        for src_node in sub_nodes[:20]:
            one = nearest_facility(net, node_anchors(net, np.array([src_node]), c.node_compound),
                                   n_anchor, limit_m=LIMIT_M).distance_m
            mine = got[got[:, 0] == src_node]
            if len(mine):
                worst = max(worst, float(np.max(np.abs(one[mine[:, 1].astype(np.int64)]
                                                       - mine[:, 2]))))
        rec.compare(task2, "geosvc_pairs", "pgr_pairs", goal=">= 20x pgRouting", min_speedup=20,
                    exact=worst < 1e-6,
                    exactness=f"20 sources: max |pgRouting - geosvc| node cost = {worst:.1e} m")
        conn.close()
    finally:
        server.stop()
    return rec
