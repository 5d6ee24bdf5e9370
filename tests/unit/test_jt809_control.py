"""JT/T 809 vehicle control (0x9502 photo, 0x1502 its answer, 0x9503 text, 0x1503 its
answer) and static information (0x9601, 0x1601), both editions, laid out by hand from the
standard's tables."""

from __future__ import annotations

import pytest

from tests.unit.test_jt809_exchange import FIX, GNSS
from tests.unit.test_jt809_frame import CIPHER, by_hand, read_back
from yrd_hazmat.jt808.frame import FrameError
from yrd_hazmat.jt809 import bodies
from yrd_hazmat.jt809 import control as c
from yrd_hazmat.jt809 import static as s

PLATE = bytes.fromhex("bba6413132333435") + bytes(13)      # "沪A12345" (21)
JPEG = bytes.fromhex("ffd8ffd9")


def test_photo_request():
    data = bytes.fromhex("01" "02")                         # LENS_ID 1, SIZE_TYPE 640x480
    assert c.write_photo_request(c.PhotoRequest(lens=1, size=2)) == data
    body = PLATE + bytes.fromhex("02" "9502" "00000002") + data
    assert c.write("沪A12345", 2, c.TAKE_PHOTO_REQ, data) == body
    for version in (2011, 2019):
        message = bodies.read(c.DOWN_CTRL_MSG, body, version)
        assert (message.plate, message.value) == ("沪A12345", c.PhotoRequest(lens=1, size=2))


@pytest.mark.parametrize("version", [2011, 2019])
def test_photo_answer(version):
    source = bytes.fromhex("9502" "0000000c") if version == 2019 else b""  # SOURCE_DATA_TYPE, _SN
    data = (source
            + bytes.fromhex("01")                  # PHOTO_RSP_FLAG: taken
            + GNSS[version]                        # GNSS_DATA
            + bytes.fromhex("01"                   # LENS_ID
                            "00000004"             # PHOTO_LEN
                            "02"                   # SIZE_TYPE
                            "01")                  # TYPE
            + JPEG)
    answer = c.PhotoAnswer(flag=c.TAKEN, fix=FIX[version], lens=1, size=2, image_type=1,
                           photo=JPEG, source_type=0x9502 if version == 2019 else None,
                           source_sn=12 if version == 2019 else None)
    assert c.write_photo_answer(answer, version) == data
    assert c.read_photo_answer(data, version) == answer
    up = c.write("沪A12345", 2, c.TAKE_PHOTO_ACK, data)
    frame = read_back(by_hand(c.UP_CTRL_MSG, up, edition=version, key=2), CIPHER)
    assert bodies.read(c.UP_CTRL_MSG, frame.body, frame.header.edition).value == answer
    lying = data[:-len(JPEG) - 7] + bytes.fromhex("01" "00100000" "02" "01") + JPEG
    with pytest.raises(FrameError) as long:
        c.read_photo_answer(lying, version)
    assert long.value.reason == "truncated"


def test_photo_answer_without_a_position():
    offline = c.PhotoAnswer(flag=c.OFFLINE, lens=1, source_type=0x9502, source_sn=3)
    data_2019 = (bytes.fromhex("9502" "00000003" "03")
                 + bytes.fromhex("00" "00000000") + bytes(45)   # GNSS_DATA of length 0
                 + bytes.fromhex("01" "00000000" "00" "00"))
    assert c.write_photo_answer(offline, 2019) == data_2019
    assert c.read_photo_answer(data_2019, 2019) == offline
    data_2011 = bytes.fromhex("03") + bytes(36) + bytes.fromhex("01" "00000000" "00" "00")
    assert c.read_photo_answer(data_2011) == c.PhotoAnswer(flag=c.OFFLINE, lens=1)


def test_text_to_a_vehicle_and_its_answer():
    data = bytes.fromhex("0000002a"             # MSG_SEQUENCE 42
                         "00"                   # MSG_PRIORITY: urgent
                         "00000006" "c7ebbcf5cbd9")  # MSG_LENGTH, "请减速"
    text = c.TextRequest(msg_id=42, priority=c.URGENT, text="请减速")
    assert c.write_text(text) == data and c.read_text(data) == text
    assert c.read(c.DOWN_CTRL_MSG, c.write("沪A12345", 2, c.TEXT_INFO, data), 2019).value == text
    assert c.write_text_answer(c.TextAnswer(msg_id=42, result=c.DELIVERED)) == \
        bytes.fromhex("0000002a" "00")           # MSG_ID, RESULT
    answer_2019 = bytes.fromhex("9503" "0000000d" "01")   # SOURCE_DATA_TYPE, _MSG_SN, RESULT
    answer = c.TextAnswer(source_type=0x9503, source_sn=13, result=c.FAILED)
    assert c.write_text_answer(answer, 2019) == answer_2019
    assert c.read_text_answer(answer_2019, 2019) == answer


CAR_INFO = bytes.fromhex(   # "VIN:=沪A12345;VEHICLE_COLOR:=2;TRANS_TYPE:=030" in GBK
    "56494e3a3dbba64131323334353b56454849434c455f434f4c4f523a3d323b5452414e535f545950453a3d303330")


def test_static_information_both_editions():
    request = PLATE + bytes.fromhex("02" "9601" "00000000")   # no data
    assert s.write("沪A12345", 2, s.VEHICLE_ADDED) == request
    message = bodies.read(s.DOWN_BASE_MSG, request, 2019)
    assert (message.plate, message.sub_type, message.value) == ("沪A12345", 0x9601, None)
    info = s.read_static(CAR_INFO)
    assert info.text == "VIN:=沪A12345;VEHICLE_COLOR:=2;TRANS_TYPE:=030"
    assert info.fields == {"VIN": "沪A12345", "VEHICLE_COLOR": "2", "TRANS_TYPE": "030"}
    assert s.write_static(s.StaticInfo(text=s.static_text(info.fields))) == CAR_INFO
    data_2019 = bytes.fromhex("9601" "0000000e") + CAR_INFO   # SOURCE_DATA_TYPE, _MSG_SN
    new = s.StaticInfo(text=info.text, source_type=0x9601, source_sn=14)
    assert s.write_static(new, 2019) == data_2019 and s.read_static(data_2019, 2019) == new
    up = s.write("沪A12345", 2, s.VEHICLE_ADDED_ACK, data_2019)
    frame = read_back(by_hand(s.UP_BASE_MSG, up, edition=2019, key=4), CIPHER, expect=2019)
    assert bodies.read(s.UP_BASE_MSG, frame.body, 2019).value == new


@pytest.mark.parametrize("msg_id, body, version", [
    (c.DOWN_CTRL_MSG, PLATE + bytes.fromhex("02" "9502" "00000002" "0102"), 2011),
    (c.DOWN_CTRL_MSG, PLATE + bytes.fromhex("02" "9503" "0000000b" "0000002a0000000002c7eb"), 2019),
    (c.UP_CTRL_MSG, PLATE + bytes.fromhex("02" "1503" "00000007" "9503" "0000000d" "01"), 2019),
    (c.UP_CTRL_MSG, PLATE + bytes.fromhex("02" "1502" "0000002c" "01") + GNSS[2011]
     + bytes.fromhex("0100000000" "0201"), 2011),
    (s.UP_BASE_MSG, PLATE + bytes.fromhex("02" "1601" "00000008" "9601" "0000000e" "5649"), 2019),
])
def test_control_and_static_bodies_cut_anywhere(msg_id, body, version):
    bodies.read(msg_id, body, version)
    for cut in range(len(body)):
        with pytest.raises(FrameError) as short:
            bodies.read(msg_id, body[:cut], version)
        assert short.value.reason == "truncated"


def test_strangers_are_unsupported():
    for msg_id, sub in ((c.DOWN_CTRL_MSG, 0x9509), (c.UP_CTRL_MSG, 0x9502),
                        (s.UP_BASE_MSG, 0x9601), (0x1700, 0x1701)):
        with pytest.raises(FrameError) as other:
            bodies.read(msg_id, PLATE + b"\x02" + sub.to_bytes(2, "big") + bytes(4))
        assert other.value.reason == "unsupported"
