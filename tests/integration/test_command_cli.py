"""``yrd-hazmat command`` against the real broker: it publishes the command, and prints
the results another producer (here the test, standing in for a gateway) writes."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from tests.integration.harness import Kafka, run_env, write_results


@pytest.fixture(scope="module")
def env(services):
    run = uuid.uuid4().hex[:8]
    env = run_env(services, YRD_TOPIC_COMMANDS=f"t{run}.commands",
                  YRD_TOPIC_COMMAND_RESULTS=f"t{run}.command-results",
                  YRD_TOPIC_MEDIA=f"t{run}.media")
    made = cli(env, "topics")
    assert made.returncode == 0, made.stderr
    return env


@pytest.fixture(scope="module")
def kafka(services) -> Kafka:
    return Kafka(services["KAFKA_BOOTSTRAP"])


def cli(env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yrd_hazmat.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def start_cli(env, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "yrd_hazmat.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def issued(env, kafka, plate: str) -> dict:
    """The command the CLI published for ``plate``."""
    records = kafka.read(env["YRD_TOPIC_COMMANDS"],
                         until=lambda rs: any(r and r["vehicle_id"] == plate for r in rs))
    return [r for r in records if r and r["vehicle_id"] == plate][-1]


def test_a_position_query_prints_each_step_and_the_position(env, kafka):
    proc = start_cli(env, "command", "沪A90001", "position", "--by", "duty-sh", "--wait", "60")
    try:
        command = issued(env, kafka, "沪A90001")
        assert (command["kind"], command["issued_by"]) == ("position_query", "duty-sh")
        write_results(env, kafka, command,
               ("claimed", {"gateway": "gw-1", "detail": "to deliver"}),
               ("sent", {"gateway": "gw-1", "serial": 7, "detail": "0x8201"}),
               ("ok", {"gateway": "gw-1", "serial": 7, "position": {
                   "lat": 31.2304, "lon": 121.4737, "ts": "2026-11-29T14:00:05+08:00",
                   "speed_kmh": 62.5, "heading": 90, "altitude_m": 12, "fix_valid": True}}))
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == f"command {command['command_id']} to 沪A90001"
    assert [line.split()[1] for line in lines[1:]] == ["CLAIMED", "SENT", "OK"]
    assert "31.230400,121.473700 at 2026-11-29T14:00:05+08:00, 62.5 km/h" in lines[3]


def test_a_losing_claim_is_not_shown_and_a_refusal_exits_1(env, kafka):
    proc = start_cli(env, "command", "沪A90002", "text", "前方事故，请绕行", "--tts",
                     "--wait", "60")
    try:
        command = issued(env, kafka, "沪A90002")
        assert (command["text"], command["tts"]) == ("前方事故，请绕行", True)
        write_results(env, kafka, command,
               ("claimed", {"gateway": "gw-1"}),
               ("claimed", {"gateway": "gw-2"}),  # second in the log: loses
               ("sent", {"gateway": "gw-1", "serial": 3}),
               ("unsupported", {"gateway": "gw-1", "serial": 3}))
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, (out, err)
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["CLAIMED", "SENT",
                                                                   "UNSUPPORTED"]
    assert "gw-2" not in out


def test_a_wait_without_a_final_result_says_why_and_exits_1(env, kafka):
    done = cli(env, "command", "沪A90003", "photo", "--camera", "2", "--wait", "3")
    assert done.returncode == 1
    assert "no result after 3 s: not delivered yet: no gateway holds 沪A90003's terminal" in \
        done.stderr
    command = issued(env, kafka, "沪A90003")
    assert (command["kind"], command["camera"]) == ("photo", 2)
    assert command["expires_at"] > command["issued_at"]  # RFC 3339, both +08:00


def test_a_command_no_terminal_could_take_is_a_usage_error_and_not_published(env, kafka):
    done = cli(env, "command", "沪A90004", "text", "前方🚒", "--wait", "3")
    assert done.returncode == 2
    assert "'🚒' (position 2) has no GBK code" in done.stderr
    bad = cli(env, "command", "沪A90004", "text", "ok", "--expires-in", "0")
    assert bad.returncode == 2 and "expires in 0 s" in bad.stderr
    records = kafka.read(env["YRD_TOPIC_COMMANDS"], until=lambda rs: True, settle=1.0)
    assert not [r for r in records if r and r["vehicle_id"] == "沪A90004"]
