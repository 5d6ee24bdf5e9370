"""The desk's users, sessions and jurisdiction filter (pure parts)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import msgspec
import pytest

from yrd_hazmat.desk import history, triage
from yrd_hazmat.desk.actions import NOTE_MAX, ActionRequest
from yrd_hazmat.desk.app import Feed
from yrd_hazmat.desk.bodies import LoginRequest
from yrd_hazmat.desk.commands import CommandRequest
from yrd_hazmat.desk.security import Throttle, content_security_policy, same_origin
from yrd_hazmat.desk.sessions import Sessions
from yrd_hazmat.desk.users import User, Users, hash_password, verify_password
from yrd_hazmat.core.models import (Alert, AlertState, City, IncidentAction, IncidentLog, Response,
                               Severity)
from yrd_hazmat.core.timeutil import CHINA_TZ

T = datetime(2026, 11, 29, 14, 0, tzinfo=CHINA_TZ)


def test_passwords_are_salted_hashes_that_verify():
    stored = hash_password("correct horse", iterations=1_000)
    assert "correct horse" not in stored and stored != hash_password("correct horse", 1_000)
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong", stored) and not verify_password("x", "garbage")


def test_users_authenticate_only_with_their_password():
    users = Users([User(name="sh", jurisdiction="SH", password=hash_password("pw", 1_000))])
    assert users.authenticate("sh", "pw").jurisdiction == "SH"
    assert users.authenticate("sh", "nope") is None and users.authenticate("ghost", "pw") is None


def test_an_unknown_name_costs_the_same_hash_as_a_wrong_password(monkeypatch):
    """The probe timed 149 ms for a known name and 1 ms for an unknown one: the decoy now
    has the users' iteration count, so both answers do the same work."""
    users = Users([User(name="sh", jurisdiction="SH", password=hash_password("pw", 20_000))])
    rounds: list[int] = []
    real = hashlib.pbkdf2_hmac

    def counted(name, password, salt, iterations, *rest):
        rounds.append(iterations)
        return real(name, password, salt, iterations, *rest)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counted)
    assert users.authenticate("sh", "wrong") is None
    assert users.authenticate("nobody", "wrong") is None
    assert rounds == [20_000, 20_000]


def test_failed_logins_lock_a_name_or_an_address_for_longer_each_time():
    now = [0.0]
    throttle = Throttle(limit=5, window_s=300, lockout_s=60, clock=lambda: now[0])
    for _ in range(4):
        throttle.failed("name:sh", "address:10.0.0.1")
    assert throttle.retry_after("name:sh") == 0  # four failures: still allowed
    throttle.failed("name:sh", "address:10.0.0.1")
    assert throttle.retry_after("name:sh") == 60
    assert throttle.retry_after("name:js", "address:10.0.0.1") == 60  # the address too
    assert throttle.retry_after("name:js", "address:10.0.0.2") == 0
    now[0] = 61
    assert throttle.retry_after("name:sh") == 0
    for _ in range(5):
        throttle.failed("name:sh")
    assert throttle.retry_after("name:sh") == 120  # the second lockout is twice as long
    now[0] = 200
    throttle.succeeded("name:sh")
    assert throttle.retry_after("name:sh") == 0
    # failures spread wider than the window never lock
    for i in range(10):
        now[0] = 1000 + i * 100
        throttle.failed("name:slow")
    assert throttle.retry_after("name:slow") == 0


def test_only_the_desks_own_origin_may_change_anything():
    host, scheme = "desk.police:8808", "http"
    assert same_origin("http://desk.police:8808", None, host, scheme)
    assert same_origin(None, "http://desk.police:8808/#/triage", host, scheme)
    for origin in ("http://desk.police:8809", "http://evil.police:8808", "https://desk.police:8808",
                   "http://x.desk.police:8808", "null"):
        assert not same_origin(origin, "http://desk.police:8808/", host, scheme), origin
    assert not same_origin(None, None, host, scheme)  # neither header: refused
    assert not same_origin("", "http://evil.police/", host, scheme)  # empty: the Referer decides
    assert same_origin("https://desk.police", None, "desk.police", "https")


def test_the_content_security_policy_allows_only_the_desk_and_its_tile_host():
    policy = content_security_policy(None)
    assert "default-src 'self'" in policy and "script-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy and "unsafe-eval" not in policy
    tiles = content_security_policy("https://{s}.tiles.example/{z}/{x}/{y}.png")
    assert "img-src 'self' data: blob: https://*.tiles.example;" in tiles


def test_every_text_field_of_a_body_has_a_limit():
    def refused(kind, body: dict) -> bool:
        try:
            msgspec.json.decode(msgspec.json.encode(body), type=kind)
        except msgspec.ValidationError:
            return True
        return False

    assert not refused(ActionRequest, {"kind": "note", "text": "x" * NOTE_MAX})
    assert refused(ActionRequest, {"kind": "note", "text": "x" * (NOTE_MAX + 1)})
    assert refused(ActionRequest, {"kind": "assign", "assignee": "x" * 65})
    assert refused(ActionRequest, {"kind": "dispatch", "resource_id": "x" * 65})
    assert refused(ActionRequest, {"kind": "note", "text": "x", "extra": 1})
    assert refused(ActionRequest, {"kind": "raised"})  # the worker's, not a desk's
    assert refused(CommandRequest, {"kind": "text", "text": "x" * 401})
    assert refused(LoginRequest, {"name": "x" * 65, "password": "p"})
    assert refused(LoginRequest, {"name": "sh", "password": "p" * 1025})


def test_sessions_expire_and_cannot_be_forged():
    sessions = Sessions(b"k" * 32, ttl_s=60)
    token, session = sessions.issue("sh-duty", now=1_000)
    assert sessions.parse(token, now=1_030) == session and session.name == "sh-duty"
    assert sessions.parse(token, now=1_061) is None  # expired
    name, expiry, sid, signature = token.split(".")
    assert sessions.parse(f"{name}.{int(expiry) + 3600}.{sid}.{signature}", now=1_030) is None
    assert sessions.parse(f"{name}.{expiry}.{'x' * len(sid)}.{signature}", now=1_030) is None
    assert Sessions(b"other" * 8, 60).parse(token, now=1_030) is None
    for garbage in ("garbage", "a.b.c.d", "", None, "名.1.2.3", token + "é"):
        assert sessions.parse(garbage, now=1_030) is None
    # each login is its own session: revoking one leaves the others
    assert sessions.issue("sh-duty", now=1_000)[1].sid != session.sid


def alert(province: str | None, type_: str = "SPEEDING", severity=Severity.WARNING,
          city: str = "310000") -> Alert:
    return Alert(alert_id="i:raised", incident_id="i", type=type_, severity=severity,
                 state=AlertState.RAISED, vehicle_id="沪A12345", ts=T, emitted_at=T, lat=31.2,
                 lon=121.4, province=province, city=City(code=city, name="x"))


def test_a_feed_shows_only_its_users_jurisdiction_and_filters():
    sh = User(name="sh", jurisdiction="SH", password="-")
    region = User(name="chief", jurisdiction="region", password="-")
    assert Feed(sh, {}).wants(alert("SH")) and not Feed(sh, {}).wants(alert("JS"))
    assert not Feed(sh, {}).wants(alert(None))
    assert Feed(region, {}).wants(alert("JS")) and Feed(region, {}).wants(alert(None))
    # a filter never widens the jurisdiction
    assert not Feed(sh, {"province": "JS"}).wants(alert("JS"))
    critical_only = Feed(region, {"severity": "critical", "type": "ZONE_VIOLATION"})
    assert critical_only.wants(alert("ZJ", "ZONE_VIOLATION", Severity.CRITICAL))
    assert not critical_only.wants(alert("ZJ", "SPEEDING", Severity.CRITICAL))
    assert not Feed(region, {"city": "320100"}).wants(alert("SH"))


# --- the duty shift's lists (pure) ----------------------------------------------------------
def action(kind: str, minutes: float, **fields) -> IncidentAction:
    return IncidentAction(kind=kind, by="sh-duty" if kind not in ("raised", "cleared") else "worker",
                          at=T + timedelta(minutes=minutes), **fields)


def record(incident_id: str, *actions: IncidentAction, emergency: bool = False,
           province: str | None = "SH", **fields) -> IncidentLog:
    return IncidentLog(incident_id=incident_id, vehicle_id="沪A12345", province=province,
                       alert_type="COLLISION", actions=list(actions), emergency=emergency,
                       severity=Severity.CRITICAL, raised_at=T, lat=31.2, lon=121.4, **fields)


def test_a_triage_items_state_says_how_far_handling_went():
    raised = action("raised", 0)
    assert triage.state_of(None) == "new"
    assert triage.state_of(record("i", raised)) == "new"
    assert triage.state_of(record("i", raised, action("note", 1, text="seen"))) == "acknowledged"
    assert triage.state_of(record("i", raised, action("ack", 1),
                                  action("assign", 2, assignee="patrol 12"))) == "assigned"
    cleared = {"cleared_at": T + timedelta(minutes=10)}
    # an emergency whose alarm cleared is handled once a desk noted it after the clear ...
    late_note = record("e", raised, action("ack", 1), action("cleared", 10), action("note", 11),
                       emergency=True, **cleared)
    assert triage.state_of(late_note) == "handled"
    assert triage.state_of(record("e", raised, action("ack", 1), action("cleared", 10),
                                  emergency=True, **cleared)) == "acknowledged"
    # ... or once every response sent is released
    response = Response(resource_id="fire-1", name="消防一队", kind="fire_rescue", province="SH",
                        dispatched_at=T + timedelta(minutes=2))
    released = msgspec.structs.replace(response, released_at=T + timedelta(minutes=30))
    assert triage.state_of(record("e", raised, action("dispatch", 2), emergency=True,
                                  responses=[response], **cleared)) == "acknowledged"
    assert triage.state_of(record("e", raised, action("dispatch", 2), emergency=True,
                                  responses=[released], **cleared)) == "handled"


def test_triage_lists_critical_first_then_the_oldest_and_keeps_emergencies_until_closed():
    old_warning = alert("SH", "SPEEDING", Severity.WARNING)
    new_critical = msgspec.structs.replace(alert("SH", "ZONE_VIOLATION", Severity.CRITICAL),
                                           incident_id="z", alert_id="z:raised",
                                           ts=T + timedelta(minutes=5))
    crash = record("crash", action("raised", -1), action("cleared", 3), emergency=True,
                   cleared_at=T + timedelta(minutes=3))
    closed = record("closed", action("raised", -2), action("close", 4), emergency=True,
                    closed_at=T + timedelta(minutes=4))
    elsewhere = record("js", action("raised", -3), emergency=True, province="JS")
    records = {r.incident_id: r for r in (crash, closed, elsewhere)}
    listed = triage.triage([old_warning, new_critical], records.values(), records.get,
                           lambda p: p == "SH")
    assert [i["incident_id"] for i in listed["items"]] == ["crash", "z", "i"]
    assert listed["counts"] == {"critical": 2, "warning": 1, "info": 0}
    crash_item = listed["items"][0]
    assert crash_item["alert_id"] is None and crash_item["emergency"] is True
    assert crash_item["last_action"] is None and crash_item["state"] == "new"


def test_the_region_view_counts_and_times_handling_per_province():
    now = T + timedelta(hours=1)
    response = Response(resource_id="js-fire", name="南京消防", kind="fire_rescue", province="JS",
                        dispatched_at=T + timedelta(minutes=3), crosses_border=True)
    acked = record("a", action("raised", 0), action("ack", 2), action("dispatch", 3),
                   action("close", 30), emergency=True, responses=[response],
                   closed_at=T + timedelta(minutes=30))
    slow = record("b", action("raised", 0), action("note", 6))
    view = triage.region({"SH": [alert("SH", severity=Severity.CRITICAL)]}, [acked, slow],
                         ("SH", "JS"), now)
    sh = view["provinces"]["SH"]
    assert sh["open"] == {"critical": 1, "warning": 0, "info": 0}
    assert sh["emergencies_open"] == 0 and sh["cross_border_responses"] == 1
    assert sh["ack_median_s"] == 240.0 and sh["close_median_s"] == 1800.0
    assert view["provinces"]["JS"]["ack_median_s"] is None
    [crossing] = view["cross_border"]
    assert (crossing["from_province"], crossing["to_province"], crossing["resource"]) == (
        "JS", "SH", "南京消防")
    # a province's user sees only their province
    assert list(triage.region({}, [acked], ("JS",), now)["provinces"]) == ["JS"]


def test_a_history_query_is_checked_and_filters_as_asked():
    now = datetime(2026, 11, 29, 20, 0, tzinfo=CHINA_TZ)
    default = history.query_of({}, now)
    assert (default.since, default.until, default.limit) == (now - timedelta(hours=24), now, 5000)
    query = history.query_of({"from": "2026-11-29T08:00:00Z", "to": "2026-11-29T18:00",
                              "province": "SH,JS", "severity": "critical", "vehicle": "a12"}, now)
    assert query.since == datetime(2026, 11, 29, 16, 0, tzinfo=CHINA_TZ)  # Z is UTC
    assert query.until == datetime(2026, 11, 29, 18, 0, tzinfo=CHINA_TZ)  # none: China time
    assert query.wants(alert("SH", severity=Severity.CRITICAL))
    assert not query.wants(alert("ZJ", severity=Severity.CRITICAL))
    assert not query.wants(alert("SH", severity=Severity.WARNING))
    for bad in ({"from": "yesterday"}, {"from": "2026-11-29T19:00", "to": "2026-11-29T18:00"},
                {"limit": "0"}, {"limit": "50001"}, {"limit": "ten"}, {"vehicle": "x" * 65}):
        with pytest.raises(ValueError):
            history.query_of(bad, now)


def test_history_keeps_the_newest_and_says_when_it_cut():
    newest = history.Newest(limit=3)
    alerts = [msgspec.structs.replace(alert("SH"), alert_id=f"i{n}:raised") for n in range(10)]
    for n in range(0, 10, 2):
        newest.add([history.Found(1000 + n, alerts[n]), history.Found(1001 + n, alerts[n + 1])])
    assert [a.alert_id for a in newest.alerts()] == ["i9:raised", "i8:raised", "i7:raised"]
    assert newest.truncated
    few = history.Newest(limit=3)
    few.add([history.Found(1, alerts[0])])
    assert [a.alert_id for a in few.alerts()] == ["i0:raised"] and not few.truncated


def test_the_csv_export_opens_in_a_spreadsheet_without_running_anything():
    risky = msgspec.structs.replace(alert("SH"), details={"note": "=HYPERLINK(\"x\")", "limit": 80},
                                    city=City(code="310000", name="上海市"))
    text = history.csv_of([risky]).decode("utf-8")
    assert text.startswith("\ufefftime,type,severity,state,vehicle,province,city,lat,lon,"
                           "incident,details")
    row = text.splitlines()[1]
    assert row.startswith("2026-11-29T14:00:00+08:00,SPEEDING,warning,raised,沪A12345,SH,上海市,")
    assert "'note=" not in row and "note==HYPERLINK" in row  # the cell starts with "note"
    formula = msgspec.structs.replace(risky, details={"=cmd|' /C calc'!A0": 1})
    assert history.csv_of([formula]).decode("utf-8").endswith(",i,'=cmd|' /C calc'!A0=1\r\n")


def test_a_carriers_account_names_its_carrier_and_sees_no_province():
    from click.testing import CliRunner

    from yrd_hazmat.cli import main
    from yrd_hazmat.desk.users import UsersFile

    def users(**fields) -> bytes:
        return json.dumps({"users": [{"name": "jia", "password": "x", **fields}]}).encode()

    (jia,) = msgspec.json.decode(users(jurisdiction="carrier", carrier="甲运输"),
                                 type=UsersFile).users
    assert jia.provinces == () and not jia.sees("SH") and not jia.sees(None)
    for wrong in ({"jurisdiction": "carrier"}, {"jurisdiction": "SH", "carrier": "甲运输"}):
        with pytest.raises(msgspec.ValidationError, match="names its carrier"):
            msgspec.json.decode(users(**wrong), type=UsersFile)
    made = CliRunner().invoke(main, ["desk-user", "jia", "--jurisdiction", "carrier",
                                     "--carrier", "甲运输", "--password", "pw"])
    assert made.exit_code == 0 and json.loads(made.output)["carrier"] == "甲运输"
    refused = CliRunner().invoke(main, ["desk-user", "jia", "--jurisdiction", "carrier",
                                        "--password", "pw"])
    assert refused.exit_code == 2 and "--carrier" in refused.output
