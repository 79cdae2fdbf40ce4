"""Level generation and the Lagrangian heuristic of the p-median, against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from geosvc.locate import _highs, p_median
from geosvc.locate import _pmedian as pm
from geosvc.locate._pmedian_model import pmedian_model, pmedian_start
from geosvc.locate._pmedian_search import lagrangian_heuristic, next_cost_above, set_costs
from geosvc.locate._pmedian_swap import swap_pmedian


def planar(seed: int, n_cand: int, n_dem: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cand = rng.random((n_cand, 2)) * 100
    dem = rng.random((n_dem, 2)) * 100
    c = np.sqrt(((cand[:, None, :] - dem[None, :, :]) ** 2).sum(axis=2))
    return np.round(c, 1), rng.integers(1, 10, n_dem).astype(float)


def served_costs(c: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """Cost from every demand to its nearest site, for each subset (rows)."""
    return c[subsets].min(axis=1)


def all_subsets(n: int, p: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(n), p)), dtype=np.int64)


@pytest.mark.parametrize("seed", range(6))
def test_truncated_model_is_the_capped_problem(seed: int) -> None:
    """The truncated model's optimum is min over plans of sum w min(cut, nearest)."""
    rng = np.random.default_rng(100 + seed)
    c, w = planar(seed, 8, 25)
    p = 2 + seed % 2
    cut = np.where(rng.random(25) < 0.7, rng.uniform(5, 60, 25), np.inf)
    closed = np.zeros(8, dtype=bool)
    closed[seed % 8] = seed >= 3
    subsets = all_subsets(8, p)
    subsets = subsets[~closed[subsets].any(axis=1)]
    d = served_costs(c, subsets)
    brute = float((w * np.minimum(d, cut)).sum(axis=1).min())
    model = pmedian_model(sp.csr_array(c), w, np.ones(25, bool), np.zeros(8, bool), p,
                                 closed, cut)
    res = _highs.solve(model, relax=False, time_limit_s=30, mip_gap=0.0)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(brute, rel=1e-9)
    # the start vector of any plan is valued at its capped cost
    plan = np.zeros(8, dtype=bool)
    plan[subsets[0]] = True
    x = pmedian_start(model, plan)
    capped = float((w * np.minimum(d[0], cut)).sum())
    assert float(model.col_cost @ x + model.offset) == pytest.approx(capped, rel=1e-9)


def test_truncated_model_of_sparse_costs() -> None:
    """Forbidden pairs: only a demand that lost sites to its cut may be left at the cut."""
    c, w = planar(3, 8, 25)
    c[c > 45] = 0.0
    cost = sp.csr_array(c)  # stored entries only: zeros above 45 are not stored
    dense = np.where(c > 0, c, np.inf)
    active = np.isfinite(dense).any(axis=0)
    cut = np.where(np.arange(25) % 3 == 0, 50.0, 25.0)
    model = pmedian_model(cost, w, active, np.zeros(8, bool), 2, None, cut)
    res = _highs.solve(model, relax=False, time_limit_s=30, mip_gap=0.0)
    d = served_costs(dense, all_subsets(8, 2))
    truncated = (np.isfinite(dense) & (dense >= cut[None, :])).any(axis=0)
    charged = np.where(truncated, np.minimum(d, cut), d)[:, active]
    assert truncated.any() and (~truncated & active).any()
    assert res.objective == pytest.approx(float((w[active] * charged).sum(axis=1).min()))


@pytest.mark.parametrize("seed", range(3))
def test_level_generation_from_tight_cuts_reaches_the_brute_force_optimum(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cuts right above each demand's cheapest cost force many rounds; the answer stays exact."""
    c, w = planar(10 + seed, 12, 40)
    opt = float((w * served_costs(c, all_subsets(12, 3))).sum(axis=1).min())

    def tight(run: pm._Run, start_mask: np.ndarray) -> np.ndarray:
        return next_cost_above(run.cmat, run.cmat.min(axis=0).toarray().ravel())

    monkeypatch.setattr(pm, "_first_cut", tight)
    plan = p_median(c, w, 3, solver="exact", mip_gap=0.0)
    assert plan.info["level_rounds"] >= 2
    assert plan.objective == pytest.approx(opt, rel=1e-12)
    assert plan.status == "optimal" and plan.bound == pytest.approx(opt, rel=1e-9)


@pytest.mark.parametrize("seed", range(2))
def test_exact_p_median_on_a_planar_instance_equals_brute_force(seed: int) -> None:
    """30 x 300, p = 4 (27,405 plans): big enough for truncated ladders, small enough to enumerate."""
    c, w = planar(20 + seed, 30, 300)
    subsets = all_subsets(30, 4)
    costs = np.concatenate([(w * served_costs(c, s)).sum(axis=1)
                            for s in np.array_split(subsets, 10)])
    opt = float(costs.min())
    plan = p_median(c, w, 4, solver="exact", mip_gap=0.0)
    assert plan.objective == pytest.approx(opt, rel=1e-12) and plan.status == "optimal"
    greedy = p_median(c, w, 4)
    assert opt <= greedy.objective and greedy.bound <= opt + 1e-6


def test_set_costs_and_next_cost_above_against_numpy() -> None:
    rng = np.random.default_rng(5)
    c, w = planar(5, 10, 40)
    c[rng.random(c.shape) < 0.3] = 0.0
    cost = sp.csr_array(c)
    dense = np.where(c > 0, c, np.inf)
    active = rng.random(40) < 0.9
    masks = rng.random((30, 10)) < 0.4
    got = set_costs(cost, w, active, masks)
    for s in range(30):
        d = dense[masks[s]].min(axis=0) if masks[s].any() else np.full(40, np.inf)
        want = np.inf if np.isinf(d[active]).any() else float((w * d)[active].sum())
        assert got[s] == pytest.approx(want)
    level = rng.uniform(0, 120, 40)
    above = np.where(dense > level[None, :], dense, np.inf).min(axis=0)
    np.testing.assert_array_equal(next_cost_above(cost, level), above)


def test_lagrangian_heuristic_polishes_the_best_sets() -> None:
    c, w = planar(7, 15, 120)
    cost = sp.csr_array(c)
    active = np.ones(120, dtype=bool)
    rng = np.random.default_rng(0)
    sets = [np.isin(np.arange(15), rng.choice(15, 3, replace=False)) for _ in range(12)]
    mask, value = lagrangian_heuristic(cost, w, active, np.zeros(15, bool), sets)
    assert mask is not None and mask.sum() == 3
    assert value == pytest.approx(float((w * c[mask].min(axis=0)).sum()))
    raw = [float((w * c[s].min(axis=0)).sum()) for s in sets]
    assert value <= min(raw)


def test_swap_reports_why_it_stopped() -> None:
    c, w = planar(1, 12, 60)
    cost = sp.csr_array(c)
    start = np.arange(4)
    _, n_swaps, stop = swap_pmedian(cost, w, start, np.zeros(12, bool), max_iter=1)
    assert (n_swaps, stop) == (1, "max_iter")
    _, _, stop = swap_pmedian(cost, w, start, np.zeros(12, bool))
    assert stop == "local_optimum"
