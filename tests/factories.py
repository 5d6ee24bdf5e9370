"""Small builders for test data: pings, observations, JSON records."""

from __future__ import annotations

from datetime import datetime, timedelta

from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.engine import RulesConfig
from yrd_hazmat.core.rules.permits import PermitsConfig
from yrd_hazmat.core.models import City, Ping
from yrd_hazmat.core.observation import Observation
from yrd_hazmat.core.timeutil import CHINA_TZ, to_ms

T0 = datetime(2026, 11, 2, 9, 0, 0, tzinfo=CHINA_TZ)
SHANGHAI = (121.4737, 31.2304)
SH_CITY = City(code="310000", name="上海市")


def ping(vehicle_id: str = "沪A12345", at_s: float = 0, speed: float = 50.0, **fields) -> Ping:
    lon, lat = fields.pop("lonlat", SHANGHAI)
    return Ping(vehicle_id=vehicle_id, ts=T0 + timedelta(seconds=at_s), lat=lat, lon=lon,
                speed_kmh=speed, **fields)


def obs(at_s: float, speed: float = 50.0, road_class: str | None = "expressway") -> Observation:
    return Observation(
        ts_ms=to_ms(T0 + timedelta(seconds=at_s)), lat=SHANGHAI[1], lon=SHANGHAI[0],
        speed_kmh=speed, road_class=road_class, alarm_flags=0, status_flags=3,
        province="SH", city=SH_CITY,
    )


def ping_json(**kw) -> bytes:
    return encode(ping(**kw))


NO_PERMITS_REQUIRED = PermitsConfig(required_pattern="")
"""For tests of other rules: nobody needs a permit, so NO_VALID_PERMIT stays quiet."""
RULES = RulesConfig(permits=NO_PERMITS_REQUIRED)
