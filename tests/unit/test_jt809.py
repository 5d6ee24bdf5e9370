"""JT/T 809 framing and the gateway's platform link, against frames laid out by hand
(struct.pack, binascii's CRC-CCITT, the standard's cipher written out here)."""

from __future__ import annotations

import binascii
import struct
from datetime import datetime

import pytest

from tests.unit.test_jt809_frame import encrypt as encrypt_by_hand
from yrd_hazmat.gateway.link import LinkConfig, LinkSession
from yrd_hazmat.gateway.session import Classified
from yrd_hazmat.jt808.frame import FrameError
from yrd_hazmat.jt809 import frame as f
from tests import jt809_layout as m
from yrd_hazmat.core.models import VehicleTerminal
from yrd_hazmat.core.timeutil import CHINA_TZ

ACCESS = 30010001
M1, IA1, IC1 = 30000000, 20000000, 10000000


def encrypt(key: int, data: bytes) -> bytes:
    """The standard's simple encryption, as its appendix gives it, with this file's constants."""
    return encrypt_by_hand(key, data, M1, IA1, IC1)


def frame_by_hand(msg_id: int, body: bytes, serial: int = 1, key: int | None = None,
                  center: int = ACCESS) -> bytes:
    if key is not None:
        body = encrypt(key, body)
    header = struct.pack(">IIHI3sBI", 22 + len(body) + 4, serial, msg_id, center, b"\x01\x00\x00",
                         1 if key is not None else 0, key or 0)
    data = header + body
    data += struct.pack(">H", binascii.crc_hqx(data, 0xFFFF))
    escaped = (data.replace(b"\x5a", b"\x5a\x02").replace(b"\x5b", b"\x5a\x01")
               .replace(b"\x5e", b"\x5e\x02").replace(b"\x5d", b"\x5e\x01"))
    return b"\x5b" + escaped + b"\x5d"


def gnss_by_hand(encrypted=0, day=29, month=11, year=2026, hms=(14, 5, 9), lon=121_473_700,
                 lat=31_230_400, speed=62, mileage=5000, direction=90, altitude=12, state=0b11,
                 alarm=0) -> bytes:
    return (bytes([encrypted, day, month]) + struct.pack(">H", year) + bytes(hms)
            + struct.pack(">IIHHIHHII", lon, lat, speed, speed, mileage, direction, altitude,
                          state, alarm))


def exg_by_hand(plate: str, data_type: int, data: bytes) -> bytes:
    return (plate.encode("gbk").ljust(21, b"\x00") + b"\x02" + struct.pack(">HI", data_type, len(data))
            + data)


def login_by_hand(user: int = 7001, password: str = "pw123456") -> bytes:
    return struct.pack(">I8s32sH", user, password.encode(), b"10.0.0.9", 7000)


def test_frames_and_encryption_match_the_standards_layout():
    wire = frame_by_hand(m.UP_LINKTEST_REQ, b"")
    frame = f.parse(wire[1:-1])
    assert (frame.header.msg_id, frame.header.center, frame.header.length) == (
        0x1005, ACCESS, 26)
    body = exg_by_hand("沪A12345", m.REAL_LOCATION, gnss_by_hand())
    secret = f.parse(frame_by_hand(m.UP_EXG_MSG, body, key=424242)[1:-1], f.Cipher(M1, IA1, IC1))
    assert secret.header.encrypted and secret.body == body
    assert f.build(m.UP_EXG_MSG, 1, ACCESS, body, cipher=f.Cipher(M1, IA1, IC1), key=424242) == \
        frame_by_hand(m.UP_EXG_MSG, body, key=424242)


def test_escapes_crc_and_truncation():
    body = bytes([0x5A, 0x5B, 0x5D, 0x5E])
    wire = frame_by_hand(0x9999, body)
    assert f.parse(wire[1:-1]).body == body
    corrupt = bytearray(wire)
    corrupt[-3] ^= 0x01
    with pytest.raises(FrameError) as bad:
        f.parse(bytes(corrupt[1:-1]))
    assert bad.value.reason in ("bad_check_code", "bad_escape")
    with pytest.raises(FrameError) as short:
        f.parse(wire[1:10])
    assert short.value.reason == "truncated"


def test_real_time_and_history_positions():
    one = gnss_by_hand(encrypted=1, state=0b11 | 0b100, alarm=1)
    _, [pos] = m.read_exg(exg_by_hand("沪A12345", m.REAL_LOCATION, one))
    assert (pos.plate, pos.lat, pos.lon, pos.gcj02, pos.speed_kmh) == (
        "沪A12345", -31.2304, 121.4737, True, 62.0)
    assert pos.ts == datetime(2026, 11, 29, 14, 5, 9, tzinfo=CHINA_TZ) and pos.alarm == 1
    history = bytes([3]) + b"".join(gnss_by_hand(hms=(9, 0, s)) for s in (0, 10, 20))
    kind, positions = m.read_exg(exg_by_hand("苏E54321", m.HISTORY_LOCATION, history))
    assert kind == m.HISTORY_LOCATION and [p.ts.second for p in positions] == [0, 10, 20]


CONFIG = LinkConfig(user_id=7001, password="pw123456", access_code=ACCESS,
                    cipher=f.Cipher(M1, IA1, IC1))


def answers(handled) -> list[tuple[int, bytes]]:
    out = []
    for wire in handled.answers:
        frame = f.parse(wire[1:-1], CONFIG.cipher)
        out.append((frame.header.msg_id, frame.body))
    return out


def test_the_link_logs_in_then_passes_positions_as_pings():
    link = LinkSession(CONFIG)
    early = link.handle(frame_by_hand(m.UP_EXG_MSG, exg_by_hand(
        "沪A12345", m.REAL_LOCATION, gnss_by_hand()))[1:-1])
    assert early.pings == [] and early.rejected[0].reason == "not_authenticated"
    wrong = link.handle(frame_by_hand(m.UP_CONNECT_REQ, login_by_hand(password="nope"))[1:-1])
    assert answers(wrong)[0][0] == m.UP_CONNECT_RSP and answers(wrong)[0][1][0] == m.BAD_PASSWORD
    assert wrong.rejected[0].reason == "auth_failed"
    ok = link.handle(frame_by_hand(m.UP_CONNECT_REQ, login_by_hand(), key=5)[1:-1])
    assert answers(ok)[0][1][0] == m.OK and link.logged_in
    beat = link.handle(frame_by_hand(m.UP_LINKTEST_REQ, b"")[1:-1])
    assert [a[0] for a in answers(beat)] == [m.UP_LINKTEST_RSP]
    position = link.handle(frame_by_hand(m.UP_EXG_MSG, exg_by_hand(
        "沪A12345", m.REAL_LOCATION, gnss_by_hand(encrypted=1)), key=77)[1:-1])
    [ping] = position.pings
    assert (ping.vehicle_id, ping.crs, ping.speed_kmh, ping.mileage_km) == (
        "沪A12345", "GCJ02", 62.0, 5000.0)
    assert position.answers == []  # JT/T 809 does not answer positions


def test_another_access_code_or_an_unknown_message_is_rejected():
    link = LinkSession(CONFIG)
    link.handle(frame_by_hand(m.UP_CONNECT_REQ, login_by_hand())[1:-1])
    stranger = link.handle(frame_by_hand(m.UP_LINKTEST_REQ, b"", center=999)[1:-1])
    assert stranger.answers == [] and stranger.rejected[0].reason == "auth_failed"
    unknown = link.handle(frame_by_hand(0x1700, b"\x00")[1:-1])  # (0x1300: answers, handled)
    assert unknown.rejected[0].reason == "unsupported"
    short = link.handle(frame_by_hand(0x1300, b"\x00")[1:-1])  # an inspection answer cut short
    assert short.rejected[0].reason == "truncated"
    broken = link.handle(b"\x00\x01\x02")
    assert broken.rejected[0].reason == "truncated"


def test_history_positions_are_blind_and_every_position_is_classified():
    link = LinkSession(CONFIG, {"沪A12345": VehicleTerminal(vehicle_id="沪A12345",
                                                            carrier="acme")})
    link.handle(frame_by_hand(m.UP_CONNECT_REQ, login_by_hand())[1:-1])
    history = bytes([3]) + gnss_by_hand() + gnss_by_hand(state=0b01) + gnss_by_hand(speed=400)
    handled = link.handle(frame_by_hand(m.UP_EXG_MSG, exg_by_hand(
        "沪A12345", m.HISTORY_LOCATION, history))[1:-1])
    assert [p.blind for p in handled.pings] == [True, True] and handled.blind == 2
    assert [p.fix_valid for p in handled.pings] == [True, False]
    assert handled.quality == [Classified("沪A12345", "acme", "qualified"),
                               Classified("沪A12345", "acme", "no_fix"),
                               Classified("沪A12345", "acme", "bad_speed")]
    assert handled.rejected[0].reason == "invalid"
    realtime = link.handle(frame_by_hand(m.UP_EXG_MSG, exg_by_hand(
        "沪A12345", m.REAL_LOCATION, gnss_by_hand(direction=361, altitude=9999)))[1:-1])
    [ping] = realtime.pings
    assert ping.blind is False and ping.heading is None and ping.altitude_m is None
    assert ping.quality == ["bad_direction", "bad_altitude"]


def test_a_refused_link_frame_is_classified_by_its_reason():
    handled = LinkSession(CONFIG).handle(frame_by_hand(0x1700, b"\x00")[1:-1])
    assert handled.quality == [Classified(None, None, "unsupported")]
