"""SIGNAL_LOST: raised by the timer while a truck is silent, or by the ping that ends the gap."""

from __future__ import annotations

from datetime import timedelta

from yrd_hazmat.core.engine import Reference, advance, silence
from yrd_hazmat.core.permits.status import PermitStatus
from yrd_hazmat.core.observation import Observation
from yrd_hazmat.core.timeutil import to_ms
from tests.factories import RULES, T0, obs
from tests.permit_trips import compiled

V = "沪A12345"


def moved(o: Observation, metres: float) -> Observation:
    return Observation(**({f: getattr(o, f) for f in o.__struct_fields__} | {"x_m": o.x_m + metres}))


def test_timer_raises_while_silent_and_the_next_ping_clears_with_gap_and_jump():
    state = advance(None, V, [obs(0, 60), obs(30, 60)], RULES, T0).state
    assert silence(state, to_ms(T0 + timedelta(seconds=200)), RULES, T0).alerts == []  # not yet 5 min
    [lost] = silence(state, to_ms(T0 + timedelta(minutes=6)), RULES, T0).alerts
    assert (lost.type, lost.state.value) == ("SIGNAL_LOST", "raised")
    assert lost.ts == T0 + timedelta(seconds=330)  # last ping + 5 min, whenever the timer ran
    assert silence(state, to_ms(T0 + timedelta(minutes=7)), RULES, T0).alerts == []  # once
    out = advance(state, V, [moved(obs(900, 60), 14_000)], RULES, T0)
    [restored] = [a for a in out.alerts if a.type == "SIGNAL_LOST"]
    assert restored.state.value == "cleared" and restored.incident_id == lost.incident_id
    assert restored.details["gap_s"] == 870 and restored.details["distance_jumped_m"] == 14_000


def test_a_replayed_gap_gives_the_same_alerts_without_any_timer():
    live = advance(None, V, [obs(0, 60), obs(30, 60)], RULES, T0).state
    [raised] = silence(live, to_ms(T0 + timedelta(minutes=6)), RULES, T0).alerts
    [cleared] = [a for a in advance(live, V, [obs(900, 60)], RULES, T0).alerts if a.type == "SIGNAL_LOST"]
    replay = [a for a in advance(None, V, [obs(0, 60), obs(30, 60), obs(900, 60)], RULES, T0).alerts
              if a.type == "SIGNAL_LOST"]
    assert [a.alert_id for a in replay] == [raised.alert_id, cleared.alert_id]
    assert [a.ts for a in replay] == [raised.ts, cleared.ts]


def test_a_parked_truck_without_a_permit_is_not_on_a_trip():
    state = advance(None, V, [obs(t, 0.0) for t in range(0, 900, 60)], RULES, T0).state
    assert silence(state, to_ms(T0 + timedelta(hours=2)), RULES, T0).alerts == []


def test_a_parked_truck_with_a_permit_in_force_is_on_a_trip():
    ref = Reference(permits={V: PermitStatus(permit=compiled(V, T0))})
    state = advance(None, V, [obs(t, 0.0) for t in range(0, 900, 60)], RULES, T0, ref).state
    [lost] = silence(state, to_ms(T0 + timedelta(hours=2)), RULES, T0, ref).alerts
    assert lost.permit_id == "JS-2026-12345"


# --- reports without a valid fix (issue #21): proof of life, not a position ---------------

def heard_at(seconds: float) -> int:
    return to_ms(T0 + timedelta(seconds=seconds))


def test_a_report_without_a_fix_keeps_the_truck_from_being_silent():
    state = advance(None, V, [obs(0, 60), obs(30, 60)], RULES, T0).state
    state = advance(state, V, [], RULES, T0, heard_ms=heard_at(300)).state
    assert state.last.ts_ms == obs(30).ts_ms  # no position taken from it
    assert silence(state, heard_at(500), RULES, T0).alerts == []  # 470 s since the fix
    [lost] = silence(state, heard_at(601), RULES, T0).alerts  # 5 min since it was heard
    assert lost.ts == T0 + timedelta(seconds=600) and lost.details["last_ping"] == \
        (T0 + timedelta(seconds=30)).isoformat()


def test_the_next_fix_after_reports_without_a_fix_raises_nothing():
    state = advance(None, V, [obs(0, 60), obs(30, 60)], RULES, T0).state
    for t in range(60, 420, 30):
        state = advance(state, V, [], RULES, T0, heard_ms=heard_at(t)).state
    out = advance(state, V, [obs(420, 60)], RULES, T0)
    assert [a for a in out.alerts if a.type == "SIGNAL_LOST"] == []


def test_a_loss_raised_before_the_truck_was_heard_again_is_cleared_by_its_next_fix():
    state = advance(None, V, [obs(0, 60), obs(30, 60)], RULES, T0).state
    [lost] = silence(state, heard_at(400), RULES, T0).alerts
    state = advance(state, V, [], RULES, T0, heard_ms=heard_at(420)).state
    [cleared] = [a for a in advance(state, V, [obs(450, 60)], RULES, T0).alerts
                 if a.type == "SIGNAL_LOST"]
    assert cleared.state.value == "cleared" and cleared.incident_id == lost.incident_id
