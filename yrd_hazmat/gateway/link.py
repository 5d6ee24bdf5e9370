"""The main link of a JT/T 809 lower platform (the connection it opens to us, the upper
platform): frames in; answers, pings, records, alerts and rejections out. Pure, like
:mod:`.session`: the server does the I/O.

Any number of lower platforms share the port (:mod:`.platforms`); each frame's header
names its platform (MSG_GNSSCENTERID), whose cipher decrypts the body and whose edition
(2011 or 2019) is the hint for the header's layout (:func:`yrd_hazmat.jt809.frame.parse_for`).
A connection belongs to the platform that logged in on it.

- UP_CONNECT_REQ 0x1001 -> UP_CONNECT_RSP 0x1002: the access code (in the header, and in
  the 2019 body), the platform's state, its source address, USERID and PASSWORD are
  checked, and answered with the standard's results (0 accepted, 1 IP address, 2 access
  code, 3 user, 4 password, 5 busy: throttled (:mod:`.guard`), 6 other, 0xFF in 2019);
  an accepted login gets a VERIFY_CODE, with which the gateway opens the slave link to
  the DOWN_LINK_IP/PORT the login gave (:attr:`LinkHandled.slave`, :mod:`.slave`).
- UP_LINKTEST_REQ 0x1005 -> 0x1006 (answered before a login too, as before);
  UP_DISCONNECT_REQ 0x1003 -> 0x1004; UP_DISCONNECT_INFORM 0x1007 and
  UP_CLOSELINK_INFORM 0x1008 recorded (``yrd.platform-reports``).
- UP_EXG_MSG 0x1200: 0x1201 registration -> a vehicle-register record
  (``yrd.platform-vehicles``; 2019: answered DOWN_EXG_MSG_REGISTER_ACK 0x9201 on the slave
  link); 0x1202 real-time position -> a ping; 0x1203 re-sent positions -> pings marked
  ``blind``; 0x120B/0x120D e-waybills -> ``yrd.ewaybills``; 0x120A (the answer to
  0x920A) and 0x120C (unasked) who drives a vehicle, 0x1205/0x1206 (the answers to
  0x9205/0x9206) recorded.
- UP_WARN_MSG 0x1400: 0x1402 -> an alert of the platform's own (:mod:`.platform_alarms`),
  held until the vehicle's position is known; 0x1401/0x1412/0x1403 recorded.
- UP_BASE_MSG 0x1600: 0x1601 static information recorded.
- UP_PLATFORM_MSG 0x1300: 0x1301 an inspection's answer, 0x1302 a platform message's
  acknowledgement; UP_CTRL_MSG 0x1500: 0x1503 a text's answer, 0x1502 a photo's (the
  picture onto ``yrd.media``), 0x1501 a listen-in's, 0x1504 a tachograph-data request's,
  0x1505 an emergency-access request's: recorded, and matched to the downward request
  they answer (:mod:`.downward`), as are 0x120A and 0x1601.

Anything else is a dead letter (``unsupported``), as is what cannot be read, with the
raw frame; every ping and refusal is classified for the data-qualified rate.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from ..core.models import Alert, Media, Ping, VehicleId, VehicleTerminal
from ..core.timeutil import CHINA_TZ
from ..jt808.frame import FrameError
from ..jt809 import alarms as a
from ..jt809 import control as c
from ..jt809 import exchange as x
from ..jt809 import frame as f
from ..jt809 import inspection as i
from ..jt809 import links as lk
from ..jt809 import static as st
from ..jt809.gnss import Fix
from . import codes
from .guard import LoginGuard
from .platform_alarms import LastFixes, platform_alert
from .platform_records import EWaybill, PlatformReport, PlatformVehicle
from .platforms import Platform
from .session import Handled, Refused, Rejected, contract_ping

NAMES = {lk.UP_CONNECT_REQ: "connect", lk.UP_DISCONNECT_REQ: "disconnect",
         lk.UP_LINKTEST_REQ: "linktest", lk.UP_DISCONNECT_INFORM: "disconnect_inform",
         lk.UP_CLOSELINK_INFORM: "closelink_inform", x.UP_EXG_MSG: "exg",
         a.UP_WARN_MSG: "warn", st.UP_BASE_MSG: "base", i.UP_PLATFORM_MSG: "platform",
         c.UP_CTRL_MSG: "ctrl"}
"""The messages the main link handles, by their label in the metrics (others: ``other``)."""
FIXED = 1 << 1
"""STATE bit 1 (JT/T 808's status): a valid satellite fix."""
MAX_PENDING_ALARMS = 256
"""Alarms one connection holds while their vehicles' positions are unknown."""
IMAGE_FORMATS = {1: "jpeg", 3: "tif"}
"""0x1502 TYPE (image format: 1 JPEG, 2 GIF, 3 TIFF, 4 PNG) -> the media record's format."""
NO_POSITION = "no_position"
"""Dead-letter reason of an alarm whose vehicle's position never came."""

LOGIN_REASONS = {lk.OK: "ok", lk.BAD_IP: "bad_ip", lk.BAD_ACCESS_CODE: "bad_access_code",
                 lk.NO_SUCH_USER: "no_such_user", lk.BAD_PASSWORD: "bad_password",
                 lk.BUSY: "busy", lk.OTHER: "other", lk.OTHER_2019: "other"}


class LinkConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One lower platform, the older way (the ``YRD_JT809_*`` settings): see
    :class:`.platforms.Platform`."""

    user_id: int
    password: str
    access_code: int
    cipher: f.Cipher = f.Cipher()
    edition: int = f.V2011

    def platform(self) -> Platform:
        return Platform(access_code=self.access_code, name="settings", user_id=self.user_id,
                        password=self.password, m1=self.cipher.m1, ia1=self.cipher.ia1,
                        ic1=self.cipher.ic1, edition=self.edition)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LoginOutcome:
    """A login's result: for the metrics (refusals by reason) and the link's state."""

    platform: int | None
    """The access code of a configured platform; None for an unknown one."""
    result: int
    reason: str
    """``ok``, a refusal (``bad_access_code``, ``disabled``, ``bad_ip``, ``no_such_user``,
    ``bad_password``) or a throttling (``address_throttled``, ``platform_throttled``)."""


@dataclass(frozen=True)
class SlaveTarget:
    """Where the gateway opens the platform's slave link, and the code it proves itself
    with (DOWN_CONNECT_REQ 0x9001)."""

    host: str
    port: int
    verify_code: int


@dataclass
class LinkHandled(Handled):
    """What one frame of a main link produced (:class:`.session.Handled`, and the records
    and events of a platform link)."""

    platform: Platform | None = None
    """The configured platform the frame's header names."""
    alerts: list[Alert] = field(default_factory=list)
    vehicles: list[PlatformVehicle] = field(default_factory=list)
    waybills: list[EWaybill] = field(default_factory=list)
    reports: list[PlatformReport] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    """Pictures of photo answers (0x1502), for ``yrd.media``."""
    login: LoginOutcome | None = None
    slave: SlaveTarget | None = None
    """An accepted login's slave-link address (none when it gave port 0)."""
    downward: list[tuple[int, bytes]] = field(default_factory=list)
    """(MSG_ID, body) to send the platform on its slave link (or its main link)."""
    logout: bool = False
    """The platform logged out or announced it closes its links: its slave link stops."""
    close: bool = False
    """Close the connection once the answers are written."""


class LinkSession:
    """The state of one main-link connection."""

    def __init__(self, platforms: Mapping[int, Platform] | LinkConfig,
                 declarations: Mapping[str, VehicleTerminal] | None = None, *,
                 address: str = "?", guard: LoginGuard | None = None,
                 positions: LastFixes | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(CHINA_TZ),
                 new_code: Callable[[], int] = lambda: secrets.randbits(32) or 1) -> None:
        if isinstance(platforms, LinkConfig):
            platforms = {platforms.access_code: platforms.platform()}
        self.platforms = platforms
        self.declarations: Mapping[str, VehicleTerminal] = (
            declarations if declarations is not None else {})
        """Carriers' declarations by plate: the carrier of a position's metrics."""
        self.address = address
        self.guard = guard
        self.positions = positions if positions is not None else LastFixes()
        self.clock = clock
        self.new_code = new_code
        self.platform: Platform | None = None
        """The platform logged in on this connection."""
        self.header: f.Header | None = None
        """The latest readable frame's header."""
        self._serial = 0
        self._pending: list[tuple[a.Alarm, str, int | None, Platform, bytes, datetime]] = []
        """Alarms waiting for their vehicle's position."""

    @property
    def logged_in(self) -> bool:
        return self.platform is not None

    @property
    def authenticated(self) -> bool:
        """Whether a lower platform has logged in (UP_CONNECT_REQ accepted)."""
        return self.platform is not None

    def dead_letter_key(self) -> str | None:
        """``809:`` and the access code of the platform logged in, else of the latest
        readable frame."""
        if self.platform is not None:
            return f"809:{self.platform.access_code}"
        return f"809:{self.header.center}" if self.header is not None else None

    # --- frames ------------------------------------------------------------------------
    def handle(self, content: bytes) -> LinkHandled:
        """One frame's escaped content (between its 0x5b and 0x5d)."""
        raw = bytes([f.HEAD]) + content + bytes([f.TAIL])
        try:
            frame = f.parse_for(content, self._keys)
        except FrameError as exc:
            out = LinkHandled(message="unreadable")
            out.refuse(Rejected(exc.reason, str(exc), raw))
            return out
        header = self.header = frame.header
        platform = self.platforms.get(header.center)
        out = LinkHandled(message=NAMES.get(header.msg_id, "other"), platform=platform)
        try:
            self._dispatch(frame, platform, raw, out)
        except FrameError as exc:
            out.refuse(Rejected(exc.reason, str(exc), raw))
        if self._pending:
            self._release(out)
        return out

    def close(self) -> LinkHandled:
        """The connection ended: the alarms still waiting for a position, dead letters."""
        out = LinkHandled(message="closed", platform=self.platform)
        for alarm, plate, _, _, raw, _ in self._pending:
            out.refuse(Rejected(NO_POSITION, f"UP_WARN_MSG_ADPT_INFO of {plate} (WARN_TYPE "
                                             f"0x{alarm.warn_type:04x}): no position of the "
                                             "vehicle came before the link closed", raw), plate)
        self._pending = []
        return out

    def _keys(self, center: int) -> tuple[f.Cipher | None, int | None]:
        platform = self.platforms.get(center)
        if platform is None:
            return None, None
        return platform.cipher or f.Cipher(), platform.edition

    def _dispatch(self, frame: f.Frame, platform: Platform | None, raw: bytes,
                  out: LinkHandled) -> None:
        header, body = frame.header, frame.body
        msg_id = header.msg_id
        if msg_id == lk.UP_CONNECT_REQ:
            self._login(header, platform, body, raw, out)
            return
        if msg_id not in NAMES:
            out.refuse(Rejected(codes.UNSUPPORTED, f"message 0x{msg_id:04x} is not supported", raw))
            return
        mine = self.platform
        if mine is not None and header.center == mine.access_code and (
                platform is None or not platform.enabled):
            self.platform = None
            out.platform = mine
            out.close = out.logout = True
            out.refuse(Rejected(codes.AUTH_FAILED, f"platform {mine.access_code} was removed or "
                                                   "disabled: its link is closed", raw))
            return
        if platform is None or (mine is not None and platform.access_code != mine.access_code):
            out.refuse(Rejected(codes.AUTH_FAILED,
                                f"access code {header.center} is not the link's", raw))
            return
        if msg_id == lk.UP_LINKTEST_REQ:
            out.answers.append(self._answer(header, platform, lk.UP_LINKTEST_RSP, b""))
            return
        if mine is None:
            out.refuse(Rejected(codes.NOT_AUTHENTICATED, f"0x{msg_id:04x} before a successful "
                                                         "UP_CONNECT_REQ", raw))
            return
        self.platform = mine = platform  # (its latest record: a change on the topic applies)
        version = header.edition
        if msg_id == lk.UP_DISCONNECT_REQ:
            self._logout(header, mine, lk.read_logout(body), raw, out)
        elif msg_id in (lk.UP_DISCONNECT_INFORM, lk.UP_CLOSELINK_INFORM):
            self._notice(header, mine, body, out)
        elif msg_id == x.UP_EXG_MSG:
            self._exchange(header, mine, x.read(msg_id, body, version), raw, out)
        elif msg_id == a.UP_WARN_MSG:
            self._warning(header, mine, a.read(msg_id, body, version), raw, out)
        elif msg_id == i.UP_PLATFORM_MSG:
            self._platform_answer(header, mine, i.read(msg_id, body, version), out)
        elif msg_id == c.UP_CTRL_MSG:
            self._control_answer(header, mine, c.read(msg_id, body, version), raw, out)
        elif msg_id == st.UP_BASE_MSG:
            message = st.read(msg_id, body, version)
            info: st.StaticInfo = message.value  # type: ignore[assignment]
            out.reports.append(self._report(
                header, mine, "static_info", message.sub_type, fields=dict(info.fields),
                text=info.text, plate=message.plate, colour=message.colour,
                source_sn=info.source_sn))

    # --- link management ---------------------------------------------------------------
    def _login(self, header: f.Header, platform: Platform | None, body: bytes, raw: bytes,
               out: LinkHandled) -> None:
        access = platform.access_code if platform is not None else None
        throttled = self.guard.admit(self.address, access) if self.guard is not None else None
        if throttled is not None:
            out.login = LoginOutcome(access, lk.BUSY, throttled)
            out.close = True
            out.answers.append(self._answer(header, platform, lk.UP_CONNECT_RSP,
                                            lk.write_login_answer(lk.LoginAnswer(result=lk.BUSY))))
            return
        login: lk.Login | None = None
        if platform is None:  # (its body is not even read: the cipher would be unknown)
            result, reason = lk.BAD_ACCESS_CODE, "bad_access_code"
        else:
            try:
                login = lk.read_login(body, header.edition)
            except FrameError as exc:
                out.refuse(Rejected(exc.reason, str(exc), raw))
                result, reason = _other(header), "unreadable"
            else:
                result, reason = self._check(header, login, platform)
        verify = 0
        if result == lk.OK:
            assert platform is not None and login is not None
            self.platform = platform
            verify = self.new_code()
            if self.guard is not None:
                self.guard.succeeded(platform.access_code, self.address)
            if login.down_port and login.down_ip:
                out.slave = SlaveTarget(login.down_ip, login.down_port, verify)
        else:
            self.platform = None
            if self.guard is not None and access is not None and reason != "disabled":
                self.guard.failed(access)
            if login is not None or platform is None:
                user = login.user_id if login is not None else "?"
                out.refuse(Rejected(codes.AUTH_FAILED, f"UP_CONNECT_REQ of user {user} for "
                                                       f"access code {header.center}: {reason}",
                                    raw))
        out.login = LoginOutcome(access, result, reason)
        out.answers.append(self._answer(header, platform, lk.UP_CONNECT_RSP, lk.write_login_answer(
            lk.LoginAnswer(result=result, verify_code=verify))))

    def _check(self, header: f.Header, login: lk.Login, platform: Platform) -> tuple[int, str]:
        if login.center is not None and login.center != header.center:
            return lk.BAD_ACCESS_CODE, "bad_access_code"
        if not platform.enabled:
            return _other(header), "disabled"
        if platform.addresses and self.address not in platform.addresses:
            return lk.BAD_IP, "bad_ip"
        if login.user_id != platform.user_id:
            return lk.NO_SUCH_USER, "no_such_user"
        if not secrets.compare_digest(login.password.encode("utf-8"),
                                      platform.password.encode("utf-8")):
            return lk.BAD_PASSWORD, "bad_password"
        return lk.OK, "ok"

    def _logout(self, header: f.Header, platform: Platform, logout: lk.Logout, raw: bytes,
                out: LinkHandled) -> None:
        if logout.user_id != platform.user_id or logout.password != platform.password:
            out.refuse(Rejected(codes.AUTH_FAILED, f"UP_DISCONNECT_REQ of user {logout.user_id}: "
                                                   "not the platform's credentials", raw))
            return
        self.platform = None
        out.logout = True
        out.answers.append(self._answer(header, platform, lk.UP_DISCONNECT_RSP, b""))

    def _notice(self, header: f.Header, platform: Platform, body: bytes,
                out: LinkHandled) -> None:
        closing = header.msg_id == lk.UP_CLOSELINK_INFORM
        name = "UP_CLOSELINK_INFORM" if closing else "UP_DISCONNECT_INFORM"
        code = lk.read_code(body, name).code
        out.reports.append(self._report(header, platform,
                                        "closelink_inform" if closing else "disconnect_inform",
                                        fields={"code": code}))
        out.logout = closing

    # --- businesses ----------------------------------------------------------------------
    def _exchange(self, header: f.Header, platform: Platform, message, raw: bytes,
                  out: LinkHandled) -> None:
        sub, plate, colour = message.sub_type, message.plate or "", message.colour or 0
        if sub in (x.REAL_LOCATION, x.HISTORY_LOCATION):
            fixes = [message.value] if sub == x.REAL_LOCATION else message.value
            self._positions(plate, fixes, sub == x.HISTORY_LOCATION, raw, out)
        elif sub == x.REGISTER:
            self._registration(header, platform, plate, colour, message.value, raw, out)
        elif sub in (x.RETURN_STARTUP_ACK, x.RETURN_END_ACK):
            ack: x.ExchangeAck = message.value
            out.reports.append(self._report(
                header, platform, "exchange_answer", sub,
                fields={"started": sub == x.RETURN_STARTUP_ACK} | _source(ack),
                plate=plate, colour=message.colour))
        elif sub in (x.REPORT_DRIVER_INFO_ACK, x.REPORT_DRIVER_INFO):
            driver: x.Driver = message.value
            fields = {"name": driver.name, "driver_id": driver.driver_id,
                      "licence": driver.licence, "org": driver.org,
                      "valid_until": driver.valid_until.isoformat()
                      if driver.valid_until is not None else None}
            out.reports.append(self._report(header, platform, "driver_info", sub,
                                            fields=fields | _source(driver), plate=plate,
                                            colour=message.colour))
        else:  # the two e-waybills (any other sub-business: x.read raised "unsupported")
            waybill: x.Waybill = message.value
            record = self._record(EWaybill, raw, out, plate, vehicle_id=plate,
                                  plate_colour=colour, platform=platform.access_code,
                                  kind="answer" if sub == x.TAKE_EWAYBILL_ACK else "report",
                                  text=waybill.text, source_sn=waybill.source_sn,
                                  received_at=self.clock())
            if record is not None:
                out.waybills.append(record)

    def _positions(self, plate: str, fixes: list[Fix], resent: bool, raw: bytes,
                   out: LinkHandled) -> None:
        declared = self.declarations.get(plate)
        carrier = declared.carrier if declared is not None else None
        for fix in fixes:
            try:
                ping = fix_ping(plate, fix, blind=resent)
            except Refused as exc:
                out.refuse(Rejected(codes.INVALID, f"position: {exc}", raw), plate, carrier,
                           exc.quality)
                continue
            out.accept(ping, carrier)
            self.positions.note(ping)
        if resent:
            out.blind = len(out.pings)

    def _registration(self, header: f.Header, platform: Platform, plate: str, colour: int,
                      reg: x.Registration, raw: bytes, out: LinkHandled) -> None:
        record = self._record(PlatformVehicle, raw, out, plate, vehicle_id=plate,
                              plate_colour=colour, platform=platform.access_code,
                              platform_id=reg.platform_id, producer_id=reg.producer_id,
                              terminal_model=reg.terminal_model, terminal_id=reg.terminal_id,
                              sim=reg.sim, imei=reg.imei, edition=header.edition,
                              registered_at=self.clock())
        if record is None:
            return
        out.vehicles.append(record)
        if header.edition == f.V2019:
            ack = x.RegistrationAck(source_type=x.REGISTER, source_sn=header.serial,
                                    result=x.REGISTERED)
            out.downward.append((x.DOWN_EXG_MSG, x.write(plate, colour, x.REGISTER_ACK,
                                                         x.write_registration_ack(ack))))

    def _warning(self, header: f.Header, platform: Platform, message, raw: bytes,
                 out: LinkHandled) -> None:
        sub = message.sub_type
        if sub == a.ADPT_INFO:
            alarm: a.Alarm = message.value
            plate = message.plate if header.edition == f.V2011 else alarm.plate
            colour = message.colour if header.edition == f.V2011 else alarm.colour
            try:
                plate = msgspec.convert(plate, VehicleId)
            except msgspec.ValidationError as exc:
                out.refuse(Rejected(codes.INVALID, f"UP_WARN_MSG_ADPT_INFO: vehicle {plate!r}: "
                                                   f"{exc}", raw))
                return
            self._pending.append((alarm, plate, colour, platform, raw, self.clock()))
            if len(self._pending) > MAX_PENDING_ALARMS:
                dropped = self._pending.pop(0)
                out.refuse(Rejected(NO_POSITION, f"UP_WARN_MSG_ADPT_INFO of {dropped[1]}: more "
                                                 f"than {MAX_PENDING_ALARMS} alarms wait for "
                                                 "their vehicles' positions", dropped[4]),
                           dropped[1])
            return
        if sub == a.URGE_TODO_ACK:
            answer: a.SupervisionAnswer = message.value
            fields = msgspec.structs.asdict(answer)
            kind = "supervision_answer"
        else:
            result: a.HandlingResult = message.value
            fields = msgspec.structs.asdict(result)
            kind = "handling_result"
        out.reports.append(self._report(header, platform, kind, sub,
                                        fields={k: v for k, v in fields.items() if v is not None},
                                        plate=message.plate, colour=message.colour))

    def _platform_answer(self, header: f.Header, platform: Platform, message,
                         out: LinkHandled) -> None:
        """UP_PLATFORM_MSG_POST_QUERY_ACK 0x1301, UP_PLATFORM_MSG_INFO_ACK 0x1302."""
        kind = "inspection_answer" if message.sub_type == i.POST_QUERY_ACK else "info_ack"
        fields = {k: v for k, v in msgspec.structs.asdict(message.value).items()
                  if v is not None and k != "content"}
        text = getattr(message.value, "content", None)
        out.reports.append(self._report(header, platform, kind, message.sub_type,
                                        fields=fields, text=text))

    def _control_answer(self, header: f.Header, platform: Platform, message, raw: bytes,
                        out: LinkHandled) -> None:
        """UP_CTRL_MSG_TEXT_INFO_ACK 0x1503, UP_CTRL_MSG_TAKE_PHOTO_ACK 0x1502 (its picture
        a :class:`Media` record), UP_CTRL_MSG_MONITOR_VEHICLE_ACK 0x1501,
        UP_CTRL_MSG_TAKE_TRAVEL_DATA_ACK 0x1504, UP_CTRL_MSG_EMERGENCY_MONITORING_ACK
        0x1505."""
        plate, colour, sub = message.plate or "", message.colour, message.sub_type
        if sub in (c.MONITOR_VEHICLE_ACK, c.EMERGENCY_MONITORING_ACK):
            result: c.ControlResult = message.value
            kind = "listen_answer" if sub == c.MONITOR_VEHICLE_ACK else "emergency_access_answer"
            out.reports.append(self._report(header, platform, kind, sub,
                                            fields={"result": result.result} | _source(result),
                                            plate=plate, colour=colour))
            return
        if sub == c.TAKE_TRAVEL_DATA_ACK:
            travel: c.TachographAnswer = message.value
            fields = {"command": travel.command, "data": travel.data.hex(),
                      "size": len(travel.data)} | _source(travel)
            out.reports.append(self._report(header, platform, "tachograph_answer", sub,
                                            fields=fields, plate=plate, colour=colour))
            return
        if sub == c.TEXT_INFO_ACK:
            answer: c.TextAnswer = message.value
            fields = {k: v for k, v in msgspec.structs.asdict(answer).items() if v is not None}
            out.reports.append(self._report(header, platform, "text_answer", message.sub_type,
                                            fields=fields, plate=plate, colour=colour))
            return
        photo: c.PhotoAnswer = message.value
        fields = {"flag": photo.flag, "lens": photo.lens, "size": photo.size,
                  "image_type": photo.image_type, "photo_bytes": len(photo.photo)}
        fields |= {k: v for k, v in (("source_type", photo.source_type),
                                     ("source_sn", photo.source_sn)) if v is not None}
        if photo.fix is not None:
            fields |= {"ts": photo.fix.ts.isoformat() if photo.fix.ts else None,
                       "lat": photo.fix.lat, "lon": photo.fix.lon,
                       "crs": "GCJ02" if photo.fix.gcj02 else "WGS84"}
        if photo.photo:
            received = self.clock()
            media = self._record(
                Media, raw, out, plate,
                media_id=f"jt809.{platform.access_code}.{header.serial}."
                         f"{int(received.timestamp() * 1000)}",
                vehicle_id=plate, terminal_media_id=0,
                format=IMAGE_FORMATS.get(photo.image_type, "unknown"), channel=photo.lens,
                event=0, received_at=received,
                data=base64.b64encode(photo.photo).decode("ascii"), size=len(photo.photo),
                taken_at=photo.fix.ts if photo.fix is not None else None)
            if media is not None:
                out.media.append(media)
                fields["media_id"] = media.media_id
        out.reports.append(self._report(header, platform, "photo_answer", message.sub_type,
                                        fields=fields, plate=plate, colour=colour))

    def _release(self, out: LinkHandled) -> None:
        """The waiting alarms whose vehicle's position is known now, as alerts."""
        waiting = []
        for alarm, plate, colour, platform, raw, received in self._pending:
            position = self.positions.get(plate)
            if position is None:
                waiting.append((alarm, plate, colour, platform, raw, received))
                continue
            out.alerts.append(platform_alert(alarm, plate, colour, platform, position, received))
        self._pending = waiting

    # --- records and answers -------------------------------------------------------------
    def _record(self, model, raw: bytes, out: LinkHandled, plate: str, **fields):
        """A record of ``model`` (None, and a dead letter, if the contract refuses it)."""
        try:
            return msgspec.convert(fields, model)
        except msgspec.ValidationError as exc:
            out.refuse(Rejected(codes.INVALID, f"{model.__name__} of {plate!r}: {exc}", raw),
                       plate or None)
            return None

    def _report(self, header: f.Header, platform: Platform, kind: str,
                data_type: int | None = None, *, fields: dict | None = None,
                text: str | None = None, plate: str | None = None, colour: int | None = None,
                source_sn: int | None = None) -> PlatformReport:
        if source_sn is not None:
            fields = (fields or {}) | {"source_sn": source_sn}
        report = {"platform": platform.access_code, "kind": kind, "msg_id": header.msg_id,
                  "data_type": data_type, "serial": header.serial, "fields": fields or {},
                  "text": text, "vehicle_id": plate or None, "plate_colour": colour,
                  "received_at": self.clock()}
        try:
            return msgspec.convert(report, PlatformReport)
        except msgspec.ValidationError:  # a plate out of contract: kept in the fields
            report["fields"] = report["fields"] | {"plate": plate}
            return msgspec.convert(report | {"vehicle_id": None}, PlatformReport)

    def _answer(self, header: f.Header, platform: Platform | None, msg_id: int,
                body: bytes) -> bytes:
        """An answer in the form of the frame answered: its edition, and encrypted under its
        key when it was (with its platform's cipher)."""
        self._serial = (self._serial + 1) & 0xFFFFFFFF
        cipher = None
        if header.encrypted and platform is not None:
            cipher = platform.cipher or f.Cipher()
        return f.build(msg_id, self._serial, header.center, body, cipher=cipher, key=header.key,
                       edition=header.edition, time=int(self.clock().timestamp()))


def _source(answer) -> dict[str, int]:
    """A 2019 answer's SOURCE_DATA_TYPE and SOURCE_MSG_SN (the request it answers), as
    fields (none in 2011)."""
    return {name: value for name in ("source_type", "source_sn")
            if (value := getattr(answer, name, None)) is not None}


def _other(header: f.Header) -> int:
    """UP_CONNECT_RSP's "other" result: 6, in 2019 0xFF."""
    return lk.OTHER_2019 if header.edition == f.V2019 else lk.OTHER


def fix_ping(plate: str, fix: Fix, blind: bool) -> Ping:
    """The contract's ping of a GNSS_DATA (raises :class:`.session.Refused`)."""
    return contract_ping({
        "vehicle_id": plate, "ts": fix.ts, "lat": fix.lat, "lon": fix.lon,
        "speed_kmh": fix.speed_kmh, "heading": fix.heading,
        "crs": "GCJ02" if fix.gcj02 else "WGS84", "alarm_flags": fix.alarm,
        "status_flags": fix.status, "altitude_m": fix.altitude_m,
        "mileage_km": fix.mileage_km, "fix_valid": bool(fix.status & FIXED), "blind": blind,
    })
