"""One JT/T 808 terminal connection: frames in; answers, pings and rejections out.

Pure: the server does the I/O (it writes the answers only once the pings and the
registration the frame produced are on Kafka, so an answered position is never
lost). A terminal registers (0x0100 -> 0x8100 with an authentication code), then
authenticates on each connection (0x0102); only then are its positions (0x0200,
and 0x0704 batches, including blind-area re-uploads) turned into pings of the
contract, keyed by the plate it registered. Every message that needs one gets the
general response 0x8001. What cannot be used gets a negative answer where the
protocol has one, and a rejection (a dead letter with the raw frame).

Maker items are read with the vehicle's terminal profile (:mod:`..jt808.profiles`: the
carrier's declaration, else the registration) or kept raw. Every ping and rejection is
classified for the data-qualified rate (:class:`Classified`, :func:`contract_ping`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

from ..jt808 import downlink
from ..jt808 import messages as m
from ..jt808 import profiles
from ..jt808.frame import Frame, FrameError, Header, build, parse, read_header
from ..core.models import Ping, Terminal, VehicleTerminal
from . import codes

MAX_PENDING_PACKETS = 1024
"""Sub-packets held per connection while a long message is reassembled (a photo of 1 MB
in 1,023-byte packets); only an authenticated terminal's are held."""

CommandAnswers = Callable[[str, int, bytes], None]
"""Where a terminal's answers to platform commands go: (plate, message id, body), the
gateway's command delivery (:class:`yrd_hazmat.gateway.courier.Courier`). It raises
``FrameError`` for a body it cannot read."""

MAX_SPEED_KMH = 300.0
"""The contract's speed limit (``Ping.speed_kmh``): above it a report is refused."""
ALTITUDE_M = (-500, 9000)
"""Altitudes a road vehicle can report (the Dead Sea shore to above any road): outside
them the altitude is dropped and the record is not qualified (``bad_altitude``)."""
QUALIFIED = "qualified"
"""The classification of a record with no finding (数据合格率's numerator)."""


@dataclass
class Rejected:
    reason: str
    error: str
    raw: bytes


class Classified(NamedTuple):
    """One record's data-quality classification: the vehicle and its carrier (from the
    carrier's declaration) where known, and ``qualified``, the first quality finding of an
    accepted ping, or the quality finding or dead-letter reason of a refused record."""

    vehicle_id: str | None
    carrier: str | None
    quality: str


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
    quality: list[Classified] = field(default_factory=list)
    """Every ping and every rejection, classified (one each, in the order handled)."""
    maker_items: int = 0
    """Maker items (0xE0-0xFF) kept raw on the pings: no profile reads them."""
    malformed_items: int = 0
    """Malformed trailing additional items dropped from the pings' positions."""

    def accept(self, ping: Ping, carrier: str | None) -> None:
        self.pings.append(ping)
        self.quality.append(Classified(ping.vehicle_id, carrier,
                                       ping.quality[0] if ping.quality else QUALIFIED))

    def refuse(self, rejected: Rejected, vehicle_id: str | None = None,
               carrier: str | None = None, quality: str | None = None) -> None:
        """A dead letter, classified by ``quality`` (a finding) or else its reason."""
        self.rejected.append(rejected)
        self.quality.append(Classified(vehicle_id, carrier, quality or rejected.reason))


class Refused(ValueError):
    """A position the contract cannot take; ``quality`` is its classification."""

    def __init__(self, quality: str, message: str) -> None:
        super().__init__(message)
        self.quality = quality


class Session:
    """The protocol state of one connection."""

    def __init__(self, terminals: Mapping[str, Terminal], new_code: Callable[[], str],
                 clock: Callable[[], datetime],
                 declarations: Mapping[str, VehicleTerminal] | None = None,
                 command_answers: CommandAnswers | None = None) -> None:
        self.terminals = terminals
        self.new_code = new_code
        self.clock = clock
        self.declarations: Mapping[str, VehicleTerminal] = (
            declarations if declarations is not None else {})
        """Carriers' declarations of their vehicles' terminals, by plate: they choose the
        profile that reads maker items, and name the carrier of the quality metrics."""
        self.command_answers = command_answers
        self.terminal: Terminal | None = None
        """The authenticated terminal of this connection."""
        self.header: Header | None = None
        """The header of the latest frame that passed its check code: frames sent down
        to the terminal take its phone, ``version`` and ``flagged`` (the form it uses)."""
        self._serial = 0
        self._packets: dict[tuple[int, int], dict[int, bytes]] = {}

    @property
    def authenticated(self) -> bool:
        """Whether this connection's terminal has authenticated (0x0102 accepted)."""
        return self.terminal is not None

    def dead_letter_key(self) -> str | None:
        """The key of this connection's dead letters: the authenticated terminal, else the
        phone number of its latest readable frame (a failed authentication's too), so a
        terminal's refusals are found under its number; None before any such frame."""
        if self.terminal is not None:
            return self.terminal.terminal
        return self.header.terminal if self.header is not None else None

    # --- framing ---------------------------------------------------------------------
    def handle(self, content: bytes) -> Handled:
        """One frame's escaped content (between its 0x7e flags)."""
        raw = b"\x7e" + content + b"\x7e"
        try:
            frame = parse(content)
        except FrameError as exc:
            out = Handled(message="unreadable")
            self._reject(out, Rejected(exc.reason, str(exc), raw))
            header = _loose_header(content)
            if header is not None:
                out.answers.append(self._general(header, m.BAD_MESSAGE))
            return out
        header = self.header = frame.header
        out = Handled(message=m.NAMES.get(header.msg_id, f"0x{header.msg_id:04x}"))
        if header.encryption:
            return self._refuse(out, header, raw, m.NOT_SUPPORTED, "encrypted",
                                "RSA-encrypted bodies are not supported")
        if header.packets:
            if not self.authenticated:  # (an unauthenticated peer holds no memory here)
                return self._refuse(out, header, raw, m.FAILURE, codes.NOT_AUTHENTICATED,
                                    f"terminal {header.terminal} sent sub-packets before "
                                    "authenticating")
            frame = self._reassemble(frame, out)
            if frame is None:
                return out
        try:
            self._dispatch(frame, raw, out)
        except FrameError as exc:
            self._refuse(out, header, raw, m.BAD_MESSAGE, exc.reason, str(exc))
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
        elif msg_id in downlink.ANSWERS and self.command_answers is not None:
            self._command_answer(header, body, raw, out)
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
                "protocol": reg.layout,
                "registered_at": self.clock()}, Terminal)
        except msgspec.ValidationError as exc:
            self._reject(out, Rejected(codes.NO_SUCH_VEHICLE, f"registration: {exc}", raw))
            out.answers.append(self._answer(header, m.REGISTRATION_RESPONSE,
                                            m.registration_response(header.serial,
                                                                    m.NO_SUCH_VEHICLE)))
            return
        out.registered = terminal
        out.answers.append(self._answer(header, m.REGISTRATION_RESPONSE,
                                        m.registration_response(header.serial, m.REGISTERED, code)))

    def _authenticate(self, header: Header, body: bytes, raw: bytes, out: Handled) -> None:
        code = m.read_authentication(body)
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
        vehicle_id = terminal.vehicle_id
        declared = self.declarations.get(vehicle_id)
        profile = profiles.select(declared, terminal)
        carrier = declared.carrier if declared is not None else None
        for item in bodies:
            try:
                position = m.read_location(item, profile)
                ping = position_ping(vehicle_id, position, blind=kind == 1)
            except FrameError as exc:
                out.refuse(Rejected(exc.reason, f"position: {exc}", raw), vehicle_id, carrier)
            except Refused as exc:
                out.refuse(Rejected(codes.INVALID, f"position: {exc}", raw), vehicle_id,
                           carrier, exc.quality)
            else:
                out.accept(ping, carrier)
                out.maker_items += len(position.raw_items or ())
                out.malformed_items += position.malformed_items
        if kind == 1:
            out.blind = len(out.pings)
        result = m.OK if out.pings or not bodies else m.BAD_MESSAGE
        out.answers.append(self._general(header, result))

    def _command_answer(self, header: Header, body: bytes, raw: bytes, out: Handled) -> None:
        """A terminal's answer to a platform command (0x0001, 0x0201, 0x0805, 0x0700, or a whole
        0x0801 upload): to the command delivery, which answers what needs answering (the
        upload's 0x8800); the others are answers themselves and get none."""
        terminal = self.terminal
        if terminal is None or terminal.terminal != header.terminal:
            self._refuse(out, header, raw, m.FAILURE, codes.NOT_AUTHENTICATED,
                         f"terminal {header.terminal} answered a command before authenticating")
            return
        assert self.command_answers is not None
        self.command_answers(terminal.vehicle_id, header.msg_id, body)

    # --- answers --------------------------------------------------------------------------
    def _refuse(self, out: Handled, header: Header, raw: bytes, result: int, reason: str,
                error: str) -> Handled:
        self._reject(out, Rejected(reason, error, raw))
        out.answers.append(self._general(header, result))
        return out

    def _reject(self, out: Handled, rejected: Rejected) -> None:
        """A dead letter of this connection: the authenticated vehicle's, if any."""
        if self.terminal is None:
            out.refuse(rejected)
            return
        vehicle_id = self.terminal.vehicle_id
        declared = self.declarations.get(vehicle_id)
        out.refuse(rejected, vehicle_id, declared.carrier if declared is not None else None)

    def _general(self, header: Header, result: int) -> bytes:
        return self._answer(header, m.GENERAL_RESPONSE,
                            m.general_response(header.serial, header.msg_id, result))

    def _answer(self, header: Header, msg_id: int, body: bytes) -> bytes:
        self._serial = (self._serial + 1) & 0xFFFF
        return build(msg_id, header.phone, self._serial, body, header.version,
                     flagged=header.flagged)


def position_ping(vehicle_id: str, position: m.Position, blind: bool = False) -> Ping:
    """The contract's ping of a decoded 0x0200 position (raises :class:`Refused`)."""
    return contract_ping({
        "vehicle_id": vehicle_id, "ts": position.ts, "lat": position.lat, "lon": position.lon,
        "speed_kmh": position.speed_kmh, "heading": position.heading, "crs": "WGS84",
        "alarm_flags": position.alarm, "status_flags": position.status,
        "altitude_m": position.altitude_m, "mileage_km": position.mileage_km,
        "alarm_extra": position.alarm_extra, "raw_items": position.raw_items,
        "fix_valid": position.fix_valid, "blind": blind,
    }, malformed=position.malformed_items > 0)


def contract_ping(fields: dict[str, Any], malformed: bool = False) -> Ping:
    """A ping of decoded fields, classified for the data-qualified rate: what makes a
    record unusable as a position refuses it (:class:`Refused`: a position out of range
    with a fix, a speed above the contract's); what is only doubtful is dropped from the
    ping and listed in ``quality``. A report without a fix is kept as proof of life.
    The gateway does not judge the time: the worker does, against the broker's clock."""
    fields = dict(fields)
    quality: list[str] = []
    lat, lon = fields["lat"], fields["lon"]
    in_range = -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0
    if not fields["fix_valid"]:
        quality.append("no_fix")
        fields["lat"] = lat if -90.0 <= lat <= 90.0 else 0.0
        fields["lon"] = lon if -180.0 <= lon <= 180.0 else 0.0
    elif not in_range:
        raise Refused("bad_position", f"latitude {lat}, longitude {lon} out of range")
    if fields["speed_kmh"] > MAX_SPEED_KMH:
        raise Refused("bad_speed", f"speed_kmh {fields['speed_kmh']} above the contract's "
                                   f"{MAX_SPEED_KMH}")
    if fields["heading"] is not None and not 0 <= fields["heading"] <= 359:
        fields["heading"] = None
        quality.append("bad_direction")
    altitude = fields.get("altitude_m")
    if altitude is not None and not ALTITUDE_M[0] <= altitude <= ALTITUDE_M[1]:
        fields["altitude_m"] = None
        quality.append("bad_altitude")
    if malformed:
        quality.append("malformed_item")
    try:
        return msgspec.convert(fields | {"quality": quality}, Ping)
    except msgspec.ValidationError as exc:
        raise Refused(codes.INVALID, str(exc)) from None


def _loose_header(content: bytes) -> Header | None:
    """The header of a frame that failed its checks, if readable (to answer it); escapes
    are undone leniently, as a bad one further on must not cost the answer."""
    data = content.replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")
    try:
        return read_header(data[:-1])[0]
    except FrameError:  # unreadable even so: no answer
        return None
