"""What the notifier reads, as events, and what it says of them: an alert record becomes an
:class:`~.subscriptions.Event` (with its carrier from the vehicle register), an event a
:class:`~.notice.Notice` (subject, lines, the desk's link) and a digest line."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from ..core.models import Alert, AlertState, IncidentAction, IncidentLog
from ..core.timeutil import CHINA_TZ
from ..names import province_name, type_name
from .notice import Notice
from .subscriptions import Event

SEVERITY_NAMES = {"critical": "严重", "warning": "警告", "info": "提示"}
LEVEL_NAMES = {"city": "市级", "province": "省级", "region": "区域"}
KIND_NAMES = {"raised": "报警", "cleared": "报警解除", "escalated": "超时升级",
              "appealed": "申诉", "appeal_decided": "申诉处理"}


def alert_event(alert: Alert, carrier: Callable[[str], str | None]) -> Event:
    """The event an alert record is (raised or cleared)."""
    city = alert.city
    return Event(event_id=alert.alert_id,
                 kind="raised" if alert.state is AlertState.RAISED else "cleared",
                 incident_id=alert.incident_id, vehicle_id=alert.vehicle_id,
                 alert_type=alert.type, severity=alert.severity.value, ts=alert.ts,
                 province=alert.province, city_code=city.code if city else None,
                 city_name=city.name if city else None, carrier=carrier(alert.vehicle_id),
                 lat=alert.lat, lon=alert.lon, details=_short(alert.details))


APPEAL_KINDS = {"appeal": "appealed", "appeal_accepted": "appeal_decided",
                "appeal_rejected": "appeal_decided"}
DECISIONS = {"appeal": "申诉 (appeal)", "appeal_accepted": "申诉已接受 (appeal accepted)",
             "appeal_rejected": "申诉已驳回 (appeal rejected)"}


def appeal_event(record: IncidentLog, action: IncidentAction,
                 carrier: Callable[[str], str | None]) -> Event:
    """A carrier's appeal of an alert, or the police's decision on it, as an event."""
    return Event(event_id=f"{record.incident_id}:{action.action_id}",
                 kind=APPEAL_KINDS[action.kind], incident_id=record.incident_id,
                 vehicle_id=record.vehicle_id, alert_type=record.alert_type,
                 severity=record.severity.value if record.severity else "warning",
                 ts=action.at, province=record.province, carrier=carrier(record.vehicle_id),
                 lat=record.lat, lon=record.lon,
                 text=f"{DECISIONS[action.kind]} {action.by}: {action.text or ''}".strip())


def _short(details: dict) -> dict:
    """What of an alert's details a message may quote (scalars: not responders lists)."""
    return {k: v for k, v in details.items() if isinstance(v, str | int | float | bool)}


def _where(event: Event) -> str:
    place = province_name(event.province)
    return f"{place}{event.city_name}" if event.city_name else place


def notice(event: Event, desk_url: str | None) -> Notice:
    """The message of one event (its id is set per delivery)."""
    when = event.ts.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
    what = type_name(event.alert_type)
    head = f"[{SEVERITY_NAMES[event.severity]}] {event.vehicle_id} {what}"
    if event.kind != "raised":
        head += f" · {KIND_NAMES[event.kind]}"
    if event.kind == "escalated" and event.level:
        head += f"至{LEVEL_NAMES[event.level]}"
    lines = [f"时间: {when}", f"地点: {_where(event)}"]
    if event.lat is not None and event.lon is not None:
        lines.append(f"位置: {event.lat:.5f}, {event.lon:.5f}")
    lines.append(f"类型: {what} ({event.alert_type})")
    if event.carrier:
        lines.append(f"承运单位: {event.carrier}")
    for key in ("zone_name", "zone_id", "speed_kmh", "limit_kmh", "alarm", "cargo_name"):
        if key in event.details:
            lines.append(f"{key}: {event.details[key]}")
    if event.text:
        lines.append(f"说明: {event.text}")
    lines.append(f"事件编号: {event.incident_id}")
    link = None
    if desk_url:
        link = f"{desk_url.rstrip('/')}/?incident={quote(event.incident_id, safe='')}"
    return Notice(notice_id=event.event_id, subject=f"{head} · {_where(event)}", lines=lines,
                  severity=event.severity, link=link,
                  kind="alert" if event.kind in ("raised", "cleared") else
                  "escalation" if event.kind == "escalated" else "incident")


def digest_line(event: Event) -> str:
    """The event in one line of a digest."""
    when = event.ts.astimezone(CHINA_TZ).strftime("%m-%d %H:%M")
    kind = "" if event.kind == "raised" else f" ({KIND_NAMES[event.kind]})"
    return (f"{when} {SEVERITY_NAMES[event.severity]} {event.vehicle_id} "
            f"{type_name(event.alert_type)}{kind} {_where(event)}")
