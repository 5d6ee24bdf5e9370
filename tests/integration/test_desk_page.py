"""The desk page's other views and its guards, in headless Chromium on the real worker:
plate search, the language switch, the history with a filter and its CSV export, the
shift handover and the region's summary; names from data (a zone, a resource) written as
markup show as text and run nothing; a user change leaves nothing of the previous user on
the page; and the page holds up at 5,000 trucks and 3,000 open alerts (its long tasks are
measured and printed; only a freeze fails the test)."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from datetime import datetime, timedelta
from importlib.resources import files

import pytest

from yrd_hazmat.core.models import Alert, AlertState, Severity
from yrd_hazmat.core.observation import Observation
from yrd_hazmat.readmodel import ReadModel, VehicleUpdate
from yrd_hazmat.core.timeutil import CHINA_TZ
from tests.harness import wait_until
from tests.integration.harness import run_env, scrape
from tests.integration.test_desk import collision, desk_settings, users_file
from tests.integration.test_desk_browser import (chromium, desk_page, in_read_model,
                                                 new_desk_context, ready, search, serving,
                                                 sign_in, triage_item, until)
from tests.integration.traces import PEOPLES_SQUARE, XINJIEKOU, drive, start_time

pytestmark = pytest.mark.integration
MARKUP = '<img src=x onerror="window.__xss=1">'
"""A name that would run a script if a page inserted it as HTML."""
EVIL_ZONE_AT = (121.30, 31.10)  # Shanghai, Songjiang: away from the other tests' trucks
SHORT_TIME = re.compile(r"^\d\d-\d\d \d\d:\d\d$")
LONG_TASK_LIMIT_MS = 500
"""A task this long is a visible freeze (the issue saw 0.8 s at every refresh); shorter
ones are measured and printed, not asserted: the machine is shared."""


@pytest.fixture(scope="module")
def resources_file(tmp_path_factory) -> str:
    """The region's resources plus a fire station named like markup, at People's Square
    (so it is the nearest responder to a collision there)."""
    doc = json.loads((files("yrd_hazmat.data") / "resources.json").read_text())
    doc["resources"].append({
        "resource_id": "sh-markup-station", "name": f"{MARKUP}消防站", "kind": "fire_rescue",
        "lat": PEOPLES_SQUARE[1] + 0.001, "lon": PEOPLES_SQUARE[0], "province": "SH",
        "city": "310000", "hazard_classes": "all",
        "capabilities": ["fire", "leak", "toxic_gas", "decontamination"]})
    path = tmp_path_factory.mktemp("resources") / "resources.json"
    path.write_text(json.dumps(doc, ensure_ascii=False))
    return str(path)


@pytest.fixture(scope="module")
def env(services, resources_file):
    return run_env(services, YRD_RESOURCES_FILE=resources_file)


@pytest.fixture
def settings(env, resources_file, tmp_path):
    return desk_settings(env, users_file(tmp_path)).model_copy(
        update={"resources_file": resources_file})


async def open_view(page, name: str) -> None:
    await page.click(f'#views button[data-view="{name}"]')
    await page.locator(f"#view-{name}:not([hidden])").wait_for()


async def test_search_language_history_handover_and_region(env, kafka, worker, settings):
    t0 = start_time()
    speeder = drive("沪A64001", t0, [96.0] * 10)  # speeding, never cleared: an open alert
    js_speeder = drive("苏A64002", t0, [96.0] * 10, at=XINJIEKOU)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], speeder + js_speeder)
    await in_read_model(env, speeder[-1], js_speeder[-1])

    async with serving(settings) as url, chromium() as browser:
        sh, chief = await desk_page(browser), await desk_page(browser)
        await sign_in(sh, url, "sh-duty")
        await sign_in(chief, url, "chief")
        speeding = sh.locator("#triage li.item", has_text="沪A64001").first
        await speeding.wait_for(timeout=60_000)
        # the type and the time as a person reads them, not codes and ISO stamps
        assert "超速" in await speeding.locator(".what").inner_text()
        assert SHORT_TIME.match(await speeding.locator(".where time").inner_text())
        assert await sh.locator("#triage li.item", has_text="苏A64002").count() == 0

        # plate search: a part of the plate finds the truck and opens it; another
        # province's truck is not found
        assert await search(sh, "64001") == ["沪A64001"]
        await sh.click("#search-results button")
        await sh.locator("#details:not([hidden]) #d-vehicle", has_text="沪A64001").wait_for()
        assert await search(sh, "苏A64002") == []
        assert await sh.inner_text("#search-results") == "无匹配车辆"

        # the language switch: every label from the other table, kept across a reload
        await sh.click("#desk .lang-switch")
        assert await sh.title() == "YRD Hazmat desk"
        assert "Speeding" in await speeding.locator(".what").inner_text()
        assert await sh.inner_text("#logout") == "Sign out"
        assert await sh.inner_text('#views button[data-view="history"]') == "History"
        await sh.reload()
        await ready(sh)
        assert await sh.inner_text("#logout") == "Sign out"
        await sh.click("#desk .lang-switch")
        assert await sh.inner_text("#logout") == "退出"
        await speeding.wait_for()
        assert "超速" in await speeding.locator(".what").inner_text()

        # acknowledged, so the handover has something the desk did
        incident = await speeding.get_attribute("data-incident")
        await speeding.locator("button.do-ack").click()
        await triage_item(sh, incident, "acknowledged").wait_for(timeout=30_000)

        # the history: a period and a type; only the jurisdiction's; a CSV of the same
        await open_view(sh, "history")
        await sh.select_option("#history-form select[name=type]", "SPEEDING")
        await sh.click("#history-form button[type=submit]")
        await until(sh, "document.querySelector('#history-csv').href.includes('type=SPEEDING')",
                    "the filtered history drawn")
        rows = sh.locator("#history-table tbody tr", has_text="沪A64001")
        await rows.first.wait_for(timeout=60_000)
        types = await sh.locator("#history-table tbody td:nth-child(2)").all_inner_texts()
        assert types and set(types) == {"超速"}, types
        assert await sh.locator("#history-table tbody tr", has_text="苏A64002").count() == 0
        csv_link = await sh.get_attribute("#history-csv", "href")
        assert "format=csv" in csv_link
        answer = await sh.context.request.get(url.rstrip("/") + csv_link)
        assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        body = (await answer.body()).decode("utf-8")
        assert body.startswith("\ufeff") and "沪A64001" in body and "苏A64002" not in body

        # the shift handover: what came, what the desk did, what stays open
        await open_view(sh, "handover")
        await sh.locator("#handover-body:not([hidden])").wait_for(timeout=60_000)
        came = await sh.inner_text("#handover-came")
        assert int(re.search(r"共 (\d+) 条", came).group(1)) >= 1, came
        handled = sh.locator("#handover-handled tbody tr", has_text="沪A64001")
        await handled.first.wait_for()
        assert "sh-duty" in await handled.first.inner_text()
        assert "确认" in await handled.first.inner_text()
        assert await sh.locator("#handover-open li", has_text="沪A64001").count() >= 1

        # the region's summary: every province for the region, one's own for a province
        await open_view(chief, "region")
        await chief.locator('#region-table tbody tr[data-province="AH"]').wait_for(timeout=30_000)
        provinces = await chief.locator("#region-table tbody tr").evaluate_all(
            "(rows) => rows.map((r) => r.dataset.province)")
        assert set(provinces) >= {"SH", "JS", "ZJ", "AH"}, provinces
        sh_row = chief.locator('#region-table tbody tr[data-province="SH"] td')
        assert int(await sh_row.nth(2).inner_text()) >= 1  # SH's open warnings
        await open_view(sh, "region")
        await sh.locator('#region-table tbody tr[data-province="SH"]').wait_for(timeout=30_000)
        assert await sh.locator("#region-table tbody tr").count() == 1
        assert sh.errors == [] and chief.errors == []


async def zone_loaded(env) -> None:
    await asyncio.to_thread(wait_until, lambda: scrape(env["YRD_METRICS_PORT"]).get(
        ("yrd_zones_loaded", ()), 0) >= 1, "the zone loaded by the worker", 60)


async def test_names_from_data_show_as_text_and_a_user_change_leaves_nothing(
        env, kafka, worker, settings):
    d = 0.01
    x, y = EVIL_ZONE_AT
    zone = {"type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[
                [x - d, y - d], [x + d, y - d], [x + d, y + d], [x - d, y + d], [x - d, y - d]]]},
            "properties": {"zone_id": "markup-zone", "name": MARKUP, "kind": "school",
                           "province": "SH", "banned_classes": "all"}}
    kafka.send(env["YRD_TOPIC_ZONES"], b"markup-zone", json.dumps(zone).encode())
    kafka.flush()
    await zone_loaded(env)
    t0 = start_time()
    parked_in_zone = drive("沪A65001", t0, [0.0] * 6, at=EVIL_ZONE_AT, step_deg=0, road="other")
    crashed = drive("沪A65002", t0, [40.0] * 4, at=PEOPLES_SQUARE, road="other")
    kafka.send_pings(env["YRD_TOPIC_PINGS"], parked_in_zone + crashed + [collision(crashed[-1])])
    await in_read_model(env, parked_in_zone[-1], crashed[-1])

    async with serving(settings) as url, chromium() as browser:
        sh = await desk_page(browser)
        await sign_in(sh, url, "sh-duty")
        # the zone's name in the triage list, the resource's in the emergency: as text
        in_zone = sh.locator("#triage li.item", has_text="沪A65001").first
        await in_zone.wait_for(timeout=60_000)
        assert MARKUP in await in_zone.inner_text()
        crash = sh.locator("#triage li.item.emergency", has_text="沪A65002").first
        await crash.locator(".what").click()
        station = sh.locator('#i-emergency .responders li[data-resource="sh-markup-station"]')
        await station.wait_for(timeout=60_000)
        assert MARKUP in await station.inner_text()
        await sh.click("#triage-section h2")  # and the map's zone layer drew its tooltip text
        await asyncio.sleep(1.0)
        assert await sh.evaluate("window.__xss") is None
        assert await sh.locator('img[src="x"]').count() == 0

        # signing out leaves a login form and nothing of the user's
        await sh.click("#logout")
        await sh.locator("#login:not([hidden])").wait_for(timeout=30_000)
        html = await sh.content()
        assert "沪A65" not in html and "sh-duty" not in html and "onerror" not in html
        # the next user in the same tab sees only theirs
        await sign_in(sh, url, "js-duty")
        assert "js-duty" in await sh.inner_text("#who")
        assert "沪A" not in await sh.content()
        assert await sh.evaluate(
            "desk.trucks.every((t) => !t.vehicle_id.startsWith('沪')) && "
            "desk.triage.items.every((i) => i.province !== 'SH')")

        # two tabs of one browser: a sign-out in one empties the other, whose next user
        # (signed in in the first) it then shows alone
        context = await new_desk_context(browser)
        first, second = await desk_page(browser, context), await desk_page(browser, context)
        await sign_in(first, url, "sh-duty")
        await second.goto(url)
        await ready(second)
        await second.locator("#triage li.item", has_text="沪A65").first.wait_for(timeout=30_000)
        await first.click("#logout")
        await second.locator("#login:not([hidden])").wait_for(timeout=30_000)
        assert "沪A65" not in await second.content()
        await sign_in(first, url, "js-duty")
        await until(second, "document.body.dataset.ready && document.querySelector('#who')"
                            ".textContent.startsWith('js-duty')", "the other tab shows js-duty")
        assert "沪A" not in await second.content()
        assert sh.errors == [] and first.errors == [] and second.errors == []


# --- 5,000 trucks and 3,000 open alerts ------------------------------------------------------

OBSERVE_LONG_TASKS = """(() => {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration]);
  }).observe({ type: "longtask", buffered: true });
})();"""

TYPES = [("SPEEDING", Severity.WARNING), ("ZONE_VIOLATION", Severity.CRITICAL),
         ("PROLONGED_STOP", Severity.WARNING), ("ROUTE_DEVIATION", Severity.WARNING),
         ("HANDOVER_EXPECTED", Severity.INFO), ("FATIGUE_DRIVING", Severity.WARNING)]
CENTRES = {"SH": (121.45, 31.20), "JS": (119.50, 32.30), "ZJ": (120.20, 29.80),
           "AH": (117.30, 31.80)}


async def write_fleet(env, trucks: int, alerts: int) -> None:
    """The read model as the worker would leave it: ``trucks`` vehicles spread over the
    four provinces (a tenth of them silent for 15 minutes) and ``alerts`` open alerts."""
    rng = random.Random(22)
    now = datetime.now(CHINA_TZ)
    now_ms = int(now.timestamp() * 1000)
    updates, opened = [], []
    for i in range(trucks):
        province = "SH JS ZJ AH".split()[i % 4]
        cx, cy = CENTRES[province]
        seen_ms = now_ms - (900_000 if i % 10 == 0 else rng.randrange(60_000))
        at = Observation(ts_ms=seen_ms, lat=cy + rng.uniform(-0.6, 0.6),
                         lon=cx + rng.uniform(-0.6, 0.6), speed_kmh=rng.uniform(0, 90),
                         road_class="expressway", alarm_flags=0, status_flags=3,
                         province=province, city=None, heading=rng.randrange(360))
        vehicle = f"测L{i:05d}"
        updates.append(VehicleUpdate(vehicle_id=vehicle, latest=at, previous_province=None,
                                     previously_seen=False))
        if i < alerts:
            kind, severity = TYPES[i % len(TYPES)]
            incident = f"{i:024x}"
            opened.append(Alert(
                alert_id=f"{incident}:raised", incident_id=incident, type=kind,
                severity=severity, state=AlertState.RAISED, vehicle_id=vehicle,
                ts=now - timedelta(seconds=rng.randrange(7200)), emitted_at=now,
                lat=at.lat, lon=at.lon, province=province, city=None,
                details={"speed_kmh": 95} if kind == "SPEEDING" else {}))
    model = ReadModel.from_url(env["REDIS_URL"], prefix=env["YRD_REDIS_PREFIX"])
    try:
        await model.apply(updates, opened, now)
    finally:
        await model.close()


def blocked(tasks: list[list[float]]) -> dict[str, float]:
    durations = [d for _, d in tasks]
    return {"long_tasks": len(durations), "worst_ms": round(max(durations, default=0)),
            "blocked_ms": round(sum(d - 50 for d in durations))}


async def test_5000_trucks_and_3000_open_alerts_do_not_freeze_the_page(env, kafka, settings):
    await write_fleet(env, trucks=5000, alerts=3000)
    async with serving(settings) as url, chromium() as browser:
        context = await new_desk_context(browser)
        await context.add_init_script(OBSERVE_LONG_TASKS)
        page = await desk_page(browser, context)
        started = time.monotonic()
        await sign_in(page, url, "chief")
        loaded_s = time.monotonic() - started
        assert await page.evaluate("desk.trucks.length") >= 5000
        assert int(await page.inner_text("#counts .count.warning b")) >= 1500
        assert await page.locator("#triage li.item").count() == 200  # one page of the list
        sign_in_tasks = blocked(await page.evaluate("window.__longTasks"))
        await page.evaluate("window.__longTasks = []")

        # refreshes alone (trucks every 5 s, triage every 15 s), then while a person works:
        # zooming in and out, the next page of the list, a search, the language twice
        await asyncio.sleep(31)
        idle_tasks = blocked(await page.evaluate("window.__longTasks"))
        await page.evaluate("window.__longTasks = []")
        await page.click("#triage-more")
        for zoom in (9, 12, 7, 10):
            await page.evaluate(f"desk.map.setZoom({zoom})")
            await asyncio.sleep(3)
        found = page.locator("#search-results button", has_text="测L00040")  # silent 15 min
        assert "测L00040" in await search(page, "L0004")
        assert "信号陈旧" in await found.inner_text()
        await page.click("#desk .lang-switch")
        await asyncio.sleep(3)
        await page.click("#desk .lang-switch")
        await asyncio.sleep(5)
        busy_tasks = blocked(await page.evaluate("window.__longTasks"))
        markers = await page.locator(".leaflet-marker-icon").count()
        print(f"\n5,000 trucks / 3,000 open alerts: signed in and drawn in {loaded_s:.1f} s, "
              f"long tasks then {sign_in_tasks}; 31 s of refreshes alone {idle_tasks}; "
              f"zooms, the list's next page, a search, two language switches {busy_tasks}; "
              f"{markers} markers drawn")
        for tasks in (idle_tasks, busy_tasks):
            assert tasks["worst_ms"] < LONG_TASK_LIMIT_MS, tasks
        assert markers < 1000  # grouped: not one marker per truck
        assert page.errors == []
