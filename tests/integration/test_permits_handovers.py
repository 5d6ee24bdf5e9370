"""Permits and province handovers end to end on the real broker."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from yrd_hazmat.core.timeutil import CHINA_TZ
from tests.harness import wait_until
from tests.integration.harness import Kafka, run_env, scrape
from tests.integration.traces import of
from tests.permit_trips import along_route, permit_doc

pytestmark = pytest.mark.integration

BORDER_M = 264_050  # the approximate G2 route passes from Jiangsu into Shanghai here


@pytest.fixture(scope="module")
def env(services):
    return run_env(services, YRD_PERMIT_REQUIRED_PATTERN=".*")


def trip_start() -> datetime:
    return datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(hours=1)


def publish_permits(kafka: Kafka, env, docs: list[dict]) -> None:
    for doc in docs:
        kafka.send(env["YRD_TOPIC_PERMITS"], doc["vehicle_id"].encode(), json.dumps(doc).encode())
    kafka.flush()
    wait_until(lambda: scrape(env["YRD_METRICS_PORT"])[("yrd_permits_held", ())] >= len(docs),
               "permits stored by the worker", 30)


def test_nanjing_to_shanghai_trip_deviation_and_missing_permit(env, kafka: Kafka, worker):
    t0 = trip_start()
    bad = permit_doc("苏A70009", t0, un_number="chlorine")
    kafka.send(env["YRD_TOPIC_PERMITS"], b"\xe8\x8b\x8fA70009", json.dumps(bad).encode())
    publish_permits(kafka, env, [permit_doc("苏A70001", t0), permit_doc("苏A70002", t0)])

    across = along_route("苏A70001", t0, BORDER_M - 20_000, BORDER_M + 8_000)  # 72 km/h, every 10 s
    # 1.5 km off the route for 150 s; a minute to turn off and a minute to come back
    on, off, back = (along_route("苏A70002", t0, 150_000, 151_000),
                     along_route("苏A70002", t0 + timedelta(seconds=110), 151_000, 154_000, offset_m=1500),
                     along_route("苏A70002", t0 + timedelta(seconds=320), 154_000, 156_000))
    unpermitted = along_route("苏A70003", t0, 120_000, 124_000)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], across + on + off + back + unpermitted)

    def complete(records):
        return (len(of(records, "苏A70001")) >= 3 and len(of(records, "苏A70002")) >= 2
                and len(of(records, "苏A70003")) >= 1)

    alerts = kafka.alerts_to_barrier(env, across[-1], back[-1], unpermitted[-1])
    assert complete(alerts)

    trip = of(alerts, "苏A70001")
    assert [(a["type"], a["state"]) for a in trip] == [
        ("HANDOVER_EXPECTED", "raised"), ("PROVINCE_HANDOVER", "raised"),
        ("HANDOVER_EXPECTED", "cleared")]
    expected, handover = trip[0], trip[1]
    assert expected["province"] == "SH" and expected["details"]["from_province"] == "JS"
    assert handover["province"] == "SH" and handover["city"]["code"] == "310000"
    assert (handover["details"]["from_province"], handover["details"]["to_province"]) == ("JS", "SH")
    crossed = t0 + timedelta(seconds=1000)  # 20 km at 20 m/s
    assert abs(datetime.fromisoformat(handover["details"]["crossing_time"]) - crossed) < timedelta(seconds=15)
    assert abs(datetime.fromisoformat(expected["details"]["eta"]) - crossed) < timedelta(seconds=60)
    for alert in trip:
        assert (alert["permit_id"], alert["un_number"], alert["hazard_class"]) == (
            "JS-2026-70001", "UN1017", "2.3")

    deviation = of(alerts, "苏A70002")
    assert [(a["type"], a["state"]) for a in deviation] == [
        ("ROUTE_DEVIATION", "raised"), ("ROUTE_DEVIATION", "cleared")]
    assert deviation[0]["details"]["distance_m"] > 500

    missing = of(alerts, "苏A70003")
    assert [(a["type"], a["state"], a["severity"]) for a in missing] == [
        ("NO_VALID_PERMIT", "raised", "critical")]
    assert missing[0]["details"]["reason"] == "none"

    handovers = kafka.read(env["YRD_TOPIC_HANDOVERS"], lambda r: len(r) >= 1, settle=2)
    assert [(h["vehicle_id"], h["from_province"], h["to_province"], h["cargo_name"]) for h in handovers] == [
        ("苏A70001", "JS", "SH", "chlorine, liquefied")]
    assert handovers[0]["handover_id"] == handover["incident_id"]

    dead = kafka.read(env["YRD_TOPIC_DEADLETTER"], lambda r: len(r) >= 1, settle=1)
    assert [(d["source_topic"], d["key"], d["reason"]) for d in dead] == [
        (env["YRD_TOPIC_PERMITS"], "苏A70009", "invalid")]


def test_a_revoked_permit_survives_a_restart_and_stops_the_truck(env, kafka: Kafka, worker):
    t0 = trip_start()
    publish_permits(kafka, env, [permit_doc("苏A70004", t0)])
    kafka.send(env["YRD_TOPIC_PERMITS"], "苏A70004".encode(), None)  # revoked now
    kafka.flush()
    wait_until(lambda: scrape(env["YRD_METRICS_PORT"])[
        ("yrd_permit_updates_total", (("result", "revoked"),))] >= 1, "revocation stored", 30)
    assert worker.stop() == 0
    worker.start()
    # pings after the revocation: the restarted worker must still know it
    later = datetime.now(CHINA_TZ).replace(microsecond=0) + timedelta(seconds=5)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], along_route("苏A70004", later, 100_000, 103_000))
    alerts = kafka.read(env["YRD_TOPIC_ALERTS"], lambda r: len(of(r, "苏A70004")) >= 1, timeout=90)
    [alert] = of(alerts, "苏A70004")
    assert (alert["type"], alert["details"]["reason"], alert["permit_id"]) == (
        "NO_VALID_PERMIT", "revoked", "JS-2026-70004")


def test_collision_alarm_reaches_responders_with_cargo_and_isolation_distance(env, kafka: Kafka, worker):
    t0 = trip_start()
    publish_permits(kafka, env, [permit_doc("苏A70005", t0)])
    trip = along_route("苏A70005", t0, 100_000, 101_000)
    crash = trip[-1].__class__(**{**{f: getattr(trip[-1], f) for f in trip[-1].__struct_fields__},
                                  "ts": trip[-1].ts + timedelta(seconds=10), "speed_kmh": 0.0,
                                  "alarm_flags": 1 << 29})
    kafka.send_pings(env["YRD_TOPIC_PINGS"], trip + [crash])
    alerts = kafka.alerts_to_barrier(env, crash)
    [alarm] = of(alerts, "苏A70005")
    assert (alarm["type"], alarm["severity"], alarm["details"]["alarm"]) == (
        "DEVICE_ALARM", "critical", "collision")
    assert alarm["details"]["isolation_distance_m"] == 60  # chlorine, ERG small-spill isolation
    assert alarm["details"]["responders_province"] == "JS" and alarm["province"] == "JS"
    assert (alarm["un_number"], alarm["hazard_class"]) == ("UN1017", "2.3")
