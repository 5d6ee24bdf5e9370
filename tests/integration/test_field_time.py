"""Time as terminals in the field get it wrong or late, on the real worker (issue #21):
a fix stamped hours ahead, fixes a terminal kept in a dead zone and uploaded later, and
reports without a satellite fix."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import msgspec
import pytest

from tests.harness import wait_until
from tests.integration.harness import run_env, scrape, wait_processed
from tests.integration.traces import drive, of
from yrd_hazmat.core.models import Ping
from yrd_hazmat.core.timeutil import CHINA_TZ

pytestmark = pytest.mark.integration

CENTRE = (121.50, 31.30)  # Shanghai (Baoshan/Yangpu)
KM_LON, KM_LAT = 0.0105, 0.009  # degrees per km at 31 N
RING = {
    "type": "Feature",
    "geometry": {"type": "Polygon", "coordinates": [[
        [CENTRE[0] - KM_LON, CENTRE[1] - KM_LAT], [CENTRE[0] + KM_LON, CENTRE[1] - KM_LAT],
        [CENTRE[0] + KM_LON, CENTRE[1] + KM_LAT], [CENTRE[0] - KM_LON, CENTRE[1] + KM_LAT],
        [CENTRE[0] - KM_LON, CENTRE[1] - KM_LAT]]]},
    "properties": {"zone_id": "e2e-ring", "name": "test inner ring", "kind": "city_core",
                   "province": "SH", "banned_classes": "all"},
}


@pytest.fixture(scope="module")
def env(services):
    return run_env(services, YRD_SIGNAL_LOST_S="300", YRD_SIGNAL_CHECK_INTERVAL_S="2")


def now() -> datetime:
    return datetime.now(CHINA_TZ).replace(microsecond=0)


def at(vehicle: str, ts: datetime, dx_km: float, dy_km: float, speed: float, **fields) -> Ping:
    """A fix ``dx_km`` east and ``dy_km`` north of the ring's centre."""
    return Ping(vehicle_id=vehicle, ts=ts, lon=CENTRE[0] + dx_km * KM_LON,
                lat=CENTRE[1] + dy_km * KM_LAT, speed_kmh=speed, road_class="other",
                status_flags=3, **fields)


def test_a_fix_stamped_hours_ahead_is_refused_and_the_truck_goes_on_being_judged(
        env, kafka, worker):
    """China time applied twice: one fix 8 h ahead. It is refused as time_ahead; it never
    becomes the truck's present, so the correctly stamped speeding run after it raises."""
    t0 = now() - timedelta(minutes=6)
    before = drive("沪A21001", t0, [50.0] * 3, every_s=10)
    ahead = msgspec.structs.replace(before[-1], ts=now() + timedelta(hours=8), speed_kmh=51.0)
    run = drive("沪A21001", t0 + timedelta(seconds=30), [95.0] * 24 + [60.0], every_s=10)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], before + [ahead] + run)

    alerts = of(kafka.alerts_to_barrier(env, run[-1]), "沪A21001")
    assert [(a["type"], a["state"]) for a in alerts] == [
        ("SPEEDING", "raised"), ("SPEEDING", "cleared")]
    assert alerts[0]["ts"] == (t0 + timedelta(seconds=60)).isoformat()
    dead = of_key(kafka.read(env["YRD_TOPIC_DEADLETTER"], lambda r: len(r) >= 1, settle=1),
                  "沪A21001")
    assert [d["reason"] for d in dead] == ["time_ahead"]
    assert json.loads(dead[0]["raw"])["ts"] == ahead.ts.isoformat()
    wait_processed(env, "沪A21001", barrier(run[-1]))  # never frozen 8 h ahead


def test_fixes_kept_in_a_dead_zone_raise_what_the_straight_line_missed(env, kafka, worker):
    """The truck drove through the ring during a 20-minute gap; the line between the fixes
    before and after the gap passes 3 km north of it. Back in coverage it reports where it
    is, then uploads the fixes it kept: they raise the violation at their own time, marked
    as uploaded late, and the truck's present stays where it is. A second upload of the
    same fixes raises nothing."""
    vehicle = "沪A21002"
    kafka.send(env["YRD_TOPIC_ZONES"], b"e2e-ring", json.dumps(RING).encode())
    kafka.flush()
    wait_until(lambda: scrape(env["YRD_METRICS_PORT"]).get(("yrd_zones_loaded", ())) == 1,
               "the ring loaded")
    t0 = now() - timedelta(minutes=30)
    before = [at(vehicle, t0 + timedelta(seconds=10 * i), -5 + 0.1 * i, 3, 36) for i in range(6)]
    gap_start = before[-1].ts
    kept = [at(vehicle, gap_start + timedelta(seconds=30 * i), -4.5 + 9 * f,
               3 - 6 * f if f <= 0.5 else -3 + 6 * f, 32, blind=True)
            for i in range(1, 40) for f in [i / 40]]  # down through the ring and up again
    present = at(vehicle, gap_start + timedelta(minutes=20), 4.5, 3, 36)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], before + [present])
    wait_processed(env, vehicle, present)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], kept)

    alerts = of(kafka.alerts_to_barrier(env, present), vehicle)
    violations = [a for a in alerts if a["type"] == "ZONE_VIOLATION"]
    assert [a["state"] for a in violations] == ["raised", "cleared"], alerts
    raised, cleared = violations
    assert raised["details"]["zone_id"] == "e2e-ring" and raised["details"]["uploaded_late"]
    assert gap_start < datetime.fromisoformat(raised["ts"]) < datetime.fromisoformat(cleared["ts"])
    assert datetime.fromisoformat(cleared["ts"]) < present.ts
    # live, only the 20-minute silence itself (raised and cleared by the present fix)
    assert {a["type"] for a in alerts if not a["details"].get("uploaded_late")} <= {"SIGNAL_LOST"}
    wait_processed(env, vehicle, barrier(present))  # the present is not rewound
    counted = scrape(env["YRD_METRICS_PORT"])[("yrd_pings_uploaded_late_total", ())]
    assert counted >= len(kept)

    kafka.send_pings(env["YRD_TOPIC_PINGS"], kept)  # the terminal uploads them again
    again_barrier = msgspec.structs.replace(present, ts=present.ts + timedelta(seconds=5))
    kafka.send_pings(env["YRD_TOPIC_PINGS"], [again_barrier])
    later = of(kafka.alerts_to_barrier(env, again_barrier), vehicle)
    assert [a["alert_id"] for a in later if a["type"] == "ZONE_VIOLATION"] == [
        a["alert_id"] for a in violations]  # the same two records, nothing more
    assert not of_key(kafka.read(env["YRD_TOPIC_DEADLETTER"], lambda r: True, settle=1), vehicle)


def test_reports_without_a_fix_keep_the_truck_online_but_are_no_position(env, kafka, worker):
    """Two trucks go 6.5 minutes without a position: one sends reports without a satellite
    fix (0,0) every 30 s, the other nothing. Only the silent one is SIGNAL_LOST; neither
    is ever placed at 0,0. (The trace is anchored so that the wall-clock timer finds
    neither silent before their pings are processed.)"""
    t0 = now() - timedelta(minutes=5)
    talking, silent = "沪A21003", "沪A21004"
    pings, backs = [], []
    for vehicle in (talking, silent):
        trip = drive(vehicle, t0, [40.0] * 6, every_s=10)
        back = msgspec.structs.replace(trip[-1], ts=trip[-1].ts + timedelta(seconds=390))
        pings += trip
        if vehicle == talking:
            pings += [Ping(vehicle_id=vehicle, ts=trip[-1].ts + timedelta(seconds=30 * (i + 1)),
                           lat=0.0, lon=0.0, speed_kmh=0.0, status_flags=1, fix_valid=False,
                           quality=["no_fix"]) for i in range(12)]
        pings.append(back)
        backs.append(back)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], pings)

    alerts = kafka.alerts_to_barrier(env, *backs)
    assert of(alerts, talking) == []
    assert [(a["type"], a["state"]) for a in of(alerts, silent)] == [
        ("SIGNAL_LOST", "raised"), ("SIGNAL_LOST", "cleared")]
    assert all(a["lat"] != 0.0 for a in alerts)
    assert scrape(env["YRD_METRICS_PORT"])[("yrd_pings_without_fix_total", ())] >= 12


def barrier(ping: Ping) -> Ping:
    """The barrier ping :meth:`Kafka.alerts_to_barrier` sent after ``ping`` (its time)."""
    return msgspec.structs.replace(ping, ts=ping.ts + timedelta(milliseconds=1))


def of_key(letters: list[dict], vehicle: str) -> list[dict]:
    return [d for d in letters if d.get("key") == vehicle]
