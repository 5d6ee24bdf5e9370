"""Who is told of what: subscriptions, kept on ``yrd.subscriptions`` (compacted, keyed by
the subscription's id, a tombstone removes it) and managed from the desk and the CLI.

A subscription names what it wants (provinces, cities, carriers, alert types, severities,
events: an empty list is "any") and a channel (:mod:`.channels`). It may keep quiet hours
(China time: what comes then, below the severities let through, waits for a digest at the
quiet hours' end) and has a rate limit (at most ``max_messages`` messages in
``window_s``: the rest of a burst goes in one digest when the window lets it).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from ..core.timeutil import CHINA_TZ
from ..tables import CompactedTable
from .channels import Channel

EventKind = Literal["raised", "cleared", "escalated", "appealed", "appeal_decided"]
"""What happened: an alert raised or cleared; an alert past its deadline escalated to a
level; a carrier's appeal, and the police's decision on it."""
Level = Literal["city", "province", "region"]
LEVELS: tuple[Level, ...] = ("city", "province", "region")
SubscriptionId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class QuietHours(msgspec.Struct, frozen=True, kw_only=True):
    start: Annotated[str, Meta(pattern=_CLOCK.pattern, description="HH:MM, China time")]
    end: Annotated[str, Meta(pattern=_CLOCK.pattern, description="HH:MM, China time; "
                                                                 "before start: the next day")]
    let_through: list[Literal["critical", "warning", "info"]] = msgspec.field(
        default_factory=lambda: ["critical"])
    """Severities told at once even in quiet hours."""

    def _bounds(self) -> tuple[time, time]:
        return time.fromisoformat(self.start), time.fromisoformat(self.end)

    def ends_after(self, now: datetime) -> datetime | None:
        """When the quiet hours holding ``now`` end, or None when ``now`` is not in them."""
        start, end = self._bounds()
        local = now.astimezone(CHINA_TZ)
        clock = local.time()
        today_end = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if start == end:
            return None
        if start < end:
            return today_end if start <= clock < end else None
        if clock >= start:  # across midnight: from start today to end tomorrow
            return today_end + timedelta(days=1)
        return today_end if clock < end else None


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    """Who is told of what, and how: what it names (an empty list: any), its channel, its
    quiet hours and its rate limit. The channel's secrets are kept here: the topic is
    readable only by the notifier, the desk and the CLI."""

    subscription_id: SubscriptionId
    name: str
    channel: Channel
    owner: str = "cli"
    """Who made it (a desk user's name, or cli)."""
    provinces: list[Literal["SH", "JS", "ZJ", "AH", "outside"]] = []
    cities: list[Annotated[str, Meta(pattern=r"^\d{6}$")]] = []
    carriers: list[str] = []
    alert_types: list[Annotated[str, Meta(pattern=r"^[A-Z_]+$")]] = []
    severities: list[Literal["critical", "warning", "info"]] = []
    events: list[EventKind] = msgspec.field(default_factory=lambda: ["raised"])
    levels: list[Level] = []
    """For ``escalated``: the levels it is told of (empty: any)."""
    quiet_hours: QuietHours | None = None
    max_messages: Annotated[int, Meta(ge=1, le=10_000)] = 10
    window_s: Annotated[int, Meta(ge=10, le=86_400)] = 600
    enabled: bool = True

    def __repr__(self) -> str:  # the channel masks its secrets
        return (f"Subscription({self.subscription_id!r}, {self.name!r}, "
                f"channel={self.channel!r})")


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One thing a subscription may be told of."""
    event_id: str
    """Deterministic: the alert's id for raised and cleared; incident, level or action
    for the others. A delivery is one per event and subscription."""
    kind: EventKind
    incident_id: str
    vehicle_id: str
    alert_type: str
    severity: Literal["critical", "warning", "info"]
    ts: datetime
    """When it happened (the alert's event time; the escalation's deadline)."""
    province: str | None
    city_code: str | None = None
    city_name: str | None = None
    carrier: str | None = None
    lat: float | None = None
    lon: float | None = None
    level: Level | None = None
    text: str | None = None
    """What a person wrote (an appeal's reason, a decision's)."""
    details: dict = {}


def matches(sub: Subscription, event: Event) -> bool:
    """Whether ``sub`` is told of ``event``."""
    if not sub.enabled or event.kind not in sub.events:
        return False
    province = event.province or "outside"
    return ((not sub.provinces or province in sub.provinces)
            and (not sub.cities or event.city_code in sub.cities)
            and (not sub.carriers or event.carrier in sub.carriers)
            and (not sub.alert_types or event.alert_type in sub.alert_types)
            and (not sub.severities or event.severity in sub.severities)
            and (event.kind != "escalated" or not sub.levels or event.level in sub.levels))


_decode = msgspec.json.Decoder(Subscription)
encode = msgspec.json.Encoder().encode


def decode(value: bytes) -> Subscription:
    return _decode.decode(value)


class Subscriptions(CompactedTable[Subscription]):
    """The subscriptions in force, from ``yrd.subscriptions`` (a follower's apply)."""

    def __init__(self, subs: list[Subscription] = ()) -> None:
        super().__init__(decode, lambda s: s.subscription_id, subs)

    def matching(self, event: Event) -> list[Subscription]:
        return [s for s in self._by_key.values() if matches(s, event)]
