"""The priority queue of every search: a 4-ary min-heap with decrease-key (compiled).

``hkey``/``hnode`` hold the keys and nodes, ``pos[node]`` the node's slot (:data:`NOT_IN_HEAP`
never queued, :data:`SETTLED` settled).  A 4-ary heap is shallower than a binary one and its
children share a cache line.  Slots and node ids are int32, so at most 2**31 - 1 nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

__all__ = ["INF", "NOT_IN_HEAP", "SETTLED", "pop_min", "queue", "sift_down", "sift_up"]

INF = np.inf
SETTLED = -2
NOT_IN_HEAP = -1


@njit(cache=True)
def sift_up(hkey: Any, hnode: Any, pos: Any, i: int) -> None:  # pragma: no cover - njit
    key = hkey[i]
    node = hnode[i]
    while i > 0:
        parent = (i - 1) >> 2
        pkey = hkey[parent]
        if pkey <= key:
            break
        pnode = hnode[parent]
        hkey[i] = pkey
        hnode[i] = pnode
        pos[pnode] = i
        i = parent
    hkey[i] = key
    hnode[i] = node
    pos[node] = i


@njit(cache=True)
def sift_down(hkey: Any, hnode: Any, pos: Any, i: int, size: int) -> None:  # pragma: no cover
    key = hkey[i]
    node = hnode[i]
    while True:
        first = (i << 2) + 1
        if first >= size:
            break
        best = first
        bkey = hkey[first]
        for c in range(first + 1, min(first + 4, size)):
            ckey = hkey[c]
            if ckey < bkey:
                bkey = ckey
                best = c
        if bkey >= key:
            break
        bnode = hnode[best]
        hkey[i] = bkey
        hnode[i] = bnode
        pos[bnode] = i
        i = best
    hkey[i] = key
    hnode[i] = node
    pos[node] = i


# inlined into the searches (numba IR): a call per relaxed arc measurably slows them
@njit(cache=True, inline="always")
def queue(hkey: Any, hnode: Any, pos: Any, size: int, v: int, d: float,
          queued: bool) -> int:  # pragma: no cover - njit
    """Queue node ``v`` at key ``d``: push it, or (``queued``) lower its key; the new size."""
    if queued:
        i = pos[v]
        hkey[i] = d
        sift_up(hkey, hnode, pos, i)
        return size
    hkey[size] = d
    hnode[size] = v
    sift_up(hkey, hnode, pos, size)
    return size + 1


@njit(cache=True, inline="always")
def pop_min(hkey: Any, hnode: Any, pos: Any, size: int) -> Any:  # pragma: no cover - njit
    """Remove the smallest key and mark its node settled; ``(node, key, new size)``."""
    u = hnode[0]
    du = hkey[0]
    size -= 1
    if size > 0:
        hkey[0] = hkey[size]
        hnode[0] = hnode[size]
        sift_down(hkey, hnode, pos, 0, size)
    pos[u] = SETTLED
    return u, du, size
