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
(0x9401), :meth:`UpperPlatform.send_text` a text for a truck (0x9503), on the slave link
(the main link if there is none); the answers to its inspections and orders are matched to
them (:class:`Asked`: 2011 by INFO_ID / SUPERVISION_ID, 2019 by the question's MSG_SN) and
timed against their deadline. :class:`SimulatorThread` runs one on its own event loop for
tests that are not asynchronous; :func:`run_upper` runs one standalone (``yrd-hazmat
simulate-upper``): it asks an inspection question now and then, sends a supervision order
about an alarm it received now and then, and logs what it got.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import threading
import time
from collections import deque
from datetime import datetime, timedelta

import msgspec

from ..jt808.frame import FrameError
from ..jt809 import alarms, bodies, control, exchange, inspection, links
from ..jt809.codec import Message
from ..core.timeutil import CHINA_TZ
from ..jt809.frame import V2011, V2019, Cipher, Splitter, build, parse

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


DEFAULT_ANSWER_MINUTES = 10
"""What the simulator allows for an answer when its question names no time (2011: the
national platform's rule of thumb; YRD_UPLINK_INSPECTION_ANSWER_S is 600 s too)."""


class Asked(msgspec.Struct, kw_only=True):
    """An inspection or supervision order the upper platform sent, and its answer."""

    kind: str
    """"inspection" or "supervision"."""
    number: int
    """Its INFO_ID or SUPERVISION_ID (#1, #2, ...)."""
    text: str
    sent_at: float
    """time.monotonic() when sent."""
    allowed_s: float
    took_s: float | None = None
    """Seconds from sending to the (first) answer; None: not answered."""
    overdue_logged: bool = False

    @property
    def within(self) -> bool | None:
        return None if self.took_s is None else self.took_s <= self.allowed_s

    def describe(self) -> str:
        return f"{KINDS[self.kind]} #{self.number} ({self.text})"


KINDS = {"inspection": "inspection", "supervision": "supervision order"}


def answer_key(kind: str, edition: int, *, info_id: int | None = None,
               supervision_id: int | None = None, serial: int = 0) -> tuple[str, int]:
    """What an answer quotes of its question: 2011 an inspection's INFO_ID and an order's
    SUPERVISION_ID; 2019 the question frame's MSG_SN (an order's answer carries it as its
    SUPERVISION_ID)."""
    if kind == "inspection":
        return (kind, serial if edition == V2019 else (info_id or 0))
    return (kind, serial if edition == V2019 else (supervision_id or 0))


class Tally:
    """What the upper platform received and asked, for its summary line (pure: ``now`` is
    given, monotonic seconds)."""

    def __init__(self) -> None:
        self.live = 0
        self.resent = 0
        self.alarms = 0
        self.asked: dict[tuple[str, int], Asked] = {}
        self.unmatched = 0
        """Answers quoting no question of ours."""

    def ask(self, key: tuple[str, int], number: int, text: str, now: float,
            allowed_s: float) -> Asked:
        asked = Asked(kind=key[0], number=number, text=text, sent_at=now, allowed_s=allowed_s)
        self.asked[key] = asked
        return asked

    def answer(self, key: tuple[str, int], now: float) -> Asked | None:
        """The question ``key`` answered at ``now`` (None: no such question; a second answer
        to the same question keeps the first one's time)."""
        asked = self.asked.get(key)
        if asked is None:
            self.unmatched += 1
            return None
        if asked.took_s is None:
            asked.took_s = max(0.0, now - asked.sent_at)
        return asked

    def overdue(self, now: float) -> list[Asked]:
        """Questions newly past their deadline unanswered (each reported once)."""
        found = [a for a in self.asked.values() if a.took_s is None and not a.overdue_logged
                 and now - a.sent_at > a.allowed_s]
        for asked in found:
            asked.overdue_logged = True
        return found

    def summary(self, now: float) -> str:
        parts = [f"positions {self.live} live, {self.resent} re-sent", f"alarms {self.alarms}"]
        for kind in ("inspection", "supervision"):
            mine = [a for a in self.asked.values() if a.kind == kind]
            answered = [a for a in mine if a.took_s is not None]
            in_time = sum(bool(a.within) for a in answered)
            late_open = sum(a.took_s is None and now - a.sent_at > a.allowed_s for a in mine)
            part = (f"{KINDS[kind]}s {len(mine)} sent, {len(answered)} answered "
                    f"({in_time} in time, {len(answered) - in_time} late), "
                    f"{len(mine) - len(answered)} open ({late_open} overdue)")
            if answered:
                last = max(answered, key=lambda a: a.sent_at + (a.took_s or 0))
                part += f", last #{last.number} took {last.took_s:.0f} s"
            parts.append(part)
        if self.unmatched:
            parts.append(f"answers to nothing asked {self.unmatched}")
        return "; ".join(parts)


class _Peer:
    def __init__(self, writer: asyncio.StreamWriter, platform: "UpperPlatform") -> None:
        self.writer = writer
        self.platform = platform
        self.serial = 0

    def send(self, msg_id: int, body: bytes) -> int:
        """Write a frame; its MSG_SN."""
        self.serial += 1
        p = self.platform
        self.writer.write(build(msg_id, self.serial, p.center, body, cipher=p.cipher,
                                key=0x1234 if p.cipher else 0, edition=p.edition))
        return self.serial


class UpperPlatform:
    def __init__(self, *, user_id: int, password: str, center: int, edition: int = V2011,
                 cipher: Cipher | None = None, answer_link_tests: bool = True,
                 keep: int | None = None, slave_keepalive_s: float = 60.0,
                 slave_retry_s: float = 5.0) -> None:
        """``keep``: how many positions, alarms and answers to keep in :attr:`positions`,
        :attr:`alarms`, :attr:`answers` (None: all; a long run keeps counts in
        :attr:`tally` and the last few). The slave link is tested (0x9005) every
        ``slave_keepalive_s`` and, while the main link that gave its address is logged in,
        connected again ``slave_retry_s`` after it ends."""
        self.slave_keepalive_s, self.slave_retry_s = slave_keepalive_s, slave_retry_s
        self.user_id, self.password, self.center = user_id, password, center
        self.edition, self.cipher = edition, cipher
        self.answer_link_tests = answer_link_tests
        self.positions: list[Received] | deque[Received] = [] if keep is None else deque(
            maxlen=keep)
        self.alarms: list[tuple[str | None, alarms.Alarm]] | deque = [] if keep is None \
            else deque(maxlen=keep)
        self.alarm_serials: deque[int] = deque(maxlen=keep or 10_000)
        """MSG_SN of the frame of each alarm in :attr:`alarms` (a 2019 order quotes it)."""
        self.answers: list[object] | deque = [] if keep is None else deque(maxlen=keep)
        self.reports: list[tuple[int, str | None, object]] | deque = [] if keep is None \
            else deque(maxlen=keep)
        """The other answers and reports of the conformance list (0x1205, 0x1206, 0x120A,
        0x120B, 0x120C, 0x1501, 0x1504, 0x1505): (sub-business, plate, value)."""
        self.tally = Tally()
        self.inspection_ids = itertools.count(1)
        self.supervision_ids = itertools.count(1)
        self.logins = 0
        self.slave_logins = 0
        """Slave links opened (DOWN_CONNECT_RSP 0)."""
        self.disconnect_informs: list[int] = []
        """ERROR_CODE of each UP_DISCONNECT_INFORM 0x1007 read on a slave link."""
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

    @property
    def linked(self) -> bool:
        """A main link is logged in (requests can go down)."""
        return bool(self._mains)

    async def send_inspection(self, question: str, info_id: int = 1,
                              answer_time: int | None = 10) -> int:
        """DOWN_PLATFORM_MSG_POST_QUERY_REQ 0x9301; its MSG_SN. ``answer_time`` (minutes)
        is on the wire in 2019 only; the answer is timed against it either way (None:
        :data:`DEFAULT_ANSWER_MINUTES`)."""
        q = inspection.Inspection(info_id=info_id, content=question, object_type=1,
                                  object_id="", answer_time=answer_time)
        peer = self._peer()
        serial = peer.send(inspection.DOWN_PLATFORM_MSG, inspection.write(
            inspection.POST_QUERY_REQ, inspection.write_inspection(q, self.edition)))
        self.tally.ask(answer_key("inspection", self.edition, info_id=info_id, serial=serial),
                       info_id, question, time.monotonic(),
                       60.0 * (answer_time or DEFAULT_ANSWER_MINUTES))
        await peer.writer.drain()
        return serial

    async def send_order(self, plate: str, deadline: datetime, supervision_id: int = 1,
                         warn_type: int = alarms.OVERSPEED, *,
                         warn_time: datetime | None = None, alarm_sn: int | None = None,
                         platform_id: str = "") -> int:
        """DOWN_WARN_MSG_URGE_TODO_REQ 0x9401 about an alarm of ``plate`` (``warn_time``,
        default ``deadline``; 2019: ``alarm_sn``, the alarm report's MSG_SN); its MSG_SN.
        The answer is timed against ``deadline``."""
        order = alarms.SupervisionOrder(deadline=deadline, level=alarms.URGENT,
                                        supervisor="supervisor", tel="010-12345678",
                                        email="s@example.cn", warn_time=warn_time or deadline,
                                        warn_type=warn_type, supervision_id=supervision_id,
                                        platform_id=platform_id,
                                        source_type=alarms.ADPT_INFO if alarm_sn else None,
                                        source_sn=alarm_sn)
        peer = self._peer()
        serial = peer.send(alarms.DOWN_WARN_MSG, alarms.write(
            alarms.URGE_TODO_REQ, alarms.write_order(order, self.edition), self.edition,
            plate=plate, colour=2))
        allowed = (deadline - datetime.now(deadline.tzinfo)).total_seconds()
        self.tally.ask(answer_key("supervision", self.edition, supervision_id=supervision_id,
                                  serial=serial),
                       supervision_id, f"{plate} 0x{warn_type:04x}", time.monotonic(),
                       max(0.0, allowed))
        await peer.writer.drain()
        return serial

    async def send_text(self, plate: str, text: str, sequence: int = 1) -> None:
        """DOWN_CTRL_MSG_TEXT_INFO 0x9503 for a truck."""
        peer = self._peer()
        peer.send(control.DOWN_CTRL_MSG, control.write(plate, 2, control.TEXT_INFO,
                  control.write_text(control.TextRequest(msg_id=sequence, text=text))))
        await peer.writer.drain()

    async def send_vehicle(self, msg_id: int, sub_type: int, plate: str, data: bytes) -> int:
        """Any vehicle message of the conformance list (0x9200 or 0x9500 business,
        e.g. 0x9205, 0x920A, 0x9501) with its data; returns the frame's MSG_SN."""
        peer = self._peer()
        serial = peer.send(msg_id, exchange.write(plate, 2, sub_type, data))
        await peer.writer.drain()
        return serial

    async def send_photo(self, plate: str, lens: int = 1, size: int = 2) -> int:
        """DOWN_CTRL_MSG_TAKE_PHOTO_REQ 0x9502 for a truck; returns the frame's MSG_SN."""
        peer = self._peer()
        serial = peer.send(control.DOWN_CTRL_MSG, control.write(
            plate, 2, control.TAKE_PHOTO_REQ,
            control.write_photo_request(control.PhotoRequest(lens=lens, size=size))))
        await peer.writer.drain()
        return serial

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
                                                               code, peer))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
                elif not logged:
                    return
                elif msg_id == links.UP_LINKTEST_REQ:
                    if self.answer_link_tests:
                        peer.send(links.UP_LINKTEST_RSP, b"")
                elif msg_id == links.UP_DISCONNECT_REQ:
                    peer.send(links.UP_DISCONNECT_RSP, b"")
                    log.info("simulated upper platform: the lower platform logged out "
                             "(UP_DISCONNECT_REQ)")
                else:
                    self._record(frame)
                await writer.drain()
        except (OSError, FrameError) as exc:
            log.info("simulated upper platform: main link ended: %r", exc)
        finally:
            if peer in self._mains:
                self._mains.remove(peer)
            writer.close()

    async def _slave(self, host: str, port: int, code: int, main: _Peer) -> None:
        """The slave link to the lower platform's server, kept up while ``main`` is logged
        in."""
        while True:
            if await self._slave_once(host, port, code) is False or main not in self._mains:
                return
            log.info("simulated upper platform: slave link down; again in %.0f s",
                     self.slave_retry_s)
            await asyncio.sleep(self.slave_retry_s)
            if main not in self._mains:
                return

    async def _slave_once(self, host: str, port: int, code: int) -> bool:
        """One slave link, until it ends; False when its login was refused."""
        try:
            reader, writer = await asyncio.open_connection(host or "127.0.0.1", port)
        except OSError as exc:
            log.info("simulated upper platform: slave link not up: %r", exc)
            return True
        peer = _Peer(writer, self)
        peer.send(links.DOWN_CONNECT_REQ, links.write_verify_code(links.VerifyCode(code)))
        keepalive = asyncio.create_task(self._test_slave(peer))
        try:
            await writer.drain()
            async for frame in self._frames(reader):
                if frame.header.msg_id == links.UP_DISCONNECT_INFORM:
                    code = links.read_code(frame.body, "UP_DISCONNECT_INFORM").code
                    self.disconnect_informs.append(code)
                    log.info("simulated upper platform: told on the slave link that the main "
                             "link is broken (UP_DISCONNECT_INFORM, code %d)", code)
                elif frame.header.msg_id == links.DOWN_CONNECT_RSP:
                    if links.read_code(frame.body, "DOWN_CONNECT_RSP").code == links.SLAVE_OK:
                        self._slaves.append(peer)
                        self.slave_logins += 1
                        log.info("simulated upper platform: slave link up to %s:%d", host, port)
                    else:
                        return False
        except (OSError, FrameError):
            pass
        finally:
            keepalive.cancel()
            if peer in self._slaves:
                self._slaves.remove(peer)
            writer.close()
        return True

    async def _test_slave(self, peer: _Peer) -> None:
        """DOWN_LINKTEST_REQ 0x9005 every ``slave_keepalive_s`` (the lower platform drops a
        silent slave link)."""
        try:
            while True:
                await asyncio.sleep(self.slave_keepalive_s)
                peer.send(links.DOWN_LINKTEST_REQ, b"")
                await peer.writer.drain()
        except (OSError, ConnectionError):
            pass

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
            self.tally.live += 1
            self.positions.append(Received(plate=message.plate or "", ts=message.value.ts,
                                           sub_type=exchange.REAL_LOCATION, packet=self.frames,
                                           in_packet=1))
        elif message.sub_type == exchange.HISTORY_LOCATION:
            fixes = message.value
            self.tally.resent += len(fixes)
            for fix in fixes:
                self.positions.append(Received(plate=message.plate or "", ts=fix.ts,
                                               sub_type=exchange.HISTORY_LOCATION,
                                               packet=self.frames, in_packet=len(fixes)))
        elif message.sub_type == alarms.ADPT_INFO:
            self.tally.alarms += 1
            self.alarms.append((message.plate or message.value.plate, message.value))
            self.alarm_serials.append(frame.header.serial)
        elif message.sub_type in (alarms.URGE_TODO_ACK, inspection.POST_QUERY_ACK,
                                  control.TEXT_INFO_ACK, control.TAKE_PHOTO_ACK):
            self.answers.append(message.value)
            self._timed(message.sub_type, message.value)
        elif message.sub_type in REPORTS:
            self.reports.append((message.sub_type, message.plate, message.value))

    def _timed(self, sub_type: int, value) -> None:
        """Match an answer to its question; log the time it took."""
        if sub_type == inspection.POST_QUERY_ACK:
            key = answer_key("inspection", self.edition, info_id=value.info_id,
                             serial=value.source_sn or 0)
        elif sub_type == alarms.URGE_TODO_ACK:
            key = answer_key("supervision", self.edition, supervision_id=value.supervision_id,
                             serial=value.supervision_id or 0)
        else:
            return
        first = key in self.tally.asked and self.tally.asked[key].took_s is None
        asked = self.tally.answer(key, time.monotonic())
        if asked is None:
            log.warning("simulated upper platform: an answer to nothing it asked: %r", value)
        elif first:
            verdict = "within" if asked.within else "LATE, past"
            content = getattr(value, "content", None)
            log.info("answer to %s after %.1f s, %s the %.0f s allowed%s", asked.describe(),
                     asked.took_s, verdict, asked.allowed_s,
                     f": {content}" if content else f": result {getattr(value, 'result', '?')}")


REPORTS = frozenset({exchange.RETURN_STARTUP_ACK, exchange.RETURN_END_ACK,
                     exchange.REPORT_DRIVER_INFO_ACK, exchange.TAKE_EWAYBILL_ACK,
                     exchange.REPORT_DRIVER_INFO, control.MONITOR_VEHICLE_ACK,
                     control.TAKE_TRAVEL_DATA_ACK, control.EMERGENCY_MONITORING_ACK})


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


QUESTIONS = ("请报告当前值班人员姓名及联系电话", "请报告本平台当前在线危险货物运输车辆数",
             "请确认动态监控值守情况", "请报告今日超速报警处理情况")
"""The inspection questions :func:`run_upper` asks in turn."""


class Schedule:
    """When :func:`run_upper` asks (pure: monotonic seconds given). The first inspection
    ``first_s`` after the start, then every ``every_s`` (0: none at all); a supervision order
    every ``order_every_s`` (0: never) when an alarm arrived since the last one."""

    def __init__(self, start: float, *, first_s: float, every_s: float,
                 order_every_s: float) -> None:
        self.every_s, self.order_every_s = every_s, order_every_s
        self.next_inspection = start + first_s if every_s > 0 else None
        self.next_order = start + order_every_s if order_every_s > 0 else None

    def inspection_due(self, now: float) -> bool:
        return self.next_inspection is not None and now >= self.next_inspection

    def inspected(self, now: float) -> None:
        self.next_inspection = now + self.every_s if self.every_s > 0 else None

    def order_due(self, now: float) -> bool:
        return self.next_order is not None and now >= self.next_order

    def ordered(self, now: float) -> None:
        self.next_order = now + self.order_every_s


async def run_upper(*, host: str, port: int, user_id: int, password: str, center: int,
                    edition: int = V2011, cipher: Cipher | None = None,
                    inspect_every_s: float = 600.0, first_inspection_s: float = 60.0,
                    answer_minutes: int | None = None, order_every_s: float = 0.0,
                    order_minutes: float = 30.0, summary_every_s: float = 30.0,
                    stop: asyncio.Event | None = None) -> Tally:
    """A simulated national platform until ``stop``: listens on ``host:port`` for our
    uplink, asks inspection questions and sends supervision orders about the alarms it
    received, logs each answer and a summary every ``summary_every_s``. Its tally."""
    stop = stop or asyncio.Event()
    platform = UpperPlatform(user_id=user_id, password=password, center=center,
                             edition=edition, cipher=cipher, keep=100)
    await platform.start(host, port)
    log.info("simulated upper platform on %s:%d (JT/T 809-%d, access code %d): first "
             "inspection in %.0f s, then every %.0f s; supervision orders %s", host,
             platform.port, edition, center, first_inspection_s, inspect_every_s,
             f"every {order_every_s:.0f} s" if order_every_s > 0 else "never")
    loop = asyncio.get_running_loop()
    schedule = Schedule(loop.time(), first_s=first_inspection_s, every_s=inspect_every_s,
                        order_every_s=order_every_s)
    next_summary = loop.time() + summary_every_s
    ordered_alarms, logins, waiting = 0, 0, False
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
            now = loop.time()
            if platform.logins != logins:
                logins = platform.logins
                log.info("lower platform logged in (login %d)", logins)
            if schedule.inspection_due(now):
                if not platform.linked:
                    if not waiting:
                        log.info("inspection due, but no lower platform is logged in")
                    waiting = True
                else:
                    waiting = False
                    info_id = next(platform.inspection_ids)
                    question = QUESTIONS[(info_id - 1) % len(QUESTIONS)]
                    try:
                        serial = await platform.send_inspection(question, info_id=info_id,
                                                                answer_time=answer_minutes)
                    except (OSError, RuntimeError) as exc:
                        log.warning("inspection not sent: %r", exc)
                    else:
                        schedule.inspected(now)
                        log.info("inspection %d sent (MSG_SN %d, %s link): %s; answer within "
                                 "%d min", info_id, serial,
                                 "slave" if platform.slave_up else "main", question,
                                 answer_minutes or DEFAULT_ANSWER_MINUTES)
            if schedule.order_due(now) and platform.linked:
                if platform.tally.alarms > ordered_alarms and platform.alarms:
                    plate, alarm = platform.alarms[-1]
                    ordered_alarms = platform.tally.alarms
                    deadline = datetime.now(CHINA_TZ).replace(microsecond=0) + \
                        timedelta(minutes=order_minutes)
                    supervision_id = next(platform.supervision_ids)
                    try:
                        await platform.send_order(
                            plate or "", deadline, supervision_id, alarm.warn_type,
                            warn_time=alarm.warn_time, alarm_sn=platform.alarm_serials[-1],
                            platform_id=alarm.platform_id or "")
                    except (OSError, RuntimeError, ValueError) as exc:
                        log.warning("supervision order not sent: %r", exc)
                    else:
                        log.info("supervision order %d sent about %s's alarm 0x%04x; "
                                 "deadline %s", supervision_id, plate, alarm.warn_type,
                                 f"{deadline:%H:%M:%S}")
                schedule.ordered(now)
            for asked in platform.tally.overdue(time.monotonic()):
                log.warning("%s not answered within %.0f s", asked.describe(), asked.allowed_s)
            if now >= next_summary:
                next_summary = now + summary_every_s
                link = ("main+slave" if platform.slave_up else "main only") \
                    if platform.linked else "down"
                log.info("summary: link %s, logins %d; %s", link, platform.logins,
                         platform.tally.summary(time.monotonic()))
    finally:
        log.info("summary: %s", platform.tally.summary(time.monotonic()))
        await platform.stop()
    return platform.tally


async def run_upper_until_signalled(**kwargs) -> Tally:
    """:func:`run_upper` until SIGTERM or SIGINT."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await run_upper(stop=stop, **kwargs)
