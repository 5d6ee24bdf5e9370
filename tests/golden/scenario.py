"""The golden run's input: 40 minutes of a fleet of 120 trucks with everything the worker
meets in the field, deterministic to the byte (no clock, no randomness without a seed).

On top of the benchmark's fleet (:mod:`benchmarks.pipeline.fleet`: trucks on the
expressways, speeders, trucks without a permit, 40 zones of which some lie on the
corridors: bans, schedules, tunnels with speed limits, dwell limits), each kind of
trouble is laid onto chosen trucks:

- a collision (JT/T 808 alarm bit 29) for 3 minutes: an emergency with responders;
- a stop of 6 minutes and a driver who never rests (PROLONGED_STOP, FATIGUE_DRIVING under
  the short limits of :data:`SETTINGS`);
- a detour 3 km off the permitted route (ROUTE_DEVIATION);
- an implausible jump of 300 km for one fix (IMPLAUSIBLE_JUMP);
- a dead zone of 4 minutes whose fixes are uploaded after the truck is back
  (kept fixes judged as history), one fix older than the history horizon (refused);
- reports without a valid fix (proof of life) for 2 minutes;
- silence for the last 12 minutes, then timer ticks (SIGNAL_LOST);
- records shuffled within the lateness bound, 3 % sent twice, and hostile records
  (not JSON, a schema violation, no key, a time far ahead of the record's arrival).

Records reach the worker on 4 partitions (a CRC of the key), in fetched batches of up to
:data:`BATCH` records, the partitions taking turns, as a broker delivers them.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from benchmarks.pipeline.fleet import make_fleet, permit_doc, zone_collection, zone_records
from yrd_hazmat.core.codec import encode
from yrd_hazmat.config import Settings
from yrd_hazmat.core.models import Ping
from yrd_hazmat.core.timeutil import CHINA_TZ, from_ms, to_ms

START = datetime(2026, 6, 1, 9, 0, tzinfo=CHINA_TZ)
"""Event time of the first ping (a Monday: the zones' weekday schedules apply)."""
TRUCKS = 120
STEPS = 480
STEP_S = 5
ZONES = 40
PARTITIONS = 4
BATCH = 150
ARRIVAL_MS = 800
"""A record's broker timestamp: this long after its event time."""
COLLISION = 1 << 29

SETTINGS = dict(
    speed_limit_expressway_kmh=80.0, speed_limit_other_kmh=60.0,
    speeding_min_duration_s=10.0, speeding_max_gap_s=30.0,
    zone_margin_m=0.0, zone_min_inside_s=10.0, zone_min_outside_s=20.0,
    permit_required_pattern=".*", permit_min_moving_s=30.0,
    route_deviation_raise_s=60.0, route_deviation_clear_s=60.0, moving_kmh=5.0,
    handover_margin_m=200.0, handover_min_across_s=20.0, handover_notice_s=600.0,
    fatigue_max_driving_s=900.0, fatigue_min_rest_s=300.0,
    stop_max_s=240.0, stop_max_sensitive_s=120.0, implausible_speed_kmh=250.0,
    signal_lost_s=480.0, lateness_s=15.0, history_horizon_s=3600.0,
    segment_max_gap_s=120.0, segment_max_speed_kmh=200.0,
    responders_max=3, responder_road_factor=1.3, responder_speed_kmh=60.0,
    future_tolerance_s=300.0, max_ping_bytes=8192, exposure_max_age_s=120.0,
)
"""Every setting the worker's path reads, pinned (short limits, so 40 minutes show them all)."""


@dataclass
class Record:
    """A fetched record as the worker sees it (the attributes of an aiokafka record)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


@dataclass
class Scenario:
    settings: Settings
    zones: list[tuple[bytes, bytes]]
    permits: list[tuple[bytes, bytes]]
    batches: list[list[Record]]
    """Fetched batches in delivery order (pings and, at the end, timer ticks)."""
    now_ms: list[int] = field(default_factory=list)
    """The processing clock at each batch."""


def settings() -> Settings:
    return Settings(_env_file=None, resources_file=None, **SETTINGS)


def _ping(truck, ts_ms: int, **changes) -> Ping:
    ping = truck.ping(ts_ms, (ts_ms - to_ms(START)) / 1000)
    return msgspec.structs.replace(ping, **changes) if changes else ping


def _pings(fleet) -> dict[str, list[Ping]]:
    """Every truck's pings with the troubles laid on (event-time order per truck)."""
    start_ms = to_ms(START)
    steps = [start_ms + 1000 * STEP_S * s for s in range(STEPS)]
    out: dict[str, list[Ping]] = {}
    for i, truck in enumerate(fleet):
        own: list[Ping] = []
        for step, ts in enumerate(steps):
            minute = step * STEP_S / 60
            if i % 10 == 1 and 12 <= minute < 15:
                ping = _ping(truck, ts, alarm_flags=COLLISION)
            elif i % 10 == 2 and 20 <= minute < 26:
                ping = _ping(truck, steps[int(20 * 60 / STEP_S)], speed_kmh=0.0)
                ping = msgspec.structs.replace(ping, ts=from_ms(ts))
            elif i % 10 == 3 and 8 <= minute < 13:
                ping = _ping(truck, ts)
                ping = msgspec.structs.replace(ping, lat=round(ping.lat + 0.027, 6))
            elif i % 10 == 4 and step == 200:
                ping = _ping(truck, ts)
                ping = msgspec.structs.replace(ping, lat=round(ping.lat + 2.7, 6))
            elif i % 10 == 6 and 30 <= minute < 32:
                ping = _ping(truck, ts)
                ping = msgspec.structs.replace(ping, status_flags=0b01)  # no valid fix
            elif i % 10 == 7 and minute >= 28:
                continue  # silent to the end: the timer's turn
            else:
                ping = _ping(truck, ts)
            own.append(ping)
        out[truck.vehicle_id] = own
    return out


def _arrival(pings: dict[str, list[Ping]], fleet, rng: random.Random
             ) -> list[tuple[int, Ping]]:
    """(arrival ms, ping) of every ping: live ones shortly after their time, a dead
    zone's fixes uploaded once the truck is back, one fix beyond the horizon."""
    out: list[tuple[int, Ping]] = []
    for i, truck in enumerate(fleet):
        own = pings[truck.vehicle_id]
        for ping in own:
            ts = to_ms(ping.ts)
            arrives = ts + ARRIVAL_MS
            minute = (ts - to_ms(START)) / 60000
            if i % 10 == 5 and 16 <= minute < 20:
                arrives = to_ms(START) + 21 * 60000 + int(minute * 100)  # uploaded at 21 min
            out.append((arrives, ping))
        if i % 10 == 5:
            ancient = _ping(truck, to_ms(START) + 100_000)
            ancient = msgspec.structs.replace(ancient, ts=from_ms(to_ms(START) - 2 * 3600_000))
            out.append((to_ms(START) + 30 * 60000, ancient))
    return out


def _records(arrivals: list[tuple[int, Ping]], rng: random.Random
             ) -> list[tuple[int, bytes | None, bytes | None]]:
    """(arrival ms, key, value) in arrival order: shuffled within a few seconds, some
    twice, some hostile."""
    arrivals.sort(key=lambda a: (a[0], a[1].vehicle_id))
    records: list[tuple[int, bytes | None, bytes | None]] = []
    for arrives, ping in arrivals:
        jitter = rng.randrange(0, 6000)
        key = ping.vehicle_id.encode()
        value = encode(ping)
        records.append((arrives + jitter, key, value))
        if rng.random() < 0.03:
            records.append((arrives + jitter + rng.randrange(0, 20_000), key, value))
    end = to_ms(START) + STEPS * STEP_S * 1000
    for n in range(12):
        at = to_ms(START) + n * 200_000
        records.append((at, b"\xe6\xb2\xaaX" + bytes([65 + n]), b"{not json"))
        records.append((at + 1, "沪AD00001".encode(), msgspec.json.encode({"vehicle_id": "沪AD00001"})))
        records.append((at + 2, None, encode(Ping(vehicle_id="沪AD00001", ts=from_ms(at), lat=31.2,
                                                  lon=121.4, speed_kmh=40.0))))
        ahead = Ping(vehicle_id="沪AD00002", ts=from_ms(at + 3 * 3600_000), lat=31.2, lon=121.4,
                     speed_kmh=40.0)
        records.append((at + 3, ahead.vehicle_id.encode(), encode(ahead)))
    records.sort(key=lambda r: (min(r[0], end + 60_000), r[1] or b"", r[2] or b""))
    return records


def _partition(key: bytes | None) -> int:
    return zlib.crc32(key or b"") % PARTITIONS


def _batches(topic: str, records: list[tuple[int, bytes | None, bytes | None]]
             ) -> tuple[list[list[Record]], list[int]]:
    """Fetched batches, the partitions taking turns, each batch after its last record
    arrived (the processing clock of each batch: its last arrival + 0.5 s)."""
    queues: list[list[Record]] = [[] for _ in range(PARTITIONS)]
    for arrives, key, value in records:
        p = _partition(key)
        queues[p].append(Record(topic, p, len(queues[p]), key, value, arrives))
    batches: list[tuple[int, list[Record]]] = []
    for queue in queues:
        for start in range(0, len(queue), BATCH):
            chunk = queue[start:start + BATCH]
            batches.append((chunk[-1].timestamp, chunk))
    batches.sort(key=lambda b: (b[0], b[1][0].partition))
    return [b for _, b in batches], [at + 500 for at, _ in batches]


def _ticks(topic: str, vehicles: list[str], end_ms: int) -> tuple[list[list[Record]], list[int]]:
    """Timer ticks for every vehicle every minute for 15 minutes after the last ping."""
    batches, clocks = [], []
    for minute in range(1, 16):
        now_ms = end_ms + minute * 60_000
        by_partition: dict[int, list[Record]] = {}
        for vehicle in vehicles:
            key = vehicle.encode()
            p = _partition(key)
            queue = by_partition.setdefault(p, [])
            queue.append(Record(topic, p, (minute - 1) * 1000 + len(queue), key,
                                msgspec.json.encode({"now_ms": now_ms}), now_ms))
        for p in sorted(by_partition):
            batches.append(by_partition[p])
            clocks.append(now_ms + 500)
    return batches, clocks


def _permits(fleet) -> list[tuple[bytes, bytes]]:
    """The permits of the permitted trucks: one in ten expires 20 minutes in
    (PERMIT_TIME_WINDOW), one in ten names only the province it starts in
    (HANDOVER_NOT_PERMITTED when it crosses a border)."""
    out = []
    for i, truck in enumerate(fleet):
        if not truck.permitted:
            continue
        until = START + (timedelta(minutes=20) if i % 10 == 8 else timedelta(hours=14))
        doc = permit_doc(truck, START - timedelta(hours=1), until)
        if i % 10 == 9:
            doc["provinces"] = doc["provinces"][:1]
        out.append((truck.vehicle_id.encode(), msgspec.json.encode(doc)))
    return out


def build() -> Scenario:
    """The golden run's input."""
    rng = random.Random(23)
    s = settings()
    fleet = make_fleet(TRUCKS, speeders=0.03, seed=23)
    pings = _pings(fleet)
    records = _records(_arrival(pings, fleet, rng), rng)
    batches, clocks = _batches(s.topic_pings, records)
    end_ms = to_ms(START) + STEPS * STEP_S * 1000
    ticks, tick_clocks = _ticks(s.topic_ticks, sorted(pings), end_ms)
    permits = _permits(fleet)
    return Scenario(settings=s, zones=zone_records(zone_collection(ZONES, seed=23)),
                    permits=permits, batches=batches + ticks, now_ms=clocks + tick_clocks)
