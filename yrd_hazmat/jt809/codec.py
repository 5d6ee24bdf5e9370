"""Byte-level helpers of the JT/T 809 body codecs: a bounds-checked reader, fixed-width
GBK fields, UTC times and the business envelopes.

Integers are big-endian. Octet strings have a fixed width, GBK, padded with 0x00 on the
right (JT/T 809-2011 4.2; SmallChi/JT809 ``WriteStringPadRight``). Times named ``*_TIME``
in bodies are UINT64 UTC seconds since 1970; the ministry's conformance platform was
seen sending milliseconds (SmallChi/JT809 ``GuoJian001Test.cs``), so a value of 10^11 or
more is read as milliseconds.

Every business of the standard wraps its sub-business the same way: [VEHICLE_NO 21 GBK,
VEHICLE_COLOR BYTE,] DATA_TYPE UINT16, DATA_LENGTH UINT32, data. Which businesses carry
the vehicle: 0x1200/0x9200, 0x1500/0x9500 and 0x1600/0x9600 always; 0x1400/0x9400 in
2011 only (2019 moved the vehicle into the alarm bodies); 0x1300/0x9300 never
(SmallChi/JT809 ``JT809_0x1400.cs``, ``JT809_0x9300.cs``; Yordroid/jt809_server
``bodyDataHasVehicleInfo``).
"""

from __future__ import annotations

import struct
from datetime import datetime

import msgspec

from ..core.timeutil import CHINA_TZ
from ..jt808.frame import FrameError
from .frame import EDITIONS, V2011

PLATE, MILLIS = 21, 10**11


class Reader:
    """Reads fields off a body; running past its end raises ``truncated``."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.what = what
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, size: int, field: str) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise FrameError("truncated", f"{self.what}: {field} needs {size} bytes at byte "
                                          f"{self.pos}, {self.left} left")
        out = self.data[self.pos:self.pos + size]
        self.pos += size
        return out

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        return struct.unpack(">H", self.take(2, field))[0]

    def u32(self, field: str) -> int:
        return struct.unpack(">I", self.take(4, field))[0]

    def u64(self, field: str) -> int:
        return struct.unpack(">Q", self.take(8, field))[0]

    def text(self, size: int, field: str) -> str:
        """A fixed-width GBK field, padding removed; bytes that are not GBK: ``bad_message``."""
        return decode(self.take(size, field), f"{self.what}: {field}")

    def content(self, size: int, field: str) -> str:
        """Free text (an inspection question, a waybill): undecodable bytes are replaced,
        not refused, so that the rest is still read."""
        raw = self.take(size, field)
        return raw.decode("gb18030", errors="replace").rstrip("\x00")

    def time(self, field: str) -> datetime | None:
        return from_utc(self.u64(field), f"{self.what}: {field}")

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out


def decode(raw: bytes, field: str) -> str:
    try:
        return raw.lstrip(b"\x00").split(b"\x00", 1)[0].decode("gbk").strip()
    except UnicodeDecodeError as exc:
        raise FrameError("bad_message", f"{field} is not GBK: {exc}") from None


def gbk(text: str) -> bytes:
    try:
        return text.encode("gbk")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{text!r} cannot be sent in GBK: {exc}") from None


def fixed(text: str, size: int) -> bytes:
    """``text`` as a fixed-width GBK field: cut to ``size`` bytes without splitting a
    character, padded with 0x00."""
    out = b""
    for char in text:
        encoded = gbk(char)
        if len(out) + len(encoded) > size:
            break
        out += encoded
    return out.ljust(size, b"\x00")


def counted(text: str, width: str = ">I") -> bytes:
    """A length-prefixed GBK text (INFO_LENGTH UINT32 then INFO_CONTENT)."""
    data = gbk(text)
    return struct.pack(width, len(data)) + data


def from_utc(value: int, field: str) -> datetime | None:
    """A UINT64 time (UTC seconds, or milliseconds from 10^11 on) in China time; 0: None."""
    if value == 0:
        return None
    seconds = value / 1000 if value >= MILLIS else value
    try:
        return datetime.fromtimestamp(seconds, tz=CHINA_TZ)
    except (OverflowError, OSError, ValueError):
        raise FrameError("bad_message", f"{field}: {value} is not a time") from None


def to_utc(ts: datetime | None) -> int:
    """UTC seconds of an aware datetime (None: 0, "not given")."""
    if ts is None:
        return 0
    if ts.tzinfo is None:
        raise ValueError(f"{ts} has no time zone")
    return int(ts.timestamp())


def check_version(version: int) -> int:
    if version not in EDITIONS:
        raise ValueError(f"no JT/T 809 edition {version}")
    return version


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """A business body opened: its sub-business and that one's data."""

    sub_type: int
    data: bytes
    plate: str | None = None
    colour: int | None = None


def read_envelope(body: bytes, *, vehicle: bool, what: str) -> Envelope:
    r = Reader(body, what)
    plate = r.text(PLATE, "VEHICLE_NO") if vehicle else None
    colour = r.u8("VEHICLE_COLOR") if vehicle else None
    sub_type = r.u16("DATA_TYPE")
    length = r.u32("DATA_LENGTH")
    if length > r.left:
        raise FrameError("truncated", f"{what} 0x{sub_type:04x}: DATA_LENGTH {length}, "
                                      f"{r.left} bytes follow")
    return Envelope(sub_type=sub_type, data=r.take(length, "data"), plate=plate, colour=colour)


def envelope(sub_type: int, data: bytes, plate: str | None = None, colour: int = 0) -> bytes:
    """A business body: the vehicle (when ``plate`` is given), DATA_TYPE, DATA_LENGTH, data."""
    head = fixed(plate, PLATE) + bytes([colour]) if plate is not None else b""
    return head + struct.pack(">HI", sub_type, len(data)) + data


def quoting(answer, request_type: int) -> bytes:
    """2019: SOURCE_DATA_TYPE and SOURCE_MSG_SN, the request an answer quotes (its
    ``source_type``, default ``request_type``, and ``source_sn``, default 0)."""
    return struct.pack(">HI", answer.source_type or request_type, answer.source_sn or 0)


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded business message: the vehicle (when the business carries one), the
    sub-business and its decoded value (a Struct of the business's module, a list of them,
    or None for the sub-businesses without data)."""

    sub_type: int
    value: object
    plate: str | None = None
    colour: int | None = None


__all__ = ["Envelope", "Message", "Reader", "V2011", "check_version", "counted", "decode",
           "envelope", "fixed", "from_utc", "gbk", "quoting", "read_envelope", "to_utc"]
