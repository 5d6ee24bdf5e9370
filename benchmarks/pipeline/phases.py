"""The throughput phases, all reading the same backlog from the start of the pings topic.

- A  raw aiokafka consumer in this process (``getmany`` of at most ``YRD_BATCH_MAX``
     records, as the worker's consumer is configured; no work): what the broker and
     the client library can deliver;
- B0 stock Faust no-op agent (``benchmarks/noop_faust.py``, ``kafka://``,
     one event per record, ``take_events``);
- B1 no-op agent of the worker's design (``benchmarks/noop_batch.py``,
     ``yrdkafka://``, one event per fetched partition batch, checkpoints);
- C  the real worker (``yrd-hazmat worker``) draining the backlog, followed
     through its ``/metrics``; its resident size before and after.

Cold start is excluded in every phase: the clock stops at the backlog's last
record and starts, for A, B0 and B1, once the consumer has read the first
round (``skip`` = V records, the size of one ping per truck), and for C once the
worker holds every truck (see :func:`worker_drain`); what was read before is
not counted. The worker's cold start (group join, table recovery, the first
sight of every truck: its permit compiled, its state created) is reported on
its own line.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from yrd_hazmat.config import Settings

from .services import (
    BENCHMARKS, METRICS_POLL_S, START_QUIET_S, STALL_S, BenchmarkError, Child, Run, Worker,
    alerts_by_type, metric_sum, processed, wait_for,
)


@dataclass
class Throughput:
    """Records counted once the clock started, until the last one."""

    counted: int
    seconds: float
    cpu_s: float
    batches: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Records per second with the cold start excluded."""
        if self.seconds <= 0 or self.counted <= 0:
            return float("nan")  # everything came at once: too few records
        return self.counted / self.seconds

    @property
    def cpu_share(self) -> float:
        """CPU time of the consuming process over wall time (1.0 = one core)."""
        return self.cpu_s / self.seconds if self.seconds > 0 else float("nan")

    @property
    def mean_batch(self) -> float:
        """Records per batch (per non-empty ``getmany`` for the raw consumer)."""
        return self.counted / self.batches if self.batches else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "rate": self.rate, "cpu_share": self.cpu_share, "mean_batch": self.mean_batch,
        }


# --------------------------------------------------------------------------
# A: raw aiokafka
# --------------------------------------------------------------------------


async def _raw_consume(run: Run, partitions: int, expected: int, skip: int, max_records: int,
                       timeout: float) -> Throughput:
    """Read ``expected`` records from the start of the pings topic, counting only, at most
    ``max_records`` per ``getmany`` (the worker's ``YRD_BATCH_MAX``)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=run.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(run.pings_topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        count = batches = 0
        start_count: int | None = None
        t0 = cpu0 = 0.0
        deadline = time.monotonic() + timeout
        while count < expected:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"raw consumer read {count}/{expected} in {timeout:.0f} s")
            got = sum(len(records) for records in (await consumer.getmany(
                timeout_ms=500, max_records=max_records)).values())
            count += got
            if start_count is None:
                if count >= skip:
                    start_count, t0, cpu0 = count, time.perf_counter(), time.process_time()
            elif got:
                batches += 1
        return Throughput(count - (start_count or count), time.perf_counter() - t0,
                          time.process_time() - cpu0, batches)
    finally:
        await consumer.stop()


def raw_aiokafka(run: Run, partitions: int, expected: int, skip: int, max_records: int,
                 repeats: int, timeout: float) -> Throughput:
    """A: aiokafka reading the whole pings topic in this process, no work.

    The read is short, so it is repeated; the run with the median rate is kept
    (all rates in ``extra["all_rates"]``).
    """
    runs = [asyncio.run(_raw_consume(run, partitions, expected, skip, max_records, timeout))
            for _ in range(repeats)]
    ranked = sorted(runs, key=lambda t: (math.isnan(t.rate), t.rate))
    kept = ranked[len(ranked) // 2]
    kept.extra["all_rates"] = [t.rate for t in runs]
    return kept


# --------------------------------------------------------------------------
# B0, B1: no-op Faust agents
# --------------------------------------------------------------------------


def noop_agent(run: Run, script: str, name: str, partitions: int, expected: int, skip: int,
               settings: dict[str, Any], timeout: float) -> Throughput:
    """B0 / B1: a no-op agent (``benchmarks/<script>``) as its own worker process, in a
    consumer group of its own, reading the pings topic from the start."""
    result_path = run.dir / f"{name}-result.json"
    env = run.env | {
        "BENCH_NOOP_BATCH_MAX": str(settings["batch_max"]),
        "BENCH_NOOP_BATCH_WITHIN_S": "0.1",
        "BENCH_NOOP_CHECKPOINT_S": str(settings.get("checkpoint_s", 1.0)),
        "BENCH_NOOP_BROKER": Settings(kafka_bootstrap=run.bootstrap).faust_broker,
        "BENCH_NOOP_APP_ID": f"{run.tag}-{name}",
        "BENCH_NOOP_TOPIC": run.pings_topic,
        "BENCH_NOOP_PARTITIONS": str(partitions),
        "BENCH_NOOP_EXPECTED": str(expected),
        "BENCH_NOOP_SKIP": str(skip),
        "BENCH_NOOP_RESULT": str(result_path),
    }
    argv = [sys.executable, str(BENCHMARKS / script), "worker", "--loglevel", "warn"]
    with Child(name, argv, env, run.dir) as child:
        def done() -> dict | None:
            child.check_alive()
            return json.loads(result_path.read_text()) if result_path.exists() else None

        result = wait_for(f"the no-op agent {script}", done, timeout)
    return Throughput(result["counted"], result["seconds"], result["cpu_s"], result["batches"])


# --------------------------------------------------------------------------
# Warm-up and C: the real worker
# --------------------------------------------------------------------------


def warm_up(run: Run, name: str, permits: int, zones: int, timeout: float) -> float:
    """Start a worker of ``run``'s group before the pings exist, wait until it holds every
    permit (its permits table, changelog-backed) and every zone, then stop it.

    The worker that drains the backlog afterwards recovers the permits from the
    table's changelog before its streams start, so no truck's pings are judged
    before its permit is in (the pings agent waits for the zones, not for the
    permits topic). Returns the seconds it took.
    """
    started = time.perf_counter()
    with Worker(name, run.worker_env(), run.dir) as worker:
        def loaded() -> bool:
            worker.check_alive()
            samples = worker.scrape()
            return (samples.get("yrd_permits_held", -1) >= permits
                    and samples.get("yrd_zones_loaded", -1) >= zones)

        wait_for(f"{name}: {permits:,} permits and {zones:,} zones loaded", loaded, timeout,
                 METRICS_POLL_S)
    return time.perf_counter() - started


@dataclass
class Drain:
    """What the worker did in C."""

    throughput: Throughput
    first_round_s: float
    """From the worker's first batch until it held every truck (its cold start)."""
    cold_pings: int
    """Pings processed in its cold start (not counted)."""
    steady: bool
    """False when the backlog ended before the worker held every truck: the clock then
    started after a first round's worth of pings, and the rate includes first sights."""
    rss_mib_start: float
    """Resident size just before the first batch: started, tables recovered, no truck yet."""
    rss_mib_first_round: float
    rss_mib_end: float
    hwm_mib_end: float
    vehicles_tracked: float
    alerts: dict[str, int]
    samples: dict[str, float]


def worker_drain(worker: Worker, expected: int, vehicles: int, timeout: float) -> Drain:
    """C: from the moment the worker holds every truck until it has processed the backlog.

    The worker's cold start is longer than a first round of records: it gets the
    partitions' records a fetch at a time (thousands of one partition before the
    next), and its first sight of a truck is dear (the permit compiled, the state
    made), so its clock starts once ``yrd_vehicles_tracked`` (set at checkpoints)
    reaches ``vehicles`` and at least that many pings are processed; what it
    processed until then is not counted. If the backlog ends before that, the clock
    starts after ``vehicles`` pings instead (``steady`` is then False).

    A worker that takes no ping for START_QUIET_S after it started, or stops taking
    them for STALL_S before the end while idle (under 10 % of a core: not busy with
    one long batch), fails the phase at once (with what it had done), rather than
    after ``timeout``.
    """
    idle_rss = [float("nan")]
    started = time.perf_counter()
    last = {"count": -1.0, "t": started, "cpu": 0.0}

    def first_batch() -> float | None:
        worker.check_alive()
        memory = worker.memory_mib()
        if worker.scrape().get("yrd_pings_consumed_total"):
            return time.perf_counter()
        if time.perf_counter() - started > START_QUIET_S:
            raise BenchmarkError(f"the worker took no ping in {START_QUIET_S:g} s after it "
                                 f"started; see {worker.log_path}")
        idle_rss[0] = memory["VmRSS"]  # started, tables recovered, no truck seen yet
        return None

    round_done: list[tuple[float, float, dict[str, float], dict[str, float]]] = []

    def reached(count: int, tracked: int = 0):
        def check() -> tuple[float, float, dict[str, float], dict[str, float]] | None:
            worker.check_alive()
            samples = worker.scrape()
            done = processed(samples)
            now, cpu = time.perf_counter(), worker.cpu_seconds()
            if done != last["count"]:
                last.update(count=done, t=now, cpu=cpu)
            elif now - last["t"] > STALL_S and (cpu - last["cpu"]) / (now - last["t"]) < 0.1:
                raise BenchmarkError(
                    f"the worker stopped at {done:,.0f} of {expected:,} pings processed "
                    f"({samples.get('yrd_pings_consumed_total', 0):,.0f} consumed) and took "
                    f"nothing for {STALL_S:g} s while idle; see {worker.log_path}")
            point = (now, cpu, samples, worker.memory_mib())
            if not round_done and done >= vehicles:
                round_done.append(point)  # the fallback start: a first round's worth read
            held = samples.get("yrd_vehicles_tracked", 0)
            if done < count or (held < tracked and done < expected):
                return None
            return point
        return check

    t_first = wait_for("the worker's first batch", first_batch, timeout, METRICS_POLL_S)
    t0, cpu0, s0, mem0 = wait_for("the worker to hold every truck",
                                  reached(vehicles, vehicles), timeout, METRICS_POLL_S)
    steady = s0.get("yrd_vehicles_tracked", 0) >= vehicles and processed(s0) < expected
    if not steady:  # the backlog ended before the worker held every truck
        t0, cpu0, s0, mem0 = round_done[0]
    t1, cpu1, s1, mem1 = wait_for("the worker to drain the backlog", reached(expected), timeout,
                                  METRICS_POLL_S)
    counted = int(processed(s1) - processed(s0))
    batches = int(s1.get("yrd_batch_size_count", 0) - s0.get("yrd_batch_size_count", 0))
    # the gauge is set at checkpoints (every YRD_CHECKPOINT_S): read it once more
    time.sleep(1.5)
    after = worker.scrape()
    return Drain(
        throughput=Throughput(counted, t1 - t0, cpu1 - cpu0, batches),
        first_round_s=t0 - t_first,
        cold_pings=int(processed(s0)),
        steady=steady,
        rss_mib_start=idle_rss[0],
        rss_mib_first_round=mem0["VmRSS"],
        rss_mib_end=mem1["VmRSS"],
        hwm_mib_end=mem1["VmHWM"],
        vehicles_tracked=after.get("yrd_vehicles_tracked", float("nan")),
        alerts=alerts_by_type(s1),
        samples={k: v for k, v in s1.items() if k.startswith(("yrd_pings_", "yrd_checkpoint_",
                                                               "yrd_delivery_"))},
    )


def drain_summary(drain: Drain) -> dict[str, Any]:
    """The drain as plain data for the report and the JSON file."""
    d = asdict(drain)
    d["throughput"] = drain.throughput.as_dict()
    vehicles = drain.vehicles_tracked
    d["rss_growth_mib_per_10k_vehicles"] = (
        (drain.rss_mib_end - drain.rss_mib_start) / vehicles * 10_000
        if vehicles and not math.isnan(vehicles) else float("nan"))
    d["rss_mib_per_10k_vehicles"] = (
        drain.rss_mib_end / vehicles * 10_000 if vehicles and not math.isnan(vehicles)
        else float("nan"))
    d["replayed"] = drain.samples.get("yrd_pings_replayed_total", 0.0)
    d["rejected"] = metric_sum(drain.samples, "yrd_pings_rejected_total")
    return d
