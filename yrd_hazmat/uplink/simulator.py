"""A simulated upper platform (the national platform) for the demo and the tests.

It listens for main links: UP_CONNECT_REQ 0x1001 is answered with UP_CONNECT_RSP 0x1002
(result 0 and a verify code when user id and password match, else 3 or 4), after which it
connects to the lower platform's slave-link server (DOWN_LINK_IP/PORT of the login) with
DOWN_CONNECT_REQ 0x9001. It answers link tests (0x1005 with 0x1006) and a logout (0x1003
with 0x1004), and records every position it receives (0x1202 and each position of a
0x1203, with the packet it came in), every alarm (0x1402) and every answer (0x1301,
0x1401, 0x1503). :meth:`UpperPlatform.cut` closes its links and refuses new ones until
:meth:`UpperPlatform.restore`; :meth:`UpperPlatform.send_inspection` and
:meth:`UpperPlatform.send_order` send an inspection (0x9301) or a supervision order
(0x9401), :meth:`UpperPlatform.send_text` a text for a truck (0x9503), on the slave link (the main link if there is none). :class:`SimulatorThread`
runs one on its own event loop for tests that are not asynchronous.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from datetime import datetime

import msgspec

from ..jt808.frame import FrameError
from ..jt809 import alarms, bodies, control, exchange, inspection, links
from ..jt809.codec import Message
from ..jt809.frame import V2011, Cipher, Splitter, build, parse

log = logging.getLogger(__name__)


class Received(msgspec.Struct, frozen=True, kw_only=True):
    """A position the upper platform received."""

    plate: str
    ts: datetime
    sub_type: int
    """0x1202 or 0x1203."""
    packet: int
    """Number of the frame it came in (counting every frame received)."""
    in_packet: int
    """Positions in that frame."""


class _Peer:
    def __init__(self, writer: asyncio.StreamWriter, platform: "UpperPlatform") -> None:
        self.writer = writer
        self.platform = platform
        self.serial = 0

    def send(self, msg_id: int, body: bytes) -> None:
        self.serial += 1
        p = self.platform
        self.writer.write(build(msg_id, self.serial, p.center, body, cipher=p.cipher,
                                key=0x1234 if p.cipher else 0, edition=p.edition))


class UpperPlatform:
    def __init__(self, *, user_id: int, password: str, center: int, edition: int = V2011,
                 cipher: Cipher | None = None, answer_link_tests: bool = True) -> None:
        self.user_id, self.password, self.center = user_id, password, center
        self.edition, self.cipher = edition, cipher
        self.answer_link_tests = answer_link_tests
        self.positions: list[Received] = []
        self.alarms: list[tuple[str | None, alarms.Alarm]] = []
        self.answers: list[object] = []
        self.logins = 0
        self.frames = 0
        self.host, self.port = "127.0.0.1", 0
        self._server: asyncio.Server | None = None
        self._mains: list[_Peer] = []
        self._slaves: list[_Peer] = []
        self._tasks: set[asyncio.Task] = set()

    # --- control -------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve_main, host, port)
        self.host, self.port = host, self._server.sockets[0].getsockname()[1]
        return self.port

    async def cut(self) -> None:
        """Close every link and refuse new ones."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for peer in self._mains + self._slaves:
            peer.writer.close()
        self._mains.clear()
        self._slaves.clear()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._serve_main, self.host, self.port)

    async def stop(self) -> None:
        await self.cut()
        for task in list(self._tasks):
            task.cancel()

    @property
    def slave_up(self) -> bool:
        return bool(self._slaves)

    def _peer(self) -> _Peer:
        peers = self._slaves or self._mains
        if not peers:
            raise RuntimeError("no link to the lower platform")
        return peers[-1]

    async def send_inspection(self, question: str, info_id: int = 1,
                              answer_time: int | None = 10) -> None:
        q = inspection.Inspection(info_id=info_id, content=question, object_type=1,
                                  object_id="", answer_time=answer_time)
        peer = self._peer()
        peer.send(inspection.DOWN_PLATFORM_MSG, inspection.write(
            inspection.POST_QUERY_REQ, inspection.write_inspection(q, self.edition)))
        await peer.writer.drain()

    async def send_order(self, plate: str, deadline: datetime, supervision_id: int = 1,
                         warn_type: int = alarms.OVERSPEED) -> None:
        order = alarms.SupervisionOrder(deadline=deadline, level=alarms.URGENT,
                                        supervisor="supervisor", tel="010-12345678",
                                        email="s@example.cn", warn_time=deadline,
                                        warn_type=warn_type, supervision_id=supervision_id)
        peer = self._peer()
        peer.send(alarms.DOWN_WARN_MSG, alarms.write(
            alarms.URGE_TODO_REQ, alarms.write_order(order, self.edition), self.edition,
            plate=plate, colour=2))
        await peer.writer.drain()

    async def send_text(self, plate: str, text: str, sequence: int = 1) -> None:
        """DOWN_CTRL_MSG_TEXT_INFO 0x9503 for a truck."""
        peer = self._peer()
        peer.send(control.DOWN_CTRL_MSG, control.write(plate, 2, control.TEXT_INFO,
                  control.write_text(control.TextRequest(msg_id=sequence, text=text))))
        await peer.writer.drain()

    # --- links ---------------------------------------------------------------------------
    async def _serve_main(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        peer, logged = _Peer(writer, self), False
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            async for frame in self._frames(reader):
                msg_id = frame.header.msg_id
                if msg_id == links.UP_CONNECT_REQ:
                    login = links.read_login(frame.body, self.edition)
                    result = links.OK if login.user_id == self.user_id else links.NO_SUCH_USER
                    if result == links.OK and login.password != self.password:
                        result = links.BAD_PASSWORD
                    code = random.randint(1, 0xFFFFFFFF)
                    peer.send(links.UP_CONNECT_RSP, links.write_login_answer(
                        links.LoginAnswer(result=result, verify_code=code)))
                    if result != links.OK:
                        await writer.drain()
                        return
                    logged = True
                    self.logins += 1
                    self._mains.append(peer)
                    if login.down_port:
                        task = asyncio.create_task(self._slave(login.down_ip, login.down_port,
                                                               code))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
                elif not logged:
                    return
                elif msg_id == links.UP_LINKTEST_REQ:
                    if self.answer_link_tests:
                        peer.send(links.UP_LINKTEST_RSP, b"")
                elif msg_id == links.UP_DISCONNECT_REQ:
                    peer.send(links.UP_DISCONNECT_RSP, b"")
                else:
                    self._record(frame)
                await writer.drain()
        except (OSError, FrameError) as exc:
            log.info("simulated upper platform: main link ended: %r", exc)
        finally:
            if peer in self._mains:
                self._mains.remove(peer)
            writer.close()

    async def _slave(self, host: str, port: int, code: int) -> None:
        try:
            reader, writer = await asyncio.open_connection(host or "127.0.0.1", port)
        except OSError as exc:
            log.info("simulated upper platform: slave link not up: %r", exc)
            return
        peer = _Peer(writer, self)
        peer.send(links.DOWN_CONNECT_REQ, links.write_verify_code(links.VerifyCode(code)))
        await writer.drain()
        try:
            async for frame in self._frames(reader):
                if frame.header.msg_id == links.DOWN_CONNECT_RSP:
                    if links.read_code(frame.body, "DOWN_CONNECT_RSP").code == links.SLAVE_OK:
                        self._slaves.append(peer)
                    else:
                        return
        except (OSError, FrameError):
            pass
        finally:
            if peer in self._slaves:
                self._slaves.remove(peer)
            writer.close()

    async def _frames(self, reader: asyncio.StreamReader):
        splitter = Splitter()
        while True:
            data = await reader.read(65_536)
            if not data:
                return
            for content in splitter.feed(data)[0]:
                try:
                    yield parse(content, self.cipher, expect=self.edition)
                except FrameError as exc:
                    log.warning("simulated upper platform: unreadable frame: %s", exc)

    def _record(self, frame) -> None:
        self.frames += 1
        try:
            message = bodies.read(frame.header.msg_id, frame.body, self.edition)
        except FrameError as exc:
            log.warning("simulated upper platform: 0x%04x unreadable: %s",
                        frame.header.msg_id, exc)
            return
        if not isinstance(message, Message):
            return
        if message.sub_type == exchange.REAL_LOCATION:
            self.positions.append(Received(plate=message.plate or "", ts=message.value.ts,
                                           sub_type=exchange.REAL_LOCATION, packet=self.frames,
                                           in_packet=1))
        elif message.sub_type == exchange.HISTORY_LOCATION:
            fixes = message.value
            for fix in fixes:
                self.positions.append(Received(plate=message.plate or "", ts=fix.ts,
                                               sub_type=exchange.HISTORY_LOCATION,
                                               packet=self.frames, in_packet=len(fixes)))
        elif message.sub_type == alarms.ADPT_INFO:
            self.alarms.append((message.plate or message.value.plate, message.value))
        elif message.sub_type in (alarms.URGE_TODO_ACK, inspection.POST_QUERY_ACK,
                                  control.TEXT_INFO_ACK):
            self.answers.append(message.value)


class SimulatorThread:
    """An :class:`UpperPlatform` on an event loop of its own thread."""

    def __init__(self, **kwargs) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.platform: UpperPlatform = self.call(self._make(kwargs))

    @staticmethod
    async def _make(kwargs) -> UpperPlatform:
        return UpperPlatform(**kwargs)

    def call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        return self.call(self.platform.start(host, port))

    def cut(self) -> None:
        self.call(self.platform.cut())

    def restore(self) -> None:
        self.call(self.platform.restore())

    def positions(self) -> list[Received]:
        return self.call(self._copy(self.platform.positions))

    @staticmethod
    async def _copy(items: list) -> list:
        return list(items)

    def close(self) -> None:
        self.call(self.platform.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
