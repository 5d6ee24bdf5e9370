"""A simulated lower platform on a JT/T 809 main link: logs in, sends heartbeats, passes
its vehicles' real-time and history positions up. For the tests and the demo."""

from __future__ import annotations

import asyncio
import struct
from datetime import datetime

from . import messages as m
from ..tcp import TcpClient
from .frame import Cipher, Splitter, build, parse


class LinkRefused(RuntimeError):
    pass


class SimulatedPlatform(TcpClient):
    def __init__(self, user_id: int, password: str, access_code: int,
                 cipher: Cipher | None = None, timeout_s: float = 10.0) -> None:
        self.user_id = user_id
        self.password = password
        self.access_code = access_code
        self.cipher = cipher
        self.timeout_s = timeout_s
        self._serial = 0
        self._splitter = Splitter()

    def frame(self, msg_id: int, body: bytes) -> bytes:
        self._serial += 1
        key = self._serial * 7919 if self.cipher is not None else 0
        return build(msg_id, self._serial, self.access_code, body, cipher=self.cipher, key=key)

    async def send(self, msg_id: int, body: bytes) -> None:
        assert self._writer is not None, "not connected"
        self._writer.write(self.frame(msg_id, body))
        await self._writer.drain()

    async def receive(self) -> tuple[int, bytes]:
        """The next frame from the gateway: (message id, body)."""
        async def wait() -> tuple[int, bytes]:
            while True:
                assert self._reader is not None
                data = await self._reader.read(4096)
                if not data:
                    raise ConnectionError("the gateway closed the link")
                frames, _ = self._splitter.feed(data)
                if frames:
                    frame = parse(frames[0], self.cipher)
                    return frame.header.msg_id, frame.body
        return await asyncio.wait_for(wait(), self.timeout_s)

    async def login(self) -> int:
        """UP_CONNECT_REQ; the result of UP_CONNECT_RSP (0: accepted)."""
        await self.send(m.UP_CONNECT_REQ, m.login(self.user_id, self.password))
        msg_id, body = await self.receive()
        if msg_id != m.UP_CONNECT_RSP:
            raise LinkRefused(f"unexpected answer 0x{msg_id:04x}")
        return struct.unpack_from(">B", body)[0]

    async def linktest(self) -> bool:
        await self.send(m.UP_LINKTEST_REQ, b"")
        msg_id, _ = await self.receive()
        return msg_id == m.UP_LINKTEST_RSP

    async def position(self, plate: str, ts: datetime, lat: float, lon: float, speed_kmh: float,
                       colour: int = 2, **fields) -> None:
        """A real-time position (UP_EXG_MSG 0x1202); JT/T 809 has no answer to it."""
        await self.send(m.UP_EXG_MSG, m.exg(plate, colour, m.REAL_LOCATION,
                                            m.gnss(ts, lat, lon, speed_kmh, **fields)))

    async def history(self, plate: str, fixes: list[tuple[datetime, float, float, float]],
                      colour: int = 2) -> None:
        """History positions (UP_EXG_MSG 0x1203), at most 5 per message."""
        for i in range(0, len(fixes), 5):
            items = [m.gnss(ts, lat, lon, speed) for ts, lat, lon, speed in fixes[i:i + 5]]
            await self.send(m.UP_EXG_MSG, m.exg(plate, colour, m.HISTORY_LOCATION,
                                                m.history(items)))
