"""The Redis read model: latest vehicle positions and open alerts, without Kafka.

Key layout (``P`` is the prefix, ``yrd`` by default; ``PROV`` is SH, JS, ZJ,
AH or ``none`` outside the region):

=================================  ====  ==================================================
key                                type  content
=================================  ====  ==================================================
``P:vehicle:{vehicle_id}``         hash  latest ping: ts, lat, lon, speed_kmh, province,
                                         city_code, city_name, open_alerts, updated_at
``P:positions``                    geo   every vehicle's latest position (GEOSEARCH)
``P:vehicles:{PROV}``              zset  vehicles last seen in the province, score = ts ms
``P:alerts:open:vehicle:{id}``     hash  incident_id -> raised alert JSON
``P:alerts:open:province:{PROV}``  hash  incident_id -> raised alert JSON
``P:alerts:recent``                list  the latest 1,000 alerts (raised and cleared), JSON
=================================  ====  ==================================================

A cleared alert removes its incident from the open-alert hashes; momentary
alerts (a handover) only enter the recent list. Every write
is idempotent, so replaying a batch after a crash leaves the same state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import msgspec
import redis.asyncio as aioredis

from .alerts import MOMENTARY
from .codec import encode
from .models import Alert, AlertState
from .observation import Observation
from .timeutil import from_ms

PROVINCES = ("SH", "JS", "ZJ", "AH", "none")
RECENT_ALERTS = 1000


class Keys:
    """Key names of the read model under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.positions = f"{prefix}:positions"
        self.recent = f"{prefix}:alerts:recent"

    def vehicle(self, vehicle_id: str) -> str:
        return f"{self.prefix}:vehicle:{vehicle_id}"

    def vehicles_in(self, province: str | None) -> str:
        return f"{self.prefix}:vehicles:{province or 'none'}"

    def open_by_vehicle(self, vehicle_id: str) -> str:
        return f"{self.prefix}:alerts:open:vehicle:{vehicle_id}"

    def open_by_province(self, province: str | None) -> str:
        return f"{self.prefix}:alerts:open:province:{province or 'none'}"


class VehicleUpdate(msgspec.Struct, frozen=True):
    """A vehicle's latest observation after a batch, and where it was before."""

    vehicle_id: str
    latest: Observation
    previous_province: str | None
    previously_seen: bool
    open_alerts: int


class ReadModel:
    """Writes (from the worker) and reads (for dashboards, the CLI, tests)."""

    def __init__(self, client: aioredis.Redis, prefix: str = "yrd", ttl_s: int = 7 * 86400) -> None:
        self.redis = client
        self.keys = Keys(prefix)
        self.ttl_s = ttl_s

    @classmethod
    def from_url(cls, url: str, prefix: str = "yrd", ttl_s: int = 7 * 86400) -> "ReadModel":
        return cls(aioredis.Redis.from_url(url, decode_responses=True), prefix, ttl_s)

    async def close(self) -> None:
        await self.redis.aclose()

    async def apply(
        self, updates: Iterable[VehicleUpdate], alerts: Iterable[Alert], now: datetime
    ) -> None:
        """Record one processed batch in a single round trip."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        positions: list[object] = []
        arrived: dict[str, dict[str, int]] = defaultdict(dict)
        left: dict[str, list[str]] = defaultdict(list)
        for u in updates:
            obs = u.latest
            key = k.vehicle(u.vehicle_id)
            pipe.hset(
                key,
                mapping={
                    "vehicle_id": u.vehicle_id,
                    "ts": from_ms(obs.ts_ms).isoformat(),
                    "lat": obs.lat,
                    "lon": obs.lon,
                    "speed_kmh": obs.speed_kmh,
                    "province": obs.province or "",
                    "city_code": obs.city.code if obs.city else "",
                    "city_name": obs.city.name if obs.city else "",
                    "open_alerts": u.open_alerts,
                    "updated_at": now.isoformat(),
                },
            )
            pipe.expire(key, self.ttl_s)
            positions += (obs.lon, obs.lat, u.vehicle_id)
            if u.previously_seen and u.previous_province != obs.province:
                left[k.vehicles_in(u.previous_province)].append(u.vehicle_id)
            arrived[k.vehicles_in(obs.province)][u.vehicle_id] = obs.ts_ms
        if positions:  # one command per key for the whole batch
            pipe.geoadd(k.positions, positions)
        for key, members in left.items():
            pipe.zrem(key, *members)
        for key, scores in arrived.items():
            pipe.zadd(key, scores)
        bodies = []
        for alert in alerts:
            body = encode(alert).decode("utf-8")
            bodies.append(body)
            if alert.type in MOMENTARY:
                continue
            if alert.state is AlertState.RAISED:
                pipe.hset(k.open_by_vehicle(alert.vehicle_id), alert.incident_id, body)
                pipe.hset(k.open_by_province(alert.province), alert.incident_id, body)
            else:
                pipe.hdel(k.open_by_vehicle(alert.vehicle_id), alert.incident_id)
                for province in PROVINCES:
                    pipe.hdel(k.open_by_province(province), alert.incident_id)
        if bodies:
            pipe.lpush(k.recent, *bodies)
            pipe.ltrim(k.recent, 0, RECENT_ALERTS - 1)
        await pipe.execute()

    # --- reads ---------------------------------------------------------------
    async def vehicle(self, vehicle_id: str) -> dict[str, str]:
        """The latest known state of one vehicle (empty if unknown)."""
        return await self.redis.hgetall(self.keys.vehicle(vehicle_id))

    async def open_alerts(
        self, *, vehicle_id: str | None = None, province: str | None = None
    ) -> list[Alert]:
        """Open (raised, not cleared) alerts of one vehicle or one province."""
        if vehicle_id is not None:
            key = self.keys.open_by_vehicle(vehicle_id)
        else:
            key = self.keys.open_by_province(province)
        values = await self.redis.hvals(key)
        return sorted((msgspec.json.decode(v, type=Alert) for v in values), key=lambda a: a.ts)

    async def vehicles_in(self, province: str | None) -> list[str]:
        """Vehicles whose latest ping lies in the province."""
        return await self.redis.zrange(self.keys.vehicles_in(province), 0, -1)
