"""Vehicle dynamic information exchange: UP_EXG_MSG 0x1200 (main link) and DOWN_EXG_MSG
0x9200 (slave link).

Envelope: VEHICLE_NO 21 GBK, VEHICLE_COLOR BYTE, DATA_TYPE UINT16, DATA_LENGTH UINT32,
data (:mod:`.codec`). Sub-businesses:

- 0x1201 UP_EXG_MSG_REGISTER: 2011 PLATFORM_ID 11, PRODUCER_ID 11, TERMINAL_MODEL_TYPE 8,
  TERMINAL_ID 7, TERMINAL_SIMCODE 12 (49 bytes; platforms following JT/T 808-2013 send a
  20-byte model, 61 bytes); 2019 PLATFORM_ID 11, PRODUCER_ID 11, TERMINAL_MODEL_TYPE 30,
  IMEI 15, TERMINAL_ID 30, TERMINAL_SIMCODE 13 (110 bytes).
- 0x1202 UP_EXG_MSG_REAL_LOCATION and 0x9202 DOWN_EXG_MSG_CAR_LOCATION: one GNSS_DATA
  (:mod:`.gnss`, different in each edition).
- 0x1203 UP_EXG_MSG_HISTORY_LOCATION and 0x9203 DOWN_EXG_MSG_HISTORY_ARCOSSAREA:
  GNSS_CNT BYTE (1 to 5), then that many GNSS_DATA.
- 0x120B UP_EXG_MSG_TAKE_EWAYBILL_ACK (answer to 0x920B): 2019 first SOURCE_DATA_TYPE
  UINT16 and SOURCE_MSG_SN UINT32 (the request's), then EWAYBILL_LENGTH UINT32 and
  EWAYBILL_INFO (GBK); 0x120D UP_EXG_MSG_REPORT_EWAYBILL_INFO: EWAYBILL_LENGTH, EWAYBILL_INFO.
- 0x920B DOWN_EXG_MSG_TAKE_EWAYBILL_REQ: no data.
- 0x9201 DOWN_EXG_MSG_REGISTER_ACK (2019): SOURCE_DATA_TYPE UINT16, SOURCE_MSG_SN UINT32,
  RESULT BYTE; some 2019 upper platforms send it without the vehicle, which a plate cannot
  be mistaken for (0x01 is no GBK trail byte), so both are read.
- 0x9204 DOWN_EXG_MSG_CAR_INFO: CAR_INFO, the static information of a vehicle from
  elsewhere (GBK, the rest of the data).
- 0x9205 DOWN_EXG_MSG_RETURN_STARTUP (start sending this vehicle's positions up):
  REASON_CODE BYTE (0 entered the designated area, 1 designated by hand, 2 emergency,
  3 other); 0x9206 DOWN_EXG_MSG_RETURN_END (stop): REASON_CODE (0 left the area, 1 stopped
  by hand, 2 emergency over, 3 vehicle offline, 4 other). Answers 0x1205
  UP_EXG_MSG_RETURN_STARTUP_ACK and 0x1206 UP_EXG_MSG_RETURN_END_ACK: no data in 2011; in
  2019 the standard's table puts SOURCE_DATA_TYPE and SOURCE_MSG_SN *before* a DATA_LENGTH
  of 0 (DATA_TYPE, SOURCE_DATA_TYPE, SOURCE_MSG_SN, DATA_LENGTH 0x00000000, as captured
  from a platform in SmallChi/JT809 ``JT809_0x1200_0x1205Test.cs``); that is what is
  written, and the ordinary envelope with the two fields as data is read too.
- 0x920A DOWN_EXG_MSG_REPORT_DRIVER_INFO (who drives this vehicle): no data in 2011; 2019
  FLAG BYTE (0 the latest known, 1 ask the terminal). 0x120A
  UP_EXG_MSG_REPORT_DRIVER_INFO_ACK (2019 first SOURCE_DATA_TYPE, SOURCE_MSG_SN) and 0x120C
  UP_EXG_MSG_REPORT_DRIVER_INFO (sent unasked): DRIVER_NAME 16, DRIVER_ID 20 (identity
  card), LICENCE 40 (qualification certificate), ORG_NAME 200 (who issued it); 2019 then
  VALID_DATE UINT64 (the certificate's expiry).

Layouts: SmallChi/JT809 ``SubMessageBody/JT809_0x1200_0x1201.cs`` (both registration
sizes of 2011), ``..._0x1202.cs``, ``..._0x1203.cs``, ``..._0x120B.cs``, ``..._0x120D.cs``,
``JT809_0x9200_0x9201.cs`` and ``JT809_0x9200.cs`` (the vehicle-less 0x9201),
``JT809_0x9200_0x9204.cs`` ... ``0x9206.cs``, ``..._0x920A.cs``, ``JT809_0x1200_0x1205.cs``,
``..._0x1206.cs``, ``..._0x120A.cs``, ``..._0x120C.cs``;
spjiang/JT809-server ``P0x1201PB.java``, ``P0x120BPB.java``, ``P0x120DPB.java`` (2011);
Yordroid/jt809_server ``jt_msg_handle_exg_msg.go`` (2019 registration, 110 bytes).
"""

from __future__ import annotations

import struct
from datetime import datetime

import msgspec

from ..jt808.frame import FrameError
from .codec import (
    Envelope,
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
from .gnss import Fix, read_fix, required, write_fix

UP_EXG_MSG, DOWN_EXG_MSG = 0x1200, 0x9200
REGISTER, REAL_LOCATION, HISTORY_LOCATION = 0x1201, 0x1202, 0x1203
RETURN_STARTUP_ACK, RETURN_END_ACK = 0x1205, 0x1206
REPORT_DRIVER_INFO_ACK, TAKE_EWAYBILL_ACK, REPORT_DRIVER_INFO, REPORT_EWAYBILL_INFO = \
    0x120A, 0x120B, 0x120C, 0x120D
REGISTER_ACK, CAR_LOCATION, HISTORY_ARCOSSAREA = 0x9201, 0x9202, 0x9203
CAR_INFO, RETURN_STARTUP, RETURN_END = 0x9204, 0x9205, 0x9206
DOWN_REPORT_DRIVER_INFO, TAKE_EWAYBILL_REQ = 0x920A, 0x920B
MAX_HISTORY = 5
"""GNSS_CNT: at most 5 positions a 0x1203."""

REGISTRATION_2011 = {49: 8, 61: 20}
"""2011 registration size -> TERMINAL_MODEL_TYPE width."""
REGISTRATION_2019 = (11, 11, 30, 15, 30, 13)
# DOWN_EXG_MSG_REGISTER_ACK results
REGISTERED, REGISTERED_CHECKED, REGISTRATION_WRONG, REGISTRATION_REFUSED = range(4)
# 0x9205 / 0x9206 REASON_CODE
STARTUP_REASONS = {0: "entered the designated area", 1: "designated by hand",
                   2: "emergency", 3: "other"}
END_REASONS = {0: "left the designated area", 1: "stopped by hand", 2: "emergency over",
               3: "vehicle offline", 4: "other"}
# 0x920A FLAG (2019)
LATEST_KNOWN, ASK_TERMINAL = 0, 1
DRIVER_FIELDS = (("name", "DRIVER_NAME", 16), ("driver_id", "DRIVER_ID", 20),
                 ("licence", "LICENCE", 40), ("org", "ORG_NAME", 200))


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    """UP_EXG_MSG_REGISTER: the vehicle's terminal."""

    platform_id: str
    producer_id: str
    terminal_model: str
    terminal_id: str
    sim: str
    imei: str | None = None
    """2019 only."""


class Waybill(msgspec.Struct, frozen=True, kw_only=True):
    """0x120B (answer) or 0x120D (sent unasked): an electronic waybill's text."""

    text: str
    source_type: int | None = None
    """2019 0x120B: the request answered (0x920B) and its MSG_SN."""
    source_sn: int | None = None


class RegistrationAck(msgspec.Struct, frozen=True, kw_only=True):
    """DOWN_EXG_MSG_REGISTER_ACK (2019)."""

    source_type: int
    source_sn: int
    result: int


class ExchangeOrder(msgspec.Struct, frozen=True, kw_only=True):
    """DOWN_EXG_MSG_RETURN_STARTUP 0x9205 / DOWN_EXG_MSG_RETURN_END 0x9206."""

    reason: int


class ExchangeAck(msgspec.Struct, frozen=True, kw_only=True):
    """UP_EXG_MSG_RETURN_STARTUP_ACK 0x1205 / UP_EXG_MSG_RETURN_END_ACK 0x1206 (2019: the
    order answered; 2011: no data)."""

    source_type: int | None = None
    source_sn: int | None = None


class DriverRequest(msgspec.Struct, frozen=True, kw_only=True):
    """DOWN_EXG_MSG_REPORT_DRIVER_INFO 0x920A."""

    flag: int | None = None
    """2019: 0 the latest known, 1 ask the terminal."""


class Driver(msgspec.Struct, frozen=True, kw_only=True):
    """0x120A (an answer to 0x920A) or 0x120C (sent unasked): who drives the vehicle."""

    name: str = ""
    driver_id: str = ""
    """DRIVER_ID: the identity card number."""
    licence: str = ""
    """LICENCE: the qualification certificate number."""
    org: str = ""
    """ORG_NAME: who issued the certificate."""
    valid_until: datetime | None = None
    """2019 VALID_DATE."""
    source_type: int | None = None
    """2019 0x120A: the request answered (0x920A) and its MSG_SN."""
    source_sn: int | None = None


def read_registration(data: bytes, version: int = V2011) -> Registration:
    r = Reader(data, "UP_EXG_MSG_REGISTER")
    if check_version(version) == V2019:
        sizes = REGISTRATION_2019
        platform, producer, model = (r.text(sizes[0], "PLATFORM_ID"),
                                     r.text(sizes[1], "PRODUCER_ID"),
                                     r.text(sizes[2], "TERMINAL_MODEL_TYPE"))
        imei = r.text(sizes[3], "IMEI")
        return Registration(platform_id=platform, producer_id=producer, terminal_model=model,
                            imei=imei, terminal_id=r.text(sizes[4], "TERMINAL_ID"),
                            sim=r.text(sizes[5], "TERMINAL_SIMCODE"))
    model_size = REGISTRATION_2011.get(len(data))
    if model_size is None:
        raise FrameError("bad_message", f"UP_EXG_MSG_REGISTER of {len(data)} bytes: 2011 "
                                        "sends 49 (or 61 with a 20-byte model)")
    return Registration(platform_id=r.text(11, "PLATFORM_ID"),
                        producer_id=r.text(11, "PRODUCER_ID"),
                        terminal_model=r.text(model_size, "TERMINAL_MODEL_TYPE"),
                        terminal_id=r.text(7, "TERMINAL_ID"), sim=r.text(12, "TERMINAL_SIMCODE"))


def write_registration(reg: Registration, version: int = V2011) -> bytes:
    """2011: the 49-byte layout, or the 61-byte one when the model needs more than 8 bytes."""
    if check_version(version) == V2019:
        fields = (reg.platform_id, reg.producer_id, reg.terminal_model, reg.imei or "",
                  reg.terminal_id, reg.sim)
        return b"".join(fixed(text, size) for text, size in zip(fields, REGISTRATION_2019))
    model = 8 if len(reg.terminal_model.encode("gbk", errors="replace")) <= 8 else 20
    return (fixed(reg.platform_id, 11) + fixed(reg.producer_id, 11)
            + fixed(reg.terminal_model, model) + fixed(reg.terminal_id, 7) + fixed(reg.sim, 12))


def read_location(data: bytes, version: int = V2011, what: str = "UP_EXG_MSG_REAL_LOCATION") -> Fix:
    r = Reader(data, what)
    return required(read_fix(r, check_version(version)), what)


def write_location(fix: Fix, version: int = V2011) -> bytes:
    return write_fix(fix, check_version(version))


def read_history(data: bytes, version: int = V2011,
                 what: str = "UP_EXG_MSG_HISTORY_LOCATION") -> list[Fix]:
    r = Reader(data, what)
    count = r.u8("GNSS_CNT")
    if count == 0:
        raise FrameError("bad_message", f"{what} with GNSS_CNT 0")
    check_version(version)
    return [required(read_fix(r, version), f"{what} #{i + 1}") for i in range(count)]


def write_history(fixes: list[Fix], version: int = V2011) -> bytes:
    """GNSS_CNT and the positions, in time order."""
    if not 1 <= len(fixes) <= MAX_HISTORY:
        raise ValueError(f"a history carries 1 to {MAX_HISTORY} positions, not {len(fixes)}")
    ordered = sorted(fixes, key=lambda fix: fix.ts)
    return bytes([len(fixes)]) + b"".join(write_fix(f, check_version(version)) for f in ordered)


def batches(fixes: list[Fix]) -> list[list[Fix]]:
    """Kept positions as the 0x1203s to send them in: time order, at most 5 each."""
    ordered = sorted(fixes, key=lambda fix: fix.ts)
    return [ordered[i:i + MAX_HISTORY] for i in range(0, len(ordered), MAX_HISTORY)]


def read_waybill(data: bytes, sub_type: int, version: int = V2011) -> Waybill:
    what = "UP_EXG_MSG_TAKE_EWAYBILL_ACK" if sub_type == TAKE_EWAYBILL_ACK else \
        "UP_EXG_MSG_REPORT_EWAYBILL_INFO"
    r = Reader(data, what)
    source_type = source_sn = None
    if sub_type == TAKE_EWAYBILL_ACK and check_version(version) == V2019:
        source_type, source_sn = r.u16("SOURCE_DATA_TYPE"), r.u32("SOURCE_MSG_SN")
    size = r.u32("EWAYBILL_LENGTH")
    return Waybill(text=r.content(size, "EWAYBILL_INFO"), source_type=source_type,
                   source_sn=source_sn)


def write_waybill(waybill: Waybill, sub_type: int = REPORT_EWAYBILL_INFO,
                  version: int = V2011) -> bytes:
    source = b""
    if sub_type == TAKE_EWAYBILL_ACK and check_version(version) == V2019:
        source = quoting(waybill, TAKE_EWAYBILL_REQ)
    return source + counted(waybill.text)


def read_registration_ack(data: bytes) -> RegistrationAck:
    r = Reader(data, "DOWN_EXG_MSG_REGISTER_ACK")
    return RegistrationAck(source_type=r.u16("SOURCE_DATA_TYPE"), source_sn=r.u32("SOURCE_MSG_SN"),
                           result=r.u8("RESULT"))


def write_registration_ack(ack: RegistrationAck) -> bytes:
    return struct.pack(">HIB", ack.source_type, ack.source_sn, ack.result)


def read_exchange_ack(data: bytes, version: int = V2011) -> ExchangeAck:
    if check_version(version) == V2011 or not data:
        return ExchangeAck()
    r = Reader(data, "UP_EXG_MSG_RETURN_*_ACK")
    return ExchangeAck(source_type=r.u16("SOURCE_DATA_TYPE"), source_sn=r.u32("SOURCE_MSG_SN"))


def write_exchange_ack(sub_type: int, ack: ExchangeAck, plate: str, colour: int,
                       version: int = V2011) -> bytes:
    """A whole 0x1200 body answering 0x9205 / 0x9206: in 2019 the standard's layout,
    SOURCE_DATA_TYPE and SOURCE_MSG_SN between DATA_TYPE and a DATA_LENGTH of 0."""
    if check_version(version) == V2011:
        return envelope(sub_type, b"", plate, colour)
    source = RETURN_STARTUP if sub_type == RETURN_STARTUP_ACK else RETURN_END
    return (fixed(plate, 21) + bytes([colour])
            + struct.pack(">HHII", sub_type, ack.source_type or source, ack.source_sn or 0, 0))


def _exchange_ack_envelope(body: bytes) -> Envelope | None:
    """The 2019 0x1205 / 0x1206 of the standard's table (source fields before a
    DATA_LENGTH of 0), as an envelope whose data are the two fields; None for another."""
    if len(body) != 21 + 1 + 2 + 10 or body[-4:] != bytes(4):
        return None
    sub_type = int.from_bytes(body[22:24], "big")
    if sub_type not in (RETURN_STARTUP_ACK, RETURN_END_ACK) or \
            int.from_bytes(body[24:28], "big") == 6:  # the ordinary envelope, SN ending 0000
        return None
    r = Reader(body, "UP_EXG_MSG")
    plate, colour = r.text(21, "VEHICLE_NO"), r.u8("VEHICLE_COLOR")
    return Envelope(sub_type=sub_type, data=body[24:30], plate=plate, colour=colour)


def read_order(data: bytes, what: str) -> ExchangeOrder:
    return ExchangeOrder(reason=Reader(data, what).u8("REASON_CODE"))


def write_order(order: ExchangeOrder) -> bytes:
    return bytes([order.reason])


def read_driver_request(data: bytes, version: int = V2011) -> DriverRequest:
    if check_version(version) == V2011 or not data:
        return DriverRequest()
    return DriverRequest(flag=Reader(data, "DOWN_EXG_MSG_REPORT_DRIVER_INFO").u8("FLAG"))


def write_driver_request(request: DriverRequest, version: int = V2011) -> bytes:
    if check_version(version) == V2011:
        return b""
    return bytes([request.flag or 0])


def read_driver(data: bytes, sub_type: int, version: int = V2011) -> Driver:
    what = "UP_EXG_MSG_REPORT_DRIVER_INFO" + ("_ACK" if sub_type == REPORT_DRIVER_INFO_ACK
                                              else "")
    r = Reader(data, what)
    source: dict = {}
    if sub_type == REPORT_DRIVER_INFO_ACK and check_version(version) == V2019:
        source = {"source_type": r.u16("SOURCE_DATA_TYPE"), "source_sn": r.u32("SOURCE_MSG_SN")}
    fields = {name: r.text(size, field) for name, field, size in DRIVER_FIELDS}
    valid = r.time("VALID_DATE") if check_version(version) == V2019 else None
    return Driver(**fields, valid_until=valid, **source)


def write_driver(driver: Driver, sub_type: int = REPORT_DRIVER_INFO,
                 version: int = V2011) -> bytes:
    source = b""
    if sub_type == REPORT_DRIVER_INFO_ACK and check_version(version) == V2019:
        source = quoting(driver, DOWN_REPORT_DRIVER_INFO)
    out = source + b"".join(fixed(getattr(driver, name), size)
                            for name, _, size in DRIVER_FIELDS)
    if check_version(version) == V2019:
        out += struct.pack(">Q", to_utc(driver.valid_until))
    return out


def read_car_info(data: bytes) -> str:
    return Reader(data, "DOWN_EXG_MSG_CAR_INFO").content(len(data), "CAR_INFO")


def write(plate: str | None, colour: int, sub_type: int, data: bytes) -> bytes:
    """A whole 0x1200 or 0x9200 body (``plate`` None: the vehicle-less 2019 0x9201)."""
    return envelope(sub_type, data, plate, colour)


def read(msg_id: int, body: bytes, version: int = V2011) -> Message:
    """A 0x1200 or 0x9200 body with its sub-business decoded."""
    check_version(version)
    if msg_id not in (UP_EXG_MSG, DOWN_EXG_MSG):
        raise FrameError("unsupported", f"0x{msg_id:04x} is not UP_EXG_MSG or DOWN_EXG_MSG")
    name = "UP_EXG_MSG" if msg_id == UP_EXG_MSG else "DOWN_EXG_MSG"
    vehicle = not (msg_id == DOWN_EXG_MSG and body[:2] == REGISTER_ACK.to_bytes(2, "big"))
    env = (_exchange_ack_envelope(body) if msg_id == UP_EXG_MSG and version == V2019
           else None) or read_envelope(body, vehicle=vehicle, what=name)
    sub, data = env.sub_type, env.data
    value: object
    if msg_id == UP_EXG_MSG and sub == REGISTER:
        value = read_registration(data, version)
    elif sub in (REAL_LOCATION, CAR_LOCATION) and (sub == REAL_LOCATION) == (msg_id == UP_EXG_MSG):
        value = read_location(data, version, f"{name} 0x{sub:04x}")
    elif sub in (HISTORY_LOCATION, HISTORY_ARCOSSAREA) and \
            (sub == HISTORY_LOCATION) == (msg_id == UP_EXG_MSG):
        value = read_history(data, version, f"{name} 0x{sub:04x}")
    elif msg_id == UP_EXG_MSG and sub in (TAKE_EWAYBILL_ACK, REPORT_EWAYBILL_INFO):
        value = read_waybill(data, sub, version)
    elif msg_id == DOWN_EXG_MSG and sub == REGISTER_ACK:
        value = read_registration_ack(data)
    elif msg_id == DOWN_EXG_MSG and sub == TAKE_EWAYBILL_REQ:
        value = None
    elif msg_id == UP_EXG_MSG and sub in (RETURN_STARTUP_ACK, RETURN_END_ACK):
        value = read_exchange_ack(data, version)
    elif msg_id == UP_EXG_MSG and sub in (REPORT_DRIVER_INFO_ACK, REPORT_DRIVER_INFO):
        value = read_driver(data, sub, version)
    elif msg_id == DOWN_EXG_MSG and sub in (RETURN_STARTUP, RETURN_END):
        value = read_order(data, f"{name} 0x{sub:04x}")
    elif msg_id == DOWN_EXG_MSG and sub == DOWN_REPORT_DRIVER_INFO:
        value = read_driver_request(data, version)
    elif msg_id == DOWN_EXG_MSG and sub == CAR_INFO:
        value = read_car_info(data)
    else:
        raise FrameError("unsupported", f"{name} sub-business 0x{sub:04x}")
    return Message(sub_type=sub, value=value, plate=env.plate, colour=env.colour)
