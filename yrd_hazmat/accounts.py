"""Desk accounts and what each role may do, kept on ``yrd.desk-users`` (compacted, keyed by
the account's name, a tombstone removes it) and managed with ``yrd-hazmat users`` or the
region's desk, never by editing a file.

Roles, each over a scope (a province, the region, or a carrier):

- ``duty``: a province's duty officer: sees the province, handles its alerts and incidents
  (ack, assign, note, dispatch...), sends commands and platform requests;
- ``supervisor``: the same, and decides carriers' appeals and manages the province's
  subscriptions;
- ``region``: the regional joint office: everything, everywhere, and the accounts;
- ``carrier``: a carrier's monitoring staff: its own trucks only; acknowledges, explains
  and appeals their alerts, manages its own subscriptions;
- ``readonly``: sees a province (or the region), does nothing.

A password is kept as a PBKDF2-SHA256 hash (600,000 iterations, a random salt); a disabled
account cannot log in and its sessions end at their next request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from .core.models import PROVINCES
from .tables import CompactedTable

Role = Literal["duty", "supervisor", "region", "carrier", "readonly"]
ROLES: tuple[Role, ...] = ("duty", "supervisor", "region", "carrier", "readonly")
Capability = Literal["view", "act", "command", "explain", "decide_appeal",
                     "manage_subscriptions", "manage_users", "answer_uplink"]
CAPABILITIES: dict[Role, frozenset[str]] = {
    "duty": frozenset({"view", "act", "command"}),
    "supervisor": frozenset({"view", "act", "command", "decide_appeal",
                             "manage_subscriptions"}),
    "region": frozenset({"view", "act", "command", "decide_appeal", "manage_subscriptions",
                         "manage_users", "answer_uplink"}),
    "carrier": frozenset({"view", "explain", "manage_subscriptions"}),
    "readonly": frozenset({"view"}),
}
"""What each role may do (the desk checks every request against it)."""


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """A desk account: who, in which role over which scope, and its password's hash."""

    name: str
    role: Role
    province: Literal["SH", "JS", "ZJ", "AH"] | None = None
    """The province of a duty officer, a supervisor or a read-only account (None for a
    read-only account: the whole region)."""
    carrier: str | None = None
    """A carrier account's carrier, as the vehicle register names it."""
    password: str
    """``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``."""
    disabled: bool = False
    updated_by: str | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        problem = scope_problem(self.role, self.province, self.carrier)
        if problem:
            raise ValueError(f"account {self.name!r}: {problem}")

    def __repr__(self) -> str:
        return (f"Account({self.name!r}, role={self.role!r}, province={self.province!r}, "
                f"carrier={self.carrier!r}, disabled={self.disabled})")

    def sees(self, province: str | None) -> bool:
        """Whether trucks in ``province`` (None: outside the region) are its to see."""
        return province in self.provinces

    def may(self, capability: str) -> bool:
        return not self.disabled and capability in CAPABILITIES[self.role]

    @property
    def jurisdiction(self) -> str:
        """The scope in the desk's terms: a province, ``region`` or ``carrier``."""
        if self.role == "carrier":
            return "carrier"
        return self.province or "region"

    @property
    def provinces(self) -> tuple[str | None, ...]:
        """The provinces whose trucks it sees (None: trucks outside the region); a
        carrier's: none (it sees its trucks wherever they are)."""
        if self.role == "carrier":
            return ()
        return (self.province,) if self.province else (*PROVINCES, None)


def scope_problem(role: str, province: str | None, carrier: str | None) -> str | None:
    """Why a role cannot have this scope, or None."""
    if role == "carrier":
        if not carrier or province:
            return "a carrier account names its carrier, and no province"
        return None
    if carrier:
        return "only a carrier account names a carrier"
    if role in ("duty", "supervisor") and not province:
        return f"a {role} account names its province"
    if role == "region" and province:
        return "a region account has no province"
    return None


_decode = msgspec.json.Decoder(Account)
encode = msgspec.json.Encoder().encode


def decode(value: bytes) -> Account:
    return _decode.decode(value)


class Accounts(CompactedTable[Account]):
    """The accounts in force: those of ``yrd.desk-users`` (a follower's apply) over those
    of the start-up file (``YRD_DESK_USERS``, if any)."""

    def __init__(self, accounts: list[Account] = ()) -> None:
        super().__init__(decode, lambda a: a.name, accounts)
