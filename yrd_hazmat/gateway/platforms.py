"""The lower platforms the gateway serves as upper platform (JT/T 809), each with its own
access code, credentials, cipher constants and header edition.

They are configured on the compacted topic ``yrd.platforms`` (key: the access code,
MSG_GNSSCENTERID, in decimal; value: a :class:`Platform`; a null value removes it), which
the gateway follows: a platform added there can log in at once, without a restart. The
lower platform of the older settings (``YRD_JT809_USER_ID``, ``YRD_JT809_PASSWORD``,
``YRD_JT809_ACCESS_CODE``, ``YRD_JT809_M1``/``IA1``/``IC1``, ``YRD_JT809_EDITION``) is one
more platform, which a record of the topic with its access code overrides.

:func:`platform_record` makes a record of the topic (what a CLI writes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from ..config import Settings
from ..core.models import Province
from ..jt809.frame import Cipher

log = logging.getLogger(__name__)

UInt32 = Annotated[int, Meta(ge=0, le=0xFFFFFFFF)]


class Platform(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A lower platform allowed on the JT/T 809 link (compacted topic ``yrd.platforms``,
    key = its access code in decimal). It logs in with UP_CONNECT_REQ 0x1001: USERID and
    PASSWORD, its access code in every header (MSG_GNSSCENTERID) and, in 2019, in the
    login too. Its frames may be encrypted with the standard's simple cipher (M1, IA1,
    IC1, agreed with it; all 0: no encryption). The password and the constants are
    secrets: restrict who may read the topic."""

    access_code: Annotated[UInt32, Meta(description="MSG_GNSSCENTERID, the key")]
    name: Annotated[str, Meta(min_length=1, max_length=64,
                              description="what the desk and the metrics call it")]
    user_id: Annotated[UInt32, Meta(description="USERID of its UP_CONNECT_REQ")]
    password: Annotated[str, Meta(max_length=8, description="PASSWORD (8 bytes at most)")]
    m1: UInt32 = 0
    ia1: UInt32 = 0
    ic1: UInt32 = 0
    edition: Annotated[Literal[2011, 2019], Meta(
        description="the JT/T 809 edition of its headers and bodies")] = 2011
    enabled: Annotated[bool, Meta(description="false: its logins are refused")] = True
    addresses: Annotated[list[str], Meta(
        description="source addresses it may log in from (UP_CONNECT_RSP 'IP address "
                    "incorrect' from any other); empty: any")] = []
    province: Annotated[Province | None, Meta(
        description="the province it reports for: the jurisdiction of its alarms")] = None

    @property
    def cipher(self) -> Cipher | None:
        """Its cipher, or None when it has no constants (frames sent unencrypted)."""
        if not (self.m1 or self.ia1 or self.ic1):
            return None
        return Cipher(self.m1, self.ia1, self.ic1)

    @property
    def label(self) -> str:
        """Its label in the metrics: the access code."""
        return str(self.access_code)

    def __repr__(self) -> str:  # the password and the constants never print
        return (f"Platform(access_code={self.access_code}, name={self.name!r}, "
                f"user_id={self.user_id}, edition={self.edition}, enabled={self.enabled})")

    __str__ = __repr__


_decoder = msgspec.json.Decoder(Platform)


def platform_record(*, access_code: int, name: str, user_id: int, password: str,
                    m1: int = 0, ia1: int = 0, ic1: int = 0, edition: int = 2011,
                    enabled: bool = True, addresses: list[str] | None = None,
                    province: str | None = None) -> tuple[bytes, bytes]:
    """(key, value) of a ``yrd.platforms`` record (ValueError for a platform the topic
    would not take: a password over 8 bytes, an edition but 2011 or 2019...)."""
    fields = {"access_code": access_code, "name": name, "user_id": user_id,
              "password": password, "m1": m1, "ia1": ia1, "ic1": ic1, "edition": edition,
              "enabled": enabled, "addresses": addresses or [], "province": province}
    try:
        platform = msgspec.convert(fields, Platform)
    except msgspec.ValidationError as exc:
        raise ValueError(f"platform {access_code}: {exc}") from None
    if len(password.encode("gbk", errors="replace")) > 8:
        raise ValueError(f"platform {access_code}: PASSWORD is 8 bytes at most")
    return str(access_code).encode(), msgspec.json.encode(platform)


def from_settings(settings: Settings) -> Platform | None:
    """The lower platform of the ``YRD_JT809_*`` settings (None without a user id)."""
    if not settings.jt809_user_id:
        return None
    return Platform(access_code=settings.jt809_access_code, name="settings",
                    user_id=settings.jt809_user_id,
                    password=settings.jt809_password.get_secret_value(),
                    m1=settings.jt809_m1, ia1=settings.jt809_ia1, ic1=settings.jt809_ic1,
                    edition=settings.jt809_edition)


class Platforms(Mapping[int, Platform]):
    """Access code -> its platform: the topic's records over the settings' one."""

    def __init__(self, fallback: Platform | None = None) -> None:
        self._fallback = {fallback.access_code: fallback} if fallback is not None else {}
        self._records: dict[int, Platform] = {}

    def __getitem__(self, access_code: int) -> Platform:
        found = self._records.get(access_code)
        if found is None:
            return self._fallback[access_code]
        return found

    def __iter__(self) -> Iterator[int]:
        return iter(self._fallback.keys() | self._records.keys())

    def __len__(self) -> int:
        return len(self._fallback.keys() | self._records.keys())

    def put(self, platform: Platform) -> None:
        self._records[platform.access_code] = platform

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of ``yrd.platforms`` (a null value: removed; an unreadable one is
        logged and skipped, the platform keeping its previous record)."""
        if key is None:
            return
        try:
            access_code = int(key)
        except ValueError:
            log.warning("yrd.platforms: key %r is not an access code", key[:32])
            return
        if value is None:
            self._records.pop(access_code, None)
            return
        try:
            platform = _decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("yrd.platforms: unreadable record of %s: %s", access_code, exc)
            return
        if platform.access_code != access_code:
            log.warning("yrd.platforms: record of %s names access code %s", access_code,
                        platform.access_code)
            return
        self.put(platform)
