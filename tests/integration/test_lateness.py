"""Pings shuffled within the lateness bound are put back in order on the real broker."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.integration.harness import run_env
from tests.integration.traces import drive, of, start_time

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(services):
    return run_env(services, YRD_LATENESS_S="30", YRD_SIGNAL_CHECK_INTERVAL_S="2")


def test_shuffled_and_duplicated_pings_give_the_in_order_alerts(env, kafka, worker):
    t0 = start_time()
    trace = drive("沪A90001", t0, [95.0] * 12 + [70.0] * 12)  # over the limit 0-55 s
    rng = random.Random(4)
    copies = trace + rng.sample(trace, 6)
    arrival = sorted(copies, key=lambda p: p.ts.timestamp() + rng.uniform(0, 30))
    assert arrival != trace
    kafka.send_pings(env["YRD_TOPIC_PINGS"], arrival)

    def speeding(records):  # (the trace ended minutes ago: SIGNAL_LOST may follow, rightly)
        return [r for r in of(records, "沪A90001") if r["type"] == "SPEEDING"]

    alerts = kafka.alerts_to_barrier(env, trace[-1])
    mine = speeding(alerts)
    assert [(a["type"], a["state"], a["ts"]) for a in mine] == [
        ("SPEEDING", "raised", (t0 + timedelta(seconds=30)).isoformat()),
        ("SPEEDING", "cleared", (t0 + timedelta(seconds=60)).isoformat())]
    dead = kafka.read(env["YRD_TOPIC_DEADLETTER"], lambda r: True, settle=1)
    assert dead == []  # nothing was late
