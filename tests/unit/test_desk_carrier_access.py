"""The desk's access table and the carriers' side without a broker: every route of the
application is decided, who may send which action, what a carrier's scope sees, the
notifications' rules (who manages which subscription, secrets kept and never shown), the
incident lists and an open alert's clock."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import msgspec
import pytest

from yrd_hazmat.config import Settings
from yrd_hazmat.core.models import Alert, IncidentAction, IncidentLog
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.desk import carriers, clock
from yrd_hazmat.desk.access import (EVERYONE, POLICE, ROUTES, Scope, action_refusal, may_call,
                                    who_may)
from yrd_hazmat.desk.app import Desk
from yrd_hazmat.desk.audit import audit
from yrd_hazmat.desk.notifications import (Deliveries, may_manage, sees_delivery,
                                           subscription_of, subscription_view)
from yrd_hazmat.desk.users import User, Users
from yrd_hazmat.notify.deadlines import Deadline, Policy, encode as encode_deadline
from yrd_hazmat.notify.deliveries import Delivery
from yrd_hazmat.notify.subscriptions import Subscription

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=CHINA_TZ)
JIA = User(name="jia", jurisdiction="carrier", password="-", carrier="甲危运")
SH = User(name="sh-duty", jurisdiction="SH", password="-", role="supervisor")
CLERK = User(name="sh-clerk", jurisdiction="SH", password="-")  # role duty
READER = User(name="sh-reader", jurisdiction="SH", password="-", role="readonly")
CHIEF = User(name="chief", jurisdiction="region", password="-")
REGISTER = {"沪A1": "甲危运", "沪A2": "乙危运"}.get


def app_routes() -> set[tuple[str, str]]:
    desk = Desk(Settings(desk_secret="x"), Users([SH]))
    return {(r.method, r.resource.canonical) for r in desk.application().router.routes()
            if r.method != "HEAD"}


def test_every_route_of_the_desk_is_decided_in_the_table():
    routes = app_routes()
    assert routes - ROUTES.keys() == set(), "a route nobody decided who may call"
    assert ROUTES.keys() - routes == set(), "the table names a route the desk does not have"


def test_a_carrier_calls_only_what_the_table_opens_to_everyone():
    assert may_call(JIA, "GET", "/api/trucks/{vehicle_id}/track")
    assert may_call(JIA, "HEAD", "/api/alerts/open")
    assert not may_call(JIA, "GET", "/api/triage")
    assert not may_call(JIA, "POST", "/api/trucks/{vehicle_id}/commands")
    assert not may_call(JIA, "GET", "/api/some-route-added-later")  # default deny
    assert may_call(SH, "GET", "/api/triage") and may_call(CHIEF, "GET", "/api/links")
    assert may_call(READER, "GET", "/api/triage")
    assert not may_call(READER, "POST", "/api/trucks/{vehicle_id}/commands")
    assert may_call(CLERK, "POST", "/api/trucks/{vehicle_id}/commands")
    assert not may_call(CLERK, "PUT", "/api/subscriptions/{subscription_id}")
    assert not may_call(SH, "GET", "/api/accounts") and may_call(CHIEF, "PUT", "/api/accounts/{name}")
    assert not may_call(SH, "POST", "/api/uplink/requests/{request_id}/answer")
    assert who_may("GET", "/api/links") == POLICE
    assert who_may("GET", "/api/incidents/{incident_id}") == EVERYONE


@pytest.mark.parametrize("user, kind, allowed", [
    (JIA, "ack", True), (JIA, "explain", True), (JIA, "appeal", True),
    (JIA, "close", False), (JIA, "note", False), (JIA, "appeal_accepted", False),
    (JIA, "appeal_rejected", False), (SH, "explain", False), (SH, "appeal", False),
    (SH, "appeal_accepted", True), (CHIEF, "appeal_rejected", True), (SH, "close", True),
    (CLERK, "close", True), (CLERK, "appeal_accepted", False), (READER, "ack", False),
    (READER, "appeal_rejected", False)])
def test_who_may_send_which_action(user, kind, allowed):
    assert (action_refusal(user, kind) is None) is allowed


def test_a_carriers_scope_is_its_trucks_wherever_they_are():
    jia, sh = Scope(JIA, REGISTER), Scope(SH, REGISTER)
    assert jia.sees_vehicle("沪A1", "JS") and jia.sees_vehicle("沪A1", None)
    assert not jia.sees_vehicle("沪A2", "SH") and not jia.sees_vehicle("沪A9", "SH")
    assert sh.sees_vehicle("沪A2", "SH") and not sh.sees_vehicle("沪A1", "JS")
    assert None in jia.provinces and sh.provinces == ("SH",)


def record(incident_id: str, vehicle: str, *actions: IncidentAction, **more) -> IncidentLog:
    return IncidentLog(incident_id=incident_id, vehicle_id=vehicle, province="SH",
                       alert_type="SPEEDING", actions=list(actions), raised_at=T0, **more)


def act(kind: str, minutes: int, text: str | None = None, **more) -> IncidentAction:
    return IncidentAction(kind=kind, by="someone", at=T0 + timedelta(minutes=minutes),
                          text=text, **more)


def test_the_incident_lists_and_the_appeal_story():
    appealed = record("i1", "沪A1", act("appeal", 5, "我们没有超速"), appeal="open")
    decided = record("i2", "沪A1", act("appeal", 3, "x"), act("appeal_rejected", 9, "视频为证"),
                     appeal="rejected")
    emergency = record("i3", "沪A2", emergency=True)
    old = IncidentLog(incident_id="i4", vehicle_id="沪A1", province="SH", alert_type="X",
                      actions=[], raised_at=T0 - timedelta(days=30))
    records = [appealed, decided, emergency, old]
    now = T0 + timedelta(hours=1)
    assert [r.incident_id for r in carriers.listed(records, "appeals", now)] == ["i1"]
    assert [r.incident_id for r in carriers.listed(records, "emergencies", now)] == ["i3"]
    assert {r.incident_id for r in carriers.listed(records, "recent", now)} == {"i1", "i2", "i3"}
    with pytest.raises(ValueError, match="view"):
        carriers.listed(records, "everything", now)
    view = msgspec.json.decode(msgspec.json.encode(carriers.record_view(
        record("i5", "沪A1", act("escalate", 6, level="province"), act("explain", 7, "已处置"),
               level="province"))))
    assert view["escalations"][0]["level"] == "province"
    assert [s["kind"] for s in view["appeal_story"]] == ["explain"]


def alert(kind: str = "SPEEDING", severity: str = "warning") -> Alert:
    return msgspec.convert({
        "alert_id": "a1", "incident_id": "i1", "vehicle_id": "沪A1", "type": kind,
        "severity": severity, "state": "raised", "ts": T0.isoformat(),
        "emitted_at": T0.isoformat(), "lat": 31.2, "lon": 121.4, "province": "SH",
        "details": {}}, Alert)


def test_an_open_alerts_clock_follows_the_policy_line():
    policy = Policy()
    policy.apply(b"SPEEDING:*", encode_deadline(Deadline(alert_type="SPEEDING", ack_s=60,
                                                         close_s=600)))
    fresh = clock.fields(policy, alert(), None, T0 + timedelta(seconds=30))
    assert fresh["ack_due"] == T0 + timedelta(seconds=60)
    assert fresh["close_due"] == T0 + timedelta(seconds=600)
    assert (fresh["level"], fresh["overdue"]) == ("city", False)
    late = clock.fields(policy, alert(), None, T0 + timedelta(seconds=90))
    assert (late["level"], late["overdue"], late["missed"]) == ("province", True, ["ack"])
    acked = clock.fields(policy, alert(), record("i1", "沪A1", act("ack", 1)),
                         T0 + timedelta(seconds=90))
    assert (acked["level"], acked["overdue"]) == ("city", False)  # met within the minute
    default = clock.fields(Policy(), alert("SOS", "critical"), None, T0)
    assert default["ack_due"] == T0 + timedelta(minutes=5)  # the notifier's defaults


def subscription(**more) -> Subscription:
    doc = {"subscription_id": "s1", "name": "值班群", "owner": "x",
           "channel": {"kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?"
                                                  "access_token=TOKEN123", "secret": "SECabc"}}
    return msgspec.convert(doc | more, Subscription)


def test_who_manages_which_subscription():
    assert may_manage(JIA, subscription(carriers=["甲危运"]))
    assert not may_manage(JIA, subscription(carriers=["乙危运"]))
    assert not may_manage(JIA, subscription(carriers=["甲危运", "乙危运"]))
    assert not may_manage(JIA, subscription())  # every carrier's
    assert may_manage(SH, subscription(provinces=["SH"]))
    assert not may_manage(SH, subscription())  # every province's
    assert not may_manage(SH, subscription(provinces=["SH", "JS"]))
    assert may_manage(CHIEF, subscription())


def test_a_subscription_shown_masked_and_sent_back_keeps_its_secrets():
    before = subscription(carriers=["甲危运"])
    shown = subscription_view(before)
    assert "SECabc" not in msgspec.json.encode(shown).decode()
    assert "TOKEN123" not in msgspec.json.encode(shown).decode()
    sent = msgspec.json.encode(shown | {"name": "新名字"})
    after = subscription_of(sent, "s1", "jia", before)
    assert after.name == "新名字" and after.owner == "jia"
    assert after.channel == before.channel  # the secret and the token kept
    changed = subscription_of(msgspec.json.encode(shown | {"channel": shown["channel"] | {
        "secret": "SECnew"}}), "s1", "jia", before)
    assert changed.channel.secret == "SECnew"
    with pytest.raises(ValueError, match="invalid subscription"):
        subscription_of(b'{"name": "x", "channel": {"kind": "carrier-pigeon"}}', "s1", "jia",
                        None)
    with pytest.raises(ValueError, match="differs"):
        subscription_of(msgspec.json.encode(shown | {"subscription_id": "s2"}), "s1", "jia",
                        before)


def delivery(delivery_id: str, minutes: int, **more) -> Delivery:
    return Delivery(delivery_id=delivery_id, subscription_id="s1", state="sent",
                    channel="dingtalk", created_at=T0,
                    updated_at=T0 + timedelta(minutes=minutes), **more)


def test_deliveries_newest_first_of_the_users_jurisdiction_and_bounded():
    book = Deliveries(kept=3)
    for i, (province, carrier) in enumerate([("SH", "甲危运"), ("SH", "乙危运"), ("JS", "甲危运"),
                                             ("AH", None)]):
        book.apply(f"d{i}".encode(), msgspec.json.encode(delivery(f"d{i}", i, province=province,
                                                                  carrier=carrier)))
    assert len(book) == 3  # d0 forgotten: changed longest ago
    mine = book.latest(lambda d: sees_delivery(JIA, d), 10)
    assert [d.delivery_id for d in mine] == ["d2"]
    assert [d.delivery_id for d in book.latest(lambda d: sees_delivery(SH, d), 10)] == ["d1"]
    assert [d.delivery_id for d in book.latest(lambda d: sees_delivery(CHIEF, d), 2)] == \
        ["d3", "d2"]
    book.apply(b"d2", None)
    assert book.latest(lambda d: sees_delivery(JIA, d), 10) == []


def test_an_audit_line_says_who_did_what_to_what(caplog):
    caplog.set_level(logging.INFO, logger="yrd_hazmat.desk.audit")
    audit("sh-duty", "POST /api/incidents/{incident_id}/actions", "i1", "ok", kind="close")
    record_ = caplog.records[-1]
    assert record_.getMessage() == ("desk POST /api/incidents/{incident_id}/actions ok: "
                                    "user='sh-duty' target='i1' kind=close")
    assert record_.audit["user"] == "sh-duty" and record_.audit["at"]
