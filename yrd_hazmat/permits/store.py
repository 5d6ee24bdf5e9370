"""What the worker keeps per vehicle from the permits topic, and turning it into a status."""

from __future__ import annotations

from collections import OrderedDict

import msgspec

from ..geo.jurisdiction import JurisdictionIndex
from .model import CompiledPermit, parse_permit
from .status import PermitStatus


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


class PermitCache:
    """Compiled permits by their raw record, so a route is compiled once, not per batch."""

    def __init__(self, places: JurisdictionIndex, size: int = 50_000) -> None:
        self.places = places
        self.size = size
        self._compiled: OrderedDict[bytes, CompiledPermit] = OrderedDict()

    def status(self, stored: bytes | None) -> PermitStatus | None:
        """The status of a stored :class:`PermitEntry` (None when nothing is stored)."""
        if stored is None:
            return None
        entry = load_entry(stored)
        permit = self._compiled.get(entry.raw)
        if permit is None:
            parsed = parse_permit(entry.raw, self.places)
            if not isinstance(parsed, CompiledPermit):  # stored only after validation
                return None
            permit = parsed
            self._compiled[entry.raw] = permit
            if len(self._compiled) > self.size:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(entry.raw)
        return PermitStatus(permit=permit, revoked_at_ms=entry.revoked_at_ms)
