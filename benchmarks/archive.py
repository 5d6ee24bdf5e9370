"""Archive benchmark: how fast pings are archived on one core, and what they cost on disk.

``python -m benchmarks.archive [--pings N] [--vehicles V] [--cpu C]``: starts Kafka (or
uses ``KAFKA_BOOTSTRAP``), then, each measured part on CPU ``C`` (default: the last core):

1. **core** (in this process, no Kafka): N pings of the simulated fleet (V trucks on the
   region's corridors, one fix every 10 s) as Kafka records; the archive's work on them:
   turning them into rows (decode, check, province and city, carrier) and writing the
   Parquet files (``writer.flush``, to a temporary directory, in chunks of 20,000 as the
   archiver fetches them, flushed every 50,000), beside its ceiling on the same core: the
   decoding alone (``decode_ping``, the least any consumer of the pings does). Bytes per
   ping on disk, as written and after the day's compaction (sorted by vehicle and time).
2. **archiver** (end to end): the N pings on a new 4-partition topic, then ``yrd-hazmat
   archive run`` as its own process on CPU C (its own archive directory, a flush every
   50,000 rows or 1 s); pings/s from the moment it starts reading (after its start-up) to
   the last record written (by its state files) and its CPU, beside the ceiling: a raw aiokafka consumer reading the same N records on the
   same CPU (``getmany(max_records=20000)``, as the archiver).

3. **assessment**: a day of a 10,000-truck fleet at one fix every 60 s (14.4 million
   pings; ``--assess-trucks``, ``--assess-interval``), written straight as the compacted
   day's four files (random walks around four cities, 2 % of fixes missing, a few drift
   jumps, 1 % bad records), and ``assess.figures.compute_period`` over it: seconds, rows/s,
   and a month of the real fleet (10,000 trucks, a fix every 10 s: 2.6 billion pings)
   extrapolated at that rate (the work is a pass over the rows and a sort per vehicle:
   about linear, as long as a vehicle's month fits in memory).

The requirement: the archive keeps up with the worker's drain, 10,000 pings/s on one core.
Exit status 1 when a ping is missing from the archive (or a phase cannot run: 2), never
for speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as platform_module
import subprocess
import sys
import tempfile
import time
import uuid
from collections import namedtuple
from datetime import datetime, timedelta
from pathlib import Path

from benchmarks.pipeline.kafka import produce_all
from benchmarks.pipeline.services import free_port, load_services, local_services

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 4
Record = namedtuple("Record", "key value timestamp partition offset")
FLUSH_ROWS = 50_000
"""Rows a flush writes, here and in the archiver run (a day holds many such files: the
compaction's saving shows)."""


def fleet_records(n: int, vehicles: int) -> list[tuple[bytes, bytes, int]]:
    """(key, value, broker time ms) of ``n`` pings of the simulated fleet."""
    from yrd_hazmat.core.codec import encode
    from yrd_hazmat.core.timeutil import CHINA_TZ
    from yrd_hazmat.simulator import Fleet

    fleet = Fleet(vehicles, seed=25)
    start = datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(hours=6)
    out: list[tuple[bytes, bytes, int]] = []
    tick = 0
    while len(out) < n:
        now = start + timedelta(seconds=10 * tick)
        for ping in fleet.tick(now):
            out.append((ping.vehicle_id.encode(), encode(ping), int(now.timestamp() * 1000) + 1500))
        tick += 1
    return out[:n]


def core_phase(records: list[tuple[bytes, bytes, int]]) -> dict:
    from yrd_hazmat.archive import upkeep, writer
    from yrd_hazmat.archive.rows import pings as ping_rows
    from yrd_hazmat.archive.store import Store
    from yrd_hazmat.core.codec import decode_ping
    from yrd_hazmat.core.geo.jurisdiction import default_index
    from yrd_hazmat.register import Register

    recs = [Record(k, v, t, i % PARTITIONS, i // PARTITIONS)
            for i, (k, v, t) in enumerate(records)]
    index, register = default_index(), Register()
    index.locate([121.4], [31.2])  # built before the clock starts
    started = time.process_time()
    for rec in recs:
        decode_ping(rec.key, rec.value, 16_384)
    decode_s = time.process_time() - started
    with tempfile.TemporaryDirectory() as root:
        store = Store.local_dir(root)
        batch = writer.Batch("pings", "yrd.pings")
        started = time.process_time()
        flushes = 0
        for k in range(0, len(recs), 20_000):
            chunk = recs[k:k + 20_000]
            for p in range(PARTITIONS):
                mine = [r for r in chunk if r.partition == p]
                if mine:
                    batch.read(p, mine[0].offset, mine[-1].offset)
                    ping_rows(mine, index=index, carriers=register.carrier, max_bytes=16_384,
                              tolerance_ms=300_000, out=batch.rows)
            if batch.rows.count >= FLUSH_ROWS or k + 20_000 >= len(recs):
                writer.flush(store, batch)
                flushes += 1
        archive_s = time.process_time() - started
        written = sum(e.size for e in store.list("pings"))
        files = len(store.list("pings"))
        for day in upkeep.days(store, "pings"):
            upkeep.compact_day(store, "pings", day, 2)
        compacted = sum(e.size for e in store.list("pings"))
    n = len(recs)
    return {"n": n, "decode_rate": n / decode_s, "archive_rate": n / archive_s,
            "bytes_written": written / n, "bytes_compacted": compacted / n, "files": files,
            "flushes": flushes}


async def raw_consume(bootstrap: str, topic: str, n: int) -> dict:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                group_id=None, max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    count = 0
    first_at, cpu0 = time.perf_counter(), time.process_time()
    try:
        while count < n:
            batch = await consumer.getmany(*tps, timeout_ms=1000, max_records=20_000)
            for records in batch.values():
                count += len(records)
        wall = time.perf_counter() - first_at
        cpu = time.process_time() - cpu0
    finally:
        await consumer.stop()
    return {"rate": count / wall, "cpu": cpu / wall}


def written(root: Path) -> int:
    total = 0
    for state in (root / "_state" / "pings").glob("p*.json"):
        try:
            total += json.loads(state.read_text())["next"]
        except (ValueError, KeyError, OSError):
            pass
    return total


def archiver_phase(bootstrap: str, records: list[tuple[bytes, bytes, int]], cpu: int | None,
                   run_dir: Path) -> dict:
    from confluent_kafka.admin import AdminClient, NewTopic

    run = uuid.uuid4().hex[:8]
    topics = {"YRD_TOPIC_PINGS": f"b{run}.pings", "YRD_TOPIC_ALERTS": f"b{run}.alerts",
              "YRD_TOPIC_INCIDENTS": f"b{run}.incidents",
              "YRD_TOPIC_PERMITS": f"b{run}.permits",
              "YRD_TOPIC_VEHICLE_TERMINALS": f"b{run}.vehicle-terminals",
              "YRD_TOPIC_PLATFORMS": f"b{run}.platforms",
              "YRD_TOPIC_PLATFORM_VEHICLES": f"b{run}.platform-vehicles"}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, PARTITIONS, 1)
                                       for t in topics.values()]).values():
        future.result(30)
    produce_all(bootstrap, topics["YRD_TOPIC_PINGS"], [(k, v) for k, v, _ in records], 120)
    raw = asyncio.run(_pinned(cpu, raw_consume(bootstrap, topics["YRD_TOPIC_PINGS"],
                                               len(records))))
    root = run_dir / f"archive-{run}"
    env = dict(os.environ) | topics | {
        "KAFKA_BOOTSTRAP": bootstrap, "YRD_ARCHIVE_DIR": str(root),
        "YRD_ARCHIVE_GROUP": f"bench-{run}", "YRD_ARCHIVE_FLUSH_S": "1",
        "YRD_ARCHIVE_FLUSH_ROWS": str(FLUSH_ROWS),
        "YRD_ARCHIVE_METRICS_PORT": str(free_port()), "YRD_APP_ID": f"bench-{run}",
        "YRD_LOG_LEVEL": "INFO"}
    command = [sys.executable, "-m", "yrd_hazmat.cli", "archive", "run"]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    log_path = run_dir / f"archive-{run}.log"
    proc = subprocess.Popen(command, env=env, stdout=log_path.open("wb"),
                            stderr=subprocess.STDOUT)
    try:
        first_at = None  # from its first fetch (after its start-up: index, register)
        deadline = time.monotonic() + 600
        cpu_at_first = 0.0
        while time.monotonic() < deadline:
            done = written(root)
            if first_at is None and "archive: reading" in log_path.read_text("utf-8", "replace"):
                first_at, cpu_at_first = time.perf_counter(), _cpu_seconds(proc.pid)
            if first_at is not None and done >= len(records):
                break
            if proc.poll() is not None:
                raise RuntimeError(f"the archiver exited {proc.returncode}")
            time.sleep(0.05)
        wall = time.perf_counter() - (first_at or time.perf_counter())
        used = _cpu_seconds(proc.pid) - cpu_at_first
        done = written(root)
    finally:
        proc.terminate()
        proc.wait(60)
    from yrd_hazmat.archive.read import Archive
    from yrd_hazmat.archive.store import Store

    con = Archive(Store.local_dir(str(root))).connect(
        sorted({d for d in _days(root)}))
    rows = con.sql("SELECT count(*) FROM pings").fetchall()[0][0]
    return {"rate": done / wall if wall else 0.0, "cpu": used / wall if wall else 0.0,
            "records": done, "rows": rows, "raw": raw, "wall": wall}


def _days(root: Path) -> list:
    from datetime import date
    return [date.fromisoformat(p.name[4:]) for p in (root / "pings").glob("day=*")]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _pinned(cpu: int | None, coro):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        return await coro
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def synthetic_day(root: str, trucks: int, interval_s: int, day) -> int:
    """One compacted day of ``trucks`` trucks, a fix every ``interval_s``: rows written."""
    import numpy as np
    import pyarrow as pa

    from yrd_hazmat.archive import layout
    from yrd_hazmat.archive.rows import PINGS, TS
    from yrd_hazmat.archive.store import Store
    from yrd_hazmat.core.timeutil import CHINA_TZ

    rng = np.random.default_rng(25)
    store = Store.local_dir(root)
    cities = [("SH", "310000", "上海市", 121.47, 31.23), ("JS", "320500", "苏州市", 120.62, 31.30),
              ("ZJ", "330100", "杭州市", 120.16, 30.27), ("AH", "340100", "合肥市", 117.23, 31.82)]
    start = int(datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ).timestamp() * 1000)
    steps = 86_400 // interval_s
    written = 0
    for partition in range(PARTITIONS):
        mine = np.arange(partition, trucks, PARTITIONS)
        n = len(mine) * steps
        truck = np.repeat(mine, steps)
        home = truck % len(cities)
        base_lon = np.array([c[3] for c in cities])[home]
        base_lat = np.array([c[4] for c in cities])[home]
        walk = rng.normal(0, 0.0015, size=(len(mine), steps, 2)).cumsum(axis=1).reshape(n, 2)
        ts = start + np.tile(np.arange(steps, dtype=np.int64) * interval_s * 1000, len(mine))
        keep = rng.random(n) > 0.02  # 2 % of fixes never came (gaps)
        drift = rng.random(n) < 0.00002  # a jump of half a degree
        lon = base_lon + walk[:, 0] + np.where(drift, 0.5, 0.0)
        lat = base_lat + walk[:, 1]
        bad = rng.random(n) < 0.01
        idx = np.flatnonzero(keep)
        plates = np.array([f"沪A{t:05d}" for t in mine], dtype=object)
        columns = {
            "vehicle_id": pa.array(np.repeat(plates, steps)[idx]),
            "ts": pa.array(ts[idx], pa.int64()).cast(TS), "lat": lat[idx], "lon": lon[idx],
            "speed_kmh": pa.array(rng.uniform(0, 90, n)[idx].astype(np.float32)),
            "heading": pa.array(rng.integers(0, 360, n)[idx].astype(np.int16)),
            "crs": pa.array(["WGS84"] * len(idx)), "alarm_flags": pa.nulls(len(idx), pa.uint32()),
            "status_flags": pa.nulls(len(idx), pa.uint32()),
            "road_class": pa.nulls(len(idx), pa.string()),
            "altitude_m": pa.nulls(len(idx), pa.int32()),
            "mileage_km": pa.nulls(len(idx), pa.float64()),
            "fix_valid": pa.array(np.ones(len(idx), dtype=bool)),
            "blind": pa.array(np.zeros(len(idx), dtype=bool)),
            "quality": pa.array([["bad_speed"] if b else [] for b in bad[idx]],
                                pa.list_(pa.string())),
            "alarm_extra": pa.nulls(len(idx), pa.string()),
            "raw_items": pa.nulls(len(idx), pa.string()),
            "province": pa.array(np.array([c[0] for c in cities], dtype=object)[home[idx]]),
            "city_code": pa.array(np.array([c[1] for c in cities], dtype=object)[home[idx]]),
            "city_name": pa.array(np.array([c[2] for c in cities], dtype=object)[home[idx]]),
            "carrier": pa.array(np.array([f"carrier-{t % 200}" for t in range(trucks)],
                                         dtype=object)[truck[idx]]),
            "partition": pa.array(np.full(len(idx), partition, dtype=np.int32)),
            "offset": pa.array(np.arange(len(idx), dtype=np.int64)),
            "received_at": pa.array(ts[idx] + 1500, pa.int64()).cast(TS)}
        table = pa.table(columns, schema=PINGS)
        store.put_table(layout.data_path("pings", day, "yrd.pings", partition, 0, len(idx) - 1,
                                         compacted=True), table)
        written += len(idx)
    return written


class PeakMemory:
    """The process's largest resident set while the block runs (sampled every 0.1 s)."""

    def __enter__(self) -> "PeakMemory":
        import threading

        self.bytes = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            with open("/proc/self/statm") as f:
                self.bytes = max(self.bytes, int(f.read().split()[1]) * page)
            if self._done.wait(0.1):
                return

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def assess_phase(trucks: int, interval_s: int, days: int = 1) -> dict:
    from datetime import date

    from yrd_hazmat.archive.read import Archive
    from yrd_hazmat.archive.store import Store
    from yrd_hazmat.assess.figures import compute_period
    from yrd_hazmat.core.timeutil import CHINA_TZ

    first = date(2026, 11, 1) if days > 1 else date(2026, 11, 12)
    with tempfile.TemporaryDirectory() as root:
        rows = sum(synthetic_day(root, trucks, interval_s, first + timedelta(days=d))
                   for d in range(days))
        size = sum(p.stat().st_size for p in Path(root).rglob("*.parquet"))
        registered = {f"沪A{t:05d}": f"carrier-{t % 200}" for t in range(trucks)}
        start = datetime(first.year, first.month, first.day, tzinfo=CHINA_TZ)
        began = time.perf_counter()
        with PeakMemory() as peak:
            figures = compute_period(Archive(Store.local_dir(root)), start,
                                     start + timedelta(days=days), f"{days} days", registered,
                                     kept_days=days)
        seconds = time.perf_counter() - began
    region = next(r for r in figures.rows if r["level"] == "region")
    return {"rows": rows, "bytes": size, "seconds": seconds, "peak_bytes": peak.bytes,
            "online": region["online"],
            "drift": region["drift_vehicles"], "completeness": region["completeness"]}


def main(argv: list[str] | None = None) -> int:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pings", type=int, default=200_000)
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--cpu", default=str(cores - 1) if cores > 1 else "none")
    parser.add_argument("--state-dir", type=Path, default=REPO / ".local" / "bench")
    parser.add_argument("--kafka-port", type=int, default=39092)
    parser.add_argument("--redis-port", type=int, default=36379)
    parser.add_argument("--assess-trucks", type=int, default=10_000)
    parser.add_argument("--assess-interval", type=int, default=60)
    parser.add_argument("--assess-month-interval", type=int, default=600,
                        help="also a whole month (30 days) of --assess-trucks trucks at one fix "
                             "every this many seconds, computed in one go (0: not)")
    parser.add_argument("--skip", default="", help="phases to leave out: core,archiver,assess")
    opts = parser.parse_args(argv)
    skip = set(filter(None, opts.skip.split(",")))
    cpu = None if opts.cpu == "none" else int(opts.cpu)
    print(f"archive benchmark: {opts.pings:,} pings of {opts.vehicles:,} trucks; measured on "
          f"CPU {cpu if cpu is not None else 'any'} of {cores} "
          f"({platform_module.processor() or platform_module.machine()}), "
          f"{datetime.now():%Y-%m-%d %H:%M}")
    lost = False
    if not {"core", "archiver"} <= skip:
        records = fleet_records(opts.pings, opts.vehicles)
    if "core" not in skip:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        core = core_phase(records)
        os.sched_setaffinity(0, set(range(cores)))
        print(f"core: {core['archive_rate']:,.0f} pings/s archived (rows + Parquet) on one "
              f"core | ceiling, decoding alone: {core['decode_rate']:,.0f}/s | on disk "
              f"{core['bytes_written']:.1f} B/ping as written ({core['files']} files), "
              f"{core['bytes_compacted']:.1f} B/ping compacted")
    if "archiver" not in skip:
        svc = load_services()
        with local_services(opts, svc) as addresses, \
                tempfile.TemporaryDirectory() as run_dir:
            result = archiver_phase(addresses["KAFKA_BOOTSTRAP"], records, cpu, Path(run_dir))
        raw = result["raw"]
        print(f"archiver: {result['rate']:,.0f} pings/s (CPU {result['cpu']:.0%}), "
              f"{result['records']:,} records written, {result['rows']:,} rows "
              f"| ceiling, a raw consumer on the same core: {raw['rate']:,.0f}/s "
              f"(CPU {raw['cpu']:.0%}) | needs 10,000/s")
        lost = result["records"] < len(records) or result["rows"] != len(records)
        if lost:
            print("LOST: the archive does not hold every ping", file=sys.stderr)
    if "assess" not in skip:
        a = assess_phase(opts.assess_trucks, opts.assess_interval)
        rate = a["rows"] / a["seconds"]
        month_rows = 10_000 * 8_640 * 30
        print(f"assessment: a day of {opts.assess_trucks:,} trucks, a fix every "
              f"{opts.assess_interval} s ({a['rows']:,} pings, {a['bytes'] / 1e6:,.0f} MB) in "
              f"{a['seconds']:.1f} s ({rate:,.0f} rows/s on {cores} cores, at most "
              f"{a['peak_bytes'] / 2**30:.1f} GiB resident) | a month of "
              f"10,000 trucks every 10 s ({month_rows / 1e9:.1f} billion pings) at that rate: "
              f"about {month_rows / rate / 3600:.1f} h | {a['online']:,} online, "
              f"{a['drift']:,} with drift, completeness {a['completeness']:.1%}")
        if opts.assess_month_interval:
            m = assess_phase(opts.assess_trucks, opts.assess_month_interval, days=30)
            print(f"assessment of a month: 30 days of {opts.assess_trucks:,} trucks, a fix "
                  f"every {opts.assess_month_interval} s ({m['rows']:,} pings, "
                  f"{m['bytes'] / 1e6:,.0f} MB) in {m['seconds']:.1f} s "
                  f"({m['rows'] / m['seconds']:,.0f} rows/s, at most "
                  f"{m['peak_bytes'] / 2**30:.1f} GiB resident; a day at a time) "
                  f"| {m['online']:,} online")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
