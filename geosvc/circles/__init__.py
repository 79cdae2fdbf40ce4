"""Service circles: the area reachable on foot from a facility, as polygons (isochrones).

A circle is built from the same edge-based walk as the coverage verdicts
(:mod:`geosvc.coverage`): the facility's access leg first, its own edge both ways, then
every street reached, including the partial edge at the frontier, cut exactly where the
budget ends.  The reached lines are buffered by the access tolerance (the off-network leg
drawn around the streets), tapered so the polygon ends where the walk ends.  A block (a face
of the street network, or the inside of a gated compound) whose every street is reached
completely is drawn whole; a block with an unreached street keeps its unreached interior as
a hole.  A category's circle is one multi-source walk from all its facilities.

Modules: :mod:`._reach` (compiled searches -> reached intervals), :mod:`._lines` (edge
substrings), :mod:`._blocks` (faces of the network), :mod:`._areas` (polygons),
:mod:`._frames` (GeoDataFrames, GeoPackage, agreement with the verdicts).
"""

from geosvc.circles._areas import reached_lines, service_areas
from geosvc.circles._frames import circle_agreement, service_circles, write_service_circles

__all__ = [
    "reached_lines",
    "service_areas",
    "service_circles",
    "write_service_circles",
    "circle_agreement",
]
