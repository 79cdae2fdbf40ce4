"""Many independent jobs in parallel rounds with per-thread arenas (the Python round driver
and its compiled helpers).

Within a round, ``prange`` hands jobs to threads dynamically (small chunks); each thread owns
its scratch arrays and appends its outputs to its own arena, booking ``(thread, start,
count)`` per job (:func:`record`).  After the round, outputs are copied out and finally
scattered into job order.  Round sizes adapt to the observed output sizes so that arenas
rarely overflow; a job that does not fit is re-run in the next round.  Each job's ids are
sorted (:func:`sort_ids`: a bitmap over the id range when the ids are clustered, quicksort
otherwise), so results do not depend on the thread count or on scheduling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numba import njit
from numpy.typing import NDArray

__all__ = ["MIN_ARENA", "RoundFn", "bind_round", "claim", "job_scratch", "n_workers", "record",
           "run_rounds", "sort_ids"]

MIN_ARENA = 1 << 16
_MAX_ROUND = 1 << 15
_ROUND_FILL = 0.5  # rounds are sized to fill about half of each arena
_CHUNK = 2  # prange chunk size: searches are handed to threads dynamically, two at a time


def _debruijn_table() -> NDArray[np.int64]:
    """Lookup table turning ``(lowest_set_bit * _DEBRUIJN) >> 58`` into the bit index."""
    table = np.zeros(64, np.int64)
    for i in range(64):
        table[(((1 << i) * 0x03F79D71B4CB0A89) & 0xFFFFFFFFFFFFFFFF) >> 58] = i
    return table


_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)


_DEBRUIJN_TABLE = _debruijn_table()


@njit(cache=True)
def record(fill: Any, rec: Any, t: int, k: int, m: int, fits: bool) -> None:  # pragma: no cover
    """Book job ``k``'s output (``m`` entries) in worker ``t``'s arena, or mark overflow."""
    if fits:
        rec[k, 0] = t
        rec[k, 1] = fill[t, 0]
        rec[k, 2] = m
        fill[t, 0] += m
    else:
        fill[t, 1] = 1


@njit(cache=True)
def sort_ids(a: Any, m: int, bits: Any, words: Any) -> None:  # pragma: no cover - njit
    """Sort the distinct non-negative ids ``a[:m]`` in place.

    A bitmap sort over the touched 64-bit words only: set one bit per id in ``bits``
    (an all-zero uint64 scratch with one bit per possible id), sort the distinct word
    indices (``words`` is an int64 scratch with one slot per word), then read the set
    bits back in order, clearing ``bits`` again.  Ids of one search are clustered, so
    there are far fewer words than ids; in the worst case it is a quicksort of ``m``.
    """
    if m < 2:
        return
    one = np.uint64(1)
    n_words = 0
    for q in range(m):
        v = a[q]
        wi = v >> 6
        if bits[wi] == 0:
            words[n_words] = wi
            n_words += 1
        bits[wi] |= one << np.uint64(v & 63)
    if n_words > 1:
        words[:n_words].sort()
    o = 0
    for k in range(n_words):
        wi = words[k]
        word = bits[wi]
        bits[wi] = 0
        base = wi << 6
        while word != 0:
            low = word & (~word + one)
            a[o] = base + _DEBRUIJN_TABLE[np.int64((low * _DEBRUIJN) >> np.uint64(58))]
            o += 1
            word ^= low


@njit(cache=True)
def claim(fill: Any, t: int, m: int, cap: int, ids: Any, bits: Any,
          words: Any) -> Any:  # pragma: no cover - njit
    """Whether a job's ``m`` outputs fit in worker ``t``'s arena (``cap`` wide), and where
    they would start: ``(fits, start)``.  When they fit, ``ids[:m]`` are sorted
    (:func:`sort_ids` with the worker's ``bits[t]``/``words[t]``), ready to be copied."""
    f = fill[t, 0]
    fits = f + m <= cap
    if fits:
        sort_ids(ids, m, bits[t], words[t])
    return fits, f


@njit(cache=True)
def _collect_round(rec: Any, arena_i: Any, arena_f: Any) -> Any:  # pragma: no cover - njit
    """Concatenate a round's outputs in round order (jobs with ``rec[k, 0] >= 0`` only)."""
    n_cols = arena_f.shape[2]
    total = 0
    for k in range(rec.shape[0]):
        if rec[k, 0] >= 0:
            total += rec[k, 2]
    out_i = np.empty(total, np.int64)
    out_f = np.empty((total, n_cols), np.float64)
    o = 0
    for k in range(rec.shape[0]):
        t = rec[k, 0]
        if t < 0:
            continue
        f = rec[k, 1]
        c = rec[k, 2]
        out_i[o : o + c] = arena_i[t, f : f + c]
        out_f[o : o + c] = arena_f[t, f : f + c]
        o += c
    return out_i, out_f


@njit(cache=True)
def _scatter(
    ptr: Any, items: Any, counts: Any, src_i: Any, src_f: Any, dst_i: Any, dst_f: Any
) -> None:  # pragma: no cover - njit
    o = 0
    for k in range(items.shape[0]):
        p = ptr[items[k]]
        c = counts[k]
        dst_i[p : p + c] = src_i[o : o + c]
        dst_f[p : p + c] = src_f[o : o + c]
        o += c


RoundFn = Callable[
    [
        NDArray[np.int64],
        NDArray[np.int64],
        NDArray[np.float64],
        NDArray[np.int64],
        NDArray[np.int64],
    ],
    None,
]


def bind_round(kernel: Callable[..., None], head: tuple[Any, ...],
               scratch: tuple[Any, ...]) -> RoundFn:
    """The :data:`RoundFn` of a compiled round kernel called as
    ``kernel(*head, items, *scratch, arena_i, arena_f, fill, rec)``."""

    def run_round(items: NDArray[np.int64], arena_i: NDArray[np.int64],
                  arena_f: NDArray[np.float64], fill: NDArray[np.int64],
                  rec: NDArray[np.int64]) -> None:
        kernel(*head, items, *scratch, arena_i, arena_f, fill, rec)

    return run_round


def job_scratch(workers: int, n_ids: int
                ) -> tuple[NDArray[np.int64], NDArray[np.uint64], NDArray[np.int64]]:
    """Per-worker scratch of jobs whose outputs are distinct ids below ``n_ids``: the
    touched-id list and the bitmap sort's ``bits`` (all zero) and ``words``."""
    n_words = (n_ids >> 6) + 1
    return (np.empty((workers, n_ids), np.int64), np.zeros((workers, n_words), np.uint64),
            np.empty((workers, n_words), np.int64))


def run_rounds(
    run_round: RoundFn, n_items: int, n_workers: int, job_max: int, n_cols: int,
    sequence: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Run ``n_items`` independent jobs in adaptive rounds and assemble a CSR result.

    ``sequence`` (a permutation of the jobs) is the order they are handed out in, e.g.
    spatial order so that consecutive searches touch the same memory; the result is in job
    order whatever the sequence.

    ``run_round(items, arena_i, arena_f, fill, rec)`` processes one round in parallel.
    The worker (thread ``t``) that runs job ``k`` writes its output at
    ``arena[t, fill[t, 0]:...]`` and books ``rec[k] = (t, start, count)``; a job that does
    not fit sets ``fill[t, 1]`` and the worker skips the rest of the round.  Jobs left
    with ``rec[k, 0] == -1`` are carried over to the next round.  ``job_max`` must be at
    least the largest possible output of a single job, which guarantees progress; each
    arena holds ``max(job_max, MIN_ARENA)`` entries.
    """
    cap = max(job_max, MIN_ARENA)
    arena_i = np.empty((n_workers, cap), np.int64)
    arena_f = np.empty((n_workers, cap, n_cols), np.float64)
    fill = np.zeros((n_workers, 2), np.int64)
    count_all = np.zeros(n_items, np.int64)
    pieces: list[
        tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]
    ] = []
    carried = np.empty(0, np.int64)
    next_item = 0
    round_size = 4 * n_workers
    n_done = 0
    n_out = 0
    while next_item < n_items or carried.size:
        take = max(round_size - carried.size, 0)
        stop = min(n_items, next_item + take)
        fresh = (np.arange(next_item, stop, dtype=np.int64) if sequence is None
                 else sequence[next_item:stop])
        items = np.concatenate((carried, fresh))
        next_item = stop
        rec = np.full((items.size, 3), -1, np.int64)
        fill[:] = 0
        with numba.parallel_chunksize(_CHUNK):
            run_round(items, arena_i, arena_f, fill, rec)
        out_i, out_f = _collect_round(rec, arena_i, arena_f)
        done = rec[:, 0] >= 0
        items_done = items[done]
        counts_done = rec[done, 2]
        pieces.append((items_done, counts_done, out_i, out_f))
        count_all[items_done] = counts_done
        carried = items[~done]
        n_done += int(items_done.size)
        n_out += int(out_i.size)
        mean = max(n_out / max(n_done, 1), 1.0)
        round_size = int(min(max(n_workers, n_workers * _ROUND_FILL * cap / mean), _MAX_ROUND))
    ptr = np.zeros(n_items + 1, np.int64)
    np.cumsum(count_all, out=ptr[1:])
    order = np.concatenate([piece[0] for piece in pieces])
    if len(pieces) == 1 and np.all(order[1:] > order[:-1]):
        return ptr, pieces[0][2], pieces[0][3]
    if np.all(order[1:] > order[:-1]):  # no job was carried over: already in job order
        return ptr, np.concatenate([p[2] for p in pieces]), np.concatenate([p[3] for p in pieces])
    total = int(ptr[-1])
    dst_i = np.empty(total, np.int64)
    dst_f = np.empty((total, n_cols), np.float64)
    for items_done, counts_done, out_i, out_f in pieces:
        _scatter(ptr, items_done, counts_done, out_i, out_f, dst_i, dst_f)
    return ptr, dst_i, dst_f


def n_workers() -> int:
    return max(int(numba.get_num_threads()), 1)
