"""GNSS_DATA, the vehicle position inside 0x1202, 0x1203, 0x9202, 0x9203 and 0x1502.

JT/T 809-2011 (36 bytes): ENCRYPT BYTE (1: coordinates encrypted with the mapping
bureau's plug-in, i.e. GCJ-02), DATE (day BYTE, month BYTE, year UINT16), TIME (hour,
minute, second BYTE), LON UINT32, LAT UINT32 (1e-6 degrees), VEC1 UINT16 (satellite speed
km/h), VEC2 UINT16 (tachograph speed km/h), VEC3 UINT32 (mileage km), DIRECTION UINT16,
ALTITUDE UINT16 (m), STATE UINT32, ALARM UINT32 (JT/T 808's status and alarm words).

JT/T 809-2019: ENCRYPT BYTE, DATA_LENGTH UINT32, GNSS_DATA (a JT/T 808-2019 location
report body, 0x0200: alarm, status, latitude, longitude, altitude, speed in 0.1 km/h,
direction, BCD time, then the additional items), then PLATFORM_ID1 (11 bytes, the
vehicle's own platform), ALARM1 UINT32, PLATFORM_ID2 (city platform), ALARM2,
PLATFORM_ID3 (province platform), ALARM3: each platform's alarm flags for the vehicle.
Layouts as in SmallChi/JT809 (``JT809VehiclePositionProperties.cs`` and ``_2019.cs``),
spjiang/JT809-server (2011: the 36 bytes in ``P0x1502PB.java``), Yordroid/jt809_server
(``convertGpsData2019`` of ``jt_msg_handle_exg_msg.go``); checked against the 2019
conformance captures in SmallChi/JT809 ``GuoJian001Test.cs`` (808 reports of 0x1c, 0x1d
and 0x68 bytes).
"""

from __future__ import annotations

import struct
from datetime import datetime

import msgspec

from ..core.timeutil import CHINA_TZ
from ..jt808 import messages as m808
from ..jt808.frame import FrameError
from .codec import Reader, fixed
from .frame import V2011

GNSS_2011 = struct.Struct(">BBBHBBBIIHHIHHII")
SOUTH, WEST = 1 << 2, 1 << 3
"""STATE bits (JT/T 808's status): south latitude, west longitude."""
NO_PLATFORMS = (("", 0), ("", 0), ("", 0))


class Fix(msgspec.Struct, frozen=True, kw_only=True):
    ts: datetime
    lat: float
    lon: float
    speed_kmh: float
    heading: int = 0
    altitude_m: int = 0
    status: int = 0b11
    alarm: int = 0
    gcj02: bool = False
    mileage_km: float | None = None
    recorder_speed_kmh: float | None = None
    """2011: VEC2, the tachograph's speed."""
    platforms: tuple[tuple[str, int], ...] = ()
    """2019: (PLATFORM_ID, ALARM) of the vehicle's own, city and province platforms."""


def read_fix(r: Reader, version: int = V2011) -> Fix | None:
    """One GNSS_DATA off ``r``; None when it holds no position (a 2011 one dated zero, a
    2019 one of DATA_LENGTH 0, as answers without a position send)."""
    if version == V2011:
        return _fix_2011(r.take(GNSS_2011.size, "GNSS_DATA"), r.what)
    gcj02 = r.u8("ENCRYPT") == 1
    size = r.u32("GNSS_DATA length")
    report = r.take(size, "GNSS_DATA")
    platforms = tuple((r.text(11, f"PLATFORM_ID{i}"), r.u32(f"ALARM{i}")) for i in (1, 2, 3))
    if not report:
        return None
    position = m808.read_location(report)
    return Fix(ts=position.ts, lat=position.lat, lon=position.lon, speed_kmh=position.speed_kmh,
               heading=position.heading, altitude_m=position.altitude_m, status=position.status,
               alarm=position.alarm, gcj02=gcj02, mileage_km=position.mileage_km,
               platforms=platforms)


def required(fix: Fix | None, what: str) -> Fix:
    if fix is None:
        raise FrameError("bad_message", f"{what}: GNSS_DATA holds no position")
    return fix


def _fix_2011(data: bytes, what: str) -> Fix | None:
    (encrypted, day, month, year, hour, minute, second, lon, lat, vec1, vec2, vec3, direction,
     altitude, state, alarm) = GNSS_2011.unpack(data)
    if day == 0 and month == 0 and year == 0:
        return None
    try:
        ts = datetime(year, month, day, hour, minute, second, tzinfo=CHINA_TZ)
    except ValueError as exc:
        raise FrameError("bad_message", f"{what}: GNSS time {year}-{month}-{day} "
                                        f"{hour}:{minute}:{second}: {exc}") from None
    return Fix(ts=ts, lat=lat / 1e6 * (-1 if state & SOUTH else 1),
               lon=lon / 1e6 * (-1 if state & WEST else 1), speed_kmh=float(vec1),
               heading=direction, altitude_m=altitude - 0x10000 if altitude & 0x8000 else altitude,
               status=state, alarm=alarm, gcj02=encrypted == 1, mileage_km=float(vec3),
               recorder_speed_kmh=float(vec2))


def write_fix(fix: Fix | None, version: int = V2011) -> bytes:
    """One GNSS_DATA; None: one holding no position."""
    if version == V2011:
        if fix is None:
            return bytes(GNSS_2011.size)
        local = fix.ts.astimezone(CHINA_TZ)
        status = fix.status | (SOUTH if fix.lat < 0 else 0) | (WEST if fix.lon < 0 else 0)
        recorder = fix.speed_kmh if fix.recorder_speed_kmh is None else fix.recorder_speed_kmh
        return GNSS_2011.pack(1 if fix.gcj02 else 0, local.day, local.month, local.year,
                              local.hour, local.minute, local.second, round(abs(fix.lon) * 1e6),
                              round(abs(fix.lat) * 1e6), round(fix.speed_kmh), round(recorder),
                              round(fix.mileage_km or 0), fix.heading, fix.altitude_m & 0xFFFF,
                              status, fix.alarm)
    if fix is None:
        report, gcj02, platforms = b"", False, NO_PLATFORMS
    else:
        report = m808.location(fix.ts, fix.lat, fix.lon, fix.speed_kmh, heading=fix.heading,
                               alarm=fix.alarm, status=fix.status, altitude_m=fix.altitude_m,
                               mileage_km=fix.mileage_km)
        gcj02, platforms = fix.gcj02, fix.platforms or NO_PLATFORMS
    if len(platforms) != 3:
        raise ValueError(f"a 2019 GNSS_DATA names 3 platforms, not {len(platforms)}")
    return (bytes([1 if gcj02 else 0]) + struct.pack(">I", len(report)) + report
            + b"".join(fixed(pid, 11) + struct.pack(">I", alarm) for pid, alarm in platforms))
