"""An appeal in headless Chromium, on the real worker: the carrier's account lands on its
trucks' open alerts (its own only, each with its clock counting down), appeals one with a
reason; the police's desk shows it under 申诉待处理 with a badge and rejects it with a
reason; the carrier's desk then shows the decision and who made it. No script errors."""

from __future__ import annotations

import pytest

from tests.integration.test_desk_browser import chromium, desk_page, serving, until
from tests.integration.test_desk_carrier import (  # noqa: F401 - the module's trucks
    JIA_TRUCK, PASSWORDS, YI_TRUCK, carrier_settings, two_carriers)

pytestmark = pytest.mark.integration


async def sign_in(page, url: str, name: str, password: str | None = None) -> None:
    await page.goto(url)
    await page.locator("#login:not([hidden])").wait_for()
    await page.fill("#login input[name=name]", name)
    await page.fill("#login input[name=password]", password or PASSWORDS[name])
    await page.click("#login button[type=submit]")
    await until(page, "document.body.dataset.ready === '1'", f"{name}'s desk ready")


async def test_a_carrier_appeals_and_the_police_reject_it(two_carriers, env,  # noqa: F811
                                                          tmp_path):
    settings = carrier_settings(env, tmp_path)
    async with serving(settings) as url, chromium() as browser:
        carrier = await desk_page(browser)
        await sign_in(carrier, url, "jia")
        assert await carrier.locator("#view-carrier").is_visible()
        speeding = carrier.locator("#carrier-open li.item", has_text="超速").first
        await speeding.wait_for(timeout=30_000)
        plates = await carrier.evaluate(
            "[...document.querySelectorAll('#carrier-open li.item')].map((li) => li.dataset.vehicle)")
        assert set(plates) == {JIA_TRUCK}  # never 乙危运's truck
        clock = speeding.locator(".clock .countdown").first
        assert "已超时" in await clock.inner_text()  # its deadline (1 s) long passed
        assert await clock.evaluate("(n) => getComputedStyle(n).color") == "rgb(192, 57, 43)"
        incident = await speeding.get_attribute("data-incident")

        await speeding.locator("button.do-appeal").click()
        await speeding.locator(".appeal-form input").fill("限速标志被树木遮挡")
        await speeding.locator(".appeal-form button[type=submit]").click()
        await until(carrier, f"!!document.querySelector('#carrier-open li[data-incident=\"{incident}\"]"
                             " .appeal-open')", "the appeal shown open")

        police = await desk_page(browser)
        await sign_in(police, url, "sh-duty")
        await until(police, "document.querySelector('#appeals-badge').textContent === '1'",
                    "the badge of one open appeal")
        await police.click("#views button[data-view=appeals]")
        item = police.locator(f"#appeals-list li[data-incident='{incident}']")
        await item.wait_for()
        assert "限速标志被树木遮挡" in await item.inner_text()
        await item.locator(".decision-form input").fill("视频显示持续超速")
        await item.locator("button.do-reject").click()
        await until(police, "document.querySelector('#appeals-badge').hidden",
                    "no open appeal left")

        await carrier.reload()
        await until(carrier, "document.body.dataset.ready === '1'", "the carrier's desk again")
        decided = carrier.locator(f"#carrier-incidents li[data-incident='{incident}']")
        await decided.locator(".appeal-rejected").wait_for(timeout=30_000)
        story = await decided.locator(".story").inner_text()
        assert "jia" in story and "限速标志被树木遮挡" in story
        assert "sh-duty" in story and "驳回申诉" in story and "视频显示持续超速" in story
        assert YI_TRUCK not in await carrier.locator("body").inner_text()
        assert carrier.errors == [] and police.errors == []
