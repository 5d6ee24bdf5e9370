"""Messages down to trucks end to end (issue #21): a command published on the real broker,
delivered by a real gateway to a simulated terminal over TCP, its answer recorded."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime

import msgspec
import pytest

from yrd_hazmat.commands import make_command, send_command
from yrd_hazmat.config import Settings
from yrd_hazmat.jt808.terminal import SimulatedTerminal
from yrd_hazmat.core.models import CommandResult, Media
from yrd_hazmat.core.timeutil import CHINA_TZ
from tests.integration.harness import run_env
from tests.integration.test_gateway import gateway_settings, running
from tests.integration.traces import PEOPLES_SQUARE

pytestmark = pytest.mark.integration


@pytest.fixture
def cenv(services):
    return run_env(services)


async def truck(port: int, phone: str, plate: str, **options) -> SimulatedTerminal:
    terminal = SimulatedTerminal(phone, plate, **options)
    await terminal.connect("127.0.0.1", port)
    await terminal.login()
    await terminal.report(datetime.now(CHINA_TZ).replace(microsecond=0), PEOPLES_SQUARE[1],
                          PEOPLES_SQUARE[0], 42.0)
    return terminal


def command(plate: str, kind: str, **fields):
    return make_command(plate, kind, by="test-desk", now=datetime.now(CHINA_TZ),
                        expires_in_s=600, **fields)


def statuses(outcome) -> list[str]:
    return [step.status for step in outcome.steps]


@pytest.mark.parametrize("version", [None, 1], ids=["2013", "2019"])
async def test_a_text_reaches_the_driver_and_the_answer_is_recorded(cenv, version):
    settings = gateway_settings(cenv)
    async with running(settings) as gateway:
        driver = await truck(gateway.port, "13900003001", "沪A30001", version=version)
        text = command("沪A30001", "text", text="前方泄漏，请停车熄火", tts=True, emergency=True)
        outcome = await send_command(settings, text, wait_s=30)
        assert statuses(outcome) == ["claimed", "sent", "ok"]
        [received] = driver.texts
        assert (received.text, received.tts, received.emergency) == ("前方泄漏，请停车熄火",
                                                                     True, True)
        assert outcome.steps[1].serial == received.serial  # the terminal answered that frame
        await driver.close()


async def test_a_position_query_and_a_photo_come_back(cenv):
    settings = gateway_settings(cenv)
    async with running(settings) as gateway:
        driver = await truck(gateway.port, "13900003002", "沪A30002")
        where = await send_command(settings, command("沪A30002", "position_query"), wait_s=30)
        assert statuses(where) == ["claimed", "sent", "ok"]
        position = where.final.position
        assert (round(position["lat"], 4), round(position["lon"], 4)) == (
            PEOPLES_SQUARE[1], PEOPLES_SQUARE[0])

        photo = await send_command(settings, command("沪A30002", "photo"), wait_s=60)
        assert statuses(photo) == ["claimed", "sent", "ok"] and photo.final.media_id
        media = await read_all(settings, settings.topic_media, Media)
        [picture] = [p for p in media if p.media_id == photo.final.media_id]
        data = base64.b64decode(picture.data)
        assert picture.vehicle_id == "沪A30002" and picture.format == "jpeg"
        assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9" and len(data) == picture.size
        assert picture.command_id == photo.command.command_id
        await driver.close()


async def test_a_terminal_that_does_not_answer_is_a_timeout(cenv):
    settings = gateway_settings(cenv, command_timeout_s=2)
    async with running(settings) as gateway:
        driver = await truck(gateway.port, "13900003003", "沪A30003", answers=False)
        outcome = await send_command(settings, command("沪A30003", "text", text="收到请回复"),
                                     wait_s=30)
        assert statuses(outcome) == ["claimed", "sent", "timeout"]
        assert driver.texts == []
        await driver.close()


async def test_a_truck_not_connected_gets_its_command_when_it_returns(cenv):
    settings = gateway_settings(cenv)
    async with running(settings) as gateway:
        away = await truck(gateway.port, "13900003004", "沪A30004")
        await away.close()  # out of coverage
        text = command("沪A30004", "text", text="回到信号区后请联系调度")
        waiting = asyncio.create_task(send_command(settings, text, wait_s=60))
        await asyncio.sleep(3)
        assert not waiting.done()  # nothing can be delivered: the truck is away
        back = SimulatedTerminal("13900003004", "沪A30004")
        back.auth_code = away.auth_code
        await back.connect("127.0.0.1", gateway.port)
        await back.login()
        outcome = await waiting
        assert statuses(outcome) == ["claimed", "sent", "ok"]
        assert [t.text for t in back.texts] == ["回到信号区后请联系调度"]
        await back.close()


async def test_with_two_gateways_the_one_holding_the_truck_sends_once(cenv):
    first_settings, second_settings = gateway_settings(cenv), gateway_settings(cenv)
    async with running(first_settings) as first, running(second_settings) as second:
        driver = await truck(second.port, "13900003005", "沪A30005")
        texts = [command("沪A30005", "text", text=f"第{i}条调度消息") for i in range(5)]
        outcomes = await asyncio.gather(*(send_command(first_settings, t, wait_s=30)
                                          for t in texts))
        assert all(statuses(o) == ["claimed", "sent", "ok"] for o in outcomes)
        assert sorted(t.text for t in driver.texts) == sorted(t.text for t in texts)  # once each
        results = await read_all(first_settings, first_settings.topic_command_results,
                                 CommandResult)
        senders = {r.gateway for r in results if r.status == "sent"}
        assert senders == {second.courier.delivery.gateway} and len(
            [r for r in results if r.status == "sent"]) == len(texts)
        await driver.close()
        assert first.courier.delivery.gateway != second.courier.delivery.gateway


async def read_all(settings: Settings, topic: str, kind):
    """Every record of ``topic`` now, decoded as ``kind``."""
    from yrd_hazmat.follow import TopicReader

    decoded = []
    reader = TopicReader(settings.kafka_options(), topic,
                         lambda k, v: decoded.append(msgspec.json.decode(v, type=kind)))
    await reader.start()
    try:
        await reader.catch_up()
    finally:
        await reader.stop()
    return decoded
