"""The slave link of a JT/T 809 lower platform: the connection the gateway, as upper
platform, opens to the DOWN_LINK_IP/DOWN_LINK_PORT the platform's login gave.

:class:`SlaveSession` is its protocol (pure: frames to send, frames read into events):
DOWN_CONNECT_REQ 0x9001 with the VERIFY_CODE of the platform's UP_CONNECT_RSP, answered
DOWN_CONNECT_RSP 0x9002 (0 accepted, 1 wrong VERIFY_CODE, 2 busy, 3 other); the link test
DOWN_LINKTEST_REQ 0x9005 / DOWN_LINKTEST_RSP 0x9006; DOWN_DISCONNECT_REQ 0x9003 /
DOWN_DISCONNECT_RSP 0x9004 when the platform logged out; DOWN_CLOSELINK_INFORM 0x9008
when the gateway stops; and what the platform may send on it: UP_DISCONNECT_INFORM
0x1007 (its main link broke), UP_CLOSELINK_INFORM 0x1008, recorded.

:class:`SlaveLink` is the asyncio client around it, one task per platform: connect,
log in, a link test every ``keepalive_s``; a link that does not connect, answer its
login or a link test within ``timeout_s`` is dropped and tried again after a backoff
(0.5 s doubling up to ``retry_max_s``). When the slave link cannot be reached or breaks,
the platform is told once per outage on its main link: DOWN_DISCONNECT_INFORM 0x9007
(0: cannot reach the slave-link address, 1: the slave link broke). Nothing waits for a
slave link: each is its own task, and a silent one costs one timer.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..follow import Backoff
from ..jt808.frame import FrameError
from ..jt809 import frame as f
from ..jt809 import links as lk
from . import metrics
from .link import SlaveTarget
from .platform_records import PlatformReport
from .platforms import Platform

log = logging.getLogger(__name__)

FIRST_S = 0.1
"""The first connection waits this long after the login: the platform reads the verify
code of its UP_CONNECT_RSP before the slave link's DOWN_CONNECT_REQ quotes it."""


@dataclass(frozen=True)
class SlaveEvent:
    """What one frame read on a slave link was."""

    kind: str
    """``connected`` (0x9002, ``code`` its result), ``linktest`` (0x9006), ``disconnected``
    (0x9004), ``report`` (0x1007 or 0x1008, in ``report``), ``unreadable`` or
    ``unexpected`` (``error`` says why)."""
    code: int | None = None
    report: PlatformReport | None = None
    error: str | None = None


class SlaveSession:
    """The slave link's frames, in the platform's edition and cipher."""

    def __init__(self, platform: Platform, verify_code: int, clock: Callable[[], datetime],
                 new_key: Callable[[], int] = lambda: secrets.randbits(32)) -> None:
        self.platform = platform
        self.verify_code = verify_code
        self.clock = clock
        self.new_key = new_key
        self.serial = 0

    def frame(self, msg_id: int, body: bytes, serial: int | None = None) -> bytes:
        """A frame to the platform (MSG_SN ``serial``, else the link's next)."""
        if serial is None:
            self.serial = serial = (self.serial + 1) & 0xFFFFFFFF
        cipher = self.platform.cipher
        return f.build(msg_id, serial, self.platform.access_code, body, cipher=cipher,
                       key=self.new_key() if cipher is not None else 0,
                       edition=self.platform.edition, time=int(self.clock().timestamp()))

    def connect_request(self) -> bytes:
        return self.frame(lk.DOWN_CONNECT_REQ, lk.write_verify_code(lk.VerifyCode(self.verify_code)))

    def linktest(self) -> bytes:
        return self.frame(lk.DOWN_LINKTEST_REQ, b"")

    def disconnect_request(self) -> bytes:
        return self.frame(lk.DOWN_DISCONNECT_REQ,
                          lk.write_verify_code(lk.VerifyCode(self.verify_code)))

    def close_inform(self, reason: int = lk.GATEWAY_RESTART) -> bytes:
        return self.frame(lk.DOWN_CLOSELINK_INFORM, lk.write_code(lk.Code(reason)))

    def handle(self, content: bytes) -> SlaveEvent:
        platform = self.platform
        try:
            frame = f.parse(content, platform.cipher or f.Cipher(), expect=platform.edition)
            header = frame.header
            if header.center != platform.access_code:
                return SlaveEvent("unexpected", error=f"access code {header.center} on the "
                                                      f"slave link of {platform.access_code}")
            msg_id, body = header.msg_id, frame.body
            if msg_id == lk.DOWN_CONNECT_RSP:
                return SlaveEvent("connected", lk.read_code(body, "DOWN_CONNECT_RSP").code)
            if msg_id == lk.DOWN_LINKTEST_RSP:
                return SlaveEvent("linktest")
            if msg_id == lk.DOWN_DISCONNECT_RSP:
                return SlaveEvent("disconnected")
            if msg_id in (lk.UP_DISCONNECT_INFORM, lk.UP_CLOSELINK_INFORM):
                closing = msg_id == lk.UP_CLOSELINK_INFORM
                code = lk.read_code(body, "UP_CLOSELINK_INFORM" if closing
                                    else "UP_DISCONNECT_INFORM").code
                report = PlatformReport(
                    platform=platform.access_code, msg_id=msg_id, serial=header.serial,
                    kind="closelink_inform" if closing else "disconnect_inform",
                    fields={"code": code, "link": "slave"}, received_at=self.clock())
                return SlaveEvent("report", code, report=report)
        except FrameError as exc:
            return SlaveEvent("unreadable", error=f"{exc.reason}: {exc}")
        return SlaveEvent("unexpected", error=f"0x{msg_id:04x} on a slave link")


class SlaveRefused(ConnectionError):
    """The platform refused the slave link's login, or did not answer it."""


class SlaveLink:
    """One platform's slave link, kept up until :meth:`stop`."""

    def __init__(self, platform: Platform, target: SlaveTarget, *, keepalive_s: float,
                 timeout_s: float, retry_max_s: float, clock: Callable[[], datetime],
                 inform: Callable[[int], object], record: Callable[[PlatformReport], object],
                 changed: Callable[[], object] = lambda: None,
                 max_frame: int = 65_536) -> None:
        self.platform = platform
        self.target = target
        self.keepalive_s = keepalive_s
        self.timeout_s = timeout_s
        self.session = SlaveSession(platform, target.verify_code, clock)
        self.inform = inform
        """Sends DOWN_DISCONNECT_INFORM 0x9007 with a reason on the main link."""
        self.record = record
        self.changed = changed
        """Called when the link goes up or down."""
        self.max_frame = max_frame
        self.backoff = Backoff(0.5, retry_max_s)
        self.up = False
        self.connections = 0
        """Slave links established so far (the first, then each reconnection)."""
        self.task: asyncio.Task | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._frames: list[bytes] = []

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"slave-link-{self.platform.access_code}")

    def send(self, msg_id: int, body: bytes, serial: int) -> bool:
        """Write a frame on the link if it is up; whether it was."""
        if not self.up or self._writer is None or self._writer.is_closing():
            return False
        self._writer.write(self.session.frame(msg_id, body, serial))
        return True

    async def stop(self, farewell: bytes | None = None) -> None:
        """End the link, sending ``farewell`` first if it is up (0x9003, 0x9008)."""
        if farewell is not None and self.up and self._writer is not None:
            try:
                self._writer.write(farewell)
                await asyncio.wait_for(self._writer.drain(), 1.0)
            except (OSError, ConnectionError, asyncio.TimeoutError):
                pass
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self._set_up(False)

    async def run(self) -> None:
        """Keep the link up until cancelled."""
        label = self.platform.label
        informed = False
        await asyncio.sleep(FIRST_S)
        while True:
            before = self.connections
            try:
                await self._once()
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionError, asyncio.TimeoutError, SlaveRefused) as exc:
                log.info("slave link of platform %s (%s:%s): %s: %s", label, self.target.host,
                         self.target.port, type(exc).__name__, exc)
            except Exception:  # a bug must cost a reconnection, never the gateway
                log.exception("slave link of platform %s failed", label)
            finally:
                self._set_up(False)
            reached = self.connections > before
            if reached:
                informed = False  # it was up: this is a new outage
            if not informed:
                informed = True
                self.inform(lk.SLAVE_LINK_BROKEN if reached else lk.SLAVE_UNREACHABLE)
            await asyncio.sleep(self.backoff.next())

    async def _once(self) -> None:
        """One connection's life, until it fails (it ends by raising)."""
        target, timeout = self.target, self.timeout_s
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port), timeout)
        self._writer, self._frames = writer, []
        splitter = f.Splitter(self.max_frame)
        try:
            writer.write(self.session.connect_request())
            await writer.drain()
            answer = await self._event(reader, splitter, "connected", timeout)
            if answer is None:
                raise SlaveRefused(f"no DOWN_CONNECT_RSP within {timeout} s")
            if answer.code != lk.SLAVE_OK:
                raise SlaveRefused(f"DOWN_CONNECT_RSP result {answer.code}")
            self.connections += 1
            if self.connections > 1:
                metrics.PLATFORM_RECONNECTS.labels(self.platform.label, "slave").inc()
            self.backoff.reset()
            self._set_up(True)
            log.info("slave link of platform %s up (%s:%s)", self.platform.label, target.host,
                     target.port)
            while True:
                await self._event(reader, splitter, None, self.keepalive_s)  # (reads meanwhile)
                writer.write(self.session.linktest())
                await writer.drain()
                if await self._event(reader, splitter, "linktest", timeout) is None:
                    raise ConnectionError(f"no DOWN_LINKTEST_RSP within {timeout} s")
        finally:
            self._writer = None
            writer.close()

    async def _event(self, reader: asyncio.StreamReader, splitter: f.Splitter,
                     wanted: str | None, timeout: float) -> SlaveEvent | None:
        """The next event of kind ``wanted`` within ``timeout`` (None if none came; with
        ``wanted`` None, read until then); the platform's notices on the way are recorded,
        anything else logged. The platform closing the link raises ConnectionError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while self._frames:
                event = self.session.handle(self._frames.pop(0))
                if event.kind == wanted:
                    return event
                self._note(event)
            left = deadline - loop.time()
            if left <= 0:
                return None
            try:
                data = await asyncio.wait_for(reader.read(65_536), left)
            except asyncio.TimeoutError:
                return None
            if not data:
                raise ConnectionError("the platform closed the slave link")
            frames, _ = splitter.feed(data)
            self._frames.extend(frames)

    def _note(self, event: SlaveEvent) -> None:
        if event.report is not None:
            self.record(event.report)
        elif event.kind in ("unreadable", "unexpected"):
            metrics.SLAVE_REJECTED.labels(self.platform.label, event.kind).inc()
            log.debug("slave link of platform %s: %s", self.platform.label, event.error)

    def _set_up(self, up: bool) -> None:
        was, self.up = self.up, up
        metrics.SLAVE_UP.labels(self.platform.label).set(1 if up else 0)
        if was != up:
            self.changed()
