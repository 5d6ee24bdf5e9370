"""Vehicle control: UP_CTRL_MSG 0x1500 and DOWN_CTRL_MSG 0x9500 (envelope with the vehicle
in both editions).

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

Layouts: SmallChi/JT809 ``SubMessageBody/JT809_0x9500_0x9502.cs``, ``..._0x9503.cs``,
``JT809_0x1500_0x1502.cs``, ``..._0x1503.cs``; spjiang/JT809-server ``P0x9502PB.java``,
``P0x1502PB.java``, ``P0x9503PB.java``, ``P0x1503PB.java`` (2011); Yordroid/jt809_server
``jt_msg_handle_ctrl_msg.go`` (2019 photo answer); a 2019 photo answer with a JPEG and
a 2019 0x1501 answer (SOURCE_DATA_TYPE, SOURCE_MSG_SN, RESULT) in the conformance
captures of SmallChi/JT809 ``GuoJian001Test.cs``.
"""

from __future__ import annotations

import struct

import msgspec

from ..jt808.frame import FrameError
from .codec import Message, Reader, check_version, counted, envelope, read_envelope
from .frame import V2011, V2019
from .gnss import Fix, read_fix, write_fix

UP_CTRL_MSG, DOWN_CTRL_MSG = 0x1500, 0x9500
TAKE_PHOTO_ACK, TEXT_INFO_ACK = 0x1502, 0x1503
TAKE_PHOTO_REQ, TEXT_INFO = 0x9502, 0x9503
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
        source = struct.pack(">HI", a.source_type or TAKE_PHOTO_REQ, a.source_sn or 0)
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
        return struct.pack(">HIB", a.source_type or TEXT_INFO, a.source_sn or 0, a.result)
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
    else:
        raise FrameError("unsupported", f"{name} sub-business 0x{sub:04x}")
    return Message(sub_type=sub, value=value, plate=env.plate, colour=env.colour)
