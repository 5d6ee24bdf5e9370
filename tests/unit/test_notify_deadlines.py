"""Deadlines and escalation: the policy's most specific line, the clock of an alert as its
incident is handled or not, and the incident record's escalate, explain and appeal
actions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from yrd_hazmat.core.emergency.incidents import apply
from yrd_hazmat.core.models import (
    Alert, AlertState, IncidentAction, IncidentCommand, IncidentLog, Severity,
)
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.notify import deadlines as dl

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=CHINA_TZ)
FIVE_MIN = dl.Deadline(severity="critical", ack_s=300, close_s=3600)


def record(*actions: tuple[str, int], cleared: int | None = None, level=None) -> IncidentLog:
    return IncidentLog(incident_id="i1", vehicle_id="沪A00001", province="SH",
                       alert_type="ZONE_VIOLATION", raised_at=T0, level=level,
                       cleared_at=T0 + timedelta(seconds=cleared) if cleared is not None else None,
                       actions=[IncidentAction(kind=k, by="sh-duty", at=T0 + timedelta(seconds=s))
                                for k, s in actions])


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_most_specific_line_of_the_policy_holds():
    policy = dl.Policy()
    assert policy.of("SPEEDING", "critical") == dl.DEFAULTS["critical"]
    assert policy.of("SPEEDING", "info").ack_s is None
    for line in (dl.Deadline(severity="critical", ack_s=120),
                 dl.Deadline(alert_type="SPEEDING", ack_s=600),
                 dl.Deadline(alert_type="SPEEDING", severity="critical", ack_s=60)):
        policy.apply(line.key.encode(), dl.encode(line))
    assert policy.of("SPEEDING", "critical").ack_s == 60
    assert policy.of("SPEEDING", "warning").ack_s == 600
    assert policy.of("ZONE_VIOLATION", "critical").ack_s == 120
    policy.apply(b"SPEEDING:critical", None)
    assert policy.of("SPEEDING", "critical").ack_s == 600
    policy.apply(b"*:warning", b"not json")  # a bad line changes nothing
    assert policy.of("FATIGUE_DRIVING", "warning") == dl.DEFAULTS["warning"]


def test_an_alert_nobody_acknowledges_goes_to_the_province_then_the_region():
    before = dl.clock(FIVE_MIN, T0, None, False, at(299))
    assert (before.level, before.missed, before.next_due) == ("city", [], at(300))
    assert dl.escalations(before, None) == []
    late = dl.clock(FIVE_MIN, T0, None, False, at(300))
    assert (late.level, late.missed) == ("province", ["ack"])
    assert dl.escalations(late, None) == ["province"]
    assert dl.escalations(late, "province") == []
    hour = dl.clock(FIVE_MIN, T0, None, False, at(3600))
    assert (hour.level, hour.missed, hour.done) == ("region", ["ack", "close"], True)
    assert dl.escalations(hour, "province") == ["region"]
    assert dl.escalations(hour, None) == ["province", "region"]  # a notifier away an hour


def test_an_acknowledged_alert_stays_with_its_city_until_its_close_deadline():
    c = dl.clock(FIVE_MIN, T0, record(("ack", 120)), False, at(1800))
    assert (c.level, c.acknowledged_at, c.next_due) == ("city", at(120), at(3600))
    c = dl.clock(FIVE_MIN, T0, record(("ack", 120)), False, at(3600))
    assert (c.level, c.missed) == ("province", ["close"])


def test_a_cleared_alert_someone_acted_on_is_closed():
    c = dl.clock(FIVE_MIN, T0, record(("note", 100)), True, at(4000))
    assert c.closed_at == at(100) and c.done and c.level == "city"
    unseen = dl.clock(FIVE_MIN, T0, None, True, at(400))
    assert unseen.level == "province"  # cleared by itself, nobody looked: still late


def test_a_late_acknowledgement_does_not_undo_the_escalation():
    c = dl.clock(FIVE_MIN, T0, record(("ack", 400)), False, at(500))
    assert (c.level, c.missed, c.acknowledged_at) == ("province", ["ack"], at(400))


def test_the_recorded_level_holds_when_the_clock_says_less():
    c = dl.clock(FIVE_MIN, T0, record(("ack", 60), level="region"), False, at(100))
    assert c.level == "region" and dl.escalations(c, "region") == []


def test_a_worker_only_action_does_not_acknowledge():
    c = dl.clock(FIVE_MIN, T0, record(("raised", 0), ("cleared", 30)), False, at(301))
    assert c.acknowledged_at is None and c.level == "province"


# --- the record ---------------------------------------------------------------------------
ALERT = Alert(alert_id="i1:raised", incident_id="i1", type="SPEEDING", severity=Severity.WARNING,
              state=AlertState.RAISED, vehicle_id="沪A00001", ts=T0, emitted_at=T0, lat=31.2,
              lon=121.5, province="SH")


def act(log, kind: str, *, by="sh-duty", text=None, level=None, n=0):
    action = IncidentAction(kind=kind, by=by, at=at(n), text=text, level=level,
                            action_id=f"{kind}-{n}")
    return apply(log, IncidentCommand(incident_id="i1", action=action, alert=ALERT))


def test_escalations_go_up_only():
    log, why = act(None, "escalate", by="notifier", level="province")
    assert why is None and log.level == "province"
    log, why = act(log, "escalate", by="notifier", level="province", n=1)
    assert why == "already escalated to province"
    log, why = act(log, "escalate", by="notifier", level="region", n=2)
    assert why is None and log.level == "region"
    assert act(log, "escalate", by="notifier", n=3)[1] == "escalate needs a level"


@pytest.mark.parametrize("decision,state", [("appeal_accepted", "accepted"),
                                            ("appeal_rejected", "rejected")])
def test_an_appeal_is_decided_once(decision, state):
    log, why = act(None, decision, text="no", n=1)
    assert log is not None and why == "no open appeal to decide"
    log, why = act(log, "appeal", by="carrier-a", text="", n=2)
    assert why == "an appeal needs a reason"
    log, why = act(log, "appeal", by="carrier-a", text="测速点位置有误 (the speed camera is misplaced)",
                   n=3)
    assert why is None and log.appeal == "open"
    log, why = act(log, decision, text="", n=4)
    assert why == "a decision on an appeal needs a reason"
    log, why = act(log, decision, text="核实 (checked)", n=5)
    assert why is None and log.appeal == state
    assert act(log, "appeal_rejected", text="again", n=6)[1] == \
        f"the appeal was decided already ({state})"
    assert act(log, "appeal", by="carrier-a", text="again", n=7)[1] == \
        f"this alert was appealed already ({state})"
    kinds = [a.kind for a in log.actions]
    assert kinds == ["appeal", decision]


def test_an_explanation_and_an_appeal_are_recorded_on_a_closed_incident():
    log, _ = act(None, "close", n=1)
    assert log.closed_at == at(1)
    log, why = act(log, "explain", by="carrier-a", text="司机已停车休息 (the driver rested)", n=2)
    assert why is None
    log, why = act(log, "appeal", by="carrier-a", text="设备故障 (a faulty terminal)", n=3)
    assert why is None and log.appeal == "open"
    assert act(log, "explain", by="carrier-a", text=" ", n=4)[1] == "an explanation needs a text"
