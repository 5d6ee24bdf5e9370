"""Desk users: the accounts of ``yrd.desk-users`` (:mod:`yrd_hazmat.accounts`: a role
over a province, the region or a carrier; managed with ``yrd-hazmat users`` and the
region's desk), over those of an optional start-up file.

``YRD_DESK_USERS`` names the file (a first administrator, a demo)::

    {"users": [{"name": "sh-duty", "jurisdiction": "SH", "role": "supervisor",
                "password": "pbkdf2_sha256$600000$<salt hex>$<hash hex>"}]}

``jurisdiction`` is one province (SH, JS, ZJ, AH), ``region`` (all four and trucks
outside them) or ``carrier`` (with ``carrier``: that carrier's own trucks only); ``role``
defaults to ``duty`` for a province, ``region`` and ``carrier`` for the others (a
read-only account: ``readonly``). ``yrd-hazmat desk-user NAME --jurisdiction SH`` prints
an entry with the password it reads hashed (PBKDF2-SHA256, 600,000 iterations, a random
salt).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Literal

import msgspec

from ..accounts import Account, Accounts, Role
from ..core.models import PROVINCES

REGION = "region"
CARRIER = "carrier"
Jurisdiction = Literal["SH", "JS", "ZJ", "AH", "region", "carrier"]
ITERATIONS = 600_000


class User(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    jurisdiction: Jurisdiction
    password: str
    carrier: str | None = None
    """jurisdiction ``carrier``: the carrier (as the vehicle register names it) whose
    trucks, alerts, incidents and monthly assessment the account sees (:mod:`.access`)."""
    role: Role | None = None
    """Unset: duty for a province, region for the region, carrier for a carrier."""

    def __post_init__(self) -> None:
        if (self.jurisdiction == CARRIER) != bool(self.carrier):
            raise ValueError(f"desk user {self.name!r}: a carrier's account names its carrier, "
                             "and only a carrier's account does")

    @property
    def provinces(self) -> tuple[str | None, ...]:
        """The provinces this user sees (None: trucks outside the region; a carrier's
        account: none)."""
        if self.jurisdiction == CARRIER:
            return ()
        return (*PROVINCES, None) if self.jurisdiction == REGION else (self.jurisdiction,)

    def sees(self, province: str | None) -> bool:
        return province in self.provinces

    def may(self, capability: str) -> bool:
        return self.account().may(capability)

    def account(self) -> Account:
        """The file's entry as an account (what the desk works with)."""
        j = self.jurisdiction
        role = self.role or (j if j in (REGION, CARRIER) else "duty")
        return Account(name=self.name, role=role, password=self.password,
                       province=j if j in PROVINCES else None,
                       carrier=self.carrier if j == CARRIER else None)


class UsersFile(msgspec.Struct, frozen=True):
    users: list[User]


def hash_password(password: str, iterations: int = ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        computed = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(salt),
                                       int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed.hex(), digest)


class Users:
    """The accounts a desk signs in: those of ``yrd.desk-users`` (:meth:`apply`, a
    follower's) over the start-up file's. A disabled or removed account is no one: its
    sessions end at their next request."""

    def __init__(self, users: list[User | Account] = ()) -> None:
        accounts = [u.account() if isinstance(u, User) else u for u in users]
        self._file = {a.name: a for a in accounts}
        self.topic = Accounts()
        self._decoy = _decoy(max((_iterations(a.password) for a in accounts),
                                 default=ITERATIONS))

    @classmethod
    def load(cls, path: str | Path | None) -> "Users":
        if not path:
            return cls()
        return cls(msgspec.json.decode(Path(path).read_bytes(), type=UsersFile).users)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        self.topic.apply(key, value)

    def account(self, name: str) -> Account | None:
        """The account of that name, enabled or not."""
        return self.topic.get(name) or self._file.get(name)

    def get(self, name: str) -> Account | None:
        """The account of that name if it may sign in (not disabled)."""
        found = self.account(name)
        return found if found is not None and not found.disabled else None

    def all(self) -> list[Account]:
        merged = self._file | {a.name: a for a in self.topic.all()}
        return [merged[name] for name in sorted(merged)]

    def authenticate(self, name: str, password: str) -> Account | None:
        """The account, if the password is its. An unknown name costs the same hash (a decoy
        with the users' iteration count), so the answer's time does not tell whether the
        name exists. Slow on purpose: call it off the event loop."""
        user = self.get(name)
        ok = verify_password(password, user.password if user is not None else self._decoy)
        return user if ok and user is not None else None


def _iterations(stored: str) -> int:
    """A stored hash's iteration count (0 when unreadable: verify_password refuses it)."""
    try:
        return int(stored.split("$")[1])
    except (IndexError, ValueError):
        return 0


def _decoy(iterations: int) -> str:
    """A stored hash no password matches, costing ``iterations`` to check."""
    return f"pbkdf2_sha256${iterations}${secrets.token_hex(16)}${secrets.token_hex(32)}"
