"""Rules through their own ``step`` (issue #10), beside the engine tests that run them all:
a rule's behaviour is visible without the engine's ordering, buffering or other rules.
Each test drives one :class:`~yrd_hazmat.core.rules.rule.Rule` as the engine would: a fresh
state, one context per ping (the previous observation, and the facts the rules share)."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from yrd_hazmat.core.alerts import incident_id
from yrd_hazmat.core.enrich import observe
from yrd_hazmat.core.geo.jurisdiction import default_index, province_shapes_metric
from yrd_hazmat.core.geo.projection import to_lonlat, to_metric
from yrd_hazmat.core.models import Ping
from yrd_hazmat.core.permits.route import route_position
from yrd_hazmat.core.permits.status import NO_PERMIT, PermitStatus
from yrd_hazmat.core.rules import (
    device_alarm, fatigue, handover, permits, plausibility, signal, speeding, stops, zones,
)
from yrd_hazmat.core.rules.context import StepContext
from yrd_hazmat.core.rules.fatigue import FatigueConfig
from yrd_hazmat.core.rules.permits import PermitsConfig
from yrd_hazmat.core.rules.plausibility import PlausibilityConfig
from yrd_hazmat.core.rules.signal import SignalConfig
from yrd_hazmat.core.rules.speed_episode import SpeedEpisode
from yrd_hazmat.core.rules.speeding import SpeedingConfig
from yrd_hazmat.core.rules.stops import StopsConfig
from yrd_hazmat.core.rules.zones import ZonesConfig
from yrd_hazmat.core.zones.model import parse_zone
from yrd_hazmat.core.zones.registry import ZoneRegistry
from yrd_hazmat.core.timeutil import to_ms
from tests.factories import T0, obs
from tests.permit_trips import along_route, compiled

V = "沪A12345"


class Run(msgspec.Struct):
    state: object
    alerts: list
    handovers: list


def drive(rule, trace, cfg=None, state=None, **facts) -> Run:
    """Feed ``trace`` to one rule's step as the engine does: the previous observation
    and ``facts`` (permit, zones, provinces) in the context, the ping's position on the
    permitted route worked out per ping; returns the final state and every output."""
    state = rule.fresh() if state is None else state
    if cfg is None and rule.config is not None:
        cfg = rule.config()
    status = facts.get("permit", NO_PERMIT)
    alerts, handovers, previous = [], [], None
    for o in trace:
        ctx = StepContext(vehicle_id=V, previous=previous, emitted_at=T0, handovers=handovers,
                          where=route_position(status, o), **facts)
        state, raised = rule.step(state, o, ctx, cfg)
        alerts += raised
        previous = o
    return Run(state, alerts, handovers)


def located(pings: list[Ping], zone_registry: ZoneRegistry | None = None):
    """Observations of real pings: province, metric position, zones."""
    index = (zone_registry or ZoneRegistry(margin_m=30)).index
    return observe(pings, default_index(), index)


def kinds(alerts):
    return [(a.type, a.state.value) for a in alerts]


def test_speeding_step_raises_once_after_the_minimum_duration_and_clears():
    cfg = SpeedingConfig(min_duration_ms=30_000)  # expressway limit 80 km/h
    trace = [obs(t, 95) for t in range(0, 50, 10)] + [obs(50, 70)]
    run = drive(speeding.RULE, trace, cfg)
    assert kinds(run.alerts) == [("SPEEDING", "raised"), ("SPEEDING", "cleared")]
    raised, cleared = run.alerts
    assert raised.ts == T0 + timedelta(seconds=30) and raised.details["over_for_s"] == 30.0
    assert raised.incident_id == incident_id(V, "SPEEDING", "", obs(30).ts_ms)
    assert cleared.details["max_speed_kmh"] == 95 and cleared.details["duration_s"] == 50.0
    assert run.state == SpeedEpisode()


def test_speeding_step_restarts_the_count_after_a_gap():
    cfg = SpeedingConfig(min_duration_ms=30_000, max_gap_ms=60_000)
    trace = [obs(0, 95), obs(20, 95), obs(200, 95), obs(220, 95), obs(230, 95)]
    alerts = drive(speeding.RULE, trace, cfg).alerts
    assert kinds(alerts) == [("SPEEDING", "raised")]
    since = datetime.fromisoformat(alerts[0].details["over_since"])
    assert since == T0 + timedelta(seconds=200)  # counted from 200 s, not from 0
    assert alerts[0].ts == T0 + timedelta(seconds=230)


def test_stops_step_raises_a_prolonged_stop_and_clears_when_moving():
    cfg = StopsConfig(max_stop_ms=5 * 60_000)
    trace = [obs(t, 0) for t in range(0, 360, 60)] + [obs(360, 40)]
    run = drive(stops.RULE, trace, cfg)
    assert kinds(run.alerts) == [("PROLONGED_STOP", "raised"), ("PROLONGED_STOP", "cleared")]
    assert run.alerts[0].details["max_stop_min"] == 5.0 and run.state.incident is None


def test_stops_step_a_slow_crawl_is_not_a_stop():
    cfg = StopsConfig(max_stop_ms=5 * 60_000)  # moving means at least 5 km/h
    assert drive(stops.RULE, [obs(t, 6) for t in range(0, 600, 60)], cfg).alerts == []


def test_fatigue_step_raises_after_the_driving_limit_and_clears_after_a_rest():
    cfg = FatigueConfig(max_driving_ms=60 * 60_000, min_rest_ms=10 * 60_000)
    driving_ = [obs(m * 60, 50) for m in range(0, 70, 5)]    # ignition on, 50 km/h, 65 min
    parked = [obs(m * 60, 0) for m in range(70, 85, 5)]      # stopped from 70 min
    alerts = drive(fatigue.RULE, driving_ + parked, cfg).alerts
    assert kinds(alerts) == [("FATIGUE_DRIVING", "raised"), ("FATIGUE_DRIVING", "cleared")]
    assert alerts[0].ts == T0 + timedelta(minutes=65)  # the first fix past 60 min of driving
    assert alerts[1].ts == T0 + timedelta(minutes=80) and alerts[1].details["rested_min"] == 10.0


def test_fatigue_step_a_silent_parked_gap_counts_as_rest():
    cfg = FatigueConfig(max_driving_ms=60 * 60_000, min_rest_ms=10 * 60_000)
    before = [obs(m * 60, 50) for m in range(0, 50, 5)]      # 45 min driving
    after = [obs(m * 60, 50) for m in range(65, 105, 5)]     # 15 min silent, same place
    assert drive(fatigue.RULE, before + after, cfg).alerts == []  # the stint restarted at 65 min: 35 min driven since


# --- zones ---------------------------------------------------------------------------

CENTRE = (121.40, 31.20)  # Shanghai, far from any province border
MONDAY_10AM = datetime(2026, 11, 30, 10, 0, tzinfo=T0.tzinfo)


def zone_registry(half_m: float, **props) -> ZoneRegistry:
    """One square zone ``2 * half_m`` wide around CENTRE (every class banned by default)."""
    cx, cy = (float(v) for v in to_metric(*CENTRE))
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]
    ring = [[float(v) for v in to_lonlat(cx + dx * half_m, cy + dy * half_m)] for dx, dy in corners]
    base = {"zone_id": "z1", "name": "water source", "kind": "water_source", "banned_classes": "all"}
    zone = parse_zone({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                       "properties": base | props})
    registry = ZoneRegistry(margin_m=30)
    registry.put(zone)
    return registry


def east_of_centre(seconds: float, dx_m: float, speed: float = 40.0) -> Ping:
    cx, cy = (float(v) for v in to_metric(*CENTRE))
    lon, lat = (float(v) for v in to_lonlat(cx + dx_m, cy))
    return Ping(vehicle_id=V, ts=MONDAY_10AM + timedelta(seconds=seconds), lon=lon, lat=lat,
                speed_kmh=speed, road_class="other")


def test_zones_step_raises_a_violation_on_confirmed_entry_and_clears_on_exit():
    registry = zone_registry(500)
    # from 1 km east, through the zone's middle, out 1 km west: 100 m every 10 s
    trace = located([east_of_centre(10 * i, 1000 - 100 * i) for i in range(21)], registry)
    run = drive(zones.RULE, trace, zones=registry.index.by_id)
    assert kinds(run.alerts) == [("ZONE_VIOLATION", "raised"), ("ZONE_VIOLATION", "cleared")]
    raised, cleared = run.alerts
    assert raised.severity.value == "critical" and raised.details["cargo_assumed_banned"] is True
    assert raised.incident_id == incident_id(V, "ZONE_VIOLATION", "z1", to_ms(raised.ts))
    assert cleared.details["reason"] == "exited" and cleared.incident_id == raised.incident_id
    assert run.state == {}  # nothing tracked once out of reach


def test_zones_step_edge_jitter_confirms_nothing():
    registry = zone_registry(500)
    # 15 m either side of the east edge, never past the 30 m margin, never 20 s inside
    trace = located([east_of_centre(10 * i, 500 + (15 if i % 2 else -15)) for i in range(30)],
                    registry)
    run = drive(zones.RULE, trace, cfg=ZonesConfig(min_inside_ms=20_000),
                zones=registry.index.by_id)
    assert run.alerts == [] and not run.state["z1"].inside


def test_zones_step_spares_a_cargo_class_the_zone_does_not_ban():
    registry = zone_registry(500, banned_classes=["2.3"])
    trace = located([east_of_centre(10 * i, 1000 - 100 * i) for i in range(21)], registry)
    petrol = PermitStatus(permit=compiled(V, MONDAY_10AM, hazard_class="3", un_number="UN1203"))
    chlorine = PermitStatus(permit=compiled(V, MONDAY_10AM))  # class 2.3
    assert drive(zones.RULE, trace, zones=registry.index.by_id, permit=petrol).alerts == []
    banned = drive(zones.RULE, trace, zones=registry.index.by_id, permit=chlorine).alerts
    assert kinds(banned)[0] == ("ZONE_VIOLATION", "raised")
    assert banned[0].details["cargo_class"] == "2.3"


# --- permits ---------------------------------------------------------------------------

BORDER_M = 264_050  # where the G2 route passes from Jiangsu into Shanghai


def test_permits_step_no_permit_raises_once_after_a_minute_of_moving():
    trace = located([Ping(vehicle_id=V, ts=T0 + timedelta(seconds=s), lon=121.4, lat=31.2,
                          speed_kmh=40) for s in range(0, 200, 10)])
    run = drive(permits.RULE, trace)
    assert kinds(run.alerts) == [("NO_VALID_PERMIT", "raised")]
    assert run.alerts[0].ts == T0 + timedelta(seconds=60) and run.alerts[0].details["reason"] == "none"
    nobody = drive(permits.RULE, trace, cfg=PermitsConfig(required_pattern=""))
    assert nobody.alerts == []


def test_permits_step_route_deviation_from_the_position_on_the_route():
    status = PermitStatus(permit=compiled(V, T0))
    off = along_route(V, T0, 100_000, 103_000, offset_m=900)  # 150 s, 900 m beside the route
    run = drive(permits.RULE, located(off), permit=status)
    assert kinds(run.alerts) == [("ROUTE_DEVIATION", "raised")]
    assert run.alerts[0].ts == T0 + timedelta(seconds=60)
    assert 500 < run.alerts[0].details["distance_m"] <= 900


# --- handovers -------------------------------------------------------------------------


def test_handover_step_puts_the_crossing_in_the_context_and_alerts_the_receiving_province():
    status = PermitStatus(permit=compiled(V, T0, provinces=["JS"]))
    trace = located(along_route(V, T0, BORDER_M - 2_000, BORDER_M + 5_000))
    run = drive(handover.RULE, trace, permit=status, provinces=province_shapes_metric())
    [crossing] = run.handovers
    assert (crossing.from_province, crossing.to_province) == ("JS", "SH")
    raised = {a.type: a for a in run.alerts if a.state.value == "raised"}
    assert raised["PROVINCE_HANDOVER"].incident_id == crossing.handover_id
    assert raised["PROVINCE_HANDOVER"].province == "SH"
    assert raised["HANDOVER_NOT_PERMITTED"].severity.value == "critical"
    assert run.state.province == "SH" and run.state.not_permitted is not None


def test_handover_step_without_province_shapes_tracks_nothing():
    trace = located(along_route(V, T0, BORDER_M - 2_000, BORDER_M + 5_000))
    run = drive(handover.RULE, trace, permit=PermitStatus(permit=compiled(V, T0)))
    assert run.alerts == [] and run.handovers == [] and run.state == handover.RULE.fresh()


# --- signal ------------------------------------------------------------------------------


def test_signal_step_raises_and_clears_a_gap_the_timer_never_saw():
    cfg = SignalConfig(lost_after_ms=5 * 60_000)
    run = drive(signal.RULE, [obs(0, 50), obs(60, 50), obs(60 + 420, 50)], cfg)
    assert kinds(run.alerts) == [("SIGNAL_LOST", "raised"), ("SIGNAL_LOST", "cleared")]
    raised, cleared = run.alerts
    assert raised.ts == T0 + timedelta(seconds=60 + 300)  # when the silence passed the limit
    assert cleared.details["gap_s"] == 420 and run.state.incident is None


def test_signal_silence_raises_once_when_due():
    cfg = SignalConfig(lost_after_ms=5 * 60_000)
    run = drive(signal.RULE, [obs(0, 50), obs(60, 50)], cfg)
    last = obs(60, 50)
    ctx = StepContext(vehicle_id=V, previous=last, emitted_at=T0)
    assert not signal.due(run.state, last, last.ts_ms + 299_000, ctx, cfg)
    assert signal.due(run.state, last, last.ts_ms + 300_000, ctx, cfg)
    state, alerts = signal.on_silence(run.state, last, last.ts_ms + 300_000, ctx, cfg)
    assert kinds(alerts) == [("SIGNAL_LOST", "raised")]
    assert not signal.due(state, last, last.ts_ms + 600_000, ctx, cfg)  # raised: not again
    assert signal.on_silence(state, last, last.ts_ms + 600_000, ctx, cfg)[1] == []


# --- device alarms ---------------------------------------------------------------------


def test_device_alarm_step_one_incident_per_bit_while_it_stays_on():
    collision, overspeed = 1 << 29, 1 << 1
    flags = [0, collision, collision | overspeed, collision, 0]
    trace = [msgspec.structs.replace(obs(10 * i), alarm_flags=f) for i, f in enumerate(flags)]
    status = PermitStatus(permit=compiled(V, T0))
    run = drive(device_alarm.RULE, trace, permit=status)
    assert [(a.details["alarm"], a.state.value) for a in run.alerts] == [
        ("collision", "raised"), ("overspeed", "raised"), ("overspeed", "cleared"),
        ("collision", "cleared")]
    collided = run.alerts[0]
    assert collided.severity.value == "critical" and collided.details["un_number"] == "UN1017"
    assert collided.details["isolation_distance_m"] > 0
    assert run.state.incidents == {}


# --- plausibility ---------------------------------------------------------------------------


def test_plausibility_step_holds_a_jump_as_suspect_until_a_later_fix_agrees():
    near = located([Ping(vehicle_id=V, ts=T0, lon=121.40, lat=31.20, speed_kmh=50)])[0]
    far = [located([Ping(vehicle_id=V, ts=T0 + timedelta(seconds=s), lon=121.60, lat=31.20,
                         speed_kmh=50)])[0] for s in (10, 20)]
    run = drive(plausibility.RULE, [near, far[0]], PlausibilityConfig(max_speed_kmh=200))
    assert kinds(run.alerts) == [("IMPLAUSIBLE_JUMP", "raised")]
    assert run.state == far[0] and run.alerts[0].details["jump_m"] > 15_000
    # the engine keeps ``near`` as the last fix; the next one agrees with the suspect
    ctx = StepContext(vehicle_id=V, previous=near, emitted_at=T0)
    suspect, alerts = plausibility.step(run.state, far[1], ctx, PlausibilityConfig())
    assert alerts == [] and suspect is None  # a real relocation: accepted
