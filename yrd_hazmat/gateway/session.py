"""One JT/T 808 terminal connection: frames in; answers, pings and rejections out.

Pure: the server does the I/O (it writes the answers only once the pings and the
registration the frame produced are on Kafka, so an answered position is never
lost). A terminal registers (0x0100 -> 0x8100 with an authentication code), then
authenticates on each connection (0x0102); only then are its positions (0x0200,
and 0x0704 batches, including blind-area re-uploads) turned into pings of the
contract, keyed by the plate it registered. Every message that needs one gets the
general response 0x8001. What cannot be used gets a negative answer where the
protocol has one, and a rejection (a dead letter with the raw frame).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from ..models import Ping, Terminal
from . import codes
from ..jt808 import messages as m
from ..jt808.frame import Frame, FrameError, Header, build, parse, read_header, unescape

MAX_PENDING_PACKETS = 256
"""Sub-packets held per connection while a long message is reassembled."""


@dataclass
class Rejected:
    reason: str
    error: str
    raw: bytes


@dataclass
class Handled:
    """What one frame produced: the server makes it durable, then writes ``answers``."""

    message: str = "unknown"
    answers: list[bytes] = field(default_factory=list)
    pings: list[Ping] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    registered: Terminal | None = None
    deregistered: str | None = None
    blind: int = 0
    """Of the pings, how many were blind-area re-uploads (0x0704 type 1)."""


class Session:
    """The protocol state of one connection."""

    def __init__(self, terminals: Mapping[str, Terminal], new_code: Callable[[], str],
                 clock: Callable[[], datetime]) -> None:
        self.terminals = terminals
        self.new_code = new_code
        self.clock = clock
        self.terminal: Terminal | None = None
        """The authenticated terminal of this connection."""
        self._serial = 0
        self._packets: dict[tuple[int, int], dict[int, bytes]] = {}

    @property
    def authenticated(self) -> bool:
        """Whether this connection's terminal has authenticated (0x0102 accepted)."""
        return self.terminal is not None

    def dead_letter_key(self) -> str | None:
        """The key of this connection's dead letters: the authenticated terminal."""
        return self.terminal.terminal if self.terminal is not None else None

    # --- framing ---------------------------------------------------------------------
    def handle(self, content: bytes) -> Handled:
        """One frame's escaped content (between its 0x7e flags)."""
        raw = b"\x7e" + content + b"\x7e"
        try:
            frame = parse(content)
        except FrameError as exc:
            out = Handled(message="unreadable")
            out.rejected.append(Rejected(exc.reason, str(exc), raw))
            header = _loose_header(content)
            if header is not None:
                out.answers.append(self._general(header, m.BAD_MESSAGE))
            return out
        header = frame.header
        out = Handled(message=m.NAMES.get(header.msg_id, f"0x{header.msg_id:04x}"))
        if header.encryption:
            return self._refuse(out, header, raw, m.NOT_SUPPORTED, "encrypted",
                                "RSA-encrypted bodies are not supported")
        if header.packets:
            frame = self._reassemble(frame, out)
            if frame is None:
                return out
        try:
            self._dispatch(frame, raw, out)
        except FrameError as exc:
            out.rejected.append(Rejected(exc.reason, str(exc), raw))
            out.answers.append(self._general(header, m.BAD_MESSAGE))
        return out

    def _reassemble(self, frame: Frame, out: Handled) -> Frame | None:
        """A complete message once every sub-packet is in; each one is answered."""
        header = frame.header
        key = (header.msg_id, header.packets or 0)
        parts = self._packets.setdefault(key, {})
        if sum(map(len, self._packets.values())) < MAX_PENDING_PACKETS:
            parts[header.index or 0] = frame.body
        if len(parts) < (header.packets or 0):
            out.answers.append(self._general(header, m.OK))
            return None
        del self._packets[key]  # the last one: the whole message's handling answers it
        body = b"".join(parts[i] for i in sorted(parts))
        return Frame(msgspec.structs.replace(header, packets=None, index=None), body)

    def _dispatch(self, frame: Frame, raw: bytes, out: Handled) -> None:
        header, body = frame.header, frame.body
        msg_id = header.msg_id
        if msg_id == m.REGISTRATION:
            self._register(header, body, raw, out)
        elif msg_id == m.AUTHENTICATION:
            self._authenticate(header, body, raw, out)
        elif msg_id == m.HEARTBEAT:
            out.answers.append(self._general(header, m.OK))
        elif msg_id == m.DEREGISTRATION:
            out.deregistered = header.terminal
            self.terminal = None
            out.answers.append(self._general(header, m.OK))
        elif msg_id in (m.LOCATION, m.BATCH):
            self._positions(header, body, raw, out)
        elif msg_id == m.TERMINAL_RESPONSE:
            pass  # the terminal acknowledging a platform command: nothing to answer
        else:
            self._refuse(out, header, raw, m.NOT_SUPPORTED, codes.UNSUPPORTED,
                         f"message 0x{msg_id:04x} is not supported")

    # --- messages ------------------------------------------------------------------------
    def _register(self, header: Header, body: bytes, raw: bytes, out: Handled) -> None:
        reg = m.read_registration(body, header.version)
        known = self.terminals.get(header.terminal)
        code = known.auth_code if known is not None and known.vehicle_id == reg.plate else (
            self.new_code())
        try:
            terminal = msgspec.convert({
                "terminal": header.terminal, "vehicle_id": reg.plate,
                "plate_colour": reg.plate_colour, "terminal_id": reg.terminal_id,
                "maker": reg.maker, "model": reg.model, "auth_code": code,
                "protocol": "2013" if header.version is None else "2019",
                "registered_at": self.clock()}, Terminal)
        except msgspec.ValidationError as exc:
            out.rejected.append(Rejected(codes.NO_SUCH_VEHICLE, f"registration: {exc}", raw))
            out.answers.append(self._answer(header, m.REGISTRATION_RESPONSE,
                                            m.registration_response(header.serial,
                                                                    m.NO_SUCH_VEHICLE)))
            return
        out.registered = terminal
        out.answers.append(self._answer(header, m.REGISTRATION_RESPONSE,
                                        m.registration_response(header.serial, m.REGISTERED, code)))

    def _authenticate(self, header: Header, body: bytes, raw: bytes, out: Handled) -> None:
        code = m.read_authentication(body, header.version)
        known = self.terminals.get(header.terminal)
        if known is None or known.auth_code != code:
            why = "not registered" if known is None else "wrong authentication code"
            self._refuse(out, header, raw, m.FAILURE, codes.AUTH_FAILED,
                         f"terminal {header.terminal}: {why}")
            return
        self.terminal = known
        out.answers.append(self._general(header, m.OK))

    def _positions(self, header: Header, body: bytes, raw: bytes, out: Handled) -> None:
        terminal = self.terminal
        if terminal is None or terminal.terminal != header.terminal:
            self._refuse(out, header, raw, m.FAILURE, codes.NOT_AUTHENTICATED,
                         f"terminal {header.terminal} sent a position before authenticating")
            return
        if header.msg_id == m.LOCATION:
            kind, bodies = 0, [body]
        else:
            kind, bodies = m.read_batch(body)
        for item in bodies:
            try:
                out.pings.append(_ping(terminal.vehicle_id, m.read_location(item)))
            except (FrameError, msgspec.ValidationError) as exc:
                reason = exc.reason if isinstance(exc, FrameError) else codes.INVALID
                out.rejected.append(Rejected(reason, f"position: {exc}", raw))
        if kind == 1:
            out.blind = len(out.pings)
        result = m.OK if out.pings or not bodies else m.BAD_MESSAGE
        out.answers.append(self._general(header, result))

    # --- answers --------------------------------------------------------------------------
    def _refuse(self, out: Handled, header: Header, raw: bytes, result: int, reason: str,
                error: str) -> Handled:
        out.rejected.append(Rejected(reason, error, raw))
        out.answers.append(self._general(header, result))
        return out

    def _general(self, header: Header, result: int) -> bytes:
        return self._answer(header, m.GENERAL_RESPONSE,
                            m.general_response(header.serial, header.msg_id, result))

    def _answer(self, header: Header, msg_id: int, body: bytes) -> bytes:
        self._serial = (self._serial + 1) & 0xFFFF
        return build(msg_id, header.phone, self._serial, body, header.version)


def _ping(vehicle_id: str, position: m.Position) -> Ping:
    """The contract's ping of a decoded position (validated: a bad field raises)."""
    return msgspec.convert({
        "vehicle_id": vehicle_id, "ts": position.ts, "lat": position.lat, "lon": position.lon,
        "speed_kmh": position.speed_kmh,
        "heading": position.heading if position.heading < 360 else None,
        "crs": "WGS84", "alarm_flags": position.alarm, "status_flags": position.status,
        "altitude_m": position.altitude_m, "mileage_km": position.mileage_km,
        "alarm_extra": position.alarm_extra,
    }, Ping)


def _loose_header(content: bytes) -> Header | None:
    """The header of a frame that failed its checks, if readable (to answer it)."""
    try:
        return read_header(unescape(content)[:-1])[0]
    except FrameError:  # unreadable even so: no answer
        return None
