"""border_crossings, JurisdictionIndex.locate_path and points_along give exactly what the
straightforward computation gives: every 100 m sample interpolated by GEOS and located
on its own with ``locate``."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.pipeline.fleet import make_fleet, permit_doc
from yrd_hazmat.core.geo.corridors import CORRIDORS
from yrd_hazmat.core.geo.jurisdiction import default_index
from yrd_hazmat.core.geo.projection import geometry_to_metric, to_lonlat
from yrd_hazmat.core.permits.model import (
    BorderCrossing,
    CompiledPermit,
    border_crossings,
    parse_permit,
    points_along,
)
from yrd_hazmat.core.timeutil import CHINA_TZ

INDEX = default_index()

# lon/lat boxes (west, south, east, north) where random routes are drawn.
BOXES = {
    "SH/JS/ZJ junction": (120.7, 30.7, 121.5, 31.6),
    "JS/ZJ/AH junction": (119.0, 30.6, 120.2, 31.6),
    "JS/AH border": (118.0, 31.4, 119.3, 32.8),
    "ZJ/AH border": (117.8, 29.3, 119.5, 30.8),
    "Hangzhou Bay": (121.0, 30.3, 121.3, 30.9),
    "Zhoushan and the open sea": (121.9, 29.8, 123.0, 30.8),
    "Yangtze mouth": (121.5, 31.3, 122.2, 31.8),
    "AH and beyond, west": (115.0, 29.6, 116.2, 31.0),
    "JS and Shandong, north": (117.5, 34.2, 118.8, 35.0),
}


def reference_border_crossings(route, places, step_m: float = 100.0) -> tuple[
        BorderCrossing, ...]:
    """The former algorithm: GEOS interpolation, every sample located with ``locate``."""
    along = np.append(np.arange(0.0, route.length, step_m), route.length)
    xy = shapely.get_coordinates(shapely.line_interpolate_point(route, along))
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1])
    provinces, _, _ = places.locate(lon, lat)
    crossings = []
    for i in np.flatnonzero(provinces[1:] != provinces[:-1]):
        mid = (along[i] + along[i + 1]) / 2
        mlon, mlat = (float(v[0]) for v in to_lonlat(*shapely.get_coordinates(
            shapely.line_interpolate_point(route, [mid])).T))
        crossings.append(BorderCrossing(float(mid), provinces[i], provinces[i + 1], mlon, mlat))
    return tuple(crossings)


def samples(route, step_m: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    along = np.append(np.arange(0.0, route.length, step_m), route.length)
    xy = shapely.get_coordinates(shapely.line_interpolate_point(route, along))
    return to_lonlat(xy[:, 0], xy[:, 1])


def assert_same_places(lon, lat, chunk: int = 10) -> None:
    expected = INDEX.locate(lon, lat)
    got = INDEX.locate_path(lon, lat, chunk)
    for e, g in zip(expected, got):
        assert e.tolist() == g.tolist()


@st.composite
def routes(draw, box: tuple[float, float, float, float]):
    """A metric route of 2-5 random vertices in a lon/lat box."""
    west, south, east, north = box
    n = draw(st.integers(2, 5))
    lons = draw(st.lists(st.floats(west, east), min_size=n, max_size=n))
    lats = draw(st.lists(st.floats(south, north), min_size=n, max_size=n))
    route = geometry_to_metric(shapely.LineString(np.column_stack((lons, lats))))
    if route.length < 1.0:
        route = geometry_to_metric(shapely.LineString([(west, south), (east, north)]))
    return route


# --- border_crossings --------------------------------------------------------------


@pytest.mark.parametrize("corridor", [*CORRIDORS, *(c.reversed() for c in CORRIDORS)],
                         ids=lambda c: f"{c.origin}-{c.destination}")
def test_corridor_crossings_are_the_reference_ones(corridor):
    route = geometry_to_metric(shapely.LineString(corridor.points))
    assert border_crossings(route, INDEX) == reference_border_crossings(route, INDEX)
    assert_same_places(*samples(route))


def test_benchmark_fleet_permits_compile_to_the_reference_crossings():
    now = datetime(2026, 11, 30, 10, 0, tzinfo=CHINA_TZ)
    for truck in make_fleet(48, 0.1, 7):
        raw = msgspec.json.encode(permit_doc(truck, now, now + timedelta(days=1)))
        permit = parse_permit(raw, INDEX)
        assert isinstance(permit, CompiledPermit)
        assert permit.borders == reference_border_crossings(permit.route_m, INDEX)


@pytest.mark.parametrize("box", BOXES.values(), ids=BOXES.keys())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_routes_cross_where_the_reference_says(box, data):
    route = data.draw(routes(box))
    step_m = data.draw(st.sampled_from([100.0, 100.0, 37.5, 250.0]))
    assert border_crossings(route, INDEX, step_m) == reference_border_crossings(
        route, INDEX, step_m)


def test_a_route_shorter_than_a_step_and_one_without_a_border():
    short = geometry_to_metric(shapely.LineString([(121.47, 31.23), (121.4701, 31.2301)]))
    assert border_crossings(short, INDEX) == reference_border_crossings(short, INDEX) == ()
    inland = geometry_to_metric(shapely.LineString([(118.7, 32.0), (118.9, 32.1)]))
    assert border_crossings(inland, INDEX) == reference_border_crossings(inland, INDEX) == ()


# --- locate_path --------------------------------------------------------------------


@pytest.mark.parametrize("box", BOXES.values(), ids=BOXES.keys())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_locate_path_is_locate_for_every_city(box, data):
    route = data.draw(routes(box))
    chunk = data.draw(st.integers(1, 40))
    assert_same_places(*samples(route, data.draw(st.sampled_from([100.0, 500.0]))), chunk)


def test_locate_path_on_city_boundaries_holes_and_bad_points():
    """Points exactly on boundary vertices (a walk along the borders of 南京市 and of the
    cities with a hole) and between them, NaN and infinite coordinates, tiny paths."""
    geoms = dict(zip(INDEX._codes, INDEX._geoms))
    with_holes = [g for g in INDEX._geoms
                  if shapely.get_num_interior_rings(shapely.get_parts(g)).any()]
    assert with_holes
    for city in (geoms["320100"], *with_holes):
        xy = shapely.get_coordinates(shapely.boundary(city))[::7]
        path = np.column_stack((xy[:-1], (xy[1:] + xy[:-1]) / 2)).reshape(-1, 2)
        for chunk in (1, 3, 10, 64):
            assert_same_places(path[:, 0], path[:, 1], chunk)
    lon = np.array([121.4, 121.41, np.nan, 121.43, np.inf, 121.45, 121.2, 121.2, 121.2])
    lat = np.array([31.2, 31.2, 31.2, np.nan, 31.2, 31.2, 30.5, 30.5, 30.6])
    for chunk in (1, 2, 10):
        assert_same_places(lon, lat, chunk)
    assert_same_places(lon[:1], lat[:1])
    assert_same_places(lon[:0], lat[:0])


# --- points_along -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    coords=st.lists(st.tuples(st.floats(-2e6, 2e6), st.floats(2e6, 4e6)), min_size=2,
                    max_size=12),
    repeat=st.integers(0, 11),
    steps=st.integers(1, 2000),
)
def test_points_along_is_geos_interpolation_bit_for_bit(coords, repeat, steps):
    coords.insert(repeat % len(coords), coords[repeat % len(coords)])  # a zero-length segment
    line = shapely.LineString(coords)
    if line.length == 0:
        return
    vertices = np.concatenate(([0.0], np.cumsum(np.hypot(*np.diff(coords, axis=0).T))))
    along = np.append(np.arange(0.0, line.length, line.length / steps), line.length)
    distances = np.concatenate((along, vertices, [line.length * 2]))
    expected = shapely.get_coordinates(shapely.line_interpolate_point(line, distances))
    np.testing.assert_array_equal(points_along(line, distances), expected)
