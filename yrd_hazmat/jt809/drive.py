"""A simulated lower platform passing its fleet's positions up over JT/T 809.

``yrd-hazmat simulate --protocol jt809``: the trucks of
:class:`yrd_hazmat.simulator.Fleet` (another seed than the terminals' fleet) belong to
an enterprise platform that logs in to the gateway's platform link with the
configured user, password and access code (encrypting with the configured constants
when they are set), sends each truck's position every interval (UP_EXG_MSG 0x1202,
coordinates flagged GCJ-02 as such platforms store them), a link test every minute,
and every few minutes one truck's positions it could not forward at the time as
history (0x1203). It has a slave-link server (its address given at login) and answers,
on its main link, what comes down either link after a delay of its own per request
(:data:`ANSWER_DELAYS`, scaled by ``answer_after_s``): an inspection 0x9301 with 0x1301, a
supervision order 0x9401 with 0x1401 and its handling result, a text 0x9503 with 0x1503, a
photo request 0x9502 with 0x1502, a static-information request 0x9601 with 0x1601, who
drives 0x920A with 0x120A, a listen-in 0x9501 with 0x1501, a tachograph-data request
0x9504 with 0x1504, an emergency access 0x9505 with 0x1505, an order to start or stop
passing positions up 0x9205/0x9206 with 0x1205/0x1206; each request and answer is logged.
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
from ..jt808.frame import FrameError
from . import alarms as a
from . import control as c
from . import exchange as x
from . import inspection as ins
from . import static as st
from .codec import read_envelope
from .frame import V2019, Cipher, Frame
from .platform import LinkRefused, SimulatedPlatform, SlaveServer

log = logging.getLogger(__name__)

HELD_BACK = (2, 8)
"""The first truck's positions of these ticks of every ``CYCLE`` are sent as history."""
CYCLE = 20

ANSWER_DELAYS = {ins.POST_QUERY_REQ: 1.0, a.URGE_TODO_REQ: 1.5, c.TEXT_INFO: 0.25,
                 c.TAKE_PHOTO_REQ: 0.5, st.VEHICLE_ADDED: 0.25, x.DOWN_REPORT_DRIVER_INFO: 0.25,
                 c.MONITOR_VEHICLE_REQ: 0.25, c.TAKE_TRAVEL_DATA_REQ: 0.5,
                 c.EMERGENCY_MONITORING_REQ: 0.25, x.RETURN_STARTUP: 0.1, x.RETURN_END: 0.1}
"""Each request's delay as a share of ``answer_after_s``: a person on duty answers an
inspection, a supervision order takes longer, a terminal delivers a text sooner."""
DOWNWARD = (ins.DOWN_PLATFORM_MSG, a.DOWN_WARN_MSG, c.DOWN_CTRL_MSG, st.DOWN_BASE_MSG,
            x.DOWN_EXG_MSG)
NAMES = {ins.POST_QUERY_REQ: "inspection 0x9301", ins.INFO_REQ: "message 0x9302",
         a.URGE_TODO_REQ: "supervision order 0x9401", a.INFORM_TIPS: "tip 0x9402",
         c.TEXT_INFO: "text 0x9503", c.TAKE_PHOTO_REQ: "photo request 0x9502",
         st.VEHICLE_ADDED: "static-information request 0x9601",
         x.REGISTER_ACK: "registration answer 0x9201",
         x.DOWN_REPORT_DRIVER_INFO: "driver request 0x920A",
         c.MONITOR_VEHICLE_REQ: "listen-in 0x9501",
         c.TAKE_TRAVEL_DATA_REQ: "tachograph-data request 0x9504",
         c.EMERGENCY_MONITORING_REQ: "emergency access 0x9505",
         x.RETURN_STARTUP: "start passing positions 0x9205",
         x.RETURN_END: "stop passing positions 0x9206"}
ANSWERS = {ins.POST_QUERY_REQ: "0x1301 '{answer}'", a.URGE_TODO_REQ: "0x1401 and the handling "
           "result (2011 0x1403, 2019 0x1412)", c.TEXT_INFO: "0x1503 delivered",
           c.TAKE_PHOTO_REQ: "0x1502 with a picture", st.VEHICLE_ADDED: "0x1601",
           x.DOWN_REPORT_DRIVER_INFO: "0x120A", c.MONITOR_VEHICLE_REQ: "0x1501 listening",
           c.TAKE_TRAVEL_DATA_REQ: "0x1504", c.EMERGENCY_MONITORING_REQ: "0x1505 received",
           x.RETURN_STARTUP: "0x1205", x.RETURN_END: "0x1206"}
ANSWER = "已核实，值班员在岗"
"""What the platform's person on duty answers an inspection."""


def answer_delay(sub_type: int, answer_after_s: float) -> float | None:
    """Seconds before the platform answers a request of DATA_TYPE ``sub_type`` (None: it
    does not answer it: a tip, a message, or ``answer_after_s`` negative)."""
    if answer_after_s < 0 or sub_type not in ANSWER_DELAYS:
        return None
    return ANSWER_DELAYS[sub_type] * answer_after_s


def downward_type(frame: Frame, edition: int) -> int | None:
    """The DATA_TYPE of a downward request (None: not one, or unreadable)."""
    msg_id = frame.header.msg_id
    if msg_id not in DOWNWARD:
        return None
    vehicle = msg_id != ins.DOWN_PLATFORM_MSG and not (msg_id == a.DOWN_WARN_MSG
                                                     and edition == V2019)
    if msg_id == x.DOWN_EXG_MSG and frame.body[:2] == x.REGISTER_ACK.to_bytes(2, "big"):
        vehicle = False  # a 2019 0x9201 without the vehicle
    try:
        return read_envelope(frame.body, vehicle=vehicle, what="downward").sub_type
    except FrameError:
        return None


class Answering:
    """The platform's person on duty: each downward request, from the slave link or the
    main link, answered on the main link after its delay; logged."""

    def __init__(self, platform: SimulatedPlatform, answer_after_s: float) -> None:
        self.platform, self.answer_after_s = platform, answer_after_s
        self.tasks: set[asyncio.Task] = set()
        self.answered = 0

    def received(self, frame: Frame, link: str = "slave") -> None:
        sub = downward_type(frame, self.platform.edition)
        if sub is None:
            return
        name = NAMES.get(sub, f"0x{sub:04x}")
        delay = answer_delay(sub, self.answer_after_s)
        if delay is None:
            log.info("%s received on the %s link (MSG_SN %d): not answered", name, link,
                     frame.header.serial)
            return
        log.info("%s received on the %s link (MSG_SN %d): answering in %.0f s", name, link,
                 frame.header.serial, delay)
        task = asyncio.get_running_loop().create_task(self._later(frame, sub, name, delay))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _later(self, frame: Frame, sub: int, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            sent = self.platform.answer_to(frame, ANSWER)
            for msg_id, body in sent:
                await self.platform.send(msg_id, body)
        except (FrameError, ValueError) as exc:
            log.warning("%s (MSG_SN %d) not answered: %s", name, frame.header.serial, exc)
            return
        except (OSError, AssertionError) as exc:  # the main link is gone
            log.warning("%s (MSG_SN %d) not answered: main link down (%r)", name,
                        frame.header.serial, exc)
            return
        self.answered += 1
        log.info("answered %s (MSG_SN %d) after %.0f s: %s", name, frame.header.serial, delay,
                 ANSWERS[sub].format(answer=ANSWER))

    def main_link(self) -> None:
        """Requests that came down the main link (the slave link down) and wait in the
        platform's inbox."""
        for frame in self.platform.inbox:
            if frame.header.msg_id in DOWNWARD:
                self.received(frame, "main")
            else:  # e.g. DOWN_DISCONNECT_INFORM 0x9007: the slave link cannot be reached
                log.info("0x%04x from the gateway on the main link", frame.header.msg_id)
        self.platform.inbox.clear()

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)



async def run_platform(settings: Settings, kafka: dict[str, Any], host: str, port: int, *,
                       size: int, interval_s: float, speeders: float, seed: int,
                       duration_s: float | None = None,
                       accident_every_s: float | None = None, answer_after_s: float = 20.0,
                       slave_host: str = "127.0.0.1", slave_port: int = 0) -> int:
    """Drive the fleet through the platform link at ``host:port``; returns positions sent.
    Its slave-link server listens on ``slave_host:slave_port`` (port 0: any free one);
    requests are answered after ``answer_after_s`` (scaled per kind; negative: never)."""
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
                                 edition=settings.jt809_edition, down_ip=slave_host)
    slave = SlaveServer.of(platform)
    platform.down_port = await slave.start(slave_host, slave_port)
    answering = Answering(platform, answer_after_s)
    slave.on_message = answering.received
    try:
        return await _drive(platform, fleet, host, port, size=size, interval_s=interval_s,
                            duration_s=duration_s, slave=slave, answering=answering)
    finally:
        await answering.stop()
        await slave.stop()


async def _drive(platform: SimulatedPlatform, fleet: Fleet, host: str, port: int, *,
                 size: int, interval_s: float, duration_s: float | None, slave: SlaveServer,
                 answering: Answering) -> int:
    await platform.connect(host, port, patience_s=120.0)  # the gateway may be starting
    loop = asyncio.get_running_loop()
    if (result := await platform.login()) != 0:
        raise LinkRefused(f"UP_CONNECT_RSP result {result}")
    log.info("platform link up: %d trucks through %s:%s; slave-link server on %s:%d, "
             "requests answered after %s", size, host, port, platform.down_ip,
             platform.down_port, f"{answering.answer_after_s:g} s (inspection; others "
             "scaled)" if answering.answer_after_s >= 0 else "never")
    slave_logins = 0
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
            answering.main_link()
            if len(slave.logins) != slave_logins:
                slave_logins = len(slave.logins)
                log.info("slave link: the gateway connected (DOWN_CONNECT_REQ result %d)",
                         slave.logins[-1])
            tick += 1
            await asyncio.sleep(max(0.0, interval_s - (loop.time() - tick_started)))
    finally:
        await platform.close()
    return sent
