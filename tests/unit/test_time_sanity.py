"""A fix stamped ahead of its arrival is refused (issue #21), judged against the record's
own time so that a replay decides the same."""

from __future__ import annotations

from datetime import timedelta

from yrd_hazmat.core.codec import TIME_AHEAD, time_ahead
from yrd_hazmat.core.timeutil import to_ms
from tests.factories import T0, ping

ARRIVED = to_ms(T0)


def test_china_time_applied_twice_is_refused_with_its_reason():
    rejection = time_ahead(ping(at_s=8 * 3600), ARRIVED, tolerance_ms=300_000)
    assert rejection is not None and rejection.reason == TIME_AHEAD
    assert "28800 s ahead" in rejection.error and "bound 300 s" in rejection.error


def test_a_clock_a_little_ahead_is_within_the_bound():
    assert time_ahead(ping(at_s=299), ARRIVED, tolerance_ms=300_000) is None
    assert time_ahead(ping(at_s=-3600), ARRIVED, tolerance_ms=0) is None  # late is not ahead


def test_it_is_judged_against_the_arrival_not_the_clock_of_the_judge():
    """A fix an hour ahead of a record that reached the broker at T0 is refused, whenever it
    is judged; the same fix in a record that arrived two hours later is not."""
    stamped = ping(at_s=3600)
    assert time_ahead(stamped, ARRIVED, 300_000).reason == TIME_AHEAD
    assert time_ahead(stamped, to_ms(T0 + timedelta(hours=2)), 300_000) is None
