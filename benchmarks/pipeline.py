#!/usr/bin/env python3
"""End-to-end throughput and latency of the YRD Hazmat worker on the local broker.

    python benchmarks/pipeline.py [--pings N] [--vehicles V] [--rate R] [--duration S]
                                  [--json PATH]

One run starts Kafka and Redis with ``deploy/local/services.py`` (state dir
``.local/bench``, ports 39092/36379; stopped and wiped at the end unless
``KAFKA_BOOTSTRAP`` and ``REDIS_URL`` name running services), creates topics
with names unique to the run, produces N pings of V vehicles as fast as
possible, and then measures on that same backlog:

A. a raw aiokafka consumer reading the whole topic (``getmany``, no work);
B. a no-op Faust agent (``benchmarks/noop_faust.py``: the worker's Faust
   settings and batching, ``take_events(2000, within=0.1)`` by default, and
   nothing but counting);
C. the real worker (``python -m yrd_hazmat.cli worker``) draining the backlog,
   followed through its ``/metrics``;
D. with that worker caught up: pings produced at a fixed rate for
   ``--duration`` seconds, once per ``--rate`` (by default 0.25 and 0.5 times
   the rate measured in C), and the latency from each triggering ping's
   production to the receipt of its alert by a consumer (the ping's event
   time is its produce time, which the alert carries as ``ts``), plus the
   worker's own ``yrd_latency_from_arrival_seconds``.

The worker runs with the caller's ``YRD_*`` settings, except for what must
be unique to the run (app id, topics, Redis prefix, metrics port) and
``YRD_SPEEDING_MIN_DURATION_S`` (``--speeding-min-s``, 5 s), so that the
30-second latency phase sees SPEEDING alerts raised and cleared.

Throughput is counted from the first batch a consumer receives to the moment
it has the last record, without the records of that first batch, so the
start-up of clients and workers (group join, topic creation) is left out.
Every wait is bounded; child processes are stopped on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Self

import msgspec
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from yrd_hazmat.codec import encode
from yrd_hazmat.config import Settings
from yrd_hazmat.geo.corridors import CORRIDORS, Corridor
from yrd_hazmat.models import Alert, Ping
from yrd_hazmat.timeutil import from_ms

REPO = Path(__file__).resolve().parent.parent
NOOP_APP = Path(__file__).resolve().parent / "noop_faust.py"

BACKLOG_INTERVAL_S = 5.0
"""Event-time spacing of one vehicle's pings in the pre-produced backlog."""
SPEEDING_CYCLE_S = 30.0
SPEEDING_OVER_S = 15.0
"""A speeder drives over the limit for SPEEDING_OVER_S of every SPEEDING_CYCLE_S."""
SPEEDING_EXCESS_KMH = 20.0
"""Cruise speeds are 62-76 km/h on expressways (limit 80); speeders add this."""
SETTLE_S = 3.0
"""After the worker has processed every ping, how long to keep reading alerts."""
METRICS_POLL_S = 0.25
MIN_RELIABLE_S = 5.0
"""How often the worker's /metrics is read: each read costs the worker a few ms of CPU."""

FLEET_SERIES = "DFGHJK"
"""Plate series of the backlog fleet, then of each latency phase's fleet."""
PLATE_PREFIX = {
    "Shanghai": "沪A", "Suzhou": "苏E", "Wuxi": "苏B", "Changzhou": "苏D", "Zhenjiang": "苏L",
    "Nanjing": "苏A", "Jiaxing": "浙F", "Hangzhou": "浙A", "Shaoxing": "浙D", "Ningbo": "浙B",
    "Huzhou": "浙E", "Hefei": "皖A", "Wuhu": "皖B",
}


class BenchmarkError(RuntimeError):
    """A phase failed or did not finish in time."""


# --------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------


def rates_arg(text: str) -> list[str]:
    """``--rate``: comma-separated pings/s (``500``) or multiples of the drain rate (``0.5x``)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    for item in items:
        try:
            value = float(item.removesuffix("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a rate: {item!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"rates must be positive: {item!r}")
    if not items:
        raise argparse.ArgumentTypeError("no rate given")
    return items


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; defaults finish in a few minutes on 2 cores."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pings", type=int, default=60_000, help="backlog size N (default %(default)s)")
    p.add_argument("--vehicles", type=int, default=2_000,
                   help="vehicles V, in the backlog and in the latency phase (default %(default)s)")
    p.add_argument("--rate", type=rates_arg, default="0.25x,0.5x",
                   help="latency phases: comma-separated pings/s (e.g. 2000) or multiples of"
                        " the worker's measured drain rate (e.g. 0.5x); default %(default)s")
    p.add_argument("--duration", type=float, default=30.0,
                   help="seconds of each latency phase (default %(default)s)")
    p.add_argument("--speeders", type=float, default=0.1,
                   help="share of vehicles that speed (default %(default)s)")
    p.add_argument("--speeding-min-s", type=float, default=5.0,
                   help="worker's YRD_SPEEDING_MIN_DURATION_S (default %(default)s)")
    p.add_argument("--partitions", type=int, default=4, help="pings topic partitions")
    p.add_argument("--state-dir", type=Path, default=REPO / ".local" / "bench",
                   help="services' state and run logs (default .local/bench)")
    p.add_argument("--kafka-port", type=int, default=39092)
    p.add_argument("--redis-port", type=int, default=36379)
    p.add_argument("--timeout", type=float, default=240.0,
                   help="limit in seconds for each phase (default %(default)s)")
    p.add_argument("--raw-repeats", type=int, default=3,
                   help="read the backlog this many times with raw aiokafka, keep the median")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    if min(args.pings, args.vehicles, args.duration, args.raw_repeats) <= 0:
        p.error("--pings, --vehicles, --duration and --raw-repeats must be positive")
    if args.vehicles > 99_999:
        p.error("--vehicles is at most 99999 (5-digit plate numbers)")
    if len(args.rate) > len(FLEET_SERIES) - 1:
        p.error(f"at most {len(FLEET_SERIES) - 1} latency phases")
    return args


# --------------------------------------------------------------------------
# Services, run names and child processes
# --------------------------------------------------------------------------


def load_services() -> ModuleType:
    """``deploy/local/services.py``, imported by path (it is not a package)."""
    spec = importlib.util.spec_from_file_location("yrd_services", REPO / "deploy/local/services.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def local_services(opts: argparse.Namespace, svc: ModuleType) -> Iterator[dict[str, str]]:
    """Kafka and Redis addresses; services started here are stopped and wiped on exit."""
    started_here = "KAFKA_BOOTSTRAP" not in os.environ or "REDIS_URL" not in os.environ
    try:
        yield svc.up(opts.state_dir, kafka_port=opts.kafka_port, redis_port=opts.redis_port)
    finally:
        if started_here:
            svc.down(opts.state_dir, wipe=True)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Run:
    """Names unique to one benchmark run and the worker's environment."""

    id: str
    dir: Path
    env: dict[str, str]

    @property
    def bootstrap(self) -> str:
        return self.env["KAFKA_BOOTSTRAP"]

    @property
    def pings_topic(self) -> str:
        return self.env["YRD_TOPIC_PINGS"]

    @property
    def alerts_topic(self) -> str:
        return self.env["YRD_TOPIC_ALERTS"]

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env['YRD_METRICS_PORT']}/metrics"


def new_run(opts: argparse.Namespace, addresses: dict[str, str]) -> Run:
    """Unique app id, topics and Redis prefix; logs go to ``<state dir>/runs/<id>``."""
    run_id = datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    tag = f"bench{run_id.replace('-', '')}"
    env = dict(os.environ) | addresses | {
        "YRD_APP_ID": f"yrd-{tag}",
        "YRD_TOPIC_PINGS": f"{tag}.pings",
        "YRD_TOPIC_ALERTS": f"{tag}.alerts",
        "YRD_TOPIC_DEADLETTER": f"{tag}.deadletter",
        "YRD_TOPIC_PERMITS": f"{tag}.permits",
        "YRD_TOPIC_ZONES": f"{tag}.zones",
        "YRD_TOPIC_HANDOVERS": f"{tag}.handovers",
        "YRD_TOPIC_PARTITIONS": str(opts.partitions),
        "YRD_REDIS_PREFIX": tag,
        "YRD_METRICS_PORT": str(free_port()),
        "YRD_METRICS_HOST": "127.0.0.1",
        "YRD_SPEEDING_MIN_DURATION_S": str(opts.speeding_min_s),
    }
    run_dir = opts.state_dir / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    return Run(id=run_id, dir=run_dir, env=env)


class Child:
    """A child process in its own session, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.log_path = cwd / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check_alive(self) -> None:
        """Raise, with the end of its log, if the process has exited."""
        if self.proc.poll() is not None:
            raise BenchmarkError(
                f"{self.name} exited with {self.proc.returncode}; end of {self.log_path}:\n"
                + self.log_tail()
            )

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to the child's process group; SIGKILL if it lingers."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class MachineCPU:
    """Share of all cores busy (any process) while the block runs, from /proc/stat.

    The benchmark is meant for a quiet machine; this shows when it was not.
    """

    def __init__(self) -> None:
        self.share = float("nan")

    @staticmethod
    def _jiffies() -> tuple[int, int]:
        first_line = Path("/proc/stat").read_text().split("\n", 1)[0]
        # user nice system idle iowait irq softirq steal (guest time is inside user)
        fields = [int(v) for v in first_line.split()[1:9]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    def __enter__(self) -> Self:
        self._start = self._jiffies()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total = (now - then for now, then in zip(self._jiffies(), self._start))
        self.share = busy / total if total else float("nan")


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    """Call ``check`` until it returns something truthy; BenchmarkError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise BenchmarkError(f"timed out after {timeout:.0f} s waiting for {what}")


def raise_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so ``finally`` blocks stop children and services."""
    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


# --------------------------------------------------------------------------
# A synthetic fleet on the YRD expressways
# --------------------------------------------------------------------------


class Route:
    """A corridor's polyline with cumulative lengths, for cheap interpolation."""

    def __init__(self, corridor: Corridor) -> None:
        self.origin = corridor.origin
        self.lons = [p[0] for p in corridor.points]
        self.lats = [p[1] for p in corridor.points]
        self.cum_m = [0.0]
        self.headings: list[int] = []
        for (lon1, lat1), (lon2, lat2) in zip(corridor.points, corridor.points[1:]):
            dx = (lon2 - lon1) * 111_320.0 * math.cos(math.radians((lat1 + lat2) / 2))
            dy = (lat2 - lat1) * 110_540.0
            self.cum_m.append(self.cum_m[-1] + math.hypot(dx, dy))
            self.headings.append(int(math.degrees(math.atan2(dx, dy))) % 360)
        self.length_m = self.cum_m[-1]

    def at(self, distance_m: float) -> tuple[float, float, int]:
        """(lon, lat, heading) after driving ``distance_m``, turning round at the ends."""
        d = distance_m % (2 * self.length_m)
        backwards = d > self.length_m
        if backwards:
            d = 2 * self.length_m - d
        i = min(bisect_right(self.cum_m, d) - 1, len(self.headings) - 1)
        f = (d - self.cum_m[i]) / ((self.cum_m[i + 1] - self.cum_m[i]) or 1.0)
        lon = self.lons[i] + f * (self.lons[i + 1] - self.lons[i])
        lat = self.lats[i] + f * (self.lats[i + 1] - self.lats[i])
        heading = (self.headings[i] + 180) % 360 if backwards else self.headings[i]
        return lon, lat, heading


@dataclass(frozen=True)
class Truck:
    """One vehicle: where it drives, how fast, and whether it speeds."""

    vehicle_id: str
    route: Route
    start_m: float
    cruise_kmh: float
    speeder: bool
    phase_s: float

    def speed_kmh(self, elapsed_s: float) -> float:
        """Cruise speed; a speeder is over the limit part of every cycle."""
        over = self.speeder and (elapsed_s + self.phase_s) % SPEEDING_CYCLE_S < SPEEDING_OVER_S
        return self.cruise_kmh + (SPEEDING_EXCESS_KMH if over else 0.0)

    def ping(self, ts_ms: int, elapsed_s: float) -> Ping:
        """The truck's ping at event time ``ts_ms``, ``elapsed_s`` into its trip."""
        lon, lat, heading = self.route.at(self.start_m + self.cruise_kmh / 3.6 * elapsed_s)
        return Ping(
            vehicle_id=self.vehicle_id,
            ts=from_ms(ts_ms),
            lat=round(lat, 6),
            lon=round(lon, 6),
            speed_kmh=round(self.speed_kmh(elapsed_s), 1),
            heading=heading,
            status_flags=0b11,  # ACC on, position fixed
            road_class="expressway",
        )


def make_fleet(size: int, speeders: float, seed: int, series: str) -> list[Truck]:
    """``size`` trucks spread over the YRD corridors (both directions).

    Plates look like new-energy plates, 沪AD00042: the letter after the city
    code is the fleet's ``series``, so every fleet of a run has its own vehicles.
    """
    rng = np.random.default_rng(seed)
    routes = [Route(c) for c in CORRIDORS] + [Route(c.reversed()) for c in CORRIDORS]
    fleet = []
    for i in range(size):
        route = routes[i % len(routes)]
        fleet.append(Truck(
            vehicle_id=f"{PLATE_PREFIX[route.origin]}{series}{i:05d}",
            route=route,
            start_m=float(rng.uniform(0, route.length_m)),
            cruise_kmh=round(float(rng.uniform(62.0, 76.0)), 1),
            speeder=i < round(size * speeders),
            phase_s=float(rng.uniform(0, SPEEDING_CYCLE_S)),
        ))
    return fleet


def backlog_records(opts: argparse.Namespace) -> list[tuple[bytes, bytes]]:
    """N (key, value) records: the fleet's pings in event-time order, ending a minute ago."""
    fleet = make_fleet(opts.vehicles, opts.speeders, opts.seed, FLEET_SERIES[0])
    per_vehicle = math.ceil(opts.pings / len(fleet))
    start_ms = int((time.time() - 60.0 - per_vehicle * BACKLOG_INTERVAL_S) * 1000)
    records: list[tuple[bytes, bytes]] = []
    for step in range(per_vehicle):
        elapsed = step * BACKLOG_INTERVAL_S
        ts_ms = start_ms + int(elapsed * 1000)
        for truck in fleet:
            if len(records) == opts.pings:
                return records
            records.append((truck.vehicle_id.encode(), encode(truck.ping(ts_ms, elapsed))))
    return records


# --------------------------------------------------------------------------
# Kafka helpers
# --------------------------------------------------------------------------


def confluent() -> ModuleType:
    """confluent-kafka (the project's test extra), a client independent of the worker's."""
    try:
        import confluent_kafka
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BenchmarkError("confluent-kafka is needed: pip install -e '.[test]'") from exc
    return confluent_kafka


def create_topics(run: Run) -> None:
    """The contract's topics for this run, created by ``yrd-hazmat topics`` as users do."""
    subprocess.run(
        [sys.executable, "-m", "yrd_hazmat.cli", "topics"], env=run.env, cwd=run.dir,
        capture_output=True, text=True, timeout=120, check=True,
    )


def new_producer(bootstrap: str, linger_ms: int) -> Any:
    """A librdkafka producer partitioning keys like the Java clients and aiokafka."""
    return confluent().Producer({
        "bootstrap.servers": bootstrap,
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "linger.ms": linger_ms,
        "queue.buffering.max.messages": 1_000_000,
    })


def produce_backlog(run: Run, records: list[tuple[bytes, bytes]], timeout: float) -> dict:
    """Produce every record as fast as possible; returns the produce throughput."""
    producer = new_producer(run.bootstrap, linger_ms=20)
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    started = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(run.pings_topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(timeout)
    seconds = time.perf_counter() - started
    if left or failures:
        raise BenchmarkError(f"backlog not produced: {left} undelivered, errors {failures[:3]}")
    return {"records": len(records), "seconds": seconds, "rate": len(records) / seconds,
            "bytes": sum(len(v) for _, v in records)}


# --------------------------------------------------------------------------
# Throughput phases
# --------------------------------------------------------------------------


@dataclass
class Throughput:
    """Records counted from the first batch received to the last record."""

    records: int
    first_batch: int
    seconds: float
    cpu_s: float
    batches: int
    alerts: dict[str, int] | None = None

    @property
    def rate(self) -> float:
        """Records per second after the first batch (start-up excluded)."""
        if self.seconds <= 0 or self.records <= self.first_batch:
            return float("nan")  # everything came in the first batch: too few records
        return (self.records - self.first_batch) / self.seconds

    @property
    def cpu_share(self) -> float:
        """CPU time of the consuming process over wall time (1.0 = one core)."""
        return self.cpu_s / self.seconds if self.seconds > 0 else float("nan")

    @property
    def mean_batch(self) -> float:
        """Records per batch (per non-empty ``getmany`` for the raw consumer)."""
        return self.records / self.batches if self.batches else float("nan")

    def as_dict(self) -> dict:
        return asdict(self) | {
            "rate": self.rate, "cpu_share": self.cpu_share, "mean_batch": self.mean_batch,
        }


async def _raw_consume(run: Run, partitions: int, expected: int, timeout: float) -> Throughput:
    """Read ``expected`` records from the start of the pings topic, counting only."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=run.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(run.pings_topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        count = first_batch = batches = 0
        first_t = first_cpu = 0.0
        deadline = time.monotonic() + timeout
        while count < expected:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"raw consumer read {count}/{expected} in {timeout:.0f} s")
            got = sum(len(records) for records in (await consumer.getmany(timeout_ms=500)).values())
            if got and not count:
                first_t, first_cpu, first_batch = time.perf_counter(), time.process_time(), got
            count += got
            batches += bool(got)
        return Throughput(count, first_batch, time.perf_counter() - first_t,
                          time.process_time() - first_cpu, batches)
    finally:
        await consumer.stop()


def raw_aiokafka(run: Run, opts: argparse.Namespace, expected: int) -> tuple[Throughput, list]:
    """Ceiling A: aiokafka reading the whole pings topic in this process, no work.

    The read is short, so it is repeated; the run with the median rate is kept.
    """
    runs = [asyncio.run(_raw_consume(run, opts.partitions, expected, opts.timeout))
            for _ in range(opts.raw_repeats)]
    ranked = sorted(runs, key=lambda t: (math.isnan(t.rate), t.rate))
    return ranked[len(ranked) // 2], [t.rate for t in runs]


def worker_settings(run: Run) -> dict[str, Any]:
    """The settings the worker reads from the run's environment (``yrd-hazmat settings``)."""
    out = subprocess.run(
        [sys.executable, "-m", "yrd_hazmat.cli", "settings"], env=run.env, cwd=run.dir,
        capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(out.stdout)


def noop_faust(run: Run, opts: argparse.Namespace, expected: int) -> Throughput:
    """Ceiling B: the no-op Faust agent as its own worker process."""
    result_path = run.dir / "noop-result.json"
    batching = worker_settings(run)
    env = run.env | {
        "BENCH_NOOP_BATCH_MAX": str(batching["batch_max"]),
        "BENCH_NOOP_BATCH_WITHIN_S": str(batching["batch_within_s"]),
        "BENCH_NOOP_BROKER": Settings(kafka_bootstrap=run.bootstrap).faust_broker,
        "BENCH_NOOP_APP_ID": f"bench-noop-{run.id}",
        "BENCH_NOOP_TOPIC": run.pings_topic,
        "BENCH_NOOP_PARTITIONS": str(opts.partitions),
        "BENCH_NOOP_EXPECTED": str(expected),
        "BENCH_NOOP_RESULT": str(result_path),
    }
    argv = [sys.executable, str(NOOP_APP), "worker", "--loglevel", "warn"]
    with Child("noop-faust", argv, env, run.dir) as child:
        def done() -> dict | None:
            child.check_alive()
            return json.loads(result_path.read_text()) if result_path.exists() else None

        result = wait_for("the no-op Faust agent", done, opts.timeout)
    return Throughput(result["count"], result["first_batch_size"],
                      result["last_t"] - result["first_t"], result["cpu_s"], result["batches"])


def scrape(url: str) -> dict[str, float]:
    """The worker's metrics, ``name{label="v",...}`` -> value ({} if not answering)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return samples


def processed(samples: dict[str, float]) -> float:
    """Pings fully through the rules: accepted plus dead-lettered."""
    rejected = sum(v for k, v in samples.items() if k.startswith("yrd_pings_rejected_total"))
    return samples.get("yrd_pings_accepted_total", 0.0) + rejected


def start_worker(run: Run) -> Child:
    """The real worker, started as a user would; its Faust data dir lands in the run dir."""
    argv = [sys.executable, "-m", "yrd_hazmat.cli", "worker", "--loglevel", "info"]
    return Child("worker", argv, run.env, run.dir)


def worker_drain(run: Run, worker: Child, expected: int, timeout: float) -> Throughput:
    """C: from the worker's first consumed batch until it has processed the whole backlog."""
    def first_batch() -> tuple[float, float, float] | None:
        worker.check_alive()
        consumed = scrape(run.metrics_url).get("yrd_pings_consumed_total", 0.0)
        return (time.perf_counter(), worker.cpu_seconds(), consumed) if consumed else None

    def finished() -> tuple[float, float, dict[str, float]] | None:
        worker.check_alive()
        samples = scrape(run.metrics_url)
        done = processed(samples) >= expected
        return (time.perf_counter(), worker.cpu_seconds(), samples) if done else None

    t0, cpu0, consumed0 = wait_for("the worker's first batch", first_batch, timeout,
                                   METRICS_POLL_S)
    t1, cpu1, samples = wait_for("the worker to drain the backlog", finished, timeout,
                                 METRICS_POLL_S)
    batches = int(samples.get("yrd_batch_size_count", 0))
    return Throughput(expected, int(consumed0), t1 - t0, cpu1 - cpu0, batches,
                      alerts_by_type(samples))


def alerts_by_type(samples: dict[str, float]) -> dict[str, int]:
    """Alerts the worker has published so far, by type and state (from ``yrd_alerts_total``)."""
    counts: Counter[str] = Counter()
    for key, value in samples.items():
        if key.startswith("yrd_alerts_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', key))
            counts[f"{labels.get('type')} {labels.get('state')}"] += int(value)
    return dict(counts.most_common())


# --------------------------------------------------------------------------
# Latency phase
# --------------------------------------------------------------------------


class AlertCollector(threading.Thread):
    """Reads the alerts topic from its current end, stamping each record on receipt."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        super().__init__(name="alert-collector", daemon=True)
        ck = confluent()
        self.consumer = ck.Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-alerts-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
        })
        try:
            ends = [self.consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)[1]
                    for p in range(partitions)]
        except BaseException:
            self.consumer.close()
            raise
        self.consumer.assign([ck.TopicPartition(topic, p, end) for p, end in enumerate(ends)])
        self.received: list[tuple[float, bytes]] = []
        self.errors: list[str] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                msg = self.consumer.poll(0.05)
                if msg is None:
                    continue
                if msg.error():
                    self.errors.append(str(msg.error()))
                else:
                    self.received.append((time.time(), msg.value()))
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join(15)


@dataclass
class Paced:
    """What the paced producer did: per (vehicle, event ms), the wall time produced."""

    sent: int = 0
    seconds: float = 0.0
    produced_at: dict[tuple[str, int], float] = field(default_factory=dict)
    max_behind_s: float = 0.0


def produce_paced(run: Run, fleet: list[Truck], rate: float, duration: float) -> Paced:
    """Produce ``rate`` pings/s for ``duration`` s, round-robin over the fleet.

    Each ping's event time is its produce time (ms), so the alert it triggers
    carries in ``ts`` the moment the ping was handed to the producer.
    """
    producer = new_producer(run.bootstrap, linger_ms=5)
    total = int(rate * duration)
    out = Paced()
    start_wall, start = time.time(), time.perf_counter()
    while out.sent < total:
        due = start + out.sent / rate
        now = time.perf_counter()
        if now < due:
            time.sleep(min(due - now, 0.005))
            producer.poll(0)
            continue
        out.max_behind_s = max(out.max_behind_s, now - due)
        truck = fleet[out.sent % len(fleet)]
        wall = time.time()
        ts_ms = int(wall * 1000)
        ping = truck.ping(ts_ms, wall - start_wall)
        producer.produce(run.pings_topic, key=truck.vehicle_id.encode(), value=encode(ping))
        out.produced_at[(truck.vehicle_id, ts_ms)] = wall
        out.sent += 1
    out.seconds = time.perf_counter() - start
    if producer.flush(30):
        raise BenchmarkError("latency-phase pings left undelivered")
    return out


def percentiles(values: list[float], qs: tuple[float, ...] = (50, 99)) -> dict[str, float]:
    """pXX of the values and their max (NaN when there are none)."""
    if not values:
        return {f"p{q:g}": float("nan") for q in qs} | {"max": float("nan")}
    arr = np.asarray(values)
    return {f"p{q:g}": float(np.percentile(arr, q)) for q in qs} | {"max": float(arr.max())}


def histogram_quantile(q: float, before: dict[str, float], after: dict[str, float],
                       name: str) -> float:
    """Prometheus-style quantile of the observations made between two scrapes."""
    prefix = f'{name}_bucket{{le="'
    buckets = sorted(
        (float(key[len(prefix):-2]), value - before.get(key, 0.0))
        for key, value in after.items() if key.startswith(prefix)
    )
    if not buckets or buckets[-1][1] <= 0:
        return float("nan")
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(upper):
                return lower  # beyond the largest finite bucket: report its bound
            return lower + (upper - lower) * (rank - below) / ((cumulative - below) or 1.0)
        lower, below = upper, cumulative
    return lower


def alert_latencies(collector: AlertCollector, paced: Paced) -> dict:
    """Ping-produced-to-alert-received latencies, split at the worker's batch start."""
    total, queued, processing = [], [], []
    unmatched = 0
    types: Counter[str] = Counter()
    for received, value in collector.received:
        alert = msgspec.json.decode(value, type=Alert)
        key = (alert.vehicle_id, round(alert.ts.timestamp() * 1000))
        produced = paced.produced_at.get(key)
        if produced is None:
            unmatched += 1
            continue
        types[f"{alert.type} {alert.state.value}"] += 1
        total.append(received - produced)
        queued.append(alert.emitted_at.timestamp() - produced)
        processing.append(received - alert.emitted_at.timestamp())
    return {
        "alerts": len(total),
        "alert_types": dict(types.most_common()),
        "unmatched": unmatched,
        "end_to_end_s": percentiles(total),
        "to_batch_start_s": percentiles(queued),
        "batch_start_to_received_s": percentiles(processing),
    }


def latency_phase(run: Run, opts: argparse.Namespace, worker: Child, rate: float,
                  backlog: int, series: str) -> dict:
    """D: steady load on the caught-up worker; alert latency and the worker's own histogram.

    ``backlog`` is how many pings the worker has been given before this phase.
    """
    fleet = make_fleet(latency_fleet_size(opts.vehicles, rate), opts.speeders,
                       opts.seed + ord(series), series)
    before = scrape(run.metrics_url)
    collector = AlertCollector(run.bootstrap, run.alerts_topic, opts.partitions)
    collector.start()
    try:
        cpu0 = worker.cpu_seconds()
        paced = produce_paced(run, fleet, rate, opts.duration)
        produced_t = time.perf_counter()
        worker_cpu_share = (worker.cpu_seconds() - cpu0) / paced.seconds
        lag_at_end = backlog + paced.sent - processed(scrape(run.metrics_url))

        def caught_up() -> bool:
            worker.check_alive()
            return processed(scrape(run.metrics_url)) >= backlog + paced.sent

        wait_for("the worker to process the latency-phase pings", caught_up, opts.timeout,
                 METRICS_POLL_S)
        catch_up_s = time.perf_counter() - produced_t
        time.sleep(SETTLE_S)
    finally:
        collector.stop()
    after = scrape(run.metrics_url)
    hist = "yrd_latency_from_arrival_seconds"
    batches = after.get("yrd_batch_size_count", 0) - before.get("yrd_batch_size_count", 0)
    return alert_latencies(collector, paced) | {
        "vehicles": len(fleet),
        "pings": paced.sent,
        "seconds": paced.seconds,
        "target_rate": rate,
        "achieved_rate": paced.sent / paced.seconds,
        "producer_max_behind_s": paced.max_behind_s,
        "worker_lag_at_end_pings": lag_at_end,
        "worker_catch_up_s": catch_up_s,
        "worker_mean_batch": paced.sent / batches if batches else float("nan"),
        "worker_cpu_share": worker_cpu_share,
        "consumer_errors": collector.errors[:5],
        "worker_arrival_histogram_s": {
            "p50": histogram_quantile(0.50, before, after, hist),
            "p99": histogram_quantile(0.99, before, after, hist),
        },
    }


def latency_fleet_size(vehicles: int, rate: float) -> int:
    """V, or fewer so that each vehicle pings at least every 4 s and speeders raise alerts.

    A speeding stretch lasts SPEEDING_OVER_S (15 s); with pings further apart
    than the minimum duration it would rarely hold two over-the-limit pings.
    """
    return max(1, min(vehicles, math.ceil(rate * 4)))


def resolve_rates(opts: argparse.Namespace, drain: Throughput) -> list[float]:
    """The latency phases' rates: as given, or ``Nx`` times the worker's drain rate."""
    rates = []
    for item in opts.rate:
        if item.endswith("x"):
            rates.append(max(20.0, round(float(item[:-1]) * drain.rate, -1)))
        else:
            rates.append(float(item))
    return rates


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def machine_info(svc: ModuleType) -> dict[str, Any]:
    """CPU, cores, memory, load, software versions, code revision and the date of the run."""
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = int(next(line.split()[1] for line in meminfo.splitlines()
                      if line.startswith("MemTotal")))

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "os": platform.platform(),
        "python": platform.python_version(),
        "kafka": svc.kafka_version(),
        "faust-streaming": version("faust-streaming"),
        "aiokafka": version("aiokafka"),
        "redis-py": version("redis"),
        "hiredis": version("hiredis"),
        "confluent-kafka": f"{version('confluent-kafka')} "
                           f"(librdkafka {confluent().libversion()[0]})",
        "redis-server": command_output(["redis-server", "--version"], "v="),
        "git": command_output(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
    }


def command_output(argv: list[str], field_prefix: str | None = None) -> str:
    """A command's output (or one ``prefix=value`` word of it); ``-`` if it cannot run."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                             check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "-"
    if field_prefix:
        return next((w[len(field_prefix):] for w in out.split() if w.startswith(field_prefix)), out)
    return out or "-"


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:,.0f} ms"


def ratio(x: dict[str, Any], y: dict[str, Any]) -> float:
    """x's rate over y's (NaN when y has none)."""
    return x["rate"] / y["rate"] if y["rate"] and not math.isnan(y["rate"]) else float("nan")


def throughput_rows(results: dict[str, Any]) -> list[str]:
    """Table rows of the three throughput figures and their ratios."""
    t = results["throughput"]
    a, b, c = t["raw_aiokafka"], t["noop_faust"], t["worker"]
    settings = results["run"]["worker_settings"]
    batching = f"{settings['batch_max']}/{settings['batch_within_s']:g}s"
    header = f"{'throughput (same backlog)':<46}{'pings/s':>9}{'seconds':>9}{'CPU':>6}{'batch':>7}"
    rows = [header]
    for label, x in (("A  raw aiokafka consumer (getmany, median)", a),
                     (f"B  no-op Faust agent (take_events {batching})", b),
                     ("C  real worker (yrd-hazmat worker)", c)):
        rows.append(f"{label:<46}{x['rate']:>9,.0f}{x['seconds']:>9.2f}{x['cpu_share']:>6.0%}"
                    f"{x['mean_batch']:>7,.0f}")
    rows.append(f"{'   ratio C/B (worker / no-op Faust)':<46}{ratio(c, b):>9.2f}")
    rows.append(f"{'   ratio C/A (worker / raw aiokafka)':<46}{ratio(c, a):>9.3f}")
    rows.append(f"   raw aiokafka reads: {', '.join(f'{r:,.0f}' for r in a['all_rates'])} pings/s;"
                " CPU = the consuming process (100% = one core)")
    if min(b["seconds"], c["seconds"]) < MIN_RELIABLE_S:
        rows.append(f"   NOTE: B or C took under {MIN_RELIABLE_S:g} s, too short to be reliable "
                    f"(the worker's /metrics is read every {METRICS_POLL_S:g} s): use more --pings")
    if c.get("alerts"):
        rows.append("   worker alerts in C: " + alert_mix(c["alerts"]))
    rows.append("   all cores busy (any process) during A, B, C, D: "
                + ", ".join(f"{v:.0%}" for v in results["machine_cpu_busy"].values()))
    return rows


def latency_rows(results: dict[str, Any]) -> list[str]:
    """Table rows of the steady-state latency phases, one line per rate and table."""
    o, phases = results["options"], results["latency"]
    rows = [
        (f"latency, steady state: {o['duration']:g} s per rate, {o['speeders']:.0%} of vehicles "
         f"speeding, SPEEDING after {o['speeding_min_s']:g} s over the limit"),
        f"{'ping produced -> alert received':<46}{'p50':>10}{'p99':>10}{'max':>10}{'alerts':>8}",
    ]
    for lat in phases:
        e2e = lat["end_to_end_s"]
        rows.append(f"{phase_label(lat):<46}{ms(e2e['p50']):>10}{ms(e2e['p99']):>10}"
                    f"{ms(e2e['max']):>10}{lat['alerts']:>8,}")
    rows.append(f"{'where it goes, p50 / p99':<30}{'to batch start':>16}{'batch -> alert':>16}"
                f"{'worker hist':>16}{'CPU':>6}{'batch':>7}{'lag@end':>9}")
    for lat in phases:
        hist = lat["worker_arrival_histogram_s"]
        rows.append(
            f"{phase_label(lat).split(',')[0]:<30}{pair(lat['to_batch_start_s']):>16}"
            f"{pair(lat['batch_start_to_received_s']):>16}{pair(hist):>16}"
            f"{lat['worker_cpu_share']:>6.0%}{lat['worker_mean_batch']:>7,.0f}"
            f"{lat['worker_lag_at_end_pings']:>9,.0f}"
        )
    rows.append("   to batch start: ping produced -> the worker starts the batch holding it "
                "(alert emitted_at); worker hist: yrd_latency_from_arrival_seconds, "
                "bucket-interpolated; lag@end: pings not yet processed when production ended")
    for lat in phases:
        rows.append(f"   alerts at {lat['target_rate']:,.0f}/s: {alert_mix(lat['alert_types'])}; "
                    f"{lat['unmatched']} unmatched")
        if not kept_up(lat):
            rows.append(f"   NOTE: at {lat['target_rate']:,.0f}/s the worker did not keep up: "
                        "these latencies include a growing queue, not a steady state")
    return rows


def phase_label(lat: dict[str, Any]) -> str:
    """``at 500/s, 2,000 vehicles``."""
    return f"  at {lat['achieved_rate']:,.0f}/s, {lat['vehicles']:,} vehicles"


def pair(stats: dict[str, float]) -> str:
    """``p50 / p99`` in milliseconds."""
    if math.isnan(stats["p50"]):
        return "-"
    return f"{stats['p50'] * 1000:,.0f} / {stats['p99'] * 1000:,.0f}"


def alert_mix(counts: dict[str, int]) -> str:
    """``TYPE state: n, ...`` (or ``none``)."""
    return ", ".join(f"{kind}: {n:,}" for kind, n in counts.items()) or "none"


def kept_up(lat: dict[str, Any]) -> bool:
    """Whether the worker was less than 2 s of pings behind when production ended."""
    return lat["worker_lag_at_end_pings"] < 2 * lat["target_rate"]


def report(results: dict[str, Any]) -> str:
    """The human-readable table of one run."""
    m, o, produced = results["machine"], results["options"], results["produce"]
    rows = [
        f"YRD Hazmat pipeline benchmark, {m['date']} (git {m['git']})",
        (f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, "
         f"load {m['load_avg_1m_at_start']} at start, {m['load_avg_1m_at_end']} at end; "
         f"{m['os']}"),
        (f"python {m['python']}, Kafka {m['kafka']}, faust-streaming {m['faust-streaming']}, "
         f"aiokafka {m['aiokafka']}, redis-py {m['redis-py']} (hiredis {m['hiredis']}), "
         f"redis-server {m['redis-server']}, confluent-kafka {m['confluent-kafka']}"),
        (f"backlog: {o['pings']:,} pings of {o['vehicles']:,} vehicles, {o['partitions']} "
         f"partitions, {produced['bytes'] / o['pings']:.0f} B/ping; produced in "
         f"{produced['seconds']:.1f} s ({produced['rate']:,.0f} pings/s, confluent-kafka)"),
        "",
        *throughput_rows(results),
        "",
        *latency_rows(results),
    ]
    return "\n".join(rows)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def latency_phases(run: Run, opts: argparse.Namespace, worker: Child,
                   drain: Throughput) -> list[dict]:
    """D, once per rate, each with a fleet of its own."""
    phases: list[dict] = []
    given = opts.pings
    for series, rate in zip(FLEET_SERIES[1:], resolve_rates(opts, drain)):
        say(f"D: latency, {rate:g} pings/s for {opts.duration:g} s")
        phases.append(latency_phase(run, opts, worker, rate, given, series))
        given += phases[-1]["pings"]
    return phases


def run_benchmark(opts: argparse.Namespace, svc: ModuleType) -> dict[str, Any]:
    """Every phase, in order, on one set of services; returns the results."""
    results: dict[str, Any] = {"options": {k: str(v) if isinstance(v, Path) else v
                                           for k, v in vars(opts).items()}}
    results["machine"] = machine_info(svc)
    with local_services(opts, svc) as addresses:
        run = new_run(opts, addresses)
        results["run"] = {"id": run.id, "logs": str(run.dir),
                          "worker_settings": worker_settings(run)}
        try:
            say(f"run {run.id}: creating topics, generating {opts.pings:,} pings")
            create_topics(run)
            records = backlog_records(opts)
            results["produce"] = produce_backlog(run, records, opts.timeout)
            del records
            say(f"produced the backlog in {results['produce']['seconds']:.1f} s")
            busy = {name: MachineCPU() for name in ("A", "B", "C", "D")}
            say(f"A: raw aiokafka consumer, {opts.raw_repeats} reads")
            with busy["A"]:
                raw, raw_rates = raw_aiokafka(run, opts, opts.pings)
            say("B: no-op Faust agent")
            with busy["B"]:
                noop = noop_faust(run, opts, opts.pings)
            with start_worker(run) as worker:
                say(f"C: real worker (pid {worker.proc.pid}) draining the backlog")
                with busy["C"]:
                    drain = worker_drain(run, worker, opts.pings, opts.timeout)
                with busy["D"]:
                    results["latency"] = latency_phases(run, opts, worker, drain)
            results["throughput"] = {
                "raw_aiokafka": raw.as_dict() | {"all_rates": raw_rates},
                "noop_faust": noop.as_dict(),
                "worker": drain.as_dict(),
            }
            t = results["throughput"]
            results["ratios"] = {
                "worker_over_noop_faust": ratio(t["worker"], t["noop_faust"]),
                "worker_over_raw_aiokafka": ratio(t["worker"], t["raw_aiokafka"]),
            }
            results["machine_cpu_busy"] = {name: cpu.share for name, cpu in busy.items()}
            results["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
        finally:
            for data_dir in run.dir.glob("*-data"):
                shutil.rmtree(data_dir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    raise_on_sigterm()
    svc = load_services()
    try:
        results = run_benchmark(opts, svc)
    except (BenchmarkError, svc.ServiceError) as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted; child processes and services were stopped")
        return 130
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        say(f"results written to {opts.json}")
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
