"""Real clients and a real worker process for the integration tests (ports, waits and
services: :mod:`tests.harness`).

Pings are produced and alerts read back with confluent-kafka (librdkafka), a
client independent of the worker's aiokafka. The worker runs as its own OS
process, started exactly as a user would (``python -m yrd_hazmat.cli worker``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import asyncio
import urllib.request

import msgspec

from confluent_kafka import Consumer, Producer
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import free_port, listening, terminate, wait_until
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import CommandResult, Ping
from yrd_hazmat.readmodel import ReadModel
from yrd_hazmat.core.timeutil import CHINA_TZ


SIGNAL_LOST_NEVER_S = "10000000"
"""``YRD_SIGNAL_LOST_S`` that no test's silence reaches: no SIGNAL_LOST from the wall clock."""


def run_env(services: dict[str, str], **overrides: str) -> dict[str, str]:
    """Environment of an isolated worker: its own app id, topics, Redis prefix, metrics port.

    Test traces lie minutes in the past, so the timer would find every truck silent; unless
    a test sets ``YRD_SIGNAL_LOST_S`` (the signal tests do), no SIGNAL_LOST comes from the
    wall clock, and a test's alerts depend on its pings alone."""
    run = uuid.uuid4().hex[:8]
    env = dict(os.environ) | services | {
        "YRD_APP_ID": f"yrd-test-{run}",
        "YRD_TOPIC_PINGS": f"t{run}.pings",
        "YRD_TOPIC_ALERTS": f"t{run}.alerts",
        "YRD_TOPIC_DEADLETTER": f"t{run}.deadletter",
        "YRD_TOPIC_PERMITS": f"t{run}.permits",
        "YRD_TOPIC_ZONES": f"t{run}.zones",
        "YRD_TOPIC_HANDOVERS": f"t{run}.handovers",
        "YRD_TOPIC_RESOURCES": f"t{run}.resources",
        "YRD_TOPIC_INCIDENTS": f"t{run}.incidents",
        "YRD_TOPIC_INCIDENT_ACTIONS": f"t{run}.incident-actions",
        "YRD_TOPIC_TERMINALS": f"t{run}.terminals",
        "YRD_TOPIC_VEHICLE_TERMINALS": f"t{run}.vehicle-terminals",
        "YRD_TOPIC_COMMANDS": f"t{run}.commands",
        "YRD_TOPIC_COMMAND_RESULTS": f"t{run}.command-results",
        "YRD_TOPIC_MEDIA": f"t{run}.media",
        "YRD_TOPIC_PLATFORMS": f"t{run}.platforms",
        "YRD_TOPIC_PLATFORM_VEHICLES": f"t{run}.platform-vehicles",
        "YRD_TOPIC_EWAYBILLS": f"t{run}.ewaybills",
        "YRD_TOPIC_PLATFORM_REPORTS": f"t{run}.platform-reports",
        "YRD_TOPIC_PLATFORM_REQUESTS": f"t{run}.platform-requests",
        "YRD_TOPIC_PLATFORM_REQUEST_RESULTS": f"t{run}.platform-request-results",
        "YRD_TOPIC_UPLINK_REQUESTS": f"t{run}.uplink-requests",
        "YRD_TOPIC_UPLINK_ANSWERS": f"t{run}.uplink-answers",
        "YRD_TOPIC_LINK_STATES": f"t{run}.link-states",
        "YRD_TOPIC_SUBSCRIPTIONS": f"t{run}.subscriptions",
        "YRD_TOPIC_NOTIFICATIONS": f"t{run}.notifications",
        "YRD_TOPIC_DEADLINES": f"t{run}.deadlines",
        "YRD_TOPIC_DESK_USERS": f"t{run}.desk-users",
        "YRD_TOPIC_AUDIT": f"t{run}.audit",
        "YRD_REDIS_PREFIX": f"t{run}",
        "YRD_METRICS_PORT": str(free_port()),
        "YRD_JT808_PORT": str(free_port()),
        "YRD_GATEWAY_METRICS_PORT": str(free_port()),
        "YRD_DESK_PORT": str(free_port()),
        "YRD_ARCHIVE_METRICS_PORT": str(free_port()),
        "YRD_NOTIFY_METRICS_PORT": str(free_port()),
        "YRD_BATCH_WITHIN_S": "0.05",
        # Trucks of most tests carry no permit; the permit tests require one (".*").
        "YRD_PERMIT_REQUIRED_PATTERN": "",
        "YRD_SIGNAL_LOST_S": SIGNAL_LOST_NEVER_S,
    }
    return env | overrides


class WorkerProcess:
    """``yrd-hazmat worker`` as a child process, with its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> "WorkerProcess":
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "yrd_hazmat.cli", "worker", "--loglevel", "info"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            text = self.log_path.read_bytes()[offset:].decode("utf-8", "replace")
            metrics = self.env.get("YRD_METRICS_PORT")
            # ready: Faust says so and the metrics are served (a task of their own, which
            # can come up after Faust's "Ready": a test scraping at once was refused)
            if "Ready" in text and (metrics is None or listening(metrics)):
                return self
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready in {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as a supervisor would; returns the exit code."""
        assert self.proc is not None
        code, stopped = terminate(self.proc, timeout)
        if not stopped:
            raise RuntimeError(f"worker ignored SIGTERM:\n{self.log_tail()}")
        return code

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])


class Kafka:
    """confluent-kafka producer and read-back helpers."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",  # the Java clients' partitioner
            "enable.idempotence": True,
            "message.max.bytes": 2_000_000,
            "linger.ms": 5,
        })

    def send_pings(self, topic: str, pings: list[Ping]) -> None:
        for p in pings:
            self.send(topic, p.vehicle_id.encode(), encode(p))
        self.flush()

    def send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.producer.produce(topic, key=key, value=value)
        self.producer.poll(0)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0, "messages left undelivered"

    def read(
        self,
        topic: str,
        until: Callable[[list[dict]], bool],
        timeout: float = 60.0,
        settle: float = 0.0,
    ) -> list[dict]:
        """JSON records of ``topic`` from its start, once ``until(records)`` holds.

        With ``settle``, keep reading that many seconds more, so a test that
        expects exactly N records also sees an unwanted N+1st.
        """
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        })
        consumer.subscribe([topic])
        records: list[dict] = []
        deadline = time.monotonic() + timeout
        met = False
        try:
            while time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is not None and not msg.error():
                    value = msg.value()  # None for a tombstone
                    records.append(json.loads(value) if value is not None else None)
                if not met and until(records):
                    met = True
                    deadline = time.monotonic() + settle
        finally:
            consumer.close()
        if not met:
            raise TimeoutError(f"{topic}: condition not met in {timeout} s; got {records!r}"[:4000])
        return records


    def alerts_to_barrier(self, env: dict[str, str], *lasts: Ping,
                          timeout: float = 90.0) -> list[dict]:
        """The alerts of the vehicles of ``lasts`` (each one's last ping sent), complete:
        proven by a barrier, not by waiting a fixed time.

        For each vehicle, a barrier ping 1 ms after its last one, at the same place and
        speed and alarms, plus the JT/T 808 SOS bit. A vehicle's pings share a partition and are
        processed in order, and its alerts share a partition of the alerts topic, so once
        the barrier's DEVICE_ALARM is read every alert of the earlier pings is too. Returns
        every alert read, with each barrier vehicle's alerts cut before its barrier's. One
        barrier per vehicle: its SOS stays on, so a second one would raise nothing.
        """
        barriers = {p.vehicle_id: msgspec.structs.replace(
            p, ts=p.ts + timedelta(milliseconds=1), alarm_flags=p.alarm_flags | SOS)
            for p in lasts}
        self.send_pings(env["YRD_TOPIC_PINGS"], list(barriers.values()))

        def at_barrier(alert: dict) -> bool:
            barrier = barriers.get(alert.get("vehicle_id"))
            return (barrier is not None and alert["type"] == "DEVICE_ALARM"
                    and alert["details"]["alarm"] == "sos"
                    and datetime.fromisoformat(alert["ts"]) == barrier.ts)

        def all_passed(records: list[dict]) -> bool:
            return len({a["vehicle_id"] for a in records if at_barrier(a)}) == len(barriers)

        records = self.read(env["YRD_TOPIC_ALERTS"], all_passed, timeout)
        passed: set[str] = set()
        kept = []
        for alert in records:
            if at_barrier(alert):
                passed.add(alert["vehicle_id"])
            elif alert.get("vehicle_id") not in passed:
                kept.append(alert)
        return kept


SOS = 1 << 0
"""JT/T 808 alarm bit 0 (the barrier pings' DEVICE_ALARM)."""


def scrape(port: str | int) -> dict[tuple[str, tuple], float]:
    """The worker's /metrics as {(sample name, sorted labels): value}."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def latest_ts(redis_url: str, prefix: str, vehicle: str) -> str | None:
    """The event time of the vehicle's latest processed ping, from the read model."""
    async def read() -> str | None:
        model = ReadModel.from_url(redis_url, prefix=prefix)
        try:
            return (await model.vehicle(vehicle)).get("ts")
        finally:
            await model.close()

    return asyncio.run(read())


def wait_processed(env: dict[str, str], vehicle: str, ping: Ping, timeout: float = 60) -> None:
    """Wait until the worker has processed ``ping`` (the vehicle's latest)."""
    wait_until(
        lambda: latest_ts(env["REDIS_URL"], env["YRD_REDIS_PREFIX"], vehicle) == ping.ts.isoformat(),
        f"{vehicle} processed up to {ping.ts.isoformat()}", timeout,
    )


def write_results(env: dict[str, str], kafka: "Kafka", command: dict,
                  *steps: tuple[str, dict]) -> None:
    """Write result records for ``command`` (key: its plate), as gateways would."""
    for status, fields in steps:
        result = CommandResult(command_id=command["command_id"], vehicle_id=command["vehicle_id"],
                               status=status, at=datetime.now(CHINA_TZ), **fields)
        kafka.send(env["YRD_TOPIC_COMMAND_RESULTS"], command["vehicle_id"].encode(),
                   encode(result))
    kafka.flush()
