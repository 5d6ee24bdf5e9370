"""Terminal profiles on the real broker and gateway (issue #21): the same maker item 0xE1
is a tank leak under one profile and a battery level under another, and a carrier's
declaration, published with ``yrd-hazmat terminal-profile``, decides which."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import datetime

import pytest

from yrd_hazmat.jt808 import messages as m
from yrd_hazmat.jt808.terminal import SimulatedTerminal
from yrd_hazmat.core.timeutil import CHINA_TZ
from tests.integration.harness import run_env
from tests.integration.test_gateway import gateway_settings, running
from tests.integration.traces import PEOPLES_SQUARE, of

pytestmark = pytest.mark.integration

ITEM_E1 = bytes([0xE1, 1, 0x2D])  # maker item 0xE1, one byte: 45


@pytest.fixture
def penv(services):
    return run_env(services)


async def report_with_e1(port: int, phone: str, plate: str, **registration) -> None:
    """A terminal (registered as maker YRD, model SIM-808 unless said otherwise) reports
    one position with item 0xE1."""
    terminal = SimulatedTerminal(phone, plate, **registration)
    await terminal.connect("127.0.0.1", port)
    await terminal.login()
    body = m.location(datetime.now(CHINA_TZ).replace(microsecond=0), PEOPLES_SQUARE[1],
                      PEOPLES_SQUARE[0], 30.0) + ITEM_E1
    answer_id, answer = await terminal.request(m.LOCATION, body)
    assert (answer_id, answer[4]) == (m.GENERAL_RESPONSE, m.OK)
    await terminal.close()


def declare(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "yrd_hazmat.cli", "terminal-profile", *args],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_carriers_declaration_decides_what_item_0xe1_means(penv, kafka):
    settings = gateway_settings(penv)
    async with running(settings) as gateway:
        await report_with_e1(gateway.port, "13900004001", "沪A40001")  # its registration's profile

        said = await asyncio.to_thread(declare, penv, "沪A40002", "--carrier", "沪危运输",
                                       "--profile", "tracker-battery-e1")
        assert "profile tracker-battery-e1" in said
        for _ in range(100):  # the gateway follows yrd.vehicle-terminals
            if "沪A40002" in gateway.declarations:
                break
            await asyncio.sleep(0.1)
        await report_with_e1(gateway.port, "13900004002", "沪A40002")

        await asyncio.to_thread(declare, penv, "沪A40003", "--carrier", "沪危运输",
                                "--profile", "tracker-battery-e1")
        await asyncio.to_thread(declare, penv, "沪A40003", "--remove")
        for _ in range(100):
            if "沪A40003" not in gateway.declarations:
                break
            await asyncio.sleep(0.1)
        await report_with_e1(gateway.port, "13900004003", "沪A40003")  # declaration withdrawn
        await report_with_e1(gateway.port, "13900004004", "沪A40004", maker="ACME", model="T9")

    pings = kafka.read(penv["YRD_TOPIC_PINGS"], lambda r: len(r) >= 4)
    [leak] = of(pings, "沪A40001")
    [battery] = of(pings, "沪A40002")
    [withdrawn] = of(pings, "沪A40003")
    assert leak["alarm_extra"] == {"tank_leak": 45} and leak["raw_items"] is None
    assert battery["alarm_extra"] == {"battery_pct": 45} and battery["raw_items"] is None
    assert withdrawn["alarm_extra"] == {"tank_leak": 45}
    [unknown] = of(pings, "沪A40004")  # no profile: no meaning, kept as sent
    assert unknown["alarm_extra"] is None and unknown["raw_items"] == {"e1": "2d"}


def test_the_profiles_are_listed(penv):
    listed = declare(penv, "--list")
    assert "yrd-tank-sensor" in listed and "tracker-battery-e1" in listed
