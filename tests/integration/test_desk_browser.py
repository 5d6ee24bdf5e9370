"""A duty shift on the police desk in a real browser (headless Chromium driven by
Playwright), on the real worker: trucks are found by plate; a collision sounds the alarm
and badges the title; it leads the triage list, is acknowledged, assigned and noted from
forms (not prompts) with a timed log that another desk sees; it leads to its truck and
its scene on the map; a text goes to the truck; a responder is dispatched and released;
cleared and closed, it leaves the list and stays findable in the history. A SH user never
sees a JS alert. Screenshots go to the test's temporary directory, or to
``YRD_SCREENSHOTS_DIR`` (``make screenshots``: docs/) when asked: a test run leaves the checkout
as it found it.

The helpers here (serving a desk, a browser whose pages count the alarm's tones, signing
in, waiting for a condition) serve tests/integration/test_desk_page.py too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from datetime import timedelta
from importlib.resources import files
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import async_playwright

from yrd_hazmat.config import Settings
from yrd_hazmat.desk.app import Desk
from yrd_hazmat.desk.users import Users
from yrd_hazmat.core.models import Ping
from tests.integration.browser import FLAGS, chromium_executable
from tests.harness import free_port, wait_until
from tests.integration.harness import latest_ts, run_env, write_results
from tests.integration.test_desk import PASSWORDS, collision, desk_settings, users_file
from tests.integration.traces import XINJIEKOU, drive, start_time
from tests.permit_trips import permit_doc

pytestmark = pytest.mark.integration
RESOURCES = str(files("yrd_hazmat.data") / "resources.json")
LOGGED_AT = re.compile(r"\d\d-\d\d \d\d:\d\d:\d\d")
"""An action log line's time, as a person reads it (month-day hour:minute:second)."""

COUNT_TONES = """(() => {
  window.__tones = 0;
  const Base = window.AudioContext;
  if (!Base) return;
  window.AudioContext = class extends Base {
    createOscillator() {
      const tone = super.createOscillator();
      const start = tone.start.bind(tone);
      tone.start = (...args) => { window.__tones += 1; return start(...args); };
      return tone;
    }
  };
})();"""
"""Counts the tones the page starts (the alarm is WebAudio: no audio file to watch)."""


@pytest.fixture(scope="module")
def env(services):
    return run_env(services, YRD_RESOURCES_FILE=RESOURCES)


@contextlib.asynccontextmanager
async def serving(settings: Settings):
    """The desk on a free loopback port; yields its URL."""
    desk = Desk(settings, Users.load(settings.desk_users))
    runner = web.AppRunner(desk.application())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def chromium():
    """Debian's Chromium; sound may start without a click (the test's pages are not
    clicked before the first alarm on every path)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_executable(),
            args=[*FLAGS, "--autoplay-policy=no-user-gesture-required"])
        try:
            yield browser
        finally:
            await browser.close()


async def new_desk_context(browser):
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    await context.add_init_script(COUNT_TONES)
    return context


async def desk_page(browser, context=None):
    """A page whose script errors are kept (``page.errors``): a test ends with none."""
    page = await (context or await new_desk_context(browser)).new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


async def sign_in(page, url: str, name: str) -> None:
    if page.url != url:
        await page.goto(url)
    await page.locator("#login:not([hidden])").wait_for()
    await page.fill("#login input[name=name]", name)
    await page.fill("#login input[name=password]", PASSWORDS[name])
    await page.click("#login button[type=submit]")
    await ready(page)


async def ready(page) -> None:
    """The desk is drawn: map layers, trucks and the triage list loaded."""
    await page.wait_for_selector("#desk:not([hidden])", timeout=60_000)
    await page.wait_for_selector("body[data-ready]", state="attached", timeout=60_000)


async def until(page, expression: str, what: str, timeout: float = 60.0):
    """Poll a JavaScript expression until it is truthy (the page's Content-Security-Policy
    forbids the eval that Playwright's wait_for_function needs)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await page.evaluate(expression)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.2)


async def search(page, plate: str) -> list[str]:
    """Type into the plate search; the plates it offers."""
    await page.fill("#q", plate)
    await page.locator("#search-results:not([hidden])").wait_for(timeout=30_000)
    await until(page, f"document.querySelector('#q').value === {json.dumps(plate)}", "typed")
    await asyncio.sleep(0.6)  # the answer to the last keystroke
    return [text.split(" · ")[0] for text in
            await page.locator("#search-results button").all_inner_texts()]


def alarm_off(crash: Ping, after_s: int) -> Ping:
    return Ping(**{f: getattr(crash, f) for f in crash.__struct_fields__}
                | {"ts": crash.ts + timedelta(seconds=after_s), "alarm_flags": 0})


async def in_read_model(env, *lasts: Ping) -> None:
    for last in lasts:
        await asyncio.to_thread(wait_until, lambda v=last.vehicle_id, t=last.ts.isoformat(): (
            latest_ts(env["REDIS_URL"], env["YRD_REDIS_PREFIX"], v) or "") >= t,
            f"{last.vehicle_id} in the read model")


def triage_item(page, incident: str, state: str | None = None):
    suffix = f'[data-state="{state}"]' if state else ""
    return page.locator(f'#triage li.item[data-incident="{incident}"]{suffix}')


async def test_a_duty_shift_in_headless_chromium(env, kafka, worker, tmp_path):
    settings = desk_settings(env, users_file(tmp_path)).model_copy(
        update={"resources_file": RESOURCES})
    t0 = start_time()
    sh_truck = drive("沪A62001", t0, [62.0] * 6)
    js_truck = drive("苏A62002", t0, [62.0] * 6, at=XINJIEKOU)
    beside = drive("沪A62003", t0, [0.0] * 6, step_deg=0,  # 20 m from where 沪A62001 stops
                   at=(sh_truck[-1].lon, sh_truck[-1].lat + 0.0002))
    kafka.send_pings(env["YRD_TOPIC_PINGS"], sh_truck + js_truck + beside)
    permit = permit_doc("沪A62001", t0)  # chlorine, Nanjing -> Shanghai
    kafka.send(env["YRD_TOPIC_PERMITS"], "沪A62001".encode(), json.dumps(permit).encode())
    kafka.flush()
    await in_read_model(env, sh_truck[-1], js_truck[-1], beside[-1])

    async with serving(settings) as url, chromium() as browser:
        sh, chief = await desk_page(browser), await desk_page(browser)
        await sign_in(sh, url, "sh-duty")
        await sign_in(chief, url, "chief")
        # a Chinese desk; trucks are found by plate, each desk only its own
        assert await sh.title() == "危化品车辆值守台"
        assert sorted(await search(sh, "A6200")) == ["沪A62001", "沪A62003"]
        assert sorted(await search(chief, "a6200")) == ["沪A62001", "沪A62003", "苏A62002"]
        await sh.fill("#q", "")
        await asyncio.sleep(1.0)  # the feeds are connected
        assert await sh.evaluate("window.__tones") == 0  # nothing to sound at sign-in

        # a collision: it leads the triage list as a new emergency, sounds, badges the title
        sh_crash, js_crash = collision(sh_truck[-1]), collision(js_truck[-1])
        kafka.send_pings(env["YRD_TOPIC_PINGS"], [js_crash, sh_crash])
        crash = sh.locator("#triage li.item.emergency", has_text="沪A62001").first
        await crash.wait_for(timeout=60_000)
        incident = await crash.get_attribute("data-incident")
        assert await crash.get_attribute("data-state") == "new"
        assert "设备报警 · 碰撞" in await crash.inner_text() and "新" in await crash.inner_text()
        assert await sh.locator("#triage li.item").first.get_attribute("data-incident") == incident
        await until(sh, "window.__tones > 0", "the alarm's tones")
        assert (await sh.title()).startswith("(1) ")
        assert await sh.inner_text("#counts .count.critical b") == "1"
        await chief.locator("#triage li.item", has_text="苏A62002").first.wait_for(timeout=60_000)
        await triage_item(chief, incident).wait_for(timeout=60_000)
        assert await sh.locator("#triage li.item", has_text="苏A62002").count() == 0

        # muted, the next alarm is silent (and the choice outlives a reload)
        await sh.click("#mute")
        assert await sh.evaluate("localStorage.getItem('yrd-desk-mute')") == "1"

        # acknowledged on the SH desk: the region's desk sees it, with who and when
        await crash.locator("button.do-ack").click()
        acked = triage_item(chief, incident, "acknowledged")
        await acked.wait_for(timeout=30_000)
        assert "sh-duty 确认" in await acked.inner_text()
        looks = dict(await chief.locator("#triage li.item").evaluate_all(
            "(items) => items.map((li) => [li.dataset.state, getComputedStyle(li).backgroundColor"
            " + getComputedStyle(li.querySelector('.state')).color])"))
        assert looks["new"] != looks["acknowledged"], looks  # the JS crash is still new
        await until(sh, "document.title === '危化品车辆值守台'", "the badge gone once acknowledged")

        # the item leads to its truck (panel, permit) and its scene (the circle in view)
        await triage_item(sh, incident).locator(".what").click()
        card = sh.locator("#incident #i-emergency")
        await card.locator(".responders li").first.wait_for(timeout=30_000)
        await sh.locator("#d-permit", has_text="UN1017").wait_for(timeout=30_000)
        assert "chlorine" in await sh.inner_text("#d-permit")
        assert await sh.inner_text("#d-vehicle") == "沪A62001"
        await until(sh, "desk.map.getZoom() >= 15", "zoomed to the scene")
        scene = await sh.evaluate("""(() => {
            const b = desk.map.getBounds();
            const layers = Object.values(desk.scene._layers);
            const circle = layers.find((l) => l instanceof L.Circle);
            return {inView: b.contains(circle.getBounds()), radius: circle.getRadius(),
                    routes: layers.filter((l) => l instanceof L.Polyline).length};
        })()""")
        assert scene["inView"] and scene["radius"] > 0 and scene["routes"] >= 1, scene

        # assigned and noted from forms; the log has times; the other desk sees the state
        await sh.fill("#i-assign input[name=assignee]", "王警官")
        await sh.click("#i-assign button[type=submit]")
        assigned = triage_item(chief, incident, "assigned")
        await assigned.wait_for(timeout=30_000)
        assert "王警官" in await assigned.inner_text()
        await sh.fill("#i-note textarea[name=text]", "现场<b>已封控</b>")
        await sh.click("#i-note button[type=submit]")
        note = sh.locator("#i-log li.log-note", has_text="现场<b>已封控</b>")  # as text
        await note.wait_for(timeout=30_000)
        assert LOGGED_AT.search(await note.inner_text()) and "sh-duty" in await note.inner_text()
        assert await sh.input_value("#i-note textarea[name=text]") == ""

        # a text to the truck from its panel: refused saying why, then listed with its steps
        await sh.fill("#d-message textarea[name=text]", "🚒")
        await sh.click("#d-message button.do-send-text")
        await sh.locator("#d-message .error", has_text="no GBK code").wait_for(timeout=30_000)
        assert await sh.locator("#d-commands li.command").count() == 0
        await sh.fill("#d-message textarea[name=text]", "前方500米事故，请减速<b>慢行</b>")
        await sh.click("#d-message button.do-send-text")
        sent = sh.locator("#d-commands li.command", has_text="请减速<b>慢行</b>")  # as text
        await sent.wait_for(timeout=30_000)
        assert "等待车辆接收" in await sent.inner_text()
        assert "语音播报" in await sent.inner_text() and "sh-duty" in await sent.inner_text()
        command = {"command_id": await sent.get_attribute("data-command"), "vehicle_id": "沪A62001"}
        write_results(env, kafka, command, ("claimed", {"gateway": "gw-1"}),
                      ("sent", {"gateway": "gw-1", "serial": 9}),
                      ("ok", {"gateway": "gw-1", "serial": 9}))
        await sh.locator('#d-commands li.command[data-status="ok"]').wait_for(timeout=30_000)
        assert "已领取" in await sent.inner_text() and "(gw-1)" in await sent.inner_text()

        # the nearest responder dispatched from the card; the region's desk sees the response
        first = card.locator(".responders li").first
        team = await first.get_attribute("data-resource")
        await first.locator("button.do-dispatch").click()
        await card.locator(f'.responses li[data-resource="{team}"]').wait_for(timeout=30_000)
        await triage_item(chief, incident).locator(".what").click()
        await chief.locator(f'#i-emergency .responses li[data-resource="{team}"]').wait_for(
            timeout=30_000)
        # the truck parked beside it is warned: a form with the default warning, edited
        await card.locator("button.do-tell").click()
        tell = sh.locator("#tell")
        await tell.wait_for(timeout=30_000)
        assert "沪A62003" in await tell.locator(".about").inner_text()
        warning = await sh.input_value("#tell textarea[name=text]")
        assert "UN1017" in warning and "60米" in warning, warning
        await sh.fill("#tell textarea[name=text]", warning + "请向东撤离。")
        await sh.click("#tell button.do-tell-send")
        told = card.locator("ol.told li.command", has_text="沪A62003")
        await told.wait_for(timeout=30_000)
        assert "请向东撤离。" in await told.inner_text() and "紧急" in await told.inner_text()
        await tell.wait_for(state="hidden", timeout=30_000)
        shots = Path(os.environ.get("YRD_SCREENSHOTS_DIR") or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        await sh.screenshot(path=str(shots / "desk-sh.png"))
        # the region's desk back at the whole region: its list, the trucks grouped
        await chief.click("#incident .close-pane")
        await chief.click("#details .close-pane")
        await chief.fill("#q", "")
        await chief.click(".home-button")
        await asyncio.sleep(1.0)
        await chief.screenshot(path=str(shots / "desk-region.png"))
        # the two SH trucks 20 m apart are one group at this zoom; a click lists them
        group = chief.locator(".cluster-icon", has_text=re.compile(r"^2$"))
        await group.click()
        await chief.locator(".cluster-list button", has_text="沪A62003").click()
        await chief.locator("#details:not([hidden]) #d-vehicle", has_text="沪A62003").wait_for()

        # released and cleared: handled (still listed); closed: gone, and in the history
        await card.locator(f'.responses li[data-resource="{team}"] button.do-release').click()
        seen = await sh.inner_text("#d-latest")
        kafka.send_pings(env["YRD_TOPIC_PINGS"], [alarm_off(sh_crash, 5)])
        await triage_item(sh, incident, "handled").wait_for(timeout=60_000)
        # the open truck's panel follows its pings
        await until(sh, f"document.querySelector('#d-latest').textContent !== {json.dumps(seen)}",
                    "the truck's panel refreshed")
        await sh.fill("#i-close input[name=text]", "车辆已拖离")
        await sh.click("#i-close button[type=submit]")
        await triage_item(sh, incident).wait_for(state="detached", timeout=30_000)
        await triage_item(chief, incident).wait_for(state="detached", timeout=30_000)
        assert "车辆已拖离" in await sh.inner_text("#i-log")
        await sh.click('#views button[data-view="history"]')
        rows = sh.locator(f'#history-table tbody tr[data-incident="{incident}"]')
        await rows.first.wait_for(timeout=60_000)
        states = await rows.locator("td:nth-child(4)").all_inner_texts()
        assert {"报警中", "已解除"} <= set(states), states
        assert sh.errors == [] and chief.errors == []
