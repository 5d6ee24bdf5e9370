"""End to end over secured transports, as a deployment with real users would run.

``deploy/local/services.py up --secure`` on ports and a state dir of this module:
Kafka with one SASL_SSL listener (SCRAM-SHA-512) and ACLs, Redis with TLS only
and ACL users; certificates and passwords made by that setup. The real worker
runs as the ``worker`` user with the CA file and a ``rediss://`` URL. A carrier
(confluent-kafka) produces a speeding trace, a police desk reads the alerts
(confluent-kafka and the ``yrd-hazmat alerts`` command), the read model shows
the vehicle over TLS, and the ACLs refuse what each user must not do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace

import pytest
import redis
from confluent_kafka import Consumer, KafkaError, Producer

from tests.harness import free_port, free_port_pair, local_services
from tests.integration.harness import WorkerProcess, run_env, wait_processed
from tests.integration.traces import drive, of, start_time
from yrd_hazmat.core.codec import encode

pytestmark = pytest.mark.integration

VEHICLE = "沪A30001"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """Secured Kafka and Redis of this module, stopped and wiped afterwards."""
    svc = local_services()
    state = tmp_path_factory.mktemp("secured-services")
    # Services given by the environment (the session's plain ones) must not be reused here.
    given = {k: os.environ.pop(k) for k in ("KAFKA_BOOTSTRAP", "REDIS_URL") if k in os.environ}
    try:
        env = svc.up(state, kafka_port=free_port_pair(), redis_port=free_port(), secure=True)
        creds = svc.credentials(state)
    except BaseException:
        svc.down(state, wipe=True)
        raise
    finally:
        os.environ.update(given)
    yield SimpleNamespace(
        env=env, bootstrap=env["KAFKA_BOOTSTRAP"], ca_file=creds["ca_file"],
        passwords=creds["passwords"], state=state,
    )
    svc.down(state, wipe=True)


def client_config(secured, user: str) -> dict:
    """librdkafka settings of a client logged in as ``user``."""
    return {
        "bootstrap.servers": secured.bootstrap,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": secured.passwords[user],
        "ssl.ca.location": secured.ca_file,
    }


@pytest.fixture(scope="module")
def worker_env(secured):
    env = run_env(secured.env)
    # The ACLs and the Redis user cover the contract's names: yrd.* topics, app id
    # yrd-hazmat, read-model keys yrd:*. These services are this module's alone.
    for key in [k for k in env if k.startswith("YRD_TOPIC_")]:
        del env[key]
    return env | {"YRD_APP_ID": "yrd-hazmat", "YRD_REDIS_PREFIX": "yrd"}


@pytest.fixture(scope="module")
def secured_worker(worker_env, tmp_path_factory):
    proc = WorkerProcess(worker_env, tmp_path_factory.mktemp("secured-worker") / "worker.log")
    proc.start()
    yield proc
    assert proc.stop() == 0, proc.log_tail()


def produce(config: dict, topic: str, records: list[tuple[bytes, bytes]]) -> list[KafkaError | None]:
    """Produce and flush; the delivery error of each record (None: delivered)."""
    results: list[KafkaError | None] = []
    producer = Producer(config | {"partitioner": "murmur2_random", "message.timeout.ms": 15000})
    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=lambda err, _msg: results.append(err))
    producer.flush(30)
    return results


def read_as_police(secured, until, timeout: float = 60.0) -> list[dict]:
    """Alerts from the start of yrd.alerts, in a police consumer group, until ``until(records)``."""
    consumer = Consumer(client_config(secured, "police") | {
        "group.id": f"police-desk-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe(["yrd.alerts"])
    records: list[dict] = []
    errors = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(records):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                errors.append(msg.error())
            else:
                records.append(json.loads(msg.value()))
    finally:
        consumer.close()
    assert until(records), f"police got {records!r}, errors {errors!r}"
    return records


def first_error(config: dict, topic: str, group: str, timeout: float = 20.0) -> KafkaError:
    """The first error a consumer reading ``topic`` from its start gets (it must get one)."""
    consumer = Consumer(config | {"group.id": group, "auto.offset.reset": "earliest",
                                  "enable.auto.commit": False})
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is not None, f"read a record of {topic}: {msg.value()!r}"
            return msg.error()
    finally:
        consumer.close()
    raise AssertionError(f"no error reading {topic} in {timeout} s")


@pytest.fixture(scope="module")
def speeding(secured, secured_worker):
    """A carrier's speeding trace, produced over SASL_SSL; the police read its alerts."""
    pings = drive(VEHICLE, start_time(), [95.0] * 12 + [70.0] * 12)
    carrier = client_config(secured, "carrier") | {"enable.idempotence": True}
    errors = produce(carrier, "yrd.pings", [(p.vehicle_id.encode(), encode(p)) for p in pings])
    assert errors == [None] * len(pings)
    alerts = read_as_police(secured, lambda r: len(of(r, VEHICLE)) >= 2)
    return SimpleNamespace(pings=pings, alerts=alerts)


def test_carrier_pings_raise_alerts_the_police_read(speeding):
    mine = of(speeding.alerts, VEHICLE)
    assert [(a["type"], a["state"]) for a in mine] == [("SPEEDING", "raised"), ("SPEEDING", "cleared")]
    assert mine[0]["province"] == "SH"


def test_the_read_model_over_tls_shows_the_vehicle(speeding, worker_env):
    wait_processed(worker_env, VEHICLE, speeding.pings[-1])
    # The worker's Redis user on its own keys, over TLS; nothing else.
    client = redis.Redis.from_url(worker_env["REDIS_URL"], decode_responses=True)
    try:
        vehicle = client.hgetall(f"yrd:vehicle:{VEHICLE}")
        assert vehicle["province"] == "SH" and vehicle["ts"] == speeding.pings[-1].ts.isoformat()
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get("elsewhere:key")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.flushall()
    finally:
        client.close()


def test_redis_refuses_anonymous_and_plain_connections(secured, worker_env):
    url = worker_env["REDIS_URL"]
    anonymous = url.replace(f"worker:{secured.passwords['worker']}@", "")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(anonymous).ping()  # the default user is off
    wrong = url.replace(secured.passwords["worker"], "not-the-password")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(wrong).ping()
    plain = url.replace("rediss://", "redis://").split("?")[0]
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(plain, socket_timeout=3).ping()  # TLS only


def test_police_desk_command_reads_the_alerts(secured, speeding):
    env = dict(os.environ) | {
        "KAFKA_BOOTSTRAP": secured.bootstrap,
        "YRD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "YRD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "YRD_KAFKA_SASL_USERNAME": "police",
        "YRD_KAFKA_SASL_PASSWORD": secured.passwords["police"],
        "YRD_KAFKA_SSL_CAFILE": secured.ca_file,
    }
    for key in [k for k in env if k.startswith("YRD_TOPIC_")]:
        del env[key]
    out = subprocess.run(
        [sys.executable, "-m", "yrd_hazmat.cli", "alerts", "--province", "SH", "--type", "SPEEDING",
         "--from-beginning", "--limit", "2", "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    shown = [json.loads(line) for line in out.stdout.splitlines()]
    assert {(a["vehicle_id"], a["state"]) for a in shown} == {(VEHICLE, "raised"), (VEHICLE, "cleared")}
    assert secured.passwords["police"] not in out.stdout + out.stderr


def test_acls_hold(secured, speeding):
    carrier = client_config(secured, "carrier")
    police = client_config(secured, "police")
    denied = KafkaError.TOPIC_AUTHORIZATION_FAILED
    # carriers write pings only: they cannot even see the alerts topic, nor read it, nor forge alerts
    probe = Consumer(carrier | {"group.id": "carrier-probe"})
    try:
        assert probe.list_topics("yrd.alerts", timeout=10).topics["yrd.alerts"].error.code() == denied
    finally:
        probe.close()
    assert first_error(carrier, "yrd.alerts", "carrier-probe").code() in (
        denied, KafkaError.GROUP_AUTHORIZATION_FAILED)
    [error] = produce(carrier, "yrd.alerts", [(b"x", b"{}")])
    assert error is not None and error.code() == denied
    # police read alerts only: no writing pings, no reading where trucks are
    [error] = produce(police, "yrd.pings", [(VEHICLE.encode(), encode(speeding.pings[0]))])
    assert error is not None and error.code() == denied
    assert first_error(police, "yrd.pings", "police-desk-probe").code() == denied
    # and nobody without a password
    anonymous = {k: v for k, v in carrier.items() if not k.startswith("sasl.")} | {
        "security.protocol": "SSL"}
    consumer = Consumer(anonymous | {"group.id": "x", "socket.timeout.ms": 5000})
    try:
        with pytest.raises(Exception):
            consumer.list_topics(timeout=5)
    finally:
        consumer.close()


def test_the_worker_log_shows_no_password(secured, secured_worker, speeding):
    log = secured_worker.log_path.read_text("utf-8", "replace")
    if "redis_url" in log:  # the worker's settings line shows the URL masked
        assert "rediss://worker:****@" in log
    for user, password in secured.passwords.items():
        assert password not in log, f"{user}'s password is in the worker log"
    services_log = (secured.state / "kafka.log").read_text("utf-8", "replace")
    services_log += (secured.state / "redis.log").read_text("utf-8", "replace")
    for user, password in secured.passwords.items():
        assert password not in services_log, f"{user}'s password is in a service log"


def test_the_demo_on_secured_services_shows_no_password(secured, worker_env, secured_worker, tmp_path):
    """The demo's screen and logs (worker, fleet) with every setting secret-bearing; SIGTERM stops it."""
    from tests.integration.test_demo_signals import DEMO, assert_all_gone, stop_leftovers, wait_until_running

    # Another app id (the worker's ACLs cover yrd-hazmat*), so it does not join the module's worker.
    env = worker_env | {"YRD_APP_ID": "yrd-hazmat-demo", "YRD_STATE_DIR": str(tmp_path),
                        "YRD_METRICS_PORT": str(free_port())}
    screen_file = tmp_path / "screen.txt"
    with screen_file.open("wb") as out:
        demo = subprocess.Popen(DEMO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    screen = lambda: screen_file.read_text("utf-8", "replace")  # noqa: E731
    seen = {"demo": (demo.pid, "yrd_hazmat.cli")}
    try:
        pids = wait_until_running(screen, tmp_path / "logs")
        seen |= {name: (pid, "yrd_hazmat.cli") for name, pid in pids.items()}
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(90) == 0, screen()[-3000:]
        assert_all_gone(seen)
    finally:
        if demo.poll() is None:
            demo.kill()
        stop_leftovers(seen)
    shown = screen()
    assert 'redis-cli -u "$REDIS_URL"' in shown and "rediss://worker:****@" in shown
    texts = {"screen": shown} | {
        log.name: log.read_text("utf-8", "replace") for log in (tmp_path / "logs").glob("*.log")}
    assert {"worker.log", "simulator.log"} <= set(texts)
    for name, text in texts.items():
        for user, password in secured.passwords.items():
            assert password not in text, f"{user}'s password is in the demo's {name}"
