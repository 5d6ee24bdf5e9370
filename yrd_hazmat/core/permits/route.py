"""Where pings lie relative to their permit's route: distance from it and position along it."""

from __future__ import annotations

import msgspec
import numpy as np
import shapely

from ..geo.projection import to_lonlat
from ..observation import Observation
from .status import PermitStatus


class RoutePosition(msgspec.Struct, frozen=True, gc=False):
    """Where a ping lies relative to the permitted route (metres)."""

    distance_m: float
    along_m: float


def route_position(status: PermitStatus, obs: Observation) -> RoutePosition | None:
    """Distance from the route and position along it (None: no permit)."""
    if status.permit is None:
        return None
    route = status.permit.route_m
    point = shapely.Point(obs.x_m, obs.y_m)
    return RoutePosition(float(route.distance(point)), float(route.project(point)))


def route_positions(routes: list, x: np.ndarray, y: np.ndarray) -> list[RoutePosition]:
    """:func:`route_position` for many pings at once, each against its own route: one
    vectorised call for a whole batch instead of a few shapely calls per ping."""
    if not routes:
        return []
    points = shapely.points(x, y)
    lines = np.array(routes, dtype=object)
    distance = shapely.distance(lines, points).tolist()
    along = shapely.line_locate_point(lines, points).tolist()
    return [RoutePosition(d, a) for d, a in zip(distance, along)]


def nearest_route_point(status: PermitStatus, where: RoutePosition) -> list[float]:
    """[lon, lat] of the route point nearest the ping (for an alert's details)."""
    assert status.permit is not None
    nearest = status.permit.route_m.interpolate(where.along_m)
    lon, lat = to_lonlat(nearest.x, nearest.y)
    return [round(float(lon), 6), round(float(lat), 6)]
