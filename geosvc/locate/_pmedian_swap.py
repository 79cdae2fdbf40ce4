"""p-median: nearest / second-nearest open site and vertex substitution (numba).

Both kernels make one pass over the stored (candidate, demand, cost) entries, with no sort:

- :func:`nearest_two` walks the open sites' rows in index order, so ties go to the smaller
  candidate index;
- :func:`swap_pmedian` is best-improvement vertex substitution (Teitz and Bart).  Every
  iteration values all swaps (open a closed candidate ``j``, close an open non-fixed site
  ``r``) at once with the decomposition ``profit(j, r) = gain(j) - loss(r) + extra(j, r)``
  (Whitaker; Resende and Werneck), from the nearest and second-nearest open costs per demand.
  ``extra(j, ·)`` is one row of ``movable`` floats, filled from ``j``'s entries and cleared
  after use, so an iteration costs ``O(nnz + candidates x movable)`` time and
  ``O(demand + movable)`` memory.  Swaps that would leave a demand of positive weight
  without an allowed open site are excluded (weight-0 demand need not be served).
"""

from __future__ import annotations

import math
import time

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from numba import njit

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
def _best_swap(indptr, indices, data, w, d1, n1, d2, is_open, pos, movable, tol):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    """The most profitable ``(j, r)`` swap as ``(j, r, profit)``; ``j = -1`` if none > tol.

    ``pos[r]`` is ``r``'s place in ``movable`` (-1 for fixed or closed sites).  Candidates and
    movable sites are scanned in index order and only a strictly larger profit replaces the
    best, so the first best pair in (candidate, site) order wins.
    """
    n_cand = indptr.shape[0] - 1
    n_dem = w.shape[0]
    n_mov = movable.shape[0]
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
    extra = np.zeros(n_mov)
    extra_inf = np.zeros(n_mov, np.int64)
    best_j, best_r, best = -1, -1, tol
    for j in range(n_cand):
        if is_open[j]:
            continue
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
        for r in range(n_mov):
            if extra_inf[r] == inf_cnt[r]:
                profit = (gain - loss[r]) + extra[r]
                if profit > best:
                    best, best_j, best_r = profit, j, movable[r]
            extra[r] = 0.0
            extra_inf[r] = 0
    return best_j, best_r, best


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

    Returns
    -------
    open_sites, n_swaps, stop
        ``stop`` is ``"local_optimum"``, ``"max_iter"`` or ``"time_limit"``.
    """
    n_cand = costs.shape[0]
    data = costs.data.astype(np.float64, copy=False)
    w = np.asarray(w, dtype=np.float64)
    scale = max(float(np.sum(w) * (np.max(data) if data.size else 0.0)), 1.0)
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
                             movable, 1e-10 * scale)
        if j < 0:
            stop = "local_optimum"
            break
        is_open[j] = True
        is_open[r] = False
        n_swaps += 1
    return np.flatnonzero(is_open), n_swaps, stop
