"""JT/T 809 framing, both header editions: ``0x5b | header | body | CRC | 0x5d``.

Header of JT/T 809-2011 (22 bytes, big-endian): MSG_LENGTH UINT32 (the whole frame,
flags included), MSG_SN UINT32, MSG_ID UINT16, MSG_GNSSCENTERID UINT32 (the lower
platform's access code), VERSION_FLAG 3 bytes (e.g. 01 00 00 for v1.0.0), ENCRYPT_FLAG
BYTE, ENCRYPT_KEY UINT32. JT/T 809-2019 (30 bytes) appends TIME UINT64, the sender's
clock in UTC seconds since 1970 (gaochundong/gbprotocol's note: 2010-01-10 09:07:54
Beijing time is 1263085674, 0x000000004B49286A). Layouts as in SmallChi/JT809 (``JT809Header.cs``: 22 and 30 bytes,
TIME written last as UTC seconds), Yordroid/jt809_server (``split_packet_v3.go``,
header 30 bytes, ``time.Now().Unix()``) and gaochundong/gbprotocol
(``JT809MessageHeader2019.java``). The two editions are not compatible and nothing in
the header names its edition (captures from the ministry's conformance test carry
VERSION_FLAG 00 00 00 on 2019 frames), so :func:`edition_of` tells them apart by the
TIME slot, with the edition configured for the link as a hint.

The CRC is CRC-16/CCITT-FALSE (poly 0x1021, initial 0xFFFF) of header and body. Between
the flags, 0x5b is sent as 0x5a 0x01, 0x5a as 0x5a 0x02, 0x5d as 0x5e 0x01 and 0x5e as
0x5e 0x02. A 0x5a or 0x5e that is not followed by 0x01 or 0x02 cannot come out of
:func:`escape`; :func:`unescape` takes it as itself unless ``strict`` (the CRC still
guards the frame), so that a sender that forgets to escape it, or a capture logged after
unescaping (as the conformance captures in SmallChi/JT809's ``GuoJian001Test.cs``), is
still read. With ENCRYPT_FLAG 1 the body is XORed with the standard's simple stream
cipher, keyed by ENCRYPT_KEY and the platform's constants M1, IA1, IC1 (same in both
editions; checked against the encrypted 2019 captures of ``GuoJian001Test.cs`` and their
constants).
"""

from __future__ import annotations

import binascii
import struct
import time as _time
from collections.abc import Callable

import msgspec

from ..jt808.frame import FrameError

HEAD, TAIL = 0x5B, 0x5D
HEADER = struct.Struct(">IIHI3sBI")
"""The 2011 header (22 bytes)."""
HEADER_2019 = struct.Struct(">IIHI3sBIQ")
"""The 2019 header (30 bytes): the 2011 one and TIME."""
VERSION = b"\x01\x00\x00"
V2011, V2019 = 2011, 2019
"""Editions of the standard (``version`` in the body codecs)."""
EDITIONS = (V2011, V2019)
_HEADERS = {V2011: HEADER, V2019: HEADER_2019}

EARLIEST, LATEST = 946_684_800, 4_102_444_800
"""A TIME from 2000 to 2100 (in seconds, or in milliseconds times 1000) marks a 2019
header."""


class Cipher(msgspec.Struct, frozen=True):
    """The simple encryption's constants, agreed with the other platform."""

    m1: int = 0
    ia1: int = 0
    ic1: int = 0

    def apply(self, key: int, data: bytes) -> bytes:
        """Encrypt or decrypt (the same operation): each byte XOR the next byte of the
        key stream (key = IA1 * (key mod M1) + IC1, its bits 20-27)."""
        n = len(data)
        if not n:
            return b""
        stream = _key_stream(self.m1 or 1, self.ia1, self.ic1, key or 1, n)
        return (int.from_bytes(data, "big") ^ int.from_bytes(stream[:n], "big")).to_bytes(n, "big")


_STREAMS: dict[tuple[int, int, int, int], tuple[bytes, int]] = {}
"""(M1, IA1, IC1, ENCRYPT_KEY) -> the key stream so far and the key after it. A platform
keeps one ENCRYPT_KEY a link (ours do), so a frame's stream is computed once, not per
frame, byte by byte."""
_MAX_STREAMS = 4096


def _key_stream(m1: int, ia1: int, ic1: int, key: int, n: int) -> bytes:
    entry = _STREAMS.get((m1, ia1, ic1, key))
    stream, state = entry if entry is not None else (b"", key)
    if len(stream) < n:
        more = bytearray()
        for _ in range(max(n, 256) - len(stream)):
            state = (ia1 * (state % m1) + ic1) & 0xFFFFFFFF
            more.append((state >> 20) & 0xFF)
        stream += bytes(more)
        if len(_STREAMS) >= _MAX_STREAMS:  # keys that change each frame: start again
            _STREAMS.clear()
        _STREAMS[(m1, ia1, ic1, key)] = (stream, state)
    return stream


class Header(msgspec.Struct, frozen=True, kw_only=True):
    length: int
    serial: int
    msg_id: int
    center: int
    """MSG_GNSSCENTERID: the lower platform's access code."""
    version: bytes = VERSION
    """VERSION_FLAG as sent."""
    encrypted: bool = False
    key: int = 0
    edition: int = V2011
    """Which header layout the frame has: :data:`V2011` or :data:`V2019`."""
    time: int | None = None
    """2019: TIME as sent, UTC seconds."""


class Frame(msgspec.Struct, frozen=True):
    header: Header
    body: bytes
    """Decrypted."""


def crc16(data: bytes) -> int:
    """The frame's CRC: CRC-16/CCITT-FALSE (polynomial 0x1021, from 0xFFFF, not
    reflected), which is :func:`binascii.crc_hqx` started at 0xFFFF (in C: a bit-by-bit
    loop here took two thirds of the uplink's time)."""
    return binascii.crc_hqx(data, 0xFFFF)


_ESCAPES = ((b"\x5a", b"\x5a\x02"), (b"\x5b", b"\x5a\x01"), (b"\x5e", b"\x5e\x02"),
            (b"\x5d", b"\x5e\x01"))
_UNESCAPED = {(0x5A, 1): 0x5B, (0x5A, 2): 0x5A, (0x5E, 1): 0x5D, (0x5E, 2): 0x5E}


def escape(data: bytes) -> bytes:
    for raw, sent in _ESCAPES:
        data = data.replace(raw, sent)
    return data


def unescape(data: bytes, strict: bool = False) -> bytes:
    """The bytes as meant. A 0x5a or 0x5e not followed by 0x01 or 0x02 is taken as itself
    (``strict``: refused, ``bad_escape``); one that ends the data is an escape cut short
    (``bad_escape``)."""
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b in (0x5A, 0x5E):
            nxt = data[i + 1] if i + 1 < len(data) else None
            if nxt in (0x01, 0x02):
                out.append(_UNESCAPED[b, nxt])
                i += 2
                continue
            if strict or nxt is None:
                raise FrameError("bad_escape",
                                 f"0x{b:02x} not followed by 0x01 or 0x02 at byte {i}")
        out.append(b)
        i += 1
    return bytes(out)


def edition_of(data: bytes, expect: int | None = None) -> int:
    """The header edition of an unescaped frame (header, body, CRC). A frame too short for
    a 2019 header is 2011; a TIME slot holding a time from 2000 to 2100 (seconds or
    milliseconds, as some platforms send their body times) is 2019; a TIME of zero is 2019 when the link expects 2019 (some
    platforms leave it empty); anything else is 2011."""
    if expect is not None and expect not in EDITIONS:
        raise ValueError(f"no JT/T 809 edition {expect}")
    if len(data) < HEADER_2019.size + 2:
        return V2011
    stamp = struct.unpack_from(">Q", data, HEADER.size)[0]
    if EARLIEST <= stamp <= LATEST or EARLIEST * 1000 <= stamp <= LATEST * 1000:
        return V2019
    if stamp == 0 and expect == V2019:
        return V2019
    return V2011


def parse(content: bytes, cipher: Cipher | None = None, *, expect: int | None = None) -> Frame:
    """A frame from the escaped bytes between 0x5b and 0x5d; ``expect`` is the edition the
    link is configured for (a hint: see :func:`edition_of`)."""
    return parse_for(content, lambda center: (cipher, expect))


Keys = Callable[[int], tuple[Cipher | None, int | None]]
"""MSG_GNSSCENTERID -> (the cipher, the edition expected) of that lower platform."""


def parse_for(content: bytes, keys: Keys) -> Frame:
    """:func:`parse` for a link that serves several lower platforms: the cipher and the
    edition hint are those ``keys`` gives for the frame's MSG_GNSSCENTERID (the header is
    never encrypted, so the access code is read before the body is decrypted)."""
    data = unescape(content)
    if len(data) < HEADER.size + 2:
        raise FrameError("truncated", f"frame of {len(data)} bytes is shorter than a header")
    if crc16(data[:-2]) != struct.unpack_from(">H", data, len(data) - 2)[0]:
        raise FrameError("bad_check_code", "CRC-16 does not match")
    cipher, expect = keys(struct.unpack_from(">I", data, 10)[0])
    edition = edition_of(data, expect)
    layout = _HEADERS[edition]
    fields = layout.unpack_from(data)
    length, serial, msg_id, center, version, flag, key = fields[:7]
    if length != len(data) + 2:
        raise FrameError("truncated", f"frame is {len(data) + 2} bytes, header says {length}")
    if flag not in (0, 1):
        raise FrameError("bad_header", f"ENCRYPT_FLAG {flag} is neither 0 nor 1")
    body = data[layout.size:-2]
    if flag:
        body = (cipher or Cipher()).apply(key, body)
    header = Header(length=length, serial=serial, msg_id=msg_id, center=center,
                    version=version, encrypted=bool(flag), key=key, edition=edition,
                    time=fields[7] if edition == V2019 else None)
    return Frame(header, body)


def build(msg_id: int, serial: int, center: int, body: bytes, *, cipher: Cipher | None = None,
          key: int = 0, edition: int = V2011, time: int | None = None,
          version: bytes = VERSION) -> bytes:
    """A complete frame; with ``cipher`` the body is encrypted under ``key``. A 2019 frame
    carries ``time`` (UTC seconds; now when None)."""
    if edition not in EDITIONS:
        raise ValueError(f"no JT/T 809 edition {edition}")
    if len(version) != 3:
        raise ValueError(f"VERSION_FLAG is 3 bytes, not {len(version)}")
    if cipher is not None:
        body = cipher.apply(key, body)
    layout = _HEADERS[edition]
    fields = [layout.size + len(body) + 4, serial, msg_id, center, version,
              1 if cipher is not None else 0, key if cipher is not None else 0]
    if edition == V2019:
        fields.append(int(_time.time()) if time is None else time)
    data = layout.pack(*fields) + body
    return bytes([HEAD]) + escape(data + struct.pack(">H", crc16(data))) + bytes([TAIL])


class Splitter:
    """Cuts a TCP byte stream into the escaped contents between 0x5b and 0x5d. A frame
    longer than ``max_frame`` bytes is dropped (its bytes counted as discarded, the frame
    in :attr:`oversized`), whether it came whole or is still arriving."""

    def __init__(self, max_frame: int = 65_536) -> None:
        self.max_frame = max_frame
        self.oversized = 0
        """Frames dropped for their size so far."""
        self._buffer = bytearray()

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        self._buffer += data
        frames: list[bytes] = []
        discarded = 0
        while True:
            start = self._buffer.find(HEAD)
            if start < 0:
                discarded += len(self._buffer)
                self._buffer = bytearray()
                break
            discarded += start
            del self._buffer[:start]
            end = self._buffer.find(TAIL)
            if end < 0:
                break
            if end + 1 > self.max_frame:
                discarded += end + 1
                self.oversized += 1
            else:
                frames.append(bytes(self._buffer[1:end]))
            del self._buffer[:end + 1]
        if len(self._buffer) > self.max_frame:
            discarded += len(self._buffer)
            self.oversized += 1
            self._buffer = bytearray()
        return frames, discarded
