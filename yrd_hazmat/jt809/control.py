"""Vehicle control: UP_CTRL_MSG 0x1500 and DOWN_CTRL_MSG 0x9500 (envelope with the vehicle
in both editions).

- 0x9501 DOWN_CTRL_MSG_MONITOR_VEHICLE_REQ (listen in: the terminal calls a number back,
  JT/T 808 0x8400): MONITOR_TEL 20 GBK. 0x1501 UP_CTRL_MSG_MONITOR_VEHICLE_ACK: 2019 first
  SOURCE_DATA_TYPE, SOURCE_MSG_SN; RESULT BYTE (0 listening, 1 failed).
- 0x9504 DOWN_CTRL_MSG_TAKE_TRAVEL_DATA_REQ (tachograph data, JT/T 808 0x8700): 2011
  COMMAND_TYPE BYTE (GB/T 19056 command word), and for the record queries 0x08-0x15 the
  start and end times (BCD YYMMDDhhmmss, China time) and the most blocks UINT16; 2019
  START_TIME, END_TIME UINT64, COMMAND_TYPE. 0x1504 UP_CTRL_MSG_TAKE_TRAVEL_DATA_ACK: 2019
  SOURCE_DATA_TYPE, SOURCE_MSG_SN, COMMAND_TYPE; then TRAVELDATA_LENGTH UINT32 and
  TRAVELDATA_INFO (the GB/T 19056 frame). The 2011 text puts COMMAND_TYPE first too, as
  some platforms send; SmallChi/JT809 reads 2011 without it: the length tells which.
- 0x9505 DOWN_CTRL_MSG_EMERGENCY_MONITORING_REQ (the terminal connects to another
  platform, JT/T 808 0x8105 command 2): AUTHENTICATION_CODE 10 (BCD), ACCESS_POINT_NAME 20,
  USERNAME 49, PASSWORD 22, SERVER_IP 32, TCP_PORT, UDP_PORT UINT16, END_TIME UINT64.
  0x1505 UP_CTRL_MSG_EMERGENCY_MONITORING_ACK: 2019 first SOURCE_DATA_TYPE,
  SOURCE_MSG_SN; RESULT BYTE (0 the terminal has it, 1 no such vehicle, 2 failed).
- 0x9502 DOWN_CTRL_MSG_TAKE_PHOTO_REQ: LENS_ID BYTE, SIZE_TYPE BYTE (1 320x240, 2 640x480,
  3 800x600, 4 1024x768, 5 176x144, 6 352x288, 7 704x288, 8 704x576).
- 0x1502 UP_CTRL_MSG_TAKE_PHOTO_ACK: 2019 first SOURCE_DATA_TYPE UINT16 and SOURCE_MSG_SN
  UINT32 (the request's); PHOTO_RSP_FLAG BYTE (0 not supported, 1 taken, 2 taken and sent
  later, 3 not taken: offline, 4 not taken: no such lens, 5 not taken: other, 9 wrong
  plate), GNSS_DATA (:mod:`.gnss`), LENS_ID BYTE, PHOTO_LEN UINT32, SIZE_TYPE BYTE, TYPE
  BYTE (image format), PHOTO.
- 0x9503 DOWN_CTRL_MSG_TEXT_INFO: MSG_SEQUENCE UINT32, MSG_PRIORITY BYTE (0 urgent, 1
  normal), MSG_LENGTH UINT32, MSG_CONTENT GBK.
- 0x1503 UP_CTRL_MSG_TEXT_INFO_ACK: 2011 MSG_ID UINT32 (the request's MSG_SEQUENCE),
  RESULT BYTE (0 delivered, 1 failed); 2019 SOURCE_DATA_TYPE, SOURCE_MSG_SN, RESULT.

Layouts: SmallChi/JT809 ``SubMessageBody/JT809_0x9500_0x9501.cs``, ``..._0x9504.cs``,
``..._0x9505.cs``, ``JT809_0x1500_0x1501.cs``, ``..._0x1504.cs``, ``..._0x1505.cs``,
``Enums/JT809_0x1501_Result.cs``, ``..._0x1505_Result.cs``, ``JT809_0x9500_0x9502.cs``, ``..._0x9503.cs``,
``JT809_0x1500_0x1502.cs``, ``..._0x1503.cs``; spjiang/JT809-server ``P0x9502PB.java``,
``P0x1502PB.java``, ``P0x9503PB.java``, ``P0x1503PB.java`` (2011); Yordroid/jt809_server
``jt_msg_handle_ctrl_msg.go`` (2019 photo answer); a 2019 photo answer with a JPEG and
a 2019 0x1501 answer (SOURCE_DATA_TYPE, SOURCE_MSG_SN, RESULT) in the conformance
captures of SmallChi/JT809 ``GuoJian001Test.cs``.
"""

from __future__ import annotations

import struct
from datetime import datetime

import msgspec

from ..core.timeutil import CHINA_TZ
from ..jt808.frame import FrameError, bcd, bcd_digits
from ..jt808.messages import bcd_time
from .codec import (
    Message,
    Reader,
    check_version,
    counted,
    envelope,
    fixed,
    quoting,
    read_envelope,
    to_utc,
)
from .frame import V2011, V2019
from .gnss import Fix, read_fix, write_fix

UP_CTRL_MSG, DOWN_CTRL_MSG = 0x1500, 0x9500
MONITOR_VEHICLE_ACK, TAKE_PHOTO_ACK, TEXT_INFO_ACK = 0x1501, 0x1502, 0x1503
TAKE_TRAVEL_DATA_ACK, EMERGENCY_MONITORING_ACK = 0x1504, 0x1505
MONITOR_VEHICLE_REQ, TAKE_PHOTO_REQ, TEXT_INFO = 0x9501, 0x9502, 0x9503
TAKE_TRAVEL_DATA_REQ, EMERGENCY_MONITORING_REQ = 0x9504, 0x9505
RECORD_QUERIES = frozenset(range(0x08, 0x16))
"""GB/T 19056 command words that collect records between two times (2011 0x9504 then
carries the times and the most blocks)."""
# 0x1501 RESULT; 0x1505 RESULT
LISTENING, LISTEN_FAILED = 0, 1
ACCESS_RECEIVED, NO_SUCH_VEHICLE, ACCESS_FAILED = 0, 1, 2
EMERGENCY_FIELDS = (("apn", "ACCESS_POINT_NAME", 20), ("user", "USERNAME", 49),
                    ("password", "PASSWORD", 22), ("server", "SERVER_IP", 32))
# PHOTO_RSP_FLAG
NOT_SUPPORTED, TAKEN, TAKEN_SENT_LATER, OFFLINE, NO_SUCH_LENS, NOT_TAKEN, WRONG_PLATE = \
    0, 1, 2, 3, 4, 5, 9
# MSG_PRIORITY, 0x1503 RESULT
URGENT, NORMAL = 0, 1
DELIVERED, FAILED = 0, 1


class PhotoRequest(msgspec.Struct, frozen=True, kw_only=True):
    lens: int
    size: int = 2


class PhotoAnswer(msgspec.Struct, frozen=True, kw_only=True):
    flag: int
    lens: int
    fix: Fix | None = None
    size: int = 0
    image_type: int = 0
    photo: bytes = b""
    source_type: int | None = None
    """2019: the request's DATA_TYPE (0x9502) and frame MSG_SN."""
    source_sn: int | None = None


class TextRequest(msgspec.Struct, frozen=True, kw_only=True):
    msg_id: int
    """MSG_SEQUENCE, which the 2011 answer quotes."""
    text: str
    priority: int = NORMAL


class TextAnswer(msgspec.Struct, frozen=True, kw_only=True):
    result: int
    msg_id: int | None = None
    """2011: the request's MSG_SEQUENCE."""
    source_type: int | None = None
    """2019: the request's DATA_TYPE (0x9503) and frame MSG_SN."""
    source_sn: int | None = None


class ListenRequest(msgspec.Struct, frozen=True, kw_only=True):
    """DOWN_CTRL_MSG_MONITOR_VEHICLE_REQ 0x9501: the number the terminal calls back."""

    tel: str


class TachographRequest(msgspec.Struct, frozen=True, kw_only=True):
    """DOWN_CTRL_MSG_TAKE_TRAVEL_DATA_REQ 0x9504."""

    command: int
    """COMMAND_TYPE: the GB/T 19056 command word."""
    start: datetime | None = None
    end: datetime | None = None
    max_blocks: int | None = None
    """2011, record queries: the most data blocks."""


class EmergencyAccess(msgspec.Struct, frozen=True, kw_only=True):
    """DOWN_CTRL_MSG_EMERGENCY_MONITORING_REQ 0x9505: connect to this platform until
    ``end``."""

    auth_code: str
    """AUTHENTICATION_CODE: 20 digits (BCD)."""
    apn: str
    user: str
    password: str = ""
    server: str
    tcp_port: int
    udp_port: int = 0
    end: datetime | None = None

    def __repr__(self) -> str:  # the dial password is a secret
        return (f"EmergencyAccess(server={self.server!r}, tcp_port={self.tcp_port}, "
                f"udp_port={self.udp_port}, apn={self.apn!r}, end={self.end})")


class ControlResult(msgspec.Struct, frozen=True, kw_only=True):
    """0x1501 (RESULT 0 listening, 1 failed) or 0x1505 (0 received, 1 no such vehicle,
    2 failed); 2019: the request answered."""

    result: int
    source_type: int | None = None
    source_sn: int | None = None


class TachographAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """UP_CTRL_MSG_TAKE_TRAVEL_DATA_ACK 0x1504."""

    data: bytes
    """TRAVELDATA_INFO: the GB/T 19056 frame."""
    command: int | None = None
    source_type: int | None = None
    source_sn: int | None = None


def read_listen(data: bytes) -> ListenRequest:
    return ListenRequest(tel=Reader(data, "DOWN_CTRL_MSG_MONITOR_VEHICLE_REQ").text(
        20, "MONITOR_TEL"))


def write_listen(req: ListenRequest) -> bytes:
    return fixed(req.tel, 20)


def _bcd_time(r: Reader, field: str) -> datetime:
    return bcd_time(r.take(6, field))


def read_tachograph_request(data: bytes, version: int = V2011) -> TachographRequest:
    r = Reader(data, "DOWN_CTRL_MSG_TAKE_TRAVEL_DATA_REQ")
    if check_version(version) == V2019:
        start, end = r.time("START_TIME"), r.time("END_TIME")
        return TachographRequest(start=start, end=end, command=r.u8("COMMAND_TYPE"))
    command = r.u8("COMMAND_TYPE")
    if command not in RECORD_QUERIES or not r.left:
        return TachographRequest(command=command)
    start, end = _bcd_time(r, "START_TIME"), _bcd_time(r, "END_TIME")
    return TachographRequest(command=command, start=start, end=end, max_blocks=r.u16("MAX"))


def _bcd(ts: datetime | None) -> bytes:
    return bytes(6) if ts is None else bcd(ts.astimezone(CHINA_TZ).strftime("%y%m%d%H%M%S"), 6)


def write_tachograph_request(req: TachographRequest, version: int = V2011) -> bytes:
    if check_version(version) == V2019:
        return struct.pack(">QQB", to_utc(req.start), to_utc(req.end), req.command)
    if req.command not in RECORD_QUERIES:
        return bytes([req.command])
    return (bytes([req.command]) + _bcd(req.start) + _bcd(req.end)
            + struct.pack(">H", req.max_blocks or 0))


def read_tachograph_answer(data: bytes, version: int = V2011) -> TachographAnswer:
    r = Reader(data, "UP_CTRL_MSG_TAKE_TRAVEL_DATA_ACK")
    source: dict = {}
    command = None
    if check_version(version) == V2019:
        source = {"source_type": r.u16("SOURCE_DATA_TYPE"), "source_sn": r.u32("SOURCE_MSG_SN")}
        command = r.u8("COMMAND_TYPE")
    elif len(data) >= 5 and int.from_bytes(data[1:5], "big") == len(data) - 5:
        command = r.u8("COMMAND_TYPE")  # the 2011 text's COMMAND_TYPE first
    size = r.u32("TRAVELDATA_LENGTH")
    return TachographAnswer(data=r.take(size, "TRAVELDATA_INFO"), command=command, **source)


def write_tachograph_answer(a: TachographAnswer, version: int = V2011) -> bytes:
    """2019: the request and COMMAND_TYPE first; 2011: COMMAND_TYPE first when known."""
    head = b""
    if check_version(version) == V2019:
        head = quoting(a, TAKE_TRAVEL_DATA_REQ) + bytes([a.command or 0])
    elif a.command is not None:
        head = bytes([a.command])
    return head + struct.pack(">I", len(a.data)) + a.data


def read_emergency(data: bytes) -> EmergencyAccess:
    r = Reader(data, "DOWN_CTRL_MSG_EMERGENCY_MONITORING_REQ")
    code = bcd_digits(r.take(10, "AUTHENTICATION_CODE"))
    fields = {name: r.text(size, field) for name, field, size in EMERGENCY_FIELDS}
    tcp, udp = r.u16("TCP_PORT"), r.u16("UDP_PORT")
    return EmergencyAccess(auth_code=code, tcp_port=tcp, udp_port=udp, end=r.time("END_TIME"),
                           **fields)


def write_emergency(req: EmergencyAccess) -> bytes:
    return (bcd(req.auth_code, 10)
            + b"".join(fixed(getattr(req, name), size) for name, _, size in EMERGENCY_FIELDS)
            + struct.pack(">HHQ", req.tcp_port, req.udp_port, to_utc(req.end)))


def read_result(data: bytes, sub_type: int, version: int = V2011) -> ControlResult:
    r = Reader(data, f"UP_CTRL_MSG 0x{sub_type:04x}")
    if check_version(version) == V2019:
        source_type, source_sn = r.u16("SOURCE_DATA_TYPE"), r.u32("SOURCE_MSG_SN")
        return ControlResult(source_type=source_type, source_sn=source_sn, result=r.u8("RESULT"))
    return ControlResult(result=r.u8("RESULT"))


def write_result(a: ControlResult, sub_type: int, version: int = V2011) -> bytes:
    """0x1501 or 0x1505."""
    if check_version(version) == V2019:
        request = MONITOR_VEHICLE_REQ if sub_type == MONITOR_VEHICLE_ACK else \
            EMERGENCY_MONITORING_REQ
        return quoting(a, request) + bytes([a.result])
    return bytes([a.result])


def read_photo_request(data: bytes) -> PhotoRequest:
    r = Reader(data, "DOWN_CTRL_MSG_TAKE_PHOTO_REQ")
    return PhotoRequest(lens=r.u8("LENS_ID"), size=r.u8("SIZE_TYPE"))


def write_photo_request(req: PhotoRequest) -> bytes:
    return bytes([req.lens, req.size])


def read_photo_answer(data: bytes, version: int = V2011) -> PhotoAnswer:
    r = Reader(data, "UP_CTRL_MSG_TAKE_PHOTO_ACK")
    source_type = source_sn = None
    if check_version(version) == V2019:
        source_type, source_sn = r.u16("SOURCE_DATA_TYPE"), r.u32("SOURCE_MSG_SN")
    flag = r.u8("PHOTO_RSP_FLAG")
    fix = read_fix(r, version)
    lens, size = r.u8("LENS_ID"), r.u32("PHOTO_LEN")
    size_type, image_type = r.u8("SIZE_TYPE"), r.u8("TYPE")
    return PhotoAnswer(flag=flag, fix=fix, lens=lens, size=size_type, image_type=image_type,
                       photo=r.take(size, "PHOTO"), source_type=source_type, source_sn=source_sn)


def write_photo_answer(a: PhotoAnswer, version: int = V2011) -> bytes:
    source = b""
    if check_version(version) == V2019:
        source = quoting(a, TAKE_PHOTO_REQ)
    return (source + bytes([a.flag]) + write_fix(a.fix, version)
            + struct.pack(">BIBB", a.lens, len(a.photo), a.size, a.image_type) + a.photo)


def read_text(data: bytes) -> TextRequest:
    r = Reader(data, "DOWN_CTRL_MSG_TEXT_INFO")
    msg_id, priority = r.u32("MSG_SEQUENCE"), r.u8("MSG_PRIORITY")
    return TextRequest(msg_id=msg_id, priority=priority,
                       text=r.content(r.u32("MSG_LENGTH"), "MSG_CONTENT"))


def write_text(req: TextRequest) -> bytes:
    return struct.pack(">IB", req.msg_id, req.priority) + counted(req.text)


def read_text_answer(data: bytes, version: int = V2011) -> TextAnswer:
    r = Reader(data, "UP_CTRL_MSG_TEXT_INFO_ACK")
    if check_version(version) == V2019:
        source_type, source_sn = r.u16("SOURCE_DATA_TYPE"), r.u32("SOURCE_MSG_SN")
        return TextAnswer(source_type=source_type, source_sn=source_sn, result=r.u8("RESULT"))
    return TextAnswer(msg_id=r.u32("MSG_ID"), result=r.u8("RESULT"))


def write_text_answer(a: TextAnswer, version: int = V2011) -> bytes:
    if check_version(version) == V2019:
        return quoting(a, TEXT_INFO) + bytes([a.result])
    return struct.pack(">IB", a.msg_id or 0, a.result)


def write(plate: str, colour: int, sub_type: int, data: bytes) -> bytes:
    """A whole 0x1500 or 0x9500 body."""
    return envelope(sub_type, data, plate, colour)


def read(msg_id: int, body: bytes, version: int = V2011) -> Message:
    check_version(version)
    if msg_id not in (UP_CTRL_MSG, DOWN_CTRL_MSG):
        raise FrameError("unsupported", f"0x{msg_id:04x} is not UP_ or DOWN_CTRL_MSG")
    name = "UP_CTRL_MSG" if msg_id == UP_CTRL_MSG else "DOWN_CTRL_MSG"
    env = read_envelope(body, vehicle=True, what=name)
    sub, data = env.sub_type, env.data
    value: object
    if msg_id == DOWN_CTRL_MSG and sub == TAKE_PHOTO_REQ:
        value = read_photo_request(data)
    elif msg_id == DOWN_CTRL_MSG and sub == TEXT_INFO:
        value = read_text(data)
    elif msg_id == UP_CTRL_MSG and sub == TAKE_PHOTO_ACK:
        value = read_photo_answer(data, version)
    elif msg_id == UP_CTRL_MSG and sub == TEXT_INFO_ACK:
        value = read_text_answer(data, version)
    elif msg_id == DOWN_CTRL_MSG and sub == MONITOR_VEHICLE_REQ:
        value = read_listen(data)
    elif msg_id == DOWN_CTRL_MSG and sub == TAKE_TRAVEL_DATA_REQ:
        value = read_tachograph_request(data, version)
    elif msg_id == DOWN_CTRL_MSG and sub == EMERGENCY_MONITORING_REQ:
        value = read_emergency(data)
    elif msg_id == UP_CTRL_MSG and sub in (MONITOR_VEHICLE_ACK, EMERGENCY_MONITORING_ACK):
        value = read_result(data, sub, version)
    elif msg_id == UP_CTRL_MSG and sub == TAKE_TRAVEL_DATA_ACK:
        value = read_tachograph_answer(data, version)
    else:
        raise FrameError("unsupported", f"{name} sub-business 0x{sub:04x}")
    return Message(sub_type=sub, value=value, plate=env.plate, colour=env.colour)
