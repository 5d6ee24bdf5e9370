"""JT/T 809 platform inspection (0x9301 question, 0x1301 answer) and platform messages
(0x9302, 0x1302), both editions, laid out by hand from the standard's tables; and the
conformance platform's 2019 question (SmallChi/JT809 GuoJian001Test.cs)."""

from __future__ import annotations

import pytest

from tests.unit.test_jt809_frame import CIPHER, by_hand, read_back
from yrd_hazmat.jt808.frame import FrameError
from yrd_hazmat.jt809 import bodies
from yrd_hazmat.jt809 import inspection as i

OBJECT_12 = bytes.fromhex("3330303130303031") + bytes(4)    # OBJECT_ID "30010001", 12 bytes
QUESTION = bytes.fromhex("c7ebbbd8b4f0")                     # "请回答"

Q_2011 = (bytes.fromhex("01")            # OBJECT_TYPE: the connected lower platform
          + OBJECT_12
          + bytes.fromhex("00000019")    # INFO_ID 25
          + bytes.fromhex("00000006")    # INFO_LENGTH
          + QUESTION)                    # INFO_CONTENT
Q_2011_BARE = bytes.fromhex("00000019" "00000006") + QUESTION   # the first 2011 text
Q_2019 = (bytes.fromhex("02")                                # OBJECT_TYPE: one carrier
          + bytes.fromhex("b2e2423031383434") + bytes(12)    # OBJECT_ID "测B01844" (20)
          + bytes.fromhex("0a")                              # ANSWER_TIME 10
          + bytes.fromhex("00000019" "00000006") + QUESTION)


def test_inspection_question_both_editions():
    q = i.Inspection(object_type=1, object_id="30010001", info_id=25, content="请回答")
    assert i.write_inspection(q) == Q_2011 and i.read_inspection(Q_2011) == q
    assert i.read_inspection(Q_2011_BARE) == i.Inspection(info_id=25, content="请回答")
    q19 = i.Inspection(object_type=2, object_id="测B01844", answer_time=10, info_id=25,
                       content="请回答")
    assert i.write_inspection(q19, 2019) == Q_2019 and i.read_inspection(Q_2019, 2019) == q19
    body = bytes.fromhex("9301") + len(Q_2019).to_bytes(4, "big") + Q_2019
    assert i.write(i.POST_QUERY_REQ, Q_2019) == body
    assert bodies.read(i.DOWN_PLATFORM_MSG, body, 2019).value == q19


def test_inspection_answer_both_editions():
    a_2011 = (bytes.fromhex("01") + OBJECT_12
                    + bytes.fromhex("00000019")              # INFO_ID of the question
                    + bytes.fromhex("00000004" "d4dab8da"))  # "在岗"
    answer = i.InspectionAnswer(object_type=1, object_id="30010001", info_id=25, content="在岗")
    assert i.write_answer(answer) == a_2011 and i.read_answer(a_2011) == answer
    bare = bytes.fromhex("00000019" "00000004" "d4dab8da")
    assert i.read_answer(bare) == i.InspectionAnswer(info_id=25, content="在岗")
    a_2019 = (bytes.fromhex("01")
              + bytes.fromhex("d5c5c8fd") + bytes(12)               # RESPONDER "张三" (16)
              + bytes.fromhex("3133383030303030303030") + bytes(9)  # RESPONDER_TEL (20)
              + bytes.fromhex("3330303130303031") + bytes(12)       # OBJECT_ID (20)
              + bytes.fromhex("9301" "00000049")                    # SOURCE_DATA_TYPE, _MSG_SN
              + bytes.fromhex("00000004" "d4dab8da"))
    answer_2019 = i.InspectionAnswer(object_type=1, responder="张三", responder_tel="13800000000",
                                     object_id="30010001", source_type=0x9301, source_sn=73,
                                     content="在岗")
    assert i.write_answer(answer_2019, 2019) == a_2019
    assert i.read_answer(a_2019, 2019) == answer_2019
    up = i.write(i.POST_QUERY_ACK, a_2019)
    assert i.read(i.UP_PLATFORM_MSG, up, 2019).value == answer_2019


def test_platform_message_and_its_ack():
    msg_2011 = bytes.fromhex("03") + bytes(12) + bytes.fromhex("00000020" "00000004" "cda8d6aa")
    m = i.Inspection(object_type=3, info_id=32, content="通知")
    assert i.write_inspection(m, 2011, i.INFO_REQ) == msg_2011
    assert i.read_inspection(msg_2011, 2011, i.INFO_REQ) == m
    msg_2019 = bytes.fromhex("03") + bytes(20) + bytes.fromhex("00000020" "00000004" "cda8d6aa")
    assert i.write_inspection(m, 2019, i.INFO_REQ) == msg_2019          # no ANSWER_TIME
    assert i.read(i.DOWN_PLATFORM_MSG, i.write(i.INFO_REQ, msg_2019), 2019).value == m
    assert i.write_info_ack(i.InfoAck(info_id=32)) == bytes.fromhex("00000020")
    ack_2019 = bytes.fromhex("9302" "00000011")
    assert i.read_info_ack(ack_2019, 2019) == i.InfoAck(source_type=0x9302, source_sn=17)
    assert i.write_info_ack(i.InfoAck(source_sn=17), 2019) == ack_2019


# Conformance test, frame "大兄弟提供3": the platform's 2019 0x9301 in the clear.
CAPTURED_9301 = bytes.fromhex(
    "5b0000005c00000006930000000000000000000000000000000000689eadf193010000003402b2e24230"
    "313834340000000000000000000000000a0000001900000016c6bdcca8b2e9b8dac7ebc7f3cac7b7f1ca"
    "c7c8cbc0e017f05d")


def test_the_conformance_platforms_question():
    frame = read_back(CAPTURED_9301)
    assert (frame.header.edition, frame.header.center, frame.header.time) == (2019, 0, 1755229681)
    q = bodies.read(frame.header.msg_id, frame.body, frame.header.edition).value
    assert (q.object_type, q.object_id, q.answer_time, q.info_id, q.content) == (
        2, "测B01844", 10, 25, "平台查岗请求是否是人类")


@pytest.mark.parametrize("version, data", [(2011, Q_2011), (2019, Q_2019)])
def test_questions_in_frames_and_cut_anywhere(version, data):
    body = i.write(i.POST_QUERY_REQ, data)
    frame = read_back(by_hand(i.DOWN_PLATFORM_MSG, body, edition=version, key=3), CIPHER)
    assert bodies.read(frame.header.msg_id, frame.body, frame.header.edition).value == \
        i.read_inspection(data, version)
    for cut in range(len(body)):
        with pytest.raises(FrameError) as short:
            i.read(i.DOWN_PLATFORM_MSG, body[:cut], version)
        assert short.value.reason == "truncated"
    lying = bytearray(body)
    lying[-len(QUESTION) - 4:-len(QUESTION)] = (0xFFFF).to_bytes(4, "big")   # INFO_LENGTH
    with pytest.raises(FrameError) as long:
        i.read(i.DOWN_PLATFORM_MSG, bytes(lying), version)
    assert long.value.reason == "truncated"


def test_answers_cut_anywhere_and_strangers():
    body = i.write(i.POST_QUERY_ACK, i.write_answer(i.InspectionAnswer(
        object_type=1, responder="张三", content="在岗"), 2019))
    for cut in range(len(body)):
        with pytest.raises(FrameError):
            i.read(i.UP_PLATFORM_MSG, body[:cut], 2019)
    with pytest.raises(FrameError) as other:
        i.read(i.UP_PLATFORM_MSG, i.write(0x1399, b""))
    assert other.value.reason == "unsupported"
    assert i.read_inspection(bytes.fromhex("00000019" "00000002" "ffff")).content == "\ufffd\ufffd"
