"""Pings -> observations for a whole batch at once (vectorised geometry)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .geo.gcj02 import gcj02_to_wgs84
from .geo.jurisdiction import JurisdictionIndex
from .geo.projection import to_metric
from .models import City, Ping
from .observation import Observation
from .timeutil import to_ms
from .zones.index import ZoneIndex

_NO_ZONES = ZoneIndex([])


def observe(
    pings: Sequence[Ping], places: JurisdictionIndex, zones: ZoneIndex = _NO_ZONES,
    ts_ms: Sequence[int] | None = None,
) -> list[Observation]:
    """Convert GCJ-02 pings to WGS-84, project them to metres, and locate every ping
    in its province, city and the zones it is in or near, all batch-wise. ``ts_ms``: the
    pings' times in ms, when the caller has them already."""
    if not pings:
        return []
    lon = np.fromiter((p.lon for p in pings), dtype=float, count=len(pings))
    lat = np.fromiter((p.lat for p in pings), dtype=float, count=len(pings))
    gcj = np.fromiter((p.crs == "GCJ02" for p in pings), dtype=bool, count=len(pings))
    if gcj.any():
        lon[gcj], lat[gcj] = gcj02_to_wgs84(lon[gcj], lat[gcj])
    provinces, codes, names = places.locate(lon, lat)
    x, y = to_metric(lon, lat)
    hits = zones.evaluate(x, y)
    near: dict[int, list[tuple[str, int]]] = {}
    for p, z, level in zip(hits.point.tolist(), hits.zone.tolist(), hits.level.tolist()):
        near.setdefault(p, []).append((zones.zones[z].zone_id, level))
    cities: dict[str, City] = {}
    out = []
    for i, ping in enumerate(pings):
        code = codes[i]
        city = None
        if code is not None:
            city = cities.get(code) or cities.setdefault(code, City(code=code, name=names[i]))
        out.append(
            Observation.from_ping(
                ping,
                ts_ms=ts_ms[i] if ts_ms is not None else to_ms(ping.ts),
                lon=float(lon[i]),
                lat=float(lat[i]),
                province=provinces[i],
                city=city,
                x_m=float(x[i]),
                y_m=float(y[i]),
                zones=tuple(near.get(i, ())),
            )
        )
    return out
