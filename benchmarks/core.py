"""The pure batch core alone: ``python -m benchmarks.core [--pings N] [--batch B] [--profile]``.

The benchmark's fleet (:mod:`benchmarks.pipeline.fleet`: 10,000 trucks on the
expressways, 1,000 zones, 5 in 6 trucks with a permit), its backlog on 4 partitions, fed
to :func:`yrd_hazmat.core.batch.run` a partition batch at a time with the reference data
the worker's shell gives it, without Kafka, Faust or Redis: decoding, replays, enrichment,
the rules and the records to write. The first sight of every truck (its permit compiled,
its state made) is not timed. Prints pings per CPU-second: the ceiling of the worker's own
work, beside the pipeline benchmark's drain rate (``make bench``); ``--profile`` adds where
the time goes (cProfile, by function, cumulative).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from agents.processor import PingProcessor
from benchmarks.pipeline import fleet as F
from yrd_hazmat.config import Settings
from yrd_hazmat.core import batch
from yrd_hazmat.core.batch import World
from yrd_hazmat.core.geo.jurisdiction import default_index
from yrd_hazmat.core.permits.store import entry_for
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.core.zones.model import parse_zone_record
from yrd_hazmat.core.zones.registry import ZoneRegistry
from yrd_hazmat.loopwatch import freeze_heap

TRUCKS, ZONES, PARTITIONS = 10_000, 1_000, 4


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    timestamp: int


def world(settings: Settings, trucks, start_ms: int) -> World:
    """The reference data as the worker's shell hands it to the core (its own
    :meth:`~agents.processor.PingProcessor.world`: the same permit lookup and limits)."""
    places = default_index()
    zones = ZoneRegistry(settings.zone_margin_m)
    for key, value in F.zone_records(F.zone_collection(ZONES, 7)):
        zones.put(parse_zone_record(key, value, settings.max_zone_bytes))
    permits = {k: entry_for(k, v, places, settings.max_permit_bytes)
               for k, v in F.permit_records(trucks, start_ms, datetime.now(CHINA_TZ))}
    shell = PingProcessor(settings, states=None, outputs=None, permits=permits, places=places,
                          zones=zones, readmodel=None)
    return shell.world()


def batches(records, size: int) -> list[list[Record]]:
    """Partition batches of ``size`` records, the partitions taking turns."""
    parts: dict[int, list[Record]] = defaultdict(list)
    now_ms = int(time.time() * 1000)
    for key, value in records:
        p = zlib.crc32(key) % PARTITIONS
        parts[p].append(Record("yrd.pings", p, len(parts[p]), key, value, now_ms))
    chunks = {p: [q[i:i + size] for i in range(0, len(q), size)] for p, q in parts.items()}
    out = []
    for turn in range(max(map(len, chunks.values()))):
        out += [c[turn] for p, c in sorted(chunks.items()) if turn < len(c)]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pings", type=int, default=300_000)
    p.add_argument("--batch", type=int, default=1_800, help="records per partition batch "
                   "(the worker's mean in make bench)")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    settings = Settings(signal_lost_s=3600, speeding_min_duration_s=5)
    started = time.perf_counter()
    trucks = F.make_fleet(TRUCKS, 0.1, 7)
    backlog = F.backlog_records(trucks, args.pings, time.time())
    w = world(settings, trucks, backlog.start_ms)
    todo = batches(backlog.records, args.batch)
    print(f"set up in {time.perf_counter() - started:.1f} s: {len(backlog.records):,} pings, "
          f"{ZONES:,} zones, batches of {args.batch:,}")
    states: dict[bytes, object] = {}

    def one(records) -> int:
        step = batch.run(records, states, w, datetime.now(CHINA_TZ))
        states.update(step.states)
        return len(step.records())

    warm = 0
    while warm < 2 * TRUCKS and todo:
        warm += len(todo[0])
        one(todo.pop(0))
    freeze_heap()  # as the worker does once its reference data is built (and its GC thresholds)
    profile = cProfile.Profile() if args.profile else None
    pings = sent = 0
    cpu = time.process_time()
    wall = time.perf_counter()
    if profile:
        profile.enable()
    for records in todo:
        pings += len(records)
        sent += one(records)
    if profile:
        profile.disable()
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    print(f"core: {pings:,} pings, {sent:,} records out, {cpu:.2f} s CPU ({wall:.2f} s wall): "
          f"{pings / cpu:,.0f} pings per CPU-second, {cpu / pings * 1e6:.1f} µs per ping")
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
