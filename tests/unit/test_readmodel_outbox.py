"""The read model's outbox: merging and compaction, without Redis."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import msgspec

from yrd_hazmat.core.models import Alert, AlertState, City, Severity
from yrd_hazmat.core.observation import Observation
from yrd_hazmat.readmodel import (
    Outbox, PendingAlert, PendingVehicle, ReadModel, VehicleUpdate, script_calls,
)
from yrd_hazmat.core.timeutil import CHINA_TZ, to_ms

T0 = datetime(2026, 11, 2, 9, 0, 0, tzinfo=CHINA_TZ)
NOW = datetime(2026, 11, 2, 9, 30, 0, tzinfo=CHINA_TZ)
PLACES = {
    "SH": ((121.4737, 31.2304), City(code="310000", name="上海市")),
    "JS": ((118.7969, 32.0603), City(code="320100", name="南京市")),
    "ZJ": ((120.1551, 30.2741), City(code="330100", name="杭州市")),
    "AH": ((117.2272, 31.8206), City(code="340100", name="合肥市")),
    None: ((122.5, 30.9), None),
}


def observation(at_s: float, province: str | None = "SH", speed: float = 50.0) -> Observation:
    (lon, lat), city = PLACES[province]
    return Observation(
        ts_ms=to_ms(T0 + timedelta(seconds=at_s)), lat=lat + at_s * 1e-5, lon=lon,
        speed_kmh=speed, road_class="expressway", alarm_flags=0, status_flags=3,
        province=province, city=city,
    )


def update(vehicle: str, at_s: float, province: str | None = "SH",
           previous: str | None = "SH", seen: bool = True, speed: float = 50.0) -> VehicleUpdate:
    return VehicleUpdate(vehicle_id=vehicle, latest=observation(at_s, province, speed),
                         previous_province=previous, previously_seen=seen)


def alert(vehicle: str, incident: str, state: str = "raised", *, type: str = "SPEEDING",
          province: str | None = "SH", at_s: float = 0.0) -> Alert:
    ts = T0 + timedelta(seconds=at_s)
    return Alert(
        alert_id=f"{incident}:{state}", incident_id=incident, type=type,
        severity=Severity.WARNING, state=AlertState(state), vehicle_id=vehicle, ts=ts,
        emitted_at=ts, lat=31.23, lon=121.47, province=province,
        details={"speed_kmh": 96.0},
    )


def test_newest_observation_wins_and_the_shown_province_is_kept():
    box = Outbox()
    box.add([update("沪A1", 10, "SH", previous="AH")], [], NOW)
    box.add([update("沪A1", 30, "JS", previous="SH")], [], NOW)
    box.add([update("沪A1", 20, "ZJ", previous="JS")], [], NOW)  # older: ignored
    [pending] = box.vehicles.values()
    assert pending.latest.ts_ms == observation(30).ts_ms and pending.latest.province == "JS"
    assert pending.previous_province == "AH" and pending.previously_seen  # what Redis showed


def test_one_entry_per_vehicle_however_many_batches():
    box = Outbox()
    for i in range(50):
        box.add([update(f"v{j}", i) for j in range(100)], [], NOW)
    assert len(box.vehicles) == 100
    assert {v.latest.ts_ms for v in box.vehicles.values()} == {observation(49).ts_ms}


def test_alerts_keep_their_order():
    box = Outbox()
    box.add([], [alert("v", "i1"), alert("v", "i2")], NOW)
    box.add([], [alert("v", "i1", "cleared")], NOW)
    assert [a.alert_id for a in box.alerts] == ["i1:raised", "i2:raised", "i1:cleared"]


def test_restore_puts_a_failed_flush_back_under_what_came_meanwhile():
    box = Outbox()
    box.add([update("a", 10, "SH", previous="AH"), update("b", 50, "JS")],
            [alert("a", "i1")], NOW)
    vehicles, alerts = box.take()
    assert not box.vehicles and not box.alerts
    box.add([update("a", 20, "JS", previous="SH"), update("b", 40, "ZJ")],
            [alert("a", "i1", "cleared")], NOW)
    box.restore(vehicles, alerts)
    a, b = box.vehicles["a"], box.vehicles["b"]
    assert a.latest.ts_ms == observation(20).ts_ms and a.previous_province == "AH"
    assert b.latest.ts_ms == observation(50).ts_ms  # the taken one was newer
    assert [x.alert_id for x in box.alerts] == ["i1:raised", "i1:cleared"]


def test_compaction_keeps_every_open_and_clear_change():
    box = Outbox(max_alerts=2000, recent=100)
    batch = []
    for i in range(1500):  # 1500 incidents raised, the even ones cleared
        batch.append(alert(f"v{i % 40}", f"inc{i}"))
        batch.append(alert(f"v{i % 40}", f"hand{i}", type="PROVINCE_HANDOVER"))
        if i % 2 == 0:
            batch.append(alert(f"v{i % 40}", f"inc{i}", "cleared"))
    batch.append(alert("v0", "inc3"))  # a replay
    box.add([], batch, NOW)
    assert len(box.alerts) < 2000
    listed = [a for a in box.alerts if a.push]
    assert [a.alert_id for a in listed] == [a.alert_id for a in batch[-100:]]
    head = box.alerts[: len(box.alerts) - 100]
    assert not any(a.push or a.momentary for a in head)
    # every incident still open is raised in the outbox; every cleared one is cleared
    raised = {a.incident_id for a in box.alerts if a.raised and not a.momentary}
    cleared = {a.incident_id for a in box.alerts if not a.raised}
    for i in range(1500):
        if i % 2:
            assert f"inc{i}" in raised
        else:
            assert f"inc{i}" in cleared
    assert box.dropped == len(batch) - 100
    assert len({a.alert_id for a in head}) == len(head)  # the replay went too


def test_compaction_is_not_repeated_on_every_submit():
    box = Outbox(max_alerts=2000, recent=100)
    box.add([], [alert("v", f"inc{i}") for i in range(2500)], NOW)  # all open: nothing to drop
    assert len(box.alerts) == 2500 and box._compact_at == 5000
    start = time.perf_counter()
    for i in range(1000):
        box.add([], [alert("v", f"more{i}")], NOW)
    assert time.perf_counter() - start < 0.5


def test_script_rows_carry_exact_text():
    pv = PendingVehicle("沪A1", observation(10, None, speed=96.0), "SH", True, NOW.isoformat())
    row = pv.row()
    assert row[0] == "沪A1" and row[1] == str(observation(10).ts_ms)
    assert row[2] == (T0 + timedelta(seconds=10)).isoformat()
    assert float(row[3]) == pv.latest.lat and row[5] == "96.0"
    assert row[6:9] == ["", "", ""] and row[10:] == ["SH", 1, 1, "", ""]  # heading, track
    a = PendingAlert(alert("沪A1", "i1"))
    assert msgspec.json.decode(a.row()[6], type=Alert).alert_id == "i1:raised"


def test_script_calls_are_chunked():
    vehicles = [PendingVehicle(f"v{i}", observation(i), None, False, "") for i in range(25)]
    alerts = [PendingAlert(alert("v1", f"i{i}")) for i in range(7)]
    calls = script_calls(vehicles, alerts, chunk=10)
    assert len(calls) == 3
    decoded = [(msgspec.json.decode(v), msgspec.json.decode(a)) for v, a in calls]
    assert [len(v) for v, _ in decoded] == [10, 10, 5]
    assert [len(a) for _, a in decoded] == [7, 0, 0]
    assert script_calls([], [], chunk=10) == [(b"[]", b"[]")]


class _Exploding:
    def __iter__(self):
        raise RuntimeError("boom")


def test_submit_never_raises_and_does_no_io():
    model = ReadModel.from_url("redis://127.0.0.1:1/0")  # nothing listens there
    model.submit(_Exploding(), [], NOW)  # logged, not raised
    start = time.perf_counter()
    for i in range(200):
        model.submit([update(f"v{j}", i) for j in range(50)], [alert("v1", f"i{i}")], NOW)
    assert time.perf_counter() - start < 1.0
    assert model.pending == (50, 200)


def test_errors_are_logged_without_the_redis_password():
    for url in ("redis://:hunter2@127.0.0.1:1/0", "redis://127.0.0.1:1/0?password=hunter2",
                "redis://worker:hunter2@127.0.0.1:1/0"):
        model = ReadModel.from_url(url)
        text = model._text(ConnectionError(f"cannot AUTH with hunter2 at {url}"))
        assert "hunter2" not in text and "****" in text


def test_the_track_keeps_every_position_between_flushes_in_time_order():
    outbox = Outbox()
    first = VehicleUpdate(vehicle_id="沪A1", latest=observation(20), previous_province=None,
                          previously_seen=False,
                          track=(observation(0), observation(10)))
    second = VehicleUpdate(vehicle_id="沪A1", latest=observation(40), previous_province="SH",
                           previously_seen=True, track=(observation(30),))
    outbox.add([first], [], NOW)
    outbox.add([second], [], NOW)
    vehicles, alerts = outbox.take()
    points = vehicles["沪A1"].row()[14].split(";")
    assert [int(p.split(",")[0]) for p in points] == [observation(s).ts_ms for s in (0, 10, 20, 30)]
    outbox.add([VehicleUpdate(vehicle_id="沪A1", latest=observation(50), previous_province="SH",
                              previously_seen=True)], [], NOW)
    outbox.restore(vehicles, alerts)  # a failed flush puts its points back, before the new
    points = outbox.vehicles["沪A1"].row()[14].split(";")
    assert [int(p.split(",")[0]) for p in points] == [
        observation(s).ts_ms for s in (0, 10, 20, 30, 40)]
