"""Notifications on the desk (通知): what the notifier told whom, and the subscriptions.

- ``GET /api/notifications?limit=``: the latest deliveries (``yrd.notifications``,
  compacted: each delivery's latest state), newest first, of the user's jurisdiction (a
  province: its alerts'; a carrier: its trucks'; the region: all);
- ``GET /api/subscriptions``: the subscriptions the user may manage, channels masked
  (:meth:`~yrd_hazmat.notify.channels._Channel.masked`: secrets, URL tokens and keys,
  header values never leave the desk);
- ``PUT /api/subscriptions/{subscription_id}``: create or replace one (a
  :class:`~yrd_hazmat.notify.subscriptions.Subscription` as JSON; 400 with msgspec's
  reason); a channel field sent back as it was shown (masked) keeps its stored value, so
  a form can change the name without knowing the secret;
- ``DELETE /api/subscriptions/{subscription_id}``: a tombstone.

Who manages what (:func:`may_manage`, until roles come): the region's accounts every
subscription; a province's accounts those naming their province only; a carrier's account
those naming its carrier only. The desk publishes on ``yrd.subscriptions`` (key: the id);
the notifier follows it.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from ..notify.deliveries import Delivery
from ..notify.deliveries import decode as decode_delivery
from ..notify.subscriptions import Subscription, Subscriptions
from ..notify.subscriptions import encode as encode_subscription
from .access import USER
from .audit import note
from .bodies import http_error
from .bodies import _body as read_body
from .users import CARRIER, REGION, User

KEPT = 20_000
"""Deliveries the desk keeps in memory (the most recently changed)."""
LIST_DEFAULT = 200
LIST_MAX = 1000
Publish = Callable[[str, bytes, bytes | None], Awaitable[None]]
"""Produce (topic, key, value): the desk's producer."""


class Deliveries:
    """The latest state of the deliveries (a follower's apply on ``yrd.notifications``),
    at most :data:`KEPT`: the ones whose latest record came longest ago are forgotten
    first."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._by_id: dict[str, Delivery] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            if key is not None:
                self._by_id.pop(key.decode("utf-8", "replace"), None)
            return
        try:
            delivery = decode_delivery(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        self._by_id.pop(delivery.delivery_id, None)  # re-inserted: the newest last
        self._by_id[delivery.delivery_id] = delivery
        if len(self._by_id) > self.kept:  # the one changed longest ago: the first
            del self._by_id[next(iter(self._by_id))]

    def latest(self, wanted: Callable[[Delivery], bool], limit: int) -> list[Delivery]:
        return heapq.nlargest(limit, (d for d in self._by_id.values() if wanted(d)),
                              key=lambda d: d.updated_at)


def sees_delivery(user: User, delivery: Delivery) -> bool:
    """A delivery of the user's jurisdiction: the region all; a province its alerts'; a
    carrier its trucks'."""
    if user.jurisdiction == REGION:
        return True
    if user.jurisdiction == CARRIER:
        return delivery.carrier is not None and delivery.carrier == user.carrier
    return delivery.province == user.jurisdiction


def may_manage(user: User, sub: Subscription) -> bool:
    """Whether ``user`` may see, replace and delete ``sub`` (and create it so)."""
    if user.jurisdiction == REGION:
        return True
    if user.jurisdiction == CARRIER:
        return sub.carriers == [user.carrier]
    return bool(sub.provinces) and set(sub.provinces) <= {user.jurisdiction}


def delivery_view(d: Delivery) -> dict[str, Any]:
    return {"delivery_id": d.delivery_id, "subscription_id": d.subscription_id,
            "state": d.state, "channel": d.channel, "attempts": d.attempts,
            "reason": d.reason, "sent_at": d.sent_at, "updated_at": d.updated_at,
            "created_at": d.created_at, "subject": d.notice.subject if d.notice else None,
            "events": d.events, "vehicle_id": d.vehicle_id, "province": d.province,
            "carrier": d.carrier, "severity": d.severity, "event_kind": d.event_kind}


def subscription_view(sub: Subscription) -> dict[str, Any]:
    """The subscription as a desk may show it: its channel masked."""
    return msgspec.to_builtins(sub) | {"channel": sub.channel.masked()}


def with_kept_secrets(doc: dict[str, Any], before: Subscription | None) -> dict[str, Any]:
    """``doc`` (a subscription as sent) with each channel field sent back as shown (its
    masked value) replaced by the stored one."""
    channel = doc.get("channel")
    if before is None or not isinstance(channel, dict) \
            or channel.get("kind") != before.channel.kind:
        return doc
    shown, stored = before.channel.masked(), msgspec.to_builtins(before.channel)
    kept = {name: stored[name] if name in stored and value == shown.get(name)
            and value != stored[name] else value for name, value in channel.items()}
    return doc | {"channel": kept}


def subscription_of(data: bytes, subscription_id: str, owner: str,
                    before: Subscription | None) -> Subscription:
    """The subscription in a request's body, its id the path's, its owner the user;
    ValueError saying what is wrong."""
    try:
        doc = msgspec.json.decode(data)
    except msgspec.DecodeError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(doc, dict):
        raise ValueError("the body is not a JSON object")
    if doc.get("subscription_id", subscription_id) != subscription_id:
        raise ValueError("subscription_id differs from the path's")
    doc = with_kept_secrets(doc, before) | {"subscription_id": subscription_id,
                                            "owner": owner}
    try:
        return msgspec.convert(doc, Subscription)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid subscription: {exc}") from None


class Notifications:
    """The 通知 view's handlers over the desk's followers of the two topics."""

    def __init__(self, topic_subscriptions: str, publish: Publish) -> None:
        self.topic = topic_subscriptions
        self.publish = publish
        self.deliveries = Deliveries()
        self.subscriptions = Subscriptions()

    async def list_deliveries(self, request: web.Request) -> web.Response:
        user: User = request[USER]
        try:
            limit = int(request.query.get("limit", LIST_DEFAULT))
        except ValueError:
            raise http_error(web.HTTPBadRequest, "limit: a number") from None
        if not 1 <= limit <= LIST_MAX:
            raise http_error(web.HTTPBadRequest, f"limit: 1 to {LIST_MAX}")
        found = self.deliveries.latest(lambda d: sees_delivery(user, d), limit)
        return _json({"items": [delivery_view(d) for d in found]})

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        user: User = request[USER]
        return _json({"items": [subscription_view(s) for s in self.subscriptions.all()
                                if may_manage(user, s)]})

    def _mine(self, user: User, subscription_id: str) -> Subscription | None:
        """The stored subscription if the user may manage it; 404 if another's (its
        existence is not told), None if there is none."""
        before = self.subscriptions.get(subscription_id)
        if before is not None and not may_manage(user, before):
            raise http_error(web.HTTPNotFound, "no such subscription")
        return before

    async def put_subscription(self, request: web.Request) -> web.Response:
        user: User = request[USER]
        subscription_id = request.match_info["subscription_id"]
        before = self._mine(user, subscription_id)
        try:
            sub = subscription_of(await read_body(request), subscription_id, user.name, before)
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        if not may_manage(user, sub):
            raise http_error(web.HTTPForbidden, _yours(user))
        value = encode_subscription(sub)
        await self.publish(self.topic, subscription_id.encode(), value)
        self.subscriptions.apply(subscription_id.encode(), value)
        note(request, replaced=before is not None, channel=sub.channel.kind)
        return _json(subscription_view(sub), status=200 if before is not None else 201)

    async def delete_subscription(self, request: web.Request) -> web.Response:
        user: User = request[USER]
        subscription_id = request.match_info["subscription_id"]
        if self._mine(user, subscription_id) is None:
            raise http_error(web.HTTPNotFound, "no such subscription")
        await self.publish(self.topic, subscription_id.encode(), None)
        self.subscriptions.apply(subscription_id.encode(), None)
        return _json({"deleted": subscription_id})


def _yours(user: User) -> str:
    if user.jurisdiction == CARRIER:
        return f"a carrier's account manages subscriptions with carriers [{user.carrier}] only"
    return (f"a {user.jurisdiction} account manages subscriptions whose provinces are "
            f"{user.jurisdiction} only (not empty: empty means every province)")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), status=status,
                        content_type="application/json")
