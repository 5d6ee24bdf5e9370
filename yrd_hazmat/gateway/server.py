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
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import secrets
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
from .courier import Courier
from .registry import Declarations, Registry
from .link import LinkConfig, LinkSession
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
        if settings.jt809_user_id:
            self.link_server = await asyncio.start_server(
                lambda r, w: self._connection(r, w, "jt809"), settings.gateway_host,
                settings.jt809_port, backlog=BACKLOG)
            log.info("JT/T 809 platform link listening on %s:%s (user %s, access code %s)",
                     settings.gateway_host, settings.jt809_port, settings.jt809_user_id,
                     settings.jt809_access_code)

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
    def _link_config(self) -> LinkConfig:
        s = self.settings
        return LinkConfig(user_id=s.jt809_user_id, password=s.jt809_password.get_secret_value(),
                          access_code=s.jt809_access_code,
                          cipher=jt809_frame.Cipher(s.jt809_m1, s.jt809_ia1, s.jt809_ic1))

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

    def _session(self, protocol: str) -> tuple[Session | LinkSession,
                                               Splitter | jt809_frame.Splitter]:
        """The protocol state and the framing of a new connection on ``protocol``'s port."""
        if protocol == "jt808":
            answers = self.courier.answered if self.courier is not None else None
            return Session(self.registry, lambda: secrets.token_hex(8), _now, self.declarations,
                           answers), Splitter()
        return LinkSession(self._link_config(), self.declarations), jt809_frame.Splitter()

    async def _serve(self, conn: Connection, reader: asyncio.StreamReader, peer) -> None:
        """Frames in, in order, until the peer leaves or a deadline closes the connection."""
        session, splitter = self._session(conn.protocol)
        writer = conn.writer
        held: str | None = None
        """The plate whose commands this connection carries (its authenticated terminal)."""
        try:
            while True:
                data = await reader.read(65_536)
                if not data:
                    break
                frames, junk = splitter.feed(data)
                if junk:
                    metrics.JUNK_BYTES.labels(conn.protocol).inc(junk)
                for content in frames:
                    handled = session.handle(content)
                    _heard(conn, handled, session)
                    conn.dead_letters += len(handled.rejected)
                    if conn.dead_letters > MAX_DEAD_LETTERS:
                        metrics.CONNECTIONS_TOTAL.labels(conn.protocol,
                                                         "too_many_rejections").inc()
                        return
                    await self._durable(handled, session.dead_letter_key(), peer, conn.protocol)
                    for answer in handled.answers:
                        writer.write(answer)
                    held = self._carry_commands(session, writer, held)
                await writer.drain()
        finally:
            if held is not None and self.courier is not None:
                self.courier.disconnected(session, held)

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
        now = _now()
        for rejected in handled.rejected:
            letter = dead_letter(
                topic=protocol, partition=-1, offset=-1,
                key=key.encode() if key else None, value=rejected.raw,
                rejection=Rejection(rejected.reason, f"{rejected.error} (from {peer})"),
                received_at=now, max_raw_bytes=settings.deadletter_max_raw_bytes)
            records.append((settings.topic_deadletter, key.encode() if key else None,
                            encode(letter)))
            metrics.REJECTED.labels(protocol, rejected.reason).inc()
        if records:
            await self.publisher.publish(records)
        if handled.registered is not None:
            self.registry.put(handled.registered)
        if handled.deregistered is not None:
            self.registry.remove(handled.deregistered)
        metrics.count_quality(handled, protocol)
        if handled.pings:
            batch = handled.message == "batch"
            kind = "blind" if handled.blind else ("batch" if batch else "realtime")
            metrics.POSITIONS.labels(protocol, kind).inc(len(handled.pings))


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

