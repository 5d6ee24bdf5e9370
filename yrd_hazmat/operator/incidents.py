"""``yrd-hazmat respond`` and ``yrd-hazmat ledger``: the incident records from the
command line.

Both read ``yrd.incidents`` whole. ``respond`` sends one action to
``yrd.incident-actions`` and waits until the keeper's record shows it, or its refusal;
``ledger`` sums a month's responses per province pair (:mod:`yrd_hazmat.core.emergency.ledger`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer

from ..config import Settings
from ..core.emergency.incidents import hours
from ..core.emergency.records import IncidentLogs
from ..core.models import IncidentAction, IncidentCommand, IncidentLog
from ..core.timeutil import CHINA_TZ
from ..follow import TopicReader


async def read_records(settings: Settings) -> IncidentLogs:
    """Every incident record, as the topic holds them now."""
    logs = IncidentLogs()
    await TopicReader.read_all(settings.kafka_options(), settings.topic_incidents, logs.apply)
    return logs


async def record_action(settings: Settings, incident_id: str, action: IncidentAction,
                        timeout_s: float = 30.0) -> tuple[IncidentLog, str | None]:
    """Send the action and wait for the keeper: (the record, the refusal or None).
    LookupError: no such incident; TimeoutError: no keeper answered."""
    assert action.action_id is not None
    logs = IncidentLogs()
    reader = TopicReader(settings.kafka_options(), settings.topic_incidents, logs.apply)
    await reader.start()
    try:
        await reader.catch_up()
        if logs.get(incident_id) is None:
            raise LookupError(incident_id)
        producer = AIOKafkaProducer(**settings.kafka_options(), acks="all",
                                    enable_idempotence=True)
        await producer.start()
        try:
            command = IncidentCommand(incident_id=incident_id, action=action)
            await producer.send_and_wait(settings.topic_incident_actions,
                                         msgspec.json.encode(command), key=incident_id.encode())
        finally:
            await producer.stop()
        follow = asyncio.create_task(reader.follow())
        try:
            return await logs.answer(incident_id, action.action_id, timeout_s)
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
    finally:
        await reader.stop()


def describe(record: IncidentLog, now: datetime) -> str:
    """The record as a duty officer reads it."""
    lines = [
        f"incident {record.incident_id}  {record.alert_type} {record.subject or ''}  "
        f"{(record.severity.value if record.severity else '')}".rstrip(),
        f"  vehicle {record.vehicle_id}  province {record.province or 'outside the region'}"
        + (f" (responders from {record.responders_province})"
           if record.province is None and record.responders_province else ""),
    ]
    if record.raised_at is not None:
        lines.append(f"  raised {_t(record.raised_at)} at {record.lat:.5f},{record.lon:.5f}"
                     + (f"  cleared {_t(record.cleared_at)}" if record.cleared_at else "")
                     + (f"  CLOSED {_t(record.closed_at)}" if record.closed_at else ""))
    if record.hazard_class or record.cargo_name:
        lines.append(f"  cargo {record.cargo_name or '?'} UN {record.un_number or '?'} class "
                     f"{record.hazard_class or '?'}  isolate {record.isolation_distance_m} m")
    if record.responders:
        lines.append("  proposed responders:")
        lines += [f"    {r['resource_id']:<28} {r['province']}  {r['distance_km']:>6} km  "
                  f"eta {r['eta_min']:>5} min{'  CROSS-BORDER' if r['crosses_border'] else ''}"
                  for r in record.responders]
    exposure: dict[str, Any] = record.exposure
    if exposure:
        trucks = exposure.get("trucks")
        lines.append(f"  exposed within {exposure.get('radius_m')} m: "
                     f"{len(exposure.get('zones') or [])} zone(s) "
                     + ", ".join(f"{z['zone_name']} ({z['zone_kind']}, {z['distance_m']} m)"
                                 for z in exposure.get("zones") or [])
                     + "; trucks: "
                     + (", ".join(f"{t['vehicle_id']} ({t['distance_m']} m)" for t in trucks)
                        if trucks else ("unknown: " + str(exposure.get("trucks_unknown"))
                                        if trucks is None else "none")))
    if record.responses:
        lines.append("  responses:")
        for r in record.responses:
            lines.append(
                f"    {r.resource_id:<28} {r.province}{' (cross-border)' if r.crosses_border else ''}"
                f"  dispatched {_t(r.dispatched_at)}  arrived {_t(r.arrived_at)}"
                f"  released {_t(r.released_at)}"
                f"  {hours(r, now):.2f} h")
    lines.append("  actions: " + "; ".join(f"{a.kind}{' ' + a.resource_id if a.resource_id else ''}"
                                           f" by {a.by} {_t(a.at)}" for a in record.actions))
    return "\n".join(lines)


def _t(at: datetime | None) -> str:
    return at.astimezone(CHINA_TZ).strftime("%m-%d %H:%M") if at is not None else "-"
