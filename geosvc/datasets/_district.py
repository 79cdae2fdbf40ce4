"""The district generator's driver: every stage, in the order of its random draws.

The public entry point is :func:`geosvc.datasets.generate_district`.  The stages live in
their own modules (``_layout``, ``_roads``, ``_compounds``, ``_buildings``, ``_facilities``;
shared pieces in ``_common``) and all draw from one ``numpy.random.Generator``: reordering
any call changes the district, so the order here is part of the data.

Geometry conventions
--------------------
* All coordinates are metres in EPSG:32650 (UTM zone 50N).  The district's lower-left
  corner is ``_common.ORIGIN``.
* Road vertices are whole metres, except the free end of a line that ends on another
  line (a T-junction, a gate or a ramp).  Such an end point is placed *exactly* on the
  other line, i.e. ``shapely.intersects(end_point, other_line)`` is true, by choosing a
  point of the segment whose coordinates are dyadic rationals (see
  ``_common.exact_point_on_segment``).  Lines are never split at junctions: a noding step
  in the network loader is expected to do that.
"""

from __future__ import annotations

from geosvc.datasets._buildings import _buildings
from geosvc.datasets._common import DistrictFrames
from geosvc.datasets._compounds import (
    _add_gates,
    _compound_names,
    _compounds_frame,
    _lay_out_compounds,
    _parcels,
)
from geosvc.datasets._facilities import _facilities
from geosvc.datasets._layout import (
    _area_units,
    _arterial_frame,
    _community_of,
    _context,
    _river,
    _river_frame,
)
from geosvc.datasets._roads import _roads_frame, _street_network

__all__ = ["build_district"]

def build_district(seed: int, scale: float) -> DistrictFrames:
    """Generate all layers of the default district.

    The stages run in a fixed order on one ``numpy.random.Generator`` (the order of the
    random draws is the data: same seed, same district): river and arterial frame, street
    network, parcels and compounds, gates, buildings, communities and streets, names,
    facilities.

    Parameters
    ----------
    seed : int
        Seed of the ``numpy.random.Generator`` driving every random choice.
    scale : float
        Linear scale of the extent (1.0 gives about 8 km x 6 km).

    Returns
    -------
    DistrictFrames
        The layers as GeoDataFrames in EPSG:32650.
    """
    ctx = _context(seed, scale)
    river, south_rd, north_rd = _river(ctx)
    arterials = _arterial_frame(ctx, south_rd, north_rd)
    public, ring_line = _street_network(ctx, arterials, river)
    blocks, compounds, nonres = _parcels(ctx, public, river, ring_line)
    compounds, years = _lay_out_compounds(ctx, compounds)
    compounds, years = _add_gates(ctx, compounds, years, public, river)
    people = _buildings(ctx, compounds, years)
    communities, streets = _area_units(ctx, blocks)
    comp_comm = _community_of(compounds, communities)
    comp_names = _compound_names(ctx.rng, years)
    roads = _roads_frame(public, compounds, comp_names)
    compounds_gdf = _compounds_frame(compounds, comp_names, years, comp_comm)
    buildings_gdf = people.frame()
    facilities = _facilities(ctx, compounds, comp_names, people.households_per_compound(
        len(compounds)), nonres, public, communities, compounds_gdf,
        arterials.horizontal + arterials.vertical)
    return DistrictFrames(roads=roads, compounds=compounds_gdf, buildings=buildings_gdf,
                          communities=communities, streets=streets, facilities=facilities,
                          river=_river_frame(river))
