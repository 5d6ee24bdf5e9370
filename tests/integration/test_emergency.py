"""Emergency response end to end: a collision near the Shanghai/Jiangsu border raises a
critical alarm naming the nearest available responders of both provinces and the trucks
exposed; its incident record follows it through ``yrd-hazmat respond`` (dispatch, arrive,
close) into ``yrd-hazmat ledger``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import timedelta
from importlib.resources import files

import pytest

from yrd_hazmat.core.models import Ping
from yrd_hazmat.readmodel import ReadModel
from yrd_hazmat.core.timeutil import CHINA_TZ
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


def cli(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yrd_hazmat.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def in_read_model(env, vehicle: str, timeout: float = 30.0) -> None:
    async def seen() -> bool:
        model = ReadModel.from_url(env["REDIS_URL"], env["YRD_REDIS_PREFIX"])
        try:
            return bool(await model.vehicle(vehicle))
        finally:
            await model.redis.aclose()

    deadline = time.monotonic() + timeout
    while not asyncio.run(seen()):
        assert time.monotonic() < deadline, f"{vehicle} never reached the read model"
        time.sleep(0.2)


def latest(records: list[dict | None], key: str, value: str) -> dict:
    return [r for r in records if r is not None and r[key] == value][-1]


def test_a_collision_becomes_an_incident_record_answered_across_the_border(env, kafka, worker):
    # a truck parked 300 m from where the other one will crash, one 3 km away (2 km north
    # of this module's other crashes)
    site = (ANTING[0], ANTING[1] + 0.02)
    t0 = start_time()
    near = drive("苏E71901", t0, [0.0] * 3, at=(site[0] + 0.0034, site[1]))
    far = drive("苏E71902", t0, [0.0] * 3, at=(site[0] + 0.031, site[1]))
    kafka.send_pings(env["YRD_TOPIC_PINGS"], near + far)
    in_read_model(env, "苏E71901")
    in_read_model(env, "苏E71902")

    pings = crash_of("沪A71901", at=site)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], pings)
    [alarm] = [a for a in of(kafka.alerts_to_barrier(env, pings[-1]), "沪A71901")
               if a["details"].get("alarm") == "collision"]
    details = alarm["details"]
    assert details["emergency"] is True and details["isolation_distance_m"] == 500  # no permit
    trucks = details["exposure"]["trucks"]
    assert [t["vehicle_id"] for t in trucks] == ["苏E71901"]  # not itself, not the far one
    assert 250 < trucks[0]["distance_m"] < 350
    helper = next(r for r in details["responders"] if r["crosses_border"])
    assert helper["province"] == "JS"

    # the keeper's record: raised, with the responders and the exposure of the alert
    incident = alarm["incident_id"]
    records = kafka.read(env["YRD_TOPIC_INCIDENTS"],
                         lambda rs: any(r and r["incident_id"] == incident for r in rs))
    record = latest(records, "incident_id", incident)
    assert record["emergency"] and record["subject"] == "collision" and record["province"] == "SH"
    assert [a["kind"] for a in record["actions"]] == ["raised"]
    assert record["responders"] == details["responders"]
    assert record["exposure"]["trucks"] == trucks

    # the duty officer answers with the CLI: the JS team is dispatched, arrives, and the
    # incident is closed two hours after the dispatch
    crash_at = pings[-1].ts
    def at(minutes: int) -> str:
        return (crash_at + timedelta(minutes=minutes)).isoformat()

    for step in (["dispatch", helper["resource_id"], "--at", at(5)],
                 ["arrive", helper["resource_id"], "--at", at(30)],
                 ["close", "--at", at(125), "--text", "tank emptied, road open"]):
        done = cli(env, "respond", incident, *step, "--by", "sh-duty")
        assert done.returncode == 0, done.stdout + done.stderr
    assert "CLOSED" in done.stdout and "cross-border" in done.stdout
    again = cli(env, "respond", incident, "dispatch", helper["resource_id"], "--by", "sh-duty")
    assert again.returncode == 1 and "refused: the incident was closed" in again.stderr

    record = latest(kafka.read(env["YRD_TOPIC_INCIDENTS"], lambda rs: any(
        r and r["incident_id"] == incident and r["rejected"] for r in rs)), "incident_id", incident)
    assert [a["kind"] for a in record["actions"]] == ["raised", "dispatch", "arrive", "close"]
    audit = kafka.read(env["YRD_TOPIC_AUDIT"], lambda rs: len(rs) >= 4, 30)
    assert [(e["user"], e["action"], e["outcome"]) for e in audit] == [
        ("sh-duty", "incident.dispatch", "ok"), ("sh-duty", "incident.arrive", "ok"),
        ("sh-duty", "incident.close", "ok"), ("sh-duty", "incident.dispatch", "refused")]
    assert "closed" in audit[-1]["reason"]
    [response] = record["responses"]
    assert (response["province"], response["crosses_border"]) == ("JS", True)
    # the team was deployed to the incident while there, and is available again
    statuses = [r for r in kafka.read(env["YRD_TOPIC_RESOURCES"], lambda rs: sum(
        1 for r in rs if r and r["resource_id"] == helper["resource_id"]) >= 2)
        if r and r["resource_id"] == helper["resource_id"]]
    assert [(r["status"], r["deployed_to"]) for r in statuses[-2:]] == [
        ("deployed", incident), ("available", None)]

    month = crash_at.astimezone(CHINA_TZ).strftime("%Y-%m")
    ledger = cli(env, "ledger", "--month", month, "--format", "csv")
    assert ledger.returncode == 0, ledger.stderr
    assert "JS,SH,1,1,2.0,0" in ledger.stdout.splitlines()  # 5 -> 125 min: 2 resource-hours
    table = cli(env, "ledger", "--month", month)
    assert table.returncode == 0 and "JS" in table.stdout and "+2.00" in table.stdout
