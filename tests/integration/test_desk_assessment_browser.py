"""The monthly assessment on the desk in headless Chromium: a carrier's account has its
own trucks' views and 月度考核, its month listed; the page it opens shows its carrier's row
and not another's. No script errors."""

from __future__ import annotations

import pytest

from tests.integration.test_desk_assessment import carrier_desk
from tests.integration.test_desk_browser import chromium, desk_page, serving, until
from tests.unit.test_assess import month  # noqa: F401 - the synthetic month

pytestmark = pytest.mark.integration


async def test_a_carrier_signs_in_to_its_assessment(env, month, tmp_path):  # noqa: F811
    settings = carrier_desk(env, month[0], tmp_path)
    async with serving(settings) as url, chromium() as browser:
        page = await desk_page(browser)
        await page.goto(url)
        await page.locator("#login:not([hidden])").wait_for()
        await page.fill("#login input[name=name]", "jia")
        await page.fill("#login input[name=password]", "jia-pass")
        await page.click("#login button[type=submit]")
        await until(page, "document.body.dataset.ready === '1'", "the desk ready")
        shown = await page.evaluate("[...document.querySelectorAll('#views button')]"
                                    ".filter((b) => !b.hidden).map((b) => b.dataset.view)")
        assert shown == ["carrier", "notifications", "assessment"]  # its own trucks' views
        await page.click("#views button[data-view=assessment]")
        assert await page.locator("#view-assessment").is_visible()
        link = page.locator("#assessment-months a[data-month='2026-11']")
        await link.wait_for()
        assert "甲运输" in await page.locator("#who").inner_text()
        report = await page.context.new_page()  # the same session
        await report.goto(url.rstrip("/") + await link.get_attribute("href"))
        text = await report.locator("body").inner_text()
        assert "甲运输" in text and "乙运输" not in text
        assert page.errors == []
