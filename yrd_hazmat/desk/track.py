"""A truck's track of any period, from the archive (:mod:`yrd_hazmat.archive`), for the
desk's map: ``GET /api/trucks/{vehicle_id}/track?from=&to=``.

The period is two RFC 3339 times (China time when without an offset; the last 24 hours
when both are left out), at most :data:`MAX_SPAN`. The answer is compact, one array per
ping: ``[ts_ms, lat, lon, speed_kmh, heading]`` in time order, in WGS-84 (a GCJ-02 ping is
converted as the worker converts it), and the alert records of the period. Beyond
:data:`MAX_POINTS` pings the track is thinned evenly (first and last kept) and says so.

The archive is read in a thread (Parquet and DuckDB block), a few reads at once per desk,
so the desk's event loop never waits on it. Who may ask is the caller's check (the rule
of the truck's panel); each view is written to the desk's audit log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..archive.read import Archive
from ..archive.store import Store
from ..config import Settings
from ..core.geo.gcj02 import gcj02_to_wgs84
from .history import FILTER_MAX, parse_time
from .audit import audit

log = logging.getLogger(__name__)

MAX_SPAN = timedelta(days=31)
DEFAULT_SPAN = timedelta(hours=24)
MAX_POINTS = 50_000
"""Pings an answer holds at most; more are thinned evenly."""
READS = 2
"""Archive reads at once per desk; more wait their turn."""
ALERT_FIELDS = ("alert_id", "type", "severity", "state", "ts", "lat", "lon")


def period_of(query: Mapping[str, str], now: datetime) -> tuple[datetime, datetime]:
    """The period ``from``..``to`` of the query; ValueError saying what is wrong."""
    for name in ("from", "to"):
        if len(query.get(name, "")) > FILTER_MAX:
            raise ValueError(f"{name}: at most {FILTER_MAX} characters")
    until = parse_time(query["to"], "to") if query.get("to") else now
    since = parse_time(query["from"], "from") if query.get("from") else until - DEFAULT_SPAN
    if since > until:
        raise ValueError("from must not be after to")
    if until - since > MAX_SPAN:
        raise ValueError(f"the period is {_days(until - since)}: at most {MAX_SPAN.days} days "
                         "at a time")
    return since, until


def _days(span: timedelta) -> str:
    return f"{span.total_seconds() / 86400:.1f} days"


def points_of(table: pa.Table, limit: int = MAX_POINTS) -> tuple[list[list], bool]:
    """``[ts_ms, lat, lon, speed_kmh, heading]`` per ping of an archive track (WGS-84),
    and whether it was thinned to ``limit``."""
    n = table.num_rows
    if n == 0:
        return [], False
    truncated = n > limit
    if truncated:  # evenly, the first and the last kept
        table = table.take(pa.array(np.linspace(0, n - 1, limit).round().astype(np.int64)))
    ts = pc.cast(table["ts"], pa.timestamp("ms", tz="UTC"), safe=False).cast(pa.int64())
    lat = table["lat"].to_numpy(zero_copy_only=False).astype(np.float64)
    lon = table["lon"].to_numpy(zero_copy_only=False).astype(np.float64)
    gcj = np.asarray(pc.fill_null(pc.equal(table["crs"], "GCJ02"), False), dtype=bool)
    if gcj.any():
        lon[gcj], lat[gcj] = gcj02_to_wgs84(lon[gcj], lat[gcj])
    lat, lon = np.round(lat, 6).tolist(), np.round(lon, 6).tolist()
    speed = [None if v is None else round(v, 1) for v in table["speed_kmh"].to_pylist()]
    return [list(row) for row in zip(ts.to_pylist(), lat, lon, speed,
                                     table["heading"].to_pylist())], truncated


def alerts_of(table: pa.Table) -> list[dict[str, Any]]:
    """The alert records of the period, as the map marks them (in time order)."""
    rows = table.select(list(ALERT_FIELDS)).to_pylist()
    return [row | {"ts": row["ts"].isoformat() if row["ts"] is not None else None}
            for row in rows]


class Tracks:
    """The desk's reader of the archive (opened on the first read: an S3 store connects)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._archive: Archive | None = None
        self._reads = asyncio.Semaphore(READS)

    def archive(self) -> Archive:
        if self._archive is None:
            try:
                store = Store.of(self.settings)
            except ValueError as exc:  # YRD_ARCHIVE_S3_*: the desk serves on without it
                raise OSError(f"the archive's settings: {exc}") from exc
            self._archive = Archive(store)
        return self._archive

    def read(self, vehicle_id: str, since: datetime, until: datetime) -> dict[str, Any]:
        """The answer (blocking: run it in a thread)."""
        archive = self.archive()
        points, truncated = points_of(archive.track(vehicle_id, since, until), MAX_POINTS)
        alerts = alerts_of(archive.alerts(vehicle_id, since, until))
        return {"vehicle_id": vehicle_id, "from": since, "to": until, "points": points,
                "alerts": alerts, "truncated": truncated}

    async def view(self, vehicle_id: str, since: datetime, until: datetime) -> dict[str, Any]:
        """The answer, read in a thread (OSError: the archive cannot be read)."""
        async with self._reads:
            return await asyncio.to_thread(self.read, vehicle_id, since, until)


def audit_view(user: str, address: str | None, vehicle_id: str, since: datetime,
               until: datetime, points: int) -> None:
    """One line per track looked at: who, which truck, which period."""
    audit(user, "track view", vehicle_id, "ok", address=address or "-", since=since,
          until=until, points=points)
