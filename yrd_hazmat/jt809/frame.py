"""JT/T 809-2011 framing: ``0x5b | header | body | CRC | 0x5d``.

Header (22 bytes, big-endian): MSG_LENGTH UINT32 (the whole frame, flags included),
MSG_SN UINT32, MSG_ID UINT16, MSG_GNSSCENTERID UINT32 (the lower platform's access
code), VERSION_FLAG 3 bytes, ENCRYPT_FLAG BYTE, ENCRYPT_KEY UINT32. The CRC is
CRC-16/CCITT-FALSE (poly 0x1021, initial 0xFFFF) of header and body. Between the
flags, 0x5b is sent as 0x5a 0x01, 0x5a as 0x5a 0x02, 0x5d as 0x5e 0x01 and 0x5e as
0x5e 0x02. With ENCRYPT_FLAG 1 the body is XORed with the standard's simple stream
cipher, keyed by ENCRYPT_KEY and the platform's constants M1, IA1, IC1.
"""

from __future__ import annotations

import struct

import msgspec

from ..jt808.frame import FrameError

HEAD, TAIL = 0x5B, 0x5D
HEADER = struct.Struct(">IIHI3sBI")
VERSION = b"\x01\x00\x00"


class Cipher(msgspec.Struct, frozen=True):
    """The simple encryption's constants, agreed with the lower platform."""

    m1: int = 0
    ia1: int = 0
    ic1: int = 0

    def apply(self, key: int, data: bytes) -> bytes:
        """Encrypt or decrypt (the same operation)."""
        key = key or 1
        m1 = self.m1 or 1
        out = bytearray(data)
        for i in range(len(out)):
            key = (self.ia1 * (key % m1) + self.ic1) & 0xFFFFFFFF
            out[i] ^= (key >> 20) & 0xFF
        return bytes(out)


class Header(msgspec.Struct, frozen=True, kw_only=True):
    length: int
    serial: int
    msg_id: int
    center: int
    """MSG_GNSSCENTERID: the lower platform's access code."""
    version: bytes = VERSION
    encrypted: bool = False
    key: int = 0


class Frame(msgspec.Struct, frozen=True):
    header: Header
    body: bytes
    """Decrypted."""


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


_ESCAPES = ((b"\x5a", b"\x5a\x02"), (b"\x5b", b"\x5a\x01"), (b"\x5e", b"\x5e\x02"),
            (b"\x5d", b"\x5e\x01"))


def escape(data: bytes) -> bytes:
    for raw, sent in _ESCAPES:
        data = data.replace(raw, sent)
    return data


def unescape(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b in (0x5A, 0x5E):
            nxt = data[i + 1] if i + 1 < len(data) else None
            if nxt not in (0x01, 0x02):
                raise FrameError("bad_escape", f"0x{b:02x} not followed by 0x01 or 0x02 at byte {i}")
            out.append({(0x5A, 1): 0x5B, (0x5A, 2): 0x5A, (0x5E, 1): 0x5D, (0x5E, 2): 0x5E}[b, nxt])
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


def parse(content: bytes, cipher: Cipher | None = None) -> Frame:
    """A frame from the escaped bytes between 0x5b and 0x5d."""
    data = unescape(content)
    if len(data) < HEADER.size + 2:
        raise FrameError("truncated", f"frame of {len(data)} bytes is shorter than a header")
    if crc16(data[:-2]) != struct.unpack_from(">H", data, len(data) - 2)[0]:
        raise FrameError("bad_check_code", "CRC-16 does not match")
    length, serial, msg_id, center, version, flag, key = HEADER.unpack_from(data)
    if length != len(data) + 2:
        raise FrameError("truncated", f"frame is {len(data) + 2} bytes, header says {length}")
    body = data[HEADER.size:-2]
    if flag:
        body = (cipher or Cipher()).apply(key, body)
    header = Header(length=length, serial=serial, msg_id=msg_id, center=center,
                    version=version, encrypted=bool(flag), key=key)
    return Frame(header, body)


def build(msg_id: int, serial: int, center: int, body: bytes, *, cipher: Cipher | None = None,
          key: int = 0) -> bytes:
    """A complete frame; with ``cipher`` the body is encrypted under ``key``."""
    if cipher is not None:
        body = cipher.apply(key, body)
    header = HEADER.pack(HEADER.size + len(body) + 4, serial, msg_id, center, VERSION,
                         1 if cipher is not None else 0, key if cipher is not None else 0)
    data = header + body
    return bytes([HEAD]) + escape(data + struct.pack(">H", crc16(data))) + bytes([TAIL])


class Splitter:
    """Cuts a TCP byte stream into the escaped contents between 0x5b and 0x5d."""

    def __init__(self, max_frame: int = 65_536) -> None:
        self.max_frame = max_frame
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
            frames.append(bytes(self._buffer[1:end]))
            del self._buffer[:end + 1]
        if len(self._buffer) > self.max_frame:
            discarded += len(self._buffer)
            self._buffer = bytearray()
        return frames, discarded
