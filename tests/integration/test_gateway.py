"""The JT/T 808 gateway on the real broker: simulated terminals over TCP, pings on Kafka."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from datetime import datetime, timedelta

import pytest

from yrd_hazmat.config import Settings
from yrd_hazmat.gateway.server import Gateway
from yrd_hazmat.jt808 import messages as m
from yrd_hazmat.jt808.terminal import SimulatedTerminal
from tests import jt809_layout as m809
from yrd_hazmat.jt809.frame import Cipher
from yrd_hazmat.jt809.platform import SimulatedPlatform
from yrd_hazmat.core.timeutil import CHINA_TZ
from tests.harness import free_port
from tests.integration.harness import run_env
from tests.integration.traces import PEOPLES_SQUARE, of

pytestmark = pytest.mark.integration


GATEWAY_TOPICS = ("pings", "deadletter", "terminals", "vehicle_terminals", "commands",
                  "command_results", "media")


def gateway_settings(env: dict[str, str], **overrides) -> Settings:
    """One gateway's (or a command line's) settings: the run's topics, its own ports."""
    topics = {f"topic_{name}": env[f"YRD_TOPIC_{name.upper()}"] for name in GATEWAY_TOPICS}
    return Settings(kafka_bootstrap=env["KAFKA_BOOTSTRAP"], app_id=env["YRD_APP_ID"],
                    jt808_port=free_port(), jt809_port=free_port(), gateway_metrics_port=0,
                    **topics | overrides)


@contextlib.asynccontextmanager
async def running(settings: Settings):
    gateway = Gateway(settings)
    await asyncio.wait_for(gateway.start(), 60)
    try:
        yield gateway
    finally:
        await gateway.stop()


async def terminal(gateway: Gateway, phone: str, plate: str, version=None) -> SimulatedTerminal:
    t = SimulatedTerminal(phone, plate, version=version)
    await t.connect("127.0.0.1", gateway.port)
    return t


@pytest.fixture
def genv(services):
    return run_env(services)


@pytest.mark.parametrize("version", [None, 1], ids=["2013", "2019"])
async def test_a_terminal_logs_in_and_its_positions_become_pings(genv, kafka, version):
    plate = f"沪A{uuid.uuid4().int % 100000:05d}"
    t0 = datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(minutes=5)
    async with running(gateway_settings(genv)) as gateway:
        truck = await terminal(gateway, "13900001234", plate, version)
        await truck.login()
        results = [await truck.report(t0 + timedelta(seconds=10 * i), PEOPLES_SQUARE[1],
                                      PEOPLES_SQUARE[0] + 0.001 * i, 62.5 + i, heading=90,
                                      alarm=(1 << 29) if i == 2 else 0, mileage_km=1000.5)
                   for i in range(3)]
        assert results == [m.OK] * 3
        assert await truck.heartbeat() == m.OK
        await truck.close()
    pings = of(kafka.read(genv["YRD_TOPIC_PINGS"], lambda r: len(r) >= 3), plate)
    assert [p["ts"] for p in pings] == [(t0 + timedelta(seconds=10 * i)).isoformat()
                                        for i in range(3)]
    assert [p["speed_kmh"] for p in pings] == [62.5, 63.5, 64.5]
    assert pings[0]["lat"] == PEOPLES_SQUARE[1] and pings[1]["lon"] == round(PEOPLES_SQUARE[0] + 0.001, 6)
    assert [p["alarm_flags"] for p in pings] == [0, 0, 1 << 29]
    assert pings[0]["crs"] == "WGS84" and pings[0]["mileage_km"] == 1000.5
    assert pings[0]["status_flags"] == 0b11 and pings[0]["heading"] == 90


async def test_a_blind_area_upload_hours_late_arrives_whole(genv, kafka):
    hours_ago = datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(hours=3)
    async with running(gateway_settings(genv)) as gateway:
        truck = await terminal(gateway, "13900005678", "苏E12345")
        await truck.login()
        for i in range(45):  # 45 positions kept in a tunnel, uploaded 20 at a time
            truck.keep(hours_ago + timedelta(seconds=10 * i), 31.3, 120.6 + 0.001 * i, 55.0)
        assert await truck.upload(blind=True) == m.OK
        await truck.close()
    pings = of(kafka.read(genv["YRD_TOPIC_PINGS"], lambda r: len(r) >= 45), "苏E12345")
    assert len(pings) == 45
    assert pings[0]["ts"] == hours_ago.isoformat()
    assert pings[-1]["ts"] == (hours_ago + timedelta(seconds=440)).isoformat()


async def test_bad_frames_are_answered_dead_lettered_and_the_connection_goes_on(genv, kafka):
    async with running(gateway_settings(genv)) as gateway:
        truck = await terminal(gateway, "13900009999", "浙A54321")
        # a position before authenticating: failure
        assert await truck.report(datetime.now(CHINA_TZ), 30.27, 120.15, 40.0) == m.FAILURE
        await truck.login()
        # an unknown message: not supported
        assert (await truck.request(0x0900, b"\x01\x02"))[1][4] == m.NOT_SUPPORTED
        # a corrupted check code: bad message
        serial, wire = truck.frame(m.HEARTBEAT, b"")
        corrupted = wire[:-2] + bytes([wire[-2] ^ 0x5A]) + wire[-1:]
        await truck.send_raw(corrupted)
        assert (await truck.answer_to(serial))[1][4] == m.BAD_MESSAGE
        # still served
        assert await truck.report(datetime.now(CHINA_TZ), 30.27, 120.15, 40.0) == m.OK
        await truck.close()
    dead = kafka.read(genv["YRD_TOPIC_DEADLETTER"], lambda r: len(r) >= 3)
    assert sorted(d["reason"] for d in dead) == ["bad_check_code", "not_authenticated",
                                                  "unsupported"]
    for letter in dead:
        assert letter["source_topic"] == "jt808" and letter["error"]
        assert base64.b64decode(letter["raw"])[0] == 0x7E  # the frame as received
    bad = next(d for d in dead if d["reason"] == "bad_check_code")
    assert base64.b64decode(bad["raw"]) == corrupted
    assert of(kafka.read(genv["YRD_TOPIC_PINGS"], lambda r: len(r) >= 1), "浙A54321")


async def test_a_restarted_gateway_accepts_a_terminal_registered_before(genv):
    settings = gateway_settings(genv)
    async with running(settings) as first:
        truck = await terminal(first, "13900004321", "皖A11111")
        code = await truck.register()
        await truck.close()
    async with running(settings) as second:  # a new process would read the same topic
        assert second.registry["13900004321"].auth_code == code
        again = await terminal(second, "13900004321", "皖A11111")
        assert await again.authenticate(code) == m.OK
        assert await again.authenticate("not-the-code") == m.FAILURE
        await again.close()


async def test_a_second_running_gateway_accepts_a_terminal_registered_on_the_first(genv):
    first_settings = gateway_settings(genv)
    second_settings = gateway_settings(genv)  # same topics, its own port
    async with running(first_settings) as first, running(second_settings) as second:
        truck = await terminal(first, "13900002468", "皖B22222")
        code = await truck.register()
        await truck.close()
        for _ in range(100):  # the second follows yrd.terminals
            if "13900002468" in second.registry:
                break
            await asyncio.sleep(0.1)
        moved = await terminal(second, "13900002468", "皖B22222")
        assert await moved.authenticate(code) == m.OK
        await moved.close()


async def test_idle_connections_are_closed_and_a_flood_is_bounded(genv):
    async with running(gateway_settings(genv, gateway_idle_s=1.0,
                                        gateway_max_connections=2)) as gateway:
        idle = await asyncio.open_connection("127.0.0.1", gateway.port)
        other = await asyncio.open_connection("127.0.0.1", gateway.port)
        await asyncio.sleep(0.2)
        over = await asyncio.open_connection("127.0.0.1", gateway.port)
        assert await asyncio.wait_for(over[0].read(10), 5) == b""  # refused: closed at once
        assert await asyncio.wait_for(idle[0].read(10), 5) == b""  # closed after 1 s silent
        for _, writer in (idle, other, over):
            writer.close()
        truck = await terminal(gateway, "13900000001", "沪A00001")
        await truck.register()  # the gateway still serves
        await truck.close()


async def test_positions_through_the_gateway_raise_alerts_in_the_worker(env, kafka, worker):
    """End to end: terminal -> gateway -> yrd.pings -> worker -> yrd.alerts."""
    t0 = datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(minutes=5)
    async with running(gateway_settings(env)) as gateway:
        truck = await terminal(gateway, "13900007777", "沪A77777")
        await truck.login()
        for i in range(12):  # 95 km/h for 55 s, then 70: one speeding episode
            await truck.report(t0 + timedelta(seconds=5 * i), PEOPLES_SQUARE[1],
                               PEOPLES_SQUARE[0] + 0.0013 * i, 95.0 if i < 11 else 70.0)
        await truck.close()
    alerts = kafka.read(env["YRD_TOPIC_ALERTS"], lambda r: len(of(r, "沪A77777")) >= 2)
    assert [(a["type"], a["state"]) for a in of(alerts, "沪A77777")][:2] == [
        ("SPEEDING", "raised"), ("SPEEDING", "cleared")]
    assert of(alerts, "沪A77777")[0]["ts"] == (t0 + timedelta(seconds=30)).isoformat()


LINK = {"jt809_user_id": 7001, "jt809_password": "pw123456", "jt809_access_code": 30010001,
        "jt809_m1": 30000000, "jt809_ia1": 20000000, "jt809_ic1": 10000000}


async def test_a_platform_link_passes_real_time_and_history_positions_up(genv, kafka):
    settings = gateway_settings(genv, **LINK)
    cipher = Cipher(LINK["jt809_m1"], LINK["jt809_ia1"], LINK["jt809_ic1"])
    t0 = datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(hours=1)
    async with running(settings):
        intruder = SimulatedPlatform(7001, "guess", 30010001, cipher)
        await intruder.connect("127.0.0.1", settings.jt809_port)
        assert await intruder.login() == m809.BAD_PASSWORD
        await intruder.close()
        platform = SimulatedPlatform(7001, "pw123456", 30010001, cipher)
        await platform.connect("127.0.0.1", settings.jt809_port)
        assert await platform.login() == m809.OK
        assert await platform.linktest()
        await platform.position("浙B80901", t0, 29.87, 121.55, 58.0, gcj02=True, mileage_km=812)
        await platform.history("浙B80901", [(t0 + timedelta(seconds=10 * (i + 1)), 29.87,
                                             121.55 + 0.001 * i, 60.0) for i in range(7)])
        assert await platform.linktest()  # the link is still served after the positions
        await platform.close()
    pings = of(kafka.read(genv["YRD_TOPIC_PINGS"], lambda r: len(r) >= 8), "浙B80901")
    assert len(pings) == 8
    assert pings[0]["crs"] == "GCJ02" and pings[0]["mileage_km"] == 812
    assert pings[0]["ts"] == t0.isoformat() and pings[0]["speed_kmh"] == 58.0
    assert [p["ts"] for p in pings[1:]] == [(t0 + timedelta(seconds=10 * (i + 1))).isoformat()
                                            for i in range(7)]
    dead = kafka.read(genv["YRD_TOPIC_DEADLETTER"], lambda r: len(r) >= 1)
    assert [(d["source_topic"], d["reason"]) for d in dead] == [("jt809", "auth_failed")]
