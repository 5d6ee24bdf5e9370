"""An incident's record, one action at a time: what the incident keeper does, without Kafka.

:func:`apply` takes an incident's record (or none yet), one
:class:`~yrd_hazmat.core.models.IncidentCommand` and the resource it names, and returns the
new record, or the same record with the refusal noted. It is idempotent: an action whose
id the record already holds changes nothing, so a command delivered twice (a replay
after a crash) is recorded once.

The lifecycle of an emergency: ``raised`` (the worker, with the responders proposed and
the exposure from the alert), any number of ``dispatch`` (a resource sent), ``arrive``
(it is on scene) and ``release`` (it leaves), ``cleared`` when the alarm goes off, and
``close`` (the incident is over: every resource still there is released with it).
``ack``, ``assign`` and ``note`` come from the desks, on any incident; ``escalate`` from
the notifier when a deadline passes (to a higher level only); ``explain`` and ``appeal``
from the carrier's desk, ``appeal_accepted`` and ``appeal_rejected`` from the police's (a
decision needs an open appeal; one appeal per incident). These five are recorded on a
closed incident too: an appeal comes after the handling.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from msgspec.structs import replace

from ..models import (
    Alert, AlertState, IncidentAction, IncidentCommand, IncidentLog, Resource, Response,
)

REJECTED_KEPT = 20
"""Refused actions a record keeps (the latest)."""
LEVELS = ("city", "province", "region")
RESOURCE_ACTIONS = frozenset({"dispatch", "arrive", "release"})


def action_id(action: IncidentAction) -> str:
    """The action's id: its own, else one made of what it says."""
    if action.action_id:
        return action.action_id
    return ":".join((action.kind, action.by, action.at.isoformat(), action.resource_id or ""))


def command_for(alert: Alert) -> IncidentCommand:
    """The worker's command for an emergency alert: raised (it opens the record) or cleared."""
    kind = "raised" if alert.state is AlertState.RAISED else "cleared"
    return IncidentCommand(incident_id=alert.incident_id, alert=alert, action=IncidentAction(
        kind=kind, by="worker", at=alert.ts, action_id=alert.alert_id))


def open_log(alert: Alert) -> IncidentLog:
    """A new record for the incident of ``alert``: what it is, as the alert says."""
    d = alert.details
    return IncidentLog(
        incident_id=alert.incident_id, vehicle_id=alert.vehicle_id, province=alert.province,
        alert_type=alert.type, actions=[], severity=alert.severity,
        emergency=bool(d.get("emergency")), raised_at=alert.ts, lat=alert.lat, lon=alert.lon,
        subject=d.get("alarm") or d.get("zone_id"), hazard_class=alert.hazard_class,
        un_number=alert.un_number, cargo_name=d.get("cargo_name"),
        responders_province=d.get("responders_province"),
        isolation_distance_m=d.get("isolation_distance_m"),
        responders=list(d.get("responders") or []), exposure=dict(d.get("exposure") or {}))


def active(log: IncidentLog, resource_id: str) -> Response | None:
    """The resource's response to this incident that is not released yet."""
    for response in log.responses:
        if response.resource_id == resource_id and response.released_at is None:
            return response
    return None


def refusal(log: IncidentLog | None, action: IncidentAction,
            resource: Resource | None) -> str | None:
    """Why the action cannot be recorded on this record, or None."""
    kind = action.kind
    if log is None:
        return "unknown incident: no record and no alert to open one with"
    if kind in ("raised", "cleared", "ack", "assign", "note"):
        if kind == "assign" and not action.assignee:
            return "assign needs an assignee"
        if kind == "note" and not action.text:
            return "a note needs a text"
        return None
    if kind in ("escalate", "explain", "appeal", "appeal_accepted", "appeal_rejected"):
        return _handling_refusal(log, action)
    if log.closed_at is not None:
        return f"the incident was closed at {log.closed_at.isoformat()}"
    if kind == "close":
        return None
    if not action.resource_id:
        return f"{kind} needs a resource"
    response = active(log, action.resource_id)
    if kind == "dispatch":
        if resource is None:
            return f"unknown resource {action.resource_id}"
        if response is not None:
            return f"{action.resource_id} is already dispatched to this incident"
        if resource.status == "out_of_service":
            return f"{action.resource_id} is out of service"
        if resource.status == "deployed" and resource.deployed_to != log.incident_id:
            return f"{action.resource_id} is deployed to incident {resource.deployed_to}"
        return None
    if response is None:
        return f"{action.resource_id} is not dispatched to this incident"
    if action.at < response.dispatched_at:
        return f"{kind} before the dispatch ({response.dispatched_at.isoformat()})"
    if kind == "arrive" and response.arrived_at is not None:
        return f"{action.resource_id} arrived already at {response.arrived_at.isoformat()}"
    return None


def _handling_refusal(log: IncidentLog, action: IncidentAction) -> str | None:
    kind = action.kind
    if kind == "escalate":
        if action.level is None:
            return "escalate needs a level"
        if log.level is not None and LEVELS.index(action.level) <= LEVELS.index(log.level):
            return f"already escalated to {log.level}"
        return None
    if not (action.text or "").strip():
        return {"explain": "an explanation needs a text", "appeal": "an appeal needs a reason",
                }.get(kind, "a decision on an appeal needs a reason")
    if kind == "appeal":
        return None if log.appeal is None else f"this alert was appealed already ({log.appeal})"
    if kind in ("appeal_accepted", "appeal_rejected") and log.appeal != "open":
        return "no open appeal to decide" if log.appeal is None else \
            f"the appeal was decided already ({log.appeal})"
    return None


def apply(log: IncidentLog | None, command: IncidentCommand,
          resource: Resource | None = None) -> tuple[IncidentLog | None, str | None]:
    """(the record after the command, why it was refused or None). An action already
    recorded, or refused before, returns the record unchanged."""
    action = command.action
    aid = action_id(action)
    if action.action_id is None:
        action = replace(action, action_id=aid)
    if log is None and command.alert is not None and action.kind != "cleared":
        log = open_log(command.alert)
    if log is not None and (any(a.action_id == aid for a in log.actions)
                            or any(r.get("action_id") == aid for r in log.rejected)):
        return log, None
    reason = refusal(log, action, resource)
    if reason is not None:
        if log is None:
            return None, reason
        entry = {"action_id": aid, "kind": action.kind, "by": action.by,
                 "resource_id": action.resource_id, "reason": reason}
        return replace(log, rejected=(log.rejected + [entry])[-REJECTED_KEPT:]), reason
    assert log is not None
    return _recorded(log, action, resource), None


def _recorded(log: IncidentLog, action: IncidentAction, resource: Resource | None) -> IncidentLog:
    changes: dict[str, Any] = {"actions": log.actions + [action]}
    at = action.at
    if action.kind == "cleared" and log.cleared_at is None:
        changes["cleared_at"] = at
    elif action.kind == "dispatch":
        assert resource is not None
        changes["responses"] = log.responses + [Response(
            resource_id=resource.resource_id, name=resource.name, kind=resource.kind,
            province=resource.province, dispatched_at=at,
            crosses_border=resource.province != log.home)]
    elif action.kind in ("arrive", "release"):
        field = "arrived_at" if action.kind == "arrive" else "released_at"
        changes["responses"] = [
            replace(r, **{field: at}) if r is active(log, action.resource_id or "") else r
            for r in log.responses]
    elif action.kind == "escalate":
        changes["level"] = action.level
    elif action.kind in ("appeal", "appeal_accepted", "appeal_rejected"):
        changes["appeal"] = {"appeal": "open", "appeal_accepted": "accepted",
                             "appeal_rejected": "rejected"}[action.kind]
    elif action.kind == "close":
        changes["closed_at"] = at
        changes["responses"] = [replace(r, released_at=at) if r.released_at is None else r
                                for r in log.responses]
    return replace(log, **changes)


def touched(log: IncidentLog, action: IncidentAction) -> list[str]:
    """The resources whose status the action may change (a close releases them all)."""
    if action.kind == "close":
        return sorted({r.resource_id for r in log.responses})
    return [action.resource_id] if action.kind in RESOURCE_ACTIONS and action.resource_id else []


def resource_status(resource: Resource, log: IncidentLog) -> Resource | None:
    """The resource's record as this incident leaves it (deployed to it while its response
    is active, available again once released), or None if that changes nothing."""
    if active(log, resource.resource_id) is not None:
        wanted = replace(resource, status="deployed", deployed_to=log.incident_id)
    elif resource.status == "deployed" and resource.deployed_to == log.incident_id:
        wanted = replace(resource, status="available", deployed_to=None)
    else:
        return None
    return None if wanted == resource else wanted


def hours(response: Response, until: datetime) -> float:
    """Resource-hours of a response: from its dispatch to its release (or ``until``)."""
    end = response.released_at or until
    return max(0.0, (end - response.dispatched_at).total_seconds() / 3600)


def encode(log: IncidentLog) -> bytes:
    return msgspec.json.encode(log)


def outcome(log: IncidentLog, action_id: str) -> tuple[str, str | None] | None:
    """("recorded", None) or ("refused", reason) once the record shows the action; None
    while it does not (yet)."""
    if any(a.action_id == action_id for a in log.actions):
        return "recorded", None
    for entry in log.rejected:
        if entry.get("action_id") == action_id:
            return "refused", entry.get("reason") or "refused"
    return None
