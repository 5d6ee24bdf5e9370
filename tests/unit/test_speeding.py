"""SPEEDING: raised after the minimum time over the limit, once per episode, then cleared."""

from yrd_hazmat.core.engine import RulesConfig, advance
from yrd_hazmat.core.models import AlertState, Severity
from yrd_hazmat.core.rules.speeding import SpeedingConfig
from yrd_hazmat.core.rules.thresholds import RoadLimits
from tests.factories import NO_PERMITS_REQUIRED, T0, obs

CFG = RulesConfig(speeding=SpeedingConfig(min_duration_ms=30_000), permits=NO_PERMITS_REQUIRED)


def run(trace, cfg=CFG, state=None):
    out = advance(state, "沪A12345", trace, cfg, T0)
    return out.state, out.alerts


def test_short_burst_over_the_limit_does_not_fire():
    _, alerts = run([obs(0, 90), obs(10, 95), obs(20, 92), obs(29, 91), obs(35, 70)])
    assert alerts == []


def test_fires_once_after_min_duration_and_clears_when_back_under():
    trace = [obs(t, 92) for t in range(0, 120, 10)] + [obs(120, 75), obs(130, 95)]
    _, alerts = run(trace)
    assert [(a.type, a.state) for a in alerts] == [
        ("SPEEDING", AlertState.RAISED),
        ("SPEEDING", AlertState.CLEARED),
    ]
    raised, cleared = alerts
    assert raised.ts == T0.replace(second=30)  # event time of the ping that crossed 30 s
    assert raised.severity is Severity.WARNING
    assert raised.details["limit_kmh"] == 80 and raised.details["speed_kmh"] == 92
    assert cleared.ts == T0.replace(minute=2)
    assert cleared.incident_id == raised.incident_id
    assert cleared.alert_id != raised.alert_id
    assert cleared.details["duration_s"] == 120


def test_episode_split_across_batches_fires_once():
    state, first = run([obs(0, 90), obs(20, 90)])
    state, second = run([obs(40, 90), obs(60, 99)], state=state)
    state, third = run([obs(80, 95)], state=state)
    assert first == [] and len(second) == 1 and third == []
    assert state.speeding.max_speed_kmh == 99


def test_other_roads_have_the_lower_limit():
    _, on_other = run([obs(t, 70, road_class="other") for t in range(0, 50, 10)])
    _, on_expressway = run([obs(t, 70) for t in range(0, 50, 10)])
    assert len(on_other) == 1 and on_other[0].details["limit_kmh"] == 60
    assert on_expressway == []


def test_limits_and_unknown_road_class_are_configurable():
    strict = RulesConfig(speeding=SpeedingConfig(
        limits=RoadLimits(expressway_kmh=70, other_kmh=50, unknown_road_as="other"),
        min_duration_ms=0),
        permits=NO_PERMITS_REQUIRED)
    _, alerts = run([obs(0, 55, road_class=None)], cfg=strict)
    assert len(alerts) == 1 and alerts[0].details["limit_kmh"] == 50


def test_speed_exactly_at_the_limit_is_legal():
    _, alerts = run([obs(t, 80) for t in range(0, 100, 10)])
    assert alerts == []


def test_gap_in_pings_restarts_the_count():
    # 10 s over, then 10 minutes of silence, then 10 s over: not 30 s of known speeding
    _, alerts = run([obs(0, 90), obs(10, 90), obs(610, 90), obs(620, 90)])
    assert [a for a in alerts if a.type == "SPEEDING"] == []


def test_new_episode_gets_a_new_incident():
    trace = [obs(t, 95) for t in range(0, 40, 10)] + [obs(40, 60)] + [
        obs(t, 95) for t in range(50, 100, 10)]
    _, alerts = run(trace)
    raised = [a for a in alerts if a.state is AlertState.RAISED]
    assert len(raised) == 2 and raised[0].incident_id != raised[1].incident_id
