"""Two-step floating catchment area (2SFCA) access index over catchment pairs (arrays)."""

from __future__ import annotations

import numpy as np

__all__ = ["two_step_fca"]


def two_step_fca(
    pair_facility: np.ndarray,
    pair_household: np.ndarray,
    supply: np.ndarray,
    demand: np.ndarray,
    n_households: int,
) -> np.ndarray:
    """Two-step floating catchment accessibility from (facility, household) catchment pairs.

    Step 1: each facility's ratio R_j = supply_j / (demand within its catchment).
    Step 2: each household's index A_i = sum of R_j over facilities whose catchment holds
    it.  With supply as floor area (m²) and demand as households, A_i is m² per household.

    Returns
    -------
    numpy.ndarray
        Index per household (0 where no facility is within the catchment).
    """
    supply = np.nan_to_num(np.asarray(supply, dtype=np.float64))
    demand = np.nan_to_num(np.asarray(demand, dtype=np.float64)).clip(min=0.0)
    load = np.bincount(pair_facility, weights=demand[pair_household], minlength=len(supply))
    ratio = np.divide(supply, load, out=np.zeros_like(supply), where=load > 0)
    return np.bincount(pair_household, weights=ratio[pair_facility], minlength=n_households)
