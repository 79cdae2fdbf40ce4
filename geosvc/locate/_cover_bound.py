"""Lagrangian upper bound of maximal covering, cheap enough for a city's relation.

Maximal covering: ``max sum_i w_i y_i`` s.t. ``y_i <= sum_{j covers i} x_j``, ``sum_j x_j = k``,
``x, y`` binary.  Relaxing the covering rows with multipliers ``lam_i >= 0`` gives::

    L(lam) = sum_i max(0, w_i - lam_i) + (sum of the k largest site scores),
    score_j = sum_{i covered by j} lam_i

Every ``L(lam)`` is an upper bound on the optimum (weak duality); the subgradient method
lowers it.  At ``lam = w`` it is the naive "k best single sites" bound, at ``lam = 0`` the
coverable weight; the best multipliers give the LP bound.  One iteration costs one pass
over the relation, so it runs where the LP relaxation is too large to build (a city's
10^7 pairs), and the bound is what the plan's stated gap is measured against.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = ["lagrangian_max_coverage", "lagrangian_value"]

FloatArray = npt.NDArray[np.float64]


@njit(cache=True)
def _value(indptr: Any, indices: Any, w: Any, lam: Any, k: int, score: Any) -> Any:  # pragma: no cover - njit
    """``L(lam)``, the chosen sites (top-k scores) and the demand part."""
    n_cand = indptr.shape[0] - 1
    base = 0.0
    for i in range(w.shape[0]):
        if w[i] > lam[i]:
            base += w[i] - lam[i]
    for j in range(n_cand):
        s = 0.0
        for q in range(indptr[j], indptr[j + 1]):
            s += lam[indices[q]]
        score[j] = s
    top = np.argsort(-score)[:k]
    total = base
    for t in range(top.shape[0]):
        total += score[top[t]]
    return total, top


@njit(cache=True)
def _subgradient_steps(indptr: Any, indices: Any, w: Any, lam: Any, k: int, lower: float,
                       n_steps: int, state: Any) -> int:  # pragma: no cover - njit
    """``n_steps`` subgradient steps; ``state`` = [best bound, theta, stall] carried over."""
    n_dem = w.shape[0]
    score = np.empty(indptr.shape[0] - 1)
    cnt = np.zeros(n_dem)
    best, theta, stall = state[0], state[1], state[2]
    it = 0
    while it < n_steps:
        it += 1
        val, top = _value(indptr, indices, w, lam, k, score)
        if best == np.inf or val < best - 1e-9 * max(1.0, abs(best)):
            best = val
            stall = 0.0
        else:
            stall += 1.0
            if stall >= 5.0:
                theta *= 0.5
                stall = 0.0
        if best - lower <= 1e-9 * max(1.0, abs(lower)) or theta < 1e-4:
            theta = 0.0  # converged (or met the known plan): no further steps
            break
        # subgradient g_i = (chosen sites covering i) - y_i
        cnt[:] = 0.0
        for t in range(top.shape[0]):
            j = top[t]
            for q in range(indptr[j], indptr[j + 1]):
                cnt[indices[q]] += 1.0
        norm = 0.0
        for i in range(n_dem):
            g = cnt[i] - (1.0 if w[i] > lam[i] else 0.0)
            norm += g * g
        if norm == 0.0:
            theta = 0.0
            break
        step = theta * (val - lower) / norm
        for i in range(n_dem):
            g = cnt[i] - (1.0 if w[i] > lam[i] else 0.0)
            lam[i] = min(max(lam[i] - step * g, 0.0), w[i])  # lam_i > w_i never helps
    state[0], state[1], state[2] = best, theta, stall
    return it


def lagrangian_max_coverage(
    indptr: Any, indices: Any, w: FloatArray, k: int, lower: float, *,
    max_iter: int = 200, max_time_s: float = 5.0,
) -> tuple[float, dict[str, Any]]:
    """Best Lagrangian upper bound on the new weight ``k`` sites can cover.

    Parameters
    ----------
    indptr, indices
        Candidate x demand relation (CSR rows), demand restricted to what may still be
        covered (``w`` is 0 elsewhere).
    w
        Demand weights (0 for demand that is already covered or cannot count).
    k
        Number of sites.
    lower
        Weight a known plan covers (the greedy's): it sets the subgradient step and stops the
        search when the bound meets it (the plan is then optimal).
    max_iter, max_time_s
        Iteration and time budget; every iterate is a valid bound, the best one is returned.

    Returns
    -------
    bound, info
        Upper bound on the new covered weight, and ``iterations``/``time_s``.
    """
    t0 = time.perf_counter()
    w = np.asarray(w, dtype=np.float64)
    n_cand = len(indptr) - 1
    if k <= 0 or n_cand == 0 or not (w > 0).any():
        return 0.0, {"iterations": 0, "time_s": 0.0}
    k = int(min(k, n_cand))
    # start between the "k best single sites" (lam = w) and the coverable weight (lam = 0):
    # each demand priced at its weight shared among the candidates that cover it
    deg = np.bincount(np.asarray(indices), minlength=w.size).astype(np.float64)
    lam = np.where(deg > 0, w / np.maximum(deg, 1.0), 0.0)
    ptr = np.asarray(indptr, dtype=np.int64)
    state = np.array([np.inf, 2.0, 0.0])
    iters = 0
    while iters < max_iter and state[1] > 0.0:
        iters += _subgradient_steps(ptr, indices, w, lam, k, float(lower),
                                    min(16, max_iter - iters), state)
        if time.perf_counter() - t0 > max_time_s:
            break
    best = state[0]
    return float(best), {"iterations": int(iters), "time_s": round(time.perf_counter() - t0, 3)}


def lagrangian_value(indptr: Any, indices: Any, w: FloatArray, lam: FloatArray,
                     k: int) -> tuple[float, FloatArray]:
    """``L(lam)`` (an upper bound on the new covered weight for any ``lam >= 0``) and the
    site scores ``score_j = sum_{i covered by j} lam_i``."""
    score = np.empty(len(indptr) - 1)
    k = int(min(k, len(indptr) - 1))
    value, _ = _value(np.asarray(indptr, dtype=np.int64), np.asarray(indices),
                      np.asarray(w, dtype=np.float64), np.asarray(lam, dtype=np.float64), k,
                      score)
    return float(value), score
