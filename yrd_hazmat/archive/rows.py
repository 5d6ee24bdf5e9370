"""What one archived row holds, per kind, as Arrow schemas (every file of a kind has the
same columns), and the pure conversion of Kafka records into them.

- pings: every ping the worker accepts (it decodes, its key is its vehicle, it is not
  stamped ahead of its arrival), proof-of-life ones without a fix included (``fix_valid``
  false), with the province and city of its position, the truck's carrier (the vehicle
  register) and its data-quality findings.
- alerts: every alert record, raised and cleared, its details as JSON.
- incidents: every version of every incident record (the latest, per ``incident_id``, holds
  its whole handling), the record itself as JSON.
- link_states: every report of a JT/T 809 link's state (``yrd.link-states``: the uplink to
  the national platform, the lower platforms' links), for the link uptime.
- uplink_requests, uplink_answers: the national platform's requests (inspections,
  supervision orders, ...) and the answers sent up, for the inspection response rate and
  the handling of supervision orders.
- platform_results: the steps of our requests down to the lower platforms
  (``yrd.platform-request-results``: sent, answered in time or late...), for their
  inspection response rate per province and carrier.
- audit: the audit log (``yrd.audit``): who did what, when, from where, with what outcome.

Each row keeps where it came from (``partition``, ``offset``) and when the broker took it
(``received_at``): a reader can tell two copies of a record from two records.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import msgspec
import numpy as np
import pyarrow as pa

from ..core.codec import decode_ping, time_ahead
from ..core.geo.gcj02 import gcj02_to_wgs84
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

LINK_STATES = pa.schema([
    pa.field("key", pa.string()), pa.field("link", pa.string()),
    pa.field("access_code", pa.int64()), pa.field("name", pa.string()),
    pa.field("reporter", pa.string()), pa.field("main_up", pa.bool_()),
    pa.field("slave_up", pa.bool_()), pa.field("reported_at", TS),
    pa.field("heartbeat_s", pa.float64()), *SOURCE])

UPLINK_REQUESTS = pa.schema([
    pa.field("request_id", pa.string()), pa.field("kind", pa.string()),
    pa.field("ts", TS), pa.field("deadline", TS), pa.field("plate", pa.string()),
    pa.field("question", pa.string()), pa.field("link", pa.string()),
    pa.field("serial", pa.int64()), *SOURCE])

UPLINK_ANSWERS = pa.schema([
    pa.field("request_id", pa.string()), pa.field("kind", pa.string()),
    pa.field("requested_at", TS), pa.field("deadline", TS), pa.field("ts", TS),
    pa.field("answered_by", pa.string()), pa.field("result", pa.int32()),
    pa.field("content", pa.string()), *SOURCE])

PLATFORM_RESULTS = pa.schema([
    pa.field("request_id", pa.string()), pa.field("platform", pa.int64()),
    pa.field("kind", pa.string()), pa.field("status", pa.string()), pa.field("ts", TS),
    pa.field("deadline", TS), pa.field("took_s", pa.float64()), pa.field("late", pa.bool_()),
    *SOURCE])

AUDIT = pa.schema([
    pa.field("ts", TS), pa.field("user", pa.string()), pa.field("role", pa.string()),
    pa.field("action", pa.string()), pa.field("target", pa.string()),
    pa.field("outcome", pa.string()), pa.field("reason", pa.string()),
    pa.field("address", pa.string()), pa.field("details", pa.string()), *SOURCE])

SCHEMAS = {"pings": PINGS, "alerts": ALERTS, "incidents": INCIDENTS,
           "link_states": LINK_STATES, "uplink_requests": UPLINK_REQUESTS,
           "uplink_answers": UPLINK_ANSWERS, "platform_results": PLATFORM_RESULTS,
           "audit": AUDIT}

_alert_decoder = msgspec.json.Decoder(Alert)
_incident_decoder = msgspec.json.Decoder(IncidentLog)
_json = msgspec.json.Encoder()


class Rows:
    """Rows of one kind, by day and Kafka partition (what a flush writes), kept as Arrow
    tables of each fetched chunk."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.schema = SCHEMAS[kind]
        self.groups: dict[tuple[date, int], list[pa.Table]] = {}
        self.count = 0

    def extend(self, columns: dict[str, list], days: np.ndarray, partitions: np.ndarray) -> None:
        """One chunk, column by column, with each row's day (days since 1970-01-01, China
        time) and partition."""
        if not len(days):
            return
        table = pa.table(columns, schema=self.schema)
        keys = days.astype(np.int64) * 100_000 + partitions.astype(np.int64)
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)
            day = EPOCH + timedelta(days=int(key // 100_000))
            part = table if len(rows) == len(keys) else table.take(pa.array(rows))
            self.groups.setdefault((day, int(key % 100_000)), []).append(part)
        self.count += len(days)

    def add(self, day: date, row: dict) -> None:
        """One row (the kinds of few records)."""
        self.extend({name: [row.get(name)] for name in self.schema.names},
                    np.array([(day - EPOCH).days]), np.array([row["partition"]]))

    def tables(self) -> dict[tuple[date, int], pa.Table]:
        return {key: pa.concat_tables(parts) if len(parts) > 1 else parts[0]
                for key, parts in self.groups.items()}


EPOCH = date(1970, 1, 1)
DAY_MS, CHINA_MS = 86_400_000, 8 * 3_600_000


def _received(timestamp_ms: int | None) -> datetime | None:
    if timestamp_ms is None:
        return None
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc)


def pings(records, *, index: JurisdictionIndex, carriers, max_bytes: int,
          tolerance_ms: int, out: Rows) -> int:
    """The accepted pings of ``records`` (Kafka records of ``yrd.pings``: key, value,
    timestamp, partition, offset) into ``out``; how many were not accepted."""
    kept: list[Ping] = []
    recs = []
    stamps: list[int] = []
    refused = 0
    for rec in records:
        ping = decode_ping(rec.key, rec.value, max_bytes)
        if not isinstance(ping, Ping):
            refused += 1
            continue
        ts_ms = to_ms(ping.ts)
        received = rec.timestamp if rec.timestamp is not None else ts_ms
        if time_ahead(ping, received, tolerance_ms, ts_ms) is not None:
            refused += 1
            continue
        kept.append(ping)
        recs.append(rec)
        stamps.append(ts_ms)
    if not kept:
        return refused
    n = len(kept)
    lons = np.fromiter((p.lon for p in kept), dtype=np.float64, count=n)
    lats = np.fromiter((p.lat for p in kept), dtype=np.float64, count=n)
    fixed = np.fromiter((p.fix_valid for p in kept), dtype=bool, count=n)
    provinces = np.full(n, None, dtype=object)
    codes, names = provinces.copy(), provinces.copy()
    if fixed.any():  # a report without a fix has no place
        where = np.flatnonzero(fixed)
        x, y = lons[where], lats[where]
        gcj = np.fromiter((kept[i].crs == "GCJ02" for i in where), dtype=bool, count=len(where))
        if gcj.any():  # the boundaries are WGS84 (the worker converts the same way)
            x, y = x.copy(), y.copy()
            x[gcj], y[gcj] = gcj02_to_wgs84(x[gcj], y[gcj])
        provinces[where], codes[where], names[where] = index.locate(x, y)
    ts = pa.array(stamps, pa.int64()).cast(TS)
    encode = _json.encode
    columns = {
        "vehicle_id": [p.vehicle_id for p in kept], "ts": ts, "lat": lats, "lon": lons,
        "speed_kmh": [p.speed_kmh for p in kept], "heading": [p.heading for p in kept],
        "crs": [p.crs for p in kept], "alarm_flags": [p.alarm_flags for p in kept],
        "status_flags": [p.status_flags for p in kept],
        "road_class": [p.road_class for p in kept], "altitude_m": [p.altitude_m for p in kept],
        "mileage_km": [p.mileage_km for p in kept], "fix_valid": fixed,
        "blind": [p.blind for p in kept], "quality": [p.quality for p in kept],
        "alarm_extra": [encode(p.alarm_extra).decode() if p.alarm_extra else None
                        for p in kept],
        "raw_items": [encode(p.raw_items).decode() if p.raw_items else None for p in kept],
        "province": provinces, "city_code": codes, "city_name": names,
        "carrier": [carriers(p.vehicle_id) for p in kept],
        "partition": [r.partition for r in recs], "offset": [r.offset for r in recs],
        "received_at": pa.array([r.timestamp for r in recs], pa.int64()).cast(TS)}
    days = (np.array(stamps, dtype=np.int64) + CHINA_MS) // DAY_MS
    out.extend(columns, days, np.array(columns["partition"], dtype=np.int64))
    return refused


def _each(records, decode, row, out: Rows) -> int:
    """The records of a low-volume kind into ``out``: ``row(value)`` gives the row's event
    time and its columns (its source is added); a tombstone is skipped; how many did not
    decode."""
    refused = 0
    for rec in records:
        if rec.value is None:
            continue  # a removed record: nothing to keep
        try:
            value = decode(rec.value)
        except (msgspec.DecodeError, ValueError):
            refused += 1
            continue
        when, columns = row(value, rec)
        out.add(day_of(when), columns | {"partition": rec.partition, "offset": rec.offset,
                                         "received_at": _received(rec.timestamp)})
    return refused


def alerts(records, *, carriers, out: Rows) -> int:
    def row(a: Alert, rec) -> tuple[datetime, dict]:
        return a.ts, {
            "alert_id": a.alert_id, "incident_id": a.incident_id, "type": a.type,
            "severity": a.severity.value, "state": a.state.value, "vehicle_id": a.vehicle_id,
            "ts": a.ts, "emitted_at": a.emitted_at, "lat": a.lat, "lon": a.lon,
            "province": a.province, "city_code": a.city.code if a.city else None,
            "city_name": a.city.name if a.city else None, "permit_id": a.permit_id,
            "un_number": a.un_number, "hazard_class": a.hazard_class,
            "carrier": carriers(a.vehicle_id), "details": _json.encode(a.details).decode()}
    return _each(records, _alert_decoder.decode, row, out)


def incidents(records, *, carriers, out: Rows) -> int:
    def row(log: IncidentLog, rec) -> tuple[datetime, dict]:
        when = log.raised_at or _received(rec.timestamp) or datetime.now(CHINA_TZ)
        return when, {
            "incident_id": log.incident_id, "vehicle_id": log.vehicle_id,
            "province": log.province, "alert_type": log.alert_type,
            "severity": log.severity.value if log.severity else None,
            "emergency": log.emergency, "raised_at": log.raised_at,
            "cleared_at": log.cleared_at, "closed_at": log.closed_at,
            "actions": len(log.actions), "carrier": carriers(log.vehicle_id),
            "record": rec.value.decode("utf-8", "replace")}
    return _each(records, _incident_decoder.decode, row, out)


def link_states(records, *, out: Rows) -> int:
    from ..link_states import decoder

    def row(state, rec) -> tuple[datetime, dict]:
        return state.reported_at, {
            "key": rec.key.decode("utf-8", "replace") if rec.key else state.key,
            "link": state.link, "access_code": state.access_code, "name": state.name,
            "reporter": state.reporter, "main_up": state.main_up, "slave_up": state.slave_up,
            "reported_at": state.reported_at, "heartbeat_s": state.heartbeat_s}
    return _each(records, decoder.decode, row, out)


def uplink_requests(records, *, out: Rows) -> int:
    from ..uplink.records import request_decoder

    def row(r, rec) -> tuple[datetime, dict]:
        return r.received_at, {
            "request_id": r.request_id, "kind": r.kind, "ts": r.received_at,
            "deadline": r.deadline, "plate": r.plate, "question": r.question, "link": r.link,
            "serial": r.serial}
    return _each(records, request_decoder.decode, row, out)


def uplink_answers(records, *, out: Rows) -> int:
    """(A photo's picture is not kept: it is on yrd.media.)"""
    from ..uplink.records import answer_decoder

    def row(a, rec) -> tuple[datetime, dict]:
        return a.answered_at, {
            "request_id": a.request.request_id, "kind": a.request.kind,
            "requested_at": a.request.received_at, "deadline": a.request.deadline,
            "ts": a.answered_at, "answered_by": a.answered_by, "result": a.result,
            "content": a.content}
    return _each(records, answer_decoder.decode, row, out)


def platform_results(records, *, out: Rows) -> int:
    from ..gateway.platform_requests import PlatformRequestResult

    def row(r, rec) -> tuple[datetime, dict]:
        return r.at, {
            "request_id": r.request_id, "platform": r.platform, "kind": r.kind,
            "status": r.status, "ts": r.at, "deadline": r.deadline, "took_s": r.took_s,
            "late": r.late}
    return _each(records, msgspec.json.Decoder(PlatformRequestResult).decode, row, out)


def audit(records, *, out: Rows) -> int:
    from ..audit import decode

    def row(e, rec) -> tuple[datetime, dict]:
        return e.at, {"ts": e.at, "user": e.user, "role": e.role, "action": e.action,
                      "target": e.target, "outcome": e.outcome, "reason": e.reason,
                      "address": e.address,
                      "details": _json.encode(e.details).decode() if e.details else None}
    return _each(records, decode, row, out)
