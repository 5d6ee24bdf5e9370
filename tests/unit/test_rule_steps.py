"""Rules through their own ``step`` (issue #10), beside the engine tests that run them all:
a rule's behaviour is visible without the engine's ordering, buffering or other rules."""

from __future__ import annotations

from datetime import datetime, timedelta

from yrd_hazmat.alerts import incident_id
from yrd_hazmat.rules import fatigue, speeding, stops
from yrd_hazmat.rules.context import StepContext
from yrd_hazmat.rules.fatigue import FatigueConfig, FatigueState
from yrd_hazmat.rules.speed_episode import SpeedEpisode
from yrd_hazmat.rules.speeding import SpeedingConfig
from yrd_hazmat.rules.stops import StopsConfig
from yrd_hazmat.rules.sustained import Sustained
from tests.factories import T0, obs

V = "沪A12345"


def drive(step, state, trace, *args):
    """Feed ``trace`` to one rule's step as the engine does (previous observation in the
    context); returns the final state and every alert, in order."""
    alerts, previous = [], None
    for o in trace:
        ctx = StepContext(vehicle_id=V, previous=previous, emitted_at=T0)
        state, raised = step(state, o, ctx, *args)
        alerts += raised
        previous = o
    return state, alerts


def kinds(alerts):
    return [(a.type, a.state.value) for a in alerts]


def test_speeding_step_raises_once_after_the_minimum_duration_and_clears():
    cfg = SpeedingConfig(min_duration_ms=30_000)  # expressway limit 80 km/h
    trace = [obs(t, 95) for t in range(0, 50, 10)] + [obs(50, 70)]
    state, alerts = drive(speeding.step, SpeedEpisode(), trace, cfg)
    assert kinds(alerts) == [("SPEEDING", "raised"), ("SPEEDING", "cleared")]
    raised, cleared = alerts
    assert raised.ts == T0 + timedelta(seconds=30) and raised.details["over_for_s"] == 30.0
    assert raised.incident_id == incident_id(V, "SPEEDING", "", obs(30).ts_ms)
    assert cleared.details["max_speed_kmh"] == 95 and cleared.details["duration_s"] == 50.0
    assert state == SpeedEpisode()


def test_speeding_step_restarts_the_count_after_a_gap():
    cfg = SpeedingConfig(min_duration_ms=30_000, max_gap_ms=60_000)
    trace = [obs(0, 95), obs(20, 95), obs(200, 95), obs(220, 95), obs(230, 95)]
    _, alerts = drive(speeding.step, SpeedEpisode(), trace, cfg)
    assert kinds(alerts) == [("SPEEDING", "raised")]
    since = datetime.fromisoformat(alerts[0].details["over_since"])
    assert since == T0 + timedelta(seconds=200)  # counted from 200 s, not from 0
    assert alerts[0].ts == T0 + timedelta(seconds=230)


def test_stops_step_raises_a_prolonged_stop_and_clears_when_moving():
    cfg = StopsConfig(max_stop_ms=5 * 60_000)
    trace = [obs(t, 0) for t in range(0, 360, 60)] + [obs(360, 40)]
    state, alerts = drive(stops.step, Sustained(), trace, {}, cfg)
    assert kinds(alerts) == [("PROLONGED_STOP", "raised"), ("PROLONGED_STOP", "cleared")]
    assert alerts[0].details["max_stop_min"] == 5.0 and state.incident is None


def test_stops_step_a_slow_crawl_is_not_a_stop():
    cfg = StopsConfig(max_stop_ms=5 * 60_000)  # moving means at least 5 km/h
    _, alerts = drive(stops.step, Sustained(), [obs(t, 6) for t in range(0, 600, 60)], {}, cfg)
    assert alerts == []


def test_fatigue_step_raises_after_the_driving_limit_and_clears_after_a_rest():
    cfg = FatigueConfig(max_driving_ms=60 * 60_000, min_rest_ms=10 * 60_000)
    driving_ = [obs(m * 60, 50) for m in range(0, 70, 5)]    # ignition on, 50 km/h, 65 min
    parked = [obs(m * 60, 0) for m in range(70, 85, 5)]      # stopped from 70 min
    _, alerts = drive(fatigue.step, FatigueState(), driving_ + parked, cfg)
    assert kinds(alerts) == [("FATIGUE_DRIVING", "raised"), ("FATIGUE_DRIVING", "cleared")]
    assert alerts[0].ts == T0 + timedelta(minutes=65)  # the first fix past 60 min of driving
    assert alerts[1].ts == T0 + timedelta(minutes=80) and alerts[1].details["rested_min"] == 10.0


def test_fatigue_step_a_silent_parked_gap_counts_as_rest():
    cfg = FatigueConfig(max_driving_ms=60 * 60_000, min_rest_ms=10 * 60_000)
    before = [obs(m * 60, 50) for m in range(0, 50, 5)]      # 45 min driving
    after = [obs(m * 60, 50) for m in range(65, 105, 5)]     # 15 min silent, same place
    _, alerts = drive(fatigue.step, FatigueState(), before + after, cfg)
    assert alerts == []  # the stint restarted at 65 min: 35 min driven since
