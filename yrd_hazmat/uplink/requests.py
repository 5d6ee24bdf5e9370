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
  :mod:`.terminal_answers`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from ..core.models import Command
from ..jt809 import alarms, bodies, control, inspection
from ..jt809.codec import Message
from ..jt809.frame import V2019, Frame
from .records import UplinkRequest

ISSUER = "uplink"
"""``issued_by`` of the commands the upper platform's requests become."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What to do with a request: publish a request record and/or a command; or an
    acknowledgement to send on the main link (0x1302)."""

    request: UplinkRequest | None = None
    command: Command | None = None
    info_ack: inspection.InfoAck | None = None


def request_id(kind: str, at: datetime, serial: int, link: str) -> str:
    return f"{kind}-{at:%Y%m%dT%H%M%S}.{at.microsecond // 1000:03d}-{link}-{serial}"


def handle(frame: Frame, *, link: str, edition: int, now: datetime,
           inspection_answer_s: float, command_expiry_s: float) -> Outcome | None:
    """The outcome of a business frame from the upper platform; None for one that asks
    nothing of us. Raises :class:`~yrd_hazmat.jt808.frame.FrameError` for a bad body."""
    msg_id = frame.header.msg_id
    if msg_id not in (inspection.DOWN_PLATFORM_MSG, alarms.DOWN_WARN_MSG, control.DOWN_CTRL_MSG):
        return None
    message = bodies.read(msg_id, frame.body, edition)
    assert isinstance(message, Message)
    serial, value = frame.header.serial, message.value
    base = {"received_at": now, "edition": edition, "serial": serial, "link": link}
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
    if isinstance(value, (control.TextRequest, control.PhotoRequest)) and message.plate:
        command = _command(message.plate, value, now, serial, command_expiry_s)
        kind = "text" if isinstance(value, control.TextRequest) else "photo"
        fields = {"question": value.text, "sequence": value.msg_id} if kind == "text" else \
            {"lens": value.lens, "size": value.size}
        # no command (a plate no terminal can have): answered at once as failed
        return Outcome(command=command, request=UplinkRequest(
            request_id=request_id(kind, now, serial, link), kind=kind,
            deadline=command.expires_at if command is not None else now,
            plate=message.plate, colour=message.colour,
            command_id=command.command_id if command is not None else None,
            **fields, **base))
    return None


def _command(plate: str, value: object, now: datetime, serial: int,
             expiry_s: float) -> Command | None:
    from ..commands import make_command

    fields: dict = {}
    if isinstance(value, control.TextRequest):
        kind = "text"
        fields = {"text": value.text[:400] or "-", "emergency": value.priority == control.URGENT}
    else:
        assert isinstance(value, control.PhotoRequest)
        kind = "photo"
        fields = {"camera": max(1, value.lens)}
    try:
        return make_command(plate, kind, by=f"{ISSUER}-{serial}", now=now,
                            expires_in_s=expiry_s, **fields)
    except ValueError:
        return None
