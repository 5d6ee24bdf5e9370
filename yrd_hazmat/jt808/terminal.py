"""A simulated JT/T 808 terminal: registers, authenticates, reports positions, uploads
what it buffered while out of signal (0x0704). For the demo, the tests and the gateway
benchmark; it waits for the platform's answer to each message, as terminals do."""

from __future__ import annotations

import asyncio
import struct
from datetime import datetime

from . import messages as m
from ..tcp import TcpClient
from .frame import Splitter, bcd, build, parse


class GatewayRefused(RuntimeError):
    pass


class SimulatedTerminal(TcpClient):
    """``maker`` and ``model`` go in its registration (the default matches the project's
    tank-sensor profile); ``layout`` "2011" registers as the older terminals in the field
    do (the default: the header version's layout)."""

    def __init__(self, phone: str, plate: str, terminal_id: str | None = None,
                 version: int | None = None, timeout_s: float = 10.0, maker: str = "YRD",
                 model: str = "SIM-808", layout: str | None = None) -> None:
        self.phone = phone
        self.plate = plate
        self.terminal_id = terminal_id or phone[-7:]
        self.version = version
        self.maker = maker
        self.model = model
        self.layout = layout
        self.timeout_s = timeout_s
        self._bcd = bcd(phone, 10 if version is not None else 6)
        self._serial = 0
        self._splitter = Splitter()
        self._inbox: list[tuple[int, bytes]] = []
        self.auth_code: str | None = None
        self.buffered: list[bytes] = []
        """0x0200 bodies kept while out of signal, for a blind-area upload."""

    def frame(self, msg_id: int, body: bytes) -> tuple[int, bytes]:
        """(serial, the frame bytes) of the next message."""
        self._serial = (self._serial + 1) & 0xFFFF
        return self._serial, build(msg_id, self._bcd, self._serial, body, self.version)

    async def send_raw(self, data: bytes) -> None:
        assert self._writer is not None, "not connected"
        self._writer.write(data)
        await self._writer.drain()

    async def request(self, msg_id: int, body: bytes) -> tuple[int, bytes]:
        """Send a message and return the platform's answer to it: (answer id, body)."""
        serial, data = self.frame(msg_id, body)
        await self.send_raw(data)
        return await self.answer_to(serial)

    async def answer_to(self, serial: int) -> tuple[int, bytes]:
        async def wait() -> tuple[int, bytes]:
            while True:
                for i, (answer_id, body) in enumerate(self._inbox):
                    if len(body) >= 2 and struct.unpack_from(">H", body)[0] == serial:
                        return self._inbox.pop(i)
                assert self._reader is not None
                data = await self._reader.read(4096)
                if not data:
                    raise ConnectionError("the gateway closed the connection")
                frames, _ = self._splitter.feed(data)
                for content in frames:
                    frame = parse(content)
                    self._inbox.append((frame.header.msg_id, frame.body))
        return await asyncio.wait_for(wait(), self.timeout_s)

    async def register(self) -> str:
        answer_id, body = await self.request(
            m.REGISTRATION, m.registration(self.plate, self.terminal_id, self.version,
                                           maker=self.maker, model=self.model,
                                           layout=self.layout))
        if answer_id != m.REGISTRATION_RESPONSE or body[2] != m.REGISTERED:
            raise GatewayRefused(f"registration refused: {body.hex()}")
        self.auth_code = body[3:].decode("gbk")
        return self.auth_code

    async def authenticate(self, code: str | None = None) -> int:
        code = code if code is not None else self.auth_code
        assert code is not None, "register first"
        return _result(await self.request(m.AUTHENTICATION, m.authentication(code, self.version)))

    async def login(self) -> None:
        """Register (once) and authenticate."""
        if self.auth_code is None:
            await self.register()
        if await self.authenticate() != m.OK:
            raise GatewayRefused("authentication refused")

    async def report(self, ts: datetime, lat: float, lon: float, speed_kmh: float,
                     heading: int = 0, alarm: int = 0, status: int = 0b11,
                     mileage_km: float | None = None) -> int:
        """A location report (0x0200); the general response's result."""
        body = m.location(ts, lat, lon, speed_kmh, heading, alarm, status, mileage_km=mileage_km)
        return _result(await self.request(m.LOCATION, body))

    def keep(self, ts: datetime, lat: float, lon: float, speed_kmh: float, heading: int = 0,
             alarm: int = 0, status: int = 0b11) -> None:
        """Out of signal: keep the position for a later blind-area upload."""
        self.buffered.append(m.location(ts, lat, lon, speed_kmh, heading, alarm, status))

    async def upload(self, blind: bool = True, per_batch: int = 20) -> int:
        """Send the buffered positions in 0x0704 batches; the last result."""
        result = m.OK
        while self.buffered:
            chunk, self.buffered = self.buffered[:per_batch], self.buffered[per_batch:]
            result = _result(await self.request(m.BATCH, m.batch(chunk, blind)))
        return result

    async def heartbeat(self) -> int:
        return _result(await self.request(m.HEARTBEAT, b""))


def _result(answer: tuple[int, bytes]) -> int:
    answer_id, body = answer
    if answer_id != m.GENERAL_RESPONSE or len(body) < 5:
        raise GatewayRefused(f"unexpected answer 0x{answer_id:04x}: {body.hex()}")
    return body[4]
