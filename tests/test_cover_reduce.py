"""Set cover of all demand: implied demand and dominated candidates removed in rounds.

Oracles: an enumeration of every candidate subset (bit masks, numpy) on planar instances
where the reductions remove most rows, and plain Python sets for the reduction's invariant.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from geosvc.locate import set_cover
from geosvc.locate._reduce import DOMINANCE_MAX_WORK, aggregate_demand, reduce_cover_all


def planar_cover(seed: int, n_cand: int = 13, n_dem: int = 90) -> np.ndarray:
    """Candidates and demand in a 10 x 10 square, covered within a radius of 3."""
    rng = np.random.default_rng(seed)
    xy_c = rng.random((n_cand, 2)) * 10
    xy_d = rng.random((n_dem, 2)) * 10
    dist = np.sqrt(((xy_c[:, None] - xy_d[None]) ** 2).sum(axis=2))
    return dist <= 3.0


def brute_force_cover(cov: np.ndarray, cost: np.ndarray) -> float:
    """Cheapest subset covering every coverable demand, over all 2^n subsets."""
    n_cand = cov.shape[0]
    need = cov.any(axis=0)
    masks = (cov[:, need].astype(np.int64) << np.arange(n_cand)[:, None]).sum(axis=0)
    subsets = np.arange(1 << n_cand, dtype=np.int64)
    covers = np.all((subsets[:, None] & masks[None, :]) != 0, axis=1)
    bits = (subsets[:, None] >> np.arange(n_cand)) & 1
    return float((bits[covers] * cost).sum(axis=1).min())


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("unit", [True, False])
def test_full_cover_after_reductions_equals_brute_force(seed: int, unit: bool) -> None:
    cov = planar_cover(seed)
    w = np.random.default_rng(seed).integers(1, 5, cov.shape[1]).astype(float)
    cost = np.ones(cov.shape[0]) if unit else np.random.default_rng(seed + 50).integers(
        1, 4, cov.shape[0]).astype(float)
    opt = brute_force_cover(cov, cost)
    plan = set_cover(cov, w, costs=None if unit else cost, solver="exact")
    red = plan.info["reduction"]
    assert red["demand_rows"] < red["demand_after"]  # the test exercises the row reduction
    assert plan.objective == pytest.approx(opt)
    assert plan.status in ("optimal", "infeasible_partial")
    covered = cov[plan.sites].any(axis=0)
    assert np.array_equal(covered, cov.any(axis=0))  # every coverable demand point covered
    greedy = set_cover(cov, w, costs=None if unit else cost)
    assert greedy.info["objective_check"] == "passed"
    assert np.array_equal(cov[greedy.sites].any(axis=0), cov.any(axis=0))
    assert greedy.bound <= opt + 1e-9 <= greedy.objective + 1e-9 < np.inf


@pytest.mark.parametrize("seed", range(6))
def test_every_removed_demand_contains_a_kept_one(seed: int) -> None:
    """The reduction's invariant checked with Python sets on the aggregated relation: each
    dropped demand column's candidates include a kept column's candidates among the kept
    candidates, so any cover of the kept rows covers all rows."""
    cov = sp.csr_array(planar_cover(seed, 12, 120))
    w = np.ones(cov.shape[1])
    cov_g, _, _ = aggregate_demand(cov, w, np.asarray(cov.sum(axis=0)).ravel() > 0)
    info: dict = {}
    cost = np.ones(cov.shape[0])
    reduced, rows = reduce_cover_all(cov_g, cost, cov.shape[1], info)
    dense_g = cov_g.toarray().astype(bool)
    dense_r = reduced.toarray().astype(bool)
    assert dense_r.shape == (cov.shape[0], int(rows.sum()))
    kept_cands = dense_r.any(axis=1)
    kept_sets = [set(np.flatnonzero(col)) for col in dense_r.T]
    assert all(kept_sets)  # every kept row is still coverable
    for col in np.flatnonzero(~rows):
        full = set(np.flatnonzero(dense_g[:, col]))
        assert any(s <= full for s in kept_sets), col
    # each kept row's set is its original set restricted to the kept candidates
    for new, old in enumerate(np.flatnonzero(rows)):
        assert kept_sets[new] == set(np.flatnonzero(dense_g[:, old] & kept_cands))
    assert info["reduction"]["demand_rows"] == int(rows.sum())


def test_implied_demand_test_is_skipped_above_its_work_limit(monkeypatch) -> None:
    from geosvc.locate import _reduce

    monkeypatch.setattr(_reduce, "DOMINANCE_MAX_WORK", 10)
    cov = planar_cover(3)
    w = np.ones(cov.shape[1])
    plan = set_cover(cov, w, solver="exact")
    assert plan.info["reduction"]["implied_demand"].startswith("not tested")
    assert plan.objective == brute_force_cover(cov, np.ones(cov.shape[0]))
    assert DOMINANCE_MAX_WORK > 10
