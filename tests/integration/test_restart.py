"""Vehicle state lives in a changelog-backed table: a restart neither forgets nor repeats."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.harness import scrape, wait_processed
from tests.integration.traces import drive, of, start_time

pytestmark = pytest.mark.integration


def test_episode_spanning_a_restart_is_raised_once_at_the_right_time(env, kafka, worker):
    t0 = start_time()
    trace = drive("沪A30001", t0, [95.0] * 12 + [65.0] * 3)  # over 0-55 s, back at 60 s
    first, rest = trace[:5], trace[5:]  # 0-20 s over the limit: not yet 30 s
    kafka.send_pings(env["YRD_TOPIC_PINGS"], first)
    wait_processed(env, "沪A30001", first[-1])

    assert worker.stop() == 0, worker.log_tail()
    worker.start()
    # A worker that forgot the first 20 s would count from 25 s and raise at 55 s.
    kafka.send_pings(env["YRD_TOPIC_PINGS"], rest)

    alerts = kafka.read(env["YRD_TOPIC_ALERTS"], lambda r: len(of(r, "沪A30001")) >= 2)
    mine = of(alerts, "沪A30001")
    assert [a["state"] for a in mine] == ["raised", "cleared"]
    assert mine[0]["ts"] == (t0 + timedelta(seconds=30)).isoformat()
    assert mine[1]["ts"] == (t0 + timedelta(seconds=60)).isoformat()

    # The whole trace replayed (a producer resending after a crash): duplicates of what the
    # restarted worker's state has judged, so no new alert and nothing refused.
    kafka.send_pings(env["YRD_TOPIC_PINGS"], trace)
    alerts = kafka.alerts_to_barrier(env, trace[-1])  # every alert of the pings above
    assert len(of(alerts, "沪A30001")) == 2
    assert kafka.read(env["YRD_TOPIC_DEADLETTER"], lambda r: True, settle=1) == []
    assert scrape(env["YRD_METRICS_PORT"])[("yrd_pings_duplicate_total", ())] >= len(trace)
