"""The outbox: what the worker has handed the read model and Redis does not show yet.

Pure (no I/O, no clock): the worker's batches are merged here between flushes
so that the outbox stays small however long Redis is away; per vehicle only
the newest observation, alerts in order. :mod:`.flusher` takes it whole for one
flush and puts it back if the flush fails; each pending entry knows its row of
the write script's arguments (:mod:`.writer`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..core.alerts import MOMENTARY
from ..core.codec import encode
from ..core.updates import VehicleUpdate
from ..core.models import Alert, AlertState
from ..core.observation import Observation
from ..core.timeutil import from_ms
from .keys import RECENT_ALERTS

MAX_ALERTS = 200_000
"""Alerts held before the outbox is compacted (``YRD_READMODEL_MAX_ALERTS``)."""
TRACK_POINTS = 720
"""Positions of one vehicle held for the track between two flushes (an hour at 5 s)."""
_GEO_LAT = 85.05112878
"""The latitudes Redis's geo sets accept."""


class PendingVehicle:
    """A vehicle's newest observation waiting for Redis, and the province it was shown in."""

    __slots__ = ("vehicle_id", "latest", "previous_province", "previously_seen", "updated_at",
                 "track")

    def __init__(
        self,
        vehicle_id: str,
        latest: Observation,
        previous_province: str | None,
        previously_seen: bool,
        updated_at: str,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.latest = latest
        self.previous_province = previous_province
        self.previously_seen = previously_seen
        self.updated_at = updated_at
        self.track: list[Observation] = []
        """Earlier positions since the last flush (at most TRACK_POINTS)."""

    def keep(self, points: Iterable[Observation]) -> None:
        self.track.extend(points)
        if len(self.track) > TRACK_POINTS:
            del self.track[:-TRACK_POINTS]

    def row(self) -> list[Any]:
        """The write script's row for this vehicle (numbers as text, written verbatim): id,
        ts_ms, ts (ISO), lat, lon, speed, province ('' outside), city_code, city_name,
        updated_at, previous province (hint, '' outside), previously seen (0/1), geo ok
        (0/1), heading ('' when unknown), earlier track points 'ts,lat,lon,speed;...'."""
        obs = self.latest
        geo_ok = -_GEO_LAT <= obs.lat <= _GEO_LAT and -180.0 <= obs.lon <= 180.0
        return [
            self.vehicle_id,
            str(obs.ts_ms),
            from_ms(obs.ts_ms).isoformat(),
            repr(float(obs.lat)),
            repr(float(obs.lon)),
            repr(float(obs.speed_kmh)),
            obs.province or "",
            obs.city.code if obs.city else "",
            obs.city.name if obs.city else "",
            self.updated_at,
            self.previous_province or "",
            1 if self.previously_seen else 0,
            1 if geo_ok else 0,
            "" if obs.heading is None else str(obs.heading),
            ";".join(f"{o.ts_ms},{float(o.lat)!r},{float(o.lon)!r},{float(o.speed_kmh)!r}"
                     for o in self.track if o.ts_ms < obs.ts_ms) if self.track else "",
        ]


class PendingAlert:
    """An alert waiting for Redis: its open/clear change and its recent-list entry."""

    __slots__ = ("alert_id", "incident_id", "vehicle_id", "province", "raised", "momentary",
                 "body", "push", "ts_ms")

    def __init__(self, alert: Alert) -> None:
        self.alert_id = alert.alert_id
        self.incident_id = alert.incident_id
        self.vehicle_id = alert.vehicle_id
        self.province = alert.province or ""
        self.raised = alert.state is AlertState.RAISED
        self.momentary = alert.type in MOMENTARY
        self.body: str = encode(alert).decode("utf-8")
        self.ts_ms = int(alert.ts.timestamp() * 1000)
        self.push = True
        """False once compacted: the open/clear change is kept, the recent-list entry not."""

    def row(self) -> list[Any]:
        """The write script's row for this alert: alert_id, incident_id, vehicle_id,
        province ('' outside), 'r'|'c', momentary (0/1), body, push (0/1), ts_ms (event
        time: the recent list keeps the latest by event time)."""
        return [
            self.alert_id,
            self.incident_id,
            self.vehicle_id,
            self.province,
            "r" if self.raised else "c",
            1 if self.momentary else 0,
            self.body,
            1 if self.push else 0,
            self.ts_ms,
        ]


class Outbox:
    """What the read model has not written yet, merged so that it stays small.

    Per vehicle only the newest observation by event time is kept, with the
    province shown before the first pending update (the one the vehicle leaves).
    Alerts are kept in order. If more than ``max_alerts`` wait (a long outage),
    the outbox is compacted: the newest ``recent`` alerts stay as they are; of
    the older ones, momentary alerts (recent-list only) and repeated alert_ids
    are dropped, a raise whose clear also waits is dropped, and the rest keep
    their open/clear change but lose their recent-list entry (which the list's
    trim would have removed anyway). ``dropped`` counts the recent-list entries
    lost this way; open/clear changes are never dropped, so the outbox may stay
    above ``max_alerts`` when that many incidents changed state.
    """

    def __init__(self, max_alerts: int = MAX_ALERTS, recent: int = RECENT_ALERTS) -> None:
        self.max_alerts = max_alerts
        self.recent = recent
        self.vehicles: dict[str, PendingVehicle] = {}
        self.alerts: list[PendingAlert] = []
        self.dropped = 0
        self._compact_at = max_alerts

    def __len__(self) -> int:
        return len(self.vehicles) + len(self.alerts)

    def add(self, updates: Iterable[VehicleUpdate], alerts: Iterable[Alert], now: datetime) -> None:
        stamp = now.isoformat()
        pending = self.vehicles
        for u in updates:
            current = pending.get(u.vehicle_id)
            if current is None:
                current = pending[u.vehicle_id] = PendingVehicle(
                    u.vehicle_id, u.latest, u.previous_province, u.previously_seen, stamp
                )
            elif u.latest.ts_ms >= current.latest.ts_ms:
                current.keep((current.latest,))
                current.latest = u.latest
                current.updated_at = stamp
            current.keep(u.track)
        self.alerts.extend(PendingAlert(a) for a in alerts)
        if len(self.alerts) > self._compact_at:
            self.compact()

    def take(self) -> tuple[dict[str, PendingVehicle], list[PendingAlert]]:
        """Everything pending, leaving the outbox empty (for one flush attempt)."""
        taken = (self.vehicles, self.alerts)
        self.vehicles, self.alerts = {}, []
        return taken

    def restore(self, vehicles: dict[str, PendingVehicle], alerts: list[PendingAlert]) -> None:
        """Put back what a failed flush took, before what was added meanwhile."""
        for vehicle_id, old in vehicles.items():
            current = self.vehicles.get(vehicle_id)
            if current is None:
                self.vehicles[vehicle_id] = old
                continue
            current.previous_province = old.previous_province
            current.previously_seen = old.previously_seen
            current.track[:0] = old.track + [old.latest]
            if old.latest.ts_ms > current.latest.ts_ms:
                current.latest, current.updated_at = old.latest, old.updated_at
        self.alerts = alerts + self.alerts
        if len(self.alerts) > self._compact_at:
            self.compact()

    def compact(self) -> int:
        """Shrink the alerts as described above; returns the recent-list entries dropped."""
        cut = max(0, len(self.alerts) - self.recent)
        head, tail = self.alerts[:cut], self.alerts[cut:]
        cleared = {a.incident_id for a in self.alerts if not a.raised and not a.momentary}
        kept: list[PendingAlert] = []
        ids: set[str] = set()
        dropped = 0
        for a in head:
            if a.push:
                dropped += 1
            if a.momentary or a.alert_id in ids or (a.raised and a.incident_id in cleared):
                continue
            ids.add(a.alert_id)
            a.push = False
            if not a.raised:
                a.body = ""  # a clear needs no body once it is not listed
            kept.append(a)
        self.alerts = kept + tail
        self.dropped += dropped
        self._compact_at = max(self.max_alerts, 2 * len(self.alerts))
        return dropped
