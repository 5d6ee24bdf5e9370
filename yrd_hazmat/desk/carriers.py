"""The carriers' side of the desk, and the incident lists both sides work from.

A carrier's account sees its own trucks (the vehicle register's carrier of the plate,
:mod:`yrd_hazmat.register`, fed from the topics the desk follows), their open alerts,
history, incidents and tracks (:class:`~.access.Scope`), and acts on its trucks'
incidents: acknowledge, explain (a handling note), appeal (a reason; one per incident).
The police decide an appeal (accept or reject, with a reason). ``GET /api/incidents``
lists (``view``):

- ``emergencies`` (the default): the emergencies not closed;
- ``appeals``: the incidents with an open appeal (申诉待处理), the oldest appeal first;
- ``recent``: the incidents raised in the last :data:`RECENT` (a carrier's account's
  history of its trucks' incidents: what it may explain or appeal), newest first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import msgspec

from ..core.models import IncidentLog

Apply = Callable[[bytes | None, bytes | None], None]
RECENT = timedelta(days=7)
RECENT_MAX = 500
VIEWS = ("emergencies", "appeals", "recent")


def both(*applies: Apply) -> Apply:
    """One follower's apply feeding several readers of a topic."""
    def apply(key: bytes | None, value: bytes | None) -> None:
        for one in applies:
            one(key, value)
    return apply


def appealed_at(record: IncidentLog) -> datetime | None:
    return next((a.at for a in record.actions if a.kind == "appeal"), None)


def listed(records: Iterable[IncidentLog], view: str, now: datetime) -> list[IncidentLog]:
    """The records of a view (the records given: those the user sees). ValueError: no
    such view."""
    if view == "emergencies":
        found = [r for r in records if r.emergency and r.closed_at is None]
        return sorted(found, key=lambda r: r.raised_at or now, reverse=True)
    if view == "appeals":
        found = [r for r in records if r.appeal == "open"]
        return sorted(found, key=lambda r: appealed_at(r) or now)
    if view == "recent":
        found = [r for r in records if r.raised_at is not None and r.raised_at >= now - RECENT]
        return sorted(found, key=lambda r: r.raised_at or now, reverse=True)[:RECENT_MAX]
    raise ValueError(f"view: one of {', '.join(VIEWS)}")


def record_view(record: IncidentLog, **more: Any) -> dict[str, Any]:
    """An incident's record as the desk shows it, with its appeal's story told: who
    appealed when and why, and the decision (``appeal_story``), and its escalations."""
    doc = msgspec.to_builtins(record)
    story = [{"kind": a.kind, "by": a.by, "at": a.at, "text": a.text}
             for a in record.actions
             if a.kind in ("explain", "appeal", "appeal_accepted", "appeal_rejected")]
    escalations = [{"level": a.level, "by": a.by, "at": a.at, "text": a.text}
                   for a in record.actions if a.kind == "escalate"]
    return doc | {"appeal_story": msgspec.to_builtins(story),
                  "escalations": msgspec.to_builtins(escalations)} | more
