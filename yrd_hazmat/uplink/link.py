"""The asyncio shell of the uplink's main link (JT/T 809 main link, us -> the upper
platform): one TCP connection, the frames read off it dispatched, link tests timed."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from ..jt808.frame import FrameError
from ..jt809 import links
from ..jt809.frame import Frame, Splitter
from .session import Session

log = logging.getLogger(__name__)


class LinkDown(Exception):
    """The main link is gone (or never came up): ``reason`` for the metric."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class MainLink:
    """A connected main link. ``on_answer`` is called for each UP_LINKTEST_RSP 0x1006,
    ``on_request`` for each business frame the upper platform sends on it."""

    def __init__(self, session: Session, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, *, on_answer: Callable[[], None],
                 on_request: Callable[[Frame, str], Awaitable[None]]) -> None:
        self.session = session
        self.reader, self.writer = reader, writer
        self.on_answer, self.on_request = on_answer, on_request
        self.login_answer: asyncio.Future[links.LoginAnswer] = \
            asyncio.get_running_loop().create_future()
        self.probe_times: deque[float] = deque()
        self.down: LinkDown | None = None
        self._task = asyncio.create_task(self._read())

    def write(self, data: bytes) -> None:
        self.check()
        self.writer.write(data)

    def probe(self) -> None:
        """A link test (0x1005), timed."""
        self.write(self.session.link_test())
        self.probe_times.append(asyncio.get_running_loop().time())

    def check(self, timeout_s: float | None = None) -> None:
        """Raise :class:`LinkDown` if the link is gone or a link test is unanswered for
        longer than ``timeout_s``."""
        if self.down is not None:
            raise self.down
        if timeout_s is not None and self.probe_times and \
                asyncio.get_running_loop().time() - self.probe_times[0] > timeout_s:
            self.down = LinkDown("timeout", f"link test unanswered for {timeout_s:g} s")
            raise self.down

    async def drain(self, timeout_s: float) -> None:
        self.check()
        try:
            await asyncio.wait_for(self.writer.drain(), timeout_s)
        except (OSError, asyncio.TimeoutError) as exc:
            self.down = LinkDown("write", repr(exc))
            raise self.down from None

    async def close(self) -> None:
        self._task.cancel()
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except (OSError, asyncio.TimeoutError):
            pass
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass

    def _lost(self, reason: str, detail: str = "") -> None:
        if self.down is None:
            self.down = LinkDown(reason, detail)
        if not self.login_answer.done():
            self.login_answer.set_exception(self.down)

    async def _read(self) -> None:
        splitter = Splitter()
        try:
            while True:
                data = await self.reader.read(65_536)
                if not data:
                    self._lost("closed", "the upper platform closed the main link")
                    return
                contents, _ = splitter.feed(data)
                for content in contents:
                    try:
                        frame = self.session.parse(content)
                    except FrameError as exc:
                        log.warning("unreadable frame on the main link: %s", exc)
                        continue
                    await self._dispatch(frame)
        except OSError as exc:
            self._lost("reset", repr(exc))

    async def _dispatch(self, frame: Frame) -> None:
        msg_id = frame.header.msg_id
        if msg_id == links.UP_CONNECT_RSP:
            try:
                answer = links.read_login_answer(frame.body)
            except FrameError as exc:
                self._lost("bad_login_answer", str(exc))
                return
            if not self.login_answer.done():
                self.login_answer.set_result(answer)
        elif msg_id == links.UP_LINKTEST_RSP:
            if self.probe_times:
                self.probe_times.popleft()
                self.on_answer()
        elif msg_id in (links.DOWN_DISCONNECT_INFORM, links.DOWN_CLOSELINK_INFORM,
                        links.UP_DISCONNECT_RSP):
            log.info("main link: 0x%04x from the upper platform", msg_id)
        elif msg_id >= 0x9000:
            await self.on_request(frame, "main")
        else:
            log.info("main link: 0x%04x ignored", msg_id)
