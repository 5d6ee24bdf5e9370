"""The desk's store of the alerts no worker rule raises (a lower platform's alarms)."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from tests.factories import T0
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import Alert, AlertState, AlertType, Severity
from yrd_hazmat.desk.elsewhere import WINDOW, ElsewhereAlerts, merged


def alert(incident: str, type_=AlertType.PLATFORM_ALARM, province="SH", hours_ago=1.0,
          state=AlertState.RAISED, vehicle="沪A00001") -> Alert:
    at = T0 - timedelta(hours=hours_ago)
    return Alert(alert_id=f"{incident}:{state.value}", incident_id=incident, type=type_,
                 severity=Severity.CRITICAL, state=state, vehicle_id=vehicle, ts=at,
                 emitted_at=at, lat=31.2, lon=121.4, province=province)


def test_only_raised_platform_alarms_are_kept():
    store = ElsewhereAlerts()
    assert store.apply(b"k", encode(alert("a"))) is not None
    assert store.apply(b"k", encode(alert("b", type_=AlertType.SPEEDING))) is None
    assert store.apply(b"k", b'{"type": "PLATFORM_ALARM", "broken"') is None
    assert store.apply(b"k", None) is None
    assert list(store.alerts) == ["a"]


def test_open_by_province_within_the_window_until_closed():
    store = ElsewhereAlerts()
    for a in (alert("sh"), alert("js", province="JS"), alert("out", province=None),
              alert("old", hours_ago=25), alert("done")):
        store.apply(None, msgspec.json.encode(a))
    found = store.open_in(["SH", None], closed=lambda i: i == "done", now=T0)
    assert {p: [a.incident_id for a in alerts] for p, alerts in found.items()} == {
        "SH": ["sh"], None: ["out"]}
    assert [a.incident_id for a in store.of_vehicle("沪A00001", lambda i: False, T0)] == \
        ["sh", "js", "out", "done"]
    store.prune(T0)
    assert "old" not in store.alerts and WINDOW == timedelta(hours=24)


def test_merged_keeps_each_province_in_time_order_without_doubles():
    ours = {"SH": [alert("x", type_=AlertType.SPEEDING, hours_ago=2)], "JS": []}
    theirs = {"SH": [alert("p", hours_ago=3), alert("x", hours_ago=2)], "JS": []}
    both = merged(ours, theirs)
    assert [a.incident_id for a in both["SH"]] == ["p", "x"]
    assert both["JS"] == []
