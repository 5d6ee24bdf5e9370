"""A JT/T 809-2011 subset laid out by hand from the standard, for the tests: frames built
here, and read here, do not come from the library's own encoder (the library reads and
writes every body with :mod:`yrd_hazmat.jt809.links`, :mod:`~yrd_hazmat.jt809.exchange`,
..., in both editions). It was the gateway's first reader, moved out of the library.

Lower platform -> gateway: UP_CONNECT_REQ 0x1001 (USERID UINT32, PASSWORD 8 bytes,
DOWN_LINK_IP 32 bytes, DOWN_LINK_PORT UINT16), UP_DISCONNECT_REQ 0x1003 (USERID,
PASSWORD), UP_LINKTEST_REQ 0x1005 (heartbeat), UP_EXG_MSG 0x1200 (VEHICLE_NO 21 bytes
GBK, VEHICLE_COLOR BYTE, DATA_TYPE UINT16, DATA_LENGTH UINT32, data) with DATA_TYPE
0x1202 (real-time position: one GNSS_DATA) or 0x1203 (history: GNSS_CNT BYTE, then
that many GNSS_DATA). Gateway -> lower platform: UP_CONNECT_RSP 0x1002 (RESULT BYTE,
VERIFY_CODE UINT32), UP_DISCONNECT_RSP 0x1004, UP_LINKTEST_RSP 0x1006.

GNSS_DATA (36 bytes): ENCRYPT BYTE (1: coordinates in GCJ-02), DATE (day, month BYTE,
year UINT16), TIME (hour, minute, second), LON, LAT UINT32 (1e-6 degrees), VEC1
(satellite speed, km/h), VEC2 (tachograph speed) UINT16, VEC3 mileage UINT32 (km),
DIRECTION, ALTITUDE UINT16, STATE, ALARM UINT32 (as JT/T 808's DWORDs).
"""

from __future__ import annotations

import struct
from datetime import datetime

import msgspec

from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.jt808.frame import FrameError

UP_CONNECT_REQ, UP_CONNECT_RSP = 0x1001, 0x1002
UP_DISCONNECT_REQ, UP_DISCONNECT_RSP = 0x1003, 0x1004
UP_LINKTEST_REQ, UP_LINKTEST_RSP = 0x1005, 0x1006
UP_EXG_MSG = 0x1200
REAL_LOCATION, HISTORY_LOCATION = 0x1202, 0x1203

NAMES = {UP_CONNECT_REQ: "connect", UP_DISCONNECT_REQ: "disconnect",
         UP_LINKTEST_REQ: "linktest", UP_EXG_MSG: "exg"}

# UP_CONNECT_RSP results
OK, BAD_IP, BAD_ACCESS_CODE, NO_SUCH_USER, BAD_PASSWORD, BUSY, OTHER = range(7)

GNSS = struct.Struct(">B4s3sIIHHIHHII")
FIXED, SOUTH, WEST = 1 << 1, 1 << 2, 1 << 3
"""STATE bits, as JT/T 808's status: 1 a valid satellite fix, 2 south, 3 west."""


class Login(msgspec.Struct, frozen=True):
    user_id: int
    password: str
    down_ip: str
    down_port: int


def read_login(body: bytes) -> Login:
    if len(body) < 46:
        raise FrameError("truncated", f"UP_CONNECT_REQ of {len(body)} bytes, 46 expected")
    user_id, password, ip, port = struct.unpack_from(">I8s32sH", body)
    return Login(user_id, password.rstrip(b"\x00").decode("latin-1"),
                 ip.rstrip(b"\x00").decode("latin-1"), port)


class Position(msgspec.Struct, frozen=True, kw_only=True):
    plate: str
    plate_colour: int
    ts: datetime
    lat: float
    lon: float
    gcj02: bool
    speed_kmh: float
    mileage_km: float
    heading: int
    altitude_m: int
    status: int
    alarm: int


def read_exg(body: bytes) -> tuple[int, list[Position]]:
    """(DATA_TYPE, the positions of a 0x1202 or 0x1203; none for other sub-businesses)."""
    if len(body) < 28:
        raise FrameError("truncated", f"UP_EXG_MSG of {len(body)} bytes, at least 28")
    plate = _gbk(body[:21])
    colour = body[21]
    data_type, length = struct.unpack_from(">HI", body, 22)
    data = body[28:28 + length]
    if len(data) < length:
        raise FrameError("truncated", f"UP_EXG_MSG data of {len(data)} bytes, header says {length}")
    if data_type == REAL_LOCATION:
        return data_type, [_gnss(plate, colour, data)]
    if data_type == HISTORY_LOCATION:
        if not data:
            raise FrameError("truncated", "history without GNSS_CNT")
        count = data[0]
        if len(data) < 1 + count * GNSS.size:
            raise FrameError("truncated", f"history says {count} positions, has fewer")
        return data_type, [_gnss(plate, colour, data[1 + i * GNSS.size:1 + (i + 1) * GNSS.size])
                           for i in range(count)]
    return data_type, []


def _gbk(data: bytes) -> str:
    try:
        return data.split(b"\x00", 1)[0].decode("gbk").strip()
    except UnicodeDecodeError as exc:
        raise FrameError("bad_message", f"vehicle number is not GBK: {exc}") from None


def _gnss(plate: str, colour: int, data: bytes) -> Position:
    if len(data) < GNSS.size:
        raise FrameError("truncated", f"GNSS_DATA of {len(data)} bytes, {GNSS.size} expected")
    (encrypted, date, time, lon, lat, vec1, _vec2, vec3, direction, altitude, state,
     alarm) = GNSS.unpack_from(data)
    day, month, year = date[0], date[1], struct.unpack(">H", date[2:])[0]
    try:
        ts = datetime(year, month, day, time[0], time[1], time[2], tzinfo=CHINA_TZ)
    except ValueError as exc:
        raise FrameError("bad_message", f"GNSS time: {exc}") from None
    return Position(plate=plate, plate_colour=colour, ts=ts,
                    lat=lat / 1e6 * (-1 if state & SOUTH else 1),
                    lon=lon / 1e6 * (-1 if state & WEST else 1),
                    gcj02=encrypted == 1, speed_kmh=float(vec1), mileage_km=float(vec3),
                    heading=direction, altitude_m=struct.unpack(">h", struct.pack(">H", altitude))[0],
                    status=state, alarm=alarm)


def connect_response(result: int, verify_code: int = 0) -> bytes:
    return struct.pack(">BI", result, verify_code)


# --- what a lower platform sends (the simulator, tests) ---------------------------------------


def login(user_id: int, password: str, down_ip: str = "127.0.0.1", down_port: int = 0) -> bytes:
    return struct.pack(">I8s32sH", user_id, password.encode("latin-1")[:8],
                       down_ip.encode("latin-1")[:32], down_port)


def gnss(ts: datetime, lat: float, lon: float, speed_kmh: float, heading: int = 0,
         alarm: int = 0, status: int = 0b11, mileage_km: int = 0, gcj02: bool = False,
         altitude_m: int = 10) -> bytes:
    local = ts.astimezone(CHINA_TZ)
    status |= (SOUTH if lat < 0 else 0) | (WEST if lon < 0 else 0)
    return GNSS.pack(1 if gcj02 else 0,
                     bytes([local.day, local.month]) + struct.pack(">H", local.year),
                     bytes([local.hour, local.minute, local.second]),
                     round(abs(lon) * 1e6), round(abs(lat) * 1e6), round(speed_kmh),
                     round(speed_kmh), mileage_km, heading, altitude_m & 0xFFFF, status, alarm)


def exg(plate: str, colour: int, data_type: int, data: bytes) -> bytes:
    return (plate.encode("gbk")[:21].ljust(21, b"\x00") + bytes([colour])
            + struct.pack(">HI", data_type, len(data)) + data)


def history(gnss_items: list[bytes]) -> bytes:
    return bytes([len(gnss_items)]) + b"".join(gnss_items)
