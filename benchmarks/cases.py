"""Benchmark instances, generated deterministically from a seed (no downloads, no files needed).

- :func:`city_case`: a city-size perturbed street grid (default 450 x 450 nodes at 100 m, about
  10% of the street segments removed, largest component kept), gated compounds reached through
  one gate each, household points (uniform + clustered + inside compounds), facilities of one
  category and candidate sites.  ``quick=True`` gives a 100 x 100 grid and 100,000 households.
- :func:`planar_instance`: random planar siting instances (Euclidean costs, every demand point
  has a candidate within the radius so that set cover is feasible).
- :func:`orlib_instances`: the OR-Library pmed files and their optima.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "CITY_CRS",
    "CitySpec",
    "CityCase",
    "city_spec",
    "city_case",
    "planar_instance",
    "PlanarInstance",
    "orlib_dir",
    "orlib_instances",
]

#: A projected CRS (UTM 50N) so the generated coordinates are metres.
CITY_CRS = "EPSG:32650"
_ORIGIN = (400_000.0, 3_300_000.0)


@dataclass(frozen=True)
class CitySpec:
    """Sizes of a generated city."""

    side: int = 450
    spacing_m: float = 100.0
    jitter_m: float = 15.0
    drop_share: float = 0.10
    compound_share: float = 0.03
    households_per_compound: int = 20
    n_households: int = 1_000_000
    n_facilities: int = 500
    n_candidates: int = 10_000
    n_clusters: int = 200
    cluster_sd_m: float = 800.0
    seed: int = 20240607


def city_spec(quick: bool) -> CitySpec:
    """The full city (>= 200,000 nodes, 1M households) or the quick one (100 x 100, 100k)."""
    if quick:
        return CitySpec(side=100, n_households=100_000, n_facilities=50, n_candidates=1_000,
                        n_clusters=20)
    return CitySpec()


@dataclass
class CityCase:
    """Arrays of a generated city (all coordinates in metres, CRS :data:`CITY_CRS`)."""

    spec: CitySpec
    node_xy: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_compound: np.ndarray
    household_xy: np.ndarray
    household_compound: np.ndarray
    facility_xy: np.ndarray
    candidate_xy: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        """Number of street nodes (compound path nodes included)."""
        return int(len(self.node_xy))

    def describe(self) -> dict[str, Any]:
        """Sizes for the results file."""
        return {
            "grid": f"{self.spec.side} x {self.spec.side} at {self.spec.spacing_m:g} m, "
                    f"jitter +-{self.spec.jitter_m:g} m, {self.spec.drop_share:.0%} of segments removed",
            "nodes": self.n_nodes,
            "edges": int(len(self.edge_u)),
            "compounds": int(self.info.get("compounds", 0)),
            "households": int(len(self.household_xy)),
            "households_in_compounds": int((self.household_compound >= 0).sum()),
            "facilities": int(len(self.facility_xy)),
            "candidates": int(len(self.candidate_xy)),
            "seed": str(self.spec.seed),
        }


def city_case(spec: CitySpec) -> CityCase:
    """Generate the city arrays (deterministic for a given spec)."""
    rng = np.random.default_rng(spec.seed)
    side, h = spec.side, spec.spacing_m
    ox, oy = _ORIGIN
    gy, gx = np.divmod(np.arange(side * side), side)
    node_xy = np.column_stack([ox + gx * h, oy + gy * h]).astype(np.float64)
    node_xy += rng.uniform(-spec.jitter_m, spec.jitter_m, size=node_xy.shape)
    ids = np.arange(side * side).reshape(side, side)
    u = np.concatenate([ids[:, :-1].ravel(), ids[:-1, :].ravel()])
    v = np.concatenate([ids[:, 1:].ravel(), ids[1:, :].ravel()])
    keep = rng.random(len(u)) >= spec.drop_share
    u, v = u[keep], v[keep]
    # keep the largest connected component, renumber its nodes
    n = side * side
    adj = csr_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    _, label = connected_components(adj, directed=False)
    big = np.argmax(np.bincount(label))
    alive = label == big
    new_id = np.full(n, -1, dtype=np.int64)
    new_id[alive] = np.arange(int(alive.sum()))
    ok = alive[u] & alive[v]
    u, v = new_id[u[ok]], new_id[v[ok]]
    grid_xy = node_xy[alive]
    # gated compounds: a block whose four corners are alive gets a centre node joined by one
    # internal path to a random corner (its only gate)
    bi, bj = np.divmod(np.arange((side - 1) * (side - 1)), side - 1)
    corners = np.stack([ids[bi, bj], ids[bi, bj + 1], ids[bi + 1, bj], ids[bi + 1, bj + 1]], 1)
    usable = alive[corners].all(axis=1)
    pick = np.flatnonzero(usable & (rng.random(len(bi)) < spec.compound_share))
    n_comp = len(pick)
    centre = np.column_stack([ox + (bj[pick] + 0.5) * h, oy + (bi[pick] + 0.5) * h])
    gate = new_id[corners[pick, rng.integers(0, 4, size=n_comp)]]
    centre_id = len(grid_xy) + np.arange(n_comp)
    node_xy = np.vstack([grid_xy, centre])
    edge_compound = np.concatenate([np.full(len(u), -1, dtype=np.int64),
                                    np.arange(n_comp, dtype=np.int64)])
    edge_u = np.concatenate([u, centre_id]).astype(np.int64)
    edge_v = np.concatenate([v, gate]).astype(np.int64)
    # households: inside compounds (compound id set), then uniform and clustered (public)
    lo = np.array([ox, oy])
    hi = lo + (side - 1) * h
    n_in = n_comp * spec.households_per_compound
    comp_of = np.repeat(np.arange(n_comp), spec.households_per_compound)
    in_xy = centre[comp_of] + rng.uniform(-0.3 * h, 0.3 * h, size=(n_in, 2))
    rest = spec.n_households - n_in
    n_uni = int(rest * 0.6)
    uni = rng.uniform(lo, hi, size=(n_uni, 2))
    centres = rng.uniform(lo, hi, size=(spec.n_clusters, 2))
    which = rng.integers(0, spec.n_clusters, size=rest - n_uni)
    clu = np.clip(centres[which] + rng.normal(0.0, spec.cluster_sd_m, size=(rest - n_uni, 2)),
                  lo, hi)
    household_xy = np.vstack([in_xy, uni, clu])
    household_compound = np.concatenate([comp_of, np.full(rest, -1)]).astype(np.int64)
    perm = rng.permutation(len(household_xy))
    household_xy, household_compound = household_xy[perm], household_compound[perm]
    facility_xy = rng.uniform(lo, hi, size=(spec.n_facilities, 2))
    candidate_xy = rng.uniform(lo, hi, size=(spec.n_candidates, 2))
    return CityCase(spec, node_xy, edge_u, edge_v, edge_compound, household_xy,
                    household_compound, facility_xy, candidate_xy,
                    info={"compounds": n_comp, "grid_nodes": int(len(grid_xy))})


@dataclass
class PlanarInstance:
    """A random planar siting instance: candidates x demand Euclidean costs (metres)."""

    name: str
    cost: np.ndarray  # candidates x demand
    weights: np.ndarray
    radius_m: float
    p: int


def planar_instance(n_cand: int, n_dem: int, *, radius_m: float = 1000.0, p: int = 20,
                    extent_m: float = 10_000.0, seed: int = 7) -> PlanarInstance:
    """Random points in an ``extent_m`` square; demand without a candidate in reach is redrawn.

    Weights are integers 1..10 (households per point).
    """
    rng = np.random.default_rng(seed + n_cand * 7919 + n_dem)
    cand = rng.uniform(0.0, extent_m, size=(n_cand, 2))
    dem = np.empty((0, 2))
    while len(dem) < n_dem:
        pts = rng.uniform(0.0, extent_m, size=(n_dem, 2))
        d = np.sqrt(((pts[:, None, :] - cand[None, :, :]) ** 2).sum(-1)).min(axis=1)
        dem = np.vstack([dem, pts[d <= radius_m]])
    dem = dem[:n_dem]
    cost = np.sqrt(((cand[:, None, :] - dem[None, :, :]) ** 2).sum(-1))
    weights = rng.integers(1, 11, size=n_dem).astype(np.float64)
    return PlanarInstance(f"{n_cand}x{n_dem}", cost, weights, radius_m, p)


def orlib_dir() -> Path:
    """Folder of the OR-Library pmed files (``GEOSVC_ORLIB_DIR`` overrides)."""
    return Path(os.environ.get("GEOSVC_ORLIB_DIR", "/work/shared/data/orlib-pmed"))


def orlib_instances(numbers: range | list[int] = range(1, 21)) -> list[tuple[str, Path, int]]:
    """``(name, path, optimum)`` of the requested pmed instances that exist on disk."""
    folder = orlib_dir()
    optima: dict[str, int] = {}
    with open(folder / "optima.csv", encoding="ascii") as fh:
        for row in csv.DictReader(fh):
            optima[row["instance"]] = int(row["optimal_cost"])
    out = []
    for k in numbers:
        name = f"pmed{k}"
        path = folder / f"{name}.txt"
        if path.exists() and name in optima:
            out.append((name, path, optima[name]))
    return out
