"""Event-loop stalls are measured and named; per-vehicle state stays out of the collector."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from yrd_hazmat import metrics
from yrd_hazmat.loopwatch import LoopWatch, watch_gc
from yrd_hazmat.core.observation import Observation
from yrd_hazmat.core.rules.zones import ZoneTrack
from yrd_hazmat.core.state import VehicleState


def _hold_the_loop_for_a_while() -> None:
    time.sleep(0.35)


def test_a_blocked_loop_is_logged_with_the_code_that_held_it(caplog):
    watch = LoopWatch("test-blocked", interval_s=0.02, report_s=0.1)
    blocked = metrics.LOOP_BLOCKED.labels(loop="test-blocked")
    lag = metrics.LOOP_LAG.labels(loop="test-blocked")

    async def scenario() -> None:
        task = asyncio.ensure_future(watch.run())
        await asyncio.sleep(0.1)
        _hold_the_loop_for_a_while()
        await asyncio.sleep(0.1)
        task.cancel()

    with caplog.at_level(logging.WARNING, logger="yrd_hazmat.loopwatch"):
        asyncio.run(scenario())
    reports = [r.getMessage() for r in caplog.records if "blocked for" in r.getMessage()]
    assert len(reports) == 1  # one stall, one report
    assert "_hold_the_loop_for_a_while" in reports[0]
    assert blocked._value.get() == 1
    assert lag._sum.get() >= 0.3  # the heartbeat woke at least 0.3 s late once


def test_a_quiet_loop_reports_nothing(caplog):
    watch = LoopWatch("test-quiet", interval_s=0.02, report_s=0.5)  # (a busy CI machine)

    async def scenario() -> None:
        task = asyncio.ensure_future(watch.run())
        await asyncio.sleep(0.3)
        task.cancel()

    with caplog.at_level(logging.WARNING, logger="yrd_hazmat.loopwatch"):
        asyncio.run(scenario())
    assert not [r for r in caplog.records if "blocked for" in r.getMessage()]
    assert metrics.LOOP_BLOCKED.labels(loop="test-quiet")._value.get() == 0


def test_garbage_collections_are_timed():
    watch_gc()
    watch_gc()  # idempotent: one callback
    try:
        assert sum(getattr(cb, "_yrd", False) for cb in gc.callbacks) == 1
        before = _count("2")
        gc.collect()
        assert _count("2") == before + 1
    finally:  # not for the rest of the test session
        gc.callbacks[:] = [cb for cb in gc.callbacks if not getattr(cb, "_yrd", False)]


def _count(generation: str) -> float:
    return sum(s.value for m in metrics.GC_PAUSE.collect() for s in m.samples
               if s.name.endswith("_count") and s.labels.get("generation") == generation)


def test_vehicle_state_is_not_tracked_by_the_collector():
    obs = Observation(ts_ms=1, lat=31.0, lon=121.0, speed_kmh=60.0, road_class=None,
                      alarm_flags=0, status_flags=0, province="SH", city=None)
    state = VehicleState(vehicle_id="沪A12345", last=obs, pending=[obs],
                         zones={"z1": ZoneTrack()})
    assert not gc.is_tracked(state)
    assert not gc.is_tracked(obs)
    assert not gc.is_tracked(state.zones["z1"])
    # the containers inside are still tracked, so a cycle through them is still found
    assert gc.is_tracked(state.pending)
