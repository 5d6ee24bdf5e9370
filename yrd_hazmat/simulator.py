"""A simulated fleet: hazmat trucks driving the YRD corridors and sending pings.

The fleet model is deterministic for a seed: :meth:`Fleet.tick` moves every
truck to a given time and returns its pings. Some trucks are *speeders*: they
alternate legal driving with stretches over the limit, so the demo shows
SPEEDING raised and cleared. Every truck but one in six holds a permit for its
corridor (:meth:`Fleet.permits`); the others show NO_VALID_PERMIT. With
``accident_every_s``, 90 s into every such period a truck has an accident: it stands
still for a minute with the collision alarm on (an emergency, with responders). The
accidents happen in Shanghai, Jiangsu, Zhejiang and Anhui in turn, so that every
province's desk sees one.
:func:`run` publishes the permits, then the pings in real time.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import shapely

from .core.codec import encode
from .core.geo.corridors import CORRIDORS, Corridor
from .core.geo.jurisdiction import default_index
from .core.geo.projection import geometry_to_metric, to_lonlat
from .core.permits.model import border_crossings
from .core.models import Ping
from .core.timeutil import CHINA_TZ

_PLATE_PREFIX = {"Shanghai": "沪A", "Suzhou": "苏E", "Wuxi": "苏B", "Changzhou": "苏D",
                 "Zhenjiang": "苏L", "Nanjing": "苏A", "Jiaxing": "浙F", "Hangzhou": "浙A",
                 "Shaoxing": "浙D", "Ningbo": "浙B", "Huzhou": "浙E", "Hefei": "皖A",
                 "Wuhu": "皖B"}
CITY_EDGE_M = 3_000.0
"""Within this distance of either end a truck is on city roads ("other")."""
DEPOT_START_M = 4_000.0
"""One truck in four starts this close to its origin, leaving a city-centre depot."""
BEFORE_BORDER_M = 4_000.0
"""One truck in six starts this far before its corridor's first provincial border."""
ACCIDENT_AT_S, ACCIDENT_S = 90.0, 60.0
"""When, in each accident period, a truck collides, and for how long."""
ACCIDENT_PROVINCES = ("SH", "JS", "ZJ", "AH")
"""The provinces of the accidents, in turn (the next one when no truck is in a province)."""
COLLISION = 1 << 29
"""JT/T 808 alarm bit 29: collision."""


SURNAMES = "王李张刘陈杨赵黄周吴"
"""Simulated drivers' surnames (the permits name a driver: the national platform asks)."""
CARGOES = (  # (UN number, GB 6944 class, name)
    ("UN1203", "3", "petrol"),
    ("UN1017", "2.3", "chlorine, liquefied"),
    ("UN1830", "8", "sulphuric acid"),
    ("UN1075", "2.1", "liquefied petroleum gas"),
    ("UN1005", "2.3", "ammonia, anhydrous"),
)


@dataclass
class Truck:
    vehicle_id: str
    corridor: Corridor
    cruise_kmh: float
    speeder: bool
    distance_m: float
    phase_s: float
    permitted: bool = True
    last: datetime | None = None

    def road(self) -> str:
        """Near either end a truck is on city roads ("other"), elsewhere on the expressway."""
        near_end = min(self.distance_m, self.corridor.length_m - self.distance_m) < CITY_EDGE_M
        return "other" if near_end else "expressway"

    def speed_at(self, elapsed_s: float, road: str) -> float:
        """Cruise speed, or for a speeder a 90 s stretch over the limit every 4 min."""
        base = self.cruise_kmh if road == "expressway" else min(self.cruise_kmh, 50.0)
        if self.speeder and road == "expressway" and (elapsed_s + self.phase_s) % 240 < 90:
            return base + 18.0
        return base

    def move(self, now: datetime, started: datetime, crashed: bool = False) -> Ping:
        """Drive on to ``now`` (or, ``crashed``, stand still since the last ping, alarm on)."""
        dt = (now - self.last).total_seconds() if self.last else 0.0
        self.last = now
        road = self.road()
        elapsed = (now - started).total_seconds()
        speed = 0.0 if crashed else self.speed_at(elapsed, road)
        self.distance_m += speed / 3.6 * dt
        if self.distance_m >= self.corridor.length_m:  # arrived: turn round
            self.corridor = self.corridor.reversed()
            self.distance_m = 0.0
        lon, lat, heading = self.corridor.position(self.distance_m)
        return Ping(
            vehicle_id=self.vehicle_id,
            ts=now,
            lat=round(lat, 6),
            lon=round(lon, 6),
            speed_kmh=round(speed, 1),
            heading=heading,
            alarm_flags=COLLISION if crashed else 0,
            status_flags=0b11,  # ACC on, position fixed
            road_class=road,
        )


class Fleet:
    """``size`` trucks spread over the corridors; ``speeders`` of them speed; one in four
    sets off from its origin city's centre, one in six just before a provincial border."""

    def __init__(self, size: int, *, speeders: float = 0.25, seed: int = 7,
                 accident_every_s: float | None = None) -> None:
        rng = random.Random(seed)
        self.trucks: list[Truck] = []
        for i in range(size):
            corridor = CORRIDORS[i % len(CORRIDORS)]
            if rng.random() < 0.5:
                corridor = corridor.reversed()
            plate = f"{_PLATE_PREFIX[corridor.origin]}{rng.randrange(10_000, 99_999)}"
            start = rng.uniform(0.0, DEPOT_START_M if i % 4 == 1 else corridor.length_m * 0.8)
            borders = border_crossings(geometry_to_metric(shapely.LineString(corridor.points)),
                                       default_index())
            if i % 6 == 3 and borders:
                start = max(0.0, borders[0].along_m - BEFORE_BORDER_M)
            self.trucks.append(
                Truck(
                    vehicle_id=plate,
                    corridor=corridor,
                    cruise_kmh=rng.uniform(62.0, 76.0),
                    speeder=i < round(size * speeders),
                    distance_m=start,
                    phase_s=rng.uniform(0, 60),
                    permitted=i % 6 != 5,
                )
            )
        self.accident_every_s = accident_every_s
        self._accident: tuple[int, Truck | None] | None = None
        """The latest accident period and its truck."""
        self.started: datetime | None = None

    def permits(self, now: datetime) -> list[dict[str, Any]]:
        """A permit (as published on the permits topic) for every permitted truck."""
        docs = []
        for i, truck in enumerate(self.trucks):
            if not truck.permitted:
                continue
            un_number, hazard_class, cargo = CARGOES[i % len(CARGOES)]
            corridor = truck.corridor
            docs.append({
                "permit_id": f"SIM-{now:%Y%m%d}-{i:04d}",
                "vehicle_id": truck.vehicle_id,
                "un_number": un_number,
                "hazard_class": hazard_class,
                "cargo_name": cargo,
                "quantity_kg": 10_000 + 1_000 * (i % 20),
                "valid_from": (now - timedelta(hours=1)).isoformat(),
                "valid_until": (now + timedelta(hours=12)).isoformat(),
                "route": {"type": "LineString", "coordinates": [list(p) for p in corridor.points]},
                "corridor_m": 1_000,
                "origin": corridor.origin,
                "destination": corridor.destination,
                "issuer": "simulated issuing authority",
                "provinces": provinces_on(corridor),
                "carrier": "YRD simulated carrier",
                "waybill_id": f"SIM-WB-{i:04d}",
                "driver_name": f"{SURNAMES[i % len(SURNAMES)]}师傅",
                "driver_id": f"3101011980{i % 10_000:04d}{i % 1000:03d}X",
                "driver_licence": f"SIM-DG-{i:06d}",
                "driver_licence_issuer": "simulated transport authority",
            })
        return docs

    def tick(self, now: datetime) -> list[Ping]:
        """Move every truck to ``now`` and return one ping per truck."""
        if self.started is None:
            self.started = now
        crashed = self._crashed((now - self.started).total_seconds())
        return [truck.move(now, self.started, truck is crashed) for truck in self.trucks]

    def _crashed(self, elapsed_s: float) -> Truck | None:
        """The truck in an accident ``elapsed_s`` after the start, if any: chosen where it
        is when its period's accident begins, and kept for the accident's minute."""
        every = self.accident_every_s
        if every is None or not ACCIDENT_AT_S <= elapsed_s % every < ACCIDENT_AT_S + ACCIDENT_S:
            return None
        period = int(elapsed_s // every)
        if self._accident is None or self._accident[0] != period:
            self._accident = (period, self._accident_truck(period))
        return self._accident[1]

    def _accident_truck(self, period: int) -> Truck | None:
        """A truck in the period's province (:data:`ACCIDENT_PROVINCES` in turn; the next
        one for a fleet too small to be in every province), one on the expressway if any.
        The first truck comes last: the JT/T 808 and 809 drives delay its positions (a
        tunnel, a platform's backlog), which would delay its collision too."""
        trucks = self.trucks[1:] + self.trucks[:1]
        where = np.array([t.corridor.position(t.distance_m)[:2] for t in trucks]).reshape(-1, 2)
        provinces, _, _ = default_index().locate(where[:, 0], where[:, 1])
        for turn in range(len(ACCIDENT_PROVINCES)):
            province = ACCIDENT_PROVINCES[(period + turn) % len(ACCIDENT_PROVINCES)]
            there = [t for t, p in zip(trucks, provinces) if p == province]
            if there:
                return min(there, key=lambda t: t.road() != "expressway")
        return None


def provinces_on(corridor: Corridor) -> list[str]:
    """The provinces a corridor passes through (sampled every kilometre)."""
    route = geometry_to_metric(shapely.LineString(corridor.points))
    points = shapely.line_interpolate_point(route, np.arange(0.0, route.length, 1_000.0))
    lon, lat = to_lonlat(*shapely.get_coordinates(points).T)
    provinces, _, _ = default_index().locate(lon, lat)
    return sorted({p for p in provinces if p is not None})


async def run(
    kafka: dict[str, Any],
    topic: str,
    permits_topic: str,
    *,
    size: int,
    interval_s: float,
    speeders: float,
    seed: int,
    duration_s: float | None = None,
    accident_every_s: float | None = None,
) -> int:
    """Publish the fleet's pings every ``interval_s`` seconds; returns pings sent.

    ``kafka`` holds the client's connection options (``Settings.kafka_options()``).
    """
    from aiokafka import AIOKafkaProducer

    fleet = Fleet(size, speeders=speeders, seed=seed, accident_every_s=accident_every_s)
    producer = AIOKafkaProducer(**kafka, acks="all", linger_ms=20)
    await producer.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    try:
        for doc in fleet.permits(datetime.now(CHINA_TZ)):
            await producer.send(permits_topic, key=doc["vehicle_id"].encode(), value=msgspec.json.encode(doc))
        while duration_s is None or loop.time() - started < duration_s:
            tick_started = loop.time()
            for ping in fleet.tick(datetime.now(CHINA_TZ)):
                await producer.send(topic, key=ping.vehicle_id.encode(), value=encode(ping))
                sent += 1
            await producer.flush()
            await asyncio.sleep(max(0.0, interval_s - (loop.time() - tick_started)))
    finally:
        await producer.stop()
    return sent
