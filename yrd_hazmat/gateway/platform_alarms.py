"""A lower platform's alarm (JT/T 809 UP_WARN_MSG_ADPT_INFO 0x1402) as an alert of its
own source.

The alert's type is ``PLATFORM_ALARM``; its severity, and the ``warn`` name in its
details, come from the standard's WARN_TYPE (:data:`WARNINGS`); its details name the
platform (``source``: ``jt809``, ``platform``: the access code) and carry what the
platform said. 0x1402 gives no position: the alert is placed at the vehicle's latest
position received over any platform link of this gateway (:class:`LastFixes`, in WGS-84),
its time in ``details.position_ts``; the platform's configured province is its
jurisdiction. Ids are deterministic (vehicle, type, platform and WARN_TYPE, WARN_TIME), so
an alarm sent twice is the same alert. Platform alarms mark a moment: raised, never
cleared here.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import NamedTuple

from ..core.alerts import incident_id
from ..core.models import Alert, AlertState, AlertType, Ping, Severity
from ..jt809 import alarms as a
from .platforms import Platform

TYPE = AlertType.PLATFORM_ALARM

WARNINGS: dict[int, tuple[str, Severity]] = {
    a.OVERSPEED: ("overspeed", Severity.WARNING),
    a.FATIGUE: ("fatigue", Severity.WARNING),
    a.EMERGENCY: ("emergency", Severity.CRITICAL),
    a.AREA_IN: ("area_in", Severity.INFO),
    a.AREA_OUT: ("area_out", Severity.INFO),
    a.CONGESTION: ("congestion", Severity.INFO),
    a.DANGEROUS_ROAD: ("dangerous_road", Severity.WARNING),
    a.OUT_OF_BOUNDS: ("out_of_bounds", Severity.WARNING),
    a.THEFT: ("theft", Severity.CRITICAL),
    a.HIJACK: ("hijack", Severity.CRITICAL),
    a.ROUTE_DEVIATION: ("route_deviation", Severity.WARNING),
    a.VEHICLE_MOVED: ("vehicle_moved", Severity.WARNING),
    a.OVERTIME_DRIVING: ("overtime_driving", Severity.WARNING),
    a.OTHER: ("other", Severity.INFO),
    a.VIOLATION: ("violation", Severity.WARNING),
    a.FORWARD_COLLISION: ("forward_collision", Severity.WARNING),
    a.LANE_DEPARTURE: ("lane_departure", Severity.WARNING),
    a.TYRE_PRESSURE: ("tyre_pressure", Severity.WARNING),
    a.BAD_DYNAMIC_DATA: ("bad_dynamic_data", Severity.INFO),
    a.OTHER_2019: ("other", Severity.INFO),
    a.OVERTIME_PARKING: ("overtime_parking", Severity.WARNING),
    0xA006: ("congestion", Severity.INFO),
    0xA007: ("dangerous_road", Severity.WARNING),
}
"""WARN_TYPE -> (name, severity): JT/T 809-2011's table (0x0001-0x000E), 2019's
additions (0x0010-0x0014, 0x00FF, 0xA001, and 0xA006/0xA007 where congestion and
dangerous road moved). Emergency, theft and hijack are critical; any other code is
``warn_XXXX`` of severity info."""


def warning(warn_type: int) -> tuple[str, Severity]:
    return WARNINGS.get(warn_type, (f"warn_{warn_type:04x}", Severity.INFO))


class Position(NamedTuple):
    """A vehicle's latest position (WGS-84 or GCJ-02 as sent)."""

    ts: datetime
    lat: float
    lon: float
    crs: str


class LastFixes:
    """Plate -> its latest valid position from any platform link (the newest by time),
    at most ``size`` vehicles (the least recently updated forgotten first)."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = size
        self._fixes: OrderedDict[str, Position] = OrderedDict()

    def get(self, plate: str) -> Position | None:
        return self._fixes.get(plate)

    def note(self, ping: Ping) -> bool:
        """Keep the ping's position if it is the vehicle's newest; whether it was."""
        if not ping.fix_valid:
            return False
        known = self._fixes.get(ping.vehicle_id)
        if known is not None and known.ts >= ping.ts:
            return False
        self._fixes[ping.vehicle_id] = Position(ping.ts, ping.lat, ping.lon, ping.crs)
        self._fixes.move_to_end(ping.vehicle_id)
        if len(self._fixes) > self.size:
            self._fixes.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._fixes)


def wgs84(position: Position) -> tuple[float, float]:
    """(lat, lon) in WGS-84. GCJ-02 is undone by :mod:`yrd_hazmat.core.geo.gcj02`, imported
    on the first such alarm only (it loads numpy, which the gateway otherwise needs not)."""
    if position.crs != "GCJ02":
        return position.lat, position.lon
    from ..core.geo.gcj02 import gcj02_to_wgs84

    lon, lat = gcj02_to_wgs84(position.lon, position.lat)
    return round(float(lat), 6), round(float(lon), 6)


def platform_alert(alarm: a.Alarm, plate: str, colour: int | None, platform: Platform,
                   position: Position, received_at: datetime) -> Alert:
    """The alert of a 0x1402 about ``plate`` (from the 2011 envelope or the 2019 body)."""
    name, severity = warning(alarm.warn_type)
    ts = alarm.warn_time or received_at
    subject = f"{platform.access_code}:{alarm.warn_type:04x}"
    incident = incident_id(plate, TYPE, subject, int(ts.timestamp() * 1000))
    lat, lon = wgs84(position)
    details: dict[str, object] = {
        "source": "jt809", "platform": platform.access_code, "platform_name": platform.name,
        "warn_type": alarm.warn_type, "warn": name, "content": alarm.content,
        "position_ts": position.ts.isoformat(), "plate_colour": colour,
    }
    optional = {"warn_src": alarm.warn_src, "info_id": alarm.info_id,
                "source_platform_id": alarm.platform_id or None,
                "destination_platform_id": alarm.destination_id or None,
                "line_id": alarm.line_id or None,
                "start_time": alarm.start_time.isoformat() if alarm.start_time else None,
                "end_time": alarm.end_time.isoformat() if alarm.end_time else None}
    details |= {key: value for key, value in optional.items() if value is not None}
    return Alert(alert_id=f"{incident}:{AlertState.RAISED.value}", incident_id=incident,
                 type=str(TYPE), severity=severity, state=AlertState.RAISED, vehicle_id=plate,
                 ts=ts, emitted_at=received_at, lat=lat, lon=lon, province=platform.province,
                 details=details)
