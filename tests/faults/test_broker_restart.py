"""Broker restart (issue #8): 30 s without Kafka while pings keep coming.

The test runs its own single-node broker. A worker processes a fleet replay
produced at a steady rate (librdkafka buffers the pings while the broker is
away); the broker is stopped for 30 s and started again. The worker must
recover by itself (same process, every ping committed), its alerts must be
exactly those the pure core computes for the replay (so nothing was lost or
changed), and its log from the stop to the recovery must be bounded (fewer than
100 warning/error lines, 300 in all): the Kafka client's reconnect loop used to
write thousands of ERROR lines in 30 s (62,779 in the issue's run).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.faults.replay import (
    SIGNAL_LOST_NEVER_S, SteadyProducer, compare_alerts, core_outcome, fleet_replay,
    ping_records, summary,
)
from tests.faults.support import lag, read_all, wait_quiet
from tests.harness import wait_for
from tests.integration.harness import WorkerProcess, run_env

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0
PRODUCE_S = 45.0
STOP_AFTER_S = 8.0
LOG_LINES_BOUND = 100
"""Warning and error lines the worker may log from the broker's stop to its recovery."""
ALL_LINES_BOUND = 300
"""All lines in that time (recovery's INFO lines, a rebalance's partition tables, ...)."""


def committed_all(bootstrap: str, env: dict[str, str]) -> bool:
    try:
        return not any(lag(bootstrap, env["YRD_APP_ID"], env["YRD_TOPIC_PINGS"]).values())
    except Exception:  # noqa: BLE001  (broker away)
        return False


LOUD = re.compile(r"\[[^]]+\] \[\d+\] \[(WARNING|ERROR|CRITICAL)\]")
"""A warning or error line in Faust's log format."""


def lines(path) -> list[str]:
    return path.read_text("utf-8", "replace").splitlines()


@pytest.mark.timeout(300)
def test_broker_down_30_s_recovered_by_itself_nothing_lost_log_bounded(
        services, broker, workers, tmp_path):
    pings = fleet_replay(40, 30, seed=23, collision_stays_on=1)
    expected, _ = core_outcome(pings)
    env = run_env({"KAFKA_BOOTSTRAP": broker.bootstrap, "REDIS_URL": services["REDIS_URL"]},
                  YRD_SIGNAL_LOST_S=SIGNAL_LOST_NEVER_S)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(env, log)
    workers.append(worker)
    worker.start()
    pid = worker.proc.pid

    producer = SteadyProducer(broker.bootstrap, ping_records(env["YRD_TOPIC_PINGS"], pings),
                              PRODUCE_S)
    producer.start()
    time.sleep(STOP_AFTER_S)
    before = len(lines(log))
    stopped = time.monotonic()
    broker.stop()
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
    broker.start()
    print(f"broker down {time.monotonic() - stopped:.1f} s; {producer.sent}/{len(pings)} pings "
          "handed to the producer so far")
    producer.finish()

    recovered = wait_for(lambda: committed_all(broker.bootstrap, env), 90)
    recovery_s = time.monotonic() - stopped
    during = lines(log)[before:]
    wait_quiet(broker.bootstrap, env["YRD_TOPIC_ALERTS"], quiet_s=3, timeout=30)
    alerts = [v for _, v in read_all(broker.bootstrap, env["YRD_TOPIC_ALERTS"])]
    dead = read_all(broker.bootstrap, env["YRD_TOPIC_DEADLETTER"])
    loud = [line for line in during if LOUD.match(line)]
    print(f"recovered {recovery_s:.0f} s after the stop; {len(during)} log lines meanwhile "
          f"({len(loud)} warnings/errors); "
          f"{len(alerts)} alerts ({summary(alerts)}), expected {len(expected)}")

    problems = []
    if not worker.alive or worker.proc.pid != pid:
        problems.append(f"the worker did not survive the outage:\n{worker.log_tail(20)}")
    if not recovered:
        problems.append("the worker did not commit every ping within 90 s of the outage: lag "
                        f"{lag(broker.bootstrap, env['YRD_APP_ID'], env['YRD_TOPIC_PINGS'])}")
    problems += compare_alerts(expected, alerts, expected_name="pure core",
                               got_name="run with a broker outage")
    if dead:
        problems.append(f"{len(dead)} dead letters: {sorted({v['reason'] for _, v in dead})}")
    if len(loud) >= LOG_LINES_BOUND or len(during) >= ALL_LINES_BOUND:
        counts: dict[str, int] = {}
        for line in during:
            head = line.split("] ", 2)[-1][:90]
            counts[head] = counts.get(head, 0) + 1
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:8]
        problems.append(f"{len(loud)} warning/error lines ({len(during)} in all) from the "
                        f"broker's stop to the recovery (bounds {LOG_LINES_BOUND} and "
                        f"{ALL_LINES_BOUND}); most repeated:\n  "
                        + "\n  ".join(f"{n:6d}  {text}" for text, n in top))
    assert not problems, "\n\n".join(problems) + f"\n\nlog: {log}"
