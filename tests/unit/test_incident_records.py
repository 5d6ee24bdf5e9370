"""The incident record and the regional ledger, as the keeper and ``yrd-hazmat ledger`` see
them: dispatch, arrive, release, close; refusals; replays; sums per province pair."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from msgspec.structs import replace

from yrd_hazmat.core.emergency import ledger
from yrd_hazmat.core.emergency.incidents import apply, resource_status, touched
from yrd_hazmat.core.models import Alert, IncidentAction, IncidentCommand, IncidentLog, Resource
from yrd_hazmat.core.timeutil import CHINA_TZ

T0 = datetime(2026, 11, 10, 14, 0, tzinfo=CHINA_TZ)


def resource(rid: str, province: str, **fields) -> Resource:
    base = {"resource_id": rid, "name": rid, "kind": "fire_rescue", "lon": 121.0, "lat": 31.0,
            "province": province, "capabilities": ["leak"]}
    return msgspec.convert(base | fields, Resource)


JS_TEAM = resource("js-kunshan", "JS")
SH_TEAM = resource("sh-jiading", "SH")
ZJ_TEAM = resource("zj-jiaxing", "ZJ")


def alert(incident: str = "inc-1", province: str | None = "SH", at: datetime = T0, **details) -> Alert:
    return msgspec.convert({
        "alert_id": f"{incident}:raised", "incident_id": incident, "type": "DEVICE_ALARM",
        "severity": "critical", "state": "raised", "vehicle_id": "沪A12345",
        "ts": at.isoformat(), "emitted_at": at.isoformat(), "lat": 31.3, "lon": 121.17,
        "province": province, "hazard_class": "2.3", "un_number": "1017",
        "details": {"emergency": True, "alarm": "collision", "responders_province": province or "SH",
                    "isolation_distance_m": 60, "responders": [{"resource_id": "js-kunshan"}],
                    "exposure": {"radius_m": 60, "zones": [], "trucks": []}} | details,
    }, Alert)


def act(kind: str, minutes: float, resource_id: str | None = None, incident: str = "inc-1",
        start: datetime = T0, **fields) -> IncidentCommand:
    return IncidentCommand(incident_id=incident, action=IncidentAction(
        kind=kind, by="duty-officer", at=start + timedelta(minutes=minutes),
        resource_id=resource_id, **fields))


def run(log: IncidentLog | None, *steps) -> tuple[IncidentLog, list[str]]:
    """Apply (command, resource) steps; the refusals, in order."""
    refused = []
    for command, res in steps:
        log, reason = apply(log, command, res)
        if reason:
            refused.append(reason)
    assert log is not None
    return log, refused


def raised(incident: str = "inc-1", province: str | None = "SH", **kw) -> IncidentCommand:
    a = alert(incident, province, **kw)
    return IncidentCommand(incident_id=incident, alert=a, action=IncidentAction(
        kind="raised", by="worker", at=a.ts, action_id=a.alert_id))


def test_an_emergency_record_follows_raise_dispatch_arrive_release_close():
    log, refused = run(None, (raised(), None), (act("dispatch", 5, "js-kunshan"), JS_TEAM),
                       (act("dispatch", 6, "sh-jiading"), SH_TEAM),
                       (act("arrive", 30, "js-kunshan"), JS_TEAM),
                       (act("release", 90, "sh-jiading"), SH_TEAM), (act("close", 120), None))
    assert refused == []
    assert log.emergency and log.subject == "collision" and log.responders[0]["resource_id"] == "js-kunshan"
    assert [a.kind for a in log.actions] == ["raised", "dispatch", "dispatch", "arrive", "release", "close"]
    js, sh = log.responses
    assert (js.province, js.crosses_border, js.arrived_at) == ("JS", True, T0 + timedelta(minutes=30))
    assert js.released_at == T0 + timedelta(minutes=120)  # the close released it
    assert (sh.crosses_border, sh.released_at) == (False, T0 + timedelta(minutes=90))
    assert log.closed_at == T0 + timedelta(minutes=120)


def test_actions_that_make_no_sense_are_refused_and_noted_not_recorded():
    log, _ = run(None, (raised(), None), (act("dispatch", 5, "js-kunshan"), JS_TEAM))
    out_of_service = replace(ZJ_TEAM, status="out_of_service")
    busy = replace(SH_TEAM, status="deployed", deployed_to="another-incident")
    log, refused = run(log, (act("arrive", 10, "sh-jiading"), SH_TEAM),
                       (act("dispatch", 11, "js-kunshan"), JS_TEAM),
                       (act("dispatch", 12, "zj-jiaxing"), out_of_service),
                       (act("dispatch", 13, "sh-jiading"), busy),
                       (act("dispatch", 14, "nowhere"), None),
                       (act("arrive", 4, "js-kunshan"), JS_TEAM),
                       (act("close", 60), None), (act("dispatch", 61, "zj-jiaxing"), ZJ_TEAM))
    assert [r[:30] for r in refused] == [
        "sh-jiading is not dispatched t", "js-kunshan is already dispatch", "zj-jiaxing is out of service",
        "sh-jiading is deployed to inci", "unknown resource nowhere", "arrive before the dispatch (20",
        "the incident was closed at 202"]
    assert [a.kind for a in log.actions] == ["raised", "dispatch", "close"]
    assert len(log.rejected) == 7 and log.rejected[0]["reason"].startswith("sh-jiading")
    assert apply(None, act("note", 1, text="hello"), None) == (
        None, "unknown incident: no record and no alert to open one with")


def test_a_replayed_command_is_recorded_once():
    dispatch = act("dispatch", 5, "js-kunshan")
    log, refused = run(None, (raised(), None), (raised(), None), (dispatch, JS_TEAM),
                       (dispatch, replace(JS_TEAM, status="deployed", deployed_to="inc-1")))
    assert refused == [] and [a.kind for a in log.actions] == ["raised", "dispatch"]
    assert len(log.responses) == 1


def test_a_dispatched_resource_is_deployed_to_the_incident_until_released():
    log, _ = run(None, (raised(), None), (act("dispatch", 5, "js-kunshan"), JS_TEAM))
    deployed = resource_status(JS_TEAM, log)
    assert deployed is not None and (deployed.status, deployed.deployed_to) == ("deployed", "inc-1")
    assert resource_status(deployed, log) is None  # nothing to change
    closed, _ = run(log, (act("close", 60), None))
    assert touched(closed, closed.actions[-1]) == ["js-kunshan"]
    back = resource_status(deployed, closed)
    assert back is not None and (back.status, back.deployed_to) == ("available", None)
    # a resource put out of service meanwhile stays out of service
    assert resource_status(replace(JS_TEAM, status="out_of_service"), closed) is None


def test_the_ledger_sums_per_province_pair_given_equals_received():
    now = T0 + timedelta(days=5)
    other = T0 + timedelta(days=1)
    sh, _ = run(None, (raised("sh-1"), None),
                (act("dispatch", 0, "js-kunshan", "sh-1"), JS_TEAM),
                (act("dispatch", 0, "sh-jiading", "sh-1"), SH_TEAM),
                (act("release", 90, "js-kunshan", "sh-1"), JS_TEAM),   # 1.5 h JS -> SH
                (act("close", 120, None, "sh-1"), None))               # 2 h SH own
    js, _ = run(None, (raised("js-1", "JS", at=other), None),
                (act("dispatch", 0, "sh-jiading", "js-1", other), SH_TEAM),
                (act("dispatch", 0, "zj-jiaxing", "js-1", other), ZJ_TEAM),
                (act("close", 45, None, "js-1", other), None))        # 0.75 h SH -> JS, ZJ -> JS
    # outside the region, nearest province ZJ; still open: counts up to now
    zj, _ = run(None, (raised("out-1", None, at=now - timedelta(hours=3), responders_province="ZJ"), None),
                (act("dispatch", 0, "js-kunshan", "out-1", now - timedelta(hours=3)), JS_TEAM))
    december, _ = run(None, (raised("dec-1", "SH", at=datetime(2026, 12, 1, 0, 30, tzinfo=CHINA_TZ)), None),
                      (act("dispatch", 0, "js-kunshan", "dec-1", datetime(2026, 12, 1, 0, 30, tzinfo=CHINA_TZ)),
                       JS_TEAM))
    logs = [sh, js, zj, december]
    rows = {(r.giver, r.receiver): r for r in ledger.pairs(logs, "2026-11", now)}
    assert set(rows) == {("SH", "SH"), ("SH", "JS"), ("JS", "SH"), ("JS", "ZJ"), ("ZJ", "JS")}
    assert (rows["JS", "SH"].responses, rows["JS", "SH"].resource_hours) == (1, 1.5)
    assert rows["SH", "SH"].resource_hours == 2.0
    assert rows["SH", "JS"].resource_hours == rows["ZJ", "JS"].resource_hours == 0.75
    assert (rows["JS", "ZJ"].resource_hours, rows["JS", "ZJ"].open_responses) == (3.0, 1)
    by_province = {r.province: r for r in ledger.provinces(logs, "2026-11", now)}
    assert by_province["JS"].hours_given == 4.5 and by_province["JS"].hours_received == 1.5
    assert by_province["SH"].hours_given == 0.75 and by_province["SH"].hours_received == 1.5
    assert by_province["ZJ"].incidents == 1 and by_province["AH"].responses_given == 0
    assert sum(p.hours_given for p in by_province.values()) == sum(
        p.hours_received for p in by_province.values())  # every hour given is received once
    csv_text = ledger.to_csv(list(rows.values()))
    assert csv_text.splitlines()[0] == "giver,receiver,incidents,responses,resource_hours,open_responses"
    assert "JS,SH,1,1,1.5,0" in csv_text.splitlines()
    assert ledger.pairs(logs, "2026-12", now)[0].giver == "JS"
