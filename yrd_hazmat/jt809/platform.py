"""A simulated lower platform on JT/T 809, either edition (2011, 2019), encrypted or not:
:class:`SimulatedPlatform` opens the main link to the upper platform (the gateway), logs
in (UP_CONNECT_REQ 0x1001, with the address of its slave-link server), sends link tests,
its vehicles' registrations (0x1201), real-time and re-sent positions (0x1202, 0x1203),
alarms (0x1402), e-waybills (0x120D) and static information (0x1601); :class:`SlaveServer`
is its slave-link server, which the gateway connects to (DOWN_CONNECT_REQ 0x9001 with
the verify code of the login's answer, link tests 0x9005) and sends downward messages
on. :meth:`SimulatedPlatform.answers` makes the platform answer what comes down its slave
link, on its main link, after a delay of its own per message: an inspection 0x9301 with
0x1301, a supervision order 0x9401 with 0x1401 and (2019) 0x1412 or (2011) 0x1403, a
text 0x9503 with 0x1503, a photo request 0x9502 with 0x1502 and a small picture, a
static-information request 0x9601 with 0x1601, who drives 0x920A with 0x120A (a made-up
driver, :data:`DRIVER`), a listen-in 0x9501 with 0x1501 (listening), a tachograph-data
request 0x9504 with 0x1504 (an empty GB/T 19056 answer frame, :func:`travel_frame`), an
emergency access 0x9505 with 0x1505 (received), an order to start or stop passing a
vehicle's positions up 0x9205/0x9206 with 0x1205/0x1206. For the tests and the demo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import msgspec

from ..core.timeutil import CHINA_TZ
from ..jt808.frame import FrameError
from ..tcp import TcpClient
from . import alarms as a
from . import control as c
from . import exchange as x
from . import inspection as i
from . import links as lk
from . import static as st
from .codec import read_envelope
from .frame import V2011, V2019, Cipher, Frame, Splitter, build, parse
from .gnss import Fix


class LinkRefused(RuntimeError):
    pass


def fix(ts: datetime, lat: float, lon: float, speed_kmh: float, *, heading: int = 0,
        alarm: int = 0, status: int = 0b11, mileage_km: float = 0, gcj02: bool = False,
        altitude_m: int = 10) -> Fix:
    """A vehicle's position as a platform passes it up."""
    return Fix(ts=ts, lat=lat, lon=lon, speed_kmh=speed_kmh, heading=heading, alarm=alarm,
               status=status, mileage_km=float(mileage_km), gcj02=gcj02, altitude_m=altitude_m)


class _Framing:
    """Frames of one platform: its access code, edition and cipher."""

    def __init__(self, access_code: int, cipher: Cipher | None, edition: int) -> None:
        self.access_code = access_code
        self.cipher = cipher
        self.edition = edition
        self._serial = 0

    def frame(self, msg_id: int, body: bytes) -> bytes:
        self._serial += 1
        key = self._serial * 7919 if self.cipher is not None else 0
        return build(msg_id, self._serial, self.access_code, body, cipher=self.cipher, key=key,
                     edition=self.edition)

    def read(self, content: bytes) -> Frame:
        return parse(content, self.cipher or Cipher(), expect=self.edition)


PICTURE = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
"""The photo a simulated platform answers with (a JPEG's start and end markers)."""
DRIVER = x.Driver(name="李四", driver_id="320102198001010011", licence="JS-DG-20260001",
                  org="江苏省交通运输厅", valid_until=datetime(2030, 6, 30, tzinfo=CHINA_TZ))
"""Who drives, as a simulated platform answers 0x920A."""


def travel_frame(command: int) -> bytes:
    """The tachograph's answer to ``command`` without data (GB/T 19056: 0x55 0x7A, the
    command word, the data length UINT16 0, a reserved byte, the XOR of the bytes before)."""
    head = bytes([0x55, 0x7A, command, 0x00, 0x00, 0x00])
    check = 0
    for byte in head:
        check ^= byte
    return head + bytes([check])


class SimulatedPlatform(TcpClient):
    """The main link of one lower platform."""

    def __init__(self, user_id: int, password: str, access_code: int,
                 cipher: Cipher | None = None, timeout_s: float = 10.0, *,
                 edition: int = V2011, down_ip: str = "127.0.0.1", down_port: int = 0) -> None:
        self.user_id = user_id
        self.password = password
        self.access_code = access_code
        self.cipher = cipher
        self.timeout_s = timeout_s
        self.edition = edition
        self.down_ip = down_ip
        self.down_port = down_port
        """Its slave-link server's address, given at login (port 0: none)."""
        self.verify_code = 0
        """The VERIFY_CODE of the latest accepted login."""
        self.inbox: list[Frame] = []
        """Frames from the gateway not yet read (e.g. DOWN_DISCONNECT_INFORM 0x9007)."""
        self._framing = _Framing(access_code, cipher, edition)
        self._splitter = Splitter()

    def frame(self, msg_id: int, body: bytes) -> bytes:
        return self._framing.frame(msg_id, body)

    async def send(self, msg_id: int, body: bytes) -> None:
        assert self._writer is not None, "not connected"
        self._writer.write(self.frame(msg_id, body))
        await self._writer.drain()

    async def receive_frame(self, msg_id: int | None = None) -> Frame:
        """The next frame from the gateway (of ``msg_id``: others stay in :attr:`inbox`)."""
        async def wait() -> Frame:
            while True:
                for n, frame in enumerate(self.inbox):
                    if msg_id is None or frame.header.msg_id == msg_id:
                        return self.inbox.pop(n)
                assert self._reader is not None, "not connected"
                data = await self._reader.read(65_536)
                if not data:
                    raise ConnectionError("the gateway closed the link")
                frames, _ = self._splitter.feed(data)
                self.inbox += [self._framing.read(content) for content in frames]
        return await asyncio.wait_for(wait(), self.timeout_s)

    async def receive(self) -> tuple[int, bytes]:
        """The next frame from the gateway: (message id, body)."""
        frame = await self.receive_frame()
        return frame.header.msg_id, frame.body

    async def login(self) -> int:
        """UP_CONNECT_REQ; the result of UP_CONNECT_RSP (0: accepted)."""
        login = lk.Login(user_id=self.user_id, password=self.password, down_ip=self.down_ip,
                         down_port=self.down_port,
                         center=self.access_code if self.edition == V2019 else None)
        await self.send(lk.UP_CONNECT_REQ, lk.write_login(login, self.edition))
        frame = await self.receive_frame(lk.UP_CONNECT_RSP)
        answer = lk.read_login_answer(frame.body)
        if answer.result == lk.OK:
            self.verify_code = answer.verify_code
        return answer.result

    async def logout(self) -> None:
        await self.send(lk.UP_DISCONNECT_REQ, lk.write_logout(lk.Logout(
            user_id=self.user_id, password=self.password)))
        await self.receive_frame(lk.UP_DISCONNECT_RSP)

    async def linktest(self) -> bool:
        await self.send(lk.UP_LINKTEST_REQ, b"")
        return (await self.receive_frame(lk.UP_LINKTEST_RSP)) is not None

    async def position(self, plate: str, ts: datetime, lat: float, lon: float, speed_kmh: float,
                       colour: int = 2, **fields) -> None:
        """A real-time position (UP_EXG_MSG 0x1202); JT/T 809 has no answer to it."""
        data = x.write_location(fix(ts, lat, lon, speed_kmh, **fields), self.edition)
        await self.send(x.UP_EXG_MSG, x.write(plate, colour, x.REAL_LOCATION, data))

    async def history(self, plate: str, fixes: list[tuple[datetime, float, float, float]],
                      colour: int = 2) -> None:
        """Positions it could not pass up at the time (UP_EXG_MSG 0x1203), at most 5 per
        message, in time order."""
        kept = [fix(ts, lat, lon, speed) for ts, lat, lon, speed in fixes]
        for batch in x.batches(kept):
            await self.send(x.UP_EXG_MSG, x.write(plate, colour, x.HISTORY_LOCATION,
                                                  x.write_history(batch, self.edition)))

    async def register(self, plate: str, registration: x.Registration, colour: int = 2) -> None:
        """A vehicle's terminal (UP_EXG_MSG_REGISTER 0x1201)."""
        await self.send(x.UP_EXG_MSG, x.write(plate, colour, x.REGISTER,
                                              x.write_registration(registration, self.edition)))

    async def waybill(self, plate: str, text: str, colour: int = 2) -> None:
        """An e-waybill sent unasked (UP_EXG_MSG_REPORT_EWAYBILL_INFO 0x120D)."""
        await self.send(x.UP_EXG_MSG, x.write(plate, colour, x.REPORT_EWAYBILL_INFO,
                                              x.write_waybill(x.Waybill(text=text))))

    async def alarm(self, plate: str, warn_type: int, ts: datetime, content: str = "",
                    colour: int = 2, info_id: int = 1) -> None:
        """An alarm sent up (UP_WARN_MSG_ADPT_INFO 0x1402)."""
        alarm = a.Alarm(warn_type=warn_type, warn_time=ts, content=content, info_id=info_id,
                        warn_src=a.FROM_ENTERPRISE, platform_id="12345678901", plate=plate,
                        colour=colour, start_time=ts, end_time=ts)
        await self.send(a.UP_WARN_MSG, a.write(a.ADPT_INFO, a.write_alarm(alarm, a.ADPT_INFO,
                                                                          self.edition),
                                               self.edition, plate, colour))

    def answers(self, slave: "SlaveServer", delays: dict[int, float] | None = None,
                answer: str = "已核实", result: int = a.DONE) -> None:
        """Answer the requests ``slave`` receives, on the main link, each DATA_TYPE
        (0x9301, 0x9401, 0x9502, 0x9503, 0x9601, 0x920A, 0x9501, 0x9504, 0x9505, 0x9205,
        0x9206) after its delay in ``delays`` seconds
        (none: at once; a negative delay: never)."""
        delays = delays or {}

        def received(frame: Frame) -> None:
            msg_id = frame.header.msg_id
            vehicle = msg_id != i.DOWN_PLATFORM_MSG and not (
                msg_id == a.DOWN_WARN_MSG and self.edition == V2019)
            try:
                sub = read_envelope(frame.body, vehicle=vehicle, what="downward").sub_type
            except FrameError:
                return
            delay = delays.get(sub, 0.0)
            if delay >= 0:
                task = asyncio.get_running_loop().create_task(
                    self._answer_later(frame, delay, answer, result))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)

        self._answering: set[asyncio.Task] = set()
        slave.on_message = received

    async def _answer_later(self, frame: Frame, delay: float, answer: str, result: int) -> None:
        await asyncio.sleep(delay)
        for msg_id, body in self.answer_to(frame, answer, result):
            await self.send(msg_id, body)

    def answer_to(self, frame: Frame, answer: str = "已核实",
                  result: int = a.DONE) -> list[tuple[int, bytes]]:
        """The platform's answers to a downward message (none to one it does not answer)."""
        msg_id, body, serial, edition = frame.header.msg_id, frame.body, frame.header.serial, \
            self.edition
        if msg_id == i.DOWN_PLATFORM_MSG:
            message = i.read(msg_id, body, edition)
            if message.sub_type != i.POST_QUERY_REQ:
                return []
            question: i.Inspection = message.value  # type: ignore[assignment]
            reply = i.InspectionAnswer(content=answer, object_type=question.object_type,
                                       object_id=question.object_id, info_id=question.info_id,
                                       responder="值班员", responder_tel="02100000000",
                                       source_type=i.POST_QUERY_REQ, source_sn=serial)
            return [(i.UP_PLATFORM_MSG, i.write(i.POST_QUERY_ACK, i.write_answer(reply, edition)))]
        if msg_id == a.DOWN_WARN_MSG:
            message = a.read(msg_id, body, edition)
            if message.sub_type != a.URGE_TODO_REQ:
                return []
            order: a.SupervisionOrder = message.value  # type: ignore[assignment]
            plate, colour = message.plate, message.colour or 0
            ack = a.SupervisionAnswer(
                supervision_id=order.supervision_id if edition == V2011 else serial,
                source_type=a.ADPT_INFO, source_sn=order.source_sn, result=a.IN_PROGRESS)
            if edition == V2011:
                done = a.write_result(a.HandlingResult(info_id=order.supervision_id,
                                                       result=result), a.ADPT_TODO_INFO_2011)
                handled = a.write(a.ADPT_TODO_INFO_2011, done, edition, plate, colour)
            else:
                done = a.write_result(a.HandlingResult(source_type=a.URGE_TODO_REQ,
                                                       source_sn=serial, result=result))
                handled = a.write(a.ADPT_TODO_INFO, done, edition)
            return [(a.UP_WARN_MSG, a.write(a.URGE_TODO_ACK, a.write_order_answer(ack, edition),
                                            edition, plate, colour)),
                    (a.UP_WARN_MSG, handled)]
        if msg_id == c.DOWN_CTRL_MSG:
            message = c.read(msg_id, body, edition)
            plate, colour = message.plate or "", message.colour or 0
            sub = message.sub_type
            if sub in (c.MONITOR_VEHICLE_REQ, c.EMERGENCY_MONITORING_REQ):
                ack_sub = c.MONITOR_VEHICLE_ACK if sub == c.MONITOR_VEHICLE_REQ else \
                    c.EMERGENCY_MONITORING_ACK
                done_ = c.ControlResult(result=c.LISTENING if sub == c.MONITOR_VEHICLE_REQ
                                        else c.ACCESS_RECEIVED, source_type=sub,
                                        source_sn=serial)
                return [(c.UP_CTRL_MSG, c.write(plate, colour, ack_sub,
                                                c.write_result(done_, ack_sub, edition)))]
            if sub == c.TAKE_TRAVEL_DATA_REQ:
                travel: c.TachographRequest = message.value  # type: ignore[assignment]
                data = c.TachographAnswer(data=travel_frame(travel.command),
                                          command=travel.command, source_type=sub,
                                          source_sn=serial)
                return [(c.UP_CTRL_MSG, c.write(plate, colour, c.TAKE_TRAVEL_DATA_ACK,
                                                c.write_tachograph_answer(data, edition)))]
            if sub == c.TEXT_INFO:
                text: c.TextRequest = message.value  # type: ignore[assignment]
                reply_text = c.TextAnswer(result=c.DELIVERED, msg_id=text.msg_id,
                                          source_type=c.TEXT_INFO, source_sn=serial)
                return [(c.UP_CTRL_MSG, c.write(plate, colour, c.TEXT_INFO_ACK,
                                                c.write_text_answer(reply_text, edition)))]
            if sub != c.TAKE_PHOTO_REQ:
                return []
            photo: c.PhotoRequest = message.value  # type: ignore[assignment]
            reply_photo = c.PhotoAnswer(flag=c.TAKEN, lens=photo.lens, size=photo.size,
                                        image_type=1, photo=PICTURE,
                                        source_type=c.TAKE_PHOTO_REQ, source_sn=serial)
            return [(c.UP_CTRL_MSG, c.write(plate, colour, c.TAKE_PHOTO_ACK,
                                            c.write_photo_answer(reply_photo, edition)))]
        if msg_id == st.DOWN_BASE_MSG:
            message = st.read(msg_id, body, edition)
            info = st.StaticInfo(text=st.static_text({"VIN": "LSIM0000000000001"}),
                                 source_type=st.VEHICLE_ADDED, source_sn=serial)
            return [(st.UP_BASE_MSG, st.write(message.plate or "", message.colour or 0,
                                              st.VEHICLE_ADDED_ACK,
                                              st.write_static(info, edition)))]
        if msg_id == x.DOWN_EXG_MSG:
            message = x.read(msg_id, body, edition)
            plate, colour, sub = message.plate or "", message.colour or 0, message.sub_type
            if sub == x.DOWN_REPORT_DRIVER_INFO:
                driver = msgspec.structs.replace(DRIVER, source_type=sub, source_sn=serial)
                return [(x.UP_EXG_MSG, x.write(plate, colour, x.REPORT_DRIVER_INFO_ACK,
                                               x.write_driver(driver, x.REPORT_DRIVER_INFO_ACK,
                                                              edition)))]
            if sub in (x.RETURN_STARTUP, x.RETURN_END):
                ack_sub = x.RETURN_STARTUP_ACK if sub == x.RETURN_STARTUP else x.RETURN_END_ACK
                return [(x.UP_EXG_MSG, x.write_exchange_ack(
                    ack_sub, x.ExchangeAck(source_type=sub, source_sn=serial), plate, colour,
                    edition))]
        return []

    async def static_info(self, plate: str, fields: dict[str, object], colour: int = 2,
                          source_sn: int = 0) -> None:
        """A vehicle's static information (UP_BASE_MSG_VEHICLE_ADDED_ACK 0x1601), the answer
        to 0x9601 (``source_sn``: that request's MSG_SN)."""
        info = st.StaticInfo(text=st.static_text(fields), source_type=st.VEHICLE_ADDED,
                             source_sn=source_sn)
        await self.send(st.UP_BASE_MSG, st.write(plate, colour, st.VEHICLE_ADDED_ACK,
                                                 st.write_static(info, self.edition)))


class SlaveServer:
    """The platform's slave-link server: accepts the gateway's DOWN_CONNECT_REQ 0x9001 when
    its VERIFY_CODE is the one of the platform's latest login (``verify_code()``), answers
    link tests, and keeps every other message it gets in :attr:`received`. ``answering``
    False: a server that accepts connections and never answers."""

    def __init__(self, access_code: int, cipher: Cipher | None, edition: int,
                 verify_code: Callable[[], int]) -> None:
        self._framing = _Framing(access_code, cipher, edition)
        self.verify_code = verify_code
        self.answering = True
        self.connections = 0
        self.logins: list[int] = []
        """The result of each DOWN_CONNECT_REQ."""
        self.linktests = 0
        self.received: list[Frame] = []
        self.on_message: Callable[[Frame], None] | None = None
        """Called with each message kept in :attr:`received` (the platform answering it)."""
        self.server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @classmethod
    def of(cls, platform: SimulatedPlatform) -> "SlaveServer":
        return cls(platform.access_code, platform.cipher, platform.edition,
                   lambda: platform.verify_code)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; the port."""
        self.server = await asyncio.start_server(self._serve, host, port)
        return self.server.sockets[0].getsockname()[1]

    @property
    def up(self) -> int:
        """Connections open now."""
        return sum(not w.is_closing() for w in self._writers)

    def drop(self) -> None:
        """Cut every open connection (the server keeps listening)."""
        for writer in self._writers:
            writer.transport.abort()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        self.drop()
        if self.server is not None:
            await self.server.wait_closed()

    def notice(self, msg_id: int, body: bytes) -> None:
        """Send the gateway a frame on every open connection (e.g. 0x1007)."""
        for writer in self._writers:
            if not writer.is_closing():
                writer.write(self._framing.frame(msg_id, body))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        splitter = Splitter()
        try:
            while True:
                data = await reader.read(65_536)
                if not data:
                    break
                frames, _ = splitter.feed(data)
                for content in frames:
                    try:
                        answer = self._answer(self._framing.read(content))
                    except FrameError:  # what a platform would drop
                        continue
                    if answer is not None and self.answering:
                        writer.write(answer)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.remove(writer)
            writer.close()

    def _answer(self, frame: Frame) -> bytes | None:
        msg_id, body = frame.header.msg_id, frame.body
        if msg_id == lk.DOWN_CONNECT_REQ:
            code = lk.read_verify_code(body).verify_code
            result = lk.SLAVE_OK if code == self.verify_code() else lk.SLAVE_BAD_VERIFY_CODE
            self.logins.append(result)
            return self._framing.frame(lk.DOWN_CONNECT_RSP, bytes([result]))
        if msg_id == lk.DOWN_LINKTEST_REQ:
            self.linktests += 1
            return self._framing.frame(lk.DOWN_LINKTEST_RSP, b"")
        if msg_id == lk.DOWN_DISCONNECT_REQ:
            self.received.append(frame)
            return self._framing.frame(lk.DOWN_DISCONNECT_RSP, b"")
        self.received.append(frame)
        if self.on_message is not None:
            self.on_message(frame)
        return None
