"""A truck's track played back on the desk in headless Chromium, on the real worker and an
archive the test writes as the archiver does: the truck's panel offers the last 24 hours;
a chosen period's track is drawn with one vertex per archived ping and its alerts as dots
(a popup says what and when); play moves the marker and the slider at the chosen speed,
pause stops them; a bad period shows the server's reason; clear removes it all. No script
or console errors. The screenshot goes to ``YRD_SCREENSHOTS_DIR`` when asked (``make
screenshots``: docs/desk-track.png)."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import datetime, timedelta
from urllib.parse import unquote

import pytest

from tests.integration.test_desk import desk_settings, users_file
from tests.integration.test_desk_browser import (chromium, desk_page, in_read_model, search,
                                                 serving, sign_in, until)
from tests.integration.test_desk_links_browser import shots_dir
from tests.integration.traces import drive, start_time
from tests.unit.test_archive import Record, batch_of, record
from yrd_hazmat.archive import rows, writer
from yrd_hazmat.archive.store import Store
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import Alert, AlertState, Severity
from yrd_hazmat.core.timeutil import CHINA_TZ

pytestmark = pytest.mark.integration

PLATE = "沪A83001"
T0 = datetime(2026, 11, 10, 8, 0, tzinfo=CHINA_TZ)
PINGS = 240
"""Two hours, one ping every 30 s, across Shanghai from Songjiang towards Pudong."""


def where(i: int) -> tuple[float, float]:
    return (121.25 + i * 0.0013, 31.08 + 0.03 * math.sin(i / 25) + i * 0.0004)


def heading(i: int) -> int:
    (lon0, lat0), (lon1, lat1) = where(i), where(i + 1)
    return round(math.degrees(math.atan2((lon1 - lon0) * math.cos(math.radians(lat0)),
                                         lat1 - lat0))) % 360


def alert(n: int, i: int, state: AlertState, severity: Severity, kind: str) -> Alert:
    incident = f"{PLATE}:{kind}:{n}"
    at = T0 + timedelta(seconds=30 * i)
    lon, lat = where(i)
    return Alert(alert_id=f"{incident}:{state.value}", incident_id=incident, type=kind,
                 severity=severity, state=state, vehicle_id=PLATE, ts=at,
                 emitted_at=at + timedelta(seconds=1), lat=lat, lon=lon, province="SH")


ALERTS = [alert(1, 40, AlertState.RAISED, Severity.WARNING, "SPEEDING"),
          alert(1, 70, AlertState.CLEARED, Severity.WARNING, "SPEEDING"),
          alert(2, 160, AlertState.RAISED, Severity.CRITICAL, "DEVICE_ALARM"),
          alert(3, 200, AlertState.RAISED, Severity.INFO, "PROLONGED_STOP")]


def write_archive(root: str) -> None:
    store = Store.local_dir(root)
    writer.flush(store, batch_of([record(PLATE, T0 + timedelta(seconds=30 * i), i,
                                         where=where(i), heading=heading(i))
                                  for i in range(PINGS)]))
    batch = writer.Batch("alerts", "yrd.alerts")
    recs = [Record(a.vehicle_id.encode(), encode(a), int(a.emitted_at.timestamp() * 1000), 0, n)
            for n, a in enumerate(ALERTS)]
    batch.read(0, 0, len(recs) - 1)
    rows.alerts(recs, carriers=lambda v: None, out=batch.rows)
    writer.flush(store, batch)


def data(name: str) -> str:
    return f"document.querySelector('#d-playback').dataset.{name}"


async def test_a_trucks_track_played_back_in_chromium(env, kafka, worker, tmp_path):
    archive = tmp_path / "archive"
    write_archive(str(archive))
    settings = desk_settings(env, users_file(tmp_path)).model_copy(
        update={"archive_dir": str(archive)})
    now = drive(PLATE, start_time(), [40.0] * 3)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], now)
    await in_read_model(env, now[-1])

    async with serving(settings) as url, chromium() as browser:
        sh = await desk_page(browser)
        console: list[tuple[str, str]] = []
        sh.on("console", lambda m: console.append((m.text, m.location.get("url", "")))
              if m.type == "error" else None)
        await sign_in(sh, url, "sh-duty")
        assert PLATE in await search(sh, PLATE)
        await sh.locator("#search-results button", has_text=PLATE).first.click()
        await sh.locator("#details:not([hidden]) #d-vehicle", has_text=PLATE).wait_for()
        form = sh.locator("#playback-form")
        assert "轨迹回放" in await sh.inner_text("#d-playback h3")
        # the last 24 hours first (China time)
        china_now = datetime.now(CHINA_TZ)
        offered = [datetime.fromisoformat(await form.locator(f"input[name={n}]").input_value())
                   for n in ("from", "to")]
        assert offered[1] - offered[0] == timedelta(hours=24)
        assert abs(offered[1] - china_now.replace(tzinfo=None)) < timedelta(minutes=2)
        assert await sh.locator("#playback-controls").is_hidden()

        # a period the server refuses: its reason shown
        await form.locator("input[name=from]").fill("2026-11-10T10:00")
        await form.locator("input[name=to]").fill("2026-11-10T08:00")
        await form.locator(".do-track-load").click()
        await until(sh, "document.querySelector('#d-playback .error').textContent"
                        ".includes('from must not be after to')", "the refusal shown")

        # two hours of track: one vertex per ping, a dot per alert record
        await form.locator("input[name=from]").fill("2026-11-10T07:30")
        await form.locator("input[name=to]").fill("2026-11-10T10:30")
        await form.locator(".do-track-load").click()
        await until(sh, f"{data('points')} === '{PINGS}'", "the track drawn")
        assert await sh.evaluate(data("alerts")) == str(len(ALERTS))
        assert await sh.inner_text("#d-playback .error") == ""
        summary = await sh.inner_text("#playback-summary")
        assert f"{PINGS} 个定位点" in summary and f"{len(ALERTS)} 条报警记录" in summary
        assert await sh.locator("#playback-controls").is_visible()
        assert await sh.locator(".playback-marker").count() == 1
        assert int(await sh.evaluate(data("at"))) == int(T0.timestamp() * 1000)
        assert await sh.locator("#playback-time").input_value() == "0"
        assert await sh.get_attribute("#playback-time", "max") == str(30 * (PINGS - 1))
        assert "08:00:00" in await sh.inner_text("#playback-now")

        # the critical alert's dot tells what and when
        await asyncio.sleep(1.5)  # the map has moved to the track
        lon, lat = where(160)
        x, y = await sh.evaluate(f"(() => {{ const p = desk.map.latLngToContainerPoint("
                                 f"[{lat}, {lon}]); return [p.x, p.y]; }})()")
        await sh.locator("#map").click(position={"x": x, "y": y})
        popup = sh.locator(".leaflet-popup .track-alert")
        await popup.wait_for(timeout=10_000)
        assert "严重 · 设备报警 · 报警中 · 11-10 09:20:00" == await popup.inner_text()
        await sh.keyboard.press("Escape")

        # play at 60x: the marker and the slider move; pause stops them
        await sh.select_option("#playback-speed", "60")
        await sh.click("#playback-controls .do-play")
        assert await sh.evaluate(data("state")) == "playing"
        assert await sh.inner_text("#playback-controls .do-play") == "暂停"
        await asyncio.sleep(2.0)
        await until(sh, f"Number({data('at')}) > {int(T0.timestamp() * 1000) + 60_000}",
                    "the marker moved", 10)
        assert int(await sh.locator("#playback-time").input_value()) >= 60
        await sh.click("#playback-controls .do-play")
        assert await sh.evaluate(data("state")) == "paused"
        stopped = await sh.evaluate(data("at"))
        await asyncio.sleep(0.6)
        assert await sh.evaluate(data("at")) == stopped
        moved = json.loads(await sh.evaluate("JSON.stringify(desk.playback.marker.getLatLng())"))
        assert moved["lng"] > where(1)[0]
        tip = await sh.locator(".leaflet-tooltip", has_text="公里/小时").inner_text()
        assert "公里/小时" in tip and "11-10 08:0" in tip

        # the slider seeks: the marker at the fix of 09:00 (the 120th ping)
        await sh.evaluate("(() => { const s = document.querySelector('#playback-time');"
                          " s.value = '3600'; s.dispatchEvent(new Event('input')); })()")
        assert int(await sh.evaluate(data("at"))) == int(T0.timestamp() * 1000) + 3_600_000
        position = json.loads(await sh.evaluate(
            "JSON.stringify(desk.playback.marker.getLatLng())"))
        assert math.isclose(position["lat"], where(120)[1], abs_tol=1e-6)
        assert math.isclose(position["lng"], where(120)[0], abs_tol=1e-6)
        assert "09:00:00" in await sh.inner_text("#playback-now")
        await sh.screenshot(path=str(shots_dir(tmp_path) / "desk-track.png"))

        # in English too
        await sh.click("#desk .lang-switch")
        assert "Track playback" in await sh.inner_text("#d-playback h3")
        assert f"{PINGS} positions" in await sh.inner_text("#playback-summary")
        assert "km/h" in await sh.inner_text("#playback-now")

        # clear: the layers and the controls go
        await sh.click("#playback-form .do-track-clear")
        assert await sh.locator(".playback-marker").count() == 0
        assert await sh.evaluate(data("points")) is None
        assert await sh.locator("#playback-controls").is_hidden()
        assert await sh.evaluate("desk.playback") is None
        assert sh.errors == []
        # the browser logs the answers the test asked for (signed out at first, the refused
        # period) and the icon the desk has none of; nothing else
        expected = [("401", "/api/me"), ("400", "/track?from=2026-11-10T10"),
                    ("404", "/favicon.ico")]
        unexpected = [(text, where_) for text, where_ in console if not any(
            f"status of {status}" in text and part in unquote(where_)
            for status, part in expected)]
        assert unexpected == [], unexpected
