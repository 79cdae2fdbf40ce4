"""Max-coverage local search: best-improvement site interchange (numba).

Starting from a plan of ``k`` sites (the greedy's), each step finds the single swap --
close one chosen site, open one unchosen candidate -- that adds the most covered weight, and
applies it while it adds any.  The gain of every swap is exact and comes from one pass over
the relation per step:

- ``loss[s]``: weight covered by chosen site ``s`` alone (count 1), lost when ``s`` closes;
- ``gain[c]``: uncovered weight candidate ``c`` covers, gained when ``c`` opens;
- ``back[s, c]``: weight covered by ``s`` alone that ``c`` also covers (kept when both move).

The swap ``(s out, c in)`` changes the covered weight by ``gain[c] + back[s, c] - loss[s]``.
A step costs ``O(nnz + k * candidates)`` time and ``k * candidates`` floats; the search stops
when no swap adds weight (a 1-swap local optimum), at its work budget or at its time limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = ["swap_max_coverage"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: The swap gains table holds ``k x candidates`` floats; above this many the search is skipped.
MAX_PAIR_GAINS = 20_000_000


@njit(cache=True)
def _best_swap(indptr, indices, cptr, cidx, w, sel, slot, cnt, n_sel):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    """The best ``(out, in, delta)`` swap for the current plan (``delta <= 0``: none helps)."""
    n_cand = indptr.shape[0] - 1
    n_dem = w.shape[0]
    loss = np.zeros(n_sel)
    gain = np.zeros(n_cand)
    back = np.zeros((n_sel, n_cand))
    only = np.full(n_dem, -1, np.int64)  # the slot of the single chosen site covering i
    for s in range(n_cand):
        if sel[s]:
            for q in range(indptr[s], indptr[s + 1]):
                i = indices[q]
                if cnt[i] == 1:
                    only[i] = slot[s]
    for i in range(n_dem):
        wi = w[i]
        if wi <= 0.0:
            continue
        if cnt[i] == 0:
            for q in range(cptr[i], cptr[i + 1]):
                gain[cidx[q]] += wi
        elif cnt[i] == 1:
            t = only[i]
            loss[t] += wi
            for q in range(cptr[i], cptr[i + 1]):
                back[t, cidx[q]] += wi
    best = 0.0
    best_out = -1
    best_in = -1
    for s in range(n_cand):
        if not sel[s]:
            continue
        t = slot[s]
        for c in range(n_cand):
            if sel[c]:
                continue
            d = gain[c] + back[t, c] - loss[t]
            if d > best:
                best = d
                best_out = s
                best_in = c
    return best_out, best_in, best


@njit(cache=True)
def _move(indptr, indices, cnt, j, step):  # type: ignore[no-untyped-def]  # pragma: no cover - njit
    for q in range(indptr[j], indptr[j + 1]):
        cnt[indices[q]] += step


def _descend(ptr, idx, cptr, cidx, w, sel, slot, cnt, n_sel, tol, deadline, max_steps):  # type: ignore[no-untyped-def]
    """Best-improvement swaps until a local optimum; returns (steps, added weight, stop)."""
    steps, added = 0, 0.0
    while steps < max_steps:
        if time.perf_counter() > deadline:
            return steps, added, "time"
        out, into, delta = _best_swap(ptr, idx, cptr, cidx, w, sel, slot, cnt, n_sel)
        if out < 0 or delta <= tol:
            return steps, added, "local_optimum"
        _move(ptr, idx, cnt, out, -1)
        _move(ptr, idx, cnt, into, 1)
        sel[out], sel[into] = False, True
        slot[into], slot[out] = slot[out], -1
        steps += 1
        added += float(delta)
    return steps, added, "work"


def _covered(w: FloatArray, cnt: IntArray) -> float:
    return float(w[cnt > 0].sum())


def swap_max_coverage(
    indptr: IntArray,
    indices: IntArray,
    w: FloatArray,
    chosen: IntArray,
    *,
    max_work: float = 5e8,
    max_time_s: float = 30.0,
    kicks: int = 200,
    seed: int = 0,
    min_gain: float = 1e-9,
) -> tuple[IntArray, dict[str, Any]]:
    """Improve a max-coverage plan: best-improvement swaps, then kicked restarts.

    After the first local optimum, each *kick* replaces two chosen sites (drawn at random,
    deterministic for ``seed``) by two random candidates that cover uncovered weight and
    descends again; the better plan is kept.  The search ends after ``kicks`` kicks, at
    ``max_work`` or at ``max_time_s``, whichever comes first.

    Parameters
    ----------
    indptr, indices
        Candidate x demand relation (CSR rows, sorted or not).
    w
        Demand weights; 0 where the demand does not count (already covered, inactive).
    chosen
        The starting plan's candidate indices (distinct).
    max_work
        Work budget in relation entries visited (one swap step visits every entry once, plus
        ``k x candidates`` pair gains): a deterministic limit, so the same input gives the
        same plan on any machine.
    max_time_s
        Safety limit in seconds (only this one depends on the machine).
    kicks, seed
        Number of kicked restarts; the seed of their random draws.
    min_gain
        Smallest added weight a swap must bring, relative to the total weight.

    Returns
    -------
    sites, info
        The best plan found (same number of sites) and ``steps``, ``kicks``,
        ``added_weight`` (over the start), ``first_optimum_weight``, ``stop`` and ``time_s``.
    """
    t0 = time.perf_counter()
    deadline = t0 + max_time_s
    st = _SwapState.start(indptr, indices, w, chosen, min_gain)
    n_cand = st.sel.size
    info: dict[str, Any] = {"steps": 0, "kicks": 0, "added_weight": 0.0, "stop": "nothing_to_swap"}
    if st.n_sel * n_cand > MAX_PAIR_GAINS:
        info.update(stop=f"skipped: {st.n_sel} x {n_cand} swap gains exceed "
                         f"{MAX_PAIR_GAINS:.0e}", time_s=0.0)
        return np.flatnonzero(st.sel).astype(np.int64), info
    if st.n_sel == 0 or st.n_sel >= n_cand:
        info["time_s"] = 0.0
        return np.flatnonzero(st.sel).astype(np.int64), info
    max_steps = max(1, int(max_work // max(1, st.idx.size + st.n_sel * n_cand)))
    start_w = st.covered()
    steps, stop = st.descend(deadline, max_steps)
    best_w = info["first_optimum_weight"] = st.covered()
    best_sel = st.sel.copy()
    rng = np.random.default_rng(seed)
    n_kicks = 0
    while stop == "local_optimum" and n_kicks < kicks:
        if time.perf_counter() > deadline:
            stop = "time"
            break
        n_kicks += 1
        st.kick(rng)
        more, stop = st.descend(deadline, max_steps - steps)
        steps += more
        if st.covered() > best_w + st.tol:
            best_w, best_sel = st.covered(), st.sel.copy()
        elif stop == "local_optimum":  # back to the best plan
            st.restore(best_sel)
        if stop == "local_optimum" and n_kicks >= kicks:
            stop = "kicks"
    info.update(steps=steps, kicks=n_kicks, added_weight=best_w - start_w, stop=stop,
                time_s=round(time.perf_counter() - t0, 3))
    return np.flatnonzero(best_sel).astype(np.int64), info


@dataclass
class _SwapState:
    """A plan under swap search: the relation both ways, the chosen sites and cover counts."""

    ptr: IntArray
    idx: IntArray
    rows: IntArray
    cptr: IntArray
    cidx: IntArray
    w: FloatArray
    sel: BoolArray
    slot: IntArray
    cnt: IntArray
    n_sel: int
    tol: float

    @classmethod
    def start(cls, indptr: Any, indices: Any, w: Any, chosen: Any,
              min_gain: float) -> _SwapState:
        n_cand = len(indptr) - 1
        w = np.asarray(w, dtype=np.float64)
        ptr = np.asarray(indptr, dtype=np.int64)
        idx = np.asarray(indices, dtype=np.int64)
        rows = np.repeat(np.arange(n_cand, dtype=np.int64), np.diff(ptr))
        cptr = np.zeros(w.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(idx, minlength=w.size), out=cptr[1:])
        sel = np.zeros(n_cand, dtype=bool)
        sel[np.asarray(chosen, dtype=np.int64)] = True
        st = cls(ptr=ptr, idx=idx, rows=rows, cptr=cptr,
                 cidx=rows[np.argsort(idx, kind="stable")], w=w, sel=sel,
                 slot=np.full(n_cand, -1, dtype=np.int64), cnt=np.zeros(w.size, dtype=np.int64),
                 n_sel=int(sel.sum()), tol=min_gain * max(1.0, float(w.sum())))
        st.restore(sel.copy())
        return st

    def covered(self) -> float:
        return _covered(self.w, self.cnt)

    def descend(self, deadline: float, max_steps: int) -> tuple[int, str]:
        """Best-improvement swaps until a local optimum, the step budget or the deadline."""
        steps, _, stop = _descend(self.ptr, self.idx, self.cptr, self.cidx, self.w, self.sel,
                                  self.slot, self.cnt, self.n_sel, self.tol, deadline,
                                  max_steps)
        return int(steps), str(stop)

    def kick(self, rng: np.random.Generator) -> None:
        """Two chosen sites out, two candidates that cover uncovered weight in."""
        n_cand = self.sel.size
        open_gain = np.bincount(self.rows, minlength=n_cand, weights=np.where(
            self.cnt[self.idx] == 0, self.w[self.idx], 0.0))  # uncovered weight covered
        useful = np.flatnonzero(~self.sel & (open_gain > 0))
        pool = useful if useful.size >= 2 else np.flatnonzero(~self.sel)
        outs = rng.choice(np.flatnonzero(self.sel), size=min(2, self.n_sel), replace=False)
        ins = rng.choice(pool, size=min(outs.size, pool.size), replace=False)
        for a, b in zip(outs, ins, strict=False):
            _move(self.ptr, self.idx, self.cnt, a, -1)
            _move(self.ptr, self.idx, self.cnt, b, 1)
            self.sel[a], self.sel[b] = False, True
            self.slot[b], self.slot[a] = self.slot[a], -1

    def restore(self, sel: BoolArray) -> None:
        """Make ``sel`` the plan, with its slots and cover counts."""
        self.sel[:] = sel
        self.slot[:] = -1
        self.slot[self.sel] = np.arange(self.n_sel)
        self.cnt[:] = 0
        for j in np.flatnonzero(self.sel):
            _move(self.ptr, self.idx, self.cnt, j, 1)
