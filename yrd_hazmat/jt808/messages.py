"""JT/T 808 message bodies: what the gateway reads from terminals and answers them.

Terminal -> platform: heartbeat 0x0002, deregistration 0x0003, registration 0x0100,
authentication 0x0102, location report 0x0200, batch upload 0x0704. Platform ->
terminal: general response 0x8001, registration response 0x8100. Strings are GBK.
Field layouts: JT/T 808-2013 and -2019 (the 2019 registration widens maker, model
and terminal id; its authentication adds IMEI and software version), and the 2011
registration that large makers still ship. The decoders take what terminals in the
field send: a registration's layout is recognised from its body, a 2013 authentication
under a 2019 header is read as such, and a malformed trailing additional item is dropped
(and counted) instead of losing the position.
"""

from __future__ import annotations

import struct
from datetime import datetime

import msgspec

from ..core.timeutil import CHINA_TZ
from .frame import FrameError, bcd_digits
from .profiles import MAKER_ITEMS, Profile

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

FIXED = 1 << 1
"""Status bit 1: the terminal had a valid satellite fix."""
SOUTH = 1 << 2
WEST = 1 << 3


def _gbk(data: bytes) -> str:
    try:
        return data.rstrip(b"\x00").decode("gbk").strip()
    except UnicodeDecodeError as exc:
        raise FrameError("bad_message", f"text is not GBK: {exc}") from None


LAYOUTS: dict[str, tuple[int, int, int]] = {
    "2011": (5, 8, 7), "2013": (5, 20, 7), "2019": (11, 30, 30)}
"""Registration 0x0100 layouts: the sizes of maker id, model and terminal id."""

PLATE_COLOURS = frozenset({0, 1, 2, 3, 4, 5, 9, 91, 92, 93, 94})
"""Plate colours: 0 not licensed, JT/T 697.7's 1 blue, 2 yellow, 3 black, 4 white, 5 green,
9 other, and the agricultural and new-energy codes 91-94 (yellow-green 93 is a new-energy
truck's) that 2019 platforms use. A colour byte outside them says the body was cut at
the wrong place."""


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    province: int
    city: int
    maker: str
    model: str
    terminal_id: str
    plate_colour: int
    plate: str
    layout: str
    """Which layout the body had: "2011", "2013" or "2019" (see :data:`LAYOUTS`)."""


def read_registration(body: bytes, version: int | None) -> Registration:
    """A 0x0100 in whichever layout it has. The plate at the end has no length, so a
    layout fits when its colour byte is a colour and the rest reads as a plate; the
    header's version says which layout is tried first."""
    order = ("2019", "2013", "2011") if version is not None else ("2013", "2011", "2019")
    for layout in order:
        registration = _registration_as(body, layout)
        if registration is not None:
            return registration
    shortest = 4 + sum(LAYOUTS["2011"]) + 1
    if len(body) < shortest:
        raise FrameError("truncated", f"registration of {len(body)} bytes, at least {shortest}")
    raise FrameError("bad_message", "registration fits none of the 2011, 2013 and 2019 "
                                    "layouts (no plate colour and plate where they go)")


def _registration_as(body: bytes, layout: str) -> Registration | None:
    """The registration read with ``layout``, or None where the body does not fit it."""
    sizes = LAYOUTS[layout]
    colour_at = 4 + sum(sizes)
    if len(body) <= colour_at or body[colour_at] not in PLATE_COLOURS:
        return None
    plate = _plate(body[colour_at + 1:])
    if plate is None:
        return None
    fields, offset = [], 4
    for size in sizes:
        fields.append(_label(body[offset:offset + size]))
        offset += size
    province, city = struct.unpack_from(">HH", body)
    return Registration(province=province, city=city, maker=fields[0], model=fields[1],
                        terminal_id=fields[2], plate_colour=body[colour_at], plate=plate,
                        layout=layout)


def _label(data: bytes) -> str:
    """A maker id, model or terminal id: GBK padded with NULs or spaces; bytes that are not
    GBK are replaced rather than refuse the terminal (these fields are only labels)."""
    return data.rstrip(b"\x00").decode("gbk", "replace").strip()


def _plate(data: bytes) -> str | None:
    """The plate text, or None when ``data`` cannot be one (not GBK, a control character
    or NUL inside, longer than a plate or a VIN)."""
    text = data.rstrip(b"\x00")
    try:
        plate = text.decode("gbk").strip()
    except UnicodeDecodeError:
        return None
    return plate if len(plate) <= 20 and plate.isprintable() else None


def read_authentication(body: bytes) -> str:
    """The authentication code of a 0x0102: 2019's starts with its length byte (then IMEI
    and software version), 2013's is the whole body. Terminals send 2013 bodies under 2019
    headers, so the body decides: a text code never starts with a control character, and
    a 2019 body is exactly length byte, code, IMEI[15] and software version[20]."""
    if body and (body[0] < 0x20 or len(body) == 36 + body[0]):
        if len(body) < 1 + body[0]:
            raise FrameError("truncated", "authentication code shorter than its length byte")
        return _gbk(body[1:1 + body[0]])
    return _gbk(body)


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
    the maker items 0xE0-0xFF the terminal's profile reads (e.g. ``tank_leak``)."""
    raw_items: dict[str, str] | None = None
    """Maker items no profile reads: item id (two hex digits) -> value (hex), as sent."""
    malformed_items: int = 0
    """Trailing items dropped because they could not be read (a length past the body,
    zero padding read as item 0x00)."""

    @property
    def fix_valid(self) -> bool:
        """Status bit 1: without a fix the report is proof of life, not a position."""
        return bool(self.status & FIXED)


def bcd_time(data: bytes) -> datetime:
    digits = bcd_digits(data)
    if len(digits) != 12 or not digits.isdigit():
        raise FrameError("bad_message", f"time {data.hex()} is not BCD YYMMDDhhmmss")
    try:
        return datetime(2000 + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]),
                        int(digits[6:8]), int(digits[8:10]), int(digits[10:12]), tzinfo=CHINA_TZ)
    except ValueError as exc:
        raise FrameError("bad_message", f"time {digits}: {exc}") from None


def read_location(body: bytes, profile: Profile | None = None) -> Position:
    """A 0x0200 body; ``profile`` reads the maker items 0xE0-0xFF (none: they stay raw)."""
    if len(body) < 28:
        raise FrameError("truncated", f"location of {len(body)} bytes, at least 28")
    alarm, status, lat, lon, altitude, speed, heading = struct.unpack_from(">IIIIHHH", body)
    ts = bcd_time(body[22:28])
    items, malformed = _items(body[28:])
    mileage = None
    extra: dict[str, int] = {}
    raw: dict[str, str] = {}
    for item, value in items:
        if item == 0x01 and len(value) == 4:
            mileage = struct.unpack(">I", value)[0] / 10
        elif item in MAKER_ITEMS:
            _maker_item(item, value, profile, extra, raw)
        else:
            extra.update(_alarm_extension(item, value))
    return Position(
        alarm=alarm, status=status,
        lat=lat / 1e6 * (-1 if status & SOUTH else 1),
        lon=lon / 1e6 * (-1 if status & WEST else 1),
        altitude_m=struct.unpack(">h", struct.pack(">H", altitude))[0],
        speed_kmh=speed / 10, heading=heading, ts=ts, mileage_km=mileage,
        alarm_extra=extra or None, raw_items=raw or None, malformed_items=malformed)


def _items(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """(the additional items (id, value), how many malformed ones were dropped). Reading
    stops at the first item that cannot be one: its length runs past the body, or it is
    item 0x00 (no such item: zero padding), or a lone byte is left. Traccar and others
    keep the position in these cases, as here; the broken tail counts as one."""
    items, offset = [], 0
    while offset < len(data):
        if offset + 2 > len(data) or data[offset] == 0x00:
            return items, 1
        item, size = data[offset], data[offset + 1]
        value = data[offset + 2:offset + 2 + size]
        if len(value) < size:
            return items, 1
        items.append((item, value))
        offset += 2 + size
    return items, 0


def _alarm_extension(item: int, value: bytes) -> dict[str, int]:
    """The alarm extension items 0x11-0x13 of JT/T 808 (others: nothing)."""
    size = len(value)
    if item == 0x11 and size in (1, 5):
        found = {"overspeed_area_type": value[0]}
        if size == 5:
            found["overspeed_area_id"] = struct.unpack_from(">I", value, 1)[0]
        return found
    if item == 0x12 and size == 6:
        return dict(zip(("area_type", "area_id", "area_direction"),
                        struct.unpack(">BIB", value)))
    if item == 0x13 and size == 7:
        return dict(zip(("route_id", "route_time_s", "route_time_result"),
                        struct.unpack(">IHB", value)))
    return {}


def _maker_item(item: int, value: bytes, profile: Profile | None, extra: dict[str, int],
                raw: dict[str, str]) -> None:
    """A maker item into ``extra`` under the profile's name for it, else kept raw."""
    decoder = profile.decoder(item, len(value)) if profile is not None else None
    if decoder is None:
        raw[f"{item:02x}"] = value.hex()
    else:
        extra[decoder.field] = decoder.value(value)


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
                 province: int = 31, city: int = 0, maker: str = "YRD", model: str = "SIM-808",
                 layout: str | None = None) -> bytes:
    """A 0x0100 body; ``layout`` (see :data:`LAYOUTS`) defaults to the header version's."""
    sizes = LAYOUTS[layout or ("2019" if version is not None else "2013")]
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
    if tank_leak:  # the yrd-tank-sensor profile's leak item
        body += bytes([0xE1, 1, 1])
    return body


def batch(bodies: list[bytes], blind: bool = True) -> bytes:
    return struct.pack(">HB", len(bodies), 1 if blind else 0) + b"".join(
        struct.pack(">H", len(b)) + b for b in bodies)
