"""Event-time traces for the integration tests, anchored a few minutes in the past."""

from __future__ import annotations

from datetime import datetime, timedelta

from yrd_hazmat.core.models import Ping
from yrd_hazmat.core.timeutil import CHINA_TZ

PEOPLES_SQUARE = (121.4737, 31.2304)  # Shanghai, 310000
XINJIEKOU = (118.7841, 32.0415)  # Nanjing, 320100
HEFEI = (117.2272, 31.8206)  # Hefei, 340100


def start_time() -> datetime:
    return datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(minutes=10)


def drive(vehicle: str, t0: datetime, speeds: list[float], *, at=PEOPLES_SQUARE,
          every_s: int = 5, road: str = "expressway", step_deg: float = 1e-4) -> list[Ping]:
    """One ping every ``every_s`` seconds with the given speeds, moving east ``step_deg``
    of longitude per ping."""
    return [
        Ping(vehicle_id=vehicle, ts=t0 + timedelta(seconds=i * every_s), lon=at[0] + i * step_deg,
             lat=at[1], speed_kmh=v, road_class=road, status_flags=3)
        for i, v in enumerate(speeds)
    ]


def of(records: list[dict], vehicle: str) -> list[dict]:
    return [r for r in records if r.get("vehicle_id") == vehicle]
