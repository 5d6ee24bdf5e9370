"""The deliveries: one per event and subscription, their lifecycle, and the notifier's
decisions about them, without Kafka, HTTP or a clock (``now`` is given).

Every change of a delivery is a record on ``yrd.notifications`` (compacted, keyed by the
delivery id): the notifier's memory across restarts and what the desk shows.

States:

- ``queued``: to be sent at ``due_at``; ``retrying``: an attempt failed and may succeed
  later (``reason``), again at ``due_at`` (backoff doubling from ``RETRY_FIRST_S``);
- ``sending``: written *before* an attempt. Found at a restart, the attempt's outcome is
  unknown. Where the receiver can drop a repeat by the delivery's id (a webhook's
  ``X-YRD-Delivery``, an e-mail's Message-ID: :data:`RESENT_IN_DOUBT`) it is sent again,
  marked as a possible repeat (``Notice.repeat``); a chat robot or an SMS cannot drop one,
  so it becomes ``in_doubt`` instead: not sent again (no person gets it twice), shown on
  the desk and counted, for a person to check;
- ``sent``; ``given_up`` (a permanent refusal, or ``max_attempts`` failed);
- ``held``: a digest collecting what the rate limit or the quiet hours kept back, sent at
  ``due_at``; ``in_digest``: an event's delivery carried by the digest ``digest_id``.

:func:`plan` decides what an event does to a subscription's deliveries: a message of its
own while the subscription's window has room (and not in its quiet hours), else into the
subscription's open digest.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict, deque
from datetime import datetime, timedelta
from typing import Literal

import msgspec
from msgspec.structs import replace

from .notice import Notice
from .subscriptions import Event, Subscription

State = Literal["queued", "retrying", "sending", "sent", "given_up", "held", "in_digest",
                "in_doubt"]
RESENT_IN_DOUBT = frozenset({"webhook", "email"})
"""Channels whose receivers drop a repeat by its id: an interrupted attempt is sent again."""
OPEN = frozenset({"queued", "retrying", "sending", "held"})
RETRY_FIRST_S = 5.0
RETRY_MAX_S = 600.0
DIGEST_LINES = 40
"""A digest lists this many of its events (its count says how many it holds)."""
DIGEST_IDS = 2000
"""A digest keeps the ids of this many of its events."""


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One event told to one subscription (or a digest of several): its latest state."""

    delivery_id: str
    subscription_id: str
    state: State
    channel: str
    """The channel's kind (webhook, dingtalk, wecom, feishu, sms, email)."""
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None = None
    notice: Notice | None = None
    event_ids: list[str] = []
    events: int = 1
    """How many events it carries (a digest: all it collected)."""
    digest_id: str | None = None
    attempts: int = 0
    sent_at: datetime | None = None
    reason: str | None = None
    vehicle_id: str | None = None
    province: str | None = None
    carrier: str | None = None
    severity: str | None = None
    event_kind: str | None = None


def delivery_id(event_id: str, subscription_id: str) -> str:
    return hashlib.sha256(f"{event_id}\x1f{subscription_id}".encode()).hexdigest()[:24]


def digest_id(subscription_id: str, opened: datetime) -> str:
    return "digest-" + hashlib.sha256(
        f"{subscription_id}\x1f{opened.isoformat()}".encode()).hexdigest()[:17]


class Book:
    """The deliveries known (the notifier's state, rebuilt from ``yrd.notifications``), with
    what :func:`plan` needs per subscription: the messages of its window, its open digest."""

    def __init__(self) -> None:
        self.by_id: dict[str, Delivery] = {}
        self._open: set[str] = set()
        self._messages: dict[str, deque[datetime]] = defaultdict(deque)
        self._digest: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, delivery_id_: str) -> Delivery | None:
        return self.by_id.get(delivery_id_)

    def put(self, d: Delivery) -> None:
        before = self.by_id.get(d.delivery_id)
        self.by_id[d.delivery_id] = d
        if d.state in OPEN:
            self._open.add(d.delivery_id)
        else:
            self._open.discard(d.delivery_id)
        if d.state != "in_digest" and before is None:
            self._messages[d.subscription_id].append(d.created_at)
        if d.state == "held":
            self._digest[d.subscription_id] = d.delivery_id
        elif self._digest.get(d.subscription_id) == d.delivery_id:
            del self._digest[d.subscription_id]

    def open_count(self) -> int:
        return len(self._open)

    def forget(self, before: datetime) -> int:
        """Drops finished deliveries last changed before ``before`` (memory: the topic
        keeps them for the desk); returns how many."""
        old = [i for i, d in self.by_id.items()
               if i not in self._open and d.updated_at < before]
        for i in old:
            del self.by_id[i]
        return len(old)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """A record of ``yrd.notifications`` (a follower's apply, at start)."""
        if value is None:
            if key is not None:
                self.by_id.pop(key.decode("utf-8", "replace"), None)
            return
        try:
            self.put(decode(value))
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass

    def in_window(self, sub: Subscription, now: datetime) -> int:
        """Messages (a digest counts one) made for ``sub`` in the window ending ``now``."""
        times = self._messages[sub.subscription_id]
        while times and times[0] <= now - timedelta(seconds=sub.window_s):
            times.popleft()
        return len(times)

    def window_frees(self, sub: Subscription, now: datetime) -> datetime:
        """When the window has room again: its oldest message's time plus the window."""
        times = self._messages[sub.subscription_id]
        oldest = times[0] if times else now
        return max(now, oldest + timedelta(seconds=sub.window_s))

    def open_digest(self, subscription_id: str) -> Delivery | None:
        found = self._digest.get(subscription_id)
        return self.by_id.get(found) if found else None

    def due(self, now: datetime) -> list[Delivery]:
        """Deliveries to act on now: queued and retrying ones due, digests due, and
        ``sending`` ones (only there after a restart: their outcome is unknown)."""
        found = (self.by_id[i] for i in self._open)
        return sorted((d for d in found
                       if d.state == "sending" or d.due_at is None or d.due_at <= now),
                      key=lambda d: (d.due_at or d.created_at, d.delivery_id))


def plan(book: Book, sub: Subscription, event: Event, notice: Notice, line: str,
         now: datetime) -> list[Delivery]:
    """The deliveries ``event`` makes or changes for ``sub`` (none when it had one
    already: a replayed event). ``line``: the event in one line, for a digest."""
    did = delivery_id(event.event_id, sub.subscription_id)
    if book.get(did) is not None:
        return []
    about = {"vehicle_id": event.vehicle_id, "province": event.province,
             "carrier": event.carrier, "severity": event.severity, "event_kind": event.kind}
    kind = sub.channel.kind
    quiet_end = None
    if sub.quiet_hours is not None and event.severity not in sub.quiet_hours.let_through:
        quiet_end = sub.quiet_hours.ends_after(now)
    if quiet_end is None and book.in_window(sub, now) < sub.max_messages:
        return [Delivery(delivery_id=did, subscription_id=sub.subscription_id, state="queued",
                         channel=kind, created_at=now, updated_at=now, due_at=now,
                         notice=replace(notice, notice_id=did), event_ids=[event.event_id],
                         **about)]
    digest = book.open_digest(sub.subscription_id)
    if digest is None:
        due = quiet_end or book.window_frees(sub, now)
        gid = digest_id(sub.subscription_id, now)
        digest = Delivery(
            delivery_id=gid, subscription_id=sub.subscription_id, state="held", channel=kind,
            created_at=now, updated_at=now, due_at=due, events=0,
            notice=Notice(notice_id=gid, subject="", lines=[], severity=event.severity,
                          items=0, kind="digest"))
    elif quiet_end is not None and digest.due_at is not None and quiet_end > digest.due_at:
        digest = replace(digest, due_at=quiet_end)
    digest = _with(digest, event, line, now)
    item = Delivery(delivery_id=did, subscription_id=sub.subscription_id, state="in_digest",
                    channel=kind, created_at=now, updated_at=now, digest_id=digest.delivery_id,
                    event_ids=[event.event_id], **about)
    return [item, digest]


_RANK = {"critical": 0, "warning": 1, "info": 2}


def _with(digest: Delivery, event: Event, line: str, now: datetime) -> Delivery:
    """``digest`` with ``event`` in it."""
    n = digest.events + 1
    old = digest.notice
    assert old is not None
    severity = min(old.severity, event.severity, key=_RANK.__getitem__)
    lines = old.lines + [line] if len(old.lines) < DIGEST_LINES else old.lines
    subject = f"{n} 条报警汇总 ({n} alerts)"
    notice = replace(old, subject=subject, lines=lines, severity=severity, items=n)
    ids = digest.event_ids + [event.event_id] if len(digest.event_ids) < DIGEST_IDS \
        else digest.event_ids
    return replace(digest, notice=notice, events=n, event_ids=ids, updated_at=now)


def digest_notice(digest: Delivery) -> Notice:
    """The digest's message as it goes: its lines, and how many more it does not list."""
    notice = digest.notice
    assert notice is not None
    more = digest.events - len(notice.lines)
    tail = [f"……另有 {more} 条 (and {more} more)"] if more > 0 else []
    return replace(notice, lines=notice.lines + tail)


# --- the lifecycle of one delivery ----------------------------------------------------------
def attempt(d: Delivery, now: datetime) -> Delivery:
    """Written before an attempt: a restart finding it knows the outcome is unknown."""
    return replace(d, state="sending", attempts=d.attempts + 1, updated_at=now)


def in_doubt(d: Delivery, now: datetime,
             resent: frozenset[str] = RESENT_IN_DOUBT) -> Delivery:
    """A ``sending`` delivery found at a restart: again, marked as a possible repeat, on a
    channel whose receiver can drop it (``resent``); else ``in_doubt``, not sent again."""
    assert d.notice is not None
    if d.channel not in resent:
        return replace(d, state="in_doubt", due_at=None, updated_at=now,
                       reason="the notifier stopped during an attempt: it may or may not "
                              "have arrived; not sent again (this channel cannot drop a "
                              "repeat)")
    return replace(d, state="retrying", due_at=now, updated_at=now,
                   notice=replace(d.notice, repeat=True),
                   reason="the notifier stopped during an attempt: sent again as a "
                          "possible repeat")


def succeeded(d: Delivery, now: datetime) -> Delivery:
    return replace(d, state="sent", sent_at=now, updated_at=now, due_at=None, reason=None)


def failed(d: Delivery, now: datetime, reason: str, *, retry: bool,
           max_attempts: int) -> Delivery:
    """After a failed attempt: again later (backoff), or given up."""
    if not retry or d.attempts >= max_attempts:
        why = reason if not retry else f"{reason} (after {d.attempts} attempts)"
        return replace(d, state="given_up", updated_at=now, due_at=None, reason=why)
    delay = min(RETRY_FIRST_S * 2 ** (d.attempts - 1), RETRY_MAX_S)
    return replace(d, state="retrying", updated_at=now, reason=reason,
                   due_at=now + timedelta(seconds=delay))


def released(digest: Delivery, now: datetime) -> Delivery:
    """A held digest whose time has come: queued, with its message final."""
    return replace(digest, state="queued", due_at=now, updated_at=now,
                   notice=digest_notice(digest))


_decode = msgspec.json.Decoder(Delivery)
encode = msgspec.json.Encoder().encode


def decode(value: bytes) -> Delivery:
    return _decode.decode(value)
