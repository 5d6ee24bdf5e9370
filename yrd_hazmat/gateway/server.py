"""``yrd-hazmat gateway``: the asyncio TCP server terminals connect to (JT/T 808).

One process holds many thousand connections. Per connection, frames are handled in
order (:class:`.session.Session`); what a frame produced is made durable before the
terminal is answered: the registration on ``yrd.terminals``, the pings on ``yrd.pings``
(keyed by plate), the rejections on the dead-letter topic, each acknowledged by the
broker. A terminal that gets no answer sends again (JT/T 808's retransmission), so a
position is never lost between a terminal and Kafka; a repeat is a duplicate ping,
which the worker recognises. Nothing a terminal sends stops the gateway.

A connection is not a terminal until it proves it: it is closed if it has not
authenticated ``YRD_GATEWAY_AUTH_TIMEOUT_S`` after it opened, or has sent no whole,
readable frame for ``YRD_GATEWAY_IDLE_S`` (raw bytes, junk and partial frames keep
nothing alive). Beyond ``YRD_GATEWAY_MAX_CONNECTIONS`` new connections are refused, and
beyond ``YRD_GATEWAY_MAX_PER_ADDRESS`` from one source address those from that address.
On both ports alike; each closing reason is counted (``yrd_gateway_connections_total``).

JT/T 809 lower platforms (:mod:`.link`, one :class:`.link.LinkSession` per main link) are
those configured on ``yrd.platforms`` (followed: one added there logs in without a
restart) and the one of the ``YRD_JT809_*`` settings; their positions go to
``yrd.pings``, their registrations, e-waybills, alarms and other reports to their
topics, durable before the platform is answered. Their slave links and the way down to
them are :class:`.platform_links.PlatformLinks` (``Gateway.links``); the downward
requests of ``yrd.platform-requests`` (inspections, supervision orders, texts, photos,
tips) go down them, their steps and answers onto ``yrd.platform-request-results``
(:class:`.dispatch.Dispatcher`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import secrets
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaProducer

from ..core.codec import Rejection, dead_letter, encode
from ..config import Settings
from ..jt808.frame import Splitter
from ..jt809 import frame as jt809_frame
from ..core.timeutil import CHINA_TZ
from ..topics import ensure_topics
from . import metrics
from ..follow import Follower
from ..link_states import LinkStates, Reporter
from .courier import Courier, gateway_id
from .dispatch import Dispatcher
from .registry import Declarations, Registry
from .guard import LoginGuard
from .link import LinkHandled, LinkSession
from .platform_alarms import LastFixes
from .platform_links import PlatformLinks, SlaveTimes
from .platform_records import PlatformReport
from .platforms import Platforms, from_settings
from .session import Handled, Session

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(CHINA_TZ)


BACKLOG = 1024
"""Pending connections the kernel queues per port (a burst of reconnecting terminals)."""
MAX_DEAD_LETTERS = 200
"""Dead letters one connection may cause; beyond, it is closed (``too_many_rejections``):
a peer sending only junk frames must not flood the dead-letter topic."""
MAX_REQUEST_BYTES = 5 * 1024 * 1024
"""The producer's largest request: a terminal's photo (``yrd.media`` takes 4 MiB)."""
MAX_TICK_S = 1.0
"""Longest pause between two sweeps of the deadlines: how late a connection may close."""

Record = tuple[str, bytes | None, bytes | None]
"""(topic, key, value)."""


class Publisher:
    """One coroutine hands every record to the Kafka producer, and each connection waits
    only for the broker's acknowledgement of its own records.

    With thousands of connections each calling the producer's ``send``, every one of
    them waits on a full batch and all are woken each time a batch goes out: 5,000
    terminals brought the gateway from 11,700 to 1,800 positions/s at full CPU. Funnelled
    through one sender, only it waits.
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.queue: asyncio.Queue[tuple[list[Record], asyncio.Future]] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="gateway-publisher")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def publish(self, records: list[Record]) -> None:
        """Returns once the broker has acknowledged every record (raises if it refused)."""
        done = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((records, done))
        await done

    async def _run(self) -> None:
        while True:
            records, done = await self.queue.get()
            try:
                deliveries = [await self.producer.send(topic, value, key=key)
                              for topic, key, value in records]
            except Exception as exc:  # the connection that asked learns it: no answer
                if not done.done():
                    done.set_exception(exc)
                continue
            acked = asyncio.gather(*deliveries)
            acked.add_done_callback(lambda f, done=done: _settle(done, f))


def _settle(done: asyncio.Future, acked: asyncio.Future) -> None:
    if done.done():
        return
    if acked.cancelled():
        done.cancel()
    elif acked.exception() is not None:
        done.set_exception(acked.exception())
    else:
        done.set_result(None)


@dataclass(eq=False)
class Connection:
    """What the deadlines need of one open connection (loop times, in seconds)."""

    writer: asyncio.StreamWriter
    protocol: str
    address: str
    opened: float
    last_frame: float
    """When the last whole, readable frame arrived (the idle clock)."""
    authenticated: bool = False
    """Whether its terminal (or platform) authenticated; it stays so for the connection."""
    closed: bool = False
    dead_letters: int = 0
    """Dead letters its frames caused (see :data:`MAX_DEAD_LETTERS`)."""


class Deadlines:
    """When each open connection is due to be closed, in one heap.

    A frame only moves ``last_frame`` forward; the heap is not touched per frame. Each
    connection has one entry; when it comes due, the connection is checked against its
    clocks now, and either closed or pushed again at its next deadline. A sweep thus
    costs only the entries due, however many thousand connections are open.
    """

    def __init__(self, auth_timeout_s: float, idle_s: float) -> None:
        self.auth_timeout_s = auth_timeout_s
        self.idle_s = idle_s
        self._heap: list[tuple[float, int, Connection]] = []
        self._order = itertools.count()  # ties never compare connections

    def watch(self, conn: Connection) -> None:
        heapq.heappush(self._heap, (self._due(conn), next(self._order), conn))

    def expired(self, now: float) -> Iterator[tuple[Connection, str]]:
        """The connections to close now, each with its reason ("auth_timeout", "idle")."""
        while self._heap and self._heap[0][0] <= now:
            conn = heapq.heappop(self._heap)[2]
            if conn.closed:
                continue
            reason = self._overdue(conn, now)
            if reason is None:
                self.watch(conn)
            else:
                yield conn, reason

    def _due(self, conn: Connection) -> float:
        idle_at = conn.last_frame + self.idle_s
        return idle_at if conn.authenticated else min(idle_at, conn.opened + self.auth_timeout_s)

    def _overdue(self, conn: Connection, now: float) -> str | None:
        if not conn.authenticated and now >= conn.opened + self.auth_timeout_s:
            return "auth_timeout"
        if now >= conn.last_frame + self.idle_s:
            return "idle"
        return None


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry()
        self.declarations = Declarations()
        """Carriers' declarations of their vehicles' terminals (``yrd.vehicle-terminals``)."""
        self.courier: Courier | None = None
        self.loaded = asyncio.Event()
        self.producer: AIOKafkaProducer | None = None
        self.publisher: Publisher | None = None
        self.server: asyncio.Server | None = None
        self.link_server: asyncio.Server | None = None
        self._followers: list[asyncio.Task] = []
        self._sweeper: asyncio.Task | None = None
        self._open = 0
        self._per_address: Counter[str] = Counter()
        """Open connections by source address (an address at zero is dropped)."""
        self._deadlines = Deadlines(settings.gateway_auth_timeout_s, settings.gateway_idle_s)
        self.platforms = Platforms(from_settings(settings))
        """The JT/T 809 lower platforms: ``yrd.platforms`` over the ``YRD_JT809_*`` one."""
        self.guard = LoginGuard(settings.jt809_login_attempts, settings.jt809_login_failures,
                                settings.jt809_login_window_s)
        self.positions = LastFixes()
        """Every platform vehicle's latest position (where its platform's alarms are put)."""
        self.links = PlatformLinks(
            SlaveTimes(settings.jt809_slave_keepalive_s, settings.jt809_slave_timeout_s,
                       settings.jt809_slave_retry_max_s, settings.jt809_max_frame_bytes),
            _now, self._record_report)
        """The platforms' main and slave links; :meth:`.PlatformLinks.send` sends one a
        downward message."""
        self.dispatcher: Dispatcher | None = None
        """Downward requests (``yrd.platform-requests``) to the platforms linked here."""
        self.link_states: Reporter | None = None
        """The platforms' links as held here, on ``yrd.link-states``."""
        self.reporter = f"{socket.gethostname()}:{settings.jt809_port}"
        """This gateway on ``yrd.link-states``: its host and platform port, the same across
        its restarts (a restart's word replaces the one of the process before it)."""
        self._states = LinkStates(lambda state: state.link == "platform"
                                  and state.reporter != self.reporter)
        """The other gateways' reports."""
        self._background: set[asyncio.Task] = set()

    # --- life cycle --------------------------------------------------------------------
    async def start(self) -> None:
        settings = self.settings
        await ensure_topics(settings)
        self.producer = AIOKafkaProducer(**settings.kafka_options(), acks="all",
                                         enable_idempotence=True, linger_ms=5,
                                         max_request_size=MAX_REQUEST_BYTES)
        await self.producer.start()
        self.publisher = Publisher(self.producer)
        self.publisher.start()
        await self._follow(settings.topic_terminals, self.registry.apply)
        await self._follow(settings.topic_vehicle_terminals, self.declarations.apply)
        self.loaded.set()
        self.courier = Courier(settings, self.publisher.publish)
        await self.courier.start()
        self._sweeper = asyncio.create_task(self._close_overdue(), name="deadline-sweeper")
        self.server = await asyncio.start_server(
            lambda r, w: self._connection(r, w, "jt808"), settings.gateway_host,
            settings.jt808_port, backlog=BACKLOG)
        log.info("JT/T 808 gateway listening on %s:%s (%d terminals registered)",
                 settings.gateway_host, self.port, len(self.registry))
        if settings.jt809_user_id or settings.jt809_listen:
            await self._follow(settings.topic_platforms, self.platforms.apply)
            self.link_states = self._link_state_reporter()
            await self._follow(settings.topic_link_states, self._states.apply)
            self.dispatcher = Dispatcher(settings, self.links, self.platforms,
                                         self.publisher.publish, gateway_id(),
                                         elsewhere=self._linked_elsewhere)
            await self.dispatcher.start()
            self.links.changed = self.link_states.changed
            self.link_states.start()
            self.link_server = await asyncio.start_server(
                lambda r, w: self._connection(r, w, "jt809"), settings.gateway_host,
                settings.jt809_port, backlog=BACKLOG)
            log.info("JT/T 809 platform link listening on %s:%s (%d lower platforms: %s)",
                     settings.gateway_host, settings.jt809_port, len(self.platforms),
                     ", ".join(str(self.platforms[code]) for code in sorted(self.platforms)))

    async def _follow(self, topic: str, apply) -> None:
        """Read a compacted topic whole, then keep following it (a task that reconnects
        by itself); returns once it is read up to its end."""
        follower = Follower(self.settings.kafka_options(), topic, apply)
        self._followers.append(asyncio.create_task(follower.run(), name=f"follow-{topic}"))
        await follower.caught_up.wait()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    @property
    def connections(self) -> int:
        """Open connections, on both ports."""
        return self._open

    async def stop(self) -> None:
        for server in (self.server, self.link_server):
            if server is not None:
                server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.links.stop()
        if self.link_states is not None:
            await self.link_states.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.courier is not None:
            await self.courier.stop()
        for follower in self._followers:
            follower.cancel()
        await asyncio.gather(*self._followers, return_exceptions=True)
        if self.publisher is not None:
            await self.publisher.stop()
        if self.producer is not None:
            await self.producer.stop()

    # --- one connection -----------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          protocol: str) -> None:
        peer = writer.get_extra_info("peername")
        address = peer[0] if peer else "?"
        refusal = self._refusal(address)
        if refusal is not None:
            metrics.CONNECTIONS_TOTAL.labels(protocol, refusal).inc()
            writer.close()
            return
        conn = self._admit(writer, protocol, address)
        try:
            await self._serve(conn, reader, peer)
        except (ConnectionError, OSError):
            pass
        except Exception:  # a bug must cost one connection, never the gateway
            log.exception("connection %s failed", peer)
        finally:
            self._release(conn)
            writer.close()

    def _refusal(self, address: str) -> str | None:
        """Why a new connection from ``address`` is refused at once, if it is."""
        if self._open >= self.settings.gateway_max_connections:
            return "refused"
        if self._per_address[address] >= self.settings.gateway_max_per_address:
            return "address_limit"
        return None

    def _admit(self, writer: asyncio.StreamWriter, protocol: str, address: str) -> Connection:
        now = asyncio.get_running_loop().time()
        conn = Connection(writer, protocol, address, opened=now, last_frame=now)
        self._open += 1
        self._per_address[address] += 1
        self._deadlines.watch(conn)
        metrics.CONNECTIONS.labels(protocol).inc()
        metrics.CONNECTIONS_TOTAL.labels(protocol, "accepted").inc()
        return conn

    def _release(self, conn: Connection) -> None:
        conn.closed = True
        self._open -= 1
        self._per_address[conn.address] -= 1
        if not self._per_address[conn.address]:
            del self._per_address[conn.address]
        metrics.CONNECTIONS.labels(conn.protocol).dec()

    def _session(self, conn: Connection) -> tuple[Session | LinkSession,
                                                  Splitter | jt809_frame.Splitter]:
        """The protocol state and the framing of a new connection."""
        if conn.protocol == "jt808":
            answers = self.courier.answered if self.courier is not None else None
            return Session(self.registry, lambda: secrets.token_hex(8), _now, self.declarations,
                           answers), Splitter()
        return (LinkSession(self.platforms, self.declarations, address=conn.address,
                            guard=self.guard, positions=self.positions, clock=_now),
                jt809_frame.Splitter(self.settings.jt809_max_frame_bytes))

    async def _serve(self, conn: Connection, reader: asyncio.StreamReader, peer) -> None:
        """Frames in, in order, until the peer leaves or a deadline closes the connection."""
        session, splitter = self._session(conn)
        writer = conn.writer
        held: str | None = None
        """The plate whose commands this connection carries (its authenticated terminal)."""
        oversized = 0
        try:
            while True:
                data = await reader.read(65_536)
                if not data:
                    break
                frames, junk = splitter.feed(data)
                if junk:
                    metrics.JUNK_BYTES.labels(conn.protocol).inc(junk)
                if isinstance(splitter, jt809_frame.Splitter) and splitter.oversized > oversized:
                    metrics.OVERSIZED.labels(conn.protocol).inc(splitter.oversized - oversized)
                    oversized = splitter.oversized
                if isinstance(session, LinkSession):
                    if await self._link_frames(frames, session, conn, peer):
                        return
                    await writer.drain()
                    continue
                for content in frames:
                    handled = session.handle(content)
                    if self._too_many_rejections(conn, handled, session):
                        return
                    await self._durable(handled, session.dead_letter_key(), peer, conn.protocol)
                    for answer in handled.answers:
                        writer.write(answer)
                    held = self._carry_commands(session, writer, held)
                await writer.drain()
        finally:
            if held is not None and self.courier is not None:
                self.courier.disconnected(session, held)
            if isinstance(session, LinkSession):
                await self._link_ended(session, conn, peer)

    def _too_many_rejections(self, conn: Connection, handled: Handled,
                             session: Session | LinkSession) -> bool:
        _heard(conn, handled, session)
        conn.dead_letters += len(handled.rejected)
        if conn.dead_letters > MAX_DEAD_LETTERS:
            metrics.CONNECTIONS_TOTAL.labels(conn.protocol, "too_many_rejections").inc()
            return True
        return False

    async def _link_frames(self, frames: list[bytes], session: LinkSession, conn: Connection,
                           peer) -> bool:
        """A platform link's frames of one read, handled together: their records put on
        Kafka in one go (a platform passes thousands of trucks on one link and waits for no
        answer, so a wait for the broker per frame capped a link at a few hundred
        positions/s), then the answers written, in order: a link test is answered only
        once what came before it is on Kafka. Whether the link is to be closed."""
        handled_all: list[LinkHandled] = []
        records: list[Record] = []
        now = _now()
        for content in frames:
            handled = session.handle(content)
            if self._too_many_rejections(conn, handled, session):
                return True
            records += self._records(handled, session.dead_letter_key(), peer, conn.protocol,
                                     now)
            handled_all.append(handled)
            if handled.close:
                break
        if records:
            assert self.publisher is not None
            await self.publisher.publish(records)
        for handled in handled_all:
            self._applied(handled, conn.protocol, now)
            for answer in handled.answers:
                conn.writer.write(answer)
            await self._platform_link(handled, session, conn)
            if handled.close:
                await conn.writer.drain()
                metrics.CONNECTIONS_TOTAL.labels(conn.protocol, "link_closed").inc()
                return True
        return False

    def _carry_commands(self, session, writer: asyncio.StreamWriter,
                        held: str | None) -> str | None:
        """Tell the courier when this connection's terminal authenticated or left; returns
        the plate the connection now carries commands for."""
        courier = self.courier
        if courier is None or not isinstance(session, Session):
            return None
        now = session.terminal.vehicle_id if session.terminal is not None else None
        if now == held:
            return held
        if held is not None:
            courier.disconnected(session, held)
        if now is not None:
            courier.authenticated(session, writer)
        return now

    # --- platform links -----------------------------------------------------------------
    async def _platform_link(self, handled: LinkHandled, session: LinkSession,
                             conn: Connection) -> None:
        """What a main-link frame means for the platform's links: a login (the main link
        up, its slave link opened), a logout, messages to send it down."""
        platform = handled.platform
        if handled.login is not None:
            label = platform.label if platform is not None else metrics.UNKNOWN_PLATFORM
            metrics.PLATFORM_LOGINS.labels(label, handled.login.reason).inc()
            if platform is not None and session.platform is not None:
                older = self.links.main_up(platform, conn.writer,
                                           session.header.edition if session.header else 2011)
                if older is not None:  # the platform logged in anew: its older link goes
                    older.transport.abort()
                if handled.slave is not None:
                    await conn.writer.drain()  # the verify code is on its way first
                    await self.links.start_slave(platform, handled.slave)
            elif platform is not None:
                self.links.main_down(platform.access_code, conn.writer)
        if handled.logout and platform is not None:
            self.links.main_down(platform.access_code, conn.writer)
            await self.links.stop_slave(platform.access_code)
        if session.platform is not None:
            for msg_id, body in handled.downward:
                try:
                    self.links.send(session.platform.access_code, msg_id, body)
                except ConnectionError:
                    pass  # counted ('none'); nothing waits for it

    async def _link_ended(self, session: LinkSession, conn: Connection, peer) -> None:
        """A main link closed: it is no longer the platform's, and the alarms that were
        still waiting for a position are dead letters."""
        if session.platform is not None:
            self.links.main_down(session.platform.access_code, conn.writer)
        closing = session.close()
        if closing.rejected and self.publisher is not None:
            try:
                await self._durable(closing, session.dead_letter_key(), peer, conn.protocol)
            except Exception as exc:  # the gateway stopping: logged, nothing else to do
                log.warning("dead letters of a closed platform link: %s", exc)

    def _linked_elsewhere(self, access_code: int) -> bool:
        """Whether another gateway's fresh report says it holds a link of the platform."""
        return self._states.linked(access_code, _now())

    def _link_state_reporter(self) -> Reporter:
        """Writes the platforms' link states (:attr:`reporter`)."""
        settings = self.settings
        reporter = self.reporter
        heartbeat = settings.link_state_heartbeat_s
        topic = settings.topic_link_states
        publisher = self.publisher
        assert publisher is not None
        return Reporter(lambda: self.links.states(reporter, heartbeat),
                        lambda records: publisher.publish(
                            [(topic, key, value) for key, value in records]),
                        heartbeat)

    def _record_report(self, report: PlatformReport) -> None:
        """A platform's notice read on a slave link, onto ``yrd.platform-reports``."""
        if self.publisher is None:
            return
        record = (self.settings.topic_platform_reports, str(report.platform).encode(),
                  encode(report))
        task = asyncio.create_task(self.publisher.publish([record]))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _close_overdue(self) -> None:
        """Close the connections past a deadline (one sweep a fraction of the shorter
        timeout apart, instead of a timer per connection)."""
        settings = self.settings
        tick = min(min(settings.gateway_idle_s, settings.gateway_auth_timeout_s) / 4, MAX_TICK_S)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            for conn, reason in self._deadlines.expired(loop.time()):
                metrics.CONNECTIONS_TOTAL.labels(conn.protocol, reason).inc()
                conn.writer.transport.abort()

    async def _durable(self, handled: Handled, key: str | None, peer, protocol: str) -> None:
        """Put on Kafka what the frame produced; returns once the broker has it all."""
        assert self.publisher is not None
        now = _now()
        records = self._records(handled, key, peer, protocol, now)
        if records:
            await self.publisher.publish(records)
        self._applied(handled, protocol, now)

    def _records(self, handled: Handled, key: str | None, peer, protocol: str,
                 now: datetime) -> list[Record]:
        """The records of what a frame produced (its dead letters counted)."""
        settings = self.settings
        metrics.MESSAGES.labels(protocol, handled.message).inc()
        records: list[Record] = []
        if handled.registered is not None:
            terminal = handled.registered
            records.append((settings.topic_terminals, terminal.terminal.encode(), encode(terminal)))
        if handled.deregistered is not None:
            records.append((settings.topic_terminals, handled.deregistered.encode(), None))
        for ping in handled.pings:
            records.append((settings.topic_pings, ping.vehicle_id.encode(), encode(ping)))
        if isinstance(handled, LinkHandled):
            records += _platform_records(settings, handled)
        for rejected in handled.rejected:
            letter = dead_letter(
                topic=protocol, partition=-1, offset=-1,
                key=key.encode() if key else None, value=rejected.raw,
                rejection=Rejection(rejected.reason, f"{rejected.error} (from {peer})"),
                received_at=now, max_raw_bytes=settings.deadletter_max_raw_bytes)
            records.append((settings.topic_deadletter, key.encode() if key else None,
                            encode(letter)))
            metrics.REJECTED.labels(protocol, rejected.reason).inc()
        return records

    def _applied(self, handled: Handled, protocol: str, now: datetime) -> None:
        """What follows once a frame's records are on Kafka: the registry, the counts,
        the platform's answers matched to its requests."""
        if handled.registered is not None:
            self.registry.put(handled.registered)
        if handled.deregistered is not None:
            self.registry.remove(handled.deregistered)
        metrics.count_quality(handled, protocol)
        if handled.pings:
            batch = handled.message == "batch"
            kind = "blind" if handled.blind else ("batch" if batch else "realtime")
            metrics.POSITIONS.labels(protocol, kind).inc(len(handled.pings))
        if isinstance(handled, LinkHandled) and handled.platform is not None:
            _count_platform(handled, now)
            if handled.pings:
                self.links.heard(handled.platform.access_code, len(handled.pings),
                                 max(ping.ts for ping in handled.pings))
            if handled.reports and self.dispatcher is not None:
                self.dispatcher.answered(handled.reports)


def _platform_records(settings: Settings, handled: LinkHandled) -> list[Record]:
    """The records of a platform's frame besides pings and dead letters."""
    records: list[Record] = []
    for alert in handled.alerts:
        records.append((settings.topic_alerts, alert.vehicle_id.encode(), encode(alert)))
    for vehicle in handled.vehicles:
        records.append((settings.topic_platform_vehicles, vehicle.vehicle_id.encode(),
                        encode(vehicle)))
    for waybill in handled.waybills:
        records.append((settings.topic_ewaybills, waybill.vehicle_id.encode(), encode(waybill)))
    for report in handled.reports:
        records.append((settings.topic_platform_reports, str(report.platform).encode(),
                        encode(report)))
    for media in handled.media:
        records.append((settings.topic_media, media.media_id.encode(), encode(media)))
    return records


def _count_platform(handled: LinkHandled, now: datetime) -> None:
    """A platform's positions (live, resent, and how late the resent ones are) and records."""
    assert handled.platform is not None
    label = handled.platform.label
    if handled.pings:
        kind = "resent" if handled.blind else "live"
        metrics.PLATFORM_POSITIONS.labels(label, kind).inc(len(handled.pings))
    if handled.blind:
        lag = metrics.RESEND_LAG.labels(label)
        for ping in handled.pings:
            lag.observe(max(0.0, (now - ping.ts).total_seconds()))
    for kind, records in (("alert", handled.alerts), ("vehicle", handled.vehicles),
                          ("waybill", handled.waybills), ("report", handled.reports)):
        if records:
            metrics.PLATFORM_RECORDS.labels(label, kind).inc(len(records))


def _heard(conn: Connection, handled: Handled, session: Session | LinkSession) -> None:
    """A whole, readable frame keeps the connection alive; nothing less does."""
    if handled.message == "unreadable":
        return
    conn.last_frame = asyncio.get_running_loop().time()
    conn.authenticated = conn.authenticated or session.authenticated


async def run(settings: Settings) -> None:
    """Run the gateway until cancelled (the CLI's ``gateway`` command)."""
    from prometheus_client import start_http_server

    if settings.gateway_metrics_port:
        start_http_server(settings.gateway_metrics_port, settings.metrics_host)
    gateway = Gateway(settings)
    await gateway.start()
    try:
        await asyncio.Event().wait()
    finally:
        await gateway.stop()

