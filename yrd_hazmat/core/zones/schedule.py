"""When a zone's ban is in force: weekly windows in local (China Standard) time."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from ..timeutil import CHINA_TZ

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_GROUPS = {"daily": DAYS, "weekdays": DAYS[:5], "weekends": DAYS[5:]}
HHMM = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]


class Window(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A daily time window on some days; ``start > end`` runs past midnight.

    The days are those on which the window *starts*: ``fri 22:00-06:00`` covers
    Friday night into Saturday morning.
    """

    start: HHMM
    end: HHMM
    days: Literal["daily", "weekdays", "weekends"] | list[Day] = "daily"

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError(f"window {self.start}-{self.end} is empty")
        if self.start == "24:00":
            raise ValueError("a window cannot start at 24:00")
        if isinstance(self.days, list) and not self.days:
            raise ValueError("a window needs at least one day")

    @property
    def day_set(self) -> frozenset[str]:
        return _day_set(self.days if isinstance(self.days, str) else tuple(self.days))

    def covers(self, local: datetime) -> bool:
        return self.covers_minute(local.weekday(), local.hour * 60 + local.minute)

    def covers_minute(self, weekday: int, minute: int) -> bool:
        """Whether the window covers minute ``minute`` (of the day) of day ``weekday``
        (0 Monday), local time."""
        start, end = _minutes(self.start), _minutes(self.end)
        days = self.day_set
        if start < end:
            return DAYS[weekday] in days and start <= minute < end
        return (DAYS[weekday] in days and minute >= start) or (
            DAYS[(weekday - 1) % 7] in days and minute < end
        )


@lru_cache(maxsize=256)
def _day_set(days: str | tuple[str, ...]) -> frozenset[str]:
    return frozenset(_GROUPS[days] if isinstance(days, str) else days)


@lru_cache(maxsize=4096)
def _minutes(hhmm: str) -> int:
    match = re.fullmatch(r"(\d\d):(\d\d)", hhmm)
    assert match is not None
    return int(match[1]) * 60 + int(match[2])


def in_force(windows: tuple[Window, ...] | None, ts_ms: int) -> bool:
    """Whether a ban with these windows applies at event time ``ts_ms`` (none = always)."""
    if not windows:
        return True
    local_min = ts_ms // 60_000 + _UTC_OFFSET_MIN  # (China has one fixed offset)
    day, minute = divmod(local_min, 1440)
    weekday = (day + 3) % 7  # (1970-01-01 was a Thursday)
    for w in windows:
        if w.covers_minute(weekday, minute):
            return True
    return False


_UTC_OFFSET_MIN = int(CHINA_TZ.utcoffset(None).total_seconds()) // 60


def first_in_force(windows: tuple[Window, ...] | None, start_ms: int, end_ms: int) -> int | None:
    """The first event time in ``[start_ms, end_ms]`` at which the ban applies, or None.

    Windows begin and end on whole minutes, so checking the start and every whole
    minute after it up to the end is exact.
    """
    if in_force(windows, start_ms):
        return start_ms
    minute = (start_ms // 60_000 + 1) * 60_000
    while minute <= end_ms:
        if in_force(windows, minute):
            return minute
        minute += 60_000
    return None
