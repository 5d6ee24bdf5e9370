"""JT/T 809 alarms (0x1400/0x9400): alarms sent up (0x1402), warning tips (0x9402),
supervision orders (0x9401) and their answers (0x1401, 0x1412, 0x1403), both editions,
laid out by hand from the standard's tables; and the 2019 captures of the ministry's
conformance test (SmallChi/JT809 GuoJian001Test.cs)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.unit.test_jt809_frame import CIPHER, by_hand, read_back
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.jt808.frame import FrameError
from yrd_hazmat.jt809 import alarms as a
from yrd_hazmat.jt809 import bodies, frame as f

TS = datetime(2026, 11, 29, 14, 5, 9, tzinfo=CHINA_TZ)      # 0x6b0bc095 UTC seconds
DEADLINE = TS + timedelta(hours=1)                          # 0x6b0bcea5
PLATE = bytes.fromhex("bba6413132333435") + bytes(13)       # "沪A12345" (21)
OVERSPEED_TEXT = bytes.fromhex("b3accbd9b1a8beaf")          # "超速报警"
PLATFORM = bytes.fromhex("3132333435363738393031")          # "12345678901" (11)

ALARM_2011 = bytes.fromhex(
    "02"                    # WARN_SRC: enterprise platform
    "0001"                  # WARN_TYPE: overspeed
    "000000006b0bc095"      # WARN_TIME
    "00000007"              # INFO_ID
    "00000008") + OVERSPEED_TEXT   # INFO_LENGTH, INFO_CONTENT
ALARM_2019 = (PLATFORM                              # SOURCE_PLATFORM_ID
              + bytes.fromhex("0001")               # WARN_TYPE
              + bytes.fromhex("000000006b0bc095")   # WARN_TIME
              + bytes.fromhex("000000006b0bc095")   # START_TIME
              + bytes.fromhex("000000006b0bcea5")   # END_TIME
              + PLATE + bytes.fromhex("02")         # VEHICLE_NO, VEHICLE_COLOR
              + bytes(11)                           # DESTINATION_PLATFORM_ID: none
              + bytes.fromhex("000003e9")           # DRV_LINE_ID 1001
              + bytes.fromhex("00000008") + OVERSPEED_TEXT)


def test_alarm_up_2011():
    alarm = a.Alarm(warn_src=a.FROM_ENTERPRISE, warn_type=a.OVERSPEED, warn_time=TS, info_id=7,
                    content="超速报警")
    assert a.write_alarm(alarm) == ALARM_2011 and a.read_alarm(ALARM_2011) == alarm
    body = PLATE + bytes.fromhex("02" "1402") + len(ALARM_2011).to_bytes(4, "big") + ALARM_2011
    assert a.write(a.ADPT_INFO, ALARM_2011, 2011, "沪A12345", 2) == body
    message = bodies.read(a.UP_WARN_MSG, body, 2011)
    assert (message.plate, message.colour, message.value) == ("沪A12345", 2, alarm)
    with pytest.raises(ValueError):
        a.write(a.ADPT_INFO, ALARM_2011, 2011)


def test_alarm_up_2019_and_the_shorter_layout():
    alarm = a.Alarm(platform_id="12345678901", warn_type=a.OVERSPEED, warn_time=TS,
                    start_time=TS, end_time=DEADLINE, plate="沪A12345", colour=2,
                    destination_id="", line_id=1001, content="超速报警")
    assert len(ALARM_2019) == 78 + 8
    assert a.write_alarm(alarm, a.ADPT_INFO, 2019) == ALARM_2019
    assert a.read_alarm(ALARM_2019, a.ADPT_INFO, 2019) == alarm
    body = bytes.fromhex("1402") + len(ALARM_2019).to_bytes(4, "big") + ALARM_2019  # no vehicle
    assert a.write(a.ADPT_INFO, ALARM_2019, 2019) == body
    assert a.read(a.UP_WARN_MSG, body, 2019).value == alarm
    short = ALARM_2019[:21] + ALARM_2019[29:]                  # without START_TIME: 70 + 8
    assert a.write_alarm(alarm, a.ADPT_INFO, 2019, times=2) == short
    read = a.read_alarm(short, a.ADPT_INFO, 2019)
    assert (read.warn_time, read.start_time, read.end_time, read.plate, read.line_id) == (
        TS, None, DEADLINE, "沪A12345", 1001)
    with pytest.raises(ValueError):
        a.write_alarm(alarm, a.ADPT_INFO, 2019, times=4)


def test_warning_tips_both_editions():
    tip_2011 = bytes.fromhex("03" "000b" "000000006b0bc095" "00000008") + OVERSPEED_TEXT
    tip = a.Alarm(warn_src=a.FROM_GOVERNMENT, warn_type=a.ROUTE_DEVIATION, warn_time=TS,
                  content="超速报警")                       # 2011 0x9402: no INFO_ID
    assert a.write_alarm(tip, a.INFORM_TIPS) == tip_2011
    assert a.read_alarm(tip_2011, a.INFORM_TIPS) == tip
    down = a.write(a.INFORM_TIPS, tip_2011, 2011, "沪A12345", 2)
    assert a.read(a.DOWN_WARN_MSG, down, 2011).value == tip
    tip_2019 = a.write(a.INFORM_TIPS, ALARM_2019, 2019)
    assert a.read(a.DOWN_WARN_MSG, tip_2019, 2019).value.plate == "沪A12345"


SUPERVISOR = (bytes.fromhex("d5c5c8fd") + bytes(12)                       # "张三" (16)
              + bytes.fromhex("3133383030303030303030") + bytes(9)         # TEL (20)
              + bytes.fromhex("64757479407972642e6578616d706c65") + bytes(16))  # EMAIL (32)
ORDER_2011 = (bytes.fromhex("03"                # WARN_SRC: government platform
                            "0001"              # WARN_TYPE
                            "000000006b0bc095"  # WARN_TIME
                            "0000002a"          # SUPERVISION_ID 42
                            "000000006b0bcea5"  # SUPERVISION_ENDTIME
                            "00")               # SUPERVISION_LEVEL: urgent
              + SUPERVISOR)
ORDER_2019 = (PLATFORM                                  # SOURCE_PLATFORM_ID
              + bytes.fromhex("000000006b0bc095")       # WARN_TIME
              + bytes.fromhex("1402" "00000007")        # SOURCE_DATA_TYPE, SOURCE_MSG_SN
              + bytes.fromhex("000000006b0bcea5" "01")  # SUPERVISION_ENDTIME, LEVEL: normal
              + SUPERVISOR)


def test_supervision_order_both_editions():
    order = a.SupervisionOrder(warn_src=a.FROM_GOVERNMENT, warn_type=a.OVERSPEED, warn_time=TS,
                               supervision_id=42, deadline=DEADLINE, level=a.URGENT,
                               supervisor="张三", tel="13800000000", email="duty@yrd.example")
    assert len(ORDER_2011) == 92 and a.write_order(order) == ORDER_2011
    assert a.read_order(ORDER_2011) == order
    assert a.read_order(ORDER_2011, 2019) == order        # the 2011 layout under 2019
    order_2019 = a.SupervisionOrder(platform_id="12345678901", warn_time=TS, source_type=0x1402,
                                    source_sn=7, deadline=DEADLINE, level=a.NORMAL,
                                    supervisor="张三", tel="13800000000",
                                    email="duty@yrd.example")
    assert len(ORDER_2019) == 102 and a.write_order(order_2019, 2019) == ORDER_2019
    assert a.read_order(ORDER_2019, 2019) == order_2019
    with pytest.raises(FrameError) as odd:
        a.read_order(ORDER_2019[:95], 2019)
    assert odd.value.reason == "bad_message"


def test_supervision_answers_and_handling_results():
    assert a.write_order_answer(a.SupervisionAnswer(supervision_id=42, result=a.DONE)) == \
        bytes.fromhex("0000002a" "01")                     # SUPERVISION_ID, RESULT
    answer_2019 = bytes.fromhex("0000002a" "1402" "00000007" "01")
    answer = a.SupervisionAnswer(supervision_id=42, source_type=0x1402, source_sn=7,
                                 result=a.DONE)
    assert a.write_order_answer(answer, 2019) == answer_2019
    assert a.read_order_answer(answer_2019, 2019) == answer
    assert a.read_order_answer(bytes.fromhex("0000002a" "03"), 2019) == \
        a.SupervisionAnswer(supervision_id=42, result=a.LATER)
    assert a.read_order_answer(bytes.fromhex("1402" "00000007" "02"), 2019) == \
        a.SupervisionAnswer(supervision_id=None, source_type=0x1402, source_sn=7,
                            result=a.NOT_HANDLED)
    result = a.HandlingResult(source_type=0x1402, source_sn=7, result=a.IN_PROGRESS)
    assert a.write_result(result) == bytes.fromhex("1402" "00000007" "00")
    body = a.write(a.ADPT_TODO_INFO, a.write_result(result), 2019)
    assert a.read(a.UP_WARN_MSG, body, 2019).value == result
    old = a.HandlingResult(info_id=7, result=a.DONE)
    assert a.write_result(old, a.ADPT_TODO_INFO_2011) == bytes.fromhex("00000007" "01")
    body = a.write(a.ADPT_TODO_INFO_2011, bytes.fromhex("00000007" "01"), 2011, "沪A12345", 2)
    assert a.read(a.UP_WARN_MSG, body, 2011).value == old


CAPTURES = f.Cipher(56107078, 37382110, 50361430)
# Conformance test: "大兄弟提供1", the platform's 0x9403 (two times, in milliseconds);
# "大兄弟提供10", a 0x1402 of 86 bytes; "大兄弟提供13", an 11-byte 0x1401 (both
# encrypted).
CAPTURED_9403 = bytes.fromhex(
    "5b0000008e00000010940000000000000000000000000000000000689eb0ff9403000000664a43323032"
    "355054303437000300000198abac778e00000198abe3660ebea941313233343500000000000000000000"
    "000000013335303130303030000000000003e900000020b3b5c1beb3accbd9b1a8beafa3acb5b1c7b0cb"
    "d9b6c8b3acb9fdcfded6c6d6b53d705d")
CAPTURED_1402 = bytes.fromhex(
    "5b0000007e000039201400052df12c0000000100003b890000000068aeb1d3b7a70dc885c08354a3b7ad"
    "b128ea3e6ba7271b9a5ae01c7c68c69372d126a1ff6d4a5a55afbe0341d50b08b860954e69368aca0ccf"
    "b14c2204c510c2e803084589cd9c73d5d7e0e555013261327a8f269d9076b23873d01bc27b1fc326865d")
CAPTURED_1401 = bytes.fromhex(
    "5b00000033000002581400052df12c0000000100003b890000000068b7a9c0b7a40dc8859dc47888e98b"
    "8678be0e5b91232e5d")


def test_the_conformance_captures():
    frame = read_back(CAPTURED_9403)
    tip = bodies.read(frame.header.msg_id, frame.body, frame.header.edition).value
    assert (tip.platform_id, tip.warn_type, tip.plate, tip.colour, tip.destination_id,
            tip.line_id) == ("JC2025PT047", a.EMERGENCY, "京A12345", 1, "35010000", 1001)
    assert tip.warn_time == datetime(2025, 8, 15, 11, 1, 3, 502000, tzinfo=CHINA_TZ)
    assert tip.end_time - tip.warn_time == timedelta(hours=1) and tip.start_time is None
    assert tip.content == "车辆超速报警，当前速度超过限制值"
    frame = read_back(CAPTURED_1402, CAPTURES, expect=2019)
    alarm = bodies.read(frame.header.msg_id, frame.body, 2019).value
    assert (alarm.warn_type, alarm.content, alarm.colour) == (0xA00A, "主动上报报警信息", 2)
    frame = read_back(CAPTURED_1401, CAPTURES, expect=2019)
    answer = bodies.read(frame.header.msg_id, frame.body, 2019).value
    assert answer == a.SupervisionAnswer(supervision_id=0x0D6F196E, source_type=0x1402,
                                         source_sn=4, result=a.DONE)


@pytest.mark.parametrize("version, sub, data", [
    (2011, a.ADPT_INFO, ALARM_2011), (2019, a.ADPT_INFO, ALARM_2019),
    (2011, a.URGE_TODO_REQ, ORDER_2011), (2019, a.URGE_TODO_REQ, ORDER_2019),
    (2011, a.URGE_TODO_ACK, bytes.fromhex("0000002a01")),
    (2019, a.URGE_TODO_ACK, bytes.fromhex("0000002a" "1402" "00000007" "01")),
    (2019, a.ADPT_TODO_INFO, bytes.fromhex("1402" "00000007" "00")),
])
def test_alarm_messages_in_frames_and_cut_anywhere(version, sub, data):
    msg_id = a.DOWN_WARN_MSG if sub == a.URGE_TODO_REQ else a.UP_WARN_MSG
    body = a.write(sub, data, version, "沪A12345" if version == 2011 else None, 2)
    frame = read_back(by_hand(msg_id, body, edition=version, key=11), CIPHER, expect=version)
    decoded = bodies.read(msg_id, frame.body, frame.header.edition)
    assert decoded.sub_type == sub and decoded.plate == ("沪A12345" if version == 2011 else None)
    for cut in range(len(body)):
        with pytest.raises(FrameError) as short:
            a.read(msg_id, body[:cut], version)
        assert short.value.reason == "truncated"


def test_hostile_alarm_bodies():
    huge = bytearray(ALARM_2011)
    huge[3:11] = (2**63).to_bytes(8, "big")              # WARN_TIME past any calendar
    with pytest.raises(FrameError) as when:
        a.read_alarm(bytes(huge))
    assert when.value.reason == "bad_message"
    lying = ALARM_2019[:-12] + (4096).to_bytes(4, "big") + OVERSPEED_TEXT   # INFO_LENGTH
    with pytest.raises(FrameError) as long:
        a.read_alarm(lying, a.ADPT_INFO, 2019)
    assert long.value.reason == "truncated"
    with pytest.raises(FrameError) as other:
        a.read(a.UP_WARN_MSG, a.write(a.URGE_TODO_REQ, ORDER_2019, 2019), 2019)
    assert other.value.reason == "unsupported"      # an order does not come up
