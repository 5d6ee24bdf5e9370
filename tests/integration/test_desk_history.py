"""What a duty shift works from, on the real broker and Redis: the triage list with its
states and counts, alerts of any period read back from the alerts topic (filters, CSV),
the shift handover, the region's view, plate search and stale trucks, the resources the
worker uses; and how fast the trucks and the triage answer with 5,000 trucks and 3,000
open alerts (measured, printed, not asserted).

The read model is written as the worker writes it (:meth:`ReadModel.apply`), the alerts
topic as the worker's producer would (a record per alert, its time the moment it was
raised) and the incidents topic as the incident keeper would: no worker runs."""

from __future__ import annotations

import csv
import io
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.emergency.responders import load_resources
from yrd_hazmat.core.models import (Alert, AlertState, City, IncidentAction, IncidentLog, Response,
                               Severity)
from yrd_hazmat.core.observation import Observation
from yrd_hazmat.readmodel import ReadModel, VehicleUpdate
from yrd_hazmat.core.timeutil import CHINA_TZ
from tests.integration.harness import run_env
from tests.integration.test_desk import desk_client, desk_settings, login, users_file

pytestmark = pytest.mark.integration

RESOURCES = Path(__file__).resolve().parents[2] / "yrd_hazmat" / "data" / "resources.json"
PLACES = {"SH": (31.2304, 121.4737, City(code="310000", name="上海市")),
          "JS": (32.0415, 118.7841, City(code="320100", name="南京市")),
          "ZJ": (30.2741, 120.1551, City(code="330100", name="杭州市")),
          "AH": (31.8206, 117.2272, City(code="340100", name="合肥市"))}


@pytest.fixture
def fresh(services) -> dict[str, str]:
    """Topics and a Redis prefix of this test's own."""
    return run_env(services)


# --- writing as the worker and the keeper would ------------------------------------------
def truck(vehicle_id: str, province: str, at: datetime, offset: float = 0.0) -> VehicleUpdate:
    lat, lon, city = PLACES[province]
    latest = Observation(ts_ms=int(at.timestamp() * 1000), lat=lat + offset, lon=lon + offset,
                         speed_kmh=60.0, road_class="expressway", alarm_flags=0, status_flags=3,
                         province=province, city=city, heading=90)
    return VehicleUpdate(vehicle_id=vehicle_id, latest=latest, previous_province=None,
                         previously_seen=False)


def alert(incident_id: str, vehicle_id: str, province: str, at: datetime, *,
          type_: str = "SPEEDING", severity: Severity = Severity.WARNING,
          state: AlertState = AlertState.RAISED, details: dict | None = None) -> Alert:
    lat, lon, city = PLACES[province]
    return Alert(alert_id=f"{incident_id}:{state.value}", incident_id=incident_id, type=type_,
                 severity=severity, state=state, vehicle_id=vehicle_id, ts=at, emitted_at=at,
                 lat=lat, lon=lon, province=province, city=city,
                 details=details if details is not None else {"speed_kmh": 95})


async def in_read_model(env: dict[str, str], trucks: list[VehicleUpdate],
                        alerts: list[Alert]) -> None:
    readmodel = ReadModel.from_url(env["REDIS_URL"], env["YRD_REDIS_PREFIX"])
    try:
        await readmodel.apply(trucks, alerts, datetime.now(CHINA_TZ))
    finally:
        await readmodel.close()


def on_alerts_topic(env: dict[str, str], kafka, alerts: list[Alert]) -> None:
    """Each alert on the alerts topic, its record's time the moment it was raised."""
    for a in alerts:
        kafka.producer.produce(env["YRD_TOPIC_ALERTS"], key=a.vehicle_id.encode(), value=encode(a),
                               timestamp=int(a.emitted_at.timestamp() * 1000))
    kafka.flush()


def on_incidents_topic(env: dict[str, str], kafka, *records: IncidentLog) -> None:
    for record in records:
        kafka.send(env["YRD_TOPIC_INCIDENTS"], record.incident_id.encode(), encode(record))
    kafka.flush()


def record(incident_id: str, vehicle_id: str, province: str, raised_at: datetime,
           *actions: tuple[str, float, dict], emergency: bool = False, **fields) -> IncidentLog:
    """An incident's record: ``actions`` as (kind, minutes after raised, fields)."""
    lat, lon, _ = PLACES[province]
    steps = [IncidentAction(kind="raised", by="worker", at=raised_at)] + [
        IncidentAction(kind=kind, by="worker" if kind == "cleared" else "sh-duty",
                       at=raised_at + timedelta(minutes=minutes), **extra)
        for kind, minutes, extra in actions]
    return IncidentLog(incident_id=incident_id, vehicle_id=vehicle_id, province=province,
                       alert_type=fields.pop("alert_type", "COLLISION"), actions=steps,
                       severity=fields.pop("severity", Severity.CRITICAL), emergency=emergency,
                       raised_at=raised_at, lat=lat, lon=lon, **fields)


async def get(client, path: str):
    response = await client.get(path)
    assert response.status == 200, f"{path}: {response.status} {await response.text()}"
    return await response.json()


# --- the tests ----------------------------------------------------------------------------
async def test_triage_lists_what_needs_handling_first_with_its_state(fresh, kafka, tmp_path):
    now = datetime.now(CHINA_TZ).replace(microsecond=0)
    old_speeding = alert("t-speed", "沪A70001", "SH", now - timedelta(minutes=40))
    zone = alert("t-zone", "沪A70002", "SH", now - timedelta(minutes=5), type_="ZONE_VIOLATION",
                 severity=Severity.CRITICAL, details={"zone": "<b>水源地</b>"})
    info = alert("t-info", "沪A70003", "SH", now - timedelta(minutes=50), type_="STOP_TOO_LONG",
                 severity=Severity.INFO)
    js = alert("t-js", "苏A70004", "JS", now - timedelta(minutes=30), severity=Severity.CRITICAL)
    await in_read_model(fresh, [], [old_speeding, zone, info, js])
    crash_at = now - timedelta(minutes=20)
    on_incidents_topic(
        fresh, kafka,
        record("t-speed", "沪A70001", "SH", old_speeding.ts, ("ack", 1, {}),
               alert_type="SPEEDING", severity=Severity.WARNING),
        record("t-zone", "沪A70002", "SH", zone.ts, ("assign", 1, {"assignee": "巡逻12号"}),
               alert_type="ZONE_VIOLATION"),
        # an emergency whose alarm cleared, noted afterwards: handled, listed until closed
        record("t-crash", "沪A70005", "SH", crash_at, ("cleared", 2, {}), ("note", 3, {"text": "拖走"}),
               emergency=True, cleared_at=crash_at + timedelta(minutes=2)),
        record("t-closed", "沪A70006", "SH", crash_at, ("close", 3, {}), emergency=True,
               closed_at=crash_at + timedelta(minutes=3)))

    async with desk_client(desk_settings(fresh, users_file(tmp_path))) as sh, \
            desk_client(desk_settings(fresh, users_file(tmp_path))) as chief:
        await login(sh, "sh-duty")
        await login(chief, "chief")
        listed = await get(sh, "/api/triage")
        assert [i["incident_id"] for i in listed["items"]] == [
            "t-crash", "t-zone", "t-speed", "t-info"]  # critical first, then the oldest
        assert listed["counts"] == {"critical": 2, "warning": 1, "info": 1}
        items = {i["incident_id"]: i for i in listed["items"]}
        assert {k: i["state"] for k, i in items.items()} == {
            "t-crash": "handled", "t-zone": "assigned", "t-speed": "acknowledged", "t-info": "new"}
        assert items["t-zone"]["assignee"] == "巡逻12号"
        assert items["t-zone"]["last_action"]["kind"] == "assign"
        assert items["t-zone"]["details"] == {"zone": "<b>水源地</b>"}  # text, as it came
        assert (items["t-crash"]["emergency"], items["t-crash"]["alert_id"]) == (True, None)
        assert items["t-info"]["city"] == "上海市" and items["t-info"]["last_action"] is None
        assert datetime.fromisoformat(items["t-speed"]["ts"]) == old_speeding.ts
        region = await get(chief, "/api/triage")
        assert "t-js" in {i["incident_id"] for i in region["items"]}
        assert region["counts"]["critical"] == 3


async def test_history_reads_any_period_from_the_alerts_topic(fresh, kafka, tmp_path):
    now = datetime.now(CHINA_TZ).replace(microsecond=0)
    three_days_ago = alert("h-old", "沪A71001", "SH", now - timedelta(days=3))
    recent = [alert(f"h-{n}", f"沪A7110{n}", "SH", now - timedelta(hours=2, minutes=-n),
                    severity=Severity.CRITICAL if n % 2 else Severity.WARNING,
                    details={"speed_kmh": 90 + n, "note": "=1+1"}) for n in range(6)]
    cleared = alert("h-0", "沪A71100", "SH", now - timedelta(hours=1), state=AlertState.CLEARED)
    js = alert("h-js", "苏A71200", "JS", now - timedelta(hours=2))
    on_alerts_topic(fresh, kafka, [three_days_ago, *recent, cleared, js])

    async with desk_client(desk_settings(fresh, users_file(tmp_path))) as sh:
        await login(sh, "sh-duty")
        day = await get(sh, "/api/history")  # the last 24 h
        assert [a["alert_id"] for a in day["items"]] == [
            "h-0:cleared", *(f"h-{n}:raised" for n in reversed(range(6)))]  # newest first
        assert day["truncated"] is False
        assert datetime.fromisoformat(day["to"]) - datetime.fromisoformat(day["from"]) == \
            timedelta(hours=24)
        # any period still on the topic, by time
        since = (now - timedelta(days=3, hours=1)).isoformat()
        until = (now - timedelta(days=2)).isoformat()
        old = await sh.get("/api/history", params={"from": since, "to": until})
        assert [a["alert_id"] for a in (await old.json())["items"]] == ["h-old:raised"]
        # filters
        critical = await sh.get("/api/history", params={"severity": "critical", "vehicle": "a7110"})
        assert {a["alert_id"] for a in (await critical.json())["items"]} == {
            "h-1:raised", "h-3:raised", "h-5:raised"}
        cut = await get(sh, "/api/history?limit=2")
        assert len(cut["items"]) == 2 and cut["truncated"] is True
        # another province's alerts are never read out, whatever the filter
        assert (await get(sh, "/api/history?province=JS"))["items"] == []
        # CSV for a spreadsheet
        export = await sh.get("/api/history", params={"format": "csv", "severity": "critical"})
        assert export.status == 200
        assert export.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert export.headers["Content-Disposition"].startswith("attachment;")
        body = await export.read()
        assert body.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert rows[0] == ["time", "type", "severity", "state", "vehicle", "province", "city",
                           "lat", "lon", "incident", "details"]
        assert [r[9] for r in rows[1:]] == ["h-5", "h-3", "h-1"]
        assert rows[1][6] == "上海市" and rows[1][10] == "speed_kmh=95; note==1+1"
        for bad in ("from=yesterday", "limit=0", "format=xml", f"from={now.isoformat()}&to="
                    f"{(now - timedelta(hours=1)).isoformat()}"):
            answer = await sh.get(f"/api/history?{bad}".replace("+", "%2B"))
            assert answer.status == 400 and (await answer.json())["error"], bad


async def test_the_handover_says_what_came_what_was_done_and_what_stays_open(fresh, kafka,
                                                                           tmp_path):
    now = datetime.now(CHINA_TZ).replace(microsecond=0)
    came = [alert("s-1", "沪A72001", "SH", now - timedelta(hours=3)),
            alert("s-2", "沪A72002", "SH", now - timedelta(hours=2), type_="ZONE_VIOLATION",
                  severity=Severity.CRITICAL),
            alert("s-1", "沪A72001", "SH", now - timedelta(hours=1), state=AlertState.CLEARED),
            alert("s-old", "沪A72003", "SH", now - timedelta(hours=9)),  # the shift before
            alert("s-js", "苏A72004", "JS", now - timedelta(hours=2))]
    on_alerts_topic(fresh, kafka, came)
    await in_read_model(fresh, [], [came[1]])  # s-2 stays open
    on_incidents_topic(fresh, kafka,
                       record("s-1", "沪A72001", "SH", came[0].ts, ("ack", 2, {}),
                              ("note", 5, {"text": "司机已停车休息"}), alert_type="SPEEDING",
                              severity=Severity.WARNING),
                       record("s-old", "沪A72003", "SH", came[3].ts, ("ack", 1, {}),
                              alert_type="SPEEDING", severity=Severity.WARNING))
    async with desk_client(desk_settings(fresh, users_file(tmp_path))) as sh:
        await login(sh, "sh-duty")
        handover = await get(sh, "/api/handover")  # the last 8 h
        assert handover["came"] == {"total": 2, "by_severity": {"critical": 1, "warning": 1,
                                                                "info": 0},
                                    "by_type": {"SPEEDING": 1, "ZONE_VIOLATION": 1}}
        assert [(h["incident_id"], h["kind"], h["by"], h["text"]) for h in handover["handled"]] == [
            ("s-1", "ack", "sh-duty", None), ("s-1", "note", "sh-duty", "司机已停车休息")]
        assert [i["incident_id"] for i in handover["open"]] == ["s-2"]
        since = (now - timedelta(hours=10)).isoformat()
        longer = await (await sh.get("/api/handover", params={"since": since})).json()
        assert longer["came"]["total"] == 3 and len(longer["handled"]) == 3
        assert (await sh.get("/api/handover?since=soon")).status == 400


async def test_the_regions_view_per_province(fresh, kafka, tmp_path):
    now = datetime.now(CHINA_TZ).replace(microsecond=0)
    raised = now - timedelta(hours=2)
    help_from_js = Response(resource_id="js-fire-1", name="南京消防救援一站", kind="fire_rescue",
                            province="JS", dispatched_at=raised + timedelta(minutes=4),
                            crosses_border=True)
    await in_read_model(fresh, [], [
        alert("r-1", "沪A73001", "SH", raised, severity=Severity.CRITICAL),
        alert("r-2", "浙A73002", "ZJ", raised)])
    on_incidents_topic(
        fresh, kafka,
        record("r-1", "沪A73001", "SH", raised, ("ack", 2, {}), ("dispatch", 4, {}),
               emergency=True, responses=[help_from_js]),
        record("r-3", "沪A73003", "SH", raised, ("ack", 4, {}), ("close", 60, {}),
               emergency=True, closed_at=raised + timedelta(minutes=60)))
    async with desk_client(desk_settings(fresh, users_file(tmp_path))) as chief, \
            desk_client(desk_settings(fresh, users_file(tmp_path))) as js:
        await login(chief, "chief")
        await login(js, "js-duty")
        region = await get(chief, "/api/region")
        assert set(region["provinces"]) == {"SH", "JS", "ZJ", "AH"}
        sh = region["provinces"]["SH"]
        assert sh == {"open": {"critical": 1, "warning": 0, "info": 0}, "emergencies_open": 1,
                      "cross_border_responses": 1, "ack_median_s": 180.0, "close_median_s": 3600.0}
        assert region["provinces"]["ZJ"]["open"]["warning"] == 1
        [crossing] = region["cross_border"]
        assert (crossing["incident_id"], crossing["from_province"], crossing["to_province"],
                crossing["resource"], crossing["released_at"]) == (
            "r-1", "JS", "SH", "南京消防救援一站", None)
        mine = await get(js, "/api/region")
        assert list(mine["provinces"]) == ["JS"] and mine["cross_border"] == []


async def test_plate_search_stale_trucks_and_the_workers_resources(fresh, kafka, tmp_path):
    now = datetime.now(CHINA_TZ)
    fleet = [truck(f"沪A6{n:04d}", "SH", now - timedelta(seconds=30), n * 1e-4) for n in range(60)]
    fleet += [truck("沪B77777", "SH", now - timedelta(minutes=20)),
              truck("苏A60001", "JS", now - timedelta(seconds=30))]
    await in_read_model(fresh, fleet, [])
    settings = desk_settings(fresh, users_file(tmp_path)).model_copy(
        update={"resources_file": str(RESOURCES), "desk_stale_s": 600.0})
    async with desk_client(settings) as sh:
        await login(sh, "sh-duty")
        everyone = {t["vehicle_id"]: t for t in await get(sh, "/api/trucks")}
        assert len(everyone) == 61 and "苏A60001" not in everyone
        assert everyone["沪B77777"]["stale"] is True and everyone["沪B77777"]["age_s"] >= 1190
        assert everyone["沪A60001"]["stale"] is False and 25 <= everyone["沪A60001"]["age_s"] < 600
        found = await get(sh, "/api/trucks?q=b777")  # any case, part of the plate
        assert [t["vehicle_id"] for t in found] == ["沪B77777"]
        many = await get(sh, "/api/trucks?q=a6")
        assert len(many) == 50 and all(t["vehicle_id"].startswith("沪A6") for t in many)
        assert await get(sh, "/api/trucks?q=苏A6") == []  # another province's plate
        resources = await get(sh, "/api/resources")
        assert {r["resource_id"] for r in resources} == {
            r.resource_id for r in load_resources(RESOURCES)}
        assert len(resources) > 0


async def test_trucks_and_triage_with_5000_trucks_and_3000_open_alerts(fresh, kafka, tmp_path):
    """The figures the probe found freezing the map, measured (printed; not asserted: the
    machine is shared)."""
    now = datetime.now(CHINA_TZ)
    provinces = list(PLACES)
    fleet = [truck(f"测{n:05d}", provinces[n % 4], now - timedelta(seconds=n % 900),
                   (n % 100) * 1e-3) for n in range(5000)]
    alerts = [alert(f"p-{n}", f"测{n:05d}", provinces[n % 4], now - timedelta(seconds=n),
                    severity=(Severity.CRITICAL, Severity.WARNING, Severity.INFO)[n % 3])
              for n in range(3000)]
    await in_read_model(fresh, fleet, alerts)
    async with desk_client(desk_settings(fresh, users_file(tmp_path))) as chief, \
            desk_client(desk_settings(fresh, users_file(tmp_path))) as sh:
        await login(chief, "chief")
        await login(sh, "sh-duty")
        figures = {}
        for who, client in (("region", chief), ("SH", sh)):
            for path in ("/api/trucks", "/api/triage"):
                took, size = [], ()
                for _ in range(7):
                    started = time.perf_counter()
                    response = await client.get(path, headers={"Accept-Encoding": "gzip"})
                    body = await response.read()
                    took.append(time.perf_counter() - started)
                    assert response.status == 200
                    assert response.headers["Content-Encoding"] == "gzip"
                    size = (int(response.headers["Content-Length"]), len(body))
                figures[(who, path)] = (statistics.median(took), max(took), *size)
        trucks = await get(chief, "/api/trucks")
        listed = await get(chief, "/api/triage")
        assert len(trucks) == 5000 and sum(listed["counts"].values()) == 3000
        assert sum(1 for t in trucks if t["worst"] == "critical") == 1000
        assert len(await get(sh, "/api/trucks")) == 1250
    print("\n5,000 trucks, 3,000 open alerts: median and max of 7 calls; bytes gzipped / JSON")
    for (who, path), (median, worst, sent, size) in figures.items():
        print(f"  {who:6} {path:12} {median * 1000:7.1f} ms {worst * 1000:7.1f} ms "
              f"{sent:>9,} B {size:>10,} B")
