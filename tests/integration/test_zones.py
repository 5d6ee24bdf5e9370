"""Zones change at run time through the compacted zones topic, on the real broker."""

from __future__ import annotations

import json

import pytest

from tests.harness import free_port, wait_until
from tests.integration.harness import WorkerProcess, scrape
from tests.integration.traces import XINJIEKOU, drive, of, start_time

pytestmark = pytest.mark.integration

ZONE_ID = "e2e-nanjing-core"
D = 0.01  # ~1 km
ZONE = {
    "type": "Feature",
    "geometry": {"type": "Polygon", "coordinates": [[
        [XINJIEKOU[0] - D, XINJIEKOU[1] - D], [XINJIEKOU[0] + D, XINJIEKOU[1] - D],
        [XINJIEKOU[0] + D, XINJIEKOU[1] + D], [XINJIEKOU[0] - D, XINJIEKOU[1] + D],
        [XINJIEKOU[0] - D, XINJIEKOU[1] - D]]]},
    "properties": {"zone_id": ZONE_ID, "name": "Xinjiekou test core", "kind": "city_core",
                   "province": "JS", "banned_classes": "all"},
}


@pytest.fixture(scope="module")
def second_worker(env, worker, tmp_path_factory):
    """A second worker of the same group: it shares the pings but must hold every zone."""
    proc = WorkerProcess(env | {"YRD_METRICS_PORT": str(free_port())},
                         tmp_path_factory.mktemp("worker2") / "worker.log").start()
    yield proc
    assert proc.stop() == 0, proc.log_tail()


def zones_loaded(env) -> float:
    return scrape(env["YRD_METRICS_PORT"]).get(("yrd_zones_loaded", ()), -1)


def zones_on_both(env, second_worker) -> tuple[float, float]:
    return zones_loaded(env), zones_loaded(second_worker.env)


def through_the_zone(vehicle: str):
    """West to east across the zone at ~43 km/h: 2.4 km in 200 s, one ping per 10 s."""
    start = (XINJIEKOU[0] - 0.0125, XINJIEKOU[1])
    return drive(vehicle, start_time(), [43.0] * 21, at=start, every_s=10, road="other",
                 step_deg=0.00125)


def test_zone_published_at_run_time_then_updated_badly_then_deleted(env, kafka, worker,
                                                                   second_worker):
    zones_topic = env["YRD_TOPIC_ZONES"]
    assert zones_on_both(env, second_worker) == (0, 0)

    kafka.send(zones_topic, ZONE_ID.encode(), json.dumps(ZONE).encode())
    kafka.flush()
    wait_until(lambda: zones_on_both(env, second_worker) == (1, 1),
               "zone loaded by both running workers", 30)

    first = through_the_zone("苏A40001")
    kafka.send_pings(env["YRD_TOPIC_PINGS"], first)
    alerts = kafka.alerts_to_barrier(env, first[-1])
    raised, cleared = of(alerts, "苏A40001")
    assert (raised["type"], raised["state"], raised["severity"]) == ("ZONE_VIOLATION", "raised", "critical")
    assert raised["province"] == "JS" and raised["city"] == {"code": "320100", "name": "南京市"}
    assert raised["details"]["zone_id"] == ZONE_ID and raised["details"]["depth_m"] > 30
    assert raised["details"]["cargo_assumed_banned"] is True
    assert (cleared["type"], cleared["state"]) == ("ZONE_VIOLATION", "cleared")

    # An invalid update of the same zone goes to the dead-letter topic; the zone stays.
    bad = json.loads(json.dumps(ZONE))
    bad["properties"]["banned_classes"] = ["2.3", "radioactive-ish"]
    kafka.send(zones_topic, ZONE_ID.encode(), json.dumps(bad).encode())
    kafka.flush()
    dead = kafka.read(env["YRD_TOPIC_DEADLETTER"], lambda r: len(r) >= 1, settle=2)  # once, not per worker
    assert [(d["source_topic"], d["key"], d["reason"]) for d in dead] == [(zones_topic, ZONE_ID, "invalid")]
    assert "Invalid enum value 'radioactive-ish'" in dead[0]["error"]
    second = through_the_zone("苏A40002")
    kafka.send_pings(env["YRD_TOPIC_PINGS"], second)
    alerts = kafka.alerts_to_barrier(env, second[-1])
    assert [a["type"] for a in of(alerts, "苏A40002")] == ["ZONE_VIOLATION"] * 2

    # A tombstone deletes the zone: the next truck on the same path raises nothing.
    kafka.send(zones_topic, ZONE_ID.encode(), None)
    kafka.flush()
    wait_until(lambda: zones_on_both(env, second_worker) == (0, 0),
               "zone deleted on both running workers", 30)
    third = through_the_zone("苏A40003")
    kafka.send_pings(env["YRD_TOPIC_PINGS"], third)
    alerts = kafka.alerts_to_barrier(env, third[-1])
    assert of(alerts, "苏A40003") == []


def test_operators_publish_a_zones_file_and_every_worker_applies_it(env, kafka, worker):
    import subprocess
    import sys
    from importlib.resources import files

    path = files("yrd_hazmat.data") / "zones.geojson"
    done = subprocess.run([sys.executable, "-m", "yrd_hazmat.cli", "zones", "publish", str(path)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "published 8 zone(s), rejected 0" in done.stdout
    records = kafka.read(env["YRD_TOPIC_ZONES"], lambda r: sum(z is not None and z["properties"]["zone_id"] != ZONE_ID for z in r) >= 8)
    assert {"sh-inner-ring", "hz-west-lake"} <= {z["properties"]["zone_id"] for z in records if z}
    wait_until(lambda: zones_loaded(env) == 8, "published zones loaded", 30)


def test_a_strip_crossed_between_two_fixes_is_a_violation_end_to_end(env, kafka, worker):
    """A water-source strip 150 m wide, crossed by a truck pinging every 30 s: no fix
    inside it, and still a ZONE_VIOLATION (inferred), raised and cleared at once."""
    lon0, lat0 = XINJIEKOU[0] + 0.1, XINJIEKOU[1]  # ~10 km east of the city core zone
    half = 0.00075  # ~70 m of longitude either side
    strip = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[
            [lon0 - half, lat0 - 0.02], [lon0 + half, lat0 - 0.02], [lon0 + half, lat0 + 0.02],
            [lon0 - half, lat0 + 0.02], [lon0 - half, lat0 - 0.02]]]},
        "properties": {"zone_id": "e2e-water-strip", "name": "intake strip",
                       "kind": "water_source", "banned_classes": "all"},
    }
    loaded = zones_loaded(env)
    kafka.send(env["YRD_TOPIC_ZONES"], b"e2e-water-strip", json.dumps(strip).encode())
    kafka.flush()
    wait_until(lambda: zones_loaded(env) == loaded + 1, "strip loaded", 30)

    # 60 km/h eastwards, a fix every 30 s (500 m apart): fixes 250 m either side of the strip
    start = (lon0 - 0.0079, lat0)  # ~750 m west of the strip's middle
    trip = drive("苏A40009", start_time(), [60.0] * 4, at=start, every_s=30, road="other",
                 step_deg=0.0053)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], trip)
    alerts = of(kafka.alerts_to_barrier(env, trip[-1]), "苏A40009")
    assert [(a["type"], a["state"]) for a in alerts] == [
        ("ZONE_VIOLATION", "raised"), ("ZONE_VIOLATION", "cleared")]
    raised, cleared = alerts
    assert raised["details"]["inferred"] is True and raised["details"]["gap_s"] == 30
    assert raised["details"]["zone_id"] == "e2e-water-strip"
    assert trip[1].ts.isoformat() < raised["ts"] < cleared["ts"] < trip[2].ts.isoformat()
    assert lon0 - half - 1e-4 < raised["lon"] < lon0 < cleared["lon"] < lon0 + half + 1e-4
    assert raised["province"] == "JS" and cleared["incident_id"] == raised["incident_id"]
