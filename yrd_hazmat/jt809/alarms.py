"""Alarm exchange: UP_WARN_MSG 0x1400 and DOWN_WARN_MSG 0x9400. The envelope carries the
vehicle in 2011 and not in 2019 (2019 moved it into the alarm bodies).

- 0x1402 UP_WARN_MSG_ADPT_INFO (an alarm sent up), 0x9402 DOWN_WARN_MSG_INFORM_TIPS (a
  warning tip sent down), 0x9403 DOWN_WARN_MSG_EXG_INFORM (an alarm passed down). 2011:
  WARN_SRC BYTE, WARN_TYPE UINT16, WARN_TIME UINT64 (UTC), 0x1402 then INFO_ID UINT32,
  then INFO_LENGTH UINT32 and INFO_CONTENT GBK. 2019: SOURCE_PLATFORM_ID 11 (the platform
  that raised it), WARN_TYPE, WARN_TIME, START_TIME, END_TIME UINT64, VEHICLE_NO 21,
  VEHICLE_COLOR BYTE, DESTINATION_PLATFORM_ID 11 (the platform alarmed about; zeros
  when none), DRV_LINE_ID UINT32, INFO_LENGTH, INFO_CONTENT (78 bytes and the text). The
  ministry's conformance platform was captured sending one time fewer (70 bytes and the
  text, times in milliseconds): read as WARN_TIME and END_TIME; DATA_LENGTH tells which.
- 0x9401 DOWN_WARN_MSG_URGE_TODO_REQ, a supervision order. 2011 (92 bytes): WARN_SRC,
  WARN_TYPE, WARN_TIME, SUPERVISION_ID UINT32, SUPERVISION_ENDTIME UINT64 (the deadline),
  SUPERVISION_LEVEL BYTE (0 urgent, 1 normal), SUPERVISOR 16, SUPERVISOR_TEL 20,
  SUPERVISOR_EMAIL 32. 2019 (102 bytes): SOURCE_PLATFORM_ID 11, WARN_TIME, SOURCE_DATA_TYPE
  UINT16 and SOURCE_MSG_SN UINT32 (the alarm report 0x1402 it is about), SUPERVISION_ENDTIME,
  SUPERVISION_LEVEL, SUPERVISOR, SUPERVISOR_TEL, SUPERVISOR_EMAIL; the 2011 layout is
  read under a 2019 header too.
- 0x1401 UP_WARN_MSG_URGE_TODO_ACK, the answer: 2011 SUPERVISION_ID UINT32, RESULT BYTE
  (0 in progress, 1 done, 2 not handled, 3 later). 2019 (11 bytes): SUPERVISION_ID,
  SOURCE_DATA_TYPE, SOURCE_MSG_SN, RESULT; the 5-byte and a 7-byte (source, result) form
  are read too.
- 0x1412 UP_WARN_MSG_ADPT_TODO_INFO (2019), a handling result sent unasked:
  SOURCE_DATA_TYPE, SOURCE_MSG_SN, RESULT. Its 2011 counterpart 0x1403: INFO_ID, RESULT.

Layouts: SmallChi/JT809 ``SubMessageBody/JT809_0x1400_0x1401.cs``, ``..._0x1402.cs``,
``..._0x1403.cs``, ``..._0x1412.cs``, ``..._0x1413.cs`` (the 102-byte order layout),
``JT809_0x9400_0x9401.cs`` ... ``0x9403.cs``, ``JT809_0x1400.cs`` (2019 envelope);
spjiang/JT809-server ``P0x9401PB.java``, ``P0x1401PB.java``, ``P0x1402PB.java``,
``P0x9402PB.java`` (2011); Yordroid/jt809_server ``jt_msg_handle_warn_msg.go`` (2019 order
and 11-byte answer); gaochundong/gbprotocol ``JT809_Message_Content_0x1400_Sub_0x1402.java``
(2019 fields); conformance captures in SmallChi/JT809 ``GuoJian001Test.cs`` (a 2019 0x9403
of 102 bytes, a 0x1402 of 86, a 0x1401 of 11).
"""

from __future__ import annotations

import struct
from datetime import datetime

import msgspec

from ..jt808.frame import FrameError
from .codec import (PLATE, Message, Reader, check_version, counted, envelope, fixed,
                    quoting, read_envelope, to_utc)
from .frame import V2011, V2019

UP_WARN_MSG, DOWN_WARN_MSG = 0x1400, 0x9400
URGE_TODO_ACK, ADPT_INFO, ADPT_TODO_INFO_2011, ADPT_TODO_INFO = 0x1401, 0x1402, 0x1403, 0x1412
URGE_TODO_REQ, INFORM_TIPS, EXG_INFORM = 0x9401, 0x9402, 0x9403

# WARN_SRC
FROM_TERMINAL, FROM_ENTERPRISE, FROM_GOVERNMENT, FROM_OTHER = 1, 2, 3, 9
# WARN_TYPE, JT/T 809's table of alarm types (SmallChi/JT809 ``JT809WarnType.cs``,
# zboyco/jtt809 ``enums.go``): 2011 0x0001-0x000E; 2019 moves congestion and dangerous
# road to 0xA006/0xA007, adds 0x0010-0x0014 and the platform-side 0xA0xx, other 0x00FF
OVERSPEED, FATIGUE, EMERGENCY, AREA_IN, AREA_OUT = 0x0001, 0x0002, 0x0003, 0x0004, 0x0005
CONGESTION, DANGEROUS_ROAD, OUT_OF_BOUNDS, THEFT, HIJACK = 0x0006, 0x0007, 0x0008, 0x0009, 0x000A
ROUTE_DEVIATION, VEHICLE_MOVED, OVERTIME_DRIVING, OTHER = 0x000B, 0x000C, 0x000D, 0x000E
VIOLATION, FORWARD_COLLISION, LANE_DEPARTURE, TYRE_PRESSURE, BAD_DYNAMIC_DATA = \
    0x0010, 0x0011, 0x0012, 0x0013, 0x0014
OTHER_2019, OVERTIME_PARKING = 0x00FF, 0xA001
# SUPERVISION_LEVEL
URGENT, NORMAL = 0, 1
# RESULT of 0x1401 / 0x1412 / 0x1403
IN_PROGRESS, DONE, NOT_HANDLED, LATER = 0, 1, 2, 3

ALARM_2019, ALARM_2019_SHORT = 78, 70
"""2019 alarm body sizes before INFO_CONTENT: three times, and the conformance
platform's two."""
ORDER_2011, ORDER_2019 = 92, 102


class Alarm(msgspec.Struct, frozen=True, kw_only=True):
    """0x1402, 0x9402, 0x9403."""

    warn_type: int
    warn_time: datetime | None
    content: str = ""
    warn_src: int | None = None
    """2011."""
    info_id: int | None = None
    """2011 0x1402."""
    platform_id: str | None = None
    """2019: SOURCE_PLATFORM_ID, the platform that raised the alarm."""
    start_time: datetime | None = None
    """2019: the event's start (absent from the conformance platform's shorter layout)."""
    end_time: datetime | None = None
    plate: str | None = None
    """2019: the vehicle (2011: in the envelope)."""
    colour: int | None = None
    destination_id: str | None = None
    """2019: DESTINATION_PLATFORM_ID, the platform alarmed about."""
    line_id: int | None = None
    """2019: DRV_LINE_ID (JT/T 808-2019 0x8606's route id)."""


class SupervisionOrder(msgspec.Struct, frozen=True, kw_only=True):
    """0x9401."""

    deadline: datetime | None
    level: int
    supervisor: str
    tel: str
    email: str
    warn_time: datetime | None = None
    warn_src: int | None = None
    """2011 layout: the alarm's source, type and the order's id."""
    warn_type: int | None = None
    supervision_id: int | None = None
    platform_id: str | None = None
    """2019 layout: the platform that raised the alarm and the alarm report (DATA_TYPE
    0x1402 and the frame's MSG_SN) the order is about."""
    source_type: int | None = None
    source_sn: int | None = None


class SupervisionAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """0x1401. In 2019 ``supervision_id`` has no field in the order to come from: Yordroid's
    platform answers with the order frame's MSG_SN there."""

    supervision_id: int | None
    result: int
    source_type: int | None = None
    """2019: the alarm report the order was about (the order's SOURCE_DATA_TYPE, _MSG_SN)."""
    source_sn: int | None = None


class HandlingResult(msgspec.Struct, frozen=True, kw_only=True):
    """0x1412 (2019: about the message SOURCE_DATA_TYPE/SOURCE_MSG_SN) or 0x1403 (2011:
    about the alarm INFO_ID)."""

    result: int
    source_type: int | None = None
    source_sn: int | None = None
    info_id: int | None = None


_NAMES = {ADPT_INFO: "UP_WARN_MSG_ADPT_INFO", INFORM_TIPS: "DOWN_WARN_MSG_INFORM_TIPS",
          EXG_INFORM: "DOWN_WARN_MSG_EXG_INFORM"}


def read_alarm(data: bytes, sub_type: int = ADPT_INFO, version: int = V2011) -> Alarm:
    r = Reader(data, _NAMES.get(sub_type, f"0x{sub_type:04x}"))
    if check_version(version) == V2011:
        src, warn_type, warn_time = r.u8("WARN_SRC"), r.u16("WARN_TYPE"), r.time("WARN_TIME")
        info_id = r.u32("INFO_ID") if sub_type == ADPT_INFO else None
        content = r.content(r.u32("INFO_LENGTH"), "INFO_CONTENT")
        return Alarm(warn_src=src, warn_type=warn_type, warn_time=warn_time, info_id=info_id,
                     content=content)
    short = _fits(data, ALARM_2019_SHORT) and not _fits(data, ALARM_2019)
    platform, warn_type, warn_time = r.text(11, "SOURCE_PLATFORM_ID"), r.u16("WARN_TYPE"), \
        r.time("WARN_TIME")
    start = None if short else r.time("START_TIME")
    end = r.time("END_TIME")
    plate, colour = r.text(PLATE, "VEHICLE_NO"), r.u8("VEHICLE_COLOR")
    destination, line = r.text(11, "DESTINATION_PLATFORM_ID"), r.u32("DRV_LINE_ID")
    content = r.content(r.u32("INFO_LENGTH"), "INFO_CONTENT")
    return Alarm(platform_id=platform, warn_type=warn_type, warn_time=warn_time,
                 start_time=start, end_time=end, plate=plate, colour=colour,
                 destination_id=destination, line_id=line, content=content)


def _fits(data: bytes, fixed_size: int) -> bool:
    """Whether INFO_LENGTH after ``fixed_size - 4`` bytes accounts for the rest."""
    return len(data) >= fixed_size and \
        struct.unpack_from(">I", data, fixed_size - 4)[0] == len(data) - fixed_size


def write_alarm(alarm: Alarm, sub_type: int = ADPT_INFO, version: int = V2011,
                times: int = 3) -> bytes:
    """2019: ``times`` 3 (WARN_TIME, START_TIME, END_TIME) or 2 (WARN_TIME, END_TIME), the
    layout the conformance platform was seen using."""
    if check_version(version) == V2011:
        info = struct.pack(">I", alarm.info_id or 0) if sub_type == ADPT_INFO else b""
        return (struct.pack(">BHQ", alarm.warn_src or FROM_ENTERPRISE, alarm.warn_type,
                            to_utc(alarm.warn_time)) + info + counted(alarm.content))
    if times not in (2, 3):
        raise ValueError(f"a 2019 alarm has 2 or 3 times, not {times}")
    stamps = [alarm.warn_time] + ([alarm.start_time or alarm.warn_time] if times == 3 else []) \
        + [alarm.end_time or alarm.warn_time]
    return (fixed(alarm.platform_id or "", 11) + struct.pack(">H", alarm.warn_type)
            + b"".join(struct.pack(">Q", to_utc(t)) for t in stamps)
            + fixed(alarm.plate or "", PLATE) + bytes([alarm.colour or 0])
            + fixed(alarm.destination_id or "", 11) + struct.pack(">I", alarm.line_id or 0)
            + counted(alarm.content))


def read_order(data: bytes, version: int = V2011) -> SupervisionOrder:
    r = Reader(data, "DOWN_WARN_MSG_URGE_TODO_REQ")
    if check_version(version) == V2019 and len(data) >= ORDER_2019:
        platform, warn_time = r.text(11, "SOURCE_PLATFORM_ID"), r.time("WARN_TIME")
        source_type, source_sn = r.u16("SOURCE_DATA_TYPE"), r.u32("SOURCE_MSG_SN")
        return SupervisionOrder(platform_id=platform, warn_time=warn_time,
                                source_type=source_type, source_sn=source_sn, **_supervisor(r))
    if version == V2019 and len(data) != ORDER_2011:
        raise FrameError("truncated" if len(data) < ORDER_2011 else "bad_message",
                         f"DOWN_WARN_MSG_URGE_TODO_REQ of {len(data)} bytes: {ORDER_2019} "
                         f"(2019) or {ORDER_2011} (2011 layout) expected")
    src, warn_type, warn_time = r.u8("WARN_SRC"), r.u16("WARN_TYPE"), r.time("WARN_TIME")
    supervision_id = r.u32("SUPERVISION_ID")
    return SupervisionOrder(warn_src=src, warn_type=warn_type, warn_time=warn_time,
                            supervision_id=supervision_id, **_supervisor(r))


def _supervisor(r: Reader) -> dict[str, object]:
    return {"deadline": r.time("SUPERVISION_ENDTIME"), "level": r.u8("SUPERVISION_LEVEL"),
            "supervisor": r.text(16, "SUPERVISOR"), "tel": r.text(20, "SUPERVISOR_TEL"),
            "email": r.text(32, "SUPERVISOR_EMAIL")}


def write_order(order: SupervisionOrder, version: int = V2011) -> bytes:
    tail = (struct.pack(">QB", to_utc(order.deadline), order.level) + fixed(order.supervisor, 16)
            + fixed(order.tel, 20) + fixed(order.email, 32))
    if check_version(version) == V2019:
        return (fixed(order.platform_id or "", 11) + struct.pack(">QHI", to_utc(order.warn_time),
                order.source_type or ADPT_INFO, order.source_sn or 0) + tail)
    return struct.pack(">BHQI", order.warn_src or FROM_GOVERNMENT, order.warn_type or 0,
                       to_utc(order.warn_time), order.supervision_id or 0) + tail


def read_order_answer(data: bytes, version: int = V2011) -> SupervisionAnswer:
    r = Reader(data, "UP_WARN_MSG_URGE_TODO_ACK")
    if check_version(version) == V2019 and len(data) >= 11:
        supervision_id, source_type, source_sn = r.u32("SUPERVISION_ID"), \
            r.u16("SOURCE_DATA_TYPE"), r.u32("SOURCE_MSG_SN")
        return SupervisionAnswer(supervision_id=supervision_id, source_type=source_type,
                                 source_sn=source_sn, result=r.u8("RESULT"))
    if version == V2019 and len(data) == 7:
        source_type, source_sn = r.u16("SOURCE_DATA_TYPE"), r.u32("SOURCE_MSG_SN")
        return SupervisionAnswer(supervision_id=None, source_type=source_type,
                                 source_sn=source_sn, result=r.u8("RESULT"))
    return SupervisionAnswer(supervision_id=r.u32("SUPERVISION_ID"), result=r.u8("RESULT"))


def write_order_answer(answer: SupervisionAnswer, version: int = V2011) -> bytes:
    if check_version(version) == V2019:
        return struct.pack(">IHIB", answer.supervision_id or 0, answer.source_type or ADPT_INFO,
                           answer.source_sn or 0, answer.result)
    return struct.pack(">IB", answer.supervision_id or 0, answer.result)


def read_result(data: bytes, sub_type: int = ADPT_TODO_INFO) -> HandlingResult:
    if sub_type == ADPT_TODO_INFO_2011:
        r = Reader(data, "UP_WARN_MSG_ADPT_TODO_INFO (2011)")
        return HandlingResult(info_id=r.u32("INFO_ID"), result=r.u8("RESULT"))
    r = Reader(data, "UP_WARN_MSG_ADPT_TODO_INFO")
    return HandlingResult(source_type=r.u16("SOURCE_DATA_TYPE"), source_sn=r.u32("SOURCE_MSG_SN"),
                          result=r.u8("RESULT"))


def write_result(result: HandlingResult, sub_type: int = ADPT_TODO_INFO) -> bytes:
    if sub_type == ADPT_TODO_INFO_2011:
        return struct.pack(">IB", result.info_id or 0, result.result)
    return quoting(result, ADPT_INFO) + bytes([result.result])


def write(sub_type: int, data: bytes, version: int = V2011, plate: str | None = None,
          colour: int = 0) -> bytes:
    """A whole 0x1400 or 0x9400 body: 2011 with the vehicle (``plate`` required), 2019
    without."""
    if check_version(version) == V2011:
        if plate is None:
            raise ValueError("a 2011 alarm message names its vehicle")
        return envelope(sub_type, data, plate, colour)
    return envelope(sub_type, data)


def read(msg_id: int, body: bytes, version: int = V2011) -> Message:
    check_version(version)
    if msg_id not in (UP_WARN_MSG, DOWN_WARN_MSG):
        raise FrameError("unsupported", f"0x{msg_id:04x} is not UP_ or DOWN_WARN_MSG")
    name = "UP_WARN_MSG" if msg_id == UP_WARN_MSG else "DOWN_WARN_MSG"
    env = read_envelope(body, vehicle=version == V2011, what=name)
    sub, data = env.sub_type, env.data
    value: object
    if (msg_id == UP_WARN_MSG and sub == ADPT_INFO) or \
            (msg_id == DOWN_WARN_MSG and sub in (INFORM_TIPS, EXG_INFORM)):
        value = read_alarm(data, sub, version)
    elif msg_id == DOWN_WARN_MSG and sub == URGE_TODO_REQ:
        value = read_order(data, version)
    elif msg_id == UP_WARN_MSG and sub == URGE_TODO_ACK:
        value = read_order_answer(data, version)
    elif msg_id == UP_WARN_MSG and (sub == ADPT_TODO_INFO or
                                    (sub == ADPT_TODO_INFO_2011 and version == V2011)):
        value = read_result(data, sub)
    else:
        raise FrameError("unsupported", f"{name} sub-business 0x{sub:04x}")
    return Message(sub_type=sub, value=value, plate=env.plate, colour=env.colour)
