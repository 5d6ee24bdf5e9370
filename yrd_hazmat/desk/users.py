"""Desk users and their jurisdiction, from a JSON file with hashed passwords.

``YRD_DESK_USERS`` names the file::

    {"users": [{"name": "sh-duty", "jurisdiction": "SH",
                "password": "pbkdf2_sha256$600000$<salt hex>$<hash hex>"}]}

``jurisdiction`` is one province (SH, JS, ZJ, AH), ``region`` (all four and trucks
outside them) or ``carrier`` (with ``carrier``: that carrier's own trucks only).
``yrd-hazmat desk-user NAME --jurisdiction SH`` prints an entry with the password it
reads hashed (PBKDF2-SHA256, 600,000 iterations, a random salt).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Literal

import msgspec

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
    def __init__(self, users: list[User]) -> None:
        self._by_name = {u.name: u for u in users}
        self._decoy = _decoy(max((_iterations(u.password) for u in users), default=ITERATIONS))

    @classmethod
    def load(cls, path: str | Path) -> "Users":
        return cls(msgspec.json.decode(Path(path).read_bytes(), type=UsersFile).users)

    def get(self, name: str) -> User | None:
        return self._by_name.get(name)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user, if the password is theirs. An unknown name costs the same hash (a decoy
        with the users' iteration count), so the answer's time does not tell whether the
        name exists. Slow on purpose: call it off the event loop."""
        user = self._by_name.get(name)
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
