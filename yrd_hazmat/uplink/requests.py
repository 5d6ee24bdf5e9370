"""The upper platform's requests, on the slave link or the main link, as records.

- DOWN_PLATFORM_MSG_POST_QUERY_REQ 0x9301 (inspection) and DOWN_WARN_MSG_URGE_TODO_REQ
  0x9401 (supervision order): an :class:`~.records.UplinkRequest` for the desk of the
  region, with its deadline; a person answers (``yrd.uplink-answers``), nothing here does.
- DOWN_PLATFORM_MSG_INFO_REQ 0x9302 and DOWN_WARN_MSG_INFORM_TIPS 0x9402 /
  DOWN_WARN_MSG_EXG_INFORM 0x9403: requests of kind ``message`` / ``notice`` for the desk
  to read (0x9302 is acknowledged on receipt with UP_PLATFORM_MSG_INFO_ACK 0x1302).
- DOWN_CTRL_MSG_TEXT_INFO 0x9503 and DOWN_CTRL_MSG_TAKE_PHOTO_REQ 0x9502: a
  :class:`~yrd_hazmat.core.models.Command` (text, photo) for the terminal gateway, and a
  request of kind ``text`` / ``photo`` naming it, from which the terminal's result is
  answered (UP_CTRL_MSG_TEXT_INFO_ACK 0x1503, UP_CTRL_MSG_TAKE_PHOTO_ACK 0x1502:
  :mod:`.terminal_answers`). Likewise DOWN_CTRL_MSG_MONITOR_VEHICLE_REQ 0x9501 (a call
  back to listen in, JT/T 808 0x8400), DOWN_CTRL_MSG_TAKE_TRAVEL_DATA_REQ 0x9504 (tachograph
  data, 0x8700) and DOWN_CTRL_MSG_EMERGENCY_MONITORING_REQ 0x9505 (connect to another
  platform, 0x8105), answered 0x1501, 0x1504, 0x1505.
- DOWN_EXG_MSG_RETURN_STARTUP 0x9205 / DOWN_EXG_MSG_RETURN_END 0x9206: a request of kind
  ``exchange_start`` / ``exchange_stop`` and its answer at once (0x1205 / 0x1206; every
  truck of ours goes up anyway). DOWN_EXG_MSG_REPORT_DRIVER_INFO 0x920A and
  DOWN_EXG_MSG_TAKE_EWAYBILL_REQ 0x920B: kind ``driver`` / ``waybill``, answered at once from
  the truck's permit (0x120A, 0x120B: :mod:`.permits`); DOWN_BASE_MSG_VEHICLE_ADDED 0x9601
  likewise, kind ``static_info`` (0x1601).
- DOWN_EXG_MSG_CAR_LOCATION 0x9202 and DOWN_EXG_MSG_HISTORY_ARCOSSAREA 0x9203: positions
  of a vehicle from elsewhere, as pings for ``yrd.pings`` (the worker checks them like
  ours; they are not sent back up); DOWN_EXG_MSG_CAR_INFO 0x9204: its static information,
  a ``notice`` for the desk.
Every answer made here is an :class:`~.records.UplinkAnswer` like a person's, sent up by
the path that sends theirs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from ..core.models import Command, Ping
from ..jt808.frame import FrameError
from ..jt809 import alarms, bodies, control, exchange, inspection, static
from ..jt809.codec import Message
from ..jt809.frame import V2019, Frame
from ..jt809.gnss import Fix
from .permits import Permits
from .records import UplinkAnswer, UplinkRequest

ISSUER = "uplink"
"""``issued_by`` of the commands the upper platform's requests become, and ``answered_by``
of the answers made here."""
COMMAND_KINDS = {control.TextRequest: "text", control.PhotoRequest: "photo",
                 control.ListenRequest: "listen", control.TachographRequest: "tachograph",
                 control.EmergencyAccess: "emergency_access"}
"""The requests that go to a truck's terminal -> their request kind."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What to do with a request: publish a request record and/or a command; or an
    acknowledgement to send on the main link (0x1302)."""

    request: UplinkRequest | None = None
    command: Command | None = None
    info_ack: inspection.InfoAck | None = None
    answer: UplinkAnswer | None = None
    """An answer made at once (exchange, driver, waybill), for ``yrd.uplink-answers``."""
    pings: list[Ping] = []
    """Positions of a vehicle from elsewhere (0x9202, 0x9203), for ``yrd.pings``."""


def request_id(kind: str, at: datetime, serial: int, link: str) -> str:
    return f"{kind}-{at:%Y%m%dT%H%M%S}.{at.microsecond // 1000:03d}-{link}-{serial}"


def handle(frame: Frame, *, link: str, edition: int, now: datetime,
           inspection_answer_s: float, command_expiry_s: float,
           permits: Permits | None = None) -> Outcome | None:
    """The outcome of a business frame from the upper platform; None for one that asks
    nothing of us. Raises :class:`~yrd_hazmat.jt808.frame.FrameError` for a bad body."""
    msg_id = frame.header.msg_id
    if msg_id not in (inspection.DOWN_PLATFORM_MSG, alarms.DOWN_WARN_MSG, control.DOWN_CTRL_MSG,
                      exchange.DOWN_EXG_MSG, static.DOWN_BASE_MSG):
        return None
    message = bodies.read(msg_id, frame.body, edition)
    assert isinstance(message, Message)
    serial, value = frame.header.serial, message.value
    base = {"received_at": now, "edition": edition, "serial": serial, "link": link}
    if msg_id == exchange.DOWN_EXG_MSG:
        return _exchange(message, base, permits or Permits())
    if msg_id == static.DOWN_BASE_MSG and message.plate:
        request = UplinkRequest(request_id=request_id("static_info", now, serial, link),
                                kind="static_info", deadline=None, plate=message.plate,
                                colour=message.colour, **base)
        colour = message.colour if message.colour is not None else 2
        return Outcome(request=request, answer=UplinkAnswer(
            request=request, answered_by=ISSUER, answered_at=now, result=0,
            content=(permits or Permits()).static_info(message.plate, colour)))
    if isinstance(value, inspection.Inspection):
        if message.sub_type == inspection.INFO_REQ:
            ack = inspection.InfoAck(info_id=value.info_id) if edition != V2019 else \
                inspection.InfoAck(source_type=inspection.INFO_REQ, source_sn=serial)
            return Outcome(request=UplinkRequest(
                request_id=request_id("message", now, serial, link), kind="message",
                deadline=None, question=value.content, info_id=value.info_id,
                object_type=value.object_type, object_id=value.object_id, **base),
                info_ack=ack)
        # 2019 ANSWER_TIME is in minutes (the conformance platform sends 10)
        allowed = value.answer_time * 60.0 if value.answer_time else inspection_answer_s
        return Outcome(request=UplinkRequest(
            request_id=request_id("inspection", now, serial, link), kind="inspection",
            deadline=now + timedelta(seconds=allowed), question=value.content,
            info_id=value.info_id, object_type=value.object_type, object_id=value.object_id,
            answer_time=value.answer_time, **base))
    if isinstance(value, alarms.SupervisionOrder):
        return Outcome(request=UplinkRequest(
            request_id=request_id("supervision", now, serial, link), kind="supervision",
            deadline=value.deadline, plate=message.plate, colour=message.colour,
            supervision_id=value.supervision_id, level=value.level,
            supervisor=value.supervisor, tel=value.tel, email=value.email,
            warn_type=value.warn_type, warn_time=value.warn_time,
            source_type=value.source_type, source_sn=value.source_sn, **base))
    if isinstance(value, alarms.Alarm):
        return Outcome(request=UplinkRequest(
            request_id=request_id("notice", now, serial, link), kind="notice", deadline=None,
            question=value.content, plate=message.plate or value.plate,
            warn_type=value.warn_type, warn_time=value.warn_time, **base))
    kind = COMMAND_KINDS.get(type(value))
    if kind is not None and message.plate:
        command = _command(message.plate, value, now, serial, command_expiry_s)
        fields: dict = {}
        if isinstance(value, control.TextRequest):
            fields = {"question": value.text, "sequence": value.msg_id}
        elif isinstance(value, control.PhotoRequest):
            fields = {"lens": value.lens, "size": value.size}
        elif isinstance(value, control.ListenRequest):
            fields = {"tel": value.tel}
        elif isinstance(value, control.TachographRequest):
            fields = {"reason": value.command}
        elif isinstance(value, control.EmergencyAccess):  # (the dial password not kept)
            fields = {"question": f"{value.server}:{value.tcp_port}"}
        # no command (a plate no terminal can have): answered at once as failed
        return Outcome(command=command, request=UplinkRequest(
            request_id=request_id(kind, now, serial, link), kind=kind,
            deadline=command.expires_at if command is not None else now,
            plate=message.plate, colour=message.colour,
            command_id=command.command_id if command is not None else None,
            **fields, **base))
    return None


def _exchange(message: Message, base: dict, permits: Permits) -> Outcome | None:
    """DOWN_EXG_MSG: positions and information of vehicles from elsewhere, orders to start
    or stop sending a vehicle's positions, who drives, the e-waybill."""
    sub, value, plate = message.sub_type, message.value, message.plate
    now = base["received_at"]
    if not plate:
        return None  # 0x9201 REGISTER_ACK without a vehicle: nothing to do
    if sub in (exchange.CAR_LOCATION, exchange.HISTORY_ARCOSSAREA):
        from ..gateway.link import fix_ping
        from ..gateway.session import Refused

        fixes = [value] if isinstance(value, Fix) else list(value)  # type: ignore[arg-type]
        pings = []
        for fix in fixes:
            try:
                pings.append(fix_ping(plate, fix, blind=sub == exchange.HISTORY_ARCOSSAREA))
            except Refused as exc:
                raise FrameError("bad_message", f"a position of {plate}: {exc}") from None
        return Outcome(pings=pings)
    kinds = {exchange.CAR_INFO: "notice", exchange.RETURN_STARTUP: "exchange_start",
             exchange.RETURN_END: "exchange_stop", exchange.DOWN_REPORT_DRIVER_INFO: "driver",
             exchange.TAKE_EWAYBILL_REQ: "waybill"}
    kind = kinds.get(sub)
    if kind is None:
        return None
    fields: dict = {}
    if isinstance(value, exchange.ExchangeOrder):
        reasons = exchange.STARTUP_REASONS if sub == exchange.RETURN_STARTUP else \
            exchange.END_REASONS
        fields = {"reason": value.reason,
                  "question": reasons.get(value.reason, f"reason {value.reason}")}
    elif isinstance(value, str):
        fields = {"question": value}
    request = UplinkRequest(request_id=request_id(kind, now, base["serial"], base["link"]),
                            kind=kind, deadline=None, plate=plate, colour=message.colour,
                            **fields, **base)
    if kind == "notice":
        return Outcome(request=request)
    answer = UplinkAnswer(request=request, answered_by=ISSUER, answered_at=now, result=0)
    if kind == "driver":
        answer = msgspec.structs.replace(answer, driver=permits.driver(plate) or
                                         exchange.Driver())
    elif kind == "waybill":
        answer = msgspec.structs.replace(answer, content=permits.waybill(plate) or "")
    return Outcome(request=request, answer=answer)


def _command(plate: str, value: object, now: datetime, serial: int,
             expiry_s: float) -> Command | None:
    from ..commands import make_command

    fields: dict = {}
    if isinstance(value, control.TextRequest):
        kind = "text"
        fields = {"text": value.text[:400] or "-", "emergency": value.priority == control.URGENT}
    elif isinstance(value, control.PhotoRequest):
        kind = "photo"
        fields = {"camera": max(1, value.lens)}
    elif isinstance(value, control.ListenRequest):
        kind = "call_back"
        fields = {"phone": value.tel, "listen": True}
    elif isinstance(value, control.TachographRequest):
        kind = "tachograph"
        fields = {"command_word": value.command}
    else:
        assert isinstance(value, control.EmergencyAccess)
        kind = "emergency_access"
        minutes = 0
        if value.end is not None:
            minutes = max(0, int((value.end - now).total_seconds() // 60))
        fields = {"server": value.server, "tcp_port": value.tcp_port,
                  "udp_port": value.udp_port, "auth_code": value.auth_code, "apn": value.apn,
                  "dial_user": value.user, "dial_password": value.password,
                  "minutes": minutes}
    try:
        return make_command(plate, kind, by=f"{ISSUER}-{serial}", now=now,
                            expires_in_s=expiry_s, **fields)
    except ValueError:
        return None
