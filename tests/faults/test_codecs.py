"""Every codec a Kafka producer may use is read, on every topic the worker consumes (issue #8).

One worker; for each of none, gzip, snappy, lz4 and zstd a producer with that
``compression.type`` publishes a zone, a permit and the pings of two trucks
(each record sent in a batch of several, so the batch really is compressed).
Per codec: the zone takes effect (a truck crossing it raises ZONE_VIOLATION
naming it), the permit takes effect (the speeding truck's SPEEDING carries
its ``permit_id``, and no NO_VALID_PERMIT although plates ``苏P...`` must hold
one), the pings are read (both alerts arrive), and the worker stays alive.
Finally the worker restarts (SIGTERM, start): it must come back, with every
zone (the compacted zones topic, compressed, is read again) and every permit
(a second speeding trip still carries the permit).
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import timedelta
import pytest
from confluent_kafka import Producer

from tests.faults.replay import SIGNAL_LOST_NEVER_S
from tests.faults.support import metric
from tests.harness import wait_for
from tests.integration.harness import Kafka, WorkerProcess, run_env
from tests.integration.traces import XINJIEKOU, drive, of, start_time
from tests.permit_trips import along_route, permit_doc
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import Ping

pytestmark = pytest.mark.integration

CODECS = tuple(os.environ.get("YRD_FAULT_CODECS", "none,gzip,snappy,lz4,zstd").split(","))
"""``YRD_FAULT_CODECS=lz4`` tries one codec alone (the first that stops a worker hides the rest)."""
COPIES = 3  # each reference record sent this often in one batch: a batch worth compressing


def zone_of(i: int, codec: str) -> dict:
    lon, lat, d = XINJIEKOU[0], XINJIEKOU[1] + 0.08 * i, 0.01
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[
            [lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d],
            [lon - d, lat - d]]]},
        "properties": {"zone_id": f"codec-{codec}", "name": f"{codec} test zone",
                       "kind": "city_core", "province": "JS", "banned_classes": "all"},
    }


def zone_truck(i: int) -> str:
    return f"苏ZC000{i}"


def permit_truck(i: int) -> str:
    return f"苏PC000{i}"


def producer(bootstrap: str, codec: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                     "compression.type": codec, "linger.ms": 50, "enable.idempotence": True})


def speeding_trip(i: int, t0, start_m: float) -> list:
    """Over the limit for 110 s along the permit's route, then one ping at 60 km/h (cleared)."""
    trip = along_route(permit_truck(i), t0, start_m, start_m + 3_200, speed_kmh=95)
    last = trip[-1]
    slow = Ping(**{f: getattr(last, f) for f in last.__struct_fields__}
                | {"ts": last.ts + timedelta(seconds=10), "speed_kmh": 60.0})
    return trip + [slow]


def send_all(p: Producer, records: list[tuple[str, bytes, bytes]]) -> None:
    for topic, key, value in records:
        p.produce(topic, key=key, value=value)
    assert p.flush(30) == 0


def died(worker: WorkerProcess) -> str:
    """Why the worker is not running: its error lines."""
    lines = worker.log_path.read_text("utf-8", "replace").splitlines()
    errors = [l for l in lines if re.search(r"Error|ERROR|CRITICAL|Traceback", l)]
    return "\n    ".join((errors or lines)[-8:])[:3000]


@pytest.mark.timeout(300)
def test_every_codec_on_every_input_topic(services, workers, tmp_path):
    bootstrap = services["KAFKA_BOOTSTRAP"]
    env = run_env(services, YRD_PERMIT_REQUIRED_PATTERN="苏P.*",
                  YRD_SIGNAL_LOST_S=SIGNAL_LOST_NEVER_S)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    workers.append(worker)
    worker.start()
    t0 = start_time()
    problems: dict[str, str] = {}

    # Reference data first, codec by codec, so a failure names its codec.
    for i, codec in enumerate(CODECS):
        doc = permit_doc(permit_truck(i), t0, permit_id=f"CODEC-{codec}")
        send_all(producer(bootstrap, codec),
                 [(env["YRD_TOPIC_ZONES"], f"codec-{codec}".encode(),
                   json.dumps(zone_of(i, codec)).encode())] * COPIES
                 + [(env["YRD_TOPIC_PERMITS"], permit_truck(i).encode(),
                     json.dumps(doc).encode())] * COPIES)
        applied = wait_for(lambda: not worker.alive or (
            metric(env, "yrd_zones_loaded") >= i + 1 and metric(env, "yrd_permits_held") >= i + 1),
            30)
        if not worker.alive:
            problems[codec] = f"the worker died reading a {codec} zone or permit:\n    {died(worker)}"
            break
        if not applied:
            problems[codec] = (f"{codec} zone or permit not applied in 30 s (zones loaded "
                               f"{metric(env, 'yrd_zones_loaded')}, permits held "
                               f"{metric(env, 'yrd_permits_held')})")

    # Then the pings of every codec the worker survived.
    live = [(i, c) for i, c in enumerate(CODECS) if c not in problems] if worker.alive else []
    for i, codec in live:
        start = (XINJIEKOU[0] - 0.0125, XINJIEKOU[1] + 0.08 * i)
        crossing = drive(zone_truck(i), t0, [43.0] * 21, at=start, every_s=10, road="other",
                         step_deg=0.00125)
        speeding = speeding_trip(i, t0, 60_000 + 10_000 * i)
        send_all(producer(bootstrap, codec),
                 [(env["YRD_TOPIC_PINGS"], p.vehicle_id.encode(), encode(p))
                  for p in crossing + speeding])

    def complete(records: list[dict]) -> bool:
        if not worker.alive:
            return True
        return all(
            any(a["type"] == "ZONE_VIOLATION" for a in of(records, zone_truck(i)))
            and any(a["type"] == "SPEEDING" for a in of(records, permit_truck(i)))
            for i, _ in live)

    alerts: list[dict] = []
    if live:
        try:
            alerts = Kafka(bootstrap).read(env["YRD_TOPIC_ALERTS"], complete, timeout=60, settle=2)
        except TimeoutError:
            alerts = Kafka(bootstrap).read(env["YRD_TOPIC_ALERTS"], lambda r: True, timeout=5, settle=2)
    if live and not worker.alive:
        problems.setdefault("pings", f"the worker died reading pings:\n    {died(worker)}")
    for i, codec in live:
        zone_alerts = [a for a in of(alerts, zone_truck(i)) if a["type"] == "ZONE_VIOLATION"]
        speeding = [a for a in of(alerts, permit_truck(i)) if a["type"] == "SPEEDING"]
        unpermitted = [a for a in of(alerts, permit_truck(i)) if a["type"] == "NO_VALID_PERMIT"]
        found = []
        if not zone_alerts or zone_alerts[0]["details"]["zone_id"] != f"codec-{codec}":
            found.append(f"no ZONE_VIOLATION for the {codec} zone: {[a['type'] for a in of(alerts, zone_truck(i))]}")
        if not speeding:
            found.append(f"no SPEEDING from the {codec} pings")
        elif speeding[0]["permit_id"] != f"CODEC-{codec}":
            found.append(f"the {codec} permit is not on the alert: permit_id {speeding[0]['permit_id']}")
        if unpermitted:
            found.append(f"NO_VALID_PERMIT although a {codec} permit was published")
        if found:
            problems[codec] = "; ".join(found)

    # A restart reads the compressed zones again and keeps the permits (changelog): a
    # second speeding trip of each permitted truck still carries its permit.
    if worker.alive:
        time.sleep(3)  # past a commit of the permits' offsets
        worker.stop()
        try:
            worker.start(timeout=90)
        except (RuntimeError, TimeoutError) as exc:
            problems["restart"] = f"the worker did not start again: {str(exc)[-2000:]}"
        else:
            wait_for(lambda: not worker.alive or metric(env, "yrd_zones_loaded") >= len(CODECS), 30)
            for i, codec in live:
                again = speeding_trip(i, t0 + timedelta(minutes=4), 65_000 + 10_000 * i)
                send_all(producer(bootstrap, codec),
                         [(env["YRD_TOPIC_PINGS"], p.vehicle_id.encode(), encode(p)) for p in again])

            def twice(records: list[dict]) -> bool:
                return not worker.alive or all(
                    sum(a["type"] == "SPEEDING" and a["state"] == "raised"
                        for a in of(records, permit_truck(i))) >= 2 for i, _ in live)

            try:
                alerts = Kafka(bootstrap).read(env["YRD_TOPIC_ALERTS"], twice, timeout=45)
            except TimeoutError:
                alerts = Kafka(bootstrap).read(env["YRD_TOPIC_ALERTS"], lambda r: True, timeout=5,
                                               settle=2)
            if not worker.alive:
                problems["restart"] = f"the restarted worker died:\n    {died(worker)}"
            elif metric(env, "yrd_zones_loaded") < len(CODECS):
                problems["restart"] = (f"after a restart {metric(env, 'yrd_zones_loaded'):.0f} of "
                                       f"{len(CODECS)} zones are loaded")
            for i, codec in live:
                raised = [a for a in of(alerts, permit_truck(i))
                          if a["type"] == "SPEEDING" and a["state"] == "raised"]
                if len(raised) < 2 or raised[-1]["permit_id"] != f"CODEC-{codec}":
                    problems[f"{codec} after restart"] = (
                        "the permit is not in force after a restart: "
                        f"{[(a['type'], a['permit_id']) for a in of(alerts, permit_truck(i))]}")
    elif not any("died" in text for text in problems.values()):
        problems["worker"] = f"the worker is not alive:\n    {died(worker)}"
    reached = {c for _, c in live}
    for codec in CODECS:
        if codec not in problems and codec not in reached:
            problems[codec] = "not tested: the worker had died before"
    assert not problems, (
        "codecs the worker does not read:\n" + "\n".join(f"{k}: {v}" for k, v in problems.items())
        + f"\nlog: {worker.log_path}")
