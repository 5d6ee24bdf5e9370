"""Prometheus metrics of the worker. No per-vehicle label, ever."""

from __future__ import annotations

import numpy as np
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from .core.codec import REASONS

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)

# --- pings and alerts ----------------------------------------------------------------
PINGS_CONSUMED = Counter("yrd_pings_consumed", "Ping records read from the pings topic")
PINGS_ACCEPTED = Counter("yrd_pings_accepted", "Valid pings handed to the rules")
PINGS_REJECTED = Counter(
    "yrd_pings_rejected", "Ping records sent to the dead-letter topic, by reason", ["reason"]
)
PINGS_DUPLICATE = Counter("yrd_pings_duplicate", "Pings whose event time was already processed")
PINGS_WITHOUT_FIX = Counter(
    "yrd_pings_without_fix", "Reports without a valid fix: proof of life, not a position"
)
PINGS_UPLOADED_LATE = Counter(
    "yrd_pings_uploaded_late", "Kept fixes (older than the truck's latest) judged as history"
)
PINGS_IMPLAUSIBLE = Counter(
    "yrd_pings_implausible", "Pings that jumped farther than a truck can drive (data quality)"
)
ALERTS = Counter(
    "yrd_alerts",
    "Alerts published, by type, severity, state and province ('none' outside the region)",
    ["type", "severity", "state", "province"],
)
HANDOVERS = Counter(
    "yrd_handovers", "Province handovers published ('none' = outside the region)",
    ["from_province", "to_province"],
)
LATENCY_FROM_EVENT = Histogram(
    "yrd_latency_from_event_seconds",
    "Time from the ping's GNSS fix (event time) to the end of its processing",
    buckets=_LATENCY_BUCKETS,
)
LATENCY_FROM_ARRIVAL = Histogram(
    "yrd_latency_from_arrival_seconds",
    "Time from the ping's Kafka record timestamp (arrival) to the end of its processing",
    buckets=_LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "yrd_batch_size", "Records per processed batch", buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000)
)
VEHICLES_TRACKED = Gauge("yrd_vehicles_tracked", "Vehicles with state on this worker")

# --- reference data --------------------------------------------------------------------
ZONES_LOADED = Gauge("yrd_zones_loaded", "Restricted zones in force on this worker")
ZONE_UPDATES = Counter(
    "yrd_zone_updates", "Zone records applied by this worker, by result", ["result"]
)
ZONES_REJECTED = Counter(
    "yrd_zones_rejected", "Zone records sent to the dead-letter topic, by reason", ["reason"]
)
PERMITS_HELD = Gauge("yrd_permits_held", "Vehicles with a permit record on this worker")
PERMIT_UPDATES = Counter("yrd_permit_updates", "Permit records stored or revoked", ["result"])
INCIDENT_ACTIONS = Counter(
    "yrd_incident_actions", "Incident actions applied by the keeper, by kind and result "
    "(recorded, repeated, refused)", ["kind", "result"])
EMERGENCIES = Counter("yrd_emergencies", "Emergency alerts raised (critical, with responders)",
                      ["type"])
PERMITS_REJECTED = Counter(
    "yrd_permits_rejected", "Permit records sent to the dead-letter topic, by reason", ["reason"]
)
PINGS_REPLAYED = Counter(
    "yrd_pings_replayed",
    "Pings delivered again after a restart or rebalance that the vehicle's state already held",
)
DELIVERY_GAPS = Counter(
    "yrd_delivery_gaps", "Fetched batches that started beyond the next expected offset"
)
DELIVERY_STALLS = Counter(
    "yrd_delivery_stalls",
    "Partitions with records waiting that delivered nothing for 5 s and were resumed",
)
CHECKPOINT_SECONDS = Histogram(
    "yrd_checkpoint_seconds", "Duration of a checkpoint (outputs acked, states written)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CHECKPOINT_STATES = Counter("yrd_checkpoint_states", "Vehicle states written at checkpoints")
UNREADABLE_SKIPPED = Counter(
    "yrd_unreadable_records_skipped",
    "Offsets skipped because their batch could not be read (corrupt, unknown codec), by topic",
    ["topic"],
)
OUTPUT_DROPPED = Counter(
    "yrd_output_records_dropped", "Output records the broker refused for good, by topic",
    ["topic"],
)


def _declare_labels() -> None:
    """Create every known label value at zero, so rate() sees the first event too."""
    for reason in REASONS:
        for counter in (PINGS_REJECTED, ZONES_REJECTED, PERMITS_REJECTED):
            counter.labels(reason=reason)
    for result in ("applied", "deleted", "rejected", "ignored"):
        ZONE_UPDATES.labels(result=result)
    for result in ("stored", "revoked"):
        PERMIT_UPDATES.labels(result=result)


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Expose ``/metrics`` over HTTP (port 0 disables it)."""
    if port:
        start_http_server(port, addr=host)


_declare_labels()

# --- Redis read model (outbox + flusher) --------------------------------------------------
READMODEL_OUTBOX = Gauge(
    "yrd_readmodel_outbox", "Updates waiting for the next read-model flush, by kind", ["kind"]
)
READMODEL_FLUSH_SECONDS = Histogram(
    "yrd_readmodel_flush_seconds", "Duration of read-model flushes (one Redis round trip each)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
READMODEL_FLUSH_FAILURES = Counter(
    "yrd_readmodel_flush_failures", "Read-model flushes that failed (kept and retried)"
)
READMODEL_HEALTHY = Gauge(
    "yrd_readmodel_healthy", "1 if the last read-model flush reached Redis, 0 in an outage"
)
READMODEL_ALERTS_DROPPED = Counter(
    "yrd_readmodel_alerts_dropped",
    "Alerts whose recent-list entry was dropped from an overfull outbox (open/clear kept)",
)
for _kind in ("vehicles", "alerts"):
    READMODEL_OUTBOX.labels(kind=_kind)
READMODEL_HEALTHY.set(1)

# --- hostile reference records (issue #8) -------------------------------------------------
# A permit tombstone for a vehicle without a permit (or one already revoked) is a no-op,
# counted as result="ignored" (zone tombstones for unknown zones already are).
PERMIT_UPDATES.labels(result="ignored")

# --- event loops (yrd_hazmat.loopwatch) -----------------------------------------------------
LOOP_LAG = Histogram(
    "yrd_event_loop_lag_seconds",
    "How late the event loop woke a 50 ms heartbeat (the main loop, Faust's consumer thread)",
    ["loop"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LOOP_BLOCKED = Counter(
    "yrd_event_loop_blocked", "Times an event loop did not run for 100 ms (each logged with "
    "the stack that held it)", ["loop"]
)
DELIVERY_FETCH = Histogram(
    "yrd_delivery_fetch_seconds", "Per batch of pings: its oldest record's timestamp until "
    "the consumer thread took it from the fetcher (producer, broker, fetch)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERY_QUEUE = Histogram(
    "yrd_delivery_queue_seconds", "Per batch of pings: taken from the fetcher until the agent "
    "starts on it (thread hop, stream queue, earlier batches)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
GC_PAUSE = Histogram(
    "yrd_gc_pause_seconds", "Python garbage collections (every thread stops meanwhile)",
    ["generation"],
    buckets=(0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
for _loop in ("main", "consumer"):
    LOOP_LAG.labels(loop=_loop)
    LOOP_BLOCKED.labels(loop=_loop)


def observe_many(histogram: Histogram, amounts) -> None:
    """``histogram.observe(a)`` for every amount of an array, in one pass: the batch's
    amounts are counted per bucket with numpy and each bucket is incremented once.
    Exactly what as many ``observe`` calls record (a value on a bound counts in that
    bucket, as ``amount <= bound`` does), at a fraction of the cost per ping."""
    values = np.asarray(amounts, dtype=float)
    values = values[~np.isnan(values)]  # (observe counts a NaN in no bucket)
    if values.size == 0:
        return
    histogram._raise_if_not_observable()
    bounds = np.asarray(histogram._upper_bounds, dtype=float)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for i in np.flatnonzero(counts):
        histogram._buckets[i].inc(int(counts[i]))
    histogram._sum.inc(float(values.sum()))
