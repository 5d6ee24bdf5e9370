"""Event-time helpers: the core counts time in integer epoch milliseconds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

CHINA_TZ = timezone(timedelta(hours=8), "CST")
"""China Standard Time (UTC+08:00, no DST): the time police and carriers read."""


def to_ms(ts: datetime) -> int:
    """A timezone-aware datetime as epoch milliseconds."""
    return int(round(ts.timestamp() * 1000))


def from_ms(ms: int) -> datetime:
    """Epoch milliseconds as a datetime in China Standard Time."""
    return datetime.fromtimestamp(ms / 1000, tz=CHINA_TZ)
