"""Lagrangian lower bound of the p-median and the variable fixing it allows.

Relaxing the assignment constraints ``sum_j x_ij = 1`` with multipliers ``lam_i`` gives
``L(lam) = sum_i lam_i + min_{|Y| = n_open, fixed in Y} sum_{j in Y} rho_j`` with
``rho_j = sum_i min(0, w_i c_ij - lam_i)`` over the allowed pairs.  Every ``L(lam)`` is a valid
lower bound, its maximum equals the LP bound, and it also bounds the cost of every solution
that opens (or closes) a given site, which lets sites be fixed closed (or open) when that
bound exceeds the cost of a known solution (Beasley 1993).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from numba import njit

__all__ = ["LagrangianBound", "lagrangian_pmedian", "lagrangian_fixing"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass
class LagrangianBound:
    """Best Lagrangian bound found, the multipliers that gave it and the sites it tried.

    ``rho`` holds the sites' reduced costs at ``lam`` (what :func:`lagrangian_fixing`
    needs).  ``open_sets`` holds the distinct site sets the relaxed problem chose (boolean
    masks over the candidates, in the order met), when asked for: they are the raw material
    of the Lagrangian heuristic (Beasley 1993).
    """

    bound: float
    lam: FloatArray
    rho: FloatArray
    iterations: int
    open_sets: list[BoolArray] = field(default_factory=list)


@njit(cache=True)
def _reduced_site_costs(
    cptr: IntArray, cj: IntArray, cwc: FloatArray, lam: FloatArray, n_cand: int
) -> FloatArray:
    """``rho_j = sum_i min(0, w_i c_ij - lam_i)``: per demand, only the entries cheaper than
    its multiplier count, and they are a prefix of its cost-sorted entries."""
    rho = np.zeros(n_cand)
    for i in range(cptr.size - 1):
        li = lam[i]
        for q in range(cptr[i], cptr[i + 1]):
            v = cwc[q]
            if v >= li:
                break
            rho[cj[q]] += v - li
    return rho


@njit(cache=True)
def _subgradient(
    cptr: IntArray,
    cj: IntArray,
    cwc: FloatArray,
    lam: FloatArray,
    is_open: BoolArray,
    active: BoolArray,
) -> FloatArray:
    g = np.zeros(lam.size)
    for i in range(lam.size):
        if not active[i]:
            continue
        g[i] = 1.0
        li = lam[i]
        for q in range(cptr[i], cptr[i + 1]):
            if cwc[q] >= li:
                break
            if is_open[cj[q]]:
                g[i] -= 1.0
    return g


def _prepare(
    costs: sp.csr_array, w: FloatArray, active_dem: BoolArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """Per active demand, its (candidate, weighted cost) entries in ascending cost: the
    column pointers, candidates and weighted costs (inactive demand keeps no entry)."""
    csc = sp.csc_array(costs)
    csc.sort_indices()  # a site's sum then adds its demand in index order, as a row scan would
    counts = np.where(active_dem, np.diff(csc.indptr), 0)
    cptr = np.zeros(csc.shape[1] + 1, dtype=np.int64)
    np.cumsum(counts, out=cptr[1:])
    cj, cwc = _sorted_columns(csc.indptr.astype(np.int64), csc.indices.astype(np.int64),
                              csc.data.astype(np.float64), w, active_dem, cptr)
    return cptr, cj, cwc


@njit(cache=True)
def _sorted_columns(indptr, indices, data, w, active, cptr):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    """The active columns' entries, each column in ascending weighted cost (stable)."""
    cj = np.empty(cptr[-1], np.int64)
    cwc = np.empty(cptr[-1])
    for i in range(indptr.size - 1):
        if not active[i]:
            continue
        lo, hi = indptr[i], indptr[i + 1]
        vals = w[i] * data[lo:hi]
        order = np.argsort(vals, kind="mergesort")
        out = cptr[i]
        for t in range(hi - lo):
            cj[out + t] = indices[lo + order[t]]
            cwc[out + t] = vals[order[t]]
    return cj, cwc


def _choose(rho: FloatArray, fixed: BoolArray, n_free: int) -> BoolArray:
    is_open = fixed.copy()
    if n_free > 0:
        free = np.flatnonzero(~fixed)
        if n_free < free.size:
            free = free[np.argsort(rho[free], kind="stable")[:n_free]]
        is_open[free] = True
    return is_open


def lagrangian_pmedian(
    costs: sp.csr_array,
    w: FloatArray,
    active_dem: BoolArray,
    fixed: BoolArray,
    n_open: int,
    upper: float,
    *,
    start: FloatArray | None = None,
    n_iter: int = 600,
    stop_at: float = np.inf,
    keep_sets: int = 0,
) -> LagrangianBound:
    """Best Lagrangian lower bound of the p-median found by subgradient optimisation.

    Polyak steps towards ``upper``, the step factor halved after 20 iterations without
    progress; stops after ``n_iter`` iterations, when the factor gets tiny, when the relaxed
    solution is feasible (then the bound is the optimum) or once the bound reaches ``stop_at``.

    Parameters
    ----------
    costs, w
        Candidate x demand CSR matrix of allowed assignment costs; demand weights.
    active_dem, fixed
        Demand that must be assigned (positive weight, some allowed site); sites forced open.
    n_open, upper
        Total number of open sites (fixed included); cost of a known feasible solution.
    start
        Initial multipliers (e.g. the weighted cost of a heuristic assignment).
    n_iter
        Maximum number of subgradient iterations.
    stop_at
        Stop as soon as the bound reaches this value.
    keep_sets
        Keep up to this many distinct site sets of the relaxed problem in ``open_sets``.

    Returns
    -------
    LagrangianBound
    """
    cptr, cj, cwc = _prepare(costs, w, active_dem)
    n_cand, n_dem = costs.shape
    lam = np.zeros(n_dem) if start is None else np.where(active_dem, start, 0.0)
    lam = np.ascontiguousarray(lam, dtype=np.float64)
    n_free = n_open - int(fixed.sum())
    best = -np.inf
    best_lam = lam.copy()
    best_rho: FloatArray | None = None
    theta = 2.0
    stall = 0
    iterations = 0
    kept = _DistinctSets(keep_sets)
    for it in range(1, n_iter + 1):
        iterations = it
        rho = _reduced_site_costs(cptr, cj, cwc, lam, n_cand)
        is_open = _choose(rho, fixed, n_free)
        kept.offer(is_open)
        value = float(lam[active_dem].sum() + rho[is_open].sum())
        if not np.isfinite(best) or value > best + 1e-12 * max(abs(best), 1.0):
            best = value
            best_lam, best_rho = lam.copy(), rho
            stall = 0
        else:
            stall += 1
            if stall >= 20:
                theta *= 0.5
                stall = 0
        if best >= stop_at:
            break
        g = _subgradient(cptr, cj, cwc, lam, is_open, active_dem)
        norm = float(g @ g)
        if norm == 0.0 or theta < 1e-5:
            break
        step = theta * max(upper - value, 1e-9 * max(abs(upper), 1.0)) / norm
        lam = lam + step * g
    if best_rho is None:  # no iteration ran
        best_rho = _reduced_site_costs(cptr, cj, cwc, best_lam, n_cand)
    return LagrangianBound(bound=float(best), lam=best_lam, rho=best_rho,
                           iterations=iterations, open_sets=kept.sets)


class _DistinctSets:
    """Up to ``limit`` distinct boolean masks, in the order first offered."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sets: list[BoolArray] = []
        self._seen: set[bytes] = set()

    def offer(self, mask: BoolArray) -> None:
        if len(self.sets) >= self.limit:
            return
        key = np.packbits(mask).tobytes()
        if key not in self._seen:
            self._seen.add(key)
            self.sets.append(mask)


def lagrangian_fixing(
    lag: LagrangianBound,
    active_dem: BoolArray,
    fixed: BoolArray,
    n_open: int,
    threshold: float,
) -> tuple[BoolArray, BoolArray, float]:
    """Sites that every solution cheaper than ``threshold`` keeps closed, or keeps open.

    With the multipliers ``lag.lam`` (and the reduced costs ``lag.rho`` they give), opening a
    site outside the Lagrangian solution costs at least ``L - rho_(last chosen) + rho_j``;
    closing a chosen one at least ``L - rho_j + rho_(first not chosen)``.  Sites whose bound
    exceeds ``threshold`` are fixed.

    Returns
    -------
    closed, forced, fix_bound
        Masks of the sites fixed closed and fixed open, and the smallest of their bounds: every
        solution that violates a fixing costs at least ``fix_bound`` (``inf`` if none).
    """
    lam, rho = lag.lam, lag.rho
    n_cand = rho.size
    closed = np.zeros(n_cand, dtype=bool)
    forced = np.zeros(n_cand, dtype=bool)
    n_free = n_open - int(fixed.sum())
    free = np.flatnonzero(~fixed)
    if n_free <= 0 or n_free >= free.size:
        return closed, forced, np.inf
    order = free[np.argsort(rho[free], kind="stable")]
    chosen, others = order[:n_free], order[n_free:]
    base = float(lam[active_dem].sum() + rho[fixed].sum() + rho[chosen].sum())
    open_bound = base - rho[chosen[-1]] + rho[others]
    close_bound = base - rho[chosen] + rho[others[0]]
    closed[others[open_bound > threshold]] = True
    forced[chosen[close_bound > threshold]] = True
    bounds = np.concatenate(
        [open_bound[open_bound > threshold], close_bound[close_bound > threshold]]
    )
    return closed, forced, float(bounds.min()) if bounds.size else np.inf
