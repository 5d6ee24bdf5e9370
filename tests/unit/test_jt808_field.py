"""JT/T 808 as terminals in the field send it: maker profiles, malformed items, the three
registration layouts, 2013 frames under the 2019 flag, reports without a fix, and the
data-quality classification of every record.

Frames are laid out byte by byte from the standard here (struct.pack, hex), or are real
captures from Traccar's test suite (github.com/traccar/traccar,
src/test/java/org/traccar/protocol/Jt808ProtocolDecoderTest.java, formerly
HuabaoProtocolDecoderTest.java), each cited where it is used."""

from __future__ import annotations

import struct
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from yrd_hazmat.gateway import metrics
from yrd_hazmat.gateway.registry import Declarations
from yrd_hazmat.gateway.session import QUALIFIED, Classified, Session
from yrd_hazmat.jt808 import messages as m
from yrd_hazmat.jt808 import profiles
from yrd_hazmat.jt808.frame import parse
from yrd_hazmat.core.models import Terminal, VehicleTerminal
from yrd_hazmat.core.timeutil import CHINA_TZ

NOW = datetime(2026, 11, 29, 14, 0, tzinfo=CHINA_TZ)
PHONE = "013912345678"
PLATE = "沪A12345"


def xor(data: bytes) -> int:
    code = 0
    for b in data:
        code ^= b
    return code


def wrap(data: bytes) -> bytes:
    """Header and body with their check code, escaped: the content between the flags."""
    data += bytes([xor(data)])
    return data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def frame_2013(msg_id: int, body: bytes, serial: int = 1, phone: str = PHONE,
               props: int = 0) -> bytes:
    """Content of a frame with a 2013 header (``props``: extra attribute bits)."""
    return wrap(struct.pack(">HH", msg_id, len(body) | props) + bytes.fromhex(phone)
                + struct.pack(">H", serial) + body)


def frame_2019(msg_id: int, body: bytes, serial: int = 1, phone: str = "0" * 8 + PHONE) -> bytes:
    """Content of a frame with a 2019 header: flag bit 14, version byte 1, BCD[10] phone."""
    return wrap(struct.pack(">HH", msg_id, len(body) | 0x4000) + b"\x01" + bytes.fromhex(phone)
                + struct.pack(">H", serial) + body)


def real(hex_frame: str) -> bytes:
    """A captured frame's content between its flags."""
    return bytes.fromhex(hex_frame)[1:-1]


def location_body(status: int = 0b11, lat: int = 31_230_400, lon: int = 121_473_700,
                  altitude: int = 12, speed: int = 625, heading: int = 90,
                  bcd: str = "261129140509", extra: bytes = b"") -> bytes:
    return struct.pack(">IIIIHHH", 0, status, lat, lon, altitude & 0xFFFF, speed, heading) + \
        bytes.fromhex(bcd) + extra


def terminal(maker: str = "YRD", model: str = "SIM-808") -> Terminal:
    return Terminal(terminal="13912345678", vehicle_id=PLATE, plate_colour=2,
                    terminal_id="T000001", maker=maker, model=model, auth_code="c0de",
                    protocol="2013", registered_at=NOW)


def authenticated(maker: str = "YRD", model: str = "SIM-808",
                  declarations: dict[str, VehicleTerminal] | None = None) -> Session:
    session = Session({"13912345678": terminal(maker, model)}, lambda: "c0de", lambda: NOW,
                      declarations)
    assert session.handle(frame_2013(0x0102, b"c0de")).rejected == []
    return session


def answers(handled) -> list[tuple[int, bytes]]:
    return [(f.header.msg_id, f.body) for f in (parse(a[1:-1]) for a in handled.answers)]


def report(session: Session, body: bytes):
    return session.handle(frame_2013(0x0200, body, serial=7))


# --- terminal profiles ----------------------------------------------------------------------

LEAK = bytes([0xE1, 1, 1])
BATTERY_45 = bytes([0xE1, 1, 45])


def test_a_trackers_battery_byte_is_not_a_tank_leak():
    declared = {PLATE: VehicleTerminal(vehicle_id=PLATE, carrier="acme",
                                       profile="tracker-battery-e1")}
    [ping] = report(authenticated(declarations=declared), location_body(extra=BATTERY_45)).pings
    assert ping.alarm_extra == {"battery_pct": 45} and ping.raw_items is None


def test_the_tank_sensor_profile_raises_the_leak_for_the_simulated_terminal():
    [ping] = report(authenticated("YRD", "SIM-808"), location_body(extra=LEAK)).pings
    assert ping.alarm_extra == {"tank_leak": 1}
    assert profiles.matching("YRD", "SIM-808").name == "yrd-tank-sensor"


def test_an_unprofiled_terminals_maker_items_are_kept_raw_and_counted():
    extra = BATTERY_45 + bytes([0xEA, 2, 0x00, 0x01]) + bytes([0x30, 1, 0x1B])
    handled = report(authenticated("70111", "BSJ-A6-BD"), location_body(extra=extra))
    [ping] = handled.pings
    assert ping.alarm_extra is None and ping.raw_items == {"e1": "2d", "ea": "0001"}
    assert handled.maker_items == 2 and ping.quality == []


def test_a_carriers_declaration_overrides_the_registration():
    # the terminal registers as our tank terminal, the carrier says it is a tracker
    declared = {PLATE: VehicleTerminal(vehicle_id=PLATE, carrier="acme",
                                       profile="tracker-battery-e1")}
    [ping] = report(authenticated("YRD", "SIM-808", declared), location_body(extra=LEAK)).pings
    assert ping.alarm_extra == {"battery_pct": 1}
    # a declared maker and model no profile knows: raw, not the registration's reading
    unknown = {PLATE: VehicleTerminal(vehicle_id=PLATE, carrier="acme", maker="ACME",
                                      model="X1")}
    [ping] = report(authenticated("YRD", "SIM-808", unknown), location_body(extra=LEAK)).pings
    assert ping.alarm_extra is None and ping.raw_items == {"e1": "01"}
    # declared by maker and model
    by_model = {PLATE: VehicleTerminal(vehicle_id=PLATE, carrier="acme", maker="YRD",
                                       model="SIM-808B")}
    [ping] = report(authenticated("70111", "BSJ", by_model), location_body(extra=LEAK)).pings
    assert ping.alarm_extra == {"tank_leak": 1}


def test_a_profiled_item_of_another_size_is_not_read_with_the_profile():
    two_bytes = bytes([0xE1, 2, 0x00, 0x72])  # Traccar: a 2-byte 0xE1 is another quantity
    [ping] = report(authenticated("YRD", "SIM-808"), location_body(extra=two_bytes)).pings
    assert ping.alarm_extra is None and ping.raw_items == {"e1": "0072"}


def test_the_battery_level_of_a_captured_tracker_frame():
    # Traccar Jt808ProtocolDecoderTest, commit 5da3b8fcb "Decode 808 battery level":
    # ... 01 04 00000000 | 30 01 1b | 31 01 0e | e1 01 2d | ea 02 0001 (battery 45 %)
    frame = parse(real("7e0200002f017028775424038d000000000000000a0189dbeb04ca653a0000001201"
                       "4723040700074401040000000030011b31010ee1012dea020001dc7e"))
    tracker = m.read_location(frame.body, profiles.by_name("tracker-battery-e1"))
    assert tracker.alarm_extra == {"battery_pct": 45} and tracker.raw_items == {"ea": "0001"}
    assert m.read_location(frame.body).raw_items == {"e1": "2d", "ea": "0001"}


def test_the_declarations_follow_their_compacted_topic():
    declarations = Declarations()
    declarations.apply(PLATE.encode(), ('{"vehicle_id": "%s", "carrier": "acme", '
                                        '"profile": "tracker-battery-e1"}' % PLATE).encode())
    declarations.apply(b"x", b"not json")
    assert declarations[PLATE].profile == "tracker-battery-e1" and len(declarations) == 1
    declarations.apply(PLATE.encode(), None)
    assert PLATE not in declarations


# --- malformed trailing items ---------------------------------------------------------------


def test_an_item_running_past_the_body_is_dropped_and_the_position_kept():
    extra = bytes([0x01, 4]) + struct.pack(">I", 1234) + bytes([0x30, 9, 0x1B])  # 9 > 1 left
    handled = report(authenticated(), location_body(extra=extra))
    [ping] = handled.pings
    assert ping.mileage_km == 123.4 and ping.quality == ["malformed_item"]
    assert handled.malformed_items == 1 and answers(handled)[0][1][4] == m.OK
    assert handled.quality == [Classified(PLATE, None, "malformed_item")]


def test_zero_padding_of_a_captured_carscop_frame_keeps_the_position():
    # Traccar, commit 42af749b7 "Support Carscop CCTR-830G-4G": after the 28 bytes,
    # 00 00 00 00 00 00 00 00 00 78 00000000 18 000000 -- item 0x00 of length 120
    frame = parse(real("7e0200002e202000129707001c0000000000001c0601a2f0a8091f0bf0000000000"
                       "0ed201103031733000000000000000000780000000018000000267e"))
    position = m.read_location(frame.body)
    assert (position.lat, position.lon) == (-27.455656, 153.029616)
    assert position.malformed_items == 1 and position.alarm_extra is None


def test_a_lone_trailing_byte_is_a_malformed_item():
    assert m.read_location(location_body(extra=b"\x01")).malformed_items == 1
    assert m.read_location(location_body()).malformed_items == 0


# --- registration layouts -------------------------------------------------------------------


def registered(handled) -> Terminal:
    assert handled.rejected == [], handled.rejected
    return handled.registered


def test_a_2011_registration_of_a_captured_bsj_terminal():
    # Traccar, commit f421a3f72 "Add Huabao test cases": maker 70111, model "BSJ-M7B "
    # (8 bytes), terminal id 0000000, colour 1, plate 粤B88888
    frame = parse(real("7E01000021013345678906000F002C012F373031313142534A2D4D374220303030"
                       "3030303001D4C1423838383838B47E"))
    reg = m.read_registration(frame.body, frame.header.version)
    assert (reg.layout, reg.maker, reg.model, reg.terminal_id, reg.plate_colour, reg.plate) == (
        "2011", "70111", "BSJ-M7B", "0000000", 1, "粤B88888")


def test_a_2011_registration_by_hand_registers_the_terminal():
    body = (struct.pack(">HH", 32, 100) + b"BSJ01" + b"GB-100  " + b"A123456" + bytes([2])
            + "苏E12345".encode("gbk"))
    terminal = registered(Session({}, lambda: "c0de", lambda: NOW).handle(
        frame_2013(0x0100, body)))
    assert (terminal.vehicle_id, terminal.maker, terminal.model, terminal.terminal_id) == (
        "苏E12345", "BSJ01", "GB-100", "A123456")
    assert terminal.protocol == "2011"  # the layout of its registration


def test_a_2013_registration_of_a_captured_bsj_terminal():
    # Traccar Jt808ProtocolDecoderTest: maker 70111, model BSJ-A6-BD (20 bytes), id 0567872
    frame = parse(real("7e0100002d0141305678720024002c012f373031313142534a2d41362d42440000"
                       "0000000000000000003035363738373201d4c14238383838386d7e"))
    reg = m.read_registration(frame.body, frame.header.version)
    assert (reg.layout, reg.model, reg.terminal_id, reg.plate) == (
        "2013", "BSJ-A6-BD", "0567872", "粤B88888")


def test_a_2019_registration_by_hand_and_a_captured_one():
    body = (struct.pack(">HH", 31, 0) + b"YRD".ljust(11, b"\x00")
            + b"SIM-808-2019".ljust(30, b"\x00") + b"T1".ljust(30, b"\x00") + bytes([1])
            + PLATE.encode("gbk"))
    terminal = registered(Session({}, lambda: "c0de", lambda: NOW).handle(
        frame_2019(0x0100, body)))
    assert (terminal.model, terminal.terminal_id, terminal.protocol) == (
        "SIM-808-2019", "T1", "2019")
    # Traccar Jt808ProtocolDecoderTest: a 2019 header, model MD300, terminal id its IMEI,
    # no plate (colour 4 and NULs)
    frame = parse(real(
        "7e0100405c010000086649607758216452180000000000000000000000000000004d4433303000000000"
        "000000000000000000000000000000000000000000383636343936303737353832313634000000000000"
        "00000000000000000004000000000000000000000000000000007a7e"))
    reg = m.read_registration(frame.body, frame.header.version)
    assert (reg.layout, reg.model, reg.terminal_id, reg.plate) == (
        "2019", "MD300", "866496077582164", "")


def test_a_2013_registration_under_a_2019_header():
    body = (struct.pack(">HH", 31, 0) + b"YRD\x00\x00" + b"SIM-808".ljust(20, b"\x00")
            + b"T000001" + bytes([2]) + PLATE.encode("gbk"))
    terminal = registered(Session({}, lambda: "c0de", lambda: NOW).handle(
        frame_2019(0x0100, body)))
    assert (terminal.model, terminal.vehicle_id, terminal.protocol) == ("SIM-808", PLATE, "2013")


def test_a_registration_that_fits_no_layout_is_a_bad_message():
    handled = Session({}, lambda: "c0de", lambda: NOW).handle(
        frame_2013(0x0100, struct.pack(">HH", 31, 0) + b"\x07" * 40))
    assert handled.rejected[0].reason == "bad_message"
    assert answers(handled) == [(0x8001, struct.pack(">HHB", 1, 0x0100, m.BAD_MESSAGE))]


# --- the 2019 flag on 2013 frames -----------------------------------------------------------


def test_a_2013_frame_with_the_2019_bit_is_read_and_answered_in_its_form():
    session = Session({"13912345678": terminal()}, lambda: "c0de", lambda: NOW)
    handled = session.handle(frame_2013(0x0102, b"c0de", serial=3, props=0x4000))
    assert handled.rejected == [] and session.authenticated
    [answer] = handled.answers
    data = answer[1:-2]  # an answer as the terminal sends: 2013 header, flag set
    assert struct.unpack_from(">HH", data) == (0x8001, 0x4000 | 5)
    assert data[4:10] == bytes.fromhex(PHONE) and data[12:] == struct.pack(">HHB", 3, 0x0102, 0)
    ping = session.handle(frame_2013(0x0200, location_body(), props=0x4000)).pings
    assert len(ping) == 1
    heartbeat = session.handle(frame_2013(0x0002, b"", props=0x4000))  # 12-byte header only
    assert heartbeat.rejected == [] and parse(heartbeat.answers[0][1:-1]).header.flagged


def test_a_2013_authentication_body_under_a_2019_header():
    session = Session({"13912345678": terminal()}, lambda: "c0de", lambda: NOW)
    handled = session.handle(frame_2019(0x0102, b"c0de"))
    assert handled.rejected == [] and session.authenticated
    assert parse(handled.answers[0][1:-1]).header.version == 1  # answered as 2019
    body_2019 = bytes([4]) + b"c0de" + b"860000000000000" + b"1.0".ljust(20, b"\x00")
    assert m.read_authentication(body_2019) == "c0de"


# --- fix validity ---------------------------------------------------------------------------


def test_a_report_without_a_fix_is_proof_of_life_not_a_position():
    handled = report(authenticated(), location_body(status=0b01))  # ACC on, bit 1 clear
    [ping] = handled.pings
    assert ping.fix_valid is False and ping.quality == ["no_fix"]
    assert (ping.lat, ping.lon) == (31.2304, 121.4737)  # as sent: in range
    [ping] = report(authenticated(), location_body(status=0, lat=95_000_000)).pings
    assert (ping.lat, ping.lon, ping.fix_valid) == (0.0, 121.4737, False)
    assert handled.quality == [Classified(PLATE, None, "no_fix")]


# --- data-quality classification ------------------------------------------------------------


def test_each_finding_on_an_accepted_ping():
    session = authenticated()
    [ping] = report(session, location_body(heading=360)).pings
    assert ping.heading is None and ping.quality == ["bad_direction"]
    [ping] = report(session, location_body(altitude=9500)).pings
    assert ping.altitude_m is None and ping.quality == ["bad_altitude"]
    [ping] = report(session, location_body(altitude=-600)).pings  # two's complement WORD
    assert ping.quality == ["bad_altitude"]
    [ping] = report(session, location_body(altitude=-100, heading=359)).pings
    assert (ping.altitude_m, ping.heading, ping.quality) == (-100, 359, [])
    handled = report(session, location_body(status=0, heading=400, extra=b"\x01"))
    assert handled.pings[0].quality == ["no_fix", "bad_direction", "malformed_item"]
    assert handled.quality == [Classified(PLATE, None, "no_fix")]  # counted once, first


def test_refused_positions_are_classified_by_their_finding():
    declared = {PLATE: VehicleTerminal(vehicle_id=PLATE, carrier="acme")}
    session = authenticated(declarations=declared)
    fast = report(session, location_body(speed=3001))
    assert fast.pings == [] and fast.rejected[0].reason == "invalid"
    assert fast.quality == [Classified(PLATE, "acme", "bad_speed")]
    assert answers(fast)[0][1][4] == m.BAD_MESSAGE
    off_the_map = report(session, location_body(lat=91_000_000))
    assert off_the_map.rejected[0].reason == "invalid"
    assert off_the_map.quality == [Classified(PLATE, "acme", "bad_position")]
    bad_time = report(session, location_body(bcd="261329140509"))  # month 13
    assert bad_time.quality == [Classified(PLATE, "acme", "bad_message")]
    good = report(session, location_body())
    assert good.quality == [Classified(PLATE, "acme", QUALIFIED)]


def test_a_batch_classifies_every_item_and_marks_blind_ones():
    session = authenticated()
    items = [location_body(bcd="261129090000"), location_body(speed=4000),
             location_body(status=0)]
    body = struct.pack(">HB", 3, 1) + b"".join(struct.pack(">H", len(i)) + i for i in items)
    handled = session.handle(frame_2013(0x0704, body))
    assert [p.blind for p in handled.pings] == [True, True] and handled.blind == 2
    assert [c.quality for c in handled.quality] == [QUALIFIED, "bad_speed", "no_fix"]
    regular = struct.pack(">HB", 1, 0) + struct.pack(">H", len(items[0])) + items[0]
    assert [p.blind for p in session.handle(frame_2013(0x0704, regular)).pings] == [False]
    assert report(session, items[0]).pings[0].blind is False


def test_refused_frames_are_classified_by_their_reason():
    session = Session({}, lambda: "c0de", lambda: NOW)
    unsent = session.handle(frame_2013(0x0200, location_body()))
    assert unsent.quality == [Classified(None, None, "not_authenticated")]


def test_the_metrics_count_each_classification_per_carrier():
    declared = {PLATE: VehicleTerminal(vehicle_id=PLATE, carrier="acme-metrics")}
    session = authenticated(declarations=declared)
    handled = report(session, location_body(extra=bytes([0xEE, 1, 0]) + b"\x00\x00"))

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = value("yrd_gateway_records_total", protocol="jt808", carrier="acme-metrics",
                   quality="malformed_item")
    raw_before = value("yrd_gateway_maker_items_raw_total", protocol="jt808")
    metrics.count_quality(handled, "jt808")
    assert value("yrd_gateway_records_total", protocol="jt808", carrier="acme-metrics",
                 quality="malformed_item") == before + 1
    assert value("yrd_gateway_maker_items_raw_total", protocol="jt808") == raw_before + 1


# --- dead letters and robustness -----------------------------------------------------------


def test_a_failed_authentications_dead_letters_are_keyed_by_the_phone():
    session = Session({}, lambda: "c0de", lambda: NOW)
    assert session.dead_letter_key() is None
    failed = session.handle(frame_2013(0x0102, b"nope"))
    assert failed.rejected[0].reason == "auth_failed"
    assert session.dead_letter_key() == "13912345678"
    session.handle(b"\x00\x01")  # unreadable: still this connection's terminal
    assert session.dead_letter_key() == "13912345678"


def test_a_frame_with_a_bad_escape_still_gets_its_negative_answer():
    content = bytearray(frame_2013(0x0002, b""))
    content[-1:-1] = b"\x7d\x05"  # not an escape, before the check code
    handled = Session({}, lambda: "c0de", lambda: NOW).handle(bytes(content))
    assert handled.rejected[0].reason == "bad_escape"
    assert answers(handled) == [(0x8001, struct.pack(">HHB", 1, 0x0002, m.BAD_MESSAGE))]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([0x0100, 0x0102, 0x0200, 0x0704, 0x0002]),
       st.integers(0, 0xFFFF))
def test_handle_never_raises_on_arbitrary_bytes(junk: bytes, msg_id: int, props: int):
    session = authenticated()
    for content in (junk, frame_2013(msg_id, junk), frame_2019(msg_id, junk),
                    frame_2013(msg_id, junk, props=props & 0x7C00)):
        handled = session.handle(content)
        assert len(handled.quality) == len(handled.pings) + len(handled.rejected)
