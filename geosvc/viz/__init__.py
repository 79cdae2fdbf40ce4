"""Maps and figures of a coverage run: an offline folium map and matplotlib PNGs.

:func:`coverage_map` builds the interactive map (uncovered households, a grid of covered
ones, service circles, facilities, proposed stations, areas by coverage rate, legend and
title; Chinese or English) and :func:`write_map` saves it atomically.  The figures
(:func:`figure_coverage_map`, :func:`figure_time_distribution`,
:func:`figure_coverage_curve`, or all at once with :func:`write_figures`) are PNGs drawn
with matplotlib's Agg canvas, without touching pyplot's global state.

Colours, coverage-rate classes, circle styles, labels and number formats are public in
:mod:`geosvc.viz.style`, shared with the QGIS layer styles (:mod:`geosvc.qgis`).
"""

from __future__ import annotations

from geosvc.viz._figures import (
    figure_coverage_curve,
    figure_coverage_map,
    figure_time_distribution,
    write_figures,
)
from geosvc.viz._map import BASEMAPS, MapOptions, coverage_map, is_tile_url, write_map

__all__ = [
    "BASEMAPS",
    "MapOptions",
    "coverage_map",
    "is_tile_url",
    "write_map",
    "figure_coverage_map",
    "figure_time_distribution",
    "figure_coverage_curve",
    "write_figures",
]
