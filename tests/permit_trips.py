"""Permits and trips along them, for unit and end-to-end tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import shapely

from yrd_hazmat.core.geo.corridors import CORRIDORS
from yrd_hazmat.core.geo.jurisdiction import default_index
from yrd_hazmat.core.geo.projection import geometry_to_metric, to_lonlat
from yrd_hazmat.core.models import Ping
from yrd_hazmat.core.permits.model import CompiledPermit, parse_permit

NANJING_TO_SHANGHAI = [list(p) for p in reversed(CORRIDORS[0].points)]  # G2, approximate
ROUTE_M = geometry_to_metric(shapely.LineString(NANJING_TO_SHANGHAI))


def permit_doc(vehicle: str, t0: datetime, **changes) -> dict:
    doc = {
        "permit_id": f"JS-2026-{vehicle[-5:]}",
        "vehicle_id": vehicle,
        "un_number": "UN1017",
        "hazard_class": "2.3",
        "cargo_name": "chlorine, liquefied",
        "quantity_kg": 18_000,
        "valid_from": (t0 - timedelta(hours=2)).isoformat(),
        "valid_until": (t0 + timedelta(hours=10)).isoformat(),
        "route": {"type": "LineString", "coordinates": NANJING_TO_SHANGHAI},
        "corridor_m": 500,
        "origin": "Nanjing Chemical Industrial Park",
        "destination": "Shanghai Caojing",
        "issuer": "南京市公安局交通管理局",
        "provinces": ["JS", "SH"],
        "driver_id": "D-320102-0001",
        "escort_id": "E-320102-0002",
        "carrier": "宁沪危运物流",
        "waybill_id": "WB-20261128-0001",
    }
    return doc | changes


def compiled(vehicle: str, t0: datetime, **changes) -> CompiledPermit:
    result = parse_permit(json.dumps(permit_doc(vehicle, t0, **changes)).encode(), default_index())
    assert isinstance(result, CompiledPermit), result
    return result


def along_route(vehicle: str, t0: datetime, start_m: float, end_m: float, *, speed_kmh: float = 72,
                every_s: float = 10, offset_m: float = 0.0, skip: tuple[float, float] | None = None,
                route=ROUTE_M) -> list[Ping]:
    """Pings driving the route from ``start_m`` to ``end_m`` (backwards if end < start),
    ``offset_m`` north of it, leaving out the stretch ``skip`` (a signal gap)."""
    step = speed_kmh / 3.6 * every_s * (1 if end_m >= start_m else -1)
    distances = np.arange(start_m, end_m, step)
    pings = []
    for i, d in enumerate(distances):
        if skip and min(skip) <= d <= max(skip):
            continue
        p = route.interpolate(d)
        lon, lat = to_lonlat(p.x, p.y + offset_m)
        pings.append(Ping(vehicle_id=vehicle, ts=t0 + timedelta(seconds=i * every_s),
                          lon=float(lon), lat=float(lat), speed_kmh=speed_kmh,
                          road_class="expressway", status_flags=3))
    return pings
