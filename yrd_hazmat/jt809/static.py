"""Vehicle static information: UP_BASE_MSG 0x1600 and DOWN_BASE_MSG 0x9600 (envelope with
the vehicle in both editions).

- 0x9601 DOWN_BASE_MSG_VEHICLE_ADDED: the upper platform asks for a vehicle's static
  information; no data.
- 0x1601 UP_BASE_MSG_VEHICLE_ADDED_ACK: 2019 first SOURCE_DATA_TYPE UINT16 and
  SOURCE_MSG_SN UINT32 (the request's), then CAR_INFO, the rest of the data: GBK text of
  ``KEY:=VALUE`` pairs joined by ``;`` (VIN, VEHICLE_COLOR, VEHICLE_TYPE, TRANS_TYPE,
  VEHICLE_NATIONALITY, OWERS_ID, OWERS_NAME, OWERS_TEL, and in 2019 BUSINESSSCOPECODE...).

Layouts: SmallChi/JT809 ``SubMessageBody/JT809_0x9600_0x9601.cs`` (no data),
``JT809_0x1600_0x1601.cs``; spjiang/JT809-server ``P0x1601PB.java`` (2011, CAR_INFO is the
whole data); Yordroid/jt809_server ``jt_msg_handle_base_msg.go`` (the key list, 2019's
source fields).
"""

from __future__ import annotations

import msgspec

from ..jt808.frame import FrameError
from .codec import Message, Reader, check_version, envelope, gbk, quoting, read_envelope
from .frame import V2011, V2019

UP_BASE_MSG, DOWN_BASE_MSG = 0x1600, 0x9600
VEHICLE_ADDED_ACK, VEHICLE_ADDED = 0x1601, 0x9601


class StaticInfo(msgspec.Struct, frozen=True, kw_only=True):
    """0x1601."""

    text: str
    source_type: int | None = None
    """2019: the request's DATA_TYPE (0x9601) and frame MSG_SN."""
    source_sn: int | None = None

    @property
    def fields(self) -> dict[str, str]:
        """CAR_INFO's ``KEY:=VALUE`` pairs (keys upper-cased; pieces without ``:=`` skipped)."""
        out: dict[str, str] = {}
        for piece in self.text.split(";"):
            key, sep, value = piece.partition(":=")
            if sep and key.strip():
                out[key.strip().upper()] = value.strip()
        return out


def static_text(fields: dict[str, object]) -> str:
    """CAR_INFO from its pairs."""
    return ";".join(f"{key}:={value}" for key, value in fields.items())


def read_static(data: bytes, version: int = V2011) -> StaticInfo:
    r = Reader(data, "UP_BASE_MSG_VEHICLE_ADDED_ACK")
    source_type = source_sn = None
    if check_version(version) == V2019:
        source_type, source_sn = r.u16("SOURCE_DATA_TYPE"), r.u32("SOURCE_MSG_SN")
    return StaticInfo(text=r.content(r.left, "CAR_INFO"), source_type=source_type,
                      source_sn=source_sn)


def write_static(info: StaticInfo, version: int = V2011) -> bytes:
    source = b""
    if check_version(version) == V2019:
        source = quoting(info, VEHICLE_ADDED)
    return source + gbk(info.text)


def write(plate: str, colour: int, sub_type: int, data: bytes = b"") -> bytes:
    """A whole 0x1600 or 0x9600 body."""
    return envelope(sub_type, data, plate, colour)


def read(msg_id: int, body: bytes, version: int = V2011) -> Message:
    check_version(version)
    if msg_id not in (UP_BASE_MSG, DOWN_BASE_MSG):
        raise FrameError("unsupported", f"0x{msg_id:04x} is not UP_ or DOWN_BASE_MSG")
    name = "UP_BASE_MSG" if msg_id == UP_BASE_MSG else "DOWN_BASE_MSG"
    env = read_envelope(body, vehicle=True, what=name)
    value: object
    if msg_id == DOWN_BASE_MSG and env.sub_type == VEHICLE_ADDED:
        value = None
    elif msg_id == UP_BASE_MSG and env.sub_type == VEHICLE_ADDED_ACK:
        value = read_static(env.data, version)
    else:
        raise FrameError("unsupported", f"{name} sub-business 0x{env.sub_type:04x}")
    return Message(sub_type=env.sub_type, value=value, plate=env.plate, colour=env.colour)
