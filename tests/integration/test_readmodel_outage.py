"""The read model's outbox and flusher against a real redis-server of the test's own:
never backwards, idempotent alerts, catch-up after an outage or a hang, bounded logging."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time

import pytest
import pytest_asyncio
import redis

from yrd_hazmat import metrics
from yrd_hazmat.readmodel import FlushError, ReadModel
from tests.harness import OwnRedis
from tests.unit.test_readmodel_outbox import NOW, alert, observation, update

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-pw"


@pytest.fixture
def server(services, tmp_path):
    """A redis-server of the test's own (``services`` installed Debian's package, as on a
    fresh machine: checked when the test runs, not skipped when it is collected)."""
    assert shutil.which("redis-server"), "redis-server is not installed"
    srv = OwnRedis(tmp_path).start()
    yield srv
    srv.destroy()


@pytest_asyncio.fixture(loop_scope="function")
async def model(server):
    m = ReadModel.from_url(server.url, timeout_s=0.5)
    yield m
    await m.close(timeout_s=0.5)


def positions(r: redis.Redis, vehicle: str):
    pos = r.geopos("yrd:positions", vehicle)[0]
    return None if pos is None else (round(pos[0], 4), round(pos[1], 4))


def recent_ids(r: redis.Redis) -> list[str]:
    """The recent alerts' ids, newest (by event time) first."""
    return [x.split("\n", 1)[0] for x in r.zrevrange("yrd:alerts:latest", 0, -1)]


async def test_newer_stays_and_older_changes_nothing(server, model):
    r = server.client()
    model.submit([update("沪A1", 30, "JS", previous="SH")], [], NOW)
    model.submit([update("沪A1", 10, "SH")], [], NOW)  # older, same flush
    assert await model.flush()
    stored = await model.vehicle("沪A1")
    assert stored["ts_ms"] == str(observation(30).ts_ms) and stored["province"] == "JS"
    before = (r.hgetall("yrd:vehicle:沪A1"), positions(r, "沪A1"),
              r.zrange("yrd:vehicles:JS", 0, -1, withscores=True))

    model.submit([update("沪A1", 20, "SH", previous="SH")], [], NOW)  # older, later flush
    assert await model.flush()
    after = (r.hgetall("yrd:vehicle:沪A1"), positions(r, "沪A1"),
             r.zrange("yrd:vehicles:JS", 0, -1, withscores=True))
    assert after == before
    assert await model.vehicles_in("SH") == [] and await model.vehicles_in("JS") == ["沪A1"]

    # a second writer (another worker, or a replay after a crash) with older data
    other = ReadModel.from_url(server.url)
    await other.apply([update("沪A1", 29, "ZJ", previous="SH")], [], NOW)
    await other.close()
    assert (await model.vehicle("沪A1"))["province"] == "JS"
    assert await model.vehicles_in("ZJ") == []


async def test_a_replayed_alert_is_listed_once(server, model):
    r = server.client()
    model.submit([update("沪A1", 10)], [alert("沪A1", "i1"), alert("沪A1", "i1")], NOW)
    assert await model.flush()
    model.submit([update("沪A1", 10)], [alert("沪A1", "i1"), alert("沪A1", "i2")], NOW)
    assert await model.flush()
    assert recent_ids(r) == ["i2:raised", "i1:raised"]
    assert (await model.vehicle("沪A1"))["open_alerts"] == "2"


@pytest.mark.parametrize("order", ["one flush", "one flush reversed", "two flushes",
                                   "two flushes reversed"])
async def test_raised_and_cleared_end_cleared_in_any_order(server, model, order):
    raised = alert("沪A1", "inc", "raised", province="SH")
    cleared = alert("沪A1", "inc", "cleared", province="JS")  # cleared after a border crossing
    other = alert("沪A1", "other", "raised", province="SH")
    first, second = (raised, cleared) if "reversed" not in order else (cleared, raised)
    model.submit([update("沪A1", 10)], [other], NOW)
    if order.startswith("one"):
        model.submit([], [first, second], NOW)
        assert await model.flush()
    else:
        model.submit([], [first], NOW)
        assert await model.flush()
        model.submit([], [second], NOW)
        assert await model.flush()
    assert [a.incident_id for a in await model.open_alerts(vehicle_id="沪A1")] == ["other"]
    assert [a.incident_id for a in await model.open_alerts(province="SH")] == ["other"]
    assert await model.open_alerts(province="JS") == []
    assert (await model.vehicle("沪A1"))["open_alerts"] == "1"
    # a replay of the raise later still does not reopen it
    model.submit([], [raised], NOW)
    assert await model.flush()
    assert [a.incident_id for a in await model.open_alerts(vehicle_id="沪A1")] == ["other"]


async def test_province_move_after_merged_updates(server, model):
    await model.apply([update("沪A1", 10, "SH", seen=False), update("沪A2", 10, "SH")], [], NOW)
    assert sorted(await model.vehicles_in("SH")) == ["沪A1", "沪A2"]
    # several batches in one flush: SH -> JS -> ZJ, and out of the region and back to AH
    model.submit([update("沪A1", 20, "JS", previous="SH")], [], NOW)
    model.submit([update("沪A1", 30, "ZJ", previous="JS")], [], NOW)
    model.submit([update("沪A2", 20, None, previous="SH")], [], NOW)
    assert await model.flush()
    assert await model.vehicles_in("SH") == [] and await model.vehicles_in("JS") == []
    assert await model.vehicles_in("ZJ") == ["沪A1"] and await model.vehicles_in(None) == ["沪A2"]
    # the hash expired (or was lost): the worker's hint of the province it left is used
    server.client().delete("yrd:vehicle:沪A2")
    model.submit([update("沪A2", 30, "AH", previous=None)], [], NOW)
    assert await model.flush()
    assert await model.vehicles_in(None) == [] and await model.vehicles_in("AH") == ["沪A2"]


async def test_outbox_survives_an_outage_and_catches_up(server, model):
    failures = metrics.READMODEL_FLUSH_FAILURES._value.get()
    await model.apply([update(f"v{i}", 0) for i in range(50)], [alert("v0", "old")], NOW)
    server.kill()
    for t in range(1, 6):  # the stream goes on: 5 batches during the outage
        model.submit([update(f"v{i}", t, "JS" if t >= 3 else "SH", previous="SH")
                      for i in range(50)],
                     [alert(f"v{t}", f"inc{t}"), alert(f"v{t}", f"hand{t}",
                                                        type="PROVINCE_HANDOVER")], NOW)
        assert not await model.flush()
    model.submit([], [alert("v0", "old", "cleared")], NOW)
    assert not model.healthy and model.pending == (50, 11)
    assert metrics.READMODEL_HEALTHY._value.get() == 0
    assert metrics.READMODEL_FLUSH_FAILURES._value.get() >= failures + 5
    with pytest.raises(FlushError):
        await model.apply([], [], NOW)

    server.start()  # an empty Redis (no persistence): everything comes from the outbox
    assert await model.flush()
    assert model.healthy and model.pending == (0, 0)
    assert metrics.READMODEL_HEALTHY._value.get() == 1
    for i in range(50):
        stored = await model.vehicle(f"v{i}")
        assert stored["ts_ms"] == str(observation(5).ts_ms) and stored["province"] == "JS"
    assert sorted(await model.vehicles_in("JS")) == sorted(f"v{i}" for i in range(50))
    ids = recent_ids(server.client())
    assert ids[0] == "old:cleared" and len(ids) == 11
    assert sorted(a.incident_id for a in await model.open_alerts(province="SH")) == [
        f"inc{t}" for t in range(1, 6)]


async def test_a_lost_script_cache_is_reloaded(server, model):
    await model.apply([update("沪A1", 10)], [], NOW)
    server.client().script_flush()
    await model.apply([update("沪A1", 20)], [], NOW)
    assert (await model.vehicle("沪A1"))["ts_ms"] == str(observation(20).ts_ms)


async def longest_pause(awaitable):
    """(its result, the longest the event loop was held while it ran): a 10 ms ticker
    stands for the stream, which must keep running during a flush."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def stream():
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(stream())
    try:
        return await awaitable, max(gaps, default=0.0)
    finally:
        stop.set()
        await ticker


async def test_a_hung_redis_fails_the_flush_and_never_blocks_the_stream(server, model):
    await model.apply([update("v0", 0)], [], NOW)
    server.pause()
    model.submit([update(f"v{i}", 1) for i in range(10)], [], NOW)
    start = time.perf_counter()
    ok, paused = await longest_pause(model.flush())
    took = time.perf_counter() - start
    print(f"\nflush against a stopped Redis failed after {took:.2f} s, the loop held at most "
          f"{paused * 1000:.0f} ms")
    assert ok is False and took < 1.5, took  # socket timeout 0.5 s, a timeout is not retried
    assert paused < 0.2, paused  # (a flush waiting on the socket would hold it 0.5 s)
    started = time.perf_counter()
    for t in range(2, 22):
        model.submit([update(f"v{i}", t) for i in range(1000)], [alert("v1", f"i{t}")], NOW)
    submit_s = (time.perf_counter() - started) / 20
    assert submit_s < 0.2, submit_s  # per batch of 1,000 vehicles: never waits for Redis
    ok, paused = await longest_pause(model.flush())
    assert not ok and paused < 0.2, paused
    server.resume()
    assert await model.flush()
    assert (await model.vehicle("v999"))["ts_ms"] == str(observation(21).ts_ms)


async def test_outage_logs_a_bounded_number_of_lines(tmp_path, caplog):
    srv = OwnRedis(tmp_path, password=PASSWORD).start()
    model = ReadModel.from_url(srv.url, timeout_s=0.3, max_backoff_s=0.4)
    caplog.set_level(logging.DEBUG, logger="yrd_hazmat.readmodel")
    flusher = asyncio.create_task(model.run(0.05))
    try:
        model.submit([update("v", 0)], [], NOW)
        await asyncio.sleep(0.3)
        srv.kill()
        deadline = time.monotonic() + 5
        t = 1
        while time.monotonic() < deadline:  # 5 s outage, a batch every 50 ms
            model.submit([update("v", t)], [alert("v", f"i{t}")], NOW)
            t += 1
            await asyncio.sleep(0.05)
        assert not model.healthy
        srv.start()
        for _ in range(100):
            await asyncio.sleep(0.1)
            if model.healthy and model.pending == (0, 0):
                break
        assert model.healthy and model.pending == (0, 0)
        assert (await model.vehicle("v"))["ts_ms"] == str(observation(t - 1).ts_ms)
    finally:
        await model.close(timeout_s=0.5)
        await asyncio.wait_for(flusher, 2)
        if srv.proc is not None:
            srv.kill()
    records = [r for r in caplog.records if r.name == "yrd_hazmat.readmodel"]
    levels = [r.levelname for r in records]
    assert levels == ["WARNING", "INFO"], [r.getMessage() for r in records]
    assert "caught up 1 vehicles" in records[1].getMessage()
    assert all(PASSWORD not in r.getMessage() for r in records)


async def test_a_large_flush_is_written_whole(server):
    """20,000 vehicles and 3,000 alerts in one flush, then 20,000 updates: all written. (How
    long it takes is measured by the benchmarks, not here: this machine may be busy.)"""
    vehicles = 20_000
    model = ReadModel.from_url(server.url, timeout_s=30)
    model.submit([update(f"v{i}", 10, ("SH", "JS", "ZJ")[i % 3], previous="AH")
                  for i in range(vehicles)],
                 [alert(f"v{i}", f"i{i}") for i in range(3000)], NOW)
    assert await model.flush()
    r = server.client()
    assert r.zcard("yrd:positions") == vehicles and r.zcard("yrd:alerts:latest") == 1000
    assert r.hlen("yrd:alerts:open:province:SH") == 3000
    model.submit([update(f"v{i}", 20) for i in range(vehicles)], [], NOW)
    assert await model.flush()
    await model.close()
    assert r.zcard("yrd:vehicles:SH") == vehicles and r.zcard("yrd:vehicles:AH") == 0
