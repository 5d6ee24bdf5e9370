"""Our slave-link server (JT/T 809 slave link, the upper platform -> us), whose address
UP_CONNECT_REQ 0x1001 gave. The upper platform logs in with DOWN_CONNECT_REQ 0x9001
carrying the VERIFY_CODE of our last UP_CONNECT_RSP 0x1002 (answered with DOWN_CONNECT_RSP
0x9002: 0 accepted, 1 wrong code), tests it with DOWN_LINKTEST_REQ 0x9005 (answered
0x9006), leaves with DOWN_DISCONNECT_REQ 0x9003 (answered 0x9004), and sends its requests
(0x9300, 0x9400, 0x9500) on it. When our main link breaks, we tell it on the slave link:
UP_DISCONNECT_INFORM 0x1007 (:meth:`SlaveServer.inform`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..jt808.frame import FrameError
from ..jt809 import links
from ..jt809.frame import Frame, Splitter
from . import metrics
from .session import Framer, LinkConfig

log = logging.getLogger(__name__)


class SlaveServer:
    def __init__(self, config: LinkConfig, verify_code: Callable[[], int | None],
                 on_request: Callable[[Frame, str], Awaitable[None]],
                 idle_s: float = 180.0,
                 changed: Callable[[], object] = lambda: None) -> None:
        self.config = config
        self.verify_code = verify_code
        self.on_request = on_request
        self.idle_s = idle_s
        self.changed = changed
        """Called when a slave link logs in or ends."""
        self.server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._logged: dict[asyncio.StreamWriter, Framer] = {}

    @property
    def up(self) -> bool:
        """Whether a slave link is logged in."""
        return bool(self._logged)

    def inform(self, code: int = links.MAIN_LINK_BROKEN) -> int:
        """UP_DISCONNECT_INFORM 0x1007 on every logged-in slave link (our main link is
        broken); returns on how many it was written."""
        told = 0
        for writer, framer in list(self._logged.items()):
            if not writer.is_closing():
                writer.write(framer.frame(links.UP_DISCONNECT_INFORM,
                                          links.write_code(links.Code(code))))
                told += 1
        return told

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._serve, host, port)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in list(self._open):  # their handlers end on the EOF, not cancelled
            writer.close()
        for _ in range(20):
            if not self._open:
                break
            await asyncio.sleep(0.05)
        if self.server is not None:
            self.server.close()
            try:
                await asyncio.wait_for(self.server.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer, splitter, logged = Framer(self.config), Splitter(), False
        self._open.add(writer)
        try:
            while True:
                data = await asyncio.wait_for(reader.read(65_536), self.idle_s)
                if not data:
                    return
                for content in splitter.feed(data)[0]:
                    try:
                        frame = framer.parse(content)
                    except FrameError as exc:
                        log.warning("unreadable frame on the slave link: %s", exc)
                        continue
                    msg_id = frame.header.msg_id
                    if msg_id == links.DOWN_CONNECT_REQ:
                        code = links.read_verify_code(frame.body).verify_code
                        expected = self.verify_code()
                        ok = expected is not None and code == expected
                        writer.write(framer.frame(links.DOWN_CONNECT_RSP, links.write_code(
                            links.Code(links.SLAVE_OK if ok else links.SLAVE_BAD_VERIFY_CODE))))
                        await writer.drain()
                        if not ok:
                            log.warning("slave link login with a wrong verify code")
                            return
                        if not logged:
                            metrics.SLAVE_UP.inc()
                            self._logged[writer] = framer
                            self.changed()
                        logged = True
                    elif not logged:
                        log.warning("slave link: 0x%04x before its login, closed", msg_id)
                        return
                    elif msg_id == links.DOWN_LINKTEST_REQ:
                        writer.write(framer.frame(links.DOWN_LINKTEST_RSP, b""))
                    elif msg_id == links.DOWN_DISCONNECT_REQ:
                        writer.write(framer.frame(links.DOWN_DISCONNECT_RSP, b""))
                        await writer.drain()
                        return
                    elif msg_id >= 0x9000 and msg_id not in links.EMPTY:
                        await self.on_request(frame, "slave")
                await writer.drain()
        except (OSError, asyncio.TimeoutError, FrameError) as exc:
            log.info("slave link ended: %r", exc)
        finally:
            self._open.discard(writer)
            if logged:
                metrics.SLAVE_UP.dec()
                self._logged.pop(writer, None)
                self.changed()
            writer.close()
