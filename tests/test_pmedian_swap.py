"""Vertex substitution and nearest-two for the p-median, against dense brute force."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from geosvc.locate import _pmedian_swap
from geosvc.locate._pmedian_swap import nearest_two, swap_pmedian


def _instance(seed: int) -> tuple[np.ndarray, sp.csr_array, np.ndarray]:
    """Dense costs (inf = not allowed), the same as CSR, and weights; integer costs half
    the time so that ties happen."""
    rng = np.random.default_rng(seed)
    n_cand, n_dem = int(rng.integers(3, 14)), int(rng.integers(4, 60))
    allowed = rng.random((n_cand, n_dem)) < rng.uniform(0.3, 1.0)
    vals = (rng.integers(0, 8, (n_cand, n_dem)).astype(float) if seed % 2
            else rng.uniform(0.0, 10.0, (n_cand, n_dem)))
    dense = np.where(allowed, vals, np.inf)
    rows, cols = np.nonzero(allowed)
    csr = sp.csr_array((vals[rows, cols], cols, np.r_[0, np.cumsum(allowed.sum(axis=1))]),
                       shape=(n_cand, n_dem))
    return dense, csr, rng.integers(0, 5, n_dem).astype(float)


def _cost(dense: np.ndarray, w: np.ndarray, sites: np.ndarray) -> float:
    best = dense[np.asarray(sites)].min(axis=0)
    return float(np.sum(np.where(w > 0, w * best, 0.0)))


@pytest.mark.parametrize("seed", range(40))
def test_nearest_two_matches_dense_sort(seed: int) -> None:
    dense, csr, _ = _instance(seed)
    rng = np.random.default_rng(seed + 100)
    sites = np.sort(rng.choice(dense.shape[0], int(rng.integers(1, dense.shape[0] + 1)),
                               replace=False))
    d1, n1, d2 = nearest_two(csr, sites)
    sub = dense[sites]
    order = np.argsort(sub, axis=0, kind="stable")  # ties: the smaller site index first
    s = np.sort(sub, axis=0)
    assert np.array_equal(d1, s[0])
    expect_n1 = np.where(np.isfinite(s[0]), sites[order[0]], -1)
    assert np.array_equal(n1, expect_n1)
    assert np.array_equal(d2, s[1] if len(sites) > 1 else np.full(dense.shape[1], np.inf))


@pytest.mark.parametrize("incremental", [True, False])
@pytest.mark.parametrize("seed", range(60))
def test_swap_ends_in_a_one_swap_local_optimum(seed: int, incremental: bool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """No single (open j, close r) swap that keeps every demand served lowers the cost;
    fixed sites stay open; the cost never rises.  Both searches: the incremental one and the
    one that values every swap from all entries (used when the tables would be too big)."""
    if not incremental:
        monkeypatch.setattr(_pmedian_swap, "MAX_SWAP_CELLS", 0)
    dense, csr, w = _instance(seed)
    n_cand = dense.shape[0]
    rng = np.random.default_rng(seed + 200)
    p = int(rng.integers(1, n_cand))
    # a start that serves every demand with weight: the cheapest site per demand first
    start = np.unique(np.argmin(dense[:, w > 0], axis=0))[:p] if (w > 0).any() else np.arange(0)
    start = np.concatenate([start, np.setdiff1d(np.arange(n_cand), start)])[:p]
    if not np.all(np.isfinite(dense[start].min(axis=0)) | (w == 0)):
        dense[start[0]] = np.where(np.isfinite(dense[start[0]]), dense[start[0]], 9.0)
        csr = sp.csr_array((dense[np.isfinite(dense)], np.nonzero(np.isfinite(dense))[1],
                            np.r_[0, np.cumsum(np.isfinite(dense).sum(axis=1))]),
                           shape=dense.shape)
    fixed = np.zeros(n_cand, dtype=bool)
    if seed % 3 == 0:
        fixed[start[0]] = True
    sites, n_swaps, stop = swap_pmedian(csr, w, start, fixed)
    assert stop == "local_optimum" and len(sites) == p and fixed[fixed].all()
    assert set(np.flatnonzero(fixed)) <= set(sites.tolist())
    final = _cost(dense, w, sites)
    assert final <= _cost(dense, w, start) + 1e-9
    assert n_swaps > 0 or set(sites.tolist()) == set(start.tolist())
    for j in np.setdiff1d(np.arange(n_cand), sites):
        for r in sites[~fixed[sites]]:
            trial = np.append(sites[sites != r], j)
            best = dense[trial].min(axis=0)
            if not np.all(np.isfinite(best) | (w == 0)):
                continue  # would leave a demand without an allowed open site
            assert _cost(dense, w, trial) >= final - 1e-9 * max(1.0, final)


def test_swap_never_leaves_demand_unserved() -> None:
    """Demand 2 is allowed only at site 1: the cheaper sites 2 and 3 may not replace it."""
    dense = np.array([[1.0, 1.0, np.inf], [5.0, 5.0, 4.0], [0.0, 0.0, np.inf],
                      [0.0, 0.0, np.inf]])
    csr = sp.csr_array((dense[np.isfinite(dense)], np.nonzero(np.isfinite(dense))[1],
                        np.r_[0, np.cumsum(np.isfinite(dense).sum(axis=1))]), shape=dense.shape)
    sites, n_swaps, _ = swap_pmedian(csr, np.ones(3), np.array([0, 1]), np.zeros(4, bool))
    assert 1 in sites.tolist() and n_swaps == 1 and sorted(sites.tolist()) == [1, 2]


def test_swap_respects_max_iter_and_deadline() -> None:
    dense, csr, w = _instance(7)
    start = np.arange(2)
    _, n_swaps, stop = swap_pmedian(csr, w, start, np.zeros(dense.shape[0], bool), max_iter=0)
    assert (n_swaps, stop) == (0, "max_iter")
    _, n_swaps, stop = swap_pmedian(csr, w, start, np.zeros(dense.shape[0], bool), deadline=0.0)
    assert (n_swaps, stop) == (0, "time_limit")


@pytest.mark.parametrize("seed", range(20))
def test_incremental_search_follows_the_full_one(seed: int) -> None:
    """Step by step (one swap per call) the incremental search makes the swap the
    all-entries search makes, on instances without exact ties (random real costs)."""
    dense, csr, w = _instance(2 * seed)  # even seeds: real-valued costs
    w = w + 1.0
    n_cand = dense.shape[0]
    start = np.arange(n_cand)[: max(1, n_cand // 3)]
    if not np.isfinite(dense[start].min(axis=0)).all():
        start = np.arange(n_cand)
    fixed = np.zeros(n_cand, dtype=bool)
    tol = 1e-10 * float(w.sum() * csr.data.max())
    sites_full, sites_inc = start, start
    for _ in range(n_cand):
        sites_full, n_full, _ = _pmedian_swap._swap_full(csr, csr.data, w, sites_full, fixed,
                                                        1, np.inf, tol)
        sites_inc, n_inc, _ = swap_pmedian(csr, w, sites_inc, fixed, max_iter=1)
        assert sites_inc.tolist() == sites_full.tolist() and n_inc == n_full
        if n_full == 0:
            break
