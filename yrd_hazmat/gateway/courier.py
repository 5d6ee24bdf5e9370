"""The gateway's side of commands to trucks: :class:`~.commands.Delivery` (the pure rules)
wired to Kafka and to the terminals' connections.

Every gateway follows ``yrd.commands`` and ``yrd.command-results`` from their start and
feeds each record to its :class:`~.commands.Delivery`; once both are read to their end,
it acts. What the rules return (publish a result or a picture, write a frame to a
terminal) goes through one queue to one executor task, in order: a claim must be on the
broker before this gateway can read it back, so nothing is awaited inside a follower.
Connections register the trucks they authenticated; a command's frame goes to the latest
connection of its truck, in the header form that terminal uses.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime

from ..core.codec import encode
from ..config import Settings
from ..follow import Follower
from ..jt808.frame import build
from ..core.timeutil import CHINA_TZ
from .commands import Action, Delivery, PublishMedia, PublishResult, WriteFrame
from .session import Session

log = logging.getLogger(__name__)

TICK_S = 1.0
"""How often timeouts, lapsed claims and expiry are looked at."""

Record = tuple[str, bytes | None, bytes | None]
Publish = Callable[[list[Record]], Awaitable[None]]


def _now() -> datetime:
    return datetime.now(CHINA_TZ)


def gateway_id() -> str:
    """A gateway's name in the claims it publishes: its host and process, and a random
    part, so that two gateways are never one (also in one process, or a restart that gets
    the same pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Courier:
    """Carries commands to the terminals connected to this gateway, and their answers
    back to the results topic."""

    def __init__(self, settings: Settings, publish: Publish, name: str | None = None) -> None:
        self.settings = settings
        self.publish = publish
        self.delivery = Delivery(name or gateway_id(), settings.command_timeout_s)
        self.held: dict[str, Session] = {}
        """Plate -> the session of its latest authenticated connection."""
        self._writers: dict[Session, asyncio.StreamWriter] = {}
        self._queue: asyncio.Queue[list[Action]] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []

    # --- life cycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Read both topics to their end, then act on them and keep following."""
        options = self.settings.kafka_options()
        followers = [
            Follower(options, self.settings.topic_commands,
                     lambda k, v: self._do(self.delivery.apply_command(k, v, _now()))),
            Follower(options, self.settings.topic_command_results,
                     lambda k, v: self._do(self.delivery.apply_result(k, v, _now()))),
        ]
        self._tasks = [asyncio.create_task(f.run(), name=f"follow-{f.topic}")
                       for f in followers]
        for follower in followers:
            await follower.caught_up.wait()
        self._do(self.delivery.start(_now()))
        self._tasks += [asyncio.create_task(self._execute(), name="command-executor"),
                        asyncio.create_task(self._tick(), name="command-ticker")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._do(self.delivery.tick(_now()))

    # --- connections -------------------------------------------------------------------
    def authenticated(self, session: Session, writer: asyncio.StreamWriter) -> None:
        """A terminal authenticated on this connection: its truck's commands may go."""
        assert session.terminal is not None and session.header is not None
        plate = session.terminal.vehicle_id
        self.held[plate] = session
        self._writers[session] = writer
        self._do(self.delivery.authenticated(plate, session.header.version, _now()))

    def disconnected(self, session: Session, plate: str) -> None:
        """An authenticated connection of ``plate`` closed (or deregistered)."""
        self._writers.pop(session, None)
        if self.held.get(plate) is session:
            del self.held[plate]
        self.delivery.disconnected(plate)

    def answered(self, plate: str, msg_id: int, body: bytes) -> None:
        """A terminal's answer to a command (the sessions' ``command_answers``); raises
        ``FrameError`` for a body that cannot be read."""
        self._do(self.delivery.terminal_message(plate, msg_id, body, _now()))

    # --- doing what the rules say --------------------------------------------------------
    def _do(self, actions: list[Action]) -> None:
        if actions:
            self._queue.put_nowait(actions)

    async def _execute(self) -> None:
        while True:
            actions = await self._queue.get()
            for action in actions:
                try:
                    await self._carry_out(action)
                except Exception as exc:  # the lease or the timeout tries again
                    log.warning("command action %s failed: %s", type(action).__name__, exc)

    async def _carry_out(self, action: Action) -> None:
        settings = self.settings
        if isinstance(action, PublishResult):
            result = action.result
            await self.publish([(settings.topic_command_results, result.vehicle_id.encode(),
                                 encode(result))])
        elif isinstance(action, PublishMedia):
            media = action.media
            await self.publish([(settings.topic_media, media.media_id.encode(), encode(media))])
        elif isinstance(action, WriteFrame):
            self._write(action)

    def _write(self, frame: WriteFrame) -> None:
        session = self.held.get(frame.vehicle_id)
        writer = self._writers.get(session) if session is not None else None
        if session is None or writer is None or writer.is_closing():
            log.info("command frame 0x%04x for %s: not connected here any more",
                     frame.msg_id, frame.vehicle_id)
            return
        header = session.header
        assert header is not None
        writer.write(build(frame.msg_id, header.phone, frame.serial, frame.body,
                           header.version, flagged=header.flagged))
