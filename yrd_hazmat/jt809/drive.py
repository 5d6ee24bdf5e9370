"""A simulated lower platform passing its fleet's positions up over JT/T 809.

``yrd-hazmat simulate --protocol jt809``: the trucks of
:class:`yrd_hazmat.simulator.Fleet` (another seed than the terminals' fleet) belong to
an enterprise platform that logs in to the gateway's platform link with the
configured user, password and access code (encrypting with the configured constants
when they are set), sends each truck's position every interval (UP_EXG_MSG 0x1202,
coordinates flagged GCJ-02 as such platforms store them), a link test every minute,
and every few minutes one truck's positions it could not forward at the time as
history (0x1203).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import msgspec

from ..config import Settings
from ..simulator import Fleet
from ..core.timeutil import CHINA_TZ
from .frame import Cipher
from .platform import LinkRefused, SimulatedPlatform

log = logging.getLogger(__name__)

HELD_BACK = (2, 8)
"""The first truck's positions of these ticks of every ``CYCLE`` are sent as history."""
CYCLE = 20


async def run_platform(settings: Settings, kafka: dict[str, Any], host: str, port: int, *,
                       size: int, interval_s: float, speeders: float, seed: int,
                       duration_s: float | None = None,
                       accident_every_s: float | None = None) -> int:
    """Drive the fleet through the platform link at ``host:port``; returns positions sent."""
    from aiokafka import AIOKafkaProducer

    fleet = Fleet(size, speeders=speeders, seed=seed, accident_every_s=accident_every_s)
    producer = AIOKafkaProducer(**kafka, acks="all")
    await producer.start()
    try:
        for doc in fleet.permits(datetime.now(CHINA_TZ)):
            await producer.send(settings.topic_permits, key=doc["vehicle_id"].encode(),
                                value=msgspec.json.encode(doc))
        await producer.flush()
    finally:
        await producer.stop()
    constants = (settings.jt809_m1, settings.jt809_ia1, settings.jt809_ic1)
    platform = SimulatedPlatform(settings.jt809_user_id,
                                 settings.jt809_password.get_secret_value(),
                                 settings.jt809_access_code,
                                 Cipher(*constants) if any(constants) else None,
                                 edition=settings.jt809_edition)
    await platform.connect(host, port, patience_s=120.0)  # the gateway may be starting
    loop = asyncio.get_running_loop()
    if (result := await platform.login()) != 0:
        raise LinkRefused(f"UP_CONNECT_RSP result {result}")
    log.info("platform link up: %d trucks through %s:%s", size, host, port)
    started, sent, tick = loop.time(), 0, 0
    held: list[tuple[datetime, float, float, float]] = []
    try:
        while duration_s is None or loop.time() - started < duration_s:
            tick_started = loop.time()
            for i, ping in enumerate(fleet.tick(datetime.now(CHINA_TZ))):
                fix = (ping.ts, ping.lat, ping.lon, ping.speed_kmh)
                if i == 0 and HELD_BACK[0] <= tick % CYCLE < HELD_BACK[1]:
                    held.append(fix)
                    continue
                if i == 0 and held:
                    await platform.history(ping.vehicle_id, held)
                    sent, held = sent + len(held), []
                await platform.position(ping.vehicle_id, *fix, gcj02=ping.crs == "GCJ02",
                                        heading=ping.heading or 0, alarm=ping.alarm_flags,
                                        status=ping.status_flags)
                sent += 1
            if tick % max(1, round(60 / interval_s)) == 0:
                await platform.linktest()
            tick += 1
            await asyncio.sleep(max(0.0, interval_s - (loop.time() - tick_started)))
    finally:
        await platform.close()
    return sent
