"""The rest of the ministry's conformance list, both editions, laid out by hand from the
standard's tables (and one frame captured from a platform, published in SmallChi/JT809
``JT809_0x1200_0x1205Test.cs``, MIT licence): vehicles from elsewhere (0x9204), position
exchange started and stopped (0x9205/0x9206, answered 0x1205/0x1206), who drives
(0x920A, 0x120A, 0x120C), listening in (0x9501/0x1501), tachograph data (0x9504/0x1504)
and emergency access (0x9505/0x1505)."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.unit.test_jt809_frame import CIPHER, by_hand, read_back
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.jt808.frame import FrameError
from yrd_hazmat.jt809 import bodies
from yrd_hazmat.jt809 import control as c
from yrd_hazmat.jt809 import exchange as x
from yrd_hazmat.jt809 import frame as f

PLATE = bytes.fromhex("bba6413132333435") + bytes(13)      # "沪A12345" (21)
YELLOW = bytes.fromhex("02")
T = datetime(2026, 12, 7, 10, 30, tzinfo=CHINA_TZ)          # 1796610600 = 0x6b161a28
T_UTC = bytes.fromhex("000000006b161a28")


def up(msg_id: int, body: bytes, version: int):
    """``body`` in a frame of ``version``, encrypted, read back and decoded."""
    frame = read_back(by_hand(msg_id, body, edition=version, key=77), CIPHER)
    assert frame.header.edition == version
    return bodies.read(msg_id, frame.body, version)


# --- 0x9204, 0x9205/0x1205, 0x9206/0x1206 ---------------------------------------------------

def test_car_info_of_a_vehicle_from_elsewhere():
    info = "VIN:=LZZ1BLSJ3EW123456;VEHICLE_TYPE:=43".encode("gbk")
    body = PLATE + YELLOW + bytes.fromhex("9204") + len(info).to_bytes(4, "big") + info
    for version in (2011, 2019):
        message = up(x.DOWN_EXG_MSG, body, version)
        assert (message.plate, message.sub_type) == ("沪A12345", x.CAR_INFO)
        assert message.value == "VIN:=LZZ1BLSJ3EW123456;VEHICLE_TYPE:=43"


@pytest.mark.parametrize("sub, reason", [(0x9205, 2), (0x9206, 3)])
def test_exchange_started_and_stopped(sub, reason):
    body = PLATE + YELLOW + sub.to_bytes(2, "big") + bytes.fromhex("00000001") + bytes([reason])
    assert x.write("沪A12345", 2, sub, x.write_order(x.ExchangeOrder(reason=reason))) == body
    for version in (2011, 2019):
        assert up(x.DOWN_EXG_MSG, body, version).value == x.ExchangeOrder(reason=reason)


@pytest.mark.parametrize("ack, order", [(0x1205, 0x9205), (0x1206, 0x9206)])
def test_exchange_answers(ack, order):
    body_2011 = PLATE + YELLOW + ack.to_bytes(2, "big") + bytes.fromhex("00000000")  # no data
    assert x.write_exchange_ack(ack, x.ExchangeAck(), "沪A12345", 2) == body_2011
    assert up(x.UP_EXG_MSG, body_2011, 2011).value == x.ExchangeAck()
    body_2019 = (PLATE + YELLOW + ack.to_bytes(2, "big")   # DATA_TYPE
                 + order.to_bytes(2, "big")                # SOURCE_DATA_TYPE
                 + bytes.fromhex("00000123")               # SOURCE_MSG_SN 291
                 + bytes.fromhex("00000000"))              # DATA_LENGTH 0 (the table's)
    answer = x.ExchangeAck(source_type=order, source_sn=0x123)
    assert x.write_exchange_ack(ack, answer, "沪A12345", 2, 2019) == body_2019
    message = up(x.UP_EXG_MSG, body_2019, 2019)
    assert (message.plate, message.sub_type, message.value) == ("沪A12345", ack, answer)
    ordinary = PLATE + YELLOW + ack.to_bytes(2, "big") + bytes.fromhex("00000006") \
        + order.to_bytes(2, "big") + bytes.fromhex("00010000")   # an SN ending in 0000
    assert up(x.UP_EXG_MSG, ordinary, 2019).value == \
        x.ExchangeAck(source_type=order, source_sn=0x10000)


def test_a_captured_2019_exchange_answer():
    captured = bytes.fromhex(
        "5B00000044000004571200000004570101010000000000000000004EBC924FB2E2CAD4313131310000"
        "0000000000000000000000041205040000000400000000001B735D")
    frame = read_back(captured, expect=2019)
    message = bodies.read(frame.header.msg_id, frame.body, frame.header.edition)
    assert (message.plate, message.colour, message.sub_type) == ("测试1111", 4, 0x1205)
    assert message.value == x.ExchangeAck(source_type=1024, source_sn=1024)


# --- 0x920A, 0x120A, 0x120C -----------------------------------------------------------------

def _driver_fields() -> bytes:
    return (bytes.fromhex("d5c5c8fd") + bytes(12)                   # DRIVER_NAME 16 "张三"
            + b"310101198001011234" + bytes(2)                       # DRIVER_ID 20
            + b"JS-DG-000123" + bytes(28)                            # LICENCE 40
            + bytes.fromhex("bdadcbd5caa1bdbbcda8d4cbcae4ccfc")      # ORG_NAME 200
            + bytes(184))                                            # "江苏省交通运输厅"


DRIVER = x.Driver(name="张三", driver_id="310101198001011234", licence="JS-DG-000123",
                  org="江苏省交通运输厅")


def test_who_drives_asked_and_answered():
    ask_2011 = PLATE + YELLOW + bytes.fromhex("920a" "00000000")          # no data
    assert up(x.DOWN_EXG_MSG, ask_2011, 2011).value == x.DriverRequest()
    ask_2019 = PLATE + YELLOW + bytes.fromhex("920a" "00000001" "01")     # FLAG: ask terminal
    assert up(x.DOWN_EXG_MSG, ask_2019, 2019).value == x.DriverRequest(flag=x.ASK_TERMINAL)
    assert x.write_driver_request(x.DriverRequest(flag=1), 2019) == bytes.fromhex("01")

    data_2011 = _driver_fields()
    assert len(data_2011) == 276
    assert x.write_driver(DRIVER, x.REPORT_DRIVER_INFO_ACK) == data_2011
    assert up(x.UP_EXG_MSG, x.write("沪A12345", 2, 0x120A, data_2011), 2011).value == DRIVER

    data_2019 = bytes.fromhex("920a" "00000042") + _driver_fields() + T_UTC  # + VALID_DATE
    answer = x.Driver(name="张三", driver_id="310101198001011234", licence="JS-DG-000123",
                      org="江苏省交通运输厅", valid_until=T, source_type=0x920A, source_sn=0x42)
    assert x.write_driver(answer, x.REPORT_DRIVER_INFO_ACK, 2019) == data_2019
    assert up(x.UP_EXG_MSG, x.write("沪A12345", 2, 0x120A, data_2019), 2019).value == answer


def test_who_drives_sent_unasked():
    data_2019 = _driver_fields() + T_UTC
    reported = x.Driver(name="张三", driver_id="310101198001011234", licence="JS-DG-000123",
                        org="江苏省交通运输厅", valid_until=T)
    assert x.write_driver(reported, x.REPORT_DRIVER_INFO, 2019) == data_2019
    message = up(x.UP_EXG_MSG, x.write("沪A12345", 2, 0x120C, data_2019), 2019)
    assert (message.sub_type, message.value) == (0x120C, reported)
    assert up(x.UP_EXG_MSG, x.write("沪A12345", 2, 0x120C, _driver_fields()), 2011).value == DRIVER
    with pytest.raises(FrameError) as short:
        bodies.read(x.UP_EXG_MSG, x.write("沪A12345", 2, 0x120C, _driver_fields()[:200]), 2011)
    assert short.value.reason == "truncated"


# --- 0x9501/0x1501 --------------------------------------------------------------------------

def test_listen_in_and_its_answer():
    data = b"13800138000" + bytes(9)                                    # MONITOR_TEL 20
    body = PLATE + YELLOW + bytes.fromhex("9501" "00000014") + data
    assert c.write("沪A12345", 2, c.MONITOR_VEHICLE_REQ,
                   c.write_listen(c.ListenRequest(tel="13800138000"))) == body
    for version in (2011, 2019):
        assert up(c.DOWN_CTRL_MSG, body, version).value == c.ListenRequest(tel="13800138000")
    assert c.write_result(c.ControlResult(result=c.LISTENING), c.MONITOR_VEHICLE_ACK) == b"\x00"
    answer_2019 = bytes.fromhex("9501" "00000007" "01")     # SOURCE_DATA_TYPE, _MSG_SN, RESULT
    failed = c.ControlResult(source_type=0x9501, source_sn=7, result=c.LISTEN_FAILED)
    assert c.write_result(failed, c.MONITOR_VEHICLE_ACK, 2019) == answer_2019
    message = up(c.UP_CTRL_MSG, c.write("沪A12345", 2, 0x1501, answer_2019), 2019)
    assert (message.sub_type, message.value) == (0x1501, failed)


# --- 0x9504/0x1504 --------------------------------------------------------------------------

def test_tachograph_requests_both_editions():
    version_query = PLATE + YELLOW + bytes.fromhex("9504" "00000001" "01")  # driver info
    assert up(c.DOWN_CTRL_MSG, version_query, 2011).value == c.TachographRequest(command=1)
    records_2011 = bytes.fromhex("08"               # COMMAND_TYPE: speed records
                                 "261207090000"     # START_TIME BCD (China time)
                                 "261207100000"     # END_TIME
                                 "0010")            # MAX 16 blocks
    request = c.TachographRequest(command=8, start=datetime(2026, 12, 7, 9, tzinfo=CHINA_TZ),
                                  end=datetime(2026, 12, 7, 10, tzinfo=CHINA_TZ), max_blocks=16)
    assert c.write_tachograph_request(request) == records_2011
    assert up(c.DOWN_CTRL_MSG, c.write("沪A12345", 2, 0x9504, records_2011), 2011).value == \
        request
    data_2019 = (bytes.fromhex("000000006b160c18"    # START_TIME 2026-12-07 09:30 +08
                               "000000006b161a28"    # END_TIME 10:30
                               "08"))                # COMMAND_TYPE
    request_2019 = c.TachographRequest(command=8, start=datetime(2026, 12, 7, 9, 30,
                                                                 tzinfo=CHINA_TZ), end=T)
    assert c.write_tachograph_request(request_2019, 2019) == data_2019
    assert up(c.DOWN_CTRL_MSG, c.write("沪A12345", 2, 0x9504, data_2019), 2019).value == \
        request_2019


def test_tachograph_answers_both_editions():
    gb19056 = bytes.fromhex("557a01000200" "1201" "ab")   # a GB/T 19056 frame, as sent
    data_2019 = bytes.fromhex("9504" "00000009" "01" "00000009") + gb19056
    answer = c.TachographAnswer(data=gb19056, command=1, source_type=0x9504, source_sn=9)
    assert c.write_tachograph_answer(answer, 2019) == data_2019
    assert up(c.UP_CTRL_MSG, c.write("沪A12345", 2, 0x1504, data_2019), 2019).value == answer
    bare_2011 = bytes.fromhex("00000009") + gb19056           # TRAVELDATA_LENGTH, INFO
    assert c.read_tachograph_answer(bare_2011) == c.TachographAnswer(data=gb19056)
    with_command = bytes.fromhex("01" "00000009") + gb19056   # COMMAND_TYPE first
    assert c.read_tachograph_answer(with_command) == c.TachographAnswer(data=gb19056, command=1)
    assert c.write_tachograph_answer(c.TachographAnswer(data=gb19056, command=1)) == with_command
    with pytest.raises(FrameError) as lying:
        c.read_tachograph_answer(bytes.fromhex("00100000") + gb19056)
    assert lying.value.reason == "truncated"


# --- 0x9505/0x1505 --------------------------------------------------------------------------

def test_emergency_access_and_its_answer():
    data = (bytes.fromhex("12345678901234567890")             # AUTHENTICATION_CODE BCD 10
            + b"cmnet" + bytes(15)                              # ACCESS_POINT_NAME 20
            + b"yrd" + bytes(46)                                # USERNAME 49
            + b"s3cret" + bytes(16)                             # PASSWORD 22
            + b"10.1.2.3" + bytes(24)                           # SERVER_IP 32
            + bytes.fromhex("1e61" "0000")                      # TCP_PORT 7777, UDP_PORT 0
            + T_UTC)                                            # END_TIME
    assert len(data) == 10 + 20 + 49 + 22 + 32 + 2 + 2 + 8
    access = c.EmergencyAccess(auth_code="12345678901234567890", apn="cmnet", user="yrd",
                               password="s3cret", server="10.1.2.3", tcp_port=7777, end=T)
    assert c.write_emergency(access) == data
    for version in (2011, 2019):
        assert up(c.DOWN_CTRL_MSG, c.write("沪A12345", 2, 0x9505, data), version).value == access
    assert "s3cret" not in repr(access)
    answer_2019 = bytes.fromhex("9505" "0000000b" "01")       # no such vehicle
    result = c.ControlResult(source_type=0x9505, source_sn=11, result=c.NO_SUCH_VEHICLE)
    assert c.write_result(result, c.EMERGENCY_MONITORING_ACK, 2019) == answer_2019
    assert up(c.UP_CTRL_MSG, c.write("沪A12345", 2, 0x1505, answer_2019), 2019).value == result
    assert up(c.UP_CTRL_MSG, c.write("沪A12345", 2, 0x1505, b"\x00"), 2011).value == \
        c.ControlResult(result=c.ACCESS_RECEIVED)


@pytest.mark.parametrize("msg_id, sub, data", [
    (x.DOWN_EXG_MSG, 0x9205, b""), (x.UP_EXG_MSG, 0x120A, b"\x92"),
    (c.DOWN_CTRL_MSG, 0x9501, b"138"), (c.DOWN_CTRL_MSG, 0x9505, bytes(40)),
    (c.DOWN_CTRL_MSG, 0x9504, bytes.fromhex("08" "2612")), (c.UP_CTRL_MSG, 0x1501, b""),
    (c.DOWN_CTRL_MSG, 0x9504, bytes.fromhex("08" "99999999999999999999999999" "0001")),
])
def test_short_and_hostile_bodies_are_refused(msg_id, sub, data):
    body = PLATE + YELLOW + sub.to_bytes(2, "big") + len(data).to_bytes(4, "big") + data
    for version in (2011, 2019):
        with pytest.raises(FrameError):
            bodies.read(msg_id, body, version)


def test_frames_of_the_new_messages_read_back_unencrypted():
    body = x.write_exchange_ack(0x1206, x.ExchangeAck(source_type=0x9206, source_sn=5),
                                "沪A12345", 2, 2019)
    wire = f.build(x.UP_EXG_MSG, 3, 30010001, body, edition=2019)
    frame = read_back(wire, expect=2019)
    assert bodies.read(frame.header.msg_id, frame.body, 2019).value == \
        x.ExchangeAck(source_type=0x9206, source_sn=5)
