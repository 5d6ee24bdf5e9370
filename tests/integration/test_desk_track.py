"""A truck's track of any period on the desk (``GET /api/trucks/{vehicle_id}/track``), from
an archive the test writes as the archiver does (tests/unit/test_archive.py's helpers),
on the real broker, Redis and worker (whose read model says which trucks a user sees):
exactly the period's accepted pings in time order (once each, no fix-less ones, GCJ-02
converted to WGS-84, the period crossing midnight), its alert records, thinning beyond the
cap, 400 for a bad period, 401 signed out, 404 for a truck outside the user's province,
and an audit line per view."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import pytest

from tests.integration.test_desk import desk_client, desk_settings, login, users_file
from tests.integration.test_desk_commands import in_read_model
from tests.integration.traces import XINJIEKOU, drive, start_time
from tests.unit.test_archive import Record, batch_of, record
from yrd_hazmat.archive import rows, writer
from yrd_hazmat.archive.store import Store
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.geo.gcj02 import gcj02_to_wgs84
from yrd_hazmat.core.models import Alert, AlertState, Severity
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.desk import track

pytestmark = pytest.mark.integration

PLATE, JS_PLATE = "沪A81001", "苏A81002"
T0 = datetime(2026, 11, 10, 23, 50, tzinfo=CHINA_TZ)
"""The archived drive: one ping a minute from 23:50 to 00:09 (two days' files)."""
FROM, TO = "2026-11-10T23:52:00", "2026-11-11T00:05:00"   # China time: no offset
GCJ_MINUTE = 7


def where(i: int) -> tuple[float, float]:
    return (121.40 + i * 0.002, 31.20 + i * 0.001)


def archived_pings() -> list[Record]:
    recs, offset = [], 0

    def add(plate, at, **fields):
        nonlocal offset
        recs.append(record(plate, at, offset, **fields))
        offset += 1

    for i in range(20):
        fields = {"crs": "GCJ02"} if i == GCJ_MINUTE else {}
        add(PLATE, T0 + timedelta(minutes=i), where=where(i), heading=(i * 15) % 360, **fields)
        add(JS_PLATE, T0 + timedelta(minutes=i), where=XINJIEKOU)  # another truck
    # the same fix re-sent later (counts once), and a proof of life without a fix
    add(PLATE, T0 + timedelta(minutes=3), where=where(3), heading=45,
        arrived=T0 + timedelta(minutes=4))
    add(PLATE, T0 + timedelta(minutes=5, seconds=30), where=(0.0, 0.0), fix_valid=False)
    return recs


def alert(n: int, minute: int, state: AlertState, severity: Severity, plate: str = PLATE,
          kind: str = "SPEEDING") -> Alert:
    incident = f"{plate}:{kind}:{n}"
    at = T0 + timedelta(minutes=minute)
    lon, lat = where(minute)
    return Alert(alert_id=f"{incident}:{state.value}", incident_id=incident, type=kind,
                 severity=severity, state=state, vehicle_id=plate, ts=at,
                 emitted_at=at + timedelta(seconds=1), lat=lat, lon=lon, province="SH",
                 details={"speed_kmh": 95})


def archived_alerts() -> list[Alert]:
    return [alert(1, 1, AlertState.RAISED, Severity.WARNING),  # before the period
            alert(2, 4, AlertState.RAISED, Severity.CRITICAL),
            alert(2, 12, AlertState.CLEARED, Severity.CRITICAL),
            alert(3, 13, AlertState.RAISED, Severity.INFO, kind="PROLONGED_STOP"),
            alert(4, 9, AlertState.RAISED, Severity.WARNING, plate=JS_PLATE),
            alert(5, 18, AlertState.RAISED, Severity.WARNING)]  # after it


def write_archive(root: str) -> None:
    store = Store.local_dir(root)
    writer.flush(store, batch_of(archived_pings()))
    batch = writer.Batch("alerts", "yrd.alerts")
    recs = [Record(a.vehicle_id.encode(), encode(a), int(a.emitted_at.timestamp() * 1000), 0, n)
            for n, a in enumerate(archived_alerts())]
    batch.read(0, recs[0].offset, recs[-1].offset)
    assert rows.alerts(recs, carriers=lambda v: None, out=batch.rows) == 0
    writer.flush(store, batch)


def expected_points(since: datetime, until: datetime) -> list[list]:
    out = []
    for i in range(20):
        at = T0 + timedelta(minutes=i)
        if not since <= at <= until:
            continue
        lon, lat = where(i)
        if i == GCJ_MINUTE:
            lon, lat = (float(v) for v in gcj02_to_wgs84(lon, lat))
        out.append([int(at.timestamp() * 1000), round(lat, 6), round(lon, 6), 50.0,
                    (i * 15) % 360])
    return out


async def test_a_trucks_track_of_a_period_from_the_archive(env, kafka, worker, tmp_path,
                                                           caplog, monkeypatch):
    archive = tmp_path / "archive"
    write_archive(str(archive))
    settings = desk_settings(env, users_file(tmp_path)).model_copy(
        update={"archive_dir": str(archive)})
    # the trucks now, in the read model: the SH desk sees the SH truck, the JS desk the JS one
    t0 = start_time()
    sh_now, js_now = drive(PLATE, t0, [40.0] * 3), drive(JS_PLATE, t0, [40.0] * 3, at=XINJIEKOU)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], sh_now + js_now)
    await in_read_model(env, sh_now, js_now)
    since = datetime.fromisoformat(FROM).replace(tzinfo=CHINA_TZ)
    until = datetime.fromisoformat(TO).replace(tzinfo=CHINA_TZ)
    path = f"/api/trucks/{PLATE}/track"

    async with desk_client(settings) as sh, desk_client(settings) as js, \
            desk_client(settings) as nobody:
        assert (await nobody.get(path, params={"from": FROM, "to": TO})).status == 401
        await login(sh, "sh-duty")
        await login(js, "js-duty")

        caplog.set_level(logging.INFO, logger="yrd_hazmat.desk.audit")
        answer = await sh.get(path, params={"from": FROM, "to": TO})
        assert answer.status == 200, await answer.text()
        body = await answer.json()
        assert body["vehicle_id"] == PLATE and body["truncated"] is False
        assert (datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])) == \
            (since, until)
        expected = expected_points(since, until)
        assert len(expected) == 14 and body["points"] == expected
        gcj = next(p for p in body["points"] if p[0] == int(
            (T0 + timedelta(minutes=GCJ_MINUTE)).timestamp() * 1000))
        assert abs(gcj[2] - where(GCJ_MINUTE)[0]) > 0.003  # moved back by ~500 m to WGS-84
        assert [(a["alert_id"], a["type"], a["severity"], a["state"]) for a in body["alerts"]] == [
            (f"{PLATE}:SPEEDING:2:raised", "SPEEDING", "critical", "raised"),
            (f"{PLATE}:SPEEDING:2:cleared", "SPEEDING", "critical", "cleared"),
            (f"{PLATE}:PROLONGED_STOP:3:raised", "PROLONGED_STOP", "info", "raised")]
        first = body["alerts"][0]
        assert set(first) == {"alert_id", "type", "severity", "state", "ts", "lat", "lon"}
        assert datetime.fromisoformat(first["ts"]) == T0 + timedelta(minutes=4)
        assert (first["lat"], first["lon"]) == (where(4)[1], where(4)[0])
        views = [r.getMessage() for r in caplog.records if r.name == "yrd_hazmat.desk.audit"
                 and "desk track view" in r.getMessage()]
        assert len(views) == 1 and "user='sh-duty'" in views[0] and PLATE in views[0]
        assert "points=14" in views[0]

        # with an offset, the same instants; the bounds are included
        same = await (await sh.get(path, params={"from": "2026-11-10T15:52:00Z",
                                                 "to": "2026-11-10T16:05:00+00:00"})).json()
        assert same["points"] == expected
        one = await (await sh.get(path, params={"from": FROM, "to": FROM})).json()
        assert one["points"] == expected[:1] and one["alerts"] == []
        # a period without pings; the last 24 hours when none is given
        empty = await (await sh.get(path, params={"from": "2026-11-01T00:00:00",
                                                  "to": "2026-11-01T23:59:59"})).json()
        assert (empty["points"], empty["alerts"], empty["truncated"]) == ([], [], False)
        default = await sh.get(path)
        assert default.status == 200
        body = await default.json()
        assert datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"]) == \
            timedelta(hours=24)

        # beyond the cap: thinned evenly, the first and last fixes kept, and said so
        monkeypatch.setattr(track, "MAX_POINTS", 5)
        thin = await (await sh.get(path, params={"from": FROM, "to": TO})).json()
        assert thin["truncated"] is True and len(thin["points"]) == 5
        assert thin["points"][0] == expected[0] and thin["points"][-1] == expected[-1]
        assert thin["points"] == sorted(thin["points"]) and len(thin["alerts"]) == 3
        monkeypatch.undo()

        # bad periods
        for params, words in [
                ({"from": TO, "to": FROM}, "from must not be after to"),
                ({"from": "2026-10-01T00:00:00", "to": "2026-11-02T00:00:01"}, "31 days"),
                ({"from": "yesterday", "to": TO}, "from: not an RFC 3339 time"),
                ({"from": FROM, "to": "x" * 100}, "to: at most")]:
            refused = await sh.get(path, params=params)
            assert refused.status == 400, params
            assert words in (await refused.json())["error"], params
        exactly = await sh.get(path, params={"from": "2026-10-01T00:00:00",
                                             "to": "2026-11-01T00:00:00"})
        assert exactly.status == 200  # 31 days is allowed

        # the rule of the truck's panel: a province sees the trucks whose latest ping is there
        assert (await js.get(path, params={"from": FROM, "to": TO})).status == 404
        assert (await sh.get(f"/api/trucks/{JS_PLATE}/track")).status == 404
        assert (await sh.get("/api/trucks/沪A99999/track")).status == 404
        js_track = await js.get(f"/api/trucks/{JS_PLATE}/track", params={"from": FROM, "to": TO})
        assert js_track.status == 200
        js_body = await js_track.json()
        assert len(js_body["points"]) == 14
        assert [a["alert_id"] for a in js_body["alerts"]] == [f"{JS_PLATE}:SPEEDING:4:raised"]
        views = [r.getMessage() for r in caplog.records if "desk track view" in r.getMessage()]
        assert not any("js-duty" in v and PLATE in v for v in views)  # refused: not a view


async def test_the_track_is_read_off_the_event_loop(env, kafka, worker, tmp_path, monkeypatch):
    """A slow archive read does not hold the desk up: other requests are answered."""
    archive = tmp_path / "archive"
    write_archive(str(archive))
    settings = desk_settings(env, users_file(tmp_path)).model_copy(
        update={"archive_dir": str(archive)})
    sh_now = drive(PLATE, start_time(), [40.0] * 3)
    kafka.send_pings(env["YRD_TOPIC_PINGS"], sh_now)
    await in_read_model(env, sh_now)
    read = track.Tracks.read

    def slow(self, *args):
        import time
        time.sleep(2.0)
        return read(self, *args)

    monkeypatch.setattr(track.Tracks, "read", slow)
    async with desk_client(settings) as sh:
        await login(sh, "sh-duty")
        slow_answer = asyncio.create_task(sh.get(f"/api/trucks/{PLATE}/track",
                                                 params={"from": FROM, "to": TO}))
        await asyncio.sleep(0.3)
        started = asyncio.get_running_loop().time()
        assert (await sh.get("/api/me")).status == 200
        assert asyncio.get_running_loop().time() - started < 1.0
        answer = await slow_answer
        assert answer.status == 200 and len((await answer.json())["points"]) == 14
