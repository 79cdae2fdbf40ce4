"""Service circles as GeoDataFrames: per facility and per category, output, agreement."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geosvc import _schema as schema
from geosvc._errors import InputError
from geosvc.access import Anchors, compound_ids, snap_points
from geosvc.circles._areas import areas, check_tolerance
from geosvc.circles._blocks import compound_polygons, walls_with_paths
from geosvc.circles._reach import Sources
from geosvc.network import CompiledNetwork
from geosvc.standards import DEFAULT_PROFILE, Category, Profile, load_profile


def _repeat(a: Anchors, k: int) -> Anchors:
    """Every anchor ``k`` times in a row (one copy per threshold)."""
    return a.subset(np.repeat(np.arange(len(a)), k))


def service_circles(
    net: CompiledNetwork,
    facilities: gpd.GeoDataFrame,
    profile: Profile | str | None = None,
    *,
    thresholds_min: Sequence[float] = (5.0, 10.0, 15.0),
    categories: Sequence[str] | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    max_snap_m: float | None = None,
    taper: bool = True,
    fill_blocks: bool = True,
    quad_segs: int = 3,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Service circles of every facility and every category at each threshold.

    Each category walks at its own speed (``threshold_min x 60 x speed_m_s`` metres) and is
    drawn with the profile's ``access_tolerance_m``.  A category's circle is the union of
    its facilities' circles, computed directly as one multi-source walk (not by overlaying
    the facility polygons).

    Parameters
    ----------
    net
        Compiled street network.
    facilities
        Points with ``category`` and ``facility_id`` (any CRS; reprojected to the network's),
        optionally ``compound_id`` (else taken from ``compounds``).  Without
        ``facility_id`` the ids are ``F0``, ``F1``, ... by row, as in
        :func:`geosvc.coverage.analyse_coverage` (:func:`geosvc.facilities.facility_ids`).
    profile
        Standards profile or its name (default ``cn-community-2023``).
    thresholds_min
        Walking times (minutes).
    categories
        Categories to draw (default: those of the profile that have facilities).
    compounds
        Gated-compound polygons with ``compound_id``: facilities inside one start on its
        paths, and compounds with internal paths are blocks of their own.
    max_snap_m
        Longest facility access leg (default: the profile's ``max_snap_m``, as the verdicts).
    taper, fill_blocks, quad_segs
        See :func:`geosvc.circles.service_areas`.

    Returns
    -------
    per_facility, per_category
        ``per_facility``: ``facility_id``, ``category``, ``threshold_min``, ``reach_m``,
        ``area_m2``, ``snap_status`` (``ok``, ``off_network``: farther than ``max_snap_m``
        from any street, ``invalid``: no usable geometry), ``access_m``, geometry (one
        MultiPolygon per facility and threshold, empty unless ``snap_status`` is ``ok``).  ``per_category``: ``category``, ``threshold_min``,
        ``reach_m``, ``n_facilities``, ``area_m2``, geometry.  Both in the network CRS.
    """
    prof = profile if isinstance(profile, Profile) else load_profile(profile or
                                                                     DEFAULT_PROFILE)
    facilities, thr = _checked_inputs(facilities, thresholds_min)
    tol, qs = check_tolerance(prof.access_tolerance_m, quad_segs)
    fac = facilities.to_crs(net.crs)
    cat_col = fac["category"].astype(str).to_numpy()
    specs = _categories_to_draw(prof, cat_col, categories)
    cats = [c.name for c in specs]
    keep = np.isin(cat_col, cats)
    fac, cat_col = fac[keep], cat_col[keep]
    comp = compound_polygons(compounds, net)
    walls = walls_with_paths(comp, net)
    anchors = snap_points(net, fac.geometry.to_numpy(),
                          max_snap_m=prof.max_snap_m if max_snap_m is None else float(max_snap_m),
                          compound=compound_ids(fac, comp))
    options: dict[str, Any] = dict(tolerance_m=tol, taper=taper, fill_blocks=fill_blocks,
                                   quad_segs=qs, walls=walls)
    rep = _repeat(anchors, len(thr))
    per_facility = _facility_circles(net, fac, cat_col, specs, anchors, rep, thr, options)
    per_category = _category_circles(net, cat_col, specs, rep, thr, options)
    return per_facility, per_category


def _checked_inputs(facilities: gpd.GeoDataFrame, thresholds_min: Sequence[float]
                    ) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Facilities with a category, an id (as the verdicts give it) and a CRS; thresholds."""
    if "category" not in facilities.columns:
        raise InputError(f"facilities need a 'category' column; columns are "
                         f"{list(facilities.columns)}")
    if "facility_id" not in facilities.columns:  # the id rule of analyse_coverage
        from geosvc.facilities import facility_ids

        facilities = facilities.assign(facility_id=facility_ids(facilities).to_numpy())
    if facilities.crs is None:
        raise InputError("facilities have no CRS; set it (e.g. facilities.set_crs('EPSG:4326'))")
    thr = np.asarray([float(t) for t in thresholds_min], dtype=np.float64)
    if len(thr) == 0 or not np.isfinite(thr).all() or (thr <= 0).any():
        raise InputError(f"thresholds_min must be positive minutes, got {list(thresholds_min)}")
    return facilities, thr


def _categories_to_draw(prof: Profile, cat_col: np.ndarray, categories: Sequence[str] | None
                        ) -> list[Category]:
    """The categories named (unknown names raise with the valid list), else those present."""
    if categories is None:
        unknown = sorted(set(cat_col) - set(prof.category_names))
        if unknown:
            raise InputError(f"facilities have categories {unknown} that profile {prof.name!r} "
                             f"does not know (it has {list(prof.category_names)}); fix the "
                             "'category' column or pass categories=[...] to draw only some")
    cats = list(categories) if categories is not None else [
        c for c in prof.category_names if (cat_col == c).any()]
    return [prof.category(c) for c in cats]


def _facility_circles(net: CompiledNetwork, fac: gpd.GeoDataFrame, cat_col: np.ndarray,
                      specs: list[Category], anchors: Anchors, rep: Anchors, thr: np.ndarray,
                      options: dict[str, Any]) -> gpd.GeoDataFrame:
    """One search per (facility, threshold), each facility at its category's speed."""
    speed = np.zeros(len(fac))
    for c in specs:
        speed[cat_col == c.name] = c.speed_m_s
    n_f, n_t = len(fac), len(thr)
    reach_f = np.round(np.repeat(speed, n_t) * np.tile(thr, n_f) * 60.0, 9)
    geoms_f = areas(net, Sources.from_anchors(rep), reach_f, **options)
    snap = schema.snap_labels(anchors.status)
    return gpd.GeoDataFrame({
        "facility_id": np.repeat(fac["facility_id"].astype(str).to_numpy(), n_t),
        "category": np.repeat(cat_col, n_t),
        "threshold_min": np.tile(thr, n_f),
        "reach_m": reach_f,
        "area_m2": shapely.area(geoms_f),
        "snap_status": np.repeat(snap, n_t),
        "access_m": np.repeat(np.where(anchors.ok, anchors.access_m, np.nan), n_t),
    }, geometry=gpd.GeoSeries(geoms_f, crs=net.crs), crs=net.crs)


def _category_circles(net: CompiledNetwork, cat_col: np.ndarray, specs: list[Category],
                      rep: Anchors, thr: np.ndarray, options: dict[str, Any]
                      ) -> gpd.GeoDataFrame:
    """One multi-source search per (category, threshold): the union of its facilities."""
    cats = [c.name for c in specs]
    n_f, n_t, n_c = len(cat_col), len(thr), len(specs)
    pos = {c: i for i, c in enumerate(cats)}
    cat_of_fac = np.array([pos[c] for c in cat_col], dtype=np.int64)
    group = np.repeat(cat_of_fac, n_t) * n_t + np.tile(np.arange(n_t), n_f)
    reach_c = np.round(np.array([[c.speed_m_s * t * 60.0 for t in thr] for c in specs]
                                ).reshape(-1), 9)
    geoms_c = areas(net, Sources.from_anchors(rep, group, n_c * n_t), reach_c, **options)
    return gpd.GeoDataFrame({
        "category": np.repeat(np.asarray(cats, dtype=object), n_t),
        "threshold_min": np.tile(thr, n_c),
        "reach_m": reach_c,
        "n_facilities": np.repeat([int((cat_col == c).sum()) for c in cats], n_t),
        "area_m2": shapely.area(geoms_c),
    }, geometry=gpd.GeoSeries(geoms_c, crs=net.crs), crs=net.crs)


def write_service_circles(per_facility: gpd.GeoDataFrame, per_category: gpd.GeoDataFrame,
                          path: str | os.PathLike[str]) -> Path:
    """Write the circles to a GeoPackage: layers ``facility_circles`` and ``category_circles``.

    Written under a temporary name and moved into place, so readers never see a
    half-written file.
    """
    from geosvc.io import write_gpkg

    return write_gpkg({"facility_circles": per_facility, "category_circles": per_category},
                      Path(path))


def circle_agreement(
    households: gpd.GeoDataFrame,
    per_category: gpd.GeoDataFrame,
    category: str,
    threshold_min: float = 15.0,
    *,
    tolerance_m: float | None = None,
) -> dict[str, Any]:
    """How well "inside the category's circle" matches the coverage verdicts.

    Only households whose ``status_<category>`` is ``covered`` or ``uncovered`` count.  For
    a category with required sub-types (convenience: every basic type within the threshold)
    the circle is the union of all its facilities, so the verdict compared is "some facility
    of the category within the threshold" (``time_<category>_any_min``).

    Parameters
    ----------
    households
        The households frame of :func:`geosvc.coverage.analyse_coverage`.
    per_category
        The category circles of :func:`service_circles`.
    category, threshold_min
        Which circle (the threshold the verdicts used).
    tolerance_m
        Boundary tolerance: a household that disagrees but lies within this distance of the
        circle's boundary is a boundary case (the circle is drawn with the access tolerance,
        a household's own access leg may be longer or shorter).

    Returns
    -------
    dict
        ``verdict`` (the column compared), ``n`` (households compared), ``covered_inside``,
        ``covered_outside``, ``uncovered_inside``, ``uncovered_outside``, ``agree`` and
        ``share`` (strict), and ``boundary_cases`` (disagreeing within ``tolerance_m`` of the
        boundary) and ``share_within_tolerance`` (``(agree + boundary_cases) / n``).
    """
    col = schema.status_col(category)
    if col not in households.columns:
        raise InputError(f"households have no {col!r} column; run analyse_coverage with "
                         f"category {category!r}")
    rows = per_category[(per_category["category"] == category) &
                        np.isclose(per_category["threshold_min"].astype(float), threshold_min)]
    if len(rows) != 1:
        raise InputError(f"per_category has {len(rows)} circles for {category!r} at "
                         f"{threshold_min:g} min; expected one")
    poly = rows.geometry.iloc[0]
    hh = households if households.crs is None or per_category.crs is None or \
        households.crs.equals(per_category.crs) else households.to_crs(per_category.crs)
    use, covered_all, verdict = _verdicts(hh, category, threshold_min,
                                          float(rows["reach_m"].iloc[0]))
    pts = hh.geometry.to_numpy()[use]
    not_point = shapely.get_type_id(pts) != 0
    if not_point.any():
        pts = pts.copy()
        pts[not_point] = shapely.centroid(pts[not_point])
    shapely.prepare(poly)
    inside = shapely.intersects(poly, pts)
    covered = covered_all[use]
    out: dict[str, Any] = {
        "category": category,
        "threshold_min": float(threshold_min),
        "verdict": verdict,
        "n": int(use.sum()),
        "covered_inside": int((covered & inside).sum()),
        "covered_outside": int((covered & ~inside).sum()),
        "uncovered_inside": int((~covered & inside).sum()),
        "uncovered_outside": int((~covered & ~inside).sum()),
    }
    out["agree"] = out["covered_inside"] + out["uncovered_outside"]
    out["share"] = out["agree"] / out["n"] if out["n"] else float("nan")
    out["boundary_cases"] = _boundary_cases(poly, pts[covered != inside], tolerance_m)
    out["tolerance_m"] = None if tolerance_m is None else float(tolerance_m)
    out["share_within_tolerance"] = ((out["agree"] + out["boundary_cases"]) / out["n"]
                                     if out["n"] else float("nan"))
    return out


def _verdicts(hh: gpd.GeoDataFrame, category: str, threshold_min: float, reach_m: float
              ) -> tuple[np.ndarray, np.ndarray, str]:
    """Households compared, their "covered" verdict, and the verdict's description.

    With required sub-types the verdict is "some facility within the threshold"
    (``time_<category>_any_min`` turned back into metres and judged by the one coverage rule).
    """
    col = schema.status_col(category)
    status = hh[col]  # pandas compares categoricals by their codes
    any_col = schema.time_any_col(category)
    if any_col in hh.columns:
        t_any = hh[any_col].to_numpy(dtype=float)
        use = ~status.isin(["off_network", "invalid"]).to_numpy() & ~np.isnan(t_any)
        covered_all = schema.covered(t_any * (reach_m / float(threshold_min)), reach_m)
        return use, covered_all, f"{any_col} <= {threshold_min:g}"
    use = status.isin(schema.VERDICT_STATUSES).to_numpy()
    return use, (status == "covered").to_numpy(), col


def _boundary_cases(poly: Any, pts: np.ndarray, tolerance_m: float | None) -> int:
    """Points within ``tolerance_m`` of the polygon's boundary (0 without a tolerance)."""
    if tolerance_m is None or len(pts) == 0:
        return 0
    edge = shapely.boundary(poly)
    shapely.prepare(edge)  # indexed facets: no scan of the whole boundary per point
    return int(shapely.dwithin(edge, pts, float(tolerance_m)).sum())
