"""The notifier end to end: a real broker, ``yrd-hazmat notify run`` as its own OS process,
and a real HTTP receiver standing in for a duty room's webhook.

- Killed with SIGKILL at random moments while alerts keep coming, restarted each time: the
  receiver gets every alert raised, signed with the subscription's secret; a second copy
  only of an attempt the kill interrupted, then marked as a possible repeat with the same
  delivery id (so the receiver can drop it); a graceful restart repeats nothing.
- A receiver failing (HTTP 503) gets the alert again later with backoff; one refusing
  (HTTP 400) is given up with the reason; both recorded on ``yrd.notifications``, as
  ``yrd-hazmat notify deliveries`` shows them.
- A burst of alerts beyond a subscription's rate limit: as many messages as the limit
  allows, then one digest counting the rest; alerts another subscription does not name
  never reach it.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec
import pytest

from tests.harness import CliProcess, wait_until
from tests.integration.harness import Kafka, WorkerProcess, run_env
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import (
    Alert, AlertState, City, IncidentAction, IncidentCommand, IncidentLog, Severity,
)
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.notify.channels import verify_webhook

pytestmark = pytest.mark.integration

SECRET = "duty-room-secret"


class Receiver:
    """A webhook endpoint on 127.0.0.1: keeps every request; answers ``status`` (or the
    next of ``script``)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.script: list[int] = []
        self.status = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = receiver.script.pop(0) if receiver.script else receiver.status
                    receiver.received.append({"path": self.path, "headers": dict(self.headers),
                                              "body": body, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def notices(self, path: str) -> list[dict]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.received if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture()
def env(services):
    return run_env(services, YRD_NOTIFY_START="earliest",
                   YRD_NOTIFY_GROUP=f"notify-{uuid.uuid4().hex[:8]}",
                   YRD_NOTIFY_DESK_URL="https://desk.example.org")


class Notifier(CliProcess):
    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__(["notify", "run"], env, log)
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        super().start()
        wait_until(lambda: self.log.read_text("utf-8", "replace").count(
            "deliveries known") >= self.starts, "the notifier started", 90)


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "yrd_hazmat.cli", "notify", *args], env=env,
                          input=stdin, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    return done.stdout


def subscribe(env: dict[str, str], **sub) -> None:
    cli(env, "subscribe", "-", stdin=json.dumps(sub, ensure_ascii=False))


def alert(n: int, *, province: str = "SH", severity: Severity = Severity.WARNING,
          kind: str = "SPEEDING") -> tuple[bytes, bytes]:
    plate = f"沪A{n:05d}"
    at = datetime(2026, 12, 7, 9, 0, tzinfo=CHINA_TZ) + timedelta(seconds=n)
    incident = f"{plate}:{kind}:{n}"
    a = Alert(alert_id=f"{incident}:raised", incident_id=incident, type=kind,
              severity=severity, state=AlertState.RAISED, vehicle_id=plate, ts=at,
              emitted_at=at, lat=31.2, lon=121.5, province=province,
              city=City(code="310115", name="浦东新区"), details={"speed_kmh": 95})
    return plate.encode(), encode(a)


def send(kafka: Kafka, env: dict[str, str], records: list[tuple[bytes, bytes]]) -> None:
    for key, value in records:
        kafka.send(env["YRD_TOPIC_ALERTS"], key, value)
    kafka.flush()


def test_a_killed_notifier_tells_each_alert_once_but_for_a_marked_repeat(services, env,
                                                                          receiver, tmp_path):
    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    rng = random.Random(26)
    subscribe(env, subscription_id="sh-duty", name="上海值班室", provinces=["SH"],
              max_messages=10_000, window_s=60,
              channel={"kind": "webhook", "url": receiver.url("/sh"), "secret": SECRET})
    notifier = Notifier(env, tmp_path / "notifier.log")
    notifier.start()
    records = [alert(n) for n in range(80)]
    chunks = [records[i::5] for i in range(5)]
    kills = 0
    for chunk in chunks:
        send(kafka, env, chunk)
        time.sleep(rng.uniform(0.0, 1.5))
        notifier.kill()  # kill -9 wherever it is: reading, writing, sending
        kills += 1
        notifier.start()
    wanted = {f"沪A{n:05d}:SPEEDING:{n}:raised" for n in range(80)}
    try:
        wait_until(lambda: len({n["notice_id"] for n in receiver.notices("/sh")}) >= 80,
                   "every alert told", 120)
        time.sleep(2)  # a retry under way arrives
        before_restart = len(receiver.received)
        assert notifier.stop() == 0, notifier.tail()
        notifier.start()  # a graceful restart: nothing more is sent
        time.sleep(3)
        assert len(receiver.received) == before_restart, "a graceful restart sent again"
    finally:
        assert notifier.stop() == 0, notifier.tail()

    requests = [r for r in receiver.received if r["path"] == "/sh"]
    for r in requests:  # every request is signed with the subscription's secret
        h = r["headers"]
        assert verify_webhook(SECRET, h["X-YRD-Timestamp"], r["body"], h["X-YRD-Signature"],
                              datetime.now(CHINA_TZ), tolerance_s=600)
        assert h["X-YRD-Delivery"] == json.loads(r["body"])["notice_id"]
    notices = receiver.notices("/sh")
    told = {}
    for n in notices:
        told.setdefault(n["notice_id"], []).append(n)
    assert len(told) == 80
    said = {n["lines"][-1].removeprefix("事件编号: ") for copies in told.values() for n in copies}
    assert {f"{w.rsplit(':', 1)[0]}" for w in wanted} == said
    repeats = {i: copies for i, copies in told.items() if len(copies) > 1}
    assert all(all(c["repeat"] for c in copies[1:]) for copies in repeats.values())
    assert len(repeats) <= kills, "more repeats than interrupted attempts"
    # a receiver dropping a repeated X-YRD-Delivery, as documented (notify sink does), has
    # each alert exactly once
    kept = {}
    for r in requests:
        kept.setdefault(r["headers"]["X-YRD-Delivery"], r)
    assert len(kept) == 80 and len({json.loads(r["body"])["lines"][-1] for r in
                                    kept.values()}) == 80
    assert all(n["link"].startswith("https://desk.example.org/?incident=") for n in notices)

    rows = [json.loads(line) for line in cli(env, "deliveries", "--last", "500").splitlines()]
    assert len(rows) == 80 and {r["state"] for r in rows} == {"sent"}


def test_failing_and_refusing_receivers_are_retried_or_given_up(services, env, receiver,
                                                                tmp_path):
    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    receiver.script = [503, 503]  # the first two answers: the receiver is down
    subscribe(env, subscription_id="retry", name="retried", alert_types=["SPEEDING"],
              channel={"kind": "webhook", "url": receiver.url("/flaky")})
    subscribe(env, subscription_id="refused", name="refused", alert_types=["FATIGUE_DRIVING"],
              channel={"kind": "webhook", "url": receiver.url("/gone")})
    notifier = Notifier(env, tmp_path / "notifier.log")
    notifier.start()
    try:
        send(kafka, env, [alert(1)])
        wait_until(lambda: [r["status"] for r in receiver.received] == [503, 503, 200],
                   "two failures, then delivered", 60)
        receiver.status = 400
        send(kafka, env, [alert(2, kind="FATIGUE_DRIVING")])

        def rows():
            return {r["subscription_id"]: r for r in map(
                json.loads, cli(env, "deliveries").splitlines())}
        wait_until(lambda: rows().get("refused", {}).get("state") == "given_up",
                   "the refused delivery given up", 60)
    finally:
        assert notifier.stop() == 0, notifier.tail()
    found = rows()
    assert found["retry"]["state"] == "sent" and found["retry"]["attempts"] == 3
    assert found["refused"]["attempts"] == 1 and "400" in found["refused"]["reason"]
    times = [r for r in receiver.received if r["path"] == "/flaky"]
    assert len(times) == 3  # given the alert again twice, then never more
    audit = kafka.read(env["YRD_TOPIC_AUDIT"], lambda rs: len(rs) >= 2, 30)
    assert {(e["action"], e["target"], e["role"]) for e in audit} == {
        ("subscription.put", "retry", "cli"), ("subscription.put", "refused", "cli")}


def test_a_burst_beyond_the_rate_limit_comes_as_one_digest(services, env, receiver, tmp_path):
    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    subscribe(env, subscription_id="js-only", name="江苏", provinces=["JS"],
              channel={"kind": "webhook", "url": receiver.url("/js")})
    subscribe(env, subscription_id="burst", name="上海值班室", provinces=["SH"],
              max_messages=5, window_s=10,
              channel={"kind": "webhook", "url": receiver.url("/burst")})
    notifier = Notifier(env, tmp_path / "notifier.log")
    notifier.start()
    try:
        send(kafka, env, [alert(n) for n in range(50)])
        wait_until(lambda: any(n["kind"] == "digest" for n in receiver.notices("/burst")),
                   "the digest", 60)
        time.sleep(1)
    finally:
        assert notifier.stop() == 0, notifier.tail()
    notices = receiver.notices("/burst")
    singles = [n for n in notices if n["kind"] == "alert"]
    digests = [n for n in notices if n["kind"] == "digest"]
    assert len(singles) == 5 and len(digests) == 1
    assert digests[0]["items"] == 45 and digests[0]["subject"].startswith("45 条报警汇总")
    assert digests[0]["lines"][-1].endswith("(and 5 more)")  # 40 listed
    assert receiver.notices("/js") == []


def test_an_unacknowledged_critical_alert_is_escalated_on_time(services, env, receiver,
                                                               tmp_path):
    """Critical alerts: 4 s to acknowledge, 8 s to close. One nobody touches goes to the
    province when its first deadline passes and to the region at its second, each told to
    the subscriptions of that level and recorded on its incident by the keeper; one a duty
    officer acknowledges at once and that then clears is never escalated."""
    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    cli(env, "deadline", "--severity", "critical", "--ack-s", "4", "--close-s", "8")
    subscribe(env, subscription_id="sh-province", name="上海总队", provinces=["SH"],
              events=["escalated"], levels=["province"],
              channel={"kind": "webhook", "url": receiver.url("/province")})
    subscribe(env, subscription_id="region", name="长三角联合办", events=["escalated"],
              levels=["region"], channel={"kind": "webhook", "url": receiver.url("/region")})
    worker = WorkerProcess(env, tmp_path / "worker.log").start()  # the incident keeper
    notifier = Notifier(env, tmp_path / "notifier.log")
    notifier.start()
    try:
        now = datetime.now(CHINA_TZ)
        ignored, handled = (alert_at(n, now, Severity.CRITICAL) for n in (1, 2))
        send(kafka, env, [ignored, handled])
        ack = IncidentCommand(  # as the desk sends it: with the alert, to open the record
            incident_id="沪A00002:ZONE_VIOLATION:2", alert=msgspec.json.decode(handled[1], type=Alert),
            action=IncidentAction(kind="ack", by="sh-duty", at=now + timedelta(seconds=1),
                                  action_id="ack-2"))
        kafka.send(env["YRD_TOPIC_INCIDENT_ACTIONS"], ack.incident_id.encode(), encode(ack))
        kafka.flush()
        cleared = alert_at(2, now, Severity.CRITICAL, state=AlertState.CLEARED)
        send(kafka, env, [cleared])
        wait_until(lambda: receiver.notices("/region"), "the escalation to the region", 60)
        time.sleep(2)
        records = kafka.read(env["YRD_TOPIC_INCIDENTS"], lambda rs: any(
            r and r["incident_id"].startswith("沪A00001") and r.get("level") == "region"
            for r in rs), 30)
    finally:
        assert notifier.stop() == 0, notifier.tail()
        worker.stop()
    province, region = receiver.notices("/province"), receiver.notices("/region")
    assert [n["kind"] for n in province + region] == ["escalation", "escalation"]
    assert "沪A00001" in province[0]["subject"] and "超时升级至省级" in province[0]["subject"]
    assert "超时升级至区域" in region[0]["subject"]
    assert {r["path"] for r in receiver.received} == {"/province", "/region"}
    assert "沪A00002" not in json.dumps([province, region], ensure_ascii=False)
    latest = [r for r in records if r and r["incident_id"].startswith("沪A00001")][-1]
    escalations = [a for a in latest["actions"] if a["kind"] == "escalate"]
    assert [(a["level"], a["by"]) for a in escalations] == [("province", "notifier"),
                                                            ("region", "notifier")]
    raised = now.replace(microsecond=0)
    offsets = [(datetime.fromisoformat(a["at"]) - raised).total_seconds() for a in escalations]
    assert 3 <= offsets[0] <= 5 and 7 <= offsets[1] <= 9  # at the deadlines, not later
    handled_records = [r for r in records if r and r["incident_id"].startswith("沪A00002")]
    assert handled_records and all(r.get("level") is None for r in handled_records)


def alert_at(n: int, now: datetime, severity: Severity,
             state: AlertState = AlertState.RAISED) -> tuple[bytes, bytes]:
    plate = f"沪A{n:05d}"
    incident = f"{plate}:ZONE_VIOLATION:{n}"
    at = now.replace(microsecond=0)
    a = Alert(alert_id=f"{incident}:{state.value}", incident_id=incident, type="ZONE_VIOLATION",
              severity=severity, state=state, vehicle_id=plate, ts=at, emitted_at=at, lat=31.2,
              lon=121.5, province="SH", city=City(code="310115", name="浦东新区"))
    return plate.encode(), encode(a)


def test_an_appeal_and_its_decision_are_told_to_police_and_carrier(services, env, receiver,
                                                                   tmp_path):
    """The police's subscription to appeals hears of a carrier's appeal; the carrier's
    (naming its carrier, from the vehicle register) hears of the decision; another
    carrier's hears of neither."""
    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    kafka.send(env["YRD_TOPIC_PERMITS"], "沪A00001".encode(),
               encode({"vehicle_id": "沪A00001", "carrier": "申通危运"}))
    subscribe(env, subscription_id="sh-appeals", name="上海申诉", provinces=["SH"],
              events=["appealed"], channel={"kind": "webhook", "url": receiver.url("/police")})
    subscribe(env, subscription_id="shentong", name="申通危运监控", carriers=["申通危运"],
              events=["appeal_decided"],
              channel={"kind": "webhook", "url": receiver.url("/carrier")})
    subscribe(env, subscription_id="other", name="别家", carriers=["别家危运"],
              events=["appealed", "appeal_decided"],
              channel={"kind": "webhook", "url": receiver.url("/other")})
    notifier = Notifier(env, tmp_path / "notifier.log")
    notifier.start()
    now = datetime.now(CHINA_TZ).replace(microsecond=0)
    incident = "沪A00001:SPEEDING:1"
    steps = [IncidentAction(kind="raised", by="worker", at=now, action_id="r"),
             IncidentAction(kind="appeal", by="shentong-staff", at=now + timedelta(seconds=1),
                            text="测速设备误差 (a faulty speed reading)", action_id="a1"),
             IncidentAction(kind="appeal_rejected", by="sh-supervisor",
                            at=now + timedelta(seconds=2), text="复核属实 (checked: it stands)",
                            action_id="a2")]
    try:
        for n in (2, 3):  # the keeper's records: the appeal, then the decision
            record = IncidentLog(incident_id=incident, vehicle_id="沪A00001", province="SH",
                                 alert_type="SPEEDING", severity=Severity.WARNING,
                                 raised_at=now, actions=steps[:n],
                                 appeal="open" if n == 2 else "rejected")
            kafka.send(env["YRD_TOPIC_INCIDENTS"], incident.encode(), encode(record))
            kafka.flush()
            wait_until(lambda: len(receiver.received) >= n - 1, f"notice {n - 1}", 60)
        time.sleep(2)
    finally:
        assert notifier.stop() == 0, notifier.tail()
    (police,), (carrier,) = receiver.notices("/police"), receiver.notices("/carrier")
    assert "申诉" in police["subject"] and "测速设备误差" in " ".join(police["lines"])
    assert "申诉处理" in carrier["subject"] and "申诉已驳回" in " ".join(carrier["lines"])
    assert receiver.notices("/other") == []
