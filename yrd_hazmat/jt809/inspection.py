"""Platform inspection and platform messages: UP_PLATFORM_MSG 0x1300 and DOWN_PLATFORM_MSG
0x9300 (envelope without the vehicle: DATA_TYPE UINT16, DATA_LENGTH UINT32, data).

- 0x9301 DOWN_PLATFORM_MSG_POST_QUERY_REQ, the upper platform's inspection question.
  2011 as deployed: OBJECT_TYPE BYTE (1 the connected lower platform, 2 one carrier of
  it, 3 all its carriers), OBJECT_ID 12 bytes, INFO_ID UINT32, INFO_LENGTH UINT32,
  INFO_CONTENT GBK. The first 2011 text had only INFO_ID, INFO_LENGTH, INFO_CONTENT (read
  too: the sizes tell which). 2019: OBJECT_TYPE, OBJECT_ID 20, ANSWER_TIME BYTE (the time
  allowed to answer; the conformance platform sends 10), INFO_ID, INFO_LENGTH,
  INFO_CONTENT.
- 0x1301 UP_PLATFORM_MSG_POST_QUERY_ACK, the answer. 2011: OBJECT_TYPE, OBJECT_ID 12,
  INFO_ID (the question's), INFO_LENGTH, INFO_CONTENT (the bare INFO_ID, INFO_LENGTH,
  INFO_CONTENT form read too). 2019: OBJECT_TYPE, RESPONDER 16 (who answered),
  RESPONDER_TEL 20, OBJECT_ID 20, SOURCE_DATA_TYPE UINT16 and SOURCE_MSG_SN UINT32 (the
  question's DATA_TYPE and frame MSG_SN), INFO_LENGTH, INFO_CONTENT.
- 0x9302 DOWN_PLATFORM_MSG_INFO_REQ, a message to the platform: as 0x9301 without
  ANSWER_TIME. 0x1302 UP_PLATFORM_MSG_INFO_ACK: 2011 INFO_ID; 2019 SOURCE_DATA_TYPE,
  SOURCE_MSG_SN.

Layouts: SmallChi/JT809 ``SubMessageBody/JT809_0x9300_0x9301.cs``, ``JT809_0x1300_0x1301.cs``,
``..._0x1302.cs``, ``..._0x9302.cs``; Yordroid/jt809_server ``jt_msg_handle_platform_msg.go``
(2011 bare, "2013" with object, 2019); spjiang/JT809-server ``P0x9301.java`` and
sizeof1234/gpsGW809 ``CmdDownPlatformMsgPostQueryReq.java`` (2011 with OBJECT_TYPE and a
12-byte OBJECT_ID); the 2019 0x9301 of the ministry's conformance platform in
SmallChi/JT809 ``GuoJian001Test.cs`` (DATA_LENGTH 0x34: 1 + 20 + 1 + 4 + 4 + 22).
"""

from __future__ import annotations

import struct

import msgspec

from ..jt808.frame import FrameError
from .codec import (
    Message,
    Reader,
    check_version,
    counted,
    envelope,
    fixed,
    quoting,
    read_envelope,
)
from .frame import V2011, V2019

UP_PLATFORM_MSG, DOWN_PLATFORM_MSG = 0x1300, 0x9300
POST_QUERY_ACK, INFO_ACK = 0x1301, 0x1302
POST_QUERY_REQ, INFO_REQ = 0x9301, 0x9302
# OBJECT_TYPE
CONNECTED_PLATFORM, ONE_CARRIER, ALL_CARRIERS = 1, 2, 3
OBJECT_ID = {V2011: 12, V2019: 20}


class Inspection(msgspec.Struct, frozen=True, kw_only=True):
    """0x9301 (or 0x9302, a message that asks no answer)."""

    info_id: int
    content: str
    object_type: int | None = None
    """None: the bare 2011 form, which names no object."""
    object_id: str = ""
    answer_time: int | None = None
    """2019 0x9301: ANSWER_TIME as sent."""


class InspectionAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """0x1301."""

    content: str
    object_type: int | None = None
    object_id: str = ""
    info_id: int | None = None
    """2011: the question's INFO_ID."""
    responder: str | None = None
    """2019: who answered and their telephone."""
    responder_tel: str | None = None
    source_type: int | None = None
    """2019: the question's DATA_TYPE (0x9301) and frame MSG_SN."""
    source_sn: int | None = None


class InfoAck(msgspec.Struct, frozen=True, kw_only=True):
    """0x1302."""

    info_id: int | None = None
    source_type: int | None = None
    source_sn: int | None = None


def _bare(data: bytes, at: int) -> bool:
    """Whether INFO_LENGTH at ``at`` accounts for exactly the rest of ``data``."""
    return len(data) >= at + 4 and struct.unpack_from(">I", data, at)[0] == len(data) - at - 4


def read_inspection(data: bytes, version: int = V2011,
                    sub_type: int = POST_QUERY_REQ) -> Inspection:
    what = "DOWN_PLATFORM_MSG_POST_QUERY_REQ" if sub_type == POST_QUERY_REQ else \
        "DOWN_PLATFORM_MSG_INFO_REQ"
    r = Reader(data, what)
    if check_version(version) == V2011 and _bare(data, 4) and not _bare(data, 17):
        info_id = r.u32("INFO_ID")
        return Inspection(info_id=info_id, content=r.content(r.u32("INFO_LENGTH"), "INFO_CONTENT"))
    object_type, object_id = r.u8("OBJECT_TYPE"), r.text(OBJECT_ID[version], "OBJECT_ID")
    answer = r.u8("ANSWER_TIME") if version == V2019 and sub_type == POST_QUERY_REQ else None
    info_id = r.u32("INFO_ID")
    return Inspection(object_type=object_type, object_id=object_id, answer_time=answer,
                      info_id=info_id, content=r.content(r.u32("INFO_LENGTH"), "INFO_CONTENT"))


def write_inspection(q: Inspection, version: int = V2011, sub_type: int = POST_QUERY_REQ) -> bytes:
    """2011: with OBJECT_TYPE and OBJECT_ID, as platforms deploy it (object type 1 when
    None)."""
    check_version(version)
    head = bytes([q.object_type or CONNECTED_PLATFORM]) + fixed(q.object_id, OBJECT_ID[version])
    if version == V2019 and sub_type == POST_QUERY_REQ:
        head += bytes([q.answer_time or 0])
    return head + struct.pack(">I", q.info_id) + counted(q.content)


def read_answer(data: bytes, version: int = V2011) -> InspectionAnswer:
    r = Reader(data, "UP_PLATFORM_MSG_POST_QUERY_ACK")
    if check_version(version) == V2019:
        object_type = r.u8("OBJECT_TYPE")
        responder, tel = r.text(16, "RESPONDER"), r.text(20, "RESPONDER_TEL")
        object_id = r.text(20, "OBJECT_ID")
        source_type, source_sn = r.u16("SOURCE_DATA_TYPE"), r.u32("SOURCE_MSG_SN")
        return InspectionAnswer(object_type=object_type, responder=responder, responder_tel=tel,
                                object_id=object_id, source_type=source_type, source_sn=source_sn,
                                content=r.content(r.u32("INFO_LENGTH"), "INFO_CONTENT"))
    if _bare(data, 4) and not _bare(data, 17):
        info_id = r.u32("INFO_ID")
        return InspectionAnswer(info_id=info_id,
                                content=r.content(r.u32("INFO_LENGTH"), "INFO_CONTENT"))
    object_type, object_id = r.u8("OBJECT_TYPE"), r.text(12, "OBJECT_ID")
    info_id = r.u32("INFO_ID")
    return InspectionAnswer(object_type=object_type, object_id=object_id, info_id=info_id,
                            content=r.content(r.u32("INFO_LENGTH"), "INFO_CONTENT"))


def write_answer(a: InspectionAnswer, version: int = V2011) -> bytes:
    if check_version(version) == V2019:
        return (bytes([a.object_type or CONNECTED_PLATFORM]) + fixed(a.responder or "", 16)
                + fixed(a.responder_tel or "", 20) + fixed(a.object_id, 20)
                + quoting(a, POST_QUERY_REQ)
                + counted(a.content))
    return (bytes([a.object_type or CONNECTED_PLATFORM]) + fixed(a.object_id, 12)
            + struct.pack(">I", a.info_id or 0) + counted(a.content))


def read_info_ack(data: bytes, version: int = V2011) -> InfoAck:
    r = Reader(data, "UP_PLATFORM_MSG_INFO_ACK")
    if check_version(version) == V2019:
        return InfoAck(source_type=r.u16("SOURCE_DATA_TYPE"), source_sn=r.u32("SOURCE_MSG_SN"))
    return InfoAck(info_id=r.u32("INFO_ID"))


def write_info_ack(ack: InfoAck, version: int = V2011) -> bytes:
    if check_version(version) == V2019:
        return quoting(ack, INFO_REQ)
    return struct.pack(">I", ack.info_id or 0)


def write(sub_type: int, data: bytes) -> bytes:
    """A whole 0x1300 or 0x9300 body."""
    return envelope(sub_type, data)


def read(msg_id: int, body: bytes, version: int = V2011) -> Message:
    check_version(version)
    if msg_id not in (UP_PLATFORM_MSG, DOWN_PLATFORM_MSG):
        raise FrameError("unsupported", f"0x{msg_id:04x} is not UP_ or DOWN_PLATFORM_MSG")
    name = "UP_PLATFORM_MSG" if msg_id == UP_PLATFORM_MSG else "DOWN_PLATFORM_MSG"
    env = read_envelope(body, vehicle=False, what=name)
    sub = env.sub_type
    value: object
    if msg_id == DOWN_PLATFORM_MSG and sub in (POST_QUERY_REQ, INFO_REQ):
        value = read_inspection(env.data, version, sub)
    elif msg_id == UP_PLATFORM_MSG and sub == POST_QUERY_ACK:
        value = read_answer(env.data, version)
    elif msg_id == UP_PLATFORM_MSG and sub == INFO_ACK:
        value = read_info_ack(env.data, version)
    else:
        raise FrameError("unsupported", f"{name} sub-business 0x{sub:04x}")
    return Message(sub_type=sub, value=value)
