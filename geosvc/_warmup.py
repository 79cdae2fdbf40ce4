"""Compile the numba kernels once into their on-disk cache (``make setup`` runs this).

The first call of each compiled kernel costs seconds of LLVM work; numba keeps the result in
``__pycache__`` beside the sources, so running a tiny analysis at install time makes the first
real run as fast as later ones.  Run it with ``python -m geosvc._warmup``.
"""

from __future__ import annotations

import time

__all__ = ["warm_up"]


def _grid(n: int, spacing_m: float):  # type: ignore[no-untyped-def]
    import geopandas as gpd
    import shapely

    span = (n - 1) * spacing_m
    lines = [shapely.LineString([(0, i * spacing_m), (span, i * spacing_m)]) for i in range(n)]
    lines += [shapely.LineString([(i * spacing_m, 0), (i * spacing_m, span)]) for i in range(n)]
    return gpd.GeoDataFrame(geometry=lines, crs="EPSG:32650")


def warm_up() -> float:
    """Run coverage, circles and siting on a 6 x 6 grid; returns the seconds it took."""
    import geopandas as gpd
    import numpy as np
    import shapely

    from geosvc.circles import service_circles
    from geosvc.coverage import analyse_coverage
    from geosvc.network import compile_network, graph_from_lines
    from geosvc.siting import propose_sites
    from geosvc.standards import load_profile

    t0 = time.perf_counter()
    prof = load_profile()
    net = compile_network(graph_from_lines(_grid(6, 120.0)))
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 600, size=(200, 2))
    hh = gpd.GeoDataFrame({"households": np.full(200, 5.0), "elderly": np.ones(200)},
                          geometry=shapely.points(xy), crs="EPSG:32650")
    subtypes = list(prof.category("convenience").required_subtypes) or ["convenience_store"]
    fac = gpd.GeoDataFrame(
        {"facility_id": [f"F{i}" for i in range(1 + len(subtypes))],
         "category": ["elderly_care"] + ["convenience"] * len(subtypes),
         "subtype": ["community_station", *subtypes],
         "floor_area_m2": [200.0] * (1 + len(subtypes))},
        geometry=shapely.points(rng.uniform(0, 600, size=(1 + len(subtypes), 2))),
        crs="EPSG:32650")
    cov = analyse_coverage(net, hh, fac, profile=prof)
    service_circles(net, cov.facilities, prof, thresholds_min=(5.0, 15.0))
    for model in ("max-coverage", "set-cover", "p-median", "capacitated"):
        propose_sites(net, cov, category="elderly_care", model=model, k=3, target=0.9)
    from geosvc.locate import lagrangian_max_coverage

    # the city-scale bound of greedy max coverage (too large for the LP), int32 and int64
    for dtype in (np.int32, np.int64):
        lagrangian_max_coverage(np.array([0, 2, 3]), np.array([0, 1, 1], dtype=dtype),
                                np.ones(2), 1, 1.0)
    return time.perf_counter() - t0


if __name__ == "__main__":  # pragma: no cover
    print(f"geosvc: compiled kernels cached ({warm_up():.0f} s)")
