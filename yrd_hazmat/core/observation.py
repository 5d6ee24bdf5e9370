"""A ping as the rules see it: event time in ms, WGS-84, with its jurisdiction."""

from __future__ import annotations

import msgspec

from .models import City, Ping


TANK_LEAK = 1 << 32
"""An alarm bit beyond the JT/T 808 DWORD: the tank's leak sensor fired (the ping's
``alarm_extra`` item ``tank_leak`` is non-zero). JT/T 808 has no leak bit; hazmat
terminals report tank sensors in maker-defined extension items (0xE0-0xFF)."""


class Observation(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One valid ping, converted to WGS-84 and located, ready for the rules."""

    ts_ms: int
    lat: float
    lon: float
    speed_kmh: float
    road_class: str | None
    alarm_flags: int
    """The JT/T 808 alarm DWORD, plus :data:`TANK_LEAK`."""
    status_flags: int
    province: str | None
    city: City | None
    x_m: float = 0.0
    y_m: float = 0.0
    zones: tuple[tuple[str, int], ...] = ()
    """(zone_id, level) of every zone the ping is in or near; see :mod:`.zones.index`."""
    heading: int | None = None
    """Degrees from north, clockwise (for the map; no rule reads it)."""

    def zone_level(self, zone_id: str) -> int | None:
        """This ping's level for the zone, or None when it is beyond the zone's margin."""
        for zid, level in self.zones:
            if zid == zone_id:
                return level
        return None

    @classmethod
    def from_ping(
        cls,
        ping: Ping,
        *,
        ts_ms: int,
        lon: float,
        lat: float,
        province: str | None,
        city: City | None,
        x_m: float = 0.0,
        y_m: float = 0.0,
        zones: tuple[tuple[str, int], ...] = (),
    ) -> "Observation":
        return cls(
            ts_ms=ts_ms,
            lat=lat,
            lon=lon,
            speed_kmh=ping.speed_kmh,
            road_class=ping.road_class,
            alarm_flags=ping.alarm_flags | (
                TANK_LEAK if ping.alarm_extra and ping.alarm_extra.get("tank_leak") else 0),
            status_flags=ping.status_flags,
            province=province,
            city=city,
            x_m=x_m,
            y_m=y_m,
            zones=zones,
            heading=ping.heading,
        )
