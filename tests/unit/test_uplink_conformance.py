"""The uplink (YRD as lower platform) and the rest of the ministry's conformance list: what
each of the upper platform's requests becomes, and the frame that answers it, in both
editions. The answers are read back with the library's JT/T 809 codecs, whose layouts
tests/unit/test_jt809_conformance.py checks byte by byte."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from tests.factories import T0
from tests.unit.test_uplink import config, read, step, upper
from yrd_hazmat.core.codec import encode
from yrd_hazmat.jt809 import control, exchange
from yrd_hazmat.jt809.frame import V2011, V2019
from yrd_hazmat.jt809.gnss import Fix
from yrd_hazmat.uplink import requests
from yrd_hazmat.uplink.permits import Permits
from yrd_hazmat.uplink.records import ORIGIN, from_upper
from yrd_hazmat.uplink.session import Session
from yrd_hazmat.uplink.terminal_answers import TerminalAnswers

PLATE = "苏E12345"


def permit(plate=PLATE, **crew) -> bytes:
    return encode({
        "permit_id": "P-1", "vehicle_id": plate, "un_number": "UN1017", "hazard_class": "2.3",
        "cargo_name": "液氯", "quantity_kg": 20000, "valid_from": "2026-12-01T00:00:00+08:00",
        "valid_until": "2026-12-31T00:00:00+08:00",
        "route": {"type": "LineString", "coordinates": [[120.6, 31.3], [121.4, 31.2]]},
        "corridor_m": 500, "origin": "苏州", "destination": "上海", "issuer": "苏州市公安局",
        "provinces": ["JS", "SH"], "waybill_id": "WB-2026-001", "consignor": "苏州化工",
        "carrier": "苏州危运", **crew})


CREW = {"driver_name": "张三", "driver_id": "320501198001011234",
        "driver_licence": "JS-DG-000123", "driver_licence_issuer": "苏州市交通运输局"}


def handle(body: bytes, msg_id: int, edition: int, permits: Permits | None = None,
           serial: int = 99):
    return requests.handle(upper(msg_id, body, edition, serial), link="slave", edition=edition,
                           now=T0, inspection_answer_s=600, command_expiry_s=3600,
                           permits=permits)


@pytest.mark.parametrize("edition", [V2011, V2019])
@pytest.mark.parametrize("sub, kind, ack", [(0x9205, "exchange_start", 0x1205),
                                            (0x9206, "exchange_stop", 0x1206)])
def test_exchange_orders_are_answered_at_once(edition, sub, kind, ack):
    body = exchange.write(PLATE, 2, sub, exchange.write_order(exchange.ExchangeOrder(reason=1)))
    out = handle(body, exchange.DOWN_EXG_MSG, edition)
    assert out.request.kind == kind and out.request.plate == PLATE
    assert out.request.question in ("designated by hand", "stopped by hand")
    assert out.answer.request == out.request and out.command is None
    f, message = read(Session(config(edition)).answer(out.answer), edition)
    assert f.header.msg_id == exchange.UP_EXG_MSG
    assert (message.sub_type, message.plate) == (ack, PLATE)
    expected = exchange.ExchangeAck() if edition == V2011 else \
        exchange.ExchangeAck(source_type=sub, source_sn=99)
    assert message.value == expected


@pytest.mark.parametrize("edition", [V2011, V2019])
def test_who_drives_is_answered_from_the_permit(edition):
    permits = Permits()
    permits.apply(PLATE.encode(), permit(**CREW))
    data = exchange.write_driver_request(exchange.DriverRequest(flag=0), edition)
    out = handle(exchange.write(PLATE, 2, exchange.DOWN_REPORT_DRIVER_INFO, data),
                 exchange.DOWN_EXG_MSG, edition, permits, serial=321)
    assert out.request.kind == "driver"
    _, message = read(Session(config(edition)).answer(out.answer), edition)
    assert message.sub_type == exchange.REPORT_DRIVER_INFO_ACK
    driver = message.value
    assert (driver.name, driver.driver_id, driver.licence, driver.org) == \
        ("张三", "320501198001011234", "JS-DG-000123", "苏州市交通运输局")
    assert driver.source_sn == (321 if edition == V2019 else None)
    unknown = handle(exchange.write("浙A99999", 2, exchange.DOWN_REPORT_DRIVER_INFO, data),
                     exchange.DOWN_EXG_MSG, edition, permits)
    _, blank = read(Session(config(edition)).answer(unknown.answer), edition)
    assert blank.value.name == "" and blank.plate == "浙A99999"  # answered, nobody known


def test_the_waybill_is_answered_from_the_permit():
    permits = Permits()
    permits.apply(PLATE.encode(), permit(**CREW))
    out = handle(exchange.write(PLATE, 2, exchange.TAKE_EWAYBILL_REQ, b""),
                 exchange.DOWN_EXG_MSG, V2019, permits, serial=5)
    _, message = read(Session(config(V2019)).answer(out.answer), V2019)
    assert message.sub_type == exchange.TAKE_EWAYBILL_ACK and message.value.source_sn == 5
    pairs = dict(p.split(":=", 1) for p in message.value.text.split(";"))
    assert pairs["WAYBILL_ID"] == "WB-2026-001" and pairs["UN"] == "UN1017"
    assert pairs["CARGO"] == "液氯" and pairs["DRIVER_NAME"] == "张三"
    assert pairs["CONSIGNOR"] == "苏州化工"


def test_a_new_driver_is_reported_unasked_once_the_topic_is_read():
    permits = Permits()
    permits.apply(PLATE.encode(), permit(**CREW))
    permits.apply(b"\xe2\x80", b"{not json")      # neither a crash nor a report
    assert permits.changed() == []                # read at start: not news
    permits.live = True
    permits.apply(PLATE.encode(), permit(**CREW))  # the same crew again
    assert permits.changed() == []
    permits.apply(PLATE.encode(), permit(**(CREW | {"driver_name": "李四",
                                                     "driver_id": "320501199001011234"})))
    ((plate, driver),) = permits.changed()
    assert plate == PLATE and driver.name == "李四"
    for edition in (V2011, V2019):
        _, message = read(Session(config(edition)).driver(plate, driver), edition)
        assert message.sub_type == exchange.REPORT_DRIVER_INFO and message.value.name == "李四"
    permits.apply(PLATE.encode(), None)            # revoked
    assert permits.driver(PLATE) is None


@pytest.mark.parametrize("edition", [V2011, V2019])
def test_positions_of_a_vehicle_from_elsewhere_become_pings(edition):
    fix = Fix(ts=T0, lat=31.3, lon=120.6, speed_kmh=55.0, heading=90, status=0b11)
    live = handle(exchange.write("皖A00001", 2, exchange.CAR_LOCATION,
                                 exchange.write_location(fix, edition)),
                  exchange.DOWN_EXG_MSG, edition)
    (ping,) = live.pings
    assert (ping.vehicle_id, ping.ts, ping.lat, ping.lon, ping.blind) == \
        ("皖A00001", T0, 31.3, 120.6, False)
    later = [msgspec.structs.replace(fix, ts=T0 + timedelta(seconds=30 * i)) for i in range(3)]
    history = handle(exchange.write("皖A00001", 2, exchange.HISTORY_ARCOSSAREA,
                                    exchange.write_history(later, edition)),
                     exchange.DOWN_EXG_MSG, edition)
    assert [p.ts for p in history.pings] == [f.ts for f in later]
    assert all(p.blind for p in history.pings) and history.request is None
    assert from_upper([ORIGIN]) and not from_upper(None) and not from_upper([("x", b"y")])


def test_car_info_of_a_vehicle_from_elsewhere_is_a_notice():
    out = handle(exchange.write("皖A00001", 2, exchange.CAR_INFO, "VIN:=LZZ1;TYPE:=43".encode()),
                 exchange.DOWN_EXG_MSG, V2011)
    assert out.request.kind == "notice" and out.request.question == "VIN:=LZZ1;TYPE:=43"
    assert out.answer is None


@pytest.mark.parametrize("edition", [V2011, V2019])
@pytest.mark.parametrize("status, result", [("ok", control.LISTENING),
                                            ("unsupported", control.LISTEN_FAILED)])
def test_listen_in_calls_back_through_the_terminal(edition, status, result):
    body = control.write(PLATE, 2, control.MONITOR_VEHICLE_REQ,
                         control.write_listen(control.ListenRequest(tel="13800138000")))
    out = handle(body, control.DOWN_CTRL_MSG, edition, serial=12)
    command = out.command
    assert (command.kind, command.phone, command.listen) == ("call_back", "13800138000", True)
    assert out.request.kind == "listen" and out.request.command_id == command.command_id
    answers = TerminalAnswers()
    answers.request(out.request, T0)
    answers.result(step(command, status, 1))
    (answer,) = answers.take()
    _, message = read(Session(config(edition)).answer(answer), edition)
    assert message.sub_type == control.MONITOR_VEHICLE_ACK and message.value.result == result
    assert message.value.source_sn == (12 if edition == V2019 else None)


@pytest.mark.parametrize("edition", [V2011, V2019])
def test_tachograph_data_goes_up_as_the_terminal_sent_it(edition):
    from yrd_hazmat.core.models import CommandResult

    body = control.write(PLATE, 2, control.TAKE_TRAVEL_DATA_REQ, control.write_tachograph_request(
        control.TachographRequest(command=1), edition))
    out = handle(body, control.DOWN_CTRL_MSG, edition, serial=13)
    assert (out.command.kind, out.command.command_word) == ("tachograph", 1)
    answers = TerminalAnswers()
    answers.request(out.request, T0)
    answers.result(CommandResult(command_id=out.command.command_id, vehicle_id=PLATE,
                                 status="ok", at=T0 + timedelta(minutes=1),
                                 data="557a0100020012", command_word=1))
    (answer,) = answers.take()
    _, message = read(Session(config(edition)).answer(answer), edition)
    assert message.sub_type == control.TAKE_TRAVEL_DATA_ACK
    assert message.value.data == bytes.fromhex("557a0100020012")
    assert message.value.command == 1


@pytest.mark.parametrize("edition", [V2011, V2019])
def test_emergency_access_reaches_the_terminal_without_printing_the_password(edition):
    access = control.EmergencyAccess(auth_code="12345678901234567890", apn="cmnet", user="u",
                                     password="s3cret", server="10.9.8.7", tcp_port=7611,
                                     end=T0 + timedelta(hours=2))
    out = handle(control.write(PLATE, 2, control.EMERGENCY_MONITORING_REQ,
                               control.write_emergency(access)), control.DOWN_CTRL_MSG, edition)
    command = out.command
    assert (command.kind, command.server, command.tcp_port, command.minutes) == \
        ("emergency_access", "10.9.8.7", 7611, 120)
    assert "s3cret" not in encode(out.request).decode()
    answers = TerminalAnswers()
    answers.request(out.request, T0)
    answers.result(step(command, "failed"))
    (answer,) = answers.take()
    _, message = read(Session(config(edition)).answer(answer), edition)
    assert message.sub_type == control.EMERGENCY_MONITORING_ACK
    assert message.value.result == control.ACCESS_FAILED
    nobody = handle(control.write("沪A 123;45", 2, control.EMERGENCY_MONITORING_REQ,
                                  control.write_emergency(access)), control.DOWN_CTRL_MSG, edition,
                    serial=100)
    assert nobody.command is None  # no terminal can have that plate
    answers.request(nobody.request, T0)
    (none,) = answers.take()
    assert none.result == control.NO_SUCH_VEHICLE


def test_the_desk_never_shows_an_emergency_access_dial_password():
    from yrd_hazmat.commands import make_command
    from yrd_hazmat.desk.commands import CommandBook

    command = make_command(PLATE, "emergency_access", by="uplink-1", now=T0, expires_in_s=600,
                           server="10.9.8.7", tcp_port=7611, minutes=30, dial_password="s3cret")
    book = CommandBook()
    book.add(command)
    view = book.view(command.command_id)
    assert view["server"] == "10.9.8.7" and view["dial_password"] == "****"
    assert "s3cret" not in repr(command) and "s3cret" not in str(book.of_vehicle(PLATE))


@pytest.mark.parametrize("edition", [V2011, V2019])
def test_static_information_is_answered_from_what_the_platform_knows(edition):
    from yrd_hazmat.jt809 import static

    permits = Permits()
    permits.apply(PLATE.encode(), permit(**CREW))
    out = handle(static.write(PLATE, 2, static.VEHICLE_ADDED), static.DOWN_BASE_MSG, edition,
                 permits, serial=44)
    assert out.request.kind == "static_info" and out.command is None
    f, message = read(Session(config(edition)).answer(out.answer), edition)
    assert (f.header.msg_id, message.sub_type, message.plate) == \
        (static.UP_BASE_MSG, static.VEHICLE_ADDED_ACK, PLATE)
    assert message.value.fields == {"VEHICLE_COLOR": "2", "TRANS_TYPE": "030",
                                    "OWERS_NAME": "苏州危运"}
    assert message.value.source_sn == (44 if edition == V2019 else None)
