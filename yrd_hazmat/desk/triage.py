"""What a duty shift works from: one list of what needs handling (triage), what the desks
did during a shift (handover), and the region's summary. Pure: functions of the open
alerts, the incident records and the time.

A triage item's ``state``, from its incident's record:

- ``handled``: an emergency whose alert has cleared and either all its responses are
  released (at least one) or a desk acknowledged or noted it after the clear; it stays
  listed until closed;
- ``assigned``: a desk assigned it (``assignee``: the latest assignment);
- ``acknowledged``: any other desk action (ack, note, dispatch, arrive, release);
- ``new``: no desk action yet.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from ..core.models import PERSON_ACTIONS, PROVINCES, Alert, IncidentAction, IncidentLog
from .history import Found

SEVERITIES = ("critical", "warning", "info")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
DESK_KINDS = PERSON_ACTIONS
REGION_WINDOW = timedelta(hours=24)
"""The period of the region's handling times and cross-border responses."""
Sees = Callable[[str | None], bool]


def _desk_actions(record: IncidentLog | None) -> list[IncidentAction]:
    return [a for a in record.actions if a.kind in DESK_KINDS] if record is not None else []


def state_of(record: IncidentLog | None) -> str:
    """The item's state (the rule in the module's docstring)."""
    actions = _desk_actions(record)
    if record is not None and record.emergency and record.cleared_at is not None:
        cleared = record.cleared_at
        released = bool(record.responses) and all(r.released_at for r in record.responses)
        if released or any(a.kind in ("ack", "note") and a.at >= cleared for a in actions):
            return "handled"
    if any(a.kind == "assign" for a in actions):
        return "assigned"
    return "acknowledged" if actions else "new"


def _assignee(actions: list[IncidentAction]) -> str | None:
    assigned = [a.assignee for a in actions if a.kind == "assign" and a.assignee]
    return assigned[-1] if assigned else None


def _last_action(actions: list[IncidentAction]) -> dict[str, Any] | None:
    if not actions:
        return None
    last = actions[-1]
    return {"kind": last.kind, "by": last.by, "at": last.at}


def item_of(alert: Alert | None, record: IncidentLog | None) -> dict[str, Any]:
    """One triage item: an open alert with its record, or an emergency's record alone (its
    alert cleared, its response not closed)."""
    actions = _desk_actions(record)
    common = {"state": state_of(record), "emergency": bool(record and record.emergency),
              "assignee": _assignee(actions), "last_action": _last_action(actions)}
    if alert is not None:
        return {"incident_id": alert.incident_id, "alert_id": alert.alert_id, "type": alert.type,
                "severity": alert.severity.value, "vehicle_id": alert.vehicle_id,
                "province": alert.province, "city": alert.city.name if alert.city else None,
                "ts": alert.ts, "lat": alert.lat, "lon": alert.lon, "details": alert.details,
                **common}
    assert record is not None
    return {"incident_id": record.incident_id, "alert_id": None, "type": record.alert_type,
            "severity": record.severity.value if record.severity else "critical",
            "vehicle_id": record.vehicle_id, "province": record.province, "city": None,
            "ts": record.raised_at, "lat": record.lat, "lon": record.lon,
            "details": {"subject": record.subject} if record.subject else {},
            "cleared_at": record.cleared_at, **common}


def triage(open_alerts: Iterable[Alert], records: Iterable[IncidentLog],
           record_of: Callable[[str], IncidentLog | None], sees: Sees) -> dict[str, Any]:
    """The jurisdiction's open alerts and its emergencies not closed, critical first, then
    the oldest first; with the count of each severity."""
    items = [item_of(alert, record_of(alert.incident_id)) for alert in open_alerts]
    listed = {item["incident_id"] for item in items}
    items += [item_of(None, record) for record in records
              if record.emergency and record.closed_at is None and sees(record.home)
              and record.incident_id not in listed]
    items.sort(key=lambda i: (_RANK.get(i["severity"], 3), _time_key(i["ts"])))
    counts = Counter(item["severity"] for item in items)
    return {"counts": {s: counts.get(s, 0) for s in SEVERITIES}, "items": items}


def _time_key(ts: datetime | None) -> float:
    return ts.timestamp() if ts is not None else float("inf")


# --- the shift handover -------------------------------------------------------------------
class Came:
    """What came in a period: the alerts raised (not their clears), counted by severity and
    by type as the topic's batches arrive."""

    def __init__(self) -> None:
        self.severities: Counter[str] = Counter()
        self.types: Counter[str] = Counter()

    def add(self, batch: list[Found]) -> None:
        for found in batch:
            if found.alert.state.value == "raised":
                self.severities[found.alert.severity.value] += 1
                self.types[found.alert.type] += 1

    def view(self) -> dict[str, Any]:
        return {"total": sum(self.severities.values()),
                "by_severity": {s: self.severities.get(s, 0) for s in SEVERITIES},
                "by_type": dict(self.types.most_common())}


def handled(records: Iterable[IncidentLog], sees: Sees, since: datetime,
            until: datetime) -> list[dict[str, Any]]:
    """What the desks did in the period on the jurisdiction's incidents, oldest first."""
    done = [{"incident_id": r.incident_id, "vehicle_id": r.vehicle_id, "type": r.alert_type,
             "kind": a.kind, "by": a.by, "at": a.at, "text": a.text}
            for r in records if sees(r.home)
            for a in r.actions if a.kind in DESK_KINDS and since <= a.at <= until]
    return sorted(done, key=lambda d: d["at"])


# --- the region ---------------------------------------------------------------------------
def region(open_alerts: dict[str | None, list[Alert]], records: list[IncidentLog],
           provinces: Iterable[str | None], now: datetime) -> dict[str, Any]:
    """Per province of the user's: open alerts by severity, emergencies open, cross-border
    responses and median handling times over the last 24 h; and those responses.
    ``ack_median_s``: from raised to the first desk action; ``close_median_s``: from raised
    to closed."""
    since = now - REGION_WINDOW
    out: dict[str, Any] = {}
    crossings: list[dict[str, Any]] = []
    for province in (p for p in provinces if p in PROVINCES):
        mine = [r for r in records if r.home == province]
        recent = [r for r in mine if r.raised_at is not None and r.raised_at >= since]
        severities = Counter(a.severity.value for a in open_alerts.get(province, []))
        responses = [(r, x) for r in mine for x in r.responses
                     if x.crosses_border and x.dispatched_at >= since]
        crossings += [{"incident_id": r.incident_id, "from_province": x.province,
                       "to_province": province, "resource": x.name,
                       "resource_id": x.resource_id, "dispatched_at": x.dispatched_at,
                       "released_at": x.released_at} for r, x in responses]
        out[province] = {
            "open": {s: severities.get(s, 0) for s in SEVERITIES},
            "emergencies_open": sum(1 for r in mine if r.emergency and r.closed_at is None),
            "cross_border_responses": len(responses),
            "ack_median_s": _median([_first_action_s(r) for r in recent]),
            "close_median_s": _median([(r.closed_at - r.raised_at).total_seconds()
                                       for r in recent if r.closed_at and r.raised_at]),
        }
    crossings.sort(key=lambda c: c["dispatched_at"], reverse=True)
    return {"provinces": out, "cross_border": crossings}


def _first_action_s(record: IncidentLog) -> float | None:
    actions = _desk_actions(record)
    if not actions or record.raised_at is None:
        return None
    return (actions[0].at - record.raised_at).total_seconds()


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 1) if known else None
