"""The open alerts no rule of the worker raises (:data:`~yrd_hazmat.core.models.RAISED_ELSEWHERE`:
a lower platform's alarms, 0x1402 as ``PLATFORM_ALARM``), for the desk's triage.

The worker's read model holds the open alerts its rules raise and clear; a platform's
alarm is put on the alerts topic by the gateway and marks a moment: it is never cleared.
The desk keeps those of the last :data:`WINDOW` (read back from the alerts topic at start,
then as they come) and lists each until its incident is closed by a desk, or the window
has passed. Pure: no Kafka, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

import msgspec

from ..core.models import RAISED_ELSEWHERE, Alert, AlertState

WINDOW = timedelta(hours=24)
"""How long a platform's alarm stays listed while no desk closes it."""
_MARKERS = tuple(f'"{t.value}"'.encode() for t in RAISED_ELSEWHERE)
_decoder = msgspec.json.Decoder(Alert)


class ElsewhereAlerts:
    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}
        """incident id -> its raised alert."""

    def apply(self, key: bytes | None, value: bytes | None) -> Alert | None:
        """A record of the alerts topic; the alert if it is one of ours to keep."""
        if value is None or not any(marker in value for marker in _MARKERS):
            return None  # (most alerts: not decoded)
        try:
            alert = _decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        if alert.type not in RAISED_ELSEWHERE or alert.state != AlertState.RAISED:
            return None
        self.alerts[alert.incident_id] = alert
        return alert

    def prune(self, now: datetime) -> None:
        for incident_id, alert in list(self.alerts.items()):
            if now - alert.ts > WINDOW:
                del self.alerts[incident_id]

    def open_in(self, provinces: Iterable[str | None], closed: Callable[[str], bool],
                now: datetime) -> dict[str | None, list[Alert]]:
        """For each province, its platforms' alarms not closed and within the window."""
        wanted = set(provinces)
        out: dict[str | None, list[Alert]] = {p: [] for p in wanted}
        for alert in self._open(closed, now):
            if alert.province in wanted:
                out[alert.province].append(alert)
        return out

    def of_vehicle(self, vehicle_id: str, closed: Callable[[str], bool],
                   now: datetime) -> list[Alert]:
        """A truck's platform alarms not closed and within the window."""
        return [a for a in self._open(closed, now) if a.vehicle_id == vehicle_id]

    def _open(self, closed: Callable[[str], bool], now: datetime) -> Iterator[Alert]:
        return (a for a in self.alerts.values()
                if now - a.ts <= WINDOW and not closed(a.incident_id))

    def get(self, incident_id: str) -> Alert | None:
        return self.alerts.get(incident_id)


def merged(first: dict[str | None, list[Alert]],
           second: dict[str | None, list[Alert]]) -> dict[str | None, list[Alert]]:
    """Two sets of open alerts by province as one, each province's oldest first."""
    out = {p: list(alerts) for p, alerts in first.items()}
    for province, alerts in second.items():
        if alerts:
            known = {a.incident_id for a in out.get(province, [])}
            out[province] = sorted([*out.get(province, []),
                                    *(a for a in alerts if a.incident_id not in known)],
                                   key=lambda a: a.ts)
    return out
