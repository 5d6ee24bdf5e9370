"""A simulated JT/T 808 terminal: registers, authenticates, reports positions, uploads
what it buffered while out of signal (0x0704). For the demo, the tests and the gateway
benchmark; it waits for the platform's answer to each message, as terminals do.

Like a real terminal it also answers the platform's commands whenever they arrive, even
while it waits for an answer of its own: a reader task takes every frame the platform
sends, hands the answers (0x8001, 0x8100, 0x8800) to whoever waits for them and handles
the commands: 0x8300 text (shown on the driver's display: logged on
:data:`DISPLAY_LOG`), 0x8201 position query, 0x8203 alarm confirmation and 0x8801
photo (a JPEG uploaded with 0x0801 in sub-packets); anything else is unsupported.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from datetime import datetime
from typing import Awaitable, Callable

import msgspec

from . import downlink as d
from . import messages as m
from ..tcp import TcpClient
from ..core.timeutil import CHINA_TZ
from .frame import MAX_BODY, Frame, FrameError, Header, Splitter, bcd, build, parse

log = logging.getLogger(__name__)

DISPLAY_LOG = f"{__name__}.display"
"""The logger of what drivers see on their displays (the texts their trucks receive)."""
display = logging.getLogger(DISPLAY_LOG)

UNCLAIMED_ANSWERS = 64
"""Answers nobody waits for (yet) that are kept: one sent before its sender awaits it is
claimed at once; the rest (the platform's acks of photo sub-packets) are dropped oldest
first."""

UPLOAD_ROUNDS = 3
"""How many times a photo's upload is sent (the missing sub-packets again) before it gives
up."""

AnswerKey = tuple[str, int]
"""("serial", the serial of the terminal's message) for 0x8001 and 0x8100, ("media",
the multimedia id) for 0x8800."""
Answer = tuple[int, bytes]
"""(answer message id, body)."""


class GatewayRefused(RuntimeError):
    pass


class ReceivedText(msgspec.Struct, frozen=True, kw_only=True):
    """A 0x8300 the terminal showed its driver."""

    serial: int
    text: str
    emergency: bool
    display: bool
    tts: bool
    """Read aloud (text to speech)."""

    def __str__(self) -> str:
        flags = [name for name, on in (("TTS", self.tts), ("emergency", self.emergency)) if on]
        return f"TEXT ({', '.join(flags)}): {self.text}" if flags else f"TEXT: {self.text}"


class SimulatedTerminal(TcpClient):
    """``maker`` and ``model`` go in its registration (the default matches the project's
    tank-sensor profile); ``layout`` "2011" registers as the older terminals in the field
    do (the default: the header version's layout). ``answers`` false ignores the
    platform's commands (they time out on the platform); ``fails`` answers each with a
    failure."""

    def __init__(self, phone: str, plate: str, terminal_id: str | None = None,
                 version: int | None = None, timeout_s: float = 10.0, maker: str = "YRD",
                 model: str = "SIM-808", layout: str | None = None, *, answers: bool = True,
                 fails: bool = False) -> None:
        self.phone = phone
        self.plate = plate
        self.terminal_id = terminal_id or phone[-7:]
        self.version = version
        self.maker = maker
        self.model = model
        self.layout = layout
        self.timeout_s = timeout_s
        self.answers = answers
        self.fails = fails
        self._bcd = bcd(phone, 10 if version is not None else 6)
        self._serial = 0
        self._media_id = 0
        self._splitter = Splitter()
        self._waiters: dict[AnswerKey, asyncio.Future[Answer]] = {}
        self._unclaimed: dict[AnswerKey, Answer] = {}
        self._ended: ConnectionError | None = None
        self._reading: asyncio.Task[None] | None = None
        self._uploads: set[asyncio.Task[None]] = set()
        self.auth_code: str | None = None
        self.buffered: list[bytes] = []
        """0x0200 bodies kept while out of signal, for a blind-area upload."""
        self.location: bytes | None = None
        """The 0x0200 body of its latest position (reported or kept): a 0x8201's answer."""
        self.texts: list[ReceivedText] = []
        """The texts (0x8300) it received, oldest first."""
        self.uploaded: list[int] = []
        """The multimedia ids whose upload the platform confirmed whole (0x8800)."""

    # --- the connection ----------------------------------------------------------------
    async def connect(self, host: str, port: int, patience_s: float = 0.0) -> None:
        """Connect, and read whatever the platform sends from then on."""
        await super().connect(host, port, patience_s)
        self._splitter, self._ended = Splitter(), None
        self._reading = asyncio.create_task(self._read(), name=f"terminal {self.phone}")

    async def close(self) -> None:
        for task in (self._reading, *self._uploads):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._reading, *self._uploads) if t is not None),
                             return_exceptions=True)
        await super().close()

    async def until_closed(self) -> None:
        """Return once the platform has closed the connection (or :meth:`close` did)."""
        if self._reading is not None:
            await asyncio.wait({self._reading})

    def frame(self, msg_id: int, body: bytes,
              packets: tuple[int, int] | None = None) -> tuple[int, bytes]:
        """(serial, the frame bytes) of the next message."""
        self._serial = (self._serial + 1) & 0xFFFF
        return self._serial, build(msg_id, self._bcd, self._serial, body, self.version,
                                   packets=packets)

    async def send_raw(self, data: bytes) -> None:
        assert self._writer is not None, "not connected"
        self._writer.write(data)
        await self._writer.drain()

    async def send(self, msg_id: int, body: bytes,
                   packets: tuple[int, int] | None = None) -> int:
        """Send a message that waits for no answer; its serial."""
        serial, data = self.frame(msg_id, body, packets)
        await self.send_raw(data)
        return serial

    # --- answers to the terminal's messages --------------------------------------------
    async def request(self, msg_id: int, body: bytes) -> Answer:
        """Send a message and return the platform's answer to it: (answer id, body)."""
        serial, data = self.frame(msg_id, body)
        key = ("serial", serial)
        answer = self._expect(key)
        await self.send_raw(data)
        return await self._wait(key, answer)

    async def answer_to(self, serial: int) -> Answer:
        """The platform's answer to the message of ``serial`` (already sent)."""
        key = ("serial", serial)
        return await self._wait(key, self._expect(key))

    def _expect(self, key: AnswerKey) -> asyncio.Future[Answer]:
        """The answer ``key``, to wait for: registered before the message goes, as the
        answer may arrive before its sender awaits it."""
        answer = asyncio.get_running_loop().create_future()
        if key in self._unclaimed:
            answer.set_result(self._unclaimed.pop(key))
        elif self._ended is not None:
            answer.set_exception(self._ended)
        else:
            self._waiters[key] = answer
        return answer

    async def _wait(self, key: AnswerKey, answer: asyncio.Future[Answer]) -> Answer:
        try:
            return await asyncio.wait_for(answer, self.timeout_s)
        finally:
            if self._waiters.get(key) is answer:
                del self._waiters[key]

    def _deliver(self, key: AnswerKey, answer: Answer) -> None:
        waiter = self._waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)
            return
        self._unclaimed[key] = answer
        if len(self._unclaimed) > UNCLAIMED_ANSWERS:
            del self._unclaimed[next(iter(self._unclaimed))]

    # --- the reader ----------------------------------------------------------------------
    async def _read(self) -> None:
        """Every frame the platform sends, until it closes the connection: answers go to
        their waiters, commands are answered. When it ends, waiters get ConnectionError."""
        assert self._reader is not None
        reason = "the gateway closed the connection"
        try:
            while data := await self._reader.read(4096):
                frames, _ = self._splitter.feed(data)
                for content in frames:
                    await self._received(content)
        except asyncio.CancelledError:
            reason = "the terminal closed the connection"
            raise
        except ConnectionError as exc:
            reason = f"the connection broke: {exc}"
        except Exception:
            log.exception("[%s] the terminal's reader failed", self.plate)
            reason = "the terminal's reader failed"
        finally:
            self._end(ConnectionError(reason))

    def _end(self, error: ConnectionError) -> None:
        self._ended = error
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_exception(error)

    async def _received(self, content: bytes) -> None:
        try:
            frame = parse(content)
        except FrameError as exc:
            log.warning("[%s] unreadable frame from the platform: %s", self.plate, exc)
            return
        key = _answer_key(frame)
        if key is not None:
            self._deliver(key, (frame.header.msg_id, frame.body))
        elif self.answers:
            await self._command(frame)

    # --- commands ------------------------------------------------------------------------
    async def _command(self, frame: Frame) -> None:
        """Answer a platform command: 0x0001 result 3 for a message it does not know, 2 for
        a body it cannot read, 1 for every command when it ``fails``."""
        header = frame.header
        handler = self._handlers().get(header.msg_id)
        if handler is None:
            await self._respond(header, d.UNSUPPORTED)
        elif self.fails:
            await self._fail(header)
        else:
            try:
                await handler(header, frame.body)
            except FrameError as exc:
                log.warning("[%s] command 0x%04x: %s", self.plate, header.msg_id, exc)
                await self._respond(header, d.WRONG)

    def _handlers(self) -> dict[int, Callable[[Header, bytes], Awaitable[None]]]:
        return {d.TEXT: self._text, d.POSITION_QUERY: self._position_query,
                d.ALARM_CONFIRMATION: self._alarm_confirmation, d.PHOTO: self._photo}

    async def _respond(self, header: Header, result: int) -> None:
        """0x0001 to the platform message of ``header``."""
        await self.send(m.TERMINAL_RESPONSE,
                        m.general_response(header.serial, header.msg_id, result))

    async def _fail(self, header: Header) -> None:
        if header.msg_id == d.PHOTO:
            await self.send(d.PHOTO_ANSWER, struct.pack(">HB", header.serial, d.PHOTO_FAILED))
        else:
            await self._respond(header, d.FAILED)

    async def _text(self, header: Header, body: bytes) -> None:
        received = read_text(header, body)
        self.texts.append(received)
        display.info("[%s] %s", self.plate, received)
        await self._respond(header, d.OK)

    def _where(self) -> bytes:
        """The 0x0200 body of where it is now: without a position yet, no fix at 0, 0."""
        return self.location or m.location(datetime.now(CHINA_TZ), 0.0, 0.0, 0.0, status=0)

    async def _position_query(self, header: Header, body: bytes) -> None:
        await self.send(d.POSITION_ANSWER, struct.pack(">H", header.serial) + self._where())

    async def _alarm_confirmation(self, header: Header, body: bytes) -> None:
        if len(body) < 6:
            raise FrameError("truncated", f"alarm confirmation of {len(body)} bytes, not 6")
        alarm_serial, alarm_types = struct.unpack_from(">HI", body)
        log.info("[%s] alarm confirmed: serial %d, alarms 0x%08x", self.plate, alarm_serial,
                 alarm_types)
        await self._respond(header, d.OK)

    async def _photo(self, header: Header, body: bytes) -> None:
        """0x0805 with the id of the photo it takes, then the upload, which waits for the
        platform's 0x8800 without holding up the reader (the 0x8800 comes through it)."""
        if len(body) < 12:
            raise FrameError("truncated", f"photo command of {len(body)} bytes, at least 12")
        self._media_id += 1
        media_id, channel = self._media_id, body[0]
        await self.send(d.PHOTO_ANSWER,
                        struct.pack(">HBHI", header.serial, d.PHOTO_OK, 1, media_id))
        upload = asyncio.create_task(self._upload_photo(media_id, channel))
        self._uploads.add(upload)
        upload.add_done_callback(self._uploads.discard)

    async def _upload_photo(self, media_id: int, channel: int) -> None:
        """0x0801 (an image, JPEG, taken on the platform's command, then where and when: the
        location's 28 bytes without items) in sub-packets; the sub-packets a 0x8800 lists
        as missing go again."""
        head = struct.pack(">IBBBB", media_id, 0, 0, 0, channel)
        body = head + self._where()[:28] + photo_jpeg()
        parts = [body[i:i + MAX_BODY] for i in range(0, len(body), MAX_BODY)]
        missing = tuple(range(1, len(parts) + 1))
        for _ in range(UPLOAD_ROUNDS):
            key = ("media", media_id)
            answer = self._expect(key)
            for index in missing:
                await self.send(d.MEDIA_UPLOAD, parts[index - 1], packets=(len(parts), index))
            try:
                missing = _missing(await self._wait(key, answer))
            except TimeoutError:
                log.warning("[%s] photo %d: no 0x8800 in %g s", self.plate, media_id,
                            self.timeout_s)
                return
            except ConnectionError as exc:
                log.warning("[%s] photo %d not uploaded: %s", self.plate, media_id, exc)
                return
            if not missing:
                self.uploaded.append(media_id)
                log.info("[%s] photo %d uploaded (%d sub-packets)", self.plate, media_id,
                         len(parts))
                return
        log.warning("[%s] photo %d: sub-packets %s still missing", self.plate, media_id, missing)

    # --- the terminal's own messages -----------------------------------------------------
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
        self.location = body
        return _result(await self.request(m.LOCATION, body))

    def keep(self, ts: datetime, lat: float, lon: float, speed_kmh: float, heading: int = 0,
             alarm: int = 0, status: int = 0b11) -> None:
        """Out of signal: keep the position for a later blind-area upload."""
        self.location = m.location(ts, lat, lon, speed_kmh, heading, alarm, status)
        self.buffered.append(self.location)

    async def upload(self, blind: bool = True, per_batch: int = 20) -> int:
        """Send the buffered positions in 0x0704 batches; the last result."""
        result = m.OK
        while self.buffered:
            chunk, self.buffered = self.buffered[:per_batch], self.buffered[per_batch:]
            result = _result(await self.request(m.BATCH, m.batch(chunk, blind)))
        return result

    async def heartbeat(self) -> int:
        return _result(await self.request(m.HEARTBEAT, b""))


def _result(answer: Answer) -> int:
    answer_id, body = answer
    if answer_id != m.GENERAL_RESPONSE or len(body) < 5:
        raise GatewayRefused(f"unexpected answer 0x{answer_id:04x}: {body.hex()}")
    return body[4]


def _answer_key(frame: Frame) -> AnswerKey | None:
    """Which waiter a platform answer is for; None for a command."""
    msg_id, body = frame.header.msg_id, frame.body
    if msg_id in (m.GENERAL_RESPONSE, m.REGISTRATION_RESPONSE) and len(body) >= 2:
        return "serial", struct.unpack_from(">H", body)[0]
    if msg_id == d.MEDIA_UPLOAD_ANSWER and len(body) >= 4:
        return "media", struct.unpack_from(">I", body)[0]
    return None


def _missing(answer: Answer) -> tuple[int, ...]:
    """The sub-packet ids a 0x8800 asks to send again (none: the upload is whole)."""
    _, body = answer
    count = body[4] if len(body) > 4 else 0
    return struct.unpack_from(f">{count}H", body, 5) if len(body) >= 5 + 2 * count else ()


def read_text(header: Header, body: bytes) -> ReceivedText:
    """A 0x8300 as the terminal reads it: 2013's flag (bit 0 emergency) then the text;
    under a 2019 header, the flag (bits 0-1 the kind) and the text type, then the text."""
    head = 1 if header.version is None else 2
    if len(body) < head:
        raise FrameError("truncated", f"text message of {len(body)} bytes")
    flag = body[0]
    emergency = (bool(flag & d.EMERGENCY_2013) if header.version is None
                 else flag & 0b11 == d.KIND_EMERGENCY_2019)
    try:
        text = body[head:].decode("gbk")
    except UnicodeDecodeError as exc:
        raise FrameError("bad_message", f"text is not GBK: {exc}") from None
    return ReceivedText(serial=header.serial, text=text, emergency=emergency,
                        display=bool(flag & d.DISPLAY), tts=bool(flag & d.TTS))


# --- the camera --------------------------------------------------------------------------
# JPEG (ITU T.81) baseline: a one-component (grey) image, each 8x8 block a flat grey, so
# a block is only its DC coefficient's difference from the previous block's and an
# end-of-block; the DC Huffman table is T.81 Annex K's luminance one, the AC table has
# the end-of-block alone.
DC_COUNTS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
"""Annex K.3 luminance DC: how many codes of each length 1-16 (symbols 0-11 in order)."""
DC_QUANTUM = 8
"""A flat block's DC coefficient is 8 x its level-shifted grey: quantised by 8, the grey."""


@functools.cache
def photo_jpeg(width: int = 640, height: int = 480) -> bytes:
    """The photo the simulated camera takes (the 640x480 a photo command asks for): a grey
    sky over a darker road, a baseline JPEG built here so that no imaging library is
    needed; about 2 KB, so its upload takes a few sub-packets."""
    greys = [_sky_to_road(row, height // 8) for row in range(height // 8)]
    header = (b"\xff\xd8"
              + _segment(0xFFE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
              + _segment(0xFFDB, bytes([0]) + bytes([DC_QUANTUM] * 64))
              + _segment(0xFFC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
              + _segment(0xFFC4, bytes([0x00, *DC_COUNTS]) + bytes(range(12)))
              + _segment(0xFFC4, bytes([0x10, 1] + [0] * 15) + b"\x00")
              + _segment(0xFFDA, b"\x01\x01\x00\x00\x3f\x00"))
    return header + _scan(greys, width // 8) + b"\xff\xd9"


def _sky_to_road(row: int, rows: int) -> int:
    """The grey of a row of blocks: light sky fading to the horizon, then a dark road."""
    return 200 - row if row < rows // 2 else 90 - (row - rows // 2)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def _scan(greys: list[int], columns: int) -> bytes:
    """The entropy-coded blocks, row by row (each row of blocks one grey), padded with
    one bits and with 0x00 stuffed after every 0xFF."""
    codes = _huffman_codes(DC_COUNTS)
    bits: list[str] = []
    previous = 0
    for grey in greys:
        for _ in range(columns):
            dc = grey - 128
            bits.append(_dc_bits(dc - previous, codes) + "0")  # "0": the AC end-of-block
            previous = dc
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    data = int(stream, 2).to_bytes(len(stream) // 8, "big")
    return data.replace(b"\xff", b"\xff\x00")


def _dc_bits(diff: int, codes: dict[int, str]) -> str:
    """A DC difference: the code of its size category, then its value in that many bits
    (a negative one as its one's complement)."""
    size = abs(diff).bit_length()
    if size == 0:
        return codes[0]
    value = diff if diff > 0 else diff + (1 << size) - 1
    return codes[size] + format(value, f"0{size}b")


def _huffman_codes(counts: tuple[int, ...]) -> dict[int, str]:
    """The canonical Huffman codes (T.81 Annex C) of symbols 0, 1, 2... in order."""
    codes: dict[int, str] = {}
    code = 0
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            codes[len(codes)] = format(code, f"0{length}b")
            code += 1
        code <<= 1
    return codes
