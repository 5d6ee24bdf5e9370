"""Alert handling: acknowledge, assign, note, dispatch, arrive, release, close; a
carrier's explanation and appeal, and the police's decision on the appeal (who may send
which: :func:`.access.action_refusal`).

The desk does not write incident records: it sends each action to
``yrd.incident-actions`` and the worker's incident keeper (:mod:`agents.incidents`),
the one writer of each incident's record, applies it and publishes the record on the
compacted ``yrd.incidents``. Every desk follows that topic, so every desk sees every
action, and the desk that sent one answers once the record shows it (or its refusal).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from ..core.emergency.records import IncidentLogs
from ..core.models import IncidentAction

__all__ = ["ActionRequest", "IncidentLogs", "action_of"]
NOTE_MAX = 2000
"""Characters of a note (or a remark with any action): a record holds every action, so
a few huge notes would weigh on every reader of the incidents topic."""
ASSIGNEE_MAX = 64
RESOURCE_ID_MAX = 64


class ActionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /api/incidents/{incident_id}/actions``."""

    kind: Literal["ack", "assign", "note", "dispatch", "arrive", "release", "close", "explain",
                  "appeal", "appeal_accepted", "appeal_rejected"]
    text: Annotated[str, msgspec.Meta(max_length=NOTE_MAX)] | None = None
    assignee: Annotated[str, msgspec.Meta(min_length=1, max_length=ASSIGNEE_MAX)] | None = None
    resource_id: Annotated[str, msgspec.Meta(min_length=1,
                                             max_length=RESOURCE_ID_MAX)] | None = None


def action_of(request: ActionRequest, user: str, now: datetime) -> IncidentAction:
    """The action a desk user asked for, by them, now (a fresh id: sent twice, it counts
    twice; read back twice, once)."""
    return IncidentAction(kind=request.kind, by=user, at=now, text=request.text,
                          assignee=request.assignee, resource_id=request.resource_id,
                          action_id=uuid.uuid4().hex)
