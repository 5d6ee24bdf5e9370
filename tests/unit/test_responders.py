"""Nearest responders: across borders, by capability and hazard class, only available ones."""

from __future__ import annotations

from importlib.resources import files

import msgspec

from yrd_hazmat.core.emergency.responders import ResourceIndex, handles, load_resources
from yrd_hazmat.core.geo.projection import to_metric
from yrd_hazmat.core.models import Resource


def resource(rid: str, lon: float, lat: float, province: str, **fields) -> Resource:
    base = {"resource_id": rid, "name": rid, "kind": "fire_rescue", "lon": lon, "lat": lat,
            "province": province, "capabilities": ["fire", "leak"]}
    return msgspec.convert(base | fields, Resource)


# an incident on the SH side of the SH/JS border near Huaqiao/Anting (121.17, 31.30)
INCIDENT = tuple(float(v) for v in to_metric(121.17, 31.30))
NEAR_JS = resource("js-kunshan", 121.05, 31.33, "JS")     # ~12 km, across the border
FAR_SH = resource("sh-centre", 121.47, 31.23, "SH")       # ~30 km, same province


def test_the_nearest_responder_may_come_from_the_next_province():
    index = ResourceIndex([FAR_SH, NEAR_JS])
    first, second = index.nearest(*INCIDENT, "SH", "2.3")
    assert (first.resource_id, first.crosses_border) == ("js-kunshan", True)
    assert (second.resource_id, second.crosses_border) == ("sh-centre", False)
    assert first.distance_km < second.distance_km
    assert first.eta_min == round(first.distance_km / 60 * 60, 1)  # 60 km/h by default


def test_capabilities_and_hazard_classes_filter_the_responders():
    hospital = resource("sh-hospital", 121.16, 31.30, "SH", kind="hospital", capabilities=["medical"])
    petrol_only = resource("js-petrol", 121.15, 31.31, "JS", hazard_classes=["3"])
    index = ResourceIndex([hospital, petrol_only, FAR_SH])
    chlorine = [r.resource_id for r in index.nearest(*INCIDENT, "SH", "2.3")]
    assert chlorine == ["sh-centre"]  # the hospital is no hazmat responder; class 3 only
    petrol = [r.resource_id for r in index.nearest(*INCIDENT, "SH", "3")]
    assert petrol == ["js-petrol", "sh-centre"]
    assert [r.resource_id for r in index.nearest(*INCIDENT, "SH", "2.3",
                                                  capabilities=frozenset({"medical"}))] == ["sh-hospital"]
    # unknown cargo: only resources for every class
    assert [r.resource_id for r in index.nearest(*INCIDENT, "SH", None)] == ["sh-centre"]
    assert handles(resource("x", 0, 0, "SH", hazard_classes=["2"]), "2.1")


def test_a_resource_out_of_service_or_deployed_is_not_proposed_until_available_again():
    index = ResourceIndex([FAR_SH, NEAR_JS])
    index.put(msgspec.structs.replace(NEAR_JS, status="out_of_service"))
    assert [r.resource_id for r in index.nearest(*INCIDENT, "SH", "2.3")] == ["sh-centre"]
    index.put(msgspec.structs.replace(FAR_SH, status="deployed"))
    assert index.nearest(*INCIDENT, "SH", "2.3") == []
    index.put(NEAR_JS)
    assert [r.resource_id for r in index.nearest(*INCIDENT, "SH", "2.3")] == ["js-kunshan"]


def test_the_shipped_illustrative_set_loads_and_is_labelled_approximate():
    resources = load_resources(files("yrd_hazmat.data") / "resources.json")
    assert {r.province for r in resources} == {"SH", "JS", "ZJ", "AH"}
    assert all(r.approximate for r in resources)
    index = ResourceIndex(resources)
    near_jiaxing = index.nearest(*(float(v) for v in to_metric(121.0, 30.75)), "ZJ", "2.3", limit=3)
    assert near_jiaxing[0].resource_id == "zj-jiaxing-port"
    assert any(r.crosses_border for r in near_jiaxing)  # Shanghai's chemical park is close


def test_a_collision_alarm_proposes_responders_from_both_sides_of_the_border():
    from datetime import datetime

    from yrd_hazmat.core.engine import Reference, RulesConfig, advance
    from yrd_hazmat.core.enrich import observe
    from yrd_hazmat.core.geo.jurisdiction import default_index, province_shapes_metric
    from yrd_hazmat.core.models import Ping
    from yrd_hazmat.core.timeutil import CHINA_TZ

    t0 = datetime(2026, 11, 29, 10, 0, tzinfo=CHINA_TZ)
    pings = [Ping(vehicle_id="沪A70001", ts=t0, lat=31.30, lon=121.17, speed_kmh=40.0),
             Ping(vehicle_id="沪A70001", ts=t0.replace(second=10), lat=31.30, lon=121.17,
                  speed_kmh=0.0, alarm_flags=1 << 29)]
    index = ResourceIndex([FAR_SH, NEAR_JS, resource("sh-hospital", 121.2, 31.3, "SH",
                                                      kind="hospital", capabilities=["medical"])])
    out = advance(None, "沪A70001", observe(pings, default_index()), RulesConfig(), t0,
                  Reference(resources=index, provinces=province_shapes_metric()))
    [alarm] = [a for a in out.alerts if a.type == "DEVICE_ALARM"]
    assert alarm.province == "SH"
    assert [r["resource_id"] for r in alarm.details["responders"]] == ["js-kunshan", "sh-centre"]
    assert alarm.details["responders"][0]["crosses_border"] is True
    assert alarm.details["responders_cross_border"] == 1
    assert alarm.details["hospital"]["resource_id"] == "sh-hospital"
    # without resources, the alarm is as before
    plain = advance(None, "沪A70001", observe(pings, default_index()), RulesConfig(), t0,
                    Reference(provinces=province_shapes_metric()))
    assert "responders" not in [a for a in plain.alerts if a.type == "DEVICE_ALARM"][0].details
