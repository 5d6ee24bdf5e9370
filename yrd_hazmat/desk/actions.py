"""Alert handling: acknowledge, assign, note. Each incident's whole history is one record
on the compacted ``yrd.incidents`` topic (key: incident id), so every desk sees every
action, and a desk that starts reads them all back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import msgspec

from ..models import Alert, IncidentAction, IncidentLog

log = logging.getLogger(__name__)
_decoder = msgspec.json.Decoder(IncidentLog)


class IncidentLogs:
    """Incident id -> its log, as the topic says (the desk's copy)."""

    def __init__(self) -> None:
        self._logs: dict[str, IncidentLog] = {}
        self.listeners: list[Callable[[IncidentLog], None]] = []

    def get(self, incident_id: str) -> IncidentLog | None:
        return self._logs.get(incident_id)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None:
            return
        try:
            entry = _decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("unreadable incident log %r: %s", key, exc)
            return
        known = self._logs.get(entry.incident_id)
        if known is not None and len(known.actions) > len(entry.actions):
            return  # an older record delivered late: the longer history stands
        self._logs[entry.incident_id] = entry
        for listener in list(self.listeners):
            listener(entry)


def with_action(current: IncidentLog | None, alert: Alert, action: IncidentAction) -> IncidentLog:
    """The incident's log with one more action."""
    actions = list(current.actions) if current is not None else []
    return IncidentLog(incident_id=alert.incident_id, vehicle_id=alert.vehicle_id,
                       province=alert.province, alert_type=alert.type,
                       actions=actions + [action])


def action_of(body: dict, user: str, now: datetime) -> IncidentAction:
    """The action a desk user asked for (raises msgspec.ValidationError when invalid)."""
    return msgspec.convert({"kind": body.get("kind"), "by": user, "at": now,
                            "text": body.get("text"), "assignee": body.get("assignee")},
                           IncidentAction)
