"""What the worker keeps per vehicle from the permits topic, and turning it into a status."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import msgspec

from ..codec import BAD_KEY, TOO_LARGE, Rejection, key_text
from ..geo.jurisdiction import JurisdictionIndex
from .model import CompiledPermit, parse_permit
from .status import PermitStatus

log = logging.getLogger(__name__)


class PermitEntry(msgspec.Struct, frozen=True):
    """The latest valid permit record of a vehicle and, if revoked since, when (record time)."""

    raw: bytes
    revoked_at_ms: int | None = None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(PermitEntry)


def dump_entry(entry: PermitEntry) -> bytes:
    return _encoder.encode(entry)


def load_entry(data: bytes) -> PermitEntry:
    return _decoder.decode(data)


_LATEST_MS = 2**63 - 1


def entry_size(raw: bytes) -> int:
    """Bytes of the table value (the changelog record's value) that holds ``raw``, at its
    largest: once revoked."""
    return len(dump_entry(PermitEntry(raw, revoked_at_ms=_LATEST_MS)))


def entry_for(
    key: bytes | None, value: bytes, places: JurisdictionIndex, max_bytes: int
) -> bytes | Rejection:
    """The table value to store for one non-null permits record, or why it is not stored.

    The size is checked first (a huge record is not even decoded) and again on
    the value the table's changelog will carry, so nothing stored can exceed
    ``max_bytes``, which the settings keep under the broker's record limit.
    """
    if len(value) > max_bytes:
        return Rejection(TOO_LARGE, f"value is {len(value)} bytes, limit {max_bytes}")
    if key is None:
        return Rejection(BAD_KEY, "record has no key; key permits by vehicle_id")
    parsed = parse_permit(value, places, key=key_text(key))
    if isinstance(parsed, Rejection):
        return parsed
    COMPILED.put(value, parsed)  # the pings path finds it compiled (milliseconds per route)
    if entry_size(value) > max_bytes:
        return Rejection(TOO_LARGE, f"stored, the permit would be {entry_size(value)} bytes, "
                                    f"limit {max_bytes}")
    return dump_entry(PermitEntry(value))


def revoked_entry(stored: bytes | None, at_ms: int) -> bytes | None:
    """The table value after a tombstone at record time ``at_ms``, or None when it changes
    nothing: no permit stored, or one already revoked (the first revocation stands, so a
    tombstone delivered again moves nothing)."""
    if stored is None:
        return None
    entry = load_entry(stored)
    if entry.revoked_at_ms is not None:
        return None
    return dump_entry(PermitEntry(entry.raw, at_ms))


_UNSEEN: Any = object()


class CompiledPermits:
    """Compiled permits by their raw record, shared in the process: the permits agent
    compiles a permit when it arrives (validation does), and the pings path takes it from
    here instead of compiling the route again on the vehicle's next ping."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._items: OrderedDict[bytes, CompiledPermit] = OrderedDict()

    def get(self, raw: bytes) -> CompiledPermit | None:
        permit = self._items.get(raw)
        if permit is not None:
            self._items.move_to_end(raw)
        return permit

    def put(self, raw: bytes, permit: CompiledPermit) -> None:
        self._items[raw] = permit
        self._items.move_to_end(raw)
        if len(self._items) > self.size:
            self._items.popitem(last=False)


COMPILED = CompiledPermits()


class PermitCache:
    """Permit statuses by stored table value, so a route is compiled once, not per batch."""

    def __init__(self, places: JurisdictionIndex, size: int = 50_000) -> None:
        self.places = places
        self.size = size
        self._statuses: dict[bytes, PermitStatus | None] = {}

    def status(self, stored: bytes | None) -> PermitStatus | None:
        """The status of a stored :class:`PermitEntry` (None when nothing is stored)."""
        if stored is None:
            return None
        status = self._statuses.get(stored, _UNSEEN)  # the table hands back the same bytes
        if status is _UNSEEN:                          # object, whose hash Python keeps
            status = self._status(stored)
            if len(self._statuses) >= self.size:
                self._statuses.clear()
            self._statuses[stored] = status
        return status

    def _status(self, stored: bytes) -> PermitStatus | None:
        entry = load_entry(stored)
        permit = COMPILED.get(entry.raw)
        if permit is None:  # e.g. restored from the changelog after a restart
            parsed = parse_permit(entry.raw, self.places)
            if not isinstance(parsed, CompiledPermit):  # stored only after validation
                # only if a newer version checks more strictly than the one that stored it
                log.warning("a stored permit no longer validates (%s): %s", parsed.reason,
                            parsed.error)
                return None
            permit = parsed
            COMPILED.put(entry.raw, permit)
        return PermitStatus(permit=permit, revoked_at_ms=entry.revoked_at_ms)
