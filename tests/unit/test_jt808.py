"""JT/T 808 framing, messages and the gateway's session logic, against frames built by
hand from the standard's layout (hex and struct.pack here, not the module's builders)."""

from __future__ import annotations

import struct
from datetime import datetime

import pytest

from yrd_hazmat.gateway.session import Session
from yrd_hazmat.jt808 import messages as m
from yrd_hazmat.jt808.frame import FrameError, Splitter, parse
from yrd_hazmat.core.models import Terminal
from yrd_hazmat.core.timeutil import CHINA_TZ

NOW = datetime(2026, 11, 29, 14, 0, tzinfo=CHINA_TZ)

# Heartbeat 0x0002 from terminal 013912345678, serial 1, empty body, 2013 header:
# 0002 | 0000 | 013912345678 | 0001 ; check code = XOR of those 12 bytes = 0x33
HEARTBEAT = bytes.fromhex("7e" "0002" "0000" "013912345678" "0001" "33" "7e")


def xor(data: bytes) -> int:
    code = 0
    for b in data:
        code ^= b
    return code


def frame_2013(msg_id: int, phone: str, serial: int, body: bytes) -> bytes:
    """A 2013 frame laid out by hand (escaping included)."""
    data = struct.pack(">HH", msg_id, len(body)) + bytes.fromhex(phone) + struct.pack(">H", serial) + body
    data += bytes([xor(data)])
    return b"\x7e" + data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02") + b"\x7e"


def location_body(alarm=0, status=0b11, lat=31_230_400, lon=121_473_700, altitude=12,
                  speed=625, heading=90, bcd="261129140509", extra=b"") -> bytes:
    return struct.pack(">IIIIHHH", alarm, status, lat, lon, altitude, speed, heading) + \
        bytes.fromhex(bcd) + extra


def test_a_heartbeat_frame_from_the_standards_layout():
    frame = parse(HEARTBEAT[1:-1])
    assert (frame.header.msg_id, frame.header.serial, frame.header.terminal) == (2, 1, "13912345678")
    assert frame.header.version is None and frame.body == b""


def test_escapes_and_check_code():
    body = bytes([0x7E, 0x01, 0x7D, 0x02])
    wire = frame_2013(0x0900, "013912345678", 7, body)
    assert b"\x7d\x02" in wire[1:-1] and b"\x7d\x01" in wire[1:-1] and b"\x7e" not in wire[1:-1]
    assert parse(wire[1:-1]).body == body
    corrupt = bytearray(wire)
    corrupt[-2] ^= 0xFF
    with pytest.raises(FrameError) as bad:
        parse(bytes(corrupt[1:-1]))
    assert bad.value.reason == "bad_check_code"
    with pytest.raises(FrameError) as truncated:
        parse(wire[1:8])
    assert truncated.value.reason == "truncated"


def test_a_2019_header_has_the_version_and_a_ten_byte_phone():
    phone = "00000000013912345678"
    data = struct.pack(">HH", 0x0002, 0x4000) + b"\x01" + bytes.fromhex(phone) + struct.pack(">H", 9)
    data += bytes([xor(data)])
    header = parse(data).header
    assert header.version == 1 and header.terminal == "13912345678" and header.serial == 9


def test_a_location_report_with_south_west_bits_bcd_time_and_additional_items():
    extra = (bytes([0x01, 4]) + struct.pack(">I", 123456)          # mileage 12345.6 km
             + bytes([0x12, 6]) + struct.pack(">BIB", 1, 77, 0))    # entered area 77
    body = location_body(alarm=1 << 29, status=0b11 | 0b1100, extra=extra)
    pos = m.read_location(parse(frame_2013(0x0200, "013912345678", 3, body)[1:-1]).body)
    assert (pos.lat, pos.lon) == (-31.2304, -121.4737)  # south and west
    assert pos.speed_kmh == 62.5 and pos.heading == 90 and pos.altitude_m == 12
    assert pos.ts == datetime(2026, 11, 29, 14, 5, 9, tzinfo=CHINA_TZ)
    assert pos.alarm == 1 << 29 and pos.mileage_km == 12345.6
    assert pos.alarm_extra == {"area_type": 1, "area_id": 77, "area_direction": 0}


def test_the_splitter_cuts_a_stream_across_reads_and_skips_junk():
    splitter = Splitter()
    frames, junk = splitter.feed(b"noise" + HEARTBEAT + HEARTBEAT[:6])
    assert frames == [HEARTBEAT[1:-1]] and junk == 5
    frames, junk = splitter.feed(HEARTBEAT[6:] + HEARTBEAT[1:])  # a shared flag
    assert frames == [HEARTBEAT[1:-1], HEARTBEAT[1:-1]] and junk == 0


# --- the gateway's session ---------------------------------------------------------------

PHONE = "013912345678"


def registration_2013(plate: str) -> bytes:
    return (struct.pack(">HH", 31, 100) + b"YRD\x00\x00" + b"SIM-808".ljust(20, b"\x00")
            + b"T000001" + bytes([2]) + plate.encode("gbk"))


def answers(handled) -> list[tuple[int, bytes]]:
    out = []
    for wire in handled.answers:
        frame = parse(wire[1:-1])
        out.append((frame.header.msg_id, frame.body))
    return out


def session(terminals=None) -> Session:
    return Session(terminals if terminals is not None else {}, lambda: "c0de", lambda: NOW)


def test_registration_gives_an_authentication_code_and_the_plate_from_gbk():
    handled = session().handle(frame_2013(0x0100, PHONE, 5, registration_2013("沪A12345"))[1:-1])
    [(answer_id, body)] = answers(handled)
    assert answer_id == 0x8100 and body == struct.pack(">HB", 5, 0) + b"c0de"
    terminal = handled.registered
    assert (terminal.terminal, terminal.vehicle_id, terminal.terminal_id) == (
        "13912345678", "沪A12345", "T000001")


def test_a_registration_with_no_valid_plate_is_refused():
    handled = session().handle(frame_2013(0x0100, PHONE, 5, registration_2013("!!"))[1:-1])
    assert answers(handled) == [(0x8100, struct.pack(">HB", 5, m.NO_SUCH_VEHICLE))]
    assert handled.registered is None and handled.rejected[0].reason == "no_such_vehicle"


REGISTERED = {"13912345678": Terminal(
    terminal="13912345678", vehicle_id="沪A12345", plate_colour=2, terminal_id="T000001",
    maker="YRD", model="SIM-808", auth_code="c0de", protocol="2013", registered_at=NOW)}


def general(handled) -> list[int]:
    return [body[4] for answer_id, body in answers(handled) if answer_id == 0x8001]


def test_positions_need_authentication_then_become_pings_of_the_plate():
    s = session(REGISTERED)
    before = s.handle(frame_2013(0x0200, PHONE, 1, location_body())[1:-1])
    assert general(before) == [m.FAILURE] and before.pings == []
    assert before.rejected[0].reason == "not_authenticated"
    assert general(s.handle(frame_2013(0x0102, PHONE, 2, b"wrong")[1:-1])) == [m.FAILURE]
    assert general(s.handle(frame_2013(0x0102, PHONE, 3, b"c0de")[1:-1])) == [m.OK]
    after = s.handle(frame_2013(0x0200, PHONE, 4, location_body(alarm=1))[1:-1])
    assert general(after) == [m.OK]
    [ping] = after.pings
    assert (ping.vehicle_id, ping.lat, ping.lon, ping.speed_kmh, ping.alarm_flags) == (
        "沪A12345", 31.2304, 121.4737, 62.5, 1)
    assert ping.ts.isoformat() == "2026-11-29T14:05:09+08:00" and ping.crs == "WGS84"


def test_a_blind_area_batch_keeps_the_good_positions_and_rejects_a_bad_one():
    s = session(REGISTERED)
    s.handle(frame_2013(0x0102, PHONE, 1, b"c0de")[1:-1])
    items = [location_body(bcd="261129090000"), location_body(speed=4000, bcd="261129090010"),
             location_body(bcd="261129090020")]
    body = struct.pack(">HB", 3, 1) + b"".join(struct.pack(">H", len(i)) + i for i in items)
    handled = s.handle(frame_2013(0x0704, PHONE, 2, body)[1:-1])
    assert general(handled) == [m.OK] and handled.blind == 2
    assert [p.ts.strftime("%H:%M:%S") for p in handled.pings] == ["09:00:00", "09:00:20"]
    assert handled.rejected[0].reason == "invalid" and "speed_kmh" in handled.rejected[0].error


def test_a_long_message_in_sub_packets_is_reassembled():
    s = session(REGISTERED)
    s.handle(frame_2013(0x0102, PHONE, 1, b"c0de")[1:-1])
    items = [location_body(bcd=f"2611290900{i:02d}") for i in range(0, 40, 10)]
    body = struct.pack(">HB", 4, 0) + b"".join(struct.pack(">H", len(i)) + i for i in items)
    halves = [body[:60], body[60:]]
    results = []
    for index, part in enumerate(halves, 1):
        data = (struct.pack(">HH", 0x0704, len(part) | 0x2000) + bytes.fromhex(PHONE)
                + struct.pack(">HHH", 10 + index, 2, index) + part)
        data += bytes([xor(data)])
        results.append(s.handle(data))
    assert results[0].pings == [] and general(results[0]) == [m.OK]
    assert len(results[1].pings) == 4 and general(results[1]) == [m.OK]


def test_unknown_and_unreadable_frames_get_negative_answers_never_an_exception():
    s = session(REGISTERED)
    unknown = s.handle(frame_2013(0x0900, PHONE, 1, b"\x01")[1:-1])
    assert general(unknown) == [m.NOT_SUPPORTED] and unknown.rejected[0].reason == "unsupported"
    wire = bytearray(frame_2013(0x0002, PHONE, 2, b""))
    wire[-2] ^= 0x55
    bad = s.handle(bytes(wire[1:-1]))
    assert general(bad) == [m.BAD_MESSAGE] and bad.rejected[0].reason == "bad_check_code"
    assert bad.rejected[0].raw == bytes(wire)
    s.handle(frame_2013(0x0102, PHONE, 3, b"c0de")[1:-1])
    short = s.handle(frame_2013(0x0200, PHONE, 4, location_body()[:20])[1:-1])
    assert general(short) == [m.BAD_MESSAGE] and short.rejected[0].reason == "truncated"
    assert s.handle(b"\x00\x01")  # too short for a header: rejected, no answer possible


def test_a_2019_frame_cut_inside_its_header_is_truncated_not_an_exception():
    data = struct.pack(">HH", 0x0002, 0x4000) + b"\x01" + bytes.fromhex("0000000001391234")
    data += bytes([xor(data)])
    with pytest.raises(FrameError) as cut:
        parse(data)
    assert cut.value.reason == "truncated"
    handled = session().handle(data)
    assert handled.rejected[0].reason == "truncated" and handled.answers == []


def test_the_header_layout_is_the_one_whose_body_length_fits_the_frame():
    # a 2013 header (BCD[6] phone) with bit 14 set, as some 2013 firmware sends
    data = struct.pack(">HH", 0x0002, 0x4000) + bytes.fromhex(PHONE) + struct.pack(">H", 4)
    header = parse(data + bytes([xor(data)])).header
    assert (header.version, header.flagged, header.terminal, header.serial) == (
        None, True, "13912345678", 4)
    # a true 2019 header of the same message is still read as 2019
    data = (struct.pack(">HH", 0x0002, 0x4000) + b"\x01" + bytes.fromhex("0" * 8 + PHONE)
            + struct.pack(">H", 4))
    header = parse(data + bytes([xor(data)])).header
    assert (header.version, header.flagged, header.terminal) == (1, False, "13912345678")
    # neither fits: the 2019 reading's complaint
    data = struct.pack(">HH", 0x0002, 0x4000 | 9) + bytes.fromhex(PHONE) + struct.pack(">H", 4)
    with pytest.raises(FrameError) as bad:
        parse(data + b"\x00" * 10 + bytes([xor(data + b"\x00" * 10)]))
    assert bad.value.reason == "truncated"
