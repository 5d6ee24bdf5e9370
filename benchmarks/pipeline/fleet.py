"""What the benchmark feeds the worker: trucks on the YRD expressways, their pings,
their permits, and restricted zones, all deterministic for a seed.

- :func:`make_fleet`: V trucks spread over the corridors of
  :mod:`yrd_hazmat.core.geo.corridors` (both directions) at 62-76 km/h; a share of
  them (``speeders``) drive 20 km/h over the limit 15 s out of every 30 s,
  so SPEEDING is raised and cleared; 5 in 6 hold a permit for their corridor.
- :func:`backlog_records`: N pings of that fleet in event-time order, every
  5 s of event time per truck, ending a minute before now.
- :func:`permit_records`: the permits, built like the simulator's
  (:meth:`yrd_hazmat.simulator.Fleet.permits`): the truck's corridor as the
  route, 1 km either side, the provinces it crosses, valid from before the
  backlog until 12 h from now.
- :func:`zone_collection`: Z zones as a GeoJSON FeatureCollection: four in
  five are irregular polygons spread over the four provinces (the recipe of
  ``benchmarks/zones.py``), one in five lies on a corridor (water sources,
  tunnels, bridges, city cores, schools), so some trucks drive through them
  and raise ZONE_VIOLATION, ZONE_SPEEDING and ZONE_DWELL.

Everything here is pure computation: no Kafka, no clock except the ``now``
passed in.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import msgspec
import numpy as np
import shapely

from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.geo.corridors import CORRIDORS, Corridor
from yrd_hazmat.core.geo.projection import to_lonlat, to_metric
from yrd_hazmat.core.models import Ping
from yrd_hazmat.simulator import CARGOES, provinces_on
from yrd_hazmat.core.timeutil import CHINA_TZ, from_ms

from benchmarks.zones import region_sampler

BACKLOG_INTERVAL_S = 5.0
"""Event-time spacing of one truck's pings in the pre-produced backlog."""
BACKLOG_ENDS_S = 60.0
"""The backlog's last event time is this long before it is generated."""
SPEEDING_CYCLE_S = 30.0
SPEEDING_OVER_S = 15.0
"""A speeder drives over the limit for SPEEDING_OVER_S of every SPEEDING_CYCLE_S."""
SPEEDING_EXCESS_KMH = 20.0
"""Cruise speeds are 62-76 km/h on expressways (limit 80); speeders add this."""
PERMIT_EVERY = 6
"""Every truck but one in PERMIT_EVERY holds a permit (as in the demo's fleet)."""
MAX_PER_SERIES = 100_000
"""Plates have five digits after the series letter."""

PLATE_PREFIX = {
    "Shanghai": "沪A", "Suzhou": "苏E", "Wuxi": "苏B", "Changzhou": "苏D", "Zhenjiang": "苏L",
    "Nanjing": "苏A", "Jiaxing": "浙F", "Hangzhou": "浙A", "Shaoxing": "浙D", "Ningbo": "浙B",
    "Huzhou": "浙E", "Hefei": "皖A", "Wuhu": "皖B",
}


class Route:
    """A corridor's polyline with cumulative lengths, for cheap interpolation."""

    def __init__(self, corridor: Corridor) -> None:
        self.corridor = corridor
        self.origin = corridor.origin
        self.lons = [p[0] for p in corridor.points]
        self.lats = [p[1] for p in corridor.points]
        self.cum_m = [0.0]
        self.headings: list[int] = []
        for (lon1, lat1), (lon2, lat2) in zip(corridor.points, corridor.points[1:]):
            dx = (lon2 - lon1) * 111_320.0 * math.cos(math.radians((lat1 + lat2) / 2))
            dy = (lat2 - lat1) * 110_540.0
            self.cum_m.append(self.cum_m[-1] + math.hypot(dx, dy))
            self.headings.append(int(math.degrees(math.atan2(dx, dy))) % 360)
        self.length_m = self.cum_m[-1]

    def at(self, distance_m: float) -> tuple[float, float, int]:
        """(lon, lat, heading) after driving ``distance_m``, turning round at the ends."""
        d = distance_m % (2 * self.length_m)
        backwards = d > self.length_m
        if backwards:
            d = 2 * self.length_m - d
        i = min(bisect_right(self.cum_m, d) - 1, len(self.headings) - 1)
        f = (d - self.cum_m[i]) / ((self.cum_m[i + 1] - self.cum_m[i]) or 1.0)
        lon = self.lons[i] + f * (self.lons[i + 1] - self.lons[i])
        lat = self.lats[i] + f * (self.lats[i + 1] - self.lats[i])
        heading = (self.headings[i] + 180) % 360 if backwards else self.headings[i]
        return lon, lat, heading


@cache
def routes() -> tuple[Route, ...]:
    """Every corridor in both directions."""
    return tuple([Route(c) for c in CORRIDORS] + [Route(c.reversed()) for c in CORRIDORS])


@dataclass(frozen=True)
class Truck:
    """One vehicle: where it drives, how fast, whether it speeds, whether it holds a permit.

    Its position is a function of the time since ``epoch_ms`` (the start of
    the backlog), so the latency phases can go on driving the backlog's trucks
    where they left off.
    """

    index: int
    vehicle_id: str
    route: Route
    start_m: float
    cruise_kmh: float
    speeder: bool
    phase_s: float
    permitted: bool

    def speed_kmh(self, elapsed_s: float) -> float:
        """Cruise speed; a speeder is over the limit part of every cycle."""
        over = self.speeder and (elapsed_s + self.phase_s) % SPEEDING_CYCLE_S < SPEEDING_OVER_S
        return self.cruise_kmh + (SPEEDING_EXCESS_KMH if over else 0.0)

    def ping(self, ts_ms: int, elapsed_s: float) -> Ping:
        """The truck's ping at event time ``ts_ms``, ``elapsed_s`` into its trip."""
        lon, lat, heading = self.route.at(self.start_m + self.cruise_kmh / 3.6 * elapsed_s)
        return Ping(
            vehicle_id=self.vehicle_id,
            ts=from_ms(ts_ms),
            lat=round(lat, 6),
            lon=round(lon, 6),
            speed_kmh=round(self.speed_kmh(elapsed_s), 1),
            heading=heading,
            status_flags=0b11,  # ACC on, position fixed
            road_class="expressway",
        )


def make_fleet(size: int, speeders: float, seed: int, series: str = "DEFGHJK") -> list[Truck]:
    """``size`` trucks spread over the corridors (both directions).

    Plates look like new-energy plates, 沪AD00042: the letter after the city
    code is from ``series`` (the next letter after every 100,000 trucks).
    """
    if size > MAX_PER_SERIES * len(series):
        raise ValueError(f"at most {MAX_PER_SERIES * len(series):,} trucks")
    rng = np.random.default_rng(seed)
    all_routes = routes()
    fleet = []
    for i in range(size):
        route = all_routes[i % len(all_routes)]
        letter, number = series[i // MAX_PER_SERIES], i % MAX_PER_SERIES
        fleet.append(Truck(
            index=i,
            vehicle_id=f"{PLATE_PREFIX[route.origin]}{letter}{number:05d}",
            route=route,
            start_m=float(rng.uniform(0, route.length_m)),
            cruise_kmh=round(float(rng.uniform(62.0, 76.0)), 1),
            speeder=int((i + 1) * speeders) > int(i * speeders),  # evenly spread
            phase_s=float(rng.uniform(0, SPEEDING_CYCLE_S)),
            permitted=i % PERMIT_EVERY != PERMIT_EVERY - 1,
        ))
    return fleet


@dataclass(frozen=True)
class Backlog:
    """The pre-produced pings: records in event-time order and their time span."""

    records: list[tuple[bytes, bytes]]
    start_ms: int
    """Event time of every truck's first ping (its trip's time zero)."""
    end_ms: int
    """Event time of the last ping."""


def backlog_records(fleet: list[Truck], pings: int, now_s: float) -> Backlog:
    """``pings`` (key, value) records: one ping per truck per step, 5 s apart in event
    time, the last step a minute before ``now_s``."""
    per_vehicle = math.ceil(pings / len(fleet))
    start_ms = int((now_s - BACKLOG_ENDS_S - (per_vehicle - 1) * BACKLOG_INTERVAL_S) * 1000)
    records: list[tuple[bytes, bytes]] = []
    ts_ms = start_ms
    for step in range(per_vehicle):
        elapsed = step * BACKLOG_INTERVAL_S
        ts_ms = start_ms + int(elapsed * 1000)
        for truck in fleet:
            if len(records) == pings:
                return Backlog(records, start_ms, ts_ms)
            records.append((truck.vehicle_id.encode(), encode(truck.ping(ts_ms, elapsed))))
    return Backlog(records, start_ms, ts_ms)


@cache
def _provinces(corridor: Corridor) -> list[str]:
    return provinces_on(corridor)


def permit_doc(truck: Truck, valid_from: datetime, valid_until: datetime) -> dict[str, Any]:
    """The truck's permit as published on the permits topic (route = its corridor)."""
    un_number, hazard_class, cargo = CARGOES[truck.index % len(CARGOES)]
    corridor = truck.route.corridor
    return {
        "permit_id": f"BENCH-{truck.vehicle_id[-6:]}-{truck.index}",
        "vehicle_id": truck.vehicle_id,
        "un_number": un_number,
        "hazard_class": hazard_class,
        "cargo_name": cargo,
        "quantity_kg": 10_000 + 1_000 * (truck.index % 20),
        "valid_from": valid_from.isoformat(),
        "valid_until": valid_until.isoformat(),
        "route": {"type": "LineString", "coordinates": [list(p) for p in corridor.points]},
        "corridor_m": 1_000,
        "origin": corridor.origin,
        "destination": corridor.destination,
        "issuer": "benchmark issuing authority",
        "provinces": _provinces(corridor),
        "carrier": "YRD benchmark carrier",
        "waybill_id": f"BENCH-WB-{truck.index}",
    }


def permit_records(fleet: list[Truck], backlog_start_ms: int,
                   now: datetime) -> list[tuple[bytes, bytes]]:
    """(key, value) of every permitted truck's permit, valid for the whole run."""
    valid_from = datetime.fromtimestamp(backlog_start_ms / 1000, CHINA_TZ) - timedelta(hours=1)
    valid_until = now + timedelta(hours=12)
    return [(t.vehicle_id.encode(), msgspec.json.encode(permit_doc(t, valid_from, valid_until)))
            for t in fleet if t.permitted]


# --------------------------------------------------------------------------
# Zones
# --------------------------------------------------------------------------

BANS: tuple[list[str] | str, ...] = ("all", ["2.3", "2.1"], ["3"], ["8", "2.3"], ["2"])
ON_ROUTE_KINDS = ("water_source", "city_core", "school", "scenic", "tunnel", "bridge")
SCHEDULES = (
    None, None, None,
    [{"days": "weekdays", "start": "07:00", "end": "09:00"},
     {"days": "weekdays", "start": "17:00", "end": "19:00"}],
    [{"days": "daily", "start": "22:00", "end": "06:00"}],
)


def _star_polygon(rng: np.random.Generator, x: float, y: float, r0: float,
                  r1: float) -> list[list[float]]:
    """A closed ring (lon/lat) of an irregular star-shaped polygon around (x, y) metres:
    sorted angles, so it never crosses itself."""
    vertices = int(rng.integers(8, 40))
    theta = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radius = rng.uniform(r0, r1) * rng.uniform(0.6, 1.0, vertices)
    lon, lat = to_lonlat(x + radius * np.cos(theta), y + radius * np.sin(theta))
    ring = [[round(float(a), 6), round(float(b), 6)] for a, b in zip(lon, lat)]
    ring.append(ring[0])
    if not shapely.Polygon(ring).is_valid:  # near-equal angles, rounded: take the hull
        hull = shapely.convex_hull(shapely.MultiPoint(ring))
        ring = [list(p) for p in hull.exterior.coords]
    return ring


def zone_collection(count: int, seed: int) -> dict[str, Any]:
    """``count`` zones as a GeoJSON FeatureCollection (WGS-84): 4 in 5 anywhere in the
    region (200 m to 3 km across), 1 in 5 on a corridor the fleet drives."""
    rng = np.random.default_rng(seed)
    on_route = count // 5
    xs, ys = region_sampler(rng)(count - on_route)
    all_routes = routes()[: len(CORRIDORS)]
    features = []
    for i in range(count):
        props: dict[str, Any] = {"zone_id": f"bench-{i:05d}", "name": f"benchmark zone {i}"}
        ban = BANS[i % len(BANS)]
        props["banned_classes"] = ban
        schedule = SCHEDULES[i % len(SCHEDULES)]
        if schedule is not None:
            props["schedule"] = schedule
        if i < on_route:
            route = all_routes[i % len(all_routes)]
            d = float(rng.uniform(0.1, 0.9)) * route.length_m
            kind = ON_ROUTE_KINDS[i % len(ON_ROUTE_KINDS)]
            props["kind"] = kind
            if kind in ("tunnel", "bridge"):
                a = route.at(d - float(rng.uniform(500, 2_000)))
                b = route.at(d)
                c = route.at(d + float(rng.uniform(500, 2_000)))
                geometry = {"type": "LineString",
                            "coordinates": [[round(p[0], 6), round(p[1], 6)] for p in (a, b, c)]}
                props["buffer_m"] = 60
                props["speed_limit_kmh"] = 60
            else:
                lon, lat, _ = route.at(d)
                x, y = to_metric(lon, lat)
                geometry = {"type": "Polygon",
                            "coordinates": [_star_polygon(rng, float(x), float(y), 300, 1_500)]}
                if kind == "school":
                    props["speed_limit_kmh"] = 40
                if kind == "scenic":
                    props["max_dwell_s"] = 60
        else:
            j = i - on_route
            props["kind"] = "custom" if j % 3 else "water_source"
            geometry = {"type": "Polygon",
                        "coordinates": [_star_polygon(rng, float(xs[j]), float(ys[j]), 100, 1_500)]}
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def zone_records(collection: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """(key, value) zones-topic records of a FeatureCollection (key = zone id)."""
    return [(f["properties"]["zone_id"].encode(), msgspec.json.encode(f))
            for f in collection["features"]]
