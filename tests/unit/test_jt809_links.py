"""JT/T 809 link management (0x1001-0x1008 main link, 0x9001-0x9008 slave link), bodies
laid out by hand from the standard's tables, in frames of both header editions."""

from __future__ import annotations

import pytest

from tests.unit.test_jt809_frame import CIPHER, by_hand, read_back
from yrd_hazmat.jt808.frame import FrameError
from yrd_hazmat.jt809 import bodies
from yrd_hazmat.jt809 import links as k

IP_10_0_0_9 = bytes.fromhex("31302e302e302e39") + bytes(24)   # "10.0.0.9", 32 bytes

LOGIN_2011 = (bytes.fromhex("00001b59")            # USERID 7001
              + bytes.fromhex("7077313233343536")  # PASSWORD "pw123456" (8)
              + IP_10_0_0_9                        # DOWN_LINK_IP (32)
              + bytes.fromhex("1b58"))             # DOWN_LINK_PORT 7000
LOGIN_2019 = (bytes.fromhex("00001b59" "7077313233343536")
              + bytes.fromhex("01c9ea91")          # MSG_GNSSCENTERID 30010001 (2019)
              + IP_10_0_0_9 + bytes.fromhex("1b58"))
LOGIN = k.Login(user_id=7001, password="pw123456", down_ip="10.0.0.9", down_port=7000)


def test_login_both_editions():
    assert len(LOGIN_2011) == 46 and len(LOGIN_2019) == 50
    assert k.write_login(LOGIN) == LOGIN_2011
    assert k.read_login(LOGIN_2011) == LOGIN
    with_center = k.Login(user_id=7001, password="pw123456", down_ip="10.0.0.9",
                          down_port=7000, center=30010001)
    assert k.write_login(with_center, version=2019) == LOGIN_2019
    assert k.read_login(LOGIN_2019, version=2019) == with_center
    short = k.Login(user_id=1, password="pw", down_ip="", down_port=0)
    assert k.write_login(short) == bytes.fromhex("00000001" "7077000000000000") + bytes(34)


def test_login_answer_logout_and_codes():
    assert k.write_login_answer(k.LoginAnswer(result=k.OK, verify_code=0x12345678)) == \
        bytes.fromhex("00" "12345678")                     # RESULT, VERIFY_CODE
    assert k.read_login_answer(bytes.fromhex("04" "00000000")) == \
        k.LoginAnswer(result=k.BAD_PASSWORD, verify_code=0)
    logout = bytes.fromhex("00001b59" "7077313233343536")  # USERID, PASSWORD
    assert k.read_logout(logout) == k.Logout(user_id=7001, password="pw123456")
    assert k.write_logout(k.Logout(user_id=7001, password="pw123456")) == logout
    assert k.write_verify_code(k.VerifyCode(0x12345678)) == bytes.fromhex("12345678")
    assert k.write_code(k.Code(k.SLAVE_REASON_OTHER)) == b"\x02"
    with pytest.raises(ValueError):
        k.write_code(k.Code(256))


@pytest.mark.parametrize("msg_id, body, value", [
    (k.UP_CONNECT_RSP, bytes.fromhex("00" "0000beef"), k.LoginAnswer(result=0, verify_code=0xBEEF)),
    (k.UP_DISCONNECT_REQ, bytes.fromhex("00001b59" "7077313233343536"),
     k.Logout(user_id=7001, password="pw123456")),
    (k.UP_DISCONNECT_INFORM, b"\x00", k.Code(k.MAIN_LINK_BROKEN)),    # ERROR_CODE
    (k.UP_CLOSELINK_INFORM, b"\x00", k.Code(k.GATEWAY_RESTART)),      # REASON_CODE
    (k.DOWN_CONNECT_REQ, bytes.fromhex("0000beef"), k.VerifyCode(0xBEEF)),
    (k.DOWN_CONNECT_RSP, b"\x01", k.Code(k.SLAVE_BAD_VERIFY_CODE)),
    (k.DOWN_DISCONNECT_REQ, bytes.fromhex("0000beef"), k.VerifyCode(0xBEEF)),
    (k.DOWN_DISCONNECT_INFORM, b"\x00", k.Code(k.SLAVE_UNREACHABLE)),
    (k.DOWN_CLOSELINK_INFORM, b"\x01", k.Code(k.CLOSE_OTHER)),
    (k.UP_DISCONNECT_RSP, b"", None), (k.UP_LINKTEST_REQ, b"", None),
    (k.UP_LINKTEST_RSP, b"", None), (k.DOWN_DISCONNECT_RSP, b"", None),
    (k.DOWN_LINKTEST_REQ, b"", None), (k.DOWN_LINKTEST_RSP, b"", None),
])
@pytest.mark.parametrize("edition", [2011, 2019])
@pytest.mark.parametrize("key", [None, 9])
def test_every_link_message_in_frames_of_both_editions(msg_id, body, value, edition, key):
    wire = by_hand(msg_id, body, edition=edition, key=key)
    frame = read_back(wire, CIPHER, expect=edition)
    assert frame.header.edition == edition and frame.header.msg_id == msg_id
    assert bodies.read(msg_id, frame.body, edition) == value


@pytest.mark.parametrize("edition", [2011, 2019])
def test_a_login_frame_of_both_editions(edition):
    body = LOGIN_2011 if edition == 2011 else LOGIN_2019
    frame = read_back(by_hand(k.UP_CONNECT_REQ, body, edition=edition, key=5), CIPHER)
    login = bodies.read(k.UP_CONNECT_REQ, frame.body, frame.header.edition)
    assert (login.user_id, login.password, login.down_ip, login.down_port) == (
        7001, "pw123456", "10.0.0.9", 7000)
    assert login.center == (30010001 if edition == 2019 else None)


@pytest.mark.parametrize("msg_id, body, version", [
    (k.UP_CONNECT_REQ, LOGIN_2011, 2011), (k.UP_CONNECT_REQ, LOGIN_2019, 2019),
    (k.UP_CONNECT_RSP, bytes.fromhex("00" "0000beef"), 2011),
    (k.UP_DISCONNECT_REQ, bytes.fromhex("00001b59" "7077313233343536"), 2019),
    (k.DOWN_CONNECT_REQ, bytes.fromhex("0000beef"), 2011),
    (k.DOWN_DISCONNECT_INFORM, b"\x00", 2019),
])
def test_link_bodies_cut_anywhere_are_truncated(msg_id, body, version):
    for cut in range(len(body)):
        with pytest.raises(FrameError) as short:
            k.read(msg_id, body[:cut], version)
        assert short.value.reason == "truncated"


def test_text_that_is_not_gbk_and_unknown_ids():
    broken = bytes.fromhex("00001b59" "ffff000000000000") + IP_10_0_0_9 + bytes.fromhex("1b58")
    with pytest.raises(FrameError) as bad:
        k.read_login(broken)
    assert bad.value.reason == "bad_message" and "PASSWORD" in str(bad.value)
    with pytest.raises(FrameError) as unknown:
        k.read(0x1009, b"")
    assert unknown.value.reason == "unsupported"
