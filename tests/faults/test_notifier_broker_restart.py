"""The notifier through a broker restart: on a broker of the test's own, alerts told, the
broker stopped for a while and started again, more alerts: every alert reaches the duty
room's webhook once, and the notifier never stopped."""

from __future__ import annotations

import json
import time

import pytest

from tests.harness import wait_until
from tests.integration.harness import Kafka, run_env
from tests.integration.test_notifier import Notifier, Receiver, alert, send, subscribe

pytestmark = pytest.mark.integration

OUTAGE_S = 15.0


@pytest.mark.timeout(400)
def test_the_notifier_survives_a_broker_restart(services, broker, tmp_path):
    env = run_env(services, KAFKA_BOOTSTRAP=broker.bootstrap, YRD_NOTIFY_START="earliest")
    receiver = Receiver()
    notifier = Notifier(env, tmp_path / "notifier.log")
    try:
        subscribe(env, subscription_id="sh-duty", name="上海值班室", max_messages=1000,
                  channel={"kind": "webhook", "url": receiver.url("/sh")})
        notifier.start()
        kafka = Kafka(broker.bootstrap)
        send(kafka, env, [alert(n) for n in range(10)])
        wait_until(lambda: len(receiver.notices("/sh")) >= 10, "the first ten told", 60)

        broker.stop()
        time.sleep(OUTAGE_S)
        assert notifier.proc.poll() is None, notifier.tail()
        broker.start()
        kafka = Kafka(broker.bootstrap)
        send(kafka, env, [alert(n) for n in range(10, 20)])
        wait_until(lambda: len({n["notice_id"] for n in receiver.notices("/sh")}) >= 20,
                   "the next ten told after the outage", 180)
        time.sleep(2)
        assert notifier.proc.poll() is None, notifier.tail()
    finally:
        code = notifier.stop() if notifier.proc is not None else 0
        receiver.close()
    assert code == 0, notifier.tail()
    ids = [n["notice_id"] for n in receiver.notices("/sh")]
    assert len(ids) == len(set(ids)) == 20, "an alert told twice, or missing"
    said = sorted(json.loads(json.dumps(n))["lines"][-1] for n in receiver.notices("/sh"))
    assert said == sorted(f"事件编号: 沪A{n:05d}:SPEEDING:{n}" for n in range(20))
