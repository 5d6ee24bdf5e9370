"""The links of every lower platform in this gateway, and the one way to send a platform a
downward message.

Per platform: its main link (the connection it logged in on; a new login replaces an
older connection, which is closed) and the slave link the gateway keeps to it
(:mod:`.slave`). :meth:`PlatformLinks.send` sends a downward message (DOWN_*, 0x9xxx) on
the slave link, or on the main link while the slave link is down (JT/T 809 allows it),
with the platform's edition, cipher and next MSG_SN; it returns the MSG_SN, which the
platform's 2019 answers quote as SOURCE_MSG_SN. :meth:`request_static_info` (0x9601) and
:meth:`inspect` (0x9301) are the first uses; the requests of ``yrd.platform-requests``
(:mod:`.dispatch`: inspections, supervision orders, texts, photos, tips) take the same way.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..jt809 import exchange as x
from ..jt809 import frame as f
from ..jt809 import inspection as i
from ..jt809 import links as lk
from ..jt809 import static as st
from ..link_states import LinkState
from . import metrics
from .link import SlaveTarget
from .platform_records import PlatformReport
from .platforms import Platform
from .slave import SlaveLink

log = logging.getLogger(__name__)


class LinkDown(ConnectionError):
    """Neither link of the platform is up: the message was not sent."""


@dataclass(frozen=True)
class Sent:
    route: str
    """``slave`` or ``main``."""
    serial: int
    """The frame's MSG_SN."""


@dataclass
class _Main:
    writer: asyncio.StreamWriter
    edition: int
    """The edition the platform logged in with (what goes down its main link)."""


@dataclass
class _Links:
    """One platform's links and the MSG_SN of what was sent it."""

    platform: Platform
    main: _Main | None = None
    slave: SlaveLink | None = None
    serial: int = 0
    logins: int = 0
    since: datetime | None = None
    """When the main link last went up or down."""
    positions: int = 0
    last_position_at: datetime | None = None


@dataclass(frozen=True)
class SlaveTimes:
    """The slave links' clocks (``YRD_JT809_SLAVE_*``) and frame size cap."""

    keepalive_s: float
    timeout_s: float
    retry_max_s: float
    max_frame: int = 65_536


class PlatformLinks:
    """Access code -> the platform's main and slave links (configured platforms only)."""

    def __init__(self, times: SlaveTimes, clock: Callable[[], datetime],
                 record: Callable[[PlatformReport], object]) -> None:
        self.times = times
        self.clock = clock
        self.record = record
        """Where the platforms' notices read on slave links go (``yrd.platform-reports``)."""
        self._links: dict[int, _Links] = {}
        self.changed: Callable[[], object] = lambda: None
        """Called when a link goes up or down (:class:`~yrd_hazmat.link_states.Reporter`)."""

    def _of(self, platform: Platform) -> _Links:
        links = self._links.get(platform.access_code)
        if links is None:
            links = self._links[platform.access_code] = _Links(platform)
        links.platform = platform
        return links

    # --- main links ----------------------------------------------------------------------
    def main_up(self, platform: Platform, writer: asyncio.StreamWriter,
                edition: int) -> asyncio.StreamWriter | None:
        """The platform logged in on this connection; returns the older connection it
        replaces (to be closed), if any."""
        links = self._of(platform)
        older = links.main.writer if links.main is not None else None
        links.main = _Main(writer, edition)
        links.logins += 1
        links.since = self.clock()
        self.changed()
        if links.logins > 1:
            metrics.PLATFORM_RECONNECTS.labels(platform.label, "main").inc()
        metrics.MAIN_UP.labels(platform.label).set(1)
        return older if older is not writer else None

    def main_down(self, access_code: int, writer: asyncio.StreamWriter) -> None:
        """This connection is no longer the platform's main link (it left or logged out)."""
        links = self._links.get(access_code)
        if links is None or links.main is None or links.main.writer is not writer:
            return
        links.main = None
        links.since = self.clock()
        metrics.MAIN_UP.labels(links.platform.label).set(0)
        self.changed()

    def main_link(self, access_code: int) -> bool:
        links = self._links.get(access_code)
        return links is not None and links.main is not None

    # --- slave links ---------------------------------------------------------------------
    async def start_slave(self, platform: Platform, target: SlaveTarget) -> None:
        """(Re)open the platform's slave link to ``target`` (a new login's address and
        verify code replace the older link's)."""
        links = self._of(platform)
        if links.slave is not None:
            await links.slave.stop()
        times = self.times
        access = platform.access_code
        links.slave = SlaveLink(platform, target, keepalive_s=times.keepalive_s,
                                timeout_s=times.timeout_s, retry_max_s=times.retry_max_s,
                                clock=self.clock, max_frame=times.max_frame,
                                inform=lambda reason: self._inform(access, reason),
                                record=self.record, changed=lambda: self.changed())
        links.slave.start()

    async def stop_slave(self, access_code: int, farewell: str = "disconnect") -> None:
        """End the platform's slave link: ``disconnect`` (DOWN_DISCONNECT_REQ 0x9003, the
        platform logged out), ``restart`` (DOWN_CLOSELINK_INFORM 0x9008, the gateway stops)."""
        links = self._links.get(access_code)
        if links is None or links.slave is None:
            return
        slave, links.slave = links.slave, None
        session = slave.session
        await slave.stop(session.disconnect_request() if farewell == "disconnect"
                         else session.close_inform(lk.GATEWAY_RESTART))

    def slave_link(self, access_code: int) -> bool:
        links = self._links.get(access_code)
        return links is not None and links.slave is not None and links.slave.up

    def _inform(self, access_code: int, reason: int) -> None:
        """DOWN_DISCONNECT_INFORM 0x9007 on the main link: the slave link is unreachable
        (0) or broke (1)."""
        if self._main_send(access_code, lk.DOWN_DISCONNECT_INFORM,
                           lk.write_code(lk.Code(reason))) is not None:
            log.info("platform %s told its slave link is %s", access_code,
                     "unreachable" if reason == lk.SLAVE_UNREACHABLE else "broken")

    # --- sending down --------------------------------------------------------------------
    def send(self, access_code: int, msg_id: int, body: bytes) -> Sent:
        """Send a downward message to the platform: its slave link, else its main link;
        :class:`LinkDown` if neither is up."""
        links = self._links.get(access_code)
        label = links.platform.label if links is not None else metrics.UNKNOWN_PLATFORM
        if links is not None:
            serial = self._next_serial(links)
            if links.slave is not None and links.slave.send(msg_id, body, serial):
                metrics.DOWNWARD.labels(label, "slave").inc()
                return Sent("slave", serial)
            if self._main_send(access_code, msg_id, body, serial) is not None:
                metrics.DOWNWARD.labels(label, "main").inc()
                return Sent("main", serial)
        metrics.DOWNWARD.labels(label, "none").inc()
        raise LinkDown(f"platform {access_code} has no link up")

    def request_static_info(self, access_code: int, plate: str, colour: int) -> Sent:
        """DOWN_BASE_MSG_VEHICLE_ADDED 0x9601: ask for a vehicle's static information (the
        platform answers UP_BASE_MSG_VEHICLE_ADDED_ACK 0x1601, recorded)."""
        return self.send(access_code, st.DOWN_BASE_MSG,
                         st.write(plate, colour, st.VEHICLE_ADDED))

    def inspect(self, access_code: int, question: i.Inspection) -> Sent:
        """DOWN_PLATFORM_MSG_POST_QUERY_REQ 0x9301: a platform inspection question."""
        links = self._links.get(access_code)
        edition = links.platform.edition if links is not None else f.V2011
        return self.send(access_code, i.DOWN_PLATFORM_MSG,
                         i.write(i.POST_QUERY_REQ, i.write_inspection(question, edition)))

    def request_waybill(self, access_code: int, plate: str, colour: int) -> Sent:
        """DOWN_EXG_MSG_TAKE_EWAYBILL_REQ 0x920B: ask for a vehicle's e-waybill (answered
        0x120B, on ``yrd.ewaybills``)."""
        return self.send(access_code, x.DOWN_EXG_MSG,
                         x.write(plate, colour, x.TAKE_EWAYBILL_REQ, b""))

    def _next_serial(self, links: _Links) -> int:
        links.serial = (links.serial + 1) & 0xFFFFFFFF
        return links.serial

    def _main_send(self, access_code: int, msg_id: int, body: bytes,
                   serial: int | None = None) -> int | None:
        links = self._links.get(access_code)
        if links is None or links.main is None or links.main.writer.is_closing():
            return None
        if serial is None:
            serial = self._next_serial(links)
        platform = links.platform
        cipher = platform.cipher
        links.main.writer.write(f.build(
            msg_id, serial, access_code, body, cipher=cipher,
            key=secrets.randbits(32) if cipher is not None else 0, edition=links.main.edition,
            time=int(self.clock().timestamp())))
        return serial

    # --- the end -------------------------------------------------------------------------
    async def stop(self) -> None:
        """Every slave link ended, each platform told the gateway restarts (0x9008)."""
        await asyncio.gather(*(self.stop_slave(code, "restart") for code in list(self._links)),
                             return_exceptions=True)

    def heard(self, access_code: int, positions: int, latest: datetime | None) -> None:
        """Positions received from the platform (for its link state)."""
        links = self._links.get(access_code)
        if links is None or not positions:
            return
        links.positions += positions
        if latest is not None and (links.last_position_at is None
                                   or latest > links.last_position_at):
            links.last_position_at = latest

    def states(self, reporter: str, heartbeat_s: float) -> list[LinkState]:
        """Every platform's links as held here (``yrd.link-states``)."""
        now = self.clock()
        return [LinkState(
            link="platform", access_code=code, name=links.platform.name,
            edition=links.main.edition if links.main is not None else links.platform.edition,
            reporter=reporter, main_up=links.main is not None,
            slave_up=links.slave is not None and links.slave.up, since=links.since,
            positions=links.positions, last_position_at=links.last_position_at,
            reconnects=max(0, links.logins - 1), reported_at=now, heartbeat_s=heartbeat_s)
            for code, links in self._links.items()]
