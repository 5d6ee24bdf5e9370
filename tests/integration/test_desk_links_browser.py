"""The desk's Links view in headless Chromium, on the real broker and worker, and end to
end with the real uplink (``python -m yrd_hazmat.uplink``) logged in to the simulated
national platform:

- link health as the link-state records say: a platform up, one with its main link only,
  one configured that never reported (down), the uplink with its re-send lag; a province
  desk inspects its own platform from a form and sees the answer and the time it took
  arrive without a reload; from an alert of a truck a lower platform registered, it sends
  a supervision order to that platform, and from the truck's panel a text for its driver
  through that platform;
- the national platform sends two inspections: they arrive on the region's open desk with
  the alarm's tones and a badge; one is answered in the browser and the simulated platform
  receives that text (0x1301) before its deadline; the other is left and shows late once
  its deadline passes, without a reload.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.harness import free_port, wait_until
from tests.integration.harness import latest_ts
from tests.integration.test_desk import users_file
from tests.integration.test_desk_browser import chromium, desk_page, ready, serving, sign_in, until
from tests.integration.test_desk_links import (JS_PLATFORM, SH_PLATFORM, SILENT_PLATFORM,
                                               configure_platforms, link_state, links_settings,
                                               send_state, send_step, step)
from tests.integration.test_uplink import Uplink
from tests.integration.traces import drive, start_time
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.gateway.platform_records import PlatformVehicle
from yrd_hazmat.jt809 import inspection as jt809_inspection
from yrd_hazmat.uplink.simulator import SimulatorThread

pytestmark = pytest.mark.integration
ANSWER_S = 45
"""YRD_UPLINK_INSPECTION_ANSWER_S: the national platform's inspections are due this soon."""


def shots_dir(tmp_path) -> Path:
    shots = Path(os.environ.get("YRD_SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    return shots


async def test_links_view_inspection_and_supervision_in_chromium(env, kafka, worker, tmp_path):
    settings = links_settings(env, users_file(tmp_path), uplink_host="127.0.0.1")
    t0 = start_time()
    truck = drive("沪A72001", t0, [95.0] * 10)     # speeding: an open alert
    kafka.send_pings(env["YRD_TOPIC_PINGS"], truck)
    async with serving(settings) as url, chromium() as browser:
        configure_platforms(kafka, env)
        send_state(kafka, env, link_state(SH_PLATFORM, main_up=True, slave_up=True,
                                          positions=240, name="沪运企业平台"))
        send_state(kafka, env, link_state(JS_PLATFORM, main_up=True, slave_up=False, positions=9))
        send_state(kafka, env, link_state(3100, link="uplink", reporter="uplink-1", main_up=True,
                                          slave_up=True, positions=5000, resend_lag_s=2.0))
        vehicle = PlatformVehicle(vehicle_id="沪A72001", plate_colour=2, platform=SH_PLATFORM,
                                  platform_id="P1", producer_id="M1", terminal_model="T",
                                  terminal_id="1", sim="13800000001",
                                  registered_at=datetime.now(CHINA_TZ))
        kafka.send(env["YRD_TOPIC_PLATFORM_VEHICLES"], "沪A72001".encode(), encode(vehicle))
        kafka.flush()
        last = truck[-1].ts.isoformat()
        await asyncio.to_thread(wait_until, lambda: (latest_ts(
            env["REDIS_URL"], env["YRD_REDIS_PREFIX"], "沪A72001") or "") >= last,
            "the truck in the read model", 120)

        sh = await desk_page(browser)
        await sign_in(sh, url, "sh-duty")
        await sh.click('#views button[data-view="links"]')
        rows = sh.locator("#links-table tbody tr")
        await until(sh, "document.querySelectorAll('#links-table tbody tr').length === 4",
                    "the uplink and three platforms")
        status = {await r.get_attribute("data-code"): await r.get_attribute("data-status")
                  for r in await rows.all()}
        assert status == {"3100": "up", str(SH_PLATFORM): "up", str(JS_PLATFORM): "main_only",
                          str(SILENT_PLATFORM): "down"}
        up_row = sh.locator(f'#links-table tr[data-code="{SH_PLATFORM}"]')
        assert "在线" in await up_row.inner_text() and "沪运企业平台" in await up_row.inner_text()
        assert "240" in await up_row.inner_text()
        down_row = sh.locator(f'#links-table tr[data-code="{SILENT_PLATFORM}"]')
        assert "断开" in await down_row.inner_text() and "从未" in await down_row.inner_text()
        uplink_row = sh.locator('#links-table tr[data-link="uplink"]')
        assert "上级平台" in await uplink_row.inner_text() and "2 秒" in await uplink_row.inner_text()
        # the SH desk inspects SH platforms only; the national platform's requests are the region's
        js_row = sh.locator(f'#links-table tr[data-code="{JS_PLATFORM}"]')
        assert await js_row.locator(".do-inspect").count() == 0
        assert await sh.locator("#uplink-section").is_hidden()

        await up_row.locator(".do-inspect").click()
        await sh.fill("#inspect-form textarea[name=question]", "请值班人员报告姓名")
        await sh.fill("#inspect-form input[name=deadline_min]", "5")
        await sh.click("#inspect-form .do-inspect-send")
        item = sh.locator("#down-list li.request.kind-inspection")
        await item.wait_for(timeout=30_000)
        assert await item.get_attribute("data-status") == "waiting"
        assert "请值班人员报告姓名" in await item.inner_text()
        assert "sh-duty" in await item.inner_text()
        request_id = await item.get_attribute("data-request")
        sent = {"request_id": request_id, "platform": SH_PLATFORM, "kind": "inspection"}
        # the gateway's steps arrive on the open page: sent, then the answer and its time
        send_step(kafka, env, step(sent, "sent", route="slave", serial=5,
                                   deadline=datetime.now(CHINA_TZ) + timedelta(minutes=5)))
        send_step(kafka, env, step(sent, "answered", answer_kind="inspection_answer",
                                   answer={"text": "值班员李四在岗"}, took_s=4.0))
        await until(sh, f"document.querySelector('#down-list li[data-request=\"{request_id}\"]')"
                        ".dataset.status === 'answered'", "the answer shown")
        answered = await item.inner_text()
        assert "值班员李四在岗" in answered and "用时 4 秒" in answered

        # from the truck's alert: a supervision order to the platform it came from
        await sh.click('#views button[data-view="triage"]')
        alert = sh.locator("#triage li.item", has_text="沪A72001").first
        await alert.wait_for(timeout=60_000)
        await alert.locator(".do-note").click()
        form = sh.locator("#supervise-form")
        await form.wait_for(state="visible", timeout=30_000)
        assert "沪运企业平台" in await form.locator(".about").inner_text()
        assert await form.locator("input[name=supervisor]").input_value() == "sh-duty"
        await form.locator("input[name=supervisor]").fill("王警官")
        await form.locator("select[name=level]").select_option("urgent")
        await form.locator("input[name=deadline_min]").fill("20")
        await form.locator(".do-supervise").click()
        order = sh.locator("#i-orders li.request.kind-supervision")
        await order.wait_for(timeout=30_000)
        assert "王警官" in await order.inner_text() and "紧急" in await order.inner_text()
        records = kafka.read(env["YRD_TOPIC_PLATFORM_REQUESTS"],
                             lambda r: any(x["kind"] == "supervision" for x in r), 30)
        published = next(x for x in records if x["kind"] == "supervision")
        assert (published["platform"], published["vehicle_id"], published["issued_by"],
                published["supervisor"], published["level"]) == \
            (SH_PLATFORM, "沪A72001", "sh-duty", "王警官", 0)

        # from the truck's panel: a text for its driver through its platform (0x9503)
        await alert.locator(".do-locate").click()
        via = sh.locator("#d-platform-form")
        await via.wait_for(state="visible", timeout=30_000)
        assert "沪运企业平台" in await via.locator(".about").inner_text()
        await via.locator("textarea[name=text]").fill("请立即靠边停车")
        await via.locator("input[name=urgent]").check()
        await via.locator(".do-platform-text").click()
        text_item = sh.locator("#d-platform-requests li.request.kind-text")
        await text_item.wait_for(timeout=30_000)
        assert "请立即靠边停车" in await text_item.inner_text()
        records = kafka.read(env["YRD_TOPIC_PLATFORM_REQUESTS"],
                             lambda r: any(x["kind"] == "text" for x in r), 30)
        published = next(x for x in records if x["kind"] == "text")
        assert (published["platform"], published["vehicle_id"], published["text"],
                published["level"]) == (SH_PLATFORM, "沪A72001", "请立即靠边停车", 0)

        # in English too
        await sh.click("#desk .lang-switch")
        await sh.click('#views button[data-view="links"]')
        await until(sh, "document.querySelector('#links-table tbody tr[data-status=\"down\"]')"
                        ".innerText.includes('down')", "English words")
        assert "Links" in await sh.locator('#views button[data-view="links"]').inner_text()
        await sh.screenshot(path=str(shots_dir(tmp_path) / "desk-links.png"))
        assert sh.errors == []


@pytest.fixture()
def upper():
    sim = SimulatorThread(user_id=77, password="pw809", center=3100, edition=2011)
    sim.start()
    yield sim
    sim.close()


@pytest.fixture()
def uplink(env, upper, tmp_path):
    proc = Uplink(env | {
        "YRD_UPLINK_HOST": "127.0.0.1", "YRD_UPLINK_PORT": str(upper.platform.port),
        "YRD_UPLINK_USER_ID": "77", "YRD_UPLINK_PASSWORD": "pw809",
        "YRD_UPLINK_ACCESS_CODE": "3100", "YRD_UPLINK_EDITION": "2011",
        "YRD_UPLINK_DOWN_HOST": "127.0.0.1", "YRD_UPLINK_DOWN_PORT": str(free_port()),
        "YRD_UPLINK_GROUP": f"uplink-{uuid.uuid4().hex[:8]}", "YRD_UPLINK_START": "earliest",
        "YRD_UPLINK_CONFIRM_S": "0.3", "YRD_UPLINK_TIMEOUT_S": "5",
        "YRD_UPLINK_INSPECTION_ANSWER_S": str(ANSWER_S),
        "YRD_UPLINK_METRICS_PORT": str(free_port())}, tmp_path / "uplink.log")
    yield proc
    if proc.proc is not None:
        assert proc.stop() == 0, proc.tail()


def inspection_answers(upper: SimulatorThread) -> list:
    return [a for a in upper.call(_copy(upper.platform.answers))
            if isinstance(a, jt809_inspection.InspectionAnswer)]


async def _copy(items: list) -> list:
    return list(items)


async def test_the_national_platforms_inspections_answered_in_time_and_left_late(
        env, upper, uplink, tmp_path):
    settings = links_settings(env, users_file(tmp_path), uplink_host="127.0.0.1")
    uplink.start()
    await asyncio.to_thread(wait_until, lambda: upper.platform.slave_up, "the uplink's slave link",
                            90)
    async with serving(settings) as url, chromium() as browser:
        chief = await desk_page(browser)
        await sign_in(chief, url, "chief")
        await chief.click('#views button[data-view="links"]')
        await until(chief, "document.querySelector('#uplink-list li.empty')", "an empty list")
        await asyncio.sleep(1.0)  # the feed is connected
        assert await chief.evaluate("window.__tones") == 0

        # two inspections from the national platform: heard and seen on the open desk
        await asyncio.to_thread(upper.call, upper.platform.send_inspection(
            "请报告值班人员姓名", info_id=101, answer_time=None))
        await asyncio.to_thread(upper.call, upper.platform.send_inspection(
            "请报告在线车辆数", info_id=102, answer_time=None))
        await until(chief, "document.querySelectorAll('#uplink-list li.request.kind-inspection"
                           "[data-status=\"open\"]').length === 2", "both inspections", 60)
        await until(chief, "window.__tones > 0", "the alarm's tones")
        assert await chief.locator("#links-badge").inner_text() == "2"
        assert (await chief.title()).startswith("(2) ")
        first = chief.locator("#uplink-list li.request", has_text="请报告值班人员姓名")
        second = chief.locator("#uplink-list li.request", has_text="请报告在线车辆数")
        assert "剩余" in await first.locator(".countdown").inner_text()
        listed = await (await chief.context.request.get(url + "api/uplink/requests")).json()
        deadlines = {x["question"]: datetime.fromisoformat(x["deadline"]) for x in listed["items"]}
        assert all(d - datetime.fromisoformat(x["received_at"]) == timedelta(seconds=ANSWER_S)
                   for x in listed["items"] for d in [deadlines[x["question"]]])
        assert not inspection_answers(upper)  # nobody answers for a person

        # the region's officer answers the first within its deadline
        await first.locator("textarea[name=content]").fill("值班：张三，电话 13800000000")
        await first.locator(".do-answer").click()
        await until(chief, "document.querySelector("
                           "'#uplink-list li.request[data-status=\"answered\"]')",
                    "the answer recorded")
        await asyncio.to_thread(wait_until, lambda: inspection_answers(upper),
                                "0x1301 at the national platform", 30, 0.1)
        received_by = datetime.now(CHINA_TZ)
        answer = inspection_answers(upper)[0]
        assert answer.content == "值班：张三，电话 13800000000" and answer.info_id == 101
        assert received_by < deadlines["请报告值班人员姓名"], "answered after the deadline"
        text = await first.inner_text()
        assert "chief" in text and "值班：张三，电话 13800000000" in text and "超时" not in text
        assert await chief.locator("#links-badge").inner_text() == "1"

        # the second is left: once its deadline passes the open desk shows it late
        wait_s = (deadlines["请报告在线车辆数"] - datetime.now(CHINA_TZ)).total_seconds()
        assert wait_s > 0, "the second inspection was late before the test could watch it"
        await asyncio.sleep(wait_s + 0.5)
        await until(chief, "document.querySelector('#uplink-list li.request.kind-inspection"
                           "[data-status=\"open\"]').dataset.late === '1'", "shown late", 10)
        assert await second.get_attribute("data-late") == "1"
        assert "已超时" in await second.locator(".countdown").inner_text()
        assert "超时" in await second.locator(".head").inner_text()
        assert "late" in (await chief.locator("#links-badge").get_attribute("class") or "")
        # the server says so too, and a fresh page shows it so
        await chief.reload()
        await ready(chief)
        await chief.click('#views button[data-view="links"]')
        await until(chief, "document.querySelector("
                           "'#uplink-list li.request.late[data-status=\"open\"]')",
                    "late after a reload")
        assert len(inspection_answers(upper)) == 1
        await chief.screenshot(path=str(shots_dir(tmp_path) / "desk-uplink.png"))
        assert chief.errors == []
