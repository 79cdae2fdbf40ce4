"""Set-cover local search: drop sites, repair greedily, remove redundant ones (numba).

A large-neighbourhood search over a feasible cover: each move closes one site and one of its
neighbours (a site sharing demand with it, or a random one), re-covers the demand they leave
with the most cost-effective sites (ties broken at random), then drops every site that has
become redundant, most expensive first.  A move is kept when the cover costs no more than
before (equal-cost moves let the search walk across plateaus, which unit-cost covers are full
of); the cheapest cover seen is returned.  The search is deterministic for a given seed.
"""

# numba seeds and draws from its own legacy-API generator inside compiled code
# ruff: noqa: NPY002
from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = ["improve_cover"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@njit(cache=True)
def _counts(indptr, indices, sel, n_dem):  # type: ignore[no-untyped-def]
    cnt = np.zeros(n_dem, np.int64)
    for j in range(sel.size):
        if sel[j]:
            for q in range(indptr[j], indptr[j + 1]):
                cnt[indices[q]] += 1
    return cnt


@njit(cache=True)
def _have(w, cnt, base):  # type: ignore[no-untyped-def]
    tot = 0.0
    for i in range(w.size):
        if base[i] or cnt[i] > 0:
            tot += w[i]
    return tot


@njit(cache=True)
def _drop(indptr, indices, w, base, cnt, sel, j):  # type: ignore[no-untyped-def]
    lost = 0.0
    sel[j] = False
    for q in range(indptr[j], indptr[j + 1]):
        i = indices[q]
        cnt[i] -= 1
        if cnt[i] == 0 and not base[i]:
            lost += w[i]
    return lost


@njit(cache=True)
def _add(indptr, indices, w, base, cnt, sel, j):  # type: ignore[no-untyped-def]
    got = 0.0
    sel[j] = True
    for q in range(indptr[j], indptr[j + 1]):
        i = indices[q]
        if cnt[i] == 0 and not base[i]:
            got += w[i]
        cnt[i] += 1
    return got


@njit(cache=True)
def _repair(indptr, indices, cptr, cidx, w, base, cost, cnt, sel, tabu, have, need,
            removed, added, noise):  # type: ignore[no-untyped-def]
    """Add the most cost-effective sites until ``have >= need``; returns the new ``have``.

    Only demand of the ``removed`` sites can be uncovered, so only their rows are scanned.
    Added sites are appended to ``added``.
    """
    n_cand = indptr.size - 1
    mark = np.zeros(n_cand, np.bool_)
    for rnd in range(2):  # second round: the tabu sites may be the only cover left
        while have < need:
            cands = []
            for r in removed:
                for p in range(indptr[r], indptr[r + 1]):
                    i = indices[p]
                    if cnt[i] == 0 and not base[i] and w[i] > 0.0:
                        for q in range(cptr[i], cptr[i + 1]):
                            j = cidx[q]
                            if not mark[j] and not sel[j] and (rnd == 1 or not tabu[j]):
                                mark[j] = True
                                cands.append(j)
            if len(cands) == 0:
                break
            best = -1
            best_key = -1.0
            remaining = need - have
            for j in cands:
                mark[j] = False
                g = 0.0
                for q in range(indptr[j], indptr[j + 1]):
                    i = indices[q]
                    if cnt[i] == 0 and not base[i]:
                        g += w[i]
                key = min(g, remaining) / cost[j] * (1.0 + noise * np.random.random())
                if key > best_key:
                    best_key = key
                    best = j
            have += _add(indptr, indices, w, base, cnt, sel, best)
            added.append(best)
    return have


@njit(cache=True)
def _prune(indptr, indices, cptr, cidx, w, base, cost, cnt, sel, have, need,
           added):  # type: ignore[no-untyped-def]
    """Drop redundant sites, most expensive first (random among equals).

    Only the added sites and the open sites sharing demand with them can have become
    redundant.  Returns the new ``have`` and the dropped sites.
    """
    n_cand = indptr.size - 1
    mark = np.zeros(n_cand, np.bool_)
    pool = []
    for a in added:
        if sel[a] and not mark[a]:
            mark[a] = True
            pool.append(a)
        for p in range(indptr[a], indptr[a + 1]):
            i = indices[p]
            for q in range(cptr[i], cptr[i + 1]):
                j = cidx[q]
                if sel[j] and not mark[j]:
                    mark[j] = True
                    pool.append(j)
    m = len(pool)
    keys = np.empty(m)
    for t in range(m):
        keys[t] = -cost[pool[t]] + 1e-9 * np.random.random() * cost[pool[t]]
    order = np.argsort(keys)
    dropped = []
    for t in order:
        j = pool[t]
        unique = 0.0
        for q in range(indptr[j], indptr[j + 1]):
            i = indices[q]
            if cnt[i] == 1 and not base[i]:
                unique += w[i]
        if have - unique >= need:
            have -= _drop(indptr, indices, w, base, cnt, sel, j)
            dropped.append(j)
    return have, dropped


@njit(cache=True)
def _search(indptr, indices, cptr, cidx, w, base, cost, need, sel0, iters,
            seed):  # type: ignore[no-untyped-def]
    np.random.seed(seed)
    n_cand = indptr.size - 1
    n_dem = w.size
    sel = sel0.copy()
    cnt = _counts(indptr, indices, sel, n_dem)
    have = _have(w, cnt, base)
    cur = 0.0
    open_list = []
    for j in range(n_cand):
        if sel[j]:
            cur += cost[j]
            open_list.append(j)
    best_sel = sel.copy()
    best = cur
    tabu = np.zeros(n_cand, np.bool_)
    for _ in range(iters):
        if len(open_list) == 0:
            break
        a = open_list[np.random.randint(len(open_list))]
        removed = [a]
        # a neighbour: an open site covering one of a's demand points
        span = indptr[a + 1] - indptr[a]
        if span > 0 and len(open_list) > 1:
            i = indices[indptr[a] + np.random.randint(span)]
            others = []
            for q in range(cptr[i], cptr[i + 1]):
                j = cidx[q]
                if sel[j] and j not in removed:
                    others.append(j)
            if len(others) > 0:
                removed.append(others[np.random.randint(len(others))])
            else:
                b = open_list[np.random.randint(len(open_list))]
                if sel[b] and b not in removed:
                    removed.append(b)
        delta = 0.0
        for j in removed:
            have -= _drop(indptr, indices, w, base, cnt, sel, j)
            tabu[j] = True
            delta -= cost[j]
        added = [a]
        added.clear()
        have = _repair(indptr, indices, cptr, cidx, w, base, cost, cnt, sel, tabu, have,
                       need, removed, added, 0.05)
        for j in removed:
            tabu[j] = False
        for j in added:
            delta += cost[j]
        have, dropped = _prune(indptr, indices, cptr, cidx, w, base, cost, cnt, sel, have,
                               need, added)
        for j in dropped:
            delta -= cost[j]
        if have >= need and delta <= 1e-12:
            cur += delta
            open_list = [j for j in open_list if sel[j] and j not in added]
            for j in added:
                if sel[j]:
                    open_list.append(j)
            if cur < best - 1e-12:
                best = cur
                best_sel[:] = sel
        else:  # undo: close what was opened, reopen what was closed
            for j in added:
                if sel[j]:
                    have -= _drop(indptr, indices, w, base, cnt, sel, j)
            for j in removed:
                have += _add(indptr, indices, w, base, cnt, sel, j)
            for j in dropped:
                if not sel[j] and j not in added:
                    have += _add(indptr, indices, w, base, cnt, sel, j)
    return best_sel, best, have


def improve_cover(
    indptr: IntArray,
    indices: IntArray,
    w: FloatArray,
    covered0: BoolArray,
    cost: FloatArray,
    need: float,
    start: BoolArray,
    *,
    max_time_s: float,
    stop_at: float = -np.inf,
    chunk: int = 2000,
    max_rounds: int = 50,
    seed: int = 0,
) -> tuple[BoolArray, float, int]:
    """Improve a feasible cover by drop/repair/prune moves within a time budget.

    Parameters
    ----------
    indptr, indices
        Candidate-major CSR of the coverage relation.
    w
        Demand weights (use 1 per demand for a full cover: every demand counts the same).
    covered0
        Demand already covered (fixed facilities).
    cost
        Site costs, positive.
    need
        Weight the sites must cover beyond ``covered0``.
    start
        A feasible cover (boolean mask over candidates).
    max_time_s
        Time budget; checked between rounds of ``chunk`` moves (each round restarts from the
        best cover with a new seed).
    stop_at
        Stop as soon as a cover of at most this cost is found (a proven lower bound).
    seed
        Random seed of the first round.

    Returns
    -------
    sites, cost, moves
        The cheapest cover found (mask), its cost and the number of moves made.
    """
    n_dem = w.size
    order = np.argsort(indices, kind="stable")
    rows = np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
    cidx = rows[order]
    cptr = np.zeros(n_dem + 1, dtype=np.int64)
    np.cumsum(np.bincount(indices, minlength=n_dem), out=cptr[1:])
    base_w = float(np.sum(w[covered0]))
    best_sel = start.copy()
    best = float(np.sum(cost[best_sel]))
    t0 = time.perf_counter()
    moves = 0
    for r in range(max_rounds):
        if best <= stop_at + 1e-9 or time.perf_counter() - t0 >= max_time_s:
            break
        sel, value, _ = _search(indptr, indices, cptr, cidx, w, covered0, cost, need + base_w,
                                best_sel, int(chunk), int(seed + r))
        moves += chunk
        if value < best - 1e-12:
            best_sel, best = sel, float(value)
    return best_sel, best, moves
