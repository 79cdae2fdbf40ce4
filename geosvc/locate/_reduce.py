"""Exact reductions of a candidate x demand relation before a model is built.

Three reductions keep every optimum while shrinking the model:

- :func:`aggregate_demand` merges demand with identical covering-candidate sets into one
  column with the summed weight (all coverage models);
- :func:`drop_dominated` empties candidates whose covered set lies inside another
  candidate's at no lower cost (all coverage models);
- :func:`reduce_cover_all` (set cover of all demand only) alternates that with removing
  implied demand: demand whose covering set contains another demand's set is covered
  whenever that one is, so its row says nothing.

Both work on the CSR arrays in compiled code with memory linear in the relation (no
candidate x candidate product unless it is small), so they stay usable on a city's relation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from numba import njit

__all__ = ["aggregate_demand", "drop_dominated", "reduce_cover_all", "canonical_relation",
           "DOMINANCE_MAX_WORK", "keep_demand", "keep_candidates"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: The dominance test multiplies the relation by its transpose; its work is the sum over
#: demand columns of (covering candidates)^2.  Above this it is skipped (and said so in
#: ``info["reduction"]``): the plan stays exact, the model is only larger.
DOMINANCE_MAX_WORK = 50_000_000


def canonical_relation(indptr: Any, indices: Any, shape: tuple[int, int]) -> sp.csr_array:
    """A boolean CSR over the given arrays (no copy of ``indices``; rows must be sorted)."""
    data = np.ones(len(indices), dtype=bool)
    mat = sp.csr_array((data, indices, indptr), shape=shape)
    mat.has_sorted_indices = True
    return mat


@njit(cache=True)
def _signatures(indptr: Any, indices: Any, n_dem: int, key1: Any, key2: Any) -> Any:  # pragma: no cover - njit
    """Two 64-bit sums of random candidate keys and the count, per demand column."""
    s1 = np.zeros(n_dem, np.uint64)
    s2 = np.zeros(n_dem, np.uint64)
    cnt = np.zeros(n_dem, np.int64)
    for c in range(indptr.shape[0] - 1):
        k1 = key1[c]
        k2 = key2[c]
        for q in range(indptr[c], indptr[c + 1]):
            i = indices[q]
            s1[i] += k1
            s2[i] += k2
            cnt[i] += 1
    return s1, s2, cnt


@njit(cache=True)
def _unequal_to_rep(indptr: Any, indices: Any, group: Any, rep: Any) -> Any:  # pragma: no cover
    """Columns whose candidate set is not their representative's (rows sorted).

    Counts are equal within a group, so "every candidate of ``i`` also covers ``rep``"
    proves the sets equal.
    """
    bad = np.zeros(group.shape[0], np.bool_)
    for c in range(indptr.shape[0] - 1):
        lo = indptr[c]
        hi = indptr[c + 1]
        for q in range(lo, hi):
            i = indices[q]
            g = group[i]
            if g < 0:
                continue
            r = rep[g]
            if r == i:
                continue
            a, b = lo, hi
            while a < b:
                mid = (a + b) >> 1
                if indices[mid] < r:
                    a = mid + 1
                else:
                    b = mid
            if a >= hi or indices[a] != r:
                bad[i] = True
    return bad


@njit(cache=True)
def _keep_columns(indptr: Any, indices: Any, new_col: Any) -> Any:  # pragma: no cover - njit
    """The relation restricted to columns with ``new_col >= 0``, renumbered (int32)."""
    n = indptr.shape[0] - 1
    out_ptr = np.zeros(n + 1, np.int64)
    for c in range(n):
        m = 0
        for q in range(indptr[c], indptr[c + 1]):
            if new_col[indices[q]] >= 0:
                m += 1
        out_ptr[c + 1] = out_ptr[c] + m
    out = np.empty(out_ptr[n], np.int32)
    for c in range(n):
        o = out_ptr[c]
        for q in range(indptr[c], indptr[c + 1]):
            g = new_col[indices[q]]
            if g >= 0:
                out[o] = g
                o += 1
    return out_ptr, out


def _groups_of(sig1: Any, sig2: Any, cnt: Any, dem: IntArray) -> tuple[IntArray, IntArray]:
    """Group ids (numbered by their first member's index) and each group's first member."""
    order = np.lexsort((dem, cnt[dem], sig2[dem], sig1[dem]))
    d = dem[order]
    new = np.ones(d.size, dtype=bool)
    new[1:] = ((sig1[d][1:] != sig1[d][:-1]) | (sig2[d][1:] != sig2[d][:-1])
               | (cnt[d][1:] != cnt[d][:-1]))
    run = np.cumsum(new) - 1
    first = d[new]  # smallest index of each run (dem ascending inside a run)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    group_of_d = rank[run]
    out = np.empty(d.size, dtype=np.int64)
    out[order] = group_of_d
    return out, np.sort(first)


def aggregate_demand(
    cov: sp.csr_array, w: FloatArray, active_dem: BoolArray
) -> tuple[sp.csr_array, FloatArray, IntArray]:
    """Merge active demand with identical covering-candidate sets (an exact reduction).

    Households of one building or one block usually see exactly the same candidates; for the
    coverage models they are interchangeable, so one column per distinct set with the summed
    weight gives the same optimum with a much smaller model.  Sets are grouped by two
    independent 64-bit random signatures and the count, and every member is then checked
    entry by entry against its group's first member, so the grouping is exact.  Groups are
    numbered in the order of their first member, which keeps rows sorted.

    Returns
    -------
    cov_g, w_g, group
        Candidate x group coverage (boolean, sorted rows), group weights, and each demand's
        group (-1 if inactive).
    """
    n_cand, n_dem = cov.shape
    cov = _sorted(cov)
    group: IntArray = np.full(n_dem, -1, dtype=np.int64)
    dem = np.flatnonzero(active_dem)
    if dem.size == 0:
        return sp.csr_array((n_cand, 0), dtype=bool), np.zeros(0), group
    rng = np.random.default_rng(20240601)
    keys = rng.integers(0, np.iinfo(np.int64).max, size=(2, n_cand), dtype=np.int64)
    s1, s2, cnt = _signatures(cov.indptr, cov.indices, n_dem, keys[0].astype(np.uint64),
                              keys[1].astype(np.uint64))
    g_dem, first = _groups_of(s1, s2, cnt, dem)
    group[dem] = g_dem
    bad = _unequal_to_rep(cov.indptr, cov.indices, group, first)
    if bad.any():  # pragma: no cover - needs a 128-bit signature collision
        lone = np.flatnonzero(bad)
        group[lone] = -1
        keep = np.flatnonzero(group >= 0)
        _, first_k, inv = np.unique(group[keep], return_index=True, return_inverse=True)
        group[keep] = inv.reshape(-1)
        group[lone] = first_k.size + np.arange(lone.size)
        first = np.concatenate([keep[first_k], lone])
        order = np.argsort(first, kind="stable")
        rank = np.empty(first.size, dtype=np.int64)
        rank[order] = np.arange(first.size)
        group[group >= 0] = rank[group[group >= 0]]
        first = first[order]
    n_groups = int(first.size)
    w_g = np.bincount(group[dem], weights=w[dem], minlength=n_groups).astype(np.float64)
    new_col = np.full(n_dem, -1, dtype=np.int64)
    new_col[first] = np.arange(n_groups)
    ptr, idx = _keep_columns(cov.indptr, cov.indices, new_col)
    return canonical_relation(ptr, idx, (n_cand, n_groups)), w_g, group


def _sorted(cov: sp.csr_array) -> sp.csr_array:
    if cov.has_sorted_indices:
        return cov
    out = sp.csr_array(cov, copy=True)
    out.sort_indices()
    return out


def drop_dominated(
    cov_g: sp.csr_array, cost: FloatArray, n_dem: int, info: dict[str, Any]
) -> sp.csr_array:
    """The relation with dominated candidates emptied (an exact reduction for the models).

    Candidate ``j`` is dominated when another candidate ``j'`` covers every demand group ``j``
    covers at no higher cost (ties: the larger set, then the lower index wins); any plan
    using ``j`` is no worse with ``j'`` instead (or with neither, when ``j'`` is already in
    it).  Candidates covering nothing are dominated too.  The test is skipped (the relation
    returned as is, ``info["reduction"]["dominance"]`` says why) when its work exceeds
    :data:`DOMINANCE_MAX_WORK`.  Sizes before/after go to ``info["reduction"]``.
    """
    n_cand = cov_g.shape[0]
    size = np.diff(cov_g.indptr)
    col_count = np.bincount(cov_g.indices, minlength=cov_g.shape[1]).astype(np.float64)
    work = float(np.sum(col_count ** 2))
    red: dict[str, Any] = {"demand_before": int(n_dem), "demand_after": int(cov_g.shape[1]),
                           "candidates_before": int(n_cand)}
    info["reduction"] = red
    if work > DOMINANCE_MAX_WORK:
        dominated = size == 0
        red["dominance"] = (f"only empty candidates removed: the subset test would take "
                            f"{work:.3g} operations (> {DOMINANCE_MAX_WORK:.3g})")
    else:
        a = sp.csr_array((np.ones(cov_g.nnz), cov_g.indices, cov_g.indptr), shape=cov_g.shape)
        over = sp.coo_array(a @ a.T)
        j, jp, v = over.row, over.col, over.data
        sub = (j != jp) & (v >= size[j] - 0.5)  # groups(j) within groups(j')
        j, jp = j[sub], jp[sub]
        wins = (cost[jp] < cost[j]) | (
            (cost[jp] == cost[j]) & ((size[jp] > size[j]) | ((size[jp] == size[j]) & (jp < j)))
        )
        dominated = size == 0
        dominated[j[wins]] = True
        red["dominance"] = "subset test"
    red["candidates_after"] = int(n_cand - dominated.sum())
    if not dominated.any():
        return cov_g
    return keep_candidates(cov_g, ~dominated)


def keep_candidates(cov: sp.csr_array, keep: BoolArray) -> sp.csr_array:
    """``cov`` with the rows of candidates outside ``keep`` emptied (same shape, numbering)."""
    size = np.diff(cov.indptr)
    ptr = np.zeros(cov.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.where(keep, size, 0), out=ptr[1:])
    return canonical_relation(ptr, cov.indices[np.repeat(keep, size)], cov.shape)


def _implied_demand(cov: sp.csr_array, live: BoolArray) -> BoolArray:
    """Live demand columns whose candidate set contains another live column's set.

    Of two equal sets the higher index is the implied one, so every implied column keeps a
    live column whose set lies inside its own (subset order is transitive).
    """
    n_cand, n_dem = cov.shape
    size = np.bincount(cov.indices, minlength=n_dem)
    a = sp.csr_array((np.ones(cov.nnz), cov.indices, cov.indptr), shape=(n_cand, n_dem))
    over = sp.coo_array(a.T @ a)
    i, k, v = over.row, over.col, over.data
    sub = (i != k) & live[i] & live[k] & (v >= size[i] - 0.5)  # set(i) within set(k)
    i, k = i[sub], k[sub]
    implied = np.zeros(n_dem, dtype=bool)
    implied[k[(size[i] < size[k]) | (i < k)]] = True
    return implied


def _without_columns(cov: sp.csr_array, drop: BoolArray) -> sp.csr_array:
    """``cov`` with the entries of the ``drop`` columns removed (same shape and numbering)."""
    new_col = np.where(drop, -1, np.arange(cov.shape[1], dtype=np.int64))
    ptr, idx = _keep_columns(cov.indptr, cov.indices.astype(np.int64), new_col)
    return canonical_relation(ptr, idx, cov.shape)


def reduce_cover_all(
    cov_g: sp.csr_array, cost: FloatArray, n_dem: int, info: dict[str, Any]
) -> tuple[sp.csr_array, BoolArray]:
    """Dominated candidates and implied demand removed in turn until neither changes.

    For the set cover of *all* demand only: a plan covers every kept demand column exactly
    when it covers every column, and (with the kept columns as the demand) a dominated
    candidate can always be swapped for its dominator.  Removing candidates can make more
    demand implied and the other way round, hence the rounds.  Skipped (after the first
    candidate pass) when the implied-demand test's work, the sum over candidates of
    (covered columns)^2, exceeds :data:`DOMINANCE_MAX_WORK`.

    Returns
    -------
    relation, rows
        The relation over the kept demand columns only (renumbered in their order, dominated
        candidates emptied) and the mask of kept columns in ``cov_g``.
    """
    cov = drop_dominated(cov_g, cost, n_dem, info)
    red = info["reduction"]
    live = np.bincount(cov.indices, minlength=cov.shape[1]) > 0
    work = float(np.sum(np.diff(cov.indptr).astype(np.float64) ** 2))
    if work > DOMINANCE_MAX_WORK:
        red["implied_demand"] = (f"not tested: the test would take {work:.3g} operations "
                                 f"(> {DOMINANCE_MAX_WORK:.3g})")
        red["demand_rows"] = int(live.sum())
        return keep_demand(cov, live), live
    rounds = 0
    while True:
        rounds += 1
        implied = _implied_demand(cov, live)
        if not implied.any():
            break
        live &= ~implied
        cov = _without_columns(cov, implied)
        before = int(np.count_nonzero(np.diff(cov.indptr)))
        sub_info: dict[str, Any] = {}
        cov = drop_dominated(cov, cost, n_dem, sub_info)
        if int(np.count_nonzero(np.diff(cov.indptr))) == before:
            break
    red["candidates_after"] = int(np.count_nonzero(np.diff(cov.indptr)))
    red["demand_rows"] = int(live.sum())
    red["implied_demand"] = f"subset test, {rounds} round(s)"
    return keep_demand(cov, live), live


def keep_demand(cov: sp.csr_array, keep: BoolArray) -> sp.csr_array:
    """The relation over the ``keep`` columns only, renumbered in their order."""
    new_col = np.full(cov.shape[1], -1, dtype=np.int64)
    new_col[keep] = np.arange(int(keep.sum()))
    ptr, idx = _keep_columns(cov.indptr, cov.indices.astype(np.int64), new_col)
    return canonical_relation(ptr, idx, (cov.shape[0], int(keep.sum())))
