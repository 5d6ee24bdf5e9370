"""A truck that goes silent: SIGNAL_LOST from the worker's timer, with no further input."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from yrd_hazmat.core.timeutil import CHINA_TZ
from tests.integration.harness import run_env
from tests.integration.traces import drive, of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(services):
    return run_env(services, YRD_SIGNAL_LOST_S="20", YRD_SIGNAL_CHECK_INTERVAL_S="2")


def test_silence_raises_signal_lost_and_the_next_ping_clears_it(env, kafka, worker):
    t0 = datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(seconds=60)
    trip = drive("沪A80001", t0, [60.0] * 12, every_s=5, road="other")  # up to about now
    kafka.send_pings(env["YRD_TOPIC_PINGS"], trip)

    alerts = kafka.read(env["YRD_TOPIC_ALERTS"], lambda r: len(of(r, "沪A80001")) >= 1, timeout=90)
    [lost] = of(alerts, "沪A80001")
    assert (lost["type"], lost["state"]) == ("SIGNAL_LOST", "raised")
    assert lost["ts"] == (trip[-1].ts + timedelta(seconds=20)).isoformat()
    assert (lost["lat"], lost["lon"]) == (trip[-1].lat, trip[-1].lon)

    back = drive("沪A80001", datetime.now(CHINA_TZ).replace(microsecond=0), [60.0],
                 at=(trip[-1].lon + 0.01, trip[-1].lat), road="other")
    kafka.send_pings(env["YRD_TOPIC_PINGS"], back)
    alerts = kafka.alerts_to_barrier(env, back[-1])
    restored = of(alerts, "沪A80001")[1]
    assert (restored["type"], restored["state"]) == ("SIGNAL_LOST", "cleared")
    assert restored["incident_id"] == lost["incident_id"]
    assert restored["details"]["gap_s"] >= 20 and 900 < restored["details"]["distance_jumped_m"] < 1000
    assert len(of(alerts, "沪A80001")) == 2  # raised once, however many ticks ran
