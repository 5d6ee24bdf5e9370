"""Bans enforced between fixes (issue #11): the straight line between two fixes is checked
against the zones, so a narrow zone crossed, or a tunnel driven without signal, with no fix
inside it still raises ZONE_VIOLATION (inferred)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from yrd_hazmat.core.engine import Reference, RulesConfig, advance
from yrd_hazmat.core.enrich import observe
from yrd_hazmat.core.geo.jurisdiction import default_index
from yrd_hazmat.core.geo.projection import to_lonlat, to_metric
from yrd_hazmat.core.models import Ping
from yrd_hazmat.core.permits.status import PermitStatus
from yrd_hazmat.core.rules import zone_crossing
from yrd_hazmat.core.rules.context import StepContext
from yrd_hazmat.core.rules.permits import PermitsConfig
from yrd_hazmat.core.rules.signal import SignalConfig
from yrd_hazmat.core.timeutil import CHINA_TZ, to_ms
from yrd_hazmat.core.zones.model import parse_zone
from yrd_hazmat.core.zones.registry import ZoneRegistry
from yrd_hazmat.core.zones.segments import SegmentLimits, crossings
from tests.permit_trips import compiled

V = "沪A66666"
CX, CY = (float(v) for v in to_metric(121.40, 31.20))  # Shanghai, far from any border
MONDAY_9AM = datetime(2026, 11, 30, 9, 0, tzinfo=CHINA_TZ)
CFG = RulesConfig(permits=PermitsConfig(required_pattern=""))


def box(x0: float, y0: float, x1: float, y1: float, **props) -> dict:
    """A zone covering [x0, x1] x [y0, y1] metres from the centre (every class banned)."""
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    ring = [[float(v) for v in to_lonlat(CX + x, CY + y)] for x, y in corners]
    base = {"zone_id": "strip", "name": "water-source strip", "kind": "water_source",
            "banned_classes": "all"}
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": base | props}


def registry(*features: dict) -> ZoneRegistry:
    reg = ZoneRegistry(margin_m=30)
    for feature in features:
        reg.put(parse_zone(feature))
    return reg


def fix(seconds: float, x: float, y: float = 0.0, speed: float = 60.0, t0=MONDAY_9AM) -> Ping:
    lon, lat = (float(v) for v in to_lonlat(CX + x, CY + y))
    return Ping(vehicle_id=V, ts=t0 + timedelta(seconds=seconds), lon=lon, lat=lat,
                speed_kmh=speed, road_class="expressway", status_flags=3)


def run(reg: ZoneRegistry, pings: list[Ping], cfg=CFG, permit=None):
    index = reg.index
    obs = observe(pings, default_index(), index)
    permits = {V: permit} if permit is not None else {}
    return advance(None, V, obs, cfg, MONDAY_9AM,
                   Reference(zones=index.by_id, zone_index=index, permits=permits))


def kinds(alerts) -> list[tuple[str, str]]:
    return [(a.type, a.state.value) for a in alerts]


# a 100 m-wide strip running north-south through the centre
STRIP = box(-50, -2000, 50, 2000)


def test_a_strip_crossed_between_two_fixes_raises_and_clears_an_inferred_violation():
    # 30 s apart at 96 km/h: 400 m west of the strip, then 400 m east of it
    out = run(registry(STRIP), [fix(0, -450), fix(30, 350)])
    assert kinds(out.alerts) == [("ZONE_VIOLATION", "raised"), ("ZONE_VIOLATION", "cleared")]
    raised, cleared = out.alerts
    assert raised.details["inferred"] is True and raised.severity.value == "critical"
    assert raised.details["zone_id"] == "strip" and raised.details["cargo_assumed_banned"]
    # enters at 400 of 800 m (15 s), leaves at 500 m (18.75 s): interpolated along the line
    assert raised.ts == MONDAY_9AM + timedelta(seconds=15)
    assert cleared.ts == MONDAY_9AM + timedelta(seconds=18.75)
    assert raised.details["inside_s"] == 3.75 and raised.details["gap_s"] == 30
    entry_lon, entry_lat = raised.details["entry_point"]
    assert (raised.lon, raised.lat) == (entry_lon, entry_lat)
    assert entry_lon == pytest.approx(float(to_lonlat(CX - 50, CY)[0]), abs=1e-5)
    assert cleared.incident_id == raised.incident_id and cleared.details["reason"] == "exited"
    assert out.state.zones == {}  # no fix inside: the zone rule tracks nothing


def test_the_same_crossing_replayed_gives_the_same_ids_and_a_duplicate_nothing():
    reg = registry(STRIP)
    first = run(reg, [fix(0, -450), fix(30, 350)])
    again = run(reg, [fix(0, -450), fix(30, 350), fix(30, 350)])
    assert [a.alert_id for a in again.alerts] == [a.alert_id for a in first.alerts]


def test_a_tunnel_driven_without_signal_is_inferred_and_named_by_the_signal_alert():
    tunnel = box(0, -40, 3000, 40, zone_id="tunnel", name="Yangtze tunnel", kind="tunnel")
    cfg = RulesConfig(permits=PermitsConfig(required_pattern=""),
                      signal=SignalConfig(lost_after_ms=60_000))
    # at 72 km/h (20 m/s): 200 m before the portal, nothing for 3 min 20 s, 800 m beyond the exit
    pings = [fix(0, -400, speed=72), fix(10, -200, speed=72), fix(210, 3800, speed=72)]
    out = run(registry(tunnel), pings, cfg)
    assert kinds(out.alerts) == [("ZONE_VIOLATION", "raised"), ("ZONE_VIOLATION", "cleared"),
                                 ("SIGNAL_LOST", "raised"), ("SIGNAL_LOST", "cleared")]
    violation, exited, lost, restored = out.alerts
    assert violation.details["zone_kind"] == "tunnel" and violation.details["gap_s"] == 200
    assert violation.ts == MONDAY_9AM + timedelta(seconds=20)  # the portal, 200 m on at 20 m/s
    assert exited.ts == MONDAY_9AM + timedelta(seconds=170)
    [inside] = restored.details["zones_crossed"]
    assert inside["zone_id"] == "tunnel"
    assert inside["entered_at"] == violation.details["entered_at"]
    assert inside["exited_at"] == violation.details["exited_at"]


def test_cutting_a_corner_by_less_than_the_margin_raises_nothing():
    square = box(0, 0, 1000, 1000, zone_id="square")
    # the line cuts the south-west corner 20 m deep (margin 30 m)...
    grazing = run(registry(square), [fix(0, -200, 240), fix(30, 240, -200)])
    assert grazing.alerts == []
    # ...and 60 m deep
    cutting = run(registry(square), [fix(0, -200, 320), fix(30, 320, -200)])
    assert kinds(cutting.alerts) == [("ZONE_VIOLATION", "raised"), ("ZONE_VIOLATION", "cleared")]


def test_a_ban_that_starts_between_the_fixes_counts_if_the_truck_was_inside_then():
    # inside from 09:59:56.25 to 10:00:03.75 (fixes at 09:59 and 10:01, 1.6 km apart)
    t0 = MONDAY_9AM + timedelta(minutes=59)
    pings = [fix(0, -800, t0=t0), fix(120, 800, t0=t0)]

    def ban(start: str, end: str):
        return run(registry(box(-50, -2000, 50, 2000, schedule=[
            {"days": "weekdays", "start": start, "end": end}])), pings).alerts

    from_ten = ban("10:00", "12:00")
    assert kinds(from_ten)[0] == ("ZONE_VIOLATION", "raised")
    assert from_ten[0].details["in_force_from"] == (MONDAY_9AM + timedelta(hours=1)).isoformat()
    assert ban("10:05", "12:00") == []  # starts after the truck left
    assert ban("08:00", "09:59") == []  # ended before it entered
    assert kinds(ban("08:00", "10:00"))[0] == ("ZONE_VIOLATION", "raised")


def test_a_cargo_class_the_zone_allows_passes_through_without_an_alert():
    gases = registry(box(-50, -2000, 50, 2000, banned_classes=["2.3"]))
    pings = [fix(0, -450), fix(30, 350)]
    petrol = PermitStatus(permit=compiled(V, MONDAY_9AM, hazard_class="3", un_number="UN1203"))
    chlorine = PermitStatus(permit=compiled(V, MONDAY_9AM))  # class 2.3
    assert run(gases, pings, permit=petrol).alerts == []
    banned = run(gases, pings, permit=chlorine).alerts
    assert kinds(banned)[0] == ("ZONE_VIOLATION", "raised")
    assert banned[0].details["cargo_class"] == "2.3" and banned[0].un_number == "UN1017"


def test_a_line_that_is_no_plausible_path_is_not_checked():
    reg = registry(STRIP)
    slow_gap = [fix(0, -450), fix(1200, 350)]  # 20 min between the fixes (limit 15)
    assert [a.type for a in run(reg, slow_gap).alerts] == ["SIGNAL_LOST", "SIGNAL_LOST"]
    strict = RulesConfig(permits=PermitsConfig(required_pattern=""),
                         segments=SegmentLimits(max_speed_kmh=80))
    assert run(reg, [fix(0, -450), fix(30, 350)], strict).alerts == []  # 96 km/h > 80


def test_a_line_that_ends_inside_enters_at_the_interpolated_entry_and_stays_open():
    wide = registry(box(-50, -2000, 950, 2000, max_dwell_s=20))
    out = run(wide, [fix(0, -450), fix(30, 350), fix(40, 450)])
    assert kinds(out.alerts) == [("ZONE_VIOLATION", "raised"), ("ZONE_DWELL", "raised")]
    violation, dwell = out.alerts
    assert "inferred" not in violation.details  # a fix is inside: the zone rule's alert
    assert violation.ts == MONDAY_9AM + timedelta(seconds=30)
    assert violation.details["entered_at"] == (MONDAY_9AM + timedelta(seconds=15)).isoformat()
    assert dwell.ts == MONDAY_9AM + timedelta(seconds=40)  # 25 s inside since the entry
    assert out.state.zones["strip"].inside


def test_the_rule_through_its_own_step():
    reg = registry(STRIP)
    a, b = observe([fix(0, -450), fix(30, 350)], default_index(), reg.index)
    [crossed] = crossings(reg.index, [(a, b)])
    ctx = StepContext(vehicle_id=V, previous=a, emitted_at=MONDAY_9AM,
                      zones=reg.index.by_id, crossings=crossed)
    state, alerts = zone_crossing.step(None, b, ctx)
    assert state is None and kinds(alerts) == [("ZONE_VIOLATION", "raised"),
                                               ("ZONE_VIOLATION", "cleared")]
    assert zone_crossing.step(None, b, StepContext(vehicle_id=V, previous=a,
                                                   emitted_at=MONDAY_9AM))[1] == []
    assert to_ms(alerts[0].ts) == a.ts_ms + 15_000


def test_route_deviation_counts_from_when_the_line_left_the_corridor():
    from yrd_hazmat.core.permits.route import route_position
    from tests.permit_trips import along_route

    t0 = MONDAY_9AM
    status = PermitStatus(permit=compiled(V, t0))  # corridor 500 m
    # a fix every 40 s at 72 km/h; from 120 s on, 1 km north of the route
    on = along_route(V, t0, 100_000, 103_200, every_s=40)
    off = along_route(V, t0 + timedelta(seconds=160), 103_200, 108_000, every_s=40,
                      offset_m=1000)
    obs = observe(on + off, default_index())
    out = advance(None, V, obs, CFG, t0, Reference(permits={V: status}))
    [raised] = [a for a in out.alerts if a.type == "ROUTE_DEVIATION"]
    last_on, first_off = obs[len(on) - 1], obs[len(on)]
    d0 = route_position(status, last_on).distance_m
    d1 = route_position(status, first_off).distance_m
    assert d0 <= 500 < d1
    left = last_on.ts_ms + round((first_off.ts_ms - last_on.ts_ms) * (500 - d0) / (d1 - d0))
    assert to_ms(datetime.fromisoformat(raised.details["since"])) == left
    assert left < first_off.ts_ms  # earlier than the first fix off the corridor
