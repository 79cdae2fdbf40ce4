"""Uniform-grid index over edge segments and a compiled nearest-segment query.

Every edge geometry is cut into its straight segments; each segment is registered in the
grid cells its bounding box touches (cells keyed by ``group`` too, so compound walls hold).
A query scans rings of cells outward from the point's cell and stops as soon as no farther
ring can hold a closer segment, so the answer is the exact nearest segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import shapely

__all__ = ["SegmentIndex", "build_segment_index", "nearest_segments"]


@dataclass(frozen=True)
class SegmentIndex:
    """Arrays of the segment grid (see module docstring)."""

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    seg_edge: np.ndarray
    seg_start_m: np.ndarray
    cell_keys: np.ndarray
    cell_start: np.ndarray
    cell_segs: np.ndarray
    origin_x: float
    origin_y: float
    cell_m: float
    ncx: int
    ncy: int


def build_segment_index(edge_geometry: np.ndarray, edge_group: np.ndarray,
                        *, cell_m: float | None = None) -> SegmentIndex:
    """Build the grid index over all straight segments of ``edge_geometry``."""
    coords, idx = shapely.get_coordinates(edge_geometry, return_index=True)
    same = idx[1:] == idx[:-1]
    a = coords[:-1][same]
    b = coords[1:][same]
    seg_edge = idx[:-1][same].astype(np.int64)
    seg_len = np.hypot(b[:, 0] - a[:, 0], b[:, 1] - a[:, 1])
    # distance along the edge where each segment starts
    cum = np.cumsum(seg_len)
    first = np.r_[True, seg_edge[1:] != seg_edge[:-1]]
    base = np.maximum.accumulate(np.where(first, np.arange(len(seg_edge)), 0))
    seg_start = cum - seg_len - (cum[base] - seg_len[base])
    lo = np.minimum(a, b)
    hi = np.maximum(a, b)
    origin = coords.min(axis=0) - 1.0
    extent = coords.max(axis=0) + 1.0 - origin
    if cell_m is None:
        # about two segments per cell on average, at least 20 m
        cell_m = float(max(20.0, np.sqrt(extent[0] * extent[1] / max(len(seg_edge), 1)) * 1.5))
    ncx = int(extent[0] // cell_m) + 1
    ncy = int(extent[1] // cell_m) + 1
    cx0 = ((lo[:, 0] - origin[0]) // cell_m).astype(np.int64)
    cy0 = ((lo[:, 1] - origin[1]) // cell_m).astype(np.int64)
    cx1 = ((hi[:, 0] - origin[0]) // cell_m).astype(np.int64)
    cy1 = ((hi[:, 1] - origin[1]) // cell_m).astype(np.int64)
    group = np.asarray(edge_group, dtype=np.int64)[seg_edge]
    keys, segs = _register(cx0, cy0, cx1, cy1, group, ncx, ncy)
    order = np.argsort(keys, kind="stable")
    keys, segs = keys[order], segs[order]
    uniq, start = np.unique(keys, return_index=True)
    cell_start = np.r_[start, len(keys)].astype(np.int64)
    return SegmentIndex(a[:, 0].copy(), a[:, 1].copy(), b[:, 0].copy(), b[:, 1].copy(),
                        seg_edge, seg_start, uniq.astype(np.int64), cell_start,
                        segs.astype(np.int64), float(origin[0]), float(origin[1]),
                        float(cell_m), ncx, ncy)


@nb.njit(cache=True)
def _register(cx0: np.ndarray, cy0: np.ndarray, cx1: np.ndarray, cy1: np.ndarray,
              group: np.ndarray, ncx: int, ncy: int) -> tuple[np.ndarray, np.ndarray]:
    total = 0
    for i in range(len(cx0)):
        total += (cx1[i] - cx0[i] + 1) * (cy1[i] - cy0[i] + 1)
    keys = np.empty(total, dtype=np.int64)
    segs = np.empty(total, dtype=np.int64)
    k = 0
    ncell = ncx * ncy
    for i in range(len(cx0)):
        for cy in range(cy0[i], cy1[i] + 1):
            for cx in range(cx0[i], cx1[i] + 1):
                keys[k] = group[i] * ncell + cy * ncx + cx
                segs[k] = i
                k += 1
    return keys, segs


@nb.njit(cache=True, parallel=True)
def _query(px: np.ndarray, py: np.ndarray, pgroup: np.ndarray, x0: np.ndarray,
           y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, cell_keys: np.ndarray,
           cell_start: np.ndarray, cell_segs: np.ndarray, ox: float, oy: float,
           cell: float, ncx: int, ncy: int, max_dist: float,
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(px)
    best_seg = np.full(n, -1, dtype=np.int64)
    best_d = np.full(n, np.inf)
    best_t = np.zeros(n)
    max_ring = int(np.ceil(max_dist / cell)) + 1
    ncell = ncx * ncy
    for i in nb.prange(n):
        x = px[i]
        y = py[i]
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        cx = int((x - ox) // cell)
        cy = int((y - oy) // cell)
        bd2 = np.inf
        bs = -1
        bt = 0.0
        for r in range(max_ring + 1):
            for dy in range(-r, r + 1):
                yy = cy + dy
                if yy < 0 or yy >= ncy:
                    continue
                step = 1 if (dy == -r or dy == r) else 2 * r
                if r == 0:
                    step = 1
                dx = -r
                while dx <= r:
                    xx = cx + dx
                    if 0 <= xx < ncx:
                        key = pgroup[i] * ncell + yy * ncx + xx
                        pos = np.searchsorted(cell_keys, key)
                        if pos < len(cell_keys) and cell_keys[pos] == key:
                            for k in range(cell_start[pos], cell_start[pos + 1]):
                                s = cell_segs[k]
                                ax = x0[s]
                                ay = y0[s]
                                vx = x1[s] - ax
                                vy = y1[s] - ay
                                ll = vx * vx + vy * vy
                                t = 0.0
                                if ll > 0.0:
                                    t = ((x - ax) * vx + (y - ay) * vy) / ll
                                    t = min(1.0, max(0.0, t))
                                qx = ax + t * vx - x
                                qy = ay + t * vy - y
                                d2 = qx * qx + qy * qy
                                if d2 < bd2 or (d2 == bd2 and s < bs):
                                    bd2 = d2
                                    bs = s
                                    bt = t
                    dx += step
            # any segment in ring r+1 or beyond lies at least r * cell away
            if bs >= 0 and np.sqrt(bd2) <= r * cell:
                break
            if r * cell > max_dist:
                break
        if bs >= 0 and np.sqrt(bd2) <= max_dist:
            best_seg[i] = bs
            best_d[i] = np.sqrt(bd2)
            best_t[i] = bt
    return best_seg, best_d, best_t


def nearest_segments(index: SegmentIndex, xy: np.ndarray, group: np.ndarray,
                     max_dist: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nearest edge (within ``max_dist`` and the same group) of every point.

    Returns
    -------
    edge, distance, offset_along_geometry, snapped_xy
        ``edge`` is -1 (distance inf, NaN elsewhere) when nothing lies within ``max_dist``.
    """
    group = np.asarray(group, dtype=np.int64)
    # visit points cell by cell (memory locality: 3-4x faster on large random inputs)
    cx = np.nan_to_num((xy[:, 0] - index.origin_x) // (8 * index.cell_m), nan=-1.0)
    cy = np.nan_to_num((xy[:, 1] - index.origin_y) // (8 * index.cell_m), nan=-1.0)
    order = np.lexsort((cx, cy, group))
    seg, dist, t = _query(
        np.ascontiguousarray(xy[order, 0]), np.ascontiguousarray(xy[order, 1]),
        group[order], index.x0, index.y0, index.x1, index.y1,
        index.cell_keys, index.cell_start, index.cell_segs, index.origin_x, index.origin_y,
        index.cell_m, index.ncx, index.ncy, float(max_dist))
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    seg, dist, t = seg[inverse], dist[inverse], t[inverse]
    found = seg >= 0
    edge = np.full(len(seg), -1, dtype=np.int64)
    offset = np.full(len(seg), np.nan)
    s = seg[found]
    edge[found] = index.seg_edge[s]
    seg_len = np.hypot(index.x1[s] - index.x0[s], index.y1[s] - index.y0[s])
    offset[found] = index.seg_start_m[s] + t[found] * seg_len
    snapped = np.full((len(seg), 2), np.nan)
    snapped[found, 0] = index.x0[s] + t[found] * (index.x1[s] - index.x0[s])
    snapped[found, 1] = index.y0[s] + t[found] * (index.y1[s] - index.y0[s])
    return edge, dist, offset, snapped
