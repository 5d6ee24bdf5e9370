"""A deterministic fleet replay, its alerts computed by the pure core, a steady producer,
and readable comparisons of alert sets.

The replay comes from the simulator's fleet (:class:`yrd_hazmat.simulator.Fleet`):
trucks on the YRD expressway corridors, a share of them speeding 90 s every
4 minutes, one in six starting 4 km before a provincial border (Suzhou ->
Shanghai on G2, Jiaxing -> Shanghai, ...), and a few with the JT/T 808
collision bit switching on for a while. Event times end shortly before now,
so nothing waits for a clock; with ``YRD_SIGNAL_LOST_S`` huge, no wall-clock
timer adds alerts, and the alerts depend on the pings alone.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from confluent_kafka import Producer

from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.engine import Reference, RulesConfig, advance
from yrd_hazmat.core.emergency.scene import replayable
from yrd_hazmat.core.enrich import observe
from yrd_hazmat.core.geo.jurisdiction import default_index, province_shapes_metric
from yrd_hazmat.core.models import Ping
from yrd_hazmat.core.permits.status import NO_PERMIT
from yrd_hazmat.core.rules.permits import PermitsConfig
from yrd_hazmat.core.rules.signal import SignalConfig
from yrd_hazmat.simulator import Fleet
from yrd_hazmat.core.timeutil import CHINA_TZ
from tests.integration.harness import SIGNAL_LOST_NEVER_S

COLLISION = 1 << 29  # JT/T 808 alarm bit 29

RULES = RulesConfig(permits=PermitsConfig(required_pattern=""),
                    signal=SignalConfig(lost_after_ms=int(SIGNAL_LOST_NEVER_S) * 1000))
"""The worker's rules under ``run_env``'s settings plus ``YRD_SIGNAL_LOST_S`` above."""


def fleet_replay(trucks: int, ticks: int, *, every_s: int = 10, seed: int = 11,
                 end: datetime | None = None, speeders: float = 0.3,
                 collisions: int = 6, collision_stays_on: int = 0) -> list[Ping]:
    """``trucks`` x ``ticks`` pings in event-time order, the last tick at ``end``
    (default: 20 s ago). ``collisions`` trucks raise the collision bit from the
    middle third of the trace; ``collision_stays_on`` of them never clear it (an
    incident still open at the end). Plates are unique (``<prefix>F<number>``)."""
    end = end or datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(seconds=20)
    start = end - timedelta(seconds=every_s * (ticks - 1))
    fleet = Fleet(trucks, speeders=speeders, seed=seed)
    for i, truck in enumerate(fleet.trucks):
        truck.vehicle_id = f"{truck.vehicle_id[:2]}F{i:04d}"
    crashing = {fleet.trucks[(7 + 13 * k) % trucks].vehicle_id: k for k in range(collisions)}
    on_from, off_from = ticks // 3, 2 * ticks // 3
    pings: list[Ping] = []
    for tick in range(ticks):
        for ping in fleet.tick(start + timedelta(seconds=every_s * tick)):
            k = crashing.get(ping.vehicle_id)
            if k is not None and tick >= on_from and (tick < off_from or k < collision_stays_on):
                ping = Ping(**{f: getattr(ping, f) for f in ping.__struct_fields__}
                            | {"alarm_flags": COLLISION})
            pings.append(ping)
    return pings


def core_outcome(pings: list[Ping], rules: RulesConfig = RULES) -> tuple[list[dict], list[dict]]:
    """(alerts, handovers) the pure core raises for ``pings``, as JSON dicts like the
    worker publishes them. The core's result does not depend on batching (a property
    test checks it), so each vehicle's pings go through in one batch."""
    places = default_index()
    by_vehicle: dict[str, list[Ping]] = defaultdict(list)
    for p in pings:
        by_vehicle[p.vehicle_id].append(p)
    reference = Reference(permits={v: NO_PERMIT for v in by_vehicle},
                          provinces=province_shapes_metric())
    now = datetime.now(CHINA_TZ)
    alerts, handovers = [], []
    for vehicle, own in by_vehicle.items():
        out = advance(None, vehicle, observe(own, places), rules, now, reference)
        alerts += [json.loads(encode(a)) for a in out.alerts]
        handovers += [json.loads(encode(h)) for h in out.handovers]
    return alerts, handovers


class SteadyProducer(threading.Thread):
    """Produces ``records`` (topic, key, value) at a steady rate over ``duration_s`` with
    confluent-kafka, in the background. librdkafka buffers while the broker is away
    (messages never time out here), so nothing is dropped by the producer side."""

    def __init__(self, bootstrap: str, records: list[tuple[str, bytes, bytes]],
                 duration_s: float, **config) -> None:
        super().__init__(daemon=True, name="steady-producer")
        self.records = records
        self.duration_s = duration_s
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 600_000,
            "queue.buffering.max.messages": 1_000_000,
            "reconnect.backoff.max.ms": 1_000,
            "log_level": 0,  # no connection-refused chatter on the test's stderr
        } | config)
        self.sent = 0
        self.failed: list[str] = []
        self.started_at: float | None = None
        self.produced = threading.Event()  # every record handed to the client
        self.error: BaseException | None = None

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.failed.append(str(err))

    def run(self) -> None:
        try:
            self.started_at = time.monotonic()
            n = len(self.records)
            for i, (topic, key, value) in enumerate(self.records):
                due = self.started_at + self.duration_s * i / n
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                self.producer.produce(topic, key=key, value=value, on_delivery=self._delivered)
                self.producer.poll(0)
                self.sent += 1
            self.produced.set()
            while self.producer.flush(1.0) > 0:
                pass
        except BaseException as exc:  # reported by finish()
            self.error = exc
            self.produced.set()

    def finish(self, timeout: float = 120.0) -> None:
        """Wait until every record is delivered; raise if one was not."""
        self.join(timeout)
        assert not self.is_alive(), "the producer did not deliver everything in time"
        if self.error is not None:
            raise self.error
        assert not self.failed, f"{len(self.failed)} records not delivered: {self.failed[:3]}"


def ping_records(topic: str, pings: list[Ping]) -> list[tuple[str, bytes, bytes]]:
    return [(topic, p.vehicle_id.encode(), encode(p)) for p in pings]


# --------------------------------------------------------------------------
# Comparisons with readable diffs
# --------------------------------------------------------------------------


content = replayable
"""An alert without what a replay may change (``emitted_at``, an emergency's exposed
trucks): see :func:`yrd_hazmat.core.emergency.scene.replayable`."""


def _canon(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _line(a: dict) -> str:
    return f"{a['type']:<18} {a['state']:<8} {a['vehicle_id']}  ts {a['ts']}  {a['alert_id']}"


def _field_diff(a: dict, b: dict) -> str:
    parts = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            parts.append(f"{k}: {_canon(a.get(k))[:120]} != {_canon(b.get(k))[:120]}")
    return "; ".join(parts)


def compare_alerts(expected: list[dict], got: list[dict], *, expected_name: str = "clean run",
                   got_name: str = "faulted run", show: int = 15) -> list[str]:
    """Problems of ``got`` against ``expected``: missing or extra alert ids, other content
    for an id (``emitted_at`` aside), repeats of an id with different content. Repeats of
    the same id with the same content are allowed (at-least-once)."""
    problems: list[str] = []
    want: dict[str, dict] = {}
    for a in expected:
        c = content(a)
        if a["alert_id"] in want and want[a["alert_id"]] != c:
            problems.append(f"{expected_name} itself has two contents for {a['alert_id']}")
        want[a["alert_id"]] = c
    have: dict[str, list[dict]] = defaultdict(list)
    for a in got:
        have[a["alert_id"]].append(content(a))

    missing = [want[i] for i in want if i not in have]
    extra = [have[i][0] for i in have if i not in want]
    changed = [(want[i], have[i]) for i in want if i in have
               if any(c != want[i] for c in have[i])]
    if missing:
        by_type = Counter(a["type"] for a in missing)
        problems.append(f"{len(missing)} of {len(want)} alerts of the {expected_name} never "
                        f"appeared in the {got_name} ({dict(by_type)}):\n  "
                        + "\n  ".join(_line(a) for a in sorted(missing, key=lambda a: a["ts"])[:show]))
    if extra:
        by_type = Counter(a["type"] for a in extra)
        problems.append(f"{len(extra)} alert ids in the {got_name} are not in the {expected_name} "
                        f"({dict(by_type)}):\n  "
                        + "\n  ".join(_line(a) for a in sorted(extra, key=lambda a: a["ts"])[:show]))
    if changed:
        problems.append(f"{len(changed)} alerts have other content in the {got_name}:\n  "
                        + "\n  ".join(f"{_line(w)}\n      {_field_diff(w, next(c for c in cs if c != w))}"
                                      for w, cs in changed[:show]))
    return problems


def repeats(got: list[dict]) -> int:
    """How many records repeat an alert id already seen (allowed when identical)."""
    return len(got) - len({a["alert_id"] for a in got})


def compare_records(expected: list[tuple[bytes | None, dict | None]],
                    got: list[tuple[bytes | None, dict | None]], what: str,
                    show: int = 10) -> list[str]:
    """Problems if the two topics do not hold the same set of records (key + value)."""
    def canon(records):
        return {(k.decode("utf-8", "replace") if k else None, _canon(v)) for k, v in records}

    want, have = canon(expected), canon(got)
    problems = []
    if want - have:
        problems.append(f"{len(want - have)} of {len(want)} {what} records of the clean run are "
                        "missing:\n  " + "\n  ".join(f"{k}: {v[:200]}" for k, v in sorted(want - have)[:show]))
    if have - want:
        problems.append(f"{len(have - want)} {what} records are not in the clean run:\n  "
                        + "\n  ".join(f"{k}: {v[:200]}" for k, v in sorted(have - want)[:show]))
    return problems


def latest_records(records: list[tuple[bytes | None, dict | None]], id_field: str) -> dict[str, dict]:
    """The latest value of each id on a compacted topic."""
    return {value[id_field]: value for _, value in records if value is not None}


def compare_incidents(expected: dict[str, dict], got: dict[str, dict], show: int = 10) -> list[str]:
    """Problems if the incident records differ: other incidents, or another list of
    actions (by action id, in order: none lost, none recorded twice)."""
    problems = []
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} incident records of the clean run "
                        f"are missing: {missing[:show]}")
    if extra:
        problems.append(f"{len(extra)} incident records are not in the clean run: {extra[:show]}")
    for incident in sorted(set(expected) & set(got)):
        want = [a["action_id"] for a in expected[incident]["actions"]]
        have = [a["action_id"] for a in got[incident]["actions"]]
        if want != have:
            problems.append(f"incident {incident}: actions {have} instead of {want}")
    return problems


def summary(alerts: list[dict]) -> str:
    counts = Counter((a["type"], a["state"]) for a in alerts)
    return ", ".join(f"{t}/{s} {n}" for (t, s), n in sorted(counts.items()))
