"""Who may call which route of the desk, and what each user sees: one table to audit.

:data:`ROUTES` names every route of the API with who may call it:

- :data:`EVERYONE`: every signed-in user; a police account answered for its jurisdiction
  (its province, or the region), a carrier's account for **its own trucks** only (the
  vehicle register's carrier of the plate is the account's carrier): another carrier's
  truck or incident is answered 404, like one that does not exist;
- :data:`POLICE`: police accounts only (a carrier's account: 403).

A state-changing route also names the capability its caller's role needs
(:data:`CAPABILITIES`, :mod:`yrd_hazmat.accounts`: a read-only account may call none of
them; commands need ``command``, subscriptions ``manage_subscriptions``, accounts
``manage_users``...). A route missing from the table is refused to carriers (default
deny); the desk's tests check that every route of the application is in it, so a new
route is decided when it is added. Which actions on an incident each role may send is
:func:`action_refusal`.

:class:`Scope` is the visibility rule the handlers apply: trucks, alerts and incident
records of the user's jurisdiction, or of the carrier's trucks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from aiohttp import web

from ..core.models import PROVINCES, Alert, IncidentLog
from ..accounts import Account
from .users import CARRIER

User = Account
USER = web.RequestKey("user", Account)
"""The signed-in user of a request (set by the desk's authentication)."""

Who = Literal["everyone", "police"]
EVERYONE: Who = "everyone"
POLICE: Who = "police"

ROUTES: dict[tuple[str, str], Who] = {
    ("POST", "/api/login"): EVERYONE,
    ("POST", "/api/logout"): EVERYONE,
    ("GET", "/api/me"): EVERYONE,
    # trucks: a carrier's own; commands, pictures and the lower platforms are the police's
    ("GET", "/api/trucks"): EVERYONE,
    ("GET", "/api/trucks/{vehicle_id}"): EVERYONE,
    ("GET", "/api/trucks/{vehicle_id}/track"): EVERYONE,
    ("POST", "/api/trucks/{vehicle_id}/commands"): POLICE,
    ("GET", "/api/trucks/{vehicle_id}/commands"): POLICE,
    ("GET", "/api/trucks/{vehicle_id}/platform-requests"): POLICE,
    ("POST", "/api/trucks/{vehicle_id}/platform-requests"): POLICE,
    ("GET", "/api/media/{media_id}"): POLICE,
    # alerts and incidents: a carrier's own trucks'
    ("GET", "/api/alerts/open"): EVERYONE,
    ("GET", "/api/history"): EVERYONE,
    ("GET", "/api/feed"): EVERYONE,
    ("GET", "/api/incidents"): EVERYONE,
    ("GET", "/api/incidents/{incident_id}"): EVERYONE,
    ("POST", "/api/incidents/{incident_id}/actions"): EVERYONE,  # kinds: action_refusal
    # a duty shift's tools
    ("GET", "/api/triage"): POLICE,
    ("GET", "/api/handover"): POLICE,
    ("GET", "/api/region"): POLICE,
    ("GET", "/api/resources"): POLICE,
    ("GET", "/api/incidents/{incident_id}/tell-exposed"): POLICE,
    ("POST", "/api/incidents/{incident_id}/tell-exposed"): POLICE,
    ("GET", "/api/incidents/{incident_id}/supervision"): POLICE,
    ("POST", "/api/incidents/{incident_id}/supervision"): POLICE,
    # the JT/T 809 chain (platform names are carriers' names: not for another carrier)
    ("GET", "/api/links"): POLICE,
    ("GET", "/api/platform-requests"): POLICE,
    ("POST", "/api/platforms/{access_code}/inspections"): POLICE,
    ("GET", "/api/uplink/requests"): POLICE,  # and the region's only (the handler)
    ("POST", "/api/uplink/requests/{request_id}/answer"): POLICE,
    # the monthly assessment: a carrier's account its own row
    ("GET", "/api/assessments"): EVERYONE,
    ("GET", "/api/assessments/{month}"): EVERYONE,
    # notifications: the user's jurisdiction's deliveries, the subscriptions it may manage
    ("GET", "/api/notifications"): EVERYONE,
    ("GET", "/api/subscriptions"): EVERYONE,
    ("PUT", "/api/subscriptions/{subscription_id}"): EVERYONE,
    ("DELETE", "/api/subscriptions/{subscription_id}"): EVERYONE,
    # the map's layers: the same for every user
    ("GET", "/api/geo/{layer}"): EVERYONE,
    ("GET", "/api/zones"): EVERYONE,
    # accounts: the region's administrators
    ("GET", "/api/accounts"): POLICE,
    ("PUT", "/api/accounts/{name}"): POLICE,
    ("DELETE", "/api/accounts/{name}"): POLICE,
    # the page
    ("GET", "/"): EVERYONE,
    ("GET", "/static/{path}"): EVERYONE,
}
"""(method, route) -> who may call it. HEAD is GET."""

CAPABILITIES: dict[tuple[str, str], str] = {
    ("POST", "/api/trucks/{vehicle_id}/commands"): "command",
    ("POST", "/api/trucks/{vehicle_id}/platform-requests"): "command",
    ("POST", "/api/incidents/{incident_id}/tell-exposed"): "act",
    ("POST", "/api/incidents/{incident_id}/supervision"): "command",
    ("POST", "/api/platforms/{access_code}/inspections"): "command",
    ("POST", "/api/uplink/requests/{request_id}/answer"): "answer_uplink",
    ("PUT", "/api/subscriptions/{subscription_id}"): "manage_subscriptions",
    ("DELETE", "/api/subscriptions/{subscription_id}"): "manage_subscriptions",
    ("GET", "/api/accounts"): "manage_users",
    ("PUT", "/api/accounts/{name}"): "manage_users",
    ("DELETE", "/api/accounts/{name}"): "manage_users",
}
"""(method, route) -> the capability its caller's role needs beyond seeing (the rest:
``view``; an incident's actions: :func:`action_refusal` per kind)."""

CARRIER_KINDS = frozenset({"ack", "explain", "appeal"})
"""What a carrier's account may record on its trucks' incidents."""
CARRIER_ONLY_KINDS = frozenset({"explain", "appeal"})
"""What only a carrier may send: its handling note and its appeal."""


def who_may(method: str, route: str) -> Who | None:
    """Who may call the route (None: not in the table)."""
    return ROUTES.get(("GET" if method == "HEAD" else method, route))


def call_refusal(user: User, method: str, route: str) -> str | None:
    """Why ``user`` may not call the route at all (None: it may): a carrier only a route
    of the table open to everyone; every role only what its capabilities allow."""
    if user.jurisdiction == CARRIER and who_may(method, route) != EVERYONE:
        return "not for a carrier's account: it sees its own trucks, their alerts and incidents"
    needed = CAPABILITIES.get(("GET" if method == "HEAD" else method, route), "view")
    if not user.may(needed):
        return f"a {user.role} account may not do this: {WHO_MAY.get(needed, needed)}"
    return None


WHO_MAY = {"act": "duty officers, supervisors and the region handle incidents",
           "command": "duty officers, supervisors and the region send commands and requests",
           "manage_subscriptions": "supervisors and the region manage subscriptions",
           "manage_users": "the region's administrators manage accounts",
           "answer_uplink": "the region's desk answers the national platform"}
"""What a refusal says: who may do it."""


def may_call(user: User, method: str, route: str) -> bool:
    return call_refusal(user, method, route) is None


DECISION_KINDS = frozenset({"appeal_accepted", "appeal_rejected"})


def action_refusal(user: User, kind: str) -> str | None:
    """Why ``user`` may not send an action of ``kind`` (None: it may): a carrier
    acknowledges, explains and appeals; the police handle (``act``) and decide appeals
    (``decide_appeal``: supervisors and the region); a read-only account does nothing."""
    if user.jurisdiction == CARRIER:
        if kind not in CARRIER_KINDS or not user.may("explain"):
            return f"a carrier's account may acknowledge, explain or appeal, not {kind}"
        return None
    if kind in CARRIER_ONLY_KINDS:
        return f"{kind} is the carrier's: the police decide appeals, they do not make them"
    if kind in DECISION_KINDS:
        if not user.may("decide_appeal"):
            return f"a {user.role} account may not decide appeals (a supervisor's or the region's)"
        return None
    if not user.may("act"):
        return f"a {user.role} account may not act on incidents"
    return None


ALL_PROVINCES: tuple[str | None, ...] = (*PROVINCES, None)


class Scope:
    """What ``user`` sees: a police account its jurisdiction's provinces; a carrier's
    account the trucks the register gives its carrier (``carrier_of``: plate -> carrier),
    wherever they are."""

    def __init__(self, user: User, carrier_of: Callable[[str], str | None]) -> None:
        self.user = user
        self._carrier_of = carrier_of
        self.carrier = user.carrier if user.jurisdiction == CARRIER else None

    @property
    def provinces(self) -> tuple[str | None, ...]:
        """The provinces to read from (a carrier: all, its trucks picked afterwards)."""
        return ALL_PROVINCES if self.carrier is not None else self.user.provinces

    def sees_vehicle(self, vehicle_id: str, province: str | None) -> bool:
        if self.carrier is not None:
            return self._carrier_of(vehicle_id) == self.carrier
        return self.user.sees(province)

    def sees_alert(self, alert: Alert) -> bool:
        return self.sees_vehicle(alert.vehicle_id, alert.province)

    def sees_record(self, record: IncidentLog) -> bool:
        return self.sees_vehicle(record.vehicle_id, record.home)
