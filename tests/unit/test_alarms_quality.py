"""DEVICE_ALARM from the JT/T 808 alarm bits, and implausible jumps as data-quality events."""

from __future__ import annotations


from yrd_hazmat.core.engine import Reference, advance
from yrd_hazmat.core.geo.jurisdiction import province_shapes_metric
from yrd_hazmat.core.observation import Observation
from yrd_hazmat.core.permits.status import PermitStatus
from yrd_hazmat.core.emergency.scene import isolation_distance
from yrd_hazmat.core.timeutil import to_ms
from tests.factories import RULES, T0, obs
from tests.permit_trips import compiled

V = "沪A55555"
SOS, COLLISION, ROLLOVER, OVERSPEED = 1 << 0, 1 << 29, 1 << 30, 1 << 1


def with_(o: Observation, **changes) -> Observation:
    return Observation(**({f: getattr(o, f) for f in o.__struct_fields__} | changes))


def run(trace, permit: PermitStatus | None = None):
    ref = Reference(permits={V: permit} if permit else {}, provinces=province_shapes_metric())
    return advance(None, V, trace, RULES, T0, ref)


def test_collision_is_critical_with_cargo_and_isolation_distance():
    permit = PermitStatus(permit=compiled(V, T0))  # chlorine, UN1017, class 2.3
    trace = [obs(0), with_(obs(5), alarm_flags=COLLISION), with_(obs(10), alarm_flags=COLLISION),
             obs(15)]
    out = run(trace, permit)
    assert [(a.type, a.state.value) for a in out.alerts] == [
        ("DEVICE_ALARM", "raised"), ("DEVICE_ALARM", "cleared")]
    raised = out.alerts[0]
    assert raised.severity.value == "critical" and raised.details["alarm"] == "collision"
    assert raised.details["un_number"] == "UN1017" and raised.details["cargo_name"].startswith("chlorine")
    assert raised.details["isolation_distance_m"] == 60
    assert raised.details["isolation_basis"] == "substance UN1017"
    assert raised.details["responders_province"] == "SH"
    assert raised.permit_id == permit.permit.permit_id


def test_each_alarm_bit_is_its_own_incident_with_its_severity():
    trace = [with_(obs(0), alarm_flags=SOS | OVERSPEED), with_(obs(5), alarm_flags=SOS)]
    out = run(trace)
    assert sorted((a.details["alarm"], a.severity.value, a.state.value) for a in out.alerts) == [
        ("overspeed", "warning", "cleared"), ("overspeed", "warning", "raised"),
        ("sos", "critical", "raised")]
    sos = next(a for a in out.alerts if a.details["alarm"] == "sos")
    # no permit, so the cargo is unknown: the largest class distance, 500 m (explosives,
    # ERG2020 guides 112/114), not a toxic-gas or liquid figure
    assert sos.details["isolation_distance_m"] == 500
    assert sos.details["isolation_basis"].startswith("unknown cargo")


def test_an_alarm_that_stays_on_is_raised_once():
    out = run([with_(obs(t), alarm_flags=ROLLOVER) for t in range(0, 60, 5)])
    assert len(out.alerts) == 1


def test_isolation_distance_falls_back_to_the_class():
    petrol = PermitStatus(permit=compiled(V, T0, un_number="UN1203", hazard_class="3"))
    assert isolation_distance(petrol, to_ms(T0)) == (50, "hazard class 3")


def test_a_jump_no_truck_can_make_is_flagged_and_does_not_move_it():
    far = with_(obs(10), x_m=obs(10).x_m + 50_000)  # 50 km in 5 s
    out = run([obs(0), obs(5), far, obs(15)])
    jumps = [a for a in out.alerts if a.type == "IMPLAUSIBLE_JUMP"]
    assert len(jumps) == 1 and jumps[0].details["jump_m"] == 50_000.0
    assert out.implausible == 1 and out.state.last.ts_ms == obs(15).ts_ms
    assert out.state.last.x_m == obs(15).x_m


def test_a_real_relocation_is_accepted_on_the_second_agreeing_fix():
    moved = [with_(obs(t), x_m=obs(t).x_m + 50_000) for t in (10, 15, 20)]
    out = run([obs(0), obs(5), *moved])
    assert out.implausible == 1  # only the first fix after the jump is doubted
    assert out.state.last.x_m == moved[-1].x_m


def test_gps_noise_over_a_tiny_interval_is_not_a_jump():
    noisy = with_(obs(5), ts_ms=obs(0).ts_ms + 100, x_m=obs(0).x_m + 30)  # 30 m in 0.1 s
    assert run([obs(0), noisy]).implausible == 0


def test_a_duplicate_of_an_implausible_fix_is_not_its_own_confirmation():
    """Issue #8: the same jumped fix delivered again (a producer retry, a replay) was taken
    as the second fix agreeing with it: the truck "relocated", and the next good fix raised
    a second IMPLAUSIBLE_JUMP. A duplicate must change nothing."""
    far = with_(obs(10), x_m=obs(10).x_m + 50_000)  # 50 km in 5 s

    def deliver(*batches):
        state, alerts = None, []
        for batch in batches:
            out = advance(state, V, batch, RULES, T0, Reference())
            state, alerts = out.state, alerts + out.alerts
        return state, alerts

    once, once_alerts = deliver([obs(0), obs(5), far], [obs(15)])
    twice, twice_alerts = deliver([obs(0), obs(5), far], [far], [obs(15)])
    assert [a.alert_id for a in twice_alerts] == [a.alert_id for a in once_alerts]
    assert [a.type for a in twice_alerts] == ["IMPLAUSIBLE_JUMP"]
    assert twice.duplicates == 1 and twice.implausible == 1 and twice.late == 0
    assert twice.last == once.last and twice.last.x_m == obs(15).x_m


def test_a_fix_older_than_a_suspect_one_does_not_move_the_truck():
    """The suspect fix ran through the rules: a fix older than it arrives out of order. It
    lies between two judged fixes 10 s apart (covered: nothing to judge again), and
    does not move the truck."""
    far = with_(obs(10), x_m=obs(10).x_m + 50_000)
    first = advance(None, V, [obs(0), far], RULES, T0, Reference())
    out = advance(first.state, V, [obs(5)], RULES, T0, Reference())
    assert out.late == [] and out.uploaded_late == 0 and out.duplicates == 1
    assert out.alerts == [] and out.state.last.ts_ms == obs(0).ts_ms
