"""The police desk in a real browser (headless Chromium driven by Playwright): a truck
appears, an alert arrives in the feed, acknowledging it shows on another desk user's
screen, a SH user never sees a JS alert, a text sent to a truck from its panel is listed
with its status as the results arrive, a collision's proposed responder is dispatched
from the page and the truck parked beside it is warned. Screenshots go to docs/."""

from __future__ import annotations

import asyncio
import json
from importlib.resources import files
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import async_playwright

from yrd_hazmat.desk.app import Desk
from yrd_hazmat.desk.users import Users
from tests.integration.browser import FLAGS, chromium_executable
from tests.integration.harness import free_port, latest_ts, run_env, wait_until, write_results
from tests.integration.test_desk import PASSWORDS, collision, desk_settings, users_file
from tests.integration.traces import XINJIEKOU, drive, start_time
from tests.permit_trips import permit_doc

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def env(services):
    return run_env(services, YRD_RESOURCES_FILE=str(files("yrd_hazmat.data") / "resources.json"))


async def sign_in(page, url: str, name: str) -> None:
    await page.goto(url)
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORDS[name])
    await page.click("button[type=submit]")
    await page.wait_for_selector("#desk:not([hidden])")


async def test_the_desk_in_headless_chromium(env, kafka, worker, tmp_path):
    settings = desk_settings(env, users_file(tmp_path))
    t0 = start_time()
    sh_truck = drive("沪A62001", t0, [62.0] * 6)
    js_truck = drive("苏A62002", t0, [62.0] * 6, at=XINJIEKOU)
    beside = drive("沪A62003", t0, [0.0] * 6, step_deg=0,  # 20 m from where 沪A62001 stops
                   at=(sh_truck[-1].lon, sh_truck[-1].lat + 0.0002))
    kafka.send_pings(env["YRD_TOPIC_PINGS"], sh_truck + js_truck + beside)
    permit = permit_doc("沪A62001", t0)  # chlorine, Nanjing -> Shanghai
    kafka.send(env["YRD_TOPIC_PERMITS"], "沪A62001".encode(), json.dumps(permit).encode())
    kafka.flush()
    for vehicle, last in (("沪A62001", sh_truck[-1]), ("苏A62002", js_truck[-1]),
                          ("沪A62003", beside[-1])):
        await asyncio.to_thread(wait_until, lambda v=vehicle, t=last.ts.isoformat(): (
            latest_ts(env["REDIS_URL"], env["YRD_REDIS_PREFIX"], v) or "") >= t,
            f"{vehicle} in the read model")

    desk = Desk(settings, Users.load(settings.desk_users))
    runner = web.AppRunner(desk.application())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/"
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium_executable(),
                                                       args=FLAGS)
            sh = await (await browser.new_context(viewport={"width": 1400, "height": 900})).new_page()
            chief = await (await browser.new_context(viewport={"width": 1400, "height": 900})).new_page()
            await sign_in(sh, url, "sh-duty")
            await sign_in(chief, url, "chief")
            # a truck appears (on the SH desk: only the SH one)
            await sh.wait_for_function("(document.body.dataset.trucks || '').includes('沪A62001')")
            assert "苏A62002" not in (await sh.evaluate("document.body.dataset.trucks"))
            await chief.wait_for_function("(document.body.dataset.trucks || '').includes('苏A62002')")
            await asyncio.sleep(1.0)  # the feeds are connected

            # an alert arrives in the feed
            kafka.send_pings(env["YRD_TOPIC_PINGS"], [collision(js_truck[-1]), collision(sh_truck[-1])])
            sh_item = sh.locator("#feed li", has_text="沪A62001").first
            await sh_item.wait_for(timeout=60_000)
            await chief.locator("#feed li", has_text="苏A62002").first.wait_for(timeout=60_000)
            await chief.locator("#feed li", has_text="沪A62001").first.wait_for(timeout=60_000)
            # both collisions reached the region's desk: the SH desk had its chance at the JS one
            assert await sh.locator("#feed li", has_text="苏A62002").count() == 0
            assert "DEVICE_ALARM raised" in await sh_item.inner_text()

            # acknowledged on the SH desk, it shows on the region's
            await sh_item.locator("button.do-ack").click()
            incident = await sh_item.get_attribute("data-incident")
            acts = chief.locator(f'#feed li[data-incident="{incident}"] .acts')
            await acts.filter(has_text="ack by sh-duty").first.wait_for(timeout=30_000)
            # the open alerts follow the feed (from the read model)
            await sh.locator("#open li", has_text="沪A62001").first.wait_for(timeout=30_000)
            assert await sh.locator("#open li", has_text="苏A62002").count() == 0
            # a truck on click: its permit (cargo, corridor) and its last hour of track
            await sh.click('.truck span[data-vehicle="沪A62001"]')
            await sh.locator("#d-permit", has_text="UN1017").wait_for(timeout=30_000)
            assert "chlorine" in await sh.inner_text("#d-permit")
            track = await sh.inner_text("#d-track")
            assert int(track.split(":")[1].split()[0]) >= 2, track
            # a text to the truck from its panel: one no terminal could show is refused, saying
            # why; a good one is listed, then its status as results arrive
            await sh.fill("#d-message textarea[name=text]", "🚒")
            await sh.click("#d-message button.do-send-text")
            await sh.locator("#d-message .error", has_text="no GBK code").wait_for(timeout=30_000)
            assert await sh.locator("#d-commands li.command").count() == 0
            await sh.fill("#d-message textarea[name=text]", "前方500米事故，请减速<b>慢行</b>")
            await sh.click("#d-message button.do-send-text")
            sent = sh.locator("#d-commands li.command", has_text="请减速<b>慢行</b>")  # as text
            await sent.wait_for(timeout=30_000)
            assert "WAITING FOR THE TRUCK" in await sent.inner_text()
            assert "read aloud" in await sent.inner_text() and "by sh-duty" in await sent.inner_text()
            assert await sh.input_value("#d-message textarea[name=text]") == ""
            assert await sh.inner_text("#d-message .error") == ""
            command = {"command_id": await sent.get_attribute("data-command"),
                       "vehicle_id": "沪A62001"}
            write_results(env, kafka, command, ("claimed", {"gateway": "gw-1"}),
                       ("sent", {"gateway": "gw-1", "serial": 9}),
                       ("ok", {"gateway": "gw-1", "serial": 9}))
            await sh.locator('#d-commands li.command[data-status="ok"]').wait_for(timeout=30_000)
            assert "claimed" in await sent.inner_text() and "(gw-1)" in await sent.inner_text()
            # the collision is an emergency: dispatch its nearest responder from the page;
            # the region's desk sees the response
            crash = sh.locator("#emergencies li.emergency", has_text="collision").first
            await crash.wait_for(timeout=30_000)
            first = crash.locator(".responders li").first
            team = await first.get_attribute("data-resource")
            await first.locator("button.do-dispatch").click()
            await crash.locator(f'.responses li[data-resource="{team}"]').wait_for(timeout=30_000)
            await chief.locator(f'#emergencies .responses li[data-resource="{team}"]').wait_for(
                timeout=30_000)
            # the truck parked beside it is warned: a form with the default warning, edited
            await crash.locator("button.do-tell").click()
            tell = sh.locator("#tell")
            await tell.wait_for(timeout=30_000)
            assert "沪A62003" in await tell.locator(".about").inner_text()
            warning = await sh.input_value("#tell textarea[name=text]")
            assert "UN1017" in warning and "60米" in warning, warning
            await sh.fill("#tell textarea[name=text]", warning + "请向东撤离。")
            await sh.click("#tell button.do-tell-send")
            told = crash.locator("ol.told li.command", has_text="沪A62003")
            await told.wait_for(timeout=30_000)
            assert "请向东撤离。" in await told.inner_text() and "emergency" in await told.inner_text()
            await tell.wait_for(state="hidden", timeout=30_000)
            DOCS.mkdir(exist_ok=True)
            await sh.screenshot(path=str(DOCS / "desk-sh.png"))
            await chief.screenshot(path=str(DOCS / "desk-region.png"))
            await browser.close()
    finally:
        await runner.cleanup()
