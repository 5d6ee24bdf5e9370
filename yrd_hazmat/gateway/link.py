"""One JT/T 809 platform link (the main link a lower platform opens to us): frames in;
answers, pings and rejections out. Pure, like :mod:`.session`.

The lower platform logs in with UP_CONNECT_REQ (its user id and password, and its
access code in every header); the gateway checks them against the settings and
answers UP_CONNECT_RSP. Then heartbeats (UP_LINKTEST_REQ) are answered, and each
position in UP_EXG_MSG (0x1202 real-time, 0x1203 history) becomes a ping like a
terminal's, keyed by the plate (``crs`` GCJ-02 when the GNSS data says its
coordinates are encrypted), classified for the data-qualified rate like a terminal's
(:func:`.session.contract_ping`); history positions are ``blind``. Bodies encrypted with
the standard's simple cipher are decrypted with the configured constants.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

import msgspec

from ..jt808.frame import FrameError
from ..jt809 import frame as f
from ..jt809 import messages as m
from ..core.models import Ping, VehicleTerminal
from . import codes
from .session import Handled, Refused, Rejected, contract_ping


class LinkConfig(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    password: str
    access_code: int
    cipher: f.Cipher = f.Cipher()


class LinkSession:
    def __init__(self, config: LinkConfig,
                 declarations: Mapping[str, VehicleTerminal] | None = None) -> None:
        self.config = config
        self.declarations: Mapping[str, VehicleTerminal] = (
            declarations if declarations is not None else {})
        """Carriers' declarations by plate: the carrier of a position's metrics."""
        self.logged_in = False
        self._serial = 0

    @property
    def authenticated(self) -> bool:
        """Whether the lower platform has logged in (UP_CONNECT_REQ accepted)."""
        return self.logged_in

    def dead_letter_key(self) -> str | None:
        return f"809:{self.config.access_code}"

    def handle(self, content: bytes) -> Handled:
        raw = bytes([f.HEAD]) + content + bytes([f.TAIL])
        try:
            frame = f.parse(content, self.config.cipher)
        except FrameError as exc:
            out = Handled(message="unreadable")
            out.refuse(Rejected(exc.reason, str(exc), raw))
            return out
        header = frame.header
        out = Handled(message=m.NAMES.get(header.msg_id, f"0x{header.msg_id:04x}"))
        try:
            self._dispatch(frame, raw, out)
        except FrameError as exc:
            out.refuse(Rejected(exc.reason, str(exc), raw))
        return out

    def _dispatch(self, frame: f.Frame, raw: bytes, out: Handled) -> None:
        header, body = frame.header, frame.body
        if header.msg_id == m.UP_CONNECT_REQ:
            self._login(header, m.read_login(body), raw, out)
        elif header.center != self.config.access_code:
            out.refuse(Rejected(codes.AUTH_FAILED,
                                         f"access code {header.center} is not the link's", raw))
        elif header.msg_id == m.UP_LINKTEST_REQ:
            out.answers.append(self._answer(header, m.UP_LINKTEST_RSP, b""))
        elif header.msg_id == m.UP_DISCONNECT_REQ:
            self.logged_in = False
            out.answers.append(self._answer(header, m.UP_DISCONNECT_RSP, b""))
        elif header.msg_id == m.UP_EXG_MSG:
            self._positions(body, raw, out)
        else:
            out.refuse(Rejected(codes.UNSUPPORTED,
                                         f"message 0x{header.msg_id:04x} is not supported", raw))

    def _login(self, header: f.Header, login: m.Login, raw: bytes, out: Handled) -> None:
        cfg = self.config
        if header.center != cfg.access_code:
            result = m.BAD_ACCESS_CODE
        elif login.user_id != cfg.user_id:
            result = m.NO_SUCH_USER
        elif login.password != cfg.password:
            result = m.BAD_PASSWORD
        else:
            result = m.OK
        self.logged_in = result == m.OK
        if not self.logged_in:
            out.refuse(Rejected(codes.AUTH_FAILED,
                                         f"UP_CONNECT_REQ of user {login.user_id}: result {result}",
                                         raw))
        verify = secrets.randbits(32) if self.logged_in else 0
        out.answers.append(self._answer(header, m.UP_CONNECT_RSP,
                                        m.connect_response(result, verify)))

    def _positions(self, body: bytes, raw: bytes, out: Handled) -> None:
        if not self.logged_in:
            out.refuse(Rejected(codes.NOT_AUTHENTICATED,
                                         "UP_EXG_MSG before a successful UP_CONNECT_REQ", raw))
            return
        data_type, positions = m.read_exg(body)
        if data_type not in (m.REAL_LOCATION, m.HISTORY_LOCATION):
            out.refuse(Rejected(codes.UNSUPPORTED,
                                         f"UP_EXG_MSG sub-business 0x{data_type:04x}", raw))
            return
        for position in positions:
            declared = self.declarations.get(position.plate)
            carrier = declared.carrier if declared is not None else None
            try:
                out.accept(_ping(position, blind=data_type == m.HISTORY_LOCATION), carrier)
            except Refused as exc:
                out.refuse(Rejected(codes.INVALID, f"position: {exc}", raw), position.plate,
                           carrier, exc.quality)
        if data_type == m.HISTORY_LOCATION:
            out.blind = len(out.pings)

    def _answer(self, header: f.Header, msg_id: int, body: bytes) -> bytes:
        self._serial = (self._serial + 1) & 0xFFFFFFFF
        cipher = self.config.cipher if header.encrypted else None
        return f.build(msg_id, self._serial, self.config.access_code, body, cipher=cipher,
                       key=header.key)


def _ping(position: m.Position, blind: bool) -> Ping:
    """The contract's ping of a GNSS_DATA (raises :class:`.session.Refused`)."""
    return contract_ping({
        "vehicle_id": position.plate, "ts": position.ts, "lat": position.lat,
        "lon": position.lon, "speed_kmh": position.speed_kmh, "heading": position.heading,
        "crs": "GCJ02" if position.gcj02 else "WGS84", "alarm_flags": position.alarm,
        "status_flags": position.status, "altitude_m": position.altitude_m,
        "mileage_km": position.mileage_km, "fix_valid": bool(position.status & m.FIXED),
        "blind": blind,
    })
