"""The simulated terminal answers the platform's commands, against a platform played here:
a TCP server whose frames are laid out by hand (struct.pack) around the downlink
builders' bodies; what the terminal sends is read with the gateway's parser."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from datetime import datetime

import pytest

from yrd_hazmat.jt808 import downlink as d
from yrd_hazmat.jt808 import messages as m
from yrd_hazmat.jt808.frame import MAX_BODY, Frame, Splitter, parse
from yrd_hazmat.jt808.terminal import DISPLAY_LOG, ReceivedText, SimulatedTerminal
from yrd_hazmat.core.timeutil import CHINA_TZ

PHONE = "13912345678"
PLATE = "沪A12345"
NOW = datetime(2026, 11, 29, 14, 0, 5, tzinfo=CHINA_TZ)
SET_PARAMETERS = 0x8103
"""A platform command the simulated terminal does not support."""


def platform_frame(msg_id: int, serial: int, body: bytes, version: int | None) -> bytes:
    """A platform frame to the terminal, laid out by hand: 2013 header, or 2019's (version
    flag, version byte, 10-byte phone)."""
    props = len(body) | (0x4000 if version is not None else 0)
    head = struct.pack(">HH", msg_id, props)
    if version is not None:
        head += bytes([version]) + bytes.fromhex(PHONE.rjust(20, "0"))
    else:
        head += bytes.fromhex(PHONE.rjust(12, "0"))
    data = head + struct.pack(">H", serial) + body
    check = 0
    for b in data:
        check ^= b
    data += bytes([check])
    return b"\x7e" + data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02") + b"\x7e"


class Platform:
    """The platform's end of one terminal's connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 version: int | None) -> None:
        self.reader, self.writer, self.version = reader, writer, version
        self.splitter = Splitter()
        self.frames: list[Frame] = []

    async def send(self, msg_id: int, body: bytes, serial: int) -> None:
        self.writer.write(platform_frame(msg_id, serial, body, self.version))
        await self.writer.drain()

    async def receive(self, timeout_s: float = 2.0) -> Frame:
        """The next frame the terminal sends."""
        async def next_frame() -> Frame:
            while not self.frames:
                data = await self.reader.read(4096)
                assert data, "the terminal closed the connection"
                self.frames += [parse(c) for c in self.splitter.feed(data)[0]]
            return self.frames.pop(0)
        return await asyncio.wait_for(next_frame(), timeout_s)

    async def answer(self, frame: Frame, result: int = m.OK) -> None:
        """0x8001 to a terminal message."""
        await self.send(m.GENERAL_RESPONSE, struct.pack(">HHB", frame.header.serial,
                                                        frame.header.msg_id, result), 1)


@contextlib.asynccontextmanager
async def connected(version: int | None = None, **options):
    """(terminal, platform) over a local TCP connection."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Platform] = loop.create_future()
    server = await asyncio.start_server(
        lambda r, w: accepted.set_result(Platform(r, w, version)), "127.0.0.1", 0)
    terminal = SimulatedTerminal(PHONE, PLATE, version=version, timeout_s=2.0, **options)
    await terminal.connect("127.0.0.1", server.sockets[0].getsockname()[1])
    platform = await asyncio.wait_for(accepted, 2)
    try:
        yield terminal, platform
    finally:
        await terminal.close()
        platform.writer.close()
        server.close()
        await server.wait_closed()


async def reported(terminal: SimulatedTerminal, platform: Platform, lat: float,
                   lon: float) -> Frame:
    """The terminal reports a position and the platform answers it; the report's frame."""
    report = asyncio.create_task(terminal.report(NOW, lat, lon, 42.0, heading=90))
    frame = await platform.receive()
    await platform.answer(frame)
    assert await report == m.OK
    return frame


async def until(condition, timeout_s: float = 2.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


# --- text ----------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [None, 1], ids=["2013", "2019"])
async def test_a_text_is_shown_kept_and_answered_ok_with_its_serial_and_id(version, caplog):
    caplog.set_level(logging.INFO, logger=DISPLAY_LOG)
    async with connected(version) as (terminal, platform):
        await platform.send(d.TEXT, d.text("前方隧道 请减速", emergency=True, tts=True,
                                           version=version), serial=0x1234)
        answer = await platform.receive()
        await platform.send(d.TEXT, d.text("注意休息", version=version), serial=0x1235)
        second = await platform.receive()

    assert (answer.header.msg_id, answer.header.version) == (m.TERMINAL_RESPONSE, version)
    assert answer.body == struct.pack(">HHB", 0x1234, 0x8300, 0)
    assert d.read_terminal_response(second.body) == d.TerminalResponse(0x1235, 0x8300, d.OK)
    # a 2019 notice's kind (0b11) sets bit 0, 2013's "emergency": not one here
    assert terminal.texts == [
        ReceivedText(serial=0x1234, text="前方隧道 请减速", emergency=True, display=True,
                     tts=True),
        ReceivedText(serial=0x1235, text="注意休息", emergency=False, display=True, tts=False)]
    assert [r.getMessage() for r in caplog.records if r.name == DISPLAY_LOG] == [
        "[沪A12345] TEXT (TTS, emergency): 前方隧道 请减速", "[沪A12345] TEXT: 注意休息"]


# --- position query ------------------------------------------------------------------------
async def test_a_position_query_is_answered_with_the_last_reported_position():
    async with connected() as (terminal, platform):
        await reported(terminal, platform, 31.2304, 121.4737)
        report = await reported(terminal, platform, 31.2400, 121.4800)
        await platform.send(d.POSITION_QUERY, d.position_query(), serial=77)
        answer = await platform.receive()

    assert answer.header.msg_id == d.POSITION_ANSWER
    assert answer.body == struct.pack(">H", 77) + report.body
    position = d.read_position_answer(answer.body).position
    assert (position.lat, position.lon, position.speed_kmh, position.heading, position.ts) == (
        31.24, 121.48, 42.0, 90, NOW)


async def test_a_position_query_before_any_position_is_answered_without_a_fix():
    async with connected() as (_, platform):
        await platform.send(d.POSITION_QUERY, d.position_query(), serial=78)
        answer = await platform.receive()
    position = d.read_position_answer(answer.body).position
    assert (position.fix_valid, position.lat, position.lon) == (False, 0.0, 0.0)


# --- photo ---------------------------------------------------------------------------------
async def photo_upload(platform: Platform, serial: int) -> tuple[d.PhotoAnswer, list[Frame]]:
    """Ask for a photo: the 0x0805, then the 0x0801 sub-packets up to the last one."""
    await platform.send(d.PHOTO, d.photo(2), serial=serial)
    announced = await platform.receive()
    assert announced.header.msg_id == d.PHOTO_ANSWER
    packets = [await platform.receive()]
    while packets[-1].header.index != packets[-1].header.packets:
        packets.append(await platform.receive())
    return d.read_photo_answer(announced.body), packets


async def test_a_photo_is_announced_then_uploaded_in_sub_packets_until_the_platform_confirms():
    async with connected() as (terminal, platform):
        terminal.keep(NOW, 31.2304, 121.4737, 0.0)  # where it stands
        announced, packets = await photo_upload(platform, serial=9)
        await asyncio.sleep(0.1)
        waiting = list(terminal.uploaded)
        await platform.send(d.MEDIA_UPLOAD_ANSWER, d.media_upload_answer(announced.media_ids[0]),
                            serial=10)
        await until(lambda: terminal.uploaded)

    assert (announced.serial, announced.result, len(announced.media_ids)) == (9, d.PHOTO_OK, 1)
    headers = [p.header for p in packets]
    assert {h.msg_id for h in headers} == {d.MEDIA_UPLOAD}
    assert len(packets) > 1 and all(h.packets == len(packets) for h in headers)
    assert [h.index for h in headers] == list(range(1, len(packets) + 1))
    assert all(len(p.body) <= MAX_BODY for p in packets)
    upload = d.read_media_upload(b"".join(p.body for p in packets))
    assert (upload.media_id, upload.format_name, upload.event, upload.channel) == (
        announced.media_ids[0], "jpeg", 0, 2)
    assert upload.position is not None and upload.position.lat == 31.2304
    assert upload.data[:2] == b"\xff\xd8" and upload.data[-2:] == b"\xff\xd9"
    assert waiting == [] and terminal.uploaded == [announced.media_ids[0]]


async def test_the_sub_packets_a_media_upload_answer_lists_as_missing_are_sent_again():
    async with connected() as (terminal, platform):
        announced, packets = await photo_upload(platform, serial=9)
        media_id = announced.media_ids[0]
        await platform.send(d.MEDIA_UPLOAD_ANSWER, d.media_upload_answer(media_id, (2,)),
                            serial=10)
        again = await platform.receive()
        await platform.send(d.MEDIA_UPLOAD_ANSWER, d.media_upload_answer(media_id), serial=11)
        await until(lambda: terminal.uploaded)

    assert (again.header.msg_id, again.header.index, again.header.packets) == (
        d.MEDIA_UPLOAD, 2, len(packets))
    assert again.body == packets[1].body
    assert terminal.uploaded == [media_id]


# --- other commands ------------------------------------------------------------------------
@pytest.mark.parametrize("msg_id, body, result", [
    (d.ALARM_CONFIRMATION, d.alarm_confirmation(5, 1 << 29), d.OK),
    (SET_PARAMETERS, b"\x00", d.UNSUPPORTED),
    (d.TEXT, b"", d.WRONG),
], ids=["alarm-confirmation", "unsupported", "unreadable"])
async def test_other_commands_are_answered_with_a_terminal_response(msg_id, body, result):
    async with connected() as (_, platform):
        await platform.send(msg_id, body, serial=40)
        answer = await platform.receive()
    assert answer.header.msg_id == m.TERMINAL_RESPONSE
    assert d.read_terminal_response(answer.body) == d.TerminalResponse(40, msg_id, result)


async def test_a_command_while_the_terminal_waits_for_its_reports_answer():
    async with connected() as (terminal, platform):
        report = asyncio.create_task(terminal.report(NOW, 31.2304, 121.4737, 42.0))
        sent = await platform.receive()
        await platform.send(d.TEXT, d.text("请靠边停车"), serial=3)
        answer = await platform.receive()
        report_still_waiting = not report.done()
        await platform.answer(sent)
        result = await report

    assert sent.header.msg_id == m.LOCATION and report_still_waiting and result == m.OK
    assert d.read_terminal_response(answer.body) == d.TerminalResponse(3, d.TEXT, d.OK)
    assert [t.text for t in terminal.texts] == ["请靠边停车"]


async def test_an_answer_that_arrives_before_it_is_awaited_is_kept_for_it():
    async with connected() as (terminal, platform):
        serial, data = terminal.frame(m.HEARTBEAT, b"")
        await terminal.send_raw(data)
        await platform.answer(await platform.receive(), m.BAD_MESSAGE)
        await asyncio.sleep(0.1)  # the reader has it before anyone waits
        answer_id, body = await terminal.answer_to(serial)
    assert (answer_id, body) == (m.GENERAL_RESPONSE, struct.pack(">HHB", serial, m.HEARTBEAT,
                                                                 m.BAD_MESSAGE))


# --- terminals that do not do as asked -----------------------------------------------------
async def test_a_terminal_that_does_not_answer_lets_a_command_time_out():
    async with connected(answers=False) as (terminal, platform):
        await platform.send(d.TEXT, d.text("收到请回复"), serial=5)
        with pytest.raises(TimeoutError):
            await platform.receive(timeout_s=0.3)
        assert await reported(terminal, platform, 31.2, 121.4)  # its own messages still go
    assert terminal.texts == []


async def test_a_failing_terminal_answers_every_command_with_a_failure():
    async with connected(fails=True) as (terminal, platform):
        await platform.send(d.TEXT, d.text("收到请回复"), serial=5)
        text = await platform.receive()
        await platform.send(d.PHOTO, d.photo(1), serial=6)
        photo = await platform.receive()
        with pytest.raises(TimeoutError):  # no upload follows
            await platform.receive(timeout_s=0.3)
    assert d.read_terminal_response(text.body) == d.TerminalResponse(5, d.TEXT, d.FAILED)
    assert d.read_photo_answer(photo.body) == d.PhotoAnswer(6, d.PHOTO_FAILED)
    assert terminal.texts == []


async def test_the_platform_closing_the_connection_ends_a_wait_at_once():
    async with connected() as (terminal, platform):
        report = asyncio.create_task(terminal.report(NOW, 31.2304, 121.4737, 42.0))
        await platform.receive()
        platform.writer.close()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(report, 1.0)  # well before the terminal's 2 s timeout
        await asyncio.wait_for(terminal.until_closed(), 1.0)
