"""End to end on the real broker: pings in with confluent-kafka, alerts and dead letters out."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.integration.traces import HEFEI, XINJIEKOU, drive, of, start_time

pytestmark = pytest.mark.integration


def test_speeding_truck_gets_one_alert_per_episode(env, kafka, worker):
    t0 = start_time()
    # 12 pings at 95 km/h (0-55 s), then 12 at 70 km/h: over the limit for 60 s in all
    speeder = drive("沪A10001", t0, [95.0] * 12 + [70.0] * 12)
    legal = drive("苏A10002", t0, [78.0] * 24, at=XINJIEKOU)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], speeder + legal)

    alerts = kafka.alerts_to_barrier(env, speeder[-1], legal[-1])
    mine = of(alerts, "沪A10001")
    assert [(a["type"], a["state"]) for a in mine] == [("SPEEDING", "raised"), ("SPEEDING", "cleared")]
    raised, cleared = mine
    assert raised["ts"] == (t0 + timedelta(seconds=30)).isoformat()
    assert cleared["ts"] == (t0 + timedelta(seconds=60)).isoformat()
    assert raised["province"] == "SH" and raised["city"] == {"code": "310000", "name": "上海市"}
    assert raised["severity"] == "warning" and raised["details"]["limit_kmh"] == 80
    assert raised["incident_id"] == cleared["incident_id"]
    assert of(alerts, "苏A10002") == []


def test_malformed_pings_go_to_dead_letter_and_the_worker_keeps_going(env, kafka, worker):
    topic = env["YRD_TOPIC_PINGS"]
    t0 = start_time()
    base = {"vehicle_id": "沪A10009", "ts": t0.isoformat(), "lat": 31.2, "lon": 121.4,
            "speed_kmh": 40}
    key = "沪A10009".encode()
    bad = [
        (key, b'{"vehicle_id": "\xe6\xb2\xaaA10009", "lat": ', "bad_json"),
        (key, json.dumps({k: v for k, v in base.items() if k != "ts"}).encode(), "invalid"),
        (key, json.dumps(base | {"lat": float("nan")}).encode(), "bad_json"),
        (key, json.dumps(base | {"lat": 200}).encode(), "invalid"),
        (key, json.dumps(base | {"vehicle_id": "x" * 1_000_000}).encode(), "too_large"),
        ("苏B00000".encode(), json.dumps(base).encode(), "bad_key"),
        (key, b"\xff\xfe\x00binary", "bad_json"),
    ]
    for k, value, _ in bad:
        kafka.send(topic, k, value)
    kafka.flush()
    # the same worker still processes valid pings afterwards
    kafka.send_pings(topic, drive("沪A10003", t0, [99.0] * 10))

    dead = kafka.read(env["YRD_TOPIC_DEADLETTER"], lambda r: len(r) >= len(bad), settle=2)
    assert sorted(d["reason"] for d in dead) == sorted(reason for _, _, reason in bad)
    for record in dead:
        assert record["source_topic"] == topic
        assert isinstance(record["partition"], int) and isinstance(record["offset"], int)
        assert record["error"]
    # records of one key keep their order: the dead-letter topic is keyed like the input
    same_key = [d for d in dead if d["key"] == "沪A10009"]
    assert [d["reason"] for d in same_key] == [r for k, _, r in bad if k == key]
    assert [d["offset"] for d in same_key] == sorted(d["offset"] for d in same_key)
    huge = same_key[4]
    assert huge["raw_truncated"] and huge["raw_size"] > 1_000_000
    assert "missing required field `ts`" in same_key[1]["error"]
    assert "<= 90" in same_key[3]["error"]
    assert same_key[5]["raw_encoding"] == "base64"

    alerts = kafka.read(env["YRD_TOPIC_ALERTS"], lambda r: len(of(r, "沪A10003")) >= 1)
    assert of(alerts, "沪A10003")[0]["state"] == "raised"
    assert worker.alive


def test_five_hours_at_the_wheel_replayed_in_one_burst(env, kafka, worker):
    t0 = start_time() - timedelta(hours=6)
    # 5 h at 58 km/h on other roads (below every limit), a ping a minute, all sent at once
    trip = drive("沪A10005", t0, [58.0] * 300, at=HEFEI, every_s=60, road="other", step_deg=0.01)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], trip)

    def fatigue(records):
        return [r for r in of(records, "沪A10005") if r["type"] == "FATIGUE_DRIVING"]

    alerts = kafka.alerts_to_barrier(env, trip[-1])
    assert [(a["state"], a["ts"]) for a in fatigue(alerts)] == [
        ("raised", (t0 + timedelta(hours=4, minutes=1)).isoformat())]
    assert fatigue(alerts)[0]["details"]["driven_h"] == 4.02
