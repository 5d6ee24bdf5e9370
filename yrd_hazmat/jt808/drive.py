"""The simulated fleet driven through simulated JT/T 808 terminals and a gateway.

``yrd-hazmat simulate --protocol jt808``: every truck of :class:`yrd_hazmat.simulator.Fleet`
gets a terminal (phone 1390000NNNN), registers and authenticates with the gateway, then
reports a position (0x0200) every interval and heartbeats. The first truck loses signal
for a while every few minutes (a tunnel): it keeps its positions and, back in signal,
uploads them in a blind-area batch (0x0704) before its next report. Permits still go
to the permits topic (they come from the carriers' systems, not the terminals).

From connection to close every terminal also answers the platform's commands (see
:mod:`yrd_hazmat.jt808.terminal`): a text a truck receives is logged at INFO on
:data:`~yrd_hazmat.jt808.terminal.DISPLAY_LOG`, its driver's display, which the demo
shows next to the alerts.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import msgspec

from ..core.models import Ping
from ..simulator import Fleet
from ..core.timeutil import CHINA_TZ
from .terminal import SimulatedTerminal

log = logging.getLogger(__name__)

OUT_OF_SIGNAL = (3, 9)
"""The tunnel truck is out of signal for these ticks of every ``CYCLE``."""
CYCLE = 20


def phone_of(i: int) -> str:
    return f"1390000{i:04d}"


async def _report(terminal: SimulatedTerminal, ping: Ping, out_of_signal: bool) -> int:
    """One tick of one terminal: keep the position, or upload what it kept and report."""
    fields = dict(ts=ping.ts, lat=ping.lat, lon=ping.lon, speed_kmh=ping.speed_kmh,
                  heading=ping.heading or 0, alarm=ping.alarm_flags, status=ping.status_flags)
    if out_of_signal:
        terminal.keep(**fields)
        return 0
    uploaded = len(terminal.buffered)
    if uploaded:
        await terminal.upload(blind=True)
    await terminal.report(**fields)
    return uploaded + 1


async def run_terminals(
    kafka: dict[str, Any], permits_topic: str, host: str, port: int, *, size: int,
    interval_s: float, speeders: float, seed: int, duration_s: float | None = None,
    version: int | None = None, accident_every_s: float | None = None,
) -> int:
    """Drive the fleet through the gateway at ``host:port``; returns positions sent."""
    from aiokafka import AIOKafkaProducer

    fleet = Fleet(size, speeders=speeders, seed=seed, accident_every_s=accident_every_s)
    producer = AIOKafkaProducer(**kafka, acks="all")
    await producer.start()
    try:
        for doc in fleet.permits(datetime.now(CHINA_TZ)):
            await producer.send(permits_topic, key=doc["vehicle_id"].encode(),
                                value=msgspec.json.encode(doc))
        await producer.flush()
    finally:
        await producer.stop()
    terminals = [SimulatedTerminal(phone_of(i), truck.vehicle_id, version=version)
                 for i, truck in enumerate(fleet.trucks)]
    for terminal in terminals:
        await terminal.connect(host, port, patience_s=120.0)  # the gateway may be starting
    await asyncio.gather(*(t.login() for t in terminals))
    log.info("%d terminals logged in to %s:%s", len(terminals), host, port)
    loop = asyncio.get_running_loop()
    started, sent, tick = loop.time(), 0, 0
    try:
        while duration_s is None or loop.time() - started < duration_s:
            tick_started = loop.time()
            pings = fleet.tick(datetime.now(CHINA_TZ))
            silent = OUT_OF_SIGNAL[0] <= tick % CYCLE < OUT_OF_SIGNAL[1]
            counts = await asyncio.gather(*(
                _report(t, _wgs84(p), silent and i == 0)
                for i, (t, p) in enumerate(zip(terminals, pings))))
            sent += sum(counts)
            tick += 1
            await asyncio.sleep(max(0.0, interval_s - (loop.time() - tick_started)))
    finally:
        for terminal in terminals:
            await terminal.close()
    return sent


def _wgs84(ping: Ping) -> Ping:
    """Terminals report WGS-84 (the simulator's pings may be GCJ-02, as apps send)."""
    if ping.crs == "WGS84":
        return ping
    from ..core.geo.gcj02 import gcj02_to_wgs84

    lon, lat = gcj02_to_wgs84(ping.lon, ping.lat)
    return msgspec.structs.replace(ping, lon=float(lon), lat=float(lat), crs="WGS84")
