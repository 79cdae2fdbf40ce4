"""Compiled segment kernels for noding: crossings between lines and ends on line interiors.

Candidate pairs come from an STRtree bounding-box query (no GEOS predicate); these kernels
test the segments exactly and return positions along both lines, so the noder never calls
a per-pair GEOS overlay.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import shapely

__all__ = ["line_arrays", "pair_crossings", "points_on_lines"]


def line_arrays(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates, CSR offsets and cumulative vertex distances of LineStrings."""
    coords = shapely.get_coordinates(geoms)
    n_coords = shapely.get_num_coordinates(geoms)
    offsets = np.zeros(len(geoms) + 1, dtype=np.int64)
    np.cumsum(n_coords, out=offsets[1:])
    step = np.r_[0.0, np.hypot(*(coords[1:] - coords[:-1]).T)]
    step[offsets[:-1][n_coords > 0]] = 0.0
    cum = np.cumsum(step)
    cum -= np.repeat(cum[offsets[:-1]], n_coords) if len(coords) else 0.0
    return np.ascontiguousarray(coords), offsets, cum


@nb.njit(cache=True)
def _crossings(coords: np.ndarray, offsets: np.ndarray, cum: np.ndarray, pi: np.ndarray,
               pj: np.ndarray, eps: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    cap = 16 + 2 * len(pi)
    out_pair = np.empty(cap, dtype=np.int64)
    out_xy = np.empty((cap, 2))
    out_pi = np.empty(cap)
    out_pj = np.empty(cap)
    k = 0
    for q in range(len(pi)):
        i = pi[q]
        j = pj[q]
        len_i = cum[offsets[i + 1] - 1]
        len_j = cum[offsets[j + 1] - 1]
        for a in range(offsets[i], offsets[i + 1] - 1):
            ax0 = coords[a, 0]
            ay0 = coords[a, 1]
            rx = coords[a + 1, 0] - ax0
            ry = coords[a + 1, 1] - ay0
            for b in range(offsets[j], offsets[j + 1] - 1):
                bx0 = coords[b, 0]
                by0 = coords[b, 1]
                sx = coords[b + 1, 0] - bx0
                sy = coords[b + 1, 1] - by0
                if (max(ax0, ax0 + rx) < min(bx0, bx0 + sx)
                        or max(bx0, bx0 + sx) < min(ax0, ax0 + rx)
                        or max(ay0, ay0 + ry) < min(by0, by0 + sy)
                        or max(by0, by0 + sy) < min(ay0, ay0 + ry)):
                    continue
                den = rx * sy - ry * sx
                if den == 0.0:
                    continue  # parallel or collinear: no single crossing point
                qx = bx0 - ax0
                qy = by0 - ay0
                t = (qx * sy - qy * sx) / den
                u = (qx * ry - qy * rx) / den
                if t < 0.0 or t > 1.0 or u < 0.0 or u > 1.0:
                    continue
                pos_i = cum[a] + t * np.hypot(rx, ry)
                pos_j = cum[b] + u * np.hypot(sx, sy)
                if pos_i <= eps or pos_i >= len_i - eps or pos_j <= eps or pos_j >= len_j - eps:
                    continue  # at an end of one line: a shared end or a T, not a crossing
                if k == cap:
                    cap *= 2
                    out_pair = _grow_i(out_pair, cap)
                    out_xy = _grow_xy(out_xy, cap)
                    out_pi = _grow_f(out_pi, cap)
                    out_pj = _grow_f(out_pj, cap)
                out_pair[k] = q
                out_xy[k, 0] = ax0 + t * rx
                out_xy[k, 1] = ay0 + t * ry
                out_pi[k] = pos_i
                out_pj[k] = pos_j
                k += 1
    return out_pair[:k], out_xy[:k], out_pi[:k], out_pj[:k], np.zeros(0)


@nb.njit(cache=True)
def _grow_i(a: np.ndarray, cap: int) -> np.ndarray:
    out = np.empty(cap, dtype=a.dtype)
    out[: len(a)] = a
    return out


@nb.njit(cache=True)
def _grow_f(a: np.ndarray, cap: int) -> np.ndarray:
    out = np.empty(cap, dtype=a.dtype)
    out[: len(a)] = a
    return out


@nb.njit(cache=True)
def _grow_xy(a: np.ndarray, cap: int) -> np.ndarray:
    out = np.empty((cap, 2), dtype=a.dtype)
    out[: len(a)] = a
    return out


def pair_crossings(coords: np.ndarray, offsets: np.ndarray, cum: np.ndarray, pi: np.ndarray,
                   pj: np.ndarray, eps: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Points where lines ``pi[q]`` and ``pj[q]`` cross inside both (not at an end of either).

    Returns
    -------
    pair, xy, pos_i, pos_j
        Pair index of each crossing point, its coordinates and its distance along each line.
    """
    pair, xy, pos_i, pos_j, _ = _crossings(coords, offsets, cum, pi.astype(np.int64),
                                           pj.astype(np.int64), float(eps))
    return pair, xy, pos_i, pos_j


@nb.njit(cache=True)
def _point_line(coords: np.ndarray, offsets: np.ndarray, cum: np.ndarray, px: np.ndarray,
                py: np.ndarray, pl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(pl)
    dist = np.empty(n)
    pos = np.empty(n)
    for q in range(n):
        line = pl[q]
        x = px[q]
        y = py[q]
        best = np.inf
        bpos = 0.0
        for a in range(offsets[line], offsets[line + 1] - 1):
            ax = coords[a, 0]
            ay = coords[a, 1]
            vx = coords[a + 1, 0] - ax
            vy = coords[a + 1, 1] - ay
            ll = vx * vx + vy * vy
            t = 0.0
            if ll > 0.0:
                t = min(1.0, max(0.0, ((x - ax) * vx + (y - ay) * vy) / ll))
            dx = ax + t * vx - x
            dy = ay + t * vy - y
            d = dx * dx + dy * dy
            if d < best:
                best = d
                bpos = cum[a] + t * np.sqrt(ll)
        dist[q] = np.sqrt(best)
        pos[q] = bpos
    return dist, pos


def points_on_lines(coords: np.ndarray, offsets: np.ndarray, cum: np.ndarray, xy: np.ndarray,
                    line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each point ``xy[q]`` to line ``line[q]`` and the position along it."""
    return _point_line(coords, offsets, cum, np.ascontiguousarray(xy[:, 0]),
                       np.ascontiguousarray(xy[:, 1]), line.astype(np.int64))
