"""Greedy kernels over CSR arrays (numba).

Every kernel works on a candidate-major CSR matrix (``indptr``, ``indices``, optionally ``data``)
and uses one lazy (Minoux accelerated) max-heap: each candidate sits in the heap with a
*stale* key, an upper bound of its current key because keys only decrease as sites are added;
the top is re-evaluated until a freshly evaluated key stays on top.  Keys are lexicographic
pairs ``(a, b)`` with the smaller candidate index winning ties, so runs are deterministic.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = [
    "greedy_cover",
    "greedy_pmedian",
    "greedy_capacitated",
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
