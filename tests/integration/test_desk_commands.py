"""Commands from the police desk on the real broker and Redis: a SH user's text reaches
``yrd.commands`` as the contract says, the results a gateway writes (the test writes them,
as gateways would) become its status by the log's rules, a photo is served to the
jurisdiction only, another province's user cannot command the truck, a bad request is a
400 that sends nothing, and "tell them all" warns each truck an emergency exposed."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timedelta

import pytest

from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import Media, Ping
from yrd_hazmat.core.timeutil import CHINA_TZ
from tests.harness import wait_until
from tests.integration.harness import latest_ts, write_results
from tests.integration.test_desk import (Events, collision, desk_client, desk_settings, login,
                                         users_file)
from tests.integration.traces import XINJIEKOU, drive, start_time

pytestmark = pytest.mark.integration

SITE = (121.50, 31.25)  # Shanghai, 3 km from the first test's truck (People's Square)
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) + b"\xff\xd9"


async def in_read_model(env, *trips: list[Ping]) -> None:
    for trip in trips:
        last = trip[-1]
        await asyncio.to_thread(wait_until, lambda: (latest_ts(
            env["REDIS_URL"], env["YRD_REDIS_PREFIX"], last.vehicle_id) or "") >= last.ts.isoformat(),
            f"{last.vehicle_id} in the read model")


def published(env, kafka, vehicle: str, count: int) -> list[dict]:
    """The commands on the topic for ``vehicle``, once there are ``count`` (and a second
    more, so an unwanted extra one shows)."""
    def mine(records: list[dict]) -> list[dict]:
        return [r for r in records if r and r["vehicle_id"] == vehicle]

    return mine(kafka.read(env["YRD_TOPIC_COMMANDS"], lambda rs: len(mine(rs)) >= count,
                           settle=1.0))


async def shown(client, path: str, timeout: float = 30.0):
    """The answer to ``path`` once it is not a 404 (or the last 404 after ``timeout``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        answer = await client.get(path)
        if answer.status != 404 or asyncio.get_running_loop().time() > deadline:
            return answer
        await asyncio.sleep(0.2)


async def listed_until(client, vehicle: str, condition, what: str,
                       timeout: float = 30.0) -> list[dict]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        listed = await (await client.get(f"/api/trucks/{vehicle}/commands")).json()
        if condition(listed):
            return listed
        assert asyncio.get_running_loop().time() < deadline, f"{what}; listed {listed}"
        await asyncio.sleep(0.2)


async def test_a_text_and_a_photo_to_a_truck_of_the_jurisdiction(env, kafka, worker, tmp_path):
    settings = desk_settings(env, users_file(tmp_path))
    t0 = start_time()
    sh_truck = drive("沪A63001", t0, [40.0] * 3)
    js_truck = drive("苏A63002", t0, [40.0] * 3, at=XINJIEKOU)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], sh_truck + js_truck)
    await in_read_model(env, sh_truck, js_truck)

    async with desk_client(settings) as sh, desk_client(settings) as js:
        await login(sh, "sh-duty")
        await login(js, "js-duty")
        sh_feed = Events(await sh.get("/api/feed"))
        js_feed = Events(await js.get("/api/feed"))
        try:
            await asyncio.sleep(1.0)  # both feeds connected
            sent = await sh.post("/api/trucks/沪A63001/commands", json={
                "kind": "text", "text": "前方事故，请绕行", "tts": True, "emergency": True})
            assert sent.status == 201, await sent.text()
            answer = await sent.json()
            assert (answer["kind"], answer["text"], answer["tts"], answer["emergency"],
                    answer["issued_by"], answer["status"]) == (
                "text", "前方事故，请绕行", True, True, "sh-duty", "waiting")
            issued = datetime.fromisoformat(answer["issued_at"])
            assert datetime.fromisoformat(answer["expires_at"]) - issued == timedelta(
                seconds=settings.command_expiry_s)

            [command] = published(env, kafka, "沪A63001", 1)
            assert command == {k: answer[k] for k in command}  # the contract's record
            assert command["incident_id"] is None and command["display"] is True
            [listed] = await (await sh.get("/api/trucks/沪A63001/commands")).json()
            assert (listed["command_id"], listed["status"]) == (command["command_id"], "waiting")

            # a gateway claims it, a second one's claim loses, the first sends, the truck answers
            write_results(env, kafka, command, ("claimed", {"gateway": "gw-1"}),
                       ("claimed", {"gateway": "gw-2"}),
                       ("sent", {"gateway": "gw-1", "serial": 5, "detail": "0x8300"}),
                       ("ok", {"gateway": "gw-1", "serial": 5}))
            [done] = await listed_until(sh, "沪A63001", lambda ls: ls[0]["status"] == "ok",
                                        "the truck's answer")
            assert [(s["status"], s["gateway"]) for s in done["steps"]] == [
                ("claimed", "gw-1"), ("sent", "gw-1"), ("ok", "gw-1")]
            await sh_feed.until(lambda evs: any(
                e == "command" and d["command_id"] == command["command_id"] and d["status"] == "ok"
                for e, d in evs), "the answer pushed to the SH desk")
            await asyncio.sleep(1.0)
            assert not [e for e, _ in js_feed.events if e == "command"]  # not JS's truck
        finally:
            sh_feed.close()
            js_feed.close()

        # a photo: its result links to the picture on the media topic, served to SH only
        photo = await (await sh.post("/api/trucks/沪A63001/commands", json={"kind": "photo"})).json()
        assert (photo["kind"], photo["camera"], photo["text"]) == ("photo", 1, None)
        media_id = f"沪A63001:7:{t0:%Y%m%d%H%M%S}"
        media = Media(media_id=media_id, vehicle_id="沪A63001", terminal_media_id=7,
                      format="jpeg", channel=1, event=0, received_at=datetime.now(CHINA_TZ),
                      data=base64.b64encode(JPEG).decode(), size=len(JPEG),
                      command_id=photo["command_id"])
        kafka.send(env["YRD_TOPIC_MEDIA"], media_id.encode(), encode(media))
        write_results(env, kafka, photo, ("claimed", {"gateway": "gw-1"}),
                   ("sent", {"gateway": "gw-1", "serial": 6}),
                   ("ok", {"gateway": "gw-1", "serial": 6, "media_id": media_id}))
        listed = await listed_until(sh, "沪A63001", lambda ls: ls[0]["status"] == "ok",
                                    "the photo's answer")
        assert [c["kind"] for c in listed] == ["photo", "text"]  # newest first
        assert listed[0]["steps"][-1]["media_id"] == media_id
        picture = await shown(sh, f"/api/media/{media_id}")  # (the media topic has its own follower)
        assert picture.status == 200, await picture.text()
        assert picture.content_type == "image/jpeg" and await picture.read() == JPEG
        assert (await js.get(f"/api/media/{media_id}")).status == 404
        assert (await sh.get("/api/media/沪A63001:8:20260101000000")).status == 404

        # another province's user can neither command nor list the truck
        refused = await js.post("/api/trucks/沪A63001/commands", json={"kind": "position_query"})
        assert refused.status == 404
        assert (await js.get("/api/trucks/沪A63001/commands")).status == 404
        assert (await sh.post("/api/trucks/沪A69999/commands",
                              json={"kind": "position_query"})).status == 404  # unknown

        # bad requests: a 400 saying why, and nothing published
        for body, why in (({"kind": "text", "text": "x" * 401}, "length <= 400"),
                          ({"kind": "text", "text": "前方🚒"}, "has no GBK code"),
                          ({"kind": "text", "text": "  "}, "the text is empty"),
                          ({"kind": "reboot"}, "$.kind"),
                          ({"kind": "photo", "text": "smile"}, "go with kind text"),
                          ({"kind": "text", "text": "hi", "tts": "yes"}, "$.tts"),
                          ([], "Expected `object`")):
            bad = await sh.post("/api/trucks/沪A63001/commands", json=body)
            assert bad.status == 400 and why in (await bad.json())["error"], (body, await bad.text())
        bad = await sh.post("/api/trucks/沪A63001/commands", data=b"{not json",
                            headers={"Content-Type": "application/json"})
        assert bad.status == 400 and (await bad.json())["error"] == "the body is not JSON"
        assert [c["kind"] for c in published(env, kafka, "沪A63001", 2)] == ["text", "photo"]

        # a desk started afterwards reads the commands and their results back from the topics
        async with desk_client(settings) as restarted:
            await login(restarted, "sh-duty")
            again = await (await restarted.get("/api/trucks/沪A63001/commands")).json()
            assert [(c["kind"], c["status"]) for c in again] == [("photo", "ok"), ("text", "ok")]


async def test_tell_them_all_warns_each_truck_the_emergency_exposed(env, kafka, worker,
                                                                      tmp_path):
    settings = desk_settings(env, users_file(tmp_path))
    t0 = start_time()
    east = drive("沪A63101", t0, [0.0] * 3, at=(SITE[0] + 0.0034, SITE[1]), step_deg=0)
    north = drive("苏E63102", t0, [0.0] * 3, at=(SITE[0], SITE[1] + 0.002), step_deg=0)
    far = drive("沪A63103", t0, [0.0] * 3, at=(SITE[0] + 0.03, SITE[1]), step_deg=0)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], east + north + far)
    await in_read_model(env, east, north, far)
    crash = drive("沪A63100", t0, [40.0] * 3, at=SITE, step_deg=0)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], crash + [collision(crash[-1])])

    async with desk_client(settings) as sh, desk_client(settings) as js:
        await login(sh, "sh-duty")
        await login(js, "js-duty")
        deadline = asyncio.get_running_loop().time() + 60
        while not (emergencies := [e for e in await (await sh.get("/api/incidents")).json()
                                   if e["vehicle_id"] == "沪A63100" and e["subject"] == "collision"]):
            assert asyncio.get_running_loop().time() < deadline, "no emergency on the SH desk"
            await asyncio.sleep(0.5)
        [emergency] = emergencies
        incident = emergency["incident_id"]
        exposed = {t["vehicle_id"] for t in emergency["exposure"]["trucks"]}
        assert exposed == {"沪A63101", "苏E63102"} and emergency["commands"] == []

        plan = await (await sh.get(f"/api/incidents/{incident}/tell-exposed")).json()
        assert "500米" in plan["text"]  # the isolation distance (no permit: the default)
        assert {(t["vehicle_id"], t["yours"]) for t in plan["trucks"]} == {
            ("沪A63101", True), ("苏E63102", True)}  # the plate is JS, the truck in SH

        # a text no terminal could show: refused before any truck is told
        bad = await sh.post(f"/api/incidents/{incident}/tell-exposed", json={"text": "危险🔥"})
        assert bad.status == 400 and "has no GBK code" in (await bad.json())["error"]
        assert (await js.post(f"/api/incidents/{incident}/tell-exposed", json={})).status == 404

        told = await sh.post(f"/api/incidents/{incident}/tell-exposed")  # no body: the default
        assert told.status == 201, await told.text()
        answer = await told.json()
        assert answer["not_yours"] == [] and answer["text"] == plan["text"]
        assert {c["vehicle_id"] for c in answer["commands"]} == exposed
        for vehicle in exposed:
            [command] = published(env, kafka, vehicle, 1)
            assert (command["kind"], command["text"], command["emergency"], command["tts"],
                    command["incident_id"], command["issued_by"]) == (
                "text", plan["text"], True, True, incident, "sh-duty")
        assert published(env, kafka, "沪A63103", 0) == []  # the far truck is not told

        # each truck's result shows with the emergency
        one = next(c for c in answer["commands"] if c["vehicle_id"] == "沪A63101")
        write_results(env, kafka, one, ("claimed", {"gateway": "gw-1"}),
                   ("sent", {"gateway": "gw-1", "serial": 1}),
                   ("failed", {"gateway": "gw-1", "serial": 1}))
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            [listed] = [e for e in await (await sh.get("/api/incidents")).json()
                        if e["incident_id"] == incident]
            statuses = {c["vehicle_id"]: c["status"] for c in listed["commands"]}
            if statuses == {"沪A63101": "failed", "苏E63102": "waiting"}:
                break
            assert asyncio.get_running_loop().time() < deadline, statuses
            await asyncio.sleep(0.2)
