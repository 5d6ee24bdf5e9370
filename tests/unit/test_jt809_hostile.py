"""Hostile JT/T 809 bodies: every message cut at every byte, every byte of it flipped,
random sub-bodies under every sub-business and random bytes under every MSG_ID, in both
editions: the codecs answer with a value or raise FrameError, never anything else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_jt809_alarms import ALARM_2011, ALARM_2019, ORDER_2011, ORDER_2019
from tests.unit.test_jt809_control import CAR_INFO, JPEG
from tests.unit.test_jt809_exchange import GNSS, REG_2011, REG_2019
from tests.unit.test_jt809_inspection import Q_2011, Q_2019
from tests.unit.test_jt809_links import LOGIN_2011, LOGIN_2019
from yrd_hazmat.jt808.frame import FrameError
from yrd_hazmat.jt809 import alarms as a
from yrd_hazmat.jt809 import bodies, codec
from yrd_hazmat.jt809 import control as c
from yrd_hazmat.jt809 import exchange as x
from yrd_hazmat.jt809 import inspection as i
from yrd_hazmat.jt809 import links as k
from yrd_hazmat.jt809 import static as s

CAR = "沪A12345"


def samples() -> list[tuple[str, int, int, bytes]]:
    """(name, MSG_ID, edition, a valid body) for every message the codecs read."""
    out = [("login", k.UP_CONNECT_REQ, 2011, LOGIN_2011),
           ("login", k.UP_CONNECT_REQ, 2019, LOGIN_2019),
           ("login answer", k.UP_CONNECT_RSP, 2011, bytes.fromhex("0000000001")),
           ("logout", k.UP_DISCONNECT_REQ, 2011, bytes.fromhex("000000017077000000000000")),
           ("slave login", k.DOWN_CONNECT_REQ, 2019, bytes.fromhex("00000001")),
           ("slave answer", k.DOWN_CONNECT_RSP, 2011, b"\x00")]
    for v in (2011, 2019):
        old = v == 2011
        history = bytes([2]) + GNSS[v] + GNSS[v]
        waybill = (b"" if old else bytes.fromhex("920b00000001")) + bytes.fromhex("00000002c4e3")
        answer = i.write_answer(
            i.InspectionAnswer(object_type=1, content="在岗", responder="张三"), v)
        order_answer = a.write_order_answer(a.SupervisionAnswer(supervision_id=1, result=1), v)
        photo = c.write_photo_answer(c.PhotoAnswer(flag=1, lens=1, photo=JPEG), v)
        text = bytes.fromhex("000000010000000002c4e3")
        text_answer = c.write_text_answer(c.TextAnswer(result=0, msg_id=1, source_sn=1), v)
        info = s.write_static(s.StaticInfo(text=CAR_INFO.decode("gbk")), v)
        out += [
            ("registration", x.UP_EXG_MSG, v,
             x.write(CAR, 2, x.REGISTER, REG_2011 if old else REG_2019)),
            ("position", x.UP_EXG_MSG, v, x.write(CAR, 2, x.REAL_LOCATION, GNSS[v])),
            ("history", x.UP_EXG_MSG, v, x.write(CAR, 2, x.HISTORY_LOCATION, history)),
            ("waybill answer", x.UP_EXG_MSG, v, x.write(CAR, 2, x.TAKE_EWAYBILL_ACK, waybill)),
            ("position down", x.DOWN_EXG_MSG, v, x.write(CAR, 2, x.CAR_LOCATION, GNSS[v])),
            ("inspection", i.DOWN_PLATFORM_MSG, v,
             i.write(i.POST_QUERY_REQ, Q_2011 if old else Q_2019)),
            ("inspection answer", i.UP_PLATFORM_MSG, v, i.write(i.POST_QUERY_ACK, answer)),
            ("alarm", a.UP_WARN_MSG, v,
             a.write(a.ADPT_INFO, ALARM_2011 if old else ALARM_2019, v, CAR)),
            ("order", a.DOWN_WARN_MSG, v,
             a.write(a.URGE_TODO_REQ, ORDER_2011 if old else ORDER_2019, v, CAR)),
            ("order answer", a.UP_WARN_MSG, v, a.write(a.URGE_TODO_ACK, order_answer, v, CAR)),
            ("photo answer", c.UP_CTRL_MSG, v, c.write(CAR, 2, c.TAKE_PHOTO_ACK, photo)),
            ("text", c.DOWN_CTRL_MSG, v, c.write(CAR, 2, c.TEXT_INFO, text)),
            ("text answer", c.UP_CTRL_MSG, v, c.write(CAR, 2, c.TEXT_INFO_ACK, text_answer)),
            ("static", s.UP_BASE_MSG, v, s.write(CAR, 2, s.VEHICLE_ADDED_ACK, info)),
        ]
    result = bytes.fromhex("14020000000701")
    out.append(("result", a.UP_WARN_MSG, 2019, a.write(a.ADPT_TODO_INFO, result, 2019)))
    return out


SAMPLES = samples()
IDS = [f"{name} {v} 0x{msg_id:04x}" for name, msg_id, v, _ in SAMPLES]


@pytest.mark.parametrize("name, msg_id, version, body", SAMPLES, ids=IDS)
def test_every_message_cut_at_every_byte(name, msg_id, version, body):
    bodies.read(msg_id, body, version)
    for cut in range(len(body)):
        with pytest.raises(FrameError):
            bodies.read(msg_id, body[:cut], version)


@pytest.mark.parametrize("name, msg_id, version, body", SAMPLES, ids=IDS)
def test_every_byte_flipped(name, msg_id, version, body):
    for at in range(len(body)):
        for mask in (0x01, 0x80, 0xFF):
            broken = bytearray(body)
            broken[at] ^= mask
            try:
                bodies.read(msg_id, bytes(broken), version)
            except FrameError:
                pass


SUBS = [(x.UP_EXG_MSG, sub) for sub in (x.REGISTER, x.REAL_LOCATION, x.HISTORY_LOCATION,
                                        x.TAKE_EWAYBILL_ACK, x.REPORT_EWAYBILL_INFO)] + \
    [(x.DOWN_EXG_MSG, sub) for sub in (x.REGISTER_ACK, x.CAR_LOCATION, x.HISTORY_ARCOSSAREA,
                                       x.TAKE_EWAYBILL_REQ)] + \
    [(i.DOWN_PLATFORM_MSG, i.POST_QUERY_REQ), (i.DOWN_PLATFORM_MSG, i.INFO_REQ),
     (i.UP_PLATFORM_MSG, i.POST_QUERY_ACK), (i.UP_PLATFORM_MSG, i.INFO_ACK)] + \
    [(a.UP_WARN_MSG, sub) for sub in (a.URGE_TODO_ACK, a.ADPT_INFO, a.ADPT_TODO_INFO_2011,
                                      a.ADPT_TODO_INFO)] + \
    [(a.DOWN_WARN_MSG, sub) for sub in (a.URGE_TODO_REQ, a.INFORM_TIPS, a.EXG_INFORM)] + \
    [(c.DOWN_CTRL_MSG, c.TAKE_PHOTO_REQ), (c.DOWN_CTRL_MSG, c.TEXT_INFO),
     (c.UP_CTRL_MSG, c.TAKE_PHOTO_ACK), (c.UP_CTRL_MSG, c.TEXT_INFO_ACK),
     (s.DOWN_BASE_MSG, s.VEHICLE_ADDED), (s.UP_BASE_MSG, s.VEHICLE_ADDED_ACK)]
VEHICLE_LESS = {i.UP_PLATFORM_MSG, i.DOWN_PLATFORM_MSG}


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(SUBS), st.sampled_from([2011, 2019]), st.binary(max_size=160),
       st.booleans())
def test_random_sub_bodies_raise_only_frame_error(sub, version, data, vehicle):
    msg_id, sub_type = sub
    plate = CAR if vehicle and msg_id not in VEHICLE_LESS else None
    body = codec.envelope(sub_type, data, plate, 2)
    try:
        bodies.read(msg_id, body, version)
    except FrameError:
        pass


MSG_IDS = sorted(bodies.LINKS | set(bodies.BUSINESSES) | {0x1100, 0x1700, 0x9101})


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(MSG_IDS), st.sampled_from([2011, 2019]), st.binary(max_size=200))
def test_random_bodies_under_every_message_raise_only_frame_error(msg_id, version, body):
    try:
        bodies.read(msg_id, body, version)
    except FrameError:
        pass


def test_an_unknown_edition_is_a_caller_error():
    with pytest.raises(ValueError):
        bodies.read(x.UP_EXG_MSG, b"", 2013)
