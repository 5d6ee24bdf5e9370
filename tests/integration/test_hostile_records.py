"""Hostile records on every input topic (issue #8): each gets a dead letter with its reason, or
its documented effect; the worker stays up, keeps alerting on valid pings, and applies a
valid permit and zone sent after the hostile ones."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.harness import wait_until
from tests.integration.harness import run_env, scrape
from tests.integration.traces import PEOPLES_SQUARE, XINJIEKOU, drive, of, start_time
from tests.permit_trips import along_route, permit_doc

pytestmark = pytest.mark.integration

TEN_MB = 10 * 1024 * 1024
FIVE_MB = 5 * 1024 * 1024
NESTED = b'{"a":' * 3000  # deeper than Python's stack (msgspec raises RecursionError)
ZONE_ID = "e2e-hostile-core"
D = 0.01  # ~1 km


@pytest.fixture(scope="module")
def env(services):
    """The run's input topics, created before the worker with a 10 MB record limit, so the
    broker accepts the 5 MB records (the worker itself must reject them)."""
    env = run_env(services)
    compacted = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
    admin = AdminClient({"bootstrap.servers": services["KAFKA_BOOTSTRAP"]})
    futures = admin.create_topics([
        NewTopic(env["YRD_TOPIC_PINGS"], 4, 1, config={"max.message.bytes": str(TEN_MB)}),
        NewTopic(env["YRD_TOPIC_PERMITS"], 4, 1, config=compacted | {"max.message.bytes": str(TEN_MB)}),
        NewTopic(env["YRD_TOPIC_ZONES"], 4, 1, config=compacted | {"max.message.bytes": str(TEN_MB)}),
    ])
    for future in futures.values():
        future.result(30)
    return env


FAILED: list[str] = []


def _delivered(err, msg) -> None:
    if err is not None:
        FAILED.append(f"{msg.topic()} {msg.key()!r}: {err}")


@pytest.fixture(scope="module")
def big(services):
    producer = Producer({
        "bootstrap.servers": services["KAFKA_BOOTSTRAP"],
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "message.max.bytes": TEN_MB + 4096,
    })
    yield producer
    assert producer.flush(30) == 0


def send(producer: Producer, topic: str, key: str | bytes | None, value: bytes | None) -> None:
    producer.produce(topic, key=key.encode() if isinstance(key, str) else key, value=value,
                     on_delivery=_delivered)
    producer.poll(0)


def zone(coordinates: list | None = None, zone_id: str = ZONE_ID, **props) -> dict:
    x, y = XINJIEKOU
    ring = coordinates or [[x - D, y - D], [x + D, y - D], [x + D, y + D], [x - D, y + D],
                           [x - D, y - D]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"zone_id": zone_id, "name": "hostile-test core", "kind": "city_core",
                           "province": "JS", "banned_classes": "all"} | props}


def circle(n: int) -> list[list[float]]:
    x, y = XINJIEKOU
    ring = [[x + D * math.cos(2 * math.pi * i / n), y + D * math.sin(2 * math.pi * i / n)]
            for i in range(n)]
    return ring + [ring[0]]


def metric(env, name: str, **labels) -> float:
    return scrape(env["YRD_METRICS_PORT"]).get((name, tuple(sorted(labels.items()))), 0.0)


def test_hostile_records_are_dead_lettered_and_valid_ones_still_work(env, kafka, big, worker):
    pings, permits, zones = env["YRD_TOPIC_PINGS"], env["YRD_TOPIC_PERMITS"], env["YRD_TOPIC_ZONES"]
    t0 = start_time()
    p = lambda i: f"沪H0000{i}"  # noqa: E731  (hostile pings' keys)
    base_ping = {"ts": t0.isoformat(), "lat": 31.2, "lon": 121.4, "speed_kmh": 40}
    ping_doc = lambda i, **kw: json.dumps({"vehicle_id": p(i)} | base_ping | kw).encode()  # noqa: E731
    hostile_pings = [  # (key, value, reason)
        (p(1), b'{"vehicle_id": "x", "lat": ', "bad_json"),
        (p(2), ping_doc(2, speed_kmh="fast"), "invalid"),
        (p(3), ping_doc(3, lat=121.47, lon=31.23), "invalid"),  # lat/lon swapped
        (p(4), ping_doc(4, pad="x" * FIVE_MB), "too_large"),
        (p(5), ping_doc(9), "bad_key"),
        (p(6), None, "invalid"),  # a null value: the pings topic has no tombstones
        (None, ping_doc(8), "bad_key"),
        (p(7), NESTED, "bad_json"),
    ]
    k = lambda i: f"苏K0000{i}"  # noqa: E731  (hostile permits' keys)
    doc = lambda i, **kw: json.dumps(permit_doc(k(i), t0, **kw)).encode()  # noqa: E731
    hostile_permits = [
        (k(1), b'{"permit_id": "P", "vehicle_id": ', "bad_json"),
        (k(2), doc(2, quantity_kg="lots"), "invalid"),
        (k(3), doc(3, valid_until=(t0 - timedelta(hours=5)).isoformat()), "invalid"),
        (k(4), doc(4, route={"type": "LineString", "coordinates": [[120.3, 31.5]]}), "invalid"),
        (k(5), doc(5, route={"type": "LineString", "coordinates": [[31.5, 120.3], [31.2, 121.4]]}),
         "bad_geometry"),
        (k(6), doc(6, carrier="x" * FIVE_MB), "too_large"),  # valid but for its size
        (k(7), doc(9), "bad_key"),
        # (no key: a compacted topic refuses it, so the worker never sees one; unit-tested)
        (k(8), NESTED, "bad_json"),
    ]
    z = lambda name: f"hostile-{name}"  # noqa: E731
    zdoc = lambda name, **kw: json.dumps(zone(zone_id=z(name), **kw)).encode()  # noqa: E731
    x, y = XINJIEKOU
    hostile_zones = [
        (z("json"), b'{"type": "Feature", ', "bad_json"),
        (z("types"), zdoc("types", banned_classes=7), "invalid"),
        (z("swapped"), json.dumps(zone([[y - D, x - D], [y - D, x + D], [y + D, x + D],
                                        [y - D, x - D]], zone_id=z("swapped"))).encode(),
         "bad_geometry"),
        (z("5mb"), zdoc("5mb", source="x" * FIVE_MB), "too_large"),
        (z("vertices"), json.dumps(zone(circle(100_000), zone_id=z("vertices"))).encode(),
         "too_large"),
        (z("bowtie"), json.dumps(zone([[x - D, y - D], [x + D, y + D], [x + D, y - D],
                                       [x - D, y + D], [x - D, y - D]], zone_id=z("bowtie"))).encode(),
         "bad_geometry"),
        (z("key"), zdoc("other"), "bad_key"),
        (z("nested"), NESTED, "bad_json"),
    ]

    # A speeding truck's pings, with every hostile record sent in the middle of them.
    speeder = drive("沪A80000", t0, [95.0] * 12 + [70.0] * 12, at=PEOPLES_SQUARE)
    kafka.send_pings(pings, speeder[:8])
    for key, value, _ in hostile_pings:
        send(big, pings, key, value)
    for key, value, _ in hostile_permits:
        send(big, permits, key, value)
    for key, value, _ in hostile_zones:
        send(big, zones, key, value)
    send(big, permits, k(9), None)  # tombstones for keys that never existed: no-ops
    send(big, zones, z("never"), None)
    assert big.flush(60) == 0
    assert FAILED == []
    kafka.send_pings(pings, speeder[8:])

    alerts = kafka.read(env["YRD_TOPIC_ALERTS"], lambda r: len(of(r, "沪A80000")) >= 2, timeout=90)
    assert [(a["type"], a["state"]) for a in of(alerts, "沪A80000")] == [
        ("SPEEDING", "raised"), ("SPEEDING", "cleared")]

    expected = ([(pings, key, reason) for key, _, reason in hostile_pings]
                + [(permits, key, reason) for key, _, reason in hostile_permits]
                + [(zones, key, reason) for key, _, reason in hostile_zones])
    dead = kafka.read(env["YRD_TOPIC_DEADLETTER"], lambda r: len(r) >= len(expected), timeout=90,
                      settle=3)
    got = sorted(((d["source_topic"], d["key"] or "", d["reason"]) for d in dead))
    assert got == sorted((t, key or "", reason) for t, key, reason in expected)
    for record in dead:
        assert record["error"] and record["raw_size"] >= 0
        if record["raw_size"] > FIVE_MB:
            assert record["raw_truncated"] and len(record["raw"].encode()) <= 262_144
    assert worker.alive, worker.log_tail()

    # tombstones for keys that never existed: counted, no dead letter
    wait_until(lambda: metric(env, "yrd_permit_updates_total", result="ignored") >= 1,
               "permit tombstone counted as ignored", 30)
    wait_until(lambda: metric(env, "yrd_zone_updates_total", result="ignored") >= 1,
               "zone tombstone counted as ignored", 30)
    assert metric(env, "yrd_permits_held") == 0 and metric(env, "yrd_zones_loaded") == 0

    # A valid permit and a valid zone sent after the hostile records take effect.
    truck = "苏A80001"
    send(big, permits, truck, json.dumps(permit_doc(truck, t0)).encode())
    send(big, zones, ZONE_ID, json.dumps(zone()).encode())
    assert big.flush(30) == 0
    wait_until(lambda: metric(env, "yrd_permits_held") == 1, "valid permit stored", 30)
    wait_until(lambda: metric(env, "yrd_zones_loaded") == 1, "valid zone loaded", 30)

    fast = along_route(truck, t0, 100_000, 101_600, speed_kmh=95, every_s=5)[:12]
    slow = along_route(truck, t0 + timedelta(seconds=60), 101_600, 103_000, speed_kmh=70,
                       every_s=5)[:12]
    through = drive("苏A80002", t0, [43.0] * 21, at=(x - 0.0125, y), every_s=10, road="other",
                    step_deg=0.00125)
    kafka.send_pings(pings, fast + slow + through)
    alerts = kafka.read(env["YRD_TOPIC_ALERTS"],
                        lambda r: len(of(r, truck)) >= 2 and len(of(r, "苏A80002")) >= 2,
                        timeout=90, settle=2)
    permitted = of(alerts, truck)
    assert [(a["type"], a["state"], a["permit_id"]) for a in permitted] == [
        ("SPEEDING", "raised", "JS-2026-80001"), ("SPEEDING", "cleared", "JS-2026-80001")]
    assert [(a["type"], a["state"], a["details"].get("zone_id")) for a in of(alerts, "苏A80002")] == [
        ("ZONE_VIOLATION", "raised", ZONE_ID), ("ZONE_VIOLATION", "cleared", ZONE_ID)]

    dead = kafka.read(env["YRD_TOPIC_DEADLETTER"], lambda r: True, settle=2)
    assert len(dead) == len(expected), "valid records were dead-lettered"
    assert not any(d["reason"] == "processing_error" for d in dead)
    assert worker.alive, worker.log_tail()


def test_a_permit_the_changelog_refuses_is_dead_lettered_not_lost(services, kafka, tmp_path):
    """The permits table's write must be acknowledged before the record's offset can be
    committed. Here the changelog topic takes records of at most 600 bytes, so the broker
    refuses the write of a valid permit: the permit is not held (the table is put back),
    the record is dead-lettered with the broker's error, and the worker goes on."""
    from tests.integration.harness import WorkerProcess

    env = run_env(services)
    changelog = f"{env['YRD_APP_ID']}-permits-changelog"
    admin = AdminClient({"bootstrap.servers": services["KAFKA_BOOTSTRAP"]})
    for future in admin.create_topics([NewTopic(changelog, 4, 1, config={
            "cleanup.policy": "compact", "max.message.bytes": "600"})]).values():
        future.result(30)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        t0 = start_time()
        truck = "苏A80009"
        kafka.send(env["YRD_TOPIC_PERMITS"], truck.encode(),
                   json.dumps(permit_doc(truck, t0)).encode())
        kafka.flush()
        dead = kafka.read(env["YRD_TOPIC_DEADLETTER"], lambda r: len(r) >= 1, timeout=60, settle=2)
        assert [(d["source_topic"], d["key"], d["reason"]) for d in dead] == [
            (env["YRD_TOPIC_PERMITS"], truck, "processing_error")]
        assert "changelog did not take the record" in dead[0]["error"]
        assert metric(env, "yrd_permits_held") == 0
        assert metric(env, "yrd_permit_updates_total", result="stored") == 0
        # the worker is still up and alerting
        kafka.send_pings(env["YRD_TOPIC_PINGS"], drive("沪A80010", t0, [95.0] * 12 + [70.0] * 2))
        alerts = kafka.read(env["YRD_TOPIC_ALERTS"], lambda r: len(of(r, "沪A80010")) >= 2)
        assert [a["type"] for a in of(alerts, "沪A80010")] == ["SPEEDING", "SPEEDING"]
        assert worker.alive, worker.log_tail()
    finally:
        assert worker.stop() == 0, worker.log_tail()
