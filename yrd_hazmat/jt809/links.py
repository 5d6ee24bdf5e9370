"""Link management, 0x1000 (main link, lower -> upper) and 0x9000 (slave link, upper ->
lower) bodies.

Main link: UP_CONNECT_REQ 0x1001 (USERID UINT32, PASSWORD 8 bytes, in 2019 then
MSG_GNSSCENTERID UINT32, DOWN_LINK_IP 32 bytes, DOWN_LINK_PORT UINT16: 46 bytes in 2011,
50 in 2019), UP_CONNECT_RSP 0x1002 (RESULT BYTE, VERIFY_CODE UINT32), UP_DISCONNECT_REQ
0x1003 (USERID UINT32, PASSWORD 8), UP_DISCONNECT_RSP 0x1004, UP_LINKTEST_REQ 0x1005 and
UP_LINKTEST_RSP 0x1006 (no body), UP_DISCONNECT_INFORM 0x1007 (ERROR_CODE BYTE: 0 main link
broken, 1 other; sent on the slave link), UP_CLOSELINK_INFORM 0x1008 (REASON_CODE BYTE: 0
gateway restart, 1 other).

Slave link: DOWN_CONNECT_REQ 0x9001 (VERIFY_CODE UINT32, the one UP_CONNECT_RSP gave),
DOWN_CONNECT_RSP 0x9002 (RESULT BYTE: 0 accepted, 1 wrong VERIFY_CODE, 2 busy, 3 other),
DOWN_DISCONNECT_REQ 0x9003 (VERIFY_CODE UINT32), DOWN_DISCONNECT_RSP 0x9004,
DOWN_LINKTEST_REQ 0x9005, DOWN_LINKTEST_RSP 0x9006 (no body), DOWN_DISCONNECT_INFORM 0x9007
(REASON_CODE BYTE: 0 cannot reach the lower platform's slave-link address, 1 slave link
broken, 2 other; sent on the main link; 2019 platforms were seen using 0xFF for "other",
as in 2019's UP_CONNECT_RSP), DOWN_CLOSELINK_INFORM 0x9008 (REASON_CODE BYTE: 0 gateway
restart, 1 other). The codes are read as sent.

Layouts: SmallChi/JT809 ``MessageBody/JT809_0x1001.cs`` ... ``JT809_0x9008.cs`` (2019's
MSG_GNSSCENTERID in 0x1001), zboyco/jtt809 ``registration.go`` (2019 login: 50 bytes,
result 0xFF "other"), Yordroid/jt809_server ``jt_msg_handle_link_manage.go``.
"""

from __future__ import annotations

import struct

import msgspec

from ..jt808.frame import FrameError
from .codec import Reader, check_version, fixed
from .frame import V2011, V2019

UP_CONNECT_REQ, UP_CONNECT_RSP = 0x1001, 0x1002
UP_DISCONNECT_REQ, UP_DISCONNECT_RSP = 0x1003, 0x1004
UP_LINKTEST_REQ, UP_LINKTEST_RSP = 0x1005, 0x1006
UP_DISCONNECT_INFORM, UP_CLOSELINK_INFORM = 0x1007, 0x1008
DOWN_CONNECT_REQ, DOWN_CONNECT_RSP = 0x9001, 0x9002
DOWN_DISCONNECT_REQ, DOWN_DISCONNECT_RSP = 0x9003, 0x9004
DOWN_LINKTEST_REQ, DOWN_LINKTEST_RSP = 0x9005, 0x9006
DOWN_DISCONNECT_INFORM, DOWN_CLOSELINK_INFORM = 0x9007, 0x9008
EMPTY = frozenset({UP_DISCONNECT_RSP, UP_LINKTEST_REQ, UP_LINKTEST_RSP, DOWN_DISCONNECT_RSP,
                   DOWN_LINKTEST_REQ, DOWN_LINKTEST_RSP})
"""The link messages without a body."""

# UP_CONNECT_RSP results
OK, BAD_IP, BAD_ACCESS_CODE, NO_SUCH_USER, BAD_PASSWORD, BUSY, OTHER = range(7)
OTHER_2019 = 0xFF
# DOWN_CONNECT_RSP results
SLAVE_OK, SLAVE_BAD_VERIFY_CODE, SLAVE_BUSY, SLAVE_OTHER = range(4)
# UP_DISCONNECT_INFORM error codes, UP_/DOWN_CLOSELINK_INFORM reason codes
MAIN_LINK_BROKEN, MAIN_OTHER = 0, 1
GATEWAY_RESTART, CLOSE_OTHER = 0, 1
# DOWN_DISCONNECT_INFORM reason codes
SLAVE_UNREACHABLE, SLAVE_LINK_BROKEN, SLAVE_REASON_OTHER = 0, 1, 2


class Login(msgspec.Struct, frozen=True, kw_only=True):
    """UP_CONNECT_REQ."""

    user_id: int
    password: str
    down_ip: str
    """The lower platform's slave-link server, which the upper platform connects back to."""
    down_port: int
    center: int | None = None
    """2019: MSG_GNSSCENTERID, the access code, in the body too."""


class LoginAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """UP_CONNECT_RSP."""

    result: int
    verify_code: int = 0


class Logout(msgspec.Struct, frozen=True, kw_only=True):
    """UP_DISCONNECT_REQ."""

    user_id: int
    password: str


class VerifyCode(msgspec.Struct, frozen=True):
    """DOWN_CONNECT_REQ and DOWN_DISCONNECT_REQ: the VERIFY_CODE of UP_CONNECT_RSP."""

    verify_code: int


class Code(msgspec.Struct, frozen=True):
    """A one-byte body: DOWN_CONNECT_RSP's result, the notices' error or reason codes."""

    code: int


def read_login(body: bytes, version: int = V2011) -> Login:
    check_version(version)
    r = Reader(body, "UP_CONNECT_REQ")
    user_id, password = r.u32("USERID"), r.text(8, "PASSWORD")
    center = r.u32("MSG_GNSSCENTERID") if version == V2019 else None
    return Login(user_id=user_id, password=password, center=center,
                 down_ip=r.text(32, "DOWN_LINK_IP"), down_port=r.u16("DOWN_LINK_PORT"))


def write_login(login: Login, version: int = V2011) -> bytes:
    check_version(version)
    center = struct.pack(">I", login.center or 0) if version == V2019 else b""
    return (struct.pack(">I", login.user_id) + fixed(login.password, 8) + center
            + fixed(login.down_ip, 32) + struct.pack(">H", login.down_port))


def read_login_answer(body: bytes) -> LoginAnswer:
    r = Reader(body, "UP_CONNECT_RSP")
    return LoginAnswer(result=r.u8("RESULT"), verify_code=r.u32("VERIFY_CODE"))


def write_login_answer(answer: LoginAnswer) -> bytes:
    return struct.pack(">BI", answer.result, answer.verify_code)


def read_logout(body: bytes) -> Logout:
    r = Reader(body, "UP_DISCONNECT_REQ")
    return Logout(user_id=r.u32("USERID"), password=r.text(8, "PASSWORD"))


def write_logout(logout: Logout) -> bytes:
    return struct.pack(">I", logout.user_id) + fixed(logout.password, 8)


def read_verify_code(body: bytes, what: str = "DOWN_CONNECT_REQ") -> VerifyCode:
    return VerifyCode(Reader(body, what).u32("VERIFY_CODE"))


def write_verify_code(value: VerifyCode) -> bytes:
    return struct.pack(">I", value.verify_code)


def read_code(body: bytes, what: str) -> Code:
    return Code(Reader(body, what).u8("code"))


def write_code(value: Code) -> bytes:
    if not 0 <= value.code <= 0xFF:
        raise ValueError(f"code {value.code} is not a byte")
    return bytes([value.code])


_NAMES = {UP_DISCONNECT_INFORM: "UP_DISCONNECT_INFORM", UP_CLOSELINK_INFORM: "UP_CLOSELINK_INFORM",
          DOWN_CONNECT_RSP: "DOWN_CONNECT_RSP", DOWN_DISCONNECT_INFORM: "DOWN_DISCONNECT_INFORM",
          DOWN_CLOSELINK_INFORM: "DOWN_CLOSELINK_INFORM"}


def read(msg_id: int, body: bytes, version: int = V2011) -> object:
    """Any link-management body decoded (None for the ones without a body)."""
    if msg_id == UP_CONNECT_REQ:
        return read_login(body, version)
    if msg_id == UP_CONNECT_RSP:
        return read_login_answer(body)
    if msg_id == UP_DISCONNECT_REQ:
        return read_logout(body)
    if msg_id in (DOWN_CONNECT_REQ, DOWN_DISCONNECT_REQ):
        return read_verify_code(body, "DOWN_CONNECT_REQ" if msg_id == DOWN_CONNECT_REQ
                                else "DOWN_DISCONNECT_REQ")
    if msg_id in _NAMES:
        return read_code(body, _NAMES[msg_id])
    if msg_id in EMPTY:
        return None
    raise FrameError("unsupported", f"0x{msg_id:04x} is not a link-management message")
