"""A ping as the rules see it: event time in ms, WGS-84, with its jurisdiction."""

from __future__ import annotations

import msgspec

from .models import City, Ping


class Observation(msgspec.Struct, frozen=True, kw_only=True):
    """One valid ping, converted to WGS-84 and located, ready for the rules."""

    ts_ms: int
    lat: float
    lon: float
    speed_kmh: float
    road_class: str | None
    alarm_flags: int
    status_flags: int
    province: str | None
    city: City | None

    @classmethod
    def from_ping(
        cls, ping: Ping, *, ts_ms: int, lon: float, lat: float, province: str | None, city: City | None
    ) -> "Observation":
        return cls(
            ts_ms=ts_ms,
            lat=lat,
            lon=lon,
            speed_kmh=ping.speed_kmh,
            road_class=ping.road_class,
            alarm_flags=ping.alarm_flags,
            status_flags=ping.status_flags,
            province=province,
            city=city,
        )
