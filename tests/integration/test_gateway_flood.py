"""The gateway facing the mobile network, on the real broker: thousands of connections
that never become terminals (silent, dripping a byte at a time, sending junk, or
heartbeating without authenticating) are closed within the bounds, on both ports, while
a real terminal is served within a second; and the limits per source address, the JT/T
809 login deadline and the idle clock of an authenticated terminal.

Hostile clients connect from other loopback addresses (127.0.0.2, 127.0.0.3, ...) than
the real terminal (127.0.0.1), and every closing is observed from the client's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from yrd_hazmat.jt808 import frame as f808
from yrd_hazmat.jt808 import messages as m
from yrd_hazmat.jt808.terminal import SimulatedTerminal
from yrd_hazmat.jt809 import frame as f809
from tests import jt809_layout as m809
from yrd_hazmat.jt809.frame import Cipher
from yrd_hazmat.jt809.platform import SimulatedPlatform
from yrd_hazmat.core.timeutil import CHINA_TZ
from tests.integration.harness import run_env
from tests.integration.test_gateway import LINK, gateway_settings, running
from tests.integration.traces import PEOPLES_SQUARE, of

pytestmark = pytest.mark.integration

AUTH_S, IDLE_S = 2.0, 3.0
"""The gateway's bounds in these tests (YRD_GATEWAY_AUTH_TIMEOUT_S, YRD_GATEWAY_IDLE_S)."""
FLOOD_AUTH_S, FLOOD_IDLE_S = 4.0, 5.0
"""The flood's: opening it takes one to two seconds here, and the terminal must be served
while every flood connection is still open."""
LATE_S = 2.0
"""How much later than its deadline a connection may close: the sweep's tick (a quarter of
the shorter bound, at most 1 s) plus a busy two-core machine."""
ANSWER_S = 1.0
"""The real terminal is answered within this, flood or not."""
BEAT_S = 1.0
"""Hostile clients send (a byte, junk, a heartbeat) this often."""
FLOOD = {  # (protocol, kind): connections
    ("jt808", "silent"): 1000, ("jt808", "drip"): 1000, ("jt808", "junk"): 600,
    ("jt808", "heartbeat"): 400,
    ("jt809", "silent"): 150, ("jt809", "drip"): 150, ("jt809", "junk"): 100,
    ("jt809", "heartbeat"): 100,
}
HOSTILE_ADDRESSES = [f"127.0.0.{i}" for i in range(2, 10)]
CIPHER = Cipher(LINK["jt809_m1"], LINK["jt809_ia1"], LINK["jt809_ic1"])


@pytest.fixture
def genv(services):
    return run_env(services)


@pytest.fixture
def open_files():
    """Room for both ends of every flood connection in this one process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * sum(FLOOD.values()) + 2000
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the open-files hard limit {hard} is under the {needed} the flood needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def closings(protocol: str) -> Counter[str]:
    """The gateway's yrd_gateway_connections_total of ``protocol``, by result."""
    return Counter({result: REGISTRY.get_sample_value(
        "yrd_gateway_connections_total", {"protocol": protocol, "result": result}) or 0.0
        for result in ("accepted", "refused", "address_limit", "auth_timeout", "idle")})


def counted_since(before: dict[str, Counter[str]]) -> dict[str, Counter[str]]:
    """What was counted since ``before`` (the counters are the process's, shared by tests)."""
    return {protocol: +(closings(protocol) - counts) for protocol, counts in before.items()}


# --- what hostile clients send -------------------------------------------------------------
@dataclass(frozen=True)
class Wire:
    """The bytes hostile clients of one protocol send."""

    port: int
    opening: bytes
    """A frame's start flag: what follows is a frame that never ends."""
    drip: bytes
    """One byte that ends no frame."""
    heartbeat: bytes
    """A whole, readable frame that is answered but authenticates nothing."""
    bad_check: bytes
    """A frame whose check code is wrong."""


def jt808_wire(port: int) -> Wire:
    _, heartbeat = SimulatedTerminal("13900000000", "沪A00000").frame(m.HEARTBEAT, b"")
    content = f808.unescape(heartbeat[1:-1])
    bad = content[:-1] + bytes([content[-1] ^ 0x5A])
    return Wire(port, b"\x7e", b"\x01", heartbeat, b"\x7e" + f808.escape(bad) + b"\x7e")


def jt809_wire(port: int) -> Wire:
    platform = SimulatedPlatform(LINK["jt809_user_id"], "", LINK["jt809_access_code"], CIPHER)
    heartbeat = platform.frame(m809.UP_LINKTEST_REQ, b"")
    content = f809.unescape(heartbeat[1:-1])
    bad = content[:-2] + bytes(b ^ 0xFF for b in content[-2:])
    return Wire(port, b"\x5b", b"\x01", heartbeat, b"\x5b" + f809.escape(bad) + b"\x5d")


class Hostile(asyncio.Protocol):
    """One client connection that never becomes a terminal; notes when the gateway ends it."""

    def __init__(self, kind: str, wire: Wire) -> None:
        self.kind = kind
        self.wire = wire
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.opened = self.ended = 0.0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.opened = self.loop.time()
        if self.kind == "drip":
            transport.write(self.wire.opening)

    def data_received(self, data: bytes) -> None:
        pass  # answers to heartbeats and bad frames: not read

    def eof_received(self) -> None:
        self._end()

    def connection_lost(self, exc) -> None:
        self._end()

    def _end(self) -> None:
        self.ended = self.ended or self.loop.time()

    @property
    def open(self) -> bool:
        return not self.ended

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def beat(self) -> None:
        """What this kind sends every BEAT_S."""
        if self.transport is None or self.transport.is_closing():
            return
        if self.kind == "drip":
            self.transport.write(self.wire.drip)
        elif self.kind == "junk":
            self.transport.write(os.urandom(48) + self.wire.bad_check)
        elif self.kind == "heartbeat":
            self.transport.write(self.wire.heartbeat)


def flood_size(protocol: str) -> int:
    return sum(n for (p, _), n in FLOOD.items() if p == protocol)


@contextlib.asynccontextmanager
async def flood(wires: dict[str, Wire]):
    """Every connection of FLOOD open and beating; whatever is left is aborted at the end."""
    hostiles = await open_flood(wires)
    beating = asyncio.create_task(keep_beating(hostiles))
    try:
        yield hostiles
    finally:
        beating.cancel()
        for hostile in hostiles:
            hostile.abort()


async def open_flood(wires: dict[str, Wire]) -> list[Hostile]:
    """Every connection of FLOOD, spread over the hostile addresses (512 connecting at once)."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(512)
    plan = [(protocol, kind) for (protocol, kind), n in FLOOD.items() for _ in range(n)]

    async def one(i: int, protocol: str, kind: str) -> Hostile:
        async with gate:
            _, hostile = await loop.create_connection(
                lambda: Hostile(kind, wires[protocol]), "127.0.0.1", wires[protocol].port,
                local_addr=(HOSTILE_ADDRESSES[i % len(HOSTILE_ADDRESSES)], 0))
            return hostile

    return await asyncio.gather(*(one(i, p, k) for i, (p, k) in enumerate(plan)))


async def keep_beating(hostiles: list[Hostile]) -> None:
    while any(h.open for h in hostiles):
        for hostile in hostiles:
            hostile.beat()
        await asyncio.sleep(BEAT_S)


async def timed(call) -> tuple[object, float]:
    """(the result of awaiting ``call``, seconds it took)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await call
    return result, loop.time() - start


async def wait_for_condition(condition, timeout: float) -> None:
    """Until ``condition()`` holds, or ``timeout`` seconds (the caller asserts)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition() and loop.time() < deadline:
        await asyncio.sleep(0.05)


# --- the flood -----------------------------------------------------------------------------
@pytest.mark.timeout(60)
async def test_a_flood_that_never_authenticates_is_closed_while_a_terminal_is_served(
        genv, kafka, open_files):
    settings = gateway_settings(genv, gateway_auth_timeout_s=FLOOD_AUTH_S,
                                gateway_idle_s=FLOOD_IDLE_S, gateway_max_per_address=1000, **LINK)
    plate = f"沪F{uuid.uuid4().int % 100000:05d}"
    loop = asyncio.get_running_loop()
    async with running(settings) as gateway:
        before = {"jt808": closings("jt808"), "jt809": closings("jt809")}
        wires = {"jt808": jt808_wire(gateway.port), "jt809": jt809_wire(settings.jt809_port)}
        flood_start = loop.time()
        async with flood(wires) as hostiles:
            opened_in = loop.time() - flood_start
            truck = SimulatedTerminal("13900008080", plate)
            await truck.connect("127.0.0.1", gateway.port)
            served = [await timed(truck.register()), await timed(truck.authenticate()),
                      await timed(truck.report(datetime.now(CHINA_TZ) - timedelta(seconds=5),
                                               PEOPLES_SQUARE[1], PEOPLES_SQUARE[0], 42.0))]
            open_meanwhile, held_meanwhile = sum(h.open for h in hostiles), gateway.connections
            give_up = loop.time() + FLOOD_AUTH_S + LATE_S + 1
            while any(h.open for h in hostiles) and loop.time() < give_up:
                served.append(await timed(truck.heartbeat()))  # idle, it would be closed too
                await asyncio.sleep(0.5)
            await wait_for_condition(lambda: gateway.connections == 1, 2)
            left = gateway.connections
            counted = counted_since(before)
            await truck.close()

    lives = sorted(h.ended - h.opened for h in hostiles)
    print(f"\n{len(hostiles)} hostile connections opened in {opened_in:.2f} s; "
          f"{open_meanwhile} open when the terminal had reported; closed after "
          f"{lives[0]:.2f}..{lives[-1]:.2f} s; answers in "
          f"{max(took for _, took in served):.3f} s at most ({len(served)} requests)")
    assert open_meanwhile == len(hostiles), "the terminal was served after the flood was closed"
    assert held_meanwhile == len(hostiles) + 1  # all accepted, not waiting in the backlog
    assert served[0][0] and served[1][0] == m.OK and all(r == m.OK for r, _ in served[2:])
    assert all(took < ANSWER_S for _, took in served), served
    assert all(h.ended for h in hostiles), "a hostile connection was left open"
    assert FLOOD_AUTH_S - 0.05 <= lives[0] and lives[-1] <= FLOOD_AUTH_S + LATE_S, lives[::500]
    assert left == 1  # the real terminal alone
    assert counted == {
        "jt808": Counter(accepted=flood_size("jt808") + 1, auth_timeout=flood_size("jt808")),
        "jt809": Counter(accepted=flood_size("jt809"), auth_timeout=flood_size("jt809")),
    }
    assert of(kafka.read(genv["YRD_TOPIC_PINGS"], lambda r: len(of(r, plate)) >= 1), plate)


# --- one source address ----------------------------------------------------------------------
async def connect_from(address: str, port: int):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))


async def refused(reader: asyncio.StreamReader) -> bool:
    """Whether the gateway closed the connection at once (EOF or reset within a second)."""
    try:
        return await asyncio.wait_for(reader.read(10), 1.0) == b""
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def test_connections_over_the_bound_from_one_address_are_refused(genv):
    settings = gateway_settings(genv, gateway_max_per_address=3, **LINK)
    async with running(settings) as gateway:
        before = {"jt808": closings("jt808"), "jt809": closings("jt809")}
        crowded = [await connect_from("127.0.0.2", gateway.port) for _ in range(3)]
        over = await connect_from("127.0.0.2", gateway.port)
        over_link = await connect_from("127.0.0.2", settings.jt809_port)
        other = await connect_from("127.0.0.3", gateway.port)
        assert await asyncio.gather(refused(over[0]), refused(over_link[0]),
                                    *(refused(reader) for reader, _ in (*crowded, other))
                                    ) == [True, True, False, False, False, False]
        crowded[0][1].close()  # one leaves: there is room again
        await wait_for_condition(lambda: gateway.connections == 3, 2)
        again = await connect_from("127.0.0.2", gateway.port)
        assert not await refused(again[0])
        counted = counted_since(before)
        for _, writer in (*crowded, over, over_link, other, again):
            writer.close()
    assert counted == {"jt808": Counter(accepted=5, address_limit=1),
                       "jt809": Counter(address_limit=1)}


# --- deadlines of single connections ---------------------------------------------------------
async def test_a_platform_link_that_never_logs_in_is_closed_after_the_auth_timeout(genv):
    settings = gateway_settings(genv, gateway_auth_timeout_s=AUTH_S, gateway_idle_s=IDLE_S,
                                **LINK)
    loop = asyncio.get_running_loop()
    async with running(settings) as gateway:
        before = {"jt809": closings("jt809")}
        stranger = SimulatedPlatform(LINK["jt809_user_id"], "", LINK["jt809_access_code"], CIPHER)
        member = SimulatedPlatform(LINK["jt809_user_id"], LINK["jt809_password"],
                                   LINK["jt809_access_code"], CIPHER)
        await stranger.connect("127.0.0.1", settings.jt809_port)
        opened = loop.time()
        await member.connect("127.0.0.1", settings.jt809_port)
        assert await member.login() == m809.OK
        closed_after = None
        while loop.time() - opened < AUTH_S + LATE_S + 1:
            if closed_after is None:
                try:  # heartbeats are answered, yet they do not stand in for a login
                    assert await stranger.linktest()
                except ConnectionError:
                    closed_after = loop.time() - opened
            assert await member.linktest()
            await asyncio.sleep(0.5)
        assert gateway.connections == 1
        counted = counted_since(before)
        await member.close()
        await stranger.close()
    assert closed_after is not None and AUTH_S <= closed_after <= AUTH_S + LATE_S, closed_after
    assert counted == {"jt809": Counter(accepted=2, auth_timeout=1)}


async def test_an_authenticated_terminal_sending_only_junk_is_closed_as_idle(genv):
    settings = gateway_settings(genv, gateway_auth_timeout_s=AUTH_S, gateway_idle_s=IDLE_S)
    loop = asyncio.get_running_loop()
    junk = jt808_wire(0)
    async with running(settings) as gateway:
        before = {"jt808": closings("jt808")}
        babbler = Babbler("13900008081", "沪F80801")
        steady = SimulatedTerminal("13900008082", "沪F80802")
        for truck in (steady, babbler):
            await truck.connect("127.0.0.1", gateway.port)
            await truck.login()
        last_frame = loop.time()  # the babbler's authentication was its last readable frame
        babbling = asyncio.create_task(babbler.babble_until_closed(junk.bad_check))
        while loop.time() - last_frame < IDLE_S + LATE_S + 1:
            assert await steady.heartbeat() == m.OK  # answered throughout
            await asyncio.sleep(1.0)
        closed_after = await asyncio.wait_for(babbling, 1) - last_frame
        assert gateway.connections == 1
        counted = counted_since(before)
        await steady.close()
        await babbler.close()
    assert IDLE_S <= closed_after <= IDLE_S + LATE_S, closed_after
    assert counted == {"jt808": Counter(accepted=2, idle=1)}


class Babbler(SimulatedTerminal):
    """A terminal that, once authenticated, sends only junk: random bytes and frames with
    bad check codes, never a readable frame."""

    async def babble_until_closed(self, bad_frame: bytes) -> float:
        """Babble until the gateway closes the connection; the loop time it did."""
        ended = asyncio.create_task(self._until_eof())
        while not ended.done():
            with contextlib.suppress(ConnectionError):
                await self.send_raw(os.urandom(48) + bad_frame)
            await asyncio.wait({ended}, timeout=0.5)
        return ended.result()

    async def _until_eof(self) -> float:
        """Waits until the gateway closes the connection (the terminal's own reader drops
        the answers to the bad frames)."""
        await self.until_closed()
        return asyncio.get_running_loop().time()
