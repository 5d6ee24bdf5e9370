"""Our alerts as JT/T 809 alarms: the type table (WARN_TYPE of UP_WARN_MSG_ADPT_INFO
0x1402) and the 0x1402 body of an alert.

=====================  =========================  =========================
alert (state)          WARN_TYPE                  meaning in the standard
=====================  =========================  =========================
SPEEDING (raised)      0x0001                     overspeed
ZONE_SPEEDING (raised) 0x0001                     overspeed
FATIGUE_DRIVING        0x0002                     fatigue driving
DEVICE_ALARM critical  0x0003                     emergency (e.g. tank leak, SOS)
ZONE_VIOLATION raised  0x0004                     entering an area
ZONE_VIOLATION cleared 0x0005                     leaving the area
ROUTE_DEVIATION        0x000B                     route deviation
any other raised       0x000E (2011) / 0x00FF     other
=====================  =========================  =========================

Only raised alerts go up, and ZONE_VIOLATION's clearing (area out); other clearings do
not. WARN_SRC (2011): 1 (terminal) for a DEVICE_ALARM, 3 (government platform) for the
alerts YRD's rules raise.
"""

from __future__ import annotations

import zlib

from ..core.models import Alert, AlertState
from ..jt809 import alarms
from ..jt809.frame import V2011

_RAISED = {
    "SPEEDING": alarms.OVERSPEED,
    "ZONE_SPEEDING": alarms.OVERSPEED,
    "FATIGUE_DRIVING": alarms.FATIGUE,
    "ZONE_VIOLATION": alarms.AREA_IN,
    "ROUTE_DEVIATION": alarms.ROUTE_DEVIATION,
}


def other(edition: int) -> int:
    """WARN_TYPE "other": 0x000E in 2011, 0x00FF in 2019."""
    return alarms.OTHER if edition == V2011 else alarms.OTHER_2019


def warn_type(alert: Alert, edition: int = V2011) -> int | None:
    """The WARN_TYPE of an alert, or None when it does not go up."""
    if alert.state == AlertState.CLEARED:
        return alarms.AREA_OUT if alert.type == "ZONE_VIOLATION" else None
    if alert.type == "DEVICE_ALARM":
        return alarms.EMERGENCY if alert.severity == "critical" else other(edition)
    return _RAISED.get(alert.type, other(edition))


def info_id(alert: Alert) -> int:
    """INFO_ID (2011): a 32-bit number of the alert, the same on every re-send."""
    return zlib.crc32(alert.alert_id.encode("utf-8"))


def content(alert: Alert) -> str:
    where = f" {alert.city.name}" if alert.city is not None else ""
    text = f"{alert.type}{where} {alert.lat:.6f},{alert.lon:.6f}"
    if alert.un_number:
        text += f" UN{alert.un_number}"
    return text[:200]


def to_alarm(alert: Alert, code: int, *, edition: int = V2011, platform_id: str = "",
             colour: int = 2) -> alarms.Alarm:
    """The 0x1402 alarm of an alert (``code`` from :func:`warn_type`)."""
    if edition == V2011:
        src = alarms.FROM_TERMINAL if alert.type == "DEVICE_ALARM" else alarms.FROM_GOVERNMENT
        return alarms.Alarm(warn_type=code, warn_time=alert.ts, warn_src=src,
                            info_id=info_id(alert), content=content(alert))
    return alarms.Alarm(warn_type=code, warn_time=alert.ts, start_time=alert.ts,
                        end_time=alert.ts, platform_id=platform_id, plate=alert.vehicle_id,
                        colour=colour, destination_id="", line_id=0, content=content(alert))
