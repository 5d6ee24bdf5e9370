"""The carriers' desk on the real broker, Redis and worker (its incident keeper): two
carriers' trucks in one province; a carrier's account sees its own trucks, alerts and
incidents and nothing of the other's through any route of the desk (the router is
enumerated: a route added later must be decided); it acknowledges, explains and appeals,
the police accept or reject, and the keeper refuses what comes out of order; each open
alert carries its clock from the policy on the deadlines topic; the 通知 view lists the
user's deliveries and subscriptions, secrets masked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from datetime import datetime, timedelta
from urllib.parse import quote

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.harness import wait_until
from tests.integration.harness import latest_ts
from tests.integration.test_desk import Events, desk_settings
from tests.integration.traces import drive, start_time
from tests.permit_trips import permit_doc
from yrd_hazmat.config import Settings
from yrd_hazmat.desk.app import Desk
from yrd_hazmat.desk.users import Users, hash_password
from yrd_hazmat.notify.deadlines import Deadline
from yrd_hazmat.notify.deadlines import encode as encode_deadline
from yrd_hazmat.notify.deliveries import Delivery
from yrd_hazmat.notify.notice import Notice

pytestmark = pytest.mark.integration

JIA, YI = "甲危运", "乙危运"
JIA_TRUCK, YI_TRUCK = "沪A71001", "沪A71002"
PASSWORDS = {"jia": "jia-pass", "yi": "yi-pass", "sh-duty": "sh-pass", "chief": "chief-pass",
             "sh-clerk": "clerk-pass", "sh-reader": "reader-pass"}
SOS_LINE = Deadline(alert_type="DEVICE_ALARM", severity="critical", ack_s=600, close_s=7200)
SPEEDING_LINE = Deadline(alert_type="SPEEDING", ack_s=1, close_s=2)
"""Speeding: overdue at once (both deadlines missed: at the region's level)."""


def users_file(tmp_path) -> str:
    path = tmp_path / "carrier-users.json"
    path.write_text(json.dumps({"users": [
        {"name": "jia", "jurisdiction": "carrier", "carrier": JIA,
         "password": hash_password("jia-pass", 1_000)},
        {"name": "yi", "jurisdiction": "carrier", "carrier": YI,
         "password": hash_password("yi-pass", 1_000)},
        {"name": "sh-duty", "jurisdiction": "SH", "role": "supervisor",  # decides appeals
         "password": hash_password("sh-pass", 1_000)},
        {"name": "sh-clerk", "jurisdiction": "SH", "role": "duty",
         "password": hash_password("clerk-pass", 1_000)},
        {"name": "sh-reader", "jurisdiction": "SH", "role": "readonly",
         "password": hash_password("reader-pass", 1_000)},
        {"name": "chief", "jurisdiction": "region",
         "password": hash_password("chief-pass", 1_000)}]}))
    return str(path)


def carrier_settings(env: dict[str, str], tmp_path) -> Settings:
    """The desk over every topic of the test's run (the register's, the notifier's)."""
    topics = {name: env[f"YRD_{name.upper()}"] for name in (
        "topic_vehicle_terminals", "topic_platforms", "topic_platform_vehicles",
        "topic_platform_requests", "topic_platform_request_results", "topic_link_states",
        "topic_uplink_requests", "topic_uplink_answers", "topic_deadlines",
        "topic_subscriptions", "topic_notifications", "topic_desk_users", "topic_audit")}
    return desk_settings(env, users_file(tmp_path)).model_copy(
        update=topics | {"archive_dir": str(tmp_path / "archive"), "archive_s3_url": ""})


def subscription_doc(subscription_id: str, carrier: str, secret: str) -> dict:
    return {"subscription_id": subscription_id, "name": f"{carrier}值班", "owner": "cli",
            "carriers": [carrier], "channel": {
                "kind": "dingtalk", "secret": secret,
                "url": f"https://oapi.dingtalk.com/robot/send?access_token=TOKEN{secret}"}}


def delivery(delivery_id: str, carrier: str, vehicle: str) -> Delivery:
    now = datetime.now().astimezone()
    return Delivery(delivery_id=delivery_id, subscription_id=f"{delivery_id}-sub",
                    state="sent", channel="dingtalk", created_at=now, updated_at=now,
                    sent_at=now, attempts=1, province="SH", carrier=carrier,
                    vehicle_id=vehicle, severity="critical", event_kind="raised",
                    notice=Notice(notice_id=delivery_id, subject=f"严重 {vehicle} 超速",
                                  lines=[], severity="critical"))


@pytest.fixture(scope="module")
def two_carriers(env, kafka, worker) -> dict[str, str]:
    """Two carriers' trucks speeding in Shanghai (and an SOS each), their permits naming
    their carriers, a deadline policy, a subscription and a delivery of each carrier."""
    t0 = start_time()
    for plate, carrier in ((JIA_TRUCK, JIA), (YI_TRUCK, YI)):
        doc = permit_doc(plate, t0, carrier=carrier, permit_id=f"SH-2026-{plate[-5:]}")
        kafka.send(env["YRD_TOPIC_PERMITS"], plate.encode(), json.dumps(doc).encode())
    for line in (SOS_LINE, SPEEDING_LINE):
        kafka.send(env["YRD_TOPIC_DEADLINES"], line.key.encode(), encode_deadline(line))
    for sub_id, carrier in (("jia-sub", JIA), ("yi-sub", YI)):
        kafka.send(env["YRD_TOPIC_SUBSCRIPTIONS"], sub_id.encode(), json.dumps(
            subscription_doc(sub_id, carrier, f"SEC{sub_id}")).encode())
    for d in (delivery("jia-d", JIA, JIA_TRUCK), delivery("yi-d", YI, YI_TRUCK)):
        kafka.send(env["YRD_TOPIC_NOTIFICATIONS"], d.delivery_id.encode(),
                   msgspec.json.encode(d))
    kafka.flush()
    jia = drive(JIA_TRUCK, t0, [95.0] * 10)
    yi = drive(YI_TRUCK, t0, [95.0] * 10, step_deg=2e-4)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], jia + yi)
    kafka.alerts_to_barrier(env, jia[-1], yi[-1])
    for plate, last in ((JIA_TRUCK, jia[-1]), (YI_TRUCK, yi[-1])):
        wait_until(lambda v=plate, t=last.ts.isoformat(): (
            latest_ts(env["REDIS_URL"], env["YRD_REDIS_PREFIX"], v) or "") > t,
            f"{plate} in the read model")
    return {"env": "ready"}


@contextlib.asynccontextmanager
async def one_desk(settings: Settings, *names: str):
    """One desk, a signed-in client per name (each its own cookies)."""
    desk = Desk(settings, Users.load(settings.desk_users))
    server = TestServer(desk.application())
    clients = [TestClient(server) for _ in names]
    try:
        for client, name in zip(clients, names):
            await client.start_server()
            client.session.headers["Origin"] = str(client.make_url("")).rstrip("/")
            answer = await client.post("/api/login",
                                       json={"name": name, "password": PASSWORDS[name]})
            assert answer.status == 200, await answer.text()
        yield desk, clients
    finally:
        for client in clients:
            await client.close()


async def incidents_of(client: TestClient, plate: str) -> dict[str, dict]:
    """The plate's open alerts the client sees, by alert type."""
    answer = await client.get("/api/alerts/open")
    assert answer.status == 200, await answer.text()
    return {a["type"]: a for a in await answer.json() if a["vehicle_id"] == plate}


async def test_each_open_alert_carries_its_clock_from_the_deadline_policy(two_carriers, env,
                                                                         tmp_path):
    async with one_desk(carrier_settings(env, tmp_path), "sh-duty", "jia") as (_, (sh, jia)):
        alerts = await incidents_of(sh, YI_TRUCK)
        sos, speeding = alerts["DEVICE_ALARM"], alerts["SPEEDING"]
        emitted = datetime.fromisoformat(sos["emitted_at"])
        assert datetime.fromisoformat(sos["ack_due"]) == emitted + timedelta(seconds=600)
        assert datetime.fromisoformat(sos["close_due"]) == emitted + timedelta(seconds=7200)
        assert (sos["level"], sos["overdue"]) == ("city", False)
        emitted = datetime.fromisoformat(speeding["emitted_at"])
        assert datetime.fromisoformat(speeding["ack_due"]) == emitted + timedelta(seconds=1)
        assert (speeding["level"], speeding["overdue"]) == ("region", True)  # both missed
        triage = {i["incident_id"]: i for i in (await (await sh.get("/api/triage")).json())[
            "items"]}
        assert triage[sos["incident_id"]]["ack_due"] == sos["ack_due"]
        assert triage[speeding["incident_id"]]["overdue"] is True
        assert (await incidents_of(jia, JIA_TRUCK))["DEVICE_ALARM"]["level"] == "city"


PARAMETERS = {"media_id": "m-yi", "access_code": "1", "request_id": "r-yi",
              "subscription_id": "yi-sub", "month": "2026-11", "layer": "provinces", "name": "yi",
              "path": "desk.js"}
"""Path parameters of the routes (the truck's and the incident's: the other carrier's)."""


def body_for(route: str, yi_incident: str) -> dict:
    """What a carrier trying the route would send (the other carrier's things)."""
    return {"/api/login": {"name": "jia", "password": "jia-pass"},
            "/api/incidents/{incident_id}/actions": {"kind": "ack"},
            "/api/subscriptions/{subscription_id}": subscription_doc("yi-sub", JIA, "SECx"),
            "/api/trucks/{vehicle_id}/commands": {"kind": "position_query"},
            "/api/incidents/{incident_id}/tell-exposed": {"text": "快离开"},
            }.get(route, {})


async def test_a_carrier_never_sees_another_carriers_truck_through_any_route(
        two_carriers, env, tmp_path):
    settings = carrier_settings(env, tmp_path)
    async with one_desk(settings, "jia", "yi", "chief") as (desk, (jia, yi, chief)):
        mine, theirs = await incidents_of(jia, JIA_TRUCK), await incidents_of(yi, YI_TRUCK)
        assert {"SPEEDING", "DEVICE_ALARM"} <= mine.keys() and "SPEEDING" in theirs
        yi_incident = theirs["SPEEDING"]["incident_id"]
        # a record each (the keeper opens one with the first action on an alert)
        assert (await act(chief, yi_incident, "note", "乙危运的车"))[0] == 200
        assert (await act(jia, mine["SPEEDING"]["incident_id"], "ack"))[0] == 200
        # what jia does see: its own truck, alerts and incident (the test could fail)
        assert [t["vehicle_id"] for t in await (await jia.get("/api/trucks")).json()] == \
            [JIA_TRUCK]
        assert (await jia.get(f"/api/trucks/{JIA_TRUCK}")).status == 200
        own = await jia.get(f"/api/incidents/{mine['SPEEDING']['incident_id']}")
        assert own.status == 200 and (await own.json())["vehicle_id"] == JIA_TRUCK
        assert {a["vehicle_id"] for a in await (await jia.get("/api/alerts/open")).json()} == \
            {JIA_TRUCK}

        leaks = (YI_TRUCK, YI, yi_incident, "yi-sub", "yi-d", "SECyi-sub")
        values = PARAMETERS | {"vehicle_id": YI_TRUCK, "incident_id": yi_incident}
        routes = sorted({(r.method, r.resource.canonical)
                         for r in desk_app_routes(jia) if r.method != "HEAD"},
                        key=lambda r: r[1] == "/api/logout")  # signed out last
        assert len(routes) >= 40
        for method, route in routes:
            path = re.sub(r"\{(\w+)\}", lambda m: quote(values[m[1]]), route)
            if route == "/api/feed":
                answer = await jia.get(path)
                text = (await asyncio.wait_for(answer.content.readline(), 10)).decode()
                answer.close()
            else:
                answer = await jia.request(method, path, json=body_for(route, yi_incident)
                                           if method != "GET" else None)
                text = await answer.text()
            what = f"{method} {path}: {answer.status} {text[:300]}"
            assert answer.status < 500, what
            assert not any(leak in text for leak in leaks), what
            if route.startswith(("/api/trucks/{", "/api/incidents/{")):
                assert answer.status in (403, 404), what  # the other's: none of them
        # the other carrier's things were left alone
        subs = {s["subscription_id"]: s for s in (await (await chief.get(
            "/api/subscriptions")).json())["items"]}
        assert subs["yi-sub"]["carriers"] == [YI]
        assert desk.incidents.get(yi_incident).actions[-1].by != "jia"


def desk_app_routes(client: TestClient):
    return client.server.app.router.routes()


async def test_the_feed_carries_a_carriers_own_incidents_only(two_carriers, env, tmp_path):
    settings = carrier_settings(env, tmp_path)
    async with one_desk(settings, "jia", "yi", "sh-duty") as (desk, (jia, yi, sh)):
        jia_speeding = (await incidents_of(jia, JIA_TRUCK))["SPEEDING"]["incident_id"]
        yi_sos = (await incidents_of(yi, YI_TRUCK))["DEVICE_ALARM"]["incident_id"]
        jia_feed, yi_feed = Events(await jia.get("/api/feed")), Events(await yi.get("/api/feed"))
        try:
            await asyncio.sleep(1.0)
            answer = await sh.post(f"/api/incidents/{yi_sos}/actions",
                                   json={"kind": "note", "text": "已联系乙危运"})
            assert answer.status == 200, await answer.text()
            answer = await jia.post(f"/api/incidents/{jia_speeding}/actions",
                                    json={"kind": "explain", "text": "司机已减速"})
            assert answer.status == 200, await answer.text()
            await yi_feed.until(lambda ev: any(e == "incident" and d["incident_id"] == yi_sos
                                               for e, d in ev), "yi's note on yi's feed")
            await jia_feed.until(lambda ev: any(
                e == "incident" and d["incident_id"] == jia_speeding for e, d in ev),
                "jia's explanation on jia's feed")
            await asyncio.sleep(1.0)
            assert {d["vehicle_id"] for e, d in jia_feed.events} == {JIA_TRUCK}
            assert {d["vehicle_id"] for e, d in yi_feed.events} == {YI_TRUCK}
        finally:
            jia_feed.close()
            yi_feed.close()


async def act(client: TestClient, incident_id: str, kind: str, text: str | None = None):
    body = {"kind": kind} | ({"text": text} if text is not None else {})
    answer = await client.post(f"/api/incidents/{incident_id}/actions", json=body)
    return answer.status, await answer.json()


async def test_appeals_accepted_and_rejected_through_the_keeper(two_carriers, env, tmp_path,
                                                                caplog):
    caplog.set_level(logging.INFO, logger="yrd_hazmat.desk.audit")
    settings = carrier_settings(env, tmp_path)
    async with one_desk(settings, "jia", "yi", "sh-duty", "chief", "sh-clerk", "sh-reader") as (
            desk, (jia, yi, sh, chief, clerk, reader)):
        alerts = await incidents_of(jia, JIA_TRUCK)
        sos, speeding = alerts["DEVICE_ALARM"]["incident_id"], alerts["SPEEDING"]["incident_id"]
        # what each side may send (403), the other carrier (404)
        assert (await act(jia, sos, "ack"))[0] == 200
        assert (await act(jia, sos, "close"))[0] == 403
        assert (await act(jia, sos, "appeal_accepted", "自己批准"))[0] == 403
        assert (await act(sh, sos, "explain", "x"))[0] == 403
        assert (await act(sh, sos, "appeal", "x"))[0] == 403
        assert (await act(yi, sos, "appeal", "乙替甲申诉"))[0] == 404
        # the roles: a duty officer handles but does not decide appeals; a reader does nothing
        assert (await act(clerk, sos, "note", "已联系司机"))[0] == 200
        assert (await act(reader, sos, "ack"))[0] == 403
        # the keeper's order: a decision needs an open appeal, one appeal, one decision
        assert (await act(clerk, sos, "appeal_accepted", "核实为误报"))[0] == 403
        status, refused = await act(sh, sos, "appeal_accepted", "核实为误报")
        assert (status, refused["error"]) == (409, "no open appeal to decide")
        status, refused = await act(jia, sos, "appeal", "   ")
        assert (status, refused["error"]) == (409, "an appeal needs a reason")
        status, record = await act(jia, sos, "appeal", "设备误报，司机未按键")
        assert status == 200 and record["appeal"] == "open"
        status, refused = await act(jia, sos, "appeal", "再申诉一次")
        assert (status, refused["error"]) == (409, "this alert was appealed already (open)")
        pending = await (await sh.get("/api/incidents?view=appeals")).json()
        assert [r["incident_id"] for r in pending] == [sos]
        assert await (await yi.get("/api/incidents?view=appeals")).json() == []
        status, record = await act(sh, sos, "appeal_accepted", "核实为误报")
        assert status == 200 and record["appeal"] == "accepted"
        status, refused = await act(chief, sos, "appeal_rejected", "改判")
        assert (status, refused["error"]) == (409, "the appeal was decided already (accepted)")

        assert (await act(jia, speeding, "appeal", "限速标志被遮挡"))[0] == 200
        status, refused = await act(chief, speeding, "appeal_rejected", "")
        assert (status, refused["error"]) == (409, "a decision on an appeal needs a reason")
        status, record = await act(chief, speeding, "appeal_rejected", "视频显示持续超速")
        assert status == 200 and record["appeal"] == "rejected"
        assert await (await sh.get("/api/incidents?view=appeals")).json() == []

        # the whole story on the incident, as the carrier reads it
        story = (await (await jia.get(f"/api/incidents/{sos}")).json())["appeal_story"]
        assert [(s["kind"], s["by"], s["text"]) for s in story] == [
            ("appeal", "jia", "设备误报，司机未按键"), ("appeal_accepted", "sh-duty", "核实为误报")]
        story = (await (await jia.get(f"/api/incidents/{speeding}")).json())["appeal_story"]
        assert [(s["kind"], s["by"]) for s in story if s["kind"] != "explain"] == [
            ("appeal", "jia"), ("appeal_rejected", "chief")]  # (explained in the feed's test)
        recent = await (await jia.get("/api/incidents?view=recent")).json()
        assert {r["incident_id"] for r in recent} >= {sos, speeding}
        assert {r["vehicle_id"] for r in recent} == {JIA_TRUCK}

    lines = [r.getMessage() for r in caplog.records if r.name == "yrd_hazmat.desk.audit"]
    assert (f"desk POST /api/incidents/{{incident_id}}/actions ok: user='sh-duty' "
            f"target='{sos}' status=200 kind=appeal_accepted address=127.0.0.1") in lines
    assert (f"desk POST /api/incidents/{{incident_id}}/actions refused: user='jia' "
            f"target='{sos}' status=403 kind=close address=127.0.0.1") in lines


async def test_notifications_and_subscriptions_of_the_users_jurisdiction(two_carriers, env,
                                                                        kafka, tmp_path):
    settings = carrier_settings(env, tmp_path)
    async with one_desk(settings, "jia", "yi", "sh-duty") as (_, (jia, yi, sh)):
        async def delivered(client) -> set[str]:
            items = (await (await client.get("/api/notifications")).json())["items"]
            return {d["delivery_id"] for d in items}
        assert await delivered(jia) == {"jia-d"} and await delivered(yi) == {"yi-d"}
        assert await delivered(sh) == {"jia-d", "yi-d"}  # both Shanghai's
        listed = await jia.get("/api/subscriptions")
        text = await listed.text()
        assert [s["subscription_id"] for s in json.loads(text)["items"]] == ["jia-sub"]
        assert "SECjia-sub" not in text and "TOKENSEC" not in text  # masked

        new = subscription_doc("jia-sms", JIA, "SECnew") | {"severities": ["critical"]}
        created = await jia.put("/api/subscriptions/jia-sms", json=new)
        assert created.status == 201, await created.text()
        shown = await created.json()
        assert shown["channel"]["secret"] == "****" and shown["owner"] == "jia"
        stored = await asyncio.to_thread(kafka.read, env["YRD_TOPIC_SUBSCRIPTIONS"],
                                         lambda rs: any(r and r["subscription_id"] == "jia-sms"
                                                        for r in rs))
        mine = next(r for r in stored if r and r["subscription_id"] == "jia-sms")
        assert mine["channel"]["secret"] == "SECnew" and mine["carriers"] == [JIA]
        renamed = await jia.put("/api/subscriptions/jia-sms", json=shown | {"name": "改名"})
        assert renamed.status == 200, await renamed.text()
        listed = (await (await jia.get("/api/subscriptions")).json())["items"]
        assert next(s for s in listed if s["subscription_id"] == "jia-sms")["name"] == "改名"
        stored = await asyncio.to_thread(kafka.read, env["YRD_TOPIC_SUBSCRIPTIONS"],
                                         lambda rs: any(r and r["name"] == "改名" for r in rs))
        mine = next(r for r in stored if r and r["name"] == "改名")
        assert mine["channel"]["secret"] == "SECnew"  # sent back masked: kept

        refused = await jia.put("/api/subscriptions/jia-x", json=subscription_doc("jia-x", YI, "s"))
        assert refused.status == 403
        every = subscription_doc("jia-y", JIA, "s") | {"carriers": []}
        assert (await jia.put("/api/subscriptions/jia-y", json=every)).status == 403
        invalid = await jia.put("/api/subscriptions/jia-z", json={"name": "x", "carriers": [JIA],
                                                                  "channel": {"kind": "fax"}})
        assert invalid.status == 400 and "invalid subscription" in (await invalid.json())["error"]
        assert (await jia.delete("/api/subscriptions/yi-sub")).status == 404
        assert (await sh.put("/api/subscriptions/sh-1", json=subscription_doc("sh-1", JIA, "s")
                             | {"carriers": [], "provinces": ["SH"]})).status == 201
        assert (await sh.put("/api/subscriptions/sh-2", json=subscription_doc("sh-2", JIA, "s")
                             | {"carriers": [], "provinces": ["SH", "JS"]})).status == 403
        assert (await jia.delete("/api/subscriptions/jia-sms")).status == 200
    async with one_desk(settings, "jia") as (_, (jia,)):  # a new desk reads the topic
        items = (await (await jia.get("/api/subscriptions")).json())["items"]
        assert [s["subscription_id"] for s in items] == ["jia-sub"]  # the tombstone held

