"""The clock of an open alert on the desk: when it must be acknowledged and closed, whether
a deadline passed unmet, and the level it reached (市级, 省级, 区域).

The desk follows ``yrd.deadlines`` (:class:`~yrd_hazmat.notify.deadlines.Policy`) and
computes the clock as the notifier does (:func:`~yrd_hazmat.notify.deadlines.clock`,
counted from the alert's publication, ``emitted_at``); the notifier escalates, the desk
only shows. The browser counts down from ``ack_due`` and ``close_due``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..core.models import Alert, IncidentLog
from ..notify.deadlines import Clock, Policy, clock


def clock_of(policy: Policy, alert: Alert, record: IncidentLog | None, now: datetime) -> Clock:
    deadline = policy.of(alert.type, alert.severity.value)
    return clock(deadline, published_at=alert.emitted_at, record=record,
                 cleared=alert.state.value == "cleared", now=now)


def overdue(c: Clock, now: datetime) -> bool:
    """A deadline passed and is still not met (acknowledged, closed)."""
    return ((c.ack_due is not None and c.acknowledged_at is None and c.ack_due <= now)
            or (c.close_due is not None and c.closed_at is None and c.close_due <= now))


def fields(policy: Policy, alert: Alert, record: IncidentLog | None,
           now: datetime) -> dict[str, Any]:
    """What an open alert or a triage item carries of its clock."""
    c = clock_of(policy, alert, record, now)
    return {"ack_due": c.ack_due, "close_due": c.close_due, "level": c.level,
            "overdue": overdue(c, now), "acknowledged_at": c.acknowledged_at,
            "missed": c.missed}


def record_fields(record: IncidentLog) -> dict[str, Any]:
    """An item without its alert (an emergency whose alert cleared): its recorded level
    only, no deadline to count down."""
    return {"ack_due": None, "close_due": None, "level": record.level or "city",
            "overdue": False, "acknowledged_at": None, "missed": []}
