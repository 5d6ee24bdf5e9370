"""Emergencies in the core: a tank leak, a banned truck inside a water-source zone; the
zones exposed within the isolation distance; ordinary bans stay plain violations."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from yrd_hazmat.core.emergency.responders import ResourceIndex
from yrd_hazmat.core.engine import Reference, advance
from yrd_hazmat.core.enrich import observe
from yrd_hazmat.core.geo.jurisdiction import default_index, province_shapes_metric
from yrd_hazmat.jt808 import messages as m
from yrd_hazmat.jt808 import profiles
from yrd_hazmat.core.models import Resource
from tests.unit.test_zones import CFG, MONDAY_10AM, at, feature, registry, ring

V = "沪A55555"
TEAM = msgspec.convert({"resource_id": "sh-team", "name": "SH team", "kind": "fire_rescue",
                        "lon": 121.41, "lat": 31.21, "province": "SH",
                        "capabilities": ["leak"]}, Resource)


def run(reg, pings):
    index = reg.index
    out = advance(None, V, observe(pings, default_index(), index), CFG, MONDAY_10AM,
                  Reference(zones=index.by_id, provinces=province_shapes_metric(),
                            resources=ResourceIndex([TEAM])))
    return out.alerts


def zone(zone_id: str, kind: str, half_m: float, dx: float = 0.0) -> dict:
    return feature({"type": "Polygon", "coordinates": [ring(half_m, dx)]}, zone_id=zone_id,
                   name=zone_id, kind=kind)


def test_a_banned_truck_inside_a_water_source_zone_is_an_emergency_with_responders():
    reg = registry(zone("reservoir", "water_source", 500), zone("market", "city_core", 100, 900))
    trace = [at(s, -900 + s * 10) for s in range(0, 120, 5)]
    raised = [a for a in run(reg, trace) if a.state.value == "raised"]
    water = next(a for a in raised if a.details["zone_id"] == "reservoir")
    assert water.severity.value == "critical" and water.details["emergency"] is True
    assert water.details["responders"][0]["resource_id"] == "sh-team"
    # unknown cargo: 500 m isolation; the market 900 m east (edge 800 m) is beyond it
    assert water.details["isolation_distance_m"] == 500
    exposed = water.details["exposure"]["zones"]
    assert [(z["zone_id"], z["distance_m"]) for z in exposed] == [("reservoir", 0.0)]


def test_an_ordinary_ban_is_a_violation_not_an_emergency():
    reg = registry(zone("core", "city_core", 500))
    raised = [a for a in run(reg, [at(s, -900 + s * 10) for s in range(0, 120, 5)])
              if a.state.value == "raised"]
    assert raised and "emergency" not in raised[0].details and "responders" not in raised[0].details


def test_a_tank_leak_from_the_terminal_is_a_critical_alarm_with_the_zones_exposed():
    body = m.location(MONDAY_10AM, 31.2, 121.4, 0, tank_leak=True)
    assert m.read_location(body, profiles.by_name("yrd-tank-sensor")).alarm_extra == {"tank_leak": 1}
    reg = registry(zone("reservoir", "water_source", 200, 450), zone("far", "tunnel", 100, 3000))
    leaking = msgspec.structs.replace(at(5, 0, speed=0), alarm_extra={"tank_leak": 1})
    alerts = run(reg, [at(0, 0, speed=0), leaking, at(10, 0, speed=0)])
    assert [(a.details["alarm"], a.state.value) for a in alerts] == [
        ("tank_leak", "raised"), ("tank_leak", "cleared")]
    leak = alerts[0]
    assert leak.severity.value == "critical" and leak.ts == MONDAY_10AM + timedelta(seconds=5)
    zones = leak.details["exposure"]["zones"]
    assert [z["zone_id"] for z in zones] == ["reservoir"]  # 250 m away; the tunnel 2.9 km
    assert abs(zones[0]["distance_m"] - 250) < 1 and zones[0]["zone_kind"] == "water_source"


def test_what_a_replay_may_change_is_only_the_wall_clock_and_the_exposed_trucks():
    from yrd_hazmat.core.emergency.scene import replayable

    zones = [{"zone_id": "reservoir", "distance_m": 0.0}]
    first = {"alert_id": "a:raised", "emitted_at": "10:00", "details": {
        "alarm": "collision", "exposure": {"radius_m": 500, "zones": zones, "trucks": []}}}
    replay = {"alert_id": "a:raised", "emitted_at": "10:05", "details": {
        "alarm": "collision", "exposure": {"radius_m": 500, "zones": zones, "trucks": None,
                                           "trucks_unknown": "read model unavailable"}}}
    assert replayable(first) == replayable(replay)
    assert replayable(first)["details"]["exposure"] == {"radius_m": 500, "zones": zones}
    other_zone = {**first, "details": {**first["details"], "exposure": {"radius_m": 500, "zones": []}}}
    assert replayable(other_zone) != replayable(first)
