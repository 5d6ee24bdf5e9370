"""The demo's two platform simulators end to end, each as the demo runs it (its own OS
process, real TCP, a real broker):

- ``yrd-hazmat simulate-upper`` (a national platform) with ``yrd-hazmat uplink`` logged in
  to it: pings produced on the pings topic reach it (its summary line counts them), its
  inspection question and its supervision order about an alarm it received land on
  ``yrd.uplink-requests`` with their deadline, and a person's answers put on
  ``yrd.uplink-answers`` come back to it, timed, in time;
- ``yrd-hazmat simulate --protocol jt809`` (an enterprise platform) logged in to the
  gateway gives its slave-link address, the gateway connects there, and ``yrd-hazmat
  platform CODE inspect --wait`` gets its answer after the platform's delay; a text is
  answered too.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from tests.harness import free_port, terminate, wait_until
from tests.integration.harness import Kafka, run_env
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import Alert, AlertState, Ping, Severity
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.uplink.records import UplinkAnswer, UplinkRequest
from yrd_hazmat.uplink.simulator import QUESTIONS

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "yrd_hazmat.cli"]
PLATES = [f"浙B{n:05d}" for n in range(11, 15)]


class Child:
    """A ``yrd-hazmat`` command as its own process, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen([*CLI, *args], env=env, stdout=log.open("ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def text(self) -> str:
        return self.log.read_text("utf-8", "replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> int:
        return terminate(self.proc, timeout)[0]


def positions(upper: Child) -> tuple[int, int]:
    """(live, re-sent) of the simulated national platform's latest summary line."""
    found = re.findall(r"positions (\d+) live, (\d+) re-sent", upper.text())
    return (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)


@pytest.mark.parametrize("edition", [2011, 2019])
def test_the_national_platform_gets_positions_and_its_requests_reach_the_desk(
        services, tmp_path, edition):
    run = uuid.uuid4().hex[:8]
    env = run_env(services) | {
        "YRD_UPLINK_HOST": "127.0.0.1", "YRD_UPLINK_PORT": str(free_port()),
        "YRD_UPLINK_USER_ID": "8001", "YRD_UPLINK_PASSWORD": "demo8091",
        "YRD_UPLINK_ACCESS_CODE": "31000000", "YRD_UPLINK_EDITION": str(edition),
        "YRD_UPLINK_DOWN_HOST": "127.0.0.1", "YRD_UPLINK_DOWN_PORT": str(free_port()),
        "YRD_UPLINK_GROUP": f"uplink-{run}", "YRD_UPLINK_METRICS_PORT": "0",
        "YRD_UPLINK_RETRY_MAX_S": "2",
    }
    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    minutes = 7 if edition == 2019 else None
    upper = Child(["simulate-upper", "--first-inspection", "4", "--inspect-every", "600",
                   "--order-every", "3", "--order-minutes", "20", "--summary-every", "2",
                   *(["--answer-minutes", str(minutes)] if minutes else [])],
                  env, tmp_path / "upper.log")
    uplink = None
    try:
        wait_until(lambda: "simulated upper platform on" in upper.text(), "the simulator "
                   "listening", 60)
        uplink = Child(["uplink"], env, tmp_path / "uplink.log")
        wait_until(lambda: "lower platform logged in" in upper.text(),
                   f"the uplink's login\n{upper.tail()}\n{uplink.tail()}", 120)
        time.sleep(2)  # past the uplink's first (empty) re-send: what comes now goes live
        now = datetime.now(CHINA_TZ).replace(microsecond=0)
        sent = 0
        for k in range(5):
            for n, plate in enumerate(PLATES):
                kafka.send(env["YRD_TOPIC_PINGS"], plate.encode(), encode(Ping(
                    vehicle_id=plate, ts=now - timedelta(seconds=60 - k), lat=30.25 + n / 100,
                    lon=120.15 + k / 1000, speed_kmh=60.0)))
                sent += 1
        alert = Alert(alert_id=f"{run}:raised", incident_id=run, type="SPEEDING",
                      severity=Severity.WARNING, state=AlertState.RAISED, vehicle_id=PLATES[2],
                      ts=now, emitted_at=now, lat=30.27, lon=120.15, province="ZJ")
        kafka.send(env["YRD_TOPIC_ALERTS"], PLATES[2].encode(), encode(alert))
        kafka.flush()
        wait_until(lambda: positions(upper)[0] >= sent, f"{sent} positions counted live by "
                   f"the national platform\n{upper.tail()}", 60)
        assert positions(upper)[1] == 0

        # its inspection and its order about the alarm land on the requests topic
        records = kafka.read(env["YRD_TOPIC_UPLINK_REQUESTS"],
                             lambda r: {"inspection", "supervision"} <= {x["kind"] for x in r},
                             90)
        by_kind = {r["kind"]: msgspec.convert(r, UplinkRequest) for r in records}
        inspection, order = by_kind["inspection"], by_kind["supervision"]
        assert inspection.question == QUESTIONS[0] and inspection.link == "slave"
        allowed = timedelta(minutes=minutes) if minutes else timedelta(seconds=600)
        assert inspection.deadline - inspection.received_at == allowed
        assert timedelta(minutes=19) < order.deadline - order.received_at <= timedelta(minutes=20)
        if edition == 2011:  # SPEEDING went up as overspeed 0x0001
            assert (order.plate, order.warn_type) == (PLATES[2], 0x0001)
        else:  # 2019: the order quotes the alarm report's frame
            assert order.source_type == 0x1402 and order.source_sn

        # a person answers both on the desk's topic: the national platform gets them, timed
        at = datetime.now(CHINA_TZ)
        for answer in (UplinkAnswer(request=inspection, answered_by="region-demo",
                                    answered_at=at, content="值班: 李四 13800000000"),
                       UplinkAnswer(request=order, answered_by="region-demo", answered_at=at,
                                    result=1)):
            kafka.send(env["YRD_TOPIC_UPLINK_ANSWERS"], answer.request.request_id.encode(),
                       encode(answer))
        kafka.flush()
        wait_until(lambda: re.search(r"answer to inspection #\d+ \(.*\) after [\d.]+ s, within "
                                     r".*: 值班: 李四", upper.text())
                   and re.search(r"answer to supervision order #\d+ .* after [\d.]+ s, within",
                                 upper.text()),
                   f"both answers timed by the national platform\n{upper.tail()}", 60)
        wait_until(lambda: re.search(r"inspections 1 sent, 1 answered \(1 in time, 0 late\)",
                                     upper.text()), "the summary counting the answer", 20)
        assert "answers to nothing asked" not in upper.text()
        assert uplink.stop() == 0, uplink.tail()
        wait_until(lambda: "the lower platform logged out" in upper.text(),
                   "the uplink's logout", 10)
    finally:
        if uplink is not None:
            uplink.stop()
        code = upper.stop()
    assert code == 0, upper.tail()
    assert upper.text().splitlines()[-1].split("summary: ")[1].startswith("positions")


async def test_the_national_platform_keeps_its_slave_link_alive_and_connects_it_again():
    """The uplink's slave-link server drops a link silent for its idle time (180 s; 1 s
    here): the national platform tests its slave link (0x9005) more often than that, and
    connects it again when the lower platform drops it while the main link is up."""
    import asyncio

    from yrd_hazmat.jt809.platform import SimulatedPlatform
    from yrd_hazmat.uplink.session import LinkConfig
    from yrd_hazmat.uplink.slave import SlaveServer
    from yrd_hazmat.uplink.simulator import UpperPlatform

    async def nothing(frame, link) -> None:
        return None

    upper = UpperPlatform(user_id=8001, password="demo8091", center=31000000,
                          slave_keepalive_s=0.3, slave_retry_s=0.3)
    port, down_port = await upper.start(), free_port()
    lower = SimulatedPlatform(8001, "demo8091", 31000000, down_port=down_port)
    config = LinkConfig(user_id=8001, password="demo8091", center=31000000,
                        down_port=down_port)
    slave = SlaveServer(config, lambda: lower.verify_code, nothing, idle_s=1.0)
    await slave.start("127.0.0.1", down_port)

    async def until(condition, what: str, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, what
            await asyncio.sleep(0.05)

    try:
        await lower.connect("127.0.0.1", port)
        assert await lower.login() == 0
        await until(lambda: upper.slave_up and slave.up, "the slave link up")
        await asyncio.sleep(3.0)  # three idle times: kept up by the link tests
        assert upper.slave_up and slave.up and upper.slave_logins == 1
        await slave.stop()  # the lower platform's server goes away, then comes back
        await until(lambda: not upper.slave_up, "the slave link seen down")
        slave = SlaveServer(config, lambda: lower.verify_code, nothing, idle_s=1.0)
        await slave.start("127.0.0.1", down_port)
        await until(lambda: upper.slave_up and slave.up, "the slave link up again")
        assert upper.slave_logins == 2
    finally:
        await lower.close()
        await slave.stop()
        await upper.stop()


def test_the_enterprise_platform_answers_the_gateways_inspection_after_its_delay(
        services, tmp_path):
    access = str(30_000_000 + uuid.uuid4().int % 1_000_000)
    env = run_env(services) | {
        "YRD_JT809_PORT": str(free_port()), "YRD_JT809_USER_ID": "7001",
        "YRD_JT809_PASSWORD": "demo8090", "YRD_JT809_ACCESS_CODE": access,
        "YRD_JT809_M1": "30000000", "YRD_JT809_IA1": "20000000", "YRD_JT809_IC1": "10000000",
    }
    subprocess.run([*CLI, "topics"], env=env, check=True, capture_output=True, timeout=120)
    gateway = Child(["gateway"], env, tmp_path / "gateway.log")
    platform = Child(["simulate", "--protocol", "jt809", "--vehicles", "2", "--interval", "1",
                      "--seed", "809", "--answer-after", "4"], env, tmp_path / "platform.log")
    try:
        wait_until(lambda: "slave link: the gateway connected (DOWN_CONNECT_REQ result 0)"
                   in platform.text(),
                   f"the gateway on the platform's slave link\n{platform.tail()}\n"
                   f"{gateway.tail()}", 120)
        started = time.monotonic()
        asked = subprocess.run([*CLI, "platform", access, "inspect", "--question",
                                "请报告值班人员", "--wait", "60"], env=env, capture_output=True,
                               text=True, timeout=120)
        assert asked.returncode == 0, asked.stdout + asked.stderr + platform.tail()
        assert time.monotonic() - started >= 4
        found = re.search(r"answered \(inspection_answer\) after ([\d.]+) s: "
                          r"已核实，值班员在岗", asked.stdout)
        assert found, asked.stdout
        assert 4.0 <= float(found[1]) < 30, asked.stdout
        assert re.search(r"sent on the slave link", asked.stdout), asked.stdout
        texted = subprocess.run([*CLI, "platform", access, "text", "粤B12345", "请减速",
                                 "--wait", "60"], env=env, capture_output=True, text=True,
                                timeout=120)
        assert texted.returncode == 0, texted.stdout + texted.stderr
        assert "answered (text_answer)" in texted.stdout, texted.stdout
        log = platform.text()
        assert re.search(r"inspection 0x9301 received on the slave link \(MSG_SN \d+\): "
                         r"answering in 4 s", log), platform.tail()
        assert "answered inspection 0x9301" in log, log[-3000:]
        assert "answered text 0x9503" in log, log[-3000:]
        assert platform.proc.poll() is None and gateway.proc.poll() is None  # still running
    finally:
        platform.stop()
        gateway.stop()
