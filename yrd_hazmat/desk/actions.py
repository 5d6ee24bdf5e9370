"""Alert handling: acknowledge, assign, note, dispatch, arrive, release, close.

The desk does not write incident records: it sends each action to
``yrd.incident-actions`` and the worker's incident keeper (:mod:`agents.incidents`),
the one writer of each incident's record, applies it and publishes the record on the
compacted ``yrd.incidents``. Every desk follows that topic, so every desk sees every
action, and the desk that sent one answers once the record shows it (or its refusal).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from ..emergency.records import IncidentLogs
from ..models import IncidentAction

__all__ = ["IncidentLogs", "action_of"]
DESK_KINDS = frozenset({"ack", "assign", "note", "dispatch", "arrive", "release", "close"})


def action_of(body: dict, user: str, now: datetime) -> IncidentAction:
    """The action a desk user asked for (raises msgspec.ValidationError when invalid)."""
    kind = body.get("kind")
    if kind not in DESK_KINDS:
        raise msgspec.ValidationError(f"kind must be one of {', '.join(sorted(DESK_KINDS))}")
    return msgspec.convert({"kind": kind, "by": user, "at": now, "text": body.get("text"),
                            "assignee": body.get("assignee"),
                            "resource_id": body.get("resource_id"),
                            "action_id": uuid.uuid4().hex}, IncidentAction)
