"""Route permits: the contract, NO_VALID_PERMIT, PERMIT_TIME_WINDOW, ROUTE_DEVIATION, handovers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from yrd_hazmat.core.codec import Rejection
from yrd_hazmat.core.engine import Reference, RulesConfig, advance, route_positions_of
from yrd_hazmat.core.enrich import observe
from yrd_hazmat.core.geo.jurisdiction import default_index, province_shapes_metric
from yrd_hazmat.core.permits.model import parse_permit
from yrd_hazmat.core.permits.status import PermitStatus
from yrd_hazmat.core.permits.route import route_position
from yrd_hazmat.core.rules.permits import PermitsConfig
from yrd_hazmat.core.rules.plausibility import PlausibilityConfig
from yrd_hazmat.core.timeutil import CHINA_TZ, to_ms
from tests.permit_trips import ROUTE_M, along_route, compiled, permit_doc
from yrd_hazmat.core.geo.projection import to_lonlat
from yrd_hazmat.core.zones.model import parse_zone
from yrd_hazmat.core.zones.registry import ZoneRegistry

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=CHINA_TZ)
V = "苏A66666"
BORDER_M = 264_050  # where the G2 route passes from Jiangsu into Shanghai
CFG = RulesConfig()


def run(pings, status: PermitStatus | None, cfg=CFG, state=None, zones=None):
    index = (zones or ZoneRegistry(margin_m=CFG.zones.margin_m)).index
    obs = observe(pings, default_index(), index)
    ref = Reference(permits={V: status} if status else {}, provinces=province_shapes_metric(),
                    zones=index.by_id)
    out = advance(state, V, obs, cfg, T0, ref)
    return out


def kinds(alerts, *types):
    return [(a.type, a.state.value) for a in alerts if not types or a.type in types]


# --- the contract ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        ({"un_number": "1017"}, "invalid", "un_number"),
        ({"hazard_class": "2.7"}, "invalid", "hazard_class"),
        ({"valid_until": (T0 - timedelta(hours=3)).isoformat()}, "invalid", "valid_until"),
        ({"provinces": ["SH", "BJ"]}, "invalid", "provinces"),
        ({"route": {"type": "LineString", "coordinates": [[31.2, 121.4], [32.0, 118.8]]}},
         "bad_geometry", "leaves the YRD"),
        ({"route": {"type": "LineString", "coordinates": [[121.4, 31.2]]}}, "invalid", "route"),
        ({"corridor_m": 0}, "invalid", "corridor_m"),
    ],
)
def test_bad_permits_are_rejected_with_a_reason(change, reason, words):
    result = parse_permit(json.dumps(permit_doc(V, T0, **change)).encode(), default_index())
    assert isinstance(result, Rejection) and result.reason == reason and words in result.error


def test_permit_key_must_be_its_vehicle():
    raw = json.dumps(permit_doc(V, T0)).encode()
    assert parse_permit(raw, default_index(), key="沪B00000").reason == "bad_key"


def test_route_borders_are_found():
    permit = compiled(V, T0)
    assert [(b.from_province, b.to_province) for b in permit.borders] == [("JS", "SH")]
    assert permit.borders[0].lon == pytest.approx(121.13, abs=0.05)


# --- NO_VALID_PERMIT and PERMIT_TIME_WINDOW ------------------------------------------


def test_no_permit_while_moving_raises_after_a_minute():
    out = run(along_route(V, T0, 100_000, 103_000), None)  # 150 s at 72 km/h
    assert kinds(out.alerts) == [("NO_VALID_PERMIT", "raised")]
    alert = out.alerts[0]
    assert alert.severity.value == "critical" and alert.ts == T0 + timedelta(seconds=60)
    assert alert.details["reason"] == "none" and alert.permit_id is None


def test_vehicles_not_required_to_hold_one_are_left_alone():
    cfg = RulesConfig(permits=PermitsConfig(required_pattern=r"沪.*"))
    assert run(along_route(V, T0, 100_000, 103_000), None, cfg).alerts == []


def test_a_parked_truck_without_permit_is_not_flagged():
    [here] = along_route(V, T0, 100_000, 100_001)
    parked = [here.__class__(**{**{f: getattr(here, f) for f in here.__struct_fields__},
                                "ts": T0 + timedelta(seconds=30 * i), "speed_kmh": 0.0})
              for i in range(20)]
    assert run(parked, None).alerts == []


def test_revoked_permit():
    permit = compiled(V, T0)
    revoked = PermitStatus(permit=permit, revoked_at_ms=to_ms(T0 + timedelta(seconds=30)))
    out = run(along_route(V, T0, 100_000, 104_000), revoked)
    assert kinds(out.alerts) == [("NO_VALID_PERMIT", "raised")]
    alert = out.alerts[0]
    assert alert.ts == T0 + timedelta(seconds=90)  # revoked at 30 s, moving 60 s since
    assert alert.details["reason"] == "revoked" and alert.details["permit_id"] == permit.permit_id
    assert alert.permit_id == permit.permit_id and alert.un_number == "UN1017"


def test_expired_permit_then_renewed():
    expired = PermitStatus(permit=compiled(V, T0, valid_until=(T0 - timedelta(minutes=5)).isoformat()))
    first = run(along_route(V, T0, 100_000, 103_000), expired)
    assert kinds(first.alerts) == [("PERMIT_TIME_WINDOW", "raised")]
    assert first.alerts[0].details["reason"] == "expired"
    assert first.alerts[0].hazard_class == "2.3"  # the cargo is still known
    renewed = PermitStatus(permit=compiled(V, T0, permit_id="JS-2026-RENEWED"))
    later = along_route(V, T0 + timedelta(minutes=5), 103_000, 104_000)
    second = run(later, renewed, state=first.state)
    assert kinds(second.alerts) == [("PERMIT_TIME_WINDOW", "cleared")]


def test_not_yet_valid_permit():
    early = PermitStatus(permit=compiled(V, T0, valid_from=(T0 + timedelta(hours=1)).isoformat()))
    out = run(along_route(V, T0, 100_000, 103_000), early)
    assert kinds(out.alerts) == [("PERMIT_TIME_WINDOW", "raised")]
    assert out.alerts[0].details["reason"] == "not_yet_valid"


def test_zone_bans_use_the_permits_hazard_class():
    """A zone on the route banning toxic gases: the chlorine tanker (2.3) raises
    ZONE_VIOLATION driving through it; the same truck and trip carrying a flammable
    liquid (3) does not; with no permit the cargo is unknown and counts as banned."""
    gases_banned = _zone_on_route(101_500, half_m=800, banned_classes=["2.3"])
    trip = along_route(V, T0, 100_000, 103_000)
    chlorine = run(trip, PermitStatus(permit=compiled(V, T0)), zones=gases_banned)
    petrol = run(trip, PermitStatus(permit=compiled(V, T0, hazard_class="3",
                                                    un_number="UN1203")), zones=gases_banned)
    unknown = run(trip, PermitStatus(), zones=gases_banned)
    assert kinds(chlorine.alerts, "ZONE_VIOLATION")[:1] == [("ZONE_VIOLATION", "raised")]
    assert chlorine.alerts[0].details["cargo_class"] == "2.3"
    assert kinds(petrol.alerts, "ZONE_VIOLATION") == []
    assert kinds(unknown.alerts, "ZONE_VIOLATION")[:1] == [("ZONE_VIOLATION", "raised")]


def _zone_on_route(along_m: float, half_m: float, **props) -> ZoneRegistry:
    """A square zone centred on the permit's route ``along_m`` from its start."""
    centre = ROUTE_M.interpolate(along_m)
    corners = [(centre.x + dx, centre.y + dy) for dx, dy in
               ((-half_m, -half_m), (half_m, -half_m), (half_m, half_m), (-half_m, half_m),
                (-half_m, -half_m))]
    lon, lat = to_lonlat([c[0] for c in corners], [c[1] for c in corners])
    feature = {"type": "Feature",
               "geometry": {"type": "Polygon",
                            "coordinates": [[[float(a), float(b)] for a, b in zip(lon, lat)]]},
               "properties": {"zone_id": "toxic-gas-ban", "name": "test", "kind": "city_core"}
               | props}
    registry = ZoneRegistry(margin_m=CFG.zones.margin_m)
    zone = parse_zone(feature)
    assert not isinstance(zone, Rejection), zone
    registry.put(zone)
    return registry


# --- ROUTE_DEVIATION ---------------------------------------------------------------


def test_deviation_raised_after_a_minute_off_the_corridor_and_cleared_back_on_it():
    status = PermitStatus(permit=compiled(V, T0))
    on = along_route(V, T0, 100_000, 101_000)  # 50 s on the route
    off = along_route(V, T0 + timedelta(seconds=50), 101_000, 104_000, offset_m=900)  # 150 s
    back = along_route(V, T0 + timedelta(seconds=200), 104_000, 106_000)  # 100 s
    # the trace steps 900 m sideways between two pings: allow it as a plausible move
    lenient = RulesConfig(plausibility=PlausibilityConfig(max_speed_kmh=500))
    out = run(on + off + back, status, lenient)
    assert kinds(out.alerts) == [("ROUTE_DEVIATION", "raised"), ("ROUTE_DEVIATION", "cleared")]
    raised, cleared = out.alerts
    assert raised.ts == T0 + timedelta(seconds=110)  # off since 50 s
    assert 500 < raised.details["distance_m"] <= 900  # 900 m north of a route running NW-SE
    assert raised.details["corridor_m"] == 500 and len(raised.details["nearest_route_point"]) == 2
    assert cleared.ts == T0 + timedelta(seconds=230)  # back since 200 s, 30 s to clear


def test_route_positions_of_a_batch_are_those_of_each_ping_alone():
    """The shell places a whole batch on its routes in one vectorised call; the alerts must
    be exactly those of placing each ping on its own (the core's fallback)."""
    status = PermitStatus(permit=compiled(V, T0))
    on = along_route(V, T0, 100_000, 101_000)
    off = along_route(V, T0 + timedelta(seconds=50), 101_000, 104_000, offset_m=900)
    back = along_route(V, T0 + timedelta(seconds=200), 104_000, 106_000)
    obs = observe(on + off + back, default_index())
    batched = route_positions_of({V: obs}, {V: status})
    assert [batched[(V, o.ts_ms)] for o in obs] == [route_position(status, o) for o in obs]
    lenient = RulesConfig(plausibility=PlausibilityConfig(max_speed_kmh=500))
    alone = advance(None, V, obs, lenient, T0, Reference(permits={V: status}))
    together = advance(None, V, obs, lenient, T0,
                       Reference(permits={V: status}, route_positions=batched))
    assert together.alerts == alone.alerts and kinds(together.alerts) == [
        ("ROUTE_DEVIATION", "raised"), ("ROUTE_DEVIATION", "cleared")]


def test_jitter_at_the_corridor_edge_raises_nothing():
    status = PermitStatus(permit=compiled(V, T0))
    pings = along_route(V, T0, 100_000, 110_000)
    jittered = [p.__class__(**{**{f: getattr(p, f) for f in p.__struct_fields__},
                               "lat": p.lat + (0.0047 if i % 2 else 0.0043)})
                for i, p in enumerate(pings)]  # ~475 m and ~520 m north, alternately
    assert kinds(run(jittered, status).alerts, "ROUTE_DEVIATION") == []


# --- handovers -----------------------------------------------------------------------


def test_trip_across_the_border_gives_one_notice_and_one_handover():
    status = PermitStatus(permit=compiled(V, T0))
    out = run(along_route(V, T0, BORDER_M - 20_000, BORDER_M + 8_000), status)
    assert kinds(out.alerts) == [
        ("HANDOVER_EXPECTED", "raised"), ("PROVINCE_HANDOVER", "raised"),
        ("HANDOVER_EXPECTED", "cleared")]
    expected, handover, _ = out.alerts
    crossed_at = T0 + timedelta(seconds=20_000 / 20)  # 72 km/h = 20 m/s
    assert expected.province == "SH" and expected.details["to_province"] == "SH"
    assert abs(datetime.fromisoformat(expected.details["eta"]) - crossed_at) < timedelta(seconds=60)
    assert expected.ts - T0 == timedelta(seconds=100)  # 15 min (18 km) ahead of the border
    assert handover.province == "SH" and handover.severity.value == "info"
    assert (handover.details["from_province"], handover.details["to_province"]) == ("JS", "SH")
    assert abs(datetime.fromisoformat(handover.details["crossing_time"]) - crossed_at) < timedelta(seconds=15)
    assert handover.permit_id == status.permit.permit_id and handover.un_number == "UN1017"
    [event] = out.handovers
    assert event.handover_id == handover.incident_id and event.cargo_name == "chlorine, liquefied"


def test_entering_a_province_the_permit_does_not_cover():
    status = PermitStatus(permit=compiled(V, T0, provinces=["JS"]))
    out = run(along_route(V, T0, BORDER_M - 2_000, BORDER_M + 5_000), status)
    assert kinds(out.alerts, "HANDOVER_NOT_PERMITTED") == [("HANDOVER_NOT_PERMITTED", "raised")]
    alert = next(a for a in out.alerts if a.type == "HANDOVER_NOT_PERMITTED")
    assert alert.severity.value == "critical" and alert.province == "SH"
    # Shanghai is still told the truck is coming: all the more reason to know.
    assert kinds(out.alerts, "HANDOVER_EXPECTED") == [("HANDOVER_EXPECTED", "raised"),
                                                      ("HANDOVER_EXPECTED", "cleared")]


def test_leaving_and_re_entering_a_province():
    status = PermitStatus(permit=compiled(V, T0))
    there = along_route(V, T0, BORDER_M - 3_000, BORDER_M + 4_000)
    back = along_route(V, there[-1].ts + timedelta(seconds=10), BORDER_M + 4_000, BORDER_M - 4_000)
    out = run(there + back, status)
    crossings = [(h.from_province, h.to_province) for h in out.handovers]
    assert crossings == [("JS", "SH"), ("SH", "JS")]


def test_crossing_seen_only_across_a_gap_is_still_a_handover():
    status = PermitStatus(permit=compiled(V, T0))
    pings = along_route(V, T0, BORDER_M - 6_000, BORDER_M + 6_000,
                        skip=(BORDER_M - 4_000, BORDER_M + 4_000))  # 8 km without signal
    out = run(pings, status)
    [event] = out.handovers
    assert (event.from_province, event.to_province) == ("JS", "SH")
    assert event.gap_s == pytest.approx(8_400 / 20, abs=1)  # last fix 4.2 km before, next 4.2 after
    crossing = datetime.fromisoformat(event.crossing_time)
    assert abs(crossing - (T0 + timedelta(seconds=6_000 / 20))) < timedelta(seconds=30)
    assert event.crossing_lon == pytest.approx(121.13, abs=0.05)


def test_driving_along_the_border_does_not_hand_over_back_and_forth():
    status = PermitStatus(permit=compiled(V, T0))
    start = along_route(V, T0, BORDER_M - 3_000, BORDER_M - 100)  # in JS, up to the border
    wobble = []
    for i in range(40):  # 100 m either side of the border, every 10 s for 400 s
        target = BORDER_M + (100 if i % 2 else -100)
        wobble += along_route(V, start[-1].ts + timedelta(seconds=10 * (i + 1)), target, target + 1)
    out = run(start + wobble, status)
    assert out.handovers == []


def test_return_trip_along_the_route_is_noticed_for_the_province_ahead():
    status = PermitStatus(permit=compiled(V, T0))
    home = along_route(V, T0, BORDER_M + 15_000, BORDER_M - 3_000)  # Shanghai back to Jiangsu
    out = run(home, status)
    assert kinds(out.alerts) == [
        ("HANDOVER_EXPECTED", "raised"), ("PROVINCE_HANDOVER", "raised"),
        ("HANDOVER_EXPECTED", "cleared")]
    expected = out.alerts[0]
    assert expected.province == "JS" and expected.details["from_province"] == "SH"
    assert [(h.from_province, h.to_province) for h in out.handovers] == [("SH", "JS")]
