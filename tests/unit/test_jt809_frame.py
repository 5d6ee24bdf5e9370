"""JT/T 809 framing in both header editions, against frames laid out by hand (struct,
binascii's CRC-CCITT, the standard's cipher written out here) and against captures of
the ministry's conformance test published in SmallChi/JT809
(src/JT809.Protocol.Test/JT809MessageBody/GuoJian001Test.cs, MIT licence).

2011 header (22 bytes): MSG_LENGTH UINT32, MSG_SN UINT32, MSG_ID UINT16,
MSG_GNSSCENTERID UINT32, VERSION_FLAG 3, ENCRYPT_FLAG BYTE, ENCRYPT_KEY UINT32.
2019 header (30 bytes): the same, then TIME UINT64 (UTC seconds)."""

from __future__ import annotations

import binascii
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yrd_hazmat.jt808.frame import FrameError
from yrd_hazmat.jt809 import frame as f

ACCESS = 30010001            # 0x01c9ea91
M1, IA1, IC1 = 30000000, 20000000, 10000000
CIPHER = f.Cipher(M1, IA1, IC1)
T = 1795932309               # 2026-11-29 14:05:09 +08:00 = 0x6b0bc095


def encrypt(key: int, data: bytes, m1: int = M1, ia1: int = IA1, ic1: int = IC1) -> bytes:
    """The standard's simple encryption, as its appendix gives it."""
    out = bytearray(data)
    key = key or 1
    for i in range(len(out)):
        key = (ia1 * (key % m1) + ic1) & 0xFFFFFFFF
        out[i] ^= (key >> 20) & 0xFF
    return bytes(out)


def by_hand(msg_id: int, body: bytes, *, edition: int = 2011, serial: int = 1,
            center: int = ACCESS, key: int | None = None, time: int = T,
            flag: bytes = b"\x01\x00\x00") -> bytes:
    """A whole frame, escaped, flags included."""
    if key is not None:
        body = encrypt(key, body)
    size = (22 if edition == 2011 else 30) + len(body) + 4
    head = struct.pack(">IIHI3sBI", size, serial, msg_id, center, flag,
                       1 if key is not None else 0, key or 0)
    if edition == 2019:
        head += struct.pack(">Q", time)
    data = head + body
    data += struct.pack(">H", binascii.crc_hqx(data, 0xFFFF))
    escaped = (data.replace(b"\x5a", b"\x5a\x02").replace(b"\x5b", b"\x5a\x01")
               .replace(b"\x5e", b"\x5e\x02").replace(b"\x5d", b"\x5e\x01"))
    return b"\x5b" + escaped + b"\x5d"


def read_back(wire: bytes, cipher: f.Cipher | None = None, expect: int | None = None) -> f.Frame:
    return f.parse(wire[1:-1], cipher, expect=expect)


# --- the headers, byte by byte ------------------------------------------------------------

HEARTBEAT_2011 = bytes.fromhex(
    "0000001a"          # MSG_LENGTH 26: 1 + 22 + 0 + 2 + 1
    "00000001"          # MSG_SN 1
    "1005"              # MSG_ID UP_LINKTEST_REQ
    "01c9ea91"          # MSG_GNSSCENTERID 30010001
    "010000"            # VERSION_FLAG 1.0.0
    "00"                # ENCRYPT_FLAG
    "00000000")         # ENCRYPT_KEY
HEARTBEAT_2019 = bytes.fromhex(
    "00000022"          # MSG_LENGTH 34: 1 + 30 + 0 + 2 + 1
    "00000001" "1005" "01c9ea91" "010000" "00" "00000000"
    "000000006b0bc095")  # TIME 1795932309 (UTC seconds)


def wrap(data: bytes) -> bytes:
    """Flags and CRC around a header+body that has nothing to escape."""
    return b"\x5b" + data + struct.pack(">H", binascii.crc_hqx(data, 0xFFFF)) + b"\x5d"


def test_2011_and_2019_headers_byte_by_byte():
    assert f.build(0x1005, 1, ACCESS, b"") == wrap(HEARTBEAT_2011)
    assert f.build(0x1005, 1, ACCESS, b"", edition=f.V2019, time=T) == wrap(HEARTBEAT_2019)
    old = read_back(wrap(HEARTBEAT_2011))
    assert (old.header.edition, old.header.length, old.header.time) == (2011, 26, None)
    new = read_back(wrap(HEARTBEAT_2019))
    assert (new.header.edition, new.header.length, new.header.time, new.header.msg_id,
            new.header.center, new.header.version) == (2019, 34, T, 0x1005, ACCESS, b"\x01\x00\x00")
    assert new.body == b""


def test_the_edition_comes_from_the_time_slot_with_the_link_as_a_hint():
    body = bytes.fromhex("00001b59" "7077313233343536")   # USERID 7001, PASSWORD (0x1003)
    old = by_hand(0x1003, body)
    assert read_back(old).header.edition == 2011
    assert read_back(old, expect=2019).header.edition == 2011   # no time in that slot
    new = by_hand(0x1003, body, edition=2019)
    assert read_back(new).header.edition == 2019
    assert read_back(new, expect=2011).header.edition == 2019   # a time there says 2019
    millis = by_hand(0x1003, body, edition=2019, time=T * 1000)
    assert read_back(millis).header.time == T * 1000
    unset = by_hand(0x1003, body, edition=2019, time=0)
    assert read_back(unset).header.edition == 2011 and read_back(unset).body != body
    assert read_back(unset, expect=2019).header.edition == 2019
    assert read_back(unset, expect=2019).body == body
    short = by_hand(0x1005, b"", edition=2011)                 # too short for a 2019 header
    assert read_back(short, expect=2019).header.edition == 2011
    with pytest.raises(ValueError):
        f.edition_of(b"", expect=2013)


@pytest.mark.parametrize("edition", [2011, 2019])
def test_encrypted_bodies_both_editions(edition):
    body = bytes(range(0x50, 0x70))               # 0x5a..0x5e in the clear, to escape
    wire = by_hand(0x1200, body, edition=edition, key=424242, serial=9)
    assert f.build(0x1200, 9, ACCESS, body, cipher=CIPHER, key=424242, edition=edition,
                   time=T) == wire
    frame = read_back(wire, CIPHER, expect=edition)
    assert frame.header.encrypted and frame.header.key == 424242 and frame.body == body
    assert read_back(by_hand(0x1200, body, edition=edition, key=0), CIPHER).body == body


# The conformance platform's 0x9301 (inspection), encrypted with key 0x3b89 under the
# constants M1 56107078, IA1 37382110, IC1 50361430 given with the captures; logged after
# unescaping (a lone 0x5a stays). Frame "大兄弟提供2" of GuoJian001Test.cs.
CAPTURED_9301 = bytes.fromhex(
    "5b0000005c000000499300042c1d810000000100003b8900000000689e195830a40dc885a2cba573c5"
    "afb5408a3a5f9087119a5ae184960d1cf378d127390c0bebff775835fddd57d380539049899afc4d7d"
    "fd057684e9c6156a1e5d")


def test_a_captured_encrypted_2019_frame():
    frame = read_back(CAPTURED_9301, f.Cipher(56107078, 37382110, 50361430))
    h = frame.header
    assert (h.edition, h.length, h.serial, h.msg_id, h.center, h.version, h.encrypted, h.key,
            h.time) == (2019, 92, 73, 0x9300, 70000001, b"\x00\x00\x00", True, 0x3B89,
                        1755191640)
    assert frame.body[:6] == bytes.fromhex("9301" "00000034")   # DATA_TYPE, DATA_LENGTH 52
    with pytest.raises(FrameError) as strict:
        f.unescape(CAPTURED_9301[1:-1], strict=True)
    assert strict.value.reason == "bad_escape"


def test_escapes_in_both_editions():
    body = bytes([0x5A, 0x5B, 0x5D, 0x5E, 0x01, 0x02])
    for edition in (2011, 2019):
        wire = by_hand(0x9999, body, edition=edition)
        assert b"\x5a\x02\x5a\x01\x5e\x01\x5e\x02" in wire
        assert read_back(wire, expect=edition).body == body
    assert f.unescape(b"\x5a\x03\x5e\x00") == b"\x5a\x03\x5e\x00"   # lone: taken as is
    with pytest.raises(FrameError) as cut:
        f.unescape(b"\x01\x5e")                                    # an escape cut short
    assert cut.value.reason == "bad_escape"


# --- hostile frames ------------------------------------------------------------------------

@pytest.mark.parametrize("edition", [2011, 2019])
def test_bad_crc_lengths_and_flags_are_refused(edition):
    wire = by_hand(0x1005, b"\x01\x02\x03\x04\x05\x06\x07\x08", edition=edition)
    corrupt = bytearray(wire)
    corrupt[-3] ^= 0x40
    with pytest.raises(FrameError) as bad:
        read_back(bytes(corrupt))
    assert bad.value.reason == "bad_check_code"
    content = wire[1:-1]
    data = f.unescape(content)
    lying = bytearray(data[:-2])
    lying[0:4] = struct.pack(">I", 4000)                     # MSG_LENGTH past the end
    lying += struct.pack(">H", binascii.crc_hqx(bytes(lying), 0xFFFF))
    with pytest.raises(FrameError) as long:
        f.parse(f.escape(bytes(lying)))
    assert long.value.reason == "truncated"
    flagged = bytearray(data[:-2])
    flagged[17] = 7                                          # ENCRYPT_FLAG neither 0 nor 1
    flagged += struct.pack(">H", binascii.crc_hqx(bytes(flagged), 0xFFFF))
    with pytest.raises(FrameError) as flag:
        f.parse(f.escape(bytes(flagged)))
    assert flag.value.reason == "bad_header"


@pytest.mark.parametrize("edition", [2011, 2019])
def test_a_frame_cut_anywhere_is_refused(edition):
    content = by_hand(0x1200, bytes(range(40)), edition=edition)[1:-1]
    for cut in range(len(content)):
        with pytest.raises(FrameError):
            f.parse(content[:cut])


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([None, 2011, 2019]))
def test_random_bytes_raise_only_frame_error(data, expect):
    try:
        f.parse(data, CIPHER, expect=expect)
    except FrameError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([2011, 2019]), st.integers(0, 0xFFFFFFFF),
       st.booleans())
def test_built_frames_read_back(body, edition, serial, encrypted):
    wire = f.build(0x1300, serial, ACCESS, body, cipher=CIPHER if encrypted else None, key=77,
                   edition=edition, time=T)
    frame = read_back(wire, CIPHER, expect=edition)
    assert (frame.header.edition, frame.header.serial, frame.body) == (edition, serial, body)
    splitter = f.Splitter()
    frames, discarded = splitter.feed(b"junk" + wire + wire[:5])
    assert frames == [wire[1:-1]] and discarded == 4


def test_build_refuses_what_it_cannot_send():
    with pytest.raises(ValueError):
        f.build(0x1005, 1, ACCESS, b"", edition=2013)
    with pytest.raises(ValueError):
        f.build(0x1005, 1, ACCESS, b"", version=b"\x01")
