"""Greedy kernels over CSR arrays (numba) and the p-median vertex-substitution local search.

Every kernel works on a candidate-major CSR matrix (``indptr``, ``indices``, optionally ``data``)
and uses one lazy (Minoux accelerated) max-heap: each candidate sits in the heap with a
*stale* key, an upper bound of its current key because keys only decrease as sites are added;
the top is re-evaluated until a freshly evaluated key stays on top.  Keys are lexicographic
pairs ``(a, b)`` with the smaller candidate index winning ties, so runs are deterministic.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from numba import njit

__all__ = [
    "greedy_cover",
    "greedy_pmedian",
    "greedy_capacitated",
    "nearest_two",
    "swap_pmedian",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


# --------------------------------------------------------------------------------------------
# lazy max-heap on three parallel arrays (key a, key b, candidate id)
# --------------------------------------------------------------------------------------------
@njit(cache=True)
def _above(a1: float, b1: float, i1: int, a2: float, b2: float, i2: int) -> bool:
    """True when entry 1 belongs above entry 2 in the max-heap."""
    if a1 != a2:
        return a1 > a2
    if b1 != b2:
        return b1 > b2
    return i1 < i2


@njit(cache=True)
def _sift_down(ka: FloatArray, kb: FloatArray, ids: IntArray, size: int, pos: int) -> None:
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        best = left
        right = left + 1
        if right < size and _above(ka[right], kb[right], ids[right], ka[left], kb[left], ids[left]):
            best = right
        if not _above(ka[best], kb[best], ids[best], ka[pos], kb[pos], ids[pos]):
            return
        ka[pos], ka[best] = ka[best], ka[pos]
        kb[pos], kb[best] = kb[best], kb[pos]
        ids[pos], ids[best] = ids[best], ids[pos]
        pos = best


@njit(cache=True)
def _heapify(ka: FloatArray, kb: FloatArray, ids: IntArray, size: int) -> None:
    for pos in range(size // 2 - 1, -1, -1):
        _sift_down(ka, kb, ids, size, pos)


@njit(cache=True)
def _pop_top(ka: FloatArray, kb: FloatArray, ids: IntArray, size: int) -> int:
    """Remove the heap top; return the new size."""
    size -= 1
    ka[0] = ka[size]
    kb[0] = kb[size]
    ids[0] = ids[size]
    _sift_down(ka, kb, ids, size, 0)
    return size


@njit(cache=True)
def _topk_sum(values: FloatArray, k: int) -> float:
    n = values.size
    if n == 0 or k <= 0:
        return 0.0
    if n <= k:
        return float(values.sum())
    part = np.partition(values, n - k)
    return float(part[n - k :].sum())


# --------------------------------------------------------------------------------------------
# coverage (max coverage, set cover)
# --------------------------------------------------------------------------------------------
@njit(cache=True)
def _cover_gain(
    indptr: IntArray, indices: IntArray, w: FloatArray, covered: BoolArray, j: int
) -> float:
    g = 0.0
    for q in range(indptr[j], indptr[j + 1]):
        i = indices[q]
        if not covered[i]:
            g += w[i]
    return g


@njit(cache=True)
def greedy_cover(
    indptr: IntArray,
    indices: IntArray,
    w: FloatArray,
    covered0: BoolArray,
    cost: FloatArray,
    active: BoolArray,
    max_picks: int,
    need: float,
    k_bound: int,
) -> tuple[IntArray, FloatArray, float]:
    """Lazy greedy for weighted coverage.

    Picks, among ``active`` candidates, the one with the best key
    ``min(gain, remaining need) / cost`` (ties: larger gain, then smaller index) until
    ``max_picks`` sites are chosen, the covered weight reaches ``need`` or no candidate adds
    anything.  With ``k_bound > 0`` it also returns the online submodular bound
    ``min_t f(S_t) + sum of the k_bound largest (stale) gains w.r.t. S_t`` on the *new* weight
    any ``k_bound`` sites can cover (``inf`` otherwise).

    Returns
    -------
    order, gains, bound
    """
    n = indptr.size - 1
    covered = covered0.copy()
    ka = np.empty(n)
    kb = np.empty(n)
    ids = np.empty(n, np.int64)
    gain = np.zeros(n)
    stamp = np.full(n, -1, np.int64)
    size = 0
    for j in range(n):
        if not active[j]:
            continue
        g = _cover_gain(indptr, indices, w, covered, j)
        if g <= 0.0:
            continue
        gain[j] = g
        stamp[j] = 0
        ka[size] = min(g, need) / cost[j]
        kb[size] = g
        ids[size] = j
        size += 1
    _heapify(ka, kb, ids, size)

    order = np.empty(max(max_picks, 0), np.int64)
    gains = np.empty(max(max_picks, 0))
    npick = 0
    total = 0.0
    remaining = need
    bound = np.inf
    for t in range(max_picks):
        if remaining <= 0.0:
            break
        if k_bound > 0:
            bound = min(bound, total + _topk_sum(gain[ids[:size]], k_bound))
        while size > 0:
            j = ids[0]
            if stamp[j] == t:
                break
            g = _cover_gain(indptr, indices, w, covered, j)
            gain[j] = g
            stamp[j] = t
            if g <= 0.0:
                size = _pop_top(ka, kb, ids, size)
                continue
            ka[0] = min(g, remaining) / cost[j]
            kb[0] = g
            _sift_down(ka, kb, ids, size, 0)
        if size == 0:
            break
        j = ids[0]
        size = _pop_top(ka, kb, ids, size)
        for q in range(indptr[j], indptr[j + 1]):
            covered[indices[q]] = True
        total += gain[j]
        remaining -= gain[j]
        order[npick] = j
        gains[npick] = gain[j]
        npick += 1
    if k_bound > 0:
        bound = min(bound, total + _topk_sum(gain[ids[:size]], k_bound))
    return order[:npick], gains[:npick], bound


# --------------------------------------------------------------------------------------------
# p-median greedy add
# --------------------------------------------------------------------------------------------
@njit(cache=True)
def _pmed_key(
    indptr: IntArray, indices: IntArray, data: FloatArray, w: FloatArray, d1: FloatArray, j: int
) -> tuple[float, float]:
    """(number of demands newly served, decrease of the cost of the served ones) for site j."""
    cnt = 0.0
    fin = 0.0
    for q in range(indptr[j], indptr[j + 1]):
        i = indices[q]
        c = data[q]
        if d1[i] == np.inf:
            cnt += 1.0
            fin -= w[i] * c
        elif d1[i] > c:
            fin += w[i] * (d1[i] - c)
    return cnt, fin


@njit(cache=True)
def greedy_pmedian(
    indptr: IntArray,
    indices: IntArray,
    data: FloatArray,
    w: FloatArray,
    d1_0: FloatArray,
    active: BoolArray,
    max_picks: int,
) -> tuple[IntArray, FloatArray, BoolArray, FloatArray]:
    """Lazy greedy add for p-median with missing entries meaning "not allowed".

    ``d1_0`` holds each demand's current (fixed facilities') cost, ``inf`` when unserved.
    The key is lexicographic: first the number of unserved demands a site would serve, then
    the decrease of the weighted cost (counting the cost of the newly served ones).  Both parts
    only shrink as sites are added, so lazy evaluation is exact.

    Returns
    -------
    order
        Chosen candidates.
    fin
        Cost decrease of each pick (counting newly served demands' costs as increases).
    unserved_before
        Whether some positive-weight demand was unserved before each pick.
    d1
        Final cost per demand (``inf`` where unserved).
    """
    n = indptr.size - 1
    d1 = d1_0.copy()
    posw_unserved = 0
    for i in range(d1.size):
        if d1[i] == np.inf and w[i] > 0.0:
            posw_unserved += 1
    ka = np.empty(n)
    kb = np.empty(n)
    ids = np.empty(n, np.int64)
    stamp = np.full(n, -1, np.int64)
    size = 0
    for j in range(n):
        if not active[j]:
            continue
        cnt, fin = _pmed_key(indptr, indices, data, w, d1, j)
        if cnt <= 0.0 and fin <= 0.0:
            continue
        stamp[j] = 0
        ka[size] = cnt
        kb[size] = fin
        ids[size] = j
        size += 1
    _heapify(ka, kb, ids, size)
    order = np.empty(max(max_picks, 0), np.int64)
    fins = np.empty(max(max_picks, 0))
    unserved_before = np.zeros(max(max_picks, 0), np.bool_)
    npick = 0
    for t in range(max_picks):
        while size > 0:
            j = ids[0]
            if stamp[j] == t:
                break
            cnt, fin = _pmed_key(indptr, indices, data, w, d1, j)
            stamp[j] = t
            if cnt <= 0.0 and fin <= 0.0:
                size = _pop_top(ka, kb, ids, size)
                continue
            ka[0] = cnt
            kb[0] = fin
            _sift_down(ka, kb, ids, size, 0)
        if size == 0:
            break
        j = ids[0]
        fin = kb[0]
        size = _pop_top(ka, kb, ids, size)
        unserved_before[npick] = posw_unserved > 0
        for q in range(indptr[j], indptr[j + 1]):
            i = indices[q]
            c = data[q]
            if c < d1[i]:
                if d1[i] == np.inf and w[i] > 0.0:
                    posw_unserved -= 1
                d1[i] = c
        order[npick] = j
        fins[npick] = fin
        npick += 1
    return order[:npick], fins[:npick], unserved_before[:npick], d1


# --------------------------------------------------------------------------------------------
# capacitated coverage greedy
# --------------------------------------------------------------------------------------------
@njit(cache=True)
def _cap_gain(indptr: IntArray, indices: IntArray, res: FloatArray, cap: float, j: int) -> float:
    s = 0.0
    for q in range(indptr[j], indptr[j + 1]):
        s += res[indices[q]]
        if s >= cap:
            return cap
    return s


@njit(cache=True)
def greedy_capacitated(
    indptr: IntArray,
    indices: IntArray,
    res0: FloatArray,
    cap: FloatArray,
    active: BoolArray,
    max_picks: int,
) -> tuple[IntArray, FloatArray, IntArray, IntArray, FloatArray]:
    """Lazy greedy for capacitated coverage with a simple assignment rule.

    A site's marginal value is ``min(capacity, residual demand weight it covers)``; when picked
    it takes its residual demand in the order of ``indices`` within its row (the caller sorts
    each row so that demand with the fewest alternatives comes first) up to its capacity.

    Returns
    -------
    order, gains, flow_site, flow_demand, flow_amount
    """
    n = indptr.size - 1
    res = res0.copy()
    ka = np.empty(n)
    kb = np.zeros(n)
    ids = np.empty(n, np.int64)
    stamp = np.full(n, -1, np.int64)
    size = 0
    nflow_max = 0
    for j in range(n):
        if not active[j]:
            continue
        g = _cap_gain(indptr, indices, res, cap[j], j)
        if g <= 0.0:
            continue
        stamp[j] = 0
        ka[size] = g
        ids[size] = j
        size += 1
        nflow_max += indptr[j + 1] - indptr[j]
    _heapify(ka, kb, ids, size)
    order = np.empty(max(max_picks, 0), np.int64)
    gains = np.empty(max(max_picks, 0))
    fs = np.empty(nflow_max, np.int64)
    fd = np.empty(nflow_max, np.int64)
    fa = np.empty(nflow_max)
    nflow = 0
    npick = 0
    for t in range(max_picks):
        while size > 0:
            j = ids[0]
            if stamp[j] == t:
                break
            g = _cap_gain(indptr, indices, res, cap[j], j)
            stamp[j] = t
            if g <= 0.0:
                size = _pop_top(ka, kb, ids, size)
                continue
            ka[0] = g
            _sift_down(ka, kb, ids, size, 0)
        if size == 0:
            break
        j = ids[0]
        g = ka[0]
        size = _pop_top(ka, kb, ids, size)
        left = cap[j]
        for q in range(indptr[j], indptr[j + 1]):
            if left <= 0.0:
                break
            i = indices[q]
            a = min(res[i], left)
            if a > 0.0:
                res[i] -= a
                left -= a
                fs[nflow] = j
                fd[nflow] = i
                fa[nflow] = a
                nflow += 1
        order[npick] = j
        gains[npick] = g
        npick += 1
    return order[:npick], gains[:npick], fs[:nflow], fd[:nflow], fa[:nflow]


# --------------------------------------------------------------------------------------------
# p-median: nearest / second nearest and vertex substitution (vectorised numpy)
# --------------------------------------------------------------------------------------------
def nearest_two(
    costs: sp.csr_array, open_sites: IntArray
) -> tuple[FloatArray, IntArray, FloatArray]:
    """Nearest and second-nearest open site per demand.

    Parameters
    ----------
    costs
        Candidate x demand CSR matrix; stored entries are the allowed assignments.
    open_sites
        Indices of the open candidates.

    Returns
    -------
    d1, n1, d2
        Cost to the nearest open site (``inf`` if none is allowed), its candidate index (-1),
        and the cost to the second nearest (``inf`` if none).  Ties go to the smaller index.
    """
    n_dem = costs.shape[1]
    d1 = np.full(n_dem, np.inf)
    n1 = np.full(n_dem, -1, dtype=np.int64)
    d2 = np.full(n_dem, np.inf)
    open_sites = np.sort(np.asarray(open_sites, dtype=np.int64))
    if open_sites.size == 0:
        return d1, n1, d2
    sub = costs[open_sites]
    counts = np.diff(sub.indptr)
    rows = np.repeat(open_sites, counts)
    cols = sub.indices.astype(np.int64)
    vals = sub.data
    order = np.lexsort((rows, vals, cols))
    cols, vals, rows = cols[order], vals[order], rows[order]
    first = np.ones(cols.size, dtype=bool)
    first[1:] = cols[1:] != cols[:-1]
    d1[cols[first]] = vals[first]
    n1[cols[first]] = rows[first]
    second = np.zeros(cols.size, dtype=bool)
    second[1:] = first[:-1] & ~first[1:]
    d2[cols[second]] = vals[second]
    return d1, n1, d2


def swap_pmedian(
    costs: sp.csr_array,
    w: FloatArray,
    open_sites: IntArray,
    fixed: BoolArray,
    *,
    max_iter: int = 1000,
    deadline: float = math.inf,
    block_cells: int = 4_000_000,
) -> tuple[IntArray, int, str]:
    """Best-improvement vertex substitution (Teitz-Bart) for the p-median.

    Every iteration evaluates all swaps (close an open non-fixed site ``r``, open a closed
    candidate ``j``) at once with the decomposition
    ``profit(j, r) = gain(j) - loss(r) + extra(j, r)`` (Whitaker; Resende & Werneck), built
    from the nearest and second-nearest open costs per demand with vectorised numpy over the
    stored entries.  Swaps that would leave a demand without an allowed open site are
    excluded.  Stops when no swap improves the cost, after ``max_iter`` swaps or once
    ``time.perf_counter()`` passes ``deadline``.

    Parameters
    ----------
    costs
        Candidate x demand CSR matrix of allowed assignment costs.
    w
        Demand weights.
    open_sites
        Starting open sites (fixed ones included).
    fixed
        Boolean mask over candidates that must stay open.
    max_iter
        Maximum number of swaps.
    deadline
        ``time.perf_counter()`` value after which no new iteration starts.
    block_cells
        Candidates are processed in blocks of about this many (candidate, open site) cells.

    Returns
    -------
    open_sites, n_swaps, stop
        ``stop`` is ``"local_optimum"``, ``"max_iter"`` or ``"time_limit"``.
    """
    n_cand = costs.shape[0]
    ent = _Entries.of(costs, w)
    is_open = np.zeros(n_cand, dtype=bool)
    is_open[open_sites] = True
    n_swaps = 0
    stop = "max_iter"
    for _ in range(max_iter):
        if time.perf_counter() > deadline:
            stop = "time_limit"
            break
        pair = _best_swap(costs, w, ent, is_open, fixed, block_cells)
        if pair is None:
            stop = "local_optimum"
            break
        is_open[pair[0]] = True
        is_open[pair[1]] = False
        n_swaps += 1
    return np.flatnonzero(is_open), n_swaps, stop


@dataclass(frozen=True)
class _Entries:
    """The stored (site, demand, cost) entries of a p-median cost matrix, with ``w * cost``."""

    rows: IntArray
    cols: IntArray
    vals: FloatArray
    wc: FloatArray
    tol: float

    @classmethod
    def of(cls, costs: sp.csr_array, w: FloatArray) -> _Entries:
        vals = costs.data
        cols = costs.indices.astype(np.int64)
        scale = max(float(np.sum(w) * (np.max(vals) if vals.size else 0.0)), 1.0)
        return cls(rows=np.repeat(np.arange(costs.shape[0], dtype=np.int64),
                                  np.diff(costs.indptr)),
                   cols=cols, vals=vals, wc=w[cols], tol=1e-10 * scale)


def _best_swap(costs: sp.csr_array, w: FloatArray, ent: _Entries, is_open: BoolArray,
               fixed: BoolArray, block_cells: int) -> tuple[int, int] | None:
    """The most profitable (open ``j``, close ``r``) swap, or None when none improves.

    ``profit(j, r) = gain(j) - loss(r) + extra(j, r)`` (Whitaker; Resende & Werneck) from the
    nearest and second-nearest open costs; swaps leaving a demand without an allowed open
    site are excluded.
    """
    n_cand = costs.shape[0]
    current = np.flatnonzero(is_open)
    d1, n1, d2 = nearest_two(costs, current)
    served = n1 >= 0
    movable = current[~fixed[current]]
    if not np.all(served | (w == 0)) or movable.size == 0:
        return None
    n_mov = movable.size
    pos = np.full(n_cand, -1, dtype=np.int64)
    pos[movable] = np.arange(n_mov)
    fin2 = np.isfinite(d2)
    d1s = np.where(served, d1, 0.0)
    d2f = np.where(fin2, d2, 0.0)
    # loss(r): cost increase if r closes and nobody replaces it
    r_of = np.where(served, pos[np.maximum(n1, 0)], -1)
    owned = r_of >= 0
    loss = np.bincount(r_of[owned], weights=(w * (d2f - d1s))[owned], minlength=n_mov)
    inf_cnt = np.bincount(r_of[owned & ~fin2], minlength=n_mov)
    # gain(j): cost decrease if j opens and nobody closes
    d1c = d1s[ent.cols]
    gain = np.bincount(ent.rows, weights=ent.wc * np.maximum(0.0, d1c - ent.vals),
                       minlength=n_cand)
    # extra(j, r) on entries whose demand is owned by a movable site r
    r_e = r_of[ent.cols]
    vmax = np.maximum(ent.vals, d1c)
    fin_e = fin2[ent.cols]
    extra_val = np.where(fin_e, ent.wc * np.maximum(0.0, d2f[ent.cols] - vmax), -ent.wc * vmax)
    best_profit = ent.tol
    best_pair = None
    block = max(1, block_cells // n_mov)
    for start in range(0, n_cand, block):
        end = min(n_cand, start + block)
        lo, hi = costs.indptr[start], costs.indptr[end]
        s = r_e[lo:hi] >= 0
        flat = (ent.rows[lo:hi][s] - start) * n_mov + r_e[lo:hi][s]
        size = (end - start) * n_mov
        extra = np.bincount(flat, weights=extra_val[lo:hi][s], minlength=size)
        extra_inf = np.bincount(flat[~fin_e[lo:hi][s]], minlength=size)
        profit = (gain[start:end, None] - loss[None, :]) + extra.reshape(-1, n_mov)
        ok = (extra_inf.reshape(-1, n_mov) == inf_cnt[None, :]) & ~is_open[start:end, None]
        profit = np.where(ok, profit, -np.inf)
        flat_best = int(np.argmax(profit))
        value = float(profit.flat[flat_best])
        if value > best_profit:
            best_profit = value
            best_pair = (start + flat_best // n_mov, int(movable[flat_best % n_mov]))
    return best_pair
