"""Deadlines and escalation, without Kafka or a clock: an alert's time to acknowledge and
time to close, and the level it has reached.

The policy is per alert type and severity, on ``yrd.deadlines`` (compacted; key
``TYPE:severity``, either part ``*``; a tombstone removes a line): the most specific line
holds (type and severity, then the type, then the severity, then the defaults below). A
deadline counts from the alert's publication (``emitted_at``: when a duty room could first
see it).

- **acknowledged**: a person acted on its incident (ack, assign, note, dispatch... or a
  carrier's explanation: :data:`~yrd_hazmat.core.models.PERSON_ACTIONS`);
- **closed**: its incident was closed, or the alert has cleared and a person acted on it.

An alert starts with its city's duty room. Each deadline it misses raises it one level:
the first to its province's supervisors, the second to the region's joint office
(:func:`escalations`); an alert closed, or at the region with no deadline left, is done.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from msgspec import Meta

from ..core.models import PERSON_ACTIONS, IncidentLog, Level
from ..tables import CompactedTable

LEVELS: tuple[Level, ...] = ("city", "province", "region")


class Deadline(msgspec.Struct, frozen=True, kw_only=True):
    """How long an alert of a type and severity may wait (None: no such deadline)."""
    alert_type: Annotated[str, Meta(pattern=r"^([A-Z_]+|\*)$")] = "*"
    severity: Annotated[str, Meta(pattern=r"^(critical|warning|info|\*)$")] = "*"
    ack_s: Annotated[int, Meta(ge=1)] | None = None
    close_s: Annotated[int, Meta(ge=1)] | None = None

    @property
    def key(self) -> str:
        return f"{self.alert_type}:{self.severity}"


DEFAULTS = {"critical": Deadline(severity="critical", ack_s=300, close_s=4 * 3600),
            "warning": Deadline(severity="warning", ack_s=1800, close_s=24 * 3600),
            "info": Deadline(severity="info")}
"""Critical: acknowledged within 5 minutes, closed within 4 hours; warning: 30 minutes and
a day; info: none."""

_decode = msgspec.json.Decoder(Deadline)
encode = msgspec.json.Encoder().encode


class Policy(CompactedTable[Deadline]):
    """The deadlines in force (a follower's apply on ``yrd.deadlines``)."""

    def __init__(self, lines: list[Deadline] = ()) -> None:
        super().__init__(_decode.decode, lambda d: d.key, lines)

    def lines(self) -> list[Deadline]:
        return self.all()

    def of(self, alert_type: str, severity: str) -> Deadline:
        for key in (f"{alert_type}:{severity}", f"{alert_type}:*", f"*:{severity}"):
            found = self.get(key)
            if found is not None:
                return found
        return DEFAULTS.get(severity, Deadline())


class Clock(msgspec.Struct, frozen=True, kw_only=True):
    """Where an alert stands against its deadlines at ``now``."""
    ack_due: datetime | None
    close_due: datetime | None
    acknowledged_at: datetime | None
    closed_at: datetime | None
    level: Level
    """The level it is at (escalations recorded, or due)."""
    missed: list[str]
    """The deadlines missed so far (ack, close), in time order."""
    next_due: datetime | None
    """The next deadline not met yet (None: none left)."""

    @property
    def done(self) -> bool:
        """Nothing more can happen to it: closed, at the region, or no deadline left."""
        return self.closed_at is not None or self.level == "region" or self.next_due is None


def acknowledged_at(record: IncidentLog | None) -> datetime | None:
    if record is None:
        return None
    return next((a.at for a in record.actions if a.kind in PERSON_ACTIONS), None)


def closed_at(record: IncidentLog | None, cleared: bool) -> datetime | None:
    """The incident's close, or (the alert cleared) the first person's action: a cleared
    alert someone looked at is closed."""
    if record is None:
        return None
    if record.closed_at is not None:
        return record.closed_at
    if cleared or record.cleared_at is not None:
        return acknowledged_at(record)
    return None


def clock(deadline: Deadline, published_at: datetime, record: IncidentLog | None,
          cleared: bool, now: datetime) -> Clock:
    ack_due = published_at + timedelta(seconds=deadline.ack_s) if deadline.ack_s else None
    close_due = published_at + timedelta(seconds=deadline.close_s) if deadline.close_s else None
    acked, closed = acknowledged_at(record), closed_at(record, cleared)
    missed, ahead = [], []
    for name, due, met in (("ack", ack_due, acked), ("close", close_due, closed)):
        if due is None or (met is not None and met <= due):
            continue
        if due <= now:
            missed.append((due, name))
        elif met is None:
            ahead.append(due)
    missed = [name for _, name in sorted(missed)]
    reached = LEVELS[min(len(missed), 2)]
    recorded = record.level if record is not None and record.level else "city"
    level = max(reached, recorded, key=LEVELS.index)
    return Clock(ack_due=ack_due, close_due=close_due, acknowledged_at=acked, closed_at=closed,
                 level=level, missed=missed, next_due=min(ahead, default=None))


def escalations(c: Clock, recorded: Level | None) -> list[Level]:
    """The levels to escalate to now: those above the one recorded, up to the clock's."""
    start = LEVELS.index(recorded) + 1 if recorded else 1
    return list(LEVELS[start:LEVELS.index(c.level) + 1])
