"""p-median: nearest / second-nearest open site and vertex substitution (numba).

- :func:`nearest_two` walks the open sites' rows in index order, so ties go to the smaller
  candidate index; one pass, no sort.
- :func:`swap_pmedian` is best-improvement vertex substitution (Teitz and Bart).  Every swap
  (open a closed candidate ``j``, close an open non-fixed site ``r``) is valued with the
  decomposition ``profit(j, r) = gain(j) - loss(r) + extra(j, r)`` (Whitaker; Resende and
  Werneck) from the nearest and second-nearest open costs per demand.  The values are kept
  per candidate and open-site slot and updated for the demand a swap touches only
  (:class:`_Interchange`, the fast interchange); when those tables would exceed
  :data:`MAX_SWAP_CELLS`, each iteration values every swap from all entries instead
  (:func:`_best_swap`, ``O(nnz + candidates x movable)`` time, ``O(demand + movable)``
  memory).  Swaps that would leave a demand of positive weight without an allowed open site
  are excluded (weight-0 demand need not be served).
"""

from __future__ import annotations

import math
import time

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from numba import njit, prange

__all__ = ["nearest_two", "swap_pmedian"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@njit(cache=True)
def _nearest_two(indptr, indices, data, open_sites, n_dem):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    d1 = np.full(n_dem, np.inf)
    n1 = np.full(n_dem, -1, np.int64)
    d2 = np.full(n_dem, np.inf)
    for j in open_sites:  # ascending: a tie keeps the smaller index as nearest
        for q in range(indptr[j], indptr[j + 1]):
            i = indices[q]
            c = data[q]
            if c < d1[i] or n1[i] < 0:
                d2[i] = d1[i]
                d1[i] = c
                n1[i] = j
            elif c < d2[i]:
                d2[i] = c
    return d1, n1, d2


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
    sites = np.unique(np.asarray(open_sites, dtype=np.int64))
    return _nearest_two(costs.indptr, costs.indices, costs.data.astype(np.float64, copy=False),
                        sites, int(costs.shape[1]))


@njit(cache=True)
def _owners(w, d1, n1, d2, pos, n_mov):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    """Per demand: its movable nearest site's place (-1: none or weight 0), whether a second
    open site is allowed; per movable site: ``loss`` and its count of demand with no second."""
    n_dem = w.shape[0]
    r_of = np.full(n_dem, -1, np.int64)
    fin2 = np.empty(n_dem, np.bool_)
    loss = np.zeros(n_mov)
    inf_cnt = np.zeros(n_mov, np.int64)
    for i in range(n_dem):
        fin2[i] = d2[i] < np.inf
        if n1[i] >= 0 and w[i] > 0.0:  # weight-0 demand may be left unserved
            r_of[i] = pos[n1[i]]
        r = r_of[i]
        if r >= 0:
            d2f = d2[i] if fin2[i] else 0.0
            loss[r] += w[i] * (d2f - d1[i])
            if not fin2[i]:
                inf_cnt[r] += 1
    return r_of, fin2, loss, inf_cnt


@njit(cache=True, parallel=True)
def _best_swap(indptr, indices, data, w, d1, n1, d2, is_open, pos, movable, tol):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    """The most profitable ``(j, r)`` swap as ``(j, r, profit)``; ``j = -1`` if none > tol.

    ``pos[r]`` is ``r``'s place in ``movable`` (-1 for fixed or closed sites).  Each
    candidate's best site is found on its own (in parallel; the sums run in entry order, so
    the values do not depend on the threads); then candidates are scanned in index order and
    only a strictly larger profit replaces the best, so the first best pair in (candidate,
    site) order wins.
    """
    n_cand = indptr.shape[0] - 1
    n_mov = movable.shape[0]
    r_of, fin2, loss, inf_cnt = _owners(w, d1, n1, d2, pos, n_mov)
    cand_best = np.full(n_cand, -np.inf)
    cand_r = np.full(n_cand, -1, np.int64)
    for j in prange(n_cand):
        if is_open[j]:
            continue
        extra = np.zeros(n_mov)
        extra_inf = np.zeros(n_mov, np.int64)
        gain = 0.0
        for q in range(indptr[j], indptr[j + 1]):
            i = indices[q]
            d1c = d1[i] if n1[i] >= 0 else 0.0
            c = data[q]
            gain += w[i] * max(0.0, d1c - c)
            r = r_of[i]
            if r >= 0:
                vmax = max(c, d1c)
                if fin2[i]:
                    extra[r] += w[i] * max(0.0, d2[i] - vmax)
                else:
                    extra[r] += -w[i] * vmax
                    extra_inf[r] += 1
        best = -np.inf
        for r in range(n_mov):
            if extra_inf[r] == inf_cnt[r]:
                profit = (gain - loss[r]) + extra[r]
                if profit > best:
                    best = profit
                    cand_r[j] = r
        cand_best[j] = best
    best_j = _first_best(cand_best, tol)
    if best_j < 0:
        return -1, -1, tol
    return best_j, movable[cand_r[best_j]], cand_best[best_j]


@njit(cache=True)
def _first_best(cand_best, tol):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    """The first candidate with the largest value above ``tol`` (-1 if none)."""
    best_j, best = -1, tol
    for j in range(cand_best.shape[0]):
        if cand_best[j] > best:
            best, best_j = cand_best[j], j
    return best_j


#: Incremental search keeps ``candidates x open sites`` swap values; above this many cells
#: every iteration recomputes them from all entries instead (:func:`_best_swap`).
MAX_SWAP_CELLS = 20_000_000
#: Swaps per compiled call between two deadline checks.
SWAPS_PER_CALL = 8


# The incremental search's state, passed to the kernels as tuples of arrays:
#   row  = (indptr, indices, data)        the costs by candidate (CSR)
#   col  = (cptr, cidx, cdata)            the costs by demand (CSC, candidates ascending)
#   near = (slot_of, d1, n1, d2, n2)      per candidate its open-site slot (-1: closed); per
#                                         demand its nearest and second-nearest open site
#   vals = (gain, loss, inf_cnt, extra, extra_inf)   the swap values per candidate and slot


@njit(cache=True)
def _nearest_of(i, col, near):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    """Nearest and second-nearest open site of demand ``i`` (ties: the smaller index)."""
    cptr, cidx, cdata = col
    slot_of, d1, n1, d2, n2 = near
    b1, m1, b2, m2 = np.inf, -1, np.inf, -1
    for q in range(cptr[i], cptr[i + 1]):
        j = cidx[q]
        if slot_of[j] < 0:
            continue
        c = cdata[q]
        if m1 < 0 or c < b1 or (c == b1 and j < m1):
            b2, m2 = b1, m1
            b1, m1 = c, j
        elif m2 < 0 or c < b2 or (c == b2 and j < m2):
            b2, m2 = c, j
    d1[i], n1[i], d2[i], n2[i] = b1, m1, b2, m2


@njit(cache=True)
def _contribute(i, sign, col, w, fixed, near, vals):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    """Add (``sign = 1``) or remove (-1) demand ``i``'s share of gain, loss and extra."""
    cptr, cidx, cdata = col
    slot_of, d1, n1, d2, n2 = near
    gain, loss, inf_cnt, extra, extra_inf = vals
    wi = w[i]
    if wi <= 0.0 or n1[i] < 0:
        return
    r = n1[i]
    s = slot_of[r] if not fixed[r] else -1
    fin2 = n2[i] >= 0
    if s >= 0:
        if fin2:
            loss[s] += sign * wi * (d2[i] - d1[i])
        else:
            loss[s] += sign * wi * (0.0 - d1[i])
            inf_cnt[s] += sign
    for q in range(cptr[i], cptr[i + 1]):
        j = cidx[q]
        c = cdata[q]
        if d1[i] > c:
            gain[j] += sign * wi * (d1[i] - c)
        if s >= 0:
            vmax = max(c, d1[i])
            if fin2:
                if d2[i] > vmax:
                    extra[j, s] += sign * wi * (d2[i] - vmax)
            else:
                extra[j, s] += sign * (-wi * vmax)
                extra_inf[j, s] += sign


@njit(cache=True)
def _pick(vals, slot_of, movable_slot, tol):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    """The best ``(j, slot)`` swap by the kept values; ``j = -1`` if none beats ``tol``.

    Sequential on purpose: it is called from the cached :func:`_descend`, and a cached
    function that calls a ``parallel=True`` one can crash when loaded from numba's cache
    (numba issue 8578; seen here with a cache left by an earlier version of this module).
    """
    gain, loss, inf_cnt, extra, extra_inf = vals
    n_cand = gain.shape[0]
    cand_best = np.full(n_cand, -np.inf)
    cand_s = np.full(n_cand, -1, np.int64)
    for j in range(n_cand):
        if slot_of[j] >= 0:
            continue
        best = -np.inf
        for s in range(movable_slot.shape[0]):
            if movable_slot[s] and extra_inf[j, s] == inf_cnt[s]:
                profit = (gain[j] - loss[s]) + extra[j, s]
                if profit > best:
                    best = profit
                    cand_s[j] = s
        cand_best[j] = best
    best_j = _first_best(cand_best, tol)
    return best_j, (cand_s[best_j] if best_j >= 0 else -1)


@njit(cache=True)
def _touched(j_in, r_out, row, near, mark):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    """The demand whose nearest two a swap can change: ``r_out``'s as nearest or second,
    and the demand ``j_in`` reaches at no more than its second-nearest cost."""
    indptr, indices, data = row
    _, _, n1, d2, n2 = near
    out = np.empty(indptr[r_out + 1] - indptr[r_out] + indptr[j_in + 1] - indptr[j_in],
                   np.int64)
    n_t = 0
    for q in range(indptr[r_out], indptr[r_out + 1]):
        i = indices[q]
        if (n1[i] == r_out or n2[i] == r_out) and not mark[i]:
            mark[i] = True
            out[n_t] = i
            n_t += 1
    for q in range(indptr[j_in], indptr[j_in + 1]):
        i = indices[q]
        if (n2[i] < 0 or data[q] <= d2[i]) and not mark[i]:
            mark[i] = True
            out[n_t] = i
            n_t += 1
    for t in range(n_t):
        mark[out[t]] = False
    return out[:n_t]


@njit(cache=True)
def _apply(j_in, s, row, col, w, fixed, near, site_of, vals, mark):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    """Open ``j_in`` in the slot of the site it replaces; returns the cost change."""
    slot_of, d1 = near[0], near[1]
    _, loss, inf_cnt, extra, extra_inf = vals
    r_out = site_of[s]
    touched = _touched(j_in, r_out, row, near, mark)
    delta = 0.0
    for i in touched:
        _contribute(i, -1, col, w, fixed, near, vals)
        if w[i] > 0.0:
            delta -= w[i] * d1[i]
    # every share in slot s came from demand served by r_out, all removed above
    loss[s] = 0.0
    inf_cnt[s] = 0
    extra[:, s] = 0.0
    extra_inf[:, s] = 0
    slot_of[r_out] = -1
    slot_of[j_in] = s
    site_of[s] = j_in
    for i in touched:
        _nearest_of(i, col, near)
        _contribute(i, 1, col, w, fixed, near, vals)
        if w[i] > 0.0:
            delta += w[i] * d1[i]
    return delta


@njit(cache=True)
def _init(col, w, fixed, near, vals):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    for i in range(w.shape[0]):
        _nearest_of(i, col, near)
        _contribute(i, 1, col, w, fixed, near, vals)


@njit(cache=True)
def _descend(max_swaps, tol, row, col, w, fixed, near, site_of, vals, mark):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    """Up to ``max_swaps`` best swaps: ``(swaps made, local optimum reached)``."""
    movable_slot = np.empty(site_of.shape[0], np.bool_)
    for s in range(site_of.shape[0]):
        movable_slot[s] = not fixed[site_of[s]]
    for n in range(max_swaps):
        j, s = _pick(vals, near[0], movable_slot, tol)
        if j < 0:
            return n, True
        r_out = site_of[s]
        delta = _apply(j, s, row, col, w, fixed, near, site_of, vals, mark)
        if delta > -tol:  # rounding in the kept values: the swap does not pay, undo it
            _apply(r_out, s, row, col, w, fixed, near, site_of, vals, mark)
            return n, True
    return max_swaps, False


class _Interchange:
    """Incremental vertex substitution (the fast interchange of Resende and Werneck): gain,
    loss and extra are kept per candidate and open-site slot, and a swap updates only the
    demand whose nearest or second-nearest open site it changes."""

    def __init__(self, costs: sp.csr_array, w: FloatArray, open_sites: IntArray,
                 fixed: BoolArray) -> None:
        n_cand, n_dem = costs.shape
        self.row = (costs.indptr, costs.indices, costs.data.astype(np.float64, copy=False))
        csc = sp.csc_array(costs)
        csc.sort_indices()
        self.col = (csc.indptr, csc.indices, csc.data.astype(np.float64, copy=False))
        self.w, self.fixed = w, fixed
        sites = np.unique(open_sites)
        slot_of = np.full(n_cand, -1, dtype=np.int64)
        slot_of[sites] = np.arange(sites.size)
        self.site_of = sites.astype(np.int64)
        self.near = (slot_of, np.full(n_dem, np.inf), np.full(n_dem, -1, np.int64),
                     np.full(n_dem, np.inf), np.full(n_dem, -1, np.int64))
        self.vals = (np.zeros(n_cand), np.zeros(sites.size), np.zeros(sites.size, np.int64),
                     np.zeros((n_cand, sites.size)), np.zeros((n_cand, sites.size), np.int64))
        self.mark = np.zeros(n_dem, dtype=bool)
        _init(self.col, w, fixed, self.near, self.vals)

    def serves_all(self) -> bool:
        return bool(np.all((self.near[2] >= 0) | (self.w == 0)))

    def run(self, max_swaps: int, tol: float) -> tuple[int, bool]:
        """Up to ``max_swaps`` improving swaps; the count and whether a local optimum is reached."""
        return _descend(max_swaps, tol, self.row, self.col, self.w, self.fixed, self.near,
                        self.site_of, self.vals, self.mark)

    def open_sites(self) -> IntArray:
        return np.sort(self.site_of)


def swap_pmedian(
    costs: sp.csr_array,
    w: FloatArray,
    open_sites: IntArray,
    fixed: BoolArray,
    *,
    max_iter: int = 1000,
    deadline: float = math.inf,
) -> tuple[IntArray, int, str]:
    """Best-improvement vertex substitution (Teitz-Bart) for the p-median.

    Stops when no swap improves the cost, after ``max_iter`` swaps or once
    ``time.perf_counter()`` passes ``deadline``.  Incremental (:class:`_Interchange`) when
    its ``candidates x open sites`` tables fit :data:`MAX_SWAP_CELLS`, otherwise every
    iteration values all swaps from all entries (:func:`_best_swap`).

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

    Returns
    -------
    open_sites, n_swaps, stop
        ``stop`` is ``"local_optimum"``, ``"max_iter"`` or ``"time_limit"``.
    """
    w = np.asarray(w, dtype=np.float64)
    data = costs.data.astype(np.float64, copy=False)
    tol = 1e-10 * max(float(np.sum(w) * (np.max(data) if data.size else 0.0)), 1.0)
    open_sites = np.unique(np.asarray(open_sites, dtype=np.int64))
    if costs.shape[0] * max(open_sites.size, 1) > MAX_SWAP_CELLS:
        return _swap_full(costs, data, w, open_sites, fixed, max_iter, deadline, tol)
    if max_iter <= 0 or time.perf_counter() > deadline:
        return open_sites, 0, "max_iter" if max_iter <= 0 else "time_limit"
    search = _Interchange(costs, w, open_sites, fixed)
    if not search.serves_all():
        return open_sites, 0, "local_optimum"
    n_swaps = 0
    while n_swaps < max_iter:
        if n_swaps and time.perf_counter() > deadline:
            return search.open_sites(), n_swaps, "time_limit"
        done, optimum = search.run(min(SWAPS_PER_CALL, max_iter - n_swaps), tol)
        n_swaps += done
        if optimum:
            return search.open_sites(), n_swaps, "local_optimum"
    return search.open_sites(), n_swaps, "max_iter"


def _swap_full(costs: sp.csr_array, data: FloatArray, w: FloatArray, open_sites: IntArray,
               fixed: BoolArray, max_iter: int, deadline: float, tol: float
               ) -> tuple[IntArray, int, str]:
    """Vertex substitution valuing every swap from all entries at each iteration
    (``data``: the costs' values as float64)."""
    n_cand = costs.shape[0]
    is_open = np.zeros(n_cand, dtype=bool)
    is_open[open_sites] = True
    n_swaps = 0
    stop = "max_iter"
    for _ in range(max_iter):
        if time.perf_counter() > deadline:
            stop = "time_limit"
            break
        current = np.flatnonzero(is_open)
        d1, n1, d2 = _nearest_two(costs.indptr, costs.indices, data, current, w.size)
        movable = current[~fixed[current]]
        if movable.size == 0 or not np.all((n1 >= 0) | (w == 0)):
            stop = "local_optimum"
            break
        pos = np.full(n_cand, -1, dtype=np.int64)
        pos[movable] = np.arange(movable.size)
        j, r, _ = _best_swap(costs.indptr, costs.indices, data, w, d1, n1, d2, is_open, pos,
                             movable, tol)
        if j < 0:
            stop = "local_optimum"
            break
        is_open[j] = True
        is_open[r] = False
        n_swaps += 1
    return np.flatnonzero(is_open), n_swaps, stop
