"""FATIGUE_DRIVING and PROLONGED_STOP over event time."""

from __future__ import annotations

from datetime import timedelta

from yrd_hazmat.core.engine import Reference, advance
from yrd_hazmat.core.observation import Observation
from yrd_hazmat.core.zones.model import parse_zone
from tests.factories import RULES, SHANGHAI, T0, obs

V = "沪A55555"
ACC_OFF = 0b10  # position fixed, ignition off


def with_(o: Observation, **changes) -> Observation:
    return Observation(**({f: getattr(o, f) for f in o.__struct_fields__} | changes))


def drive(start_s: int, end_s: int, every_s: int = 60, speed: float = 70.0, x0: float = 0.0):
    """Driving east at ``speed`` from ``start_s`` to ``end_s`` (positions consistent with it)."""
    return [with_(obs(t, speed), x_m=x0 + (t - start_s) * speed / 3.6) for t in range(start_s, end_s, every_s)]


def park(start_s: int, end_s: int, every_s: int = 60, x: float = 0.0, acc_off: bool = True):
    return [with_(obs(t, 0.0), x_m=x, status_flags=ACC_OFF if acc_off else 3)
            for t in range(start_s, end_s, every_s)]


def types(out, kind):
    return [(a.state.value, a.ts) for a in out.alerts if a.type == kind]


def test_more_than_four_hours_at_the_wheel():
    out = advance(None, V, drive(0, 5 * 3600), RULES, T0)
    assert types(out, "FATIGUE_DRIVING") == [("raised", T0 + timedelta(hours=4, minutes=1))]


def test_short_breaks_do_not_reset_the_clock_but_a_20_minute_rest_does():
    h = 3600
    short_breaks = drive(0, 2 * h) + park(2 * h, 2 * h + 600) + drive(2 * h + 600, 4 * h + 900)
    out = advance(None, V, short_breaks, RULES, T0)
    assert [s for s, _ in types(out, "FATIGUE_DRIVING")] == ["raised"]
    rested = drive(0, 3 * h) + park(3 * h, 3 * h + 1260) + drive(3 * h + 1260, 6 * h)
    assert types(advance(None, V, rested, RULES, T0), "FATIGUE_DRIVING") == []


def test_a_rest_clears_the_alert():
    trace = drive(0, 4 * 3600 + 300) + park(4 * 3600 + 300, 4 * 3600 + 1800)
    out = advance(None, V, trace, RULES, T0)
    assert [s for s, _ in types(out, "FATIGUE_DRIVING")] == ["raised", "cleared"]


def test_a_long_gap_while_parked_is_a_rest_and_a_gap_while_driving_is_not():
    parked_gap = drive(0, 3 * 3600) + drive(3 * 3600 + 1800, 5 * 3600, x0=3 * 3600 * 70 / 3.6)
    assert types(advance(None, V, parked_gap, RULES, T0), "FATIGUE_DRIVING") == []
    driven_gap = drive(0, 3 * 3600) + drive(3 * 3600 + 1800, 5 * 3600,
                                           x0=(3 * 3600 + 1800) * 70 / 3.6)
    assert [s for s, _ in types(advance(None, V, driven_gap, RULES, T0), "FATIGUE_DRIVING")] == ["raised"]


def test_ignition_off_is_rest_even_if_the_terminal_reports_speed():
    drifting = [with_(o, status_flags=ACC_OFF) for o in drive(3 * 3600, 3 * 3600 + 1500)]
    out = advance(None, V, drive(0, 3 * 3600) + drifting + drive(3 * 3600 + 1500, 5 * 3600),
                  RULES, T0)
    assert types(out, "FATIGUE_DRIVING") == []


def zone(kind: str):
    lon, lat = SHANGHAI
    d = 0.01
    return parse_zone({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[
        [lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d], [lon - d, lat - d]]]},
        "properties": {"zone_id": kind, "name": kind, "kind": kind, "banned_classes": []}})


def test_prolonged_stop_is_stricter_inside_a_restricted_zone_and_ignored_in_a_depot():
    trace = drive(0, 120) + park(120, 3600)
    anywhere = advance(None, V, trace, RULES, T0)
    assert types(anywhere, "PROLONGED_STOP") == [("raised", T0 + timedelta(seconds=120 + 1800))]
    school = zone("school")
    in_school = [with_(o, zones=(("school", 2),)) for o in trace]
    out = advance(None, V, in_school, RULES, T0, Reference(zones={"school": school}))
    assert types(out, "PROLONGED_STOP") == [("raised", T0 + timedelta(seconds=120 + 600))]
    depot = zone("depot")
    in_depot = [with_(o, zones=(("depot", 2),)) for o in trace]
    assert types(advance(None, V, in_depot, RULES, T0, Reference(zones={"depot": depot})),
                 "PROLONGED_STOP") == []


def test_moving_again_clears_the_stop():
    trace = drive(0, 120) + park(120, 2400) + drive(2400, 2600, x0=0.0)
    out = advance(None, V, trace, RULES, T0)
    assert [s for s, _ in types(out, "PROLONGED_STOP")] == ["raised", "cleared"]
