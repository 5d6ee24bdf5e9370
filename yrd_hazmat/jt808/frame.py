"""JT/T 808 framing: ``0x7e | header | body | check code | 0x7e``.

Inside a frame 0x7e is sent as 0x7d 0x02 and 0x7d as 0x7d 0x01; the check code
is the XOR of every header and body byte. The header: message id WORD, body
attributes WORD (bits 0-9 body length, 10-12 encryption, 13 sub-packet, 14 the
2019 version flag), then in 2019 a protocol version BYTE, the terminal's phone
number in BCD (6 bytes in 2013, 10 in 2019), a serial number WORD, and with
bit 13 the sub-packet count and index WORDs. Integers are big-endian.

Terminals in the field do not all follow it: some 2013 firmware sets the 2019 version
flag (bit 14) on a 2013 header. The header layout is the one that makes the body length
in the header match the frame (:func:`read_header`), and answers mirror what the terminal
sent (:attr:`Header.flagged`).
"""

from __future__ import annotations

import struct

import msgspec

FLAG = 0x7E
ESCAPE = 0x7D
MAX_BODY = 0x3FF


class FrameError(ValueError):
    """A frame that cannot be read; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Header(msgspec.Struct, frozen=True, kw_only=True):
    msg_id: int
    phone: bytes
    """The phone number as sent (BCD, 6 or 10 bytes): answers echo it."""
    serial: int
    version: int | None = None
    """The 2019 protocol version byte; None for 2013."""
    encryption: int = 0
    packets: int | None = None
    """With sub-packets: how many, and this one's index (1-based)."""
    index: int | None = None
    flagged: bool = False
    """Bit 14 (the 2019 flag) was set on a 2013 header: answers set it too, with a 2013
    header, as the terminal's own frames do."""

    @property
    def terminal(self) -> str:
        """The phone number as digits, without leading zeros: the terminal's identity."""
        return bcd_digits(self.phone).lstrip("0") or "0"


class Frame(msgspec.Struct, frozen=True):
    header: Header
    body: bytes


class Splitter:
    """Cuts a TCP byte stream into the escaped contents between 0x7e flags."""

    def __init__(self, max_frame: int = 16_384) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """(complete frame contents, bytes discarded: junk outside frames or an oversized
        frame). A shared flag between two frames (``7e ... 7e ... 7e``) is accepted."""
        self._buffer += data
        frames: list[bytes] = []
        discarded = 0
        start = self._buffer.find(FLAG)
        if start < 0:
            discarded, self._buffer = len(self._buffer), bytearray()
            return frames, discarded
        discarded += start
        while True:
            end = self._buffer.find(FLAG, start + 1)
            if end < 0:
                break
            if end > start + 1:
                frames.append(bytes(self._buffer[start + 1:end]))
            start = end
        self._buffer = self._buffer[start:]
        if len(self._buffer) > self.max_frame:
            discarded += len(self._buffer)
            self._buffer = bytearray()
        return frames, discarded


def unescape(data: bytes) -> bytes:
    if ESCAPE not in data:
        return data
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == ESCAPE:
            if i + 1 >= len(data) or data[i + 1] not in (0x01, 0x02):
                raise FrameError("bad_escape", f"0x7d not followed by 0x01 or 0x02 at byte {i}")
            out.append(ESCAPE if data[i + 1] == 0x01 else FLAG)
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


def escape(data: bytes) -> bytes:
    return data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def check_code(data: bytes) -> int:
    code = 0
    for b in data:
        code ^= b
    return code


def parse(content: bytes) -> Frame:
    """A frame from the escaped bytes between two flags."""
    data = unescape(content)
    if len(data) < 13:
        raise FrameError("truncated", f"frame of {len(data)} bytes is shorter than a header")
    if check_code(data[:-1]) != data[-1]:
        raise FrameError("bad_check_code", f"check code 0x{data[-1]:02x}, computed "
                                           f"0x{check_code(data[:-1]):02x}")
    data = data[:-1]
    header, offset, length = read_header(data)
    body = data[offset:]
    if len(body) != length:
        raise FrameError("truncated", f"body is {len(body)} bytes, header says {length}")
    if not all((b >> 4) < 10 and (b & 0xF) < 10 for b in header.phone):
        raise FrameError("bad_header", f"phone number {header.phone.hex()} is not BCD")
    return Frame(header, body)


def read_header(data: bytes) -> tuple[Header, int, int]:
    """(header, where the body starts, the body length the header gives) of unescaped
    frame bytes (without the check code); the body is not checked.

    With bit 14 set, the 2019 layout is read unless only the 2013 layout makes the
    header's body length match the frame: 2013 firmware that sets the flag."""
    if len(data) < 4 or not data[2] & 0x40:
        return _read_header(data, as_2019=False)
    try:
        found = _read_header(data, as_2019=True)
    except FrameError:
        found = None
    if found is None or len(data) - found[1] != found[2]:
        try:
            flagged = _read_header(data, as_2019=False)
        except FrameError:
            flagged = None
        if flagged is not None and len(data) - flagged[1] == flagged[2]:
            return flagged
    return found if found is not None else _read_header(data, as_2019=True)


def _read_header(data: bytes, as_2019: bool) -> tuple[Header, int, int]:
    if len(data) < 12:
        raise FrameError("truncated", f"frame of {len(data)} bytes is shorter than a header")
    msg_id, props = struct.unpack_from(">HH", data)
    if as_2019:
        if len(data) < 17:
            raise FrameError("truncated", f"2019 frame of {len(data)} bytes is shorter than "
                                          "its header")
        version, phone, serial = data[4], data[5:15], struct.unpack_from(">H", data, 15)[0]
        offset = 17
    else:
        version, phone, serial = None, data[4:10], struct.unpack_from(">H", data, 10)[0]
        offset = 12
    packets = index = None
    if props & 0x2000:
        if len(data) < offset + 4:
            raise FrameError("truncated", "sub-packet fields missing")
        packets, index = struct.unpack_from(">HH", data, offset)
        offset += 4
    header = Header(msg_id=msg_id, phone=phone, serial=serial, version=version,
                    encryption=(props >> 10) & 0x7, packets=packets, index=index,
                    flagged=not as_2019 and bool(props & 0x4000))
    return header, offset, props & MAX_BODY


def build(msg_id: int, phone: bytes, serial: int, body: bytes, version: int | None = None,
          packets: tuple[int, int] | None = None, flagged: bool = False) -> bytes:
    """A complete frame, flags included (``version``: 2019's version byte, or None for 2013;
    ``flagged``: a 2013 header with the 2019 flag, see :attr:`Header.flagged`)."""
    if len(body) > MAX_BODY:
        raise ValueError(f"body of {len(body)} bytes: split it into sub-packets")
    props = (len(body) | (0x2000 if packets else 0)
             | (0x4000 if version is not None or flagged else 0))
    header = struct.pack(">HH", msg_id, props)
    if version is not None:
        header += bytes([version]) + phone
    else:
        header += phone
    header += struct.pack(">H", serial)
    if packets:
        header += struct.pack(">HH", *packets)
    data = header + body
    return bytes([FLAG]) + escape(data + bytes([check_code(data)])) + bytes([FLAG])


def bcd(digits: str, size: int) -> bytes:
    """``digits`` as ``size`` BCD bytes, left-padded with zeros."""
    digits = digits.rjust(size * 2, "0")
    if len(digits) != size * 2 or not digits.isdigit():
        raise ValueError(f"{digits!r} does not fit {size} BCD bytes")
    return bytes.fromhex(digits)


def bcd_digits(data: bytes) -> str:
    return data.hex()
