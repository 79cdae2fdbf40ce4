"""Checked inputs of the siting models: relations, costs, weights, counts and masks.

Every model entry point turns what the caller passed into canonical arrays here, so a bad
input is one :class:`~geosvc._errors.InputError` naming the argument and the fix, whichever
model it was passed to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from geosvc._errors import InputError
from geosvc.locate import _reduce

__all__ = [
    "Solver", "coverage_csr", "cost_csr", "check_weights", "check_count", "demand_mask",
    "site_mask", "site_vector", "solver_name", "is_integral", "kernel_arrays",
    "CoverageProblem", "prepare_coverage",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Solver = Literal["greedy", "exact"]


def coverage_csr(coverage: Any) -> sp.csr_array:
    """Candidate x demand boolean relation as a canonical CSR (sorted, no zeros, bool data).

    A canonical sparse input is not copied (its index arrays are shared, never written), so a
    city's relation costs no second copy here.
    """
    if sp.issparse(coverage):
        if coverage.ndim != 2:
            raise InputError("coverage must be 2-D (candidates x demand)")
        mat = sp.csr_array(coverage)
        if not mat.has_canonical_format:
            mat = sp.csr_array(coverage, copy=True)
            mat.sum_duplicates()
        if mat.nnz and not np.all(mat.data):
            mat = sp.csr_array(mat, copy=True)
            mat.eliminate_zeros()
        return _reduce.canonical_relation(mat.indptr, mat.indices, mat.shape)
    arr = np.asarray(coverage)
    if arr.ndim != 2:
        raise InputError(
            f"coverage must be a 2-D candidates x demand array or scipy.sparse matrix, got {arr.ndim}-D"
        )
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"coverage must be boolean or numeric, got dtype {arr.dtype}")
        if np.isnan(arr.astype(np.float64)).any():
            raise InputError(
                "coverage contains NaN; use True/False (or 1/0) per candidate x demand"
            )
    mat = sp.csr_array(arr.astype(bool))
    mat.sort_indices()
    return _reduce.canonical_relation(mat.indptr, mat.indices, mat.shape)


def cost_csr(costs: Any) -> sp.csr_array:
    """Candidate x demand assignment costs as CSR whose stored entries are the allowed pairs."""
    if sp.issparse(costs):
        if costs.ndim != 2:
            raise InputError("costs must be 2-D (candidates x demand)")
        if costs.format == "csr" and costs.has_canonical_format:
            # sorted, no duplicates: no sort needed
            mat = sp.csr_array((np.asarray(costs.data, dtype=np.float64),
                                costs.indices.astype(np.int64),
                                costs.indptr.astype(np.int64)), shape=costs.shape)
            _check_cost_values(mat.data)
            return mat
        coo = sp.coo_array(costs)
        rows = np.asarray(coo.row, dtype=np.int64)
        cols = np.asarray(coo.col, dtype=np.int64)
        vals = np.asarray(coo.data, dtype=np.float64)
        shape = (int(coo.shape[0]), int(coo.shape[1]))
    else:
        arr = np.asarray(costs, dtype=np.float64)
        if arr.ndim != 2:
            raise InputError(
                f"costs must be a 2-D candidates x demand array or scipy.sparse matrix, got {arr.ndim}-D"
            )
        if np.isnan(arr).any():
            raise InputError(
                "costs contains NaN; use +inf (dense) or leave the entry unstored (sparse) for disallowed pairs"
            )
        shape = (int(arr.shape[0]), int(arr.shape[1]))
        rows, cols = np.nonzero(np.isfinite(arr))
        rows = rows.astype(np.int64)
        cols = cols.astype(np.int64)
        vals = arr[rows, cols]
    _check_cost_values(vals)
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    if np.any((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1])):
        raise InputError(
            "costs has duplicate stored entries for the same candidate x demand pair; "
            "call .sum_duplicates() or keep one cost per pair"
        )
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sp.csr_array((vals[order], cols, indptr), shape=shape)


def _check_cost_values(vals: FloatArray) -> None:
    """Stored costs must be finite and non-negative."""
    bad = ~np.isfinite(vals)
    if bad.any():
        raise InputError(
            f"costs has {int(bad.sum())} non-finite stored entries; leave disallowed pairs unstored"
        )
    if (vals < 0).any():
        raise InputError("costs must be non-negative (travel times or distances)")


def check_weights(weights: Any, n_dem: int) -> FloatArray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size != n_dem:
        raise InputError(
            f"weights must be 1-D with one entry per demand column ({n_dem}), got shape {w.shape}"
        )
    if not np.isfinite(w).all():
        raise InputError("weights must be finite numbers")
    if (w < 0).any():
        raise InputError(
            f"weights must be non-negative; demand {int(np.argmax(w < 0))} is {w.min()}"
        )
    return w


def check_count(value: Any, upper: int, name: str, *, what: str = "candidates") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < 0:
        raise InputError(f"{name} must be >= 0, got {value}")
    if value > upper:
        raise InputError(f"{name}={value} is larger than the number of {what} ({upper})")
    return value


def demand_mask(mask: Any, n_dem: int, name: str) -> BoolArray:
    if mask is None:
        return np.zeros(n_dem, dtype=bool)
    arr = np.asarray(mask)
    if arr.dtype != np.bool_ or arr.ndim != 1 or arr.size != n_dem:
        raise InputError(
            f"{name} must be a boolean mask with one entry per demand column ({n_dem}), "
            f"got dtype {arr.dtype} and shape {arr.shape}"
        )
    return arr.copy()


def site_mask(sites: Any, n_cand: int, name: str) -> BoolArray:
    mask = np.zeros(n_cand, dtype=bool)
    if sites is None:
        return mask
    arr = np.asarray(sites)
    if arr.dtype == np.bool_:
        if arr.ndim != 1 or arr.size != n_cand:
            raise InputError(f"{name} as a mask must have one entry per candidate ({n_cand})")
        return arr.copy()
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name} must be candidate indices (integers) or a boolean mask")
    idx = arr.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n_cand):
        raise InputError(f"{name} holds indices outside 0..{n_cand - 1}")
    mask[idx] = True
    return mask


def site_vector(values: Any, n_cand: int, name: str, *, positive: bool) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size != n_cand:
        raise InputError(
            f"{name} must be 1-D with one entry per candidate ({n_cand}), got shape {arr.shape}"
        )
    if np.isnan(arr).any():
        raise InputError(f"{name} contains NaN")
    if positive and not (arr > 0).all():
        raise InputError(f"{name} must be > 0 for every candidate")
    if not positive and (arr < 0).any():
        raise InputError(f"{name} must be >= 0 for every candidate")
    return arr


def solver_name(solver: str) -> Solver:
    if solver == "greedy":
        return "greedy"
    if solver in ("exact", "highs"):
        return "exact"
    raise InputError(f"solver must be 'greedy' or 'exact', got {solver!r}")


def is_integral(values: FloatArray) -> bool:
    return bool(np.all(np.abs(values - np.round(values)) <= 1e-9))


def kernel_arrays(mat: sp.csr_array) -> tuple[IntArray, IntArray]:
    """``indptr`` as int64 and ``indices`` as stored (int32 relations are not widened)."""
    idx = mat.indices if mat.indices.dtype in (np.int32, np.int64) else mat.indices.astype(np.int64)
    return mat.indptr.astype(np.int64), idx


@dataclass(frozen=True)
class CoverageProblem:
    """A checked coverage instance, shared by max coverage, set cover and capacitated coverage.

    ``cov`` is the canonical candidate x demand relation, ``indptr``/``indices`` its arrays as
    the kernels take them; ``fixed`` is the demand existing facilities already cover;
    ``active`` the demand a new site can still win (coverable, not fixed, positive weight);
    ``uncoverable`` the demand no candidate and no facility covers.
    """

    cov: sp.csr_array
    w: FloatArray
    fixed: BoolArray
    indptr: IntArray
    indices: IntArray
    active: BoolArray
    uncoverable: IntArray

    @property
    def n_cand(self) -> int:
        """Number of candidates."""
        return int(self.cov.shape[0])

    @property
    def n_dem(self) -> int:
        """Number of demand columns."""
        return int(self.cov.shape[1])

    @property
    def fixed_weight(self) -> float:
        """Weight existing facilities already cover."""
        return float(self.w[self.fixed].sum())

    @property
    def active_weight(self) -> float:
        """Weight new sites can still cover."""
        return float(self.w[self.active].sum())

    def base_info(self) -> dict[str, Any]:
        """The sizes and weights every coverage plan reports in its ``info``."""
        return {
            "n_candidates": self.n_cand,
            "n_demand": self.n_dem,
            "total_weight": float(self.w.sum()),
            "fixed_weight": self.fixed_weight,
            "uncoverable_weight": float(self.w[self.uncoverable].sum()),
        }


def prepare_coverage(coverage: Any, weights: Any, fixed_covered: Any) -> CoverageProblem:
    """Check a coverage model's inputs and derive what every model needs from them."""
    cov = coverage_csr(coverage)
    n_dem = cov.shape[1]
    w = check_weights(weights, n_dem)
    fixed = demand_mask(fixed_covered, n_dem, "fixed_covered")
    indptr, indices = kernel_arrays(cov)
    coverable = np.zeros(n_dem, dtype=bool)
    coverable[indices] = True
    return CoverageProblem(
        cov=cov, w=w, fixed=fixed, indptr=indptr, indices=indices,
        active=coverable & ~fixed & (w > 0), uncoverable=np.flatnonzero(~coverable & ~fixed),
    )
