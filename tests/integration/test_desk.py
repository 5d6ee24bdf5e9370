"""The police desk's API on the real broker and Redis: each user sees only their
jurisdiction, the feed streams live, and an action taken on one desk shows on another."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from yrd_hazmat.config import Settings
from yrd_hazmat.desk.app import Desk
from yrd_hazmat.desk.users import Users, hash_password
from yrd_hazmat.core.models import Ping
from tests.harness import wait_until
from tests.integration.harness import latest_ts
from tests.integration.traces import XINJIEKOU, drive, start_time

pytestmark = pytest.mark.integration

PASSWORDS = {"sh-duty": "sh-pass", "js-duty": "js-pass", "chief": "chief-pass"}


def users_file(tmp_path) -> str:
    path = tmp_path / "desk-users.json"
    path.write_text(json.dumps({"users": [
        {"name": "sh-duty", "jurisdiction": "SH", "password": hash_password("sh-pass", 1_000)},
        {"name": "js-duty", "jurisdiction": "JS", "password": hash_password("js-pass", 1_000)},
        {"name": "chief", "jurisdiction": "region",
         "password": hash_password("chief-pass", 1_000)}]}))
    return str(path)


def desk_settings(env: dict[str, str], users: str) -> Settings:
    return Settings(kafka_bootstrap=env["KAFKA_BOOTSTRAP"], redis_url=env["REDIS_URL"],
                    app_id=env["YRD_APP_ID"], topic_alerts=env["YRD_TOPIC_ALERTS"],
                    topic_zones=env["YRD_TOPIC_ZONES"], topic_permits=env["YRD_TOPIC_PERMITS"],
                    topic_incidents=env["YRD_TOPIC_INCIDENTS"],
                    topic_incident_actions=env["YRD_TOPIC_INCIDENT_ACTIONS"],
                    topic_resources=env["YRD_TOPIC_RESOURCES"],
                    topic_commands=env["YRD_TOPIC_COMMANDS"],
                    topic_command_results=env["YRD_TOPIC_COMMAND_RESULTS"],
                    topic_media=env["YRD_TOPIC_MEDIA"],
                    redis_prefix=env["YRD_REDIS_PREFIX"], desk_users=users,
                    desk_secret="test-secret")


@contextlib.asynccontextmanager
async def desk_client(settings: Settings):
    desk = Desk(settings, Users.load(settings.desk_users))
    client = TestClient(TestServer(desk.application()))
    await client.start_server()
    # a browser sends its page's origin with every POST; the desk refuses any other
    client.session.headers["Origin"] = str(client.make_url("")).rstrip("/")
    try:
        yield client
    finally:
        await client.close()


async def login(client: TestClient, name: str) -> None:
    response = await client.post("/api/login", json={"name": name, "password": PASSWORDS[name]})
    assert response.status == 200, await response.text()


class Events:
    """A live feed read in the background: (event, data) pairs as they arrive."""

    def __init__(self, response) -> None:
        self.response = response
        self.events: list[tuple[str, dict]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        event = None
        while True:
            line = (await self.response.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                self.events.append((event, json.loads(line[6:])))
                event = None

    async def until(self, condition, what: str, timeout: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition(self.events):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"not within {timeout} s: {what}; got {self.events}")
            await asyncio.sleep(0.2)

    def alerts(self, vehicle: str | None = None) -> list[dict]:
        return [d for e, d in self.events if e == "alert" and vehicle in (None, d["vehicle_id"])]

    def close(self) -> None:
        self.task.cancel()


def collision(last: Ping) -> Ping:
    return Ping(**{f: getattr(last, f) for f in last.__struct_fields__}
                | {"ts": last.ts + timedelta(seconds=5), "alarm_flags": 1 << 29})


async def test_jurisdictions_live_feed_and_actions_shared_between_desks(env, kafka, worker,
                                                                        tmp_path):
    settings = desk_settings(env, users_file(tmp_path))
    t0 = start_time()
    sh_truck = drive("沪A61001", t0, [95.0] * 10)  # speeding, never cleared: an open alert
    js_truck = drive("苏A61002", t0, [95.0] * 10, at=XINJIEKOU)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], sh_truck + js_truck)
    await asyncio.to_thread(kafka.alerts_to_barrier, env, sh_truck[-1], js_truck[-1])
    for vehicle, last in (("沪A61001", sh_truck[-1]), ("苏A61002", js_truck[-1])):
        # the barrier, 1 ms after the last ping, is the vehicle's latest in the read model
        await asyncio.to_thread(wait_until, lambda v=vehicle, t=last.ts.isoformat(): (
            latest_ts(env["REDIS_URL"], env["YRD_REDIS_PREFIX"], v) or "") > t,
            f"{vehicle} in the read model")

    async with desk_client(settings) as desk_a, desk_client(settings) as desk_b:
        assert (await desk_a.get("/api/trucks")).status == 401  # not signed in
        await login(desk_a, "sh-duty")
        trucks = {t["vehicle_id"]: t for t in await (await desk_a.get("/api/trucks")).json()}
        assert "沪A61001" in trucks and "苏A61002" not in trucks
        assert trucks["沪A61001"]["worst"] == "critical"  # SPEEDING and the SOS barrier
        open_sh = await (await desk_a.get("/api/alerts/open")).json()
        assert {a["vehicle_id"] for a in open_sh} == {"沪A61001"}
        speeding = next(a for a in open_sh if a["type"] == "SPEEDING")
        one = await (await desk_a.get("/api/trucks/沪A61001")).json()
        assert len(one["track"]) >= 2 and one["permit"] is None  # its last hour
        assert [p["ts_ms"] for p in one["track"]] == sorted(p["ts_ms"] for p in one["track"])
        assert {a["type"] for a in one["open_alerts"]} >= {"SPEEDING"}
        assert (await desk_a.get("/api/trucks/苏A61002")).status == 404  # another province

        await login(desk_b, "chief")
        region = Events(await desk_b.get("/api/feed"))
        sh_feed = Events(await desk_a.get("/api/feed"))
        try:
            await asyncio.sleep(1.0)  # both feeds connected before the new alerts exist
            js_crash, sh_crash = collision(js_truck[-1]), collision(sh_truck[-1])
            kafka.send_pings(env["YRD_TOPIC_PINGS"], [js_crash, sh_crash])
            def collided(feed: Events, vehicle: str) -> bool:
                return any(a["details"].get("alarm") == "collision" for a in feed.alerts(vehicle))

            await region.until(lambda _: collided(region, "苏A61002") and collided(region, "沪A61001"),
                               "both collisions in the region's feed")
            await sh_feed.until(lambda _: collided(sh_feed, "沪A61001"), "the SH collision")
            # the feeds are fed by one callback: once the region saw the JS alert, the SH
            # desk's verdict on it was already made
            assert sh_feed.alerts("苏A61002") == []
            assert {a["province"] for a in sh_feed.alerts()} == {"SH"}

            # acknowledge on desk A; desk B (another process would be the same) sees it
            ack = await desk_a.post(f"/api/incidents/{speeding['incident_id']}/actions",
                                    json={"kind": "ack", "text": "patrol car 12 on its way"})
            assert ack.status == 200, await ack.text()
            def acked(evs) -> list[dict]:
                return [d for e, d in evs if e == "incident"
                        and d["incident_id"] == speeding["incident_id"]]

            await region.until(acked, "the acknowledgement in the other desk's feed")
            [logged] = acked(region.events)
            assert logged["actions"][0]["kind"] == "ack" and logged["actions"][0]["by"] == "sh-duty"
            # each collision is an emergency with its record (so is each barrier's SOS); the
            # SH desk lists only its own
            emergencies = await (await desk_a.get("/api/incidents")).json()
            assert {e["vehicle_id"] for e in emergencies} == {"沪A61001"}
            [crash_id] = [e["incident_id"] for e in emergencies if e["subject"] == "collision"]
            nowhere = await desk_a.post(f"/api/incidents/{crash_id}/actions",
                                        json={"kind": "dispatch", "resource_id": "no-such-team"})
            assert nowhere.status == 409 and "unknown resource" in (await nowhere.json())["error"]
            closed = await desk_a.post(f"/api/incidents/{crash_id}/actions",
                                       json={"kind": "close", "text": "towed away"})
            assert closed.status == 200 and (await closed.json())["closed_at"] is not None
            assert crash_id not in {e["incident_id"]
                                    for e in await (await desk_a.get("/api/incidents")).json()}
            seen_by_b = await (await desk_b.get("/api/alerts/open")).json()
            entry = next(a for a in seen_by_b if a["incident_id"] == speeding["incident_id"])
            assert entry["incident_log"]["actions"][0]["text"] == "patrol car 12 on its way"
            # a desk started afterwards (a restart) reads the actions back from the topic
            async with desk_client(settings) as restarted:
                await login(restarted, "sh-duty")
                again = await (await restarted.get("/api/alerts/open")).json()
                entry = next(a for a in again if a["incident_id"] == speeding["incident_id"])
                assert [a["kind"] for a in entry["incident_log"]["actions"]] == ["ack"]
        finally:
            region.close()
            sh_feed.close()

        # a JS user cannot act on (or even find) a SH incident
        await desk_b.post("/api/logout")
        await login(desk_b, "js-duty")
        refused = await desk_b.post(f"/api/incidents/{speeding['incident_id']}/actions",
                                    json={"kind": "note", "text": "mine?"})
        assert refused.status == 404
        js_open = await (await desk_b.get("/api/alerts/open")).json()
        assert {a["vehicle_id"] for a in js_open} == {"苏A61002"}
        bad = await desk_b.post("/api/login", json={"name": "js-duty", "password": "guess"})
        assert bad.status == 401


async def test_the_page_and_its_map_layers_are_served_from_the_desk_itself(env, kafka, tmp_path):
    settings = desk_settings(env, users_file(tmp_path))
    zone = {"type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[121.40, 31.20], [121.42, 31.20],
                                                             [121.42, 31.22], [121.40, 31.22],
                                                             [121.40, 31.20]]]},
            "properties": {"zone_id": "desk-night-ban", "name": "night ban", "kind": "school",
                           "banned_classes": "all",
                           "schedule": [{"days": "daily", "start": "00:00", "end": "00:01"}]}}
    kafka.send(env["YRD_TOPIC_ZONES"], b"desk-night-ban", json.dumps(zone).encode())
    kafka.flush()
    async with desk_client(settings) as desk:
        page = await desk.get("/")
        html = await page.text()
        assert page.status == 200 and "/static/vendor/leaflet/leaflet.js" in html
        assert "http://" not in html and "https://" not in html  # no CDN
        for asset in ("/static/vendor/leaflet/leaflet.js", "/static/vendor/leaflet/leaflet.css",
                      "/static/desk.js"):
            response = await desk.get(asset)
            assert response.status == 200 and len(await response.read()) > 1000, asset
        assert (await desk.get("/api/geo/provinces")).status == 401  # the data needs a session
        await login(desk, "sh-duty")
        provinces = await (await desk.get("/api/geo/provinces")).json()
        assert {f["properties"]["abbr"] for f in provinces["features"]} == {"SH", "JS", "ZJ", "AH"}
        for _ in range(100):
            zones = await (await desk.get("/api/zones")).json()
            if zones["features"]:
                break
            await asyncio.sleep(0.2)
        [night] = [f for f in zones["features"] if f["properties"]["zone_id"] == "desk-night-ban"]
        assert night["properties"]["banned_now"] is False  # one minute after midnight only
        assert night["geometry"]["type"] == "Polygon"
