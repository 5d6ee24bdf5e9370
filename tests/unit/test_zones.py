"""Restricted zones: the contract, the spatial index, and the three zone rules."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import msgspec
import pytest
import shapely

from yrd_hazmat.core import hazard
from yrd_hazmat.core.engine import Reference, RulesConfig, advance
from yrd_hazmat.core.enrich import observe
from yrd_hazmat.core.geo.gcj02 import wgs84_to_gcj02
from yrd_hazmat.core.geo.jurisdiction import default_index
from yrd_hazmat.core.geo.projection import to_lonlat, to_metric
from yrd_hazmat.core.models import Ping
from yrd_hazmat.core.permits.status import PermitStatus
from yrd_hazmat.core.rules.speeding import SpeedingConfig
from yrd_hazmat.core.rules.zones import ZonesConfig
from yrd_hazmat.core.timeutil import CHINA_TZ
from tests.permit_trips import compiled
from yrd_hazmat.core.zones.index import DEEP, INSIDE, NEAR
from yrd_hazmat.core.codec import Rejection
from yrd_hazmat.core.zones.model import parse_zone
from yrd_hazmat.core.zones.registry import ZoneRegistry
from tests.factories import NO_PERMITS_REQUIRED

CENTRE = to_metric(121.40, 31.20)  # Shanghai, Minhang/Xuhui: far from any province border
CX, CY = float(CENTRE[0]), float(CENTRE[1])
MONDAY_10AM = datetime(2026, 11, 30, 10, 0, tzinfo=CHINA_TZ)
CFG = RulesConfig(
    zones=ZonesConfig(margin_m=30, min_inside_ms=20_000, min_outside_ms=20_000,
                      speeding_min_duration_ms=30_000),
    speeding=SpeedingConfig(min_duration_ms=30_000),
    permits=NO_PERMITS_REQUIRED,
)


def ring(half_m: float, dx: float = 0.0) -> list[list[float]]:
    """A square of side 2*half_m around the centre (shifted dx metres east), as lon/lat."""
    xs = np.array([-half_m, half_m, half_m, -half_m, -half_m]) + CX + dx
    ys = np.array([-half_m, -half_m, half_m, half_m, -half_m]) + CY
    lon, lat = to_lonlat(xs, ys)
    return [[float(a), float(b)] for a, b in zip(lon, lat)]


def feature(geometry: dict, **props) -> dict:
    base = {"zone_id": "z1", "name": "test zone", "kind": "city_core", "banned_classes": "all"}
    return {"type": "Feature", "geometry": geometry, "properties": base | props}


def square(half_m: float = 500, **props) -> dict:
    return feature({"type": "Polygon", "coordinates": [ring(half_m)]}, **props)


def registry(*features: dict) -> ZoneRegistry:
    reg = ZoneRegistry(margin_m=CFG.zones.margin_m)
    for f in features:
        zone = parse_zone(f)
        assert not isinstance(zone, Rejection), zone
        reg.put(zone)
    return reg


def at(seconds: float, dx: float, dy: float = 0.0, speed: float = 40.0, t0=MONDAY_10AM,
       crs: str = "WGS84") -> Ping:
    """A ping dx, dy metres from the centre."""
    lon, lat = (float(v) for v in to_lonlat(CX + dx, CY + dy))
    if crs == "GCJ02":
        lon, lat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    return Ping(vehicle_id="沪A55555", ts=t0 + timedelta(seconds=seconds), lon=lon, lat=lat,
                speed_kmh=speed, road_class="other", crs=crs)


def run(reg: ZoneRegistry, pings: list[Ping], state=None, cfg=CFG, permit=None):
    index = reg.index
    obs = observe(pings, default_index(), index)
    permits = {"沪A55555": permit} if permit is not None else {}
    out = advance(state, "沪A55555", obs, cfg, MONDAY_10AM,
                  Reference(zones=index.by_id, permits=permits))
    return out.state, out.alerts


def kinds(alerts) -> list[tuple[str, str]]:
    return [(a.type, a.state.value) for a in alerts]


# --- the contract ---------------------------------------------------------------


def test_a_valid_zone_parses_with_its_ban():
    zone = parse_zone(square(banned_classes=["2.3", "6.1"], schedule=[
        {"days": "weekdays", "start": "07:00", "end": "09:00"}], max_dwell_s=600))
    assert not isinstance(zone, Rejection)
    assert zone.banned == frozenset({"2.3", "6.1"}) and zone.windows[0].start == "07:00"
    assert zone.metric.area == pytest.approx(1_000_000, rel=0.01)  # metres, not degrees


@pytest.mark.parametrize(
    ("record", "reason", "words"),
    [
        (b"{oops", "bad_json", "malformed"),
        (square(banned_classes=["2.3", "12"]), "invalid", "banned_classes[1]"),
        (square(kind="prison"), "invalid", "kind"),
        (square(schedule=[{"start": "25:00", "end": "06:00"}]), "invalid", "start"),
        (square(schedule=[{"start": "07:00", "end": "07:00"}]), "invalid", "empty"),
        (square(schedule=[{"start": "07:00", "end": "09:00", "days": ["someday"]}]), "invalid", "days"),
        (feature({"type": "LineString", "coordinates": ring(100)[:2]}), "bad_geometry", "buffer_m"),
        (feature({"type": "Point", "coordinates": [121.4, 31.2]}), "bad_geometry", "Point"),
        (feature({"type": "Polygon", "coordinates": [[[31.2, 121.4], [31.3, 121.4], [31.3, 121.5],
                                                      [31.2, 121.4]]]}), "bad_geometry", "outside the YRD"),
        (feature({"type": "Polygon", "coordinates": [[[121.4, 31.2], [121.5, 31.2], [121.6, 31.2],
                                                      [121.4, 31.2]]]}), "bad_geometry", "invalid polygon"),
        (feature({"type": "Polygon", "coordinates": "nope"}), "bad_geometry", "GeoJSON"),
    ],
)
def test_bad_zones_are_rejected_with_a_reason(record, reason, words):
    result = parse_zone(record)
    assert isinstance(result, Rejection)
    assert result.reason == reason and words in result.error


def test_a_self_intersecting_zone_is_rejected_not_repaired():
    """A bow tie: make_valid would turn it into two triangles, which may not be the area the
    operator meant to ban; the record is rejected with shapely's reason instead."""
    a, b, c, d = ring(500)[:4]
    zone = parse_zone(feature({"type": "Polygon", "coordinates": [[a, c, b, d, a]]}))
    assert isinstance(zone, Rejection) and zone.reason == "bad_geometry"
    assert "Self-intersection" in zone.error and "not repaired" in zone.error


def test_key_must_match_zone_id():
    assert parse_zone(square(), key="other").reason == "bad_key"


def test_hazard_class_bans():
    assert hazard.is_banned("2.3", frozenset({"2"}))
    assert not hazard.is_banned("3", frozenset({"2.3", "6.1"}))
    assert hazard.is_banned(None, frozenset({"2.3"}))  # unknown cargo: assume the worst
    assert hazard.is_banned("9", frozenset({"all"}))
    assert not hazard.is_banned(None, frozenset())


# --- the index ------------------------------------------------------------------


def test_levels_follow_the_margins():
    reg = registry(square(500))
    x = np.array([CX, CX + 480, CX + 520, CX + 600])
    hits = reg.index.evaluate(x, np.full(4, CY))
    assert dict(zip(hits.point.tolist(), hits.level.tolist())) == {0: DEEP, 1: INSIDE, 2: NEAR}


def test_vectorised_levels_agree_with_plain_geometry():
    reg = registry(square(500), square(300, zone_id="z2", kind="school"))
    rng = np.random.default_rng(5)
    x, y = CX + rng.uniform(-700, 700, 3000), CY + rng.uniform(-700, 700, 3000)
    hits = reg.index.evaluate(x, y)
    for zone in reg.index.zones:
        mine = hits.point[np.array([reg.index.zones[z] is zone for z in hits.zone], dtype=bool)]
        inside = np.flatnonzero(shapely.contains_xy(zone.metric.buffer(30), x, y))
        assert set(mine.tolist()) == set(inside.tolist())


# --- ZONE_VIOLATION ---------------------------------------------------------------


def test_driving_through_a_zone_raises_then_clears():
    reg = registry(square(500))
    trace = [at(s, -900 + s * 10) for s in range(0, 200, 5)]  # 10 m/s west to east
    _, alerts = run(reg, trace)
    assert kinds(alerts) == [("ZONE_VIOLATION", "raised"), ("ZONE_VIOLATION", "cleared")]
    raised, cleared = alerts
    assert raised.severity.value == "critical" and raised.province == "SH"
    # on the edge at 40 s (x = -500); confirmed deeper than the margin at 45 s (x = -450)
    assert raised.ts == MONDAY_10AM + timedelta(seconds=45)
    assert raised.details["entered_at"] == (MONDAY_10AM + timedelta(seconds=40)).isoformat()
    assert raised.details["depth_m"] == pytest.approx(50, abs=1)
    assert raised.details["cargo_assumed_banned"] is True and raised.details["cargo_class"] is None
    # left at x=500 (140 s); confirmed beyond the margin (x >= 530) at 145 s
    assert cleared.ts == MONDAY_10AM + timedelta(seconds=145)
    assert cleared.incident_id == raised.incident_id and cleared.details["reason"] == "exited"


def test_jitter_along_the_edge_raises_nothing():
    reg = registry(square(500))
    jitter = [at(s, 500 + (8 if (s // 5) % 2 else -8)) for s in range(0, 600, 5)]
    _, alerts = run(reg, jitter)
    assert alerts == []


def test_jitter_at_the_edge_after_entry_does_not_clear():
    reg = registry(square(500))
    inside = [at(s, 0) for s in range(0, 30, 5)]
    jitter = [at(30 + s, 500 + (8 if (s // 5) % 2 else -8)) for s in range(0, 300, 5)]
    _, alerts = run(reg, inside + jitter)
    assert kinds(alerts) == [("ZONE_VIOLATION", "raised")]


def test_lingering_inside_near_the_edge_confirms_entry_after_min_time():
    reg = registry(square(500))
    _, alerts = run(reg, [at(s, 490) for s in range(0, 60, 5)])  # 10 m inside, never deep
    assert kinds(alerts) == [("ZONE_VIOLATION", "raised")]
    assert alerts[0].ts == MONDAY_10AM + timedelta(seconds=20)
    assert alerts[0].details["entered_at"] == MONDAY_10AM.isoformat()


def test_ban_that_starts_while_the_truck_is_inside():
    reg = registry(square(schedule=[{"days": "weekdays", "start": "07:00", "end": "09:00"}]))
    t0 = MONDAY_10AM.replace(hour=6, minute=58)
    trace = [at(s, 0, t0=t0) for s in range(0, 2 * 3600 + 300, 60)]
    _, alerts = run(reg, trace)
    assert kinds(alerts) == [("ZONE_VIOLATION", "raised"), ("ZONE_VIOLATION", "cleared")]
    assert alerts[0].ts == t0.replace(hour=7, minute=0)
    assert alerts[1].ts == t0.replace(hour=9, minute=0)
    assert alerts[1].details["reason"] == "ban_not_in_force"


def test_no_alert_outside_the_schedule_or_for_allowed_cargo():
    weekend_only = registry(square(schedule=[{"days": "weekends", "start": "00:00", "end": "24:00"}]))
    _, alerts = run(weekend_only, [at(s, 0) for s in range(0, 60, 5)])  # a Monday
    assert alerts == []
    gases_banned = registry(square(banned_classes=["2.1", "2.3"]))
    trace = [at(s, 0) for s in range(0, 60, 5)]
    _, flammable_liquid = run(gases_banned, trace, permit=_permit_for_class("3"))
    _, toxic_gas = run(gases_banned, trace, permit=_permit_for_class("2.3"))
    assert zone_kinds(flammable_liquid) == []  # class 3 is allowed in this zone
    assert zone_kinds(toxic_gas) == [("ZONE_VIOLATION", "raised")]  # the same trace, banned


def _permit_for_class(hazard_class: str) -> PermitStatus:
    """A valid permit of the test truck carrying ``hazard_class`` (its route is elsewhere:
    only the zone alerts are looked at)."""
    return PermitStatus(permit=compiled("沪A55555", MONDAY_10AM, hazard_class=hazard_class))


def zone_kinds(alerts) -> list[tuple[str, str]]:
    return [k for k in kinds(alerts) if k[0].startswith("ZONE_")]


def test_multipolygon_zone():
    two = feature({"type": "MultiPolygon", "coordinates": [[ring(200)], [ring(200, dx=3000)]]})
    _, alerts = run(registry(two), [at(s, 3000) for s in range(0, 30, 5)])
    assert kinds(alerts) == [("ZONE_VIOLATION", "raised")]


def test_zone_with_a_hole():
    holed = feature({"type": "Polygon", "coordinates": [ring(1000), ring(300)[::-1]]})
    reg = registry(holed)
    _, in_hole = run(reg, [at(s, 0) for s in range(0, 60, 5)])
    _, in_ring = run(reg, [at(s, 600) for s in range(0, 60, 5)])
    assert in_hole == [] and kinds(in_ring) == [("ZONE_VIOLATION", "raised")]


def test_gcj02_zone_and_gcj02_pings_meet_wgs84_ones():
    gcj_ring = [[float(v) for v in wgs84_to_gcj02(lon, lat)] for lon, lat in ring(500)]
    drawn_on_amap = feature({"type": "Polygon", "coordinates": [gcj_ring]}, crs="GCJ02")
    zone = parse_zone(drawn_on_amap)
    assert zone.metric.area == pytest.approx(1_000_000, rel=0.01)
    _, alerts = run(registry(drawn_on_amap), [at(s, 0) for s in range(0, 30, 5)])
    assert kinds(alerts) == [("ZONE_VIOLATION", "raised")]
    # a GCJ-02 ping 700 m east (outside), whose raw coordinates would fall ~450 m further east
    _, alerts = run(registry(square(500)), [at(s, 200, crs="GCJ02") for s in range(0, 30, 5)])
    assert kinds(alerts) == [("ZONE_VIOLATION", "raised")]


def test_zone_removed_while_inside_clears():
    reg = registry(square(500))
    state, first = run(reg, [at(s, 0) for s in range(0, 30, 5)])
    reg.delete("z1")
    state, second = run(reg, [at(s, 0) for s in range(30, 60, 5)], state=state)
    assert kinds(first) == [("ZONE_VIOLATION", "raised")]
    assert kinds(second) == [("ZONE_VIOLATION", "cleared")]
    assert second[0].details["reason"] == "zone_removed" and state.zones == {}


# --- ZONE_DWELL and ZONE_SPEEDING ---------------------------------------------------


def test_dwell_longer_than_allowed():
    reg = registry(square(banned_classes=[], max_dwell_s=300))
    _, alerts = run(reg, [at(s, 0, speed=0) for s in range(0, 420, 30)] + [at(500, 2000)])
    assert kinds(alerts) == [("ZONE_DWELL", "raised"), ("ZONE_DWELL", "cleared")]
    assert alerts[0].ts == MONDAY_10AM + timedelta(seconds=330)
    assert alerts[0].details["max_dwell_s"] == 300


def test_zone_speed_limit_lower_than_the_road_wins():
    reg = registry(square(banned_classes=[], speed_limit_kmh=30))
    _, alerts = run(reg, [at(s, 0, speed=45) for s in range(0, 60, 5)] + [at(60, 0, speed=20)])
    assert kinds(alerts) == [("ZONE_SPEEDING", "raised"), ("ZONE_SPEEDING", "cleared")]
    assert alerts[0].details["limit_kmh"] == 30 and alerts[0].details["zone_id"] == "z1"


def test_zone_limit_above_the_road_limit_leaves_it_to_speeding():
    reg = registry(square(banned_classes=[], speed_limit_kmh=100))
    _, alerts = run(reg, [at(s, 0, speed=70) for s in range(0, 60, 5)])
    assert kinds(alerts) == [("SPEEDING", "raised")]  # 70 > 60 on an "other" road


def test_zone_speeding_gap_restarts_the_count_as_configured():
    """ZONE_SPEEDING honours the speeding gap setting (it could not be configured before):
    over the limit at 0-20 s, silent for 2 minutes, over again from 140 s."""
    reg = registry(square(banned_classes=[], speed_limit_kmh=30))
    pings = [at(s, 0, speed=45) for s in (0, 10, 20)] + [at(s, 0, speed=45)
                                                          for s in range(140, 200, 10)]
    _, default_gap = run(reg, pings)  # 5 minutes: the gap is one episode
    short = msgspec.structs.replace(CFG, zones=msgspec.structs.replace(
        CFG.zones, speeding_max_gap_ms=60_000))
    _, short_gap = run(reg, pings, cfg=short)  # 1 minute: the count restarts at 140 s
    assert kinds(default_gap) == kinds(short_gap) == [("ZONE_SPEEDING", "raised")]
    assert default_gap[0].ts == MONDAY_10AM + timedelta(seconds=140)
    assert short_gap[0].ts == MONDAY_10AM + timedelta(seconds=170)
