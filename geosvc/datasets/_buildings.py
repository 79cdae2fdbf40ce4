"""Building stage: households, persons and elderly residents per residential building."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from geopandas import GeoDataFrame
from shapely.geometry import MultiLineString

from geosvc.datasets._common import BASE_EXTENT_M, CRS, FloatArray, _Compound, _Ctx


@dataclass
class _People:
    """Residential buildings: location, compound and household/person/elderly counts."""

    xy: FloatArray
    compound: npt.NDArray[np.int64]
    households: npt.NDArray[np.int64]
    persons: npt.NDArray[np.int64]
    elderly: npt.NDArray[np.int64]

    def frame(self) -> GeoDataFrame:
        """The ``buildings`` layer."""
        return GeoDataFrame(
            {
                "building_id": np.arange(1, len(self.xy) + 1, dtype=np.int64),
                "compound_id": self.compound,
                "households": self.households,
                "persons": self.persons,
                "elderly": self.elderly,
            },
            geometry=shapely.points(self.xy),
            crs=CRS,
        )

    def households_per_compound(self, n_compounds: int) -> FloatArray:
        """Households of each compound (compound ids are 1-based)."""
        return np.asarray(np.bincount(self.compound - 1, weights=self.households,
                                      minlength=n_compounds), dtype=np.float64)


def _buildings(ctx: _Ctx, compounds: list[_Compound], years: npt.NDArray[np.int64]) -> _People:
    """About 72,000 households per 48 km², denser in the old town, in buildings on the spots."""
    rng = ctx.rng
    target_hh = 72_000.0 * (ctx.width * ctx.height) / (BASE_EXTENT_M[0] * BASE_EXTENT_M[1])
    target_hh *= rng.uniform(0.95, 1.05)
    old = years < 2000
    density = np.array([1.0 + 3.0 * c.oldness for c in compounds]) * rng.uniform(
        0.8, 1.2, len(compounds)
    )
    raw = density * np.array([c.polygon.area for c in compounds])
    hh_comp = raw / raw.sum() * target_hh
    mean_hh = np.where(
        old, rng.uniform(24, 40, len(compounds)), rng.uniform(70, 110, len(compounds))
    )
    b_xy: list[FloatArray] = []
    b_comp: list[FloatArray] = []
    b_hh: list[FloatArray] = []
    for i, comp in enumerate(compounds):
        spots = comp.spots
        if comp.gates:
            gl = MultiLineString(comp.gates)
            spots = spots[shapely.distance(shapely.points(spots), gl) >= 5.0]
        if len(spots) == 0:
            spots = comp.spots[:1]
        n_b = int(np.clip(round(hh_comp[i] / mean_hh[i]), 1, len(spots)))
        pick = np.sort(rng.choice(len(spots), size=n_b, replace=False))
        shares = rng.dirichlet(np.full(n_b, 12.0))
        hh = np.clip(np.round(shares * hh_comp[i]), 12, 150)
        b_xy.append(spots[pick])
        b_comp.append(np.full(n_b, i + 1, dtype=float))
        b_hh.append(hh)
    bcomp = np.concatenate(b_comp).astype(np.int64)
    households = np.concatenate(b_hh).astype(np.int64)
    persons = np.round(households * rng.uniform(2.4, 3.0, len(households))).astype(np.int64)
    elderly = _elderly(rng, persons, years, bcomp)
    return _People(np.vstack(b_xy), bcomp, households, persons, elderly)


def _elderly(rng: np.random.Generator, persons: npt.NDArray[np.int64],
             years: npt.NDArray[np.int64], bcomp: npt.NDArray[np.int64]
             ) -> npt.NDArray[np.int64]:
    """Elderly residents: older compounds are greyer; the district total is kept near 20%."""
    comp_share = np.clip(
        0.13 + 0.17 * np.clip((2012.0 - years) / 25.0, 0.0, 1.0) + rng.normal(0, 0.01, len(years)),
        0.12,
        0.32,
    )
    elderly = rng.binomial(persons, comp_share[bcomp - 1]).astype(np.int64)
    share = elderly.sum() / persons.sum()
    if share > 0.215:
        elderly = rng.binomial(elderly, 0.205 / share).astype(np.int64)
    elif share < 0.185:
        q = (0.195 - share) / (1.0 - share)
        elderly = elderly + rng.binomial(persons - elderly, q).astype(np.int64)
    return elderly
