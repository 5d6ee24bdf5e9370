"""E: two workers of one consumer group on the same backlog; partitions move, nothing is lost.

A second consumer group (its own app id, tables, alerts, handovers and dead
letters; the same pings, permits and zones) drains the backlog with two
workers: the first starts alone and takes every partition; once it has
processed ``join_at`` of the backlog the second starts, the group rebalances
and partitions move to it mid-drain (with their vehicles' state, through the
vehicle-state changelog). The broker's view of the group (which member holds
which pings partitions) is polled throughout.

It runs before D (whose pings follow the backlog in the same topic).
Correctness, as the fault suite compares runs (``tests/faults/replay.py``):
the two workers' alerts must equal the one-worker run's (C) alert for alert,
by ``alert_id``, with the same content (``emitted_at`` aside); an id may repeat
(at-least-once delivery) but none may be missing, extra, or different. C's
alerts are those whose event time lies in the backlog (D's come later).

On a machine with the cores for it, two workers should drain close to twice
one. On 2 cores they cannot: the two workers, the broker, Redis and the
benchmark share them, so the combined rate is bounded by what is left after
the broker (see the report's note).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from yrd_hazmat.core.emergency.scene import replayable

from .kafka import group_assignment, group_lag, read_json_topic
from .services import (
    METRICS_POLL_S, STALL_S, START_QUIET_S, Run, Worker, processed, say, wait_for,
)


class AssignmentWatch(threading.Thread):
    """Polls the group's description; keeps each distinct assignment of the pings topic."""

    def __init__(self, bootstrap: str, group: str, topic: str, every_s: float = 0.5) -> None:
        super().__init__(name="assignment-watch", daemon=True)
        self.args = (bootstrap, group, topic)
        self.every_s = every_s
        self.started_at = time.perf_counter()
        self.history: list[tuple[float, dict[str, list[int]]]] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            members = group_assignment(*self.args)
            if members is not None and (not self.history or self.history[-1][1] != members):
                self.history.append((time.perf_counter() - self.started_at, members))
            self._stopping.wait(self.every_s)

    def stop(self) -> None:
        self._stopping.set()
        self.join(15)

    def partitions_of(self, slot: str) -> list[int] | None:
        """The pings partitions the member of ``group.instance.id`` slot ``slot`` holds in
        the latest assignment seen (None if it is not in it)."""
        members = self.history[-1][1] if self.history else {}
        for name, parts in members.items():
            if name.rsplit("-", 1)[-1] == slot:
                return parts
        return None


content = replayable
"""An alert without what a replay may change, as in the fault suite."""


def _differing(want: dict, have: list[dict]) -> set[str]:
    """The fields (details by key) in which the copies of an alert differ from ``want``."""
    fields: set[str] = set()
    for got in have:
        for key in set(want) | set(got):
            if want.get(key) == got.get(key):
                continue
            if key == "details":
                a, b = want.get(key) or {}, got.get(key) or {}
                fields |= {f"details.{k}" for k in set(a) | set(b) if a.get(k) != b.get(k)}
            else:
                fields.add(key)
    return fields


def compare_alerts(expected: list[dict], got: list[dict], show: int = 5) -> dict[str, Any]:
    """``got`` against ``expected`` by alert id (the fault suite's comparison)."""
    want: dict[str, dict] = {}
    for a in expected:
        want.setdefault(a["alert_id"], content(a))
    have: dict[str, list[dict]] = defaultdict(list)
    for a in got:
        have[a["alert_id"]].append(content(a))
    missing = [i for i in want if i not in have]
    extra = [i for i in have if i not in want]
    changed = [i for i in want if i in have and any(c != want[i] for c in have[i])]
    return {
        "expected": len(want),
        "got_records": len(got),
        "got_ids": len(have),
        "missing": len(missing),
        "extra": len(extra),
        "changed": len(changed),
        "repeats": len(got) - len(have),
        "expected_repeats": len(expected) - len(want),
        "missing_by_type": dict(Counter(want[i]["type"] for i in missing)),
        "extra_by_type": dict(Counter(have[i][0]["type"] for i in extra)),
        "examples": {"missing": missing[:show], "extra": extra[:show], "changed": changed[:show]},
        "changed_fields": dict(Counter(
            f"{want[i]['type']}: {field}" for i in changed for field in _differing(want[i], have[i]))),
        "equal": not (missing or extra or changed),
    }


class Progress:
    """The group's progress: records processed by its workers, and its lag (committed)."""

    def __init__(self, run: Run, partitions: int) -> None:
        self.run, self.partitions = run, partitions
        self._last_total, self._last_change = -1.0, time.perf_counter()
        self._cpu_at_change = self._cpu = 0.0
        self.per_worker: list[float] = []
        self.cpus: list[float] = []

    def total(self, *workers: Worker) -> float:
        """Pings processed by ``workers``; notes when that last moved, and their CPU time."""
        for w in workers:
            w.check_alive()
        self.per_worker = [processed(w.scrape()) for w in workers]
        self.cpus = [w.cpu_seconds() for w in workers]
        total = sum(self.per_worker)
        self._cpu = sum(self.cpus)
        if total != self._last_total:
            self._last_total, self._last_change = total, time.perf_counter()
            self._cpu_at_change = self._cpu
        return total

    def stalled(self, quiet_s: float = STALL_S) -> bool:
        """Nothing processed for ``quiet_s`` while the workers were idle (under 10 % of a
        core together, so not busy with one long batch): the group takes nothing more (a
        worker that holds a partition but is never delivered its records looks like this)."""
        quiet = time.perf_counter() - self._last_change
        return quiet > quiet_s and (self._cpu - self._cpu_at_change) / quiet < 0.1

    @property
    def last_change(self) -> float:
        """``perf_counter()`` when the processed count last moved."""
        return self._last_change

    def lag(self) -> int:
        return group_lag(self.run.bootstrap, self.run.app_id, self.run.pings_topic,
                         self.partitions)


def took_any(worker: Worker) -> bool:
    """Whether the worker has taken a batch of pings (processed, or recognised as replays)."""
    samples = worker.scrape()
    return processed(samples) + samples.get("yrd_pings_replayed_total", 0.0) > 0


def two_workers(run: Run, partitions: int, expected: int, join_at: float,
                trucks_per_partition: dict[int, int], timeout: float) -> dict[str, Any]:
    """E: see the module's doc; the comparison with C is :func:`compare_runs`.

    Rates: over the whole backlog; from e2's first batch to the end; and while both
    take pings (from e2's first batch until the first of them has finished its
    partitions). e2's cold start is in the last two: it recovers its trucks' states
    from the changelog, but compiles each one's permit on first sight, as any worker
    that takes over partitions does. ``trucks_per_partition`` (from the producer's
    delivery reports) gives the number of trucks e2 took over.
    """
    watch = AssignmentWatch(run.bootstrap, run.app_id, run.pings_topic)
    watch.start()
    progress = Progress(run, partitions)
    t: dict[str, float] = {}
    try:
        with Worker("worker-e1", run.worker_env(), run.dir) as w1:
            wait_for("worker e1's first batch",
                     lambda: progress.total(w1) > 0 or progress.stalled(START_QUIET_S), timeout,
                     METRICS_POLL_S)
            t["first"] = time.perf_counter()
            if not progress.total(w1):
                say(f"E: worker e1 processed nothing in {START_QUIET_S:g} s")
            wait_for(f"worker e1 to process {join_at:.0%} of the backlog",
                     lambda: progress.total(w1) >= join_at * expected or progress.stalled(),
                     timeout, METRICS_POLL_S)
            t["join"] = time.perf_counter()
            say(f"E: worker e1 processed {progress.total(w1):,.0f}; starting worker e2")
            with Worker("worker-e2", run.worker_env(), run.dir) as w2:
                wait_for("worker e2's first batch",
                         lambda: took_any(w2) or (progress.total(w1, w2) >= 0
                                                  and progress.stalled()), timeout,
                         METRICS_POLL_S)
                t["e2_first"] = time.perf_counter()
                e2_took = took_any(w2)
                at_e2_first = progress.total(w1, w2)
                cpu0 = (w1.cpu_seconds(), w2.cpu_seconds())
                e2_parts = watch.partitions_of("1")
                trace: list[tuple[float, float, float, float, float]] = []

                def drained() -> bool:
                    done = progress.total(w1, w2) >= expected or progress.stalled()
                    trace.append((time.perf_counter(), *progress.per_worker, *progress.cpus))
                    return done

                wait_for("two workers to drain the backlog", drained, timeout, METRICS_POLL_S)
                t["end"] = progress.last_change if progress.stalled() else time.perf_counter()
                cpu1 = (w1.cpu_seconds(), w2.cpu_seconds())
                deadline = time.monotonic() + 20  # checkpoint, then Faust's commit loop
                while (lag := progress.lag()) and time.monotonic() < deadline:
                    time.sleep(1.0)
                samples = [w.scrape() for w in (w1, w2)]
            dropped = [line.split("]", 1)[-1].strip() for line in w1.log_text().splitlines()
                       if "dropped" in line and "vehicles of partitions" in line]
    finally:
        watch.stop()
    per_worker = [processed(x) for x in samples]
    both_s = t["end"] - t["e2_first"] if e2_took else 0.0
    busy = both_busy(trace) if e2_took else None
    return {
        "join_at": join_at,
        "alone_s": t["join"] - t["first"],
        "rebalance_gap_s": t["e2_first"] - t["join"],
        "e2_took_pings": e2_took,
        "both_s": both_s,
        "total_s": t["end"] - t["first"],
        "rate_total": sum(per_worker) / (t["end"] - t["first"]),
        "rate_both": (sum(per_worker) - at_e2_first) / both_s if both_s > 0 else float("nan"),
        "cpu_share_both": [(b - a) / both_s for a, b in zip(cpu0, cpu1)] if both_s > 0 else [],
        "e2_partitions": e2_parts,
        "e2_trucks": sum(trucks_per_partition.get(p, 0) for p in e2_parts or []),
        "both_busy": busy,
        "processed_per_worker": per_worker,
        "never_processed": max(0.0, expected - sum(per_worker)),
        "processed_twice": max(0.0, sum(per_worker) - expected),
        "replayed": sum(x.get("yrd_pings_replayed_total", 0.0) for x in samples),
        "delivery_gaps": sum(x.get("yrd_delivery_gaps_total", 0.0) for x in samples),
        "stalled": progress.stalled(),
        "lag_at_end": lag,
        "assignments": [{"t": round(ts, 1), "members": members} for ts, members in watch.history],
        "worker_e1_dropped": dropped,
    }


def both_busy(trace: list[tuple[float, float, float, float, float]]) -> dict[str, Any] | None:
    """The window in which both workers were still taking pings: from the trace's start
    until the first of them took its last one (after that one worker drains alone)."""
    if len(trace) < 2:
        return None
    t0, a0, b0, ca0, cb0 = trace[0]
    last_a = max(t for t, a, *_ in trace if a != trace[-1][1]) if trace[-1][1] != a0 else t0
    last_b = max(t for t, _, b, *_ in trace if b != trace[-1][2]) if trace[-1][2] != b0 else t0
    end = min(last_a, last_b)
    window = [x for x in trace if x[0] <= end]
    t1, a1, b1, ca1, cb1 = window[-1]
    if t1 - t0 < 2 * METRICS_POLL_S:
        return None
    return {"seconds": t1 - t0, "pings": (a1 - a0) + (b1 - b0),
            "rate": ((a1 - a0) + (b1 - b0)) / (t1 - t0),
            "cpu_share": [(ca1 - ca0) / (t1 - t0), (cb1 - cb0) / (t1 - t0)]}


def compare_runs(run: Run, reference: Run, partitions: int, backlog_end_ms: int) -> dict[str, Any]:
    """E's alerts against C's, both restricted to the backlog's event time."""
    got = [a for a in read_json_topic(run.bootstrap, run.alerts_topic, partitions)
           if _ms(a["ts"]) <= backlog_end_ms]
    want = [a for a in read_json_topic(reference.bootstrap, reference.alerts_topic, partitions)
            if _ms(a["ts"]) <= backlog_end_ms]
    return compare_alerts(want, got)


def _ms(ts: str) -> int:
    return round(datetime.fromisoformat(ts).timestamp() * 1000)
