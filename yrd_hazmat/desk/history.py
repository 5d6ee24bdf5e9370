"""Alerts of any period, read back from the alerts topic by time (not from the desk's
memory, nor the read model's last thousand): what ``/api/history`` lists and exports and
what the handover counts.

A period is the alerts' time on the topic, when the platform raised them (their
``emitted_at``, within the producer's clock): the alerts that came during a shift,
including one a truck's late upload raised about an earlier moment. The reader seeks each
partition to the first record at or after ``since`` (Kafka's time index), reads up to the
first record after ``until`` or the partition's end when the read began, and decodes
off the event loop.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import msgspec
from aiokafka import AIOKafkaConsumer

from ..core.models import Alert
from ..core.timeutil import CHINA_TZ
from ..follow import assign_all
from ..spreadsheet import cell

DEFAULT_SPAN = timedelta(hours=24)
DEFAULT_LIMIT = 5000
MAX_LIMIT = 50_000
FILTER_MAX = 64
"""Characters of one filter value (a plate, a type...)."""
_decoder = msgspec.json.Decoder(Alert)
CSV_COLUMNS = ("time", "type", "severity", "state", "vehicle", "province", "city", "lat", "lon",
               "incident", "details")
SUMMARY_MAX = 200


class Query(msgspec.Struct, frozen=True):
    """What ``/api/history`` was asked: a period and filters (empty: any)."""

    since: datetime
    until: datetime
    provinces: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    vehicle: str = ""
    """Part of the plate, any case."""
    limit: int = DEFAULT_LIMIT

    def wants(self, alert: Alert) -> bool:
        return ((not self.provinces or (alert.province or "none") in self.provinces)
                and (not self.types or alert.type in self.types)
                and (not self.severities or alert.severity.value in self.severities)
                and (not self.vehicle or self.vehicle in alert.vehicle_id.casefold()))


def parse_time(text: str, what: str) -> datetime:
    """An RFC 3339 time (a time without offset is China time); ValueError naming ``what``."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{what}: not an RFC 3339 time: {text[:40]!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=CHINA_TZ)


def query_of(args: Mapping[str, str], now: datetime, *, span: timedelta = DEFAULT_SPAN) -> Query:
    """The query of ``/api/history``'s parameters; ValueError saying what is wrong."""
    for name, value in args.items():
        if len(value) > FILTER_MAX:
            raise ValueError(f"{name}: at most {FILTER_MAX} characters")
    until = parse_time(args["to"], "to") if args.get("to") else now
    since = parse_time(args["from"], "from") if args.get("from") else until - span
    if since >= until:
        raise ValueError("from must be before to")
    try:
        limit = int(args.get("limit") or DEFAULT_LIMIT)
    except ValueError:
        raise ValueError("limit: a whole number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: from 1 to {MAX_LIMIT}")
    return Query(since, until, provinces=_set(args.get("province")), types=_set(args.get("type")),
                 severities=_set(args.get("severity")),
                 vehicle=(args.get("vehicle") or "").strip().casefold(), limit=limit)


def _set(value: str | None) -> frozenset[str]:
    return frozenset(v.strip() for v in (value or "").split(",") if v.strip())


class Found(NamedTuple):
    """An alert with its time on the topic (ms)."""

    at_ms: int
    alert: Alert


async def read_period(kafka_options: dict, topic: str, since: datetime, until: datetime,
                      keep: Callable[[Alert], bool],
                      sink: Callable[[list[Found]], None]) -> None:
    """Give ``sink`` every alert of the topic raised within the period that ``keep``
    accepts, a batch at a time (each batch decoded and filtered in a worker thread)."""
    since_ms, until_ms = int(since.timestamp() * 1000), int(until.timestamp() * 1000)
    consumer = AIOKafkaConsumer(**kafka_options, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        try:
            tps = await assign_all(consumer, topic, timeout_s=0)
        except TimeoutError:  # no alert was ever written
            return
        starts = await consumer.offsets_for_times({tp: since_ms for tp in tps})
        ends = await consumer.end_offsets(tps)
        reading = {}
        for tp in tps:
            start = starts.get(tp)
            if start is not None and start.offset < ends[tp]:
                consumer.seek(tp, start.offset)
                reading[tp] = ends[tp]
        consumer.pause(*[tp for tp in tps if tp not in reading])
        while reading:
            batches = await consumer.getmany(*reading, timeout_ms=500, max_records=5000)
            for tp, records in batches.items():
                end = reading.get(tp)
                if end is None:
                    continue
                inside = [(r.timestamp, r.value) for r in records
                          if r.offset < end and r.timestamp <= until_ms]
                if len(inside) < len(records):  # past the period, or past the end
                    del reading[tp]
                    consumer.pause(tp)
                if inside:
                    sink(await asyncio.to_thread(_decoded, inside, since_ms, keep))
            for tp, end in list(reading.items()):
                if await consumer.position(tp) >= end:  # markers and gaps count as read
                    del reading[tp]
                    consumer.pause(tp)
    finally:
        await consumer.stop()


def _decoded(records: list[tuple[int, bytes | None]], since_ms: int,
             keep: Callable[[Alert], bool]) -> list[Found]:
    """The alerts among the records (a tombstone or an unreadable record is skipped: the
    worker is the topic's one writer) that ``keep`` accepts."""
    out = []
    for at_ms, value in records:
        if value is None or at_ms < since_ms:
            continue
        try:
            alert = _decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if keep(alert):
            out.append(Found(at_ms, alert))
    return out


class Newest:
    """The newest ``limit`` alerts of a read, newest first; ``truncated`` once more came."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.truncated = False
        self._found: list[Found] = []

    def add(self, batch: list[Found]) -> None:
        self._found.extend(batch)
        if len(self._found) > 2 * self.limit:
            self._trim()

    def _trim(self) -> None:
        if len(self._found) > self.limit:
            self._found.sort(key=lambda f: f.at_ms, reverse=True)
            del self._found[self.limit:]
            self.truncated = True

    def alerts(self) -> list[Alert]:
        self._trim()
        self._found.sort(key=lambda f: f.at_ms, reverse=True)
        return [f.alert for f in self._found]


# --- CSV ----------------------------------------------------------------------------------
def csv_of(alerts: Iterable[Alert]) -> bytes:
    """The alerts as CSV for a spreadsheet: a header row, UTF-8 with a BOM (Excel reads the
    Chinese then), times in China time, and no cell a spreadsheet would run as a formula."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for a in alerts:
        writer.writerow([
            a.ts.astimezone(CHINA_TZ).isoformat(timespec="seconds"), cell(a.type),
            a.severity.value, a.state.value, cell(a.vehicle_id), a.province or "",
            cell(a.city.name) if a.city else "", f"{a.lat:.6f}", f"{a.lon:.6f}",
            cell(a.incident_id), cell(summary(a.details))])
    return out.getvalue().encode("utf-8")


def summary(details: Mapping[str, Any]) -> str:
    """An alert's details on one line: ``key=value; ...`` (at most 200 characters)."""
    text = "; ".join(f"{k}={v}" for k, v in details.items())
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[:SUMMARY_MAX - 1] + "…"
