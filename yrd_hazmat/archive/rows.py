"""What one archived row holds, per kind, as Arrow schemas (every file of a kind has the
same columns), and the pure conversion of Kafka records into them.

- pings: every ping the worker accepts (it decodes, its key is its vehicle, it is not
  stamped ahead of its arrival), proof-of-life ones without a fix included (``fix_valid``
  false), with the province and city of its position, the truck's carrier (the vehicle
  register) and its data-quality findings.
- alerts: every alert record, raised and cleared, its details as JSON.
- incidents: every version of every incident record (the latest, per ``incident_id``, holds
  its whole handling), the record itself as JSON.

Each row keeps where it came from (``partition``, ``offset``) and when the broker took it
(``received_at``): a reader can tell two copies of a record from two records.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import msgspec
import numpy as np
import pyarrow as pa

from ..core.codec import decode_ping, time_ahead
from ..core.geo.jurisdiction import JurisdictionIndex
from ..core.models import Alert, IncidentLog, Ping
from ..core.timeutil import CHINA_TZ, to_ms
from .layout import day_of

TS = pa.timestamp("ms", tz="Asia/Shanghai")
SOURCE = [pa.field("partition", pa.int32()), pa.field("offset", pa.int64()),
          pa.field("received_at", TS)]

PINGS = pa.schema([
    pa.field("vehicle_id", pa.string()), pa.field("ts", TS), pa.field("lat", pa.float64()),
    pa.field("lon", pa.float64()), pa.field("speed_kmh", pa.float32()),
    pa.field("heading", pa.int16()), pa.field("crs", pa.string()),
    pa.field("alarm_flags", pa.uint32()), pa.field("status_flags", pa.uint32()),
    pa.field("road_class", pa.string()), pa.field("altitude_m", pa.int32()),
    pa.field("mileage_km", pa.float64()), pa.field("fix_valid", pa.bool_()),
    pa.field("blind", pa.bool_()), pa.field("quality", pa.list_(pa.string())),
    pa.field("alarm_extra", pa.string()), pa.field("raw_items", pa.string()),
    pa.field("province", pa.string()), pa.field("city_code", pa.string()),
    pa.field("city_name", pa.string()), pa.field("carrier", pa.string()), *SOURCE])

ALERTS = pa.schema([
    pa.field("alert_id", pa.string()), pa.field("incident_id", pa.string()),
    pa.field("type", pa.string()), pa.field("severity", pa.string()),
    pa.field("state", pa.string()), pa.field("vehicle_id", pa.string()), pa.field("ts", TS),
    pa.field("emitted_at", TS), pa.field("lat", pa.float64()), pa.field("lon", pa.float64()),
    pa.field("province", pa.string()), pa.field("city_code", pa.string()),
    pa.field("city_name", pa.string()), pa.field("permit_id", pa.string()),
    pa.field("un_number", pa.string()), pa.field("hazard_class", pa.string()),
    pa.field("carrier", pa.string()), pa.field("details", pa.string()), *SOURCE])

INCIDENTS = pa.schema([
    pa.field("incident_id", pa.string()), pa.field("vehicle_id", pa.string()),
    pa.field("province", pa.string()), pa.field("alert_type", pa.string()),
    pa.field("severity", pa.string()), pa.field("emergency", pa.bool_()),
    pa.field("raised_at", TS), pa.field("cleared_at", TS), pa.field("closed_at", TS),
    pa.field("actions", pa.int32()), pa.field("carrier", pa.string()),
    pa.field("record", pa.string()), *SOURCE])

SCHEMAS = {"pings": PINGS, "alerts": ALERTS, "incidents": INCIDENTS}

_alert_decoder = msgspec.json.Decoder(Alert)
_incident_decoder = msgspec.json.Decoder(IncidentLog)
_json = msgspec.json.Encoder()


class Rows:
    """Rows of one kind, by day and Kafka partition, column by column (what a flush
    writes)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.schema = SCHEMAS[kind]
        self.groups: dict[tuple[date, int], dict[str, list]] = {}
        self.count = 0

    def add(self, day: date, row: dict) -> None:
        key = (day, row["partition"])
        columns = self.groups.get(key)
        if columns is None:
            columns = self.groups[key] = {name: [] for name in self.schema.names}
        for name in self.schema.names:
            columns[name].append(row.get(name))
        self.count += 1

    def tables(self) -> dict[tuple[date, int], pa.Table]:
        return {key: pa.table(columns, schema=self.schema)
                for key, columns in self.groups.items()}


def _received(timestamp_ms: int | None) -> datetime | None:
    if timestamp_ms is None:
        return None
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc)


def pings(records, *, index: JurisdictionIndex, carriers, max_bytes: int,
          tolerance_ms: int, out: Rows) -> int:
    """The accepted pings of ``records`` (Kafka records of ``yrd.pings``: key, value,
    timestamp, partition, offset) into ``out``; how many were not accepted."""
    kept: list[tuple[Ping, object]] = []
    refused = 0
    for rec in records:
        ping = decode_ping(rec.key, rec.value, max_bytes)
        if not isinstance(ping, Ping):
            refused += 1
            continue
        received = rec.timestamp if rec.timestamp is not None else to_ms(ping.ts)
        if time_ahead(ping, received, tolerance_ms) is not None:
            refused += 1
            continue
        kept.append((ping, rec))
    if not kept:
        return refused
    lons = np.fromiter((p.lon for p, _ in kept), dtype=np.float64, count=len(kept))
    lats = np.fromiter((p.lat for p, _ in kept), dtype=np.float64, count=len(kept))
    provinces, codes, names = index.locate(lons, lats)
    for i, (p, rec) in enumerate(kept):
        where = p.fix_valid
        out.add(day_of(p.ts), {
            "vehicle_id": p.vehicle_id, "ts": p.ts, "lat": p.lat, "lon": p.lon,
            "speed_kmh": p.speed_kmh, "heading": p.heading, "crs": p.crs,
            "alarm_flags": p.alarm_flags, "status_flags": p.status_flags,
            "road_class": p.road_class, "altitude_m": p.altitude_m,
            "mileage_km": p.mileage_km, "fix_valid": p.fix_valid, "blind": p.blind,
            "quality": list(p.quality),
            "alarm_extra": _json.encode(p.alarm_extra).decode() if p.alarm_extra else None,
            "raw_items": _json.encode(p.raw_items).decode() if p.raw_items else None,
            "province": provinces[i] if where else None,
            "city_code": codes[i] if where else None,
            "city_name": names[i] if where else None,
            "carrier": carriers(p.vehicle_id), "partition": rec.partition,
            "offset": rec.offset, "received_at": _received(rec.timestamp)})
    return refused


def alerts(records, *, carriers, out: Rows) -> int:
    refused = 0
    for rec in records:
        try:
            a = _alert_decoder.decode(rec.value or b"")
        except (msgspec.DecodeError, ValueError):
            refused += 1
            continue
        out.add(day_of(a.ts), {
            "alert_id": a.alert_id, "incident_id": a.incident_id, "type": a.type,
            "severity": a.severity.value, "state": a.state.value, "vehicle_id": a.vehicle_id,
            "ts": a.ts, "emitted_at": a.emitted_at, "lat": a.lat, "lon": a.lon,
            "province": a.province, "city_code": a.city.code if a.city else None,
            "city_name": a.city.name if a.city else None, "permit_id": a.permit_id,
            "un_number": a.un_number, "hazard_class": a.hazard_class,
            "carrier": carriers(a.vehicle_id),
            "details": _json.encode(a.details).decode(), "partition": rec.partition,
            "offset": rec.offset, "received_at": _received(rec.timestamp)})
    return refused


def incidents(records, *, carriers, out: Rows) -> int:
    refused = 0
    for rec in records:
        if rec.value is None:
            continue  # a tombstone: nothing to keep
        try:
            log = _incident_decoder.decode(rec.value)
        except (msgspec.DecodeError, ValueError):
            refused += 1
            continue
        when = log.raised_at or _received(rec.timestamp) or datetime.now(CHINA_TZ)
        out.add(day_of(when), {
            "incident_id": log.incident_id, "vehicle_id": log.vehicle_id,
            "province": log.province, "alert_type": log.alert_type,
            "severity": log.severity.value if log.severity else None,
            "emergency": log.emergency, "raised_at": log.raised_at,
            "cleared_at": log.cleared_at, "closed_at": log.closed_at,
            "actions": len(log.actions), "carrier": carriers(log.vehicle_id),
            "record": rec.value.decode("utf-8", "replace"), "partition": rec.partition,
            "offset": rec.offset, "received_at": _received(rec.timestamp)})
    return refused
