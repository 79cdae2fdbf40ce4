"""The cumulative ("radius") p-median model for HiGHS, with truncated ladders.

Built like the other models of :mod:`geosvc.locate._highs` (vectorised COO triplets, one CSC
conversion) and solved with its :func:`~geosvc.locate._highs.solve`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from geosvc.locate._highs import MINIMIZE, MipModel, csc_matrix

__all__ = ["pmedian_model", "pmedian_start"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def pmedian_model(
    costs: sp.csr_array,
    w: FloatArray,
    active_dem: BoolArray,
    fixed: BoolArray,
    n_open: int,
    closed: BoolArray | None = None,
    cut_cost: FloatArray | None = None,
) -> MipModel:
    """Cumulative ("radius", Elloumi 2010) p-median formulation.

    For demand ``i`` with sorted distinct allowed costs ``D_i^1 < ... < D_i^K``:
    ``min sum_i w_i (D_i^1 + sum_{k<K} (D_i^{k+1} - D_i^k) z_i^k)`` subject to
    ``sum_{j: c_ij = D_i^1} y_j + z_i^1 >= 1``,
    ``sum_{j: c_ij = D_i^k} y_j + z_i^k - z_i^{k-1} >= 0`` (``z_i^K`` absent) and
    ``sum_j y_j = n_open``, fixed sites at ``y_j = 1``.  ``z_i^k = 1`` iff no open site is
    within ``D_i^k`` of ``i``.  It is exact, has the LP bound of the classical formulation and
    only ``O(nnz)`` nonzeros without any ``x_ij``.

    Two valid reductions shorten each demand's ladder: with ``n_open`` sites open, a demand's
    nearest open site is among its ``n_cand - n_open + 1`` cheapest allowed ones, and it is no
    farther than its cheapest fixed site.  Sites in ``closed`` are left out (``y_j = 0``).

    ``cut_cost`` truncates the ladders (the level generation of García, Labbé and Marín 2011):
    demand ``i`` keeps only its costs below ``cut_cost[i]`` and ends on a level at
    ``cut_cost[i]`` that no site meets, so a demand whose nearest open site is at or beyond
    the cut is charged the cut.  That model is a relaxation: its optimum is a lower bound of
    the p-median, and its value of a plan is exact for every demand served below its cut.
    Columns: ``y`` then ``z``.
    """
    n_cand = costs.shape[0]
    if closed is None:
        closed = np.zeros(n_cand, dtype=bool)
    lad = _pmedian_ladders(costs, active_dem, fixed, n_open, closed, cut_cost)
    # levels (rows): one per distinct (demand, cost) kept
    lvl_first = np.ones(lad.cj.size, dtype=bool)
    lvl_first[1:] = lad.lvl_global[1:] != lad.lvl_global[:-1]
    row_of_entry = np.cumsum(lvl_first) - 1
    n_lvl = int(row_of_entry[-1] + 1) if lad.cj.size else 0
    lvl_dem = lad.dem_id[lvl_first]
    lvl_cost = lad.cv[lvl_first]
    lvl_k = lad.lvl_local[lvl_first]
    lvl_real = ~lad.synthetic[lvl_first]  # a truncation level is its own level
    dem_index = lad.ci[lvl_first]
    is_last = np.ones(n_lvl, dtype=bool)
    is_last[:-1] = lvl_dem[1:] != lvl_dem[:-1]
    # z variable for every non-last level
    z_lvl = np.flatnonzero(~is_last)
    n_z = z_lvl.size
    z_cost = w[dem_index[z_lvl]] * (lvl_cost[z_lvl + 1] - lvl_cost[z_lvl])
    offset = float(np.sum(w[dem_index[lvl_k == 0]] * lvl_cost[lvl_k == 0]))
    # matrix: y entries, z (+1 own row, -1 next row), cardinality row
    real = ~lad.synthetic
    zcols = n_cand + np.arange(n_z)
    rows = np.concatenate([row_of_entry[real], z_lvl, z_lvl + 1, np.full(n_cand, n_lvl)])
    cols = np.concatenate([lad.cj[real], zcols, zcols, np.arange(n_cand)])
    vals = np.concatenate([np.ones(int(real.sum())), np.ones(n_z), -np.ones(n_z),
                           np.ones(n_cand)])
    mat = csc_matrix(rows, cols, vals, (n_lvl + 1, n_cand + n_z))
    # a truncation level has no site: its row (an upper bound on the z before it) is free
    row_lower = np.where(lvl_real, (lvl_k == 0).astype(np.float64), -np.inf)
    return MipModel(
        sense=MINIMIZE,
        offset=offset,
        col_cost=np.concatenate([np.zeros(n_cand), z_cost]),
        col_lower=np.concatenate([fixed.astype(np.float64), np.zeros(n_z)]),
        col_upper=np.concatenate([(~closed).astype(np.float64), np.ones(n_z)]),
        row_lower=np.append(row_lower, float(n_open)),
        row_upper=np.append(np.full(n_lvl, np.inf), float(n_open)),
        matrix=mat,
        integer=np.concatenate([np.ones(n_cand, bool), np.zeros(n_z, bool)]),
        n_site_cols=n_cand,
        meta={
            "z_level": z_lvl,
            "level_demand": dem_index,
            "level_cost": lvl_cost,
            "n_levels": n_lvl,
            "n_truncated": int(lad.synthetic.sum()),
        },
    )


@dataclass
class _Ladders:
    """The (site, demand, cost) entries kept, sorted by demand then cost, with their levels."""

    cj: IntArray
    ci: IntArray
    cv: FloatArray
    synthetic: BoolArray
    dem_id: IntArray
    lvl_global: IntArray
    lvl_local: IntArray


def _pmedian_ladders(costs: sp.csr_array, active_dem: BoolArray, fixed: BoolArray, n_open: int,
                     closed: BoolArray, cut_cost: FloatArray | None) -> _Ladders:
    """Each active demand's sorted costs, cut where no nearest open site can lie beyond."""
    n_cand = costs.shape[0]
    cj = np.repeat(np.arange(n_cand, dtype=np.int64), np.diff(costs.indptr))
    ci = costs.indices.astype(np.int64)
    cv = costs.data.astype(np.float64)
    keep = active_dem[ci] & ~closed[cj]
    synthetic = np.zeros(cj.size, dtype=bool)
    if cut_cost is not None:
        cut = np.asarray(cut_cost, dtype=np.float64)
        beyond = keep & (cv >= cut[ci])
        keep &= cv < cut[ci]
        # one site-less entry at the cut for every demand that lost entries to it
        trunc = np.flatnonzero(np.bincount(ci[beyond], minlength=costs.shape[1]) > 0)
        cj = np.concatenate([cj, np.full(trunc.size, -1, dtype=np.int64)])
        ci = np.concatenate([ci, trunc])
        cv = np.concatenate([cv, cut[trunc]])
        keep = np.concatenate([keep, np.ones(trunc.size, dtype=bool)])
        synthetic = np.concatenate([synthetic, np.ones(trunc.size, dtype=bool)])
    cj, ci, cv, synthetic = cj[keep], ci[keep], cv[keep], synthetic[keep]
    order = np.lexsort((cj, cv, ci))
    cj, ci, cv, synthetic = cj[order], ci[order], cv[order], synthetic[order]
    m = ci.size
    new_dem = np.ones(m, dtype=bool)
    new_dem[1:] = ci[1:] != ci[:-1]
    new_lvl = new_dem.copy()
    new_lvl[1:] |= cv[1:] != cv[:-1]
    dem_start = np.flatnonzero(new_dem)
    dem_id = np.cumsum(new_dem) - 1
    lvl_global = np.cumsum(new_lvl) - 1
    lvl_local = lvl_global - lvl_global[dem_start][dem_id]
    # cut-off level per demand (inclusive)
    n_entries = np.diff(np.append(dem_start, m))
    n_avail = n_cand - int(closed.sum())
    cut_rank = np.minimum(n_entries - 1, max(n_avail - n_open, 0))
    cut_lvl = lvl_local[dem_start + cut_rank]
    fixed_entry = ~synthetic & fixed[np.maximum(cj, 0)]
    if fixed_entry.any():
        big = np.iinfo(np.int64).max
        first_fixed = np.full(dem_start.size, big, dtype=np.int64)
        np.minimum.at(first_fixed, dem_id[fixed_entry], lvl_local[fixed_entry])
        cut_lvl = np.minimum(cut_lvl, first_fixed)
    inside = lvl_local <= cut_lvl[dem_id]
    return _Ladders(cj=cj[inside], ci=ci[inside], cv=cv[inside], synthetic=synthetic[inside],
                    dem_id=dem_id[inside], lvl_global=lvl_global[inside],
                    lvl_local=lvl_local[inside])


def pmedian_start(model: MipModel, open_mask: BoolArray) -> FloatArray:
    """Primal vector of :func:`pmedian_model` for the open sites ``open_mask``."""
    n_cand = model.n_site_cols
    y = open_mask.astype(np.float64)
    mat = model.matrix
    n_lvl = int(model.meta["n_levels"])  # type: ignore[call-overload]
    # per level: does an open site sit exactly at that level?
    ycols = mat[:, :n_cand]
    hit = (ycols @ y)[:n_lvl] > 0.5
    level_demand = np.asarray(model.meta["level_demand"])
    # z_i^k = 1 iff no open site at levels <= k: cumulative "any hit" per demand
    new_dem = np.ones(n_lvl, dtype=bool)
    new_dem[1:] = level_demand[1:] != level_demand[:-1]
    grp = np.cumsum(new_dem) - 1
    cum_hits = np.cumsum(hit.astype(np.int64))
    base = (cum_hits - hit)[new_dem][grp]
    seen = (cum_hits - base) > 0
    z_lvl = np.asarray(model.meta["z_level"])
    z = (~seen[z_lvl]).astype(np.float64)
    return np.concatenate([y, z])
