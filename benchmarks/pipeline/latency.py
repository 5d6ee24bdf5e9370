"""D: the latency curve, ping produced -> alert received, at several offered rates.

With the worker of C caught up (it holds every truck of the backlog), the
backlog's trucks drive on: for each rate, a paced producer sends ``rate``
pings/s for ``duration`` seconds, round-robin over the first
``min(V, 4 x rate)`` trucks (so each truck pings at least every 4 s and a
speeder's 15 s over the limit holds enough pings to raise SPEEDING). Each
ping's event time is the moment it is handed to the producer (ms); the alert
it triggers carries that time in ``ts``, so alerts are matched to pings by
(vehicle, ts). An alert consumer in a thread stamps each alert on receipt.

Where the latency goes is split at the alert's ``emitted_at`` (when the
worker started the batch holding the ping); the worker's own
``yrd_latency_from_arrival_seconds`` is shown for the phase only (the
difference of two scrapes), interpolated between buckets as Prometheus does.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import Alert

from .fleet import Truck
from .kafka import confluent, new_producer
from .services import METRICS_POLL_S, BenchmarkError, Worker, processed, wait_for

SETTLE_S = 3.0
"""After the worker has processed every ping, how long to keep reading alerts."""
PING_EVERY_MAX_S = 4.0
"""Each truck of a latency fleet pings at least this often."""

BAR_AT_5000_S = 0.250
BAR_UP_TO_80PCT_S = 0.500
"""The issue's bars: p99 under 250 ms at 5,000 pings/s, under 500 ms up to 0.8x the drain."""


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
                for msg in self.consumer.consume(1000, 0.05):
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


def produce_paced(bootstrap: str, topic: str, fleet: list[Truck], epoch_ms: int, rate: float,
                  duration: float) -> Paced:
    """Produce ``rate`` pings/s for ``duration`` s, round-robin over ``fleet``.

    Each ping's event time is its produce time (ms); the trucks' positions go
    on from where the backlog left them (``epoch_ms`` is the backlog's start).

    The producer is connected before the clock starts: a new librdkafka producer
    holds its first records until it has metadata (and, if idempotent, a producer
    id from the broker), which put 0.6-0.7 s on the phase's first pings and, with
    a few hundred alerts per phase, made the p99 the producer's start-up. It is
    not idempotent (no retries on a local broker; nothing to de-duplicate).
    """
    producer = new_producer(bootstrap, linger_ms=5, idempotent=False)
    producer.list_topics(topic, timeout=30)  # connected, metadata of the topic known
    total = int(rate * duration)
    out = Paced()
    start = time.perf_counter()
    while out.sent < total:
        due = start + out.sent / rate
        now = time.perf_counter()
        if now < due:
            time.sleep(min(due - now, 0.002))
            producer.poll(0)
            continue
        out.max_behind_s = max(out.max_behind_s, now - due)
        truck = fleet[out.sent % len(fleet)]
        wall = time.time()
        ts_ms = int(wall * 1000)
        ping = truck.ping(ts_ms, (ts_ms - epoch_ms) / 1000.0)
        while True:
            try:
                producer.produce(topic, key=truck.vehicle_id.encode(), value=encode(ping))
                break
            except BufferError:
                producer.poll(0.01)
        out.produced_at[(truck.vehicle_id, ts_ms)] = wall
        out.sent += 1
        if out.sent % 256 == 0:
            producer.poll(0)
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
                       name: str, labels: str = "") -> float:
    """Prometheus-style quantile of the observations made between two scrapes
    (``labels``: the series' other labels as the exposition writes them after ``le``,
    e.g. ``loop="main"``)."""
    prefix = f'{name}_bucket{{le="'
    suffix = f'",{labels}}}' if labels else '"}'
    buckets = sorted(
        (float(key[len(prefix):-len(suffix)]), value - before.get(key, 0.0))
        for key, value in after.items() if key.startswith(prefix) and key.endswith(suffix)
        and '"' not in key[len(prefix):-len(suffix)]
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


def alert_latencies(collector: AlertCollector, paced: Paced) -> dict[str, Any]:
    """Ping-produced-to-alert-received latencies, split at the worker's batch start."""
    total, queued, processing = [], [], []
    slowest: list[tuple[float, float, str]] = []
    first = min(paced.produced_at.values(), default=0.0)
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
        slowest.append((received - produced, produced - first, f"{alert.type} {alert.state.value}"))
        queued.append(alert.emitted_at.timestamp() - produced)
        processing.append(received - alert.emitted_at.timestamp())
    return {
        "alerts": len(total),
        "alert_types": dict(types.most_common()),
        "unmatched": unmatched,
        "end_to_end_s": percentiles(total),
        "to_batch_start_s": percentiles(queued),
        "batch_start_to_received_s": percentiles(processing),
        "slowest": [{"latency_s": lat, "produced_after_s": at, "alert": kind}
                    for lat, at, kind in sorted(slowest, reverse=True)[:5]],
    }


def fleet_size(vehicles: int, rate: float) -> int:
    """V, or fewer so that each truck pings at least every PING_EVERY_MAX_S."""
    return max(1, min(vehicles, math.ceil(rate * PING_EVERY_MAX_S)))


def resolve_rates(items: list[str], drain_rate: float) -> list[tuple[str, float]]:
    """(label, pings/s) per ``--rate`` item: as given, or ``Nx`` times the drain rate."""
    out = []
    for item in items:
        if item.endswith("x"):
            if math.isnan(drain_rate):
                continue  # no drain rate measured (C skipped)
            out.append((item, max(20.0, round(float(item[:-1]) * drain_rate, -1))))
        else:
            out.append((item, float(item)))
    return out


def latency_phase(worker: Worker, bootstrap: str, pings_topic: str, alerts_topic: str,
                  partitions: int, fleet: list[Truck], epoch_ms: int, rate: float,
                  duration: float, given: int, timeout: float) -> dict[str, Any]:
    """One rate: paced pings to the caught-up worker; alert latency and its own histogram.

    ``given`` is how many pings the worker has been given before this phase.
    """
    trucks = fleet[:fleet_size(len(fleet), rate)]
    before = worker.scrape()
    collector = AlertCollector(bootstrap, alerts_topic, partitions)
    collector.start()
    try:
        cpu0 = worker.cpu_seconds()
        paced = produce_paced(bootstrap, pings_topic, trucks, epoch_ms, rate, duration)
        produced_t = time.perf_counter()
        worker_cpu_share = (worker.cpu_seconds() - cpu0) / paced.seconds
        lag_at_end = given + paced.sent - processed(worker.scrape())

        def caught_up() -> bool:
            worker.check_alive()
            return processed(worker.scrape()) >= given + paced.sent

        wait_for("the worker to process the latency-phase pings", caught_up, timeout,
                 METRICS_POLL_S)
        catch_up_s = time.perf_counter() - produced_t
        time.sleep(SETTLE_S)
    finally:
        collector.stop()
    after = worker.scrape()
    hist = "yrd_latency_from_arrival_seconds"
    batches = after.get("yrd_batch_size_count", 0) - before.get("yrd_batch_size_count", 0)
    return alert_latencies(collector, paced) | {
        "vehicles": len(trucks),
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
        "worker_stalls": stalls(before, after),
    }


def stalls(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What held the worker's event loop during a phase: the 99th percentile of its lag
    (how late a 50 ms heartbeat woke), the times it stood still for 100 ms, and the full
    garbage collections (generation 2) with their total seconds."""
    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    return {
        "loop_lag_p99_s": histogram_quantile(0.99, before, after, "yrd_event_loop_lag_seconds",
                                             'loop="main"'),
        "loop_blocked": delta('yrd_event_loop_blocked_total{loop="main"}'),
        "gc2_count": delta('yrd_gc_pause_seconds_count{generation="2"}'),
        "gc2_seconds": delta('yrd_gc_pause_seconds_sum{generation="2"}'),
        "fetch_p99_s": histogram_quantile(0.99, before, after, "yrd_delivery_fetch_seconds"),
        "fetch_max_s": histogram_quantile(1.0, before, after, "yrd_delivery_fetch_seconds"),
        "queue_p99_s": histogram_quantile(0.99, before, after, "yrd_delivery_queue_seconds"),
        "queue_max_s": histogram_quantile(1.0, before, after, "yrd_delivery_queue_seconds"),
    }


def kept_up(lat: dict[str, Any]) -> bool:
    """Whether the worker was less than 2 s of pings behind when production ended."""
    return lat["worker_lag_at_end_pings"] < 2 * lat["target_rate"]


def verdicts(phases: list[dict[str, Any]], drain_rate: float) -> list[str]:
    """The issue's latency bars against the measured phases."""
    out = []
    at_5000 = [p for p in phases if abs(p["target_rate"] - 5_000) < 1]
    if at_5000:
        p99 = at_5000[0]["end_to_end_s"]["p99"]
        out.append(f"p99 at 5,000/s: {p99 * 1000:,.0f} ms, bar < {BAR_AT_5000_S * 1000:.0f} ms: "
                   + ("met" if p99 < BAR_AT_5000_S else "NOT met"))
    else:
        out.append("p99 at 5,000/s: not measured (add 5000 to --rate)")
    if not math.isnan(drain_rate):
        limit = 0.8 * drain_rate
        within = [p for p in phases if p["target_rate"] <= limit * 1.01]  # 0.8x, rounded
        worst = max(within, key=lambda p: p["end_to_end_s"]["p99"], default=None)
        if worst is None:
            out.append(f"p99 up to 0.8x drain ({limit:,.0f}/s): no rate measured at or below it")
        else:
            p99 = worst["end_to_end_s"]["p99"]
            out.append(f"p99 up to 0.8x drain ({limit:,.0f}/s): worst {p99 * 1000:,.0f} ms "
                       f"(at {worst['target_rate']:,.0f}/s), bar < "
                       f"{BAR_UP_TO_80PCT_S * 1000:.0f} ms: "
                       + ("met" if p99 < BAR_UP_TO_80PCT_S else "NOT met"))
    return out
