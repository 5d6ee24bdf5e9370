"""Emergency response end to end: a collision near the Shanghai/Jiangsu border raises a
critical alarm naming the nearest available responders of both provinces."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib.resources import files

import pytest

from yrd_hazmat.models import Ping
from tests.integration.harness import run_env
from tests.integration.traces import drive, of, start_time

pytestmark = pytest.mark.integration

ANTING = (121.17, 31.30)  # Jiading, Shanghai, a few km from Kunshan (Jiangsu)


@pytest.fixture(scope="module")
def env(services):
    return run_env(services, YRD_RESOURCES_FILE=str(files("yrd_hazmat.data") / "resources.json"))


def test_a_collision_near_the_border_proposes_responders_of_both_provinces(env, kafka, worker):
    trip = drive("沪A71001", start_time(), [40.0] * 4, at=ANTING)
    last = trip[-1]
    crash = Ping(**{f: getattr(last, f) for f in last.__struct_fields__}
                 | {"ts": last.ts + timedelta(seconds=5), "speed_kmh": 0.0,
                    "alarm_flags": 1 << 29})
    kafka.send_pings(env["YRD_TOPIC_PINGS"], trip + [crash])
    alerts = of(kafka.alerts_to_barrier(env, crash), "沪A71001")
    [alarm] = [a for a in alerts if a["type"] == "DEVICE_ALARM"]
    assert alarm["severity"] == "critical" and alarm["province"] == "SH"
    responders = alarm["details"]["responders"]
    assert len(responders) == 5
    assert [r["distance_km"] for r in responders] == sorted(r["distance_km"] for r in responders)
    assert {r["province"] for r in responders} >= {"SH", "JS"}
    assert alarm["details"]["responders_cross_border"] == sum(
        r["province"] != "SH" for r in responders) >= 1
    assert all(r["approximate"] for r in responders)  # the shipped set is illustrative
    assert alarm["details"]["hospital"]["kind"] == "hospital"


def crash_of(vehicle: str, at=ANTING) -> list[Ping]:
    trip = drive(vehicle, start_time(), [40.0] * 3, at=at)
    last = trip[-1]
    return trip + [Ping(**{f: getattr(last, f) for f in last.__struct_fields__}
                        | {"ts": last.ts + timedelta(seconds=5), "speed_kmh": 0.0,
                           "alarm_flags": 1 << 29})]


def responders_for(env, kafka, vehicle: str) -> list[str]:
    pings = crash_of(vehicle)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], pings)
    [alarm] = [a for a in of(kafka.alerts_to_barrier(env, pings[-1]), vehicle)
               if a["type"] == "DEVICE_ALARM"]
    return [r["resource_id"] for r in alarm["details"]["responders"]]


def test_a_resource_put_out_of_service_at_run_time_is_no_longer_proposed(env, kafka, worker):
    first = responders_for(env, kafka, "沪A71101")
    nearest = first[0]
    shipped = {r["resource_id"]: r for r in json.loads(
        (files("yrd_hazmat.data") / "resources.json").read_text("utf-8"))["resources"]}
    out = shipped[nearest] | {"status": "out_of_service"}
    kafka.send(env["YRD_TOPIC_RESOURCES"], nearest.encode(), json.dumps(out).encode())
    kafka.flush()
    for attempt in range(20):  # the worker follows the topic: from a batch soon after
        later = responders_for(env, kafka, f"沪A712{attempt:02d}")
        if nearest not in later:
            break
    assert nearest not in later and later[0] == first[1]
    kafka.send(env["YRD_TOPIC_RESOURCES"], nearest.encode(), json.dumps(shipped[nearest]).encode())
    kafka.flush()
    for attempt in range(20):
        again = responders_for(env, kafka, f"沪A713{attempt:02d}")
        if nearest in again:
            break
    assert again == first
