"""The police desk's filter and its readable line."""

from yrd_hazmat.console import AlertFilter, render_line
from yrd_hazmat.core.models import Alert, AlertState, City, Severity
from tests.factories import T0


def alert(**changes) -> Alert:
    base = dict(alert_id="i:raised", incident_id="i", type="ZONE_VIOLATION",
                severity=Severity.CRITICAL, state=AlertState.RAISED, vehicle_id="苏A12345", ts=T0,
                emitted_at=T0, lat=32.04, lon=118.78, province="JS",
                city=City(code="320100", name="南京市"), details={"zone_id": "nj-core"})
    return Alert(**(base | changes))


def test_empty_filter_matches_everything():
    assert AlertFilter().matches(alert()) and AlertFilter().matches(alert(province=None, city=None))


def test_jurisdiction_filter():
    js = AlertFilter(provinces=frozenset({"JS"}))
    assert js.matches(alert()) and not js.matches(alert(province="SH"))
    nanjing_critical = AlertFilter(city_codes=frozenset({"320100"}), severities=frozenset({"critical"}))
    assert nanjing_critical.matches(alert())
    assert not nanjing_critical.matches(alert(severity=Severity.WARNING))
    assert not nanjing_critical.matches(alert(city=City(code="320500", name="苏州市")))
    outside = AlertFilter(provinces=frozenset({"none"}))
    assert outside.matches(alert(province=None, city=None)) and not outside.matches(alert())


def test_type_filter():
    handovers = AlertFilter(types=frozenset({"PROVINCE_HANDOVER", "HANDOVER_EXPECTED"}))
    assert handovers.matches(alert(type="HANDOVER_EXPECTED")) and not handovers.matches(alert())


def test_line_shows_what_a_desk_reads():
    text = render_line(alert()).plain
    for part in ("CRITICAL", "raised", "ZONE_VIOLATION", "苏A12345", "JS 南京市", "zone_id=nj-core",
                 T0.strftime("%m-%d %H:%M:%S")):
        assert part in text


def test_an_emergency_line_names_the_nearest_responders_and_the_exposure():
    responder = {"resource_id": "js-1", "name": "Kunshan hazmat team", "province": "JS",
                 "distance_km": 12.3, "eta_min": 12.3, "crosses_border": True}
    details = {"emergency": True, "alarm": "collision", "un_number": "UN1017",
               "isolation_distance_m": 60, "responders": [responder] * 5,
               "exposure": {"radius_m": 60, "zones": [{"zone_id": "z"}], "trucks": []}}
    text = render_line(alert(type="DEVICE_ALARM", details=details)).plain
    assert "EMERGENCY alarm=collision, un_number=UN1017, isolation_distance_m=60" in text
    assert text.count("Kunshan hazmat team (JS, cross-border) 12.3 km 12 min") == 3
    assert "exposed within 60 m: 1 zone(s), 0 truck(s)" in text and "resource_id" not in text
