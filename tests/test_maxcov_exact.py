"""Exact max coverage through LP multipliers, a restricted MIP and Lagrangian fixing.

Oracles: enumeration of every k-subset of candidates (numpy), independent of geosvc's
relation, reductions and solver.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from geosvc.locate import _max_coverage, max_coverage
from geosvc.locate._cover_bound import lagrangian_value
from geosvc.locate._maxcov_exact import fixed_out, lp_duals


def planar(seed: int, n_cand: int = 14, n_dem: int = 120, radius: float = 2.2):
    rng = np.random.default_rng(seed)
    xy_c = rng.random((n_cand, 2)) * 10
    xy_d = rng.random((n_dem, 2)) * 10
    cov = np.sqrt(((xy_c[:, None] - xy_d[None]) ** 2).sum(axis=2)) <= radius
    w = rng.integers(1, 9, n_dem).astype(float)
    return cov, w


def subset_weights(cov: np.ndarray, w: np.ndarray, k: int):
    """Every k-subset of candidates with its covered weight."""
    subsets = list(itertools.combinations(range(cov.shape[0]), k))
    weights = np.array([w[cov[list(s)].any(axis=0)].sum() for s in subsets])
    return subsets, weights


def random_relation(seed: int, n_cand: int = 16, n_dem: int = 60, density: float = 0.2):
    """Random relations: their LP relaxations are far from integral, unlike small planar ones."""
    rng = np.random.default_rng(seed)
    return rng.random((n_cand, n_dem)) < density, rng.integers(1, 9, n_dem).astype(float)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("k", [3, 5])
def test_exact_max_coverage_equals_brute_force(seed: int, k: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The LP / restricted MIP / fixing / reduced MIP path, forced: the cheap Lagrangian
    bound and the swap search (which settle these small instances first) are switched off."""
    monkeypatch.setattr(_max_coverage, "lagrangian_max_coverage",
                        lambda indptr, indices, w, k, lower, **kw: (float(np.sum(w)), {}))
    monkeypatch.setattr(_max_coverage, "swap_max_coverage",
                        lambda indptr, indices, w, order: (order, {"stop": "off"}))
    cov, w = random_relation(seed)
    _, weights = subset_weights(cov, w, k)
    plan = max_coverage(cov, w, k, solver="exact", mip_gap=0.0)
    assert "lp_bound" in plan.info
    assert plan.objective == pytest.approx(weights.max())
    assert plan.objective == pytest.approx(w[cov[plan.sites].any(axis=0)].sum())
    assert plan.status == "optimal" and plan.bound == pytest.approx(weights.max())


@pytest.mark.parametrize("seed", range(4))
def test_exact_max_coverage_on_planar_instances(seed: int) -> None:
    cov, w = planar(seed, n_cand=18, n_dem=200, radius=2.0)
    _, weights = subset_weights(cov, w, 4)
    plan = max_coverage(cov, w, 4, solver="exact")
    assert plan.objective == pytest.approx(weights.max()) and plan.status == "optimal"


def test_fixing_removes_only_candidates_of_no_better_plan() -> None:
    """For every removed candidate, no k-subset containing it beats the given lower weight;
    over the instances the fixing must remove something (else the test checks nothing)."""
    k = 3
    removed = 0
    for seed in range(8):
        cov, w = random_relation(seed)
        rel = sp.csr_array(cov)
        subsets, weights = subset_weights(cov, w, k)
        lp = lp_duals(rel, w, k, time_limit_s=30.0)
        assert lp is not None
        for lower in (np.sort(weights)[-3], weights.max()):
            out, bound = fixed_out(rel, w, k, lp.u, float(lower), True,
                                   np.zeros(cov.shape[0], bool))
            assert bound >= weights.max() - 1e-6  # L(u) is an upper bound
            assert bound == pytest.approx(lp.value, rel=1e-6)  # at the LP duals: the LP bound
            for j in np.flatnonzero(out):
                best_with_j = max(wt for s, wt in zip(subsets, weights, strict=True) if j in s)
                assert best_with_j <= lower
            removed += int(out.sum())
    assert removed > 0


@pytest.mark.parametrize("seed", range(6))
def test_lagrangian_value_bounds_the_optimum_for_any_multipliers(seed: int) -> None:
    cov, w = planar(seed)
    rel = sp.csr_array(cov)
    k = 3
    opt = subset_weights(cov, w, k)[1].max()
    rng = np.random.default_rng(seed)
    for u in (np.zeros(w.size), w.copy(), rng.random(w.size) * w, rng.random(w.size) * 3):
        value, score = lagrangian_value(rel.indptr, rel.indices, w, u, k)
        assert value >= opt - 1e-9
        assert np.allclose(score, cov.astype(float) @ u)
