"""The desk's view of the JT/T 809 chain, through its API, on the real broker, Redis and
worker: link health from the link-state records (platforms' secrets never reach the
browser), inspections and supervision orders sent down from the desk onto the requests
topic with who sent them, their steps and answers shown with the time they took, and the
national platform's requests answered by a region user (once: a second answer is 409),
each endpoint refusing bad input (400) and the wrong user (403/404)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import msgspec
import pytest

from tests.integration.harness import latest_ts, run_env
from tests.harness import wait_until
from tests.integration.test_desk import Events, desk_client, desk_settings, login, users_file
from tests.integration.traces import drive, start_time
from yrd_hazmat.config import Settings
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.gateway.platform_records import PlatformVehicle
from yrd_hazmat.gateway.platform_requests import PlatformRequestResult, number
from yrd_hazmat.gateway.platforms import platform_record
from yrd_hazmat.link_states import LinkState
from yrd_hazmat.uplink.records import UplinkRequest

pytestmark = pytest.mark.integration

SH_PLATFORM, JS_PLATFORM, SILENT_PLATFORM = 31000001, 32000001, 31000002
SECRET = "pw-7001"


def links_settings(env: dict[str, str], users: str, **more) -> Settings:
    """The desk's settings with the run's own JT/T 809 topics."""
    topics = {f"topic_{name}": env[f"YRD_TOPIC_{name.upper()}"] for name in (
        "platforms", "link_states", "platform_vehicles", "platform_requests",
        "platform_request_results", "uplink_requests", "uplink_answers")}
    return desk_settings(env, users).model_copy(update=topics | more)


def configure_platforms(kafka, env) -> None:
    for code, name, province in ((SH_PLATFORM, "沪运企业平台", "SH"), (JS_PLATFORM, "苏运平台", "JS"),
                                 (SILENT_PLATFORM, "沪危运平台", "SH")):
        key, value = platform_record(access_code=code, name=name, user_id=7001, password=SECRET,
                                     m1=11, ia1=22, ic1=33, province=province)
        kafka.send(env["YRD_TOPIC_PLATFORMS"], key, value)
    kafka.flush()


def link_state(code: int, *, main_up: bool, slave_up: bool, positions: int = 0,
               name: str = "", reporter: str = "gw-1", since: datetime | None = None,
               link: str = "platform", resend_lag_s: float | None = None) -> LinkState:
    now = datetime.now(CHINA_TZ)
    return LinkState(link=link, access_code=code, name=name, reporter=reporter,
                     main_up=main_up, slave_up=slave_up, since=since or now - timedelta(minutes=5),
                     positions=positions,
                     last_position_at=now - timedelta(seconds=3) if positions else None,
                     resend_lag_s=resend_lag_s, reconnects=1, reported_at=now, heartbeat_s=30.0)


def send_state(kafka, env, state: LinkState) -> None:
    kafka.send(env["YRD_TOPIC_LINK_STATES"], state.key.encode(), msgspec.json.encode(state))
    kafka.flush()


def step(request: dict, status: str, **fields) -> PlatformRequestResult:
    return PlatformRequestResult(request_id=request["request_id"], platform=request["platform"],
                                 kind=request["kind"], status=status, at=datetime.now(CHINA_TZ),
                                 gateway="gw-1", **fields)


def send_step(kafka, env, result: PlatformRequestResult) -> None:
    kafka.send(env["YRD_TOPIC_PLATFORM_REQUEST_RESULTS"], str(result.platform).encode(),
               encode(result))
    kafka.flush()


def uplink_request(kind: str, serial: int, **fields) -> UplinkRequest:
    now = datetime.now(CHINA_TZ)
    return UplinkRequest(request_id=f"{kind}-test-{serial}", kind=kind, received_at=now,
                         edition=2011, serial=serial, link="slave", **fields)


async def until_json(client, path: str, condition, what: str, timeout: float = 60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(path)
        data = await response.json() if response.status == 200 else None
        if data is not None and condition(data):
            return data
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{path}: not within {timeout} s: {what}; last {data}")
        await asyncio.sleep(0.3)


async def error_of(response, status: int) -> str:
    text = await response.text()
    assert response.status == status, text
    return json.loads(text)["error"]


async def test_link_health_and_inspections_down(env, kafka, tmp_path):
    settings = links_settings(env, users_file(tmp_path))
    async with desk_client(settings) as sh, desk_client(settings) as js, \
            desk_client(settings) as chief:
        await login(sh, "sh-duty")
        await login(js, "js-duty")
        await login(chief, "chief")
        configure_platforms(kafka, env)
        send_state(kafka, env, link_state(SH_PLATFORM, main_up=True, slave_up=True,
                                          positions=120, name="沪运企业平台"))
        send_state(kafka, env, link_state(JS_PLATFORM, main_up=True, slave_up=False,
                                          positions=7))

        # every user sees every link; a configured platform that never reported is down
        links = await until_json(js, "/api/links", lambda d: len(d["links"]) == 3 and sum(
            1 for x in d["links"] if x.get("positions")) == 2,
                                 "three platforms, two with their state read")
        by_code = {x["access_code"]: x for x in links["links"]}
        assert by_code[SH_PLATFORM]["status"] == "up"
        assert by_code[SH_PLATFORM]["positions"] == 120
        assert by_code[SH_PLATFORM]["name"] == "沪运企业平台"
        assert by_code[JS_PLATFORM]["status"] == "main_only"
        assert by_code[SILENT_PLATFORM]["status"] == "down"
        assert by_code[SILENT_PLATFORM]["since"] is None
        # the platforms' secrets stay on the server
        raw = await (await js.get("/api/links")).text()
        raw += await (await chief.get("/api/platform-requests")).text()
        assert SECRET not in raw and '"m1"' not in raw and "password" not in raw

        # the region's desk may inspect any platform, a province desk its own
        mine = await (await sh.get("/api/platform-requests")).json()
        assert [p["access_code"] for p in mine["platforms"]] == [SH_PLATFORM, SILENT_PLATFORM]
        everyone = await (await chief.get("/api/platform-requests")).json()
        assert len(everyone["platforms"]) == 3

        # an inspection from the SH desk: on the requests topic, by its user
        response = await sh.post(f"/api/platforms/{SH_PLATFORM}/inspections",
                                 json={"question": "请值班人员报告姓名", "deadline_min": 5})
        assert response.status == 201, await response.text()
        sent = await response.json()
        assert (sent["kind"], sent["issued_by"], sent["text"], sent["status"]) == \
            ("inspection", "sh-duty", "请值班人员报告姓名", "waiting")
        due = datetime.fromisoformat(sent["deadline"]) - datetime.fromisoformat(sent["issued_at"])
        assert due == timedelta(minutes=5)
        records = kafka.read(env["YRD_TOPIC_PLATFORM_REQUESTS"],
                             lambda r: any(x["request_id"] == sent["request_id"] for x in r), 30)
        published = next(x for x in records if x["request_id"] == sent["request_id"])
        assert (published["platform"], published["issued_by"]) == (SH_PLATFORM, "sh-duty")

        # the gateway's steps: sent, then answered 0x1301 with the time it took; the SH
        # desk's feed hears each, the JS desk's none
        sh_feed, js_feed = Events(await sh.get("/api/feed")), Events(await js.get("/api/feed"))
        await asyncio.sleep(0.5)
        send_step(kafka, env, step(sent, "sent", route="slave", serial=17,
                                   number=number(sent["request_id"]),
                                   deadline=datetime.fromisoformat(sent["deadline"])))
        send_step(kafka, env, step(sent, "answered", answer_kind="inspection_answer",
                                   answer={"text": "值班员李四在岗", "object_type": 1},
                                   took_s=3.4, late=False))
        data = await until_json(sh, "/api/platform-requests",
                                lambda d: d["items"] and d["items"][0]["status"] == "answered",
                                "the answer recorded")
        await sh_feed.until(lambda e: any(k == "platform-request" and d["status"] == "answered"
                                          for k, d in e), "the answer on the feed")
        sh_feed.close()
        js_feed.close()
        assert not [k for k, _ in js_feed.events if k == "platform-request"]
        shown = data["items"][0]
        assert shown["open"] is False and shown["late"] is False and shown["route"] == "slave"
        assert shown["answers"][0]["answer"]["text"] == "值班员李四在岗"
        assert shown["answers"][0]["took_s"] == 3.4
        # the JS desk does not see the SH desk's inspection of an SH platform; the region does
        assert (await (await js.get("/api/platform-requests")).json())["items"] == []
        assert [x["request_id"] for x in
                (await (await chief.get("/api/platform-requests")).json())["items"]] \
            == [sent["request_id"]]

        # one left unanswered past its deadline (3 s) is late, and listed as such
        response = await chief.post(f"/api/platforms/{JS_PLATFORM}/inspections",
                                    json={"question": "请报告在线车辆数", "deadline_min": 0.05})
        assert response.status == 201, await response.text()
        unanswered = await response.json()
        send_step(kafka, env, step(unanswered, "sent", route="main", serial=18,
                                   deadline=datetime.fromisoformat(unanswered["deadline"])))
        late = await until_json(chief, "/api/platform-requests?state=late",
                                lambda d: len(d["items"]) == 1, "the late inspection", 30)
        assert late["items"][0]["request_id"] == unanswered["request_id"]
        assert late["items"][0]["open"] is True and late["items"][0]["status"] == "sent"
        open_now = await (await chief.get("/api/platform-requests?state=open")).json()
        assert [x["request_id"] for x in open_now["items"]] == [unanswered["request_id"]]
        assert (await (await js.get("/api/platform-requests?state=late")).json())["items"][0][
            "request_id"] == unanswered["request_id"]  # a JS platform's: the JS desk's too

        # refused: another province's platform, unknown ones, bad bodies, other origins
        forbidden = await sh.post(f"/api/platforms/{JS_PLATFORM}/inspections",
                                  json={"question": "?"})
        assert "jurisdiction" in await error_of(forbidden, 403)
        assert "no platform" in await error_of(
            await sh.post("/api/platforms/99999/inspections", json={"question": "?"}), 404)
        assert "not an access code" in await error_of(
            await sh.post("/api/platforms/abc/inspections", json={"question": "?"}), 400)
        for body, why in (({"question": "  "}, "empty"), ({"question": "在吗😀"}, "GBK"),
                          ({"question": "x" * 1001}, "invalid body"),
                          ({"question": "?", "deadline_min": 0}, "invalid body"),
                          ({"question": "?", "deadline_min": "5"}, "invalid body"),
                          ({"question": "?", "to": "all"}, "invalid body"), ({}, "invalid body")):
            response = await sh.post(f"/api/platforms/{SH_PLATFORM}/inspections", json=body)
            assert why in await error_of(response, 400), body
        response = await sh.post(f"/api/platforms/{SH_PLATFORM}/inspections", data=b"{not json",
                                 headers={"Content-Type": "application/json"})
        assert "not JSON" in await error_of(response, 400)
        response = await sh.post(f"/api/platforms/{SH_PLATFORM}/inspections",
                                 json={"question": "?"}, headers={"Origin": "http://evil.example"})
        assert "Origin" in await error_of(response, 403)
        assert "state" in await error_of(await sh.get("/api/platform-requests?state=mine"), 400)

        # a disabled platform takes nothing
        key, value = platform_record(access_code=SILENT_PLATFORM, name="沪危运平台", user_id=7002,
                                     password=SECRET, province="SH", enabled=False)
        kafka.send(env["YRD_TOPIC_PLATFORMS"], key, value)
        kafka.flush()
        await until_json(sh, "/api/links", lambda d: any(
            x["access_code"] == SILENT_PLATFORM and x["enabled"] is False for x in d["links"]),
            "the platform disabled")
        response = await sh.post(f"/api/platforms/{SILENT_PLATFORM}/inspections",
                                 json={"question": "?"})
        assert "disabled" in await error_of(response, 409)
        # signed out: nothing
        assert (await sh.post("/api/logout")).status == 200
        assert (await sh.get("/api/links")).status == 401


async def test_supervision_order_for_an_alert_of_a_platform_truck(env, kafka, worker, tmp_path):
    settings = links_settings(env, users_file(tmp_path))
    t0 = start_time()
    below = drive("沪A71001", t0, [95.0] * 10)     # speeding, never cleared: an open alert
    own = drive("沪A71002", t0, [95.0] * 10)       # a truck of our own terminals: no platform
    kafka.send_pings(env["YRD_TOPIC_PINGS"], below + own)
    async with desk_client(settings) as sh, desk_client(settings) as js:
        await login(sh, "sh-duty")
        await login(js, "js-duty")
        configure_platforms(kafka, env)
        vehicle = PlatformVehicle(vehicle_id="沪A71001", plate_colour=1, platform=SH_PLATFORM,
                                  platform_id="P1", producer_id="M1", terminal_model="T",
                                  terminal_id="1", sim="13800000000",
                                  registered_at=datetime.now(CHINA_TZ))
        kafka.send(env["YRD_TOPIC_PLATFORM_VEHICLES"], "沪A71001".encode(), encode(vehicle))
        kafka.flush()
        await asyncio.to_thread(wait_until, lambda: (latest_ts(
            env["REDIS_URL"], env["YRD_REDIS_PREFIX"], "沪A71002") or "") >= own[-1].ts.isoformat(),
            "the trucks in the read model", 120)
        triage = await until_json(sh, "/api/triage", lambda d: {i["vehicle_id"] for i in d["items"]}
                                  >= {"沪A71001", "沪A71002"}, "both speeding alerts", 120)
        incident = {i["vehicle_id"]: i["incident_id"] for i in triage["items"]}
        path = f"/api/incidents/{incident['沪A71001']}/supervision"

        plan = await until_json(sh, path, lambda d: d["platform"] is not None,
                                "the truck's platform")
        assert plan["platform"] == {"access_code": SH_PLATFORM, "name": "沪运企业平台",
                                    "edition": 2011, "enabled": True, "province": "SH"}
        assert plan["orders"] == []
        other = await (await sh.get(f"/api/incidents/{incident['沪A71002']}/supervision")).json()
        assert other["platform"] is None and "not registered by a lower platform" in other["reason"]

        response = await sh.post(path, json={"deadline_min": 30, "level": "urgent",
                                             "supervisor": "王警官", "tel": "021-110"})
        assert response.status == 201, await response.text()
        order = await response.json()
        assert (order["kind"], order["platform"], order["vehicle_id"], order["incident_id"]) == \
            ("supervision", SH_PLATFORM, "沪A71001", incident["沪A71001"])
        assert (order["issued_by"], order["supervisor"], order["supervisor_tel"], order["level"],
                order["plate_colour"], order["warn_type"]) == \
            ("sh-duty", "王警官", "021-110", 0, 1, 0x0001)   # SPEEDING: overspeed
        due = datetime.fromisoformat(order["deadline"]) - datetime.fromisoformat(order["issued_at"])
        assert due == timedelta(minutes=30)
        records = kafka.read(env["YRD_TOPIC_PLATFORM_REQUESTS"],
                             lambda r: any(x["request_id"] == order["request_id"] for x in r), 30)
        assert next(x for x in records if x["request_id"] == order["request_id"])[
            "incident_id"] == incident["沪A71001"]
        # its answers show on the incident's orders as they come
        send_step(kafka, env, step(order, "sent", route="slave", serial=3,
                                   deadline=datetime.fromisoformat(order["deadline"])))
        send_step(kafka, env, step(order, "answered", answer_kind="supervision_answer",
                                   answer={"result": 0}, took_s=12.0,
                                   incident_id=incident["沪A71001"]))
        plan = await until_json(sh, path, lambda d: d["orders"] and d["orders"][0]["answers"],
                                "the order's answer")
        assert plan["orders"][0]["status"] == "answered_partly" and plan["orders"][0]["open"]
        send_step(kafka, env, step(order, "answered", answer_kind="handling_result",
                                   answer={"result": 1}, took_s=40.0))
        plan = await until_json(sh, path, lambda d: d["orders"][0]["status"] == "answered",
                                "the handling result")
        assert plan["orders"][0]["open"] is False and len(plan["orders"][0]["answers"]) == 2

        # refused: another province's alert (404), no platform (409), bad bodies (400)
        assert (await js.get(path)).status == 404
        response = await js.post(path, json={"deadline_min": 5, "supervisor": "x"})
        assert "no such incident" in await error_of(response, 404)
        response = await sh.post(f"/api/incidents/{incident['沪A71002']}/supervision",
                                 json={"deadline_min": 5, "supervisor": "王警官"})
        assert "not registered" in await error_of(response, 409)
        for body, why in (({"deadline_min": 5, "supervisor": "王警官王警官王警官"}, "GBK: at most 16"),
                          ({"deadline_min": 5, "supervisor": " "}, "empty"),
                          ({"deadline_min": 0, "supervisor": "王"}, "invalid body"),
                          ({"deadline_min": 5, "supervisor": "王", "level": "high"}, "invalid body"),
                          ({"supervisor": "王"}, "invalid body")):
            assert why in await error_of(await sh.post(path, json=body), 400), body
        assert (await sh.get("/api/incidents/nope/supervision")).status == 404

        # a text, a tip and a photo for the truck, through the platform it came from
        path = "/api/trucks/沪A71001/platform-requests"
        plan = await (await sh.get(path)).json()
        assert plan["platform"]["access_code"] == SH_PLATFORM
        assert [x["kind"] for x in plan["items"]] == ["supervision"]
        sent = {}
        for body in ({"kind": "text", "text": "请立即靠边停车", "urgent": True},
                     {"kind": "tip", "text": "前方危化品禁行区"}, {"kind": "photo", "camera": 2}):
            response = await sh.post(path, json=body)
            assert response.status == 201, await response.text()
            made = await response.json()
            assert (made["kind"], made["platform"], made["vehicle_id"], made["plate_colour"],
                    made["issued_by"]) == (body["kind"], SH_PLATFORM, "沪A71001", 1, "sh-duty")
            sent[body["kind"]] = made
        assert (sent["text"]["text"], sent["text"]["level"]) == ("请立即靠边停车", 0)
        assert sent["photo"]["camera"] == 2 and sent["photo"]["text"] is None
        records = kafka.read(env["YRD_TOPIC_PLATFORM_REQUESTS"], lambda r: {
            x["kind"] for x in r} >= {"text", "tip", "photo", "supervision"}, 30)
        assert {x["request_id"] for x in records} >= {x["request_id"] for x in sent.values()}
        listed = await (await sh.get(path)).json()
        assert len(listed["items"]) == 4
        for body, why in (({"kind": "tip"}, "text is empty"), ({"kind": "text", "text": "🚚"}, "GBK"),
                          ({"kind": "photo", "text": "x"}, "takes no text"),
                          ({"kind": "photo", "camera": 0}, "invalid body"),
                          ({"kind": "sound"}, "invalid body")):
            assert why in await error_of(await sh.post(path, json=body), 400), body
        response = await sh.post("/api/trucks/沪A71002/platform-requests",
                                 json={"kind": "text", "text": "x"})
        assert "not registered" in await error_of(response, 409)
        assert (await (await sh.get("/api/trucks/沪A71002/platform-requests")).json())[
            "platform"] is None
        response = await js.post(path, json={"kind": "text", "text": "x"})
        assert "no such truck" in await error_of(response, 404)
        assert (await js.get(path)).status == 404


async def test_the_national_platforms_requests_answered_by_the_region(env, kafka, tmp_path):
    settings = links_settings(env, users_file(tmp_path))
    now = datetime.now(CHINA_TZ)
    inspection = uplink_request("inspection", 1, question="请报告值班人员",
                                deadline=now + timedelta(minutes=10), info_id=9, object_type=1)
    order = uplink_request("supervision", 2, deadline=now + timedelta(hours=1), plate="沪A00001",
                           colour=2, supervision_id=12, level=0, supervisor="部平台",
                           tel="010-1", warn_type=1, warn_time=now)
    notice = uplink_request("notice", 3, deadline=None, question="注意：G60 事故", plate="沪A00002",
                            warn_type=3)
    text = uplink_request("text", 4, deadline=now + timedelta(hours=1), plate="沪A00003",
                          question="请减速慢行", sequence=5, command_id="c-1")
    async with desk_client(settings) as chief, desk_client(settings) as sh:
        await login(chief, "chief")
        await login(sh, "sh-duty")
        events = Events(await chief.get("/api/feed"))
        sh_events = Events(await sh.get("/api/feed"))
        try:
            for asked in (inspection, order, notice, text):
                kafka.send(env["YRD_TOPIC_UPLINK_REQUESTS"], asked.request_id.encode(),
                           encode(asked))
            kafka.flush()
            # live on the region's feed, not on a province's
            await events.until(lambda e: len([d for k, d in e if k == "uplink-request"]) >= 4,
                               "four requests on the feed")
            news = {d["request_id"]: d for k, d in events.events if k == "uplink-request"}
            assert news[inspection.request_id]["status"] == "open"
            assert news[notice.request_id]["status"] == "read"
            assert news[text.request_id]["status"] == "waiting"  # for the truck's terminal
            assert not [k for k, _ in sh_events.events if k.startswith("uplink")]

            listed = await (await chief.get("/api/uplink/requests")).json()
            assert {x["request_id"] for x in listed["items"]} == \
                {text.request_id, notice.request_id, order.request_id, inspection.request_id}
            assert "region" in await error_of(await sh.get("/api/uplink/requests"), 403)

            answer = f"/api/uplink/requests/{inspection.request_id}/answer"
            assert "region" in await error_of(await sh.post(answer, json={"content": "x"}), 403)
            for body, why in (({"result": 1}, "with a text"), ({"content": " "}, "empty"),
                              ({"content": "在岗😀"}, "GBK"), ({"text": "x"}, "invalid body"),
                              ({"content": "x" * 1001}, "invalid body")):
                assert why in await error_of(await chief.post(answer, json=body), 400), body
            response = await chief.post(answer, json={"content": "值班: 张三 13800000000"})
            assert response.status == 201, await response.text()
            shown = await response.json()
            assert shown["status"] == "answered" and shown["late"] is False
            assert (shown["answers"][0]["answered_by"], shown["answers"][0]["content"]) == \
                ("chief", "值班: 张三 13800000000")
            records = kafka.read(env["YRD_TOPIC_UPLINK_ANSWERS"], lambda r: len(r) >= 1, 30)
            assert (records[0]["request"]["request_id"], records[0]["answered_by"],
                    records[0]["content"]) == (inspection.request_id, "chief",
                                               "值班: 张三 13800000000")
            again = await chief.post(answer, json={"content": "再答一次"})
            assert "already answered by chief" in await error_of(again, 409)
            await events.until(lambda e: any(k == "uplink-answer" for k, _ in e), "the answer")

            # a supervision order: "in progress" first, then done; after that no answer
            answer = f"/api/uplink/requests/{order.request_id}/answer"
            assert "with a result" in await error_of(
                await chief.post(answer, json={"content": "处理中"}), 400)
            assert "invalid body" in await error_of(
                await chief.post(answer, json={"result": 7}), 400)
            response = await chief.post(answer, json={"result": 0, "content": "已通知企业"})
            assert response.status == 201 and (await response.json())["status"] == "open"
            response = await chief.post(answer, json={"result": 1})
            shown = await response.json()
            assert response.status == 201 and shown["status"] == "answered"
            assert [(a["result"], a["content"]) for a in shown["answers"]] == \
                [(0, "已通知企业"), (1, None)]
            assert "already answered" in await error_of(
                await chief.post(answer, json={"result": 2}), 409)
            records = kafka.read(env["YRD_TOPIC_UPLINK_ANSWERS"], lambda r: len(r) >= 3, 30)
            assert [r["result"] for r in records
                    if r["request"]["request_id"] == order.request_id] == [0, 1]

            # a notice is read, not answered; an unknown request is 404
            response = await chief.post(f"/api/uplink/requests/{notice.request_id}/answer",
                                        json={"content": "收到"})
            assert "takes no answer" in await error_of(response, 409)
            response = await chief.post(f"/api/uplink/requests/{text.request_id}/answer",
                                        json={"content": "收到"})
            assert "terminal" in await error_of(response, 409)
            response = await chief.post("/api/uplink/requests/nope/answer", json={"content": "x"})
            assert (await error_of(response, 404)).startswith("no such request")

            # another desk (a restart) reads who answered what from the topics
            async with desk_client(settings) as fresh:
                await login(fresh, "chief")
                again = await (await fresh.get("/api/uplink/requests")).json()
                state = {x["request_id"]: x for x in again["items"]}
                assert state[inspection.request_id]["answers"][0]["answered_by"] == "chief"
                assert state[order.request_id]["status"] == "answered"
                assert "already answered" in await error_of(await fresh.post(
                    f"/api/uplink/requests/{inspection.request_id}/answer",
                    json={"content": "x"}), 409)
        finally:
            events.close()
            sh_events.close()


async def test_no_request_from_another_origin_sends_anything_down_or_up(services, kafka,
                                                                      tmp_path):
    """The desk's origin rule on the chain's three state-changing calls (as
    test_desk_security.py checks it on the others): 403, nothing published."""
    fresh = run_env(services)
    settings = links_settings(fresh, users_file(tmp_path))
    asked = uplink_request("inspection", 9, question="值班?",
                           deadline=datetime.now(CHINA_TZ) + timedelta(minutes=10))
    async with desk_client(settings) as chief:
        await login(chief, "chief")
        configure_platforms(kafka, fresh)
        kafka.send(fresh["YRD_TOPIC_UPLINK_REQUESTS"], asked.request_id.encode(), encode(asked))
        kafka.flush()
        await until_json(chief, "/api/uplink/requests", lambda d: d["items"], "the request")
        await until_json(chief, "/api/links", lambda d: len(d["links"]) == 3, "the platforms")
        own = str(chief.make_url("")).rstrip("/")
        paths = {f"/api/platforms/{SH_PLATFORM}/inspections": {"question": "forged"},
                 "/api/trucks/沪A1/platform-requests": {"kind": "text", "text": "forged"},
                 "/api/incidents/o-1/supervision": {"deadline_min": 5, "supervisor": "x"},
                 f"/api/uplink/requests/{asked.request_id}/answer": {"content": "forged"}}
        for path, body in paths.items():
            for headers in ({"Origin": "http://127.0.0.1:1"},
                            {"Origin": own.replace("127.0.0.1", "localhost")},
                            {"Origin": "null"}, {"Origin": "", "Referer": "http://evil.example/"}):
                response = await chief.post(path, json=body, headers=headers)
                assert response.status == 403, (path, headers)
            without = await chief.post(path, json=body, skip_auto_headers=["Origin"],
                                       headers={"Origin": ""})
            assert without.status == 403, path
        assert (await chief.get("/api/me")).status == 200
        for topic in ("YRD_TOPIC_PLATFORM_REQUESTS", "YRD_TOPIC_UPLINK_ANSWERS"):
            with pytest.raises(TimeoutError):
                kafka.read(fresh[topic], lambda records: len(records) > 0, timeout=3.0)
        # from the page itself (its Referer without an Origin) the answer goes
        response = await chief.post(f"/api/uplink/requests/{asked.request_id}/answer",
                                    json={"content": "在岗"},
                                    headers={"Origin": "", "Referer": own + "/"})
        assert response.status == 201, await response.text()


async def test_an_inspection_from_the_desk_answered_by_a_platform_through_the_gateway(
        services, kafka, tmp_path):
    """The real chain below: the gateway (in process) holding a simulated provincial
    platform's links reports them up on the link-state topic, sends the desk's inspections
    down its slave link, and records the platform's 0x1301 answers (after 1.5 s): one in
    time, one past its 0.6 s deadline; the desk shows both with the time they took."""
    from tests.integration.test_gateway import running
    from tests.integration.test_jt809_platforms import (FAST_SLAVE, code, configure,
                                                        link_settings, platform_with_slave)
    from yrd_hazmat.jt809 import links as jt809_links

    denv = run_env(services)
    access = code()
    configure(kafka, denv, access_code=access, name="苏州省级平台", user_id=7102,
              password="s3cret", edition=2019, province="JS")
    gateway_settings = link_settings(
        denv, topic_platform_requests=denv["YRD_TOPIC_PLATFORM_REQUESTS"],
        topic_platform_request_results=denv["YRD_TOPIC_PLATFORM_REQUEST_RESULTS"],
        **FAST_SLAVE)
    port = gateway_settings.jt809_port
    async with running(gateway_settings) as gateway, platform_with_slave(
            port, access, 7102, "s3cret", edition=2019) as (platform, slave), \
            desk_client(links_settings(denv, users_file(tmp_path))) as js:
        platform.answers(slave, delays={0x9301: 1.5})
        assert await platform.login() == jt809_links.OK
        await asyncio.to_thread(wait_until, lambda: gateway.links.slave_link(access) is not None,
                                "the slave link", 30)
        await login(js, "js-duty")
        links = await until_json(js, "/api/links", lambda d: any(
            x["access_code"] == access and x["status"] == "up" for x in d["links"]),
            "the platform up, as its gateway reports it", 60)
        shown = next(x for x in links["links"] if x["access_code"] == access)
        assert shown["name"] == "苏州省级平台" and shown["reporters"]

        asked = {}
        for name, minutes in (("in_time", 1), ("late", 0.01)):
            response = await js.post(f"/api/platforms/{access}/inspections",
                                     json={"question": f"请报告值班人员（{name}）",
                                           "deadline_min": minutes})
            assert response.status == 201, await response.text()
            asked[name] = (await response.json())["request_id"]
        data = await until_json(js, "/api/platform-requests", lambda d: len(d["items"]) == 2
                                and all(x["status"] == "answered" for x in d["items"]),
                                "both answered", 60)
        items = {x["request_id"]: x for x in data["items"]}
        in_time, late = items[asked["in_time"]], items[asked["late"]]
        assert (in_time["route"], in_time["late"], in_time["open"]) == ("slave", False, False)
        answer = in_time["answers"][0]
        assert answer["answer"]["text"] == "已核实" and 1.0 <= answer["took_s"] < 10
        assert late["late"] is True and late["answers"][0]["late"] is True
        assert [s["status"] for s in late["steps"]] == ["sent", "late", "answered"]


async def test_a_lower_platforms_alarm_is_on_the_triage_until_a_desk_closes_it(
        env, kafka, worker, tmp_path):
    """A lower platform's alarm (0x1402, PLATFORM_ALARM on the alerts topic, never cleared
    and not in the worker's read model) raised an hour before the desk starts: the desk
    reads it back and lists it on its province's triage, not on another's (one two days
    old, past the window, on none); acknowledged, it stays; closed, it leaves."""
    from yrd_hazmat.core.models import Alert, AlertState, AlertType, Severity

    settings = links_settings(env, users_file(tmp_path)).model_copy(
        update={"topic_alerts": env["YRD_TOPIC_ALERTS"]})
    at = datetime.now(CHINA_TZ) - timedelta(hours=1)
    alarm = Alert(alert_id="pa-test:raised", incident_id="pa-test", type=AlertType.PLATFORM_ALARM,
                  severity=Severity.CRITICAL, state=AlertState.RAISED, vehicle_id="沪A72009",
                  ts=at, emitted_at=at, lat=31.2, lon=121.4, province="SH",
                  details={"source": "jt809", "platform": SH_PLATFORM, "warn": "hijack"})
    old = msgspec.structs.replace(alarm, alert_id="pa-old:raised", incident_id="pa-old",
                                  ts=at - timedelta(days=2), emitted_at=at - timedelta(days=2))
    for raised in (old, alarm):
        kafka.send(env["YRD_TOPIC_ALERTS"], raised.vehicle_id.encode(), encode(raised))
    kafka.flush()
    async with desk_client(settings) as sh, desk_client(settings) as js:
        await login(sh, "sh-duty")
        await login(js, "js-duty")
        triage = await until_json(sh, "/api/triage", lambda d: any(
            i["incident_id"] == "pa-test" for i in d["items"]), "the platform's alarm", 30)
        [item] = [i for i in triage["items"] if i["type"] == "PLATFORM_ALARM"]  # not the old
        assert (item["severity"], item["vehicle_id"], item["state"]) == (
            "critical", "沪A72009", "new")
        assert not [i for i in (await (await js.get("/api/triage")).json())["items"]
                    if i["type"] == "PLATFORM_ALARM"]
        response = await sh.post("/api/incidents/pa-test/actions", json={"kind": "ack"})
        assert response.status == 200, await response.text()
        await until_json(sh, "/api/triage", lambda d: any(
            i["incident_id"] == "pa-test" and i["state"] == "acknowledged" for i in d["items"]),
            "acknowledged, still listed")
        response = await sh.post("/api/incidents/pa-test/actions",
                                 json={"kind": "close", "text": "企业已处置"})
        assert response.status == 200, await response.text()
        await until_json(sh, "/api/triage", lambda d: not any(
            i["incident_id"] == "pa-test" for i in d["items"]), "closed: gone")
        assert (await js.post("/api/incidents/pa-test/actions",
                              json={"kind": "ack"})).status == 404
