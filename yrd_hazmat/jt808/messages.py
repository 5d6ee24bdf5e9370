"""JT/T 808 message bodies: what the gateway reads from terminals and answers them.

Terminal -> platform: heartbeat 0x0002, deregistration 0x0003, registration 0x0100,
authentication 0x0102, location report 0x0200, batch upload 0x0704. Platform ->
terminal: general response 0x8001, registration response 0x8100. Strings are GBK.
Field layouts: JT/T 808-2013 and -2019 (the 2019 registration widens maker, model
and terminal id; its authentication adds IMEI and software version).
"""

from __future__ import annotations

import struct
from datetime import datetime

import msgspec

from ..timeutil import CHINA_TZ
from .frame import FrameError, bcd_digits

HEARTBEAT = 0x0002
DEREGISTRATION = 0x0003
REGISTRATION = 0x0100
AUTHENTICATION = 0x0102
LOCATION = 0x0200
BATCH = 0x0704
GENERAL_RESPONSE = 0x8001
REGISTRATION_RESPONSE = 0x8100
TERMINAL_RESPONSE = 0x0001

NAMES = {HEARTBEAT: "heartbeat", DEREGISTRATION: "deregistration", REGISTRATION: "registration",
         AUTHENTICATION: "authentication", LOCATION: "location", BATCH: "batch",
         TERMINAL_RESPONSE: "terminal_response"}

# 0x8001 results
OK, FAILURE, BAD_MESSAGE, NOT_SUPPORTED = 0, 1, 2, 3
# 0x8100 results
REGISTERED, VEHICLE_TAKEN, NO_SUCH_VEHICLE, TERMINAL_TAKEN, NO_SUCH_TERMINAL = 0, 1, 2, 3, 4

SOUTH = 1 << 2
WEST = 1 << 3


def _gbk(data: bytes) -> str:
    try:
        return data.rstrip(b"\x00").decode("gbk").strip()
    except UnicodeDecodeError as exc:
        raise FrameError("bad_message", f"text is not GBK: {exc}") from None


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    province: int
    city: int
    maker: str
    model: str
    terminal_id: str
    plate_colour: int
    plate: str


def read_registration(body: bytes, version: int | None) -> Registration:
    sizes = (11, 30, 30) if version is not None else (5, 20, 7)
    fixed = 4 + sum(sizes) + 1
    if len(body) < fixed:
        raise FrameError("truncated", f"registration of {len(body)} bytes, at least {fixed}")
    province, city = struct.unpack_from(">HH", body)
    offset = 4
    fields = []
    for size in sizes:
        fields.append(_gbk(body[offset:offset + size]))
        offset += size
    return Registration(province=province, city=city, maker=fields[0], model=fields[1],
                        terminal_id=fields[2], plate_colour=body[offset],
                        plate=_gbk(body[offset + 1:]))


def read_authentication(body: bytes, version: int | None) -> str:
    if version is None:
        return _gbk(body)
    if not body or len(body) < 1 + body[0]:
        raise FrameError("truncated", "authentication code shorter than its length byte")
    return _gbk(body[1:1 + body[0]])


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """One 0x0200 location, decoded (coordinates as the terminal reports them: WGS-84)."""

    alarm: int
    status: int
    lat: float
    lon: float
    altitude_m: int
    speed_kmh: float
    heading: int
    ts: datetime
    mileage_km: float | None = None
    alarm_extra: dict[str, int] | None = None
    """Alarm extension items: 0x11 overspeed (area type, area id), 0x12 area or route
    entry/exit (type, id, direction), 0x13 route driving time (id, seconds, result), and
    0xE1 (:data:`TANK_LEAK_ITEM`) the tank's leak sensor (``tank_leak``)."""


TANK_LEAK_ITEM = 0xE1
"""Additional item (one byte, non-zero: leaking) of the tank's leak sensor. JT/T 808 leaves
0xE0-0xFF to the terminal maker; this is the project's choice, to be mapped per maker."""


def bcd_time(data: bytes) -> datetime:
    digits = bcd_digits(data)
    if len(digits) != 12 or not digits.isdigit():
        raise FrameError("bad_message", f"time {data.hex()} is not BCD YYMMDDhhmmss")
    try:
        return datetime(2000 + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]),
                        int(digits[6:8]), int(digits[8:10]), int(digits[10:12]), tzinfo=CHINA_TZ)
    except ValueError as exc:
        raise FrameError("bad_message", f"time {digits}: {exc}") from None


def read_location(body: bytes) -> Position:
    if len(body) < 28:
        raise FrameError("truncated", f"location of {len(body)} bytes, at least 28")
    alarm, status, lat, lon, altitude, speed, heading = struct.unpack_from(">IIIIHHH", body)
    ts = bcd_time(body[22:28])
    mileage = None
    extra: dict[str, int] = {}
    offset = 28
    while offset + 2 <= len(body):
        item, size = body[offset], body[offset + 1]
        value = body[offset + 2:offset + 2 + size]
        if len(value) < size:
            raise FrameError("truncated", f"additional item 0x{item:02x} cut short")
        if item == 0x01 and size == 4:
            mileage = struct.unpack(">I", value)[0] / 10
        elif item == 0x11 and size in (1, 5):
            extra["overspeed_area_type"] = value[0]
            if size == 5:
                extra["overspeed_area_id"] = struct.unpack_from(">I", value, 1)[0]
        elif item == 0x12 and size == 6:
            extra["area_type"], extra["area_id"], extra["area_direction"] = struct.unpack(
                ">BIB", value)
        elif item == 0x13 and size == 7:
            extra["route_id"], extra["route_time_s"], extra["route_time_result"] = struct.unpack(
                ">IHB", value)
        elif item == TANK_LEAK_ITEM and size == 1:
            extra["tank_leak"] = value[0]
        offset += 2 + size
    return Position(
        alarm=alarm, status=status,
        lat=lat / 1e6 * (-1 if status & SOUTH else 1),
        lon=lon / 1e6 * (-1 if status & WEST else 1),
        altitude_m=struct.unpack(">h", struct.pack(">H", altitude))[0],
        speed_kmh=speed / 10, heading=heading, ts=ts, mileage_km=mileage,
        alarm_extra=extra or None)


def read_batch(body: bytes) -> tuple[int, list[bytes]]:
    """(type: 0 regular, 1 blind-area re-upload, the 0x0200 bodies)."""
    if len(body) < 3:
        raise FrameError("truncated", "batch upload shorter than its count and type")
    count, kind = struct.unpack_from(">HB", body)
    items, offset = [], 3
    for _ in range(count):
        if offset + 2 > len(body):
            raise FrameError("truncated", f"batch says {count} items, has {len(items)}")
        size = struct.unpack_from(">H", body, offset)[0]
        item = body[offset + 2:offset + 2 + size]
        if len(item) < size:
            raise FrameError("truncated", f"batch item {len(items) + 1} cut short")
        items.append(item)
        offset += 2 + size
    return kind, items


def general_response(serial: int, msg_id: int, result: int) -> bytes:
    return struct.pack(">HHB", serial, msg_id, result)


def registration_response(serial: int, result: int, auth_code: str = "") -> bytes:
    body = struct.pack(">HB", serial, result)
    return body + auth_code.encode("gbk") if result == REGISTERED else body


# --- what a terminal sends (the simulator, tests) ----------------------------------------


def registration(plate: str, terminal_id: str, version: int | None = None, plate_colour: int = 2,
                 province: int = 31, city: int = 0, maker: str = "YRD", model: str = "SIM-808"
                 ) -> bytes:
    sizes = (11, 30, 30) if version is not None else (5, 20, 7)
    fields = b"".join(text.encode("gbk")[:size].ljust(size, b"\x00")
                      for text, size in zip((maker, model, terminal_id), sizes))
    return struct.pack(">HH", province, city) + fields + bytes([plate_colour]) + plate.encode("gbk")


def authentication(code: str, version: int | None = None, imei: str = "860000000000000",
                   software: str = "1.0") -> bytes:
    data = code.encode("gbk")
    if version is None:
        return data
    return (bytes([len(data)]) + data + imei.encode()[:15].ljust(15, b"\x00")
            + software.encode()[:20].ljust(20, b"\x00"))


def location(ts: datetime, lat: float, lon: float, speed_kmh: float, heading: int = 0,
             alarm: int = 0, status: int = 0b11, altitude_m: int = 10,
             mileage_km: float | None = None, tank_leak: bool = False) -> bytes:
    status = (status | (SOUTH if lat < 0 else 0) | (WEST if lon < 0 else 0))
    local = ts.astimezone(CHINA_TZ)
    body = struct.pack(">IIIIHHH", alarm, status, round(abs(lat) * 1e6), round(abs(lon) * 1e6),
                       altitude_m & 0xFFFF, round(speed_kmh * 10), heading)
    body += bytes.fromhex(local.strftime("%y%m%d%H%M%S"))
    if mileage_km is not None:
        body += bytes([0x01, 4]) + struct.pack(">I", round(mileage_km * 10))
    if tank_leak:
        body += bytes([TANK_LEAK_ITEM, 1, 1])
    return body


def batch(bodies: list[bytes], blind: bool = True) -> bytes:
    return struct.pack(">HB", len(bodies), 1 if blind else 0) + b"".join(
        struct.pack(">H", len(b)) + b for b in bodies)
