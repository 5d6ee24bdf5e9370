"""Downward requests to lower platforms, on the real broker and real TCP: requests on
yrd.platform-requests sent by the gateway down the platform's slave link, answered by the
simulated lower platform of jt809/platform.py on its main link, each step on
yrd.platform-request-results: inspections answered in time and late, a 2019 supervision
order answered 0x1401 and 0x1412 with its incident, a text and a photo answered (the
picture on yrd.media), a request for a platform whose links are down failed; and the CLI
(``yrd-hazmat platforms``, ``yrd-hazmat platform ... --wait``) end to end."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from tests.integration.test_gateway import running
from tests.integration.test_jt809_platforms import (CIPHER, FAST_SLAVE, code, configure,
                                                    link_settings, metric,
                                                    platform_with_slave, until)
from tests.integration.harness import run_env
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.gateway.platform_requests import make_request
from yrd_hazmat.jt809 import alarms as a
from yrd_hazmat.jt809 import links as lk
from yrd_hazmat.jt809.platform import PICTURE

pytestmark = pytest.mark.integration

CAR = "苏E80911"
CLI = [sys.executable, "-m", "yrd_hazmat.cli"]


@pytest.fixture
def denv(services):
    return run_env(services)


def settings_of(env, **overrides):
    return link_settings(env, topic_platform_requests=env["YRD_TOPIC_PLATFORM_REQUESTS"],
                         topic_platform_request_results=env[
                             "YRD_TOPIC_PLATFORM_REQUEST_RESULTS"],
                         topic_incident_actions=env["YRD_TOPIC_INCIDENT_ACTIONS"],
                         **FAST_SLAVE | overrides)


def ask(kafka, env, access: int, kind: str, **fields):
    """Publish a request (as the desk or the CLI would); returns it."""
    request = make_request(access, kind, by="test", now=datetime.now(CHINA_TZ),
                           expires_in_s=fields.pop("expires_in_s", 60), **fields)
    kafka.send(env["YRD_TOPIC_PLATFORM_REQUESTS"], str(access).encode(), encode(request))
    kafka.flush()
    return request


def answered(gateway, request_id: str, answers: int = 1) -> bool:
    ledger = gateway.dispatcher.ledger
    if request_id in ledger.open:
        return ledger.open[request_id].answers >= answers and answers > 1
    return request_id in ledger.closed


async def test_requests_go_down_and_their_answers_are_recorded(denv, kafka):
    access = code()
    configure(kafka, denv, access_code=access, name="Suzhou provincial", user_id=7102,
              password="s3cret", m1=CIPHER.m1, ia1=CIPHER.ia1, ic1=CIPHER.ic1, edition=2019,
              province="JS")
    settings = settings_of(denv)
    label = str(access)
    async with running(settings) as gateway, platform_with_slave(
            settings.jt809_port, access, 7102, "s3cret", cipher=CIPHER,
            edition=2019) as (platform, slave):
        platform.answers(slave, delays={0x9301: 1.5})
        assert await platform.login() == lk.OK
        await until(lambda: gateway.links.slave_link(access))
        now = datetime.now(CHINA_TZ)
        in_time = ask(kafka, denv, access, "inspection", text="请报告值班人员",
                      deadline=now + timedelta(seconds=30))
        late = ask(kafka, denv, access, "inspection", text="请报告车辆在线率",
                   deadline=now + timedelta(seconds=0.5))
        order = ask(kafka, denv, access, "supervision", vehicle_id=CAR, incident_id="inc-809",
                    warn_type=a.OVERSPEED, warn_time=now - timedelta(minutes=2), alarm_sn=17,
                    deadline=now + timedelta(minutes=30), level=0, supervisor="张监管",
                    supervisor_tel="02512345678", supervisor_email="jg@example.cn")
        text = ask(kafka, denv, access, "text", vehicle_id=CAR, text="请立即减速",
                   deadline=now + timedelta(seconds=30))
        photo = ask(kafka, denv, access, "photo", vehicle_id=CAR, camera=1,
                    deadline=now + timedelta(seconds=30))
        tip = ask(kafka, denv, access, "tip", vehicle_id=CAR, text="前方路段拥堵",
                  warn_type=a.CONGESTION)
        await until(lambda: all(answered(gateway, r.request_id) for r in
                                (in_time, late, text, photo, tip))
                    and answered(gateway, order.request_id, 2), timeout=20)

    results = kafka.read(denv["YRD_TOPIC_PLATFORM_REQUEST_RESULTS"],
                         lambda r: sum(x["status"] == "answered" for x in r) >= 6, settle=0.5)
    steps: dict[str, list[dict]] = {}
    for result in results:
        steps.setdefault(result["request_id"], []).append(result)
    status = {rid: [s["status"] for s in found] for rid, found in steps.items()}
    assert status[in_time.request_id] == ["sent", "answered"]
    assert status[late.request_id] == ["sent", "late", "answered"]
    assert status[order.request_id] == ["sent", "answered", "answered"]
    assert status[text.request_id] == ["sent", "answered"]
    assert status[photo.request_id] == ["sent", "answered"]
    assert status[tip.request_id] == ["sent"]
    sent = steps[in_time.request_id][0]
    assert sent["route"] == "slave" and sent["serial"] > 0
    on_time = steps[in_time.request_id][1]
    assert on_time["late"] is False and 1.0 <= on_time["took_s"] < 10
    assert on_time["answer_kind"] == "inspection_answer" and on_time["answer"]["text"] == "已核实"
    assert steps[late.request_id][2]["late"] is True
    ack, done = steps[order.request_id][1:]
    assert (ack["answer_kind"], ack["answer"]["result"], ack["incident_id"]) == (
        "supervision_answer", a.IN_PROGRESS, "inc-809")
    assert (done["answer_kind"], done["answer"]["result"], done["incident_id"]) == (
        "handling_result", a.DONE, "inc-809")
    assert steps[text.request_id][1]["answer"]["result"] == 0
    notes = kafka.read(denv["YRD_TOPIC_INCIDENT_ACTIONS"], lambda r: len(r) >= 3)
    assert {n["incident_id"] for n in notes} == {"inc-809"}
    assert [n["action"]["kind"] for n in notes] == ["note"] * 3
    assert "sent to platform" in notes[0]["action"]["text"]
    assert "0x1401" in notes[1]["action"]["text"] and "in progress" in notes[1]["action"]["text"]
    assert "done" in notes[2]["action"]["text"]
    pictured = steps[photo.request_id][1]
    [media] = kafka.read(denv["YRD_TOPIC_MEDIA"], lambda r: len(r) >= 1)
    assert (media["media_id"], media["vehicle_id"], media["size"]) == (
        pictured["media_id"], CAR, len(PICTURE))
    order_frame = [f for f in slave.received if f.header.msg_id == a.DOWN_WARN_MSG
                   and a.read(f.header.msg_id, f.body, 2019).sub_type == a.URGE_TODO_REQ]
    assert a.read(a.DOWN_WARN_MSG, order_frame[0].body, 2019).value.supervisor == "张监管"
    assert metric("yrd_jt809_requests_total", platform=label, kind="inspection",
                  result="answered_late") == 1
    assert metric("yrd_jt809_requests_total", platform=label, kind="inspection",
                  result="late") == 1
    assert metric("yrd_jt809_requests_total", platform=label, kind="supervision",
                  result="answered") == 2
    assert metric("yrd_jt809_answer_seconds_count", platform=label, kind="photo") == 1


async def test_the_cli_configures_a_platform_and_waits_for_its_answer(denv, kafka):
    access = code()
    env = denv | {"YRD_JT809_REQUEST_LINK_WAIT_S": "1"}
    added = subprocess.run([*CLI, "platforms", "add", str(access), "--name", "Hefei test",
                            "--user-id", "7103", "--edition", "2011", "--province", "AH",
                            "--password-stdin"], input="pw2011\n", env=env,
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    listed = subprocess.run([*CLI, "platforms", "list"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert str(access) in listed.stdout and "Hefei test" in listed.stdout
    assert "pw2011" not in listed.stdout + listed.stderr + added.stdout + added.stderr
    settings = settings_of(denv, jt809_request_link_wait_s=1.0)
    async with running(settings) as gateway:
        async with platform_with_slave(settings.jt809_port, access, 7103, "pw2011",
                                       edition=2011) as (platform, slave):
            platform.answers(slave)
            assert await platform.login() == lk.OK
            await until(lambda: gateway.links.slave_link(access))
            proc = await asyncio.create_subprocess_exec(
                *CLI, "platform", str(access), "inspect", "--question", "请报告值班人员",
                "--wait", "30", env=env, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            lines = out.decode()
            assert "sent on the slave link" in lines and "answered (inspection_answer)" in lines
            order = [  # a 2011 order, answered 0x1401 and 0x1403
                *CLI, "platform", str(access), "supervise", "--incident", "inc-2011",
                "--plate", CAR, "--deadline", "30", "--supervisor", "王监管", "--level",
                "urgent", "--warn-type", "0x0002", "--wait", "30"]
            proc = await asyncio.create_subprocess_exec(
                *order, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            assert "answered (supervision_answer)" in out.decode()
            await until(lambda: metric("yrd_jt809_requests_total", platform=str(access),
                                       kind="supervision", result="answered") == 2)
            await platform.logout()
        # the platform gone: its links are down, the request fails
        assert not gateway.links.main_link(access) and not gateway.links.slave_link(access)
        proc = await asyncio.create_subprocess_exec(
            *CLI, "platform", str(access), "text", CAR, "请回电", "--wait", "30", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 1 and "failed: link down" in out.decode()
    still = subprocess.run([*CLI, "platforms", "open", "--platform", str(access)], env=env,
                           capture_output=True, text=True, timeout=60)
    assert still.returncode == 0 and still.stdout.strip() == "no open request", still.stdout
    disabled = subprocess.run([*CLI, "platforms", "disable", str(access)], env=env,
                              capture_output=True, text=True, timeout=60)
    assert disabled.returncode == 0, disabled.stderr
    listed = subprocess.run([*CLI, "platforms", "list"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert "disabled" in listed.stdout
    removed = subprocess.run([*CLI, "platforms", "remove", str(access)], env=env,
                             capture_output=True, text=True, timeout=60)
    assert removed.returncode == 0
    listed = subprocess.run([*CLI, "platforms", "list"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert str(access) not in listed.stdout
    assert metric("yrd_jt809_requests_total", platform=str(access), kind="text",
                  result="failed") == 1


async def test_two_gateways_one_holding_the_link_a_request_goes_down_once(denv, kafka):
    """Gateways A and B read every request; the platform is logged in on B only. A, seeing
    on yrd.link-states that B holds the link, records no failure past its link wait; B
    sends the inspection once and, at its deadline, is the only one to note it late."""
    access = code()
    configure(kafka, denv, access_code=access, name="Hefei", user_id=7110, password="pw",
              edition=2011)
    fast = {"jt809_request_link_wait_s": 1.0, "link_state_heartbeat_s": 0.5,
            "topic_link_states": denv["YRD_TOPIC_LINK_STATES"]}
    a_settings = settings_of(denv, **fast)
    b_settings = settings_of(denv, **fast)
    async with running(a_settings) as a_gw, running(b_settings) as b_gw, platform_with_slave(
            b_settings.jt809_port, access, 7110, "pw") as (platform, slave):
        assert await platform.login() == lk.OK
        await until(lambda: b_gw.links.slave_link(access))
        await until(lambda: a_gw._linked_elsewhere(access), timeout=10)
        now = datetime.now(CHINA_TZ)
        question = ask(kafka, denv, access, "inspection", text="请报告值班人员",
                       deadline=now + timedelta(seconds=3))
        await until(lambda: question.request_id in b_gw.dispatcher.ledger.open, timeout=10)
        await asyncio.sleep(4)  # past A's link wait and the deadline
        assert not a_gw.links.main_link(access)
    results = [r for r in kafka.read(denv["YRD_TOPIC_PLATFORM_REQUEST_RESULTS"],
                                     lambda rs: any(r["status"] == "late" for r in rs),
                                     settle=1.0)
               if r["request_id"] == question.request_id]
    assert [(r["status"], r["gateway"]) for r in results] == [
        ("sent", results[0]["gateway"]), ("late", results[0]["gateway"])]
    assert results[0]["gateway"] == b_gw.dispatcher.ledger.gateway
    inspections = [f for f in slave.received if f.header.msg_id == 0x9300]
    assert len(inspections) == 1


async def test_who_drives_is_asked_down_and_answered_with_the_platforms_report(denv, kafka):
    """driver_info (0x920A, 2019 FLAG) down the slave link; the simulated platform answers
    0x120A quoting its MSG_SN: a driver_info report on yrd.platform-reports and the
    request answered with the driver's fields."""
    access = code()
    configure(kafka, denv, access_code=access, name="Nanjing", user_id=7120, password="pw19",
              edition=2019)
    settings = settings_of(denv)
    async with running(settings) as gateway, platform_with_slave(
            settings.jt809_port, access, 7120, "pw19", edition=2019) as (platform, slave):
        platform.answers(slave)
        assert await platform.login() == lk.OK
        await until(lambda: gateway.links.slave_link(access))
        asked = ask(kafka, denv, access, "driver_info", vehicle_id=CAR, driver_flag=1,
                    deadline=datetime.now(CHINA_TZ) + timedelta(seconds=30))
        await until(lambda: answered(gateway, asked.request_id), timeout=20)
    results = [r for r in kafka.read(denv["YRD_TOPIC_PLATFORM_REQUEST_RESULTS"],
                                     lambda rs: any(r["status"] == "answered" for r in rs),
                                     settle=0.5)
               if r["request_id"] == asked.request_id]
    assert [r["status"] for r in results] == ["sent", "answered"]
    sent_, done = results
    assert (done["answer_kind"], done["answer"]["name"], done["answer"]["source_sn"]) == (
        "driver_info", "李四", sent_["serial"])
    assert done["answer"]["valid_until"].startswith("2030-06-30")
    reports = kafka.read(denv["YRD_TOPIC_PLATFORM_REPORTS"],
                         lambda rs: any(r["kind"] == "driver_info" for r in rs))
    [driver] = [r for r in reports if r["kind"] == "driver_info"]
    assert (driver["vehicle_id"], driver["data_type"], driver["platform"]) == (
        CAR, 0x120A, access)
    [request_frame] = [f for f in slave.received if f.header.msg_id == 0x9200]
    assert request_frame.body[-1:] == b"\x01"  # FLAG: ask the terminal
