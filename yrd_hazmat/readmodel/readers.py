"""Reading the read model: the queries of the desk, the exposure lookup, the CLI and tests.

Reads only, each in one round trip (a pipeline or a script) whatever it asks
for; the key names come from :mod:`.keys`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from ..core.models import Alert
from .keys import OUTSIDE, RECENT_ALERTS, Keys

VEHICLE_FIELDS = ("ts", "ts_ms", "lat", "lon", "speed_kmh", "heading", "province", "city_name",
                  "open_alerts")
"""The fields of a vehicle's hash a list of trucks needs."""
_alert_decoder = msgspec.json.Decoder(Alert)

# ARGV: the vehicle key prefix, the number of fields n, n field names, then vehicle ids.
# Returns one array per vehicle: its fields (nil where missing), as HMGET answers.
READ_LATEST_SCRIPT = r"""
local prefix = ARGV[1]
local n = tonumber(ARGV[2])
local fields = {}
for i = 1, n do fields[i] = ARGV[2 + i] end
local out = {}
for i = 3 + n, #ARGV do
  out[#out + 1] = redis.call('HMGET', prefix .. ARGV[i], unpack(fields))
end
return out
"""


class Readers:
    """The read model's queries on one Redis under one set of key names."""

    def __init__(self, client: aioredis.Redis, keys: Keys, *, chunk: int) -> None:
        self.redis = client
        self.keys = keys
        self.chunk = chunk
        self._read_latest: AsyncScript | None = None

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

    async def recent_alerts(self, limit: int = RECENT_ALERTS) -> list[Alert]:
        """The latest alerts by event time, newest first (raised and cleared)."""
        members = await self.redis.zrevrange(self.keys.recent, 0, limit - 1)
        return [msgspec.json.decode(m.split("\n", 1)[1], type=Alert) for m in members]

    async def track(self, vehicle_id: str) -> list[tuple[int, float, float, float]]:
        """The vehicle's last hour: (event time ms, lat, lon, speed km/h), oldest first
        (a point per read-model update, so at most one per flush)."""
        points = await self.redis.zrange(self.keys.track(vehicle_id), 0, -1)
        out = []
        for point in points:
            ts, lat, lon, speed = point.split(",")
            out.append((int(ts), float(lat), float(lon), float(speed)))
        return out

    async def nearby(self, places: list[tuple[float, float, float]],
                     limit: int = 50) -> list[list[dict[str, Any]]]:
        """For each (lon, lat, radius_m), the vehicles whose latest position lies within
        the radius, nearest first: vehicle_id, distance_m, lat, lon, and from its hash
        ts_ms, province, speed_kmh (None where the hash has expired). Two round trips
        for all the places."""
        pipe = self.redis.pipeline(transaction=False)
        for lon, lat, radius_m in places:
            pipe.geosearch(self.keys.positions, longitude=lon, latitude=lat, radius=radius_m,
                           unit="m", sort="ASC", count=limit, withdist=True, withcoord=True)
        found = await pipe.execute() if places else []
        pipe = self.redis.pipeline(transaction=False)
        for near in found:
            for vehicle_id, _, _ in near:
                pipe.hmget(self.keys.vehicle(vehicle_id), "ts_ms", "province", "speed_kmh")
        fields = iter(await pipe.execute() if any(found) else [])
        return [[_truck(vehicle_id, dist, coord, *next(fields)) for vehicle_id, dist, coord in near]
                for near in found]

    async def vehicles_in(self, province: str | None) -> list[str]:
        """Vehicles whose latest ping lies in the province."""
        return await self.redis.zrange(self.keys.vehicles_in(province), 0, -1)

    async def vehicles_in_each(self, provinces: Iterable[str | None]
                               ) -> dict[str | None, list[str]]:
        """For each province, the vehicles whose latest ping lies there (one round trip)."""
        provinces = list(provinces)
        pipe = self.redis.pipeline(transaction=False)
        for province in provinces:
            pipe.zrange(self.keys.vehicles_in(province), 0, -1)
        return dict(zip(provinces, await pipe.execute()))

    async def open_alerts_in(self, provinces: Iterable[str | None]
                             ) -> dict[str | None, list[Alert]]:
        """For each province, its open alerts, oldest first (one round trip)."""
        provinces = list(provinces)
        pipe = self.redis.pipeline(transaction=False)
        for province in provinces:
            pipe.hvals(self.keys.open_by_province(province))
        return {province: sorted(map(_alert_decoder.decode, values), key=lambda a: a.ts)
                for province, values in zip(provinces, await pipe.execute())}

    async def latest_of(self, vehicle_ids: list[str],
                        fields: tuple[str, ...] = VEHICLE_FIELDS) -> list[dict[str, str] | None]:
        """Those fields of each vehicle's latest state, in the order asked (None for a vehicle
        whose hash has expired): one script call per ``chunk`` vehicles (a pipeline of
        one HMGET per vehicle costs the client ten times more)."""
        if self._read_latest is None:
            self._read_latest = self.redis.register_script(READ_LATEST_SCRIPT)
        out: list[dict[str, str] | None] = []
        for start in range(0, len(vehicle_ids), self.chunk):
            rows = await self._read_latest(args=[self.keys.vehicle_prefix, len(fields), *fields,
                                                 *vehicle_ids[start:start + self.chunk]])
            out += [dict(zip(fields, row)) if any(v is not None for v in row) else None
                    for row in rows]
        return out


def _truck(vehicle_id: str, dist: float, coord: tuple[float, float], ts: str | None,
           province: str | None, speed: str | None) -> dict[str, Any]:
    return {"vehicle_id": vehicle_id, "distance_m": round(float(dist), 1),
            "lon": round(float(coord[0]), 6), "lat": round(float(coord[1]), 6),
            "ts_ms": int(ts) if ts else None,
            "province": province if province not in (None, "", OUTSIDE) else None,
            "speed_kmh": float(speed) if speed else None}
